//! The HNSW graph (USearch), with an exact side list for points the graph
//! cannot reach, dumps a restart can load instead of building, and the
//! helpers that spread a build or a check over every core.

use std::collections::HashSet;
use std::path::Path;

use super::dump::{DUMP_SUFFIX, DumpFile, HnswDump, check_dump_file, file_crc32, vectors_crc32};
use super::exact::ExactIndex;
use super::kernels::{
    Half, as_usearch, as_usearch_mut, dot_half_kernel, normalize, to_half, unit_scale,
};
use super::{HnswParams, ScoredId, VectorStore, check_dimension, top_k};
use crate::error::{Error, Result};

/// An HNSW graph (USearch: flat 32-bit links, the vectors stored once in one
/// arena), with an exact side list for points a search for their own vector
/// does not find, so every live vector stays findable. Why USearch, and its
/// memory, load time and recall at a million passages: docs/scaling.md and
/// BENCHMARKS.md.
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

/// Gives the memory freed so far (the input vectors of a build or a load)
/// back to the OS now. mimalloc, the binary's allocator, would keep most of
/// it until later allocations (BENCHMARKS.md, "Figures behind the code").
pub(super) fn return_freed_memory() {
    // SAFETY: takes no pointers and may be called at any time; with another
    // global allocator (the tests') mimalloc's own empty heap is collected.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// `items` split into one share per core, by value.
pub(super) fn shares_per_core<T>(mut items: Vec<T>) -> Vec<Vec<T>> {
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
pub(super) fn on_every_core<T: Sync, R: Send>(
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
pub(super) fn graph_error(what: &str, err: impl std::fmt::Display) -> Error {
    Error::Index(format!("hnsw {what}: {err}"))
}

pub(super) fn new_graph(
    params: HnswParams,
    dimension: usize,
    points: usize,
) -> Result<usearch::Index> {
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
pub(super) fn use_our_dot(graph: &mut usearch::Index, dimension: usize) {
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
    /// Its [`VectorStore::kind`].
    pub const KIND: &'static str = "hnsw";

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
                                // OS now, not at mimalloc's convenience,
                                // which lets a large build's peak vary.
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
        self.unreachable.add_stranded(lost, Self::KIND)
    }

    /// Loads a graph dumped by [`VectorStore::dump`] for exactly `items`:
    /// [`check_dump`](Self::check_dump), then
    /// [`open_checked`](Self::open_checked).
    pub fn load(
        params: HnswParams,
        dimension: usize,
        dir: &Path,
        dump: &HnswDump,
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
        dump: &HnswDump,
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
        dump: &HnswDump,
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
        if !super::worth_compacting(self.removed, self.live.len() + self.removed) {
            return Ok(());
        }
        *self = Self::build(self.params, self.dimension, self.items())?;
        Ok(())
    }
}

impl VectorStore for HnswIndex {
    fn kind(&self) -> &'static str {
        Self::KIND
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

    fn search_among(&self, query: &[f32], k: usize, ids: &[u64]) -> Vec<ScoredId> {
        let query = normalize(query.to_vec());
        let mut half = Vec::with_capacity(query.len());
        to_half(&query, 1.0, &mut half);
        let dot_half = dot_half_kernel();
        let hits = ids
            .iter()
            .filter_map(|&id| {
                let v = self.half_vector(id)?;
                Some(ScoredId {
                    id,
                    score: dot_half(&half, &v),
                })
            })
            .collect();
        top_k(hits, k)
    }

    fn dump(&self, dir: &Path) -> Result<Option<HnswDump>> {
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
        Ok(Some(HnswDump {
            dir: String::new(),
            basename,
            unreachable,
            files: vec![DumpFile { name, bytes, crc32 }],
            vectors_crc32: Some(vectors_crc32),
        }))
    }
}
