//! wenda (问答): semantic question answering over multilingual articles,
//! served over gRPC, with every passage cited back to its source.
//!
//! # Layout
//! Data flows one way: transport → engine → compute.
//! - [`server`]: `run(listener, engine, shutdown)`: health, reflection, the service.
//! - [`grpc`]: the thin adapter: validates and converts proto ↔ domain, maps errors.
//! - [`engine`]: the transport-agnostic service: ingest, search, rank; owns store and index.
//! - [`rank`]: language-centred dense scores, fusion with lexical scores, highlights.
//! - [`ingest`]: parsing, cleaning, chunking with citation offsets, language detection.
//! - [`embed`]: multilingual-e5-small through fastembed on its own thread.
//! - [`index`]: the `VectorStore` trait; exact and HNSW (USearch) implementations.
//! - [`lexical`]: BM25 over segmented words.
//! - [`lexicon`]: Chinese↔English dictionary translations for lexical matching across languages.
//! - [`store`]: documents, passages and vectors in redb.
//! - [`manifest`]: what the data directory's index was built with; the HNSW dump.
//! - [`metrics`]: Prometheus metrics on their own HTTP listener.
//! - [`config`]: command-line flags and environment variables.
//! - [`config_file`]: the optional TOML config file; its values become the flags' defaults.
//! - [`telemetry`]: logs on stderr and, with the `otel` feature, span export over OTLP.
//! - [`cli`]: the `index`, `embed`, `ask` and `eval` commands.
//! - [`auth`]: optional bearer tokens with read and admin roles.
//! - [`error`]: the one error type and its mapping to gRPC status codes.

pub mod auth;
pub mod cli;
pub mod config;
pub mod config_file;
pub mod embed;
pub mod engine;
pub mod error;
pub mod eval;
pub mod grpc;
pub mod index;
pub mod ingest;
pub mod lexical;
pub mod lexicon;
pub mod metrics;
pub mod rank;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod types;

/// Code generated from `proto/wenda/v1/wenda.proto`.
pub mod proto {
    tonic::include_proto!("wenda.v1");

    /// The descriptor set served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("wenda_descriptor");
}
