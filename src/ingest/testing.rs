//! Test helpers for ingest and the layers above: a token counter that
//! needs no tokenizer files, and generators of documents for property tests.

use proptest::prelude::*;

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

/// Pieces of plain text in the corpus languages, with odd whitespace and
/// combining marks.
pub fn plain_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("OpenStack 是一个开源项目。".to_string()),
        Just("它由 Rackspace 和 NASA 发起！".to_string()),
        Just("The foundation joined in 2025. ".to_string()),
        Just("Is it? Yes; it is.".to_string()),
        Just("Việt Nam có nhiều dự án mã nguồn mở. ".to_string()),
        Just("e\u{301}👍🏽 ".to_string()),
        Just("\n".to_string()),
        Just("\n\n".to_string()),
        Just("  ".to_string()),
        "[a-zA-Z0-9 ,.]{0,40}",
        "[\u{4e00}-\u{4fff}，。]{0,40}",
    ]
}

/// Plain pieces and the markdown and HTML the cleaner removes.
pub fn markup_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        plain_piece(),
        Just("<p style=\"a\">".to_string()),
        Just("</p>".to_string()),
        Just("<br/>".to_string()),
        Just("<span class='x'>云</span>".to_string()),
        Just("&amp;".to_string()),
        Just("&nbsp;".to_string()),
        Just("[Linux 基金会](https://lf.org/a?b=c)".to_string()),
        Just("![img](https://x/y.jpg)".to_string()),
        Just("**bold**".to_string()),
        Just("\n## Heading\n".to_string()),
        Just("<!-- note -->".to_string()),
    ]
}
