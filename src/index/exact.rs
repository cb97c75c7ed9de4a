//! The exact index: every live vector scanned per query. Exact, and cheaper
//! than walking a graph for small corpora.

use std::collections::HashMap;

use super::kernels::dot;
use super::{ScoredId, VectorStore, check_dimension, top_k};
use crate::error::{Error, Result};

/// Scans every vector: exact, and fastest for small corpora.
pub struct ExactIndex {
    dimension: usize,
    pub(super) ids: Vec<u64>,
    /// Row-major, `dimension` floats per id.
    pub(super) data: Vec<f32>,
    pub(super) position: HashMap<u64, usize>,
}

impl ExactIndex {
    /// Its [`VectorStore::kind`].
    pub const KIND: &'static str = "exact";

    pub fn new(dimension: usize) -> Self {
        Self {
            dimension,
            ids: Vec::new(),
            data: Vec::new(),
            position: HashMap::new(),
        }
    }
}

impl ExactIndex {
    /// Takes in the points a graph cannot reach from its entry point (found
    /// by a self-search check), so they stay findable; logs how many.
    pub(super) fn add_stranded(
        &mut self,
        lost: Vec<(u64, Vec<f32>)>,
        graph: &str,
    ) -> Result<usize> {
        let count = lost.len();
        for (id, v) in lost {
            self.insert(id, v)?;
        }
        if count > 0 {
            tracing::info!(
                points = count,
                graph,
                "graph points not found by their own vector; searched exactly"
            );
        }
        Ok(count)
    }
}

impl VectorStore for ExactIndex {
    fn kind(&self) -> &'static str {
        Self::KIND
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

    fn search_among(&self, query: &[f32], k: usize, ids: &[u64]) -> Vec<ScoredId> {
        let d = self.dimension;
        let hits = ids
            .iter()
            .filter_map(|id| {
                let i = *self.position.get(id)?;
                Some(ScoredId {
                    id: *id,
                    score: dot(query, &self.data[i * d..(i + 1) * d]),
                })
            })
            .collect();
        top_k(hits, k)
    }
}
