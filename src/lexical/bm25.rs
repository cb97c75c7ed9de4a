//! BM25 over the terms of [`super::terms`], with dictionary-translated
//! queries scored as structured queries.

use std::collections::HashMap;
use std::sync::Arc;

use super::lexicon::{Lexicon, is_unaccented_syllable, reads_as_unmarked_vietnamese};
use super::terms::{TermTokenizer, fold, is_unmarked_vietnamese_stopword, stem};

/// BM25's term-frequency saturation.
const K1: f32 = 1.2;
/// BM25's length normalisation.
const B: f32 = 0.75;

/// A BM25 index of passages by id, searched with dictionary-translated
/// queries. It holds term counts only, not the passage texts (the engine
/// has those).
///
/// BM25 is written out here rather than taken from a crate because a
/// translated query needs a scoring the `bm25` crate cannot express: a
/// query word and its translations count as
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
    /// A term with Vietnamese marks, by its form without them ("duoc" ->
    /// "được"): how a query typed without diacritics finds the words.
    folded: HashMap<String, Vec<String>>,
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
        let terms: Vec<String> = TermTokenizer
            .terms(text)
            .into_iter()
            .map(index_form)
            .collect();
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for term in &terms {
            let next_id = self.term_ids.len() as u32;
            let term_id = *self.term_ids.entry(term.clone()).or_insert(next_id);
            if term_id == next_id {
                self.postings.push(HashMap::new());
                let folded = fold(term);
                if folded != *term {
                    self.folded.entry(folded).or_default().push(term.clone());
                }
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

    /// The indexed terms a term typed without Vietnamese marks may stand
    /// for (none for a term that has marks, or no such terms).
    fn accented(&self, term: &str) -> impl Iterator<Item = &String> {
        self.folded
            .get(term)
            .into_iter()
            .flatten()
            .filter(|t| self.has_term(t))
    }

    /// Whether some indexed passage has `term`.
    pub(super) fn has_term(&self, term: &str) -> bool {
        let key = if is_stemmed(term) {
            std::borrow::Cow::Owned(stem(term))
        } else {
            std::borrow::Cow::Borrowed(term)
        };
        self.term_ids
            .get(key.as_ref())
            .is_some_and(|&id| !self.postings[id as usize].is_empty())
    }

    /// Splits a query into concepts: each query word with the dictionary
    /// translations found for it and for the phrases it is part of, kept
    /// when they occur in the index. A word repeated in the query counts
    /// once.
    pub fn prepare(&self, query: &str) -> LexicalQuery {
        let mut terms = TermTokenizer.terms(query);
        // "la", "cua", "duoc" in a question typed without marks are the
        // stopwords là, của, được: as concepts they would count against
        // every passage that does not spell them so.
        if reads_as_unmarked_vietnamese(&terms) {
            terms.retain(|t| !is_unmarked_vietnamese_stopword(t));
        }
        // A word typed without Vietnamese marks counts as the marked words
        // it may be, as a translation would.
        let mut synonyms: HashMap<String, Vec<String>> = HashMap::new();
        let mut translations = Vec::new();
        for term in &terms {
            let accented: Vec<String> = self.accented(term).cloned().collect();
            if !accented.is_empty() {
                translations.extend(accented.iter().cloned());
                synonyms.entry(term.clone()).or_default().extend(accented);
            }
        }
        let Some(lexicon) = &self.lexicon else {
            terms.sort();
            terms.dedup();
            return LexicalQuery {
                concepts: terms
                    .into_iter()
                    .map(|t| {
                        let mut concept = synonyms.remove(t.as_str()).unwrap_or_default();
                        concept.push(t);
                        index_forms(concept)
                    })
                    .collect(),
                translations,
            };
        };
        // A misspelt English word ("architcet") is read as the dictionary
        // word it most likely is, before it is translated. Words the index
        // holds, unmarked Vietnamese syllables and words standing for
        // marked ones are not English typos.
        for term in &mut terms {
            if self.has_term(term)
                || synonyms.contains_key(term.as_str())
                || is_unaccented_syllable(term)
            {
                continue;
            }
            if let Some(correct) = lexicon.correct(term) {
                tracing::debug!(typed = %term, read = correct, "query word corrected");
                *term = correct.to_string();
                translations.push(term.clone());
            }
        }
        let known = |w: &str| {
            let terms = TermTokenizer.terms(w);
            !terms.is_empty() && terms.iter().all(|t| self.has_term(t))
        };
        // Each query word's concept: the word and the translations of every
        // phrase or word it is part of. A passage holding a phrase's
        // translation (新闻发布会 for "press conference") counts as holding
        // each of the phrase's words, as the English passage would.
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
                    .entry(source.clone())
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
                index_forms(concept)
            })
            .collect();
        translations.sort();
        translations.dedup();
        LexicalQuery {
            concepts,
            translations,
        }
    }

    /// The share of `query`'s concepts passage `id` holds, each concept
    /// weighted by its IDF (a concept no passage holds weighs most: the
    /// question asks for something the documents do not mention). 0 for an
    /// unknown passage or an empty query.
    pub fn concept_coverage(&self, query: &LexicalQuery, id: u64) -> f32 {
        let Some((terms, _)) = self.passages.get(&id) else {
            return 0.0;
        };
        let passages = self.passages.len() as f32;
        let (mut held, mut total) = (0.0f32, 0.0f32);
        for concept in &query.concepts {
            let ids: Vec<u32> = concept
                .iter()
                .filter_map(|t| self.term_ids.get(t).copied())
                .collect();
            let mut holders: Vec<u64> = ids
                .iter()
                .flat_map(|&t| self.postings[t as usize].keys().copied())
                .collect();
            holders.sort_unstable();
            holders.dedup();
            let frequency = holders.len() as f32;
            let idf = (1.0 + (passages - frequency + 0.5) / (frequency + 0.5)).ln();
            total += idf;
            if ids.iter().any(|t| terms.contains(t)) {
                held += idf;
            }
        }
        if total > 0.0 { held / total } else { 0.0 }
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

/// The form a term is indexed and looked up in: an English word by its
/// Snowball stem, so "licensing" meets "license" and "contributors"
/// "contributor" (a translation is a dictionary base form, the passage's
/// word is inflected); other terms as they are. Words that read as
/// Vietnamese syllables without marks are not English inflections and stay
/// whole.
fn index_form(term: String) -> String {
    if is_stemmed(&term) { stem(&term) } else { term }
}

/// Whether [`index_form`] stems `term`: ASCII words of four or more letters
/// that do not read as a Vietnamese syllable.
fn is_stemmed(term: &str) -> bool {
    term.len() > 3 && term.bytes().all(|b| b.is_ascii_lowercase()) && !is_unaccented_syllable(term)
}

/// A concept's terms in their [`index_form`], each once.
fn index_forms(concept: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = concept.into_iter().map(index_form).collect();
    out.sort();
    out.dedup();
    out
}
