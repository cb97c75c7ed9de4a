//! Ingest: turns raw documents into cleaned, chunked, language-tagged
//! passages with exact citation offsets (compute only; no I/O besides the
//! corpus scan in [`corpus`]).

pub mod chunk;
pub mod corpus;
pub mod head;
pub mod lang;
pub mod parse;
#[cfg(test)]
pub(crate) mod testing;
pub mod title;

use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

pub use chunk::{CHUNKER_VERSION, ChunkConfig, TextChunk, TokenCounter};

/// A document ready to embed: metadata plus its passages.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedDocument {
    pub id: String,
    pub source: String,
    pub title: String,
    /// ISO 639-1 code of the document's main language.
    pub language: String,
    pub published: Option<String>,
    pub url: Option<String>,
    pub metadata: crate::metadata::Metadata,
    /// The original text; citation offsets index into it (in chars).
    pub text: String,
    /// SHA-256 of `text`, hex.
    pub content_hash: String,
    pub chunks: Vec<PreparedChunk>,
}

/// A passage with the language detected for it.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedChunk {
    pub chunk: TextChunk,
    pub language: String,
}

/// What the caller knows about a document besides its text.
#[derive(Debug, Clone, Default)]
pub struct DocumentInput {
    pub id: String,
    pub text: String,
    /// Overrides the parsed title when non-empty.
    pub title: String,
    /// Defaults to the id when empty.
    pub source: String,
    /// Overrides detection when non-empty.
    pub language: String,
    /// Added to (and overriding) what the text's front matter or HTML
    /// `<meta>` tags give.
    pub metadata: crate::metadata::Metadata,
    /// Overrides the parsed URL (front matter, canonical link) when non-empty.
    pub url: String,
    /// Overrides the parsed publication date when non-empty.
    pub published: String,
}

/// Hex SHA-256 of a text: identifies document contents.
pub fn content_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Parses, chunks and language-tags one document.
pub fn prepare(
    input: DocumentInput,
    counter: &dyn TokenCounter,
    config: ChunkConfig,
) -> PreparedDocument {
    prepare_unless(input, counter, config, &AtomicBool::new(false)).expect("never cancelled")
}

/// [`prepare`], given up (`None`) soon after `cancelled` is set: checked
/// between stages and at every token count inside the chunker.
pub fn prepare_unless(
    input: DocumentInput,
    counter: &dyn TokenCounter,
    config: ChunkConfig,
    cancelled: &AtomicBool,
) -> Option<PreparedDocument> {
    let is_cancelled = || cancelled.load(Ordering::Relaxed);
    let parsed = parse::parse(&input.text);
    if is_cancelled() {
        return None;
    }
    let clean_text: String = parsed.clean.chars.iter().collect();
    let language = if input.language.is_empty() {
        lang::detect(&clean_text)
            .unwrap_or(lang::UNKNOWN)
            .to_string()
    } else {
        input.language.clone()
    };
    if is_cancelled() {
        return None;
    }
    let counter = Cancellable { counter, cancelled };
    let chunks = chunk::chunk(&parsed.clean, &counter, config);
    if is_cancelled() {
        return None;
    }
    let chunks = chunks
        .into_iter()
        .map(|chunk| {
            // Short or mixed passages detect poorly: trust the document's
            // language unless the passage is clearly in another one.
            let language = lang::detect_confident(&chunk.text)
                .map_or_else(|| language.clone(), str::to_string);
            PreparedChunk { chunk, language }
        })
        .collect();
    let title = if input.title.trim().is_empty() {
        parsed.title
    } else {
        input.title.trim().to_string()
    };
    let mut metadata = crate::metadata::sanitize(&input.id, parsed.metadata);
    metadata.extend(input.metadata);
    let or_parsed = |given: String, parsed: Option<String>| {
        if given.trim().is_empty() {
            parsed
        } else {
            Some(given.trim().to_string())
        }
    };
    Some(PreparedDocument {
        url: or_parsed(input.url, parsed.url),
        published: or_parsed(input.published, parsed.published),
        metadata,
        source: if input.source.is_empty() {
            input.id.clone()
        } else {
            input.source
        },
        id: input.id,
        title,
        language,
        content_hash: content_hash(&input.text),
        text: input.text,
        chunks,
    })
}

/// A token counter that reports every text as one token once `cancelled`
/// is set, so the chunker (whose cost is its token counts: minutes for a
/// pathological 5 MB document) runs out at once; its output is then
/// thrown away.
struct Cancellable<'a> {
    counter: &'a dyn TokenCounter,
    cancelled: &'a AtomicBool,
}

impl TokenCounter for Cancellable<'_> {
    fn count(&self, text: &str) -> usize {
        if self.cancelled.load(Ordering::Relaxed) {
            1
        } else {
            self.counter.count(text)
        }
    }
}
