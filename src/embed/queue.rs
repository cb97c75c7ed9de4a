//! The queue the embedder's workers share: each job is split into model
//! runs, shortest job first, and whichever worker is free takes the next run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use tokio::sync::oneshot;
use tracing::Span;

use super::{EmbedKind, EmbeddedText, ModelManifest};
use crate::error::{Error, Result};

/// One caller's texts.
pub(super) struct Job {
    pub texts: Vec<String>,
    pub kind: EmbedKind,
    pub span: Span,
    pub reply: oneshot::Sender<Result<Vec<EmbeddedText>>>,
}

/// Jobs waiting for, or in, model runs.
pub(super) struct Queue {
    state: Mutex<State>,
    work: Condvar,
    /// Most jobs waiting at once; beyond it callers are told to back off.
    capacity: usize,
    /// Workers taking runs from this queue.
    workers: AtomicUsize,
}

struct State {
    jobs: Vec<Pending>,
    next_id: u64,
    /// No handle is left: workers finish what is queued, then stop.
    closed: bool,
}

/// A job being worked through by one or more workers.
struct Pending {
    id: u64,
    job: Job,
    /// The first text no worker has taken yet.
    next: usize,
    results: Vec<Option<EmbeddedText>>,
    completed: usize,
    failed: Option<Error>,
}

impl Pending {
    fn untaken(&self) -> usize {
        self.job.texts.len() - self.next
    }

    fn is_finished(&self) -> bool {
        self.failed.is_some() || self.completed == self.job.texts.len()
    }
}

/// Texts one worker runs through the model at once, possibly from several
/// jobs: `(job id, first text, count)` says whose they are.
pub(super) struct Run {
    pub prefixed: Vec<String>,
    pub span: Span,
    parts: Vec<(u64, usize, usize)>,
}

impl Run {
    pub fn jobs(&self) -> usize {
        self.parts.len()
    }
}

impl Queue {
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                jobs: Vec::new(),
                next_id: 0,
                closed: false,
            }),
            work: Condvar::new(),
            capacity,
            workers: AtomicUsize::new(0),
        }
    }

    /// A worker starts (`true`) or stops taking runs.
    pub fn count_worker(&self, started: bool) {
        if started {
            self.workers.fetch_add(1, Ordering::Relaxed);
        } else {
            self.workers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub fn workers(&self) -> usize {
        self.workers.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker that panicked mid-update leaves nothing half-written
        // that matters more than serving on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job; fails at once when the queue is full or closed.
    pub fn push(&self, job: Job) -> Result<()> {
        let mut state = self.lock();
        if state.closed {
            return Err(Error::Unavailable("embedder stopped".into()));
        }
        if state.jobs.len() >= self.capacity {
            return Err(Error::Overloaded("embedding queue is full".into()));
        }
        let id = state.next_id;
        state.next_id += 1;
        state.jobs.push(Pending {
            id,
            results: (0..job.texts.len()).map(|_| None).collect(),
            job,
            next: 0,
            completed: 0,
            failed: None,
        });
        // An empty job is answered here: no worker would ever take it.
        answer_finished(&mut state);
        drop(state);
        self.work.notify_one();
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// No more jobs will come: workers stop once the queue is empty.
    pub fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }

    /// Waits for work and takes up to `size` texts, shortest job first, so
    /// a question waits for one run, not behind a long request; `None` once
    /// the queue is closed and empty. Jobs whose caller went away (deadline,
    /// disconnect) are dropped here, before their next run.
    pub fn take(&self, size: usize, manifest: &ModelManifest) -> Option<Run> {
        let mut state = self.lock();
        loop {
            state.jobs.retain(|p| !p.job.reply.is_closed());
            if state.jobs.iter().any(|p| p.untaken() > 0) {
                break;
            }
            if state.closed && state.jobs.is_empty() {
                return None;
            }
            state = self.work.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        // Stable: equal jobs keep their arrival order.
        state.jobs.sort_by_key(Pending::untaken);
        let mut run = Run {
            prefixed: Vec::new(),
            span: Span::none(),
            parts: Vec::new(),
        };
        for p in state.jobs.iter_mut().filter(|p| p.untaken() > 0) {
            let take = p.untaken().min(size - run.prefixed.len());
            let prefix = manifest.prefix(p.job.kind);
            run.prefixed.extend(
                p.job.texts[p.next..p.next + take]
                    .iter()
                    .map(|t| format!("{prefix}{t}")),
            );
            if run.parts.is_empty() {
                run.span = p.job.span.clone();
            }
            run.parts.push((p.id, p.next, take));
            p.next += take;
            if run.prefixed.len() == size {
                break;
            }
        }
        if state.jobs.iter().any(|p| p.untaken() > 0) {
            // A push wakes one worker; what it leaves is for the next.
            drop(state);
            self.work.notify_one();
        }
        Some(run)
    }

    /// Hands a run's results to their jobs and answers every job that is
    /// complete; a failed run fails its jobs. A job dropped meanwhile is
    /// simply gone.
    pub fn finish(&self, run: Run, result: Result<Vec<EmbeddedText>>) {
        let mut state = self.lock();
        match result {
            Ok(embedded) => {
                let mut embedded = embedded.into_iter();
                for &(id, from, take) in &run.parts {
                    let texts = embedded.by_ref().take(take);
                    match state.jobs.iter_mut().find(|p| p.id == id) {
                        Some(p) => {
                            for (slot, text) in p.results[from..from + take].iter_mut().zip(texts) {
                                *slot = Some(text);
                                p.completed += 1;
                            }
                        }
                        // The job is gone: its texts are passed over.
                        None => texts.for_each(drop),
                    }
                }
            }
            Err(err) => {
                for p in &mut state.jobs {
                    if run.parts.iter().any(|&(id, _, _)| id == p.id) {
                        p.failed = Some(err.clone());
                    }
                }
            }
        }
        answer_finished(&mut state);
        let closed = state.closed;
        drop(state);
        if closed {
            // Idle workers may be waiting for this job to end before they stop.
            self.work.notify_all();
        }
    }
}

/// Sends every finished job its answer and forgets it.
fn answer_finished(state: &mut State) {
    for p in state.jobs.extract_if(.., |p| p.is_finished()) {
        let _ = p.job.reply.send(match p.failed {
            Some(err) => Err(err),
            None => Ok(p.results.into_iter().flatten().collect()),
        });
    }
}
