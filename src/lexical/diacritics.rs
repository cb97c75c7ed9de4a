//! Vietnamese marks put back on a question typed without them ("co bao
//! nhieu thanh vien" → "có bao nhiêu thành viên"), so the embedding model
//! reads the words it was trained on. The model is pyvi's ViDiac (MIT), a
//! linear-chain CRF over characters whose labels are the marks to add;
//! `make setup` dumps it into a table (models/lexicon.toml) and this file
//! computes its features exactly as pyvi does and decodes it by Viterbi.

use std::collections::HashMap;
use std::path::Path;

use unicode_normalization::UnicodeNormalization;

use super::lexicon::is_unaccented_syllable;
use crate::error::{Error, Result};

/// The table file, read from beside the CC-CEDICT file.
pub const DIACRITICS_FILE: &str = "vi-diacritics.tsv";

/// ASCII punctuation, as Python's `string.punctuation`.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// One label: which marks a character gets. Letter case, which the model
/// also predicts, is ignored: the question keeps its own.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Marks {
    /// Circumflex (â ê ô), or đ for d ("m": the telex doubled letter).
    circumflex: bool,
    /// Breve or horn (ă ơ ư; "w").
    horn: bool,
    /// Tone: one of telex's s f r x j.
    tone: Option<char>,
}

impl Marks {
    fn parse(label: &str) -> Self {
        let mut marks = Self::default();
        for c in label.chars() {
            match c {
                'm' => marks.circumflex = true,
                'w' => marks.horn = true,
                's' | 'f' | 'r' | 'x' | 'j' => marks.tone = Some(c),
                _ => {}
            }
        }
        marks
    }

    /// `c` with these marks, or `c` unchanged when they do not fit it.
    fn apply(self, c: char) -> char {
        if self == Self::default() {
            return c;
        }
        if c == 'd' && self.circumflex {
            return 'đ';
        }
        let mut decomposed = String::from(c);
        match (self.circumflex, self.horn, c) {
            (true, _, 'a' | 'e' | 'o') => decomposed.push('\u{302}'),
            (_, true, 'a') => decomposed.push('\u{306}'),
            (_, true, 'o' | 'u') => decomposed.push('\u{31B}'),
            (false, false, _) => {}
            _ => return c,
        }
        if let Some(tone) = self.tone {
            if !"aeiouy".contains(c) {
                return c;
            }
            decomposed.push(match tone {
                's' => '\u{301}',
                'f' => '\u{300}',
                'r' => '\u{309}',
                'x' => '\u{303}',
                _ => '\u{323}',
            });
        }
        let mut composed = decomposed.nfc();
        match (composed.next(), composed.next()) {
            (Some(one), None) => one,
            _ => c,
        }
    }
}

/// pyvi's diacritics CRF: label marks, transition weights, state feature
/// weights by attribute.
pub struct Diacritics {
    labels: Vec<Marks>,
    /// `transitions[from * labels + to]`.
    transitions: Vec<f32>,
    states: HashMap<String, Vec<(u16, f32)>>,
}

impl std::fmt::Debug for Diacritics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Diacritics({} labels, {} attributes)",
            self.labels.len(),
            self.states.len()
        )
    }
}

impl Diacritics {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| Error::Io(format!("{}: {e}", path.display())))
    }

    /// Reads the table `models/provision.py` writes: a `labels` line, then
    /// `t from to weight` and `s attribute label weight` lines.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut labels = Vec::new();
        let mut transitions = Vec::new();
        let mut states: HashMap<String, Vec<(u16, f32)>> = HashMap::new();
        for (n, line) in text.split('\n').enumerate() {
            let fields: Vec<&str> = line.split('\t').collect();
            let bad = || format!("line {}: malformed", n + 1);
            match fields.as_slice() {
                ["labels", names @ ..] => {
                    labels = names.iter().map(|l| Marks::parse(l)).collect();
                    transitions = vec![0.0; labels.len() * labels.len()];
                }
                ["t", from, to, weight] => {
                    let (from, to): (usize, usize) = (
                        from.parse().map_err(|_| bad())?,
                        to.parse().map_err(|_| bad())?,
                    );
                    if from >= labels.len() || to >= labels.len() {
                        return Err(bad());
                    }
                    transitions[from * labels.len() + to] = weight.parse().map_err(|_| bad())?;
                }
                ["s", attribute, label, weight] => {
                    let label: u16 = label.parse().map_err(|_| bad())?;
                    if usize::from(label) >= labels.len() {
                        return Err(bad());
                    }
                    states
                        .entry((*attribute).to_string())
                        .or_default()
                        .push((label, weight.parse().map_err(|_| bad())?));
                }
                [""] => {}
                [comment, ..] if comment.starts_with('#') => {}
                _ => return Err(bad()),
            }
        }
        if labels.is_empty() {
            return Err("no labels line".into());
        }
        Ok(Self {
            labels,
            transitions,
            states,
        })
    }

    /// `question` with the marks put back on its words that are Vietnamese
    /// syllables typed without marks, when the question has no marks at
    /// all; `None` when it has some or nothing changes. Other words
    /// (English, product names) and the case of every letter stay as typed.
    pub fn restore(&self, question: &str) -> Option<String> {
        if !question.is_ascii() {
            return None;
        }
        let lower: Vec<char> = question.to_lowercase().chars().collect();
        let marks = self.decode(&lower);
        let original: Vec<char> = question.chars().collect();
        let mut out = String::with_capacity(question.len() + 16);
        let mut changed = false;
        let mut i = 0;
        while i < original.len() {
            if !original[i].is_ascii_alphabetic() {
                out.push(original[i]);
                i += 1;
                continue;
            }
            let start = i;
            while i < original.len() && original[i].is_ascii_alphabetic() {
                i += 1;
            }
            let word: String = lower[start..i].iter().collect();
            let syllable = is_unaccented_syllable(&word);
            for j in start..i {
                let c = if syllable {
                    marks[j].apply(lower[j])
                } else {
                    lower[j]
                };
                changed |= c != lower[j];
                if original[j].is_uppercase() {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
            }
        }
        changed.then_some(out)
    }

    /// The most likely marks of each character of `chars` (lower-cased).
    fn decode(&self, chars: &[char]) -> Vec<Marks> {
        let n = self.labels.len();
        if chars.is_empty() {
            return Vec::new();
        }
        let scores: Vec<Vec<f32>> = (0..chars.len())
            .map(|i| {
                let mut s = vec![0.0f32; n];
                for (attribute, value) in features(chars, i) {
                    if let Some(weights) = self.states.get(&attribute) {
                        for &(label, w) in weights {
                            s[usize::from(label)] += w * value;
                        }
                    }
                }
                s
            })
            .collect();
        let mut best = scores[0].clone();
        let mut back: Vec<Vec<u16>> = Vec::with_capacity(chars.len());
        for s in &scores[1..] {
            let mut next = vec![f32::NEG_INFINITY; n];
            let mut from = vec![0u16; n];
            for to in 0..n {
                for (prev, score) in best.iter().enumerate() {
                    let v = score + self.transitions[prev * n + to];
                    if v > next[to] {
                        next[to] = v;
                        from[to] = prev as u16;
                    }
                }
                next[to] += s[to];
            }
            back.push(from);
            best = next;
        }
        let mut label = (0..n)
            .max_by(|&a, &b| best[a].total_cmp(&best[b]))
            .unwrap_or(0);
        let mut path = vec![label];
        for from in back.iter().rev() {
            label = usize::from(from[label]);
            path.push(label);
        }
        path.reverse();
        path.into_iter().map(|l| self.labels[l]).collect()
    }
}

/// The attributes pyvi's `ViDiac.word2features` gives character `i` (with
/// their values: 1 for strings, the truth of booleans), its quirks kept,
/// since the weights were trained on them: the word around the character,
/// each of its characters by offset, and the words before and after.
fn features(t: &[char], i: usize) -> Vec<(String, f32)> {
    let digit = |c: char| f32::from(u8::from(c.is_numeric()));
    let punct = |c: char| f32::from(u8::from(PUNCTUATION.contains(c)));
    let mut f = vec![
        ("bias".to_string(), 1.0),
        (format!("current_char_{{}}:{}", t[i]), 1.0),
        ("is_digit_".to_string(), digit(t[i])),
        ("is_punc_".to_string(), punct(t[i])),
    ];
    let offset = |j: usize| j as i64 - i as i64;
    let mut left = i;
    while left > 0 && t[left] != ' ' {
        left -= 1;
        f.push((format!("{}_char_:{}", offset(left), t[left]), 1.0));
        f.push((format!("{}_isdigit_", offset(left)), digit(t[left])));
        f.push((format!("{}_ispunct_", offset(left)), punct(t[left])));
    }
    let mut right = i;
    while right + 1 < t.len() && t[right] != ' ' {
        right += 1;
        f.push((format!("{}_char_:{}", offset(right), t[right]), 1.0));
        f.push((format!("{}_isdigit_", offset(right)), digit(t[right])));
        f.push((format!("{}_ispunct_", offset(right)), punct(t[right])));
    }
    if left != right {
        let word: String = t[left..right].iter().collect();
        f.push((format!("inner_word_:{word}"), 1.0));
    }
    // The word before the one the character is in (pyvi's `-1_word_`).
    let (mut spaces, mut last_space, mut j) = (0, i, i);
    while spaces < 2 && j > 0 {
        j -= 1;
        if t[j] == ' ' || j == 0 {
            spaces += 1;
            if spaces == 1 {
                last_space = j;
            } else {
                let word: String = t[j + 1..last_space.max(j + 1)].iter().collect();
                f.push((format!("-1_word_:{word}"), 1.0));
            }
        }
        if ".!?".contains(t[j]) {
            break;
        }
    }
    // And the word after it (`1_word_`).
    let (mut spaces, mut last_space, mut j) = (0, i, i);
    while spaces < 2 && j + 1 < t.len() {
        j += 1;
        if t[j] == ' ' {
            spaces += 1;
            if spaces == 1 {
                last_space = j;
            } else {
                let word: String = t[last_space + 1..j].iter().collect();
                f.push((format!("1_word_:{word}"), 1.0));
            }
        }
        if ".!?".contains(t[j]) {
            break;
        }
    }
    f.retain(|(_, v)| *v != 0.0);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_compose_into_one_letter_or_leave_it_alone() {
        let m = |label: &str, c: char| Marks::parse(label).apply(c);
        assert_eq!(m("Lmf", 'e'), 'ề');
        assert_eq!(m("Lwj", 'u'), 'ự');
        assert_eq!(m("Lw", 'a'), 'ă');
        assert_eq!(m("Lm", 'd'), 'đ');
        assert_eq!(m("Ls", 'y'), 'ý');
        assert_eq!(m("L", 'a'), 'a');
        assert_eq!(m("U", 'a'), 'a', "case is not the model's to change");
        assert_eq!(m("Ls", 'n'), 'n', "no tone on a consonant");
        assert_eq!(m("Lw", 'i'), 'i', "no horn on i");
    }

    #[test]
    fn features_follow_pyvi_on_a_short_text() {
        let t: Vec<char> = "ai la gi".chars().collect();
        let names = |i| -> Vec<String> { features(&t, i).into_iter().map(|(a, _)| a).collect() };
        // "l": the space before it, "a" after it, its word cut as pyvi
        // cuts it (from the space, not to the end), and the words around.
        assert_eq!(
            names(3),
            [
                "bias",
                "current_char_{}:l",
                "-1_char_: ",
                "1_char_:a",
                "2_char_: ",
                "inner_word_: la",
                // pyvi names no word after the last space: "gi" is missing.
                "-1_word_:i",
            ]
        );
    }

    #[test]
    fn a_malformed_table_is_an_error() {
        assert!(Diacritics::parse("labels\tL\tLs\nt\t0\t5\t1.0\n").is_err());
        assert!(Diacritics::parse("s\tbias\t0\t1.0\n").is_err(), "no labels");
        assert!(Diacritics::parse("labels\tL\tLs\ns\tbias\t1\tx\n").is_err());
        let d = Diacritics::parse("labels\tL\tLs\ns\tbias\t1\t1.0\n").expect("parses");
        // Every character takes the acute here; only syllables get it.
        assert_eq!(d.restore("ma OpenStack").as_deref(), Some("má OpenStack"));
        assert_eq!(d.restore("có sẵn"), None, "marked text is left alone");
    }
}
