//! Integration tests against real parts: the converted model on ONNX
//! Runtime, redb on disk, the gRPC server on port 0 and real clients.
//! One test binary with modules keeps link time down.

mod cancellation;
mod common;
mod deploy;
mod embeddings;
mod grpc;
mod http;
mod ingest;
mod integrity;
mod limits;
#[cfg(feature = "otel")]
mod otel;
mod processes;
mod quality;
mod security;
