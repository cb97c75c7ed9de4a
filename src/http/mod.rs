//! The HTTP/JSON transport beside gRPC, on its own port (`--http-listen`):
//! the Retrieval calls with the same messages in the proto3 JSON mapping
//! (`routes`), an OpenAI-style `/v1/embeddings` (`openai`), liveness and
//! readiness, the same bearer tokens and limits, errors as HTTP statuses
//! with a JSON body (`error`), a web page (`page`) and an OpenAPI document
//! (`openapi`), all from one route table (`table`).
//!
//! A port of its own rather than sharing gRPC's: gRPC's connection limits,
//! HTTP/2 settings and admission stay as they are, and a proxy or probe
//! can reach one without the other.

mod error;
mod openai;
pub mod openapi;
mod page;
mod routes;
pub mod table;

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

/// Every route, served by [`router`] and described by `/openapi.json`.
pub const ROUTE_TABLES: &[&[table::Route]] = &[
    routes::ROUTES,
    openai::ROUTES,
    page::ROUTES,
    openapi::ROUTES,
];

/// The routes, for tests and for [`serve`]. Matched routes are counted
/// and timed; unmatched paths are not, so a scanner cannot grow the labels.
pub fn router(state: AppState) -> Router {
    table::router(ROUTE_TABLES)
        .route_layer(axum::middleware::from_fn(observed))
        .with_state(state)
}

async fn observed(
    path: axum::extract::MatchedPath,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    // A client may send any method token; only the standard ones are labels.
    let method = match request.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m,
        _ => "OTHER",
    };
    let route = format!("{method} {}", path.as_str());
    let response = next.run(request).await;
    crate::metrics::record_http(route, response.status().as_u16(), started);
    response
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
