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

/// A job being worked through: the texts embedded so far, or why it failed.
struct Pending {
    job: Job,
    done: Vec<EmbeddedText>,
    failed: Option<Error>,
}

impl Pending {
    fn new(job: Job) -> Self {
        Self {
            done: Vec::with_capacity(job.texts.len()),
            job,
            failed: None,
        }
    }

    fn remaining(&self) -> usize {
        self.job.texts.len() - self.done.len()
    }

    fn is_finished(&self) -> bool {
        self.failed.is_some() || self.remaining() == 0
    }
}

/// The owner thread. Each model run takes at most `max_batch` texts,
/// shortest jobs first: concurrent queries share a run (micro-batching),
/// and a large request is split into runs with the queue looked at again
/// between them, so a question waits for one run, not for 64 long texts.
/// A job whose caller went away (deadline, disconnect) is dropped before
/// its next run.
fn worker(
    mut backend: impl EmbedBackend,
    manifest: Arc<ModelManifest>,
    rx: mpsc::Receiver<Job>,
    max_batch: usize,
) {
    let mut pending: Vec<Pending> = Vec::new();
    loop {
        if pending.is_empty() {
            match rx.recv() {
                Ok(job) => pending.push(Pending::new(job)),
                Err(_) => return,
            }
        }
        while let Ok(job) = rx.try_recv() {
            pending.push(Pending::new(job));
        }
        pending.retain(|p| !p.job.reply.is_closed());
        // Stable: equal jobs keep their arrival order.
        pending.sort_by_key(Pending::remaining);
        let mut run = Vec::new();
        let mut prefixed = Vec::new();
        for (i, p) in pending.iter().enumerate() {
            let take = p.remaining().min(max_batch - prefixed.len());
            let from = p.done.len();
            prefixed.extend(
                p.job.texts[from..from + take]
                    .iter()
                    .map(|t| format!("{}{t}", manifest.prefix(p.job.kind))),
            );
            run.push((i, take));
            if prefixed.len() == max_batch {
                break;
            }
        }
        if !prefixed.is_empty() {
            let span = pending[run[0].0].job.span.clone();
            let _enter = span.enter();
            debug!(jobs = run.len(), texts = prefixed.len(), "embedding batch");
            let started = std::time::Instant::now();
            let result = backend.embed(&prefixed);
            metrics::histogram!("wenda_embed_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::histogram!("wenda_embed_batch_size").record(prefixed.len() as f64);
            let mut vectors = match result {
                Ok(vectors) => vectors.into_iter(),
                Err(err) => {
                    for &(i, _) in &run {
                        pending[i].failed = Some(err.clone());
                    }
                    Vec::new().into_iter()
                }
            };
            let mut texts = prefixed.iter();
            for &(i, take) in &run {
                for text in texts.by_ref().take(take) {
                    if pending[i].failed.is_some() {
                        continue;
                    }
                    let count = backend.count_tokens(text);
                    pending[i].done.push(EmbeddedText {
                        vector: vectors.next().unwrap_or_default(),
                        tokens: count.min(manifest.max_tokens) as u32,
                        truncated: count > manifest.max_tokens,
                    });
                }
            }
        }
        for p in pending.extract_if(.., |p| p.is_finished()) {
            let _ = p.job.reply.send(match p.failed {
                Some(err) => Err(err),
                None => Ok(p.done),
            });
        }
    }
}
