//! The `wenda.v1.Retrieval` service: each RPC converts its request, calls
//! the engine, and converts the result back (the caller's token was checked
//! by `admission` before the request was read). No business logic lives
//! here.

use std::sync::Arc;

use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::api;
use crate::engine::Engine;
use crate::error::Error;
use crate::filter::Scope;
use crate::proto;
use crate::proto::retrieval_server::Retrieval;

/// Serves `wenda.v1.Retrieval` over an [`Engine`], once it is loaded.
pub struct RetrievalService {
    engine: watch::Receiver<Option<Arc<Engine>>>,
}

impl RetrievalService {
    /// A service that answers UNAVAILABLE until the channel holds an engine.
    pub fn loading(engine: watch::Receiver<Option<Arc<Engine>>>) -> Self {
        Self { engine }
    }

    /// The engine, once loaded.
    fn engine(&self) -> Result<Arc<Engine>, Status> {
        self.engine
            .borrow()
            .clone()
            .ok_or_else(|| Error::Unavailable("model and index are still loading".into()).into())
    }
}

// The RPC bodies (`api`, shared with HTTP); the `Retrieval` impl below
// wraps each with metrics.
impl RetrievalService {
    async fn do_search(
        &self,
        request: Request<proto::SearchRequest>,
    ) -> Result<Response<proto::SearchResponse>, Status> {
        let engine = self.engine()?;
        Ok(Response::new({
            let scope = scope(&request);
            api::search(&engine, request.into_inner(), &scope).await?
        }))
    }

    async fn do_search_batch(
        &self,
        request: Request<proto::SearchBatchRequest>,
    ) -> Result<Response<proto::SearchBatchResponse>, Status> {
        let engine = self.engine()?;
        Ok(Response::new({
            let scope = scope(&request);
            api::search_batch(&engine, request.into_inner(), &scope).await?
        }))
    }

    async fn do_embed(
        &self,
        request: Request<proto::EmbedRequest>,
    ) -> Result<Response<proto::EmbedResponse>, Status> {
        let engine = self.engine()?;
        Ok(Response::new(
            api::embed(&engine, request.into_inner()).await?,
        ))
    }

    async fn do_ingest(
        &self,
        request: Request<proto::IngestRequest>,
    ) -> Result<Response<proto::IngestResponse>, Status> {
        let engine = self.engine()?;
        Ok(Response::new({
            let scope = scope(&request);
            api::ingest(&engine, request.into_inner(), &scope).await?
        }))
    }

    async fn do_delete(
        &self,
        request: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteResponse>, Status> {
        let engine = self.engine()?;
        Ok(Response::new({
            let scope = scope(&request);
            api::delete(&engine, request.into_inner(), &scope).await?
        }))
    }

    async fn do_list_documents(
        &self,
        request: Request<proto::ListDocumentsRequest>,
    ) -> Result<Response<proto::ListDocumentsResponse>, Status> {
        let engine = self.engine()?;
        Ok(Response::new(api::list_documents(
            &engine,
            request.get_ref(),
            &scope(&request),
        )?))
    }

    async fn do_get_document(
        &self,
        request: Request<proto::GetDocumentRequest>,
    ) -> Result<Response<proto::GetDocumentResponse>, Status> {
        let engine = self.engine()?;
        Ok(Response::new(api::get_document(
            &engine,
            request.get_ref(),
            &scope(&request),
        )?))
    }

    async fn do_info(
        &self,
        request: Request<proto::InfoRequest>,
    ) -> Result<Response<proto::InfoResponse>, Status> {
        let engine = self.engine()?;
        Ok(Response::new(api::info(&engine, &scope(&request))))
    }
}

/// The caller's token scope, put on the request by the admission layer
/// (`admission`); everything when there is none (no tokens, or a test
/// calling the service directly).
fn scope<T>(request: &Request<T>) -> Scope {
    request
        .extensions()
        .get::<Scope>()
        .cloned()
        .unwrap_or_default()
}

/// Runs an RPC body and records its count and duration by status code.
async fn observed<T>(
    method: &'static str,
    body: impl std::future::Future<Output = Result<Response<T>, Status>>,
) -> Result<Response<T>, Status> {
    let started = std::time::Instant::now();
    let result = body.await;
    let code = result
        .as_ref()
        .map_or_else(|s| s.code(), |_| tonic::Code::Ok);
    crate::metrics::record_rpc(method, code, started);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match code {
        tonic::Code::Ok => tracing::info!(method, ms, "rpc finished"),
        tonic::Code::Internal | tonic::Code::Unknown => {
            tracing::error!(method, ?code, ms, "rpc failed")
        }
        _ => tracing::info!(method, ?code, ms, "rpc refused"),
    }
    result
}

#[tonic::async_trait]
impl Retrieval for RetrievalService {
    async fn search(
        &self,
        request: Request<proto::SearchRequest>,
    ) -> Result<Response<proto::SearchResponse>, Status> {
        observed("Search", self.do_search(request)).await
    }

    async fn search_batch(
        &self,
        request: Request<proto::SearchBatchRequest>,
    ) -> Result<Response<proto::SearchBatchResponse>, Status> {
        observed("SearchBatch", self.do_search_batch(request)).await
    }

    async fn embed(
        &self,
        request: Request<proto::EmbedRequest>,
    ) -> Result<Response<proto::EmbedResponse>, Status> {
        observed("Embed", self.do_embed(request)).await
    }

    async fn ingest(
        &self,
        request: Request<proto::IngestRequest>,
    ) -> Result<Response<proto::IngestResponse>, Status> {
        observed("Ingest", self.do_ingest(request)).await
    }

    async fn delete(
        &self,
        request: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteResponse>, Status> {
        observed("Delete", self.do_delete(request)).await
    }

    async fn list_documents(
        &self,
        request: Request<proto::ListDocumentsRequest>,
    ) -> Result<Response<proto::ListDocumentsResponse>, Status> {
        observed("ListDocuments", self.do_list_documents(request)).await
    }

    async fn get_document(
        &self,
        request: Request<proto::GetDocumentRequest>,
    ) -> Result<Response<proto::GetDocumentResponse>, Status> {
        observed("GetDocument", self.do_get_document(request)).await
    }

    async fn info(
        &self,
        request: Request<proto::InfoRequest>,
    ) -> Result<Response<proto::InfoResponse>, Status> {
        observed("Info", self.do_info(request)).await
    }
}
