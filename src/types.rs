//! The engine's request and response types and the limits on requests:
//! what the gRPC adapter, the CLI and the evaluation speak to the engine in,
//! free of any transport type.

use std::collections::BTreeMap;

use crate::ingest::corpus;
use crate::store::StoredPassage;

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
    pub const MAX_TITLE_CHARS: usize = 1024;
    pub const MAX_SOURCE_CHARS: usize = 2048;
    /// Entries of a search's `languages` and `doc_ids` filters.
    pub const MAX_FILTER_LANGUAGES: usize = 100;
    pub const MAX_FILTER_DOC_IDS: usize = 1000;
    /// Field violations one error reports; the rest are counted.
    pub const MAX_VIOLATIONS: usize = 20;
    /// Characters of a bad value an error message repeats.
    pub const MAX_ECHO_CHARS: usize = 40;
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
    /// ISO 639-1; empty: detected.
    pub query_language: String,
    /// Passages whose relevance is below this are dropped; 0 keeps all.
    pub min_relevance: f32,
    /// Only passages of documents that pass it.
    pub filter: Option<crate::filter::Filter>,
    /// At most this many passages of one document; 0: no cap (3 when
    /// grouping).
    pub max_per_document: usize,
    /// `top_k` counts documents, each with its best passages.
    pub group_by_document: bool,
    /// Where to continue (`engine::paging`); empty: the first page.
    pub page_token: String,
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
    pub url: Option<String>,
    pub published: Option<String>,
    /// The ranking score: relative to the other candidates of this query.
    pub score: f32,
    pub rank: u32,
    pub highlights: Vec<Highlight>,
    pub explanation: Option<Explanation>,
    /// Estimated probability that the passage answers the query:
    /// comparable across queries (`rank::relevance`).
    pub relevance: f32,
    /// What `relevance` was computed from.
    pub evidence: Evidence,
}

/// Evidence that a passage answers a query, each part measured on the
/// passage and the query alone, not against the other candidates.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Evidence {
    /// Cosine of the centred query and passage vectors (the dense list's
    /// lowest when the passage is not in it; 0 without a dense search).
    pub cosine: f32,
    /// Share of the query's concepts (a word with its translations) the
    /// passage holds, each weighted by its IDF in the index.
    pub concepts: f32,
    /// Found by both the dense and the lexical search.
    pub both_lists: bool,
    /// The query asks for a number (a count, an amount, a year, a date)
    /// and the passage holds none besides the query's own
    /// (`answer_type::AskedNumber`).
    pub lacks_asked_number: bool,
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
    /// The first passage's relevance reaches the answer threshold: the
    /// documents likely answer the query.
    pub answerable: bool,
    pub query_language: String,
    pub mode: SearchMode,
    pub timings: Timings,
    /// Hits are grouped by document (a document's hits are consecutive,
    /// documents in the order of their best hit).
    pub grouped: bool,
    /// The token of the next page, when there is one.
    pub next_page_token: Option<String>,
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
    pub url: Option<String>,
    pub metadata: crate::metadata::Metadata,
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
    /// [`crate::store::Store::kind`].
    pub store: String,
    /// The store generation the in-memory state reflects.
    pub applied_sequence: u64,
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
