//! Lexical retrieval: BM25 over words, with Chinese segmented by `jieba-rs`
//! and Latin-script and Vietnamese text split into words and syllables
//! (English words indexed by their stems), so
//! names and numbers match across languages, and queries translated by the
//! dictionary scored as concepts.
//!
//! - [`terms`]: text to terms.
//! - [`bm25`]: the index and its scoring.
//! - [`lexicon`]: Chinese↔English and Vietnamese→Chinese dictionary lookups.
//! - [`diacritics`]: Vietnamese marks put back on questions typed without.
//! - [`spelling`]: misspelt English query words corrected against the
//!   dictionary's vocabulary.

pub mod bm25;
pub mod diacritics;
pub mod lexicon;
pub mod spelling;
pub mod terms;
#[cfg(test)]
mod tests;

pub use bm25::{LexicalHit, LexicalIndex, LexicalQuery};
pub use lexicon::Lexicon;
pub use terms::{TermTokenizer, fold, is_han};
