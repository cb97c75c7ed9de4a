//! Conversions between proto messages and the engine's types, in one place
//! for both transports (gRPC, and HTTP with the same messages as JSON) and
//! the CLI's `ask`.

use crate::embed::{EmbedKind, EmbeddedText, ModelManifest};
use crate::error::Error;
use crate::ingest::DocumentInput;
use crate::proto;
use crate::store::StoredPassage;
use crate::types::{
    self, DocumentSummary, DocumentView, EngineInfo, IngestOutcome, SearchHit, SearchQuery,
    SearchResults,
};

pub fn mode_from_proto(mode: i32) -> Result<types::SearchMode, Error> {
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

pub fn mode_to_proto(mode: types::SearchMode) -> proto::SearchMode {
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
        relevance: hit.relevance,
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

pub fn summary(s: DocumentSummary) -> proto::DocumentSummary {
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

pub fn search_query(r: proto::SearchRequest) -> Result<SearchQuery, Error> {
    Ok(SearchQuery {
        mode: mode_from_proto(r.mode)?,
        query: r.query,
        top_k: r.top_k as usize,
        languages: r.languages,
        doc_ids: r.doc_ids,
        min_score: r.min_score,
        explain: r.explain,
        query_language: r.query_language,
        min_relevance: r.min_relevance,
    })
}

pub fn search_response(results: SearchResults) -> proto::SearchResponse {
    let t = results.timings;
    proto::SearchResponse {
        passages: results.hits.into_iter().map(passage_from_hit).collect(),
        query_language: results.query_language,
        timings: Some(proto::Timings {
            embed_ms: t.embed_ms,
            search_ms: t.search_ms,
            rank_ms: t.rank_ms,
            total_ms: t.total_ms,
        }),
        mode: mode_to_proto(results.mode) as i32,
        answerable: results.answerable,
    }
}

pub fn embed_kind(kind: i32) -> Result<EmbedKind, Error> {
    match proto::EmbedKind::try_from(kind) {
        Ok(proto::EmbedKind::Unspecified | proto::EmbedKind::Query) => Ok(EmbedKind::Query),
        Ok(proto::EmbedKind::Passage) => Ok(EmbedKind::Passage),
        Err(_) => Err(Error::invalid("kind", format!("unknown embed kind {kind}"))),
    }
}

pub fn embed_response(embedded: Vec<EmbeddedText>, model: &ModelManifest) -> proto::EmbedResponse {
    proto::EmbedResponse {
        embeddings: embedded
            .into_iter()
            .map(|e| proto::Embedding {
                values: e.vector,
                tokens: e.tokens,
                truncated: e.truncated,
            })
            .collect(),
        model: model.name.clone(),
        dimension: model.dimension as u32,
    }
}

pub fn document_input(d: proto::Document) -> DocumentInput {
    DocumentInput {
        id: d.id,
        text: d.text,
        title: d.title,
        source: d.source,
        language: d.language,
    }
}

pub fn ingest_result(o: IngestOutcome) -> proto::IngestResult {
    proto::IngestResult {
        id: o.id,
        chunks: o.chunks,
        replaced: o.replaced,
        unchanged: o.unchanged,
    }
}

/// A document with its text and its passages in order (unranked: `rank`
/// is the passage's position, from 1).
pub fn document(view: DocumentView) -> proto::GetDocumentResponse {
    let (title, source) = (view.summary.title.clone(), view.summary.source.clone());
    proto::GetDocumentResponse {
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
                relevance: 0.0,
            })
            .collect(),
        document: Some(summary(view.summary)),
        text: view.text,
    }
}

pub fn info(i: EngineInfo) -> proto::InfoResponse {
    proto::InfoResponse {
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
    }
}
