//! Turns a raw article (plain text, markdown, HTML fragments, YAML front
//! matter) into clean text, keeping for every clean character the span of the
//! original text it came from, so citations point at the original file.
//!
//! Offsets are Unicode scalar values (Rust `char`s), never bytes: clients in
//! every language can slice a string by code points.
//!
//! Why not an HTML or markdown parser crate: none of the well-kept ones
//! (`scraper`, `html5ever`, `pulldown-cmark`) reports the source position of
//! every character it emits once entities are decoded and inline markup is
//! mixed with HTML, and citations need exactly that. The cleaner below only
//! recognises well-formed constructs and leaves anything else as text, so a
//! stray `<` or `[` in prose is never lost. Entities are decoded with
//! `html-escape`; front matter is parsed with `serde_yaml_ng`.

use std::ops::Range;

/// A document after cleaning: text plus, per clean char, the original span.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanText {
    /// The clean characters.
    pub chars: Vec<char>,
    /// For each clean char, the range of original chars it stands for.
    pub origin: Vec<Range<usize>>,
}

impl CleanText {
    /// The clean text of `range` (indices into `chars`) as a string.
    pub fn text(&self, range: Range<usize>) -> String {
        self.chars[range].iter().collect()
    }

    /// The original span covered by the clean chars in `range` (non-empty).
    pub fn original_span(&self, range: Range<usize>) -> Range<usize> {
        self.origin[range.start].start..self.origin[range.end - 1].end
    }

    pub fn len(&self) -> usize {
        self.chars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }
}

/// What parsing finds in a document besides its clean text.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDocument {
    /// Title from front matter, else the first heading, else the first line.
    pub title: String,
    /// The `date` (or `published`) front-matter value, or an HTML meta
    /// date, as written.
    pub published: Option<String>,
    /// A front-matter `url`, or an HTML canonical link.
    pub url: Option<String>,
    /// Front-matter keys and HTML `<meta>` tags (`metadata::from_yaml`,
    /// `head::read`), not yet checked against the limits.
    pub metadata: crate::metadata::Metadata,
    pub clean: CleanText,
}

/// Parses `original` into clean text with an offset map back into it.
pub fn parse(original: &str) -> ParsedDocument {
    let chars: Vec<char> = original.chars().collect();
    let mut edits = Edits::new(chars.len());

    let front = front_matter(&chars);
    let body_start = front.as_ref().map_or(0, |fm| fm.span.end);
    let head = super::head::read(&chars, body_start);
    let (fm_title, published, url, metadata) = match front {
        Some(fm) => {
            edits.drop(fm.span.clone());
            let mut metadata = head.metadata;
            metadata.extend(fm.metadata);
            (
                fm.title,
                fm.published.or(head.published),
                fm.url.or(head.url),
                metadata,
            )
        }
        None => (None, head.published, head.url, head.metadata),
    };
    let fm_title = fm_title.or(head.title);

    mark_html(&chars, body_start, &mut edits);
    mark_markdown(&chars, body_start, &mut edits);
    let clean = edits.apply(&chars);
    let clean = drop_boilerplate_lines(clean);
    let clean = tidy_whitespace(clean);

    let title = fm_title
        .filter(|t| !t.trim().is_empty())
        .or_else(|| first_heading(&chars, body_start))
        .or_else(|| super::title::from_first_sentence(&clean.chars.iter().collect::<String>()))
        .unwrap_or_default();
    ParsedDocument {
        title,
        published,
        url,
        metadata,
        clean,
    }
}

/// Replacements over the original chars, decided by the markup passes and
/// applied in one go. Each original char is kept, dropped, or is the start
/// of a span replaced by a string.
struct Edits {
    dropped: Vec<bool>,
    /// start -> (end, replacement), for spans like entities and block tags.
    replaced: std::collections::BTreeMap<usize, (usize, String)>,
}

impl Edits {
    fn new(len: usize) -> Self {
        Self {
            dropped: vec![false; len],
            replaced: Default::default(),
        }
    }

    fn drop(&mut self, span: Range<usize>) {
        for d in &mut self.dropped[span] {
            *d = true;
        }
    }

    fn is_touched(&self, span: Range<usize>) -> bool {
        span.clone().any(|i| self.dropped[i]) || self.replaced.range(span).next().is_some()
    }

    fn replace(&mut self, span: Range<usize>, with: String) {
        self.drop(span.clone());
        self.replaced.insert(span.start, (span.end, with));
    }

    fn apply(self, chars: &[char]) -> CleanText {
        let mut out = CleanText {
            chars: Vec::with_capacity(chars.len()),
            origin: Vec::with_capacity(chars.len()),
        };
        for (i, &c) in chars.iter().enumerate() {
            if let Some((end, with)) = self.replaced.get(&i) {
                for r in with.chars() {
                    out.chars.push(r);
                    out.origin.push(i..*end);
                }
            } else if !self.dropped[i] {
                out.chars.push(c);
                out.origin.push(i..i + 1);
            }
        }
        out
    }
}

struct FrontMatter {
    span: Range<usize>,
    title: Option<String>,
    published: Option<String>,
    url: Option<String>,
    metadata: crate::metadata::Metadata,
}

/// Finds a YAML front matter block (`---` lines) at the start, after blank lines.
fn front_matter(chars: &[char]) -> Option<FrontMatter> {
    let mut i = 0;
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    let line_at = |start: usize| -> (String, usize) {
        let end = chars[start..]
            .iter()
            .position(|&c| c == '\n')
            .map_or(chars.len(), |p| start + p);
        (chars[start..end].iter().collect(), end)
    };
    let start = i;
    let (first, mut end) = line_at(start);
    if first.trim_end() != "---" {
        return None;
    }
    let yaml_start = (end + 1).min(chars.len());
    let mut pos = yaml_start;
    while pos < chars.len() {
        let (line, line_end) = line_at(pos);
        if line.trim_end() == "---" || line.trim_end() == "..." {
            end = line_end;
            let yaml: String = chars[yaml_start..pos].iter().collect();
            let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).ok()?;
            let map = value.as_mapping()?;
            let scalar = |key: &str| -> Option<String> {
                match map.get(key)? {
                    serde_yaml_ng::Value::String(s) => Some(s.trim().to_string()),
                    serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }
            };
            return Some(FrontMatter {
                span: start..end.min(chars.len()),
                title: scalar("title"),
                published: scalar("date").or_else(|| scalar("published")),
                url: scalar("url"),
                metadata: crate::metadata::from_yaml(map),
            });
        }
        pos = line_end + 1;
    }
    None
}

const BLOCK_TAGS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
    "section",
    "article",
    "blockquote",
    "header",
    "footer",
    "figure",
    "figcaption",
    "hr",
    "pre",
    "dd",
    "dt",
    "td",
    "th",
];
const SKIPPED_ELEMENTS: &[&str] = &["script", "style", "noscript", "template"];

/// Marks HTML comments, tags, skipped elements and entities.
fn mark_html(chars: &[char], from: usize, edits: &mut Edits) {
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '<' => {
                if starts_with(chars, i, "<!--") {
                    let end = find(chars, i + 4, "-->").map_or(chars.len(), |p| p + 3);
                    edits.drop(i..end);
                    i = end;
                    continue;
                }
                if let Some((end, name, closing)) = html_tag(chars, i) {
                    if !closing && SKIPPED_ELEMENTS.contains(&name.as_str()) {
                        let close = format!("</{name}");
                        let stop = find_ci(chars, end, &close)
                            .and_then(|p| {
                                chars[p..].iter().position(|&c| c == '>').map(|q| p + q + 1)
                            })
                            .unwrap_or(chars.len());
                        edits.drop(i..stop);
                        i = stop;
                        continue;
                    }
                    if BLOCK_TAGS.contains(&name.as_str()) {
                        edits.replace(i..end, "\n".into());
                    } else {
                        edits.drop(i..end);
                    }
                    i = end;
                    continue;
                }
            }
            '&' => {
                if let Some((end, decoded)) = entity(chars, i) {
                    let decoded = decoded.replace('\u{a0}', " ");
                    edits.replace(i..end, decoded);
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// Recognises `<name ...>`, `</name>` or `<!doctype ...>`; returns (end, lowercase name, closing).
pub(super) fn html_tag(chars: &[char], start: usize) -> Option<(usize, String, bool)> {
    let mut j = start + 1;
    let closing = chars.get(j) == Some(&'/');
    if closing {
        j += 1;
    }
    let bang = chars.get(j) == Some(&'!');
    if bang {
        j += 1;
    }
    let name_start = j;
    while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '-') {
        j += 1;
    }
    if j == name_start || !chars[name_start].is_ascii_alphabetic() {
        return None;
    }
    let name: String = chars[name_start..j]
        .iter()
        .collect::<String>()
        .to_ascii_lowercase();
    // After the name: whitespace, '/', or '>' directly.
    match chars.get(j) {
        Some(c) if c.is_whitespace() || *c == '/' || *c == '>' => {}
        _ => return None,
    }
    // Find the closing '>' outside quotes, within a sane distance.
    let mut quote: Option<char> = None;
    let limit = (j + 4096).min(chars.len());
    while j < limit {
        let c = chars[j];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '>' => return Some((j + 1, name, closing)),
            None if c == '<' => return None,
            None => {}
        }
        j += 1;
    }
    None
}

/// Recognises `&name;`, `&#123;` or `&#x1F600;` and decodes it.
fn entity(chars: &[char], start: usize) -> Option<(usize, String)> {
    let limit = (start + 12).min(chars.len());
    let semi = (start + 1..limit).find(|&j| chars[j] == ';')?;
    let body = &chars[start + 1..semi];
    let valid = !body.is_empty()
        && (body.iter().all(|c| c.is_ascii_alphanumeric())
            || (body[0] == '#'
                && body.len() > 1
                && body[1..].iter().all(|c| c.is_ascii_alphanumeric())));
    if !valid {
        return None;
    }
    let raw: String = chars[start..=semi].iter().collect();
    let decoded = html_escape::decode_html_entities(&raw).into_owned();
    (decoded != raw).then_some((semi + 1, decoded))
}

/// Marks markdown images (dropped whole), links (text kept), heading markers,
/// emphasis markers and block quotes.
fn mark_markdown(chars: &[char], from: usize, edits: &mut Edits) {
    let mut i = from;
    let mut line_start = true;
    while i < chars.len() {
        let c = chars[i];
        if line_start {
            // Heading markers: "#{1,6} " at the start of a line.
            let hashes = chars[i..].iter().take_while(|&&c| c == '#').count();
            if (1..=6).contains(&hashes) && chars.get(i + hashes) == Some(&' ') {
                edits.drop(i..i + hashes + 1);
                i += hashes + 1;
                line_start = false;
                continue;
            }
            if c == '>' && chars.get(i + 1) == Some(&' ') && !edits.is_touched(i..i + 1) {
                edits.drop(i..i + 2);
                i += 2;
                line_start = false;
                continue;
            }
        }
        line_start = c == '\n';
        if c == '!'
            && chars.get(i + 1) == Some(&'[')
            && let Some(link) = md_link(chars, i + 1)
            && !edits.is_touched(i..i + 1)
        {
            edits.drop(i..link.end);
            i = link.end;
            continue;
        }
        if c == '['
            && !edits.is_touched(i..i + 1)
            && let Some(link) = md_link(chars, i)
        {
            edits.drop(i..i + 1);
            edits.drop(link.text_end..link.end);
            // Link text may itself hold markup; continue scanning inside it.
            i += 1;
            continue;
        }
        if (c == '*' || c == '_') && chars.get(i + 1) == Some(&c) && !edits.is_touched(i..i + 2) {
            edits.drop(i..i + 2);
            i += 2;
            continue;
        }
        i += 1;
    }
}

struct MdLink {
    /// Index of the `]`.
    text_end: usize,
    /// One past the `)`.
    end: usize,
}

/// Recognises `[text](target)` starting at `[`; text may span lines, target has no spaces.
fn md_link(chars: &[char], open: usize) -> Option<MdLink> {
    let mut depth = 0usize;
    let limit = (open + 2000).min(chars.len());
    let mut j = open;
    while j < limit {
        match chars[j] {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        j += 1;
    }
    if j >= limit || chars.get(j + 1) != Some(&'(') {
        return None;
    }
    let text_end = j;
    let mut k = j + 2;
    let limit = (k + 2000).min(chars.len());
    let mut parens = 1usize;
    while k < limit {
        match chars[k] {
            '(' => parens += 1,
            ')' => {
                parens -= 1;
                if parens == 0 {
                    return Some(MdLink {
                        text_end,
                        end: k + 1,
                    });
                }
            }
            c if c.is_whitespace() && !title_allowed(chars, j + 2, k) => return None,
            _ => {}
        }
        k += 1;
    }
    None
}

/// Markdown allows `[t](url "title")`: whitespace is fine once a quote follows it.
fn title_allowed(chars: &[char], target_start: usize, at: usize) -> bool {
    at > target_start && matches!(chars.get(at + 1), Some('"') | Some('\''))
        || chars[target_start..at].contains(&'"')
}

fn starts_with(chars: &[char], at: usize, pat: &str) -> bool {
    pat.chars()
        .enumerate()
        .all(|(k, p)| chars.get(at + k) == Some(&p))
}

fn find(chars: &[char], from: usize, pat: &str) -> Option<usize> {
    (from..chars.len()).find(|&j| starts_with(chars, j, pat))
}

pub(super) fn find_ci(chars: &[char], from: usize, pat: &str) -> Option<usize> {
    let pat: Vec<char> = pat.chars().collect();
    (from..chars.len().saturating_sub(pat.len() - 1)).find(|&j| {
        pat.iter()
            .enumerate()
            .all(|(k, p)| chars[j + k].eq_ignore_ascii_case(p))
    })
}

/// Lines that are site furniture rather than article text: subscribe
/// prompts, comment counters, share and copyright notices, in the languages
/// wenda serves. Matched on the lowercase clean line.
const BOILERPLATE_PATTERNS: &[&str] = &[
    "subscribe",
    "sign up for",
    "signed-in readers",
    "newsletter",
    "comments",
    "leave a comment",
    "was this worth your time",
    "how this landed",
    "share this",
    "all rights reserved",
    "republished",
    "if you believe it infringes",
    "click here",
    "read more",
    "related articles",
    "youtube.com/",
    "订阅",
    "评论",
    "点赞",
    "分享到",
    "扫码",
    "关注我们",
    "版权所有",
    "转载",
    "责任编辑",
    "原文链接",
    "đăng ký",
    "bình luận",
    "chia sẻ",
    "bản quyền",
];

/// How far from the end a footer may start, in lines.
const TAIL_LINES: usize = 12;

fn is_boilerplate(line: &str) -> bool {
    let lower = line.trim().to_lowercase();
    if lower.is_empty() {
        return false;
    }
    // Long lines are prose that happens to mention a keyword, not furniture.
    lower.chars().count() <= 100 && BOILERPLATE_PATTERNS.iter().any(|p| lower.contains(p))
}

/// A short line without sentence-ending punctuation: a title, a label, a link.
fn is_fragment(line: &str) -> bool {
    let t = line.trim();
    let n = t.chars().count();
    n > 0
        && n <= 90
        && !t.ends_with([
            '.', '。', '!', '！', '?', '？', '"', '”', ':', '：', ';', '；',
        ])
}

/// Drops boilerplate lines, and fragments and short lines that sit among them
/// (a "related articles" list, a site's own blurb between two prompts).
fn drop_boilerplate_lines(clean: CleanText) -> CleanText {
    let lines = line_ranges(&clean.chars);
    let texts: Vec<String> = lines.iter().map(|r| clean.text(r.clone())).collect();
    let mut drop = boilerplate_zones(&texts);
    // A comment section or footer runs to the end: once a boilerplate line
    // among the last few is followed only by short lines, those go too.
    let tail_start = texts.len().saturating_sub(TAIL_LINES);
    if let Some(k) = (tail_start..texts.len())
        .find(|&k| drop[k] && (k + 1..texts.len()).all(|j| texts[j].chars().count() <= 240))
    {
        for d in &mut drop[k..] {
            *d = true;
        }
    }
    let mut out = CleanText {
        chars: Vec::with_capacity(clean.len()),
        origin: Vec::with_capacity(clean.len()),
    };
    for (k, range) in lines.iter().enumerate() {
        if drop[k] {
            continue;
        }
        out.chars.extend_from_slice(&clean.chars[range.clone()]);
        out.origin.extend_from_slice(&clean.origin[range.clone()]);
    }
    out
}

/// Which lines are boilerplate: the lines that look it, grown over
/// adjacent fragments (blank lines skipped).
fn boilerplate_zones(texts: &[String]) -> Vec<bool> {
    let n = texts.len();
    let blank: Vec<bool> = texts.iter().map(|t| t.trim().is_empty()).collect();
    // The nearest non-blank line before and after each line.
    let mut prev = vec![None; n];
    let mut next = vec![None; n];
    let mut seen = None;
    for k in 0..n {
        prev[k] = seen;
        if !blank[k] {
            seen = Some(k);
        }
    }
    seen = None;
    for k in (0..n).rev() {
        next[k] = seen;
        if !blank[k] {
            seen = Some(k);
        }
    }
    let mut drop: Vec<bool> = texts.iter().map(|t| is_boilerplate(t)).collect();
    // Grow boilerplate zones over adjacent fragments, skipping blank lines.
    // A line can only join a zone when a neighbour just did, so only the
    // neighbours of dropped lines are looked at (a worklist): linear, where
    // re-scanning every line until nothing changed was quadratic (20,000
    // short lines before one boilerplate line took 32 s).
    let mut work: Vec<usize> = (0..n)
        .filter(|&k| drop[k])
        .flat_map(|k| [prev[k], next[k]])
        .flatten()
        .collect();
    while let Some(k) = work.pop() {
        if drop[k] || blank[k] {
            continue;
        }
        let near = |j: Option<usize>| j.is_some_and(|j| drop[j]);
        let sandwiched = near(prev[k]) && near(next[k]) && texts[k].chars().count() <= 240;
        if (is_fragment(&texts[k]) && (near(prev[k]) || near(next[k]))) || sandwiched {
            drop[k] = true;
            work.extend(prev[k]);
            work.extend(next[k]);
        }
    }
    drop
}

/// Line ranges over chars, each including its trailing '\n'.
fn line_ranges(chars: &[char]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &c) in chars.iter().enumerate() {
        if c == '\n' {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < chars.len() {
        out.push(start..chars.len());
    }
    out
}

/// Folds whitespace runs that markup produced (indentation between tags,
/// line breaks standing for `<p>`) into one line break, and drops the
/// whitespace that cleaning left at the very start. Whitespace that is
/// entirely the author's (every char maps to itself) is kept as written, so
/// for plain text the clean text is the original.
fn tidy_whitespace(clean: CleanText) -> CleanText {
    let n = clean.len();
    let mut out = CleanText {
        chars: Vec::with_capacity(n),
        origin: Vec::with_capacity(n),
    };
    let mut i = 0;
    while i < n {
        if !clean.chars[i].is_whitespace() {
            out.chars.push(clean.chars[i]);
            out.origin.push(clean.origin[i].clone());
            i += 1;
            continue;
        }
        let start = i;
        while i < n && clean.chars[i].is_whitespace() {
            i += 1;
        }
        let run = start..i;
        // Authored whitespace: contiguous in the original, one char each.
        let authored = run.clone().all(|k| clean.origin[k].len() == 1)
            && run
                .clone()
                .skip(1)
                .all(|k| clean.origin[k].start == clean.origin[k - 1].end);
        if authored && !out.is_empty() {
            out.chars.extend_from_slice(&clean.chars[run.clone()]);
            out.origin.extend_from_slice(&clean.origin[run]);
        } else if !out.is_empty() && i < n {
            let breaks = run.clone().any(|k| clean.chars[k] == '\n');
            let k = run
                .clone()
                .find(|&k| clean.chars[k] == '\n')
                .unwrap_or(start);
            out.chars.push(if breaks { '\n' } else { ' ' });
            out.origin.push(clean.origin[k].clone());
        }
    }
    out
}

fn first_heading(chars: &[char], from: usize) -> Option<String> {
    let text: String = chars[from..].iter().collect();
    text.lines()
        .find_map(|l| {
            l.trim_start()
                .strip_prefix("# ")
                .map(|t| parse_body(t.trim()))
        })
        .filter(|t| !t.is_empty())
}

/// The clean text of a fragment with no front matter.
pub(super) fn parse_body(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut edits = Edits::new(chars.len());
    mark_html(&chars, 0, &mut edits);
    mark_markdown(&chars, 0, &mut edits);
    let clean = edits.apply(&chars);
    clean.chars.iter().collect::<String>().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The old zone growth: every line re-checked until nothing changes.
    fn zones_by_fixpoint(texts: &[String]) -> Vec<bool> {
        let is_blank = |k: usize| texts[k].trim().is_empty();
        let mut drop: Vec<bool> = texts.iter().map(|t| is_boilerplate(t)).collect();
        loop {
            let mut changed = false;
            for k in 0..texts.len() {
                if drop[k] || is_blank(k) {
                    continue;
                }
                let prev = (0..k).rev().find(|&j| !is_blank(j));
                let next = (k + 1..texts.len()).find(|&j| !is_blank(j));
                let near = |j: Option<usize>| j.is_some_and(|j| drop[j]);
                let sandwiched = near(prev) && near(next) && texts[k].chars().count() <= 240;
                if (is_fragment(&texts[k]) && (near(prev) || near(next))) || sandwiched {
                    drop[k] = true;
                    changed = true;
                }
            }
            if !changed {
                return drop;
            }
        }
    }

    mod zones {
        use super::*;
        use proptest::prelude::*;

        const LINES: [&str; 7] = [
            "Subscribe to our newsletter\n",
            "Related articles\n",
            "\n",
            "   \n",
            "a\n",
            "Short fragment\n",
            "A whole sentence of article text that says something, with a verb and an end.\n",
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]
            /// The worklist finds exactly the zones the fixpoint loop found.
            #[test]
            fn the_worklist_grows_the_same_zones(picks in proptest::collection::vec(0..LINES.len(), 0..60)) {
                let texts: Vec<String> = picks.iter().map(|&i| LINES[i].to_string()).collect();
                prop_assert_eq!(boilerplate_zones(&texts), zones_by_fixpoint(&texts));
            }
        }

        /// The case that took 32 s: 20,000 short lines before one
        /// boilerplate line, all of which join its zone.
        #[test]
        fn many_fragments_before_a_boilerplate_line_all_join_its_zone() {
            let mut texts = vec!["a\n".to_string(); 20_000];
            texts.push("subscribe\n".into());
            assert!(boilerplate_zones(&texts).iter().all(|&d| d));
        }
    }

    fn clean_str(doc: &ParsedDocument) -> String {
        doc.clean.chars.iter().collect()
    }

    #[test]
    fn plain_text_is_unchanged_and_maps_to_itself() {
        let original = "第一句。第二句！\n\nSecond line, with spaces.";
        let doc = parse(original);
        assert_eq!(clean_str(&doc), original);
        for (i, r) in doc.clean.origin.iter().enumerate() {
            assert_eq!(*r, i..i + 1);
        }
    }

    #[test]
    fn front_matter_gives_title_and_date_and_is_removed() {
        let original = "\n---\ntitle: 'Hello 世界'\ndate: Tue, 15 Jun 2021 06:50:00 GMT\ncomments: false\n---\n\nBody text.";
        let doc = parse(original);
        assert_eq!(doc.title, "Hello 世界");
        assert_eq!(
            doc.published.as_deref(),
            Some("Tue, 15 Jun 2021 06:50:00 GMT")
        );
        assert_eq!(clean_str(&doc), "Body text.");
        let span = doc.clean.original_span(0..doc.clean.len());
        let orig: String = original.chars().skip(span.start).take(span.len()).collect();
        assert_eq!(orig, "Body text.");
    }

    #[test]
    fn html_tags_and_entities_are_cleaned_with_offsets() {
        let original =
            "<div>\n<p style=\"a>b\">A &amp; B</p><p>云<a href=\"x\">计算</a>&nbsp;好</p>\n</div>";
        let doc = parse(original);
        assert_eq!(clean_str(&doc), "A & B\n云计算 好");
        let amp = doc.clean.chars.iter().position(|&c| c == '&').unwrap();
        let span = doc.clean.origin[amp].clone();
        let orig: String = original.chars().skip(span.start).take(span.len()).collect();
        assert_eq!(orig, "&amp;");
    }

    #[test]
    fn markdown_images_links_and_headings() {
        let original = "# 标题 **一**\n\n![img alt](https://x/y.jpg)\n\n见 [Linux 基金会](https://lf.org/?a=b) 的 [OpenStack] 页面。";
        let doc = parse(original);
        assert_eq!(doc.title, "标题 一");
        assert_eq!(
            clean_str(&doc),
            "标题 一\n见 Linux 基金会 的 [OpenStack] 页面。"
        );
    }

    #[test]
    fn script_and_comments_are_dropped() {
        let doc = parse("a<script>var x = '<p>';</script>b<!-- c -->d");
        assert_eq!(clean_str(&doc), "abd");
    }

    #[test]
    fn prose_with_angle_brackets_and_ampersands_survives() {
        let original = "if a < b and c > d then R&D wins [sic] & more";
        assert_eq!(clean_str(&parse(original)), original);
    }

    #[test]
    fn boilerplate_zone_is_dropped() {
        let original = "Real article sentence one.\nReal sentence two.\nRelated story title\nSigned-in readers can open the original.\n0 Comments\nThoughtful readers leave notes here.\n";
        let doc = parse(original);
        assert_eq!(
            clean_str(&doc),
            "Real article sentence one.\nReal sentence two.\n"
        );
    }

    #[test]
    fn a_document_without_a_title_is_named_by_its_first_sentence() {
        let doc = parse("OpenStack turned fifteen. It began at Rackspace and NASA.");
        assert_eq!(doc.title, "OpenStack turned fifteen.");
        let doc = parse("OpenInfra 加入 Linux 基金会。两家基金会合并。");
        assert_eq!(doc.title, "OpenInfra 加入 Linux 基金会。");
        let long = "The foundation announced a long list of partnerships with companies from many countries and industries that will work together on open infrastructure for years to come and beyond";
        let title = parse(long).title;
        assert!(
            title.chars().count() <= super::super::title::MAX_CHARS,
            "{title}"
        );
        assert!(title.ends_with('…') && long.starts_with(title.trim_end_matches('…')));
        let cut = title.trim_end_matches('…');
        assert!(
            long[cut.len()..].starts_with(' '),
            "cut inside a word: {title}"
        );
        let chinese = "开放基础设施".repeat(30);
        let title = parse(&chinese).title;
        assert_eq!(title.chars().count(), super::super::title::MAX_CHARS);
        assert!(title.ends_with('…'));
    }
}
