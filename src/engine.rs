//! The transport-agnostic service: ingest, search, rank. Owns the store and
//! the index, keeps them in agreement, and bounds the work in flight. The
//! gRPC adapter and the CLI both call it; neither knows about the other.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tracing::{info, instrument};

use crate::embed::{EmbedKind, EmbeddedText, Embedder};
use crate::error::{Error, FieldViolation, Result};
use crate::index::{IndexConfig, VectorStore};
use crate::ingest::{
    self, ChunkConfig, DocumentInput, PreparedDocument, TokenCounter, corpus, lang,
};
use crate::lexical::LexicalIndex;
use crate::manifest::Manifest;
use crate::rank::{self, Candidate};
use crate::store::{Origin, Snapshot, Store, StoredDocument, StoredPassage, WriteBatch};

/// The writer lock, held from a write's first read of the state until its
/// commit is in memory; owned so the task finishing a commit can hold it.
type WriterGuard = tokio::sync::OwnedMutexGuard<()>;

/// Request limits, documented in the proto.
pub mod limits {
    pub const MAX_QUERY_CHARS: usize = 2048;
    pub const DEFAULT_TOP_K: usize = 5;
    pub const MAX_TOP_K: usize = 100;
    pub const MAX_EMBED_TEXTS: usize = 64;
    pub const MAX_EMBED_CHARS: usize = 8192;
    pub const MAX_INGEST_DOCUMENTS: usize = 256;
    pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024 * 1024;
    pub const MAX_ID_CHARS: usize = 512;
    pub const MAX_DELETE_IDS: usize = 256;
    pub const DEFAULT_PAGE_SIZE: usize = 100;
    pub const MAX_PAGE_SIZE: usize = 1000;
    /// Texts embedded per model call while indexing.
    pub const EMBED_BATCH: usize = 16;
    /// Ingest and Delete calls waiting for their turn before RESOURCE_EXHAUSTED.
    pub const MAX_QUEUED_WRITES: usize = 16;
}

/// How candidates are retrieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SearchMode {
    Dense,
    Lexical,
    #[default]
    Hybrid,
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    pub chunk: ChunkConfig,
    pub index: IndexConfig,
    /// Searches and embeds in flight at once; more get RESOURCE_EXHAUSTED.
    pub max_in_flight: usize,
    /// Corpus files larger than this are skipped.
    pub max_file_bytes: u64,
    /// Subtract each language's mean vector from passages and queries.
    pub center_languages: bool,
    /// Chinese↔English dictionary for lexical matching across languages.
    pub lexicon: Option<Arc<crate::lexicon::Lexicon>>,
    /// How hybrid mode merges the dense and lexical lists.
    pub fusion: rank::Fusion,
    /// Weight of the lexical ranking against the dense one in hybrid fusion.
    pub lexical_weight: f32,
    /// Query vectors cached for repeated questions; 0 turns the cache off.
    pub query_cache: usize,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            chunk: ChunkConfig::default(),
            index: IndexConfig::default(),
            max_in_flight: 64,
            max_file_bytes: 10 * 1024 * 1024,
            center_languages: true,
            lexicon: None,
            fusion: rank::Fusion::default(),
            lexical_weight: rank::DEFAULT_LEXICAL_WEIGHT,
            query_cache: 1024,
        }
    }
}

/// A search request in domain terms.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub query: String,
    /// 0 means the default.
    pub top_k: usize,
    pub languages: Vec<String>,
    pub doc_ids: Vec<String>,
    pub min_score: f32,
    pub mode: SearchMode,
    pub explain: bool,
}

/// Component scores of a hit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Explanation {
    pub dense_score: Option<f32>,
    pub dense_rank: Option<u32>,
    pub lexical_score: Option<f32>,
    pub lexical_rank: Option<u32>,
    pub fused_score: f32,
}

/// A sentence of a passage that supports the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Highlight {
    pub text: String,
    pub char_start: usize,
    pub char_end: usize,
    pub score: f32,
}

/// A ranked passage with what a citation needs.
#[derive(Debug, Clone)]
pub struct SearchHit {
    pub passage: StoredPassage,
    pub title: String,
    pub source: String,
    pub score: f32,
    pub rank: u32,
    pub highlights: Vec<Highlight>,
    pub explanation: Option<Explanation>,
}

#[derive(Debug, Clone, Default)]
pub struct Timings {
    pub embed_ms: f32,
    pub search_ms: f32,
    pub rank_ms: f32,
    pub total_ms: f32,
}

#[derive(Debug, Clone)]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
    pub query_language: String,
    pub mode: SearchMode,
    pub timings: Timings,
}

/// The outcome of ingesting one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    pub id: String,
    pub chunks: u32,
    pub replaced: bool,
    pub unchanged: bool,
}

/// A document's metadata, without its text.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentSummary {
    pub id: String,
    pub source: String,
    pub title: String,
    pub language: String,
    pub published: Option<String>,
    pub chunks: u32,
    pub chars: u64,
    pub content_hash: String,
}

#[derive(Debug, Clone)]
pub struct DocumentView {
    pub summary: DocumentSummary,
    pub text: String,
    pub passages: Vec<StoredPassage>,
}

#[derive(Debug, Clone)]
pub struct EngineInfo {
    pub model: String,
    pub dimension: usize,
    pub documents: usize,
    pub passages: usize,
    pub passages_per_language: BTreeMap<String, u64>,
    pub documents_per_language: BTreeMap<String, u64>,
    pub index_build_id: String,
    pub index_kind: String,
    pub chunker_version: String,
}

/// What a corpus sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub skipped: Vec<corpus::Skipped>,
    pub chunks_per_language: BTreeMap<String, usize>,
    pub tokens: usize,
    pub seconds: f32,
}

/// Called with (texts embedded so far, texts to embed) while indexing.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Send + Sync);

struct State {
    documents: BTreeMap<String, StoredDocument>,
    passages: HashMap<u64, StoredPassage>,
    index: Box<dyn VectorStore>,
    lexical: LexicalIndex,
    /// Per-language mean passage vector, for removing language identity.
    centroids: rank::LanguageCentroids,
    /// Passages the centroids and the lexical statistics were estimated
    /// from, and passages added or removed in place since then.
    estimated_from: usize,
    changed_since_estimate: usize,
    generation: u64,
    /// A committed write could not be brought into memory: the next write
    /// reloads the whole store instead of updating in place.
    behind_store: bool,
    /// Whole-state rebuilds since start-up (for tests and logs).
    rebuilds: u64,
    /// The manifest named a graph dump that could not be used (damaged, or
    /// from another version): a new one is due, or every start rebuilds.
    dump_unusable: bool,
}

/// Writes changing more than this share of the passages the centroids were
/// estimated from rebuild the whole state: centroids and BM25 statistics are
/// re-estimated, so they never drift more than this from the true ones.
const MAX_DRIFT: f32 = 0.25;

impl State {
    /// Applies a committed write in place: removed and replaced documents'
    /// passages leave the index, new ones are centred with the current
    /// centroids and inserted.
    fn apply_write(&mut self, batch: WriteBatch, center: bool) -> Result<()> {
        let replaced: Vec<String> = batch.put.iter().map(|(d, _)| d.id.clone()).collect();
        for id in batch.delete.iter().chain(&replaced) {
            if let Some(old) = self.documents.remove(id) {
                for pid in old.passage_ids {
                    self.passages.remove(&pid);
                    self.index.remove(pid);
                    self.lexical.remove(pid);
                    self.changed_since_estimate += 1;
                }
            }
        }
        for (doc, rows) in batch.put {
            for (passage, vector) in rows {
                let vector = if center {
                    self.centroids.center(&vector, &passage.language)
                } else {
                    vector
                };
                self.index.insert(passage.id, vector)?;
                self.lexical.upsert(passage.id, &passage.text);
                self.passages.insert(passage.id, passage);
                self.changed_since_estimate += 1;
            }
            self.documents.insert(doc.id.clone(), doc);
        }
        Ok(())
    }

    /// Passages the write would add or remove.
    fn passages_changed_by(&self, batch: &WriteBatch) -> usize {
        let removed: usize = batch
            .delete
            .iter()
            .chain(batch.put.iter().map(|(d, _)| &d.id))
            .filter_map(|id| self.documents.get(id))
            .map(|d| d.passage_ids.len())
            .sum();
        removed + batch.put.iter().map(|(_, rows)| rows.len()).sum::<usize>()
    }
}

pub struct Engine {
    embedder: Embedder,
    counter: Arc<dyn TokenCounter>,
    store: Arc<Store>,
    state: Arc<RwLock<State>>,
    /// One writer at a time, so the store and the index change together.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Writes waiting for `writer`; more are turned away at once.
    write_queue: Semaphore,
    permits: Arc<Semaphore>,
    /// Query text -> its raw (uncentred) vector. A chatbot asks the same
    /// questions again and again; a hit skips the model, the dominant cost.
    query_cache: Option<quick_cache::sync::Cache<String, Arc<Vec<f32>>>>,
    config: EngineConfig,
}

/// The model and chunker the stored passages were made with; when either
/// changes, stored documents are re-chunked and re-embedded.
fn layout_fingerprint(embedder: &Embedder, chunk: &ChunkConfig) -> String {
    // The precision is named as well as hashed (the fingerprint covers only
    // the files loaded): vectors from int8 and fp32 never share an index.
    format!(
        "{}|{}|{}|{}|{}/{}",
        embedder.manifest().name,
        embedder.manifest().precision,
        embedder.manifest().fingerprint(),
        ingest::CHUNKER_VERSION,
        chunk.max_tokens,
        chunk.overlap_tokens
    )
}

const META_LAYOUT: &str = "layout";

impl Engine {
    /// Opens the data directory, rebuilding stored passages when the model
    /// or chunker changed, and loads the index.
    pub async fn open(
        config: EngineConfig,
        embedder: Embedder,
        counter: Arc<dyn TokenCounter>,
    ) -> Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| Error::Io(format!("{}: {e}", config.data_dir.display())))?;
        let db_path = config.data_dir.join("wenda.redb");
        let (store, snapshot) = tokio::task::spawn_blocking(move || -> Result<_> {
            let store = Store::open(&db_path)?;
            let snapshot = store.snapshot()?;
            Ok((store, snapshot))
        })
        .await
        .map_err(|e| Error::Storage(e.to_string()))??;
        let layout = layout_fingerprint(&embedder, &config.chunk);
        let stale = snapshot.meta.get(META_LAYOUT).is_some_and(|l| *l != layout)
            && !snapshot.documents.is_empty();
        let manifest = Manifest::read(&config.data_dir);
        let dimension = embedder.manifest().dimension;
        let mut state = match Self::load_state(&config, dimension, snapshot, manifest.clone()) {
            Ok(state) => state,
            // A graph dump that passed its checks and still did not open
            // (the vectors were already let go, to keep the peak memory
            // down): read the store again and build the graph instead.
            Err(err) if manifest.as_ref().is_some_and(|m| m.hnsw.is_some()) => {
                tracing::warn!(%err, "loading with the hnsw dump failed; rebuilding the graph");
                let mut state = Self::load_state(&config, dimension, store.snapshot()?, None)?;
                state.dump_unusable = true;
                state
            }
            Err(err) => return Err(err),
        };
        let described = manifest.is_some_and(|m| {
            m.generation == state.generation
                && m.index_kind == state.index.kind()
                && m.passages == state.passages.len()
        });
        if !described || state.dump_unusable {
            persist_manifest(&config, &embedder, &state)?;
            state.dump_unusable = false;
        }
        let engine = Self {
            permits: Arc::new(Semaphore::new(config.max_in_flight)),
            embedder,
            counter,
            store: Arc::new(store),
            state: Arc::new(RwLock::new(state)),
            writer: Arc::new(tokio::sync::Mutex::new(())),
            write_queue: Semaphore::new(limits::MAX_QUEUED_WRITES),
            query_cache: (config.query_cache > 0)
                .then(|| quick_cache::sync::Cache::new(config.query_cache)),
            config,
        };
        if stale {
            engine.rebuild_all().await?;
        }
        Ok(engine)
    }

    fn load_state(
        config: &EngineConfig,
        dimension: usize,
        snapshot: Snapshot,
        manifest: Option<Manifest>,
    ) -> Result<State> {
        let started = Instant::now();
        let generation: u64 = snapshot
            .meta
            .get(crate::store::META_GENERATION)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        // A dump is trusted only for the generation it was written for.
        let dump = manifest
            .filter(|m| m.generation == generation)
            .and_then(|m| m.hnsw);
        let mut passages = HashMap::with_capacity(snapshot.passages.len());
        let mut items = Vec::with_capacity(snapshot.passages.len());
        for (passage, vector) in snapshot.passages {
            items.push((passage.id, vector));
            passages.insert(passage.id, passage);
        }
        let centroids = if config.center_languages {
            let centroids = rank::LanguageCentroids::estimate(
                items
                    .iter()
                    .map(|(id, v)| (passages[id].language.as_str(), v.as_slice())),
            );
            for (id, v) in &mut items {
                *v = centroids.center(v, &passages[id].language);
            }
            centroids
        } else {
            rank::LanguageCentroids::default()
        };
        let dump_dir = dump.as_ref().map(|d| config.data_dir.join(&d.dir));
        let (index, from_dump) = crate::index::build(
            &config.index,
            dimension,
            items,
            dump_dir.as_deref().zip(dump.as_ref()),
        )?;
        let lexical = LexicalIndex::build(
            passages.values().map(|p| (p.id, p.text.as_str())),
            config.lexicon.clone(),
        );
        publish_gauges(&passages, &snapshot.documents);
        info!(
            documents = snapshot.documents.len(),
            passages = passages.len(),
            index = index.kind(),
            ms = started.elapsed().as_millis() as u64,
            "index loaded"
        );
        Ok(State {
            estimated_from: passages.len(),
            documents: snapshot
                .documents
                .into_iter()
                .map(|d| (d.id.clone(), d))
                .collect(),
            passages,
            index,
            changed_since_estimate: 0,
            lexical,
            centroids,
            generation,
            behind_store: false,
            rebuilds: 0,
            dump_unusable: dump.is_some() && !from_dump,
        })
    }

    /// Re-chunks and re-embeds every stored document (model or chunker changed).
    async fn rebuild_all(&self) -> Result<()> {
        let writer = self.lock_writer().await;
        let docs: Vec<StoredDocument> = self.read_state().documents.values().cloned().collect();
        info!(
            documents = docs.len(),
            "model or chunker changed: rebuilding passages"
        );
        let prepared = self
            .prepare_all(
                docs.into_iter()
                    .map(|d| {
                        let input = DocumentInput {
                            id: d.id,
                            text: d.text,
                            title: d.title,
                            source: d.source,
                            language: d.language,
                        };
                        (input, d.origin)
                    })
                    .collect(),
            )
            .await?;
        self.apply(writer, prepared, Vec::new(), true, &|_, _| {})
            .await
    }

    async fn lock_writer(&self) -> WriterGuard {
        self.writer.clone().lock_owned().await
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        read_lock(&self.state)
    }

    fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            Error::Overloaded(format!(
                "more than {} requests in flight",
                self.config.max_in_flight
            ))
        })
    }

    fn queue_write(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.write_queue.try_acquire().map_err(|_| {
            Error::Overloaded(format!(
                "more than {} writes waiting",
                limits::MAX_QUEUED_WRITES
            ))
        })
    }

    /// Returns the passages that best answer `query`.
    #[instrument(skip_all, fields(mode = ?query.mode, top_k = query.top_k, embed_ms, search_ms, rank_ms))]
    pub async fn search(&self, query: SearchQuery) -> Result<SearchResults> {
        validate_search(&query)?;
        let _permit = self.permit()?;
        let started = Instant::now();
        let top_k = if query.top_k == 0 {
            limits::DEFAULT_TOP_K
        } else {
            query.top_k
        };
        let query_language = lang::detect(&query.query).unwrap_or_default();

        // The lexical half (dictionary translations, BM25, the highlight
        // terms) needs no vector: it runs while the embedder thread computes
        // the query's, and only the dense search waits for it.
        let pool = rank::candidate_pool(top_k);
        let lexical_half = || {
            let started = Instant::now();
            let state = self.read_state();
            let lexical_query = state.lexical.prepare(&query.query);
            let lexical = if query.mode != SearchMode::Dense {
                let passes = |id: u64| passes_filters(&state, &query, id);
                state.lexical.search(&lexical_query, pool, &passes)
            } else {
                Vec::new()
            };
            let terms = rank::highlight_terms(&query.query, lexical_query.translations());
            (lexical, terms, started.elapsed())
        };
        let (query_vector, embed_ms, (lexical, highlight_terms, lexical_time)) =
            if query.mode == SearchMode::Lexical {
                (None, ms(started), lexical_half())
            } else {
                let embedding = async {
                    let vector = self.query_vector(&query.query).await;
                    (vector, ms(started))
                };
                // `biased`: the embedding is polled first, so its job is on
                // the embedder's queue before the lexical half starts.
                let ((vector, embed_ms), lexical) =
                    tokio::join!(biased; embedding, async { lexical_half() });
                (Some(vector?), embed_ms, lexical)
            };

        let search_started = Instant::now();
        let state = self.read_state();
        let passes = |id: u64| passes_filters(&state, &query, id);
        let dense = match &query_vector {
            Some(v) => {
                let v = if self.config.center_languages {
                    state.centroids.center(v, &query_language)
                } else {
                    v.to_vec()
                };
                rank::dense_candidates(state.index.as_ref(), &v, pool, &passes)
            }
            None => Vec::new(),
        };
        // Work time of both halves; the lexical half's overlaps `embed_ms`.
        let search_ms = ms(search_started) + lexical_time.as_secs_f32() * 1000.0;

        let rank_started = Instant::now();
        let fused: Vec<Candidate> = rank::fuse(
            query.mode,
            &dense,
            &lexical,
            self.config.fusion,
            self.config.lexical_weight,
        );
        let hits: Vec<SearchHit> = fused
            .into_iter()
            .filter(|c| c.score >= query.min_score)
            .take(top_k)
            .enumerate()
            .filter_map(|(i, c)| {
                let passage = state.passages.get(&c.id)?.clone();
                let doc = state.documents.get(&passage.doc_id)?;
                let highlights = rank::highlights(&passage, &doc.text, &highlight_terms);
                Some(SearchHit {
                    title: doc.title.clone(),
                    source: doc.source.clone(),
                    score: c.score,
                    rank: i as u32 + 1,
                    highlights,
                    explanation: query.explain.then(|| c.explanation.clone()),
                    passage,
                })
            })
            .collect();
        drop(state);
        let rank_ms = ms(rank_started);
        let span = tracing::Span::current();
        span.record("embed_ms", embed_ms);
        span.record("search_ms", search_ms);
        span.record("rank_ms", rank_ms);
        tracing::debug!(hits = hits.len(), "search done");
        Ok(SearchResults {
            hits,
            query_language,
            mode: query.mode,
            timings: Timings {
                embed_ms,
                search_ms,
                rank_ms,
                total_ms: ms(started),
            },
        })
    }

    /// The query's vector, from the cache when it was asked before.
    async fn query_vector(&self, text: &str) -> Result<Arc<Vec<f32>>> {
        if let Some(vector) = self.query_cache.as_ref().and_then(|c| c.get(text)) {
            metrics::counter!("wenda_query_cache_hits_total").increment(1);
            return Ok(vector);
        }
        let mut out = self
            .embedder
            .embed(vec![text.to_string()], EmbedKind::Query)
            .await?;
        let vector = Arc::new(out.remove(0).vector);
        if let Some(cache) = &self.query_cache {
            metrics::counter!("wenda_query_cache_misses_total").increment(1);
            cache.insert(text.to_string(), vector.clone());
        }
        Ok(vector)
    }

    /// Embeds texts as the index does.
    pub async fn embed(&self, texts: Vec<String>, kind: EmbedKind) -> Result<Vec<EmbeddedText>> {
        validate_embed(&texts)?;
        let _permit = self.permit()?;
        self.embedder.embed(texts, kind).await
    }

    /// Adds or replaces documents; returns once they are durable and searchable.
    #[instrument(skip_all, fields(documents = inputs.len()))]
    pub async fn ingest(&self, inputs: Vec<DocumentInput>) -> Result<Vec<IngestOutcome>> {
        validate_ingest(&inputs)?;
        let _queued = self.queue_write()?;
        let writer = self.lock_writer().await;
        let mut outcomes = Vec::with_capacity(inputs.len());
        let mut todo = Vec::new();
        {
            let state = self.read_state();
            // The last copy of a repeated id wins, as if sent one after another.
            let mut last: HashMap<&str, usize> = HashMap::new();
            for (i, input) in inputs.iter().enumerate() {
                last.insert(input.id.as_str(), i);
            }
            for (i, input) in inputs.iter().enumerate() {
                let existing = state.documents.get(&input.id);
                let unchanged = existing.is_some_and(|d| {
                    d.content_hash == ingest::content_hash(&input.text)
                        && (input.title.is_empty() || input.title == d.title)
                        && (input.source.is_empty() || input.source == d.source)
                        && (input.language.is_empty() || input.language == d.language)
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
        self.apply(writer, prepared, Vec::new(), false, &|_, _| {})
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
        validate_ids("ids", &ids, limits::MAX_DELETE_IDS)?;
        let _queued = self.queue_write()?;
        let writer = self.lock_writer().await;
        let existing: Vec<String> = {
            let state = self.read_state();
            ids.into_iter()
                .filter(|id| state.documents.contains_key(id))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect()
        };
        if existing.is_empty() {
            return Ok(0);
        }
        let n = existing.len();
        self.apply(writer, Vec::new(), existing, false, &|_, _| {})
            .await?;
        Ok(n)
    }

    /// Brings the index in line with a corpus folder: new and changed files
    /// are (re)indexed, removed files dropped, all in one transaction.
    /// Documents ingested over the API are left alone.
    pub async fn sync_corpus(&self, root: &Path, progress: Progress<'_>) -> Result<SyncReport> {
        let started = Instant::now();
        let writer = self.lock_writer().await;
        let root_owned = root.to_path_buf();
        let max = self.config.max_file_bytes;
        let scan = tokio::task::spawn_blocking(move || corpus::scan(&root_owned, max))
            .await
            .map_err(|e| Error::Io(e.to_string()))?
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
            self.apply(writer, prepared, deletes, false, progress)
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
        tokio::task::spawn_blocking(move || {
            inputs
                .into_iter()
                .map(|(input, origin)| (ingest::prepare(input, counter.as_ref(), chunk), origin))
                .collect()
        })
        .await
        .map_err(|e| Error::Io(e.to_string()))
    }

    /// Embeds prepared documents, then commits them (and the deletions) in
    /// one transaction and brings the in-memory index up to it.
    ///
    /// Until the commit starts, a caller that gives up (a deadline, a
    /// cancelled call) abandons the write and nothing happens. From then on
    /// the commit and the state update run to the end on a blocking task
    /// that holds `writer`, whatever the caller does: no later write can
    /// see memory that lags the store.
    async fn apply(
        &self,
        writer: WriterGuard,
        prepared: Vec<(PreparedDocument, Origin)>,
        deletes: Vec<String>,
        clear: bool,
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
        let mut batch = WriteBatch {
            delete: deletes,
            clear_passages: clear,
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

        let commit = Commit {
            store: self.store.clone(),
            state: self.state.clone(),
            config: self.config.clone(),
            embedder: self.embedder.clone(),
        };
        // A blocking task runs to completion even when its handle is dropped.
        tokio::task::spawn_blocking(move || {
            let _writer = writer;
            commit.run(batch)
        })
        .await
        .map_err(|e| Error::Storage(format!("write task failed: {e}")))?
    }

    /// Lists documents ordered by id, after `page_token` (the last id of the previous page).
    pub fn list_documents(
        &self,
        page_size: usize,
        page_token: &str,
        language: &str,
    ) -> Result<(Vec<DocumentSummary>, String)> {
        if page_size > limits::MAX_PAGE_SIZE {
            return Err(Error::invalid(
                "page_size",
                format!("must be at most {}", limits::MAX_PAGE_SIZE),
            ));
        }
        if !language.is_empty() && !lang::is_known_code(language) {
            return Err(Error::invalid(
                "language",
                format!("unknown language code {language:?}"),
            ));
        }
        let page_size = if page_size == 0 {
            limits::DEFAULT_PAGE_SIZE
        } else {
            page_size
        };
        let state = self.read_state();
        let start = if page_token.is_empty() {
            std::ops::Bound::Unbounded
        } else {
            std::ops::Bound::Excluded(page_token.to_string())
        };
        let mut docs: Vec<DocumentSummary> = state
            .documents
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, d)| d)
            .filter(|d| language.is_empty() || d.language == language)
            .take(page_size + 1)
            .map(summary)
            .collect();
        let next = if docs.len() > page_size {
            docs.truncate(page_size);
            docs.last().map(|d| d.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok((docs, next))
    }

    /// One document with its text and passages.
    pub fn get_document(&self, id: &str) -> Result<DocumentView> {
        if id.is_empty() {
            return Err(Error::invalid("id", "must not be empty"));
        }
        let state = self.read_state();
        let doc = state
            .documents
            .get(id)
            .ok_or_else(|| Error::NotFound(format!("document {id:?}")))?;
        let passages = doc
            .passage_ids
            .iter()
            .filter_map(|pid| state.passages.get(pid).cloned())
            .collect();
        Ok(DocumentView {
            summary: summary(doc),
            text: doc.text.clone(),
            passages,
        })
    }

    pub fn info(&self) -> EngineInfo {
        let state = self.read_state();
        let mut passages_per_language = BTreeMap::new();
        for p in state.passages.values() {
            *passages_per_language
                .entry(p.language.clone())
                .or_insert(0u64) += 1;
        }
        let mut documents_per_language = BTreeMap::new();
        for d in state.documents.values() {
            *documents_per_language
                .entry(d.language.clone())
                .or_insert(0u64) += 1;
        }
        EngineInfo {
            model: self.embedder.manifest().name.clone(),
            dimension: self.embedder.manifest().dimension,
            documents: state.documents.len(),
            passages: state.passages.len(),
            passages_per_language,
            documents_per_language,
            index_build_id: format!(
                "g{}-{}",
                state.generation,
                self.embedder.manifest().fingerprint()
            ),
            index_kind: state.index.kind().to_string(),
            chunker_version: ingest::CHUNKER_VERSION.to_string(),
        }
    }
}

/// What finishes a write once its commit starts: owned, so it outlives the
/// request that started it.
struct Commit {
    store: Arc<Store>,
    state: Arc<RwLock<State>>,
    config: EngineConfig,
    embedder: Embedder,
}

impl Commit {
    /// Commits `batch` durably, then brings the in-memory state up to it.
    fn run(&self, mut batch: WriteBatch) -> Result<()> {
        let committed = self.store.write(&mut batch)?;
        self.update_state(batch, committed.generation)
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
                && index_kind_for(&self.config.index, passages_after) == state.index.kind()
        };
        if in_place {
            let applied = {
                let mut state = write_lock(&self.state);
                let applied = state.apply_write(batch, self.config.center_languages);
                state.generation = generation;
                publish_gauges(&state.passages, state.documents.values());
                applied
            }
            .and_then(|()| persist_manifest(&self.config, &self.embedder, &self.read_state()));
            match applied {
                Ok(()) => return Ok(()),
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

    /// Re-reads the whole committed store into a fresh state and swaps it in;
    /// the store is the single source of truth.
    fn reload_state(&self) -> Result<()> {
        let snapshot = self.store.snapshot()?;
        let rebuilds = self.read_state().rebuilds;
        let mut fresh = Engine::load_state(
            &self.config,
            self.embedder.manifest().dimension,
            snapshot,
            None,
        )?;
        fresh.rebuilds = rebuilds + 1;
        persist_manifest(&self.config, &self.embedder, &fresh)?;
        *write_lock(&self.state) = fresh;
        Ok(())
    }
}

// A panic while holding the lock cannot leave the state half-changed
// (changes are applied after the store commit, and a failed in-place update
// is followed by a full reload), so a poisoned lock is still safe to use.
fn read_lock(state: &RwLock<State>) -> RwLockReadGuard<'_, State> {
    state.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_lock(state: &RwLock<State>) -> RwLockWriteGuard<'_, State> {
    state.write().unwrap_or_else(PoisonError::into_inner)
}

/// Documents and passages per language, for the metrics endpoint.
fn publish_gauges<'a>(
    passages: &HashMap<u64, StoredPassage>,
    documents: impl IntoIterator<Item = &'a StoredDocument>,
) {
    let mut per_language: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for d in documents {
        per_language.entry(d.language.as_str()).or_default().0 += 1.0;
    }
    for p in passages.values() {
        per_language.entry(p.language.as_str()).or_default().1 += 1.0;
    }
    for (language, (docs, chunks)) in per_language {
        metrics::gauge!("wenda_documents", "language" => language.to_string()).set(docs);
        metrics::gauge!("wenda_passages", "language" => language.to_string()).set(chunks);
    }
}

/// The `VectorStore::kind` that `index::build` picks for this many passages.
fn index_kind_for(config: &IndexConfig, passages: usize) -> &'static str {
    let graph = match config.kind {
        crate::index::IndexKind::Exact => false,
        crate::index::IndexKind::Hnsw => true,
        crate::index::IndexKind::Auto => passages >= config.exact_threshold,
    };
    if graph { "hnsw" } else { "exact" }
}

/// Writes the manifest for `state`, with a fresh HNSW dump when the index is
/// a graph: dump into a temporary folder, rename it into place, then point
/// the manifest at it, then remove older dumps. A crash at any step leaves a
/// manifest that names a complete dump, or one that a restart ignores.
fn persist_manifest(config: &EngineConfig, embedder: &Embedder, state: &State) -> Result<()> {
    let data_dir = &config.data_dir;
    let name = format!("hnsw-g{}", state.generation);
    let tmp = data_dir.join(format!(".{name}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    // The dump only saves start-up time: failing to write one is not worth
    // failing a committed change for.
    let dumped = state.index.dump(&tmp).unwrap_or_else(|err| {
        tracing::warn!(%err, "could not dump the hnsw graph; it will be rebuilt at start-up");
        None
    });
    let hnsw = match dumped {
        Some(mut dump) => {
            let target = data_dir.join(&name);
            if target.exists() {
                std::fs::remove_dir_all(&target)?;
            }
            std::fs::rename(&tmp, &target)?;
            crate::manifest::sync_dir(data_dir)?;
            dump.dir = name.clone();
            Some(dump)
        }
        None => {
            std::fs::remove_dir_all(&tmp)?;
            None
        }
    };
    let mut ids: Vec<(&String, &String)> = state
        .documents
        .values()
        .map(|d| (&d.id, &d.content_hash))
        .collect();
    ids.sort();
    let mut corpus = Sha256::new();
    for (id, hash) in ids {
        corpus.update(id.as_bytes());
        corpus.update([0u8]);
        corpus.update(hash.as_bytes());
    }
    Manifest {
        format: 1,
        model: embedder.manifest().name.clone(),
        model_fingerprint: embedder.manifest().fingerprint(),
        chunker_version: ingest::CHUNKER_VERSION.to_string(),
        chunk_tokens: config.chunk.max_tokens,
        chunk_overlap: config.chunk.overlap_tokens,
        corpus_fingerprint: hex::encode(corpus.finalize()),
        generation: state.generation,
        documents: state.documents.len(),
        passages: state.passages.len(),
        index_kind: state.index.kind().to_string(),
        hnsw,
    }
    .write(data_dir)?;
    // Older dumps are no longer named by the manifest.
    for entry in std::fs::read_dir(data_dir)?.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with("hnsw-g") && file_name != name {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

fn summary(d: &StoredDocument) -> DocumentSummary {
    DocumentSummary {
        id: d.id.clone(),
        source: d.source.clone(),
        title: d.title.clone(),
        language: d.language.clone(),
        published: d.published.clone(),
        chunks: d.passage_ids.len() as u32,
        chars: d.text.chars().count() as u64,
        content_hash: d.content_hash.clone(),
    }
}

/// Whether passage `id` exists and passes the query's language and document
/// filters (an empty filter passes everything).
fn passes_filters(state: &State, query: &SearchQuery, id: u64) -> bool {
    state.passages.get(&id).is_some_and(|p| {
        (query.languages.is_empty() || query.languages.contains(&p.language))
            && (query.doc_ids.is_empty() || query.doc_ids.contains(&p.doc_id))
    })
}

fn ms(since: Instant) -> f32 {
    since.elapsed().as_secs_f32() * 1000.0
}

fn validate_search(q: &SearchQuery) -> Result<()> {
    let mut bad = Vec::new();
    if q.query.trim().is_empty() {
        bad.push(FieldViolation::new("query", "must not be empty"));
    } else if q.query.chars().count() > limits::MAX_QUERY_CHARS {
        bad.push(FieldViolation::new(
            "query",
            format!("must be at most {} characters", limits::MAX_QUERY_CHARS),
        ));
    }
    if q.top_k > limits::MAX_TOP_K {
        bad.push(FieldViolation::new(
            "top_k",
            format!("must be at most {}", limits::MAX_TOP_K),
        ));
    }
    for (i, l) in q.languages.iter().enumerate() {
        if !lang::is_known_code(l) {
            bad.push(FieldViolation::new(
                format!("languages[{i}]"),
                format!("unknown language code {l:?}"),
            ));
        }
    }
    for (i, id) in q.doc_ids.iter().enumerate() {
        if id.is_empty() || id.chars().count() > limits::MAX_ID_CHARS {
            bad.push(FieldViolation::new(
                format!("doc_ids[{i}]"),
                "must be 1 to 512 characters",
            ));
        }
    }
    if !q.min_score.is_finite() {
        bad.push(FieldViolation::new("min_score", "must be a finite number"));
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(bad))
    }
}

fn validate_embed(texts: &[String]) -> Result<()> {
    let mut bad = Vec::new();
    if texts.is_empty() || texts.len() > limits::MAX_EMBED_TEXTS {
        bad.push(FieldViolation::new(
            "texts",
            format!("must hold 1 to {} texts", limits::MAX_EMBED_TEXTS),
        ));
    }
    for (i, t) in texts.iter().enumerate() {
        if t.trim().is_empty() {
            bad.push(FieldViolation::new(
                format!("texts[{i}]"),
                "must not be empty",
            ));
        } else if t.chars().count() > limits::MAX_EMBED_CHARS {
            bad.push(FieldViolation::new(
                format!("texts[{i}]"),
                format!("must be at most {} characters", limits::MAX_EMBED_CHARS),
            ));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(bad))
    }
}

fn id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() || id.chars().count() > limits::MAX_ID_CHARS {
        Some("must be 1 to 512 characters")
    } else if id.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    }
}

fn validate_ids(field: &str, ids: &[String], max: usize) -> Result<()> {
    let mut bad = Vec::new();
    if ids.is_empty() || ids.len() > max {
        bad.push(FieldViolation::new(
            field,
            format!("must hold 1 to {max} ids"),
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        if let Some(problem) = id_problem(id) {
            bad.push(FieldViolation::new(format!("{field}[{i}]"), problem));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(bad))
    }
}

fn validate_ingest(docs: &[DocumentInput]) -> Result<()> {
    let mut bad = Vec::new();
    if docs.is_empty() || docs.len() > limits::MAX_INGEST_DOCUMENTS {
        bad.push(FieldViolation::new(
            "documents",
            format!("must hold 1 to {} documents", limits::MAX_INGEST_DOCUMENTS),
        ));
    }
    for (i, d) in docs.iter().enumerate() {
        if let Some(problem) = id_problem(&d.id) {
            bad.push(FieldViolation::new(format!("documents[{i}].id"), problem));
        }
        if d.text.trim().is_empty() {
            bad.push(FieldViolation::new(
                format!("documents[{i}].text"),
                "must not be empty",
            ));
        } else if d.text.len() > limits::MAX_DOCUMENT_BYTES {
            bad.push(FieldViolation::new(
                format!("documents[{i}].text"),
                "must be at most 5 MB",
            ));
        }
        if !d.language.is_empty() && !lang::is_known_code(&d.language) {
            bad.push(FieldViolation::new(
                format!("documents[{i}].language"),
                format!("unknown language code {:?}", d.language),
            ));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(bad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::testing;
    use crate::ingest::chunk::tests::ApproxCounter;
    use proptest::prelude::*;

    async fn engine(dir: &Path) -> Engine {
        Engine::open(
            EngineConfig::new(dir),
            testing::embedder(),
            Arc::new(ApproxCounter),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn ingest_search_replace_delete_with_a_small_embedder() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path()).await;
        let doc = |id: &str, text: &str| DocumentInput {
            id: id.into(),
            text: text.into(),
            ..Default::default()
        };
        let out = engine
            .ingest(vec![
                doc("a", "Mekong river flows south."),
                doc("b", "湄公河流经六个国家。"),
            ])
            .await
            .unwrap();
        assert!(
            out.iter()
                .all(|o| o.chunks == 1 && !o.replaced && !o.unchanged)
        );
        let hits = engine
            .search(SearchQuery {
                query: "Mekong river".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(hits.hits[0].passage.doc_id, "a");
        // Same id twice in one call: the last copy wins.
        let out = engine
            .ingest(vec![doc("a", "first"), doc("a", "Second version of a.")])
            .await
            .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(
            engine.get_document("a").unwrap().text,
            "Second version of a."
        );
        assert_eq!(
            engine
                .delete(vec!["a".into(), "a".into(), "zzz".into()])
                .await
                .unwrap(),
            1
        );
        assert_eq!(engine.info().documents, 1);
        assert!(matches!(engine.get_document("a"), Err(Error::NotFound(_))));
    }

    async fn top(engine: &Engine, query: &str, mode: SearchMode) -> Vec<String> {
        let query = SearchQuery {
            query: query.into(),
            mode,
            top_k: 3,
            ..Default::default()
        };
        let hits = engine.search(query).await.unwrap().hits;
        hits.into_iter().map(|h| h.passage.doc_id).collect()
    }

    /// Small writes update the index in place; the result is the one a
    /// restart (a full load of the store) gives.
    #[tokio::test]
    async fn small_writes_update_in_place_and_match_a_fresh_load() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path()).await;
        let doc = |i: usize| DocumentInput {
            id: format!("d{i:02}"),
            text: format!("Document {i} talks about topic{i} and shared words."),
            ..Default::default()
        };
        engine.ingest((0..40).map(doc).collect()).await.unwrap();
        let rebuilds = engine.read_state().rebuilds;

        engine.ingest(vec![doc(40)]).await.unwrap();
        engine.delete(vec!["d03".into()]).await.unwrap();
        let replacement = DocumentInput {
            text: "Document five now talks about the Mekong.".into(),
            ..doc(5)
        };
        engine.ingest(vec![replacement]).await.unwrap();
        assert_eq!(
            engine.read_state().rebuilds,
            rebuilds,
            "small writes must not rebuild the whole index"
        );

        assert_eq!(top(&engine, "topic40", SearchMode::Lexical).await[0], "d40");
        assert_eq!(top(&engine, "Mekong", SearchMode::Lexical).await[0], "d05");
        assert!(
            !top(&engine, "topic3", SearchMode::Lexical)
                .await
                .contains(&"d03".to_string())
        );
        assert!(engine.get_document("d03").is_err());

        let queries = ["Document 40 topic40", "Mekong", "topic17 shared"];
        let mut before = Vec::new();
        for q in queries {
            before.push(top(&engine, q, SearchMode::Dense).await[0].clone());
        }
        let info = engine.info();
        drop(engine);
        let reopened = self::engine(dir.path()).await;
        assert_eq!(reopened.info().passages, info.passages);
        for (q, expected) in queries.iter().zip(before) {
            assert_eq!(
                top(&reopened, q, SearchMode::Dense).await[0],
                expected,
                "{q}"
            );
        }
    }

    #[tokio::test]
    async fn repeated_queries_reuse_the_cached_vector() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path()).await;
        engine
            .ingest(vec![DocumentInput {
                id: "a".into(),
                text: "Mekong river flows south.".into(),
                ..Default::default()
            }])
            .await
            .unwrap();
        let cache = engine.query_cache.as_ref().unwrap();
        let first = top(&engine, "Mekong", SearchMode::Dense).await;
        assert_eq!(cache.len(), 1);
        let cached = cache.get("Mekong").unwrap();
        let again = top(&engine, "Mekong", SearchMode::Dense).await;
        assert_eq!(first, again);
        assert!(Arc::ptr_eq(&cached, &cache.get("Mekong").unwrap()));
        top(&engine, "Mekong", SearchMode::Lexical).await;
        top(&engine, "river", SearchMode::Hybrid).await;
        assert_eq!(cache.len(), 2, "lexical searches embed nothing");

        let mut config = EngineConfig::new(dir.path().join("nocache"));
        config.query_cache = 0;
        let uncached = Engine::open(config, testing::embedder(), Arc::new(ApproxCounter))
            .await
            .unwrap();
        assert!(uncached.query_cache.is_none());
    }

    /// Writes that change a large share of the index re-estimate everything.
    #[tokio::test]
    async fn large_writes_rebuild_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path()).await;
        let doc = |i: usize| DocumentInput {
            id: format!("d{i}"),
            text: format!("Document {i} about topic{i}."),
            ..Default::default()
        };
        engine.ingest((0..4).map(doc).collect()).await.unwrap();
        let rebuilds = engine.read_state().rebuilds;
        engine.ingest((4..8).map(doc).collect()).await.unwrap();
        assert_eq!(engine.read_state().rebuilds, rebuilds + 1);
        assert_eq!(engine.read_state().estimated_from, 8);
    }

    #[tokio::test]
    async fn overload_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EngineConfig::new(dir.path());
        config.max_in_flight = 1;
        let engine = Engine::open(config, testing::embedder(), Arc::new(ApproxCounter))
            .await
            .unwrap();
        let _held = engine.permit().unwrap();
        let err = engine
            .search(SearchQuery {
                query: "x".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Overloaded(_)));
    }

    fn known_language() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("zh".to_string()),
            Just("en".to_string()),
            Just("vi".to_string()),
            Just("xx".to_string()),
            ".{0,4}"
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Validation never panics and rejects exactly what the proto documents.
        #[test]
        fn search_validation_matches_the_documented_rules(
            query in prop_oneof![".{0,40}", "\\\\s{0,5}", Just("x".repeat(2049)), Just("好".repeat(2048))],
            top_k in 0usize..200,
            languages in prop::collection::vec(known_language(), 0..3),
            min_score in prop_oneof![Just(f32::NAN), Just(f32::INFINITY), -1.0f32..1.0],
        ) {
            let q = SearchQuery { query: query.clone(), top_k, languages: languages.clone(), min_score, ..Default::default() };
            let ok = !query.trim().is_empty()
                && query.chars().count() <= limits::MAX_QUERY_CHARS
                && top_k <= limits::MAX_TOP_K
                && languages.iter().all(|l| lang::is_known_code(l))
                && min_score.is_finite();
            prop_assert_eq!(validate_search(&q).is_ok(), ok);
        }

        #[test]
        fn ingest_validation_never_panics(id in ".{0,600}", text in ".{0,50}", language in known_language()) {
            let doc = DocumentInput { id: id.clone(), text: text.clone(), language: language.clone(), ..Default::default() };
            let ok = id_problem(&id).is_none() && !text.trim().is_empty() && (language.is_empty() || lang::is_known_code(&language));
            prop_assert_eq!(validate_ingest(&[doc]).is_ok(), ok);
        }
    }
}
