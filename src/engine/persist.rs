//! The data directory's files besides the store: the manifest (what the
//! stored index was built with, its generation, where its HNSW dump is) and
//! the dumps themselves. Written atomically (temp file or folder, fsync,
//! rename, fsync of the folder) after every committed change, so the
//! manifest never names a half-written dump.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use super::EngineConfig;
use super::state::State;
use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::index::HnswDump;
use crate::ingest::{self, ChunkConfig};
use crate::store::{META_GENERATION, Snapshot, StoredDocument};

pub const FILE_NAME: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub model: String,
    pub model_fingerprint: String,
    pub chunker_version: String,
    pub chunk_tokens: usize,
    pub chunk_overlap: usize,
    /// SHA-256 over the sorted (id, content hash) pairs of every document.
    pub corpus_fingerprint: String,
    /// The store generation this manifest describes.
    pub generation: u64,
    pub documents: usize,
    pub passages: usize,
    pub index_kind: String,
    /// The HNSW dump of this generation, when the index is a graph.
    pub hnsw: Option<HnswDump>,
}

impl Manifest {
    pub fn read(data_dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(data_dir.join(FILE_NAME)).ok()?;
        match serde_json::from_str::<Self>(&text) {
            Ok(mut m) => {
                // Names in a data file never lead out of the data directory:
                // a dump named by a path is not opened (the graph is built
                // from the store instead).
                if let Some(dump) = m.hnsw.as_ref().filter(|d| !d.names_are_plain()) {
                    tracing::warn!(
                        dir = %dump.dir,
                        basename = %dump.basename,
                        "the manifest names a graph dump outside the data directory; ignoring the dump"
                    );
                    m.hnsw = None;
                }
                Some(m)
            }
            Err(err) => {
                // A stale or foreign manifest only costs a rebuild of the index.
                tracing::warn!(%err, "ignoring unreadable manifest");
                None
            }
        }
    }

    pub fn write(&self, data_dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Storage(e.to_string()))?;
        write_atomic(&data_dir.join(FILE_NAME), &bytes)
    }
}

/// The store's generation: the number of writes ever committed to it.
pub(super) fn store_generation(snapshot: &Snapshot) -> u64 {
    snapshot
        .meta
        .get(META_GENERATION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// SHA-256 over the sorted (id, content hash) pairs of `documents`.
fn corpus_fingerprint<'a>(documents: impl Iterator<Item = &'a StoredDocument>) -> String {
    let mut ids: Vec<(&String, &String)> = documents.map(|d| (&d.id, &d.content_hash)).collect();
    ids.sort();
    let mut corpus = Sha256::new();
    for (id, hash) in ids {
        corpus.update(id.as_bytes());
        corpus.update([0u8]);
        corpus.update(hash.as_bytes());
    }
    hex::encode(corpus.finalize())
}

/// Checks that the store is the one the manifest was written for. The
/// manifest is written after every commit, so it may lag the store by one
/// write (a crash between the two), but never lead it: a store behind its
/// manifest, or a different store at the same generation, was lost,
/// truncated or replaced, and serving it would silently drop what clients
/// were told is stored.
pub(super) fn check_agreement(manifest: &Manifest, snapshot: &Snapshot) -> Result<()> {
    let generation = store_generation(snapshot);
    let problem = if generation < manifest.generation {
        format!("the store is at generation {generation}, behind the manifest")
    } else if generation == manifest.generation
        && (snapshot.documents.len() != manifest.documents
            || corpus_fingerprint(snapshot.documents.iter()) != manifest.corpus_fingerprint)
    {
        format!(
            "the store at generation {generation} holds other documents than the manifest lists"
        )
    } else {
        return Ok(());
    };
    Err(Error::Storage(format!(
        "{problem}: the manifest describes generation {} with {} documents, the store holds {} \
         documents; wenda.redb was lost, truncated or replaced. Restore it from a backup, or \
         start with --recover to serve the store as it is",
        manifest.generation,
        manifest.documents,
        snapshot.documents.len()
    )))
}

/// Documents whose text no longer matches their content hash: changed in
/// the database file by something other than wenda.
pub fn altered_documents(snapshot: &Snapshot) -> Vec<String> {
    snapshot
        .documents
        .iter()
        .filter(|d| ingest::content_hash(&d.text) != d.content_hash)
        .map(|d| d.id.clone())
        .collect()
}

/// Writes a file so readers see the old or the new contents, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let io = |e: std::io::Error| Error::Io(format!("{}: {e}", path.display()));
    {
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    sync_dir(dir)
}

/// Makes a rename in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::Io(format!("{}: {e}", dir.display())))
}

/// The model and chunker the stored passages were made with; when either
/// changes, stored documents are re-chunked and re-embedded.
pub(super) fn layout_fingerprint(embedder: &Embedder, chunk: &ChunkConfig) -> String {
    // The precision is named as well as hashed (the fingerprint covers only
    // the files loaded): vectors from int8 and fp32 never share an index.
    format!(
        "{}|{}|{}|{}|{}/{}",
        embedder.manifest().name,
        embedder.manifest().precision,
        embedder.manifest().fingerprint(),
        ingest::CHUNKER_VERSION,
        chunk.max_tokens,
        chunk.overlap_tokens
    )
}

pub(super) const META_LAYOUT: &str = "layout";

/// Writes the manifest for `state`, with a fresh HNSW dump when the index is
/// a graph: dump into a temporary folder, rename it into place, then point
/// the manifest at it, then remove older dumps. A crash at any step leaves a
/// manifest that names a complete dump, or one that a restart ignores.
pub(super) fn persist_manifest(
    config: &EngineConfig,
    embedder: &Embedder,
    state: &State,
) -> Result<()> {
    let data_dir = &config.data_dir;
    let name = format!("hnsw-g{}", state.generation);
    let tmp = data_dir.join(format!(".{name}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    // The dump only saves start-up time: failing to write one is not worth
    // failing a committed change for.
    let dumped = state.index.dump(&tmp).unwrap_or_else(|err| {
        tracing::warn!(%err, "could not dump the hnsw graph; it will be rebuilt at start-up");
        None
    });
    let hnsw = match dumped {
        Some(mut dump) => {
            let target = data_dir.join(&name);
            if target.exists() {
                std::fs::remove_dir_all(&target)?;
            }
            std::fs::rename(&tmp, &target)?;
            sync_dir(data_dir)?;
            dump.dir = name.clone();
            Some(dump)
        }
        None => {
            std::fs::remove_dir_all(&tmp)?;
            None
        }
    };
    Manifest {
        format: 1,
        model: embedder.manifest().name.clone(),
        model_fingerprint: embedder.manifest().fingerprint(),
        chunker_version: ingest::CHUNKER_VERSION.to_string(),
        chunk_tokens: config.chunk.max_tokens,
        chunk_overlap: config.chunk.overlap_tokens,
        corpus_fingerprint: corpus_fingerprint(state.documents.values()),
        generation: state.generation,
        documents: state.documents.len(),
        passages: state.passages.len(),
        index_kind: state.index.kind().to_string(),
        hnsw,
    }
    .write(data_dir)?;
    // Older dumps are no longer named by the manifest.
    for entry in std::fs::read_dir(data_dir)?.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with("hnsw-g") && file_name != name {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::DumpFile;

    fn dump() -> HnswDump {
        HnswDump {
            dir: "hnsw-g3".into(),
            basename: "index".into(),
            unreachable: vec![7],
            files: vec![DumpFile {
                name: "index.usearch".into(),
                bytes: 10,
                crc32: 0xdead_beef,
            }],
            vectors_crc32: Some(0x1234_5678),
        }
    }

    fn manifest(dump: HnswDump) -> Manifest {
        Manifest {
            format: 1,
            model: "m".into(),
            model_fingerprint: "f".into(),
            chunker_version: "c".into(),
            chunk_tokens: 160,
            chunk_overlap: 48,
            corpus_fingerprint: "x".into(),
            generation: 3,
            documents: 1,
            passages: 2,
            index_kind: "hnsw".into(),
            hnsw: Some(dump),
        }
    }

    #[test]
    fn round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Manifest::read(dir.path()).is_none());
        let mut m = manifest(dump());
        m.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), m);
        m.generation = 4;
        m.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap().generation, 4);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        std::fs::write(dir.path().join(FILE_NAME), "{ garbage").unwrap();
        assert!(Manifest::read(dir.path()).is_none());
    }

    /// A manifest naming a dump outside the data directory (`../elsewhere`,
    /// an absolute path, a nested file) is read without its dump, so
    /// nothing outside the data directory is opened.
    #[test]
    fn dump_paths_never_lead_outside_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        manifest(dump()).write(dir.path()).unwrap();
        assert!(Manifest::read(dir.path()).unwrap().hnsw.is_some());
        let bad: [fn(&mut HnswDump); 5] = [
            |d| d.dir = "../elsewhere".into(),
            |d| d.dir = "/tmp/elsewhere".into(),
            |d| d.dir = "hnsw-g1/../../x".into(),
            |d| d.basename = "../index".into(),
            |d| d.files[0].name = "sub/index.usearch".into(),
        ];
        for change in bad {
            let mut d = dump();
            change(&mut d);
            manifest(d.clone()).write(dir.path()).unwrap();
            let read = Manifest::read(dir.path()).unwrap();
            assert_eq!(read.hnsw, None, "{d:?}");
            assert_eq!(read.generation, 3);
        }
    }
}
