//! The Retrieval calls on proto messages, shared by both transports: a
//! request message in, a response message out, the crate's [`Error`] on
//! failure. gRPC (`grpc::service`) and HTTP (`http`) only add their framing,
//! so the two APIs cannot drift apart.

use crate::convert;
use crate::engine::Engine;
use crate::error::Error;
use crate::proto;

pub async fn search(
    engine: &Engine,
    request: proto::SearchRequest,
) -> Result<proto::SearchResponse, Error> {
    let query = convert::search_query(request)?;
    Ok(convert::search_response(engine.search(query).await?))
}

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
) -> Result<proto::IngestResponse, Error> {
    let inputs = request
        .documents
        .into_iter()
        .enumerate()
        .map(|(i, d)| convert::document_input(d, &format!("documents[{i}]")))
        .collect::<Result<_, _>>()?;
    let outcomes = engine.ingest(inputs).await?;
    Ok(proto::IngestResponse {
        results: outcomes.into_iter().map(convert::ingest_result).collect(),
    })
}

pub async fn delete(
    engine: &Engine,
    request: proto::DeleteRequest,
) -> Result<proto::DeleteResponse, Error> {
    let deleted = engine.delete(request.ids).await?;
    Ok(proto::DeleteResponse {
        deleted: deleted as u32,
    })
}

pub fn list_documents(
    engine: &Engine,
    request: &proto::ListDocumentsRequest,
) -> Result<proto::ListDocumentsResponse, Error> {
    let (docs, next) = engine.list_documents(
        request.page_size as usize,
        &request.page_token,
        &request.language,
    )?;
    Ok(proto::ListDocumentsResponse {
        documents: docs.into_iter().map(convert::summary).collect(),
        next_page_token: next,
    })
}

pub fn get_document(
    engine: &Engine,
    request: &proto::GetDocumentRequest,
) -> Result<proto::GetDocumentResponse, Error> {
    Ok(convert::document(engine.get_document(&request.id)?))
}

pub fn info(engine: &Engine) -> proto::InfoResponse {
    convert::info(engine.info())
}
