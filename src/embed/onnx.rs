//! ONNX Runtime through fastembed: the runtime library loaded by path, the
//! session, the tokenizer set up as the model was trained, and the token
//! counter the chunker shares with it.

use std::path::Path;
use std::sync::Arc;

use super::model::missing;
use super::{EmbedBackend, EmbedderConfig, ModelManifest, Precision};
use crate::error::{Error, Result};
use crate::ingest::TokenCounter;

pub(super) struct FastembedBackend {
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

/// The model, and a copy of its tokenizer without truncation or padding (for
/// the chunker).
pub(super) fn load_fastembed(
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
    // Building XLM-R's 250,000-piece tokenizer is the slowest part of
    // start-up, and fastembed builds it after the ONNX session and then
    // copies it, while the chunker needs a tokenizer too (BENCHMARKS.md,
    // "Figures behind the code"). So the session is built here with a placeholder tokenizer while
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
pub(super) fn build_session(
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
    // next request, on the same cores: without spinning `make bench`
    // measured the same latency, more queries per second under concurrency
    // and less server CPU (BENCHMARKS.md, "Figures behind the code").
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
pub(super) fn embedding_tokenizer(
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
