//! Spelling correction of English query words against the dictionary's
//! English vocabulary, so "cheif architcet" is looked up as "chief
//! architect" and finds 首席架构师. Conservative by design: a wrong
//! correction brings the wrong translations, so a word is corrected only
//! when one candidate clearly stands out.

use std::collections::HashMap;

/// Words shorter than this are left alone: at one edit, a four-letter word
/// has too many neighbours ("coud": could, cloud, loud, cod).
const MIN_LENGTH: usize = 5;

/// Edits allowed by word length, as Lucene's `AUTO` fuzziness allows them
/// (one up to five letters, two beyond).
fn max_edits(length: usize) -> usize {
    if length <= 5 { 1 } else { 2 }
}

/// How much more often the best candidate must occur in the dictionary's
/// glosses than the next one at the same distance to be chosen.
const CLEAR_LEAD: u32 = 2;

/// English words of the dictionary's glosses with how many glosses use
/// them, grouped by length (in characters) for the search.
#[derive(Default)]
pub struct Speller {
    by_length: HashMap<usize, Vec<(String, u32)>>,
}

impl Speller {
    /// A speller over these words (each occurrence counts once).
    pub fn from_words<'a>(words: impl IntoIterator<Item = &'a str>) -> Self {
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for w in words {
            if w.len() >= 2 && w.chars().all(|c| c.is_ascii_lowercase()) {
                *counts.entry(w).or_default() += 1;
            }
        }
        let mut by_length: HashMap<usize, Vec<(String, u32)>> = HashMap::new();
        for (w, n) in counts {
            by_length
                .entry(w.len())
                .or_default()
                .push((w.to_string(), n));
        }
        for words in by_length.values_mut() {
            // Deterministic order, so ties are broken the same way each run.
            words.sort();
        }
        Self { by_length }
    }

    /// Whether the vocabulary holds `word`.
    pub fn knows(&self, word: &str) -> bool {
        self.by_length
            .get(&word.len())
            .is_some_and(|ws| ws.binary_search_by(|(w, _)| w.as_str().cmp(word)).is_ok())
    }

    /// The word `word` most likely misspells: the vocabulary word fewest
    /// edits away (Damerau–Levenshtein, within [`max_edits`]), when it is
    /// the only one at that distance or occurs at least [`CLEAR_LEAD`]
    /// times as often as the next. `None` for a known word, a short one,
    /// one that is not lower-case ASCII letters, or one without a clear
    /// correction.
    pub fn correct(&self, word: &str) -> Option<&str> {
        let length = word.len();
        if length < MIN_LENGTH || !word.chars().all(|c| c.is_ascii_lowercase()) || self.knows(word)
        {
            return None;
        }
        let edits = max_edits(length);
        let mut best: Vec<(usize, &str, u32)> = Vec::new();
        for candidates in
            (length.saturating_sub(edits)..=length + edits).filter_map(|l| self.by_length.get(&l))
        {
            for (w, n) in candidates {
                let d = strsim::damerau_levenshtein(word, w);
                if d > edits {
                    continue;
                }
                match best.first().map(|b| b.0) {
                    Some(b) if d > b => {}
                    Some(b) if d == b => best.push((d, w, *n)),
                    _ => best = vec![(d, w, *n)],
                }
            }
        }
        best.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(b.1)));
        match best.as_slice() {
            [] => None,
            [(_, w, _)] => Some(w),
            [(_, w, first), (_, _, second), ..] => (*first >= CLEAR_LEAD * second).then_some(*w),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speller() -> Speller {
        let glosses = "chief chief chief chief chef architect architecture important \
                       importance could cloud loud which with protocol house horse";
        Speller::from_words(glosses.split_whitespace())
    }

    #[test]
    fn a_misspelt_word_becomes_the_word_it_clearly_misspells() {
        let s = speller();
        assert_eq!(s.correct("architcet"), Some("architect"));
        assert_eq!(s.correct("importnt"), Some("important"));
        assert_eq!(s.correct("protocl"), Some("protocol"));
        // "chef" is one edit away too, but "chief" is far more common.
        assert_eq!(s.correct("cheif"), Some("chief"));
    }

    #[test]
    fn known_short_far_or_ambiguous_words_are_left_alone() {
        let s = speller();
        assert_eq!(s.correct("chief"), None, "known");
        assert_eq!(s.correct("coud"), None, "too short to tell");
        assert_eq!(s.correct("openinfra"), None, "nothing near");
        assert_eq!(s.correct("Chief"), None, "not lower-case letters");
        assert_eq!(s.correct("hoese"), None, "house and horse, once each");
    }
}
