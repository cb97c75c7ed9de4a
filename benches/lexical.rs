//! BM25 search (with the CC-CEDICT query translations `wenda serve` uses by
//! default) over the corpus passages, and over the corpus passages repeated
//! to about 10,000 (a larger posting list, same vocabulary), for the dev
//! questions, top 50 (the engine's candidate pool at top_k 5).
//!
//! The peer, `search_bm25_crate/N`, is the `bm25` crate wenda used before
//! 2026-12-02, over the same terms: the query and all its translations
//! scored as separate terms.
//!
//! cargo bench --bench lexical

mod common;

use std::hint::black_box;

use bm25::{EmbedderBuilder, Scorer};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use wenda::lexical::{LexicalIndex, TermTokenizer};

/// The crate's tokenizer hook, over wenda's terms.
#[derive(Default)]
struct Terms;

impl bm25::Tokenizer for Terms {
    fn tokenize(&self, input_text: &str) -> Vec<String> {
        TermTokenizer.terms(input_text)
    }
}

const K: usize = 50;

fn benches(c: &mut Criterion) {
    let counter = common::counter();
    let passages: Vec<String> = common::prepared_corpus(&counter)
        .into_iter()
        .flat_map(|d| d.chunks.into_iter().map(|c| c.chunk.text))
        .collect();
    let questions = common::questions();
    let lexicon = common::lexicon();

    let mut group = c.benchmark_group("lexical");
    // Query segmentation alone (jieba for Han runs, stop words).
    let mut next = questions.iter().cycle();
    group.bench_function("terms/question", |b| {
        b.iter(|| black_box(TermTokenizer.terms(next.next().expect("questions"))))
    });

    let copies = (10_000 / passages.len()).max(1);
    for copies in [1, copies] {
        let texts: Vec<&str> = (0..copies)
            .flat_map(|_| passages.iter().map(String::as_str))
            .collect();
        let index = LexicalIndex::build(
            texts.iter().enumerate().map(|(i, t)| (i as u64, *t)),
            Some(lexicon.clone()),
        );
        let n = texts.len();
        let mut next = questions.iter().cycle();
        group.bench_with_input(BenchmarkId::new("prepare", n), &index, |b, index| {
            b.iter(|| black_box(index.prepare(next.next().expect("questions"))))
        });
        let prepared: Vec<_> = questions.iter().map(|q| index.prepare(q)).collect();
        let mut next = prepared.iter().cycle();
        group.bench_with_input(BenchmarkId::new("search", n), &index, |b, index| {
            b.iter(|| black_box(index.search(next.next().expect("questions"), K, &|_| true)))
        });
        let total: usize = texts.iter().map(|t| TermTokenizer.terms(t).len()).sum();
        let embedder = EmbedderBuilder::<u32, Terms>::with_avgdl(total as f32 / n as f32).build();
        let mut scorer = Scorer::<u64, u32>::new();
        for (i, t) in texts.iter().enumerate() {
            scorer.upsert(&(i as u64), embedder.embed(t));
        }
        let expanded: Vec<_> = questions
            .iter()
            .zip(&prepared)
            .map(|(q, p)| embedder.embed(&format!("{q} {}", p.translations().join(" "))))
            .collect();
        let mut next = expanded.iter().cycle();
        group.bench_function(BenchmarkId::new("search_bm25_crate", n), |b| {
            b.iter(|| {
                let mut hits = scorer.matches(next.next().expect("questions"));
                hits.truncate(K);
                black_box(hits)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = lexical;
    config = common::config();
    targets = benches
}
criterion_main!(lexical);
