//! Conversions between proto messages and the engine's types, in one place
//! for both transports (gRPC, and HTTP with the same messages as JSON) and
//! the CLI's `ask`.

use crate::embed::{EmbedKind, EmbeddedText, ModelManifest};
use crate::error::{Error, FieldViolation};
use crate::filter::{Condition, Filter, Test};
use crate::ingest::DocumentInput;
use crate::metadata::{self, MetaValue, Metadata};
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

/// What a citation says of its document besides the passage's own place.
struct Cited<'a> {
    title: &'a str,
    source: &'a str,
    url: Option<&'a str>,
    published: Option<&'a str>,
}

fn citation(p: &StoredPassage, doc: &Cited) -> proto::Citation {
    proto::Citation {
        doc_id: p.doc_id.clone(),
        source: doc.source.to_string(),
        title: doc.title.to_string(),
        language: p.language.clone(),
        char_start: p.char_start as u64,
        char_end: p.char_end as u64,
        chunk_index: p.chunk_index,
        url: doc.url.unwrap_or_default().to_string(),
        published: doc.published.unwrap_or_default().to_string(),
    }
}

fn passage_from_hit(hit: SearchHit) -> proto::Passage {
    let cited = Cited {
        title: &hit.title,
        source: &hit.source,
        url: hit.url.as_deref(),
        published: hit.published.as_deref(),
    };
    proto::Passage {
        citation: Some(citation(&hit.passage, &cited)),
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
        url: s.url.unwrap_or_default(),
        metadata: s
            .metadata
            .into_iter()
            .map(|(k, v)| (k, metadata_value(v)))
            .collect(),
    }
}

fn metadata_value(v: MetaValue) -> proto::MetadataValue {
    use proto::metadata_value::Kind;
    let kind = match v {
        MetaValue::String(s) => Kind::StringValue(s),
        MetaValue::Number(n) => Kind::NumberValue(n),
        MetaValue::Bool(b) => Kind::BoolValue(b),
        MetaValue::Timestamp(t) => Kind::TimestampValue(metadata::format_timestamp(t)),
        MetaValue::List(values) => Kind::ListValue(proto::StringList { values }),
    };
    proto::MetadataValue { kind: Some(kind) }
}

/// A proto value as a metadata value; `None` when no kind is set or a
/// timestamp does not parse (the caller reports it at `field`).
fn meta_from_proto(
    v: proto::MetadataValue,
    field: &str,
    bad: &mut Vec<FieldViolation>,
) -> Option<MetaValue> {
    use proto::metadata_value::Kind;
    match v.kind {
        None => {
            bad.push(FieldViolation::new(
                field,
                "set one of stringValue, numberValue, boolValue, timestampValue, listValue",
            ));
            None
        }
        Some(Kind::StringValue(s)) => Some(MetaValue::String(s)),
        Some(Kind::NumberValue(n)) => Some(MetaValue::Number(n)),
        Some(Kind::BoolValue(b)) => Some(MetaValue::Bool(b)),
        Some(Kind::ListValue(l)) => Some(MetaValue::List(l.values)),
        Some(Kind::TimestampValue(t)) => match metadata::parse_timestamp(&t) {
            Some(t) => Some(MetaValue::Timestamp(t)),
            None => {
                bad.push(FieldViolation::new(
                    field,
                    "timestamps are RFC 3339 or YYYY-MM-DD",
                ));
                None
            }
        },
    }
}

/// A bound of a time range: empty is open.
fn time_bound(text: &str, field: &str, bad: &mut Vec<FieldViolation>) -> Option<i64> {
    if text.trim().is_empty() {
        return None;
    }
    let parsed = metadata::parse_timestamp(text);
    if parsed.is_none() {
        bad.push(FieldViolation::new(
            field,
            "timestamps are RFC 3339 or YYYY-MM-DD",
        ));
    }
    parsed
}

/// The request's filter in domain terms; structural problems (no test set,
/// an unreadable timestamp) are reported here, the rest by the engine.
fn filter_from_proto(f: proto::Filter) -> Result<Filter, Error> {
    use proto::condition::Test as P;
    let mut bad = Vec::new();
    let clause = |name: &str, conditions: Vec<proto::Condition>, bad: &mut Vec<FieldViolation>| {
        let mut out = Vec::new();
        for (i, c) in conditions.into_iter().enumerate() {
            let at = format!("filter.{name}[{i}]");
            let test = match c.test {
                None => {
                    bad.push(FieldViolation::new(
                        &at,
                        "set one test: equals, anyOf, allOf, range, timeRange or prefix",
                    ));
                    continue;
                }
                Some(P::Equals(v)) => match meta_from_proto(v, &format!("{at}.equals"), bad) {
                    Some(v) => Test::Equals(v),
                    None => continue,
                },
                Some(P::AnyOf(l)) => Test::AnyOf(l.values),
                Some(P::AllOf(l)) => Test::AllOf(l.values),
                Some(P::Range(r)) => Test::Range {
                    gt: r.gt,
                    gte: r.gte,
                    lt: r.lt,
                    lte: r.lte,
                },
                Some(P::TimeRange(r)) => {
                    let from = time_bound(&r.from, &format!("{at}.time_range.from"), bad);
                    let until = time_bound(&r.until, &format!("{at}.time_range.until"), bad);
                    if (!r.from.trim().is_empty() && from.is_none())
                        || (!r.until.trim().is_empty() && until.is_none())
                    {
                        continue;
                    }
                    Test::TimeRange { from, until }
                }
                Some(P::Prefix(p)) => Test::Prefix(p),
            };
            out.push(Condition { key: c.key, test });
        }
        out
    };
    let filter = Filter {
        must: clause("must", f.must, &mut bad),
        should: clause("should", f.should, &mut bad),
        must_not: clause("must_not", f.must_not, &mut bad),
    };
    if bad.is_empty() {
        Ok(filter)
    } else {
        Err(Error::InvalidArgument(bad))
    }
}

pub fn search_query(r: proto::SearchRequest) -> Result<SearchQuery, Error> {
    Ok(SearchQuery {
        filter: r
            .filter
            .map(filter_from_proto)
            .transpose()?
            .filter(|f| !f.is_empty()),
        max_per_document: r.max_per_document as usize,
        group_by_document: r.group_by_document,
        page_token: r.page_token,
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
    let passages: Vec<proto::Passage> = results.hits.into_iter().map(passage_from_hit).collect();
    let (passages, groups) = if results.grouped {
        (Vec::new(), groups(passages))
    } else {
        (passages, Vec::new())
    };
    proto::SearchResponse {
        passages,
        groups,
        next_page_token: results.next_page_token.unwrap_or_default(),
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

/// Consecutive passages of one document as its group (the engine orders a
/// grouped answer that way).
fn groups(passages: Vec<proto::Passage>) -> Vec<proto::DocumentGroup> {
    let mut groups: Vec<proto::DocumentGroup> = Vec::new();
    for p in passages {
        let doc_id = p
            .citation
            .as_ref()
            .map(|c| c.doc_id.clone())
            .unwrap_or_default();
        match groups.last_mut() {
            Some(g) if g.doc_id == doc_id => g.passages.push(p),
            _ => groups.push(proto::DocumentGroup {
                doc_id,
                score: p.score,
                relevance: p.relevance,
                passages: vec![p],
            }),
        }
    }
    groups
}

/// A failed call's status as a batch entry's error.
pub fn batch_error(err: Error) -> proto::BatchError {
    let field_violations = match &err {
        Error::InvalidArgument(v) => v
            .iter()
            .map(|v| proto::FieldViolation {
                field: v.field.clone(),
                description: v.description.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let message = err.to_string();
    proto::BatchError {
        code: tonic::Status::from(err).code() as i32,
        message,
        field_violations,
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

pub fn document_input(d: proto::Document, at: &str) -> Result<DocumentInput, Error> {
    let mut bad = Vec::new();
    let mut metadata = Metadata::new();
    for (key, value) in d.metadata {
        if let Some(v) = meta_from_proto(value, &format!("{at}.metadata.{key}"), &mut bad) {
            metadata.insert(key, v);
        }
    }
    if !bad.is_empty() {
        return Err(Error::InvalidArgument(bad));
    }
    Ok(DocumentInput {
        id: d.id,
        text: d.text,
        title: d.title,
        source: d.source,
        language: d.language,
        metadata,
        url: d.url,
        published: d.published,
    })
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
    let s = &view.summary;
    let cited = Cited {
        title: &s.title,
        source: &s.source,
        url: s.url.as_deref(),
        published: s.published.as_deref(),
    };
    proto::GetDocumentResponse {
        passages: view
            .passages
            .into_iter()
            .map(|p| proto::Passage {
                citation: Some(citation(&p, &cited)),
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
        store: i.store,
        applied_sequence: i.applied_sequence,
    }
}
