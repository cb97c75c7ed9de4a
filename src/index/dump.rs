//! A graph dump's description and checks: which files it wrote with their
//! lengths and CRC-32s, and a CRC-32 over the vectors it holds, so a restart
//! trusts a dump only for exactly the vectors the store holds.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::hnsw::on_every_core;
use super::kernels::Half;

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
    /// library reads the file: it trusts the lengths inside. A dump without
    /// a checksum for its graph file fails the check, and the graph is
    /// rebuilt.
    #[serde(default)]
    pub files: Vec<DumpFile>,
    /// CRC-32 of the graph's vectors (ids ascending, each id then its
    /// half-precision vector), so a restart checks the stored vectors
    /// against the dump without reading the graph. A dump without it is
    /// rebuilt.
    #[serde(default)]
    pub vectors_crc32: Option<u32>,
}

impl HnswDump {
    /// Whether every name the dump gives is one plain file name inside its
    /// folder, and the folder one inside the data directory: a manifest is
    /// data, and data never leads outside the data directory.
    pub fn names_are_plain(&self) -> bool {
        [&self.dir, &self.basename]
            .into_iter()
            .chain(self.files.iter().map(|f| &f.name))
            .all(|name| is_plain_name(name))
    }
}

/// Whether `name` is one plain file name: no separator, no `..`, not absolute.
fn is_plain_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(
        (parts.next(), parts.next()),
        (Some(Component::Normal(_)), None)
    )
}

/// One file of an [`HnswDump`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpFile {
    pub name: String,
    pub bytes: u64,
    pub crc32: u32,
}

/// The file a graph dump writes inside its folder: `<basename>.usearch`.
pub(super) const DUMP_SUFFIX: &str = "usearch";

/// Length and CRC-32 of a file, read in 1 MiB blocks.
pub(super) fn file_crc32(path: &Path) -> std::io::Result<(u64, u32)> {
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
pub(super) fn check_dump_file(dir: &Path, dump: &HnswDump) -> std::result::Result<PathBuf, String> {
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

/// CRC-32 of vectors in half precision, in the order of `entries`: each
/// entry's id (8 bytes, little-endian) then its halves' bits. `half` fills
/// an entry's vector and returns its id (`None`: no vector, no checksum).
/// Computed on every core; the shares' CRCs are combined, so the result is
/// the same as one pass.
pub(super) fn vectors_crc32<T: Sync>(
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
