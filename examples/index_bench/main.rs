//! Vector index benchmarks on synthetic 384-dimension unit vectors.
//!
//! Small sizes, exact scan against HNSW (picks the `--exact-threshold`
//! default, where the graph starts to pay off):
//!
//!     cargo run --release --example index_bench -- [SIZES, default 1000,5000,20000,50000]
//!
//! Scale, one corpus size per process so the peak RSS is that size's alone:
//! build time, RSS, recall@10 against an exact scan at several ef, QPS,
//! dump size, load time of the dump:
//!
//!     cargo run --release --example index_bench -- --scale 100000
//!     cargo run --release --example index_bench -- --scale 1000000
//!
//! Options after `--scale N`: `--m M`, `--ef-construction E`, `--ef 32,64,128`
//! (the first default-ef row is the one the target is about), `--queries Q`,
//! `--out DIR` (default `target/index-bench`). Each run saves its figures to
//! `DIR/scale-N.json`, small-size runs to `DIR/small.json`.
//!
//! Filtered search (`filtered.rs`): recall@10 and latency at selectivities
//! 50%, 10%, 1% and 0.1%, graph walk against exact scan:
//!
//!     cargo run --release --example index_bench -- --filtered 100000
//!
//! USearch against hnsw_rs in one run (`graphs.rs`):
//!
//!     cargo run --release --example index_bench -- --graphs 100000
//!
//! `--write-benchmarks [--benchmarks FILE]` rewrites BENCHMARKS.md's `index`
//! section from the saved figures. `--stats FILE,...` prints the neighbour statistics of real
//! embeddings (`wenda embed --kind passage` output, one file a document) and
//! `--stats synthetic` those of the synthetic mixture, to compare the two.

mod filtered;
mod graphs;

use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};
use wenda::index::{ExactIndex, HnswIndex, HnswParams, IndexConfig, IndexKind, VectorStore, dot};

const DIM: usize = 384;

/// The server's allocator (src/main.rs), so RSS is what wenda's would be.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const INTRO: &str = r#"## Vector index at scale: HNSW build, memory, recall, load (issue: performance)

Written by `cargo run --release --example index_bench -- --write-benchmarks`
from the runs saved by

    nice -n 10 cargo run --release --example index_bench -- --scale 100000
    nice -n 10 cargo run --release --example index_bench -- --scale 1000000

one corpus size per process (so each peak RSS is that size's own), on the
shared 2-core development machine (x86_64, AVX2): wall-clock times and QPS
are noisy (the machine's load average during each run is in the table; CPU
seconds are given beside wall time), recall, RSS and dump size are not.

Vectors: synthetic 384-dimension unit vectors from a two-level Gaussian
mixture shaped like multilingual-e5-small passage embeddings: 1,000 topic
centres, documents of 16 passages around a topic, passages around their
document, with anisotropic noise (scale (1 + r)^-0.4 along a topic's own
directions). Measured on 120 real passages (the 5 corpus articles and 3 of
wenda's docs, `wenda embed --kind passage`, mean removed) against the same
statistic on 8 synthetic documents (`index_bench --stats`):

| statistic | real passages | synthetic |
|---|---:|---:|
| cosine, passages of one document | 0.36 ± 0.14 | 0.37 ± 0.09 |
| cosine to the nearest neighbour | 0.58 | 0.49 |
| cosine to the 10th nearest neighbour | 0.38 | 0.34 |
| local intrinsic dimension (MLE, 10 neighbours) | 17.9 | 18.8 |

so the synthetic set is, if anything, a little harder (neighbours slightly
farther) than real text. Queries: 1,000 new passages of existing documents.
Recall@10 is against an exact scan of the same vectors in f32 (the graph
holds them in half precision); QPS is one thread,
`search(k = 10)` with no filter. Load: the dump file is length- and
CRC-32-checked, USearch reads the graph and its copy of the vectors, and
every loaded vector is compared with the stored one (so a dump is never used
with other vectors); the dump is in the page cache (warm).

The index is USearch 2.26 behind wenda's `HnswIndex` (src/index/hnsw.rs): the
vectors held once, in half precision (USearch's arena), wenda's AVX2 + F16C
dot product as the metric (1 − dot for unit vectors), tombstones counted for
compaction, and an exact side list for points a search for their own vector
does not find. The benchmark runs on the server's allocator (mimalloc).
"index MB" is the index's own count (`HnswIndex::memory_bytes`: USearch's
allocations, which reserve whole arena blocks, plus the side list); RSS
after build is the process holding the graph (the generated inputs are freed
one by one as the graph takes them, so the peak is about theirs); RSS after
load also holds the f32 vectors the load is checked against, as a restart
holds redb's copy while it loads.
"#;

/// The synthetic corpus: a two-level Gaussian mixture on the unit sphere,
/// shaped like real passage embeddings (see `--stats` and BENCHMARKS.md).
///
/// - `TOPICS` topic centres, uniformly random directions;
/// - documents of `PER_DOC` passages, each document's centre its topic's
///   centre plus noise of norm `DOC_SPREAD`;
/// - each passage its document's centre plus noise of norm `PASSAGE_SPREAD`,
///   normalised.
///
/// The noise is anisotropic: coordinate r (counted from a per-topic offset)
/// has scale (1 + r)^-DECAY, so most of the variation lies in a few dozen
/// directions that differ between topics, as in real embeddings (whose local
/// intrinsic dimension is far below 384). Isotropic noise would make every
/// point about equally far from every other, which real text is not, and
/// which no graph index handles (the "uniform" rows of earlier runs).
const TOPICS: u64 = 1000;
const PER_DOC: u64 = 16;
const DOC_SPREAD: f32 = 1.0;
const PASSAGE_SPREAD: f32 = 1.7;
const DECAY: f32 = 0.4;

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Two standard normal numbers (Box-Muller).
    fn normals(&mut self) -> (f32, f32) {
        let r = (-2.0 * self.unit().ln()).sqrt();
        let t = std::f64::consts::TAU * self.unit();
        ((r * t.cos()) as f32, (r * t.sin()) as f32)
    }
}

fn normalize(v: &mut [f32]) {
    let n = dot(v, v).sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

struct Mixture {
    /// Noise scale by rank, normalised to unit expected norm.
    scales: Vec<f32>,
    topics: Vec<Vec<f32>>,
}

impl Mixture {
    fn new() -> Self {
        let mut scales: Vec<f32> = (0..DIM).map(|r| (1.0 + r as f32).powf(-DECAY)).collect();
        let norm = dot(&scales, &scales).sqrt();
        scales.iter_mut().for_each(|s| *s /= norm);
        let topics = (0..TOPICS)
            .map(|t| {
                let mut rng = Rng::new(1 << 40 | t);
                let mut v: Vec<f32> = (0..DIM / 2)
                    .flat_map(|_| {
                        let (a, b) = rng.normals();
                        [a, b]
                    })
                    .collect();
                normalize(&mut v);
                v
            })
            .collect();
        Self { scales, topics }
    }

    fn topic_of(doc: u64) -> u64 {
        let mut rng = Rng::new(2 << 40 | doc);
        rng.next_u64() % TOPICS
    }

    /// `base` plus anisotropic noise of norm about `spread`, along the
    /// topic's own directions.
    fn around(&self, base: &[f32], topic: u64, spread: f32, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let offset = (topic as usize * 37) % DIM;
        let mut v = base.to_vec();
        for r in (0..DIM).step_by(2) {
            let (a, b) = rng.normals();
            v[(r + offset) % DIM] += spread * self.scales[r] * a;
            v[(r + 1 + offset) % DIM] += spread * self.scales[r + 1] * b;
        }
        v
    }

    fn doc_centre(&self, doc: u64) -> Vec<f32> {
        let topic = Self::topic_of(doc);
        self.around(
            &self.topics[topic as usize],
            topic,
            DOC_SPREAD,
            3 << 40 | doc,
        )
    }

    /// Passage `i` (document i / PER_DOC), given its document's centre.
    fn passage(&self, i: u64, centre: &[f32]) -> Vec<f32> {
        let topic = Self::topic_of(i / PER_DOC);
        let mut v = self.around(centre, topic, PASSAGE_SPREAD, 4 << 40 | i);
        normalize(&mut v);
        v
    }

    /// Passages `range`, on every core.
    fn passages(&self, range: std::ops::Range<u64>) -> Vec<(u64, Vec<f32>)> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let len = range.end - range.start;
        let per = len.div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let parts: Vec<_> = (0..threads)
                .map(|t| {
                    let lo = range.start + (t * per).min(len);
                    let hi = range.start + ((t + 1) * per).min(len);
                    scope.spawn(move || {
                        let mut out = Vec::with_capacity((hi - lo) as usize);
                        let mut centre = (u64::MAX, Vec::new());
                        for i in lo..hi {
                            if centre.0 != i / PER_DOC {
                                centre = (i / PER_DOC, self.doc_centre(i / PER_DOC));
                            }
                            out.push((i, self.passage(i, &centre.1)));
                        }
                        out
                    })
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|p| p.join().expect("generator"))
                .collect()
        })
    }

    /// Queries: new passages of existing documents (ids past the corpus).
    fn queries(&self, corpus: u64, count: u64) -> Vec<Vec<f32>> {
        (0..count)
            .map(|q| {
                let mut rng = Rng::new(5 << 40 | q);
                let doc = rng.next_u64() % corpus.div_ceil(PER_DOC);
                let topic = Self::topic_of(doc);
                let mut v = self.around(&self.doc_centre(doc), topic, PASSAGE_SPREAD, 6 << 40 | q);
                normalize(&mut v);
                v
            })
            .collect()
    }
}

/// VmRSS and VmHWM of this process, in MB.
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Starts a new peak for VmHWM (Linux: writing 5 to clear_refs).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// CPU seconds this process has used (user + system; 100 ticks a second).
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (tick(11) + tick(12)) / 100.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

struct Scored(f32, u64);

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: a max-heap of these keeps the worst on top.
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

/// The ids of each query's 10 best hits from `index`, unfiltered.
fn top_ids(index: &dyn VectorStore, queries: &[Vec<f32>]) -> Vec<Vec<u64>> {
    queries
        .iter()
        .map(|q| {
            index
                .search(q, 10, &|_| true)
                .iter()
                .map(|h| h.id)
                .collect()
        })
        .collect()
}

/// The exact top `k` of every query over the index's own vectors, all
/// queries per pass over the vectors, on every core.
fn exact_truth(items: &[(u64, Vec<f32>)], queries: &[Vec<f32>], k: usize) -> Vec<Vec<u64>> {
    let vectors: Vec<(u64, &[f32])> = items.iter().map(|(id, v)| (*id, v.as_slice())).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = vectors.len().div_ceil(threads);
    let heaps: Vec<Vec<BinaryHeap<Scored>>> = std::thread::scope(|scope| {
        let parts: Vec<_> = vectors
            .chunks(per.max(1))
            .map(|part| {
                scope.spawn(move || {
                    let mut heaps: Vec<BinaryHeap<Scored>> =
                        queries.iter().map(|_| BinaryHeap::new()).collect();
                    for block in part.chunks(256) {
                        for (q, heap) in queries.iter().zip(heaps.iter_mut()) {
                            for (id, v) in block {
                                let s = dot(q, v);
                                if heap.len() < k {
                                    heap.push(Scored(s, *id));
                                } else if heap.peek().is_some_and(|w| s > w.0) {
                                    heap.pop();
                                    heap.push(Scored(s, *id));
                                }
                            }
                        }
                    }
                    heaps
                })
            })
            .collect();
        parts.into_iter().map(|p| p.join().expect("scan")).collect()
    });
    (0..queries.len())
        .map(|q| {
            let mut all: Vec<&Scored> = heaps.iter().flat_map(|h| h[q].iter()).collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            all.iter().take(k).map(|s| s.1).collect()
        })
        .collect()
}

fn recall(truth: &[Vec<u64>], found: &[Vec<u64>]) -> f64 {
    let hits: usize = truth
        .iter()
        .zip(found)
        .map(|(t, f)| f.iter().filter(|id| t.contains(id)).count())
        .sum();
    let total: usize = truth.iter().map(Vec::len).sum();
    hits as f64 / total as f64
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

struct ScaleArgs {
    n: u64,
    params: HnswParams,
    efs: Vec<usize>,
    queries: u64,
    out: PathBuf,
}

fn scale(args: &ScaleArgs) -> Value {
    let load_start = loadavg();
    let started = Instant::now();
    let mixture = Mixture::new();
    let items = mixture.passages(0..args.n);
    let gen_s = started.elapsed().as_secs_f64();
    let queries = mixture.queries(args.n, args.queries);
    eprintln!("generated {} vectors in {gen_s:.1} s", args.n);

    let (started, cpu) = (Instant::now(), cpu_s());
    let mut index = HnswIndex::build(args.params, DIM, items).expect("build");
    let build_s = started.elapsed().as_secs_f64();
    let build_cpu_s = cpu_s() - cpu;
    let (rss_build, hwm_build) = rss_mb();
    let index_mb = index.memory_bytes() as f64 / 1e6;
    eprintln!(
        "built in {build_s:.1} s ({build_cpu_s:.0} CPU s), RSS {rss_build:.0} MB, peak {hwm_build:.0} MB, index {index_mb:.0} MB"
    );

    // The graph holds the only copy of the vectors, in half precision; the
    // exact truth (f32) and the reload's check (as a restart checks against
    // redb's copy) use the vectors generated again, after the RSS reading.
    let copies = mixture.passages(0..args.n);
    drop(mixture);
    let started = Instant::now();
    let truth = exact_truth(&copies, &queries, 10);
    let truth_s = started.elapsed().as_secs_f64();
    // Single-query exact scan latency, on a few queries, one thread.
    let scan_queries = 20.min(queries.len());
    let started = Instant::now();
    for q in &queries[..scan_queries] {
        let best = copies
            .iter()
            .map(|(id, v)| (dot(q, v), *id))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        std::hint::black_box(best);
    }
    let exact_ms = started.elapsed().as_secs_f64() * 1000.0 / scan_queries as f64;
    eprintln!("exact truth in {truth_s:.1} s; exact scan {exact_ms:.1} ms/query");

    let default_ef = index.ef_search();
    let mut efs = args.efs.clone();
    if !efs.contains(&default_ef) {
        efs.push(default_ef);
        efs.sort_unstable();
    }
    let mut rows = Vec::new();
    let mut default_results = Vec::new();
    for &ef in &efs {
        index.set_ef_search(Some(ef)).expect("ef");
        let (started, cpu) = (Instant::now(), cpu_s());
        let found = top_ids(&index, &queries);
        let secs = started.elapsed().as_secs_f64();
        let cpu_secs = cpu_s() - cpu;
        let r = recall(&truth, &found);
        eprintln!(
            "ef {ef}: recall@10 {r:.4}, {:.0} QPS ({:.0} per CPU second)",
            queries.len() as f64 / secs,
            queries.len() as f64 / cpu_secs
        );
        if ef == default_ef {
            default_results = found;
        }
        rows.push(json!({
            "ef": ef,
            "recall_at_10": r,
            "qps": queries.len() as f64 / secs,
            "qps_per_cpu_s": queries.len() as f64 / cpu_secs,
            "ms_per_query": secs * 1000.0 / queries.len() as f64,
        }));
    }
    index.set_ef_search(args.params.ef_search).expect("ef");

    let dump_dir = args.out.join(format!("dump-{}", args.n));
    let _ = std::fs::remove_dir_all(&dump_dir);
    std::fs::create_dir_all(&dump_dir).expect("dump dir");
    let started = Instant::now();
    let dump = index.dump(&dump_dir).expect("dump").expect("a graph");
    let dump_s = started.elapsed().as_secs_f64();
    let dump_bytes = dir_bytes(&dump_dir);
    let unreachable = index.unreachable_len();

    // Load the dump as a restart does (`index::build` given the dump): the
    // vectors (redb's copy there) are checked against it, then freed before
    // the graph is read.
    drop(index);
    let (_, hwm) = rss_mb();
    reset_peak_rss();
    let config = IndexConfig {
        kind: IndexKind::Hnsw,
        hnsw: args.params,
        exact_threshold: 0,
    };
    let (started, cpu) = (Instant::now(), cpu_s());
    let (loaded, from_dump) =
        wenda::index::build(&config, DIM, copies, Some((&dump_dir, &dump))).expect("load");
    let load_s = started.elapsed().as_secs_f64();
    let load_cpu_s = cpu_s() - cpu;
    let (rss_load, hwm_load) = rss_mb();
    assert!(from_dump, "the dump was loaded, not rebuilt");
    let same = queries
        .iter()
        .zip(&default_results)
        .filter(|(q, before)| top_ids(loaded.as_ref(), std::slice::from_ref(*q))[0] == **before)
        .count();
    let _ = std::fs::remove_dir_all(&dump_dir);
    eprintln!(
        "dump {dump_s:.1} s, {:.0} MB; load {load_s:.2} s, RSS {rss_load:.0} MB, peak {hwm_load:.0} MB; {same}/{} queries identical after load; peak RSS before the load {hwm:.0} MB",
        dump_bytes as f64 / 1e6,
        queries.len()
    );
    json!({
        "vectors": args.n,
        "dimension": DIM,
        "m": args.params.m,
        "ef_construction": args.params.ef_construction,
        "ef_search_default": default_ef,
        "queries": queries.len(),
        "generate_s": gen_s,
        "build_s": build_s,
        "build_cpu_s": build_cpu_s,
        "rss_after_build_mb": rss_build,
        "peak_rss_after_build_mb": hwm_build,
        "index_mb": index_mb,
        "unreachable": unreachable,
        "exact_scan_ms_per_query": exact_ms,
        "ef_rows": rows,
        "dump_s": dump_s,
        "dump_bytes": dump_bytes,
        "load_s": load_s,
        "load_cpu_s": load_cpu_s,
        "rss_after_load_mb": rss_load,
        "peak_rss_load_mb": hwm_load,
        "identical_after_load": same,
        "peak_rss_mb": hwm,
        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "date": date(),
    })
}

fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The old comparison: exact scan against HNSW at small sizes.
fn small(sizes: &[u64]) -> Value {
    let mixture = Mixture::new();
    let mut rows = Vec::new();
    println!(
        "| vectors | exact search ms/query | hnsw build s | hnsw search ms/query | recall@10 | exact/hnsw |"
    );
    println!("|---|---|---|---|---|---|");
    for &n in sizes {
        let items = mixture.passages(0..n);
        let mut exact = ExactIndex::new(DIM);
        for (id, v) in &items {
            exact.insert(*id, v.clone()).unwrap();
        }
        let started = Instant::now();
        let hnsw = HnswIndex::build(HnswParams::default(), DIM, items).unwrap();
        let build_s = started.elapsed().as_secs_f64();
        let queries = mixture.queries(n, 200);
        let started = Instant::now();
        let truth = top_ids(&exact, &queries);
        let exact_ms = started.elapsed().as_secs_f64() * 1000.0 / queries.len() as f64;
        let started = Instant::now();
        let found = top_ids(&hnsw, &queries);
        let hnsw_ms = started.elapsed().as_secs_f64() * 1000.0 / queries.len() as f64;
        let r = recall(&truth, &found);
        println!(
            "| {n} | {exact_ms:.3} | {build_s:.1} | {hnsw_ms:.3} | {r:.3} | {:.1}x |",
            exact_ms / hnsw_ms
        );
        rows.push(
            json!({"vectors": n, "exact_ms": exact_ms, "build_s": build_s,
            "hnsw_ms": hnsw_ms, "recall_at_10": r}),
        );
    }
    json!({"rows": rows, "date": date(), "loadavg": loadavg()})
}

/// Neighbour statistics of a set of documents' vectors: cosine of random
/// pairs, of pairs in one document, to the 1st and 10th nearest neighbour,
/// and the local intrinsic dimension (maximum-likelihood estimate from the
/// 10 nearest neighbours' distances, Levina and Bickel 2004), after removing
/// the mean vector as wenda does per language.
fn stats(docs: Vec<Vec<Vec<f32>>>) -> Value {
    let mut all: Vec<(usize, Vec<f32>)> = docs
        .into_iter()
        .enumerate()
        .flat_map(|(d, vs)| vs.into_iter().map(move |v| (d, v)))
        .collect();
    let n = all.len();
    let mut mean = vec![0f32; DIM];
    for (_, v) in &all {
        mean.iter_mut().zip(v).for_each(|(m, x)| *m += x / n as f32);
    }
    for (_, v) in &mut all {
        v.iter_mut().zip(&mean).for_each(|(x, m)| *x -= m);
        normalize(v);
    }
    let (mut random, mut same) = (Vec::new(), Vec::new());
    let (mut nn1, mut nn10, mut lid) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (di, vi)) in all.iter().enumerate() {
        let mut dists: Vec<f32> = Vec::with_capacity(n);
        for (j, (dj, vj)) in all.iter().enumerate() {
            if i == j {
                continue;
            }
            let c = dot(vi, vj);
            if j > i {
                if di == dj { &mut same } else { &mut random }.push(c);
            }
            dists.push((2.0 - 2.0 * c).max(0.0).sqrt());
        }
        dists.sort_by(f32::total_cmp);
        nn1.push(1.0 - dists[0] * dists[0] / 2.0);
        nn10.push(1.0 - dists[9] * dists[9] / 2.0);
        let k = 10;
        let s: f32 = dists[..k - 1]
            .iter()
            .map(|d| (d / dists[k - 1]).max(1e-6).ln())
            .sum::<f32>()
            / (k - 1) as f32;
        lid.push(-1.0 / s);
    }
    let summary = |xs: &[f32]| {
        let m = xs.iter().sum::<f32>() / xs.len().max(1) as f32;
        let sd =
            (xs.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / xs.len().max(1) as f32).sqrt();
        json!({"mean": m, "sd": sd})
    };
    json!({
        "vectors": n,
        "random_pair_cos": summary(&random),
        "same_document_cos": summary(&same),
        "nn1_cos": summary(&nn1),
        "nn10_cos": summary(&nn10),
        "lid_at_10": summary(&lid),
    })
}

fn read_vectors(path: &str) -> Vec<Vec<f32>> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON array of floats"))
        .collect()
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

fn write_benchmarks(out: &Path, path: &Path) {
    let mut runs: Vec<Value> = std::fs::read_dir(out)
        .expect("results folder")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("scale-"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect();
    runs.sort_by_key(|r| r["vectors"].as_u64());
    let mut s = String::new();
    s.push_str(INTRO);
    s.push_str("\n| vectors | build s (CPU s) | peak RSS during build MB | RSS after build MB | index MB | ef | recall@10 | QPS (1 thread) | queries per CPU s | dump MB | load s | peak RSS during load MB | machine load (1/5/15 min) |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for r in &runs {
        for (k, row) in r["ef_rows"].as_array().into_iter().flatten().enumerate() {
            let first = k == 0;
            let cell = |text: String| if first { text } else { String::new() };
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {}{} | {:.4} | {:.0} | {:.0} | {} | {} | {} | {} |\n",
                cell(format!("{}", r["vectors"])),
                cell(format!(
                    "{:.0} ({:.0})",
                    f(r, "build_s"),
                    f(r, "build_cpu_s")
                )),
                cell(format!("{:.0}", f(r, "peak_rss_after_build_mb"))),
                cell(format!("{:.0}", f(r, "rss_after_build_mb"))),
                cell(
                    r["index_mb"]
                        .as_f64()
                        .map_or("not measured".into(), |mb| format!("{mb:.0}"))
                ),
                row["ef"],
                if row["ef"] == r["ef_search_default"] {
                    " (default)"
                } else {
                    ""
                },
                f(row, "recall_at_10"),
                f(row, "qps"),
                f(row, "qps_per_cpu_s"),
                cell(format!("{:.0}", f(r, "dump_bytes") / 1e6)),
                cell(format!("{:.2}", f(r, "load_s"))),
                cell(
                    r["peak_rss_load_mb"]
                        .as_f64()
                        .map_or("not measured".into(), |mb| format!("{mb:.0}"))
                ),
                cell(format!(
                    "{} → {}",
                    r["loadavg_start"].as_str().unwrap_or(""),
                    r["loadavg_end"].as_str().unwrap_or("")
                )),
            ));
        }
    }
    s.push_str("\nPer run: parameters, points left on the exact side list, the exact scan's ms/query (1 thread), load CPU time and RSS after load, queries answered identically after dump and load, date.\n\n");
    for r in &runs {
        s.push_str(&format!(
            "- {} vectors: M {}, ef_construction {}, {} unreachable, exact scan {:.1} ms/query, load {:.2} CPU s, RSS after load {:.0} MB, {}/{} identical after load, {}\n",
            r["vectors"], r["m"], r["ef_construction"], r["unreachable"],
            f(r, "exact_scan_ms_per_query"), f(r, "load_cpu_s"), f(r, "rss_after_load_mb"),
            r["identical_after_load"], r["queries"],
            r["date"].as_str().unwrap_or("")
        ));
    }
    if let Some(small) = std::fs::read(out.join("small.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    {
        // The command that measured these rows: their own sizes.
        let sizes = small["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|row| row["vectors"].to_string())
            .collect::<Vec<_>>()
            .join(",");
        s.push_str(&format!(
            "\nSmall corpora, exact scan against HNSW (`cargo run --release --example index_bench -- {sizes}`, {}, machine load {}; 200 queries):\n\n| vectors | exact search ms/query | hnsw build s | hnsw search ms/query | recall@10 | exact/hnsw |\n|---:|---:|---:|---:|---:|---:|\n",
            small["date"].as_str().unwrap_or(""),
            small["loadavg"].as_str().unwrap_or("")
        ));
        for row in small["rows"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "| {} | {:.3} | {:.1} | {:.3} | {:.3} | {:.1}x |\n",
                row["vectors"],
                f(row, "exact_ms"),
                f(row, "build_s"),
                f(row, "hnsw_ms"),
                f(row, "recall_at_10"),
                f(row, "exact_ms") / f(row, "hnsw_ms")
            ));
        }
    }
    s.push_str(
        "\nThe default `--exact-threshold` is 5,000 passages: below it the scan is exact, costs no \
         graph build, and stays under about 0.8 ms a query, under a tenth of a query's embedding; \
         above it the graph answers several times faster.\n",
    );
    let text = std::fs::read_to_string(path).expect("BENCHMARKS.md");
    let (start, end) = ("<!-- index:start -->", "<!-- index:end -->");
    let (a, b) = (
        text.find(start).expect("start marker") + start.len(),
        text.find(end).expect("end marker"),
    );
    let new = format!("{}\n{}{}", &text[..a], s, &text[b..]);
    std::fs::write(path, new).expect("write BENCHMARKS.md");
    println!("rewrote the index section of {}", path.display());
}

fn main() {
    // Build progress (every 100,000 points) and the graph's own timings.
    tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("RUST_LOG")
                .unwrap_or_else(|_| format!("{}::index=debug", env!("CARGO_PKG_NAME"))),
        )
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let out = PathBuf::from(value("--out").unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/index-bench")
            .to_string_lossy()
            .into_owned()
    }));
    std::fs::create_dir_all(&out).expect("results folder");
    let numbers =
        |s: &str| -> Vec<u64> { s.split(',').filter_map(|n| n.trim().parse().ok()).collect() };

    if args.iter().any(|a| a == "--write-benchmarks") {
        let path = value("--benchmarks").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md"),
            PathBuf::from,
        );
        write_benchmarks(&out, &path);
    } else if let Some(which) = value("--stats") {
        let docs = if which == "synthetic" {
            // As many documents and passages as the real sample has, drawn
            // from a 1M-passage corpus's documents.
            let mixture = Mixture::new();
            (0..8u64)
                .map(|d| {
                    let doc = d * 7919;
                    mixture
                        .passages(doc * PER_DOC..(doc + 1) * PER_DOC)
                        .into_iter()
                        .map(|(_, v)| v)
                        .collect()
                })
                .collect()
        } else {
            which.split(',').map(read_vectors).collect()
        };
        println!("{}", serde_json::to_string_pretty(&stats(docs)).unwrap());
    } else if let Some(n) = value("--graphs") {
        let n: u64 = n.parse().expect("--graphs N");
        let queries = value("--queries").map_or(1000, |q| q.parse().expect("--queries"));
        let result = graphs::run(n, queries);
        std::fs::write(
            out.join(format!("graphs-{n}.json")),
            serde_json::to_vec_pretty(&result).unwrap(),
        )
        .expect("save");
        println!("{}", graphs::table(&result));
    } else if let Some(n) = value("--filtered") {
        let n: u64 = n.parse().expect("--filtered N");
        let queries = value("--queries").map_or(200, |q| q.parse().expect("--queries"));
        let result = filtered::run(n, queries);
        std::fs::write(
            out.join(format!("filtered-{n}.json")),
            serde_json::to_vec_pretty(&result).unwrap(),
        )
        .expect("save");
        println!("{}", filtered::table(&result));
    } else if let Some(n) = value("--scale") {
        let defaults = HnswParams::default();
        let params = HnswParams {
            m: value("--m").map_or(defaults.m, |v| v.parse().expect("--m")),
            ef_construction: value("--ef-construction").map_or(defaults.ef_construction, |v| {
                v.parse().expect("--ef-construction")
            }),
            ef_search: defaults.ef_search,
        };
        params.validate().expect("parameters");
        // The default ef for each size is added to these.
        let efs: Vec<usize> = value("--ef")
            .map(|s| numbers(&s).into_iter().map(|e| e as usize).collect())
            .unwrap_or_else(|| vec![32, 64, 128, 256]);
        for n in numbers(&n) {
            let result = scale(&ScaleArgs {
                n,
                params,
                efs: efs.clone(),
                queries: value("--queries").map_or(1000, |q| q.parse().expect("--queries")),
                out: out.clone(),
            });
            let path = out.join(format!("scale-{n}.json"));
            std::fs::write(&path, serde_json::to_vec_pretty(&result).unwrap()).expect("save");
            println!("{}", serde_json::to_string_pretty(&result).unwrap());
        }
    } else {
        let sizes = args
            .first()
            .map(|s| numbers(s))
            .unwrap_or_else(|| vec![1_000, 5_000, 20_000, 50_000]);
        let result = small(&sizes);
        std::fs::write(
            out.join("small.json"),
            serde_json::to_vec_pretty(&result).unwrap(),
        )
        .expect("save");
    }
}
