//! The words lexical retrieval counts: Chinese segmented by `jieba-rs`,
//! Latin-script and Vietnamese text split into words and syllables (NFC
//! first, lower case), stopwords dropped.

use std::sync::OnceLock;

use jieba_rs::Jieba;
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

/// Whether `term` is a Vietnamese stopword typed without its marks ("la"
/// for "là", "cua" for "của"). Not a stopword everywhere: English spells
/// some of them ("co-founder", "LA"), so only a question read as unmarked
/// Vietnamese drops them.
pub fn is_unmarked_vietnamese_stopword(term: &str) -> bool {
    term.is_ascii()
        && STOPWORDS
            .iter()
            .any(|s| !s.is_ascii() && !s.chars().any(is_han) && fold(s) == term)
}

/// Splits text into lowercase search terms.
#[derive(Debug, Clone, Copy, Default)]
pub struct TermTokenizer;

pub fn is_han(c: char) -> bool {
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

/// A term without Vietnamese marks: tone marks and vowel marks dropped
/// (NFD, combining marks removed), đ read as d.
pub fn fold(term: &str) -> String {
    term.nfd()
        .filter(|c| !matches!(*c as u32, 0x0300..=0x036F))
        .map(|c| match c {
            'đ' => 'd',
            'Đ' => 'D',
            c => c,
        })
        .collect()
}

/// The English Snowball stem of a lowercase word.
pub fn stem(word: &str) -> String {
    static STEMMER: OnceLock<rust_stemmers::Stemmer> = OnceLock::new();
    STEMMER
        .get_or_init(|| rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English))
        .stem(word)
        .into_owned()
}
