//! The Retrieval calls over HTTP, their tokens and body limits, and the
//! health routes. Bodies are the proto messages in the proto3 JSON mapping;
//! the work is `api`'s, shared with gRPC. The token is checked from the
//! headers before a body is read, and a body is read only up to its call's
//! bound (Ingest 64 MiB, the rest 4 MiB), as on gRPC.
//!
//! [`ROUTES`] is both what is served and what `/openapi.json` describes.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete as delete_route, get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::table::{Body, Param, Route};
use super::{ApiError, AppState};
use crate::api;
use crate::auth::Role;
use crate::engine::Engine;
use crate::error::Error;
use crate::filter::Scope;
use crate::grpc::admission::{MAX_INGEST_MESSAGE_BYTES, MAX_READ_MESSAGE_BYTES};
use crate::proto;

const ID: Param = Param::path("id", "The document's id.", "example-1");

pub(super) const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/healthz",
        summary: "Liveness: the process serves HTTP",
        role: None,
        params: &[],
        request: None,
        response: Body::Text("text/plain"),
        handler: || get(|| async { "ok" }),
    },
    Route {
        method: "get",
        path: "/readyz",
        summary: "Readiness: 200 once the model and index are loaded, 503 while they load",
        role: None,
        params: &[],
        request: None,
        response: Body::Text("text/plain"),
        handler: || get(ready),
    },
    Route {
        method: "post",
        path: "/v1/search",
        summary: "Search: ranked passages with citations for a question (Retrieval.Search)",
        role: Some(Role::Read),
        params: &[],
        request: Some(Body::Message(
            "SearchRequest",
            r#"{"query": "Who founded OpenStack?", "topK": 3, "maxPerDocument": 1, "filter": {"must": [{"key": "language", "anyOf": {"values": ["en", "vi"]}}], "mustNot": [{"key": "draft", "equals": {"boolValue": true}}]}}"#,
        )),
        response: Body::Message("SearchResponse", ""),
        handler: || post(search),
    },
    Route {
        method: "post",
        path: "/v1/search:batch",
        summary: "Several searches in one call, each answered with its response or its own error (Retrieval.SearchBatch)",
        role: Some(Role::Read),
        params: &[],
        request: Some(Body::Message(
            "SearchBatchRequest",
            r#"{"requests": [{"query": "Who founded OpenStack?", "topK": 2}, {"query": "OpenInfra là gì?", "groupByDocument": true}, {"query": ""}]}"#,
        )),
        response: Body::Message("SearchBatchResponse", ""),
        handler: || post(search_batch),
    },
    Route {
        method: "post",
        path: "/v1/embed",
        summary: "Embed texts with the served model (Retrieval.Embed)",
        role: Some(Role::Read),
        params: &[],
        request: Some(Body::Message(
            "EmbedRequest",
            r#"{"texts": ["OpenStack", "开源"], "kind": "EMBED_KIND_QUERY"}"#,
        )),
        response: Body::Message("EmbedResponse", ""),
        handler: || post(embed),
    },
    Route {
        method: "post",
        path: "/v1/documents",
        summary: "Ingest documents, replacing any with the same id (Retrieval.Ingest)",
        role: Some(Role::Admin),
        params: &[],
        request: Some(Body::Message(
            "IngestRequest",
            r#"{"documents": [{"id": "example-1", "title": "An example", "text": "wenda answers questions over multilingual articles, with citations.", "url": "https://example.com/1", "published": "2024-05-01", "metadata": {"tags": {"listValue": {"values": ["example"]}}, "draft": {"boolValue": false}}}]}"#,
        )),
        response: Body::Message("IngestResponse", ""),
        handler: || post(ingest),
    },
    Route {
        method: "get",
        path: "/v1/documents",
        summary: "List documents, a page at a time (Retrieval.ListDocuments)",
        role: Some(Role::Read),
        params: &[
            Param::query_integer(
                "page_size",
                "At most this many (default 100, at most 1000).",
                "10",
            ),
            Param::query("page_token", "The previous page's nextPageToken.", ""),
            Param::query(
                "language",
                "Only documents in this ISO 639-1 language.",
                "en",
            ),
        ],
        request: None,
        response: Body::Message("ListDocumentsResponse", ""),
        handler: || get(list_documents),
    },
    Route {
        method: "get",
        path: "/v1/documents/{id}",
        summary: "One document: its original text and passages (Retrieval.GetDocument)",
        role: Some(Role::Read),
        params: &[ID],
        request: None,
        response: Body::Message("GetDocumentResponse", ""),
        handler: || get(get_document),
    },
    Route {
        method: "delete",
        path: "/v1/documents/{id}",
        summary: "Delete a document and its passages (Retrieval.Delete)",
        role: Some(Role::Admin),
        params: &[ID],
        request: None,
        response: Body::Message("DeleteResponse", ""),
        handler: || delete_route(delete),
    },
    Route {
        method: "get",
        path: "/v1/info",
        summary: "The model, the index and the corpus's counts (Retrieval.Info)",
        role: Some(Role::Read),
        params: &[],
        request: None,
        response: Body::Message("InfoResponse", ""),
        handler: || get(info),
    },
];

/// Checks the caller's token for `role`, then returns the engine and what
/// the token may see.
pub(super) fn engine(
    state: &AppState,
    headers: &HeaderMap,
    role: Role,
) -> Result<(Arc<Engine>, Scope), ApiError> {
    let scope = state.tokens.authorize(headers, role)?;
    let engine = state.engine.borrow().clone();
    let engine =
        engine.ok_or_else(|| Error::Unavailable("model and index are still loading".into()))?;
    Ok((engine, scope))
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
    let (engine, scope) = engine(&state, request.headers(), Role::Read)?;
    let message = message(request, MAX_READ_MESSAGE_BYTES).await?;
    Ok(Json(api::search(&engine, message, &scope).await?))
}

async fn search_batch(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<proto::SearchBatchResponse>, ApiError> {
    let (engine, scope) = engine(&state, request.headers(), Role::Read)?;
    let message = message(request, MAX_READ_MESSAGE_BYTES).await?;
    Ok(Json(api::search_batch(&engine, message, &scope).await?))
}

async fn embed(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<proto::EmbedResponse>, ApiError> {
    let (engine, _) = engine(&state, request.headers(), Role::Read)?;
    let message = message(request, MAX_READ_MESSAGE_BYTES).await?;
    Ok(Json(api::embed(&engine, message).await?))
}

async fn ingest(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<proto::IngestResponse>, ApiError> {
    let (engine, scope) = engine(&state, request.headers(), Role::Admin)?;
    let message = message(request, MAX_INGEST_MESSAGE_BYTES).await?;
    Ok(Json(api::ingest(&engine, message, &scope).await?))
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<proto::DeleteResponse>, ApiError> {
    let (engine, scope) = engine(&state, &headers, Role::Admin)?;
    let request = proto::DeleteRequest { ids: vec![id] };
    Ok(Json(api::delete(&engine, request, &scope).await?))
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
    let (engine, scope) = engine(&state, &headers, Role::Read)?;
    let Query(params) = params.map_err(|err| Error::invalid("query", err.body_text()))?;
    let request = proto::ListDocumentsRequest {
        page_size: params.page_size,
        page_token: params.page_token,
        language: params.language,
    };
    Ok(Json(api::list_documents(&engine, &request, &scope)?))
}

async fn get_document(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<proto::GetDocumentResponse>, ApiError> {
    let (engine, scope) = engine(&state, &headers, Role::Read)?;
    Ok(Json(api::get_document(
        &engine,
        &proto::GetDocumentRequest { id },
        &scope,
    )?))
}

async fn info(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<proto::InfoResponse>, ApiError> {
    let (engine, scope) = engine(&state, &headers, Role::Read)?;
    Ok(Json(api::info(&engine, &scope)))
}
