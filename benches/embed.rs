//! The real model (multilingual-e5-small on ONNX Runtime, through the
//! embedder thread as the server uses it): one query, and batches of 8 and
//! 32 corpus passages.
//!
//! cargo bench --bench embed

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use wenda::embed::EmbedKind;

fn benches(c: &mut Criterion) {
    let embedder = common::embedder();
    let counter = common::counter();
    let passages: Vec<String> = common::prepared_corpus(&counter)
        .into_iter()
        .flat_map(|d| d.chunks.into_iter().map(|c| c.chunk.text))
        .collect();
    let questions = common::questions();

    let mut group = c.benchmark_group("embed");
    // One query after another, cycling through the dev questions.
    let mut next = questions.iter().cycle();
    group.throughput(Throughput::Elements(1));
    group.bench_function("query/1", |b| {
        b.iter(|| {
            let q = next.next().expect("questions").clone();
            black_box(embedder.embed_blocking(vec![q], EmbedKind::Query).unwrap())
        })
    });

    // A batch is one model run (max_batch is 32). Runs take 0.1 to 1 s:
    // the same iteration count per sample, ten samples.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    for size in [8usize, 32] {
        assert!(
            passages.len() >= size,
            "the corpus has fewer than {size} passages"
        );
        // Consecutive windows of the corpus passages, so every language is in.
        let batches: Vec<Vec<String>> = passages.chunks_exact(size).map(<[_]>::to_vec).collect();
        let mut next = batches.iter().cycle();
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(format!("passages/{size}"), |b| {
            b.iter(|| {
                let batch = next.next().expect("batches").clone();
                black_box(embedder.embed_blocking(batch, EmbedKind::Passage).unwrap())
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = embed;
    config = common::config();
    targets = benches
}
criterion_main!(embed);
