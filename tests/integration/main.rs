//! Integration tests against real parts: the converted model on ONNX
//! Runtime, redb on disk, a throwaway PostgreSQL server, the gRPC and HTTP
//! servers on port 0, real clients and a real browser.
//! One test binary with modules keeps link time down.

mod backup;
mod browser;
mod cancellation;
mod common;
mod deploy;
mod embeddings;
mod filters;
mod grpc;
mod http;
mod ingest;
mod integrity;
mod limits;
#[cfg(feature = "otel")]
mod otel;
mod postgres_server;
mod processes;
mod quality;
mod replicas;
mod search_shapes;
mod security;
mod startup;
mod tenancy;
