//! The HTTP/JSON transport beside gRPC, on its own port (`--http-listen`):
//! the Retrieval calls with the same messages in the proto3 JSON mapping
//! (`routes`), an OpenAI-style `/v1/embeddings` (`openai`), liveness and
//! readiness, the same bearer tokens and limits, and errors as HTTP
//! statuses with a JSON body (`error`).
//!
//! A port of its own rather than sharing gRPC's: gRPC's connection limits,
//! HTTP/2 settings and admission stay as they are, and a proxy or probe
//! can reach one without the other.

mod error;
mod openai;
mod routes;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::Tokens;
use crate::engine::Engine;

pub use error::ApiError;

/// What every handler shares: the engine once it is loaded, and the tokens.
#[derive(Clone)]
pub struct AppState {
    pub engine: watch::Receiver<Option<Arc<Engine>>>,
    pub tokens: Arc<Tokens>,
}

/// The routes, for tests and for [`serve`].
pub fn router(state: AppState) -> Router {
    routes::router().merge(openai::router()).with_state(state)
}

/// Serves `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "http listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
