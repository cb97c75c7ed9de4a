//! The data directory's manifest: what the stored index was built with
//! (model, chunker, corpus fingerprint, generation) and where its HNSW dump
//! is. Written atomically (temp file, fsync, rename, fsync of the folder)
//! after every committed change, so it never describes a half-written dump.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

/// Where a graph dump lives and what a reload needs besides the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HnswDump {
    /// Folder name inside the data directory.
    pub dir: String,
    /// Graph file basename inside `dir` (`<basename>.usearch`).
    pub basename: String,
    /// Points the graph cannot reach, searched exactly.
    pub unreachable: Vec<u64>,
    /// Each dump file's name, length and CRC-32, checked before the graph
    /// library reads the file: it trusts the lengths inside. Dumps from
    /// before the check (empty) or from the earlier hnsw_rs graph (other
    /// file names) fail the check, and the graph is rebuilt.
    #[serde(default)]
    pub files: Vec<DumpFile>,
    /// CRC-32 of the graph's vectors (ids ascending, each id then its
    /// half-precision vector), so a restart checks the stored vectors
    /// against the dump without reading the graph. Dumps from before it
    /// (none) are rebuilt.
    #[serde(default)]
    pub vectors_crc32: Option<u32>,
}

/// One file of an [`HnswDump`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpFile {
    pub name: String,
    pub bytes: u64,
    pub crc32: u32,
}

impl Manifest {
    pub fn read(data_dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(data_dir.join(FILE_NAME)).ok()?;
        match serde_json::from_str(&text) {
            Ok(m) => Some(m),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Manifest::read(dir.path()).is_none());
        let mut m = Manifest {
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
            hnsw: Some(HnswDump {
                dir: "hnsw-g3".into(),
                basename: "index".into(),
                unreachable: vec![7],
                files: vec![DumpFile {
                    name: "index.usearch".into(),
                    bytes: 10,
                    crc32: 0xdead_beef,
                }],
                vectors_crc32: Some(0x1234_5678),
            }),
        };
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
}
