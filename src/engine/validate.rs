//! Request checks: every bad field is reported, each with its own
//! violation, before any work starts.

use crate::error::{Error, FieldViolation, Result};
use crate::ingest::{DocumentInput, lang};
use crate::types::{SearchQuery, limits};

pub(super) fn validate_search(q: &SearchQuery) -> Result<()> {
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
    for (i, l) in q.languages.iter().enumerate() {
        if !lang::is_known_code(l) {
            bad.push(FieldViolation::new(
                format!("languages[{i}]"),
                format!("unknown language code {l:?}"),
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
            format!("unknown language code {:?}", q.query_language),
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
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(bad))
    }
}

pub(super) fn validate_embed(texts: &[String]) -> Result<()> {
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
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(bad))
    }
}

fn id_length_ok(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= limits::MAX_ID_CHARS
}

fn id_length_rule() -> String {
    format!("must be 1 to {} characters", limits::MAX_ID_CHARS)
}

pub(super) fn id_problem(id: &str) -> Option<String> {
    if !id_length_ok(id) {
        Some(id_length_rule())
    } else if id.chars().any(char::is_control) {
        Some("must not contain control characters".into())
    } else {
        None
    }
}

pub(super) fn validate_ids(field: &str, ids: &[String], max: usize) -> Result<()> {
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
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(bad))
    }
}

pub(super) fn validate_ingest(docs: &[DocumentInput]) -> Result<()> {
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
                format!("unknown language code {:?}", d.language),
            ));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(bad))
    }
}

pub(super) fn validate_list(page_size: usize, language: &str) -> Result<()> {
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
            format!("unknown language code {language:?}"),
        ));
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(bad))
    }
}

pub(super) fn validate_get(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid("id", "must not be empty"));
    }
    Ok(())
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
            let ok = id_problem(&id).is_none() && !text.trim().is_empty() && (language.is_empty() || lang::is_known_code(&language));
            prop_assert_eq!(validate_ingest(&[doc]).is_ok(), ok);
        }
    }
}
