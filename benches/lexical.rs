//! BM25 search (with the CC-CEDICT query translations `wenda serve` uses by
//! default) over the corpus passages, and over the corpus passages repeated
//! to about 10,000 (a larger posting list, same vocabulary), for the dev
//! questions, top 50 (the engine's candidate pool at top_k 5).
//!
//! cargo bench --bench lexical

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use wenda::lexical::{LexicalIndex, TermTokenizer};

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
        group.bench_with_input(BenchmarkId::new("translations", n), &index, |b, index| {
            b.iter(|| black_box(index.translations(next.next().expect("questions"))))
        });
        let mut next = questions.iter().cycle();
        group.bench_with_input(BenchmarkId::new("search", n), &index, |b, index| {
            b.iter(|| black_box(index.search(next.next().expect("questions"), K, &|_| true)))
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
