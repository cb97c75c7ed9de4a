//! Fixtures shared by the Criterion benches: the real model, tokenizer,
//! lexicon, corpus and dev questions, and one modest Criterion setting.
//!
//! Paths: `$WENDA_MODELS` (default `models/`), `$WENDA_CORPUS_DIR` (default
//! `../shared/corpus`), `$WENDA_QA` (default `../shared/eval/dev_qa.jsonl`),
//! all relative to the repository root. `make setup` provisions the model.

// Each bench uses a different part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use wenda::embed::{Embedder, EmbedderConfig, TokenizerCounter};
use wenda::ingest::{self, ChunkConfig, DocumentInput, PreparedDocument, corpus};
use wenda::lexical::Lexicon;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(default))
}

pub fn models_dir() -> PathBuf {
    env_path("WENDA_MODELS", "models")
}

pub fn corpus_dir() -> PathBuf {
    env_path("WENDA_CORPUS_DIR", "../shared/corpus")
}

pub fn questions_path() -> PathBuf {
    env_path("WENDA_QA", "../shared/eval/dev_qa.jsonl")
}

/// Where benches keep expensive set-up between runs (HNSW graphs).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
        .join("bench-cache")
}

/// Short warm-up and measurement: the whole `cargo bench` run stays within
/// a few minutes on 2 cores. Command-line flags (`cargo bench -- --help`)
/// still override these.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .without_plots()
}

/// The model configuration `wenda serve` uses by default (ONNX Runtime
/// picks its thread count).
pub fn embedder_config() -> EmbedderConfig {
    EmbedderConfig::new(models_dir())
}

pub fn embedder() -> Embedder {
    Embedder::start(embedder_config()).unwrap_or_else(|e| {
        panic!(
            "{e}; run `make setup` (models from {})",
            models_dir().display()
        )
    })
}

pub fn counter() -> TokenizerCounter {
    TokenizerCounter::load(&embedder_config()).unwrap_or_else(|e| panic!("{e}; run `make setup`"))
}

/// The CC-CEDICT lexicon, as `wenda serve` loads it by default.
pub fn lexicon() -> Arc<Lexicon> {
    let path = models_dir().join("lexicon/cc-cedict.txt");
    Arc::new(Lexicon::load(&path).unwrap_or_else(|e| panic!("{e}")))
}

/// The corpus files as (id, text), in scan order.
pub fn corpus_files() -> Vec<(String, String)> {
    let dir = corpus_dir();
    let scan =
        corpus::scan(&dir, 10 << 20).unwrap_or_else(|e| panic!("scanning {}: {e}", dir.display()));
    assert!(!scan.files.is_empty(), "no articles in {}", dir.display());
    scan.files.into_iter().map(|f| (f.id, f.text)).collect()
}

/// Every corpus document parsed and chunked with the default settings.
pub fn prepared_corpus(counter: &TokenizerCounter) -> Vec<PreparedDocument> {
    corpus_files()
        .into_iter()
        .map(|(id, text)| {
            let input = DocumentInput {
                id,
                text,
                ..Default::default()
            };
            ingest::prepare(input, counter, ChunkConfig::default())
        })
        .collect()
}

/// The dev questions.
pub fn questions() -> Vec<String> {
    let path = questions_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let questions: Vec<String> = text
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<serde_json::Value>(l).ok()?["question"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert!(!questions.is_empty(), "no questions in {}", path.display());
    questions
}
