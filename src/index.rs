//! Vector search behind the [`VectorStore`] trait: an `hnsw_rs` graph for large
//! corpora and an exact scan for small ones, where scanning every vector is
//! both exact and cheaper than walking a graph.
//!
//! The trait is also the seam for scaling out: a distributed engine (a
//! Qdrant cluster, see docs/scaling.md) would be another implementation.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use hnsw_rs::prelude::{AnnT, Distance, Hnsw, HnswIo};

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
        if let Some((dir, dump)) = dump {
            match HnswIndex::load(config.hnsw, dimension, dir, dump, &items) {
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

/// Cosine distance (1 − dot) for the unit vectors the index holds: one dot
/// product a comparison where hnsw_rs's `DistCosine` computes three (the two
/// norms as well), and clamped at 0 where its `DistDot` asserts (rounding
/// can put a vector's dot with itself a hair above 1).
#[derive(Debug, Default, Clone, Copy)]
pub struct UnitCosine;

impl Distance<f32> for UnitCosine {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

type Graph = Hnsw<'static, f32, UnitCosine>;

/// The files hnsw_rs writes for a dump: `<basename>.<suffix>`.
const DUMP_SUFFIXES: [&str; 2] = ["hnsw.graph", "hnsw.data"];

/// Length and CRC-32 of a file, read in 1 MiB blocks.
fn file_crc32(path: &Path) -> std::io::Result<(u64, u32)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut block = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            return Ok((bytes, hasher.finalize()));
        }
        bytes += n as u64;
        hasher.update(&block[..n]);
    }
}

/// Both dump files are there with the length and CRC-32 the dump recorded.
fn check_dump_files(
    dir: &Path,
    dump: &crate::manifest::HnswDump,
) -> std::result::Result<(), String> {
    for suffix in DUMP_SUFFIXES {
        let name = format!("{}.{suffix}", dump.basename);
        let expected = dump
            .files
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("dump records no checksum for {name}"))?;
        let (bytes, crc32) = file_crc32(&dir.join(&name)).map_err(|e| format!("{name}: {e}"))?;
        if (bytes, crc32) != (expected.bytes, expected.crc32) {
            return Err(format!("{name} is damaged (length or CRC-32 differs)"));
        }
    }
    Ok(())
}

/// An hnsw_rs graph with tombstones for removals, and an exact side list
/// for points the graph cannot reach from its entry point (hnsw_rs can
/// leave some unreachable: upstream issue #37), so every live vector stays
/// findable.
///
/// The graph holds the only full copy of each vector (hnsw_rs keeps every
/// point's data); rebuilds and compaction read them back out of it.
pub struct HnswIndex {
    params: HnswParams,
    dimension: usize,
    graph: Graph,
    /// Live passage ids; a removed id stays in the graph as a tombstone.
    live: HashSet<u64>,
    removed: HashSet<u64>,
    unreachable: ExactIndex,
}

fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let norm = dot(&v, &v).sqrt();
    if norm > 0.0 && (norm - 1.0).abs() > 1e-6 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn new_graph(params: HnswParams, capacity: usize) -> Graph {
    // hnsw_rs's own layer limit; a point reaches layer l with probability
    // M^-l, so 16 layers are never filled.
    let max_layer = 16;
    Hnsw::new(
        params.m,
        capacity.max(1024),
        max_layer,
        params.ef_construction,
        UnitCosine,
    )
}

impl HnswIndex {
    /// Builds the graph on every core, then checks every point is found by
    /// its own vector and moves the ones that are not to the exact side list.
    /// Vectors are L2-normalised on the way in.
    pub fn build(
        params: HnswParams,
        dimension: usize,
        items: Vec<(u64, Vec<f32>)>,
    ) -> Result<Self> {
        params.validate()?;
        for (_, v) in &items {
            check_dimension(dimension, v)?;
        }
        let mut live = HashSet::with_capacity(items.len());
        for (id, _) in &items {
            if !live.insert(*id) {
                return Err(Error::Index(format!("passage id {id} given twice")));
            }
        }
        let items: Vec<(u64, Vec<f32>)> = items
            .into_iter()
            .map(|(id, v)| (id, normalize(v)))
            .collect();
        let graph = new_graph(params, items.len());
        let refs: Vec<(&[f32], usize)> = items
            .iter()
            .map(|(id, v)| (v.as_slice(), *id as usize))
            .collect();
        graph.parallel_insert_slice(&refs);
        drop(refs);
        // The graph copied every vector in; ours go now.
        drop(items);
        let mut index = Self {
            params,
            dimension,
            graph,
            live,
            removed: HashSet::new(),
            unreachable: ExactIndex::new(dimension),
        };
        index.repair_unreachable()?;
        Ok(index)
    }

    /// Points not found by their own vector move to the exact list. The
    /// self-searches run on every core: at a million points they are about
    /// as costly as the build.
    fn repair_unreachable(&mut self) -> Result<usize> {
        let points = self.points();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = points.len().div_ceil(threads).max(1);
        let this: &Self = self;
        let lost: Vec<(u64, Vec<f32>)> = std::thread::scope(|scope| {
            let workers: Vec<_> = points
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .filter(|p| {
                                let id = p.get_origin_id() as u64;
                                this.live.contains(&id)
                                    && !this.unreachable.position.contains_key(&id)
                                    && !this.finds_itself(id, p.get_v())
                            })
                            .map(|p| (p.get_origin_id() as u64, p.get_v().to_vec()))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_default())
                .collect()
        });
        let count = lost.len();
        for (id, v) in lost {
            self.unreachable.insert(id, v)?;
        }
        if count > 0 {
            tracing::info!(
                points = count,
                "hnsw points unreachable from the entry point; searched exactly"
            );
        }
        Ok(count)
    }

    /// Loads a graph dumped by [`VectorStore::dump`] for exactly `items`:
    /// the same ids with the same vectors (as normalised by a build), so a
    /// dump is never used with other vectors (e.g. after the language
    /// centring changed). A damaged or foreign dump is an error, never a
    /// crash: the caller rebuilds.
    pub fn load(
        params: HnswParams,
        dimension: usize,
        dir: &Path,
        dump: &crate::manifest::HnswDump,
        items: &[(u64, Vec<f32>)],
    ) -> Result<Self> {
        params.validate()?;
        let unusable = |why: String| Error::Index(format!("{}: {why}", dir.display()));
        check_dump_files(dir, dump).map_err(unusable)?;
        // hnsw_rs asserts on some malformed files instead of returning an
        // error; a panic there must not take the server down.
        let loaded = std::panic::catch_unwind(|| {
            // hnsw_rs ties the loaded graph's lifetime to its loader; the
            // loader is small and a graph is loaded once per start, so it is
            // leaked to give the graph a 'static lifetime.
            let loader: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, &dump.basename)));
            loader.load_hnsw::<f32, UnitCosine>()
        });
        let graph: Graph = match loaded {
            Ok(Ok(graph)) => graph,
            Ok(Err(err)) => return Err(unusable(err.to_string())),
            Err(_) => return Err(unusable("malformed hnsw dump".into())),
        };
        if graph.get_nb_point() != items.len()
            || graph.get_max_nb_connection() as usize != params.m
            || graph.get_point_indexation().get_data_dimension() != dimension
        {
            return Err(unusable(
                "dump does not match the stored vectors or parameters".into(),
            ));
        }
        let wanted: HashMap<u64, &[f32]> =
            items.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        for point in graph.get_point_indexation() {
            let id = point.get_origin_id() as u64;
            let same = wanted.get(&id).is_some_and(|v| {
                v.len() == dimension
                    && point
                        .get_v()
                        .iter()
                        .zip(normalize(v.to_vec()))
                        .all(|(a, b)| (a - b).abs() <= 1e-6)
            });
            if !same {
                return Err(unusable(format!(
                    "dump holds another vector for passage {id}, or one not stored"
                )));
            }
        }
        let mut unreachable = ExactIndex::new(dimension);
        for id in &dump.unreachable {
            let v = wanted
                .get(id)
                .ok_or_else(|| unusable(format!("dump names unknown passage {id}")))?;
            unreachable.insert(*id, normalize(v.to_vec()))?;
        }
        Ok(Self {
            params,
            dimension,
            graph,
            live: wanted.into_keys().collect(),
            removed: HashSet::new(),
            unreachable,
        })
    }

    /// True when a search for `vector` (as a top-1 query would run it)
    /// returns `id` first, or an identical vector.
    fn finds_itself(&self, id: u64, vector: &[f32]) -> bool {
        self.graph
            .search(vector, 1, self.params.ef_search)
            .first()
            .is_some_and(|n| n.d_id as u64 == id || n.distance <= 1e-6)
    }

    /// Every point of the graph, tombstones included.
    fn points(&self) -> Vec<std::sync::Arc<hnsw_rs::hnsw::Point<'static, f32>>> {
        // hnsw_rs's point iterator unwraps the entry point, which an empty
        // graph does not have.
        if self.graph.get_nb_point() == 0 {
            return Vec::new();
        }
        self.graph.get_point_indexation().into_iter().collect()
    }

    /// Copies of the live vectors (normalised), in no particular order.
    pub fn items(&self) -> Vec<(u64, Vec<f32>)> {
        self.points()
            .into_iter()
            .filter(|p| self.live.contains(&(p.get_origin_id() as u64)))
            .map(|p| (p.get_origin_id() as u64, p.get_v().to_vec()))
            .collect()
    }

    /// Changes the search-time candidate list size.
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
        if self.removed.len() * 4 < self.graph.get_nb_point().max(64) {
            return Ok(());
        }
        *self = Self::build(self.params, self.dimension, self.items())?;
        Ok(())
    }
}

impl VectorStore for HnswIndex {
    fn kind(&self) -> &'static str {
        "hnsw"
    }

    fn len(&self) -> usize {
        self.live.len()
    }

    fn insert(&mut self, id: u64, vector: Vec<f32>) -> Result<()> {
        check_dimension(self.dimension, &vector)?;
        if self.live.contains(&id) || self.removed.contains(&id) {
            // A removed id still has a node in the graph: ids are never reused.
            return Err(Error::Index(format!("passage id {id} was already used")));
        }
        let vector = normalize(vector);
        self.graph.insert_slice((&vector, id as usize));
        if !self.finds_itself(id, &vector) {
            self.unreachable.insert(id, vector)?;
        }
        self.live.insert(id);
        Ok(())
    }

    fn remove(&mut self, id: u64) {
        if self.live.remove(&id) {
            self.removed.insert(id);
            self.unreachable.remove(id);
            if let Err(err) = self.compact_if_needed() {
                tracing::error!(%err, "hnsw compaction failed; removed points stay filtered");
            }
        }
    }

    fn search(&self, query: &[f32], k: usize, filter: &dyn Fn(u64) -> bool) -> Vec<ScoredId> {
        if k == 0 || self.live.is_empty() {
            return Vec::new();
        }
        let query = normalize(query.to_vec());
        let pass = |id: &usize| {
            let id = *id as u64;
            !self.removed.contains(&id) && filter(id)
        };
        let ef = self.params.ef_search.max(k);
        let mut hits: Vec<ScoredId> = self
            .graph
            .search_filter(&query, k, ef, Some(&pass))
            .into_iter()
            .map(|n| ScoredId {
                id: n.d_id as u64,
                score: 1.0 - n.distance,
            })
            .collect();
        let seen: HashSet<u64> = hits.iter().map(|h| h.id).collect();
        hits.extend(
            self.unreachable
                .search(&query, k, &|id| filter(id) && !seen.contains(&id)),
        );
        top_k(hits, k)
    }

    fn dump(&self, dir: &Path) -> Result<Option<crate::manifest::HnswDump>> {
        if !self.removed.is_empty() || self.live.is_empty() {
            // Tombstones live outside the graph (a dump would resurrect
            // them), and an empty graph is cheaper to build than to load.
            return Ok(None);
        }
        let basename = self
            .graph
            .file_dump(dir, "index")
            .map_err(|e| Error::Index(format!("{}: {e}", dir.display())))?;
        let mut files = Vec::new();
        for suffix in DUMP_SUFFIXES {
            let name = format!("{basename}.{suffix}");
            let path = dir.join(&name);
            std::fs::File::open(&path)?.sync_all()?;
            let (bytes, crc32) = file_crc32(&path)?;
            files.push(crate::manifest::DumpFile { name, bytes, crc32 });
        }
        let mut unreachable: Vec<u64> = self.unreachable.ids.clone();
        unreachable.sort_unstable();
        Ok(Some(crate::manifest::HnswDump {
            dir: String::new(),
            basename,
            unreachable,
            files,
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
    fn dump_and_load_round_trip_and_reject_other_vectors() {
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

        // The vectors come back out of the graph; the loaded graph, given
        // them in another order than they were built in, answers the same.
        let mut items = hnsw.items();
        assert_eq!(items.len(), n as usize);
        items.reverse();
        let loaded = HnswIndex::load(params, dim, dir.path(), &dump, &items).unwrap();
        assert_eq!(loaded.len(), n as usize);
        for ((_, q), b) in queries.iter().zip(&before) {
            assert_eq!(&loaded.search(q, 10, &|id| id % 3 != 0), b);
        }

        // Other vectors under the same ids, another M, missing ids: refused.
        let mut other = data.clone();
        other[17].1 = random_unit(99, dim);
        assert!(HnswIndex::load(params, dim, dir.path(), &dump, &other).is_err());
        let m8 = HnswParams { m: 8, ..params };
        assert!(HnswIndex::load(m8, dim, dir.path(), &dump, &data).is_err());
        assert!(HnswIndex::load(params, dim, dir.path(), &dump, &data[1..]).is_err());
        let mut renamed = data.clone();
        renamed[0].0 = 10 * n;
        assert!(HnswIndex::load(params, dim, dir.path(), &dump, &renamed).is_err());
        // A truncated or foreign file is an error (the engine rebuilds), not
        // a crash and not trusted.
        for suffix in ["hnsw.graph", "hnsw.data"] {
            let file = dir.path().join(format!("{}.{suffix}", dump.basename));
            let bytes = std::fs::read(&file).unwrap();
            std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
            assert!(HnswIndex::load(params, dim, dir.path(), &dump, &data).is_err());
            std::fs::write(&file, b"not a graph").unwrap();
            assert!(HnswIndex::load(params, dim, dir.path(), &dump, &data).is_err());
            std::fs::write(&file, &bytes).unwrap();
        }
        assert!(HnswIndex::load(params, dim, dir.path(), &dump, &data).is_ok());

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
    fn an_empty_graph_takes_points_and_finds_them() {
        let mut hnsw = HnswIndex::build(HnswParams::default(), 16, Vec::new()).unwrap();
        assert!(hnsw.is_empty() && hnsw.items().is_empty());
        assert!(hnsw.search(&random_unit(1, 16), 5, &|_| true).is_empty());
        assert!(
            hnsw.dump(tempfile::tempdir().unwrap().path())
                .unwrap()
                .is_none()
        );
        for (id, v) in items(40, 16) {
            hnsw.insert(id, v).unwrap();
        }
        assert_eq!(hnsw.len(), 40);
        for (id, v) in items(40, 16) {
            assert_eq!(hnsw.search(&v, 1, &|_| true)[0].id, id);
        }
    }

    #[test]
    fn build_normalises_vectors_and_scores_are_cosines() {
        let data: Vec<(u64, Vec<f32>)> = items(300, 16)
            .into_iter()
            .map(|(id, v)| (id, v.into_iter().map(|x| 3.0 * x).collect()))
            .collect();
        let mut hnsw = HnswIndex::build(HnswParams::default(), 16, data.clone()).unwrap();
        for (id, v) in hnsw.items() {
            assert!((dot(&v, &v) - 1.0).abs() < 1e-5, "point {id}");
        }
        // Scores are cosines whatever the query's length.
        let hit = hnsw.search(&data[5].1, 1, &|_| true)[0];
        assert_eq!(hit.id, 5);
        assert!((hit.score - 1.0).abs() < 1e-5);
        assert!(hnsw.set_ef_search(0).is_err());
        hnsw.set_ef_search(128).unwrap();
        assert_eq!(hnsw.search(&data[7].1, 1, &|_| true)[0].id, 7);
        // A duplicate id in a build is refused, not silently merged.
        let mut twice = data.clone();
        twice.push(data[0].clone());
        assert!(HnswIndex::build(HnswParams::default(), 16, twice).is_err());
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
