//! Embeddings: multilingual-e5-small on ONNX Runtime,
//! loaded from provisioned files (never from a hub), run by worker threads
//! fed by a queue so async callers never block the runtime.
//!
//! The e5 conventions live here: `query: ` / `passage: ` prefixes, mean
//! pooling, L2 normalisation, 512-token truncation reported to the caller.
//!
//! - [`model`]: the model's manifest, its files and their checks.
//! - [`onnx`]: ONNX Runtime, the sessions, the tokenizer, the token counter.
//! - [`queue`]: the jobs the workers share, split into model runs.
//! - [`centroids`]: per-language centring of the vectors.

mod centroids;
mod model;
mod onnx;
mod queue;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use tokio::sync::oneshot;
use tracing::{Span, debug, info};

use crate::error::{Error, Result};
use queue::{Job, Queue};

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

/// The synchronous model behind an embedder worker.
pub trait EmbedBackend: Send + 'static {
    /// Embeds already-prefixed texts.
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
    /// Tokens of an already-prefixed text, special tokens included: its
    /// untruncated count, or at least a count above the model's limit when
    /// the model truncates it.
    fn count_tokens(&self, text: &str) -> usize;
    /// Texts the backend runs through the model at once; `None`: as many
    /// as the embedder's `max_batch`.
    fn texts_per_run(&self) -> Option<usize> {
        None
    }
}

/// Handle to the embedder's workers. Cheap to clone; the workers stop when
/// the last clone is dropped, after the jobs already queued.
#[derive(Clone)]
pub struct Embedder {
    queue: Arc<Queue>,
    _open: Arc<CloseOnDrop>,
    manifest: Arc<ModelManifest>,
}

/// Closes the queue when the last handle goes.
struct CloseOnDrop(Arc<Queue>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Jobs waiting at most; beyond it callers get `Overloaded`.
const QUEUE_CAPACITY: usize = 1024;

impl Embedder {
    /// Verifies and loads the model; returns once one worker is ready.
    pub fn start(config: EmbedderConfig) -> Result<Self> {
        Self::start_with_counter(config).map(|(embedder, _)| embedder)
    }

    /// `start`, also returning a token counter for the chunker built from
    /// the same tokenizer load.
    ///
    /// One worker per `threads` (one per core by default), each with its own
    /// single-threaded ONNX Runtime session: a text's run stays on one core
    /// and concurrent texts run on the others. Against one session spread
    /// over all cores this measured as fast for a lone question and much
    /// faster under concurrency, because small runs spend much of their
    /// time handing work between ONNX Runtime's threads (BENCHMARKS.md,
    /// "Figures behind the code"). A text's vector is the same on every
    /// worker (a test). The first worker is ready when this returns; the
    /// others load in the background and join when ready, so start-up waits
    /// for one session, not for all of them.
    pub fn start_with_counter(config: EmbedderConfig) -> Result<(Self, TokenizerCounter)> {
        let manifest = config.verified_manifest()?;
        let started = std::time::Instant::now();
        let workers = config.workers();
        // The workers already run texts in parallel; the tokenizer's own
        // rayon threads would only spin beside them for one text at a time.
        tokenizers::utils::parallelism::set_parallelism(false);
        let (backend, tokenizer) = onnx::load(&config, &manifest)?;
        info!(
            model = %manifest.name,
            precision = %manifest.precision,
            file = manifest.onnx_file(),
            workers,
            ms = started.elapsed().as_millis() as u64,
            "model loaded"
        );
        let counter = TokenizerCounter::shared(tokenizer.clone());
        let embedder = Self::with_backend(backend, manifest.clone(), config.max_batch);
        if workers > 1 {
            // The extra workers' threads start here, at this thread's
            // priority, and wait for the sessions a loader thread builds at
            // a lower one (a thread cannot take back a priority it gave up).
            let mut ready = Vec::new();
            for _ in 1..workers {
                let (send, receive) = std::sync::mpsc::channel();
                ready.push(send);
                spawn_worker_thread(
                    move || receive.recv().ok(),
                    embedder.queue.clone(),
                    embedder.manifest.clone(),
                    config.max_batch,
                );
            }
            let (queue, manifest) = (embedder.queue.clone(), embedder.manifest.clone());
            let load = move || {
                lower_this_threads_priority();
                for send in ready {
                    if queue.is_closed() {
                        break;
                    }
                    let started = std::time::Instant::now();
                    match onnx::another_backend(&config, &manifest, tokenizer.clone()) {
                        Ok(backend) => {
                            debug!(
                                ms = started.elapsed().as_millis() as u64,
                                "embedder worker loaded"
                            );
                            queue.count_worker(true);
                            if send.send(backend).is_err() {
                                queue.count_worker(false);
                            }
                        }
                        Err(err) => {
                            tracing::warn!(%err, "an extra embedder worker did not load; serving with fewer");
                            break;
                        }
                    }
                }
                release_freed_memory();
            };
            std::thread::Builder::new()
                .name("wenda-embedder-load".into())
                .spawn(load)
                .map_err(|e| Error::Model(format!("cannot start a thread: {e}")))?;
        } else {
            release_freed_memory();
        }
        Ok((embedder, counter))
    }

    /// Runs any backend on one worker (tests use a small deterministic one).
    pub fn with_backend(
        backend: impl EmbedBackend,
        manifest: ModelManifest,
        max_batch: usize,
    ) -> Self {
        Self::with_backends(vec![backend], manifest, max_batch)
    }

    /// One worker per backend, sharing one queue.
    pub fn with_backends<B: EmbedBackend>(
        backends: Vec<B>,
        manifest: ModelManifest,
        max_batch: usize,
    ) -> Self {
        let queue = Arc::new(Queue::new(QUEUE_CAPACITY));
        let manifest = Arc::new(manifest);
        for backend in backends {
            // Counted now: the workers are there when this returns.
            queue.count_worker(true);
            spawn_worker_thread(
                move || Some(backend),
                queue.clone(),
                manifest.clone(),
                max_batch,
            );
        }
        Self {
            _open: Arc::new(CloseOnDrop(queue.clone())),
            queue,
            manifest,
        }
    }

    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// Workers running now (the ones beyond the first join after start-up).
    pub fn workers(&self) -> usize {
        self.queue.workers()
    }

    /// Embeds texts; waits on the workers without blocking the runtime.
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
        self.queue.push(Job {
            texts,
            kind,
            span: Span::current(),
            reply,
        })?;
        Ok(rx)
    }
}

/// Loading leaves a lot of freed memory (the model file read whole, the
/// tokenizer's JSON) that glibc keeps in its heaps: measured 663 MB resident
/// after one worker loaded and 432 MB once it is handed back, 794 and 549 MB
/// with two workers (BENCHMARKS.md, "Figures behind the code").
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The workers beyond the first load while start-up goes on (the lexicon,
/// the index) at a lower priority (a higher nice value), so that on a
/// machine with few cores serving is not held back by the extra workers
/// meant to speed it up: listening to SERVING measured 0.48–0.57 s with it
/// and 0.55–0.99 s without (BENCHMARKS.md, "Figures behind the code"). On
/// Linux each thread has its own nice value and `PRIO_PROCESS` 0 names the
/// calling thread; elsewhere these do nothing.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: changes only this thread's scheduling priority.
    unsafe {
        let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(libc::PRIO_PROCESS, 0, (nice + 10).min(19));
    }
}

/// A worker thread, running the backend `backend()` gives it (none: the
/// thread ends). Whoever hands a worker its backend counts it
/// (`Queue::count_worker`); the thread uncounts it when it stops.
fn spawn_worker_thread<B: EmbedBackend>(
    backend: impl FnOnce() -> Option<B> + Send + 'static,
    queue: Arc<Queue>,
    manifest: Arc<ModelManifest>,
    max_batch: usize,
) {
    std::thread::Builder::new()
        .name("wenda-embedder".into())
        .spawn(move || {
            if let Some(backend) = backend() {
                worker(backend, &queue, manifest, max_batch.max(1));
                queue.count_worker(false);
            }
        })
        .expect("spawning an embedder thread");
}

/// A worker: takes a run from the queue, runs it through its own model,
/// hands the vectors back, until the queue closes. A run is as many texts
/// as the backend runs at once (one for int8), at most `max_batch`:
/// concurrent questions share a run, and a large request is split so a
/// question waits for one run, not for 64 long texts.
fn worker(
    mut backend: impl EmbedBackend,
    queue: &Queue,
    manifest: Arc<ModelManifest>,
    max_batch: usize,
) {
    let size = backend
        .texts_per_run()
        .unwrap_or(max_batch)
        .clamp(1, max_batch);
    while let Some(run) = queue.take(size, &manifest) {
        let result = {
            let _enter = run.span.enter();
            debug!(
                jobs = run.jobs(),
                texts = run.prefixed.len(),
                "embedding batch"
            );
            let started = std::time::Instant::now();
            let result = backend.embed(&run.prefixed);
            metrics::histogram!("wenda_embed_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::histogram!("wenda_embed_batch_size").record(run.prefixed.len() as f64);
            result.and_then(|vectors| {
                if vectors.len() != run.prefixed.len() {
                    return Err(Error::Model(format!(
                        "the model returned {} vectors for {} texts",
                        vectors.len(),
                        run.prefixed.len()
                    )));
                }
                Ok(vectors
                    .into_iter()
                    .zip(&run.prefixed)
                    .map(|(vector, text)| {
                        let count = backend.count_tokens(text);
                        EmbeddedText {
                            vector,
                            tokens: count.min(manifest.max_tokens) as u32,
                            truncated: count > manifest.max_tokens,
                        }
                    })
                    .collect())
            })
        };
        queue.finish(run, result);
    }
}
