//! Ranking: the fusion of dense and lexical candidates, and the sentences
//! of a passage that support a query. (The language centring of dense
//! vectors is part of the embedding space: `embed::centroids`.)

use std::collections::{HashMap, HashSet};

use crate::index::ScoredId;
use crate::lexical::{LexicalHit, TermTokenizer, is_han};
use crate::store::StoredPassage;
use crate::types::{Explanation, Highlight, SearchMode};

/// How many candidates each retriever contributes before fusion.
pub fn candidate_pool(top_k: usize) -> usize {
    (top_k * 4).max(FUSION_DEPTH)
}

/// A fused candidate.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: u64,
    pub score: f32,
    pub explanation: Explanation,
}

/// Reciprocal rank fusion constant: 60 is the value from Cormack et al.
/// (2009) and works without tuning.
const RRF_K: f32 = 60.0;

/// Weight of the lexical list against the dense one in hybrid fusion: dense
/// ahead, because the lexical list's cross-language matches come from
/// dictionary translations, which are noisy. The middle of the 0.6–0.8 band
/// that scores best on the dev set (docs/retrieval.md).
pub const DEFAULT_LEXICAL_WEIGHT: f32 = 0.7;

/// How hybrid mode merges the dense and the lexical list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Fusion {
    /// Reciprocal rank fusion (k = 60): ranks only, scores ignored.
    Rrf,
    /// A weighted sum of each list's scores, min–max scaled to 0..1 over
    /// the list's candidates (0 when absent from a list): a passage far
    /// ahead in one list keeps its lead, which ranks ignore. As good as or
    /// better than RRF at every lexical weight measured (docs/retrieval.md).
    #[default]
    Convex,
}

/// How far down each list hybrid fusion looks. Fixed, not derived from
/// `top_k`: a passage's fused score then depends only on the first
/// `FUSION_DEPTH` entries of each list, so a client asking for 50 results
/// gets the same first 10 as one asking for 10 (the candidate pool grows
/// with `top_k`, and scaling over the whole pool moved the minimum and with
/// it every fused score: all 20 dev questions ranked their first 10
/// differently at `top_k` 10 and 50).
pub const FUSION_DEPTH: usize = 50;

/// Fuses dense and lexical candidates, each list best first. Dense alone
/// keeps cosine scores, lexical alone BM25 scores, hybrid the `fusion` of
/// both. `lexical_weight` scales the lexical list against the dense one.
///
/// In hybrid mode only the first [`FUSION_DEPTH`] entries of a list count
/// towards the score; a candidate found only deeper in both lists scores 0
/// and is ordered after the others by its deeper entries.
pub fn fuse(
    mode: SearchMode,
    dense: &[ScoredId],
    lexical: &[LexicalHit],
    fusion: Fusion,
    lexical_weight: f32,
) -> Vec<Candidate> {
    // Min–max over the list's first FUSION_DEPTH scores; deeper entries
    // scale below 0 and count only in the tie-break.
    let scale = |scores: &mut dyn Iterator<Item = f32>| {
        let (lo, hi) = scores
            .take(FUSION_DEPTH)
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| {
                (lo.min(s), hi.max(s))
            });
        move |s: f32| if hi > lo { (s - lo) / (hi - lo) } else { 1.0 }
    };
    let dense_scaled = scale(&mut dense.iter().map(|d| d.score));
    let lexical_scaled = scale(&mut lexical.iter().map(|l| l.score));
    let mut by_id: HashMap<u64, Candidate> = HashMap::new();
    for (i, d) in dense.iter().enumerate() {
        let c = by_id.entry(d.id).or_insert_with(|| Candidate {
            id: d.id,
            score: 0.0,
            explanation: Explanation::default(),
        });
        c.explanation.dense_score = Some(d.score);
        c.explanation.dense_rank = Some(i as u32 + 1);
    }
    for (i, l) in lexical.iter().enumerate() {
        let c = by_id.entry(l.id).or_insert_with(|| Candidate {
            id: l.id,
            score: 0.0,
            explanation: Explanation::default(),
        });
        c.explanation.lexical_score = Some(l.score);
        c.explanation.lexical_rank = Some(i as u32 + 1);
    }
    let within = |rank: Option<u32>| rank.is_some_and(|r| r as usize <= FUSION_DEPTH);
    let mut out: Vec<(Candidate, f32)> = by_id
        .into_values()
        .map(|mut c| {
            let e = &c.explanation;
            let (score, tie_break) = match mode {
                SearchMode::Dense => (e.dense_score.unwrap_or(0.0), 0.0),
                SearchMode::Lexical => (e.lexical_score.unwrap_or(0.0), 0.0),
                SearchMode::Hybrid => {
                    let (dense_value, lexical_value) = match fusion {
                        Fusion::Rrf => (
                            e.dense_rank.map_or(0.0, |r| 1.0 / (RRF_K + r as f32)),
                            e.lexical_rank
                                .map_or(0.0, |r| lexical_weight / (RRF_K + r as f32)),
                        ),
                        Fusion::Convex => (
                            e.dense_score.map_or(0.0, &dense_scaled) / (1.0 + lexical_weight),
                            lexical_weight * e.lexical_score.map_or(0.0, &lexical_scaled)
                                / (1.0 + lexical_weight),
                        ),
                    };
                    // Each value is 0 for a list the candidate is absent from.
                    let counted = |rank: Option<u32>, value: f32| {
                        if within(rank) { value } else { 0.0 }
                    };
                    let score =
                        counted(e.dense_rank, dense_value) + counted(e.lexical_rank, lexical_value);
                    // Only the tail is ordered by its deeper entries: a
                    // tie-break for the others would let a longer pool
                    // reorder equal scores.
                    let in_tail = !within(e.dense_rank) && !within(e.lexical_rank);
                    (
                        score,
                        if in_tail {
                            dense_value + lexical_value
                        } else {
                            0.0
                        },
                    )
                }
            };
            c.score = score;
            c.explanation.fused_score = score;
            (c, tie_break)
        })
        .collect();
    out.sort_by(|(a, a_tie), (b, b_tie)| {
        b.score
            .total_cmp(&a.score)
            .then(b_tie.total_cmp(a_tie))
            .then(a.id.cmp(&b.id))
    });
    out.into_iter().map(|(c, _)| c).collect()
}

/// Whether two passages of one document share characters.
pub fn overlaps(a: &StoredPassage, b: &StoredPassage) -> bool {
    a.doc_id == b.doc_id && a.char_start < b.char_end && b.char_start < a.char_end
}

/// What a response does with overlapping passages of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Overlap {
    /// The better-ranked passage takes the other in: one passage, one
    /// citation spanning both, every sentence of both.
    #[default]
    Merge,
    /// The lower-ranked passage is left out.
    Drop,
}

/// Grows `kept` to also cover `other`, an overlapping passage of the same
/// document: the clean texts join at their shared characters, the citation
/// spans both, the sentences are those of both. False (and `kept` as it
/// was) when the two do not overlap or carry no clean offsets.
pub fn merge_into(kept: &mut StoredPassage, other: &StoredPassage) -> bool {
    if !overlaps(kept, other) || kept.clean_sentences.is_empty() || other.clean_sentences.is_empty()
    {
        return false;
    }
    let end = |p: &StoredPassage| p.clean_start + p.text.chars().count();
    let (first, second) = if other.clean_start < kept.clean_start {
        (other, &*kept)
    } else {
        (&*kept, other)
    };
    let shared = end(first).saturating_sub(second.clean_start);
    let mut text = first.text.clone();
    if end(second) > end(first) {
        text.extend(second.text.chars().skip(shared));
    }
    let mut sentences: Vec<((usize, usize), (usize, usize))> = first
        .sentences
        .iter()
        .copied()
        .zip(first.clean_sentences.iter().copied())
        .chain(
            second
                .sentences
                .iter()
                .copied()
                .zip(second.clean_sentences.iter().copied()),
        )
        .collect();
    sentences.sort_by_key(|&(_, clean)| clean);
    sentences.dedup();
    kept.clean_start = first.clean_start;
    kept.text = text;
    kept.char_start = kept.char_start.min(other.char_start);
    kept.char_end = kept.char_end.max(other.char_end);
    kept.chunk_index = kept.chunk_index.min(other.chunk_index);
    kept.tokens += other.tokens;
    (kept.sentences, kept.clean_sentences) = sentences.into_iter().unzip();
    true
}

/// The terms highlights look for: the query's, and its translations, so an
/// English question highlights the Chinese sentence that names 腾讯.
/// Computed once per query, not once per hit.
pub fn highlight_terms(query: &str, translations: &[String]) -> HashSet<String> {
    TermTokenizer
        .terms(query)
        .into_iter()
        .chain(translations.iter().flat_map(|w| TermTokenizer.terms(w)))
        .collect()
}

/// The sentences of `passage` mentioning the most query terms, each term
/// weighted by its length (up to 8 characters); at most two, best first.
///
/// A sentence is read and scored as clean text (the passage's own text, at
/// the sentence's clean offsets) and cited by the span of the original it
/// came from: for plain text the two are the same characters; for markup
/// the span covers the markup the sentence was cleaned from.
pub fn highlights(passage: &StoredPassage, query_terms: &HashSet<String>) -> Vec<Highlight> {
    if query_terms.is_empty() {
        return Vec::new();
    }
    let chars: Vec<char> = passage.text.chars().collect();
    let total: f32 = query_terms
        .iter()
        .map(|t| t.chars().count().min(8) as f32)
        .sum();
    let mut scored: Vec<Highlight> = passage
        .sentences
        .iter()
        .zip(&passage.clean_sentences)
        .filter_map(|(&(start, end), &(clean_start, clean_end))| {
            let from = clean_start.checked_sub(passage.clean_start)?;
            let to = clean_end.checked_sub(passage.clean_start)?;
            (start < end && from < to && to <= chars.len())
                .then(|| (start, end, chars[from..to].iter().collect::<String>()))
        })
        .map(|(start, end, text)| {
            let lower = text.to_lowercase();
            let matched: f32 = query_terms
                .iter()
                .filter(|t| mentions(&lower, t))
                .map(|t| t.chars().count().min(8) as f32)
                .sum();
            Highlight {
                text,
                char_start: start,
                char_end: end,
                score: matched / total.max(1.0),
            }
        })
        .filter(|h| h.score > 0.0)
        .collect();
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.char_start.cmp(&b.char_start))
    });
    scored.truncate(2);
    scored
}

/// A logistic model of whether a passage answers a query, over evidence
/// that does not depend on the other candidates. Fitted by
/// `bench/fit_relevance.py` on labelled pairs from the dev, robustness,
/// Vietnamese probe, fresh and both sets of unanswerable questions
/// (docs/retrieval.md has the data, the fit and the held-out figures).
#[derive(Debug, Clone, Copy)]
pub struct RelevanceModel {
    pub bias: f32,
    pub cosine: f32,
    pub concepts: f32,
    pub both_lists: f32,
    pub lacks_asked_number: f32,
}

/// The fitted weights (`bench/fit_relevance.py --write` prints them).
pub const RELEVANCE: RelevanceModel = RelevanceModel {
    bias: -7.302,
    cosine: 9.559,
    concepts: 4.464,
    both_lists: 1.753,
    lacks_asked_number: -6.046,
};

/// The relevance the first passage needs for a response to be answerable,
/// chosen from the fit (docs/retrieval.md).
pub const DEFAULT_ANSWER_THRESHOLD: f32 = 0.153;

/// The estimated probability that a passage with this evidence answers
/// its query, in [0, 1].
pub fn relevance(e: &crate::types::Evidence) -> f32 {
    let m = RELEVANCE;
    let z = m.bias
        + m.cosine * e.cosine
        + m.concepts * e.concepts
        + m.both_lists * f32::from(u8::from(e.both_lists))
        + m.lacks_asked_number * f32::from(u8::from(e.lacks_asked_number));
    1.0 / (1.0 + (-z).exp())
}

/// Whether the lower-cased `sentence` mentions `term` (a lower-cased term of
/// `TermTokenizer`): a Chinese term anywhere, since Chinese has no spaces, and
/// any other as a whole word. Substring tests rather than segmenting every
/// sentence of every hit again: the segmenter was most of the ranking time.
fn mentions(sentence: &str, term: &str) -> bool {
    if term.chars().any(is_han) {
        return sentence.contains(term);
    }
    let in_word = |c: char| c.is_alphanumeric() && !is_han(c);
    sentence.match_indices(term).any(|(at, m)| {
        !sentence[..at].chars().next_back().is_some_and(in_word)
            && !sentence[at + m.len()..].chars().next().is_some_and(in_word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_found_as_chinese_substrings_or_whole_other_words() {
        assert!(mentions("自2018年开始,腾讯成为白金会员", "白金"));
        assert!(mentions("openinfra基金会", "openinfra"));
        assert!(mentions("joined (openinfra), 2025", "2025"));
        assert!(!mentions("openinfra members", "member"));
        assert!(!mentions("110,000 members", "10"));
        assert!(!mentions("cloud", "白金"));
    }

    #[test]
    fn hybrid_fusion_rewards_agreement() {
        let dense = [
            ScoredId { id: 1, score: 0.9 },
            ScoredId { id: 2, score: 0.8 },
        ];
        let lexical = [
            LexicalHit { id: 2, score: 5.0 },
            LexicalHit { id: 3, score: 4.0 },
        ];
        let fused = fuse(SearchMode::Hybrid, &dense, &lexical, Fusion::Rrf, 1.0);
        assert_eq!(fused[0].id, 2);
        assert_eq!(fused.len(), 3);
        assert_eq!(fused[0].explanation.lexical_rank, Some(1));
        let dense_only = fuse(SearchMode::Dense, &dense, &[], Fusion::Rrf, 1.0);
        assert!((dense_only[0].score - 0.9).abs() < 1e-6);
    }

    /// A longer candidate pool (a larger `top_k`) must not reorder the
    /// first results: scores depend only on each list's first FUSION_DEPTH.
    #[test]
    fn hybrid_scores_ignore_candidates_beyond_the_fusion_depth() {
        // Two lists over 200 ids in different orders, scores falling
        // unevenly so that the minimum of a longer list is lower.
        let dense: Vec<ScoredId> = (0..200u64)
            .map(|i| ScoredId {
                id: (i * 7) % 200,
                score: 0.9 - 0.002 * i as f32 - 0.0001 * (i * i) as f32,
            })
            .collect();
        let lexical: Vec<LexicalHit> = (0..200u64)
            .map(|i| LexicalHit {
                id: (i * 13 + 5) % 200,
                score: 12.0 / (1.0 + 0.05 * i as f32),
            })
            .collect();
        for fusion in [Fusion::Convex, Fusion::Rrf] {
            let short = fuse(
                SearchMode::Hybrid,
                &dense[..FUSION_DEPTH],
                &lexical[..FUSION_DEPTH],
                fusion,
                0.8,
            );
            let long = fuse(SearchMode::Hybrid, &dense, &lexical, fusion, 0.8);
            assert!(long.len() > short.len());
            let scored = |c: &[Candidate]| -> Vec<(u64, f32)> {
                c.iter()
                    .map(|c| (c.id, c.score))
                    .take(short.len())
                    .collect()
            };
            assert_eq!(scored(&short), scored(&long), "{fusion:?}");
            // The tail is ordered by its deeper entries, not left at random.
            let tail = &long[short.len()..];
            assert!(tail.iter().all(|c| c.score == 0.0));
            assert!(tail.first().unwrap().explanation.dense_rank.unwrap() as usize > FUSION_DEPTH);
        }
    }

    /// Ranks hide margins. Both fusions agree when one passage leads one
    /// list and is second in the other; when two passages each lead one
    /// list, RRF ties them whatever the margins, and the convex combination
    /// ranks first the one far ahead in its list.
    #[test]
    fn convex_fusion_keeps_score_margins_that_ranks_drop() {
        let dense = [
            ScoredId { id: 1, score: 0.60 },
            ScoredId { id: 3, score: 0.30 },
            ScoredId { id: 2, score: 0.29 },
            ScoredId { id: 4, score: 0.28 },
        ];
        let lexical = [
            LexicalHit { id: 2, score: 8.1 },
            LexicalHit { id: 1, score: 8.0 },
            LexicalHit { id: 5, score: 1.0 },
        ];
        let rrf = fuse(SearchMode::Hybrid, &dense, &lexical, Fusion::Rrf, 1.0);
        let convex = fuse(SearchMode::Hybrid, &dense, &lexical, Fusion::Convex, 1.0);
        assert_eq!(rrf[0].id, 1, "1 is first in one list, second in the other");
        assert_eq!(convex[0].id, 1);
        // Equal ranks, unequal margins: RRF ties 1 and 2, convex does not.
        let tie = [
            LexicalHit { id: 2, score: 8.0 },
            LexicalHit { id: 1, score: 7.9 },
        ];
        let dense = [
            ScoredId { id: 1, score: 0.60 },
            ScoredId { id: 2, score: 0.29 },
        ];
        let rrf = fuse(SearchMode::Hybrid, &dense, &tie, Fusion::Rrf, 1.0);
        assert_eq!(rrf[0].score, rrf[1].score);
        let convex = fuse(SearchMode::Hybrid, &dense, &tie, Fusion::Convex, 1.0);
        assert_eq!(convex[0].id, 1);
        assert!(convex[0].score <= 1.0 && convex[1].score >= 0.0);
        // Weight 0 is dense order; a single candidate scales to 1, not NaN.
        let dense_order = fuse(SearchMode::Hybrid, &dense, &tie, Fusion::Convex, 0.0);
        assert_eq!(dense_order.iter().map(|c| c.id).collect::<Vec<_>>(), [1, 2]);
        let one = fuse(SearchMode::Hybrid, &dense[..1], &[], Fusion::Convex, 1.0);
        assert!((one[0].score - 0.5).abs() < 1e-6, "{}", one[0].score);
    }

    mod highlights {
        use super::*;
        use crate::ingest::PreparedChunk;
        use crate::ingest::chunk::{ChunkConfig, chunk};
        use crate::ingest::parse::parse;
        use crate::ingest::testing::{ApproxCounter, markup_piece, plain_piece};
        use proptest::prelude::*;

        /// Every highlight of every passage of `original`, for queries made
        /// of each sentence's own terms, with the document's clean chars.
        fn all_highlights(
            original: &str,
            config: ChunkConfig,
        ) -> (Vec<Highlight>, Vec<(usize, usize, String)>) {
            let parsed = parse(original);
            let clean: Vec<char> = parsed.clean.chars.clone();
            let mut out = Vec::new();
            let mut sentences = Vec::new();
            for c in chunk(&parsed.clean, &ApproxCounter, config) {
                let passage = StoredPassage::from_chunk(
                    1,
                    "d",
                    PreparedChunk {
                        chunk: c,
                        language: "en".into(),
                    },
                );
                for (&(start, end), &(cs, ce)) in
                    passage.sentences.iter().zip(&passage.clean_sentences)
                {
                    assert_eq!(parsed.clean.original_span(cs..ce), start..end);
                    let text: String = clean[cs..ce].iter().collect();
                    sentences.push((start, end, text.clone()));
                    let terms: HashSet<String> = TermTokenizer.terms(&text).into_iter().collect();
                    out.extend(highlights(&passage, &terms));
                }
            }
            (out, sentences)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]

            /// Plain text: a highlight's span of the original is its text.
            #[test]
            fn plain_text_highlights_are_their_span(pieces in prop::collection::vec(plain_piece(), 0..30), max_tokens in 8usize..60) {
                let original: String = pieces.concat();
                let config = ChunkConfig { max_tokens, overlap_tokens: max_tokens / 4 };
                let (highlights, _) = all_highlights(&original, config);
                for h in highlights {
                    let span: String = original.chars().skip(h.char_start).take(h.char_end - h.char_start).collect();
                    prop_assert_eq!(span, h.text);
                }
            }

            /// Markdown and HTML: a highlight's text is the clean text of one
            /// sentence, and its span is exactly the markup that sentence came
            /// from.
            #[test]
            fn markup_highlights_quote_the_sentence_their_span_holds(pieces in prop::collection::vec(markup_piece(), 0..30), max_tokens in 8usize..60) {
                let original: String = pieces.concat();
                let config = ChunkConfig { max_tokens, overlap_tokens: max_tokens / 4 };
                let (highlights, sentences) = all_highlights(&original, config);
                for h in highlights {
                    prop_assert!(
                        sentences.iter().any(|(s, e, t)| (*s, *e) == (h.char_start, h.char_end) && *t == h.text),
                        "{:?} is not the sentence of its span", h
                    );
                }
            }
        }
    }
}
