//! Fuzzes the request validators (`src/engine/validate.rs`) on requests built
//! from the input: structured ones (`arbitrary`) and protobuf bytes decoded as
//! `SearchRequest` and `IngestRequest` and mapped to engine types as the
//! transports' `convert` does.
//! No validator panics; each accepts exactly what the proto documents; every
//! bad field is reported, at most 20 of them plus a count of the rest; and a
//! description quotes at most 40 characters of a bad value.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use wenda::error::{Error, FieldViolation};
use wenda::ingest::{DocumentInput, lang};
use wenda::proto;
use wenda::types::{SearchQuery, limits};

use wenda::engine::validate::{
    echo, id_problem, validate_embed, validate_get, validate_ids, validate_ingest, validate_list,
    validate_search,
};

/// A string field: free text, or the values that sit on the rules' edges.
#[derive(Arbitrary, Debug, Clone)]
enum Text {
    Free(String),
    Blank(u8),
    Code(u8),
    Long { unit: char, count: u16 },
}

impl Text {
    fn build(&self) -> String {
        match self {
            Text::Free(s) => s.clone(),
            Text::Blank(n) => [" ", "\t", "\n", "\u{3000}", "\u{a0}"]
                .iter()
                .cycle()
                .take(usize::from(*n % 6))
                .copied()
                .collect(),
            Text::Code(i) => [
                "zh", "en", "vi", "und", "ja", "xx", "EN", "", "zh-CN", " en", "\0", "a\u{7f}b",
            ][usize::from(*i) % 12]
                .to_string(),
            // Past every limit: ids 512, titles 1,024, queries and sources
            // 2,048, embed texts 8,192 characters.
            Text::Long { unit, count } => unit.to_string().repeat(usize::from(*count) % 9000),
        }
    }

    /// As a list element repeated many times: kept short.
    fn build_short(&self) -> String {
        self.build().chars().take(600).collect()
    }
}

/// A repeated field: a few values, or one value many times (past the
/// 100 languages, 256 documents or ids, 1,000 doc ids).
#[derive(Arbitrary, Debug)]
enum List<T> {
    Few(Vec<T>),
    Many(T, u16),
}

impl<T> List<T> {
    fn build<U>(&self, few: impl Fn(&T) -> U, many: impl Fn(&T) -> U) -> Vec<U>
    where
        U: Clone,
    {
        match self {
            List::Few(items) => items.iter().map(few).collect(),
            List::Many(item, count) => vec![many(item); usize::from(*count) % 1100],
        }
    }
}

fn strings(list: &List<Text>) -> Vec<String> {
    list.build(Text::build, Text::build_short)
}

#[derive(Arbitrary, Debug, Clone)]
struct Document {
    id: Text,
    text: Text,
    title: Text,
    source: Text,
    language: Text,
}

impl Document {
    fn build(&self, short: bool) -> proto::Document {
        let b = |t: &Text| if short { t.build_short() } else { t.build() };
        proto::Document {
            id: b(&self.id),
            text: b(&self.text),
            title: b(&self.title),
            source: b(&self.source),
            language: b(&self.language),
            ..Default::default()
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Request {
    Search {
        query: Text,
        top_k: u32,
        languages: List<Text>,
        doc_ids: List<Text>,
        min_score: f32,
        mode: i32,
        explain: bool,
        query_language: Text,
        min_relevance: f32,
    },
    Ingest(List<Document>),
    Embed(List<Text>),
    Delete(List<Text>),
    List {
        page_size: u32,
        language: Text,
    },
    Get(Text),
    SearchBytes(Vec<u8>),
    IngestBytes(Vec<u8>),
}

fn search_query(r: proto::SearchRequest) -> Option<SearchQuery> {
    wenda::convert::search_query(r).ok()
}

fn document_input(d: proto::Document) -> DocumentInput {
    // No metadata is generated, so conversion cannot fail.
    wenda::convert::document_input(d, "documents[0]").expect("a document without metadata")
}

fn known(code: &str) -> bool {
    lang::is_known_code(code)
}

fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= limits::MAX_ID_CHARS
        && !id.chars().any(char::is_control)
}

/// `bad`: how many field violations the request should get (0: valid).
fn check(result: wenda::error::Result<()>, bad: usize) {
    match result {
        Ok(()) => assert_eq!(bad, 0, "accepted a request with {bad} bad fields"),
        Err(Error::InvalidArgument(violations)) => {
            assert!(bad > 0, "refused a valid request: {violations:?}");
            check_violations(&violations, bad);
        }
        Err(other) => panic!("a validator returned {other:?}"),
    }
}

fn check_violations(violations: &[FieldViolation], bad: usize) {
    let kept = bad.min(limits::MAX_VIOLATIONS);
    if bad > limits::MAX_VIOLATIONS {
        assert_eq!(violations.len(), kept + 1, "{violations:?}");
        let last = violations.last().unwrap();
        assert_eq!(last.field, "…");
        assert_eq!(
            last.description,
            format!("and {} more bad fields", bad - kept)
        );
    } else {
        assert_eq!(
            violations.len(),
            bad,
            "expected {bad} violations: {violations:?}"
        );
    }
    for v in violations {
        // Field names are short; a description is a fixed text plus at most
        // one echoed value: 40 chars, quoted, each escaped to at most 10
        // (`\u{10ffff}`), and an ellipsis.
        assert!(v.field.chars().count() <= 40, "field name {:?}", v.field);
        let n = v.description.chars().count();
        assert!(
            n <= 40 + 2 + 10 * limits::MAX_ECHO_CHARS + 1,
            "description of {} chars: {:?}",
            n,
            v.description
        );
    }
    let message = Error::InvalidArgument(violations.to_vec()).to_string();
    assert!(
        message.len() <= 21 * 2048,
        "error message of {} bytes",
        message.len()
    );
}

fn search(r: proto::SearchRequest) {
    let Some(q) = search_query(r) else {
        return;
    };
    let query_chars = q.query.chars().count();
    let bad = usize::from(q.query.trim().is_empty() || query_chars > limits::MAX_QUERY_CHARS)
        + usize::from(q.top_k > limits::MAX_TOP_K)
        + usize::from(q.languages.len() > limits::MAX_FILTER_LANGUAGES)
        + usize::from(q.doc_ids.len() > limits::MAX_FILTER_DOC_IDS)
        + q.languages.iter().filter(|l| !known(l)).count()
        + q.doc_ids
            .iter()
            .filter(|id| id.is_empty() || id.chars().count() > limits::MAX_ID_CHARS)
            .count()
        + usize::from(!q.query_language.is_empty() && !known(&q.query_language))
        + usize::from(!(0.0..=1.0).contains(&q.min_relevance))
        + usize::from(!q.min_score.is_finite())
        + usize::from(q.max_per_document > limits::MAX_TOP_K)
        // The filter's own rules are tested in tests/integration/filters.rs;
        // here only that its violations join the others.
        + q.filter.as_ref().map_or(0, |f| f.violations("filter").len());
    check(validate_search(&q), bad);
}

fn ingest(docs: Vec<proto::Document>) {
    let docs: Vec<DocumentInput> = docs.into_iter().map(document_input).collect();
    let mut bad = usize::from(docs.is_empty() || docs.len() > limits::MAX_INGEST_DOCUMENTS);
    for d in &docs {
        // NUL (U+0000) is refused in every stored text field.
        let nul = |s: &str| s.contains('\0');
        bad += usize::from(!id_ok(&d.id))
            + usize::from(
                d.text.trim().is_empty()
                    || nul(&d.text)
                    || d.text.len() > limits::MAX_DOCUMENT_BYTES,
            )
            + usize::from(!d.language.is_empty() && !known(&d.language))
            + usize::from(d.title.chars().count() > limits::MAX_TITLE_CHARS || nul(&d.title))
            + usize::from(d.source.chars().count() > limits::MAX_SOURCE_CHARS || nul(&d.source));
    }
    check(validate_ingest(&docs), bad);
}

fuzz_target!(|request: Request| {
    match request {
        Request::Search {
            query,
            top_k,
            languages,
            doc_ids,
            min_score,
            mode,
            explain,
            query_language,
            min_relevance,
        } => {
            // Mostly valid modes, so the rest of the request is checked too.
            let mode = if mode.unsigned_abs() < 1000 {
                mode.rem_euclid(4)
            } else {
                mode
            };
            search(proto::SearchRequest {
                query: query.build(),
                top_k,
                languages: strings(&languages),
                doc_ids: strings(&doc_ids),
                min_score,
                mode,
                explain,
                query_language: query_language.build(),
                min_relevance,
                ..Default::default()
            });
        }
        Request::Ingest(docs) => ingest(docs.build(|d| d.build(false), |d| d.build(true))),
        Request::Embed(texts) => {
            let texts = strings(&texts);
            let bad = usize::from(texts.is_empty() || texts.len() > limits::MAX_EMBED_TEXTS)
                + texts
                    .iter()
                    .filter(|t| t.trim().is_empty() || t.chars().count() > limits::MAX_EMBED_CHARS)
                    .count();
            check(validate_embed(&texts), bad);
        }
        Request::Delete(ids) => {
            let ids = strings(&ids);
            for id in &ids {
                assert_eq!(id_problem(id).is_none(), id_ok(id));
            }
            let bad = usize::from(ids.is_empty() || ids.len() > limits::MAX_DELETE_IDS)
                + ids.iter().filter(|id| !id_ok(id)).count();
            check(validate_ids("ids", &ids, limits::MAX_DELETE_IDS), bad);
        }
        Request::List {
            page_size,
            language,
        } => {
            let language = language.build();
            let bad = usize::from(page_size as usize > limits::MAX_PAGE_SIZE)
                + usize::from(!language.is_empty() && !known(&language));
            check(validate_list(page_size as usize, &language), bad);
        }
        Request::Get(id) => {
            let id = id.build();
            // Get checks the length only: an id with control characters is
            // simply not found.
            let ok = !id.is_empty() && id.chars().count() <= limits::MAX_ID_CHARS;
            check(validate_get(&id), usize::from(!ok));
            let quoted = echo(&id);
            assert!(
                quoted.chars().count() <= 2 + 10 * limits::MAX_ECHO_CHARS + 1,
                "{quoted}"
            );
            if id.chars().count() <= limits::MAX_ECHO_CHARS {
                assert_eq!(quoted, format!("{id:?}"));
            } else {
                assert!(quoted.ends_with('…'));
            }
        }
        Request::SearchBytes(bytes) => {
            if let Ok(r) = proto::SearchRequest::decode(bytes.as_slice()) {
                search(r);
            }
        }
        Request::IngestBytes(bytes) => {
            if let Ok(r) = proto::IngestRequest::decode(bytes.as_slice()) {
                ingest(r.documents);
            }
        }
    }
});
