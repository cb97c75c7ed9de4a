//! Chinese↔English word translations from CC-CEDICT, so lexical matching
//! works across languages: an English question about "Tencent" and
//! "platinum" also looks for 腾讯 and 白金 in Chinese passages, and back.
//!
//! This is dictionary-based cross-language retrieval: each query word is
//! replaced by its dictionary translations that actually occur in the indexed
//! passages, a few at most, primary senses first.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// Most translations kept per query word or phrase.
const MAX_TRANSLATIONS: usize = 3;
/// Longest English phrase looked up, in words.
const MAX_PHRASE_WORDS: usize = 3;

#[derive(Default)]
pub struct Lexicon {
    /// English phrase (lowercase, each word stemmed: [`phrase_key`]) ->
    /// Chinese words, best sense first.
    en_to_zh: HashMap<String, Vec<(String, u16)>>,
    /// Chinese word -> English phrases of its first senses.
    zh_to_en: HashMap<String, Vec<String>>,
}

impl std::fmt::Debug for Lexicon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Lexicon({} English phrases, {} Chinese words)",
            self.en_to_zh.len(),
            self.zh_to_en.len()
        )
    }
}

/// The phrases a query would use for a gloss: parentheticals dropped, each
/// of its `;`-separated synonyms ("formal; official") cut before a comma
/// (what follows describes), "to " of verbs dropped.
fn gloss_phrases(gloss: &str) -> Vec<String> {
    let mut out = String::new();
    let mut depth = 0;
    for c in gloss.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = (depth - 1).max(0),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let skip = [
        "cl:",
        "variant of",
        "see ",
        "old variant",
        "surname",
        "abbr.",
        "also written",
        "used in",
        "erhua",
    ];
    out.split(';')
        .filter_map(|synonym| {
            let head = synonym.split(',').next()?.trim().to_lowercase();
            let head = head.strip_prefix("to ").unwrap_or(&head).trim().to_string();
            (is_lookup_phrase(&head) && !skip.iter().any(|s| head.starts_with(s))).then_some(head)
        })
        .collect()
}

/// Whether a query's words can spell `phrase`: one to [`MAX_PHRASE_WORDS`]
/// words of letters, digits, hyphens and apostrophes.
fn is_lookup_phrase(phrase: &str) -> bool {
    (1..=MAX_PHRASE_WORDS).contains(&phrase.split_whitespace().count())
        && phrase
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '\'')
}

/// The name a proper noun's gloss opens with, when words follow it:
/// "Beijing municipality, capital of …" is also found as "beijing", which a
/// question names alone. The name is the gloss's leading capitalised words.
fn leading_name(gloss: &str) -> Option<String> {
    let head = gloss.split(['(', ',', ';']).next()?.trim();
    let words: Vec<&str> = head.split_whitespace().collect();
    let name_words = words
        .iter()
        .take_while(|w| w.starts_with(|c: char| c.is_uppercase()))
        .count();
    (name_words > 0 && name_words < words.len())
        .then(|| words[..name_words].join(" ").to_lowercase())
        .filter(|name| is_lookup_phrase(name))
}

/// The dictionary key of an English phrase: each word reduced to its
/// Snowball stem, so "projects", "joined" and "companies" find the glosses
/// "project", "join" and "company" (CC-CEDICT glosses are base forms,
/// questions are not).
fn phrase_key(phrase: &str) -> String {
    phrase
        .split_whitespace()
        .map(stem)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The English Snowball stem of a lowercase word.
fn stem(word: &str) -> String {
    static STEMMER: std::sync::OnceLock<rust_stemmers::Stemmer> = std::sync::OnceLock::new();
    STEMMER
        .get_or_init(|| rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English))
        .stem(word)
        .into_owned()
}

impl Lexicon {
    /// Loads a CC-CEDICT file (`Trad Simp [pinyin] /gloss/gloss/`).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Io(format!(
                "{}: {e}; run `make setup` to provision the lexicon",
                path.display()
            ))
        })?;
        Ok(Self::parse(&text))
    }

    pub fn parse(text: &str) -> Self {
        let mut lexicon = Self::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((head, rest)) = line.split_once(" [") else {
                continue;
            };
            let Some(simplified) = head.split_whitespace().nth(1) else {
                continue;
            };
            let Some((pinyin, glosses)) = rest.split_once("] /") else {
                continue;
            };
            // CC-CEDICT capitalises the pinyin of proper nouns.
            let is_name = pinyin.starts_with(|c: char| c.is_uppercase());
            let mut senses = Vec::new();
            for (rank, gloss) in glosses.trim_end_matches('/').split('/').enumerate() {
                let mut add = |phrase: &str| {
                    let entry = lexicon.en_to_zh.entry(phrase_key(phrase)).or_default();
                    match entry.iter_mut().find(|(w, _)| w == simplified) {
                        Some((_, best)) => *best = (*best).min(rank as u16),
                        None => entry.push((simplified.to_string(), rank as u16)),
                    }
                };
                for phrase in gloss_phrases(gloss) {
                    add(&phrase);
                    if senses.len() < 2 {
                        senses.push(phrase);
                    }
                }
                if let Some(name) = is_name.then(|| leading_name(gloss)).flatten() {
                    add(&name);
                }
            }
            if !senses.is_empty() {
                lexicon
                    .zh_to_en
                    .entry(simplified.to_string())
                    .or_default()
                    .extend(senses);
            }
        }
        for words in lexicon.en_to_zh.values_mut() {
            // Primary senses first; among equals, shorter (more general) words.
            words.sort_by_key(|(w, rank)| (*rank, w.chars().count()));
        }
        lexicon
    }

    pub fn is_empty(&self) -> bool {
        self.en_to_zh.is_empty()
    }

    /// Translations of the query's terms that pass `known` (a term occurs in
    /// the index), one group per query phrase or word that found any.
    /// English phrases of up to three words are tried before their words;
    /// Chinese terms are translated to English.
    pub fn translate(&self, terms: &[String], known: &dyn Fn(&str) -> bool) -> Vec<Translation> {
        let mut out = Vec::new();
        let latin_terms: Vec<&String> = terms
            .iter()
            .filter(|t| t.chars().all(|c| c.is_ascii_alphanumeric()))
            .collect();
        // Stemmed once here; phrases are joined from the stems (the keys
        // of `en_to_zh` are `phrase_key`s).
        let latin: Vec<String> = latin_terms.iter().map(|t| stem(t)).collect();
        let mut covered = vec![false; latin.len()];
        for n in (1..=MAX_PHRASE_WORDS).rev() {
            for start in 0..latin.len().saturating_sub(n - 1) {
                if covered[start..start + n].iter().any(|&c| c) {
                    continue;
                }
                let key = latin[start..start + n].join(" ");
                let Some(words) = self.en_to_zh.get(&key) else {
                    continue;
                };
                let found: Vec<String> = words
                    .iter()
                    .map(|(w, _)| w)
                    .filter(|w| known(w))
                    .take(MAX_TRANSLATIONS)
                    .cloned()
                    .collect();
                if !found.is_empty() {
                    out.push(Translation {
                        source: latin_terms[start..start + n]
                            .iter()
                            .map(|t| t.to_string())
                            .collect(),
                        words: found,
                    });
                    covered[start..start + n].iter_mut().for_each(|c| *c = true);
                }
            }
        }
        for term in terms
            .iter()
            .filter(|t| !t.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            if let Some(phrases) = self.zh_to_en.get(term) {
                let mut words: Vec<String> = Vec::new();
                for w in phrases.iter().flat_map(|p| p.split_whitespace()) {
                    if words.len() < MAX_TRANSLATIONS && known(w) && !words.iter().any(|x| x == w) {
                        words.push(w.to_string());
                    }
                }
                if !words.is_empty() {
                    out.push(Translation {
                        source: vec![term.clone()],
                        words,
                    });
                }
            }
        }
        out
    }
}

/// The dictionary's words for one phrase or word of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// The query terms translated (several for a phrase).
    pub source: Vec<String>,
    /// Their translations found in the index, best sense first.
    pub words: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every translation found, sorted.
    fn flat(translations: Vec<Translation>) -> Vec<String> {
        let mut words: Vec<String> = translations.into_iter().flat_map(|t| t.words).collect();
        words.sort();
        words.dedup();
        words
    }

    const SAMPLE: &str = "# comment\n\
騰訊 腾讯 [Teng2 xun4] /Tencent, Chinese tech conglomerate, founded in 1998/\n\
白金 白金 [bai2 jin1] /platinum/silver/white gold/\n\
會員 会员 [hui4 yuan2] /member/\n\
成員 成员 [cheng2 yuan2] /member/\n\
新聞發布會 新闻发布会 [xin1 wen2 fa1 bu4 hui4] /press conference/\n\
發布 发布 [fa1 bu4] /to release/to issue/to announce/\n\
會 会 [hui4] /can/to meet/CL:個|个[ge4]/\n\
加入 加入 [jia1 ru4] /to become a member/to join/\n\
公司 公司 [gong1 si1] /company/firm/\n\
北京 北京 [Bei3 jing1] /Beijing municipality, capital of the People's Republic of China (abbr. to 京[Jing1])/\n\
京 京 [Jing1] /abbr. for Beijing/surname Jing/\n\
黄金 黄金 [huang2 jin1] /gold nuggets/\n";

    #[test]
    fn english_phrases_and_words_become_chinese_words_found_in_the_index() {
        let lexicon = Lexicon::parse(SAMPLE);
        let known = |w: &str| ["腾讯", "白金", "会员", "新闻发布会", "发布"].contains(&w);
        let terms: Vec<String> = ["tencent", "platinum", "member", "press", "conference"]
            .map(String::from)
            .to_vec();
        let out = flat(lexicon.translate(&terms, &known));
        assert_eq!(out, ["会员", "新闻发布会", "白金", "腾讯"]);
    }

    #[test]
    fn chinese_words_become_english_words() {
        let lexicon = Lexicon::parse(SAMPLE);
        let out = flat(
            lexicon.translate(&["腾讯".to_string(), "白金".to_string()], &|w| {
                w != "gold"
            }),
        );
        assert_eq!(out, ["platinum", "silver", "tencent"]);
    }

    #[test]
    fn inflected_english_words_find_their_base_form_glosses() {
        let lexicon = Lexicon::parse(SAMPLE);
        let known = |w: &str| ["会员", "成员", "新闻发布会", "加入", "公司"].contains(&w);
        let terms: Vec<String> = ["companies", "joined", "press", "conferences", "members"]
            .map(String::from)
            .to_vec();
        let out = flat(lexicon.translate(&terms, &known));
        assert_eq!(out, ["会员", "公司", "加入", "成员", "新闻发布会"]);
        // Base forms still work, and an unknown word finds nothing.
        let out = flat(lexicon.translate(&["join".to_string(), "tables".to_string()], &known));
        assert_eq!(out, ["加入"]);
    }

    #[test]
    fn each_synonym_of_a_gloss_is_a_key() {
        // Newer CC-CEDICT glosses list near-synonyms with "; ".
        let lexicon = Lexicon::parse("正式 正式 [zheng4 shi4] /formal; official/\n");
        let known = |_: &str| true;
        for word in ["officially", "formal"] {
            let out = flat(lexicon.translate(&[word.to_string()], &known));
            assert_eq!(out, ["正式"], "{word}");
        }
    }

    #[test]
    fn a_name_is_found_without_the_words_its_gloss_adds() {
        let lexicon = Lexicon::parse(SAMPLE);
        let known = |w: &str| ["北京", "京", "黄金"].contains(&w);
        let out = flat(lexicon.translate(&["beijing".to_string()], &known));
        assert_eq!(out, ["北京"], "an abbreviation's gloss is not a name");
        // The full gloss still works; common nouns are not cut short.
        let out =
            flat(lexicon.translate(&["beijing".to_string(), "municipality".to_string()], &known));
        assert_eq!(out, ["北京"]);
        assert!(flat(lexicon.translate(&["gold".to_string()], &known)).is_empty());
    }
}
