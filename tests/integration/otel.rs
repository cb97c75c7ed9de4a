//! OpenTelemetry export (a build with `--features otel`): the real
//! `wenda serve --otlp-endpoint` sends its spans over OTLP/gRPC to a small
//! collector running in the test, and flushes them when it stops.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio_stream::wrappers::TcpListenerStream;
use wenda::proto::{self, retrieval_client::RetrievalClient};

use crate::processes::{ServeProcess, wait_serving};

/// Keeps every export request it receives.
#[derive(Clone, Default)]
struct Collector {
    received: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.received.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    /// Every span received so far, with its resource's attributes.
    fn spans(&self) -> Vec<(Vec<KeyValue>, Span)> {
        let received = self.received.lock().unwrap();
        let mut spans = Vec::new();
        for request in received.iter() {
            for rs in &request.resource_spans {
                let resource = rs.resource.clone().unwrap_or_default().attributes;
                for ss in &rs.scope_spans {
                    for span in &ss.spans {
                        spans.push((resource.clone(), span.clone()));
                    }
                }
            }
        }
        spans
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attribute(attributes, key) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector_and_are_flushed_on_shutdown() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let data = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{collector_addr}");
    let mut server =
        ServeProcess::start_with_args(data.path(), None, &["--otlp-endpoint", &endpoint]);
    wait_serving(&server.url()).await;
    let mut client = RetrievalClient::connect(server.url()).await.unwrap();
    client
        .ingest(proto::IngestRequest {
            documents: vec![proto::Document {
                id: "otel/1".into(),
                text: "The Mekong flows through six countries. 湄公河流经六个国家。".into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    let request_id = format!("otel-test-{}", std::process::id());
    let mut search = tonic::Request::new(proto::SearchRequest {
        query: "Which countries does the Mekong flow through?".into(),
        top_k: 1,
        ..Default::default()
    });
    search
        .metadata_mut()
        .insert("x-request-id", request_id.parse().unwrap());
    let hits = client.search(search).await.unwrap().into_inner();
    assert_eq!(hits.passages.len(), 1);
    drop(client);

    // SIGTERM right away, well inside the batch's 5 s delay: the spans
    // arrive because shutdown flushes them, before the process exits.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let spans = collector.spans();
    let names: Vec<&str> = spans.iter().map(|(_, s)| s.name.as_str()).collect();
    let (resource, rpc) = spans
        .iter()
        .find(|(_, s)| {
            s.name == "rpc" && string_attribute(&s.attributes, "request_id") == Some(&request_id)
        })
        .unwrap_or_else(|| panic!("no rpc span with request_id {request_id}; spans: {names:?}"));
    assert_eq!(
        string_attribute(&rpc.attributes, "path"),
        Some("/wenda.v1.Retrieval/Search")
    );
    assert_eq!(string_attribute(resource, "service.name"), Some("wenda"));
    assert!(rpc.end_time_unix_nano >= rpc.start_time_unix_nano);

    // The engine's search span is its child, with the stage timings.
    let (_, search) = spans
        .iter()
        .find(|(_, s)| s.name == "search" && s.parent_span_id == rpc.span_id)
        .unwrap_or_else(|| panic!("no search span under the rpc span; spans: {names:?}"));
    assert_eq!(search.trace_id, rpc.trace_id);
    for timing in ["embed_ms", "search_ms", "rank_ms"] {
        assert!(
            attribute(&search.attributes, timing).is_some(),
            "{timing} missing from {:?}",
            search.attributes
        );
    }
    // Only wenda's own spans: none from the exporter's gRPC client.
    assert!(
        spans.iter().all(|(_, s)| !s.name.starts_with("h2")
            && !s.name.contains("Connection")
            && !s.name.contains("poll")),
        "{names:?}"
    );
}
