//! A title for a document that names none: its first sentence, cut at a
//! word boundary with an ellipsis when long, so every client can print it.

/// Longest title made from a document's first sentence, ellipsis included.
pub const MAX_CHARS: usize = 120;

/// The title of a document that names none: its first sentence, cut at a
/// word boundary with an ellipsis when longer than
/// [`MAX_CHARS`].
pub fn from_first_sentence(clean: &str) -> Option<String> {
    let line = clean.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(shorten_title(first_sentence(line)))
}

/// The line up to and including its first sentence-ending mark (one
/// followed by a space or the end, or any CJK full stop).
fn first_sentence(line: &str) -> &str {
    let mut chars = line.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let end = at + c.len_utf8();
        let cjk = matches!(c, '。' | '！' | '？');
        let latin = matches!(c, '.' | '!' | '?')
            && chars.peek().is_none_or(|(_, next)| next.is_whitespace());
        if cjk || latin {
            return &line[..end];
        }
    }
    line
}

fn shorten_title(sentence: &str) -> String {
    let chars: Vec<char> = sentence.chars().collect();
    if chars.len() <= MAX_CHARS {
        return sentence.to_string();
    }
    let room = MAX_CHARS - 1;
    // Cut where a word ends: not between two letters of a Latin word
    // (Chinese has no spaces; any character boundary is a word's).
    let in_word = |c: char| c.is_alphanumeric() && !crate::lexical::is_han(c);
    let mut cut = room;
    while cut > room / 2 && in_word(chars[cut - 1]) && in_word(chars[cut]) {
        cut -= 1;
    }
    if in_word(chars[cut - 1]) && in_word(chars[cut]) {
        cut = room;
    }
    let kept: String = chars[..cut].iter().collect();
    format!(
        "{}…",
        kept.trim_end_matches(
            |c: char| c.is_whitespace() || matches!(c, ',' | '，' | '、' | ';' | ':' | '-')
        )
    )
}
