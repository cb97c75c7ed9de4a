//! Parsing, chunking and tokenization of the real corpus with the real
//! tokenizer (multilingual-e5-small's `tokenizer.json`).
//!
//! cargo bench --bench ingest

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wenda::ingest::{self, ChunkConfig, DocumentInput, TokenCounter, chunk, parse};

fn benches(c: &mut Criterion) {
    let files = common::corpus_files();
    let counter = common::counter();
    let corpus_bytes: u64 = files.iter().map(|(_, t)| t.len() as u64).sum();

    // Markup stripping, front matter, offsets map: every article once.
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Bytes(corpus_bytes));
    group.bench_function("parse/corpus", |b| {
        b.iter(|| {
            for (_, text) in &files {
                black_box(parse::parse(black_box(text)));
            }
        })
    });

    // Sentence splitting and token-sized passages, on already parsed text.
    let parsed: Vec<_> = files.iter().map(|(_, t)| parse::parse(t)).collect();
    group.bench_function("chunk/corpus", |b| {
        b.iter(|| {
            for p in &parsed {
                black_box(chunk::chunk(&p.clean, &counter, ChunkConfig::default()));
            }
        })
    });

    // What indexing does per document before embedding: parse, detect the
    // language, chunk, tag each passage's language, hash.
    group.bench_function("prepare/corpus", |b| {
        b.iter(|| {
            for (id, text) in &files {
                let input = DocumentInput {
                    id: id.clone(),
                    text: text.clone(),
                    ..Default::default()
                };
                black_box(ingest::prepare(input, &counter, ChunkConfig::default()));
            }
        })
    });
    group.finish();

    // The tokenizer alone (as the chunker calls it: no special tokens).
    let passages: Vec<String> = common::prepared_corpus(&counter)
        .into_iter()
        .flat_map(|d| d.chunks.into_iter().map(|c| c.chunk.text))
        .collect();
    let questions = common::questions();
    let mut group = c.benchmark_group("tokenize");
    let question_bytes: u64 = questions.iter().map(|q| q.len() as u64).sum();
    group.throughput(Throughput::Bytes(question_bytes));
    group.bench_function(format!("questions/{}", questions.len()), |b| {
        b.iter(|| {
            for q in &questions {
                black_box(counter.count(black_box(q)));
            }
        })
    });
    let passage_bytes: u64 = passages.iter().map(|p| p.len() as u64).sum();
    group.throughput(Throughput::Bytes(passage_bytes));
    group.bench_function(format!("passages/{}", passages.len()), |b| {
        b.iter(|| {
            for p in &passages {
                black_box(counter.count(black_box(p)));
            }
        })
    });
    group.throughput(Throughput::Bytes(corpus_bytes));
    group.bench_function("articles/whole", |b| {
        b.iter(|| {
            for (_, text) in &files {
                black_box(counter.count(black_box(text)));
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = ingest;
    config = common::config();
    targets = benches
}
criterion_main!(ingest);
