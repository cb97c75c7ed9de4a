//! Shared set-up: one model for the whole test binary, engines over temporary
//! data directories, and the real server on port 0 with a connected client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tokio::sync::oneshot;
use tonic::transport::Channel;
use wenda::embed::{Embedder, EmbedderConfig, TokenizerCounter};
use wenda::engine::{Engine, EngineConfig};
use wenda::lexical::Lexicon;
use wenda::proto::retrieval_client::RetrievalClient;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn models_dir() -> PathBuf {
    std::env::var_os("WENDA_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("models"))
}

pub fn corpus_dir() -> PathBuf {
    std::env::var_os("WENDA_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/corpus"))
}

pub fn python() -> PathBuf {
    std::env::var_os("WENDA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"))
}

pub fn venv_bin(name: &str) -> PathBuf {
    python().parent().expect("venv bin dir").join(name)
}

pub fn wenda_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wenda"))
}

pub fn embedder_config() -> EmbedderConfig {
    let mut c = EmbedderConfig::new(models_dir());
    // Tests run in parallel: leave a core to the others.
    c.threads = 1;
    c
}

/// The real model, loaded once for all tests.
pub fn embedder() -> Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER
        .get_or_init(|| {
            Embedder::start(embedder_config()).expect("model provisioned by `make setup`")
        })
        .clone()
}

pub fn counter() -> Arc<TokenizerCounter> {
    static COUNTER: OnceLock<Arc<TokenizerCounter>> = OnceLock::new();
    COUNTER
        .get_or_init(|| Arc::new(TokenizerCounter::load(&embedder_config()).expect("tokenizer")))
        .clone()
}

/// The CC-CEDICT lexicon provisioned by `make setup`, loaded once.
pub fn lexicon() -> Arc<Lexicon> {
    static LEXICON: OnceLock<Arc<Lexicon>> = OnceLock::new();
    LEXICON
        .get_or_init(|| {
            Arc::new(Lexicon::load(&models_dir().join("lexicon/cc-cedict.txt")).expect("lexicon"))
        })
        .clone()
}

/// The configuration `wenda serve` uses by default, over `data_dir`.
pub fn default_config(data_dir: &Path) -> EngineConfig {
    let mut config = EngineConfig::new(data_dir);
    config.lexicon = Some(lexicon());
    config
}

/// Opens an engine over `data_dir`, syncing `corpus` when given.
pub async fn engine(data_dir: &Path, corpus: Option<&Path>) -> Arc<Engine> {
    engine_with(default_config(data_dir), corpus).await
}

/// Like [`engine`], with a configuration of the caller's.
pub async fn engine_with(config: EngineConfig, corpus: Option<&Path>) -> Arc<Engine> {
    let engine = Engine::open(config, embedder(), counter())
        .await
        .expect("engine opens");
    if let Some(corpus) = corpus {
        engine
            .sync_corpus(corpus, &|_, _| {})
            .await
            .expect("corpus syncs");
    }
    Arc::new(engine)
}

/// An engine over the default corpus, built once and shared (read-only use).
pub fn corpus_engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            // Built on its own runtime: the engine outlives any one test's runtime.
            std::thread::spawn(|| {
                let dir = tempfile::tempdir().expect("tempdir").keep();
                let rt = tokio::runtime::Runtime::new().expect("runtime");
                rt.block_on(engine(&dir, Some(&corpus_dir())))
            })
            .join()
            .expect("corpus engine")
        })
        .clone()
}

/// The real server on 127.0.0.1:0; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestServer {
    pub async fn start(engine: Arc<Engine>) -> Self {
        Self::start_with(engine, wenda::grpc::ServeOptions::default()).await
    }

    pub async fn start_with(engine: Arc<Engine>, options: wenda::grpc::ServeOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(wenda::grpc::run(
            listener,
            async move { Ok(engine) },
            async {
                let _ = stopped.await;
            },
            options,
        ));
        Self {
            addr,
            stop: Some(stop),
        }
    }

    pub async fn channel(&self) -> Channel {
        let url = format!("http://{}", self.addr);
        for _ in 0..100 {
            if let Ok(channel) = Channel::from_shared(url.clone()).unwrap().connect().await {
                return channel;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("server at {url} did not accept connections");
    }

    pub async fn client(&self) -> RetrievalClient<Channel> {
        RetrievalClient::new(self.channel().await)
    }
}

/// The chars `start..end` of a text.
pub fn char_slice(text: &str, start: usize, end: usize) -> String {
    text.chars()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect()
}

/// True when the non-whitespace chars of `needle` appear in order in `hay`.
pub fn is_subsequence_ignoring_whitespace(needle: &str, hay: &str) -> bool {
    let mut hay = hay.chars();
    needle
        .chars()
        .filter(|c| !c.is_whitespace())
        .all(|c| hay.any(|h| h == c))
}

/// The fields an `INVALID_ARGUMENT` status names, in its order.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// A small deterministic generator (xorshift64) for randomised tests:
/// each call gives a number below its argument.
pub fn xorshift(seed: u64) -> impl FnMut(usize) -> usize {
    let mut state = seed;
    move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    }
}

/// Every document's id and content hash, over all pages of ListDocuments.
pub async fn all_documents(
    client: &mut RetrievalClient<Channel>,
) -> std::collections::BTreeSet<(String, String)> {
    let mut out = std::collections::BTreeSet::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_documents(wenda::proto::ListDocumentsRequest {
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(page.documents.into_iter().map(|d| (d.id, d.content_hash)));
        if page.next_page_token.is_empty() {
            return out;
        }
        page_token = page.next_page_token;
    }
}

/// The cited spans (document, start, end) of the first `top_k` passages
/// for each question, in order.
pub async fn cited_spans(
    client: &mut RetrievalClient<Channel>,
    questions: &[&str],
    top_k: u32,
) -> Vec<Vec<(String, u64, u64)>> {
    let mut out = Vec::new();
    for q in questions {
        let r = client
            .search(wenda::proto::SearchRequest {
                query: q.to_string(),
                top_k,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        out.push(
            r.passages
                .iter()
                .map(|p| {
                    let c = p.citation.as_ref().unwrap();
                    (c.doc_id.clone(), c.char_start, c.char_end)
                })
                .collect(),
        );
    }
    out
}
