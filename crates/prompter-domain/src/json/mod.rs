//! A small JSON value type that keeps number spelling, and its strict parser.
//!
//! V7 parsed request bodies with Python's `json` module, where `10**30` stays
//! an exact integer and `1.0` stays a float. [`Json`] keeps that distinction
//! ([`Json::Int`] holds the exact digits, [`Json::Float`] an `f64`), which
//! `serde_json::Value` (without `arbitrary_precision`) cannot.

mod parse;
mod write;

use std::fmt;

pub use parse::parse;
pub(crate) use write::{write_float, write_str};

/// A parsed JSON value.
///
/// Objects keep their members in input order with unique keys (a duplicate
/// key keeps the position of its first occurrence and the value of its last,
/// as a Python `dict` does).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Json {
    /// `null`
    #[default]
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer written without fraction or exponent, of any size: the
    /// exact decimal digits with an optional leading `-` (`-0` is stored as
    /// `0`, as Python's `json.loads` gives int `0`).
    Int(String),
    /// A number written with a fraction or an exponent (always finite).
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object: `(key, value)` members in input order, keys unique.
    Object(Vec<(String, Json)>),
}

/// Limits enforced by [`parse`] in every validation mode; they protect the
/// service, not the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of arrays/objects (the top-level container is depth 1).
    pub max_depth: usize,
    /// Maximum length of any string or object key, in UTF-8 bytes.
    pub max_string_bytes: usize,
    /// Maximum number of entries in any array or object.
    pub max_list_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 64,
            max_string_bytes: 1024 * 1024,
            max_list_len: 10_000,
        }
    }
}

/// Integers with more digits than this are rejected (`number_too_long`):
/// Python's default `int` conversion limit, so V7 could not parse them either.
pub const MAX_INT_DIGITS: usize = 4300;

impl Json {
    /// Python truthiness: `null`, `false`, `0`, `0.0`, `""`, `[]` and `{}` are
    /// falsy; everything else is truthy.
    pub fn is_truthy(&self) -> bool {
        match self {
            Json::Null => false,
            Json::Bool(b) => *b,
            Json::Int(digits) => digits.bytes().any(|b| (b'1'..=b'9').contains(&b)),
            Json::Float(x) => *x != 0.0,
            Json::Str(s) => !s.is_empty(),
            Json::Array(items) => !items.is_empty(),
            Json::Object(members) => !members.is_empty(),
        }
    }

    /// The string, if this is a [`Json::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value of member `key`, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short name of the JSON type ("null", "boolean", "integer", "float",
    /// "string", "array", "object").
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Int(_) => "integer",
            Json::Float(_) => "float",
            Json::Str(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    /// Converts to a `serde_json::Value`.
    ///
    /// Lossy: integers that fit neither `i64` nor `u64` become the nearest
    /// `f64` (and `null` beyond the `f64` range), and object member order is
    /// whatever `serde_json::Map` keeps (sorted, without `preserve_order`).
    /// Never use the result to compute a hash.
    pub fn to_serde(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(digits) => {
                if let Ok(i) = digits.parse::<i64>() {
                    Value::from(i)
                } else if let Ok(u) = digits.parse::<u64>() {
                    Value::from(u)
                } else {
                    digits
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map_or(Value::Null, Value::Number)
                }
            }
            Json::Float(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
            Json::Str(s) => Value::String(s.clone()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_serde).collect()),
            Json::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_serde()))
                    .collect(),
            ),
        }
    }

    /// Converts from a `serde_json::Value`: integers (`i64`/`u64`) become
    /// [`Json::Int`], other numbers [`Json::Float`].
    pub fn from_serde(value: &serde_json::Value) -> Json {
        use serde_json::Value;
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Json::Int(i.to_string())
                } else if let Some(u) = n.as_u64() {
                    Json::Int(u.to_string())
                } else {
                    Json::Float(n.as_f64().unwrap_or(0.0))
                }
            }
            Value::String(s) => Json::Str(s.clone()),
            Value::Array(items) => Json::Array(items.iter().map(Json::from_serde).collect()),
            Value::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Json::from_serde(v)))
                    .collect(),
            ),
        }
    }
}

/// Compact JSON in member order, written the way Python's
/// `json.dumps(v, separators=(",", ":"), ensure_ascii=False)` writes it
/// (floats as Python `repr`, integers as their digits).
impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write::write_compact(&mut out, self);
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Json {
        parse(s.as_bytes(), &Limits::default()).unwrap()
    }

    #[test]
    fn truthiness_matches_python() {
        for falsy in [
            "null", "false", "0", "-0", "0.0", "-0.0", "0e5", "\"\"", "[]", "{}",
        ] {
            assert!(!p(falsy).is_truthy(), "{falsy}");
        }
        for truthy in [
            "true",
            "1",
            "-1",
            "0.1",
            "1e-300",
            "\" \"",
            "[0]",
            "{\"a\":null}",
        ] {
            assert!(p(truthy).is_truthy(), "{truthy}");
        }
        assert!(!Json::Int("000".into()).is_truthy());
    }

    #[test]
    fn serde_round_trip_and_lossiness() {
        let j = p(
            r#"{"a":[1,-2,1.5,true,null,"x"],"big":100000000000000000000,"u":18446744073709551615}"#,
        );
        let v = j.to_serde();
        assert_eq!(v["a"][0], serde_json::json!(1));
        assert_eq!(v["a"][2], serde_json::json!(1.5));
        assert_eq!(v["u"], serde_json::json!(18446744073709551615u64));
        assert_eq!(v["big"], serde_json::json!(1e20));
        let back = Json::from_serde(&v);
        assert_eq!(back.get("a"), j.get("a"));
        assert_eq!(back.get("big"), Some(&Json::Float(1e20)));
        assert_eq!(Json::from_serde(&serde_json::json!(2.0)), Json::Float(2.0));
    }

    #[test]
    fn display_is_python_compact() {
        let j = p(r#"{ "b" : [1.0, 1e-5, -0, "é\u0001"], "a" : {} }"#);
        assert_eq!(j.to_string(), r#"{"b":[1.0,1e-05,0,"é\u0001"],"a":{}}"#);
    }
}
