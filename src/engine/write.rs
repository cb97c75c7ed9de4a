//! Writes: ingests, deletes, corpus syncs and rebuilds. One writer at a
//! time; each write is embedded first (a caller that gives up then abandons
//! it), then committed and brought into memory as one unit nobody can
//! cancel.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Instant;

use tracing::{info, instrument};

use super::persist::{META_LAYOUT, layout_fingerprint, persist_manifest};
use super::state::{MAX_DRIFT, State, publish_gauges, publish_sequence, read_lock, write_lock};
use super::validate::{validate_ids, validate_ingest};
use super::{Engine, EngineConfig, blocking};
use crate::embed::{EmbedKind, Embedder};
use crate::error::{Error, Result};
use crate::filter::Scope;
use crate::ingest::{self, DocumentInput, PreparedDocument, corpus, lang};
use crate::store::{Changes, Origin, Store, StoredDocument, StoredPassage, WriteBatch};
use crate::types::{IngestOutcome, Progress, SyncReport, limits};

/// The writer lock, held from a write's first read of the state until its
/// commit is in memory; owned so the task finishing a commit can hold it.
type WriterGuard = tokio::sync::OwnedMutexGuard<()>;

impl Engine {
    /// Writes this replica's manifest and graph dump before it stops, when
    /// its store is shared (a redb store's are written with every write):
    /// a restart that finds the store at the same sequence loads the graph
    /// instead of building it.
    pub async fn save_for_restart(&self) {
        if !self.store.shared() {
            return;
        }
        let _writer = self.writer.clone().lock_owned().await;
        let commit = self.commit();
        if let Err(err) = blocking(move || commit.persist()).await {
            tracing::warn!(%err, "the graph dump was not written");
        }
    }

    /// Re-chunks and re-embeds every stored document (model or chunker changed).
    pub(super) async fn rebuild_all(&self) -> Result<()> {
        let writer = self.lock_writer().await?;
        let docs: Vec<StoredDocument> = self.read_state().documents.values().cloned().collect();
        info!(
            documents = docs.len(),
            "model or chunker changed: rebuilding passages"
        );
        let prepared = self
            .prepare_all(
                docs.into_iter()
                    .map(|d| {
                        // A corpus file's title and language were derived
                        // from its text: derive them again, as the new
                        // chunker would. A language code from an older
                        // vocabulary (three letters) is detected afresh.
                        let corpus = d.origin == Origin::Corpus;
                        let input = DocumentInput {
                            id: d.id,
                            text: d.text,
                            title: if corpus { String::new() } else { d.title },
                            source: d.source,
                            language: if corpus || !lang::is_known_code(&d.language) {
                                String::new()
                            } else {
                                d.language
                            },
                            // What a caller gave stays; a corpus file's
                            // come from its text again.
                            metadata: if corpus {
                                Default::default()
                            } else {
                                d.metadata
                            },
                            url: if corpus {
                                String::new()
                            } else {
                                d.url.unwrap_or_default()
                            },
                            published: if corpus {
                                String::new()
                            } else {
                                d.published.unwrap_or_default()
                            },
                        };
                        (input, d.origin)
                    })
                    .collect(),
            )
            .await?;
        self.apply(
            writer,
            prepared,
            Vec::new(),
            true,
            &Scope::default(),
            &|_, _| {},
        )
        .await
    }

    /// Takes the writer lock. On a store other replicas write to, the state
    /// first catches up with the store, so a write decides (is this
    /// document unchanged, does that one exist) on what is committed.
    async fn lock_writer(&self) -> Result<WriterGuard> {
        let writer = self.writer.clone().lock_owned().await;
        if self.store.shared() {
            let commit = self.commit();
            blocking(move || commit.catch_up()).await??;
        }
        Ok(writer)
    }

    /// What finishes a commit, or brings the state up to the store.
    pub(super) fn commit(&self) -> Commit {
        Commit {
            store: self.store.clone(),
            state: self.state.clone(),
            config: self.config.clone(),
            embedder: self.embedder.clone(),
        }
    }

    fn queue_write(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.write_queue.try_acquire().map_err(|_| {
            Error::Overloaded(format!(
                "more than {} writes waiting",
                limits::MAX_QUEUED_WRITES
            ))
        })
    }

    /// Adds or replaces documents; returns once they are durable and searchable.
    #[instrument(skip_all, fields(documents = inputs.len()))]
    pub async fn ingest(&self, inputs: Vec<DocumentInput>) -> Result<Vec<IngestOutcome>> {
        self.ingest_within(inputs, &Scope::default()).await
    }

    /// [`ingest`](Self::ingest) for a caller that sees only `scope`: an id
    /// held by a document outside it is refused, not replaced. (The
    /// caller stamps the scope onto the documents' metadata.)
    pub async fn ingest_within(
        &self,
        inputs: Vec<DocumentInput>,
        scope: &Scope,
    ) -> Result<Vec<IngestOutcome>> {
        validate_ingest(&inputs)?;
        let _queued = self.queue_write()?;
        let writer = self.lock_writer().await?;
        let mut outcomes = Vec::with_capacity(inputs.len());
        let mut todo = Vec::new();
        {
            let state = self.read_state();
            // The last copy of a repeated id wins, as if sent one after another.
            let mut last: HashMap<&str, usize> = HashMap::new();
            for (i, input) in inputs.iter().enumerate() {
                last.insert(input.id.as_str(), i);
            }
            if let Some(outside) = inputs.iter().find(|input| {
                state
                    .documents
                    .get(&input.id)
                    .is_some_and(|d| !scope.admits(&d.metadata))
            }) {
                return Err(Error::PermissionDenied(format!(
                    "document id {} is taken outside this token's scope",
                    super::validate::echo(&outside.id)
                )));
            }
            for (i, input) in inputs.iter().enumerate() {
                let existing = state.documents.get(&input.id);
                let unchanged = existing.is_some_and(|d| {
                    d.content_hash == ingest::content_hash(&input.text)
                        && (input.title.is_empty() || input.title == d.title)
                        && (input.source.is_empty() || input.source == d.source)
                        && (input.language.is_empty() || input.language == d.language)
                        && (input.url.is_empty() || Some(&input.url) == d.url.as_ref())
                        && (input.published.is_empty()
                            || Some(&input.published) == d.published.as_ref())
                        && input
                            .metadata
                            .iter()
                            .all(|(k, v)| d.metadata.get(k) == Some(v))
                });
                outcomes.push(IngestOutcome {
                    id: input.id.clone(),
                    chunks: existing.map_or(0, |d| d.passage_ids.len() as u32),
                    replaced: existing.is_some() && !unchanged,
                    unchanged,
                });
                if !unchanged && last[input.id.as_str()] == i {
                    todo.push((input.clone(), Origin::Api));
                }
            }
        }
        let prepared = self.prepare_all(todo).await?;
        let chunks: HashMap<String, u32> = prepared
            .iter()
            .map(|(d, _)| (d.id.clone(), d.chunks.len() as u32))
            .collect();
        self.apply(writer, prepared, Vec::new(), false, scope, &|_, _| {})
            .await?;
        for outcome in &mut outcomes {
            if let Some(n) = chunks.get(&outcome.id) {
                outcome.chunks = *n;
            }
        }
        Ok(outcomes)
    }

    /// Removes documents; returns how many existed.
    pub async fn delete(&self, ids: Vec<String>) -> Result<usize> {
        self.delete_within(ids, &Scope::default()).await
    }

    /// [`delete`](Self::delete) of the documents inside `scope` only;
    /// others are as absent.
    pub async fn delete_within(&self, ids: Vec<String>, scope: &Scope) -> Result<usize> {
        validate_ids("ids", &ids, limits::MAX_DELETE_IDS)?;
        let _queued = self.queue_write()?;
        let writer = self.lock_writer().await?;
        let existing: Vec<String> = {
            let state = self.read_state();
            ids.into_iter()
                .filter(|id| {
                    state
                        .documents
                        .get(id)
                        .is_some_and(|d| scope.admits(&d.metadata))
                })
                .collect::<HashSet<_>>()
                .into_iter()
                .collect()
        };
        if existing.is_empty() {
            return Ok(0);
        }
        let n = existing.len();
        self.apply(writer, Vec::new(), existing, false, scope, &|_, _| {})
            .await?;
        Ok(n)
    }

    /// Brings the index in line with a corpus folder: new and changed files
    /// are (re)indexed, removed files dropped, all in one transaction.
    /// Documents ingested over the API are left alone.
    pub async fn sync_corpus(&self, root: &Path, progress: Progress<'_>) -> Result<SyncReport> {
        let started = Instant::now();
        let writer = self.lock_writer().await?;
        let root_owned = root.to_path_buf();
        let max = self.config.max_file_bytes;
        let scan = blocking(move || corpus::scan(&root_owned, max))
            .await?
            .map_err(|e| Error::Io(format!("{}: {e}", root.display())))?;
        let mut report = SyncReport {
            skipped: scan.skipped.clone(),
            ..Default::default()
        };
        let mut todo = Vec::new();
        let deletes: Vec<String>;
        {
            let state = self.read_state();
            let skipped_ids: HashSet<String> = scan
                .skipped
                .iter()
                .filter_map(|s| {
                    s.path
                        .strip_prefix(root)
                        .ok()
                        .map(|p| p.to_string_lossy().replace('\\', "/"))
                })
                .collect();
            let present: HashSet<&str> = scan.files.iter().map(|f| f.id.as_str()).collect();
            for file in &scan.files {
                let existing = state.documents.get(&file.id);
                if existing.is_some_and(|d| d.content_hash == ingest::content_hash(&file.text)) {
                    report.unchanged += 1;
                    continue;
                }
                if existing.is_some() {
                    report.updated += 1;
                } else {
                    report.added += 1;
                }
                let input = DocumentInput {
                    id: file.id.clone(),
                    text: file.text.clone(),
                    ..Default::default()
                };
                todo.push((input, Origin::Corpus));
            }
            // A file that is now unreadable keeps its last good version:
            // nothing already accepted is lost to a transient error.
            deletes = state
                .documents
                .values()
                .filter(|d| {
                    d.origin == Origin::Corpus
                        && !present.contains(d.id.as_str())
                        && !skipped_ids.contains(&d.id)
                })
                .map(|d| d.id.clone())
                .collect();
            report.removed = deletes.len();
        }
        let prepared = self.prepare_all(todo).await?;
        for (doc, _) in &prepared {
            for c in &doc.chunks {
                *report
                    .chunks_per_language
                    .entry(c.language.clone())
                    .or_default() += 1;
                report.tokens += c.chunk.tokens;
            }
        }
        if !prepared.is_empty() || !deletes.is_empty() {
            self.apply(
                writer,
                prepared,
                deletes,
                false,
                &Scope::default(),
                progress,
            )
            .await?;
        }
        report.seconds = started.elapsed().as_secs_f32();
        Ok(report)
    }

    async fn prepare_all(
        &self,
        inputs: Vec<(DocumentInput, Origin)>,
    ) -> Result<Vec<(PreparedDocument, Origin)>> {
        let counter = self.counter.clone();
        let chunk = self.config.chunk;
        // Set when this future is dropped (the caller gave up, or the
        // server is stopping): the blocking work stops soon after, instead
        // of chunking megabytes nobody will store.
        let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
        let cancelled = cancel.0.clone();
        blocking(move || {
            let mut prepared = Vec::with_capacity(inputs.len());
            for (input, origin) in inputs {
                let id = input.id.clone();
                match ingest::prepare_unless(input, counter.as_ref(), chunk, &cancelled) {
                    Some(doc) => prepared.push((doc, origin)),
                    None => {
                        tracing::info!(document = %id, "ingest abandoned while chunking");
                        return Err(Error::Unavailable("the ingest was cancelled".into()));
                    }
                }
            }
            Ok(prepared)
        })
        .await?
    }

    /// Embeds prepared documents, then commits them (and the deletions) in
    /// one transaction and brings the in-memory index up to it.
    ///
    /// Until the commit starts, a caller that gives up (a deadline, a
    /// cancelled call) abandons the write and nothing happens. From then on
    /// the commit and the state update run to the end on a blocking task
    /// that holds `writer`, whatever the caller does: no later write can
    /// see memory that lags the store.
    ///
    /// A write of a caller confined to a tenant's `scope` was decided on the
    /// documents' metadata: the store refuses it as a conflict if another
    /// replica changed one of them in the meantime. Other writes replace and
    /// delete whatever is committed (the last writer wins).
    async fn apply(
        &self,
        writer: WriterGuard,
        prepared: Vec<(PreparedDocument, Origin)>,
        deletes: Vec<String>,
        clear: bool,
        scope: &Scope,
        progress: Progress<'_>,
    ) -> Result<()> {
        let texts: Vec<String> = prepared
            .iter()
            .flat_map(|(d, _)| d.chunks.iter().map(|c| c.chunk.text.clone()))
            .collect();
        let total = texts.len();
        let mut vectors = Vec::with_capacity(total);
        progress(0, total);
        for batch in texts.chunks(limits::EMBED_BATCH) {
            let embedded = self
                .embedder
                .embed(batch.to_vec(), EmbedKind::Passage)
                .await?;
            vectors.extend(embedded.into_iter().map(|e| e.vector));
            progress(vectors.len(), total);
        }

        let mut vectors = vectors.into_iter();
        // Decided on the state under the writer lock; the store checks it
        // still holds when it commits (another replica may have written).
        let expect = if scope.is_all() {
            Vec::new()
        } else {
            let state = self.read_state();
            deletes
                .iter()
                .chain(prepared.iter().map(|(d, _)| &d.id))
                .map(|id| {
                    let hash = state.documents.get(id).map(|d| d.content_hash.clone());
                    (id.clone(), hash)
                })
                .collect()
        };
        let mut batch = WriteBatch {
            delete: deletes,
            clear_passages: clear,
            expect,
            ..Default::default()
        };
        for (doc, origin) in prepared {
            let mut rows = Vec::with_capacity(doc.chunks.len());
            for c in doc.chunks {
                // The store gives the passage its id when it commits.
                let passage = StoredPassage::from_chunk(0, &doc.id, c);
                rows.push((
                    passage,
                    vectors
                        .next()
                        .ok_or_else(|| Error::Model("fewer vectors than passages".into()))?,
                ));
            }
            let stored = StoredDocument {
                passage_ids: Vec::new(),
                id: doc.id,
                source: doc.source,
                title: doc.title,
                language: doc.language,
                published: doc.published,
                url: doc.url,
                metadata: doc.metadata,
                text: doc.text,
                content_hash: doc.content_hash,
                origin,
            };
            batch.put.push((stored, rows));
        }
        batch.meta = vec![(
            META_LAYOUT.into(),
            layout_fingerprint(&self.embedder, &self.config.chunk),
        )];

        let commit = self.commit();
        blocking(move || {
            let _writer = writer;
            commit.run(batch)
        })
        .await?
    }
}

/// Sets its flag when dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What finishes a write once its commit starts: owned, so it outlives the
/// request that started it.
#[derive(Clone)]
pub(super) struct Commit {
    store: Arc<dyn Store>,
    state: Arc<RwLock<State>>,
    config: EngineConfig,
    embedder: Embedder,
}

impl Commit {
    /// Commits `batch` durably, then brings the in-memory state up to it.
    fn run(&self, mut batch: WriteBatch) -> Result<()> {
        let committed = match self.store.write(&mut batch) {
            Ok(committed) => committed,
            Err(err) => {
                // A write that failed on I/O may still have reached the disk
                // (an fsync that failed after the data was written): if the
                // reopened store moved on, the next write reloads it. (A
                // shared store moves on by other replicas' writes too: the
                // next catch-up reads whatever this write left there.)
                if !self.store.shared()
                    && let Ok(stored) = self.store.generation()
                    && stored != self.read_state().generation
                {
                    tracing::warn!(
                        stored,
                        "a failed write reached the store; the next write reloads"
                    );
                    write_lock(&self.state).behind_store = true;
                }
                return Err(err);
            }
        };
        if self.read_state().generation != committed.previous {
            // Another replica committed in between: its writes and this
            // one come from the store together.
            return self.catch_up();
        }
        self.update_state(batch, committed.generation)
    }

    /// Brings the state up to the store's newest commit: writes of other
    /// replicas applied in place (or a reload, when they are many or the
    /// store cannot list them).
    pub(super) fn catch_up(&self) -> Result<()> {
        let from = self.read_state().generation;
        match self.store.changes_since(from)? {
            Changes::UpToDate => Ok(()),
            Changes::Batch { batch, generation } => {
                tracing::debug!(from, to = generation, "caught up with the store");
                self.update_state(batch, generation)
            }
            Changes::Reload => {
                tracing::info!(from, "the store changed beyond its log; reloading");
                self.reload_state()
            }
        }
    }

    /// Writes the manifest for the current state after a write. It only
    /// describes the store (a missing or older one costs a graph rebuild at
    /// start-up), so failing to write it, on a full disk say, does not fail
    /// a committed write.
    ///
    /// Not for a shared store: other replicas move it on, so a dump written
    /// now is stale at the next start unless nothing was written since, and
    /// each dump rewrites the whole graph, on every replica for every write
    /// of any of them. A replica of a shared store dumps when it stops
    /// ([`Engine::save_for_restart`]).
    fn describe_state(&self) {
        if !self.store.shared() {
            self.persist();
        }
    }

    /// Writes the manifest and graph dump for the current state, whatever
    /// the store.
    pub(super) fn persist(&self) {
        if let Err(err) = persist_manifest(&self.config, &self.embedder, &self.read_state()) {
            tracing::warn!(%err, "the manifest was not updated; the next start rebuilds the graph");
        }
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        read_lock(&self.state)
    }

    /// Brings the in-memory state up to a committed write: in place when the
    /// write is small against the index, else by re-reading the whole store
    /// (a rebuild, a first load, or enough changes that the language
    /// centroids and BM25 statistics should be estimated afresh).
    fn update_state(&self, batch: WriteBatch, generation: u64) -> Result<()> {
        let in_place = !batch.clear_passages && {
            let state = self.read_state();
            let drift = state.changed_since_estimate + state.passages_changed_by(&batch);
            let passages_after =
                state.passages.len() + batch.put.iter().map(|(_, r)| r.len()).sum::<usize>();
            !state.behind_store
                && state.estimated_from > 0
                && drift as f32 <= MAX_DRIFT * state.estimated_from as f32
                && self.config.index.kind_for(passages_after) == state.index.kind()
        };
        if in_place {
            let applied = {
                let mut state = write_lock(&self.state);
                let applied = state.apply_write(batch, self.config.center_languages);
                state.generation = generation;
                publish_gauges(&state.passages, state.documents.values());
                publish_sequence(generation);
                applied
            };
            match applied {
                Ok(()) => {
                    self.describe_state();
                    return Ok(());
                }
                // The store has the write; a full reload brings memory up to it.
                Err(err) => {
                    tracing::warn!(%err, "in-place index update failed; reloading the index")
                }
            }
        }
        self.reload_state().inspect_err(|err| {
            tracing::error!(%err, "a committed write is not in memory yet; the next write reloads");
            write_lock(&self.state).behind_store = true;
        })
    }

    /// Re-estimates the language centroids and term statistics from the
    /// store when writes applied in place have moved them and a reload is
    /// cheap (an exact index: no graph to build). Replicas of one shared
    /// store apply the same writes in different groupings and re-estimate
    /// at different moments; once writes pause, this makes every replica
    /// that has applied the same sequence answer exactly alike. (A graph
    /// index keeps its estimate until the drift rule reloads it: its
    /// replicas may order near-ties differently until then.)
    pub(super) fn settle(&self) -> Result<()> {
        if self.settle_due() {
            tracing::debug!("writes paused: re-estimating from the store");
            self.reload_state()?;
        }
        Ok(())
    }

    /// Whether [`settle`](Self::settle) would re-read the store: cheap, for
    /// an idle replica to ask before it takes the writer lock.
    pub(super) fn settle_due(&self) -> bool {
        let state = self.read_state();
        state.changed_since_estimate > 0 && state.index.kind() == crate::index::ExactIndex::KIND
    }

    /// Re-reads the whole committed store into a fresh state and swaps it in;
    /// the store is the single source of truth.
    fn reload_state(&self) -> Result<()> {
        let snapshot = self.store.snapshot()?;
        let rebuilds = self.read_state().rebuilds;
        let mut fresh = State::load(
            &self.config,
            self.embedder.manifest().dimension,
            snapshot,
            None,
        )?;
        fresh.rebuilds = rebuilds + 1;
        *write_lock(&self.state) = fresh;
        self.describe_state();
        Ok(())
    }
}
