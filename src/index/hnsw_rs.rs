//! The HNSW graph of `hnsw_rs`, the design's first choice, kept selectable
//! (`--index hnsw_rs`) beside USearch, which replaced it as the default on
//! measured grounds (docs/scaling.md; BENCHMARKS.md compares the two in one
//! run). The same contract as [`super::HnswIndex`]: normalised vectors, a
//! self-search check with an exact side list for points the graph cannot
//! reach (hnsw_rs can strand some: upstream issue #37), tombstones with
//! compaction, and CRC-checked dumps trusted only for the stored vectors.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use hnsw_rs::prelude::{AnnT, Distance, Hnsw, HnswIo, PointId};

use super::dump::{DumpFile, HnswDump, file_crc32};
use super::exact::ExactIndex;
use super::kernels::{dot, normalize};
use super::{HnswParams, ScoredId, VectorStore, check_dimension, top_k};
use crate::error::{Error, Result};

/// Cosine distance (1 − dot) for the unit vectors the index holds: one dot
/// product where hnsw_rs's `DistCosine` computes three, clamped at 0 where
/// its `DistDot` asserts (rounding can put a vector's dot with itself a
/// hair above 1).
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

/// An hnsw_rs graph, its tombstones and its exact side list.
pub struct HnswRsIndex {
    params: HnswParams,
    dimension: usize,
    graph: Graph,
    /// Live passage ids, each with its place in the graph (for exact
    /// scoring of a filter's few matches); a point on the side list may
    /// have none.
    live: HashMap<u64, Option<PointId>>,
    /// Removed ids: their nodes stay in the graph until a compaction.
    removed: HashSet<u64>,
    unreachable: ExactIndex,
}

fn new_graph(params: HnswParams, capacity: usize) -> Graph {
    // hnsw_rs's own layer limit; a point reaches layer l with probability
    // M^-l, so 16 layers are never filled.
    Hnsw::new(
        params.m,
        capacity.max(1024),
        16,
        params.ef_construction,
        UnitCosine,
    )
}

impl HnswRsIndex {
    /// Its [`VectorStore::kind`].
    pub const KIND: &'static str = "hnsw_rs";

    /// Builds the graph on every core, then checks every point is found by
    /// its own vector and moves the ones that are not to the exact side list.
    pub fn build(
        params: HnswParams,
        dimension: usize,
        items: Vec<(u64, Vec<f32>)>,
    ) -> Result<Self> {
        params.validate()?;
        let mut seen = HashSet::with_capacity(items.len());
        for (id, v) in &items {
            check_dimension(dimension, v)?;
            if !seen.insert(*id) {
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
        drop(items);
        let mut index = Self::around(params, dimension, graph);
        index.index_points();
        index.repair_unreachable()?;
        Ok(index)
    }

    /// An index around `graph`, its points not yet recorded.
    fn around(params: HnswParams, dimension: usize, graph: Graph) -> Self {
        Self {
            params,
            dimension,
            graph,
            live: HashMap::new(),
            removed: HashSet::new(),
            unreachable: ExactIndex::new(dimension),
        }
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

    /// Records every graph point's place as live.
    fn index_points(&mut self) {
        self.live = self
            .points()
            .iter()
            .map(|p| (p.get_origin_id() as u64, Some(p.get_point_id())))
            .collect();
    }

    fn ef(&self, k: usize) -> usize {
        self.params.ef_search_for(self.live.len()).max(k)
    }

    /// The graph's own top hit for `vector`, when it is `id` (or a point
    /// with the very same vector): where `id` sits.
    fn finds_itself(&self, id: u64, vector: &[f32]) -> Option<PointId> {
        self.graph
            .search(vector, 1, self.ef(1))
            .first()
            .filter(|n| n.d_id as u64 == id || n.distance <= 1e-6)
            .map(|n| n.p_id)
    }

    /// Points not found by their own vector move to the exact list.
    fn repair_unreachable(&mut self) -> Result<usize> {
        let points = self.points();
        let this: &Self = self;
        let lost: Vec<(u64, Vec<f32>)> = super::hnsw::on_every_core(&points, |part| {
            part.iter()
                .filter(|p| {
                    let id = p.get_origin_id() as u64;
                    this.live.contains_key(&id) && this.finds_itself(id, p.get_v()).is_none()
                })
                .map(|p| (p.get_origin_id() as u64, p.get_v().to_vec()))
                .collect::<Vec<_>>()
        })
        .into_iter()
        .flat_map(|share| share.unwrap_or_default())
        .collect();
        self.unreachable.add_stranded(lost, Self::KIND)
    }

    /// Loads a graph [`VectorStore::dump`] wrote, for exactly `items` (the
    /// same ids with the same vectors). A damaged or foreign dump is an
    /// error, never a crash: the caller rebuilds.
    pub fn load(
        params: HnswParams,
        dimension: usize,
        dir: &Path,
        dump: &HnswDump,
        items: &[(u64, Vec<f32>)],
    ) -> Result<Self> {
        params.validate()?;
        let unusable = |why: String| Error::Index(format!("{}: {why}", dir.display()));
        for suffix in DUMP_SUFFIXES {
            let name = format!("{}.{suffix}", dump.basename);
            let expected = dump
                .files
                .iter()
                .find(|f| f.name == name)
                .ok_or_else(|| unusable(format!("dump records no checksum for {name}")))?;
            let (bytes, crc32) =
                file_crc32(&dir.join(&name)).map_err(|e| unusable(format!("{name}: {e}")))?;
            if (bytes, crc32) != (expected.bytes, expected.crc32) {
                return Err(unusable(format!(
                    "{name} is damaged (length or CRC-32 differs)"
                )));
            }
        }
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
            Err(_) => return Err(unusable("malformed hnsw_rs dump".into())),
        };
        if graph.get_nb_point() != items.len()
            || graph.get_max_nb_connection() as usize != params.m
            || (!items.is_empty() && graph.get_point_indexation().get_data_dimension() != dimension)
        {
            return Err(unusable(
                "dump does not match the stored vectors or parameters".into(),
            ));
        }
        let mut index = Self::around(params, dimension, graph);
        let wanted: HashMap<u64, &[f32]> =
            items.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        for point in index.points() {
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
        index.index_points();
        for id in &dump.unreachable {
            let v = wanted
                .get(id)
                .ok_or_else(|| unusable(format!("dump names unknown passage {id}")))?;
            index.unreachable.insert(*id, normalize(v.to_vec()))?;
        }
        Ok(index)
    }

    /// Copies of the live vectors (normalised), in no particular order.
    pub fn items(&self) -> Vec<(u64, Vec<f32>)> {
        self.points()
            .into_iter()
            .filter(|p| self.live.contains_key(&(p.get_origin_id() as u64)))
            .map(|p| (p.get_origin_id() as u64, p.get_v().to_vec()))
            .collect()
    }

    /// Points on the exact side list.
    pub fn unreachable_len(&self) -> usize {
        self.unreachable.len()
    }

    /// Rebuilds without the removed points once they are a quarter of the graph.
    fn compact_if_needed(&mut self) -> Result<()> {
        if !super::worth_compacting(self.removed.len(), self.graph.get_nb_point()) {
            return Ok(());
        }
        *self = Self::build(self.params, self.dimension, self.items())?;
        Ok(())
    }
}

impl VectorStore for HnswRsIndex {
    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn len(&self) -> usize {
        self.live.len()
    }

    fn insert(&mut self, id: u64, vector: Vec<f32>) -> Result<()> {
        check_dimension(self.dimension, &vector)?;
        if self.live.contains_key(&id) || self.removed.contains(&id) {
            // A removed id still has a node in the graph: ids are never reused.
            return Err(Error::Index(format!("passage id {id} was already used")));
        }
        let vector = normalize(vector);
        self.graph.insert_slice((&vector, id as usize));
        let place = self.finds_itself(id, &vector);
        if place.is_none() {
            self.unreachable.insert(id, vector)?;
        }
        self.live.insert(id, place);
        Ok(())
    }

    fn remove(&mut self, id: u64) {
        if self.live.remove(&id).is_some() {
            self.removed.insert(id);
            self.unreachable.remove(id);
            if let Err(err) = self.compact_if_needed() {
                tracing::error!(%err, "hnsw_rs compaction failed; removed points stay filtered");
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
        let mut hits: Vec<ScoredId> = self
            .graph
            .search_filter(&query, k, self.ef(k), Some(&pass))
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

    fn search_among(&self, query: &[f32], k: usize, ids: &[u64]) -> Vec<ScoredId> {
        let query = normalize(query.to_vec());
        let points = self.graph.get_point_indexation();
        let mut hits = Vec::with_capacity(ids.len());
        let mut stranded = Vec::new();
        for id in ids {
            match self.live.get(id) {
                Some(Some(place)) => {
                    if let Some(v) = points.get_point_data(place) {
                        hits.push(ScoredId {
                            id: *id,
                            score: dot(&query, &v),
                        });
                    }
                }
                Some(None) => stranded.push(*id),
                None => {}
            }
        }
        hits.extend(self.unreachable.search_among(&query, k, &stranded));
        top_k(hits, k)
    }

    fn dump(&self, dir: &Path) -> Result<Option<HnswDump>> {
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
            files.push(DumpFile { name, bytes, crc32 });
        }
        let mut unreachable: Vec<u64> = self.unreachable.ids.clone();
        unreachable.sort_unstable();
        Ok(Some(HnswDump {
            dir: String::new(),
            basename,
            unreachable,
            files,
            vectors_crc32: None,
        }))
    }
}
