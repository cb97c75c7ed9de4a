//! Lexical retrieval: BM25 (the `bm25` crate) over words, with Chinese
//! segmented by `jieba-rs` and Latin-script and Vietnamese text split into
//! words and syllables, so names and numbers match across languages.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use bm25::{Embedder, EmbedderBuilder, Scorer};
use jieba_rs::Jieba;

use crate::lexicon::Lexicon;

/// The shared segmenter: loading jieba's dictionary takes ~100 ms, once.
fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

/// Words too common to carry meaning, in the languages of the corpus.
const STOPWORDS: &[&str] = &[
    "the",
    "a",
    "an",
    "of",
    "to",
    "in",
    "and",
    "or",
    "is",
    "are",
    "was",
    "were",
    "be",
    "by",
    "for",
    "on",
    "at",
    "with",
    "as",
    "it",
    "its",
    "that",
    "this",
    "what",
    "which",
    "who",
    "whom",
    "when",
    "where",
    "why",
    "how",
    "does",
    "do",
    "did",
    "has",
    "have",
    "had",
    "from",
    "after",
    "into",
    "will",
    "many",
    "much",
    "since",
    "their",
    "they",
    "的",
    "了",
    "是",
    "在",
    "和",
    "与",
    "有",
    "也",
    "就",
    "都",
    "而",
    "及",
    "对",
    "为",
    "将",
    "于",
    "其",
    "这",
    "那",
    "什么",
    "哪",
    "哪些",
    "多少",
    "谁",
    "为什么",
    "怎么",
    "如何",
    "吗",
    "呢",
    "几",
    "一个",
    "và",
    "của",
    "là",
    "có",
    "những",
    "các",
    "được",
    "cho",
    "với",
    "trong",
    "này",
    "nào",
    "gì",
    "vì",
    "sao",
    "đang",
];

/// Splits text into lowercase search terms.
#[derive(Debug, Clone, Copy, Default)]
pub struct TermTokenizer;

pub(crate) fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

impl TermTokenizer {
    pub fn terms(&self, text: &str) -> Vec<String> {
        let lower = text.to_lowercase();
        let mut out = Vec::new();
        let mut run = String::new();
        let mut run_is_han = false;
        let flush = |run: &mut String, han: bool, out: &mut Vec<String>| {
            if run.is_empty() {
                return;
            }
            if han {
                for w in jieba().cut_for_search(run, true) {
                    out.push(w.word.to_string());
                }
            } else {
                out.push(run.clone());
            }
            run.clear();
        };
        for c in lower.chars() {
            let han = is_han(c);
            if !(han || c.is_alphanumeric()) {
                flush(&mut run, run_is_han, &mut out);
                continue;
            }
            if han != run_is_han {
                flush(&mut run, run_is_han, &mut out);
            }
            run_is_han = han;
            run.push(c);
        }
        flush(&mut run, run_is_han, &mut out);
        out.retain(|t| !STOPWORDS.contains(&t.as_str()));
        out
    }
}

impl bm25::Tokenizer for TermTokenizer {
    fn tokenize(&self, input_text: &str) -> Vec<String> {
        self.terms(input_text)
    }
}

/// A BM25 index of passages by id, with optional query translation. It
/// holds term weights only, not the passage texts (the engine has those).
pub struct LexicalIndex {
    embedder: Embedder<u32, TermTokenizer>,
    scorer: Scorer<u64, u32>,
    /// Every term of the indexed passages: translations are kept only when
    /// they can match something. Terms of removed passages stay: such a
    /// term only adds a translation that matches nothing.
    vocabulary: HashSet<String>,
    lexicon: Option<Arc<Lexicon>>,
}

/// A lexical hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LexicalHit {
    pub id: u64,
    pub score: f32,
}

impl LexicalIndex {
    /// Builds the index over passage texts (statistics fit to this corpus).
    pub fn build<'a>(
        passages: impl Iterator<Item = (u64, &'a str)>,
        lexicon: Option<Arc<Lexicon>>,
    ) -> Self {
        let passages: Vec<(u64, &str)> = passages.collect();
        let mut vocabulary = HashSet::new();
        let mut total_terms = 0usize;
        for (_, text) in &passages {
            let terms = TermTokenizer.terms(text);
            total_terms += terms.len();
            vocabulary.extend(terms);
        }
        let avgdl = if passages.is_empty() {
            0.0 // the crate's fallback
        } else {
            total_terms as f32 / passages.len() as f32
        };
        let embedder = EmbedderBuilder::<u32, TermTokenizer>::with_avgdl(avgdl).build();
        let mut scorer = Scorer::new();
        for (id, text) in &passages {
            scorer.upsert(id, embedder.embed(text));
        }
        Self {
            embedder,
            scorer,
            vocabulary,
            lexicon,
        }
    }

    /// Adds or replaces one passage. The average passage length stays that
    /// of the last build; the engine rebuilds the index after enough changes
    /// for it to drift.
    pub fn upsert(&mut self, id: u64, text: &str) {
        self.vocabulary.extend(TermTokenizer.terms(text));
        self.scorer.upsert(&id, self.embedder.embed(text));
    }

    /// Removes one passage, if present.
    pub fn remove(&mut self, id: u64) {
        self.scorer.remove(&id);
    }

    /// Dictionary translations of the query's terms that occur in the index.
    pub fn translations(&self, query: &str) -> Vec<String> {
        let Some(lexicon) = &self.lexicon else {
            return Vec::new();
        };
        let known = |w: &str| {
            let terms = TermTokenizer.terms(w);
            !terms.is_empty() && terms.iter().all(|t| self.vocabulary.contains(t))
        };
        lexicon.translate(&TermTokenizer.terms(query), &known)
    }

    /// The `k` best passages that pass `filter`, best first. The query is
    /// matched together with its translations.
    pub fn search(&self, query: &str, k: usize, filter: &dyn Fn(u64) -> bool) -> Vec<LexicalHit> {
        self.search_translated(query, &self.translations(query), k, filter)
    }

    /// `search`, with the query's `translations` computed by the caller.
    pub fn search_translated(
        &self,
        query: &str,
        translations: &[String],
        k: usize,
        filter: &dyn Fn(u64) -> bool,
    ) -> Vec<LexicalHit> {
        let expanded = if translations.is_empty() {
            query.to_string()
        } else {
            format!("{query} {}", translations.join(" "))
        };
        let mut hits: Vec<LexicalHit> = self
            .scorer
            .matches(&self.embedder.embed(&expanded))
            .into_iter()
            .filter(|r| r.score > 0.0 && filter(r.id))
            .map(|r| LexicalHit {
                id: r.id,
                score: r.score,
            })
            .collect();
        // Ties are broken by id so rankings do not depend on hash order.
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        hits.truncate(k);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_segmented_and_latin_split() {
        let terms = TermTokenizer.terms("OpenInfra基金会执行董事Jonathan Bryce, 110,000 名成员");
        assert!(terms.contains(&"openinfra".to_string()), "{terms:?}");
        assert!(terms.contains(&"基金会".to_string()), "{terms:?}");
        assert!(terms.contains(&"bryce".to_string()));
        assert!(terms.contains(&"110".to_string()));
    }

    #[test]
    fn names_match_across_languages() {
        let index = LexicalIndex::build(
            [
                (1, "Linux 基金会的执行董事 Jim Zemlin 发表了演讲。"),
                (2, "OpenStack 是一个云计算项目。"),
                (3, "Kata Containers và StarlingX."),
            ]
            .into_iter(),
            None,
        );
        let hits = index.search("Who is Jim Zemlin?", 3, &|_| true);
        assert_eq!(hits[0].id, 1);
        assert!(index.search("Jim Zemlin", 3, &|id| id != 1).is_empty());
    }

    #[test]
    fn translations_reach_passages_in_the_other_language() {
        let lexicon = Lexicon::parse(
            "騰訊 腾讯 [Teng2 xun4] /Tencent, Chinese tech company/\n白金 白金 [bai2 jin1] /platinum/\n",
        );
        let passages = [
            (1, "从2018年开始，腾讯成为OpenStack白金会员。"),
            (2, "华为是排名第一的电信厂商。"),
        ];
        let plain = LexicalIndex::build(passages.into_iter(), None);
        assert!(
            plain
                .search("Since when is Tencent a platinum member?", 2, &|_| true)
                .is_empty()
        );
        let bridged = LexicalIndex::build(passages.into_iter(), Some(Arc::new(lexicon)));
        assert_eq!(
            bridged.translations("Since when is Tencent a platinum member?"),
            ["白金", "腾讯"]
        );
        assert_eq!(
            bridged.search("Since when is Tencent a platinum member?", 2, &|_| true)[0].id,
            1
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// Any text tokenizes and searches without panicking.
        #[test]
        fn arbitrary_queries_are_safe(query in ".{0,80}") {
            let lexicon = Lexicon::parse("白金 白金 [bai2 jin1] /platinum/");
            let index = LexicalIndex::build([(1, "白金会员 platinum member")].into_iter(), Some(Arc::new(lexicon)));
            let _ = TermTokenizer.terms(&query);
            let _ = index.search(&query, 5, &|_| true);
        }
    }
}
