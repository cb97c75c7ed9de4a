//! The search filter: must / should / must_not over conditions on a
//! document's metadata and its own fields (id, source, language, url,
//! published), evaluated per document, and checked before any work with
//! one field violation per bad part.

use crate::error::FieldViolation;
#[cfg(test)]
use crate::metadata::Metadata;
use crate::metadata::{self, FIELDS, MetaValue};
use crate::store::StoredDocument;

/// Conditions in one filter, all clauses together.
pub const MAX_CONDITIONS: usize = 64;
/// Strings in one `any_of` or `all_of`.
pub const MAX_MATCH_VALUES: usize = 1000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub must: Vec<Condition>,
    pub should: Vec<Condition>,
    pub must_not: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub key: String,
    pub test: Test,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Equals(MetaValue),
    AnyOf(Vec<String>),
    AllOf(Vec<String>),
    Range {
        gt: Option<f64>,
        gte: Option<f64>,
        lt: Option<f64>,
        lte: Option<f64>,
    },
    /// Seconds since the epoch: `from` inclusive, `until` exclusive.
    TimeRange {
        from: Option<i64>,
        until: Option<i64>,
    },
    Prefix(String),
}

/// A key's value on one document, borrowed.
enum Value<'a> {
    Str(&'a str),
    Num(f64),
    Bool(bool),
    Time(i64),
    List(&'a [String]),
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.should.is_empty() && self.must_not.is_empty()
    }

    /// Whether `doc` passes.
    pub fn matches(&self, doc: &StoredDocument) -> bool {
        self.must.iter().all(|c| c.holds(doc))
            && (self.should.is_empty() || self.should.iter().any(|c| c.holds(doc)))
            && !self.must_not.iter().any(|c| c.holds(doc))
    }

    /// Every problem, as violations under `field` (`filter.must[2].key`).
    pub fn violations(&self, field: &str) -> Vec<FieldViolation> {
        let mut bad = Vec::new();
        let count = self.must.len() + self.should.len() + self.must_not.len();
        if count > MAX_CONDITIONS {
            bad.push(FieldViolation::new(
                field,
                format!("at most {MAX_CONDITIONS} conditions in all, not {count}"),
            ));
        }
        for (clause, conditions) in [
            ("must", &self.must),
            ("should", &self.should),
            ("must_not", &self.must_not),
        ] {
            for (i, c) in conditions.iter().enumerate() {
                let at = format!("{field}.{clause}[{i}]");
                if let Some(why) = c.problem() {
                    bad.push(FieldViolation::new(at, why));
                }
            }
        }
        bad
    }
}

impl Condition {
    fn holds(&self, doc: &StoredDocument) -> bool {
        let Some(value) = lookup(doc, &self.key) else {
            return false;
        };
        match (&self.test, value) {
            (Test::Equals(want), value) => equals(want, &value),
            (Test::AnyOf(set), Value::Str(s)) => set.iter().any(|v| v == s),
            (Test::AnyOf(set), Value::List(l)) => l.iter().any(|v| set.contains(v)),
            (Test::AllOf(set), Value::List(l)) => set.iter().all(|v| l.contains(v)),
            (Test::AllOf(set), Value::Str(s)) => set.iter().all(|v| v == s),
            (Test::Range { gt, gte, lt, lte }, Value::Num(x)) => {
                gt.is_none_or(|b| x > b)
                    && gte.is_none_or(|b| x >= b)
                    && lt.is_none_or(|b| x < b)
                    && lte.is_none_or(|b| x <= b)
            }
            (Test::TimeRange { from, until }, Value::Time(t)) => {
                from.is_none_or(|b| t >= b) && until.is_none_or(|b| t < b)
            }
            (Test::Prefix(p), Value::Str(s)) => s.starts_with(p.as_str()),
            _ => false,
        }
    }

    /// Why this condition cannot be evaluated, if it cannot.
    fn problem(&self) -> Option<String> {
        if self.key.is_empty() || self.key.chars().count() > metadata::limits::MAX_KEY_CHARS {
            return Some(format!(
                "key must be 1 to {} characters",
                metadata::limits::MAX_KEY_CHARS
            ));
        }
        // The document's own fields have known types: a test that can
        // never hold on them is a mistake worth reporting.
        let field = FIELDS
            .contains(&self.key.as_str())
            .then_some(self.key.as_str());
        match &self.test {
            Test::Equals(v) => {
                if let Some(why) = metadata::value_problem(v) {
                    return Some(why);
                }
                let string_field = matches!(field, Some("id" | "source" | "language" | "url"));
                if string_field && !matches!(v, MetaValue::String(_)) {
                    return Some(format!(
                        "{} is a string: compare it with a string",
                        self.key
                    ));
                }
                None
            }
            Test::AnyOf(values) | Test::AllOf(values) => {
                if values.is_empty() || values.len() > MAX_MATCH_VALUES {
                    Some(format!("must list 1 to {MAX_MATCH_VALUES} strings"))
                } else {
                    None
                }
            }
            Test::Range { gt, gte, lt, lte } => {
                let bounds = [gt, gte, lt, lte];
                if bounds.iter().all(|b| b.is_none()) {
                    Some("a range needs at least one bound".into())
                } else if bounds.iter().any(|b| b.is_some_and(|x| !x.is_finite())) {
                    Some("range bounds must be finite numbers".into())
                } else if field.is_some() {
                    Some(format!("{} is not a number", self.key))
                } else {
                    None
                }
            }
            Test::TimeRange { from, until } => {
                if from.is_none() && until.is_none() {
                    Some("a time range needs `from` or `until`".into())
                } else if matches!(field, Some(f) if f != "published") {
                    Some(format!("{} is not a time", self.key))
                } else {
                    None
                }
            }
            Test::Prefix(p) if p.is_empty() => Some("prefix must not be empty".into()),
            Test::Prefix(_) => None,
        }
    }
}

fn equals(want: &MetaValue, value: &Value) -> bool {
    match (want, value) {
        (MetaValue::String(w), Value::Str(s)) => w == s,
        (MetaValue::String(w), Value::List(l)) => l.contains(w),
        (MetaValue::Number(w), Value::Num(x)) => w == x,
        (MetaValue::Bool(w), Value::Bool(b)) => w == b,
        (MetaValue::Timestamp(w), Value::Time(t)) => w == t,
        (MetaValue::List(w), Value::List(l)) => w.as_slice() == *l,
        _ => false,
    }
}

fn lookup<'a>(doc: &'a StoredDocument, key: &str) -> Option<Value<'a>> {
    match key {
        "id" => Some(Value::Str(&doc.id)),
        "source" => Some(Value::Str(&doc.source)),
        "language" => Some(Value::Str(&doc.language)),
        "url" => doc.url.as_deref().map(Value::Str),
        "published" => doc
            .published
            .as_deref()
            .and_then(metadata::parse_timestamp)
            .map(Value::Time),
        _ => doc.metadata.get(key).map(|v| match v {
            MetaValue::String(s) => Value::Str(s),
            MetaValue::Number(n) => Value::Num(*n),
            MetaValue::Bool(b) => Value::Bool(*b),
            MetaValue::Timestamp(t) => Value::Time(*t),
            MetaValue::List(l) => Value::List(l),
        }),
    }
}

/// What a scoped token may see and write: the documents whose metadata
/// holds each of these `key = value` strings (a tenant, say). Every search
/// made with it is ANDed with them, writes are stamped with them, and
/// documents outside them do not exist for it. Empty: everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(pub std::collections::BTreeMap<String, String>);

impl Scope {
    pub fn is_all(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a document with this metadata is inside the scope.
    pub fn admits(&self, metadata: &metadata::Metadata) -> bool {
        self.0
            .iter()
            .all(|(k, v)| matches!(metadata.get(k), Some(MetaValue::String(s)) if s == v))
    }

    /// `filter` restricted to the scope.
    pub fn restrict(&self, filter: Option<Filter>) -> Option<Filter> {
        if self.is_all() {
            return filter;
        }
        let mut filter = filter.unwrap_or_default();
        filter.must.extend(self.0.iter().map(|(k, v)| Condition {
            key: k.clone(),
            test: Test::Equals(MetaValue::String(v.clone())),
        }));
        Some(filter)
    }

    /// Stamps the scope's pairs onto a document written within it; one
    /// that sets a scope key to another value is refused.
    pub fn stamp(&self, metadata: &mut metadata::Metadata, field: &str) -> Vec<FieldViolation> {
        let mut bad = Vec::new();
        for (k, v) in &self.0 {
            match metadata.get(k) {
                Some(MetaValue::String(s)) if s == v => {}
                None => {
                    metadata.insert(k.clone(), MetaValue::String(v.clone()));
                }
                Some(_) => bad.push(FieldViolation::new(
                    format!("{field}.{k}"),
                    format!("this token writes only {k} = {v:?}"),
                )),
            }
        }
        bad
    }
}

/// Metadata for tests.
#[cfg(test)]
pub(crate) fn doc_with(id: &str, language: &str, metadata: Metadata) -> StoredDocument {
    StoredDocument {
        id: id.into(),
        source: format!("news/{id}.md"),
        title: String::new(),
        language: language.into(),
        published: Some("2024-05-01".into()),
        url: Some(format!("https://example.com/{id}")),
        metadata,
        text: String::new(),
        content_hash: String::new(),
        origin: crate::store::Origin::Api,
        passage_ids: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(key: &str, test: Test) -> Condition {
        Condition {
            key: key.into(),
            test,
        }
    }

    fn doc() -> StoredDocument {
        let mut m = Metadata::new();
        m.insert(
            "tags".into(),
            MetaValue::List(vec!["cloud".into(), "openstack".into()]),
        );
        m.insert("author".into(), MetaValue::String("Jane".into()));
        m.insert("year".into(), MetaValue::Number(2024.0));
        m.insert("draft".into(), MetaValue::Bool(false));
        doc_with("a1", "en", m)
    }

    #[test]
    fn each_test_holds_where_it_should() {
        let d = doc();
        let holds = |c: Condition| c.holds(&d);
        assert!(holds(cond(
            "author",
            Test::Equals(MetaValue::String("Jane".into()))
        )));
        assert!(!holds(cond(
            "author",
            Test::Equals(MetaValue::String("jane".into()))
        )));
        assert!(holds(cond(
            "tags",
            Test::Equals(MetaValue::String("cloud".into()))
        )));
        assert!(holds(cond(
            "tags",
            Test::AnyOf(vec!["x".into(), "cloud".into()])
        )));
        assert!(!holds(cond(
            "tags",
            Test::AllOf(vec!["cloud".into(), "x".into()])
        )));
        assert!(holds(cond(
            "tags",
            Test::AllOf(vec!["cloud".into(), "openstack".into()])
        )));
        assert!(holds(cond(
            "year",
            Test::Range {
                gt: None,
                gte: Some(2024.0),
                lt: Some(2025.0),
                lte: None
            }
        )));
        assert!(!holds(cond(
            "year",
            Test::Range {
                gt: Some(2024.0),
                gte: None,
                lt: None,
                lte: None
            }
        )));
        assert!(holds(cond("draft", Test::Equals(MetaValue::Bool(false)))));
        assert!(holds(cond(
            "language",
            Test::AnyOf(vec!["vi".into(), "en".into()])
        )));
        assert!(holds(cond("source", Test::Prefix("news/".into()))));
        assert!(holds(cond(
            "id",
            Test::Equals(MetaValue::String("a1".into()))
        )));
        assert!(holds(cond(
            "url",
            Test::Prefix("https://example.com/".into())
        )));
        let may = metadata::parse_timestamp("2024-05-01").unwrap();
        assert!(holds(cond(
            "published",
            Test::TimeRange {
                from: Some(may),
                until: None
            }
        )));
        assert!(!holds(cond(
            "published",
            Test::TimeRange {
                from: None,
                until: Some(may)
            }
        )));
        // A missing key fails every test; a type mismatch too.
        assert!(!holds(cond("missing", Test::Prefix("x".into()))));
        assert!(!holds(cond(
            "author",
            Test::Range {
                gt: Some(0.0),
                gte: None,
                lt: None,
                lte: None
            }
        )));
    }

    #[test]
    fn clauses_combine_as_documented() {
        let d = doc();
        let en = cond("language", Test::Equals(MetaValue::String("en".into())));
        let vi = cond("language", Test::Equals(MetaValue::String("vi".into())));
        let f = |must: Vec<Condition>, should: Vec<Condition>, must_not: Vec<Condition>| Filter {
            must,
            should,
            must_not,
        };
        assert!(Filter::default().matches(&d));
        assert!(f(vec![en.clone()], vec![], vec![]).matches(&d));
        assert!(!f(vec![en.clone(), vi.clone()], vec![], vec![]).matches(&d));
        assert!(f(vec![], vec![vi.clone(), en.clone()], vec![]).matches(&d));
        assert!(!f(vec![], vec![vi.clone()], vec![]).matches(&d));
        assert!(!f(vec![], vec![], vec![en.clone()]).matches(&d));
        // must_not on a missing key passes.
        assert!(
            f(
                vec![],
                vec![],
                vec![cond("missing", Test::Prefix("x".into()))]
            )
            .matches(&d)
        );
    }

    #[test]
    fn bad_conditions_are_each_reported() {
        let filter = Filter {
            must: vec![
                cond("", Test::Prefix("x".into())),
                cond(
                    "year",
                    Test::Range {
                        gt: None,
                        gte: None,
                        lt: None,
                        lte: None,
                    },
                ),
                cond(
                    "language",
                    Test::Range {
                        gt: Some(1.0),
                        gte: None,
                        lt: None,
                        lte: None,
                    },
                ),
                cond("tags", Test::AnyOf(Vec::new())),
            ],
            should: vec![cond("id", Test::Equals(MetaValue::Number(1.0)))],
            must_not: vec![cond(
                "source",
                Test::TimeRange {
                    from: Some(0),
                    until: None,
                },
            )],
        };
        let bad = filter.violations("filter");
        let fields: Vec<&str> = bad.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "filter.must[0]",
                "filter.must[1]",
                "filter.must[2]",
                "filter.must[3]",
                "filter.should[0]",
                "filter.must_not[0]"
            ]
        );
        let many = Filter {
            must: vec![cond("k", Test::Prefix("x".into())); MAX_CONDITIONS + 1],
            ..Default::default()
        };
        assert!(
            many.violations("filter")[0]
                .description
                .contains("at most 64")
        );
    }
}
