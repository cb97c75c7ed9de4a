//! ONNX Runtime: the runtime library loaded by path, one session per
//! embedder worker, the tokenizer set up as the model was trained (one copy
//! shared by every worker and the chunker's token counter), mean pooling.

use std::path::Path;
use std::sync::Arc;

use super::model::missing;
use super::{EmbedBackend, EmbedderConfig, ModelManifest, Precision};
use crate::error::{Error, Result};
use crate::ingest::TokenCounter;

/// One worker's model: its own session (`ort` runs a session through
/// `&mut`), the shared tokenizer.
///
/// Not fastembed's `TextEmbedding`: it owns its tokenizer, and a copy of
/// XLM-R's 250,000-piece tokenizer takes about 250 MB (its trie), so every
/// worker would carry that again (measured: 256 MB per copy, BENCHMARKS.md,
/// "Figures behind the code"). The run is the few lines below, as fastembed
/// does it; a test holds their vectors equal to fastembed's own on the same
/// files.
pub(super) struct OrtBackend {
    session: ort::session::Session,
    tokenizer: Arc<ModelTokenizer>,
    token_type_ids: bool,
    /// Texts per model run: `max_batch` for fp32, 1 for int8 (see `load`).
    run_size: usize,
}

impl EmbedBackend for OrtBackend {
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let failed = |e: &dyn std::fmt::Display| Error::Model(format!("embedding failed: {e}"));
        let encodings = self.tokenizer.encode_batch(texts).map_err(|e| failed(&e))?;
        let (batch, length) = (encodings.len(), encodings[0].len());
        let column = |pick: fn(&tokenizers::Encoding) -> &[u32]| {
            let values: Vec<i64> = encodings
                .iter()
                .flat_map(|e| pick(e).iter().map(|&v| i64::from(v)))
                .collect();
            ort::value::Tensor::from_array((vec![batch as i64, length as i64], values))
        };
        let mask = column(tokenizers::Encoding::get_attention_mask).map_err(|e| failed(&e))?;
        let mut inputs = ort::inputs![
            "input_ids" => column(tokenizers::Encoding::get_ids).map_err(|e| failed(&e))?,
            "attention_mask" => mask,
        ];
        if self.token_type_ids {
            inputs.push((
                "token_type_ids".into(),
                column(tokenizers::Encoding::get_type_ids)
                    .map_err(|e| failed(&e))?
                    .into(),
            ));
        }
        let outputs = self.session.run(inputs).map_err(|e| failed(&e))?;
        let hidden = match outputs.get("last_hidden_state") {
            Some(value) => value,
            None => &outputs[0],
        };
        let (shape, values) = hidden.try_extract_tensor::<f32>().map_err(|e| failed(&e))?;
        let dimension = match **shape {
            [b, t, d] if b as usize == batch && t as usize == length => d as usize,
            _ => return Err(failed(&format!("unexpected output shape {shape:?}"))),
        };
        Ok(encodings
            .iter()
            .enumerate()
            .map(|(i, encoding)| {
                let rows = &values[i * length * dimension..(i + 1) * length * dimension];
                mean_pool(rows, encoding.get_attention_mask(), dimension)
            })
            .collect())
    }

    fn texts_per_run(&self) -> Option<usize> {
        Some(self.run_size)
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer.count(text, true)
    }
}

/// Mean of the unmasked token vectors, L2-normalised, with fastembed's
/// guards (a mask sum of at least 1e-9, a norm plus 1e-12).
fn mean_pool(rows: &[f32], mask: &[u32], dimension: usize) -> Vec<f32> {
    let mut sum = vec![0f32; dimension];
    let mut count = 0f32;
    for (row, &m) in rows.chunks_exact(dimension).zip(mask) {
        let m = m as f32;
        count += m;
        for (s, v) in sum.iter_mut().zip(row) {
            *s += v * m;
        }
    }
    let count = count.max(1e-9);
    sum.iter_mut().for_each(|s| *s /= count);
    let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
    sum.iter().map(|v| v / (norm + 1e-12)).collect()
}

/// XLM-R's tokenizer as the model runs it, one copy for every worker and
/// the chunker's counter (a copy takes about 250 MB). The tokenizer itself
/// neither truncates nor pads, so it counts exactly; `encode_batch` applies
/// the configured truncation and padding the way `tokenizers` does.
pub(super) struct ModelTokenizer {
    tokenizer: tokenizers::Tokenizer,
    truncation: Option<tokenizers::TruncationParams>,
    padding: Option<tokenizers::PaddingParams>,
}

impl ModelTokenizer {
    /// Takes over a tokenizer configured by `embedding_tokenizer` (or a
    /// plain one, which then neither truncates nor pads).
    pub fn new(mut configured: tokenizers::Tokenizer) -> Result<Self> {
        let truncation = configured.get_truncation().cloned();
        let padding = configured.get_padding().cloned();
        configured
            .with_truncation(None)
            .map_err(|e| Error::Model(e.to_string()))?;
        configured.with_padding(None);
        Ok(Self {
            tokenizer: configured,
            truncation,
            padding,
        })
    }

    /// What the configured tokenizer's `encode_batch(texts, true)` gives:
    /// each text cut so that it fits the limit with its special tokens,
    /// the special tokens added, and the batch padded to its longest text.
    pub fn encode_batch(&self, texts: &[String]) -> tokenizers::Result<Vec<tokenizers::Encoding>> {
        let added = self
            .tokenizer
            .get_post_processor()
            .map_or(0, |p| tokenizers::PostProcessor::added_tokens(p, false));
        let mut encodings = texts
            .iter()
            .map(|text| {
                let mut encoding = self.tokenizer.encode(text.as_str(), false)?;
                if let Some(t) = &self.truncation
                    && encoding.len() + added > t.max_length
                {
                    encoding.truncate(t.max_length.saturating_sub(added), t.stride, t.direction);
                    encoding.take_overflowing();
                }
                self.tokenizer.post_process(encoding, None, true)
            })
            .collect::<tokenizers::Result<Vec<_>>>()?;
        if let Some(padding) = &self.padding {
            tokenizers::pad_encodings(&mut encodings, padding)?;
        }
        Ok(encodings)
    }

    /// A text's tokens, untruncated; with the special tokens or without.
    pub fn count(&self, text: &str, special: bool) -> usize {
        self.tokenizer
            .encode(text, special)
            .map(|e| e.len())
            .unwrap_or(0)
    }
}

/// Counts model tokens with the model's own tokenizer, for the chunker.
#[derive(Clone)]
pub struct TokenizerCounter(Arc<ModelTokenizer>);

impl TokenizerCounter {
    /// Loads `tokenizer.json` of the configured model, without truncation.
    /// (`Embedder::start_with_counter` gives one without a second load.)
    pub fn load(config: &EmbedderConfig) -> Result<Self> {
        let path = config.model_dir().join("tokenizer.json");
        let tokenizer =
            tokenizers::Tokenizer::from_file(&path).map_err(|e| missing(&path, &e.to_string()))?;
        Ok(Self(Arc::new(ModelTokenizer::new(tokenizer)?)))
    }

    /// Counts with the embedder's own tokenizer.
    pub(super) fn shared(tokenizer: Arc<ModelTokenizer>) -> Self {
        Self(tokenizer)
    }
}

impl TokenCounter for TokenizerCounter {
    fn count(&self, text: &str) -> usize {
        self.0.count(text, false)
    }
}

/// The ONNX Runtime environment, created by the first embedder and shared by
/// any later one in the process (e.g. one per precision): ONNX Runtime
/// allows one environment per process, loaded from one library.
pub(super) fn ort_environment(lib: &Path) -> Result<ort::environment::Environment> {
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

/// The four tokenizer files of a Hugging Face model folder.
pub(super) struct TokenizerFiles {
    pub tokenizer: Vec<u8>,
    pub config: Vec<u8>,
    pub special_tokens_map: Vec<u8>,
    pub tokenizer_config: Vec<u8>,
}

impl TokenizerFiles {
    pub fn read(dir: &Path) -> Result<Self> {
        let read = |name: &str| -> Result<Vec<u8>> {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| missing(&path, &e.to_string()))
        };
        Ok(Self {
            tokenizer: read("tokenizer.json")?,
            config: read("config.json")?,
            special_tokens_map: read("special_tokens_map.json")?,
            tokenizer_config: read("tokenizer_config.json")?,
        })
    }
}

/// The first worker's model, and the tokenizer every later worker and the
/// chunker share. XLM-R's tokenizer and the ONNX session are the slow parts
/// of start-up, so they are built side by side.
pub(super) fn load(
    config: &EmbedderConfig,
    manifest: &ModelManifest,
) -> Result<(OrtBackend, Arc<ModelTokenizer>)> {
    let dir = config.model_dir();
    let files = TokenizerFiles::read(&dir)?;
    let (session, tokenizer) = std::thread::scope(|scope| {
        let tokenizer = scope.spawn(|| {
            let path = dir.join("tokenizer.json");
            let plain = tokenizers::Tokenizer::from_bytes(&files.tokenizer)
                .map_err(|e| missing(&path, &e.to_string()))?;
            ModelTokenizer::new(embedding_tokenizer(
                plain,
                &files,
                manifest.max_tokens,
                &path,
            )?)
            .map(Arc::new)
        });
        let session = build_session(config, manifest);
        let tokenizer = tokenizer
            .join()
            .unwrap_or_else(|_| Err(Error::Model("the tokenizer loader panicked".into())));
        (session, tokenizer)
    });
    let tokenizer = tokenizer?;
    Ok((
        backend(session?, tokenizer.clone(), config, manifest),
        tokenizer,
    ))
}

/// One more worker's model: its own session, the shared tokenizer.
pub(super) fn another_backend(
    config: &EmbedderConfig,
    manifest: &ModelManifest,
    tokenizer: Arc<ModelTokenizer>,
) -> Result<OrtBackend> {
    Ok(backend(
        build_session(config, manifest)?,
        tokenizer,
        config,
        manifest,
    ))
}

fn backend(
    session: ort::session::Session,
    tokenizer: Arc<ModelTokenizer>,
    config: &EmbedderConfig,
    manifest: &ModelManifest,
) -> OrtBackend {
    // Dynamic quantization takes its activation scales per model run, so an
    // int8 vector run in a batch moves with its batch mates and their padding
    // (cosine down to 0.995 against the text alone, models/README.md): a
    // query's ranking would depend on concurrent requests, and a passage's
    // vector on how it was ingested. int8 therefore runs one text at a time,
    // which measured as fast as batches of 8 or 32 (no padding to compute);
    // its vectors, like fp32's, depend on the text alone.
    let run_size = match manifest.precision {
        Precision::Int8 => 1,
        Precision::Fp32 => config.max_batch,
    };
    let token_type_ids = session
        .inputs()
        .iter()
        .any(|input| input.name() == "token_type_ids");
    OrtBackend {
        session,
        tokenizer,
        token_type_ids,
        run_size,
    }
}

/// A session on one thread (the caller's: the embedder runs one session per
/// core instead, `Embedder::start`), with ONNX Runtime's full graph
/// optimisation, as fastembed sets it up.
fn build_session(
    config: &EmbedderConfig,
    manifest: &ModelManifest,
) -> Result<ort::session::Session> {
    let environment = ort_environment(&config.ort_lib())?;
    let path = config.model_dir().join(manifest.onnx_file());
    let failed = |e: &dyn std::fmt::Display| {
        Error::Model(format!(
            "{}: cannot load model: {e}; run `make setup`",
            path.display()
        ))
    };
    let bytes = std::fs::read(&path).map_err(|e| missing(&path, &e.to_string()))?;
    ort::session::Session::builder(&environment)
        .map_err(|e| failed(&e))?
        .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level3)
        .map_err(|e| failed(&e))?
        .with_intra_threads(1)
        .map_err(|e| failed(&e))?
        .commit_from_memory(&bytes)
        .map_err(|e| failed(&e))
}

/// The tokenizer the model runs with, configured as fastembed 7.5's
/// `load_tokenizer` configures it (a test compares them): truncation at the model's limit, padding
/// to the longest text of a batch with the model's pad token, and the
/// special tokens of `special_tokens_map.json` registered as special.
pub(super) fn embedding_tokenizer(
    mut tokenizer: tokenizers::Tokenizer,
    files: &TokenizerFiles,
    max_tokens: usize,
    path: &Path,
) -> Result<tokenizers::Tokenizer> {
    let bad = |what: &str, why: String| missing(&path.with_file_name(what), &why);
    let json = |what: &str, bytes: &[u8]| -> Result<serde_json::Value> {
        serde_json::from_slice(bytes).map_err(|e| bad(what, e.to_string()))
    };
    let config = json("config.json", &files.config)?;
    let tokenizer_config = json("tokenizer_config.json", &files.tokenizer_config)?;
    let special_tokens = json("special_tokens_map.json", &files.special_tokens_map)?;
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
