//! Reads a corpus folder: which files are articles, and which are skipped
//! (binary, invalid UTF-8, empty, too large, unreadable, links that loop or
//! leave the folder), each skip with a warning naming the file.

use std::path::{Path, PathBuf};

use tracing::warn;
use walkdir::WalkDir;

/// File endings read as articles.
pub const ARTICLE_EXTENSIONS: &[&str] = &["txt", "md", "markdown", "html", "htm"];

/// A readable article file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to the corpus root, with '/' separators: the document id.
    pub id: String,
    pub text: String,
}

/// A file that was not indexed, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// The outcome of scanning a corpus folder.
#[derive(Debug, Default)]
pub struct Scan {
    pub files: Vec<SourceFile>,
    pub skipped: Vec<Skipped>,
}

/// Scans `root` for article files, in path order. Fails only when `root`
/// itself cannot be read; problems with single files become `skipped`.
pub fn scan(root: &Path, max_file_bytes: u64) -> std::io::Result<Scan> {
    let root = root.canonicalize()?;
    if !root.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", root.display()),
        ));
    }
    let mut scan = Scan::default();
    // Hidden entries (".git", a mounted ConfigMap's "..data" links) are not
    // descended into: their files are copies or not articles at all.
    let walker = WalkDir::new(&root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                let path = err
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| root.clone());
                skip(
                    &mut scan,
                    path,
                    if err.loop_ancestor().is_some() {
                        "symlink loop".into()
                    } else {
                        err.to_string()
                    },
                );
                continue;
            }
        };
        let path = entry.path();
        if entry.file_type().is_dir() {
            continue;
        }
        let is_article = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ARTICLE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if !is_article {
            continue;
        }
        match read_article(&root, path, max_file_bytes) {
            Ok(text) => {
                let rel = path.strip_prefix(&root).unwrap_or(path);
                let id = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                scan.files.push(SourceFile { id, text });
            }
            Err(reason) => skip(&mut scan, path.to_path_buf(), reason),
        }
    }
    Ok(scan)
}

fn skip(scan: &mut Scan, path: PathBuf, reason: String) {
    warn!(file = %path.display(), %reason, "skipping file");
    scan.skipped.push(Skipped { path, reason });
}

/// Reads one file as an article, or says why it is not one.
fn read_article(root: &Path, path: &Path, max_file_bytes: u64) -> Result<String, String> {
    let real = path
        .canonicalize()
        .map_err(|e| format!("cannot resolve: {e}"))?;
    if !real.starts_with(root) {
        return Err("link points outside the corpus".into());
    }
    let meta = std::fs::metadata(&real).map_err(|e| format!("unreadable: {e}"))?;
    if meta.len() > max_file_bytes {
        return Err(format!(
            "too large: {} bytes, limit {max_file_bytes}",
            meta.len()
        ));
    }
    let bytes = std::fs::read(&real).map_err(|e| format!("unreadable: {e}"))?;
    if bytes.contains(&0) {
        return Err("binary file".into());
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()))?;
    // A byte-order mark is not part of the text users cite.
    let text = text
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(text);
    if text.trim().is_empty() {
        return Err("empty file".into());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_skipped_and_good_ones_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("good.txt"), "Một bài báo tốt.").unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/nested.md"), "# Title\n\nBody.").unwrap();
        std::fs::create_dir_all(root.join(".git/objects")).unwrap();
        std::fs::write(root.join(".git/objects/copy.txt"), "a hidden copy").unwrap();
        std::fs::write(root.join(".hidden.txt"), "hidden").unwrap();
        std::os::unix::fs::symlink(root.join("sub"), root.join("..data")).unwrap();
        std::fs::write(root.join("binary.txt"), b"abc\0def").unwrap();
        std::fs::write(root.join("latin1.txt"), b"caf\xe9").unwrap();
        std::fs::write(root.join("empty.txt"), " \n ").unwrap();
        std::fs::write(root.join("big.txt"), "x".repeat(2000)).unwrap();
        std::fs::write(root.join("image.png"), b"\x89PNG").unwrap();
        std::os::unix::fs::symlink(root, root.join("sub/loop")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("outside.txt")).unwrap();

        let scan = scan(root, 1000).unwrap();
        let ids: Vec<&str> = scan.files.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["good.txt", "sub/nested.md"]);
        let mut reasons: Vec<String> = scan
            .skipped
            .iter()
            .map(|s| {
                format!(
                    "{}: {}",
                    s.path.file_name().unwrap().to_string_lossy(),
                    s.reason
                )
            })
            .collect();
        reasons.sort();
        assert_eq!(reasons.len(), 6, "{reasons:?}");
        assert!(reasons[0].starts_with("big.txt: too large"), "{reasons:?}");
        assert!(reasons[1].starts_with("binary.txt: binary"));
        assert!(reasons[2].starts_with("empty.txt: empty"));
        assert!(reasons[3].starts_with("latin1.txt: invalid UTF-8"));
        assert!(reasons[4].starts_with("loop: symlink loop"), "{reasons:?}");
        assert!(reasons[5].starts_with("outside.txt: link points outside"));
    }
}
