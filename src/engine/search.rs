//! Searches and embeddings: read-only, bounded by the in-flight permits.

use std::sync::Arc;
use std::time::Instant;

use tracing::instrument;

use super::paging::{MAX_PAGED_RESULTS, Page};
use super::state::State;
use super::validate::{validate_embed, validate_search};
use super::{Engine, ms};
use crate::answer_type;
use crate::embed::{EmbedKind, EmbeddedText};
use crate::error::Result;
use crate::ingest::lang;
use crate::rank::{self, Candidate, Overlap};
use crate::types::{Evidence, SearchHit, SearchMode, SearchQuery, SearchResults, Timings, limits};

impl Engine {
    /// Returns the passages that best answer `query`.
    #[instrument(skip_all, fields(mode = ?query.mode, top_k = query.top_k, embed_ms, search_ms, rank_ms))]
    pub async fn search(&self, query: SearchQuery) -> Result<SearchResults> {
        validate_search(&query)?;
        let _permit = self.permit()?;
        let started = Instant::now();
        let top_k = if query.top_k == 0 {
            limits::DEFAULT_TOP_K
        } else {
            query.top_k
        };
        let query_language = if query.query_language.is_empty() {
            let state = self.read_state();
            let indexed: Vec<&str> = state.languages.keys().map(String::as_str).collect();
            lang::detect_query(&query.query, &indexed).to_string()
        } else {
            query.query_language.clone()
        };

        // A Vietnamese question typed without marks is embedded with them
        // put back: the model reads "có bao nhiêu thành viên" far better
        // than "co bao nhieu thanh vien" (docs/retrieval.md). The lexical
        // half keeps the typed words, which it matches by their folded form.
        let restored = (query_language == "vi")
            .then(|| self.config.lexicon.as_ref()?.restore_marks(&query.query))
            .flatten();
        if let Some(text) = &restored {
            tracing::debug!(restored = %text, "Vietnamese marks restored for the model");
        }
        let model_text = restored.as_deref().unwrap_or(&query.query);

        // The lexical half (dictionary translations, BM25, the highlight
        // terms) needs no vector: it runs while an embedder worker computes
        // the query's, and only the dense search waits for it.
        let page = Page::of(&query, self.read_state().generation)?;
        // The ranking is read up to the end of this page and one more, to
        // know whether there is a next page; the first results do not
        // depend on how far it is read.
        let wanted = (page.offset + top_k).min(MAX_PAGED_RESULTS);
        let per_document = match query.max_per_document {
            0 if query.group_by_document => DEFAULT_GROUP_SIZE,
            n => n,
        };
        let pool = rank::candidate_pool(if query.group_by_document {
            (wanted + 1) * per_document
        } else {
            wanted + 1
        });
        let lexical_half = || {
            let started = Instant::now();
            let state = self.read_state();
            let lexical_query = state.lexical.prepare(&query.query);
            let lexical = if query.mode != SearchMode::Dense {
                let passes = |id: u64| passes_filters(&state, &query, id);
                state.lexical.search(&lexical_query, pool, &passes)
            } else {
                Vec::new()
            };
            let terms = rank::highlight_terms(&query.query, lexical_query.translations());
            (lexical, terms, lexical_query, started.elapsed())
        };
        let (query_vector, embed_ms, (lexical, highlight_terms, lexical_query, lexical_time)) =
            if query.mode == SearchMode::Lexical {
                (None, ms(started), lexical_half())
            } else {
                let embedding = async {
                    let vector = self.query_vector(model_text).await;
                    (vector, ms(started))
                };
                // `biased`: the embedding is polled first, so its job is on
                // the embedder's queue before the lexical half starts.
                let ((vector, embed_ms), lexical) =
                    tokio::join!(biased; embedding, async { lexical_half() });
                (Some(vector?), embed_ms, lexical)
            };

        let search_started = Instant::now();
        let state = self.read_state();
        let passes = |id: u64| passes_filters(&state, &query, id);
        let dense = match &query_vector {
            Some(v) => {
                let v = if self.config.center_languages {
                    state.centroids.center(v, &query_language)
                } else {
                    v.to_vec()
                };
                match selective_filter(&state, &query) {
                    Some(ids) => state.index.search_among(&v, pool, &ids),
                    None => state.index.search(&v, pool, &passes),
                }
            }
            None => Vec::new(),
        };
        // Work time of both halves; the lexical half's overlaps `embed_ms`.
        let search_ms = ms(search_started) + lexical_time.as_secs_f32() * 1000.0;

        let rank_started = Instant::now();
        let fused: Vec<Candidate> = rank::fuse(
            query.mode,
            &dense,
            &lexical,
            self.config.fusion,
            self.config.lexical_weight,
        );
        let dense_floor = dense.last().map_or(0.0, |d| d.score);
        let asked_number = answer_type::AskedNumber::of(&query.query);
        let mut hits: Vec<SearchHit> = Vec::with_capacity(wanted + 1);
        let mut documents: Vec<&str> = Vec::new();
        for (position, c) in fused
            .into_iter()
            // 0 keeps everything, as the proto says: dense cosines can be
            // negative.
            .filter(|c| query.min_score == 0.0 || c.score >= query.min_score)
            .enumerate()
        {
            // The first FUSION_DEPTH candidates are always read whole, so
            // what merges into what does not depend on `top_k`; deeper
            // candidates only fill up to `top_k`.
            let in_prefix = position < rank::FUSION_DEPTH;
            // Grouped, the whole pool is read: a document already in the
            // answer may have more passages further down.
            if !in_prefix && !query.group_by_document && hits.len() > wanted {
                break;
            }
            let Some(passage) = state.passages.get(&c.id) else {
                continue;
            };
            // Neighbouring chunks share their overlap: a prompt built from
            // both repeats it. The better-ranked one takes the other in, or
            // the other is dropped; `top_k` counts what is returned
            // (docs/retrieval.md).
            if let Some(i) = hits
                .iter()
                .position(|h| rank::overlaps(&h.passage, passage))
            {
                if in_prefix
                    && self.config.overlap == Overlap::Merge
                    && rank::merge_into(&mut hits[i].passage, passage)
                {
                    // The grown passage may now reach a hit below it.
                    let mut j = i + 1;
                    while j < hits.len() {
                        if rank::overlaps(&hits[i].passage, &hits[j].passage) {
                            let below = hits.remove(j);
                            rank::merge_into(&mut hits[i].passage, &below.passage);
                        } else {
                            j += 1;
                        }
                    }
                }
                continue;
            }
            let Some(doc) = state.documents.get(&passage.doc_id) else {
                continue;
            };
            if per_document > 0
                && hits
                    .iter()
                    .filter(|h| h.passage.doc_id == passage.doc_id)
                    .count()
                    >= per_document
            {
                continue;
            }
            if query.group_by_document && !documents.contains(&passage.doc_id.as_str()) {
                if documents.len() > wanted {
                    continue;
                }
                documents.push(&passage.doc_id);
            }
            let e = &c.explanation;
            hits.push(SearchHit {
                title: doc.title.clone(),
                source: doc.source.clone(),
                url: doc.url.clone(),
                published: doc.published.clone(),
                score: c.score,
                rank: 0,
                highlights: Vec::new(),
                explanation: query.explain.then(|| c.explanation.clone()),
                passage: passage.clone(),
                relevance: 0.0,
                evidence: Evidence {
                    // A passage missing from the dense list scores below
                    // its last entry.
                    cosine: e.dense_score.unwrap_or(dense_floor),
                    concepts: 0.0,
                    both_lists: e.dense_score.is_some() && e.lexical_score.is_some(),
                    lacks_asked_number: asked_number
                        .as_ref()
                        .is_some_and(|a| a.lacked_by(&passage.text)),
                },
            });
        }
        if query.group_by_document {
            // A document's passages together, documents by their best.
            hits.sort_by_key(|h| {
                documents
                    .iter()
                    .position(|d| *d == h.passage.doc_id)
                    .unwrap_or(usize::MAX)
            });
        }
        // Where this page starts and ends, in passages (counted in
        // documents when grouped).
        let unit_bounds = |units: usize| -> usize {
            if query.group_by_document {
                let doc = documents.get(units).copied();
                hits.iter()
                    .position(|h| Some(h.passage.doc_id.as_str()) == doc)
                    .unwrap_or(hits.len())
            } else {
                units.min(hits.len())
            }
        };
        let units = if query.group_by_document {
            documents.len()
        } else {
            hits.len()
        };
        let next_page_token = (units > page.offset + top_k
            && page.offset + top_k < MAX_PAGED_RESULTS)
            .then(|| Page::next(&query, page.offset + top_k, page.generation));
        let (start, end) = (unit_bounds(page.offset), unit_bounds(page.offset + top_k));
        // The verdict is the first result's, on every page.
        if let Some(first) = hits.first_mut() {
            first.evidence.concepts = state
                .lexical
                .concept_coverage(&lexical_query, first.passage.id);
            first.relevance = rank::relevance(&first.evidence);
        }
        let answerable = hits
            .first()
            .is_some_and(|h| h.relevance >= self.config.answer_threshold);
        let mut hits: Vec<SearchHit> = hits.drain(start..end).collect();
        for hit in &mut hits {
            hit.highlights = rank::highlights(&hit.passage, &highlight_terms);
            hit.evidence.concepts = state
                .lexical
                .concept_coverage(&lexical_query, hit.passage.id);
            hit.relevance = rank::relevance(&hit.evidence);
        }
        hits.retain(|h| h.relevance >= query.min_relevance);
        for (i, hit) in hits.iter_mut().enumerate() {
            hit.rank = (start + i) as u32 + 1;
        }
        drop(state);
        let rank_ms = ms(rank_started);
        let span = tracing::Span::current();
        span.record("embed_ms", embed_ms);
        span.record("search_ms", search_ms);
        span.record("rank_ms", rank_ms);
        tracing::debug!(hits = hits.len(), "search done");
        Ok(SearchResults {
            hits,
            answerable,
            query_language,
            mode: query.mode,
            grouped: query.group_by_document,
            next_page_token,
            timings: Timings {
                embed_ms,
                search_ms,
                rank_ms,
                total_ms: ms(started),
            },
        })
    }

    /// The query's vector, from the cache when it was asked before.
    async fn query_vector(&self, text: &str) -> Result<Arc<Vec<f32>>> {
        if let Some(vector) = self.query_cache.as_ref().and_then(|c| c.get(text)) {
            metrics::counter!("wenda_query_cache_hits_total").increment(1);
            return Ok(vector);
        }
        let mut out = self
            .embedder
            .embed(vec![text.to_string()], EmbedKind::Query)
            .await?;
        let vector = Arc::new(out.remove(0).vector);
        if let Some(cache) = &self.query_cache {
            metrics::counter!("wenda_query_cache_misses_total").increment(1);
            cache.insert(text.to_string(), vector.clone());
        }
        Ok(vector)
    }

    /// Embeds texts as the index does.
    pub async fn embed(&self, texts: Vec<String>, kind: EmbedKind) -> Result<Vec<EmbeddedText>> {
        validate_embed(&texts)?;
        let _permit = self.permit()?;
        self.embedder.embed(texts, kind).await
    }
}

/// Passages per document when grouping and the request sets no cap.
pub const DEFAULT_GROUP_SIZE: usize = 3;

/// Whether passage `id` exists and passes the query's language and document
/// filters (an empty filter passes everything).
fn passes_filters(state: &State, query: &SearchQuery, id: u64) -> bool {
    state.passages.get(&id).is_some_and(|p| {
        (query.languages.is_empty() || query.languages.contains(&p.language))
            && (query.doc_ids.is_empty() || query.doc_ids.contains(&p.doc_id))
            && query
                .filter
                .as_ref()
                .is_none_or(|f| state.documents.get(&p.doc_id).is_some_and(|d| f.matches(d)))
    })
}

/// Passages a filter lets through at most which the dense search scores
/// them all instead of walking the graph: a filtered graph walk visits
/// about (ef / selectivity) points to find its candidates, and loses recall
/// as the matching set thins out, while scoring 10,000 vectors costs a few
/// milliseconds (BENCHMARKS.md, "Filtered search").
pub const EXACT_FILTER_MAX: usize = 10_000;

/// The passages that pass the query's filters when they are few enough
/// ([`EXACT_FILTER_MAX`]) to score exactly; `None` without a document
/// filter or when more pass. Documents are tested once each, then their
/// passages.
fn selective_filter(state: &State, query: &SearchQuery) -> Option<Vec<u64>> {
    if query.filter.is_none() && query.doc_ids.is_empty() {
        return None;
    }
    let mut ids = Vec::new();
    let docs: Box<dyn Iterator<Item = &crate::store::StoredDocument>> = if query.doc_ids.is_empty()
    {
        Box::new(state.documents.values())
    } else {
        Box::new(
            query
                .doc_ids
                .iter()
                .filter_map(|id| state.documents.get(id)),
        )
    };
    for doc in docs {
        if query.filter.as_ref().is_some_and(|f| !f.matches(doc)) {
            continue;
        }
        for &id in &doc.passage_ids {
            if passes_filters(state, query, id) {
                ids.push(id);
                if ids.len() > EXACT_FILTER_MAX {
                    return None;
                }
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Some(ids)
}
