//! The gRPC adapter: each RPC converts its request to domain types, calls the
//! engine, and converts the result back. No business logic lives here.

use std::sync::Arc;

use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::auth::{Role, Tokens};
use crate::embed::EmbedKind;
use crate::engine::Engine;
use crate::error::Error;
use crate::ingest::DocumentInput;
use crate::proto;
use crate::proto::retrieval_server::Retrieval;
use crate::store::StoredPassage;
use crate::types::{self, SearchHit};

/// Serves `wenda.v1.Retrieval` over an [`Engine`], once it is loaded.
pub struct RetrievalService {
    engine: watch::Receiver<Option<Arc<Engine>>>,
    tokens: Arc<Tokens>,
}

impl RetrievalService {
    /// A service over an engine that is ready, without access control.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine: watch::channel(Some(engine)).1,
            tokens: Arc::default(),
        }
    }

    /// A service that answers UNAVAILABLE until the channel holds an engine.
    pub fn loading(engine: watch::Receiver<Option<Arc<Engine>>>, tokens: Arc<Tokens>) -> Self {
        Self { engine, tokens }
    }

    /// Checks the caller's token, then returns the engine.
    fn engine<T>(&self, request: &Request<T>, needed: Role) -> Result<Arc<Engine>, Status> {
        self.tokens.authorize(request.metadata(), needed)?;
        self.engine
            .borrow()
            .clone()
            .ok_or_else(|| Error::Unavailable("model and index are still loading".into()).into())
    }
}

fn mode_from_proto(mode: i32) -> Result<types::SearchMode, Error> {
    match proto::SearchMode::try_from(mode) {
        Ok(proto::SearchMode::Unspecified | proto::SearchMode::Hybrid) => {
            Ok(types::SearchMode::Hybrid)
        }
        Ok(proto::SearchMode::Dense) => Ok(types::SearchMode::Dense),
        Ok(proto::SearchMode::Lexical) => Ok(types::SearchMode::Lexical),
        Err(_) => Err(Error::invalid(
            "mode",
            format!("unknown search mode {mode}"),
        )),
    }
}

fn mode_to_proto(mode: types::SearchMode) -> proto::SearchMode {
    match mode {
        types::SearchMode::Dense => proto::SearchMode::Dense,
        types::SearchMode::Lexical => proto::SearchMode::Lexical,
        types::SearchMode::Hybrid => proto::SearchMode::Hybrid,
    }
}

fn citation(p: &StoredPassage, title: &str, source: &str) -> proto::Citation {
    proto::Citation {
        doc_id: p.doc_id.clone(),
        source: source.to_string(),
        title: title.to_string(),
        language: p.language.clone(),
        char_start: p.char_start as u64,
        char_end: p.char_end as u64,
        chunk_index: p.chunk_index,
    }
}

fn passage_from_hit(hit: SearchHit) -> proto::Passage {
    proto::Passage {
        citation: Some(citation(&hit.passage, &hit.title, &hit.source)),
        text: hit.passage.text,
        score: hit.score,
        rank: hit.rank,
        highlights: hit
            .highlights
            .into_iter()
            .map(|h| proto::Highlight {
                text: h.text,
                char_start: h.char_start as u64,
                char_end: h.char_end as u64,
                score: h.score,
            })
            .collect(),
        explanation: hit.explanation.map(|e| proto::Explanation {
            dense_score: e.dense_score,
            dense_rank: e.dense_rank,
            lexical_score: e.lexical_score,
            lexical_rank: e.lexical_rank,
            fused_score: e.fused_score,
        }),
    }
}

fn summary_to_proto(s: types::DocumentSummary) -> proto::DocumentSummary {
    proto::DocumentSummary {
        id: s.id,
        source: s.source,
        title: s.title,
        language: s.language,
        published: s.published.unwrap_or_default(),
        chunks: s.chunks,
        chars: s.chars,
        content_hash: s.content_hash,
    }
}

// The RPC bodies; the `Retrieval` impl below wraps each with metrics.
impl RetrievalService {
    async fn do_search(
        &self,
        request: Request<proto::SearchRequest>,
    ) -> Result<Response<proto::SearchResponse>, Status> {
        let engine = self.engine(&request, Role::Read)?;
        let r = request.into_inner();
        let query = types::SearchQuery {
            mode: mode_from_proto(r.mode)?,
            query: r.query,
            top_k: r.top_k as usize,
            languages: r.languages,
            doc_ids: r.doc_ids,
            min_score: r.min_score,
            explain: r.explain,
        };
        let results = engine.search(query).await?;
        let t = results.timings;
        Ok(Response::new(proto::SearchResponse {
            passages: results.hits.into_iter().map(passage_from_hit).collect(),
            query_language: results.query_language,
            timings: Some(proto::Timings {
                embed_ms: t.embed_ms,
                search_ms: t.search_ms,
                rank_ms: t.rank_ms,
                total_ms: t.total_ms,
            }),
            mode: mode_to_proto(results.mode) as i32,
        }))
    }

    async fn do_embed(
        &self,
        request: Request<proto::EmbedRequest>,
    ) -> Result<Response<proto::EmbedResponse>, Status> {
        let engine = self.engine(&request, Role::Read)?;
        let r = request.into_inner();
        let kind = match proto::EmbedKind::try_from(r.kind) {
            Ok(proto::EmbedKind::Unspecified | proto::EmbedKind::Query) => EmbedKind::Query,
            Ok(proto::EmbedKind::Passage) => EmbedKind::Passage,
            Err(_) => {
                return Err(
                    Error::invalid("kind", format!("unknown embed kind {}", r.kind)).into(),
                );
            }
        };
        let embedded = engine.embed(r.texts, kind).await?;
        let manifest = engine.embedder().manifest();
        Ok(Response::new(proto::EmbedResponse {
            embeddings: embedded
                .into_iter()
                .map(|e| proto::Embedding {
                    values: e.vector,
                    tokens: e.tokens,
                    truncated: e.truncated,
                })
                .collect(),
            model: manifest.name.clone(),
            dimension: manifest.dimension as u32,
        }))
    }

    async fn do_ingest(
        &self,
        request: Request<proto::IngestRequest>,
    ) -> Result<Response<proto::IngestResponse>, Status> {
        let engine = self.engine(&request, Role::Admin)?;
        let inputs = request
            .into_inner()
            .documents
            .into_iter()
            .map(|d| DocumentInput {
                id: d.id,
                text: d.text,
                title: d.title,
                source: d.source,
                language: d.language,
            })
            .collect();
        let outcomes = engine.ingest(inputs).await?;
        Ok(Response::new(proto::IngestResponse {
            results: outcomes
                .into_iter()
                .map(|o| proto::IngestResult {
                    id: o.id,
                    chunks: o.chunks,
                    replaced: o.replaced,
                    unchanged: o.unchanged,
                })
                .collect(),
        }))
    }

    async fn do_delete(
        &self,
        request: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteResponse>, Status> {
        let engine = self.engine(&request, Role::Admin)?;
        let deleted = engine.delete(request.into_inner().ids).await?;
        Ok(Response::new(proto::DeleteResponse {
            deleted: deleted as u32,
        }))
    }

    async fn do_list_documents(
        &self,
        request: Request<proto::ListDocumentsRequest>,
    ) -> Result<Response<proto::ListDocumentsResponse>, Status> {
        let engine = self.engine(&request, Role::Read)?;
        let r = request.into_inner();
        let (docs, next) =
            engine.list_documents(r.page_size as usize, &r.page_token, &r.language)?;
        Ok(Response::new(proto::ListDocumentsResponse {
            documents: docs.into_iter().map(summary_to_proto).collect(),
            next_page_token: next,
        }))
    }

    async fn do_get_document(
        &self,
        request: Request<proto::GetDocumentRequest>,
    ) -> Result<Response<proto::GetDocumentResponse>, Status> {
        let engine = self.engine(&request, Role::Read)?;
        let view = engine.get_document(&request.into_inner().id)?;
        let (title, source) = (view.summary.title.clone(), view.summary.source.clone());
        Ok(Response::new(proto::GetDocumentResponse {
            passages: view
                .passages
                .into_iter()
                .map(|p| proto::Passage {
                    citation: Some(citation(&p, &title, &source)),
                    text: p.text,
                    score: 0.0,
                    rank: p.chunk_index + 1,
                    highlights: Vec::new(),
                    explanation: None,
                })
                .collect(),
            document: Some(summary_to_proto(view.summary)),
            text: view.text,
        }))
    }

    async fn do_info(
        &self,
        request: Request<proto::InfoRequest>,
    ) -> Result<Response<proto::InfoResponse>, Status> {
        let i = self.engine(&request, Role::Read)?.info();
        Ok(Response::new(proto::InfoResponse {
            model: i.model,
            dimension: i.dimension as u32,
            documents: i.documents as u64,
            passages: i.passages as u64,
            passages_per_language: i.passages_per_language.into_iter().collect(),
            documents_per_language: i.documents_per_language.into_iter().collect(),
            index_build_id: i.index_build_id,
            index_kind: i.index_kind,
            chunker_version: i.chunker_version,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }))
    }
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
