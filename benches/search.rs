//! `Engine::search` end to end (embedding the query, searching, ranking,
//! highlights) on an engine opened on a temporary data directory over the
//! real corpus with the real model and `wenda serve`'s default settings:
//! one benchmark per mode, cycling through the dev questions, top 5.
//! No gRPC: `bench/run.py --only concurrency` measures the server.
//!
//! cargo bench --bench search

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use wenda::engine::{Engine, EngineConfig};
use wenda::types::{SearchMode, SearchQuery};

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let data = tempfile::tempdir().expect("temporary data dir");
    let engine = rt.block_on(async {
        let mut config = EngineConfig::new(data.path());
        config.lexicon = Some(common::lexicon());
        let engine = Engine::open(config, common::embedder(), Arc::new(common::counter()))
            .await
            .expect("engine opens");
        eprintln!("bench: indexing {} ...", common::corpus_dir().display());
        engine
            .sync_corpus(&common::corpus_dir(), &|_, _| {})
            .await
            .expect("corpus syncs");
        engine
    });
    let questions = common::questions();

    let mut group = c.benchmark_group("engine_search");
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(5));
    for (name, mode) in [
        ("dense", SearchMode::Dense),
        ("lexical", SearchMode::Lexical),
        ("hybrid", SearchMode::Hybrid),
    ] {
        let mut next = questions.iter().cycle();
        group.bench_function(name, |b| {
            b.iter(|| {
                let query = SearchQuery {
                    query: next.next().expect("questions").clone(),
                    top_k: 5,
                    mode,
                    ..Default::default()
                };
                black_box(rt.block_on(engine.search(query)).expect("search"))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = search;
    config = common::config();
    targets = benches
}
criterion_main!(search);
