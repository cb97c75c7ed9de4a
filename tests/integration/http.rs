//! The HTTP/JSON API on a real listener (port 0) through a real HTTP
//! client, and `/v1/embeddings` through the official `openai` Python client.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tonic::codegen::http;
use wenda::auth::Tokens;
use wenda::engine::Engine;
use wenda::http::AppState;

use crate::common;

const READ: &str = "read-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";

async fn start(
    engine: Arc<Engine>,
    tokens: Tokens,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (engine_tx, engine_rx) = tokio::sync::watch::channel(Some(engine));
    std::mem::forget(engine_tx);
    let state = AppState {
        engine: engine_rx,
        tokens: Arc::new(tokens),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(wenda::http::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// One request on a fresh HTTP/1.1 connection: the status and the body as
/// JSON (or as a JSON string when it is not JSON).
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let response = sender
        .send_request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

/// A proto3 JSON integer: omitted when 0, a string when 64-bit.
fn number(value: &Value) -> u64 {
    match value {
        Value::Null => 0,
        Value::String(s) => s.parse().unwrap(),
        v => v.as_u64().unwrap(),
    }
}

fn tokens() -> Tokens {
    Tokens::parse(&format!("read {READ}\nadmin {ADMIN}\n")).unwrap()
}

/// Search, documents and info over HTTP answer what the gRPC calls answer,
/// in the proto3 JSON mapping; errors are the usual HTTP statuses with the
/// gRPC code, message and field violations in the body.
#[tokio::test]
async fn reads_answer_in_the_proto_json_mapping_with_http_errors() {
    let engine = common::corpus_engine();
    let (addr, _stop) = start(engine.clone(), tokens()).await;

    assert_eq!(call(addr, "GET", "/healthz", None, None).await.0, 200);
    assert_eq!(call(addr, "GET", "/readyz", None, None).await.0, 200);

    let question = "谁创立了OpenStack？";
    let (status, body) = call(
        addr,
        "POST",
        "/v1/search",
        Some(READ),
        Some(json!({"query": question, "topK": 3, "explain": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let expected = wenda::api::search(
        &engine,
        wenda::proto::SearchRequest {
            query: question.into(),
            top_k: 3,
            explain: true,
            ..Default::default()
        },
        &Default::default(),
    )
    .await
    .unwrap();
    let passages = body["passages"].as_array().unwrap();
    assert_eq!(passages.len(), expected.passages.len());
    for (got, want) in passages.iter().zip(&expected.passages) {
        let citation = want.citation.as_ref().unwrap();
        assert_eq!(got["citation"]["docId"], citation.doc_id);
        assert_eq!(number(&got["citation"]["charStart"]), citation.char_start);
        assert_eq!(got["text"], want.text);
    }
    assert_eq!(body["answerable"], expected.answerable);
    assert_eq!(body["queryLanguage"], "zh");

    // The original field names are accepted too, as the JSON mapping says.
    let (status, _) = call(
        addr,
        "POST",
        "/v1/search",
        Some(READ),
        Some(json!({"query": "OpenStack", "top_k": 1, "mode": "SEARCH_MODE_DENSE"})),
    )
    .await;
    assert_eq!(status, 200);

    let (status, body) = call(
        addr,
        "POST",
        "/v1/search",
        Some(READ),
        Some(json!({"query": "", "topK": 500})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    let fields: Vec<&str> = body["error"]["fieldViolations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["query", "top_k"]);
    let (status, body) = call(
        addr,
        "POST",
        "/v1/search",
        Some(READ),
        Some(json!("not a request")),
    )
    .await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );

    let (status, body) = call(
        addr,
        "POST",
        "/v1/search",
        None,
        Some(json!({"query": "x"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );

    let (status, list) = call(addr, "GET", "/v1/documents?page_size=2", Some(READ), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["documents"].as_array().unwrap().len(), 2);
    let token = list["nextPageToken"].as_str().unwrap();
    let (_, rest) = call(
        addr,
        "GET",
        &format!("/v1/documents?pageToken={token}"),
        Some(READ),
        None,
    )
    .await;
    assert_eq!(rest["documents"].as_array().unwrap().len(), 3);

    let id = list["documents"][0]["id"].as_str().unwrap();
    let (status, doc) = call(
        addr,
        "GET",
        &format!("/v1/documents/{id}"),
        Some(READ),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(doc["text"], engine.get_document(id).unwrap().text);
    let (status, body) = call(addr, "GET", "/v1/documents/nope", Some(READ), None).await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (404, Some("NOT_FOUND"))
    );

    let (status, info) = call(addr, "GET", "/v1/info", Some(READ), None).await;
    assert_eq!(status, 200);
    assert_eq!(number(&info["documents"]), 5);
}

/// Writes need the admin token (checked before the body is read) and are
/// seen by reads at once.
#[tokio::test]
async fn writes_need_the_admin_token_and_are_read_back() {
    let data = tempfile::tempdir().unwrap();
    let engine = common::engine(data.path(), None).await;
    let (addr, _stop) = start(engine, tokens()).await;
    let document = json!({"documents": [{"id": "crane", "text": "The harbour crane lifted forty containers before dawn."}]});
    let (status, body) = call(
        addr,
        "POST",
        "/v1/documents",
        Some(READ),
        Some(document.clone()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
    let (status, body) = call(addr, "POST", "/v1/documents", Some(ADMIN), Some(document)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["id"], "crane");
    let (status, doc) = call(addr, "GET", "/v1/documents/crane", Some(READ), None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["document"]["language"], "en");
    let (status, body) = call(addr, "DELETE", "/v1/documents/crane", Some(READ), None).await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
    let (status, body) = call(addr, "DELETE", "/v1/documents/crane", Some(ADMIN), None).await;
    assert_eq!((status, body["deleted"].as_u64()), (200, Some(1)));
    assert_eq!(
        call(addr, "GET", "/v1/documents/crane", Some(READ), None)
            .await
            .0,
        404
    );
}

/// The official `openai` client, pointed at wenda, gets one vector per
/// input (in its default base64 encoding and in floats), equal to the
/// vectors of wenda's own Embed call for queries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_python_client_gets_embeddings() {
    let engine = common::corpus_engine();
    let (addr, _stop) = start(engine.clone(), Tokens::default()).await;
    let script = r#"
import json, sys
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1], api_key="unused")
texts = ["谁创立了OpenStack？", "Who founded OpenStack?"]
default = client.embeddings.create(model="multilingual-e5-small", input=texts)
floats = client.embeddings.create(model="multilingual-e5-small", input=texts[0], encoding_format="float")
print(json.dumps({
    "default": [d.embedding for d in default.data],
    "floats": floats.data[0].embedding,
    "tokens": default.usage.prompt_tokens,
    "model": default.model,
}))
"#;
    let url = format!("http://{addr}/v1");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(common::python())
            .args(["-c", script, &url])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let got: Value = serde_json::from_slice(&output.stdout).unwrap();
    let expected = engine
        .embed(
            vec![
                "谁创立了OpenStack？".into(),
                "Who founded OpenStack?".into(),
            ],
            wenda::embed::EmbedKind::Query,
        )
        .await
        .unwrap();
    let close = |a: &Value, b: &[f32]| {
        let a: Vec<f32> = a
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    };
    assert!(close(&got["default"][0], &expected[0].vector));
    assert!(close(&got["default"][1], &expected[1].vector));
    assert!(close(&got["floats"], &expected[0].vector));
    assert!(got["tokens"].as_u64().unwrap() > 4);
    assert_eq!(got["model"], engine.embedder().manifest().name);
}

/// `/openapi.json` describes what is served: a real OpenAPI validator reads
/// it, and every operation it lists is called with its own examples and
/// answers with a body its schema accepts (tests/http/check_openapi.py).
/// The examples write, so the server has an engine of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_what_is_served() {
    let data = tempfile::tempdir().unwrap();
    let engine = common::engine(data.path(), None).await;
    let (addr, _stop) = start(engine.clone(), tokens()).await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/http/check_openapi.py");
    let url = format!("http://{addr}");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(common::python())
            .arg(script)
            .args(["--url", &url, "--read-token", READ, "--admin-token", ADMIN])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The checks ran over every route: the served operations all appear.
    let routes: usize = wenda::http::ROUTE_TABLES.iter().map(|t| t.len()).sum();
    let checked = stdout
        .lines()
        .filter(|l| l.ends_with("matches its schema"))
        .count();
    assert_eq!(checked, routes, "{stdout}");
    // The example document was written and deleted again.
    assert_eq!(engine.info().documents, 0);
}
