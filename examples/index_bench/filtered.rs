//! Filtered search at several selectivities (`--filtered N`): recall@10 and
//! latency of the graph's filtered walk and of an exact scan of the
//! matching passages, each against the exact answer over the matching set,
//! beside an unfiltered search, and which of the two the engine takes
//! (`wenda::engine::EXACT_FILTER_MAX`). A filter selects whole documents,
//! as wenda's do, so the matching passages cluster as real ones would.

use std::time::Instant;

use serde_json::{Value, json};
use wenda::index::{HnswIndex, HnswParams, VectorStore};

use super::{DIM, Mixture, PER_DOC, Rng, exact_truth, recall};

/// Candidates the engine asks the index for (`rank::candidate_pool` for
/// any `top_k` up to 12); recall is measured on the first 10.
const POOL: usize = 50;

/// Whether document `doc` passes a filter letting `selectivity` of the
/// documents through: a fixed pseudo-random draw per document.
fn passes(doc: u64, selectivity: f64) -> bool {
    let draw = Rng::new(7 << 40 | doc).next_u64() % 1_000_000;
    (draw as f64) < selectivity * 1_000_000.0
}

fn ms_per_query(
    queries: &[Vec<f32>],
    mut search: impl FnMut(&[f32]) -> Vec<u64>,
) -> (f64, Vec<Vec<u64>>) {
    let started = Instant::now();
    let found: Vec<Vec<u64>> = queries
        .iter()
        .map(|q| search(q).into_iter().take(10).collect())
        .collect();
    (
        started.elapsed().as_secs_f64() * 1000.0 / queries.len() as f64,
        found,
    )
}

pub fn run(n: u64, queries: u64) -> Value {
    let mixture = Mixture::new();
    let items = mixture.passages(0..n);
    let queries = mixture.queries(n, queries);
    let index = HnswIndex::build(HnswParams::default(), DIM, items.clone()).expect("build");
    let (unfiltered_ms, _) = ms_per_query(&queries, |q| {
        index
            .search(q, POOL, &|_| true)
            .iter()
            .map(|h| h.id)
            .collect()
    });
    eprintln!("{n} vectors, unfiltered graph search {unfiltered_ms:.3} ms/query");
    let mut rows = Vec::new();
    for selectivity in [0.5, 0.1, 0.01, 0.001] {
        let matching: Vec<(u64, Vec<f32>)> = items
            .iter()
            .filter(|(id, _)| passes(id / PER_DOC, selectivity))
            .cloned()
            .collect();
        let ids: Vec<u64> = matching.iter().map(|(id, _)| *id).collect();
        let truth = exact_truth(&matching, &queries, 10);
        let filter = |id: u64| passes(id / PER_DOC, selectivity);
        let (graph_ms, graph) = ms_per_query(&queries, |q| {
            index
                .search(q, POOL, &filter)
                .iter()
                .map(|h| h.id)
                .collect()
        });
        let (scan_ms, scanned) = ms_per_query(&queries, |q| {
            index
                .search_among(q, POOL, &ids)
                .iter()
                .map(|h| h.id)
                .collect()
        });
        let engine = if ids.len() <= wenda::engine::EXACT_FILTER_MAX {
            "exact scan"
        } else {
            "graph"
        };
        let row = json!({
            "selectivity": selectivity,
            "matching": ids.len(),
            "engine_uses": engine,
            "graph_recall_at_10": recall(&truth, &graph),
            "graph_ms": graph_ms,
            "scan_recall_at_10": recall(&truth, &scanned),
            "scan_ms": scan_ms,
            "unfiltered_ms": unfiltered_ms,
        });
        eprintln!("{row}");
        rows.push(row);
    }
    json!({"vectors": n, "queries": queries.len(), "pool": POOL, "rows": rows})
}

/// The result as a markdown table.
pub fn table(result: &Value) -> String {
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let mut s = String::from(
        "| selectivity | matching passages | engine uses | graph recall@10 | graph ms/query | exact scan recall@10 | exact scan ms/query | taken / unfiltered latency |\n|---:|---:|---|---:|---:|---:|---:|---:|\n",
    );
    for r in result["rows"].as_array().into_iter().flatten() {
        let taken = if r["engine_uses"] == "graph" {
            f(r, "graph_ms")
        } else {
            f(r, "scan_ms")
        };
        s.push_str(&format!(
            "| {}% | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2}× |\n",
            f(r, "selectivity") * 100.0,
            r["matching"],
            r["engine_uses"].as_str().unwrap_or(""),
            f(r, "graph_recall_at_10"),
            f(r, "graph_ms"),
            f(r, "scan_recall_at_10"),
            f(r, "scan_ms"),
            taken / f(r, "unfiltered_ms"),
        ));
    }
    s
}
