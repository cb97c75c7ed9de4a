//! Language identification, always as an ISO 639-1 code (or `und`).
//!
//! Script first, because trigram models are weakest exactly where this
//! domain's texts are: short questions that mix a Chinese sentence with
//! product names in Latin letters ("谁创立了OpenStack"), or Vietnamese
//! typed without diacritics. Han against Latin is counted as Han characters
//! against Latin words (a Chinese character carries about what a word
//! does); kana means Japanese and Hangul Korean; Latin text holding letters
//! only Vietnamese uses (ă, đ, ơ, ư and the dot-below and hook-above vowels)
//! is Vietnamese, and so is Latin text whose every word is a Vietnamese
//! syllable with its marks dropped. Only then does `whatlang` (trigrams, 69
//! languages) choose, among an allow-list where the caller has one (the
//! languages an index holds, plus English).

use whatlang::{Detector, Lang};

use crate::lexical::is_han;
use crate::lexical::lexicon::{ENGLISH_SYLLABLES, is_unaccented_syllable};

/// The code used when no language could be detected.
pub const UNKNOWN: &str = "und";

/// What the scripts of a text say, before any trigram model is asked.
#[derive(Debug, Default)]
struct Scripts {
    han: usize,
    kana: usize,
    hangul: usize,
    /// Words of Latin letters.
    latin_words: usize,
    /// Latin words holding a letter only Vietnamese uses.
    vietnamese_words: usize,
    /// Latin words of ASCII letters only, as written.
    ascii_words: Vec<String>,
}

fn is_kana(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9D)
}

fn is_hangul(c: char) -> bool {
    matches!(c as u32, 0xAC00..=0xD7AF | 0x1100..=0x11FF | 0x3130..=0x318F)
}

/// Letters no other Latin-script language in whatlang's set writes:
/// ă, đ, ơ, ư and the Vietnamese block of Latin Extended Additional
/// (ạ, ả, ấ, ầ, ẩ, ẫ, ậ, ắ, …, ỹ).
fn is_vietnamese_letter(c: char) -> bool {
    matches!(c, 'ă' | 'Ă' | 'đ' | 'Đ' | 'ơ' | 'Ơ' | 'ư' | 'Ư')
        || matches!(c as u32, 0x1EA0..=0x1EF9)
}

fn is_latin_letter(c: char) -> bool {
    c.is_alphabetic() && (c.is_ascii() || matches!(c as u32, 0x00C0..=0x024F | 0x1E00..=0x1EFF))
}

impl Scripts {
    fn of(text: &str) -> Self {
        let mut s = Scripts::default();
        let mut word = String::new();
        let flush = |word: &mut String, s: &mut Scripts| {
            if !word.is_empty() {
                s.latin_words += 1;
                if word.chars().any(is_vietnamese_letter) {
                    s.vietnamese_words += 1;
                }
                if word.chars().all(|c| c.is_ascii_alphabetic()) {
                    s.ascii_words.push(word.clone());
                }
                word.clear();
            }
        };
        // Combining marks (Vietnamese typed in decomposed form) are part of
        // the word: NFC first.
        use unicode_normalization::UnicodeNormalization;
        for c in text.nfc() {
            if is_latin_letter(c) {
                word.push(c);
                continue;
            }
            flush(&mut word, &mut s);
            if is_han(c) {
                s.han += 1;
            } else if is_kana(c) {
                s.kana += 1;
            } else if is_hangul(c) {
                s.hangul += 1;
            }
        }
        flush(&mut word, &mut s);
        s
    }

    /// The language the scripts decide on their own, if they do.
    fn decide(&self) -> Option<&'static str> {
        let cjk = self.han + self.kana + self.hangul;
        if cjk > 0 && cjk >= self.latin_words {
            return Some(if self.kana > 0 {
                "ja"
            } else if self.hangul > self.han {
                "ko"
            } else {
                "zh"
            });
        }
        if self.latin_words == 0 {
            return None;
        }
        // A Vietnamese name quoted in English text is one word in many;
        // Vietnamese text has such letters in a large share of its words.
        if self.vietnamese_words * 6 >= self.latin_words {
            return Some("vi");
        }
        if self.vietnamese_words == 0 && is_unaccented_vietnamese(&self.ascii_words) {
            return Some("vi");
        }
        None
    }
}

/// Detects the language of a text: by script, else by whatlang among all
/// its languages. `None` when nothing can be told (no letters).
pub fn detect(text: &str) -> Option<&'static str> {
    let scripts = Scripts::of(text);
    scripts
        .decide()
        .or_else(|| whatlang::detect(text).map(|info| iso639_1(info.lang())))
}

/// Like [`detect`], but only when the guess is reliable: short or mixed
/// passages detect poorly, and the caller has a better default.
pub fn detect_confident(text: &str) -> Option<&'static str> {
    Scripts::of(text).decide().or_else(|| {
        whatlang::detect(text)
            .filter(|info| info.is_reliable())
            .map(|info| iso639_1(info.lang()))
    })
}

/// The language of a query: by script, else by whatlang among `allowed`
/// (ISO 639-1 codes: the languages the index holds) and English; `und`
/// when whatlang is not confident. A short query has few trigrams, and a
/// language the index does not hold cannot help rank it.
pub fn detect_query(text: &str, allowed: &[&str]) -> &'static str {
    if let Some(language) = Scripts::of(text).decide() {
        return language;
    }
    let mut list: Vec<Lang> = allowed
        .iter()
        .filter_map(|code| from_iso639_1(code))
        .collect();
    if !list.contains(&Lang::Eng) {
        list.push(Lang::Eng);
    }
    // whatlang answers from the script alone for scripts one language
    // uses (Tamil, Greek, Thai…), allow-list or not: such an answer is
    // outside the list, and `und` says so.
    Detector::with_allowlist(list.clone())
        .detect(text)
        .filter(|info| info.confidence() >= QUERY_CONFIDENCE && list.contains(&info.lang()))
        .map_or(UNKNOWN, |info| iso639_1(info.lang()))
}

/// whatlang's confidence (0 to 1) a query's guess needs; below it the
/// query is `und` and is centred with the mean of all passages
/// (docs/retrieval.md has what that costs). Among an allow-list a wrong
/// guess is rare, so only a guess with next to no margin is refused.
const QUERY_CONFIDENCE: f64 = 0.01;

/// Returns true when `code` is an ISO 639-1 code wenda can detect, or "und".
pub fn is_known_code(code: &str) -> bool {
    code == UNKNOWN || from_iso639_1(code).is_some()
}

fn from_iso639_1(code: &str) -> Option<Lang> {
    Lang::all().iter().copied().find(|&l| iso639_1(l) == code)
}

/// The ISO 639-1 code of each of whatlang's languages.
pub fn iso639_1(lang: Lang) -> &'static str {
    match lang {
        Lang::Epo => "eo",
        Lang::Eng => "en",
        Lang::Rus => "ru",
        Lang::Cmn => "zh",
        Lang::Spa => "es",
        Lang::Por => "pt",
        Lang::Ita => "it",
        Lang::Ben => "bn",
        Lang::Fra => "fr",
        Lang::Deu => "de",
        Lang::Ukr => "uk",
        Lang::Kat => "ka",
        Lang::Ara => "ar",
        Lang::Hin => "hi",
        Lang::Jpn => "ja",
        Lang::Heb => "he",
        Lang::Yid => "yi",
        Lang::Pol => "pl",
        Lang::Amh => "am",
        Lang::Jav => "jv",
        Lang::Kor => "ko",
        Lang::Nob => "nb",
        Lang::Dan => "da",
        Lang::Swe => "sv",
        Lang::Fin => "fi",
        Lang::Tur => "tr",
        Lang::Nld => "nl",
        Lang::Hun => "hu",
        Lang::Ces => "cs",
        Lang::Ell => "el",
        Lang::Bul => "bg",
        Lang::Bel => "be",
        Lang::Mar => "mr",
        Lang::Kan => "kn",
        Lang::Ron => "ro",
        Lang::Slv => "sl",
        Lang::Hrv => "hr",
        Lang::Srp => "sr",
        Lang::Mkd => "mk",
        Lang::Lit => "lt",
        Lang::Lav => "lv",
        Lang::Est => "et",
        Lang::Tam => "ta",
        Lang::Vie => "vi",
        Lang::Urd => "ur",
        Lang::Tha => "th",
        Lang::Guj => "gu",
        Lang::Uzb => "uz",
        Lang::Pan => "pa",
        Lang::Aze => "az",
        Lang::Ind => "id",
        Lang::Tel => "te",
        Lang::Pes => "fa",
        Lang::Mal => "ml",
        Lang::Ori => "or",
        Lang::Mya => "my",
        Lang::Nep => "ne",
        Lang::Sin => "si",
        Lang::Khm => "km",
        Lang::Tuk => "tk",
        Lang::Aka => "ak",
        Lang::Zul => "zu",
        Lang::Sna => "sn",
        Lang::Afr => "af",
        Lang::Lat => "la",
        Lang::Slk => "sk",
        Lang::Cat => "ca",
        Lang::Tgl => "tl",
        Lang::Hye => "hy",
        Lang::Cym => "cy",
    }
}

/// Latin text of ASCII words only whose lower-case words are Vietnamese
/// syllables with their marks dropped, most of them not English words as
/// well: Vietnamese typed without diacritics ("OpenStack duoc khoi xuong boi
/// ai"). A capitalised word that is no syllable is a name and does not count.
fn is_unaccented_vietnamese(words: &[String]) -> bool {
    let (mut syllables, mut english, mut others) = (0usize, 0usize, 0usize);
    for word in words {
        let lower = word.to_ascii_lowercase();
        if lower.len() <= 7 && is_unaccented_syllable(&lower) {
            syllables += 1;
            english += usize::from(ENGLISH_SYLLABLES.contains(&lower.as_str()));
        } else if !word.chars().any(|c| c.is_ascii_uppercase()) {
            others += 1;
        }
    }
    // One syllable alone ("chuoi") counts only when nothing else is there.
    let enough = syllables >= 2 || (syllables == 1 && words.len() == 1);
    enough && others * 4 <= syllables && english * 2 < syllables
}

#[cfg(test)]
mod tests {
    use super::*;

    /// whatlang names a script's only language whatever the allow-list
    /// (found by `fuzz/fuzz_targets/lang.rs`): such a guess is `und`.
    #[test]
    fn a_query_language_is_always_in_the_allow_list_or_und() {
        assert_eq!(detect_query("அ", &["vi"]), UNKNOWN);
        assert_eq!(detect_query("Ελληνικά κείμενο για δοκιμή", &[]), UNKNOWN);
        assert_eq!(detect_query("Ελληνικά κείμενο για δοκιμή", &["el"]), "el");
        assert_eq!(detect_query("Who founded OpenStack?", &["vi"]), "en");
    }

    #[test]
    fn detects_the_three_corpus_languages() {
        assert_eq!(detect("OpenInfra 基金会的首席运营官是谁？"), Some("zh"));
        assert_eq!(
            detect("Who is the executive director of the Linux Foundation?"),
            Some("en")
        );
        assert_eq!(
            detect("Vì sao OpenInfra quyết định gia nhập Linux Foundation?"),
            Some("vi")
        );
    }

    #[test]
    fn mixed_script_questions_go_by_their_sentence() {
        let allowed = ["zh", "en", "vi"];
        for (q, want) in [
            ("OpenInfra 社区有多少名成员？", "zh"),
            ("谁创立了OpenStack", "zh"),
            ("OpenInfra là gì?", "vi"),
            ("OpenInfra có bao nhiêu thành viên?", "vi"),
            (
                "Tại SUSECON25, chief technology and product officer của SUSE là ai?",
                "vi",
            ),
            ("Ai là giám đốc điều hành của Linux Foundation?", "vi"),
            (
                "Who founded 腾讯 and when did Tencent join OpenInfra?",
                "en",
            ),
            ("OpenStack のリリースはいつですか", "ja"),
            ("OpenStack 출시일은 언제입니까", "ko"),
        ] {
            assert_eq!(detect_query(q, &allowed), want, "{q}");
        }
    }

    #[test]
    fn vietnamese_without_diacritics_is_vietnamese() {
        let allowed = ["zh", "en", "vi"];
        for q in [
            "OpenStack duoc khoi xuong boi ai",
            "OpenInfra co bao nhieu thanh vien",
            "vi sao OpenInfra gia nhap Linux Foundation",
            "chuoi",
        ] {
            assert_eq!(detect_query(q, &allowed), "vi", "{q}");
        }
        for q in [
            "Who started OpenStack?",
            "When did OpenInfra join the Linux Foundation?",
            "can I go to the summit",
            "banana bread recipe",
            "How do I change a flat tire on my car?",
        ] {
            assert_eq!(detect_query(q, &allowed), "en", "{q}");
        }
    }

    #[test]
    fn every_code_is_iso_639_1() {
        for &l in Lang::all() {
            let code = iso639_1(l);
            assert_eq!(code.len(), 2, "{l:?}");
            assert!(is_known_code(code));
        }
        assert!(is_known_code("und") && is_known_code("sl") && is_known_code("tl"));
        assert!(!is_known_code("xx") && !is_known_code("slv") && !is_known_code("cmn"));
    }

    #[test]
    fn one_vietnamese_name_does_not_make_english_text_vietnamese() {
        assert_eq!(
            detect(
                "The keynote was given by Nguyễn Văn An, who leads the cloud team at a large bank in Hanoi."
            ),
            Some("en")
        );
    }
}
