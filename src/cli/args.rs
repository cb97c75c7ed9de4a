//! Command-line flags; every flag can also be set by a `WENDA_*` variable.
//! The flags build the configs of the engine, the model and the index.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::embed::{EmbedKind, EmbedderConfig, Precision};
use crate::engine::EngineConfig;
use crate::index::{HnswParams, IndexConfig, IndexKind};
use crate::ingest::ChunkConfig;
use crate::telemetry::LogFormat;
use crate::types::SearchMode;

#[derive(Debug, Parser)]
#[command(
    name = "wenda",
    version,
    about = "Semantic question answering over multilingual articles, over gRPC, with citations"
)]
pub struct Cli {
    /// Log format.
    #[arg(long, env = "WENDA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// TOML file of flag values, keys being the long flags in snake_case
    /// (`data_dir = "/var/lib/wenda"`); flags and WENDA_* variables override it.
    #[arg(long, env = "WENDA_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Export traces over OTLP/gRPC to this collector (e.g. http://127.0.0.1:4317);
    /// needs a binary built with `--features otel`.
    #[arg(long, env = "WENDA_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Index the corpus (incrementally) and serve gRPC.
    Serve(ServeArgs),
    /// Index a corpus folder into the data directory, then exit.
    Index(EngineArgs),
    /// Print the embedding of each text as a JSON array, one per line.
    Embed(EmbedArgs),
    /// Ask a running server a question; print ranked, cited passages.
    Ask(AskArgs),
    /// Score retrieval on a question file (hit@1, hit@5, MRR@10).
    Eval(EvalArgs),
    /// Copy the database as of one commit to a file, while wenda serves
    /// (through the data directory's backup socket) or not.
    Backup(BackupArgs),
    /// Bring a backup back into a data directory (checked first).
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The data directory of the instance to back up.
    #[arg(long, env = "WENDA_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// The backup file to write (replaced once complete).
    #[arg(long)]
    pub to: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file `wenda backup` wrote.
    #[arg(long)]
    pub from: PathBuf,
    /// The data directory to restore into; no wenda may be using it.
    #[arg(long, env = "WENDA_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Replace a database already there.
    #[arg(long)]
    pub force: bool,
}

/// The model files.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Folder with model manifests, model files and ONNX Runtime (`make setup` fills it).
    #[arg(long, env = "WENDA_MODELS", default_value = "models")]
    pub models: PathBuf,
    /// Model name (a manifest `<models>/<name>.toml`).
    #[arg(long, env = "WENDA_MODEL", default_value = "multilingual-e5-small")]
    pub model: String,
    /// Which ONNX file runs: int8 (quantized by `make setup`) or the fp32 original.
    /// An index built with one precision is re-embedded when served with the other.
    #[arg(long, env = "WENDA_PRECISION", value_enum, default_value_t = Precision::default())]
    pub precision: Precision,
    /// Model workers, each an ONNX Runtime session on one thread; 0 means
    /// one per core.
    #[arg(long, env = "WENDA_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Path of libonnxruntime.so; default `<models>/onnxruntime/libonnxruntime.so`.
    #[arg(long, env = "WENDA_ONNXRUNTIME_LIB")]
    pub onnxruntime_lib: Option<PathBuf>,
    /// Use model files without checking their sha256 against the manifest
    /// (for the official Hugging Face export dropped in by hand).
    #[arg(long, env = "WENDA_ACCEPT_EXISTING_MODEL", default_value_t = false, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub accept_existing_model: bool,
}

impl ModelArgs {
    pub fn embedder_config(&self) -> EmbedderConfig {
        let mut c = EmbedderConfig::new(&self.models);
        c.model = self.model.clone();
        c.precision = self.precision;
        c.threads = self.threads;
        c.onnxruntime_lib = self.onnxruntime_lib.clone();
        c.verify_files = !self.accept_existing_model;
        c
    }
}

/// The corpus, data directory, model, chunking and index.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Folder of articles to index (.txt, .md, .html); synced at start-up.
    #[arg(long, env = "WENDA_CORPUS")]
    pub corpus: Option<PathBuf>,
    /// Where the database and index live (with --store postgres://…, the
    /// manifest and graph dump only: one per replica).
    #[arg(long, env = "WENDA_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Where documents, passages and vectors are kept: `redb` (a file in
    /// --data-dir, one process) or a `postgres://` URL shared by replicas
    /// that all accept writes (TLS as its `sslmode` asks).
    #[arg(
        long,
        env = "WENDA_STORE",
        default_value = "redb",
        hide_default_value = false
    )]
    pub store: crate::store::StoreLocation,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Most model tokens in a passage.
    #[arg(long, env = "WENDA_CHUNK_TOKENS", default_value_t = ChunkConfig::default().max_tokens)]
    pub chunk_tokens: usize,
    /// Tokens of sentences repeated between neighbouring passages.
    #[arg(long, env = "WENDA_CHUNK_OVERLAP", default_value_t = ChunkConfig::default().overlap_tokens)]
    pub chunk_overlap: usize,
    /// Vector index: exact below --exact-threshold passages and hnsw above (auto), or forced.
    #[arg(long, env = "WENDA_INDEX", value_enum, default_value_t = IndexKind::Auto)]
    pub index: IndexKind,
    /// With --index auto, corpora under this many passages are searched exactly.
    #[arg(long, env = "WENDA_EXACT_THRESHOLD", default_value_t = IndexConfig::default().exact_threshold)]
    pub exact_threshold: usize,
    /// HNSW links per node (M), 4 to 256.
    #[arg(long, env = "WENDA_HNSW_M", default_value_t = HnswParams::default().m)]
    pub hnsw_m: usize,
    /// HNSW candidate list while building.
    #[arg(long, env = "WENDA_HNSW_EF_CONSTRUCTION", default_value_t = HnswParams::default().ef_construction)]
    pub hnsw_ef_construction: usize,
    /// HNSW candidate list while searching; default: 64 up to 100,000
    /// passages, growing with the index beyond (128 at a million).
    #[arg(long, env = "WENDA_HNSW_EF_SEARCH")]
    pub hnsw_ef_search: Option<usize>,
    /// Remove each language's mean vector from passages and queries (cross-language ranking).
    #[arg(long, env = "WENDA_CENTER_LANGUAGES", default_value_t = true, action = clap::ArgAction::Set)]
    pub center_languages: bool,
    /// Chinese↔English dictionary (CC-CEDICT) for lexical matching across
    /// languages; default `<models>/lexicon/cc-cedict.txt`; `none` turns it off.
    #[arg(long, env = "WENDA_LEXICON")]
    pub lexicon: Option<PathBuf>,
    /// How hybrid mode merges the dense and lexical lists (docs/retrieval.md).
    #[arg(long, env = "WENDA_FUSION", value_enum, default_value_t = crate::rank::Fusion::default())]
    pub fusion: crate::rank::Fusion,
    /// Weight of the lexical list against the dense one in hybrid fusion.
    #[arg(long, env = "WENDA_LEXICAL_WEIGHT", default_value_t = crate::rank::DEFAULT_LEXICAL_WEIGHT)]
    pub lexical_weight: f32,
    /// Requests in flight before RESOURCE_EXHAUSTED.
    #[arg(long, env = "WENDA_MAX_IN_FLIGHT", default_value_t = crate::engine::DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Query vectors kept for repeated questions (least recently used
    /// dropped first); 0 turns the cache off.
    #[arg(long, env = "WENDA_QUERY_CACHE", default_value_t = crate::engine::DEFAULT_QUERY_CACHE)]
    pub query_cache: usize,
    /// Overlapping passages of one document in a response: merged into the
    /// better-ranked one, or the lower one dropped.
    #[arg(long, env = "WENDA_OVERLAP", value_enum, default_value_t = crate::rank::Overlap::default())]
    pub overlap: crate::rank::Overlap,
    /// The relevance (0 to 1) a response's first passage needs for the
    /// response to be `answerable`.
    #[arg(long, env = "WENDA_ANSWER_THRESHOLD", default_value_t = crate::rank::DEFAULT_ANSWER_THRESHOLD)]
    pub answer_threshold: f32,
    /// Start even when wenda.redb disagrees with the manifest (lost,
    /// truncated or replaced), serving the store as it is, and drop
    /// documents whose text fails its content hash. Without it either
    /// stops start-up with an error.
    #[arg(long, env = "WENDA_RECOVER", action = clap::ArgAction::SetTrue)]
    pub recover: bool,
}

impl EngineArgs {
    /// Checks combinations clap cannot (an M above 256 is refused here, not by the graph).
    pub fn validate(&self) -> anyhow::Result<()> {
        self.index_config().hnsw.validate()?;
        anyhow::ensure!(
            (16..=500).contains(&self.chunk_tokens),
            "--chunk-tokens must be between 16 and 500"
        );
        anyhow::ensure!(
            self.chunk_overlap < self.chunk_tokens,
            "--chunk-overlap must be smaller than --chunk-tokens"
        );
        anyhow::ensure!(self.max_in_flight > 0, "--max-in-flight must be at least 1");
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.answer_threshold),
            "--answer-threshold must be between 0 and 1"
        );
        anyhow::ensure!(
            (0.0..=10.0).contains(&self.lexical_weight),
            "--lexical-weight must be between 0 and 10"
        );
        Ok(())
    }

    /// The lexicon file to load, if any.
    pub fn lexicon_path(&self) -> Option<PathBuf> {
        match &self.lexicon {
            Some(p) if p.as_os_str() == "none" => None,
            Some(p) => Some(p.clone()),
            None => Some(self.model.models.join("lexicon/cc-cedict.txt")),
        }
    }

    pub fn index_config(&self) -> IndexConfig {
        IndexConfig {
            kind: self.index,
            exact_threshold: self.exact_threshold,
            hnsw: HnswParams {
                m: self.hnsw_m,
                ef_construction: self.hnsw_ef_construction,
                ef_search: self.hnsw_ef_search,
            },
        }
    }

    pub fn engine_config(&self) -> EngineConfig {
        let mut c = EngineConfig::new(&self.data_dir);
        c.store = self.store.clone();
        c.chunk = ChunkConfig {
            max_tokens: self.chunk_tokens,
            overlap_tokens: self.chunk_overlap,
        };
        c.index = self.index_config();
        c.center_languages = self.center_languages;
        c.max_in_flight = self.max_in_flight;
        c.fusion = self.fusion;
        c.lexical_weight = self.lexical_weight;
        c.query_cache = self.query_cache;
        c.overlap = self.overlap;
        c.answer_threshold = self.answer_threshold;
        c.recover = self.recover;
        c
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "WENDA_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Serve the HTTP/JSON API (and `/v1/embeddings`) on this address (e.g.
    /// 127.0.0.1:8080); off when unset.
    #[arg(long, env = "WENDA_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9090); off when unset.
    #[arg(long, env = "WENDA_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Bearer tokens, one `read TOKEN` or `admin TOKEN` per line (tokens may
    /// also come from WENDA_READ_TOKENS and WENDA_ADMIN_TOKENS, comma
    /// separated); with none, every caller may do everything.
    #[arg(long, env = "WENDA_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); with --tls-key, serves TLS only.
    #[arg(long, env = "WENDA_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "WENDA_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA certificate (PEM) client certificates must chain to (mutual TLS).
    #[arg(long, env = "WENDA_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Connections open at once; more are closed as they arrive, with a
    /// log line. Lowered at start-up if the open-file limit cannot hold it.
    #[arg(long, env = "WENDA_MAX_CONNECTIONS", default_value_t = crate::grpc::connections::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Seconds a connection may stay idle (no bytes either way, no call in
    /// flight) before it is closed.
    #[arg(long, env = "WENDA_IDLE_TIMEOUT", default_value_t = crate::grpc::connections::DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub idle_timeout: u64,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Query or passage prefix.
    #[arg(long, value_enum, default_value_t = EmbedKind::Query)]
    pub kind: EmbedKind,
    /// Texts to embed; with none, one text per line of standard input.
    pub texts: Vec<String>,
    /// Print {"vector":[...],"tokens":N,"truncated":bool} objects instead of bare arrays.
    #[arg(long)]
    pub with_tokens: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The question.
    pub question: String,
    /// Server address: `host:port` or `http(s)://host:port`.
    #[arg(long, env = "WENDA_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// Bearer token, for a server started with tokens.
    #[arg(long, env = "WENDA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Only passages in these languages (ISO 639-1; repeat the flag).
    #[arg(long = "language")]
    pub languages: Vec<String>,
    /// Show each passage's component scores.
    #[arg(long)]
    pub explain: bool,
    /// Passages to show.
    #[arg(long, default_value_t = 5)]
    pub top_k: u32,
    /// Retrieval mode.
    #[arg(long, value_enum, default_value_t = SearchMode::Hybrid)]
    pub mode: SearchMode,
    /// Only documents whose metadata KEY holds one of the comma-separated
    /// values (`tags=cloud,openstack`; repeat the flag: all must hold).
    #[arg(long = "filter", value_name = "KEY=VALUES")]
    pub filters: Vec<String>,
    /// A whole filter in the proto3 JSON mapping, as the HTTP API takes it
    /// (`{"must": [{"key": "published", "timeRange": {"from": "2024-01-01"}}]}`);
    /// `--filter` flags are added to its `must`.
    #[arg(long, value_name = "JSON")]
    pub filter_json: Option<String>,
    /// At most this many passages of one document.
    #[arg(long, default_value_t = 0)]
    pub max_per_document: u32,
    /// Print the response as JSON (the proto3 JSON mapping, as the HTTP API answers).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Questions with gold answers (JSON lines: question, lang, gold[{doc, contains[]}]).
    #[arg(long)]
    pub qa: PathBuf,
    /// Retrieval mode to score.
    #[arg(long, value_enum, default_value_t = SearchMode::Hybrid)]
    pub mode: SearchMode,
    /// Print the scores as JSON.
    #[arg(long)]
    pub json: bool,
    /// Questions the documents do not answer (same format, empty gold):
    /// prints how many are refused (not `answerable`).
    #[arg(long)]
    pub unanswerable: Option<PathBuf>,
    /// Write the evidence of the first 10 passages of every question (both
    /// files) as JSON lines, for `bench/fit_relevance.py`.
    #[arg(long)]
    pub evidence: Option<PathBuf>,
    /// State every question's language as this code (e.g. `und`) instead
    /// of detecting it: measures what the query language does to ranking.
    #[arg(long)]
    pub query_language: Option<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}
