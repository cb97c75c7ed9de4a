//! What an HTML document's head says about it: `<title>`, `<meta name=…
//! content=…>` (and `property=`, as Open Graph writes it) as metadata, the
//! publication date among them, and `<link rel=canonical>` as its URL.

use super::parse::{find_ci, html_tag, parse_body};
use crate::metadata::{MetaValue, Metadata, parse_timestamp};

#[derive(Debug, Default, PartialEq)]
pub struct HtmlHead {
    pub title: Option<String>,
    pub url: Option<String>,
    pub published: Option<String>,
    pub metadata: Metadata,
}

/// Meta names that give the publication date rather than metadata.
const PUBLISHED: &[&str] = &[
    "article:published_time",
    "date",
    "pubdate",
    "publish-date",
    "dc.date",
    "dcterms.created",
];

/// Reads the head's tags (anywhere before `</head>`, or in the whole text
/// when there is none).
pub fn read(chars: &[char], from: usize) -> HtmlHead {
    let end = find_ci(chars, from, "</head").unwrap_or(chars.len());
    let mut head = HtmlHead::default();
    let mut og_url = None;
    let mut i = from;
    while i < end {
        if chars[i] != '<' {
            i += 1;
            continue;
        }
        let Some((tag_end, name, closing)) = html_tag(chars, i) else {
            i += 1;
            continue;
        };
        if !closing {
            let attrs = attributes(&chars[i..tag_end]);
            let attr = |key: &str| {
                attrs
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.trim().to_string())
            };
            match name.as_str() {
                "title" if head.title.is_none() => {
                    if let Some(close) = find_ci(chars, tag_end, "</title") {
                        let text: String = chars[tag_end..close].iter().collect();
                        let text = parse_body(&text);
                        if !text.trim().is_empty() {
                            head.title = Some(text.trim().to_string());
                        }
                    }
                }
                "link" => {
                    let canonical = attr("rel").is_some_and(|r| {
                        r.split_whitespace()
                            .any(|w| w.eq_ignore_ascii_case("canonical"))
                    });
                    if canonical && let Some(href) = attr("href").filter(|h| !h.is_empty()) {
                        head.url.get_or_insert(href);
                    }
                }
                "meta" => {
                    let key = attr("name").or_else(|| attr("property"));
                    if let (Some(key), Some(content)) = (key, attr("content")) {
                        let key = key.to_lowercase();
                        if content.is_empty() {
                        } else if PUBLISHED.contains(&key.as_str()) {
                            head.published.get_or_insert(content);
                        } else if key == "og:url" {
                            og_url.get_or_insert(content);
                        } else {
                            let value = if key == "keywords" || key == "article:tag" {
                                MetaValue::List(
                                    content
                                        .split(',')
                                        .map(|s| s.trim().to_string())
                                        .filter(|s| !s.is_empty())
                                        .collect(),
                                )
                            } else if let Some(t) = parse_timestamp(&content) {
                                MetaValue::Timestamp(t)
                            } else {
                                MetaValue::String(content)
                            };
                            // `og:title` → `og.title`: ':' is not a key character.
                            head.metadata.insert(key.replace(':', "."), value);
                        }
                    }
                }
                _ => {}
            }
        }
        i = tag_end;
    }
    if head.url.is_none() {
        head.url = og_url;
    }
    head
}

/// A tag's attributes, names lower-cased, values unquoted and with
/// entities decoded.
fn attributes(tag: &[char]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // Skip `<name`.
    let mut i = tag
        .iter()
        .position(|c| c.is_whitespace())
        .unwrap_or(tag.len());
    while i < tag.len() {
        while i < tag.len() && (tag[i].is_whitespace() || tag[i] == '/' || tag[i] == '>') {
            i += 1;
        }
        let start = i;
        while i < tag.len() && !tag[i].is_whitespace() && !matches!(tag[i], '=' | '>' | '/') {
            i += 1;
        }
        if i == start {
            break;
        }
        let name: String = tag[start..i]
            .iter()
            .collect::<String>()
            .to_ascii_lowercase();
        let mut value = String::new();
        if tag.get(i) == Some(&'=') {
            i += 1;
            match tag.get(i) {
                Some(&q) if q == '"' || q == '\'' => {
                    let close = tag[i + 1..]
                        .iter()
                        .position(|&c| c == q)
                        .map_or(tag.len(), |p| i + 1 + p);
                    value = tag[i + 1..close].iter().collect();
                    i = close + 1;
                }
                _ => {
                    let s = i;
                    while i < tag.len() && !tag[i].is_whitespace() && tag[i] != '>' {
                        i += 1;
                    }
                    value = tag[s..i].iter().collect();
                }
            }
        }
        out.push((name, html_escape::decode_html_entities(&value).into_owned()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_gives_title_url_date_and_metadata() {
        let html = r#"<html><head><title>OpenInfra &amp; Linux</title>
<link rel="canonical" href="https://example.com/a">
<meta name="author" content="Jane Doe">
<meta name=keywords content="cloud, openstack,">
<meta property="og:url" content="https://example.com/og">
<meta property="article:published_time" content="2024-05-01T08:00:00Z">
<meta name="updated" content='2024-06-01'>
<meta charset="utf-8">
</head><body><meta name="body" content="ignored"><p>Text</p></body></html>"#;
        let chars: Vec<char> = html.chars().collect();
        let head = read(&chars, 0);
        assert_eq!(head.title.as_deref(), Some("OpenInfra & Linux"));
        assert_eq!(head.url.as_deref(), Some("https://example.com/a"));
        assert_eq!(head.published.as_deref(), Some("2024-05-01T08:00:00Z"));
        assert_eq!(
            head.metadata["author"],
            MetaValue::String("Jane Doe".into())
        );
        assert_eq!(
            head.metadata["keywords"],
            MetaValue::List(vec!["cloud".into(), "openstack".into()])
        );
        assert_eq!(
            head.metadata["updated"],
            MetaValue::Timestamp(parse_timestamp("2024-06-01").unwrap())
        );
        assert!(!head.metadata.contains_key("body"));
        assert_eq!(head.metadata.len(), 3);
    }

    #[test]
    fn og_url_is_the_fallback_and_plain_text_has_no_head() {
        let chars: Vec<char> = r#"<meta property="og:url" content="https://x.test/p">"#
            .chars()
            .collect();
        assert_eq!(read(&chars, 0).url.as_deref(), Some("https://x.test/p"));
        let chars: Vec<char> = "Just text < not a tag > here.".chars().collect();
        assert_eq!(read(&chars, 0), HtmlHead::default());
    }
}
