//! Embeddings: multilingual-e5-small on ONNX Runtime through fastembed,
//! loaded from provisioned files (never from a hub), owned by one thread fed
//! by a channel so async callers never block the runtime.
//!
//! The e5 conventions live here: `query: ` / `passage: ` prefixes, mean
//! pooling, L2 normalisation, 512-token truncation reported to the caller.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tracing::{Span, debug, info};

use crate::error::{Error, Result};
use crate::ingest::TokenCounter;

/// Which e5 prefix a text gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmbedKind {
    Query,
    Passage,
}

/// Which of the model's ONNX files runs: the fp32 graph, or the int8 copy
/// `make setup` quantizes from it (`models/README.md` has the measurements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Precision {
    /// int8 weights (per channel), activations quantized at run time, one
    /// text per model run: about 2x faster, a quarter of the file size, 30%
    /// less memory; vectors at cosine ≈ 0.997 to fp32.
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

    fn prefix(&self, kind: EmbedKind) -> &str {
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
    /// ONNX Runtime intra-op threads; 0 means one per core.
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

    fn manifest_path(&self) -> PathBuf {
        self.models_dir.join(format!("{}.toml", self.model))
    }

    fn model_dir(&self) -> PathBuf {
        self.models_dir.join(&self.model)
    }

    fn ort_lib(&self) -> PathBuf {
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

fn missing(path: &Path, why: &str) -> Error {
    Error::Model(format!(
        "{}: {why}; run `make setup` to provision the model",
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

/// One embedded text.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedText {
    /// L2-normalised.
    pub vector: Vec<f32>,
    /// Tokens the model saw (prefix and special tokens included, after truncation).
    pub tokens: u32,
    /// The text was longer than the model's limit and was cut.
    pub truncated: bool,
}

/// The synchronous model behind the embedder thread.
pub trait EmbedBackend: Send + 'static {
    /// Embeds already-prefixed texts.
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
    /// Tokens of an already-prefixed text, special tokens included: its
    /// untruncated count, or at least a count above the model's limit when
    /// the model truncates it.
    fn count_tokens(&self, text: &str) -> usize;
}

struct FastembedBackend {
    model: fastembed::TextEmbedding,
    /// Texts per model run: `max_batch` for fp32, 1 for int8 (see `load_fastembed`).
    run_size: usize,
}

impl EmbedBackend for FastembedBackend {
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.model
            .embed(texts, Some(self.run_size))
            .map_err(|e| Error::Model(format!("embedding failed: {e}")))
    }

    fn count_tokens(&self, text: &str) -> usize {
        // The model's tokenizer truncates; what it cut off is in the
        // overflowing pieces, so their lengths say how far over the limit the
        // text is (each piece counts its own special tokens: close enough for
        // a count above the limit).
        self.model
            .tokenizer
            .encode(text, true)
            .map(|e| e.len() + e.get_overflowing().iter().map(|o| o.len()).sum::<usize>())
            .unwrap_or(0)
    }
}

/// Counts model tokens with the model's own tokenizer, for the chunker.
#[derive(Clone)]
pub struct TokenizerCounter(Arc<tokenizers::Tokenizer>);

impl TokenizerCounter {
    /// Loads `tokenizer.json` of the configured model, without truncation.
    /// (`Embedder::start_with_counter` gives one without a second load.)
    pub fn load(config: &EmbedderConfig) -> Result<Self> {
        let path = config.model_dir().join("tokenizer.json");
        let tokenizer =
            tokenizers::Tokenizer::from_file(&path).map_err(|e| missing(&path, &e.to_string()))?;
        Self::untruncated(tokenizer)
    }

    fn untruncated(mut tokenizer: tokenizers::Tokenizer) -> Result<Self> {
        tokenizer
            .with_truncation(None)
            .map_err(|e| Error::Model(e.to_string()))?;
        tokenizer.with_padding(None);
        Ok(Self(Arc::new(tokenizer)))
    }
}

impl TokenCounter for TokenizerCounter {
    fn count(&self, text: &str) -> usize {
        self.0.encode(text, false).map(|e| e.len()).unwrap_or(0)
    }
}

/// The ONNX Runtime environment, created by the first embedder and shared by
/// any later one in the process (e.g. one per precision): ONNX Runtime
/// allows one environment per process, loaded from one library.
fn ort_environment(lib: &Path) -> Result<ort::environment::Environment> {
    static ENVIRONMENT: std::sync::Mutex<Option<ort::environment::Environment>> =
        std::sync::Mutex::new(None);
    let mut shared = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(environment) = shared.as_ref() {
        return Ok(environment.clone());
    }
    if !lib.exists() {
        return Err(missing(lib, "ONNX Runtime library not found"));
    }
    let environment = ort::init_from(lib)
        .map_err(|e| missing(lib, &format!("cannot load ONNX Runtime: {e}")))?
        .with_name("wenda")
        .build()
        .map_err(|e| Error::Model(format!("cannot start ONNX Runtime: {e}")))?;
    *shared = Some(environment.clone());
    Ok(environment)
}

/// The model, and a copy of its tokenizer without truncation or padding (for
/// the chunker).
fn load_fastembed(
    config: &EmbedderConfig,
    manifest: &ModelManifest,
) -> Result<(FastembedBackend, TokenizerCounter)> {
    let dir = config.model_dir();
    let read = |name: &str| -> Result<Vec<u8>> {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| missing(&path, &e.to_string()))
    };
    let files = fastembed::TokenizerFiles {
        tokenizer_file: read("tokenizer.json")?,
        config_file: read("config.json")?,
        special_tokens_map_file: read("special_tokens_map.json")?,
        tokenizer_config_file: read("tokenizer_config.json")?,
    };
    // Building XLM-R's 250,000-piece tokenizer takes 1.2 s, and fastembed
    // builds it after the ONNX session and then copies it (0.6 s more): 2.2 s
    // of the start-up budget of 2 s, and the chunker needs a tokenizer too.
    // So the session is built here with a placeholder tokenizer while
    // another thread builds the real one once, copies it for the chunker,
    // and configures it as fastembed would (`embedding_tokenizer`, checked
    // against fastembed's own in a test) to be swapped in.
    let (model, tokenizers) = std::thread::scope(|scope| {
        let tokenizer = scope.spawn(|| {
            let path = dir.join("tokenizer.json");
            let plain = tokenizers::Tokenizer::from_bytes(&files.tokenizer_file)
                .map_err(|e| missing(&path, &e.to_string()))?;
            let embedding = embedding_tokenizer(plain.clone(), &files, manifest.max_tokens, &path)?;
            Ok((embedding, TokenizerCounter::untruncated(plain)?))
        });
        let session = build_session(config, manifest, &read, &files);
        let tokenizer = tokenizer
            .join()
            .unwrap_or_else(|_| Err(Error::Model("the tokenizer loader panicked".into())));
        (session, tokenizer)
    });
    let mut model = model?;
    let (embedding, counter) = tokenizers?;
    model.tokenizer = embedding;
    // Dynamic quantization takes its activation scales per model run, so an
    // int8 vector run in a batch moves with its batch mates and their padding
    // (cosine down to 0.995 against the text alone, models/README.md): a
    // query's ranking would depend on concurrent requests, and a passage's
    // vector on how it was ingested. int8 therefore runs one text at a time,
    // which measured as fast as batches of 8 or 32 (no padding to compute);
    // its vectors, like fp32's, depend on the text alone. fastembed's
    // QuantizationMode::Dynamic would instead force all texts into one run.
    let run_size = match manifest.precision {
        Precision::Int8 => 1,
        Precision::Fp32 => config.max_batch,
    };
    Ok((FastembedBackend { model, run_size }, counter))
}

/// fastembed's model with its ONNX session, and a placeholder tokenizer
/// (a one-word vocabulary) that `load_fastembed` replaces.
fn build_session(
    config: &EmbedderConfig,
    manifest: &ModelManifest,
    read: &dyn Fn(&str) -> Result<Vec<u8>>,
    files: &fastembed::TokenizerFiles,
) -> Result<fastembed::TextEmbedding> {
    const PLACEHOLDER_TOKENIZER: &str = r#"{"version":"1.0","truncation":null,"padding":null,
        "added_tokens":[],"normalizer":null,"pre_tokenizer":null,"post_processor":null,
        "decoder":null,"model":{"type":"WordLevel","vocab":{"<unk>":0},"unk_token":"<unk>"}}"#;
    let environment = ort_environment(&config.ort_lib())?;
    let onnx = manifest.onnx_file();
    let placeholder = fastembed::TokenizerFiles {
        tokenizer_file: PLACEHOLDER_TOKENIZER.as_bytes().to_vec(),
        config_file: files.config_file.clone(),
        special_tokens_map_file: files.special_tokens_map_file.clone(),
        tokenizer_config_file: files.tokenizer_config_file.clone(),
    };
    let model = fastembed::UserDefinedEmbeddingModel::new(read(onnx)?, placeholder)
        .with_pooling(fastembed::Pooling::Mean);
    let mut options = fastembed::InitOptionsUserDefined::new()
        .with_environment(environment)
        .with_max_length(manifest.max_tokens);
    if config.threads > 0 {
        options = options.with_intra_threads(config.threads);
    }
    // ONNX Runtime's worker threads spin after each run waiting for more
    // work. Here the next work is the gRPC reply, the lexical search and the
    // next request, on the same cores: without spinning, `make bench`
    // measured the same latency at 1 client, 5% more QPS at 8 (98 against
    // 93, two runs each) and 15% less server CPU.
    options = options.with_session_config("session.intra_op.allow_spinning", "0");

    fastembed::TextEmbedding::try_new_from_user_defined(model, options).map_err(|e| {
        Error::Model(format!(
            "{}: cannot load model: {e}; run `make setup`",
            config.model_dir().join(onnx).display()
        ))
    })
}

/// The tokenizer the model runs with, configured as fastembed 7.5's
/// `load_tokenizer` configures it: truncation at the model's limit, padding
/// to the longest text of a batch with the model's pad token, and the
/// special tokens of `special_tokens_map.json` registered as special.
fn embedding_tokenizer(
    mut tokenizer: tokenizers::Tokenizer,
    files: &fastembed::TokenizerFiles,
    max_tokens: usize,
    path: &Path,
) -> Result<tokenizers::Tokenizer> {
    let bad = |what: &str, why: String| missing(&path.with_file_name(what), &why);
    let json = |what: &str, bytes: &[u8]| -> Result<serde_json::Value> {
        serde_json::from_slice(bytes).map_err(|e| bad(what, e.to_string()))
    };
    let config = json("config.json", &files.config_file)?;
    let tokenizer_config = json("tokenizer_config.json", &files.tokenizer_config_file)?;
    let special_tokens = json("special_tokens_map.json", &files.special_tokens_map_file)?;
    let model_limit = tokenizer_config["model_max_length"]
        .as_f64()
        .unwrap_or(f64::MAX);
    let max_length = max_tokens.min(model_limit as usize);
    let pad = &tokenizer_config["pad_token"];
    let pad_token = pad
        .as_str()
        .or_else(|| pad["content"].as_str())
        .ok_or_else(|| bad("tokenizer_config.json", "no `pad_token`".into()))?
        .to_string();
    let pad_id = config["pad_token_id"]
        .as_u64()
        .map(|id| id as u32)
        .or_else(|| tokenizer.token_to_id(&pad_token))
        .unwrap_or(0);
    tokenizer.with_padding(Some(tokenizers::PaddingParams {
        strategy: tokenizers::PaddingStrategy::BatchLongest,
        pad_token,
        pad_id,
        ..Default::default()
    }));
    tokenizer
        .with_truncation(Some(tokenizers::TruncationParams {
            max_length,
            ..Default::default()
        }))
        .map_err(|e| bad("tokenizer.json", e.to_string()))?;
    for value in special_tokens
        .as_object()
        .into_iter()
        .flat_map(|map| map.values())
    {
        let token = match value.as_str() {
            Some(content) => tokenizers::AddedToken {
                content: content.to_string(),
                special: true,
                ..Default::default()
            },
            None => {
                let flag = |name: &str| value[name].as_bool();
                let (
                    Some(content),
                    Some(single_word),
                    Some(lstrip),
                    Some(rstrip),
                    Some(normalized),
                ) = (
                    value["content"].as_str(),
                    flag("single_word"),
                    flag("lstrip"),
                    flag("rstrip"),
                    flag("normalized"),
                )
                else {
                    continue;
                };
                tokenizers::AddedToken {
                    content: content.to_string(),
                    special: true,
                    single_word,
                    lstrip,
                    rstrip,
                    normalized,
                }
            }
        };
        tokenizer
            .add_special_tokens([token])
            .map_err(|e| bad("special_tokens_map.json", e.to_string()))?;
    }
    Ok(tokenizer)
}

struct Job {
    texts: Vec<String>,
    kind: EmbedKind,
    span: Span,
    reply: oneshot::Sender<Result<Vec<EmbeddedText>>>,
}

/// Handle to the embedder thread. Cheap to clone.
#[derive(Clone)]
pub struct Embedder {
    jobs: mpsc::SyncSender<Job>,
    manifest: Arc<ModelManifest>,
}

impl Embedder {
    /// Verifies and loads the model on its own thread; returns once it is ready.
    pub fn start(config: EmbedderConfig) -> Result<Self> {
        Self::start_with_counter(config).map(|(embedder, _)| embedder)
    }

    /// `start`, also returning a token counter for the chunker built from
    /// the same tokenizer load.
    pub fn start_with_counter(config: EmbedderConfig) -> Result<(Self, TokenizerCounter)> {
        let manifest = config.verified_manifest()?;
        let started = std::time::Instant::now();
        let (backend, counter) = load_fastembed(&config, &manifest)?;
        info!(
            model = %manifest.name,
            precision = %manifest.precision,
            file = manifest.onnx_file(),
            ms = started.elapsed().as_millis() as u64,
            "model loaded"
        );
        Ok((
            Self::with_backend(backend, manifest, config.max_batch),
            counter,
        ))
    }

    /// Runs any backend (tests use a small deterministic one).
    pub fn with_backend(
        backend: impl EmbedBackend,
        manifest: ModelManifest,
        max_batch: usize,
    ) -> Self {
        let (jobs, rx) = mpsc::sync_channel::<Job>(1024);
        let manifest = Arc::new(manifest);
        let worker_manifest = manifest.clone();
        std::thread::Builder::new()
            .name("wenda-embedder".into())
            .spawn(move || worker(backend, worker_manifest, rx, max_batch.max(1)))
            .expect("spawning the embedder thread");
        Self { jobs, manifest }
    }

    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// Embeds texts; waits on the embedder thread without blocking the runtime.
    pub async fn embed(&self, texts: Vec<String>, kind: EmbedKind) -> Result<Vec<EmbeddedText>> {
        let reply = self.submit(texts, kind)?;
        reply
            .await
            .map_err(|_| Error::Unavailable("embedder stopped".into()))?
    }

    /// Embeds texts from synchronous code (not from inside the async runtime).
    pub fn embed_blocking(&self, texts: Vec<String>, kind: EmbedKind) -> Result<Vec<EmbeddedText>> {
        let reply = self.submit(texts, kind)?;
        reply
            .blocking_recv()
            .map_err(|_| Error::Unavailable("embedder stopped".into()))?
    }

    /// Queues a job; the receiver gets its result.
    fn submit(
        &self,
        texts: Vec<String>,
        kind: EmbedKind,
    ) -> Result<oneshot::Receiver<Result<Vec<EmbeddedText>>>> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            texts,
            kind,
            span: Span::current(),
            reply,
        };
        self.jobs.try_send(job).map(|()| rx).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => Error::Overloaded("embedding queue is full".into()),
            mpsc::TrySendError::Disconnected(_) => Error::Unavailable("embedder stopped".into()),
        })
    }
}

/// The owner thread: takes jobs, gathers those already waiting into one
/// model run (micro-batching concurrent queries), and replies to each.
fn worker(
    mut backend: impl EmbedBackend,
    manifest: Arc<ModelManifest>,
    rx: mpsc::Receiver<Job>,
    max_batch: usize,
) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut total = jobs[0].texts.len();
        while total < max_batch {
            match rx.recv_timeout(Duration::ZERO) {
                Ok(job) => {
                    total += job.texts.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        // Jobs whose caller went away (deadline, disconnect) cost nothing.
        jobs.retain(|j| !j.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let prefixed: Vec<String> = jobs
            .iter()
            .flat_map(|j| {
                j.texts
                    .iter()
                    .map(|t| format!("{}{t}", manifest.prefix(j.kind)))
            })
            .collect();
        let _enter = jobs[0].span.enter();
        debug!(jobs = jobs.len(), texts = prefixed.len(), "embedding batch");
        let started = std::time::Instant::now();
        let result = backend.embed(&prefixed);
        metrics::histogram!("wenda_embed_duration_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("wenda_embed_batch_size").record(prefixed.len() as f64);
        drop(_enter);
        match result {
            Ok(vectors) => {
                let mut vectors = vectors.into_iter();
                let mut texts = prefixed.iter();
                for job in jobs {
                    let out: Vec<EmbeddedText> = job
                        .texts
                        .iter()
                        .map(|_| {
                            let text = texts.next().expect("one prefixed text per input");
                            let count = backend.count_tokens(text);
                            EmbeddedText {
                                vector: vectors.next().unwrap_or_default(),
                                tokens: count.min(manifest.max_tokens) as u32,
                                truncated: count > manifest.max_tokens,
                            }
                        })
                        .collect();
                    let _ = job.reply.send(Ok(out));
                }
            }
            Err(err) => {
                for job in jobs {
                    let _ = job.reply.send(Err(err.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A small deterministic backend for fast unit tests of the layers above.
    use super::*;

    /// Hashes character bigrams into a normalised vector: texts sharing
    /// words or characters are close, which is all engine tests need.
    pub struct BigramBackend;

    pub const DIM: usize = 64;

    pub fn bigram_vector(text: &str) -> Vec<f32> {
        let chars: Vec<char> = text
            .to_lowercase()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let mut v = vec![0f32; DIM];
        for w in chars.windows(2) {
            let h = (w[0] as u64)
                .wrapping_mul(31)
                .wrapping_add(w[1] as u64)
                .wrapping_mul(0x9E3779B97F4A7C15);
            v[(h >> 58) as usize % DIM] += 1.0;
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
        v.iter().map(|x| x / norm).collect()
    }

    impl EmbedBackend for BigramBackend {
        fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
            Ok(texts
                .iter()
                .map(|t| bigram_vector(t.split_once(": ").map_or(t.as_str(), |x| x.1)))
                .collect())
        }
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count() + 2
        }
    }

    pub fn manifest() -> ModelManifest {
        ModelManifest {
            name: "test/bigram".into(),
            dimension: DIM,
            max_tokens: 512,
            query_prefix: "query: ".into(),
            passage_prefix: "passage: ".into(),
            onnx: OnnxFiles::default(),
            files: Default::default(),
            precision: Precision::default(),
        }
    }

    pub fn embedder() -> Embedder {
        Embedder::with_backend(BigramBackend, manifest(), 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_jobs_each_get_their_own_vectors() {
        let embedder = testing::embedder();
        let a = embedder.embed(vec!["hello world".into()], EmbedKind::Query);
        let b = embedder.embed(
            vec!["你好世界".into(), "xin chào".into()],
            EmbedKind::Passage,
        );
        let (a, b) = tokio::join!(a, b);
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.len(), 1);
        assert_eq!(b.len(), 2);
        assert_eq!(a[0].vector, testing::bigram_vector("hello world"));
        assert_eq!(b[1].vector, testing::bigram_vector("xin chào"));
        assert!(!a[0].truncated);
    }

    #[test]
    fn missing_model_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = EmbedderConfig::new(dir.path())
            .verified_manifest()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("multilingual-e5-small.toml") && err.contains("make setup"),
            "{err}"
        );
    }

    /// A model folder `m` with a manifest listing both ONNX files and
    /// holding only `present` of them (contents = their names).
    fn two_precision_model(present: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("m")).unwrap();
        let sha = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
        for f in present {
            std::fs::write(dir.path().join("m").join(f), f).unwrap();
        }
        std::fs::write(dir.path().join("m/tokenizer.json"), "tokenizer.json").unwrap();
        std::fs::write(
            dir.path().join("m.toml"),
            format!(
                "name='m'\ndimension=4\nmax_tokens=8\nquery_prefix='q: '\npassage_prefix='p: '\n\
                 [onnx]\nfile='model.onnx'\nint8_file='model_int8.onnx'\n\
                 [files]\n'model.onnx'='{}'\n'model_int8.onnx'='{}'\n'tokenizer.json'='{}'\n",
                sha("model.onnx"),
                sha("model_int8.onnx"),
                sha("tokenizer.json")
            ),
        )
        .unwrap();
        dir
    }

    fn config(dir: &Path, precision: Precision) -> EmbedderConfig {
        let mut config = EmbedderConfig::new(dir);
        config.model = "m".into();
        config.precision = precision;
        config
    }

    #[test]
    fn each_precision_needs_only_its_own_onnx_file() {
        let dir = two_precision_model(&["model.onnx"]);
        let fp32 = config(dir.path(), Precision::Fp32)
            .verified_manifest()
            .unwrap();
        assert_eq!(fp32.onnx_file(), "model.onnx");
        assert_eq!(
            fp32.files.keys().collect::<Vec<_>>(),
            ["model.onnx", "tokenizer.json"]
        );
        let err = config(dir.path(), Precision::Int8)
            .verified_manifest()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model_int8.onnx") && err.contains("make setup") && !err.contains('\n'),
            "{err}"
        );

        let dir = two_precision_model(&["model_int8.onnx"]);
        let int8 = config(dir.path(), Precision::Int8)
            .verified_manifest()
            .unwrap();
        assert_eq!(int8.onnx_file(), "model_int8.onnx");
        assert!(!int8.files.contains_key("model.onnx"));
        assert!(
            config(dir.path(), Precision::Fp32)
                .verified_manifest()
                .is_err()
        );
    }

    #[test]
    fn fingerprint_differs_between_precisions_and_fp32_keeps_its_old_one() {
        let dir = two_precision_model(&["model.onnx", "model_int8.onnx"]);
        let fp32 = config(dir.path(), Precision::Fp32)
            .verified_manifest()
            .unwrap();
        let int8 = config(dir.path(), Precision::Int8)
            .verified_manifest()
            .unwrap();
        assert_ne!(fp32.fingerprint(), int8.fingerprint());
        // The manifest as it was before int8 existed gave fp32's id.
        let text = std::fs::read_to_string(dir.path().join("m.toml")).unwrap();
        let before: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("'model_int8.onnx'"))
            .collect();
        let before: ModelManifest = toml::from_str(&before.join("\n")).unwrap();
        assert_eq!(before.fingerprint(), fp32.fingerprint());
    }

    #[test]
    fn a_manifest_without_an_onnx_table_uses_the_standard_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("m.toml"),
            "name='m'\ndimension=4\nmax_tokens=8\nquery_prefix='q: '\npassage_prefix='p: '\n[files]\n'model.onnx'='00'\n",
        )
        .unwrap();
        let err = config(dir.path(), Precision::Int8)
            .verified_manifest()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no sha256 for model_int8.onnx") && err.contains("make setup"),
            "{err}"
        );
    }

    #[test]
    fn corrupt_model_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("m")).unwrap();
        std::fs::write(dir.path().join("m/model.onnx"), b"garbage").unwrap();
        std::fs::write(
            dir.path().join("m.toml"),
            "name='m'\ndimension=4\nmax_tokens=8\nquery_prefix='q: '\npassage_prefix='p: '\n[files]\n'model.onnx'='00'\n",
        )
        .unwrap();
        let mut config = EmbedderConfig::new(dir.path());
        config.model = "m".into();
        config.precision = Precision::Fp32;
        let err = config.verified_manifest().unwrap_err().to_string();
        assert!(
            err.contains("model.onnx") && err.contains("corrupt") && err.contains("make setup"),
            "{err}"
        );
    }

    /// `load_fastembed` swaps its own tokenizer into fastembed's model: it
    /// must encode exactly as the one fastembed builds from the same files
    /// (ids, masks, padding of a batch, truncation at the limit).
    #[test]
    fn the_swapped_in_tokenizer_encodes_as_fastembeds_own() {
        let dir = std::env::var_os("WENDA_MODELS")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
            .join("multilingual-e5-small");
        let read =
            |name: &str| std::fs::read(dir.join(name)).expect("`make setup` provisions the model");
        let files = || fastembed::TokenizerFiles {
            tokenizer_file: read("tokenizer.json"),
            config_file: read("config.json"),
            special_tokens_map_file: read("special_tokens_map.json"),
            tokenizer_config_file: read("tokenizer_config.json"),
        };
        let plain = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
        let ours = embedding_tokenizer(plain, &files(), 512, &dir.join("tokenizer.json")).unwrap();
        let lib = dir.parent().unwrap().join("onnxruntime/libonnxruntime.so");
        let model = fastembed::UserDefinedEmbeddingModel::new(read("model_int8.onnx"), files());
        let options = fastembed::InitOptionsUserDefined::new()
            .with_environment(ort_environment(&lib).unwrap())
            .with_max_length(512)
            .with_intra_threads(1);
        let theirs = fastembed::TextEmbedding::try_new_from_user_defined(model, options)
            .unwrap()
            .tokenizer;

        assert_eq!(
            format!("{:?}", ours.get_padding()),
            format!("{:?}", theirs.get_padding())
        );
        assert_eq!(
            format!("{:?}", ours.get_truncation()),
            format!("{:?}", theirs.get_truncation())
        );
        let texts = vec![
            "query: OpenInfra 社区有多少名成员？".to_string(),
            "passage: Linux Foundation đang chủ trì những dự án nào? <mask> </s>".to_string(),
            "passage: Which projects is the OpenInfra Foundation best known for?".to_string(),
            format!("passage: {}", "OpenStack 云计算 ".repeat(400)),
        ];
        let encode = |t: &tokenizers::Tokenizer| {
            t.encode_batch(texts.clone(), true)
                .unwrap()
                .into_iter()
                .map(|e| {
                    (
                        e.get_ids().to_vec(),
                        e.get_attention_mask().to_vec(),
                        e.get_type_ids().to_vec(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let (a, b) = (encode(&ours), encode(&theirs));
        assert_eq!(a, b);
        assert_eq!(a[3].0.len(), 512, "the long text is truncated at the limit");
        assert!(a[0].1.contains(&0), "short texts are padded to the longest");
    }
}
