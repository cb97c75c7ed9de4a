//! Vector search behind the [`VectorStore`] trait: an HNSW graph for large
//! corpora and an exact scan for small ones, where scanning every vector is
//! both exact and cheaper than walking a graph.
//!
//! The trait is also the seam for scaling out: a distributed engine (a
//! Qdrant cluster, see docs/scaling.md) would be another implementation.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// A search hit: passage id and cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredId {
    pub id: u64,
    pub score: f32,
}

/// Nearest-neighbour search over L2-normalised vectors, by cosine similarity.
pub trait VectorStore: Send + Sync {
    /// "hnsw" or "exact".
    fn kind(&self) -> &'static str;
    /// Live vectors.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Adds a vector; the id must not be live already.
    fn insert(&mut self, id: u64, vector: Vec<f32>) -> Result<()>;
    /// Removes a vector if present.
    fn remove(&mut self, id: u64);
    /// The `k` best vectors that pass `filter`, best first.
    fn search(&self, query: &[f32], k: usize, filter: &dyn Fn(u64) -> bool) -> Vec<ScoredId>;
    /// Writes the index's own structure into `dir` (a fresh folder) so a
    /// restart can skip building it; `None` when it has nothing worth saving.
    fn dump(&self, _dir: &Path) -> Result<Option<crate::manifest::HnswDump>> {
        Ok(None)
    }
}

/// Which index to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IndexKind {
    /// Exact below `exact_threshold` vectors, HNSW above.
    Auto,
    Exact,
    Hnsw,
}

/// HNSW parameters, validated before a graph is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node (M): 4 to 256.
    pub m: usize,
    /// Candidate list size while building: at least M.
    pub ef_construction: usize,
    /// Candidate list size while searching: at least 1; raised to k when smaller.
    pub ef_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 100,
            ef_search: 64,
        }
    }
}

impl HnswParams {
    pub fn validate(&self) -> Result<()> {
        let mut bad = Vec::new();
        if !(4..=256).contains(&self.m) {
            bad.push(crate::error::FieldViolation::new(
                "hnsw_m",
                "must be between 4 and 256",
            ));
        }
        if self.ef_construction < self.m || self.ef_construction > 4096 {
            bad.push(crate::error::FieldViolation::new(
                "hnsw_ef_construction",
                "must be between M and 4096",
            ));
        }
        if self.ef_search == 0 || self.ef_search > 4096 {
            bad.push(crate::error::FieldViolation::new(
                "hnsw_ef_search",
                "must be between 1 and 4096",
            ));
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(bad))
        }
    }
}

/// Index settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexConfig {
    pub kind: IndexKind,
    pub hnsw: HnswParams,
    /// With `Auto`, corpora smaller than this are searched exactly.
    pub exact_threshold: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            kind: IndexKind::Auto,
            hnsw: HnswParams::default(),
            exact_threshold: 10_000,
        }
    }
}

/// Builds the configured index over `items`, or loads the graph from a
/// dump of exactly these items when one is given and readable.
pub fn build(
    config: &IndexConfig,
    dimension: usize,
    items: Vec<(u64, Vec<f32>)>,
    dump: Option<(&Path, &crate::manifest::HnswDump)>,
) -> Result<Box<dyn VectorStore>> {
    config.hnsw.validate()?;
    let use_hnsw = match config.kind {
        IndexKind::Exact => false,
        IndexKind::Hnsw => true,
        IndexKind::Auto => items.len() >= config.exact_threshold,
    };
    if use_hnsw {
        let mut items = items;
        if let Some((dir, dump)) = dump {
            match HnswIndex::load_taking(config.hnsw, dimension, dir, dump, &mut items) {
                Ok(index) => return Ok(Box::new(index)),
                Err(err) => tracing::warn!(%err, "hnsw dump unusable; rebuilding the graph"),
            }
        }
        Ok(Box::new(HnswIndex::build(config.hnsw, dimension, items)?))
    } else {
        let mut index = ExactIndex::new(dimension);
        for (id, v) in items {
            index.insert(id, v)?;
        }
        Ok(Box::new(index))
    }
}

/// Dot product in 16 independent lanes, so the compiler vectorises it.
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 16];
    let (chunks_a, chunks_b) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in chunks_a.zip(chunks_b) {
        for j in 0..16 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut width = 8;
    while width > 0 {
        for j in 0..width {
            acc[j] += acc[j + width];
        }
        width /= 2;
    }
    acc[0] + tail
}

/// Dot product with AVX2 and FMA: four 8-lane accumulators.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::{
        _mm256_add_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps, _mm256_storeu_ps,
    };
    let n = a.len().min(b.len());
    let blocks = n / 32;
    let mut acc = [_mm256_setzero_ps(); 4];
    for block in 0..blocks {
        for (k, lane) in acc.iter_mut().enumerate() {
            let at = block * 32 + k * 8;
            // SAFETY: at + 8 <= blocks * 32 <= n, the length of both slices.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_ps(a.as_ptr().add(at)),
                    _mm256_loadu_ps(b.as_ptr().add(at)),
                )
            };
            *lane = _mm256_fmadd_ps(x, y, *lane);
        }
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds exactly 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    let tail: f32 = a[blocks * 32..n]
        .iter()
        .zip(&b[blocks * 32..n])
        .map(|(x, y)| x * y)
        .sum();
    lanes.iter().sum::<f32>() + tail
}

/// Asks the CPU to start loading `v` into its caches.
#[inline]
fn prefetch(v: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in v.chunks(16) {
        // SAFETY: a prefetch is only a hint and never faults; the address
        // is inside `v` anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast::<i8>(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Dot product (cosine for unit vectors); with AVX2 and FMA when the CPU
/// has them (several times faster than the SSE2 baseline the crate is
/// compiled for; results differ from it in the last bits).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { dot_avx2(a, b) };
    }
    dot_lanes(a, b)
}

/// Keeps the best `k` hits, best first.
fn top_k(mut hits: Vec<ScoredId>, k: usize) -> Vec<ScoredId> {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    hits.truncate(k);
    hits
}

fn check_dimension(dimension: usize, vector: &[f32]) -> Result<()> {
    if vector.len() != dimension {
        return Err(Error::Index(format!(
            "vector has {} dimensions, index has {dimension}",
            vector.len()
        )));
    }
    Ok(())
}

/// Scans every vector: exact, and fastest for small corpora.
pub struct ExactIndex {
    dimension: usize,
    ids: Vec<u64>,
    /// Row-major, `dimension` floats per id.
    data: Vec<f32>,
    position: HashMap<u64, usize>,
}

impl ExactIndex {
    pub fn new(dimension: usize) -> Self {
        Self {
            dimension,
            ids: Vec::new(),
            data: Vec::new(),
            position: HashMap::new(),
        }
    }
}

impl VectorStore for ExactIndex {
    fn kind(&self) -> &'static str {
        "exact"
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn insert(&mut self, id: u64, vector: Vec<f32>) -> Result<()> {
        check_dimension(self.dimension, &vector)?;
        if self.position.contains_key(&id) {
            return Err(Error::Index(format!("passage {id} is already indexed")));
        }
        self.position.insert(id, self.ids.len());
        self.ids.push(id);
        self.data.extend_from_slice(&vector);
        Ok(())
    }

    fn remove(&mut self, id: u64) {
        let Some(pos) = self.position.remove(&id) else {
            return;
        };
        let last = self.ids.len() - 1;
        self.ids.swap_remove(pos);
        let d = self.dimension;
        if pos != last {
            self.data.copy_within(last * d..(last + 1) * d, pos * d);
            self.position.insert(self.ids[pos], pos);
        }
        self.data.truncate(last * d);
    }

    fn search(&self, query: &[f32], k: usize, filter: &dyn Fn(u64) -> bool) -> Vec<ScoredId> {
        let hits = self
            .ids
            .iter()
            .enumerate()
            .filter(|(_, id)| filter(**id))
            .map(|(i, &id)| ScoredId {
                id,
                score: dot(
                    query,
                    &self.data[i * self.dimension..(i + 1) * self.dimension],
                ),
            })
            .collect();
        top_k(hits, k)
    }
}

/// A hierarchical navigable small-world graph (Malkov and Yashunin, 2016,
/// as in hnswlib) held compactly: the vectors once, as moved in by the
/// caller, and the links as flat `u32` arrays, about 140 bytes a point at
/// M = 16 beside its 1,536-byte vector. hnsw_rs, used before, kept each link
/// as its own reference-counted allocation (about 3 KB a point), which put a
/// million passages far above the memory budget (docs/scaling.md).
///
/// Removals are tombstones until a quarter of the graph is dead, then the
/// graph is rebuilt. Points a search for their own vector does not find
/// (every HNSW can strand a few) are kept on an exact side list, so every
/// live vector stays findable.
pub struct HnswIndex {
    params: HnswParams,
    dimension: usize,
    /// Each point's vector, L2-normalised, by internal number; the only copy.
    vectors: Vec<Vec<f32>>,
    /// Passage id of each internal number.
    ids: Vec<u64>,
    position: HashMap<u64, u32>,
    levels: Vec<u8>,
    /// Layer-0 links, `2M + 1` slots a point: the count, then the links.
    layer0: Vec<AtomicU32>,
    /// Links above layer 0, `M + 1` slots a layer; empty for layer-0-only points.
    upper: Vec<Box<[AtomicU32]>>,
    /// Entry point and its level (the graph's top layer).
    entry: Option<(u32, usize)>,
    /// Writers to one point's links take its stripe; readers never wait.
    locks: Box<[Mutex<()>]>,
    visited: Mutex<Vec<Visited>>,
    /// Tombstoned passage ids, and the same by internal number.
    removed: HashSet<u64>,
    dead: Vec<bool>,
    /// Internal numbers searched exactly beside the graph.
    unreachable: Vec<u32>,
}

const LOCK_STRIPES: usize = 4096;
const MAX_LEVEL: usize = 15;
const DUMP_MAGIC: &[u8; 8] = b"WNDHNSW1";
/// The graph file is `<basename>.hnsw.graph`, the name hnsw_rs used; its own
/// dumps are told apart by the magic and refused (the graph is then rebuilt).
const DUMP_SUFFIX: &str = "hnsw.graph";

/// A point and its distance (1 − cosine) to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cand {
    d: f32,
    i: u32,
}

impl Eq for Cand {}

impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cand {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.d.total_cmp(&other.d).then(self.i.cmp(&other.i))
    }
}

/// Visited marks for one search: a point is visited when its mark equals
/// the current epoch, so clearing is one increment.
struct Visited {
    marks: Vec<u32>,
    epoch: u32,
}

impl Visited {
    fn new(points: usize) -> Self {
        Self {
            marks: vec![0; points],
            epoch: 0,
        }
    }

    fn reset(&mut self, points: usize) {
        if self.marks.len() < points {
            self.marks.resize(points, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `i`; true when it was not marked yet.
    fn insert(&mut self, i: u32) -> bool {
        let mark = &mut self.marks[i as usize];
        if *mark == self.epoch {
            false
        } else {
            *mark = self.epoch;
            true
        }
    }
}

fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let norm = dot(&v, &v).sqrt();
    if norm > 0.0 && (norm - 1.0).abs() > 1e-6 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// The level of the `n`th point: geometric with ratio 1/M, as in the paper.
fn draw_level(n: usize, m: usize) -> u8 {
    let mut x = (n as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let unit = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let level = (-unit.ln() / (m as f64).ln()).floor();
    level.min(MAX_LEVEL as f64) as u8
}

/// A fast, order-sensitive hash of the vectors, so a dump is used only with
/// the vectors it was built for.
fn checksum<'a>(vectors: impl Iterator<Item = &'a [f32]>) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01B3;
    let mut lanes = [0xCBF2_9CE4_8422_2325u64; 4];
    for v in vectors {
        for chunk in v.chunks(4) {
            for (lane, x) in lanes.iter_mut().zip(chunk) {
                *lane = (*lane ^ u64::from(x.to_bits())).wrapping_mul(PRIME);
            }
        }
        lanes[0] = (lanes[0] ^ v.len() as u64).wrapping_mul(PRIME);
    }
    lanes
        .iter()
        .fold(0u64, |h, l| (h.rotate_left(17) ^ l).wrapping_mul(PRIME))
}

fn threads_for(jobs: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(jobs.div_ceil(256)).max(1)
}

impl HnswIndex {
    fn empty(params: HnswParams, dimension: usize, capacity: usize) -> Self {
        let m0 = 2 * params.m;
        Self {
            params,
            dimension,
            vectors: Vec::with_capacity(capacity),
            ids: Vec::with_capacity(capacity),
            position: HashMap::with_capacity(capacity),
            levels: Vec::with_capacity(capacity),
            layer0: Vec::with_capacity(capacity * (m0 + 1)),
            upper: Vec::with_capacity(capacity),
            entry: None,
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            visited: Mutex::new(Vec::new()),
            removed: HashSet::new(),
            dead: Vec::with_capacity(capacity),
            unreachable: Vec::new(),
        }
    }

    /// Builds the graph, inserting on every core, then checks every point
    /// is found by its own vector and puts the ones that are not on the
    /// exact side list. The vectors are moved in, not copied.
    pub fn build(
        params: HnswParams,
        dimension: usize,
        items: Vec<(u64, Vec<f32>)>,
    ) -> Result<Self> {
        params.validate()?;
        for (_, v) in &items {
            check_dimension(dimension, v)?;
        }
        let mut index = Self::empty(params, dimension, items.len());
        for (id, v) in items {
            index.push_point(id, normalize(v))?;
        }
        let started = std::time::Instant::now();
        index.link_from(0);
        let linked = started.elapsed();
        let unreachable = index.repair_unreachable();
        tracing::debug!(
            points = index.ids.len(),
            unreachable,
            link_ms = linked.as_millis() as u64,
            check_ms = (started.elapsed() - linked).as_millis() as u64,
            "hnsw graph built"
        );
        Ok(index)
    }

    /// Appends an unlinked point.
    fn push_point(&mut self, id: u64, vector: Vec<f32>) -> Result<()> {
        if self.position.contains_key(&id) || self.removed.contains(&id) {
            // A removed id still has a node in the graph: ids are never reused.
            return Err(Error::Index(format!("passage id {id} was already used")));
        }
        let n = self.ids.len();
        if n >= u32::MAX as usize {
            return Err(Error::Index("hnsw graph is full".into()));
        }
        let level = draw_level(n, self.params.m);
        self.position.insert(id, n as u32);
        self.ids.push(id);
        self.vectors.push(vector);
        self.levels.push(level);
        self.dead.push(false);
        let m0 = 2 * self.params.m;
        self.layer0.extend((0..=m0).map(|_| AtomicU32::new(0)));
        self.upper.push(
            (0..usize::from(level) * (self.params.m + 1))
                .map(|_| AtomicU32::new(0))
                .collect(),
        );
        Ok(())
    }

    /// Links the points numbered `start..` into the graph: a point above
    /// the current top first and alone (it becomes the entry point), the
    /// rest on every core (the entry point then no longer changes).
    fn link_from(&mut self, start: usize) {
        let end = self.ids.len();
        if start >= end {
            return;
        }
        let highest = (start..end)
            .max_by_key(|&i| (self.levels[i], std::cmp::Reverse(i)))
            .expect("not empty");
        let level = usize::from(self.levels[highest]);
        // The new top point is linked first and alone, and becomes the entry.
        let handled = match self.entry {
            None => {
                self.entry = Some((highest as u32, level));
                Some(highest)
            }
            Some((entry, top)) if level > top => {
                let mut visited = Visited::new(end);
                self.link_point(highest as u32, entry, top, &mut visited);
                self.entry = Some((highest as u32, level));
                Some(highest)
            }
            Some(_) => None,
        };
        let (entry, top) = self.entry.expect("set above");
        let rest: Vec<u32> = (start..end)
            .filter(|&i| Some(i) != handled)
            .map(|i| i as u32)
            .collect();
        let threads = threads_for(rest.len());
        if threads == 1 {
            let mut visited = Visited::new(end);
            for &i in &rest {
                self.link_point(i, entry, top, &mut visited);
            }
            return;
        }
        let next = AtomicUsize::new(0);
        let this = &*self;
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    let mut visited = Visited::new(end);
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = rest.get(k) else { break };
                        this.link_point(i, entry, top, &mut visited);
                        if (k + 1).is_multiple_of(100_000) {
                            tracing::debug!(linked = k + 1, of = rest.len(), "hnsw build");
                        }
                    }
                });
            }
        });
    }

    fn lock(&self, i: u32) -> std::sync::MutexGuard<'_, ()> {
        self.locks[i as usize % LOCK_STRIPES]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The count slot and link slots of point `i` at `layer`.
    fn slots(&self, i: u32, layer: usize) -> &[AtomicU32] {
        if layer == 0 {
            let width = 2 * self.params.m + 1;
            &self.layer0[i as usize * width..(i as usize + 1) * width]
        } else {
            let width = self.params.m + 1;
            &self.upper[i as usize][(layer - 1) * width..layer * width]
        }
    }

    /// Reads the links of `i` at `layer` into `out`. Lock-free: a list being
    /// rewritten may be read half old, half new, but every entry is a point.
    fn read_links(&self, i: u32, layer: usize, out: &mut Vec<u32>) {
        let slots = self.slots(i, layer);
        let count = (slots[0].load(Ordering::Acquire) as usize).min(slots.len() - 1);
        out.clear();
        out.extend(slots[1..=count].iter().map(|s| s.load(Ordering::Relaxed)));
    }

    fn write_links(&self, i: u32, layer: usize, links: &[u32]) {
        let slots = self.slots(i, layer);
        for (slot, &n) in slots[1..].iter().zip(links) {
            slot.store(n, Ordering::Relaxed);
        }
        slots[0].store(links.len() as u32, Ordering::Release);
    }

    fn distance(&self, query: &[f32], i: u32) -> f32 {
        1.0 - dot(query, &self.vectors[i as usize])
    }

    /// Greedy descent through one layer from `from`.
    fn greedy(&self, query: &[f32], mut from: Cand, layer: usize, links: &mut Vec<u32>) -> Cand {
        loop {
            let mut moved = false;
            self.read_links(from.i, layer, links);
            for &n in links.iter() {
                let d = self.distance(query, n);
                if d < from.d {
                    from = Cand { d, i: n };
                    moved = true;
                }
            }
            if !moved {
                return from;
            }
        }
    }

    /// Best-first search of one layer: the `ef` nearest points that pass
    /// `pass` (all when `None`), nearest first. Points that fail `pass` are
    /// still walked through.
    fn search_layer(
        &self,
        query: &[f32],
        entries: &[Cand],
        ef: usize,
        layer: usize,
        visited: &mut Visited,
        pass: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<Cand> {
        let passes = |i: u32| pass.is_none_or(|p| p(i));
        let mut candidates: BinaryHeap<std::cmp::Reverse<Cand>> = BinaryHeap::new();
        let mut results: BinaryHeap<Cand> = BinaryHeap::with_capacity(ef + 1);
        for &e in entries {
            if visited.insert(e.i) {
                candidates.push(std::cmp::Reverse(e));
                if passes(e.i) {
                    results.push(e);
                    if results.len() > ef {
                        results.pop();
                    }
                }
            }
        }
        let mut links = Vec::with_capacity(2 * self.params.m);
        while let Some(std::cmp::Reverse(c)) = candidates.pop() {
            if results.len() >= ef && results.peek().is_some_and(|w| c.d > w.d) {
                break;
            }
            self.read_links(c.i, layer, &mut links);
            // Fetch every new neighbour's vector at once: the distances are
            // bound by memory latency, one 1.5 KB vector after another.
            links.retain(|&n| visited.insert(n));
            for &n in &links {
                prefetch(&self.vectors[n as usize]);
            }
            for &n in &links {
                let d = self.distance(query, n);
                if results.len() < ef || results.peek().is_some_and(|w| d < w.d) {
                    let cand = Cand { d, i: n };
                    candidates.push(std::cmp::Reverse(cand));
                    if passes(n) {
                        results.push(cand);
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        }
        results.into_sorted_vec()
    }

    /// hnswlib's neighbour heuristic: from candidates nearest first, keep one
    /// when it is nearer to the base point than to every one kept so far.
    fn select(&self, candidates: &[Cand], m: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(m);
        for c in candidates {
            if kept.len() >= m {
                break;
            }
            let v = &self.vectors[c.i as usize];
            if kept.iter().all(|&r| self.distance(v, r) >= c.d) {
                kept.push(c.i);
            }
        }
        kept
    }

    /// Links point `i` into every layer up to its level, from `entry` at `top`.
    fn link_point(&self, i: u32, entry: u32, top: usize, visited: &mut Visited) {
        let query = &self.vectors[i as usize];
        let level = usize::from(self.levels[i as usize]);
        let mut links = Vec::with_capacity(2 * self.params.m + 1);
        let mut from = Cand {
            d: self.distance(query, entry),
            i: entry,
        };
        for layer in (level + 1..=top).rev() {
            from = self.greedy(query, from, layer, &mut links);
        }
        let mut entries = vec![from];
        for layer in (0..=level.min(top)).rev() {
            visited.reset(self.ids.len());
            let mut found = self.search_layer(
                query,
                &entries,
                self.params.ef_construction,
                layer,
                visited,
                None,
            );
            found.retain(|c| c.i != i);
            let chosen = self.select(&found, self.params.m);
            {
                let _guard = self.lock(i);
                self.write_links(i, layer, &chosen);
            }
            let capacity = if layer == 0 {
                2 * self.params.m
            } else {
                self.params.m
            };
            for &n in &chosen {
                let _guard = self.lock(n);
                self.read_links(n, layer, &mut links);
                if links.contains(&i) {
                    continue;
                }
                if links.len() < capacity {
                    links.push(i);
                    self.write_links(n, layer, &links);
                } else {
                    self.add_to_full_list(n, i, layer, &links);
                }
            }
            if !found.is_empty() {
                entries = found;
            }
        }
    }

    /// Adds `i` to `n`'s full list `links` the way the neighbour heuristic
    /// would, in about 2 × capacity distance computations instead of
    /// capacity²/2 for re-running it: `i` stays out when a nearer link is
    /// nearer to `i` than `n` is; otherwise it goes in and pushes out the
    /// farther links it is nearer to than `n` is, then the farthest links if
    /// the list is still over capacity.
    fn add_to_full_list(&self, n: u32, i: u32, layer: usize, links: &[u32]) {
        let base = &self.vectors[n as usize];
        let new = &self.vectors[i as usize];
        let d_new = self.distance(base, i);
        let mut kept: Vec<Cand> = Vec::with_capacity(links.len() + 1);
        for &c in links {
            prefetch(&self.vectors[c as usize]);
        }
        for &c in links {
            let d = self.distance(base, c);
            let to_new = self.distance(new, c);
            if d < d_new && to_new < d_new {
                return;
            }
            if !(d > d_new && to_new < d) {
                kept.push(Cand { d, i: c });
            }
        }
        kept.push(Cand { d: d_new, i });
        let capacity = self.slots(n, layer).len() - 1;
        if kept.len() > capacity {
            kept.sort_unstable();
            kept.truncate(capacity);
        }
        let ids: Vec<u32> = kept.iter().map(|c| c.i).collect();
        self.write_links(n, layer, &ids);
    }

    fn take_visited(&self) -> Visited {
        let pooled = self.visited.lock().unwrap_or_else(|e| e.into_inner()).pop();
        pooled.unwrap_or_else(|| Visited::new(self.ids.len()))
    }

    fn return_visited(&self, visited: Visited) {
        let mut pool = self.visited.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 8 {
            pool.push(visited);
        }
    }

    /// The `ef` nearest points to a normalised query that pass `pass`.
    fn search_graph(
        &self,
        query: &[f32],
        ef: usize,
        pass: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<Cand> {
        let Some((entry, top)) = self.entry else {
            return Vec::new();
        };
        let mut links = Vec::with_capacity(2 * self.params.m);
        let mut from = Cand {
            d: self.distance(query, entry),
            i: entry,
        };
        for layer in (1..=top).rev() {
            from = self.greedy(query, from, layer, &mut links);
        }
        let mut visited = self.take_visited();
        visited.reset(self.ids.len());
        let found = self.search_layer(query, &[from], ef, 0, &mut visited, pass);
        self.return_visited(visited);
        found
    }

    /// True when a top-1 search for point `i`'s vector (as a query would
    /// run it) returns `i`, or an identical vector. Tried with a candidate
    /// list of 4 first, which finds nearly every point at a small part of
    /// the cost (a point that is found with 4 is found with more).
    fn finds_itself(&self, i: u32) -> bool {
        let found = |ef: usize| {
            self.search_graph(&self.vectors[i as usize], ef, None)
                .first()
                .is_some_and(|c| c.i == i || c.d <= 1e-6)
        };
        found(self.params.ef_search.min(4)) || found(self.params.ef_search)
    }

    /// Puts the points not found by their own vector on the exact list,
    /// checking on every core.
    fn repair_unreachable(&mut self) -> usize {
        let mut lost = self.lost_points();
        if !lost.is_empty() {
            // Most lost points have no way in: every neighbour pruned them
            // from its list. Give them one where a near point has room (the
            // neighbour heuristic leaves most layer-0 lists short of 2M), then
            // look again at every point, since new links change search paths.
            for &i in &lost {
                self.link_back(i);
            }
            lost = self.lost_points();
        }
        if !lost.is_empty() {
            tracing::warn!(
                points = lost.len(),
                "hnsw points not found by their own vector; searched exactly"
            );
        }
        let count = lost.len();
        self.unreachable = lost;
        count
    }

    /// Live points a search for their own vector does not find, in order;
    /// checked on every core.
    fn lost_points(&self) -> Vec<u32> {
        let n = self.ids.len();
        let next = AtomicUsize::new(0);
        let mut lost: Vec<u32> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads_for(n))
                .map(|_| {
                    scope.spawn(|| {
                        let mut lost = Vec::new();
                        loop {
                            let start = next.fetch_add(1024, Ordering::Relaxed);
                            if start >= n {
                                return lost;
                            }
                            for i in start..(start + 1024).min(n) {
                                if !self.dead[i] && !self.finds_itself(i as u32) {
                                    lost.push(i as u32);
                                }
                            }
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("reachability check panicked"))
                .collect()
        });
        lost.sort_unstable();
        lost
    }

    /// Adds `i` to the layer-0 lists of its nearest points that have room.
    fn link_back(&self, i: u32) {
        let query = &self.vectors[i as usize];
        let mut near = self.search_graph(query, self.params.ef_construction, None);
        near.retain(|c| c.i != i);
        let mut own = Vec::new();
        self.read_links(i, 0, &mut own);
        let capacity = 2 * self.params.m;
        let mut links = Vec::with_capacity(capacity);
        for n in own
            .into_iter()
            .chain(near.iter().take(self.params.m).map(|c| c.i))
        {
            let _guard = self.lock(n);
            self.read_links(n, 0, &mut links);
            if links.len() < capacity && !links.contains(&i) {
                links.push(i);
                self.write_links(n, 0, &links);
            }
        }
    }

    /// Loads a graph dumped by [`VectorStore::dump`] for exactly `items`
    /// (copying their vectors; see [`HnswIndex::load_taking`]).
    pub fn load(
        params: HnswParams,
        dimension: usize,
        dir: &Path,
        dump: &crate::manifest::HnswDump,
        items: &[(u64, Vec<f32>)],
    ) -> Result<Self> {
        Self::load_taking(params, dimension, dir, dump, &mut items.to_vec())
    }

    /// Loads a graph dumped by [`VectorStore::dump`] and moves the vectors
    /// out of `items` into it. The dump holds the links only; it is used
    /// when it names exactly the ids in `items`, was built with the same M
    /// and dimension, and its checksum matches the vectors. On success
    /// `items` is left empty; on failure it keeps its vectors (normalised).
    pub fn load_taking(
        params: HnswParams,
        dimension: usize,
        dir: &Path,
        dump: &crate::manifest::HnswDump,
        items: &mut Vec<(u64, Vec<f32>)>,
    ) -> Result<Self> {
        params.validate()?;
        let path = dir.join(format!("{}.{DUMP_SUFFIX}", dump.basename));
        let bad = |what: &str| Error::Index(format!("{}: {what}", path.display()));
        let bytes = std::fs::read(&path).map_err(|e| bad(&e.to_string()))?;
        let mut r = Reader {
            bytes: &bytes,
            at: 0,
        };
        if r.take(8).ok_or_else(|| bad("truncated"))? != DUMP_MAGIC {
            return Err(bad("not a wenda hnsw dump"));
        }
        let header: Vec<u64> = (0..6)
            .map(|_| r.u64())
            .collect::<Option<_>>()
            .ok_or_else(|| bad("truncated"))?;
        let [dim, m, n, entry, top, sum] = header[..] else {
            unreachable!()
        };
        if dim as usize != dimension || m as usize != params.m {
            return Err(bad("dump does not match the dimension or M"));
        }
        let n = n as usize;
        if n != items.len() || n == 0 || entry as usize >= n || top as usize > MAX_LEVEL {
            return Err(bad("dump does not match the stored vectors"));
        }
        let mut index = Self::empty(params, dimension, n);
        index.entry = Some((entry as u32, top as usize));
        for _ in 0..n {
            let id = r.u64().ok_or_else(|| bad("truncated"))?;
            if index.position.insert(id, index.ids.len() as u32).is_some() {
                return Err(bad("duplicate id"));
            }
            index.ids.push(id);
        }
        index.levels = r.take(n).ok_or_else(|| bad("truncated"))?.to_vec();
        if index.levels.iter().any(|&l| usize::from(l) > top as usize)
            || usize::from(index.levels[entry as usize]) != top as usize
        {
            return Err(bad("bad levels"));
        }
        let m0 = 2 * params.m;
        let links = |r: &mut Reader, slots: usize, width: usize| -> Result<Vec<AtomicU32>> {
            let raw = r.take(slots * 4).ok_or_else(|| bad("truncated"))?;
            let words: Vec<u32> = raw
                .chunks_exact(4)
                .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")))
                .collect();
            let valid = words.chunks(width).all(|list| {
                (list[0] as usize) < width
                    && list[1..=list[0] as usize].iter().all(|&i| (i as usize) < n)
            });
            if !valid {
                return Err(bad("bad links"));
            }
            Ok(words.into_iter().map(AtomicU32::new).collect())
        };
        index.layer0 = links(&mut r, n * (m0 + 1), m0 + 1)?;
        for &level in &index.levels {
            let slots = usize::from(level) * (params.m + 1);
            index.upper.push(if slots == 0 {
                Box::default()
            } else {
                links(&mut r, slots, params.m + 1)?.into_boxed_slice()
            });
        }
        let unreachable_count = r.u64().ok_or_else(|| bad("truncated"))? as usize;
        for _ in 0..unreachable_count {
            let i = r.u64().ok_or_else(|| bad("truncated"))?;
            if i as usize >= n {
                return Err(bad("bad unreachable point"));
            }
            index.unreachable.push(i as u32);
        }
        if r.at != bytes.len() {
            return Err(bad("trailing bytes"));
        }
        // Match the items to the dump's order, and check their vectors.
        let mut order = vec![usize::MAX; n];
        for (k, (id, v)) in items.iter_mut().enumerate() {
            check_dimension(dimension, v)?;
            let i = *index
                .position
                .get(id)
                .ok_or_else(|| bad(&format!("passage {id} is not in the dump")))?;
            order[i as usize] = k;
            *v = normalize(std::mem::take(v));
        }
        if order.contains(&usize::MAX) {
            return Err(bad("dump does not match the stored ids"));
        }
        if checksum(order.iter().map(|&k| items[k].1.as_slice())) != sum {
            return Err(bad("dump was built for other vectors"));
        }
        index.vectors = order
            .iter()
            .map(|&k| std::mem::take(&mut items[k].1))
            .collect();
        items.clear();
        index.dead = vec![false; n];
        Ok(index)
    }

    /// Hands the live vectors back (moved, not copied), dropping the graph.
    pub fn into_items(self) -> Vec<(u64, Vec<f32>)> {
        self.ids
            .into_iter()
            .zip(self.vectors)
            .zip(self.dead)
            .filter(|(_, dead)| !dead)
            .map(|(item, _)| item)
            .collect()
    }

    /// Live points with their (normalised) vectors, in internal order.
    pub fn vectors(&self) -> impl Iterator<Item = (u64, &[f32])> {
        self.ids
            .iter()
            .zip(&self.vectors)
            .zip(&self.dead)
            .filter(|(_, dead)| !**dead)
            .map(|((id, v), _)| (*id, v.as_slice()))
    }

    /// Changes the search-time candidate list size (validated like the flag).
    pub fn set_ef_search(&mut self, ef_search: usize) -> Result<()> {
        let params = HnswParams {
            ef_search,
            ..self.params
        };
        params.validate()?;
        self.params = params;
        Ok(())
    }

    /// Points on the exact side list.
    pub fn unreachable_len(&self) -> usize {
        self.unreachable.len()
    }

    /// Rebuilds without the removed points once they are a quarter of the graph.
    fn compact_if_needed(&mut self) -> Result<()> {
        if self.removed.len() * 4 < self.ids.len().max(64) {
            return Ok(());
        }
        let (params, dimension) = (self.params, self.dimension);
        let items = std::mem::replace(self, Self::empty(params, dimension, 0)).into_items();
        *self = Self::build(params, dimension, items)?;
        Ok(())
    }
}

/// Reads a dump's little-endian fields.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(len)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

impl VectorStore for HnswIndex {
    fn kind(&self) -> &'static str {
        "hnsw"
    }

    fn len(&self) -> usize {
        self.ids.len() - self.removed.len()
    }

    fn insert(&mut self, id: u64, vector: Vec<f32>) -> Result<()> {
        check_dimension(self.dimension, &vector)?;
        self.push_point(id, normalize(vector))?;
        let i = self.ids.len() - 1;
        self.link_from(i);
        if !self.finds_itself(i as u32) {
            self.unreachable.push(i as u32);
        }
        Ok(())
    }

    fn remove(&mut self, id: u64) {
        let Some(&i) = self.position.get(&id) else {
            return;
        };
        if self.dead[i as usize] {
            return;
        }
        self.dead[i as usize] = true;
        self.removed.insert(id);
        self.unreachable.retain(|&u| u != i);
        if let Err(err) = self.compact_if_needed() {
            tracing::error!(%err, "hnsw compaction failed; removed points stay filtered");
        }
    }

    fn search(&self, query: &[f32], k: usize, filter: &dyn Fn(u64) -> bool) -> Vec<ScoredId> {
        if k == 0 || query.len() != self.dimension {
            return Vec::new();
        }
        let query = normalize(query.to_vec());
        let pass = |i: u32| !self.dead[i as usize] && filter(self.ids[i as usize]);
        let ef = self.params.ef_search.max(k);
        let mut hits: Vec<ScoredId> = self
            .search_graph(&query, ef, Some(&pass))
            .into_iter()
            .take(k)
            .map(|c| ScoredId {
                id: self.ids[c.i as usize],
                score: 1.0 - c.d,
            })
            .collect();
        let seen: HashSet<u64> = hits.iter().map(|h| h.id).collect();
        hits.extend(
            self.unreachable
                .iter()
                .filter(|&&i| pass(i) && !seen.contains(&self.ids[i as usize]))
                .map(|&i| ScoredId {
                    id: self.ids[i as usize],
                    score: 1.0 - self.distance(&query, i),
                }),
        );
        top_k(hits, k)
    }

    fn dump(&self, dir: &Path) -> Result<Option<crate::manifest::HnswDump>> {
        let Some((entry, top)) = self.entry else {
            // An empty graph is cheaper to build than to load.
            return Ok(None);
        };
        if !self.removed.is_empty() {
            // Tombstones live outside the graph (a dump would resurrect them).
            return Ok(None);
        }
        let basename = "index".to_string();
        let path = dir.join(format!("{basename}.{DUMP_SUFFIX}"));
        let io = |e: std::io::Error| Error::Index(format!("{}: {e}", path.display()));
        let file = std::fs::File::create(&path).map_err(io)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let n = self.ids.len();
        let sum = checksum(self.vectors.iter().map(Vec::as_slice));
        out.write_all(DUMP_MAGIC).map_err(io)?;
        for field in [
            self.dimension as u64,
            self.params.m as u64,
            n as u64,
            u64::from(entry),
            top as u64,
            sum,
        ] {
            out.write_all(&field.to_le_bytes()).map_err(io)?;
        }
        for id in &self.ids {
            out.write_all(&id.to_le_bytes()).map_err(io)?;
        }
        out.write_all(&self.levels).map_err(io)?;
        for slot in self
            .layer0
            .iter()
            .chain(self.upper.iter().flat_map(|u| u.iter()))
        {
            out.write_all(&slot.load(Ordering::Relaxed).to_le_bytes())
                .map_err(io)?;
        }
        out.write_all(&(self.unreachable.len() as u64).to_le_bytes())
            .map_err(io)?;
        for &i in &self.unreachable {
            out.write_all(&u64::from(i).to_le_bytes()).map_err(io)?;
        }
        out.into_inner()
            .map_err(|e| io(e.into_error()))?
            .sync_all()
            .map_err(io)?;
        let mut unreachable: Vec<u64> = self
            .unreachable
            .iter()
            .map(|&i| self.ids[i as usize])
            .collect();
        unreachable.sort_unstable();
        Ok(Some(crate::manifest::HnswDump {
            dir: String::new(),
            basename,
            unreachable,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_unit(seed: u64, dim: usize) -> Vec<f32> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let v: Vec<f32> = (0..dim)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 10_000) as f32 / 5_000.0 - 1.0
            })
            .collect();
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.into_iter().map(|a| a / n).collect()
    }

    fn items(n: u64, dim: usize) -> Vec<(u64, Vec<f32>)> {
        (0..n).map(|i| (i, random_unit(i + 1, dim))).collect()
    }

    #[test]
    fn exact_finds_itself_and_respects_filter_and_removal() {
        let mut index = ExactIndex::new(8);
        for (id, v) in items(50, 8) {
            index.insert(id, v).unwrap();
        }
        let q = random_unit(8, 8);
        assert_eq!(index.search(&q, 1, &|_| true)[0].id, 7);
        assert!(
            index
                .search(&q, 5, &|id| id % 2 == 0)
                .iter()
                .all(|h| h.id % 2 == 0)
        );
        index.remove(7);
        index.remove(0);
        assert_eq!(index.len(), 48);
        assert!(
            index
                .search(&q, 50, &|_| true)
                .iter()
                .all(|h| h.id != 7 && h.id != 0)
        );
        assert!(index.insert(3, random_unit(1, 8)).is_err(), "duplicate id");
        assert!(index.insert(99, vec![0.0; 3]).is_err(), "wrong dimension");
    }

    #[test]
    fn hnsw_agrees_with_exact_search() {
        let data = items(2000, 32);
        let hnsw = HnswIndex::build(HnswParams::default(), 32, data.clone()).unwrap();
        // A dumped and reloaded graph answers exactly as the original.
        let dir = tempfile::tempdir().unwrap();
        let dump = hnsw.dump(dir.path()).unwrap().unwrap();
        let reloaded =
            HnswIndex::load(HnswParams::default(), 32, dir.path(), &dump, &data).unwrap();
        let q = random_unit(77, 32);
        assert_eq!(
            hnsw.search(&q, 10, &|_| true),
            reloaded.search(&q, 10, &|_| true)
        );
        assert!(
            HnswIndex::load(HnswParams::default(), 32, dir.path(), &dump, &data[..10]).is_err()
        );
        let mut exact = ExactIndex::new(32);
        for (id, v) in data {
            exact.insert(id, v).unwrap();
        }
        let mut found = 0;
        for q in 0..50 {
            let query = random_unit(10_000 + q, 32);
            let truth: HashSet<u64> = exact
                .search(&query, 10, &|_| true)
                .iter()
                .map(|h| h.id)
                .collect();
            found += hnsw
                .search(&query, 10, &|_| true)
                .iter()
                .filter(|h| truth.contains(&h.id))
                .count();
        }
        let recall = found as f32 / 500.0;
        assert!(recall >= 0.95, "recall@10 {recall}");
    }

    #[test]
    fn hnsw_every_point_finds_itself_after_build_and_removals() {
        let data = items(600, 16);
        let mut index = HnswIndex::build(
            HnswParams {
                m: 4,
                ef_construction: 8,
                ef_search: 8,
            },
            16,
            data.clone(),
        )
        .unwrap();
        for id in (0..600).step_by(3) {
            index.remove(id);
        }
        for (id, v) in &data {
            let hits = index.search(v, 1, &|_| true);
            if id % 3 == 0 {
                assert!(hits.iter().all(|h| h.id != *id));
            } else {
                assert_eq!(hits[0].id, *id, "point {id} not found by its own vector");
            }
        }
    }

    /// Unit vectors in `clusters` groups (noise 0.5 of a centre's length).
    fn clustered(n: u64, dim: usize, clusters: u64) -> Vec<(u64, Vec<f32>)> {
        (0..n)
            .map(|i| {
                let centre = random_unit(1_000_000 + i % clusters, dim);
                let noise = random_unit(7919 * (i + 1), dim);
                let v: Vec<f32> = centre
                    .iter()
                    .zip(&noise)
                    .map(|(c, e)| c + 0.5 * e)
                    .collect();
                (i, normalize(v))
            })
            .collect()
    }

    #[test]
    fn dot_agrees_with_the_plain_sum() {
        for len in [0, 1, 7, 31, 32, 33, 384, 385] {
            let a = random_unit(len as u64 + 3, len.max(1));
            let b = random_unit(len as u64 + 4, len.max(1));
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-5, "len {len}");
            assert!((dot_lanes(&a, &b) - plain).abs() < 1e-5, "len {len}");
        }
    }

    #[test]
    fn hnsw_recall_on_clustered_data_at_default_parameters() {
        let (dim, n) = (64, 4000);
        let data = clustered(n, dim, 40);
        let mut exact = ExactIndex::new(dim);
        for (id, v) in &data {
            exact.insert(*id, v.clone()).unwrap();
        }
        let hnsw = HnswIndex::build(HnswParams::default(), dim, data).unwrap();
        assert_eq!(hnsw.len(), n as usize);
        let queries = clustered(200, dim, 40);
        let mut found = 0;
        for (_, q) in &queries {
            let truth: HashSet<u64> = exact
                .search(q, 10, &|_| true)
                .iter()
                .map(|h| h.id)
                .collect();
            found += hnsw
                .search(q, 10, &|_| true)
                .iter()
                .filter(|h| truth.contains(&h.id))
                .count();
        }
        let recall = found as f32 / (10 * queries.len()) as f32;
        assert!(recall >= 0.98, "recall@10 {recall}");
    }

    #[test]
    fn dump_and_load_taking_round_trip_and_reject_other_vectors() {
        let (dim, n) = (48, 3000);
        let data = clustered(n, dim, 30);
        let params = HnswParams::default();
        let hnsw = HnswIndex::build(params, dim, data.clone()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dump = hnsw.dump(dir.path()).unwrap().unwrap();
        let queries = clustered(100, dim, 30);
        let before: Vec<Vec<ScoredId>> = queries
            .iter()
            .map(|(_, q)| hnsw.search(q, 10, &|id| id % 3 != 0))
            .collect();

        // The vectors come back out of the graph and go into the loaded one,
        // in another order than they were built in.
        let mut items = hnsw.into_items();
        assert_eq!(items.len(), n as usize);
        items.reverse();
        let loaded = HnswIndex::load_taking(params, dim, dir.path(), &dump, &mut items).unwrap();
        assert!(items.is_empty(), "vectors moved, not copied");
        assert_eq!(loaded.len(), n as usize);
        for ((_, q), b) in queries.iter().zip(&before) {
            assert_eq!(&loaded.search(q, 10, &|id| id % 3 != 0), b);
        }

        // Other vectors under the same ids, another M, missing ids: refused,
        // and the caller keeps its vectors to rebuild from.
        let mut other = data.clone();
        other[17].1 = random_unit(99, dim);
        assert!(HnswIndex::load_taking(params, dim, dir.path(), &dump, &mut other).is_err());
        assert_eq!(other.len(), n as usize);
        assert!(other.iter().all(|(_, v)| v.len() == dim));
        let m8 = HnswParams { m: 8, ..params };
        assert!(HnswIndex::load(m8, dim, dir.path(), &dump, &data).is_err());
        assert!(HnswIndex::load(params, dim, dir.path(), &dump, &data[1..]).is_err());
        let mut renamed = data.clone();
        renamed[0].0 = 10 * n;
        assert!(HnswIndex::load(params, dim, dir.path(), &dump, &renamed).is_err());
        // A truncated or foreign file is refused, not trusted.
        let file = dir.path().join(format!("{}.{DUMP_SUFFIX}", dump.basename));
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() - 5]).unwrap();
        assert!(HnswIndex::load(params, dim, dir.path(), &dump, &data).is_err());
        std::fs::write(&file, b"index.hnsw.graph from hnsw_rs").unwrap();
        assert!(HnswIndex::load(params, dim, dir.path(), &dump, &data).is_err());

        // The loaded graph takes new points, and they are found.
        let mut loaded = loaded;
        for k in 0..50 {
            let (id, v) = (n + 100 + k, random_unit(500_000 + k, dim));
            loaded.insert(id, v.clone()).unwrap();
            assert_eq!(loaded.search(&v, 1, &|_| true)[0].id, id);
        }
        assert_eq!(loaded.len(), n as usize + 50);
    }

    #[test]
    fn build_moves_vectors_and_normalises_them() {
        let data: Vec<(u64, Vec<f32>)> = items(300, 16)
            .into_iter()
            .map(|(id, v)| (id, v.into_iter().map(|x| 3.0 * x).collect()))
            .collect();
        let hnsw = HnswIndex::build(HnswParams::default(), 16, data.clone()).unwrap();
        for (id, v) in hnsw.vectors() {
            assert!((dot(v, v) - 1.0).abs() < 1e-5, "point {id}");
        }
        // Scores are cosines whatever the query's length.
        let hit = hnsw.search(&data[5].1, 1, &|_| true)[0];
        assert_eq!(hit.id, 5);
        assert!((hit.score - 1.0).abs() < 1e-5);
        let mut hnsw = hnsw;
        assert!(hnsw.set_ef_search(0).is_err());
        hnsw.set_ef_search(128).unwrap();
        assert_eq!(hnsw.into_items().len(), 300);
    }

    #[test]
    fn params_are_validated_before_hnsw_rs_sees_them() {
        assert!(
            HnswParams {
                m: 300,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            HnswParams {
                m: 16,
                ef_construction: 8,
                ef_search: 10
            }
            .validate()
            .is_err()
        );
        assert!(
            HnswParams {
                ef_search: 0,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(HnswParams::default().validate().is_ok());
    }
}
