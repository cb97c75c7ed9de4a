//! Vector search behind the [`VectorStore`] trait: an `hnsw_rs` graph for
//! large corpora and an exact scan for small ones, where scanning every
//! vector is both exact and cheaper than walking a graph.
//!
//! The trait is also the seam for scaling out: a distributed engine (a
//! Qdrant cluster, see docs/scaling.md) would be another implementation.

use std::collections::{HashMap, HashSet};

use std::path::Path;

use hnsw_rs::prelude::{AnnT, DistCosine, Hnsw, HnswIo};

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

/// HNSW parameters, validated before hnsw_rs sees them (it exits the process
/// when M is over 256).
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
            ef_construction: 200,
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

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
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

/// An hnsw_rs graph with tombstones for removals, and an exact side list
/// for points the graph cannot reach from its entry point (hnsw_rs can
/// leave some unreachable: upstream issue #37), so every live vector stays
/// findable.
pub struct HnswIndex {
    params: HnswParams,
    dimension: usize,
    graph: Hnsw<'static, f32, DistCosine>,
    vectors: HashMap<u64, Vec<f32>>,
    removed: HashSet<u64>,
    unreachable: ExactIndex,
}

impl HnswIndex {
    /// Builds the graph in parallel, then checks every point is found by its
    /// own vector and moves the ones that are not to the exact side list.
    pub fn build(
        params: HnswParams,
        dimension: usize,
        items: Vec<(u64, Vec<f32>)>,
    ) -> Result<Self> {
        params.validate()?;
        for (_, v) in &items {
            check_dimension(dimension, v)?;
        }
        let graph = new_graph(params, items.len());
        let refs: Vec<(&[f32], usize)> = items
            .iter()
            .map(|(id, v)| (v.as_slice(), *id as usize))
            .collect();
        graph.parallel_insert_slice(&refs);
        let mut index = Self {
            params,
            dimension,
            graph,
            vectors: items.into_iter().collect(),
            removed: HashSet::new(),
            unreachable: ExactIndex::new(dimension),
        };
        index.repair_unreachable()?;
        Ok(index)
    }

    /// Points not found by their own vector; they move to the exact list.
    fn repair_unreachable(&mut self) -> Result<usize> {
        let lost: Vec<u64> = self
            .vectors
            .iter()
            .filter(|(id, v)| !self.finds_itself(**id, v))
            .map(|(id, _)| *id)
            .collect();
        for id in &lost {
            if self.unreachable.position.contains_key(id) {
                continue;
            }
            self.unreachable.insert(*id, self.vectors[id].clone())?;
        }
        if !lost.is_empty() {
            tracing::warn!(
                points = lost.len(),
                "hnsw points unreachable from the entry point; searched exactly"
            );
        }
        Ok(lost.len())
    }

    /// Loads a graph dumped by [`VectorStore::dump`] for exactly `items`.
    pub fn load(
        params: HnswParams,
        dimension: usize,
        dir: &Path,
        dump: &crate::manifest::HnswDump,
        items: &[(u64, Vec<f32>)],
    ) -> Result<Self> {
        params.validate()?;
        // hnsw_rs ties the loaded graph's lifetime to its loader; the loader
        // is small and a graph is loaded once per start, so it is leaked to
        // give the graph a 'static lifetime.
        let loader: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, &dump.basename)));
        let graph: Hnsw<'static, f32, DistCosine> = loader
            .load_hnsw()
            .map_err(|e| Error::Index(format!("{}: {e}", dir.display())))?;
        if graph.get_nb_point() != items.len() || graph.get_max_nb_connection() as usize != params.m
        {
            return Err(Error::Index(
                "dump does not match the stored vectors or parameters".into(),
            ));
        }
        let mut unreachable = ExactIndex::new(dimension);
        let vectors: HashMap<u64, Vec<f32>> = items.iter().cloned().collect();
        for id in &dump.unreachable {
            let v = vectors
                .get(id)
                .ok_or_else(|| Error::Index(format!("dump names unknown passage {id}")))?;
            unreachable.insert(*id, v.clone())?;
        }
        Ok(Self {
            params,
            dimension,
            graph,
            vectors,
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

    /// Rebuilds without the removed points once they are a quarter of the graph.
    fn compact_if_needed(&mut self) -> Result<()> {
        if self.removed.len() * 4 < self.graph.get_nb_point().max(64) {
            return Ok(());
        }
        let items: Vec<(u64, Vec<f32>)> = self
            .vectors
            .iter()
            .map(|(id, v)| (*id, v.clone()))
            .collect();
        *self = Self::build(self.params, self.dimension, items)?;
        Ok(())
    }
}

fn new_graph(params: HnswParams, capacity: usize) -> Hnsw<'static, f32, DistCosine> {
    let max_layer = 16;
    Hnsw::new(
        params.m,
        capacity.max(1024),
        max_layer,
        params.ef_construction,
        DistCosine {},
    )
}

impl VectorStore for HnswIndex {
    fn kind(&self) -> &'static str {
        "hnsw"
    }

    fn len(&self) -> usize {
        self.vectors.len()
    }

    fn insert(&mut self, id: u64, vector: Vec<f32>) -> Result<()> {
        check_dimension(self.dimension, &vector)?;
        if self.vectors.contains_key(&id) || self.removed.contains(&id) {
            // A removed id still has a node in the graph: ids are never reused.
            return Err(Error::Index(format!("passage id {id} was already used")));
        }
        self.graph.insert_slice((&vector, id as usize));
        if !self.finds_itself(id, &vector) {
            self.unreachable.insert(id, vector.clone())?;
        }
        self.vectors.insert(id, vector);
        Ok(())
    }

    fn remove(&mut self, id: u64) {
        if self.vectors.remove(&id).is_some() {
            self.removed.insert(id);
            self.unreachable.remove(id);
            if let Err(err) = self.compact_if_needed() {
                tracing::error!(%err, "hnsw compaction failed; removed points stay filtered");
            }
        }
    }

    fn search(&self, query: &[f32], k: usize, filter: &dyn Fn(u64) -> bool) -> Vec<ScoredId> {
        let pass = |id: &usize| {
            let id = *id as u64;
            !self.removed.contains(&id) && filter(id)
        };
        let ef = self.params.ef_search.max(k);
        let mut hits: Vec<ScoredId> = self
            .graph
            .search_filter(query, k, ef, Some(&pass))
            .into_iter()
            .map(|n| ScoredId {
                id: n.d_id as u64,
                score: 1.0 - n.distance,
            })
            .collect();
        let seen: HashSet<u64> = hits.iter().map(|h| h.id).collect();
        hits.extend(
            self.unreachable
                .search(query, k, &|id| filter(id) && !seen.contains(&id)),
        );
        top_k(hits, k)
    }

    fn dump(&self, dir: &Path) -> Result<Option<crate::manifest::HnswDump>> {
        if !self.removed.is_empty() || self.vectors.is_empty() {
            // Tombstones live outside the graph (a dump would resurrect
            // them), and an empty graph is cheaper to build than to load.
            return Ok(None);
        }
        let basename = self
            .graph
            .file_dump(dir, "index")
            .map_err(|e| Error::Index(format!("{}: {e}", dir.display())))?;
        for entry in std::fs::read_dir(dir)? {
            std::fs::File::open(entry?.path())?.sync_all()?;
        }
        let mut unreachable: Vec<u64> = self.unreachable.ids.clone();
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
