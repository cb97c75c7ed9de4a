//! Durable storage of documents, passages and their vectors, behind one
//! interface ([`Store`]) with two implementations: [`redb`], an embedded
//! file in the data directory (the default), and [`postgres`], shared by
//! any number of replicas that follow each other's writes through its
//! change log.

pub mod postgres;
pub mod redb;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;

pub use self::redb::{FILE_NAME, RedbStore, read_backup};

/// What every store does. Calls block (PostgreSQL's run on the runtime the
/// store was opened on), so the engine makes them from blocking tasks.
pub trait Store: Send + Sync {
    /// `redb` or `postgres`, for logs and `Info`.
    fn kind(&self) -> &'static str;

    /// The generation of the last committed write.
    fn generation(&self) -> Result<u64>;

    /// Reads everything, as of one commit.
    fn snapshot(&self) -> Result<Snapshot>;

    /// Applies a batch in one durable transaction. Passage ids are
    /// allocated inside it, from the committed store, and written into
    /// `batch`.
    fn write(&self, batch: &mut WriteBatch) -> Result<Committed>;

    /// What changed after `generation`, as one batch that brings a state
    /// at `generation` up to the store's current one (documents changed
    /// since are put whole, documents gone are deleted).
    fn changes_since(&self, generation: u64) -> Result<Changes>;

    /// Writes a consistent copy of the store to `to`.
    fn backup_to(&self, to: &Path) -> Result<Copied>;

    /// Whether other processes write to this store too (replicas).
    fn shared(&self) -> bool {
        false
    }

    /// Generations other processes commit, as they are seen: `None` for a
    /// store nobody else writes to.
    fn follow(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// The answer of [`Store::changes_since`].
#[derive(Debug)]
pub enum Changes {
    /// Nothing was committed after the given generation.
    UpToDate,
    /// These changes lead to `generation`.
    Batch { batch: WriteBatch, generation: u64 },
    /// The changes cannot be given as a batch (a rebuild cleared every
    /// passage, or the store is behind the given generation, as after a
    /// restore): read the whole store again.
    Reload,
}

/// Where the store lives (`--store`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// `wenda.redb` in the data directory.
    Redb,
    /// A PostgreSQL database, by URL (`postgres://…`; TLS as its `sslmode` asks).
    Postgres(String),
}

impl std::str::FromStr for StoreLocation {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "redb" {
            Ok(Self::Redb)
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(Self::Postgres(s.to_string()))
        } else {
            Err(format!("`{s}` is neither `redb` nor a `postgres://` URL"))
        }
    }
}

impl std::fmt::Display for StoreLocation {
    /// The location without a password, for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redb => f.write_str("redb"),
            Self::Postgres(url) => f.write_str(&postgres::redact(url)),
        }
    }
}

/// Where a document came from: corpus files are synced with the folder,
/// documents ingested over the API are left alone by corpus syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Corpus,
    Api,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDocument {
    pub id: String,
    pub source: String,
    pub title: String,
    pub language: String,
    pub published: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "crate::metadata::Metadata::is_empty")]
    pub metadata: crate::metadata::Metadata,
    /// The original text: citation offsets index into it.
    pub text: String,
    pub content_hash: String,
    pub origin: Origin,
    /// The document's passages, in order.
    pub passage_ids: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPassage {
    pub id: u64,
    pub doc_id: String,
    pub chunk_index: u32,
    pub text: String,
    pub char_start: usize,
    pub char_end: usize,
    pub language: String,
    pub tokens: u32,
    /// Sentence spans in the original document, in chars.
    pub sentences: Vec<(usize, usize)>,
    /// Where `text` starts in the document's clean text, in chars.
    #[serde(default)]
    pub clean_start: usize,
    /// The sentences in the document's clean text, in chars (one per
    /// entry of `sentences`): `text` holds each at `range - clean_start`.
    #[serde(default)]
    pub clean_sentences: Vec<(usize, usize)>,
}

impl StoredPassage {
    /// The stored form of a chunk of document `doc_id`, under passage id `id`.
    pub fn from_chunk(id: u64, doc_id: &str, chunk: crate::ingest::PreparedChunk) -> Self {
        let c = chunk.chunk;
        Self {
            id,
            doc_id: doc_id.to_string(),
            chunk_index: c.index,
            text: c.text,
            char_start: c.char_start,
            char_end: c.char_end,
            language: chunk.language,
            tokens: c.tokens as u32,
            sentences: c.sentences.iter().map(|r| (r.start, r.end)).collect(),
            clean_start: c.clean_start,
            clean_sentences: c.clean_sentences.iter().map(|r| (r.start, r.end)).collect(),
        }
    }
}

/// A passage with its vector, as stored.
pub type PassageRow = (StoredPassage, Vec<f32>);

/// One atomic change.
#[derive(Debug, Default)]
pub struct WriteBatch {
    /// Documents to remove with their passages and vectors.
    pub delete: Vec<String>,
    /// Documents to insert or replace, with passages and vectors. Passage
    /// ids are given by [`Store::write`], which overwrites whatever they hold.
    pub put: Vec<(StoredDocument, Vec<PassageRow>)>,
    /// Drop every passage and vector first (a rebuild).
    pub clear_passages: bool,
    pub meta: Vec<(String, String)>,
    /// What the write was decided on: documents it touches with the content
    /// hash each had then (`None`: absent). The store refuses the write
    /// ([`crate::error::Error::Conflict`]) when a committed document differs,
    /// as when another replica changed it while this write was embedded.
    pub expect: Vec<(String, Option<String>)>,
}

/// The error of a write whose expectation of document `id` the committed
/// store breaks ([`WriteBatch::expect`]).
pub(crate) fn conflict(id: &str) -> crate::error::Error {
    crate::error::Error::Conflict(format!(
        "document `{id}` changed while this write was prepared (another replica wrote it); \
         nothing was written: retry"
    ))
}

/// What a committed write was given by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The store's generation just before the write: a state at another
    /// generation missed writes (of another replica) and must catch up.
    pub previous: u64,
    /// The store's generation after the write (one more than before).
    pub generation: u64,
}

/// Meta key of the generation, counted up by every write.
pub const META_GENERATION: &str = "generation";

/// Everything stored, as read at start-up.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub documents: Vec<StoredDocument>,
    pub passages: Vec<PassageRow>,
    pub meta: BTreeMap<String, String>,
}

/// What a backup or restore copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Copied {
    pub documents: u64,
    pub passages: u64,
    pub generation: u64,
    pub bytes: u64,
}

/// A vector as stored: its f32s, little-endian.
pub(crate) fn vector_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn bytes_to_vector(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
