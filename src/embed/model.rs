//! The model as provisioned: its manifest (`<models>/<model>.toml`: name,
//! dimension, prefixes, ONNX file per precision, sha256 of every file) and
//! the checks that the files on disk are the ones it names.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::EmbedKind;
use crate::error::{Error, Result};

/// Which of the model's ONNX files runs: the fp32 graph, or the int8 copy
/// `make setup` quantizes from it (`models/README.md` has the measurements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Precision {
    /// int8 weights (per channel), activations quantized at run time, one
    /// text per model run: faster and smaller than fp32, with vectors close
    /// to fp32's (`models/README.md` and BENCHMARKS.md have the figures).
    #[default]
    Int8,
    /// The converted model as is.
    Fp32,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Int8 => "int8",
            Precision::Fp32 => "fp32",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ONNX file of each precision (`[onnx]` in the manifest).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OnnxFiles {
    #[serde(default = "OnnxFiles::default_fp32")]
    pub file: String,
    #[serde(default = "OnnxFiles::default_int8")]
    pub int8_file: String,
}

impl OnnxFiles {
    fn default_fp32() -> String {
        "model.onnx".into()
    }

    fn default_int8() -> String {
        "model_int8.onnx".into()
    }

    /// The file `precision` loads.
    pub fn file(&self, precision: Precision) -> &str {
        match precision {
            Precision::Int8 => &self.int8_file,
            Precision::Fp32 => &self.file,
        }
    }
}

impl Default for OnnxFiles {
    fn default() -> Self {
        Self {
            file: Self::default_fp32(),
            int8_file: Self::default_int8(),
        }
    }
}

/// The files of a model, described by its manifest in `models/`.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelManifest {
    pub name: String,
    pub dimension: usize,
    pub max_tokens: usize,
    pub query_prefix: String,
    pub passage_prefix: String,
    #[serde(default)]
    pub onnx: OnnxFiles,
    /// File name -> sha256, hex. As read: every file of the model; from
    /// [`EmbedderConfig::verified_manifest`]: only those `precision` loads
    /// (the tokenizer files and one ONNX file).
    pub files: std::collections::BTreeMap<String, String>,
    /// The precision the files were chosen for (not in the manifest file).
    #[serde(skip)]
    pub precision: Precision,
}

impl ModelManifest {
    /// A short id of the exact model files loaded: changes when any of them
    /// changes, so it differs between precisions (fp32 keeps the id it had
    /// before int8 existed: its files are the same).
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        for (file, sha) in &self.files {
            h.update(file.as_bytes());
            h.update(sha.as_bytes());
        }
        hex::encode(&h.finalize()[..8])
    }

    pub(super) fn prefix(&self, kind: EmbedKind) -> &str {
        match kind {
            EmbedKind::Query => &self.query_prefix,
            EmbedKind::Passage => &self.passage_prefix,
        }
    }

    /// The ONNX file this manifest's precision loads.
    pub fn onnx_file(&self) -> &str {
        self.onnx.file(self.precision)
    }

    /// Keeps only the files `precision` loads: the ONNX file of the other
    /// precision is neither checked nor required.
    fn select(mut self, precision: Precision) -> Self {
        let unused = match precision {
            Precision::Int8 => self.onnx.file.clone(),
            Precision::Fp32 => self.onnx.int8_file.clone(),
        };
        if unused != self.onnx.file(precision) {
            self.files.remove(&unused);
        }
        self.precision = precision;
        self
    }
}

/// Where the model and ONNX Runtime are, and how to run them.
#[derive(Debug, Clone)]
pub struct EmbedderConfig {
    /// The `models/` folder: `<models>/<model>.toml`, `<models>/<model>/`, `<models>/onnxruntime/`.
    pub models_dir: PathBuf,
    /// Model name as in the manifest file name, e.g. `multilingual-e5-small`.
    pub model: String,
    /// Which ONNX file runs.
    pub precision: Precision,
    /// Model workers, each a single-threaded ONNX Runtime session; 0 means
    /// one per core.
    pub threads: usize,
    /// Most texts run through the model at once.
    pub max_batch: usize,
    /// Path of `libonnxruntime.so`; defaults to `<models>/onnxruntime/libonnxruntime.so`.
    pub onnxruntime_lib: Option<PathBuf>,
    /// Check model files against the manifest's sha256 values. Off for a
    /// model dropped in by hand (e.g. the official Hugging Face export).
    pub verify_files: bool,
}

impl EmbedderConfig {
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        Self {
            models_dir: models_dir.into(),
            model: "multilingual-e5-small".into(),
            precision: Precision::default(),
            threads: 0,
            max_batch: 32,
            onnxruntime_lib: None,
            verify_files: true,
        }
    }

    /// Embedder workers to run: `threads`, or one per core when it is 0.
    pub fn workers(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    pub(super) fn manifest_path(&self) -> PathBuf {
        self.models_dir.join(format!("{}.toml", self.model))
    }

    pub(super) fn model_dir(&self) -> PathBuf {
        self.models_dir.join(&self.model)
    }

    pub(super) fn ort_lib(&self) -> PathBuf {
        self.onnxruntime_lib
            .clone()
            .unwrap_or_else(|| self.models_dir.join("onnxruntime/libonnxruntime.so"))
    }

    /// Reads the manifest and checks the files the configured precision
    /// loads (sha256, cached by size and mtime so a restart does not re-hash
    /// 470 MB); the returned manifest lists only those files.
    pub fn verified_manifest(&self) -> Result<ModelManifest> {
        let path = self.manifest_path();
        let text = std::fs::read_to_string(&path).map_err(|e| missing(&path, &e.to_string()))?;
        let manifest: ModelManifest = toml::from_str(&text)
            .map_err(|e| Error::Model(format!("{}: invalid manifest: {e}", path.display())))?;
        let manifest = manifest.select(self.precision);
        if !manifest.files.contains_key(manifest.onnx_file()) {
            return Err(Error::Model(format!(
                "{}: [files] has no sha256 for {} (--precision {}); run `make setup`",
                path.display(),
                manifest.onnx_file(),
                self.precision
            )));
        }
        for (file, sha) in &manifest.files {
            let path = self.model_dir().join(file);
            if self.verify_files {
                verify_file(&path, sha)?;
            } else if !path.exists() {
                return Err(missing(&path, "not found"));
            }
        }
        Ok(manifest)
    }
}

/// A model file that is not there: the two ways out are provisioning it
/// or pointing `--models` (`WENDA_MODELS`) at a folder that has it.
pub(super) fn missing(path: &Path, why: &str) -> Error {
    Error::Model(format!(
        "{}: {why}; run `make setup` to provision the model, or point --models \
         (WENDA_MODELS) at a folder that holds it",
        path.display()
    ))
}

/// Checks a file's sha256, trusting a stamp written by an earlier check of
/// the same size and modification time.
fn verify_file(path: &Path, expected: &str) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| missing(path, &e.to_string()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default();
    let stamp = format!("{expected} {} {}", meta.len(), mtime.as_nanos());
    let stamp_path = path.with_file_name(format!(
        ".{}.verified",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    if std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    let mut file = std::fs::File::open(path).map_err(|e| missing(path, &e.to_string()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| missing(path, &e.to_string()))?;
    let actual = hex::encode(hasher.finalize());
    if actual != expected {
        return Err(missing(
            path,
            "corrupt (sha256 does not match the manifest)",
        ));
    }
    // Best effort: a read-only models folder just means hashing next time.
    let _ = std::fs::write(&stamp_path, stamp);
    Ok(())
}
