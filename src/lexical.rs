//! Lexical retrieval: BM25 over words, with Chinese segmented by `jieba-rs`
//! and Latin-script and Vietnamese text split into words and syllables, so
//! names and numbers match across languages, and queries translated by the
//! dictionary scored as concepts.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use jieba_rs::Jieba;

use crate::lexicon::Lexicon;
use unicode_normalization::UnicodeNormalization;

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
        // Composed first: a Vietnamese "hợp" typed as "o" and two combining
        // marks would otherwise split at the marks, which are not letters.
        let lower = text.nfc().collect::<String>().to_lowercase();
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

/// BM25's term-frequency saturation.
const K1: f32 = 1.2;
/// BM25's length normalisation.
const B: f32 = 0.75;

/// A BM25 index of passages by id, searched with dictionary-translated
/// queries. It holds term counts only, not the passage texts (the engine
/// has those).
///
/// BM25 is written out here rather than taken from a crate because a
/// translated query needs a scoring the `bm25` crate (used before
/// 2026-12-02) cannot express: a query word and its translations count as
/// one term (Pirkola's structured queries, docs/retrieval.md), their
/// occurrences summed and their document frequency that of their union.
/// Scored as separate terms, a word with three translations weighs three
/// times as much as one with none, and a wrong sense ("foundation" →
/// 底座, pedestal) adds as much as the right one (基金会).
#[derive(Default)]
pub struct LexicalIndex {
    /// Term -> its id in `postings`.
    term_ids: HashMap<String, u32>,
    /// By term id: passage id -> occurrences. Ids of terms whose passages
    /// have all been removed stay, with an empty map.
    postings: Vec<HashMap<u64, u32>>,
    /// Passage id -> its distinct term ids and its length in terms.
    passages: HashMap<u64, (Vec<u32>, u32)>,
    /// Sum of the passages' lengths (for the average BM25 normalises by).
    total_terms: u64,
    lexicon: Option<Arc<Lexicon>>,
}

/// A lexical hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LexicalHit {
    pub id: u64,
    pub score: f32,
}

/// A query ready for [`LexicalIndex::search`]: its terms grouped into
/// concepts, each a query word with its translations (or a word alone).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LexicalQuery {
    concepts: Vec<Vec<String>>,
    translations: Vec<String>,
}

impl LexicalQuery {
    /// Every dictionary translation the query found, sorted.
    pub fn translations(&self) -> &[String] {
        &self.translations
    }
}

impl LexicalIndex {
    /// Builds the index over passage texts.
    pub fn build<'a>(
        passages: impl Iterator<Item = (u64, &'a str)>,
        lexicon: Option<Arc<Lexicon>>,
    ) -> Self {
        let mut index = Self {
            lexicon,
            ..Self::default()
        };
        for (id, text) in passages {
            index.upsert(id, text);
        }
        index
    }

    /// Adds or replaces one passage.
    pub fn upsert(&mut self, id: u64, text: &str) {
        self.remove(id);
        let terms = TermTokenizer.terms(text);
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for term in &terms {
            let next_id = self.term_ids.len() as u32;
            let term_id = *self.term_ids.entry(term.clone()).or_insert(next_id);
            if term_id == next_id {
                self.postings.push(HashMap::new());
            }
            *counts.entry(term_id).or_default() += 1;
        }
        for (&term_id, &count) in &counts {
            self.postings[term_id as usize].insert(id, count);
        }
        self.passages
            .insert(id, (counts.into_keys().collect(), terms.len() as u32));
        self.total_terms += terms.len() as u64;
    }

    /// Removes one passage, if present.
    pub fn remove(&mut self, id: u64) {
        if let Some((term_ids, length)) = self.passages.remove(&id) {
            for term_id in term_ids {
                self.postings[term_id as usize].remove(&id);
            }
            self.total_terms -= u64::from(length);
        }
    }

    /// Whether some indexed passage has `term`.
    fn has_term(&self, term: &str) -> bool {
        self.term_ids
            .get(term)
            .is_some_and(|&id| !self.postings[id as usize].is_empty())
    }

    /// Splits a query into concepts: each query word with the dictionary
    /// translations found for it and for the phrases it is part of, kept
    /// when they occur in the index. A word repeated in the query counts
    /// once.
    pub fn prepare(&self, query: &str) -> LexicalQuery {
        let mut terms = TermTokenizer.terms(query);
        let Some(lexicon) = &self.lexicon else {
            terms.sort();
            terms.dedup();
            return LexicalQuery {
                concepts: terms.into_iter().map(|t| vec![t]).collect(),
                translations: Vec::new(),
            };
        };
        let known = |w: &str| {
            let terms = TermTokenizer.terms(w);
            !terms.is_empty() && terms.iter().all(|t| self.has_term(t))
        };
        // Each query word's concept: the word and the translations of every
        // phrase or word it is part of. A passage holding a phrase's
        // translation (新闻发布会 for "press conference") counts as holding
        // each of the phrase's words, as the English passage would.
        let mut synonyms: HashMap<&str, Vec<String>> = HashMap::new();
        let mut translations = Vec::new();
        let translated = lexicon.translate(&terms, &known);
        for translation in &translated {
            // A translation is matched as the word it is when the segmenter
            // keeps it whole, not by the shorter words jieba's search mode
            // also cuts it into (北京人 is not 北京 and 人). Cut, it is matched
            // by its parts of two or more characters: 北京人 ("Beijing
            // person", offered for "Beijing") by 北京, not also by 人, which
            // alone stands for any person.
            let words: Vec<String> = translation
                .words
                .iter()
                .flat_map(|w| {
                    let parts = TermTokenizer.terms(w);
                    if parts.contains(w) {
                        return vec![w.clone()];
                    }
                    let words: Vec<String> = parts
                        .iter()
                        .filter(|p| p.chars().count() > 1)
                        .cloned()
                        .collect();
                    if words.is_empty() { parts } else { words }
                })
                .collect();
            for source in &translation.source {
                synonyms
                    .entry(source.as_str())
                    .or_default()
                    .extend(words.iter().cloned());
            }
            translations.extend(translation.words.iter().cloned());
        }
        terms.sort();
        terms.dedup();
        let concepts = terms
            .into_iter()
            .map(|term| {
                let mut concept = synonyms.remove(term.as_str()).unwrap_or_default();
                concept.push(term);
                concept.sort();
                concept.dedup();
                concept
            })
            .collect();
        translations.sort();
        translations.dedup();
        LexicalQuery {
            concepts,
            translations,
        }
    }

    /// The `k` best passages for `query` that pass `filter`, best first:
    /// BM25 with each concept scored as one term (occurrences of its words
    /// summed, document frequency that of their union).
    pub fn search(
        &self,
        query: &LexicalQuery,
        k: usize,
        filter: &dyn Fn(u64) -> bool,
    ) -> Vec<LexicalHit> {
        if self.passages.is_empty() {
            return Vec::new();
        }
        let passages = self.passages.len() as f32;
        let average_length = self.total_terms as f32 / passages;
        let mut scores: HashMap<u64, f32> = HashMap::new();
        for concept in &query.concepts {
            let mut occurrences: HashMap<u64, u32> = HashMap::new();
            for posting in concept
                .iter()
                .filter_map(|t| self.term_ids.get(t))
                .map(|&id| &self.postings[id as usize])
            {
                for (&id, &count) in posting {
                    *occurrences.entry(id).or_default() += count;
                }
            }
            let frequency = occurrences.len() as f32;
            let idf = (1.0 + (passages - frequency + 0.5) / (frequency + 0.5)).ln();
            for (id, count) in occurrences {
                let length = self.passages[&id].1 as f32;
                let count = count as f32;
                let norm = K1 * (1.0 - B + B * length / average_length.max(1.0));
                *scores.entry(id).or_default() += idf * count * (K1 + 1.0) / (count + norm);
            }
        }
        let mut hits: Vec<LexicalHit> = scores
            .into_iter()
            .filter(|&(id, score)| score > 0.0 && filter(id))
            .map(|(id, score)| LexicalHit { id, score })
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
    fn decomposed_text_gives_the_terms_of_composed_text() {
        let composed = "Hợp tác giữa các dự án";
        let decomposed: String = composed.nfd().collect();
        assert_ne!(composed, decomposed);
        assert_eq!(
            TermTokenizer.terms(&decomposed),
            TermTokenizer.terms(composed)
        );
        assert_eq!(
            TermTokenizer.terms(composed),
            ["hợp", "tác", "giữa", "dự", "án"]
        );
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
        let hits = index.search(&index.prepare("Who is Jim Zemlin?"), 3, &|_| true);
        assert_eq!(hits[0].id, 1);
        assert!(
            index
                .search(&index.prepare("Jim Zemlin"), 3, &|id| id != 1)
                .is_empty()
        );
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
        let question = "Since when is Tencent a platinum member?";
        let plain = LexicalIndex::build(passages.into_iter(), None);
        assert!(
            plain
                .search(&plain.prepare(question), 2, &|_| true)
                .is_empty()
        );
        let bridged = LexicalIndex::build(passages.into_iter(), Some(Arc::new(lexicon)));
        let query = bridged.prepare(question);
        assert_eq!(query.translations(), ["白金", "腾讯"]);
        assert_eq!(bridged.search(&query, 2, &|_| true)[0].id, 1);
    }

    #[test]
    fn a_word_and_its_translations_count_as_one_term() {
        // "foundation" has two translations, "platinum" one. Scored as
        // separate terms, passage 1 (both translations of "foundation")
        // would beat passage 2 (the only passage about platinum); as one
        // concept it counts once, rarer concepts weigh more.
        let lexicon = Lexicon::parse(
            "基金會 基金会 [ji1 jin1 hui4] /foundation/\n底座 底座 [di3 zuo4] /base/foundation/\n白金 白金 [bai2 jin1] /platinum/\n",
        );
        let index = LexicalIndex::build(
            [(1, "基金会 底座"), (2, "白金"), (3, "基金会 其他")].into_iter(),
            Some(Arc::new(lexicon)),
        );
        let query = index.prepare("foundation platinum");
        assert_eq!(query.translations(), ["基金会", "底座", "白金"]);
        let hits = index.search(&query, 3, &|_| true);
        let order: Vec<u64> = hits.iter().map(|h| h.id).collect();
        assert_eq!(order, [2, 1, 3], "{hits:?}");
    }

    /// The ids `index` finds for `query`, best first.
    fn found(index: &LexicalIndex, query: &LexicalQuery) -> Vec<u64> {
        index
            .search(query, 10, &|_| true)
            .iter()
            .map(|h| h.id)
            .collect()
    }

    #[test]
    fn a_phrase_translation_counts_for_each_word_of_the_phrase() {
        // Passage 1 has "conference" four times; passage 2 holds the
        // translation of the whole phrase "press conference" once, as an
        // English passage would hold both words: it is the better match
        // (scored as a concept of its own beside "press" and "conference",
        // the phrase's translation weighed as one word and lost).
        let lexicon =
            Lexicon::parse("新聞發布會 新闻发布会 [xin1 wen2 fa1 bu4 hui4] /press conference/\n");
        let index = LexicalIndex::build(
            [
                (1, "Conference: conference, conference, conference"),
                (2, "在北京召开新闻发布会"),
            ]
            .into_iter(),
            Some(Arc::new(lexicon)),
        );
        let query = index.prepare("press conference");
        assert_eq!(query.translations(), ["新闻发布会"]);
        assert_eq!(found(&index, &query), [2, 1]);
    }

    #[test]
    fn a_translation_cut_by_the_segmenter_is_matched_by_its_longer_parts() {
        // CC-CEDICT offers 北京人 for "Beijing"; jieba cuts it into 北京 and
        // 人, and 人 alone would match every passage about people.
        let lexicon = Lexicon::parse("北京人 北京人 [Bei3 jing1 ren2] /Beijing resident/\n");
        assert!(
            !TermTokenizer
                .terms("北京人")
                .contains(&"北京人".to_string())
        );
        let index = LexicalIndex::build(
            [(1, "在北京召开"), (2, "很多人参加")].into_iter(),
            Some(Arc::new(lexicon)),
        );
        let query = index.prepare("Beijing");
        assert_eq!(query.translations(), ["北京人"]);
        assert_eq!(found(&index, &query), [1]);
    }

    #[test]
    fn a_removed_passage_scores_as_if_never_indexed() {
        let texts = [
            (1, "OpenStack 是一个云计算项目。"),
            (2, "Kata Containers và StarlingX."),
            (3, "OpenStack and StarlingX are OpenInfra projects."),
        ];
        let mut index = LexicalIndex::build(texts.into_iter(), None);
        index.upsert(4, "StarlingX StarlingX StarlingX edge");
        index.remove(4);
        index.upsert(1, "OpenStack 是一个云计算项目。");
        let fresh = LexicalIndex::build(texts.into_iter(), None);
        for question in ["StarlingX", "OpenStack projects", "edge"] {
            assert_eq!(
                index.search(&index.prepare(question), 5, &|_| true),
                fresh.search(&fresh.prepare(question), 5, &|_| true),
                "{question}"
            );
        }
        assert!(!index.has_term("edge"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// Any text tokenizes and searches without panicking, Vietnamese
        /// syllables read by their Sino-Vietnamese keys included.
        #[test]
        fn arbitrary_queries_are_safe(
            query in proptest::prop_oneof![
                proptest::string::string_regex(".{0,80}").expect("regex"),
                proptest::string::string_regex("((bạch|kim|hội|viên|ty|ý|[a-zđơưăâêôỳýỷỹỵ]{1,4}) ?){0,12}").expect("regex"),
            ]
        ) {
            let readings = crate::lexicon::parse_readings(r#"{"白": "Bạch", "金": "Kim", "会": "Hội", "员": "Viên"}"#)
                .expect("readings");
            let lexicon = Lexicon::parse_with_readings(
                "白金 白金 [bai2 jin1] /platinum/\n會員 会员 [hui4 yuan2] /member/\n",
                Some(&readings),
            );
            let index = LexicalIndex::build([(1, "白金会员 platinum member")].into_iter(), Some(Arc::new(lexicon)));
            let _ = TermTokenizer.terms(&query);
            let _ = index.search(&index.prepare(&query), 5, &|_| true);
        }
    }
}
