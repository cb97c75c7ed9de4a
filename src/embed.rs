//! Embeddings: multilingual-e5-small on ONNX Runtime through fastembed,
//! loaded from provisioned files (never from a hub), owned by one thread fed
//! by a channel so async callers never block the runtime.
//!
//! The e5 conventions live here: `query: ` / `passage: ` prefixes, mean
//! pooling, L2 normalisation, 512-token truncation reported to the caller.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tracing::{Span, debug, info};

use crate::error::{Error, Result};
use crate::ingest::TokenCounter;

/// Which e5 prefix a text gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmbedKind {
    Query,
    Passage,
}

/// The files of a model, described by its manifest in `models/`.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelManifest {
    pub name: String,
    pub dimension: usize,
    pub max_tokens: usize,
    pub query_prefix: String,
    pub passage_prefix: String,
    /// File name -> sha256, hex.
    pub files: std::collections::BTreeMap<String, String>,
}

impl ModelManifest {
    /// A short id of the exact model files: changes when any file changes.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        for (file, sha) in &self.files {
            h.update(file.as_bytes());
            h.update(sha.as_bytes());
        }
        hex::encode(&h.finalize()[..8])
    }

    fn prefix(&self, kind: EmbedKind) -> &str {
        match kind {
            EmbedKind::Query => &self.query_prefix,
            EmbedKind::Passage => &self.passage_prefix,
        }
    }
}

/// Where the model and ONNX Runtime are, and how to run them.
#[derive(Debug, Clone)]
pub struct EmbedderConfig {
    /// The `models/` folder: `<models>/<model>.toml`, `<models>/<model>/`, `<models>/onnxruntime/`.
    pub models_dir: PathBuf,
    /// Model name as in the manifest file name, e.g. `multilingual-e5-small`.
    pub model: String,
    /// ONNX Runtime intra-op threads; 0 means one per core.
    pub threads: usize,
    /// Most texts run through the model at once.
    pub max_batch: usize,
    /// Path of `libonnxruntime.so`; defaults to `<models>/onnxruntime/libonnxruntime.so`.
    pub onnxruntime_lib: Option<PathBuf>,
    /// Check model files against the manifest's sha256 values. Off for a
    /// model dropped in by hand (e.g. the official Hugging Face export).
    pub verify_files: bool,
}

impl EmbedderConfig {
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        Self {
            models_dir: models_dir.into(),
            model: "multilingual-e5-small".into(),
            threads: 0,
            max_batch: 32,
            onnxruntime_lib: None,
            verify_files: true,
        }
    }

    fn manifest_path(&self) -> PathBuf {
        self.models_dir.join(format!("{}.toml", self.model))
    }

    fn model_dir(&self) -> PathBuf {
        self.models_dir.join(&self.model)
    }

    fn ort_lib(&self) -> PathBuf {
        self.onnxruntime_lib
            .clone()
            .unwrap_or_else(|| self.models_dir.join("onnxruntime/libonnxruntime.so"))
    }

    /// Reads and checks the manifest and the model files (sha256, cached by
    /// size and mtime so a restart does not re-hash 470 MB).
    pub fn verified_manifest(&self) -> Result<ModelManifest> {
        let path = self.manifest_path();
        let text = std::fs::read_to_string(&path).map_err(|e| missing(&path, &e.to_string()))?;
        let manifest: ModelManifest = toml::from_str(&text)
            .map_err(|e| Error::Model(format!("{}: invalid manifest: {e}", path.display())))?;
        for (file, sha) in &manifest.files {
            let path = self.model_dir().join(file);
            if self.verify_files {
                verify_file(&path, sha)?;
            } else if !path.exists() {
                return Err(missing(&path, "not found"));
            }
        }
        Ok(manifest)
    }
}

fn missing(path: &Path, why: &str) -> Error {
    Error::Model(format!(
        "{}: {why}; run `make setup` to provision the model",
        path.display()
    ))
}

/// Checks a file's sha256, trusting a stamp written by an earlier check of
/// the same size and modification time.
fn verify_file(path: &Path, expected: &str) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| missing(path, &e.to_string()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default();
    let stamp = format!("{expected} {} {}", meta.len(), mtime.as_nanos());
    let stamp_path = path.with_file_name(format!(
        ".{}.verified",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    if std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    let mut file = std::fs::File::open(path).map_err(|e| missing(path, &e.to_string()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| missing(path, &e.to_string()))?;
    let actual = hex::encode(hasher.finalize());
    if actual != expected {
        return Err(missing(
            path,
            "corrupt (sha256 does not match the manifest)",
        ));
    }
    // Best effort: a read-only models folder just means hashing next time.
    let _ = std::fs::write(&stamp_path, stamp);
    Ok(())
}

/// One embedded text.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedText {
    /// L2-normalised.
    pub vector: Vec<f32>,
    /// Tokens the model saw (prefix and special tokens included, after truncation).
    pub tokens: u32,
    /// The text was longer than the model's limit and was cut.
    pub truncated: bool,
}

/// The synchronous model behind the embedder thread.
pub trait EmbedBackend: Send + 'static {
    /// Embeds already-prefixed texts.
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
    /// Tokens of an already-prefixed text, special tokens included, untruncated.
    fn count_tokens(&self, text: &str) -> usize;
}

struct FastembedBackend {
    model: fastembed::TextEmbedding,
    counter: tokenizers::Tokenizer,
    max_batch: usize,
}

impl EmbedBackend for FastembedBackend {
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.model
            .embed(texts, Some(self.max_batch))
            .map_err(|e| Error::Model(format!("embedding failed: {e}")))
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.counter
            .encode(text, true)
            .map(|e| e.len())
            .unwrap_or(0)
    }
}

/// Counts model tokens with the model's own tokenizer, for the chunker.
pub struct TokenizerCounter(tokenizers::Tokenizer);

impl TokenizerCounter {
    /// Loads `tokenizer.json` of the configured model, without truncation.
    pub fn load(config: &EmbedderConfig) -> Result<Self> {
        let path = config.model_dir().join("tokenizer.json");
        let mut tokenizer =
            tokenizers::Tokenizer::from_file(&path).map_err(|e| missing(&path, &e.to_string()))?;
        tokenizer
            .with_truncation(None)
            .map_err(|e| Error::Model(e.to_string()))?;
        tokenizer.with_padding(None);
        Ok(Self(tokenizer))
    }
}

impl TokenCounter for TokenizerCounter {
    fn count(&self, text: &str) -> usize {
        self.0.encode(text, false).map(|e| e.len()).unwrap_or(0)
    }
}

fn load_fastembed(config: &EmbedderConfig, manifest: &ModelManifest) -> Result<FastembedBackend> {
    let lib = config.ort_lib();
    if !lib.exists() {
        return Err(missing(&lib, "ONNX Runtime library not found"));
    }
    let environment = ort::init_from(&lib)
        .map_err(|e| missing(&lib, &format!("cannot load ONNX Runtime: {e}")))?
        .with_name("wenda")
        .build()
        .map_err(|e| Error::Model(format!("cannot start ONNX Runtime: {e}")))?;
    let dir = config.model_dir();
    let read = |name: &str| -> Result<Vec<u8>> {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| missing(&path, &e.to_string()))
    };
    let files = fastembed::TokenizerFiles {
        tokenizer_file: read("tokenizer.json")?,
        config_file: read("config.json")?,
        special_tokens_map_file: read("special_tokens_map.json")?,
        tokenizer_config_file: read("tokenizer_config.json")?,
    };
    let model = fastembed::UserDefinedEmbeddingModel::new(read("model.onnx")?, files)
        .with_pooling(fastembed::Pooling::Mean);
    let mut options = fastembed::InitOptionsUserDefined::new()
        .with_environment(environment)
        .with_max_length(manifest.max_tokens);
    if config.threads > 0 {
        options = options.with_intra_threads(config.threads);
    }
    let model =
        fastembed::TextEmbedding::try_new_from_user_defined(model, options).map_err(|e| {
            Error::Model(format!(
                "{}: cannot load model: {e}; run `make setup`",
                dir.join("model.onnx").display()
            ))
        })?;
    let mut counter = model.tokenizer.clone();
    counter
        .with_truncation(None)
        .map_err(|e| Error::Model(e.to_string()))?;
    counter.with_padding(None);
    Ok(FastembedBackend {
        model,
        counter,
        max_batch: config.max_batch,
    })
}

struct Job {
    texts: Vec<String>,
    kind: EmbedKind,
    span: Span,
    reply: oneshot::Sender<Result<Vec<EmbeddedText>>>,
}

/// Handle to the embedder thread. Cheap to clone.
#[derive(Clone)]
pub struct Embedder {
    jobs: mpsc::SyncSender<Job>,
    manifest: Arc<ModelManifest>,
}

impl Embedder {
    /// Verifies and loads the model on its own thread; returns once it is ready.
    pub fn start(config: EmbedderConfig) -> Result<Self> {
        let manifest = config.verified_manifest()?;
        let started = std::time::Instant::now();
        let backend = load_fastembed(&config, &manifest)?;
        info!(model = %manifest.name, ms = started.elapsed().as_millis() as u64, "model loaded");
        Ok(Self::with_backend(backend, manifest, config.max_batch))
    }

    /// Runs any backend (tests use a small deterministic one).
    pub fn with_backend(
        backend: impl EmbedBackend,
        manifest: ModelManifest,
        max_batch: usize,
    ) -> Self {
        let (jobs, rx) = mpsc::sync_channel::<Job>(1024);
        let manifest = Arc::new(manifest);
        let worker_manifest = manifest.clone();
        std::thread::Builder::new()
            .name("wenda-embedder".into())
            .spawn(move || worker(backend, worker_manifest, rx, max_batch.max(1)))
            .expect("spawning the embedder thread");
        Self { jobs, manifest }
    }

    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// Embeds texts; waits on the embedder thread without blocking the runtime.
    pub async fn embed(&self, texts: Vec<String>, kind: EmbedKind) -> Result<Vec<EmbeddedText>> {
        let reply = self.submit(texts, kind)?;
        reply
            .await
            .map_err(|_| Error::Unavailable("embedder stopped".into()))?
    }

    /// Embeds texts from synchronous code (not from inside the async runtime).
    pub fn embed_blocking(&self, texts: Vec<String>, kind: EmbedKind) -> Result<Vec<EmbeddedText>> {
        let reply = self.submit(texts, kind)?;
        reply
            .blocking_recv()
            .map_err(|_| Error::Unavailable("embedder stopped".into()))?
    }

    /// Queues a job; the receiver gets its result.
    fn submit(
        &self,
        texts: Vec<String>,
        kind: EmbedKind,
    ) -> Result<oneshot::Receiver<Result<Vec<EmbeddedText>>>> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            texts,
            kind,
            span: Span::current(),
            reply,
        };
        self.jobs.try_send(job).map(|()| rx).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => Error::Overloaded("embedding queue is full".into()),
            mpsc::TrySendError::Disconnected(_) => Error::Unavailable("embedder stopped".into()),
        })
    }
}

/// The owner thread: takes jobs, gathers those already waiting into one
/// model run (micro-batching concurrent queries), and replies to each.
fn worker(
    mut backend: impl EmbedBackend,
    manifest: Arc<ModelManifest>,
    rx: mpsc::Receiver<Job>,
    max_batch: usize,
) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut total = jobs[0].texts.len();
        while total < max_batch {
            match rx.recv_timeout(Duration::ZERO) {
                Ok(job) => {
                    total += job.texts.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        // Jobs whose caller went away (deadline, disconnect) cost nothing.
        jobs.retain(|j| !j.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let prefixed: Vec<String> = jobs
            .iter()
            .flat_map(|j| {
                j.texts
                    .iter()
                    .map(|t| format!("{}{t}", manifest.prefix(j.kind)))
            })
            .collect();
        let _enter = jobs[0].span.enter();
        debug!(jobs = jobs.len(), texts = prefixed.len(), "embedding batch");
        let started = std::time::Instant::now();
        let result = backend.embed(&prefixed);
        metrics::histogram!("wenda_embed_duration_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("wenda_embed_batch_size").record(prefixed.len() as f64);
        drop(_enter);
        match result {
            Ok(vectors) => {
                let mut vectors = vectors.into_iter();
                let mut texts = prefixed.iter();
                for job in jobs {
                    let out: Vec<EmbeddedText> = job
                        .texts
                        .iter()
                        .map(|_| {
                            let text = texts.next().expect("one prefixed text per input");
                            let count = backend.count_tokens(text);
                            EmbeddedText {
                                vector: vectors.next().unwrap_or_default(),
                                tokens: count.min(manifest.max_tokens) as u32,
                                truncated: count > manifest.max_tokens,
                            }
                        })
                        .collect();
                    let _ = job.reply.send(Ok(out));
                }
            }
            Err(err) => {
                for job in jobs {
                    let _ = job.reply.send(Err(err.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A small deterministic backend for fast unit tests of the layers above.
    use super::*;

    /// Hashes character bigrams into a normalised vector: texts sharing
    /// words or characters are close, which is all engine tests need.
    pub struct BigramBackend;

    pub const DIM: usize = 64;

    pub fn bigram_vector(text: &str) -> Vec<f32> {
        let chars: Vec<char> = text
            .to_lowercase()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let mut v = vec![0f32; DIM];
        for w in chars.windows(2) {
            let h = (w[0] as u64)
                .wrapping_mul(31)
                .wrapping_add(w[1] as u64)
                .wrapping_mul(0x9E3779B97F4A7C15);
            v[(h >> 58) as usize % DIM] += 1.0;
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
        v.iter().map(|x| x / norm).collect()
    }

    impl EmbedBackend for BigramBackend {
        fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
            Ok(texts
                .iter()
                .map(|t| bigram_vector(t.split_once(": ").map_or(t.as_str(), |x| x.1)))
                .collect())
        }
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count() + 2
        }
    }

    pub fn manifest() -> ModelManifest {
        ModelManifest {
            name: "test/bigram".into(),
            dimension: DIM,
            max_tokens: 512,
            query_prefix: "query: ".into(),
            passage_prefix: "passage: ".into(),
            files: Default::default(),
        }
    }

    pub fn embedder() -> Embedder {
        Embedder::with_backend(BigramBackend, manifest(), 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_jobs_each_get_their_own_vectors() {
        let embedder = testing::embedder();
        let a = embedder.embed(vec!["hello world".into()], EmbedKind::Query);
        let b = embedder.embed(
            vec!["你好世界".into(), "xin chào".into()],
            EmbedKind::Passage,
        );
        let (a, b) = tokio::join!(a, b);
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.len(), 1);
        assert_eq!(b.len(), 2);
        assert_eq!(a[0].vector, testing::bigram_vector("hello world"));
        assert_eq!(b[1].vector, testing::bigram_vector("xin chào"));
        assert!(!a[0].truncated);
    }

    #[test]
    fn missing_model_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = EmbedderConfig::new(dir.path())
            .verified_manifest()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("multilingual-e5-small.toml") && err.contains("make setup"),
            "{err}"
        );
    }

    #[test]
    fn corrupt_model_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("m")).unwrap();
        std::fs::write(dir.path().join("m/model.onnx"), b"garbage").unwrap();
        std::fs::write(
            dir.path().join("m.toml"),
            "name='m'\ndimension=4\nmax_tokens=8\nquery_prefix='q: '\npassage_prefix='p: '\n[files]\n'model.onnx'='00'\n",
        )
        .unwrap();
        let mut config = EmbedderConfig::new(dir.path());
        config.model = "m".into();
        let err = config.verified_manifest().unwrap_err().to_string();
        assert!(
            err.contains("model.onnx") && err.contains("corrupt") && err.contains("make setup"),
            "{err}"
        );
    }
}
