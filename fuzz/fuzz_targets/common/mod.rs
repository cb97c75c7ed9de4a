//! Shared by the fuzz targets: a token counter that needs no tokenizer
//! files, and the checks of a cleaned document's offset map.

#![allow(dead_code)]

use wenda::ingest::TokenCounter;
use wenda::ingest::parse::{CleanText, ParsedDocument};

/// A copy of wenda's test-only `ingest::testing::ApproxCounter`: one token
/// per CJK char and per Latin word, one per other visible char.
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

/// One token per whitespace-separated word: coarser than the model's
/// tokenizer, so long unbroken runs reach the grapheme cutter.
pub struct WordCounter;

impl TokenCounter for WordCounter {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

/// The input as text: libFuzzer's bytes, invalid UTF-8 replaced, so every
/// input reaches the code under test.
pub fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// What the proptests of `ingest::chunk` assert of a parse, plus order:
/// - one origin per clean char, each a non-empty range inside the original;
/// - a clean char that stands for one original char (and is not
///   whitespace the cleaner made) is that char;
/// - origins in order: two neighbours share a span (the chars of one
///   decoded entity) or the second starts where the first ends or later;
/// - `text` and `original_span` work on every range in bounds.
pub fn check_clean(original: &[char], doc: &ParsedDocument) {
    let clean: &CleanText = &doc.clean;
    let n = original.len();
    assert_eq!(
        clean.chars.len(),
        clean.origin.len(),
        "one origin per clean char"
    );
    assert_eq!(clean.len(), clean.chars.len());
    assert_eq!(clean.is_empty(), clean.chars.is_empty());
    for (k, (c, origin)) in clean.chars.iter().zip(&clean.origin).enumerate() {
        assert!(
            origin.start < origin.end && origin.end <= n,
            "clean char {k} {c:?}: origin {origin:?} outside 0..{n}"
        );
        if origin.len() == 1 && !c.is_whitespace() {
            assert_eq!(
                original[origin.start], *c,
                "clean char {k} maps to one original char that differs"
            );
        }
        if k > 0 {
            let prev = &clean.origin[k - 1];
            assert!(
                prev == origin || origin.start >= prev.end,
                "origins out of order at clean char {k}: {prev:?} then {origin:?}"
            );
        }
    }
    let len = clean.len();
    let all = clean.text(0..len);
    assert_eq!(all.chars().count(), len);
    if len > 0 {
        let span = clean.original_span(0..len);
        assert!(
            span.start < span.end && span.end <= n,
            "whole span {span:?} of {n}"
        );
        // A few sub-ranges, chosen from the length so every run differs.
        for (a, b) in [
            (0, 1),
            (len / 3, len / 2 + 1),
            (len - 1, len),
            (len / 2, len),
        ] {
            let (a, b) = (a.min(len - 1), b.clamp(a.min(len - 1) + 1, len));
            let s = clean.text(a..b);
            assert_eq!(s.chars().count(), b - a);
            let span = clean.original_span(a..b);
            assert!(
                span.start < span.end && span.end <= n,
                "span {span:?} of {a}..{b}"
            );
            assert!(span.start >= clean.origin[a].start && span.end >= clean.origin[b - 1].end);
        }
    }
    // Whatever the title came from, it is text, and so is the date.
    let _ = doc.title.chars().count();
    let _ = doc.published.as_deref().map(str::len);
}
