//! The in-memory state a store is loaded into: documents, passages, the
//! vector index, BM25 statistics and language centroids, and the writes
//! applied to it in place.

use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use tracing::info;

use super::EngineConfig;
use super::persist::Manifest;
use crate::embed::LanguageCentroids;
use crate::error::Result;
use crate::index::VectorStore;
use crate::lexical::LexicalIndex;
use crate::store::{Snapshot, StoredDocument, StoredPassage, WriteBatch};

pub(super) struct State {
    pub(super) documents: BTreeMap<String, StoredDocument>,
    pub(super) passages: HashMap<u64, StoredPassage>,
    pub(super) index: Box<dyn VectorStore>,
    pub(super) lexical: LexicalIndex,
    /// Per-language mean passage vector, for removing language identity.
    pub(super) centroids: LanguageCentroids,
    /// Passages per language: the languages a query's language is guessed
    /// among.
    pub(super) languages: BTreeMap<String, usize>,
    /// Passages the centroids and the lexical statistics were estimated
    /// from, and passages added or removed in place since then.
    pub(super) estimated_from: usize,
    pub(super) changed_since_estimate: usize,
    pub(super) generation: u64,
    /// A committed write could not be brought into memory: the next write
    /// reloads the whole store instead of updating in place.
    pub(super) behind_store: bool,
    /// Whole-state rebuilds since start-up (for tests and logs).
    pub(super) rebuilds: u64,
    /// The manifest named a graph dump that could not be used (damaged, or
    /// from another version): a new one is due, or every start rebuilds.
    pub(super) dump_unusable: bool,
}

/// Writes changing more than this share of the passages the centroids were
/// estimated from rebuild the whole state: centroids and BM25 statistics are
/// re-estimated, so they never drift more than this from the true ones.
pub(super) const MAX_DRIFT: f32 = 0.25;

impl State {
    /// Applies a committed write in place: removed and replaced documents'
    /// passages leave the index, new ones are centred with the current
    /// centroids and inserted.
    pub(super) fn apply_write(&mut self, batch: WriteBatch, center: bool) -> Result<()> {
        let replaced: Vec<String> = batch.put.iter().map(|(d, _)| d.id.clone()).collect();
        for id in batch.delete.iter().chain(&replaced) {
            if let Some(old) = self.documents.remove(id) {
                for pid in old.passage_ids {
                    if let Some(p) = self.passages.remove(&pid) {
                        count_language(&mut self.languages, &p.language, false);
                    }
                    self.index.remove(pid);
                    self.lexical.remove(pid);
                    self.changed_since_estimate += 1;
                }
            }
        }
        for (doc, rows) in batch.put {
            for (passage, vector) in rows {
                let vector = if center {
                    self.centroids.center(&vector, &passage.language)
                } else {
                    vector
                };
                self.index.insert(passage.id, vector)?;
                self.lexical.upsert(passage.id, &passage.text);
                count_language(&mut self.languages, &passage.language, true);
                self.passages.insert(passage.id, passage);
                self.changed_since_estimate += 1;
            }
            self.documents.insert(doc.id.clone(), doc);
        }
        Ok(())
    }

    /// Passages the write would add or remove.
    pub(super) fn passages_changed_by(&self, batch: &WriteBatch) -> usize {
        let removed: usize = batch
            .delete
            .iter()
            .chain(batch.put.iter().map(|(d, _)| &d.id))
            .filter_map(|id| self.documents.get(id))
            .map(|d| d.passage_ids.len())
            .sum();
        removed + batch.put.iter().map(|(_, rows)| rows.len()).sum::<usize>()
    }
}

impl State {
    pub(super) fn load(
        config: &EngineConfig,
        dimension: usize,
        snapshot: Snapshot,
        manifest: Option<Manifest>,
    ) -> Result<State> {
        let started = Instant::now();
        let generation = super::persist::store_generation(&snapshot);
        // A dump is trusted only for the generation it was written for.
        let dump = manifest
            .filter(|m| m.generation == generation)
            .and_then(|m| m.hnsw);
        let mut passages = HashMap::with_capacity(snapshot.passages.len());
        let mut items = Vec::with_capacity(snapshot.passages.len());
        for (passage, vector) in snapshot.passages {
            items.push((passage.id, vector));
            passages.insert(passage.id, passage);
        }
        let centroids = if config.center_languages {
            let centroids = LanguageCentroids::estimate(
                items
                    .iter()
                    .map(|(id, v)| (passages[id].language.as_str(), v.as_slice())),
            );
            for (id, v) in &mut items {
                *v = centroids.center(v, &passages[id].language);
            }
            centroids
        } else {
            LanguageCentroids::default()
        };
        let dump_dir = dump.as_ref().map(|d| config.data_dir.join(&d.dir));
        let (index, from_dump) = crate::index::build(
            &config.index,
            dimension,
            items,
            dump_dir.as_deref().zip(dump.as_ref()),
        )?;
        let lexical = LexicalIndex::build(
            passages.values().map(|p| (p.id, p.text.as_str())),
            config.lexicon.clone(),
        );
        publish_gauges(&passages, &snapshot.documents);
        publish_sequence(generation);
        let mut languages = BTreeMap::new();
        for p in passages.values() {
            count_language(&mut languages, &p.language, true);
        }
        info!(
            documents = snapshot.documents.len(),
            passages = passages.len(),
            index = index.kind(),
            ms = started.elapsed().as_millis() as u64,
            "index loaded"
        );
        Ok(State {
            estimated_from: passages.len(),
            documents: snapshot
                .documents
                .into_iter()
                .map(|d| (d.id.clone(), d))
                .collect(),
            passages,
            index,
            changed_since_estimate: 0,
            lexical,
            centroids,
            languages,
            generation,
            behind_store: false,
            rebuilds: 0,
            dump_unusable: dump.is_some() && !from_dump,
        })
    }
}

fn count_language(counts: &mut BTreeMap<String, usize>, language: &str, add: bool) {
    if add {
        *counts.entry(language.to_string()).or_default() += 1;
    } else if let Some(n) = counts.get_mut(language) {
        *n -= 1;
        if *n == 0 {
            counts.remove(language);
        }
    }
}

// A panic while holding the lock cannot leave the state half-changed
// (changes are applied after the store commit, and a failed in-place update
// is followed by a full reload), so a poisoned lock is still safe to use.
pub(super) fn read_lock(state: &RwLock<State>) -> RwLockReadGuard<'_, State> {
    state.read().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn write_lock(state: &RwLock<State>) -> RwLockWriteGuard<'_, State> {
    state.write().unwrap_or_else(PoisonError::into_inner)
}

/// Documents and passages per language, for the metrics endpoint.
/// The store generation the state reflects: replicas of one shared store
/// agree once each has applied every write.
pub(super) fn publish_sequence(generation: u64) {
    metrics::gauge!("wenda_store_applied_sequence").set(generation as f64);
}

pub(super) fn publish_gauges<'a>(
    passages: &HashMap<u64, StoredPassage>,
    documents: impl IntoIterator<Item = &'a StoredDocument>,
) {
    let mut per_language: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for d in documents {
        per_language.entry(d.language.as_str()).or_default().0 += 1.0;
    }
    for p in passages.values() {
        per_language.entry(p.language.as_str()).or_default().1 += 1.0;
    }
    for (language, (docs, chunks)) in per_language {
        metrics::gauge!("wenda_documents", "language" => language.to_string()).set(docs);
        metrics::gauge!("wenda_passages", "language" => language.to_string()).set(chunks);
    }
}
