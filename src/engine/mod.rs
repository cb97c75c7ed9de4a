//! The transport-agnostic service: ingest, search, rank. Owns the store and
//! the index, keeps them in agreement, and bounds the work in flight. The
//! gRPC adapter and the CLI both call it; neither knows about the other.
//!
//! - [`search`]: searches and embeddings, read-only.
//! - [`write`]: ingests, deletes and corpus syncs: one writer at a time,
//!   each write committed whole or not at all.
//! - [`documents`]: listing and reading documents, `Info`.
//! - [`follow`]: applying the writes other replicas commit to a shared store.
//! - [`state`]: the in-memory index and documents the store is loaded into.
//! - [`persist`]: the data directory's manifest and graph dumps.
//! - [`validate`]: request checks, one field violation per bad field.

mod documents;
mod follow;
pub mod paging;
pub mod persist;
mod search;
pub use search::{DEFAULT_GROUP_SIZE, EXACT_FILTER_MAX};
mod state;
#[cfg(test)]
mod tests;
// Public for the fuzz targets (fuzz/fuzz_targets/validate.rs).
pub mod validate;
mod write;

use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::index::IndexConfig;
use crate::ingest::{ChunkConfig, TokenCounter};
use crate::rank;
use crate::store::{RedbStore, Snapshot, Store, StoreLocation};
use crate::types::limits;

use persist::{META_LAYOUT, Manifest, layout_fingerprint, persist_manifest};
use state::{State, read_lock};

/// Searches and embeds in flight at once by default.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// Query vectors cached by default.
pub const DEFAULT_QUERY_CACHE: usize = 1024;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The manifest and graph dumps; the redb store too, unless `store`
    /// names PostgreSQL.
    pub data_dir: PathBuf,
    /// Where documents, passages and vectors are kept.
    pub store: StoreLocation,
    pub chunk: ChunkConfig,
    pub index: IndexConfig,
    /// Searches and embeds in flight at once; more get RESOURCE_EXHAUSTED.
    pub max_in_flight: usize,
    /// Corpus files larger than this are skipped.
    pub max_file_bytes: u64,
    /// Subtract each language's mean vector from passages and queries.
    pub center_languages: bool,
    /// Chinese↔English dictionary for lexical matching across languages.
    pub lexicon: Option<Arc<crate::lexical::Lexicon>>,
    /// How hybrid mode merges the dense and lexical lists.
    pub fusion: rank::Fusion,
    /// Weight of the lexical ranking against the dense one in hybrid fusion.
    pub lexical_weight: f32,
    /// Query vectors cached for repeated questions; 0 turns the cache off.
    pub query_cache: usize,
    /// What a response does with overlapping passages of one document.
    pub overlap: rank::Overlap,
    /// The relevance a response's first passage needs to be answerable.
    pub answer_threshold: f32,
    /// Serve the store as it is when it disagrees with the manifest, and
    /// drop documents whose text fails its content hash, instead of
    /// refusing to start.
    pub recover: bool,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            store: StoreLocation::Redb,
            chunk: ChunkConfig::default(),
            index: IndexConfig::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_file_bytes: 10 * 1024 * 1024,
            center_languages: true,
            lexicon: None,
            fusion: rank::Fusion::default(),
            lexical_weight: rank::DEFAULT_LEXICAL_WEIGHT,
            query_cache: DEFAULT_QUERY_CACHE,
            overlap: rank::Overlap::default(),
            answer_threshold: rank::DEFAULT_ANSWER_THRESHOLD,
            recover: false,
        }
    }
}

pub struct Engine {
    embedder: Embedder,
    counter: Arc<dyn TokenCounter>,
    store: Arc<dyn Store>,
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
    /// Applies other replicas' writes as they are committed (a shared
    /// store only); stopped with the engine.
    follower: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(follower) = &self.follower {
            follower.abort();
        }
    }
}

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
        let manifest = Manifest::read(&config.data_dir);
        // redb takes an empty file for a new database; with a manifest
        // beside it that is a lost database, and the agreement check says so.
        let mut empty_file = false;
        let store: Arc<dyn Store> = match &config.store {
            StoreLocation::Redb => {
                let db_path = config.data_dir.join(crate::store::FILE_NAME);
                empty_file = std::fs::metadata(&db_path).is_ok_and(|m| m.len() == 0);
                Arc::new(blocking(move || RedbStore::open(&db_path)).await??)
            }
            StoreLocation::Postgres(url) => {
                Arc::new(crate::store::postgres::PgStore::connect(url).await?)
            }
        };
        let (checked, recover, opened) = (manifest.clone(), config.recover, store.clone());
        let snapshot =
            blocking(move || open_checked(opened.as_ref(), checked.as_ref(), recover, empty_file))
                .await??;
        let layout = layout_fingerprint(&embedder, &config.chunk);
        let stale = snapshot.meta.get(META_LAYOUT).is_some_and(|l| *l != layout)
            && !snapshot.documents.is_empty();
        let dimension = embedder.manifest().dimension;
        let mut state = match State::load(&config, dimension, snapshot, manifest.clone()) {
            Ok(state) => state,
            // A graph dump that passed its checks and still did not open
            // (the vectors were already let go, to keep the peak memory
            // down): read the store again and build the graph instead.
            Err(err) if manifest.as_ref().is_some_and(|m| m.hnsw.is_some()) => {
                tracing::warn!(%err, "loading with the hnsw dump failed; rebuilding the graph");
                let reread = store.clone();
                let snapshot = blocking(move || reread.snapshot()).await??;
                let mut state = State::load(&config, dimension, snapshot, None)?;
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
        let mut engine = Self {
            permits: Arc::new(Semaphore::new(config.max_in_flight)),
            embedder,
            counter,
            store,
            state: Arc::new(RwLock::new(state)),
            writer: Arc::new(tokio::sync::Mutex::new(())),
            write_queue: Semaphore::new(limits::MAX_QUEUED_WRITES),
            query_cache: (config.query_cache > 0)
                .then(|| quick_cache::sync::Cache::new(config.query_cache)),
            config,
            follower: None,
        };
        if stale {
            engine.rebuild_all().await?;
        }
        engine.follower = engine.follow();
        Ok(engine)
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
}

/// Reads the store, refusing one that disagrees with its manifest or holds
/// a document whose text fails its content hash (with `recover`: serving
/// the store as it is, without those documents). A shared store is checked
/// against no manifest: other replicas move it on, and a restore moves it
/// back; the local manifest and dump only save a graph build.
fn open_checked(
    store: &dyn Store,
    manifest: Option<&Manifest>,
    recover: bool,
    empty_file: bool,
) -> Result<Snapshot> {
    let mut snapshot = store.snapshot()?;
    if let Some(manifest) = manifest.filter(|_| !store.shared()) {
        match persist::check_agreement(manifest, &snapshot) {
            Ok(()) => {}
            Err(err) if recover => {
                tracing::warn!(%err, "--recover: serving the store as it is");
            }
            Err(err) if empty_file => {
                return Err(Error::Storage(format!(
                    "{} is empty (0 bytes); {err}",
                    crate::store::FILE_NAME
                )));
            }
            Err(err) => return Err(err),
        }
    }
    let altered = persist::altered_documents(&snapshot);
    if !altered.is_empty() {
        let listed = altered
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if !recover {
            return Err(Error::Storage(format!(
                "{} documents ({listed}) do not match their content hash: the {} store was \
                 changed by something other than wenda. Restore it from a backup, or start \
                 with --recover to drop those documents",
                altered.len(),
                store.kind()
            )));
        }
        tracing::warn!(count = altered.len(), documents = %listed, "--recover: dropping documents that fail their content hash");
        store.write(&mut crate::store::WriteBatch {
            delete: altered,
            ..Default::default()
        })?;
        snapshot = store.snapshot()?;
    }
    Ok(snapshot)
}

/// Runs blocking work off the async runtime. Once started it runs to the
/// end even if the caller stops waiting. A panic in it is a bug, reported
/// as [`Error::Internal`] whatever the work was.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal(format!("background task failed: {e}")))
}

fn ms(since: Instant) -> f32 {
    since.elapsed().as_secs_f32() * 1000.0
}
