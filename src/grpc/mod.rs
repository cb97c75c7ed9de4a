//! The gRPC transport: a thin adapter over the engine.
//!
//! - [`server`]: `run(listener, engine, shutdown, options)`: health,
//!   reflection, limits, TLS, graceful shutdown.
//! - [`service`]: the `wenda.v1.Retrieval` RPCs.
//! - [`convert`]: proto ↔ engine types (shared with the CLI's `ask`).
//! - [`status`]: the crate's error as a gRPC status.
//! - [`auth`]: bearer tokens with read and admin roles.
//! - [`admission`]: token, message bound and byte budget, checked before a
//!   call's body is read.
//! - [`connections`]: the connection cap, idle timeout and fd headroom.
//! - [`codec`]: protobuf encoding, with undecodable requests as
//!   INVALID_ARGUMENT.

pub mod admission;
pub mod auth;
pub mod codec;
pub mod connections;
pub mod convert;
pub mod server;
mod service;
mod status;

pub use server::{ServeOptions, TlsOptions, run};
pub use service::RetrievalService;
