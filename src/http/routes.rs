//! The Retrieval calls over HTTP, their tokens and body limits, and the
//! health routes. Bodies are the proto messages in the proto3 JSON mapping;
//! the work is `api`'s, shared with gRPC. The token is checked from the
//! headers before a body is read, and a body is read only up to its call's
//! bound (Ingest 64 MiB, the rest 4 MiB), as on gRPC.
//!
//! | route | call | role |
//! |---|---|---|
//! | `POST /v1/search` | Search | read |
//! | `POST /v1/embed` | Embed | read |
//! | `GET /v1/documents?page_size=&page_token=&language=` | ListDocuments | read |
//! | `GET /v1/documents/{id}` | GetDocument | read |
//! | `POST /v1/documents` | Ingest | admin |
//! | `DELETE /v1/documents/{id}` | Delete | admin |
//! | `GET /v1/info` | Info | read |
//! | `GET /healthz`, `GET /readyz` | live; ready (model and index loaded) | none |

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{ApiError, AppState};
use crate::api;
use crate::auth::Role;
use crate::engine::Engine;
use crate::error::Error;
use crate::grpc::admission::{MAX_INGEST_MESSAGE_BYTES, MAX_READ_MESSAGE_BYTES};
use crate::proto;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/v1/search", post(search))
        .route("/v1/embed", post(embed))
        .route("/v1/documents", get(list_documents).post(ingest))
        .route("/v1/documents/{id}", get(get_document).delete(delete))
        .route("/v1/info", get(info))
}

/// Checks the caller's token for `role`, then returns the engine.
pub(super) fn engine(
    state: &AppState,
    headers: &HeaderMap,
    role: Role,
) -> Result<Arc<Engine>, ApiError> {
    state.tokens.authorize(headers, role)?;
    let engine = state.engine.borrow().clone();
    engine.ok_or_else(|| Error::Unavailable("model and index are still loading".into()).into())
}

/// Reads a request body of at most `limit` bytes as the message `T`.
pub(super) async fn message<T: DeserializeOwned>(
    request: Request,
    limit: usize,
) -> Result<T, ApiError> {
    let name = std::any::type_name::<T>()
        .rsplit("::")
        .next()
        .unwrap_or("message");
    let body = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|err| {
            Error::Overloaded(format!(
                "the body could not be read within {limit} bytes: {err}"
            ))
        })?;
    serde_json::from_slice(&body)
        .map_err(|err| Error::invalid("body", format!("not a valid {name}: {err}")).into())
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if state.engine.borrow().is_some() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "loading")
    }
}

async fn search(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<proto::SearchResponse>, ApiError> {
    let engine = engine(&state, request.headers(), Role::Read)?;
    let message = message(request, MAX_READ_MESSAGE_BYTES).await?;
    Ok(Json(api::search(&engine, message).await?))
}

async fn embed(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<proto::EmbedResponse>, ApiError> {
    let engine = engine(&state, request.headers(), Role::Read)?;
    let message = message(request, MAX_READ_MESSAGE_BYTES).await?;
    Ok(Json(api::embed(&engine, message).await?))
}

async fn ingest(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<proto::IngestResponse>, ApiError> {
    let engine = engine(&state, request.headers(), Role::Admin)?;
    let message = message(request, MAX_INGEST_MESSAGE_BYTES).await?;
    Ok(Json(api::ingest(&engine, message).await?))
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<proto::DeleteResponse>, ApiError> {
    let engine = engine(&state, &headers, Role::Admin)?;
    let request = proto::DeleteRequest { ids: vec![id] };
    Ok(Json(api::delete(&engine, request).await?))
}

/// ListDocuments' fields as query parameters, in either spelling.
#[derive(Debug, Default, Deserialize)]
struct ListParams {
    #[serde(default, alias = "pageSize")]
    page_size: u32,
    #[serde(default, alias = "pageToken")]
    page_token: String,
    #[serde(default)]
    language: String,
}

async fn list_documents(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<proto::ListDocumentsResponse>, ApiError> {
    let engine = engine(&state, &headers, Role::Read)?;
    let Query(params) = params.map_err(|err| Error::invalid("query", err.body_text()))?;
    let request = proto::ListDocumentsRequest {
        page_size: params.page_size,
        page_token: params.page_token,
        language: params.language,
    };
    Ok(Json(api::list_documents(&engine, &request)?))
}

async fn get_document(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<proto::GetDocumentResponse>, ApiError> {
    let engine = engine(&state, &headers, Role::Read)?;
    Ok(Json(api::get_document(
        &engine,
        &proto::GetDocumentRequest { id },
    )?))
}

async fn info(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<proto::InfoResponse>, ApiError> {
    let engine = engine(&state, &headers, Role::Read)?;
    Ok(Json(api::info(&engine)))
}
