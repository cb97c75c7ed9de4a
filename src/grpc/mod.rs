//! The gRPC transport: a thin adapter over the engine.
//!
//! - [`server`]: `run(listener, engine, shutdown, options)`: health,
//!   reflection, limits, TLS, graceful shutdown.
//! - [`service`]: the `wenda.v1.Retrieval` RPCs.
//! - [`status`]: the crate's error as a gRPC status.
//! - [`admission`]: token, message bound and byte budget, checked before a
//!   call's body is read.
//! - [`connections`]: the connection cap, idle timeout and fd headroom.
//! - [`codec`]: protobuf encoding, with undecodable requests as
//!   INVALID_ARGUMENT.

pub mod admission;
pub mod codec;
pub mod connections;
pub mod server;
mod service;
mod status;

pub use server::{ServeOptions, TlsOptions, run};
pub use service::RetrievalService;
