//! The ranking stage alone, on real candidates: the corpus passages embedded
//! by the real model, the dev questions' dense (language-centred, exact
//! scan) and lexical (BM25 + translations) candidate lists, 50 each.
//!
//! `rank/stage/*` is what `Engine::search` does between its search and its
//! reply (the `rank_ms` timing), with the engine's default fusion: fuse, the
//! top 5 passages with their highlights. (The translations and highlight
//! terms come from the lexical half, which overlaps the query's embedding,
//! as in the engine.) The pieces are measured on their own too, and so
//! are the search-stage steps around them (centring the query vector, the
//! candidate searches over the corpus).
//!
//! cargo bench --bench rank

mod common;

use std::collections::{HashMap, HashSet};
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wenda::embed::EmbedKind;
use wenda::embed::LanguageCentroids;
use wenda::engine::EngineConfig;
use wenda::index::{ExactIndex, ScoredId, VectorStore};
use wenda::ingest::lang;
use wenda::lexical::{LexicalHit, LexicalIndex};
use wenda::rank;
use wenda::store::StoredPassage;
use wenda::types::SearchMode;

const TOP_K: usize = 5;

/// One question with everything the rank stage receives.
struct Case {
    query: String,
    language: String,
    vector: Vec<f32>,
    translations: Vec<String>,
    /// The highlight terms (the query's and its translations').
    terms: HashSet<String>,
    dense: Vec<ScoredId>,
    lexical: Vec<LexicalHit>,
}

struct Fixture {
    passages: HashMap<u64, StoredPassage>,
    documents: HashMap<String, String>,
    lexical: LexicalIndex,
    centroids: LanguageCentroids,
    index: ExactIndex,
    cases: Vec<Case>,
    /// The engine's defaults.
    fusion: rank::Fusion,
    lexical_weight: f32,
}

fn fixture() -> Fixture {
    let embedder = common::embedder();
    let counter = common::counter();
    let mut passages = HashMap::new();
    let mut documents = HashMap::new();
    for doc in common::prepared_corpus(&counter) {
        for c in doc.chunks {
            let id = passages.len() as u64 + 1;
            passages.insert(id, StoredPassage::from_chunk(id, &doc.id, c));
        }
        documents.insert(doc.id, doc.text);
    }
    let mut ids: Vec<u64> = passages.keys().copied().collect();
    ids.sort_unstable();
    let texts: Vec<String> = ids.iter().map(|id| passages[id].text.clone()).collect();
    eprintln!("bench: embedding {} corpus passages ...", texts.len());
    let vectors: Vec<Vec<f32>> = embedder
        .embed_blocking(texts, EmbedKind::Passage)
        .expect("embedding the corpus")
        .into_iter()
        .map(|e| e.vector)
        .collect();
    let centroids = LanguageCentroids::estimate(
        ids.iter()
            .zip(&vectors)
            .map(|(id, v)| (passages[id].language.as_str(), v.as_slice())),
    );
    let mut index = ExactIndex::new(vectors[0].len());
    for (id, v) in ids.iter().zip(&vectors) {
        index
            .insert(*id, centroids.center(v, &passages[id].language))
            .expect("insert");
    }
    let lexical = LexicalIndex::build(
        passages.values().map(|p| (p.id, p.text.as_str())),
        Some(common::lexicon()),
    );
    let pool = rank::candidate_pool(TOP_K);
    let defaults = EngineConfig::new(".");
    let cases = common::questions()
        .into_iter()
        .map(|query| {
            let language = lang::detect(&query).unwrap_or_default();
            let vector = embedder
                .embed_blocking(vec![query.clone()], EmbedKind::Query)
                .expect("embedding a question")
                .remove(0)
                .vector;
            let centred = centroids.center(&vector, language);
            let passes = |id: u64| passages.contains_key(&id);
            let dense = index.search(&centred, pool, &passes);
            let lexical_query = lexical.prepare(&query);
            let translations = lexical_query.translations().to_vec();
            let lexical = lexical.search(&lexical_query, pool, &passes);
            let terms = rank::highlight_terms(&query, &translations);
            Case {
                query,
                language: language.to_string(),
                vector,
                translations,
                terms,
                dense,
                lexical,
            }
        })
        .collect();
    Fixture {
        passages,
        documents,
        lexical,
        centroids,
        index,
        cases,
        fusion: defaults.fusion,
        lexical_weight: defaults.lexical_weight,
    }
}

/// The engine's rank stage: fuse, then the top passages with
/// their highlights (cloned, as the engine hands them to the reply).
fn rank_stage(f: &Fixture, case: &Case, mode: SearchMode) -> usize {
    let (dense, lexical): (&[ScoredId], &[LexicalHit]) = match mode {
        SearchMode::Dense => (&case.dense, &[]),
        SearchMode::Lexical => (&[], &case.lexical),
        SearchMode::Hybrid => (&case.dense, &case.lexical),
    };
    let fused = rank::fuse(mode, dense, lexical, f.fusion, f.lexical_weight);
    let terms = &case.terms;
    fused
        .into_iter()
        .take(TOP_K)
        .filter_map(|c| {
            let passage = f.passages.get(&c.id)?.clone();
            // As the engine does, for the title.
            let _document = f.documents.get(&passage.doc_id)?;
            let highlights = rank::highlights(&passage, terms);
            Some(black_box((passage, highlights)))
        })
        .count()
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    let cases = &f.cases;

    let mut group = c.benchmark_group("rank");
    for (name, mode) in [
        ("dense", SearchMode::Dense),
        ("lexical", SearchMode::Lexical),
        ("hybrid", SearchMode::Hybrid),
    ] {
        let mut next = cases.iter().cycle();
        group.bench_function(format!("stage/{name}"), |b| {
            b.iter(|| rank_stage(&f, next.next().expect("cases"), mode))
        });
    }
    let mut next = cases.iter().cycle();
    group.bench_function("fuse/hybrid", |b| {
        b.iter(|| {
            let case = next.next().expect("cases");
            black_box(rank::fuse(
                SearchMode::Hybrid,
                &case.dense,
                &case.lexical,
                f.fusion,
                f.lexical_weight,
            ))
        })
    });
    let mut next = cases.iter().cycle();
    group.bench_function("highlight_terms", |b| {
        b.iter(|| {
            let case = next.next().expect("cases");
            black_box(rank::highlight_terms(&case.query, &case.translations))
        })
    });
    let prepared: Vec<_> = cases
        .iter()
        .map(|case| {
            let top: Vec<&StoredPassage> = rank::fuse(
                SearchMode::Hybrid,
                &case.dense,
                &case.lexical,
                f.fusion,
                f.lexical_weight,
            )
            .iter()
            .take(TOP_K)
            .map(|c| &f.passages[&c.id])
            .collect();
            (&case.terms, top)
        })
        .collect();
    let mut next = prepared.iter().cycle();
    group.bench_function("highlights/top5", |b| {
        b.iter(|| {
            let (terms, top) = next.next().expect("cases");
            for p in top {
                black_box(rank::highlights(p, terms));
            }
        })
    });
    group.finish();

    // The search stage's steps, for scale (the `search_ms` timing).
    let mut group = c.benchmark_group("search_stage");
    let mut next = cases.iter().cycle();
    group.bench_function("center_query", |b| {
        b.iter(|| {
            let case = next.next().expect("cases");
            black_box(f.centroids.center(&case.vector, &case.language))
        })
    });
    let pool = rank::candidate_pool(TOP_K);
    let passes = |id: u64| f.passages.contains_key(&id);
    let mut next = cases.iter().cycle();
    group.bench_function(format!("dense_exact/{}", f.passages.len()), |b| {
        b.iter(|| {
            let case = next.next().expect("cases");
            let v = f.centroids.center(&case.vector, &case.language);
            black_box(f.index.search(&v, pool, &passes))
        })
    });
    let mut next = cases.iter().cycle();
    group.bench_function(format!("lexical/{}", f.passages.len()), |b| {
        b.iter(|| {
            let query = f.lexical.prepare(&next.next().expect("cases").query);
            black_box(f.lexical.search(&query, pool, &passes))
        })
    });
    group.finish();
}

criterion_group! {
    name = rank;
    config = common::config();
    targets = benches
}
criterion_main!(rank);
