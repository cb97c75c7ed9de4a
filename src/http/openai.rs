//! `POST /v1/embeddings` in the shape of OpenAI's embeddings API, so
//! clients and frameworks written for it work unchanged: `input` (a string
//! or a list), `model`, `encoding_format` (`float` or `base64`: little-endian
//! f32s). e5 embeds queries and passages differently; OpenAI's API has no
//! such field, so texts are embedded as queries (e5's advice for
//! similarity between short texts) unless the request's `input_type` says
//! `passage` (or `document`).

use axum::extract::{Request, State};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::routes::{engine, message};
use super::{ApiError, AppState};
use crate::auth::Role;
use crate::embed::EmbedKind;
use crate::error::Error;
use crate::grpc::admission::MAX_READ_MESSAGE_BYTES;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/embeddings", post(embeddings))
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
    let engine = engine(&state, request.headers(), Role::Read)?;
    let request: EmbeddingsRequest = message(request, MAX_READ_MESSAGE_BYTES).await?;
    let served = engine.embedder().manifest().name.clone();
    if let Some(model) = request.model.as_deref().filter(|m| !m.is_empty())
        && !model.ends_with(served.rsplit('/').next().unwrap_or(&served))
    {
        return Err(Error::invalid("model", format!("this server embeds with {served}")).into());
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
