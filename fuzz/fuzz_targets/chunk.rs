//! Fuzzes `wenda::ingest::chunk::chunk` on parsed text: it never panics, and
//! every passage's citation is consistent: `char_start..char_end` lies in the
//! original and is its sentences' span, each sentence is the original span of
//! its clean range, `text` is the clean slice and holds each sentence where
//! `clean_sentences` says, the token budget holds (or the passage is one
//! sentence), passages move forward, and every visible clean char is in one.
//! The first two bytes pick the budget and the overlap, the third the counter.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use wenda::ingest::TokenCounter;
use wenda::ingest::chunk::{ChunkConfig, chunk};
use wenda::ingest::parse::parse;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    // Budgets from 4 to 160 tokens (the server takes 16 to 500; smaller ones
    // cut more sentences), overlap below the budget as the server requires.
    let max_tokens = 4 + usize::from(data[0]) % 157;
    let overlap_tokens = usize::from(data[1]) % max_tokens;
    let config = ChunkConfig {
        max_tokens,
        overlap_tokens,
    };
    let counter: &dyn TokenCounter = if data[2] & 1 == 0 {
        &common::ApproxCounter
    } else {
        &common::WordCounter
    };
    let original = common::text(&data[3..]);
    let chars: Vec<char> = original.chars().collect();
    let n = chars.len();
    let doc = parse(&original);
    common::check_clean(&chars, &doc);
    let clean = &doc.clean;

    let chunks = chunk(clean, counter, config);
    let mut covered = vec![false; clean.len()];
    let mut previous_start: Option<usize> = None;
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.index as usize, i);
        assert!(
            c.char_start < c.char_end && c.char_end <= n,
            "chunk {i}: {}..{} outside 0..{n}",
            c.char_start,
            c.char_end
        );
        assert!(!c.text.trim().is_empty(), "chunk {i} is blank");
        assert!(!c.sentences.is_empty());
        assert_eq!(c.sentences.len(), c.clean_sentences.len());
        assert_eq!(c.sentences[0].start, c.char_start);
        assert_eq!(c.sentences.last().unwrap().end, c.char_end);
        assert_eq!(c.clean_sentences[0].start, c.clean_start);
        let clean_end = c.clean_sentences.last().unwrap().end;
        assert!(clean_end <= clean.len());
        assert_eq!(
            c.text,
            clean.text(c.clean_start..clean_end),
            "chunk {i}: text is not its clean slice"
        );
        let text: Vec<char> = c.text.chars().collect();
        for (k, (s, cs)) in c.sentences.iter().zip(&c.clean_sentences).enumerate() {
            assert!(s.start < s.end && s.start >= c.char_start && s.end <= c.char_end);
            assert!(cs.start < cs.end && cs.start >= c.clean_start && cs.end <= clean_end);
            assert_eq!(
                *s,
                clean.original_span(cs.clone()),
                "chunk {i} sentence {k}"
            );
            let in_text: String = text[cs.start - c.clean_start..cs.end - c.clean_start]
                .iter()
                .collect();
            assert_eq!(in_text, clean.text(cs.clone()));
            assert!(
                !in_text.trim().is_empty() && in_text.trim() == in_text,
                "sentence {k} of chunk {i} is not trimmed: {in_text:?}"
            );
            if k > 0 {
                let prev = &c.clean_sentences[k - 1];
                assert!(cs.start >= prev.end, "sentences overlap in chunk {i}");
                assert!(
                    s.start >= c.sentences[k - 1].start,
                    "sentence spans out of order in chunk {i}"
                );
            }
            covered[cs.clone()].iter_mut().for_each(|v| *v = true);
        }
        assert_eq!(c.tokens, counter.count(&c.text));
        assert!(
            c.tokens <= max_tokens || c.sentences.len() == 1,
            "chunk {i}: {} tokens over {max_tokens} in {} sentences",
            c.tokens,
            c.sentences.len()
        );
        if let Some(p) = previous_start {
            assert!(c.clean_start > p, "chunk {i} does not move forward");
        }
        previous_start = Some(c.clean_start);
    }
    for (k, ch) in clean.chars.iter().enumerate() {
        assert!(
            covered[k] || ch.is_whitespace(),
            "clean char {k} {ch:?} is in no passage"
        );
    }
});
