//! The `wenda` binary as users run it: `serve` on port 0 with outside
//! clients (grpcurl, Python grpcio, `wenda ask`, `examples/client.rs`),
//! graceful SIGTERM, and SIGKILL during indexing.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

/// A `wenda serve` process; killed when dropped.
pub(crate) struct ServeProcess {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    metrics: SocketAddr,
    /// The HTTP API's address, when started with `--http-listen`.
    pub(crate) http: Option<SocketAddr>,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServeProcess {
    fn start_with(data_dir: &Path, corpus: Option<&Path>) -> Self {
        Self::start_with_args(data_dir, corpus, &[])
    }

    /// `wenda serve` with `extra` flags after the usual ones.
    pub(crate) fn start_with_args(data_dir: &Path, corpus: Option<&Path>, extra: &[&str]) -> Self {
        let mut cmd = Command::new(common::wenda_bin());
        cmd.args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--models",
        ])
        .arg(common::models_dir())
        .arg("--data-dir")
        .arg(data_dir);
        if let Some(corpus) = corpus {
            cmd.arg("--corpus").arg(corpus);
        }
        cmd.args(extra);
        let with_http = extra.contains(&"--http-listen");
        let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(message) = v["fields"]["message"].as_str()
                    && message.ends_with("listening")
                {
                    let addr = v["fields"]["addr"].as_str().unwrap_or_default().to_string();
                    let _ = tx.send((message.to_string(), addr));
                }
            }
        });
        let mut addrs = std::collections::HashMap::new();
        let wanted = if with_http { 3 } else { 2 };
        while addrs.len() < wanted {
            let (message, a) = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("server logs its addresses");
            addrs.insert(message, a.parse::<SocketAddr>().unwrap());
        }
        Self {
            child,
            addr: addrs["listening"],
            metrics: addrs["metrics listening"],
            http: addrs.get("http listening").copied(),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// One request written as raw HTTP/1.1 with `Connection: close`; the whole
/// response, head and body.
fn raw_http(addr: SocketAddr, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

pub(crate) async fn wait_serving(url: &str) {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut saw_not_serving = false;
    while Instant::now() < deadline {
        if let Ok(channel) = tonic::transport::Channel::from_shared(url.to_string())
            .unwrap()
            .connect()
            .await
        {
            let mut client = HealthClient::new(channel);
            match client
                .check(HealthCheckRequest {
                    service: "wenda.v1.Retrieval".into(),
                })
                .await
            {
                Ok(r) if r.get_ref().status == 1 => return,
                Ok(_) => saw_not_serving = true,
                Err(_) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server never became SERVING (saw NOT_SERVING: {saw_not_serving})");
}

// Multi-threaded: the health client's connection task must keep running
// (and close) while this test blocks on child processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_clients_work_and_sigterm_shuts_down_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let server = ServeProcess::start_with_args(
        data.path(),
        Some(&common::corpus_dir()),
        &["--http-listen", "127.0.0.1:0"],
    );
    wait_serving(&server.url()).await;

    // grpcurl, through reflection (no proto files).
    let grpcurl = Command::new(common::venv_bin("grpcurl"))
        .args([
            "-plaintext",
            "-d",
            r#"{"query":"Who started OpenStack?","top_k":5}"#,
        ])
        .arg(server.addr.to_string())
        .arg("wenda.v1.Retrieval/Search")
        .output()
        .expect("grpcurl from `make setup`");
    assert!(
        grpcurl.status.success(),
        "{}",
        String::from_utf8_lossy(&grpcurl.stderr)
    );
    let response: serde_json::Value = serde_json::from_slice(&grpcurl.stdout).unwrap();
    let passages = response["passages"].as_array().unwrap();
    assert_eq!(passages.len(), 5);
    assert!(
        passages[0]["citation"]["source"]
            .as_str()
            .unwrap()
            .ends_with(".txt")
    );

    // A Python grpcio client with stubs generated from the proto.
    let python = Command::new(common::python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/client.py"))
        .args([
            "--server",
            &server.addr.to_string(),
            "--top-k",
            "3",
            "Ai là giám đốc điều hành của Linux Foundation?",
        ])
        .output()
        .unwrap();
    assert!(
        python.status.success(),
        "{}",
        String::from_utf8_lossy(&python.stderr)
    );
    let out = String::from_utf8(python.stdout).unwrap();
    assert!(out.contains("[1]") && out.contains(".txt"), "{out}");

    // The chatbot-backend example: a context block with numbered citations.
    let chatbot = Command::new(common::python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/chatbot_context.py"))
        .args([
            "--server",
            &server.addr.to_string(),
            "Who is the COO of the OpenInfra Foundation?",
        ])
        .output()
        .unwrap();
    assert!(
        chatbot.status.success(),
        "{}",
        String::from_utf8_lossy(&chatbot.stderr)
    );
    let out = String::from_utf8(chatbot.stdout).unwrap();
    assert!(
        out.contains("Context:\n[1] ") && out.contains("Sources:\n[1] "),
        "{out}"
    );
    // A question the articles do not answer: the example says so.
    let chatbot = Command::new(common::python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/chatbot_context.py"))
        .args([
            "--server",
            // The URL form, as every client takes it beside host:port.
            &server.url(),
            "How many legs does a spider have?",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8(chatbot.stdout).unwrap();
    assert!(
        chatbot.status.success() && out.contains("Not in the documents") && !out.contains("[1]"),
        "{out}"
    );

    // wenda ask --json.
    let ask = Command::new(common::wenda_bin())
        .args([
            "ask",
            "--json",
            "--server",
            &server.url(),
            "华为 FusionSphere 基于什么？",
        ])
        .output()
        .unwrap();
    assert!(
        ask.status.success(),
        "{}",
        String::from_utf8_lossy(&ask.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&ask.stdout).unwrap();
    assert!(!json["passages"].as_array().unwrap().is_empty());

    // Filters from the command line: `wenda ask --filter` and the Python
    // client's, on a document field every corpus file has.
    let only = "002_c765242a16c13cf0.txt";
    let filtered = Command::new(common::wenda_bin())
        .args(["ask", "--json", "--top-k", "8", "--server", &server.url()])
        .arg(format!("--filter=id={only}"))
        .arg("Who started OpenStack?")
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&filtered.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&filtered.stderr)));
    let passages = json["passages"].as_array().unwrap();
    assert!(!passages.is_empty());
    assert!(
        passages.iter().all(|p| p["citation"]["docId"] == only),
        "{json}"
    );
    let python = Command::new(common::python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/client.py"))
        .args(["--server", &server.addr.to_string(), "--top-k", "8"])
        .arg(format!("--filter=id={only}"))
        .arg("Who started OpenStack?")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&python.stdout);
    let cited: Vec<&str> = out.lines().filter(|l| l.starts_with('[')).collect();
    assert!(
        !cited.is_empty() && cited.iter().all(|l| l.contains(only)),
        "{out}"
    );

    // The HTTP API beside gRPC, as the README's curl lines use it.
    let http = server.http.expect("--http-listen was given");
    let body = r#"{"query": "Who started OpenStack?", "topK": 2}"#;
    let search = raw_http(
        http,
        &format!(
            "POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(
        search.starts_with("HTTP/1.1 200") && search.contains("\"citation\""),
        "{search}"
    );

    // Prometheus metrics on their own listener.
    let metrics = raw_http(
        server.metrics,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    for expected in [
        "wenda_requests_total{method=\"Search\",code=\"Ok\"}",
        "wenda_request_duration_seconds_bucket{method=\"Search\",code=\"Ok\"",
        "wenda_http_requests_total{route=\"POST /v1/search\",status=\"200\"}",
        "wenda_passages{language=\"zh\"}",
        // Batch sizes in counts of texts, not in seconds-style buckets.
        "wenda_embed_batch_size_bucket{le=\"1\"}",
        "wenda_embed_batch_size_bucket{le=\"256\"}",
        "wenda_build_info{version=",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from:\n{metrics}"
        );
    }
    assert!(!metrics.contains("wenda_embed_batch_size_bucket{le=\"0.001\"}"));
    // Every metric has its # HELP line.
    for line in metrics.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split_whitespace().nth(2).unwrap();
        assert!(
            metrics.contains(&format!("# HELP {name} ")),
            "no # HELP for {name}:\n{metrics}"
        );
    }

    // SIGTERM: NOT_SERVING, drain, exit 0.
    let mut server = server;
    let (_, status) = terminate(&mut server, Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
}

/// Sends SIGTERM and returns how long the process took to exit (and its
/// status), or panics after `limit`.
pub(crate) fn terminate(
    server: &mut ServeProcess,
    limit: Duration,
) -> (Duration, std::process::ExitStatus) {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return (started.elapsed(), status);
        }
        assert!(
            started.elapsed() < limit,
            "server did not stop within {limit:?} of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A huge ingest abandoned by its client stops chunking, and SIGTERM right
/// after ends the process within the drain timeout and the shutdown grace:
/// before, 13 × 5 MB in one request kept a core chunking for minutes and
/// SIGTERM waited for it past 75 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_huge_ingest_stops_and_sigterm_exits_promptly() {
    let data = tempfile::tempdir().unwrap();
    let mut server = ServeProcess::start_with(data.path(), None);
    wait_serving(&server.url()).await;
    let mut client = wenda::proto::retrieval_client::RetrievalClient::connect(server.url())
        .await
        .unwrap()
        .max_encoding_message_size(usize::MAX);
    // One sentence of a million words: the chunker's slowest case (each
    // of these alone took minutes to chunk).
    let documents = (0..4)
        .map(|i| wenda::proto::Document {
            id: format!("huge-{i}"),
            text: "word ".repeat(1_000_000),
            ..Default::default()
        })
        .collect();
    let mut request = tonic::Request::new(wenda::proto::IngestRequest { documents });
    request.set_timeout(Duration::from_secs(3));
    let err = client.ingest(request).await.unwrap_err();
    assert!(
        matches!(
            err.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{err:?}"
    );
    // Drain (10 s) and the blocking-work grace (5 s) bound the exit.
    let (took, status) = terminate(&mut server, Duration::from_secs(40));
    assert!(status.success(), "exit status {status} after {took:?}");
    let engine = common::engine(data.path(), None).await;
    assert_eq!(engine.info().documents, 0, "an abandoned ingest was stored");
}

/// Document ids and content hashes, as a reopened engine sees them.
async fn stored_state(data: &Path) -> Vec<(String, String, usize)> {
    let engine = common::engine(data, None).await;
    let (docs, _) = engine.list_documents(1000, "", "").unwrap();
    let mut out = Vec::new();
    for d in docs {
        let view = engine.get_document(&d.id).unwrap();
        // Store and index agree: every passage of every document is there.
        assert_eq!(
            view.passages.len(),
            d.chunks as usize,
            "{}: passages missing",
            d.id
        );
        out.push((d.id, d.content_hash, view.passages.len()));
    }
    let info = engine.info();
    assert_eq!(
        info.passages as usize,
        out.iter().map(|d| d.2).sum::<usize>(),
        "orphan passages"
    );
    out
}

#[tokio::test]
async fn sigkill_during_indexing_leaves_the_old_or_the_new_index_never_a_mix() {
    let corpus = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let files: Vec<_> = std::fs::read_dir(common::corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // Old state: two articles.
    for f in &files[..2] {
        std::fs::copy(f, corpus.path().join(f.file_name().unwrap())).unwrap();
    }
    let index = |data: &Path| {
        Command::new(common::wenda_bin())
            .args(["index", "--threads", "1", "--models"])
            .arg(common::models_dir())
            .arg("--corpus")
            .arg(corpus.path())
            .arg("--data-dir")
            .arg(data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    assert!(index(data.path()).wait().unwrap().success());
    let old = stored_state(data.path()).await;
    assert_eq!(old.len(), 2);

    // New state: all five, one of the old ones changed.
    for f in &files[2..] {
        std::fs::copy(f, corpus.path().join(f.file_name().unwrap())).unwrap();
    }
    let changed = corpus.path().join(files[0].file_name().unwrap());
    let mut text = std::fs::read_to_string(&changed).unwrap();
    text.push_str("\n\nA sentence added later.");
    std::fs::write(&changed, text).unwrap();

    let mut saw_old = 0;
    for delay_ms in [200u64, 900, 1600, 2300, 3000, 3700] {
        let mut child = index(data.path());
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let state = stored_state(data.path()).await;
        if state == old {
            saw_old += 1;
        } else {
            // Anything else must be the complete new state.
            assert_eq!(
                state.len(),
                5,
                "a mix of old and new after SIGKILL at {delay_ms} ms: {state:?}"
            );
            assert!(state.iter().all(|(id, _, n)| *n > 0 && !id.is_empty()));
            break;
        }
    }
    assert!(
        saw_old > 0,
        "no kill landed before the commit: the test proved nothing"
    );
    assert!(index(data.path()).wait().unwrap().success());
    let new = stored_state(data.path()).await;
    assert_eq!(new.len(), 5);
    assert_ne!(new, old);
}

/// The document of the first passage a lexical search finds.
pub(crate) async fn top_lexical_doc(
    client: &mut wenda::proto::retrieval_client::RetrievalClient<tonic::transport::Channel>,
    query: &str,
) -> Option<String> {
    let hits = client
        .search(wenda::proto::SearchRequest {
            query: query.into(),
            top_k: 1,
            mode: wenda::proto::SearchMode::Lexical as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    hits.passages
        .first()
        .map(|p| p.citation.as_ref().unwrap().doc_id.clone())
}

/// Every document's summary (the tests stay under one page).
pub(crate) async fn list_documents(
    client: &mut wenda::proto::retrieval_client::RetrievalClient<tonic::transport::Channel>,
) -> wenda::proto::ListDocumentsResponse {
    client
        .list_documents(wenda::proto::ListDocumentsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

fn marker_document(n: usize) -> wenda::proto::Document {
    wenda::proto::Document {
        id: format!("stream/doc-{n}"),
        text: format!(
            "Bản ghi số {n} có mã marker{n}x. 这是第 {n} 份文件，内容用于测试。Record {n} checks that acknowledged writes survive a crash."
        ),
        ..Default::default()
    }
}

/// Kills the server with SIGKILL at random moments during a stream of
/// ingests, restarts it, and checks: every acknowledged document is there
/// and searchable, no document is half there, store and index agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_stream_of_ingests_loses_nothing_acknowledged() {
    use wenda::proto::{self, retrieval_client::RetrievalClient};
    let data = tempfile::tempdir().unwrap();
    let mut acknowledged: Vec<usize> = Vec::new();
    let mut next = 0usize;
    let mut seed = 0x2545F4914F6CDD1Du64;
    let rounds = 4;
    for round in 0..rounds {
        let mut server = ServeProcess::start_with(data.path(), None);
        wait_serving(&server.url()).await;
        let mut client = RetrievalClient::connect(server.url()).await.unwrap();
        // A random kill moment, 0.3 to 1.8 s into the stream.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = Duration::from_millis(300 + seed % 1500);
        let pid = server.child.id();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(kill_after);
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        });
        loop {
            let n = next;
            next += 1;
            match client
                .ingest(proto::IngestRequest {
                    documents: vec![marker_document(n)],
                })
                .await
            {
                Ok(_) => acknowledged.push(n),
                Err(_) => break, // the server is gone
            }
        }
        killer.join().unwrap();
        let _ = server.child.wait();
        eprintln!(
            "round {round}: {} acknowledged so far, killed after {kill_after:?}",
            acknowledged.len()
        );
    }
    assert!(
        !acknowledged.is_empty(),
        "no ingest was acknowledged before a kill"
    );

    // Restart and check.
    let server = ServeProcess::start_with(data.path(), None);
    wait_serving(&server.url()).await;
    let mut client = RetrievalClient::connect(server.url()).await.unwrap();
    for &n in &acknowledged {
        let id = format!("stream/doc-{n}");
        let doc = client
            .get_document(proto::GetDocumentRequest { id: id.clone() })
            .await
            .unwrap_or_else(|e| panic!("{id} lost: {e}"))
            .into_inner();
        assert_eq!(doc.passages.len() as u32, doc.document.unwrap().chunks);
        assert_eq!(
            top_lexical_doc(&mut client, &format!("marker{n}x")).await,
            Some(id.clone()),
            "{id} not searchable"
        );
    }
    // Nothing half there: every stored document is complete, and the
    // index holds exactly the stored passages.
    let list = list_documents(&mut client).await;
    let mut passages = 0u64;
    for d in &list.documents {
        let doc = client
            .get_document(proto::GetDocumentRequest { id: d.id.clone() })
            .await
            .unwrap()
            .into_inner();
        assert!(
            d.chunks > 0 && doc.passages.len() as u32 == d.chunks,
            "{} is incomplete",
            d.id
        );
        passages += d.chunks as u64;
    }
    let info = client
        .info(proto::InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.passages, passages);
    assert!(list.documents.len() >= acknowledged.len());
    eprintln!(
        "{} acknowledged, {} stored, {rounds} kills, 0 lost",
        acknowledged.len(),
        list.documents.len()
    );
}

#[test]
fn tokens_from_the_environment_are_read_and_checked() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(common::wenda_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--models"])
        .arg(common::models_dir())
        .arg("--data-dir")
        .arg(data.path())
        .env("WENDA_ADMIN_TOKENS", "a-good-admin-token-123,short")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WENDA_ADMIN_TOKENS") && !stderr.contains("a-good-admin-token-123"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));

    // Set but empty: refused, rather than read as "no access control".
    for empty in [" ", ","] {
        let output = Command::new(common::wenda_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--models"])
            .arg(common::models_dir())
            .arg("--data-dir")
            .arg(data.path())
            .env("WENDA_ADMIN_TOKENS", empty)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{empty:?}: {stderr}");
        assert!(
            stderr.contains("WENDA_ADMIN_TOKENS") && stderr.contains("holds no token"),
            "{stderr}"
        );
    }
}

/// Builds an example with this test binary's profile and features and
/// returns its path. `cargo test` builds the examples only when no target
/// is selected (`--test integration` selects one), so the test builds it
/// itself; when it is already built this is a quick freshness check.
fn example_bin(name: &str) -> PathBuf {
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args([
            "build",
            "--locked",
            "--message-format=json-render-diagnostics",
        ])
        .args(["--example", name, "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    // Cargo gives the test process its package's variables (CARGO_PKG_NAME,
    // CARGO_MANIFEST_DIR, ...). Build scripts that watch them (ring's does)
    // would see them change and rebuild half the tree, here and again in
    // the next ordinary build: the inner cargo gets the outer one's view.
    for (key, _) in std::env::vars_os() {
        if let Some(k) = key.to_str()
            && (k.starts_with("CARGO_PKG_")
                || matches!(
                    k,
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_MANIFEST_LINKS"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_BIN_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "CARGO_RUSTC_CURRENT_DIR"
                        | "OUT_DIR"
                ))
        {
            cargo.env_remove(&key);
        }
    }
    if !cfg!(debug_assertions) {
        cargo.arg("--release");
    }
    if cfg!(feature = "otel") {
        cargo.args(["--features", "otel"]);
    }
    let out = cargo.stderr(Stdio::inherit()).output().expect("run cargo");
    assert!(out.status.success(), "cargo build --example {name} failed");
    // Cargo says where the executable is (target dir, profile, platform).
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no executable for example {name}"))
}

/// `examples/client.rs`, built and run against the real server with bearer
/// tokens: without a token it fails with one line, with one it prints every
/// passage the server ranked, with its citation and highlights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_example_prints_cited_passages() {
    use wenda::proto::{self, retrieval_client::RetrievalClient};
    const TOKEN: &str = "rust-client-read-token-0123";
    let (client_bin, engine) = tokio::task::spawn_blocking(|| {
        let bin = example_bin("client");
        (bin, common::corpus_engine())
    })
    .await
    .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(wenda::grpc::run(
        listener,
        async move { Ok(engine) },
        async move {
            let _ = stopped.await;
        },
        wenda::grpc::ServeOptions {
            tokens: wenda::auth::Tokens::parse(&format!("read {TOKEN}\n")).unwrap(),
            ..Default::default()
        },
    ));

    let question = "Who is the COO of the OpenInfra Foundation?";
    // What the server answers, straight from a tonic client.
    let mut expected = tonic::Request::new(proto::SearchRequest {
        query: question.into(),
        top_k: 3,
        ..Default::default()
    });
    expected
        .metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let expected = RetrievalClient::connect(url.clone())
        .await
        .unwrap()
        .search(expected)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(expected.passages.len(), 3);

    let client_addr = addr.clone();
    let run = move |token: Option<&'static str>, extra: &'static [&'static str]| {
        // host:port, as every client takes it beside the URL form.
        let (client_bin, addr) = (client_bin.clone(), client_addr.clone());
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(client_bin);
            cmd.args(["--addr", &addr, "--top-k", "3"])
                .args(extra)
                .arg(question)
                .env_remove("WENDA_TOKEN");
            if let Some(token) = token {
                cmd.env("WENDA_TOKEN", token);
            }
            cmd.output().unwrap()
        })
    };

    let denied = run(None, &[]).await.unwrap();
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.starts_with("client: Unauthenticated: ") && stderr.lines().count() == 1,
        "{stderr}"
    );

    let answered = run(Some(TOKEN), &[]).await.unwrap();
    assert!(
        answered.status.success(),
        "{}",
        String::from_utf8_lossy(&answered.stderr)
    );
    let out = String::from_utf8(answered.stdout).unwrap();
    assert!(out.starts_with(&format!("Q: {question}  [en]")), "{out}");
    for p in &expected.passages {
        let c = p.citation.as_ref().unwrap();
        for line in [
            format!("[{}] {:.4}  {}", p.rank, p.score, c.title),
            format!(
                "    source: {}  language: {}  chars {}..{}",
                c.source, c.language, c.char_start, c.char_end
            ),
        ] {
            assert!(out.contains(&line), "{line:?} missing from:\n{out}");
        }
        for h in &p.highlights {
            let line = format!("    » {}  (chars {}..{})", h.text, h.char_start, h.char_end);
            assert!(out.contains(&line), "{line:?} missing from:\n{out}");
        }
    }
    // The citation points into the real file: the top passage is there.
    let top = expected.passages[0].citation.as_ref().unwrap();
    let original = std::fs::read_to_string(common::corpus_dir().join(&top.source)).unwrap();
    assert!(common::is_subsequence_ignoring_whitespace(
        &expected.passages[0].text,
        &common::char_slice(&original, top.char_start as usize, top.char_end as usize)
    ));
    assert!(out.contains(&format!(
        "    {}",
        expected.passages[0].text.replace('\n', "\n    ")
    )));
    // --filter and --explain.
    let only = "002_c765242a16c13cf0.txt";
    let filtered = run(
        Some(TOKEN),
        &["--filter=id=002_c765242a16c13cf0.txt", "--explain"],
    )
    .await
    .unwrap();
    let out = String::from_utf8(filtered.stdout).unwrap();
    let sources: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("    source: "))
        .collect();
    assert!(
        !sources.is_empty() && sources.iter().all(|l| l.contains(only)),
        "{out}"
    );
    assert!(out.contains("    dense Some("), "{out}");

    // `wenda ask` against the same server: host:port as well as a URL, the
    // token from --token or WENDA_TOKEN, a language filter.
    let ask = move |args: Vec<String>, token: Option<&'static str>| {
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(common::wenda_bin());
            cmd.arg("ask").args(args).env_remove("WENDA_TOKEN");
            if let Some(token) = token {
                cmd.env("WENDA_TOKEN", token);
            }
            cmd.output().unwrap()
        })
    };
    let refused = ask(vec!["--server".into(), addr.clone(), question.into()], None)
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && stderr.contains("missing bearer token")
            && !stderr.contains("running?"),
        "{stderr}"
    );
    for (args, token) in [
        (
            vec![
                "--server".to_string(),
                addr.clone(),
                "--token".into(),
                TOKEN.into(),
            ],
            None,
        ),
        (
            vec!["--server".to_string(), format!("http://{addr}")],
            Some(TOKEN),
        ),
    ] {
        let mut args = args;
        args.extend([
            "--json".into(),
            "--language".into(),
            "zh".into(),
            question.into(),
        ]);
        let answered = ask(args, token).await.unwrap();
        assert!(
            answered.status.success(),
            "{}",
            String::from_utf8_lossy(&answered.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&answered.stdout).unwrap();
        let passages = json["passages"].as_array().unwrap();
        assert!(!passages.is_empty());
        assert!(
            passages.iter().all(|p| p["citation"]["language"] == "zh"),
            "{json}"
        );
    }
    let malformed = ask(
        vec!["--server".into(), "http://[::1".into(), question.into()],
        None,
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&malformed.stderr);
    assert!(
        stderr.contains("not a server address") && !stderr.contains("running?"),
        "{stderr}"
    );
    let _ = stop.send(());
}
