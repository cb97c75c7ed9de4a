//! Metadata and filtered search through the real gRPC server and the real
//! model: metadata given at ingest and read from front matter and HTML
//! heads comes back from GetDocument and in citations; random filters only
//! ever return passages of matching documents, and as many as asked
//! whenever enough match; `max_per_document` caps each document; bad
//! filters and metadata get one field violation each.

use std::collections::BTreeMap;

use tonic::Code;
use wenda::proto::{self, condition::Test, metadata_value::Kind};

use crate::common;

const DOCS: usize = 14;

fn string(s: &str) -> proto::MetadataValue {
    proto::MetadataValue {
        kind: Some(Kind::StringValue(s.into())),
    }
}

fn list(values: &[&str]) -> proto::StringList {
    proto::StringList {
        values: values.iter().map(|s| s.to_string()).collect(),
    }
}

/// The test's own record of a document's metadata, to judge filters by.
#[derive(Clone)]
struct Truth {
    id: String,
    source: String,
    tags: Vec<String>,
    author: String,
    year: f64,
    draft: bool,
    month: u32,
}

fn truth(i: usize) -> Truth {
    Truth {
        id: format!("d{i:02}"),
        source: if i < DOCS / 2 {
            format!("news/d{i:02}")
        } else {
            format!("blog/d{i:02}")
        },
        tags: vec![
            if i.is_multiple_of(2) { "even" } else { "odd" }.to_string(),
            format!("t{}", i % 3),
        ],
        author: format!("a{}", i % 4),
        year: 2000.0 + i as f64,
        draft: i.is_multiple_of(5),
        month: 1 + (i % 6) as u32,
    }
}

/// Several paragraphs, so each document has several passages.
fn text(i: usize) -> String {
    let topics = [
        "rivers",
        "mountains",
        "cloud computing",
        "open source",
        "trains",
        "tea",
    ];
    (0..6)
        .map(|p| {
            format!(
                "Report {i} part {p} is about {}. It describes how people work with {} in \
                 region {i}, what changed over the years, and which plans come next. \
                 The authors interviewed many residents and experts for part {p}.",
                topics[(i + p) % topics.len()],
                topics[(i + 2 * p) % topics.len()],
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn document(t: &Truth, i: usize) -> proto::Document {
    let mut metadata = BTreeMap::new();
    metadata.insert(
        "tags".to_string(),
        proto::MetadataValue {
            kind: Some(Kind::ListValue(list(
                &t.tags.iter().map(String::as_str).collect::<Vec<_>>(),
            ))),
        },
    );
    metadata.insert("author".to_string(), string(&t.author));
    metadata.insert(
        "year".to_string(),
        proto::MetadataValue {
            kind: Some(Kind::NumberValue(t.year)),
        },
    );
    metadata.insert(
        "draft".to_string(),
        proto::MetadataValue {
            kind: Some(Kind::BoolValue(t.draft)),
        },
    );
    metadata.insert(
        "reviewed".to_string(),
        proto::MetadataValue {
            kind: Some(Kind::TimestampValue("2023-12-31".into())),
        },
    );
    proto::Document {
        id: t.id.clone(),
        text: text(i),
        source: t.source.clone(),
        language: "en".into(),
        metadata: metadata.into_iter().collect(),
        url: format!("https://example.com/{}", t.id),
        published: format!("2024-{:02}-01", t.month),
        ..Default::default()
    }
}

fn cond(key: &str, test: Test) -> proto::Condition {
    proto::Condition {
        key: key.into(),
        test: Some(test),
    }
}

/// The test's own judgement of a condition.
type Judge = Box<dyn Fn(&Truth) -> bool>;

/// A pool of conditions with the test's own judgement of each.
fn conditions() -> Vec<(proto::Condition, Judge)> {
    vec![
        (
            cond("tags", Test::Equals(string("even"))),
            Box::new(|t: &Truth| t.tags[0] == "even"),
        ),
        (
            cond("tags", Test::AnyOf(list(&["t1", "t2"]))),
            Box::new(|t: &Truth| t.tags[1] != "t0"),
        ),
        (
            cond("tags", Test::AllOf(list(&["odd", "t0"]))),
            Box::new(|t: &Truth| t.tags == ["odd", "t0"]),
        ),
        (
            cond("author", Test::AnyOf(list(&["a1"]))),
            Box::new(|t: &Truth| t.author == "a1"),
        ),
        (
            cond(
                "year",
                Test::Range(proto::NumberRange {
                    gte: Some(2004.0),
                    lt: Some(2010.0),
                    ..Default::default()
                }),
            ),
            Box::new(|t: &Truth| (2004.0..2010.0).contains(&t.year)),
        ),
        (
            cond(
                "draft",
                Test::Equals(proto::MetadataValue {
                    kind: Some(Kind::BoolValue(true)),
                }),
            ),
            Box::new(|t: &Truth| t.draft),
        ),
        (
            cond(
                "published",
                Test::TimeRange(proto::TimeRange {
                    from: "2024-03-01".into(),
                    until: "2024-05-01T00:00:00Z".into(),
                }),
            ),
            Box::new(|t: &Truth| (3..5).contains(&t.month)),
        ),
        (
            cond("source", Test::Prefix("blog/".into())),
            Box::new(|t: &Truth| t.source.starts_with("blog/")),
        ),
        (
            cond("id", Test::AnyOf(list(&["d03", "d07", "d11"]))),
            Box::new(|t: &Truth| ["d03", "d07", "d11"].contains(&t.id.as_str())),
        ),
        (
            cond("language", Test::Equals(string("en"))),
            Box::new(|_: &Truth| true),
        ),
        (
            cond("missing", Test::Prefix("x".into())),
            Box::new(|_: &Truth| false),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_kept_and_filters_apply_inside_retrieval() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::TestServer::start(common::engine(dir.path(), None).await).await;
    let mut client = server.client().await;
    let truths: Vec<Truth> = (0..DOCS).map(truth).collect();
    let mut documents: Vec<proto::Document> = truths
        .iter()
        .enumerate()
        .map(|(i, t)| document(t, i))
        .collect();
    documents.push(proto::Document {
        id: "md".into(),
        text: "---\ntitle: Front matter\ndate: 2022-02-02\nurl: https://example.com/md\ntags: [alpha, beta]\nauthor: Lan\nrating: 4.5\n---\n\nA markdown note about alpine lakes and their fish.".into(),
        ..Default::default()
    });
    documents.push(proto::Document {
        id: "page".into(),
        text: r#"<html><head><title>Head title</title><link rel="canonical" href="https://example.com/page"><meta name="author" content="Minh"><meta name="keywords" content="lakes, fish"></head><body><p>An HTML page about lakes and fish in the north.</p></body></html>"#.into(),
        ..Default::default()
    });
    let acks = client
        .ingest(proto::IngestRequest { documents })
        .await
        .unwrap()
        .into_inner();
    assert!(acks.results.iter().all(|r| r.chunks >= 1));

    // Metadata round trip, from the request, front matter and an HTML head.
    let get = |id: &str| proto::GetDocumentRequest { id: id.into() };
    let d3 = client.get_document(get("d03")).await.unwrap().into_inner();
    let summary = d3.document.unwrap();
    assert_eq!(summary.url, "https://example.com/d03");
    assert_eq!(summary.published, "2024-04-01");
    assert_eq!(summary.metadata["author"], string("a3"));
    assert_eq!(
        summary.metadata["reviewed"].kind,
        Some(Kind::TimestampValue("2023-12-31T00:00:00Z".into()))
    );
    assert_eq!(
        summary.metadata["tags"].kind,
        Some(Kind::ListValue(list(&["odd", "t0"])))
    );
    assert!(d3.passages.len() >= 2, "several passages per document");
    let md = client
        .get_document(get("md"))
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap();
    assert_eq!(
        (md.title.as_str(), md.url.as_str(), md.published.as_str()),
        ("Front matter", "https://example.com/md", "2022-02-02")
    );
    assert_eq!(
        md.metadata["tags"].kind,
        Some(Kind::ListValue(list(&["alpha", "beta"])))
    );
    assert_eq!(md.metadata["rating"].kind, Some(Kind::NumberValue(4.5)));
    let page = client
        .get_document(get("page"))
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap();
    assert_eq!(
        (page.title.as_str(), page.url.as_str()),
        ("Head title", "https://example.com/page")
    );
    assert_eq!(page.metadata["author"], string("Minh"));
    assert_eq!(
        page.metadata["keywords"].kind,
        Some(Kind::ListValue(list(&["lakes", "fish"])))
    );

    // Random filters: every passage from a matching document; at least as
    // many passages as matching documents up to top_k; citations carry url
    // and published.
    let pool = conditions();
    let mut next = common::xorshift(0x2545F4914F6CDD1D);
    let questions = [
        "Which region grows tea?",
        "How do people use cloud computing?",
        "trains and rivers",
    ];
    for round in 0..60 {
        // The two markup documents are outside the test's own record.
        let mut filter = proto::Filter {
            must_not: vec![cond("id", Test::AnyOf(list(&["md", "page"])))],
            ..Default::default()
        };
        let mut judges: Vec<(usize, usize)> = Vec::new();
        for _ in 0..1 + next(3) {
            let clause = next(3);
            let c = next(pool.len());
            let condition = pool[c].0.clone();
            match clause {
                0 => filter.must.push(condition),
                1 => filter.should.push(condition),
                _ => filter.must_not.push(condition),
            }
            judges.push((clause, c));
        }
        let passes = |t: &Truth| {
            let held = |clause: usize| {
                judges
                    .iter()
                    .filter(move |(k, _)| *k == clause)
                    .map(|(_, c)| pool[*c].1(t))
            };
            held(0).clone().all(|h| h)
                && (judges.iter().all(|(k, _)| *k != 1) || held(1).clone().any(|h| h))
                && !held(2).clone().any(|h| h)
        };
        let matching: Vec<&Truth> = truths.iter().filter(|t| passes(t)).collect();
        let top_k = 1 + next(8) as u32;
        let mode = [
            proto::SearchMode::Dense,
            proto::SearchMode::Hybrid,
            proto::SearchMode::Lexical,
        ][round % 3];
        let response = client
            .search(proto::SearchRequest {
                query: questions[round % questions.len()].into(),
                top_k,
                mode: mode as i32,
                filter: Some(filter.clone()),
                max_per_document: if round % 2 == 0 { 1 } else { 0 },
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{filter:?}: {e}"))
            .into_inner();
        let mut seen = std::collections::HashSet::new();
        for p in &response.passages {
            let c = p.citation.as_ref().unwrap();
            let t = truths
                .iter()
                .find(|t| t.id == c.doc_id)
                .unwrap_or_else(|| panic!("{} passed {filter:?}", c.doc_id));
            assert!(passes(t), "{} does not pass {filter:?}", c.doc_id);
            assert_eq!(c.url, format!("https://example.com/{}", t.id));
            assert_eq!(c.published, format!("2024-{:02}-01", t.month));
            if round % 2 == 0 {
                assert!(
                    seen.insert(c.doc_id.clone()),
                    "two passages of {} with max_per_document 1",
                    c.doc_id
                );
            }
        }
        assert!(response.passages.len() <= top_k as usize);
        if mode != proto::SearchMode::Lexical {
            // Every matching passage is a dense candidate: as many passages
            // as asked, or one per matching document at least.
            assert!(
                response.passages.len() >= matching.len().min(top_k as usize),
                "{} passages for {} matching documents, top_k {top_k}: {filter:?}",
                response.passages.len(),
                matching.len()
            );
        }
    }
}

#[tokio::test]
async fn bad_filters_and_metadata_get_one_violation_each() {
    let server = common::TestServer::start(common::corpus_engine()).await;
    let mut client = server.client().await;
    let search = |filter: proto::Filter| proto::SearchRequest {
        query: "OpenStack".into(),
        filter: Some(filter),
        ..Default::default()
    };
    let cases: Vec<(proto::Filter, &str)> = vec![
        // No test set: an unknown operator in JSON arrives like this.
        (
            proto::Filter {
                must: vec![proto::Condition {
                    key: "tags".into(),
                    test: None,
                }],
                ..Default::default()
            },
            "filter.must[0]",
        ),
        // A number compared with a string field.
        (
            proto::Filter {
                should: vec![cond(
                    "language",
                    Test::Equals(proto::MetadataValue {
                        kind: Some(Kind::NumberValue(1.0)),
                    }),
                )],
                ..Default::default()
            },
            "filter.should[0]",
        ),
        (
            proto::Filter {
                must: vec![cond(
                    "source",
                    Test::Range(proto::NumberRange {
                        gt: Some(1.0),
                        ..Default::default()
                    }),
                )],
                ..Default::default()
            },
            "filter.must[0]",
        ),
        (
            proto::Filter {
                must_not: vec![cond("tags", Test::AnyOf(list(&[])))],
                ..Default::default()
            },
            "filter.must_not[0]",
        ),
        (
            proto::Filter {
                must: vec![cond("year", Test::Range(proto::NumberRange::default()))],
                ..Default::default()
            },
            "filter.must[0]",
        ),
        (
            proto::Filter {
                must: vec![cond(
                    "published",
                    Test::TimeRange(proto::TimeRange {
                        from: "last tuesday".into(),
                        until: String::new(),
                    }),
                )],
                ..Default::default()
            },
            "filter.must[0].time_range.from",
        ),
        (
            proto::Filter {
                must: vec![cond("", Test::Prefix("x".into()))],
                ..Default::default()
            },
            "filter.must[0]",
        ),
        (
            proto::Filter {
                must: vec![cond("k", Test::Equals(proto::MetadataValue { kind: None }))],
                ..Default::default()
            },
            "filter.must[0].equals",
        ),
        (
            proto::Filter {
                must: vec![cond("k", Test::Prefix("x".into())); 65],
                ..Default::default()
            },
            "filter",
        ),
    ];
    for (filter, field) in cases {
        let err = client.search(search(filter.clone())).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{filter:?}");
        assert_eq!(common::violated_fields(&err), [field], "{err:?}");
    }

    let mut metadata = BTreeMap::new();
    metadata.insert("language".to_string(), string("en"));
    metadata.insert("ok".to_string(), string("fine"));
    metadata.insert(
        "n".to_string(),
        proto::MetadataValue {
            kind: Some(Kind::NumberValue(f64::INFINITY)),
        },
    );
    metadata.insert(
        "when".to_string(),
        proto::MetadataValue {
            kind: Some(Kind::TimestampValue("soon".into())),
        },
    );
    let bad_doc = proto::Document {
        id: "x".into(),
        text: "text".into(),
        metadata: metadata.into_iter().collect(),
        ..Default::default()
    };
    let err = client
        .ingest(proto::IngestRequest {
            documents: vec![bad_doc.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        common::violated_fields(&err),
        ["documents[0].metadata.when"],
        "an unreadable timestamp is reported first"
    );
    let mut fixed = bad_doc;
    fixed.metadata.remove("when");
    let err = client
        .ingest(proto::IngestRequest {
            documents: vec![fixed],
        })
        .await
        .unwrap_err();
    let mut fields = common::violated_fields(&err);
    fields.sort();
    assert_eq!(
        fields,
        ["documents[0].metadata.language", "documents[0].metadata.n"]
    );
}
