//! Vector search behind the [`VectorStore`] trait: a USearch HNSW graph for large
//! corpora and an exact scan for small ones, where scanning every vector is
//! both exact and cheaper than walking a graph.
//!
//! The trait is also the seam for scaling out: a distributed engine (a
//! Qdrant cluster, see docs/scaling.md) would be another implementation.

use std::collections::{HashMap, HashSet};
use std::path::Path;

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
    /// Candidate list size while searching: at least 1; raised to k when
    /// smaller. `None`: [`default_ef_search`] for the graph's size.
    pub ef_search: Option<usize>,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: 32,
            ef_construction: 200,
            ef_search: None,
        }
    }
}

/// The default search candidate list for a graph of `points`: 64 up to
/// 100,000 points, then `EF_SEARCH_GROWTH` times as many per tenfold
/// growth, because recall at a fixed ef falls as the graph grows (at M 32,
/// ef_construction 200, on the synthetic set of BENCHMARKS.md, recall@10:
/// 0.9999 at ef 64 for 100,000 points; at 1,000,000 see EF_SEARCH_GROWTH).
pub fn default_ef_search(points: usize) -> usize {
    const BASE: f64 = 64.0;
    const FROM: f64 = 100_000.0;
    let decades = (points as f64 / FROM).log10().max(0.0);
    (BASE * EF_SEARCH_GROWTH.powf(decades)).round().min(1024.0) as usize
}

/// How much the default ef grows per tenfold growth of the graph past
/// 100,000 points: measured at 1,000,000 (`index_bench --scale 1000000`),
/// the smallest ef of 64, 128, 256, 512 whose recall@10 reaches 0.98.
const EF_SEARCH_GROWTH: f64 = 2.0;

impl HnswParams {
    /// The search candidate list for a graph of `points`.
    pub fn ef_search_for(&self, points: usize) -> usize {
        self.ef_search.unwrap_or_else(|| default_ef_search(points))
    }

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
        if self.ef_search.is_some_and(|ef| ef == 0 || ef > 4096) {
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
            exact_threshold: 5_000,
        }
    }
}

/// Builds the configured index over `items`, or loads the graph from a
/// dump of exactly these items when one is given and readable; true when it
/// was loaded from the dump.
pub fn build(
    config: &IndexConfig,
    dimension: usize,
    items: Vec<(u64, Vec<f32>)>,
    dump: Option<(&Path, &crate::manifest::HnswDump)>,
) -> Result<(Box<dyn VectorStore>, bool)> {
    config.hnsw.validate()?;
    let use_hnsw = match config.kind {
        IndexKind::Exact => false,
        IndexKind::Hnsw => true,
        IndexKind::Auto => items.len() >= config.exact_threshold,
    };
    if use_hnsw {
        if let Some((dir, dump)) = dump {
            match HnswIndex::check_dump(dimension, dir, dump, &items) {
                Ok(path) => {
                    // The graph holds its own copy of the vectors: ours go
                    // before it is read. Should the checked file still not
                    // open, the caller reads the store again and rebuilds.
                    let ids = items.iter().map(|(id, _)| *id).collect();
                    drop(items);
                    return_freed_memory();
                    let index = HnswIndex::open_checked(config.hnsw, dimension, &path, dump, ids)?;
                    return Ok((Box::new(index), true));
                }
                Err(err) => tracing::warn!(%err, "hnsw dump unusable; rebuilding the graph"),
            }
        }
        Ok((
            Box::new(HnswIndex::build(config.hnsw, dimension, items)?),
            false,
        ))
    } else {
        let mut index = ExactIndex::new(dimension);
        for (id, v) in items {
            index.insert(id, v)?;
        }
        Ok((Box::new(index), false))
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

/// IEEE half-precision vectors, as the HNSW graph stores them: half the
/// memory of f32, and a cosine error below 1e-3 for unit vectors (10
/// mantissa bits), well under the gaps that decide a ranking.
type Half = half::f16;

/// `v / scale` in half precision (round to nearest even; F16C when the CPU
/// has it), into `out`.
fn to_half(v: &[f32], scale: f32, out: &mut Vec<Half>) {
    use half::slice::HalfFloatSliceExt;
    out.clear();
    out.resize(v.len(), Half::ZERO);
    // The same division as `normalize`, so a build and a load's check
    // round every vector to the same bits.
    let mut scaled = [0f32; 64];
    for (from, to) in v.chunks(64).zip(out.chunks_mut(64)) {
        for (s, x) in scaled.iter_mut().zip(from) {
            *s = x / scale;
        }
        to.convert_from_f32_slice(&scaled[..from.len()]);
    }
}

/// The same 16 bits as USearch's own half type.
fn as_usearch(v: &[Half]) -> &[usearch::f16] {
    // SAFETY: both types are `repr(transparent)` over 16 bits (IEEE half),
    // so the slices have the same layout.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), v.len()) }
}

fn as_usearch_mut(v: &mut [Half]) -> &mut [usearch::f16] {
    // SAFETY: as in `as_usearch`.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), v.len()) }
}

/// Dot product of two half-precision vectors with AVX2, FMA and F16C:
/// eight halves widened to f32 per load, four 8-lane accumulators.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_half_avx2(a: &[Half], b: &[Half]) -> f32 {
    use std::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm256_add_ps, _mm256_cvtph_ps, _mm256_fmadd_ps,
        _mm256_setzero_ps, _mm256_storeu_ps,
    };
    let n = a.len().min(b.len());
    let blocks = n / 32;
    let mut acc = [_mm256_setzero_ps(); 4];
    for block in 0..blocks {
        for (k, lane) in acc.iter_mut().enumerate() {
            let at = block * 32 + k * 8;
            // SAFETY: at + 8 <= blocks * 32 <= n, the length of both slices;
            // the loads are unaligned.
            let (x, y) = unsafe {
                (
                    _mm256_cvtph_ps(_mm_loadu_si128(a.as_ptr().add(at).cast::<__m128i>())),
                    _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().add(at).cast::<__m128i>())),
                )
            };
            *lane = _mm256_fmadd_ps(x, y, *lane);
        }
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds exactly 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    lanes.iter().sum::<f32>() + dot_half_plain(&a[blocks * 32..n], &b[blocks * 32..n])
}

fn dot_half_plain(a: &[Half], b: &[Half]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x.to_f32() * y.to_f32()).sum()
}

/// The fastest half-precision dot product this CPU runs, chosen once (the
/// graph calls it for every distance).
fn dot_half_kernel() -> fn(&[Half], &[Half]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
    {
        // SAFETY: the CPU supports AVX2, FMA and F16C, checked just above.
        return |a, b| unsafe { dot_half_avx2(a, b) };
    }
    dot_half_plain
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

/// The file a graph dump writes inside its folder: `<basename>.usearch`.
const DUMP_SUFFIX: &str = "usearch";

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

/// The dump file is there with the length and CRC-32 the dump recorded.
/// Dumps from before the graph was USearch's name other files and fail here,
/// so they are rebuilt.
fn check_dump_file(
    dir: &Path,
    dump: &crate::manifest::HnswDump,
) -> std::result::Result<std::path::PathBuf, String> {
    let name = format!("{}.{DUMP_SUFFIX}", dump.basename);
    let expected = dump
        .files
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| format!("dump records no checksum for {name}"))?;
    let path = dir.join(&name);
    let (bytes, crc32) = file_crc32(&path).map_err(|e| format!("{name}: {e}"))?;
    if (bytes, crc32) != (expected.bytes, expected.crc32) {
        return Err(format!("{name} is damaged (length or CRC-32 differs)"));
    }
    Ok(path)
}

/// An HNSW graph (USearch: flat 32-bit links, the vectors stored once in one
/// arena), with an exact side list for points a search for their own vector
/// does not find, so every live vector stays findable.
///
/// USearch rather than hnsw_rs: at a million passages hnsw_rs held 5.9 GB
/// (an `Arc` and an allocation per link) and took 58 s to load. This graph,
/// with half-precision vectors and M 32, holds 1.3 GB there (RSS after the
/// build), loads in 2.5 s and reaches recall@10 0.995 at its default ef of
/// 128 (docs/scaling.md, BENCHMARKS.md).
pub struct HnswIndex {
    params: HnswParams,
    dimension: usize,
    graph: usearch::Index,
    /// Live passage ids (the graph's keys).
    live: HashSet<u64>,
    /// Removals since the graph was built: USearch keeps a removed node as
    /// a tombstone that searches still walk through.
    removed: usize,
    unreachable: ExactIndex,
}

/// What [`normalize`] divides `v` by: its norm, or 1 when it is already
/// unit length (or zero).
fn unit_scale(v: &[f32]) -> f32 {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 && (norm - 1.0).abs() > 1e-6 {
        norm
    } else {
        1.0
    }
}

fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let scale = unit_scale(&v);
    if scale != 1.0 {
        v.iter_mut().for_each(|x| *x /= scale);
    }
    v
}

/// CRC-32 of vectors in half precision, in the order of `entries`: each
/// entry's id (8 bytes, little-endian) then its halves' bits. `half` fills
/// an entry's vector and returns its id (`None`: no vector, no checksum).
/// Computed on every core; the shares' CRCs are combined, so the result is
/// the same as one pass.
fn vectors_crc32<T: Sync>(
    entries: &[T],
    half: impl Fn(&T, &mut Vec<Half>) -> Option<u64> + Sync,
) -> Option<u32> {
    let shares = on_every_core(entries, |part| {
        let mut hasher = crc32fast::Hasher::new();
        let mut vector = Vec::new();
        for entry in part {
            let id = half(entry, &mut vector)?;
            hasher.update(&id.to_le_bytes());
            for x in &vector {
                hasher.update(&x.to_bits().to_le_bytes());
            }
        }
        Some(hasher)
    });
    let mut total = crc32fast::Hasher::new();
    for share in shares {
        total.combine(&share.ok()??);
    }
    Some(total.finalize())
}

/// Gives the memory freed so far (the input vectors of a build or a load:
/// 1.5 GB at a million passages) back to the OS now. mimalloc, the binary's
/// allocator, would keep most of it until later allocations: a 30,000-vector
/// load held 102 MB instead of 50.
fn return_freed_memory() {
    // SAFETY: takes no pointers and may be called at any time; with another
    // global allocator (the tests') mimalloc's own empty heap is collected.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// `items` split into one share per core, by value.
fn shares_per_core<T>(mut items: Vec<T>) -> Vec<Vec<T>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = items.len().div_ceil(threads).max(1);
    let mut shares = Vec::with_capacity(threads);
    while items.len() > per {
        shares.push(items.split_off(items.len() - per));
    }
    shares.push(items);
    shares
}

/// Runs `work` on `items` split into one share per core, and returns each
/// share's result (an `Err` for a share whose thread panicked).
fn on_every_core<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&[T]) -> R + Sync,
) -> Vec<std::thread::Result<R>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    let work = &work;
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || work(part)))
            .collect();
        workers.into_iter().map(|w| w.join()).collect()
    })
}

/// A USearch error as ours; `what` says which operation failed.
fn graph_error(what: &str, err: impl std::fmt::Display) -> Error {
    Error::Index(format!("hnsw {what}: {err}"))
}

fn new_graph(params: HnswParams, dimension: usize, points: usize) -> Result<usearch::Index> {
    let options = usearch::IndexOptions {
        dimensions: dimension,
        // Inner product: the vectors are unit length, so 1 − dot is the
        // cosine distance without the two norms `Cos` would compute.
        metric: usearch::MetricKind::IP,
        quantization: usearch::ScalarKind::F16,
        connectivity: params.m,
        expansion_add: params.ef_construction,
        expansion_search: params.ef_search_for(points),
        multi: false,
    };
    let mut graph = usearch::Index::new(&options).map_err(|e| graph_error("create", e))?;
    use_our_dot(&mut graph, dimension);
    Ok(graph)
}

/// Points the graph's distance at [`dot_half_kernel`] (AVX2, FMA and F16C
/// when the CPU has them): USearch built without NumKong has only scalar
/// half-precision loops. The metric is not saved with a dump, so a loaded
/// graph needs it again.
fn use_our_dot(graph: &mut usearch::Index, dimension: usize) {
    let kernel = dot_half_kernel();
    graph.change_metric::<usearch::f16>(Box::new(
        move |a: *const usearch::f16, b: *const usearch::f16| {
            // SAFETY: USearch calls the metric with two of its vectors (or
            // the query), each `dimension` halves long: the dimension it was
            // created with. Its half type has the layout of ours.
            let (a, b) = unsafe {
                (
                    std::slice::from_raw_parts(a.cast::<Half>(), dimension),
                    std::slice::from_raw_parts(b.cast::<Half>(), dimension),
                )
            };
            1.0 - kernel(a, b)
        },
    ));
}

impl HnswIndex {
    /// Builds the graph on every core, then checks every point is found by
    /// its own vector and moves the ones that are not to the exact side list.
    /// Vectors are L2-normalised and rounded to half precision on the way in.
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
        let graph = new_graph(params, dimension, items.len())?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        graph
            .reserve_capacity_and_threads(items.len().max(1024), threads)
            .map_err(|e| graph_error("reserve", e))?;
        let done = std::sync::atomic::AtomicUsize::new(0);
        let (graph_ref, done) = (&graph, &done);
        // Each core takes its share of the vectors by value and frees each
        // one once the graph holds its copy, so the build's peak memory is
        // about the inputs', not the inputs' plus the graph's.
        std::thread::scope(|scope| {
            let workers: Vec<_> = shares_per_core(items)
                .into_iter()
                .map(|share| {
                    scope.spawn(move || -> Result<()> {
                        let mut half = Vec::with_capacity(dimension);
                        for (id, v) in share {
                            to_half(&v, unit_scale(&v), &mut half);
                            drop(v);
                            graph_ref
                                .add(id, as_usearch(&half))
                                .map_err(|e| graph_error("insert", e))?;
                            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                            if n.is_multiple_of(50_000) {
                                // The inputs freed so far go back to the
                                // OS now, not at mimalloc's convenience: a
                                // 1M build peaked at 1.9 GB in one run and
                                // 2.9 GB in another without this.
                                return_freed_memory();
                            }
                            if n.is_multiple_of(100_000) {
                                tracing::debug!(points = n, "hnsw build progress");
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| {
                w.join()
                    .map_err(|_| Error::Index("hnsw build thread panicked".into()))?
            })
        })?;
        return_freed_memory();
        let mut index = Self {
            params,
            dimension,
            graph,
            live,
            removed: 0,
            unreachable: ExactIndex::new(dimension),
        };
        index.repair_unreachable()?;
        Ok(index)
    }

    /// Points not found by their own vector move to the exact list. The
    /// self-searches run on every core, at the search ef but at most
    /// `SELF_CHECK_EF`: a point found with fewer candidates is found with
    /// more, and at a million points the check is most of the build.
    fn repair_unreachable(&mut self) -> Result<usize> {
        const SELF_CHECK_EF: usize = 64;
        let ids: Vec<u64> = self.live.iter().copied().collect();
        let search_ef = self.graph.expansion_search();
        self.graph
            .change_expansion_search(search_ef.min(SELF_CHECK_EF));
        let this: &Self = self;
        let lost: Vec<(u64, Vec<f32>)> = on_every_core(&ids, |part| {
            part.iter()
                .filter(|id| !this.unreachable.position.contains_key(id))
                .filter(|&&id| !this.finds_itself(id))
                .filter_map(|&id| Some((id, this.vector(id)?)))
                .collect::<Vec<_>>()
        })
        .into_iter()
        .flat_map(|share| share.unwrap_or_default())
        .collect();
        self.graph.change_expansion_search(search_ef);
        let count = lost.len();
        for (id, v) in lost {
            self.unreachable.insert(id, v)?;
        }
        if count > 0 {
            tracing::info!(
                points = count,
                "hnsw points not found by their own vector; searched exactly"
            );
        }
        Ok(count)
    }

    /// Loads a graph dumped by [`VectorStore::dump`] for exactly `items`:
    /// [`check_dump`](Self::check_dump), then
    /// [`open_checked`](Self::open_checked).
    pub fn load(
        params: HnswParams,
        dimension: usize,
        dir: &Path,
        dump: &crate::manifest::HnswDump,
        items: &[(u64, Vec<f32>)],
    ) -> Result<Self> {
        let path = Self::check_dump(dimension, dir, dump, items)?;
        let ids = items.iter().map(|(id, _)| *id).collect();
        Self::open_checked(params, dimension, &path, dump, ids)
    }

    /// Checks, without reading the graph, that a dump was written for
    /// exactly `items`: the same ids with the same vectors (as a build
    /// stores them: normalised, in half precision, to the bit), so a dump is
    /// never used with other vectors (e.g. after the language centring
    /// changed). Checks the file's length and CRC-32, and the CRC-32 of
    /// `items` against the one the dump recorded of the graph's vectors.
    /// Returns the graph file. A damaged or foreign dump is an error, never
    /// a crash: the caller rebuilds.
    pub fn check_dump(
        dimension: usize,
        dir: &Path,
        dump: &crate::manifest::HnswDump,
        items: &[(u64, Vec<f32>)],
    ) -> Result<std::path::PathBuf> {
        let unusable = |why: String| Error::Index(format!("{}: {why}", dir.display()));
        let started = std::time::Instant::now();
        // The file's CRC comes first: USearch trusts the lengths in its file.
        let path = check_dump_file(dir, dump).map_err(unusable)?;
        let file_ms = started.elapsed().as_millis() as u64;
        let recorded = dump
            .vectors_crc32
            .ok_or_else(|| unusable("dump records no checksum of its vectors".into()))?;
        if items.iter().any(|(_, v)| v.len() != dimension) {
            return Err(unusable(format!(
                "a stored vector is not {dimension}-dimensional"
            )));
        }
        let mut by_id: Vec<&(u64, Vec<f32>)> = items.iter().collect();
        by_id.sort_unstable_by_key(|(id, _)| *id);
        let ours = vectors_crc32(&by_id, |(id, v), half| {
            to_half(v, unit_scale(v), half);
            Some(*id)
        });
        if ours != Some(recorded) {
            return Err(unusable(
                "dump was written for other vectors or passages".into(),
            ));
        }
        tracing::debug!(
            file_crc_ms = file_ms,
            vectors_crc_ms = started.elapsed().as_millis() as u64 - file_ms,
            "hnsw dump checked"
        );
        Ok(path)
    }

    /// Reads a graph file that [`check_dump`](Self::check_dump) passed for
    /// these ids. The vectors are not needed: the graph holds its own
    /// copy, so the caller can free its copy first and a restart's peak
    /// memory is the larger of the two, not their sum.
    pub fn open_checked(
        params: HnswParams,
        dimension: usize,
        path: &Path,
        dump: &crate::manifest::HnswDump,
        ids: Vec<u64>,
    ) -> Result<Self> {
        params.validate()?;
        let unusable = |why: String| Error::Index(format!("{}: {why}", path.display()));
        let started = std::time::Instant::now();
        let mut graph = new_graph(params, dimension, ids.len())?;
        graph
            .load(&path.to_string_lossy())
            .map_err(|e| unusable(e.to_string()))?;
        let read_ms = started.elapsed().as_millis() as u64;
        // Loading restores USearch's own metric.
        use_our_dot(&mut graph, dimension);
        if graph.size() != ids.len()
            || graph.connectivity() != params.m
            || graph.dimensions() != dimension
        {
            return Err(unusable(
                "dump does not match the stored vectors or parameters".into(),
            ));
        }
        // The file keeps the build's settings; these are this run's.
        graph.change_expansion_add(params.ef_construction);
        graph.change_expansion_search(params.ef_search_for(ids.len()));
        let live: HashSet<u64> = ids.iter().copied().collect();
        if live.len() != ids.len() {
            return Err(unusable("a passage id is given twice".into()));
        }
        let graph_ref = &graph;
        let missing = on_every_core(&ids, |part| part.iter().all(|id| graph_ref.contains(*id)))
            .into_iter()
            .any(|share| !matches!(share, Ok(true)));
        if missing {
            return Err(unusable("dump lacks a stored passage".into()));
        }
        let mut index = Self {
            params,
            dimension,
            graph,
            live,
            removed: 0,
            unreachable: ExactIndex::new(dimension),
        };
        for id in &dump.unreachable {
            let v = index
                .vector(*id)
                .ok_or_else(|| unusable(format!("dump names unknown passage {id}")))?;
            index.unreachable.insert(*id, v)?;
        }
        tracing::debug!(
            read_ms,
            ids_ms = started.elapsed().as_millis() as u64 - read_ms,
            "hnsw dump loaded"
        );
        Ok(index)
    }

    /// The graph's copy of a live vector, in half precision.
    fn half_vector(&self, id: u64) -> Option<Vec<Half>> {
        let mut v = vec![Half::ZERO; self.dimension];
        (self.graph.get(id, as_usearch_mut(&mut v)).ok()? == 1).then_some(v)
    }

    /// The graph's copy of a live vector (normalised, half precision
    /// widened back to f32).
    fn vector(&self, id: u64) -> Option<Vec<f32>> {
        Some(self.half_vector(id)?.iter().map(|x| x.to_f32()).collect())
    }

    /// True when a search for the graph's own copy of `id` (as a top-1
    /// query would run it) returns `id` first, or a point with the very
    /// same vector.
    fn finds_itself(&self, id: u64) -> bool {
        let Some(own) = self.half_vector(id) else {
            return false;
        };
        self.graph.search(as_usearch(&own), 1).is_ok_and(|found| {
            found.keys.first().is_some_and(|&first| {
                first == id
                    || self.half_vector(first).is_some_and(|v| {
                        v.iter().zip(&own).all(|(a, b)| a.to_bits() == b.to_bits())
                    })
            })
        })
    }

    /// Copies of the live vectors (normalised, half precision widened back
    /// to f32), in no particular order.
    pub fn items(&self) -> Vec<(u64, Vec<f32>)> {
        self.live
            .iter()
            .filter_map(|&id| Some((id, self.vector(id)?)))
            .collect()
    }

    /// Changes the search-time candidate list size (`None`: the default
    /// for the graph's size, following it as the graph grows).
    pub fn set_ef_search(&mut self, ef_search: Option<usize>) -> Result<()> {
        let params = HnswParams {
            ef_search,
            ..self.params
        };
        params.validate()?;
        self.params = params;
        self.follow_ef_search();
        Ok(())
    }

    /// The search candidate list size in use.
    pub fn ef_search(&self) -> usize {
        self.graph.expansion_search()
    }

    /// Sets the graph's ef for its current size (a no-op for a fixed ef
    /// that is already set).
    fn follow_ef_search(&self) {
        let ef = self.params.ef_search_for(self.live.len());
        if self.graph.expansion_search() != ef {
            self.graph.change_expansion_search(ef);
        }
    }

    /// Points on the exact side list.
    pub fn unreachable_len(&self) -> usize {
        self.unreachable.len()
    }

    /// Bytes the index holds: USearch's own count (graph and vectors) plus
    /// the exact side list's vectors. Benchmarks report it beside RSS, which
    /// also counts what the allocator keeps after the build's inputs go.
    pub fn memory_bytes(&self) -> usize {
        self.graph.memory_usage() + self.unreachable.data.len() * std::mem::size_of::<f32>()
    }

    /// Rebuilds without the tombstones once they are a quarter of the graph.
    fn compact_if_needed(&mut self) -> Result<()> {
        if self.removed * 4 < (self.live.len() + self.removed).max(64) {
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
        if self.live.contains(&id) {
            return Err(Error::Index(format!("passage {id} is already indexed")));
        }
        let mut half = Vec::with_capacity(self.dimension);
        to_half(&vector, unit_scale(&vector), &mut half);
        if self.graph.size() >= self.graph.capacity() {
            let grown = (self.graph.capacity() * 2).max(1024);
            self.graph
                .reserve(grown)
                .map_err(|e| graph_error("reserve", e))?;
        }
        self.graph
            .add(id, as_usearch(&half))
            .map_err(|e| graph_error("insert", e))?;
        if !self.finds_itself(id) {
            let widened = half.iter().map(|x| x.to_f32()).collect();
            self.unreachable.insert(id, widened)?;
        }
        self.live.insert(id);
        self.follow_ef_search();
        Ok(())
    }

    fn remove(&mut self, id: u64) {
        if !self.live.remove(&id) {
            return;
        }
        if let Err(err) = self.graph.remove(id) {
            tracing::error!(%err, id, "hnsw removal failed; rebuilding the graph");
            self.removed = usize::MAX / 8;
        }
        self.removed += 1;
        self.unreachable.remove(id);
        self.follow_ef_search();
        if let Err(err) = self.compact_if_needed() {
            tracing::error!(%err, "hnsw compaction failed; removed points stay tombstones");
        }
    }

    fn search(&self, query: &[f32], k: usize, filter: &dyn Fn(u64) -> bool) -> Vec<ScoredId> {
        if k == 0 || self.live.is_empty() {
            return Vec::new();
        }
        let query = normalize(query.to_vec());
        let mut half = Vec::with_capacity(query.len());
        to_half(&query, 1.0, &mut half);
        // USearch widens the candidate list to k itself when k > ef.
        let found = self.graph.filtered_search(as_usearch(&half), k, filter);
        let mut hits: Vec<ScoredId> = match found {
            Ok(found) => found
                .keys
                .iter()
                .zip(&found.distances)
                .map(|(&id, &distance)| ScoredId {
                    id,
                    score: 1.0 - distance,
                })
                .collect(),
            Err(err) => {
                tracing::error!(%err, "hnsw search failed; answering from the exact side list");
                Vec::new()
            }
        };
        let seen: HashSet<u64> = hits.iter().map(|h| h.id).collect();
        hits.extend(
            self.unreachable
                .search(&query, k, &|id| filter(id) && !seen.contains(&id)),
        );
        top_k(hits, k)
    }

    fn dump(&self, dir: &Path) -> Result<Option<crate::manifest::HnswDump>> {
        if self.removed > 0 || self.live.is_empty() {
            // Keep dumps to freshly built graphs (no tombstones walked by
            // every search); an empty graph is cheaper to build than to load.
            return Ok(None);
        }
        let basename = "index".to_string();
        let name = format!("{basename}.{DUMP_SUFFIX}");
        let path = dir.join(&name);
        self.graph
            .save(&path.to_string_lossy())
            .map_err(|e| graph_error(&format!("dump to {}", path.display()), e))?;
        std::fs::File::open(&path)?.sync_all()?;
        let (bytes, crc32) = file_crc32(&path)?;
        let mut unreachable: Vec<u64> = self.unreachable.ids.clone();
        unreachable.sort_unstable();
        let mut ids: Vec<u64> = self.live.iter().copied().collect();
        ids.sort_unstable();
        let vectors_crc32 = vectors_crc32(&ids, |&id, half| {
            *half = self.half_vector(id)?;
            Some(id)
        })
        .ok_or_else(|| Error::Index("hnsw dump: a live vector is missing from the graph".into()))?;
        Ok(Some(crate::manifest::HnswDump {
            dir: String::new(),
            basename,
            unreachable,
            files: vec![crate::manifest::DumpFile { name, bytes, crc32 }],
            vectors_crc32: Some(vectors_crc32),
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
                ef_search: Some(8),
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
            // Half precision: the kernel the graph uses and the plain loop
            // agree on the same halves, and both are near the f32 product.
            let (mut ha, mut hb) = (Vec::new(), Vec::new());
            to_half(&a, 1.0, &mut ha);
            to_half(&b, 1.0, &mut hb);
            let half = dot_half_kernel()(&ha, &hb);
            assert!((half - dot_half_plain(&ha, &hb)).abs() < 1e-5, "len {len}");
            assert!(
                (half - plain).abs() < 2e-3,
                "len {len}: {half} against {plain}"
            );
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

        // The vectors come back out of the graph (in half precision); the
        // graph loaded for the stored vectors, given in another order than
        // they were built in, answers the same.
        let mut items = hnsw.items();
        assert_eq!(items.len(), n as usize);
        items.sort_by_key(|(id, _)| *id);
        for ((id, held), (_, stored)) in items.iter().zip(&data) {
            let error = held
                .iter()
                .zip(stored)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(error < 1e-3, "point {id} held with error {error}");
        }
        let mut reordered = data.clone();
        reordered.reverse();
        let loaded = HnswIndex::load(params, dim, dir.path(), &dump, &reordered).unwrap();
        assert_eq!(loaded.len(), n as usize);
        for ((_, q), b) in queries.iter().zip(&before) {
            assert_eq!(&loaded.search(q, 10, &|id| id % 3 != 0), b);
        }

        // Other vectors under the same ids (even one component changed by
        // a hundredth), another M, missing ids: refused.
        let mut other = data.clone();
        other[17].1 = random_unit(99, dim);
        assert!(HnswIndex::load(params, dim, dir.path(), &dump, &other).is_err());
        let mut nudged = data.clone();
        nudged[2999].1[5] += 0.01;
        assert!(HnswIndex::load(params, dim, dir.path(), &dump, &nudged).is_err());
        let m8 = HnswParams { m: 8, ..params };
        assert!(HnswIndex::load(m8, dim, dir.path(), &dump, &data).is_err());
        assert!(HnswIndex::load(params, dim, dir.path(), &dump, &data[1..]).is_err());
        let mut renamed = data.clone();
        renamed[0].0 = 10 * n;
        assert!(HnswIndex::load(params, dim, dir.path(), &dump, &renamed).is_err());
        // A truncated or foreign file is an error (the engine rebuilds), not
        // a crash and not trusted.
        {
            let file = dir.path().join(&dump.files[0].name);
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
        // Unit length to half precision (a relative error of 2^-11 a
        // component).
        for (id, v) in hnsw.items() {
            assert!((dot(&v, &v) - 1.0).abs() < 2e-3, "point {id}");
        }
        // Scores are cosines whatever the query's length.
        let hit = hnsw.search(&data[5].1, 1, &|_| true)[0];
        assert_eq!(hit.id, 5);
        assert!((hit.score - 1.0).abs() < 2e-3);
        let other = hnsw.search(&data[9].1, 300, &|id| id == 6)[0];
        let cosine = dot(&normalize(data[9].1.clone()), &normalize(data[6].1.clone()));
        assert!(
            (other.score - cosine).abs() < 2e-3,
            "{} against {cosine}",
            other.score
        );
        assert!(hnsw.set_ef_search(Some(0)).is_err());
        hnsw.set_ef_search(Some(128)).unwrap();
        assert_eq!(hnsw.ef_search(), 128);
        hnsw.set_ef_search(None).unwrap();
        assert_eq!(hnsw.ef_search(), default_ef_search(300));
        assert_eq!(hnsw.search(&data[7].1, 1, &|_| true)[0].id, 7);
        // A duplicate id in a build is refused, not silently merged.
        let mut twice = data.clone();
        twice.push(data[0].clone());
        assert!(HnswIndex::build(HnswParams::default(), 16, twice).is_err());
    }

    #[test]
    fn the_default_ef_is_64_up_to_100k_points_and_grows_beyond() {
        assert_eq!(default_ef_search(0), 64);
        assert_eq!(default_ef_search(100_000), 64);
        let at_a_million = default_ef_search(1_000_000);
        assert_eq!(at_a_million, (64.0 * EF_SEARCH_GROWTH).round() as usize);
        assert!(default_ef_search(300_000) > 64 && default_ef_search(300_000) < at_a_million);
        assert_eq!(default_ef_search(usize::MAX), 1024);
        let fixed = HnswParams {
            ef_search: Some(40),
            ..Default::default()
        };
        assert_eq!(fixed.ef_search_for(1_000_000), 40);
    }

    #[test]
    fn params_are_validated_before_the_graph_sees_them() {
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
                ef_search: Some(10)
            }
            .validate()
            .is_err()
        );
        assert!(
            HnswParams {
                ef_search: Some(0),
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(HnswParams::default().validate().is_ok());
    }
}
