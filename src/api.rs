//! The Retrieval calls on proto messages, shared by both transports: a
//! request message in, a response message out, the crate's [`Error`] on
//! failure. gRPC (`grpc::service`) and HTTP (`http`) only add their framing,
//! so the two APIs cannot drift apart. Calls on documents take the
//! caller's token scope (`filter::Scope`; everything without tokens).

use crate::convert;
use crate::engine::Engine;
use crate::error::Error;
use crate::filter::Scope;
use crate::proto;

pub async fn search(
    engine: &Engine,
    request: proto::SearchRequest,
    scope: &Scope,
) -> Result<proto::SearchResponse, Error> {
    let mut query = convert::search_query(request)?;
    query.filter = scope.restrict(query.filter);
    Ok(convert::search_response(engine.search(query).await?))
}

/// Up to [`MAX_BATCH_SEARCHES`] searches, run side by side; each answers
/// with its response or its own error.
pub async fn search_batch(
    engine: &Engine,
    request: proto::SearchBatchRequest,
    scope: &Scope,
) -> Result<proto::SearchBatchResponse, Error> {
    let n = request.requests.len();
    if n == 0 || n > MAX_BATCH_SEARCHES {
        return Err(Error::invalid(
            "requests",
            format!("must hold 1 to {MAX_BATCH_SEARCHES} searches, not {n}"),
        ));
    }
    let answers = request.requests.into_iter().map(|r| async move {
        use proto::search_batch_result::Result as Answer;
        let answer = match search(engine, r, scope).await {
            Ok(response) => Answer::Response(response),
            Err(err) => Answer::Error(convert::batch_error(err)),
        };
        proto::SearchBatchResult {
            result: Some(answer),
        }
    });
    Ok(proto::SearchBatchResponse {
        results: futures_util::future::join_all(answers).await,
    })
}

/// Searches in one SearchBatch call.
pub const MAX_BATCH_SEARCHES: usize = 32;

pub async fn embed(
    engine: &Engine,
    request: proto::EmbedRequest,
) -> Result<proto::EmbedResponse, Error> {
    let kind = convert::embed_kind(request.kind)?;
    let embedded = engine.embed(request.texts, kind).await?;
    Ok(convert::embed_response(
        embedded,
        engine.embedder().manifest(),
    ))
}

pub async fn ingest(
    engine: &Engine,
    request: proto::IngestRequest,
    scope: &Scope,
) -> Result<proto::IngestResponse, Error> {
    let mut inputs: Vec<_> = request
        .documents
        .into_iter()
        .enumerate()
        .map(|(i, d)| convert::document_input(d, &format!("documents[{i}]")))
        .collect::<Result<_, _>>()?;
    let mut bad = Vec::new();
    for (i, input) in inputs.iter_mut().enumerate() {
        bad.extend(scope.stamp(&mut input.metadata, &format!("documents[{i}].metadata")));
    }
    if !bad.is_empty() {
        return Err(Error::InvalidArgument(bad));
    }
    let outcomes = engine.ingest_within(inputs, scope).await?;
    Ok(proto::IngestResponse {
        results: outcomes.into_iter().map(convert::ingest_result).collect(),
    })
}

pub async fn delete(
    engine: &Engine,
    request: proto::DeleteRequest,
    scope: &Scope,
) -> Result<proto::DeleteResponse, Error> {
    let deleted = engine.delete_within(request.ids, scope).await?;
    Ok(proto::DeleteResponse {
        deleted: deleted as u32,
    })
}

pub fn list_documents(
    engine: &Engine,
    request: &proto::ListDocumentsRequest,
    scope: &Scope,
) -> Result<proto::ListDocumentsResponse, Error> {
    let (docs, next) = engine.list_documents_within(
        request.page_size as usize,
        &request.page_token,
        &request.language,
        scope,
    )?;
    Ok(proto::ListDocumentsResponse {
        documents: docs.into_iter().map(convert::summary).collect(),
        next_page_token: next,
    })
}

pub fn get_document(
    engine: &Engine,
    request: &proto::GetDocumentRequest,
    scope: &Scope,
) -> Result<proto::GetDocumentResponse, Error> {
    Ok(convert::document(
        engine.get_document_within(&request.id, scope)?,
    ))
}

pub fn info(engine: &Engine, scope: &Scope) -> proto::InfoResponse {
    convert::info(engine.info_within(scope))
}
