//! Embeddings: multilingual-e5-small on ONNX Runtime through fastembed,
//! loaded from provisioned files (never from a hub), owned by one thread fed
//! by a channel so async callers never block the runtime.
//!
//! The e5 conventions live here: `query: ` / `passage: ` prefixes, mean
//! pooling, L2 normalisation, 512-token truncation reported to the caller.
//!
//! - [`model`]: the model's manifest, its files and their checks.
//! - [`onnx`]: ONNX Runtime, the session, the tokenizer, the token counter.
//! - [`centroids`]: per-language centring of the vectors.

mod centroids;
mod model;
mod onnx;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::{Span, debug, info};

use crate::error::{Error, Result};

pub use centroids::LanguageCentroids;
pub use model::{EmbedderConfig, ModelManifest, OnnxFiles, Precision};
pub use onnx::TokenizerCounter;

/// Which e5 prefix a text gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum EmbedKind {
    Query,
    Passage,
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
    /// Tokens of an already-prefixed text, special tokens included: its
    /// untruncated count, or at least a count above the model's limit when
    /// the model truncates it.
    fn count_tokens(&self, text: &str) -> usize;
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
        Self::start_with_counter(config).map(|(embedder, _)| embedder)
    }

    /// `start`, also returning a token counter for the chunker built from
    /// the same tokenizer load.
    pub fn start_with_counter(config: EmbedderConfig) -> Result<(Self, TokenizerCounter)> {
        let manifest = config.verified_manifest()?;
        let started = std::time::Instant::now();
        let (backend, counter) = onnx::load_fastembed(&config, &manifest)?;
        info!(
            model = %manifest.name,
            precision = %manifest.precision,
            file = manifest.onnx_file(),
            ms = started.elapsed().as_millis() as u64,
            "model loaded"
        );
        Ok((
            Self::with_backend(backend, manifest, config.max_batch),
            counter,
        ))
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
