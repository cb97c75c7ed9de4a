//! Vector search behind the [`VectorStore`] trait: a USearch HNSW graph for large
//! corpora and an exact scan for small ones, where scanning every vector is
//! both exact and cheaper than walking a graph; `hnsw_rs`'s graph on request.
//!
//! The trait is also the seam for scaling out: a distributed engine (a
//! Qdrant cluster, see docs/scaling.md) would be another implementation.

mod dump;
mod exact;
mod hnsw;
mod hnsw_rs;
mod kernels;
#[cfg(test)]
mod tests;

use std::path::Path;

pub use dump::{DumpFile, HnswDump};
pub use exact::ExactIndex;
pub use hnsw::HnswIndex;
pub use hnsw_rs::HnswRsIndex;
pub use kernels::{dot, normalize};

use hnsw::return_freed_memory;

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
    /// The `k` best of `ids` (those live), best first, by scoring each one:
    /// exact, for a filter that lets few vectors through, where a graph
    /// walk would visit many to find them.
    fn search_among(&self, query: &[f32], k: usize, ids: &[u64]) -> Vec<ScoredId>;
    /// Writes the index's own structure into `dir` (a fresh folder) so a
    /// restart can skip building it; `None` when it has nothing worth saving.
    fn dump(&self, _dir: &Path) -> Result<Option<HnswDump>> {
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
    /// The graph of the `hnsw_rs` crate, the design's first choice (USearch
    /// replaced it as `hnsw`: docs/scaling.md).
    #[value(name = "hnsw_rs")]
    HnswRs,
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
pub(super) const EF_SEARCH_GROWTH: f64 = 2.0;

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

/// With `--index auto`, corpora smaller than this are searched exactly.
pub const DEFAULT_EXACT_THRESHOLD: usize = 5_000;

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            kind: IndexKind::Auto,
            hnsw: HnswParams::default(),
            exact_threshold: DEFAULT_EXACT_THRESHOLD,
        }
    }
}

impl IndexConfig {
    /// Whether [`build`] makes a graph for this many vectors.
    fn uses_graph(&self, vectors: usize) -> bool {
        match self.kind {
            IndexKind::Exact => false,
            IndexKind::Hnsw | IndexKind::HnswRs => true,
            IndexKind::Auto => vectors >= self.exact_threshold,
        }
    }

    /// The [`VectorStore::kind`] that [`build`] gives for this many vectors.
    pub fn kind_for(&self, vectors: usize) -> &'static str {
        match self.kind {
            IndexKind::HnswRs => HnswRsIndex::KIND,
            _ if self.uses_graph(vectors) => HnswIndex::KIND,
            _ => ExactIndex::KIND,
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
    dump: Option<(&Path, &HnswDump)>,
) -> Result<(Box<dyn VectorStore>, bool)> {
    config.hnsw.validate()?;
    if config.kind == IndexKind::HnswRs {
        if let Some((dir, dump)) = dump {
            match HnswRsIndex::load(config.hnsw, dimension, dir, dump, &items) {
                Ok(index) => return Ok((Box::new(index), true)),
                Err(err) => tracing::warn!(%err, "hnsw_rs dump unusable; rebuilding the graph"),
            }
        }
        return Ok((
            Box::new(HnswRsIndex::build(config.hnsw, dimension, items)?),
            false,
        ));
    }
    if config.uses_graph(items.len()) {
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

/// Whether a graph with `removed` tombstones among `points` nodes should be
/// rebuilt without them: once they are a quarter of it (and past a small
/// floor, so tiny graphs are not rebuilt for every removal). Both graphs
/// follow this rule.
pub(super) fn worth_compacting(removed: usize, points: usize) -> bool {
    removed * 4 >= points.max(64)
}

/// Keeps the best `k` hits, best first.
pub(super) fn top_k(mut hits: Vec<ScoredId>, k: usize) -> Vec<ScoredId> {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    hits.truncate(k);
    hits
}

pub(super) fn check_dimension(dimension: usize, vector: &[f32]) -> Result<()> {
    if vector.len() != dimension {
        return Err(Error::Index(format!(
            "vector has {} dimensions, index has {dimension}",
            vector.len()
        )));
    }
    Ok(())
}
