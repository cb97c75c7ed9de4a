//! Request checks: every bad field is reported, each with its own
//! violation, before any work starts.

use crate::error::{Error, FieldViolation, Result};
use crate::ingest::{DocumentInput, lang};
use crate::metadata;
use crate::types::{SearchQuery, limits};

pub fn validate_search(q: &SearchQuery) -> Result<()> {
    let mut bad = Vec::new();
    if q.query.trim().is_empty() {
        bad.push(FieldViolation::new("query", "must not be empty"));
    } else if q.query.chars().count() > limits::MAX_QUERY_CHARS {
        bad.push(FieldViolation::new(
            "query",
            format!("must be at most {} characters", limits::MAX_QUERY_CHARS),
        ));
    }
    if q.top_k > limits::MAX_TOP_K {
        bad.push(FieldViolation::new(
            "top_k",
            format!("must be at most {}", limits::MAX_TOP_K),
        ));
    }
    for (field, len, max) in [
        ("languages", q.languages.len(), limits::MAX_FILTER_LANGUAGES),
        ("doc_ids", q.doc_ids.len(), limits::MAX_FILTER_DOC_IDS),
    ] {
        if len > max {
            bad.push(FieldViolation::new(
                field,
                format!("must hold at most {max} entries"),
            ));
        }
    }
    for (i, l) in q.languages.iter().enumerate() {
        if !lang::is_known_code(l) {
            bad.push(FieldViolation::new(
                format!("languages[{i}]"),
                format!("unknown language code {}", echo(l)),
            ));
        }
    }
    for (i, id) in q.doc_ids.iter().enumerate() {
        if !id_length_ok(id) {
            bad.push(FieldViolation::new(
                format!("doc_ids[{i}]"),
                id_length_rule(),
            ));
        }
    }
    if !q.query_language.is_empty() && !lang::is_known_code(&q.query_language) {
        bad.push(FieldViolation::new(
            "query_language",
            format!("unknown language code {}", echo(&q.query_language)),
        ));
    }
    if !(0.0..=1.0).contains(&q.min_relevance) {
        bad.push(FieldViolation::new(
            "min_relevance",
            "must be between 0 and 1",
        ));
    }
    if !q.min_score.is_finite() {
        bad.push(FieldViolation::new("min_score", "must be a finite number"));
    }
    if let Some(filter) = &q.filter {
        bad.extend(filter.violations("filter"));
    }
    if q.max_per_document > limits::MAX_TOP_K {
        bad.push(FieldViolation::new(
            "max_per_document",
            format!("must be at most {}", limits::MAX_TOP_K),
        ));
    }
    verdict(bad)
}

pub fn validate_embed(texts: &[String]) -> Result<()> {
    let mut bad = Vec::new();
    if texts.is_empty() || texts.len() > limits::MAX_EMBED_TEXTS {
        bad.push(FieldViolation::new(
            "texts",
            format!("must hold 1 to {} texts", limits::MAX_EMBED_TEXTS),
        ));
    }
    for (i, t) in texts.iter().enumerate() {
        if t.trim().is_empty() {
            bad.push(FieldViolation::new(
                format!("texts[{i}]"),
                "must not be empty",
            ));
        } else if t.chars().count() > limits::MAX_EMBED_CHARS {
            bad.push(FieldViolation::new(
                format!("texts[{i}]"),
                format!("must be at most {} characters", limits::MAX_EMBED_CHARS),
            ));
        }
    }
    verdict(bad)
}

fn id_length_ok(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= limits::MAX_ID_CHARS
}

fn id_length_rule() -> String {
    format!("must be 1 to {} characters", limits::MAX_ID_CHARS)
}

pub fn id_problem(id: &str) -> Option<String> {
    if !id_length_ok(id) {
        Some(id_length_rule())
    } else if id.chars().any(char::is_control) {
        Some("must not contain control characters".into())
    } else {
        None
    }
}

pub fn validate_ids(field: &str, ids: &[String], max: usize) -> Result<()> {
    let mut bad = Vec::new();
    if ids.is_empty() || ids.len() > max {
        bad.push(FieldViolation::new(
            field,
            format!("must hold 1 to {max} ids"),
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        if let Some(problem) = id_problem(id) {
            bad.push(FieldViolation::new(format!("{field}[{i}]"), problem));
        }
    }
    verdict(bad)
}

/// Why a text holding U+0000 is refused.
pub const NUL_PROBLEM: &str = "must not contain NUL (U+0000)";

pub fn validate_ingest(docs: &[DocumentInput]) -> Result<()> {
    let mut bad = Vec::new();
    if docs.is_empty() || docs.len() > limits::MAX_INGEST_DOCUMENTS {
        bad.push(FieldViolation::new(
            "documents",
            format!("must hold 1 to {} documents", limits::MAX_INGEST_DOCUMENTS),
        ));
    }
    for (i, d) in docs.iter().enumerate() {
        if let Some(problem) = id_problem(&d.id) {
            bad.push(FieldViolation::new(format!("documents[{i}].id"), problem));
        }
        if d.text.trim().is_empty() {
            bad.push(FieldViolation::new(
                format!("documents[{i}].text"),
                "must not be empty",
            ));
        } else if d.text.contains('\0') {
            // No article holds one, and PostgreSQL's text cannot store it:
            // refused alike on every store.
            bad.push(FieldViolation::new(
                format!("documents[{i}].text"),
                NUL_PROBLEM,
            ));
        } else if d.text.len() > limits::MAX_DOCUMENT_BYTES {
            bad.push(FieldViolation::new(
                format!("documents[{i}].text"),
                format!(
                    "must be at most {} MB",
                    limits::MAX_DOCUMENT_BYTES / (1024 * 1024)
                ),
            ));
        }
        if !d.language.is_empty() && !lang::is_known_code(&d.language) {
            bad.push(FieldViolation::new(
                format!("documents[{i}].language"),
                format!("unknown language code {}", echo(&d.language)),
            ));
        }
        for (field, value, max) in [
            ("title", &d.title, limits::MAX_TITLE_CHARS),
            ("source", &d.source, limits::MAX_SOURCE_CHARS),
            ("url", &d.url, metadata::limits::MAX_URL_CHARS),
            (
                "published",
                &d.published,
                metadata::limits::MAX_PUBLISHED_CHARS,
            ),
        ] {
            if value.chars().count() > max {
                bad.push(FieldViolation::new(
                    format!("documents[{i}].{field}"),
                    format!("must be at most {max} characters"),
                ));
            } else if value.contains('\0') {
                bad.push(FieldViolation::new(
                    format!("documents[{i}].{field}"),
                    NUL_PROBLEM,
                ));
            }
        }
        bad.extend(metadata::violations(
            &format!("documents[{i}].metadata"),
            &d.metadata,
        ));
    }
    verdict(bad)
}

pub fn validate_list(page_size: usize, language: &str) -> Result<()> {
    let mut bad = Vec::new();
    if page_size > limits::MAX_PAGE_SIZE {
        bad.push(FieldViolation::new(
            "page_size",
            format!("must be at most {}", limits::MAX_PAGE_SIZE),
        ));
    }
    if !language.is_empty() && !lang::is_known_code(language) {
        bad.push(FieldViolation::new(
            "language",
            format!("unknown language code {}", echo(language)),
        ));
    }
    verdict(bad)
}

pub fn validate_get(id: &str) -> Result<()> {
    if !id_length_ok(id) {
        return Err(Error::invalid("id", id_length_rule()));
    }
    Ok(())
}

/// A bad value as an error message may repeat it: quoted, and cut to
/// [`limits::MAX_ECHO_CHARS`] characters, so a huge input cannot make a
/// huge error.
pub fn echo(value: &str) -> String {
    if value.chars().count() <= limits::MAX_ECHO_CHARS {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(limits::MAX_ECHO_CHARS).collect();
        format!("{head:?}…")
    }
}

/// The request's verdict: fine, or its first [`limits::MAX_VIOLATIONS`]
/// bad fields and a count of the rest.
fn verdict(mut bad: Vec<FieldViolation>) -> Result<()> {
    if bad.is_empty() {
        return Ok(());
    }
    if bad.len() > limits::MAX_VIOLATIONS {
        let more = bad.len() - limits::MAX_VIOLATIONS;
        bad.truncate(limits::MAX_VIOLATIONS);
        bad.push(FieldViolation::new(
            "…",
            format!("and {more} more bad fields"),
        ));
    }
    Err(Error::InvalidArgument(bad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn known_language() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("zh".to_string()),
            Just("en".to_string()),
            Just("vi".to_string()),
            Just("xx".to_string()),
            ".{0,4}"
        ]
    }

    /// NUL is refused in every text field and metadata value, each named.
    #[test]
    fn nul_is_refused_wherever_text_is_stored() {
        let doc = DocumentInput {
            id: "a".into(),
            text: "one\0two".into(),
            title: "t\0".into(),
            source: "s\0".into(),
            url: "u\0".into(),
            metadata: [
                (
                    "k".to_string(),
                    crate::metadata::MetaValue::String("v\0".into()),
                ),
                (
                    "l".to_string(),
                    crate::metadata::MetaValue::List(vec!["ok".into(), "\0".into()]),
                ),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        let Err(Error::InvalidArgument(bad)) = validate_ingest(&[doc]) else {
            panic!("accepted")
        };
        let fields: Vec<&str> = bad.iter().map(|v| v.field.as_str()).collect();
        for field in ["text", "title", "source", "url", "metadata.k", "metadata.l"] {
            assert!(
                fields.contains(&format!("documents[0].{field}").as_str()),
                "{field} not named: {fields:?}"
            );
        }
        assert!(bad.iter().all(|v| v.description == NUL_PROBLEM));
    }

    #[test]
    fn errors_repeat_at_most_a_little_of_a_bad_input() {
        let q = SearchQuery {
            query: "x".into(),
            languages: (0..100)
                .map(|i| format!("{i}{}", "z".repeat(10_000)))
                .collect(),
            ..Default::default()
        };
        let Err(Error::InvalidArgument(bad)) = validate_search(&q) else {
            panic!("accepted")
        };
        assert_eq!(bad.len(), limits::MAX_VIOLATIONS + 1);
        assert_eq!(bad.last().unwrap().description, "and 80 more bad fields");
        let size: usize = bad
            .iter()
            .map(|v| v.field.len() + v.description.len())
            .sum();
        assert!(size < 4096, "{size} bytes of error");
        assert!(validate_get(&"x".repeat(limits::MAX_ID_CHARS + 1)).is_err());
        assert!(echo(&"y".repeat(1_000_000)).chars().count() <= limits::MAX_ECHO_CHARS + 3);
    }

    #[test]
    fn titles_and_sources_are_bounded() {
        let doc = |title: usize, source: usize| DocumentInput {
            id: "a".into(),
            text: "text".into(),
            title: "t".repeat(title),
            source: "s".repeat(source),
            ..Default::default()
        };
        assert!(validate_ingest(&[doc(limits::MAX_TITLE_CHARS, limits::MAX_SOURCE_CHARS)]).is_ok());
        assert!(validate_ingest(&[doc(limits::MAX_TITLE_CHARS + 1, 0)]).is_err());
        assert!(validate_ingest(&[doc(0, limits::MAX_SOURCE_CHARS + 1)]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Validation never panics and rejects exactly what the proto documents.
        #[test]
        fn search_validation_matches_the_documented_rules(
            query in prop_oneof![".{0,40}", "\\\\s{0,5}", Just("x".repeat(2049)), Just("好".repeat(2048))],
            top_k in 0usize..200,
            languages in prop::collection::vec(known_language(), 0..3),
            min_score in prop_oneof![Just(f32::NAN), Just(f32::INFINITY), -1.0f32..1.0],
        ) {
            let q = SearchQuery { query: query.clone(), top_k, languages: languages.clone(), min_score, ..Default::default() };
            let ok = !query.trim().is_empty()
                && query.chars().count() <= limits::MAX_QUERY_CHARS
                && top_k <= limits::MAX_TOP_K
                && languages.iter().all(|l| lang::is_known_code(l))
                && min_score.is_finite();
            prop_assert_eq!(validate_search(&q).is_ok(), ok);
        }

        #[test]
        fn ingest_validation_never_panics(id in ".{0,600}", text in ".{0,50}", language in known_language()) {
            let doc = DocumentInput { id: id.clone(), text: text.clone(), language: language.clone(), ..Default::default() };
            let ok = id_problem(&id).is_none()
                && !text.trim().is_empty()
                && !text.contains('\0')
                && (language.is_empty() || lang::is_known_code(&language));
            prop_assert_eq!(validate_ingest(&[doc]).is_ok(), ok);
        }
    }
}
