//! Vector search over synthetic 384-dimension unit vectors: the exact scan
//! and the HNSW graph (default parameters) at 10,000 and 50,000 vectors,
//! top 50 (the candidate pool the engine asks for at top_k 5).
//!
//! The vectors are clustered like `examples/index_bench.rs`'s (200 centres,
//! noise 0.35), closer to real embeddings than uniform noise. Building the
//! 50,000-vector graph takes minutes on 2 cores, so each graph is dumped to
//! `target/bench-cache/` on the first run and loaded from there afterwards.
//! The cache key includes a hash of the `src/index/` files as
//! compiled into this bench, so a change to the index code builds anew
//! (delete that folder to force it). `WENDA_BENCH_VECTORS=10000,50000`
//! changes the sizes.
//!
//! cargo bench --bench index

mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use wenda::index::{ExactIndex, HnswDump, HnswIndex, HnswParams, VectorStore};

const DIM: usize = 384;
const QUERIES: u64 = 200;
/// `rank::candidate_pool(5)`.
const K: usize = 50;
/// Bump when the generator below changes: cached graphs are keyed on it.
const GENERATOR: &str = "clustered200-0.35-v1";

/// The index code this bench was compiled with: cached graphs built by
/// other code are not reused.
fn code_hash() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(include_str!("../src/index/mod.rs"));
    h.update(include_str!("../src/index/kernels.rs"));
    h.update(include_str!("../src/index/hnsw.rs"));
    h.update(include_str!("../src/index/dump.rs"));
    hex::encode(&h.finalize()[..6])
}

fn clustered(seed: u64) -> Vec<f32> {
    let centre = unit(1_000_000 + seed % 200);
    let noise = unit(seed.wrapping_mul(7919));
    let v: Vec<f32> = centre
        .iter()
        .zip(&noise)
        .map(|(c, n)| c + 0.35 * n)
        .collect();
    normalise(v)
}

fn unit(seed: u64) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    normalise(
        (0..DIM)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 20_001) as f32 / 10_000.0 - 1.0
            })
            .collect(),
    )
}

fn normalise(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.into_iter().map(|a| a / n).collect()
}

fn sizes() -> Vec<usize> {
    std::env::var("WENDA_BENCH_VECTORS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 50_000])
}

/// The graph over `items`, loaded from the cache when a dump of exactly
/// these items and parameters is there; built (and dumped) otherwise.
fn hnsw(params: HnswParams, items: Vec<(u64, Vec<f32>)>) -> HnswIndex {
    let prefix = format!(
        "hnsw-{GENERATOR}-{}-m{}-efc{}-",
        items.len(),
        params.m,
        params.ef_construction
    );
    let dir = common::cache_dir().join(format!("{prefix}{}", code_hash()));
    let meta = dir.join("dump.json");
    if let Some(dump) = std::fs::read(&meta)
        .ok()
        .and_then(|b| serde_json::from_slice::<HnswDump>(&b).ok())
    {
        match HnswIndex::load(params, DIM, &dir, &dump, &items) {
            Ok(index) => return index,
            Err(err) => eprintln!(
                "bench: cached graph in {} unusable ({err}); rebuilding",
                dir.display()
            ),
        }
    }
    eprintln!(
        "bench: building the HNSW graph over {} vectors (once; cached in {}) ...",
        items.len(),
        dir.display()
    );
    let started = Instant::now();
    let index = HnswIndex::build(params, DIM, items).expect("hnsw build");
    eprintln!("bench: built in {:.1} s", started.elapsed().as_secs_f64());
    // Graphs of the same size built by earlier index code are stale.
    if let Ok(entries) = std::fs::read_dir(common::cache_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && entry.path() != dir {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    if let Err(err) = save(&index, &dir, &meta) {
        eprintln!("bench: not cached: {err}");
    }
    index
}

fn save(index: &HnswIndex, dir: &Path, meta: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    if let Some(dump) = index.dump(dir)? {
        std::fs::write(meta, serde_json::to_vec(&dump)?)?;
    }
    Ok(())
}

fn benches(c: &mut Criterion) {
    let queries: Vec<Vec<f32>> = (0..QUERIES).map(|q| clustered(10_000_000 + q)).collect();
    let mut group = c.benchmark_group("vector_search");
    for n in sizes() {
        let items: Vec<(u64, Vec<f32>)> = (0..n as u64).map(|i| (i, clustered(i + 1))).collect();
        let mut exact = ExactIndex::new(DIM);
        for (id, v) in &items {
            exact.insert(*id, v.clone()).expect("insert");
        }
        let mut next = queries.iter().cycle();
        group.bench_with_input(BenchmarkId::new("exact", n), &exact, |b, index| {
            b.iter(|| black_box(index.search(next.next().expect("queries"), K, &|_| true)))
        });
        drop(exact);

        let graph = hnsw(HnswParams::default(), items);
        let mut next = queries.iter().cycle();
        group.bench_with_input(BenchmarkId::new("hnsw", n), &graph, |b, index| {
            b.iter(|| black_box(index.search(next.next().expect("queries"), K, &|_| true)))
        });
    }
    group.finish();
}

criterion_group! {
    name = index;
    config = common::config();
    targets = benches
}
criterion_main!(index);
