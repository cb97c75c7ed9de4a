//! `POST /v1/embeddings` in the shape of OpenAI's embeddings API, so
//! clients and frameworks written for it work unchanged: `input` (a string
//! or a list), `model`, `encoding_format` (`float` or `base64`: little-endian
//! f32s). e5 embeds queries and passages differently; OpenAI's API has no
//! such field, so texts are embedded as queries (e5's advice for
//! similarity between short texts) unless the request's `input_type` says
//! `passage` (or `document`).

use axum::Json;
use axum::extract::{Request, State};
use axum::routing::post;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::routes::{engine, message};
use super::table::{Body, Route};
use super::{ApiError, AppState};
use crate::auth::Role;
use crate::embed::EmbedKind;
use crate::error::Error;
use crate::grpc::admission::MAX_READ_MESSAGE_BYTES;

pub(super) const ROUTES: &[Route] = &[Route {
    method: "post",
    path: "/v1/embeddings",
    summary: "Embeddings in the shape of OpenAI's API",
    role: Some(Role::Read),
    params: &[],
    request: Some(Body::Schema(
        "EmbeddingsRequest",
        r#"{"input": ["Who founded OpenStack?"], "model": "multilingual-e5-small"}"#,
    )),
    response: Body::Schema("EmbeddingsResponse", ""),
    handler: || post(embeddings),
}];

/// The request and response as JSON Schemas, for `/openapi.json`.
pub(super) fn schemas() -> [(&'static str, Value); 2] {
    [
        (
            "EmbeddingsRequest",
            json!({
                "type": "object",
                "required": ["input"],
                "properties": {
                    "input": {"oneOf": [
                        {"type": "string"},
                        {"type": "array", "items": {"type": "string"}},
                    ]},
                    "model": {"type": "string", "description": "Must name the served model when given."},
                    "encoding_format": {"type": "string", "enum": ["float", "base64"]},
                    "input_type": {
                        "type": "string",
                        "enum": ["query", "passage", "document"],
                        "description": "wenda's addition: how e5 embeds the texts (default query).",
                    },
                    "user": {"type": "string", "description": "Accepted and ignored."},
                    "dimensions": {"type": "integer", "description": "Accepted when it is the model's own."},
                },
            }),
        ),
        (
            "EmbeddingsResponse",
            json!({
                "type": "object",
                "required": ["object", "data", "model", "usage"],
                "properties": {
                    "object": {"const": "list"},
                    "data": {"type": "array", "items": {
                        "type": "object",
                        "required": ["object", "index", "embedding"],
                        "properties": {
                            "object": {"const": "embedding"},
                            "index": {"type": "integer", "minimum": 0},
                            "embedding": {"oneOf": [
                                {"type": "array", "items": {"type": "number"}},
                                {"type": "string", "contentEncoding": "base64",
                                 "description": "Little-endian f32s, for encoding_format base64."},
                            ]},
                        },
                    }},
                    "model": {"type": "string"},
                    "usage": {
                        "type": "object",
                        "required": ["prompt_tokens", "total_tokens"],
                        "properties": {
                            "prompt_tokens": {"type": "integer"},
                            "total_tokens": {"type": "integer"},
                        },
                    },
                },
            }),
        ),
    ]
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct EmbeddingsRequest {
    input: Input,
    /// Must name the served model when given (any spelling ending in its
    /// name, such as `intfloat/multilingual-e5-small`).
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    encoding_format: Option<String>,
    /// wenda's addition: `query` (default) or `passage`/`document`.
    #[serde(default)]
    input_type: Option<String>,
    /// Accepted when it is the model's own: the vectors are not truncated.
    #[serde(default)]
    dimensions: Option<usize>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Serialize)]
struct Datum {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

#[derive(Debug, Serialize)]
struct Usage {
    prompt_tokens: u64,
    total_tokens: u64,
}

#[derive(Debug, Serialize)]
struct EmbeddingsResponse {
    object: &'static str,
    data: Vec<Datum>,
    model: String,
    usage: Usage,
}

async fn embeddings(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<EmbeddingsResponse>, ApiError> {
    let (engine, _) = engine(&state, request.headers(), Role::Read)?;
    let request: EmbeddingsRequest = message(request, MAX_READ_MESSAGE_BYTES).await?;
    let served = engine.embedder().manifest().name.clone();
    if let Some(model) = request.model.as_deref().filter(|m| !m.is_empty())
        && !model.ends_with(served.rsplit('/').next().unwrap_or(&served))
    {
        return Err(Error::invalid("model", format!("this server embeds with {served}")).into());
    }
    let dimension = engine.embedder().manifest().dimension;
    if let Some(asked) = request.dimensions.filter(|d| *d != dimension) {
        return Err(Error::invalid(
            "dimensions",
            format!("this model's vectors have {dimension} dimensions, not {asked}"),
        )
        .into());
    }
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return Err(Error::invalid("encoding_format", "must be float or base64").into());
        }
    };
    let kind = match request.input_type.as_deref() {
        None | Some("query") => EmbedKind::Query,
        Some("passage" | "document") => EmbedKind::Passage,
        Some(_) => {
            return Err(Error::invalid("input_type", "must be query, passage or document").into());
        }
    };
    let texts = match request.input {
        Input::One(text) => vec![text],
        Input::Many(texts) => texts,
    };
    let embedded = engine.embed(texts, kind).await?;
    let tokens: u64 = embedded.iter().map(|e| u64::from(e.tokens)).sum();
    let data = embedded
        .into_iter()
        .enumerate()
        .map(|(index, e)| Datum {
            object: "embedding",
            index,
            embedding: if base64 {
                let bytes: Vec<u8> = e.vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Vector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Vector::Float(e.vector)
            },
        })
        .collect();
    Ok(Json(EmbeddingsResponse {
        object: "list",
        data,
        model: served,
        usage: Usage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    }))
}
