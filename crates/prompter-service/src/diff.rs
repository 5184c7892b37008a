//! Differences between two canonical configs, path by path.

use serde::Serialize;
use serde_json::Value;

/// One differing canonical-config path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// Dotted path, e.g. `inference_params.temperature` (list items by index).
    pub path: String,
    /// Value on the left (null when absent).
    pub left: Value,
    /// Value on the right (null when absent).
    pub right: Value,
}

/// Compares two canonical JSON texts. Objects are compared key by key
/// (recursively); lists of equal length item by item; anything else whole.
pub fn diff_canonical(left: &str, right: &str) -> Vec<Difference> {
    let l: Value = serde_json::from_str(left).unwrap_or(Value::Null);
    let r: Value = serde_json::from_str(right).unwrap_or(Value::Null);
    let mut out = Vec::new();
    walk(String::new(), &l, &r, &mut out);
    out
}

fn join(prefix: &str, seg: &str) -> String {
    if prefix.is_empty() {
        seg.to_owned()
    } else {
        format!("{prefix}.{seg}")
    }
}

fn walk(path: String, l: &Value, r: &Value, out: &mut Vec<Difference>) {
    match (l, r) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let lv = a.get(k).unwrap_or(&Value::Null);
                let rv = b.get(k).unwrap_or(&Value::Null);
                walk(join(&path, k), lv, rv, out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() && !a.is_empty() => {
            for (i, (lv, rv)) in a.iter().zip(b).enumerate() {
                walk(join(&path, &i.to_string()), lv, rv, out);
            }
        }
        _ if l != r => out.push(Difference {
            path,
            left: l.clone(),
            right: r.clone(),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_only_differing_leaves() {
        let a = r#"{"model_id":"gpt-4o","inference_params":{"temperature":0.7,"top_p":1},"country_set":["DE","GB"]}"#;
        let b = r#"{"model_id":"gpt-4o","inference_params":{"temperature":0.2,"top_p":1},"country_set":["DE"]}"#;
        let d = diff_canonical(a, b);
        assert_eq!(
            d,
            vec![
                Difference {
                    path: "country_set".into(),
                    left: json!(["DE", "GB"]),
                    right: json!(["DE"])
                },
                Difference {
                    path: "inference_params.temperature".into(),
                    left: json!(0.7),
                    right: json!(0.2)
                },
            ]
        );
        assert!(diff_canonical(a, a).is_empty());
    }

    #[test]
    fn missing_keys_are_null() {
        let d = diff_canonical(r#"{"a":{"x":1}}"#, r#"{"a":{}}"#);
        assert_eq!(
            d,
            vec![Difference {
                path: "a.x".into(),
                left: json!(1),
                right: Value::Null
            }]
        );
    }
}
