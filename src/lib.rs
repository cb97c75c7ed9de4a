//! wenda (问答): semantic question answering over multilingual articles,
//! served over gRPC, with every passage cited back to its source.
//!
//! # Layout
//! Data flows one way: transport → engine → compute; `docs/architecture.md`
//! follows a request and an ingest through the modules.
//! - [`grpc`]: the transport: `grpc::run(listener, engine, shutdown, options)`
//!   (health, reflection, TLS, drain), the Retrieval service, proto ↔ types,
//!   error → status, bearer tokens.
//! - [`cli`]: the binary's commands (`serve`, `index`, `embed`, `ask`,
//!   `eval`), their flags, the config file, the evaluation.
//! - [`engine`]: the transport-agnostic service: search, writes, documents;
//!   owns the store and the in-memory index and keeps them in agreement.
//! - [`http`]: the HTTP/JSON transport beside gRPC: the same messages in
//!   the proto3 JSON mapping, an OpenAI-style embeddings route.
//! - [`api`]: the Retrieval calls on proto messages, for both transports.
//! - [`auth`]: bearer tokens with read and admin roles, for both transports.
//! - [`convert`]: proto messages ↔ engine types.
//! - [`types`]: the engine's request and response types and request limits.
//! - [`metadata`]: documents' typed metadata values, their limits, timestamps.
//! - [`filter`]: the search filter over metadata and document fields.
//! - [`rank`]: fusion of dense and lexical candidates, highlights.
//! - [`ingest`]: parsing, cleaning, chunking with citation offsets, language detection.
//! - [`embed`]: multilingual-e5-small on ONNX Runtime on its own thread;
//!   the model's files and checks; language centring of the vectors.
//! - [`index`]: the `VectorStore` trait; exact and HNSW (USearch) stores,
//!   kernels, dumps.
//! - [`lexical`]: terms, BM25, and the dictionaries that translate queries.
//! - [`store`]: documents, passages and vectors in redb.
//! - [`metrics`]: Prometheus metrics on their own HTTP listener.
//! - [`telemetry`]: logs on stderr and, with the `otel` feature, span export over OTLP.
//! - [`error`]: the one error type.

pub mod answer_type;
pub mod api;
pub mod auth;
pub mod cli;
pub mod convert;
pub mod embed;
pub mod engine;
pub mod error;
pub mod filter;
pub mod grpc;
pub mod http;
pub mod index;
pub mod ingest;
pub mod lexical;
pub mod metadata;
pub mod metrics;
pub mod rank;
pub mod store;
pub mod telemetry;
pub mod types;

/// Code generated from `proto/wenda/v1/wenda.proto`.
pub mod proto {
    tonic::include_proto!("wenda.v1");
    include!(concat!(env!("OUT_DIR"), "/wenda.v1.serde.rs"));

    /// The descriptor set served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("wenda_descriptor");
}
