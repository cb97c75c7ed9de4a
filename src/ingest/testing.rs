//! Test helpers for the layers above ingest: a token counter that needs no
//! tokenizer files.

use super::TokenCounter;

/// Counts one token per CJK char and per Latin word: close enough to the
/// model's tokenizer for unit tests of the packing logic.
pub struct ApproxCounter;

impl TokenCounter for ApproxCounter {
    fn count(&self, text: &str) -> usize {
        let mut n = 0;
        let mut in_word = false;
        for c in text.chars() {
            if c.is_alphanumeric() && (c as u32) < 0x2E80 {
                if !in_word {
                    n += 1;
                }
                in_word = true;
            } else {
                in_word = false;
                if !c.is_whitespace() {
                    n += 1;
                }
            }
        }
        n
    }
}
