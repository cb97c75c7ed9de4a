//! Splits clean text into passages: sentence-aware for Chinese, Latin-script
//! and Vietnamese text, sized by the embedding model's own tokenizer, with a
//! sentence of overlap, never splitting a grapheme.

use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

use super::parse::CleanText;

/// Bump when chunk boundaries change: stored passages from another version
/// are rebuilt at start-up.
pub const CHUNKER_VERSION: &str = "sentences-v3";

/// Counts model tokens in a text (no special tokens, no prefix).
pub trait TokenCounter: Send + Sync {
    fn count(&self, text: &str) -> usize;
}

/// Chunk sizing, in model tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkConfig {
    /// Upper bound of a passage's tokens (prefix and special tokens excluded).
    pub max_tokens: usize,
    /// Tokens of trailing sentences repeated at the start of the next passage.
    pub overlap_tokens: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        Self {
            max_tokens: 96,
            overlap_tokens: 40,
        }
    }
}

/// One passage of a document, before embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct TextChunk {
    pub index: u32,
    /// The clean text of the passage.
    pub text: String,
    /// Span in the original document, in chars.
    pub char_start: usize,
    pub char_end: usize,
    /// Sentence spans in the original document, in chars, in order.
    pub sentences: Vec<Range<usize>>,
    /// Where `text` starts in the document's clean text, in chars.
    pub clean_start: usize,
    /// The same sentences in the document's clean text, in chars: `text`
    /// holds each at `range - clean_start`.
    pub clean_sentences: Vec<Range<usize>>,
    /// Model tokens of `text` (no prefix, no special tokens).
    pub tokens: usize,
}

/// A sentence as a range of clean chars, with its token count.
#[derive(Debug, Clone)]
struct Sentence {
    range: Range<usize>,
    tokens: usize,
}

/// Splits `clean` into passages of at most `config.max_tokens` tokens.
pub fn chunk(clean: &CleanText, counter: &dyn TokenCounter, config: ChunkConfig) -> Vec<TextChunk> {
    let sentences = sentences(clean, counter, config.max_tokens);
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < sentences.len() {
        let mut end = start;
        let mut tokens = 0;
        while end < sentences.len()
            && (end == start || tokens + sentences[end].tokens <= config.max_tokens)
        {
            tokens += sentences[end].tokens;
            end += 1;
        }
        // Sentence counts do not add up exactly to the count of their
        // concatenation (word pieces can merge across a boundary): check the
        // whole and give back sentences until it fits.
        let (text, tokens) = loop {
            let text = clean.text(sentences[start].range.start..sentences[end - 1].range.end);
            let tokens = counter.count(&text);
            if tokens <= config.max_tokens || end - start == 1 {
                break (text, tokens);
            }
            end -= 1;
        };
        let span = clean.original_span(sentences[start].range.start..sentences[end - 1].range.end);
        chunks.push(TextChunk {
            index: chunks.len() as u32,
            tokens,
            text,
            char_start: span.start,
            char_end: span.end,
            sentences: sentences[start..end]
                .iter()
                .map(|s| clean.original_span(s.range.clone()))
                .collect(),
            clean_start: sentences[start].range.start,
            clean_sentences: sentences[start..end]
                .iter()
                .map(|s| s.range.clone())
                .collect(),
        });
        if end == sentences.len() {
            break;
        }
        // Overlap: restart at the earliest trailing sentences that fit the
        // overlap budget, but always move forward.
        let mut next = end;
        let mut overlap = 0;
        while next > start + 1 && overlap + sentences[next - 1].tokens <= config.overlap_tokens {
            overlap += sentences[next - 1].tokens;
            next -= 1;
        }
        start = next;
    }
    chunks
}

/// Sentence ranges over clean chars, trimmed, non-empty; a sentence longer
/// than `max_tokens` is cut at clause punctuation, then at graphemes.
fn sentences(clean: &CleanText, counter: &dyn TokenCounter, max_tokens: usize) -> Vec<Sentence> {
    let text: String = clean.chars.iter().collect();
    // Map byte offsets of `text` to char indices.
    let mut char_at_byte = vec![0usize; text.len() + 1];
    for (ci, (bi, _)) in text.char_indices().enumerate() {
        char_at_byte[bi] = ci;
    }
    char_at_byte[text.len()] = clean.len();

    let mut out = Vec::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        for (offset, piece) in line.split_sentence_bound_indices() {
            for (sub_offset, sub) in split_after(piece, &['；', ';']) {
                let lead = sub.len() - sub.trim_start().len();
                let trimmed = sub.trim();
                if trimmed.is_empty() {
                    continue;
                }
                let b = line_start + offset + sub_offset + lead;
                let range = char_at_byte[b]..char_at_byte[b + trimmed.len()];
                push_bounded(&mut out, trimmed, range, counter, max_tokens);
            }
        }
        line_start += line.len();
    }
    out
}

/// Splits after each terminator char, keeping it with the piece before.
fn split_after<'a>(s: &'a str, terminators: &[char]) -> Vec<(usize, &'a str)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if terminators.contains(&c) {
            let end = i + c.len_utf8();
            out.push((start, &s[start..end]));
            start = end;
        }
    }
    if start < s.len() {
        out.push((start, &s[start..]));
    }
    out
}

/// Pushes a sentence, cutting it when it is over the token budget.
fn push_bounded(
    out: &mut Vec<Sentence>,
    text: &str,
    range: Range<usize>,
    counter: &dyn TokenCounter,
    max: usize,
) {
    let tokens = counter.count(text);
    if tokens <= max {
        out.push(Sentence { range, tokens });
        return;
    }
    // Clause punctuation first, then plain graphemes, packed up to the budget.
    let clause_pieces = split_after(text, &['，', ',', '、', '：', ':']);
    let pieces: Vec<(usize, &str)> = if clause_pieces.len() > 1 {
        clause_pieces
    } else {
        text.grapheme_indices(true).collect()
    };
    let mut piece_start_byte = 0;
    let mut acc_end_byte = 0;
    let mut char_cursor = range.start;
    let flush =
        |from_byte: usize, to_byte: usize, out: &mut Vec<Sentence>, char_cursor: &mut usize| {
            let part = &text[from_byte..to_byte];
            let n_chars = part.chars().count();
            let r = *char_cursor..*char_cursor + n_chars;
            *char_cursor += n_chars;
            let lead = part.len() - part.trim_start().len();
            let trail = part.len() - part.trim_end().len();
            let trimmed = part.trim();
            if trimmed.is_empty() {
                return;
            }
            let lead_chars = part[..lead].chars().count();
            let trail_chars = part[part.len() - trail..].chars().count();
            let r = r.start + lead_chars..r.end - trail_chars;
            let tokens = counter.count(trimmed);
            if tokens > max && trimmed.graphemes(true).count() > 1 {
                push_bounded(out, trimmed, r, counter, max);
            } else {
                out.push(Sentence { range: r, tokens });
            }
        };
    for (offset, piece) in pieces {
        let candidate = &text[piece_start_byte..offset + piece.len()];
        if acc_end_byte > piece_start_byte && counter.count(candidate) > max {
            flush(piece_start_byte, acc_end_byte, out, &mut char_cursor);
            piece_start_byte = acc_end_byte;
        }
        acc_end_byte = offset + piece.len();
    }
    if acc_end_byte > piece_start_byte {
        flush(piece_start_byte, acc_end_byte, out, &mut char_cursor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse::parse;
    use crate::ingest::testing::ApproxCounter;

    fn original_slice(original: &str, c: &TextChunk) -> String {
        original
            .chars()
            .skip(c.char_start)
            .take(c.char_end - c.char_start)
            .collect()
    }

    #[test]
    fn plain_text_chunks_are_exact_slices() {
        let original = "OpenStack 是一个开源项目。它由 Rackspace 和 NASA 发起！\n\nThe foundation joined the Linux Foundation. It did so in 2025? Yes; it did.\nViệt Nam có nhiều dự án. Đây là câu thứ hai.";
        let clean = parse(original).clean;
        let chunks = chunk(
            &clean,
            &ApproxCounter,
            ChunkConfig {
                max_tokens: 12,
                overlap_tokens: 4,
            },
        );
        assert!(chunks.len() > 2);
        for c in &chunks {
            assert_eq!(original_slice(original, c), c.text);
            assert!(c.tokens <= 12 || c.sentences.len() == 1, "{c:?}");
        }
    }

    #[test]
    fn long_sentence_is_cut_within_budget_at_grapheme_boundaries() {
        let original = "很".repeat(50) + "e\u{301}" + &"长".repeat(50);
        let clean = parse(&original).clean;
        let chunks = chunk(
            &clean,
            &ApproxCounter,
            ChunkConfig {
                max_tokens: 20,
                overlap_tokens: 0,
            },
        );
        for c in &chunks {
            assert!(c.tokens <= 20);
            assert_eq!(original_slice(&original, c), c.text);
            assert!(!c.text.starts_with('\u{301}'));
        }
        let joined: String = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(joined, original);
    }

    #[test]
    fn overlap_repeats_the_last_sentence() {
        let original = "One two three. Four five six. Seven eight nine. Ten eleven twelve.";
        let clean = parse(original).clean;
        let chunks = chunk(
            &clean,
            &ApproxCounter,
            ChunkConfig {
                max_tokens: 8,
                overlap_tokens: 4,
            },
        );
        assert!(chunks.len() >= 2);
        assert!(chunks[1].text.starts_with("Four") || chunks[1].text.starts_with("Seven"));
        assert!(chunks[0].text.contains("Four"));
    }

    mod properties {
        use super::*;
        use crate::ingest::testing::{markup_piece, plain_piece};
        use proptest::prelude::*;

        fn config() -> impl Strategy<Value = ChunkConfig> {
            (8usize..60, 0usize..8).prop_map(|(max_tokens, overlap)| ChunkConfig {
                max_tokens,
                overlap_tokens: overlap.min(max_tokens / 2),
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]

            /// Plain text: every chunk is exactly its cited slice, and no
            /// visible character is left out of every chunk.
            #[test]
            fn plain_text_offsets_round_trip(pieces in prop::collection::vec(plain_piece(), 0..40), config in config()) {
                let original: String = pieces.concat();
                let chars: Vec<char> = original.chars().collect();
                let chunks = chunk(&parse(&original).clean, &ApproxCounter, config);
                let mut covered = vec![false; chars.len()];
                for c in &chunks {
                    prop_assert!(c.char_start < c.char_end && c.char_end <= chars.len());
                    prop_assert_eq!(original_slice(&original, c), c.text.clone());
                    covered[c.char_start..c.char_end].iter_mut().for_each(|k| *k = true);
                }
                for (k, ch) in chars.iter().enumerate() {
                    prop_assert!(covered[k] || ch.is_whitespace(), "char {} {:?} in no chunk", k, ch);
                }
            }

            /// Markup: every clean char comes from inside its chunk's cited
            /// span, and a char that maps to one original char is that char.
            #[test]
            fn markup_offsets_stay_inside_citations(pieces in prop::collection::vec(markup_piece(), 0..40), config in config()) {
                let original: String = pieces.concat();
                let chars: Vec<char> = original.chars().collect();
                let clean = parse(&original).clean;
                for (c, origin) in clean.chars.iter().zip(&clean.origin) {
                    prop_assert!(origin.start < origin.end && origin.end <= chars.len());
                    if origin.len() == 1 && !c.is_whitespace() {
                        prop_assert_eq!(chars[origin.start], *c);
                    }
                }
                for c in chunk(&clean, &ApproxCounter, config) {
                    prop_assert!(c.char_start < c.char_end && c.char_end <= chars.len());
                    let slice = original_slice(&original, &c);
                    let mut rest = slice.chars();
                    // Visible chars of the chunk appear in order inside the span
                    // (decoded entities like &amp; keep their first char).
                    for ch in c.text.chars().filter(|c| !c.is_whitespace()) {
                        prop_assert!(rest.any(|o| o == ch), "{:?} not in span {:?}", ch, slice);
                    }
                    prop_assert!(!c.text.contains("<p") && !c.text.contains("](") && !c.text.contains("&nbsp;"));
                }
            }

            /// Arbitrary text, markup fragments and all: cleaning and
            /// chunking never panic and every citation stays in bounds.
            #[test]
            fn arbitrary_text_never_breaks_cleaning_or_chunking(
                pieces in prop::collection::vec(prop_oneof![".{0,30}", markup_piece(), "[<>&;\\[\\]()!#*_-]{0,8}"], 0..30),
                config in config(),
            ) {
                let original: String = pieces.concat();
                let n = original.chars().count();
                let parsed = parse(&original);
                for origin in &parsed.clean.origin {
                    prop_assert!(origin.start < origin.end && origin.end <= n);
                }
                for c in chunk(&parsed.clean, &ApproxCounter, config) {
                    prop_assert!(c.char_start < c.char_end && c.char_end <= n);
                    prop_assert!(!c.text.trim().is_empty());
                    for s in &c.sentences {
                        prop_assert!(s.start >= c.char_start && s.end <= c.char_end);
                    }
                }
            }
        }
    }
}
