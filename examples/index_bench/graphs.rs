//! USearch (`hnsw`, the default) against hnsw_rs (`hnsw_rs`, the design's
//! first choice) in one run (`--graphs N`): the same synthetic vectors, the
//! same M, ef_construction and ef; build time, memory the graph adds,
//! recall@10 against an exact scan, queries a second on one thread, dump
//! size and load time. One graph at a time, dropped before the next.

use std::time::Instant;

use serde_json::{Value, json};
use wenda::index::{HnswDump, HnswIndex, HnswParams, HnswRsIndex, VectorStore};

use super::{DIM, Mixture, cpu_s, dir_bytes, exact_truth, recall, rss_mb, top_ids};

type Items = [(u64, Vec<f32>)];
type Owned = Vec<(u64, Vec<f32>)>;

struct Graph {
    name: &'static str,
    build: fn(HnswParams, Owned) -> Box<dyn VectorStore>,
    /// Whether the graph loads its own dump for these items.
    load: fn(HnswParams, &std::path::Path, &HnswDump, &Items) -> bool,
}

const GRAPHS: [Graph; 2] = [
    Graph {
        name: "hnsw (USearch, default)",
        build: |p, items| Box::new(HnswIndex::build(p, DIM, items).expect("build")),
        load: |p, dir, dump, items| HnswIndex::load(p, DIM, dir, dump, items).is_ok(),
    },
    Graph {
        name: "hnsw_rs",
        build: |p, items| Box::new(HnswRsIndex::build(p, DIM, items).expect("build")),
        load: |p, dir, dump, items| HnswRsIndex::load(p, DIM, dir, dump, items).is_ok(),
    },
];

pub fn run(n: u64, queries: u64) -> Value {
    let mixture = Mixture::new();
    let items = mixture.passages(0..n);
    let queries = mixture.queries(n, queries);
    let truth = exact_truth(&items, &queries, 10);
    let params = HnswParams::default();
    let mut rows = Vec::new();
    for graph in &GRAPHS {
        let before = rss_mb().0;
        let (started, cpu) = (Instant::now(), cpu_s());
        let index = (graph.build)(params, items.clone());
        let build_s = started.elapsed().as_secs_f64();
        let build_cpu_s = cpu_s() - cpu;
        let added_mb = rss_mb().0 - before;
        let started = Instant::now();
        let found = top_ids(index.as_ref(), &queries);
        let qps = queries.len() as f64 / started.elapsed().as_secs_f64();
        let r = recall(&truth, &found);
        let dir = tempfile::tempdir().expect("temp dir");
        let dump = index.dump(dir.path()).expect("dump").expect("a dump");
        let dump_mb = dir_bytes(dir.path()) as f64 / 1e6;
        drop(index);
        let started = Instant::now();
        let loaded = (graph.load)(params, dir.path(), &dump, &items);
        let load_s = started.elapsed().as_secs_f64();
        assert!(loaded, "{} did not load its own dump", graph.name);
        let row = json!({
            "graph": graph.name,
            "build_s": build_s,
            "build_cpu_s": build_cpu_s,
            "rss_added_mb": added_mb,
            "recall_at_10": r,
            "qps": qps,
            "dump_mb": dump_mb,
            "load_s": load_s,
        });
        eprintln!("{row}");
        rows.push(row);
    }
    json!({"vectors": n, "queries": queries.len(), "m": params.m, "ef_construction": params.ef_construction, "rows": rows})
}

/// The result as a markdown table.
pub fn table(result: &Value) -> String {
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let mut s = String::from(
        "| graph | build s (CPU s) | RSS the graph adds MB | recall@10 | QPS (1 thread) | dump MB | load s (with the vector check) |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in result["rows"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "| {} | {:.1} ({:.0}) | {:.0} | {:.4} | {:.0} | {:.0} | {:.2} |\n",
            r["graph"].as_str().unwrap_or(""),
            f(r, "build_s"),
            f(r, "build_cpu_s"),
            f(r, "rss_added_mb"),
            f(r, "recall_at_10"),
            f(r, "qps"),
            f(r, "dump_mb"),
            f(r, "load_s"),
        ));
    }
    s
}
