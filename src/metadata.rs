//! Document metadata: typed values (string, number, boolean, timestamp, list
//! of strings), their limits and checks, and timestamps as RFC 3339 or
//! dates. Filters (`filter`) test documents on these values and on the
//! document's own fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::FieldViolation;

/// Limits on metadata, documented in the proto.
pub mod limits {
    pub const MAX_KEYS: usize = 64;
    pub const MAX_KEY_CHARS: usize = 64;
    pub const MAX_STRING_CHARS: usize = 1024;
    pub const MAX_LIST_VALUES: usize = 100;
    pub const MAX_LIST_VALUE_CHARS: usize = 256;
    pub const MAX_URL_CHARS: usize = 2048;
    pub const MAX_PUBLISHED_CHARS: usize = 64;
}

/// A document's own fields, which filters name like metadata keys and
/// metadata may therefore not use.
pub const FIELDS: [&str; 5] = ["id", "source", "language", "url", "published"];

/// One metadata value. Stored as JSON (`{"string": "x"}`), so a store
/// written before metadata existed reads as having none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetaValue {
    String(String),
    Number(f64),
    Bool(bool),
    /// Seconds since the Unix epoch, UTC.
    Timestamp(i64),
    List(Vec<String>),
}

pub type Metadata = BTreeMap<String, MetaValue>;

/// RFC 3339 (`2024-05-01T12:00:00+07:00`) or a date (`2024-05-01`, midnight
/// UTC), as seconds since the epoch.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let date = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

/// Seconds since the epoch as RFC 3339 in UTC.
pub fn format_timestamp(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Why `key` cannot be a metadata key, if it cannot.
pub fn key_problem(key: &str) -> Option<String> {
    let chars = key.chars().count();
    if chars == 0 || chars > limits::MAX_KEY_CHARS {
        return Some(format!(
            "keys must be 1 to {} characters",
            limits::MAX_KEY_CHARS
        ));
    }
    if !key
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Some("keys hold letters, digits, '_', '-' and '.' only".into());
    }
    if FIELDS.contains(&key) {
        return Some(format!("{key:?} is a document field, not a metadata key"));
    }
    None
}

/// Why `value` cannot be stored, if it cannot.
pub fn value_problem(value: &MetaValue) -> Option<String> {
    match value {
        MetaValue::String(s) if s.chars().count() > limits::MAX_STRING_CHARS => Some(format!(
            "strings are at most {} characters",
            limits::MAX_STRING_CHARS
        )),
        MetaValue::Number(n) if !n.is_finite() => Some("numbers must be finite".into()),
        MetaValue::String(s) if s.contains('\0') => {
            Some(crate::engine::validate::NUL_PROBLEM.into())
        }
        MetaValue::List(values) if values.iter().any(|v| v.contains('\0')) => {
            Some(crate::engine::validate::NUL_PROBLEM.into())
        }
        MetaValue::List(values) if values.len() > limits::MAX_LIST_VALUES => Some(format!(
            "lists hold at most {} strings",
            limits::MAX_LIST_VALUES
        )),
        MetaValue::List(values)
            if values
                .iter()
                .any(|v| v.chars().count() > limits::MAX_LIST_VALUE_CHARS) =>
        {
            Some(format!(
                "list strings are at most {} characters",
                limits::MAX_LIST_VALUE_CHARS
            ))
        }
        _ => None,
    }
}

/// Every problem of `metadata`, as violations of `field.KEY`.
pub fn violations(field: &str, metadata: &Metadata) -> Vec<FieldViolation> {
    let mut bad = Vec::new();
    if metadata.len() > limits::MAX_KEYS {
        bad.push(FieldViolation::new(
            field,
            format!("at most {} keys", limits::MAX_KEYS),
        ));
    }
    for (key, value) in metadata {
        if let Some(why) = key_problem(key).or_else(|| value_problem(value)) {
            bad.push(FieldViolation::new(format!("{field}.{key}"), why));
        }
    }
    bad
}

/// Keeps what `violations` accepts: corpus files' front matter is taken as
/// far as it is usable, with a warning naming what was left out.
pub fn sanitize(id: &str, metadata: Metadata) -> Metadata {
    let mut kept = Metadata::new();
    for (key, value) in metadata {
        if kept.len() >= limits::MAX_KEYS {
            tracing::warn!(doc = id, key, "metadata key left out: too many keys");
            continue;
        }
        match key_problem(&key).or_else(|| value_problem(&value)) {
            Some(why) => tracing::warn!(doc = id, key, why, "metadata key left out"),
            None => {
                kept.insert(key, value);
            }
        }
    }
    kept
}

/// Metadata from YAML front matter: every scalar and every list of scalars,
/// but the keys that are document fields or the title. A string that reads
/// as a date or an RFC 3339 time is a timestamp.
pub fn from_yaml(map: &serde_yaml_ng::Mapping) -> Metadata {
    use serde_yaml_ng::Value;
    let scalar = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    };
    let mut out = Metadata::new();
    for (key, value) in map {
        let Some(key) = key.as_str() else { continue };
        if key == "title" || FIELDS.contains(&key) || key == "date" {
            continue;
        }
        let value = match value {
            Value::String(s) => match parse_timestamp(s) {
                Some(t) => MetaValue::Timestamp(t),
                None => MetaValue::String(s.trim().to_string()),
            },
            Value::Number(n) => match n.as_f64() {
                Some(f) => MetaValue::Number(f),
                None => continue,
            },
            Value::Bool(b) => MetaValue::Bool(*b),
            Value::Sequence(items) => MetaValue::List(items.iter().filter_map(scalar).collect()),
            _ => continue,
        };
        out.insert(key.to_string(), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_rfc3339_and_dates() {
        assert_eq!(parse_timestamp("1970-01-02"), Some(86_400));
        assert_eq!(parse_timestamp("1970-01-01T01:00:00Z"), Some(3_600));
        assert_eq!(parse_timestamp("1970-01-01T08:00:00+07:00"), Some(3_600));
        assert_eq!(parse_timestamp("May 2024"), None);
        assert_eq!(parse_timestamp("2024-13-01"), None);
        assert_eq!(format_timestamp(86_400), "1970-01-02T00:00:00Z");
    }

    #[test]
    fn keys_and_values_are_checked() {
        assert!(key_problem("tags").is_none());
        assert!(key_problem("a.b-c_d").is_none());
        assert!(key_problem("").is_some());
        assert!(key_problem("language").is_some());
        assert!(key_problem("has space").is_some());
        assert!(key_problem(&"k".repeat(65)).is_some());
        assert!(value_problem(&MetaValue::Number(f64::NAN)).is_some());
        assert!(value_problem(&MetaValue::List(vec!["x".into(); 101])).is_some());
        assert!(value_problem(&MetaValue::String("x".repeat(1025))).is_some());
        let mut m = Metadata::new();
        m.insert("ok".into(), MetaValue::Bool(true));
        m.insert("url".into(), MetaValue::Bool(true));
        let bad = violations("metadata", &m);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].field, "metadata.url");
        assert_eq!(sanitize("d", m).len(), 1);
    }

    #[test]
    fn front_matter_scalars_and_lists_become_metadata() {
        let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            "title: T\ndate: 2024-05-01\nauthor: Jane\ntags: [cloud, openstack]\nyear: 2024\ndraft: false\nupdated: 2024-06-01\nnested: {a: 1}\n",
        )
        .unwrap();
        let m = from_yaml(yaml.as_mapping().unwrap());
        assert_eq!(m["author"], MetaValue::String("Jane".into()));
        assert_eq!(
            m["tags"],
            MetaValue::List(vec!["cloud".into(), "openstack".into()])
        );
        assert_eq!(m["year"], MetaValue::Number(2024.0));
        assert_eq!(m["draft"], MetaValue::Bool(false));
        assert_eq!(
            m["updated"],
            MetaValue::Timestamp(parse_timestamp("2024-06-01").unwrap())
        );
        assert!(!m.contains_key("title") && !m.contains_key("date") && !m.contains_key("nested"));
    }
}
