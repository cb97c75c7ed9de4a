//! Exact scan versus HNSW on synthetic 384-dimension unit vectors: search
//! latency, build time and recall@10, at several corpus sizes. Picks the
//! `--exact-threshold` default (where the graph starts to pay off).
//!
//! cargo run --release --example index_bench -- [SIZES, default 1000,5000,20000,50000]

use std::time::Instant;

use wenda::index::{ExactIndex, HnswIndex, HnswParams, VectorStore};

const DIM: usize = 384;
const QUERIES: u64 = 200;

/// Embeddings cluster by topic: points scattered around 200 random centres
/// (noise at 0.35 of a centre's length) are closer to them than uniform
/// noise, which no index handles well in 384 dimensions.
fn clustered(seed: u64) -> Vec<f32> {
    let centre = unit(1_000_000 + seed % 200);
    let noise = unit(seed.wrapping_mul(7919));
    let v: Vec<f32> = centre
        .iter()
        .zip(&noise)
        .map(|(c, n)| c + 0.35 * n)
        .collect();
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.into_iter().map(|a| a / n).collect()
}

fn unit(seed: u64) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let v: Vec<f32> = (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 20_001) as f32 / 10_000.0 - 1.0
        })
        .collect();
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.into_iter().map(|a| a / n).collect()
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .nth(1)
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 5_000, 20_000, 50_000]);
    println!(
        "| vectors | exact search ms/query | hnsw build s | hnsw search ms/query | recall@10 | exact/hnsw |"
    );
    println!("|---|---|---|---|---|---|");
    for n in sizes {
        let items: Vec<(u64, Vec<f32>)> = (0..n as u64).map(|i| (i, clustered(i + 1))).collect();
        let mut exact = ExactIndex::new(DIM);
        for (id, v) in &items {
            exact.insert(*id, v.clone()).unwrap();
        }
        let started = Instant::now();
        let hnsw = HnswIndex::build(HnswParams::default(), DIM, items).unwrap();
        let build_s = started.elapsed().as_secs_f64();
        let queries: Vec<Vec<f32>> = (0..QUERIES).map(|q| clustered(10_000_000 + q)).collect();

        let started = Instant::now();
        let truth: Vec<Vec<u64>> = queries
            .iter()
            .map(|q| {
                exact
                    .search(q, 10, &|_| true)
                    .iter()
                    .map(|h| h.id)
                    .collect()
            })
            .collect();
        let exact_ms = started.elapsed().as_secs_f64() * 1000.0 / QUERIES as f64;

        let started = Instant::now();
        let found: Vec<Vec<u64>> = queries
            .iter()
            .map(|q| hnsw.search(q, 10, &|_| true).iter().map(|h| h.id).collect())
            .collect();
        let hnsw_ms = started.elapsed().as_secs_f64() * 1000.0 / QUERIES as f64;
        let hits: usize = truth
            .iter()
            .zip(&found)
            .map(|(t, f)| f.iter().filter(|id| t.contains(id)).count())
            .sum();
        let recall = hits as f64 / (10 * QUERIES) as f64;
        println!(
            "| {n} | {exact_ms:.3} | {build_s:.1} | {hnsw_ms:.3} | {recall:.3} | {:.1}x |",
            exact_ms / hnsw_ms
        );
    }
}
