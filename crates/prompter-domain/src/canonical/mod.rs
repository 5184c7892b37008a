//! The canonical config: V7's exact canonical JSON bytes (contract §1).

mod country;
mod float;
mod stored;
mod text;

use std::fmt;

pub use country::{normalize_countries, normalize_country};
pub use stored::{rederive_stored, CANONICAL_FIELDS};
pub use text::{is_py_whitespace, normalize_text, py_strip};

use crate::json::{write_float, write_str, Json};
use crate::request::TemplateConfig;

/// The canonical JSON text of a template config: compact, keys in the
/// contract's order, byte-for-byte what V7 stored in
/// `config_canonical_json` and hashed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CanonicalConfig(String);

impl CanonicalConfig {
    /// The canonical JSON as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The canonical JSON as UTF-8 bytes (what is hashed).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The canonical JSON as an owned `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for CanonicalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for CanonicalConfig {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Canonicalises a config exactly as V7 did (contract §1).
///
/// Top-level keys in this order: `system_instructions` and
/// `user_prompt_template` (text rule, absent → `""`), `country_set`
/// (normalised, de-duplicated, sorted), `model_id` (as given, absent → `""`),
/// `inference_params` (falsy → `{}`, floats rounded to 4 decimals, keys
/// sorted), `tools_spec` (falsy → `[]`, falsy items → `{}`, keys sorted,
/// floats kept), `response_format` and `retrieval_params` (falsy → `{}`, keys
/// sorted), `grounding_profile_id`, `grounding_snapshot_id` (as given or
/// null), `preprocess_pipeline_id`, `postprocess_pipeline_id` (always null).
/// Serialised like Python's `json.dumps(separators=(",", ":"),
/// ensure_ascii=False)`.
///
/// A truthy `tools_spec` that is not an array (which
/// [`TemplateRequest`](crate::TemplateRequest) parsing rejects) is treated
/// as a one-item list.
pub fn canonicalize(cfg: &TemplateConfig) -> CanonicalConfig {
    let mut out = String::with_capacity(
        320 + cfg.system_instructions.as_ref().map_or(0, String::len)
            + cfg.user_prompt_template.as_ref().map_or(0, String::len),
    );
    canonicalize_into(cfg, &mut out);
    CanonicalConfig(out)
}

/// [`canonicalize`] appending to a caller-owned buffer (for reuse in loops).
pub(crate) fn canonicalize_into(cfg: &TemplateConfig, out: &mut String) {
    let mut w = Writer {
        out: std::mem::take(out),
        scratch: String::new(),
        order: Vec::new(),
    };
    w.canonical(cfg);
    *out = w.out;
}

/// Serialises straight into one `String`, with scratch space reused for text
/// normalisation, float rounding, countries and key sorting.
struct Writer {
    out: String,
    scratch: String,
    /// A stack of member indexes: each object being written sorts its own
    /// segment at the top, nested objects push above it.
    order: Vec<usize>,
}

impl Writer {
    fn canonical(&mut self, cfg: &TemplateConfig) {
        self.out.push_str("{\"system_instructions\":");
        self.text(cfg.system_instructions.as_deref());
        self.out.push_str(",\"user_prompt_template\":");
        self.text(cfg.user_prompt_template.as_deref());
        self.out.push_str(",\"country_set\":");
        self.countries(&cfg.country_set);
        self.out.push_str(",\"model_id\":");
        write_str(&mut self.out, cfg.model_id.as_deref().unwrap_or(""));
        self.out.push_str(",\"inference_params\":");
        self.or_empty_object(&cfg.inference_params, true);
        self.out.push_str(",\"tools_spec\":");
        self.tools(&cfg.tools_spec);
        self.out.push_str(",\"response_format\":");
        self.or_empty_object(&cfg.response_format, false);
        self.out.push_str(",\"grounding_profile_id\":");
        self.opt_str(cfg.grounding_profile_id.as_deref());
        self.out.push_str(",\"grounding_snapshot_id\":");
        self.opt_str(cfg.grounding_snapshot_id.as_deref());
        self.out.push_str(",\"retrieval_params\":");
        self.or_empty_object(&cfg.retrieval_params, false);
        self.out
            .push_str(",\"preprocess_pipeline_id\":null,\"postprocess_pipeline_id\":null}");
    }

    fn text(&mut self, s: Option<&str>) {
        self.scratch.clear();
        text::normalize_text_into(s.unwrap_or(""), &mut self.scratch);
        write_str(&mut self.out, &self.scratch);
    }

    /// [`normalize_countries`] without a `String` per country: normalised
    /// entries go into `scratch`, their ranges are sorted and de-duplicated.
    fn countries(&mut self, raw: &[String]) {
        self.scratch.clear();
        let mut ranges: Vec<(usize, usize)> = Vec::with_capacity(raw.len());
        for c in raw {
            let t = py_strip(c);
            if t.is_empty() {
                continue;
            }
            let start = self.scratch.len();
            if t.is_ascii() {
                self.scratch.push_str(t);
                self.scratch[start..].make_ascii_uppercase();
            } else {
                self.scratch.extend(t.chars().flat_map(char::to_uppercase));
            }
            if matches!(&self.scratch[start..], "UK" | "UKK") {
                self.scratch.truncate(start);
                self.scratch.push_str("GB");
            }
            ranges.push((start, self.scratch.len()));
        }
        let text = &self.scratch;
        ranges.sort_unstable_by(|a, b| text[a.0..a.1].cmp(&text[b.0..b.1]));
        ranges.dedup_by(|a, b| text[a.0..a.1] == text[b.0..b.1]);
        self.out.push('[');
        for (i, &(start, end)) in ranges.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            write_str(&mut self.out, &self.scratch[start..end]);
        }
        self.out.push(']');
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => write_str(&mut self.out, s),
            None => self.out.push_str("null"),
        }
    }

    fn or_empty_object(&mut self, v: &Json, round: bool) {
        if v.is_truthy() {
            self.value(v, round);
        } else {
            self.out.push_str("{}");
        }
    }

    fn tools(&mut self, tools: &Json) {
        if !tools.is_truthy() {
            self.out.push_str("[]");
            return;
        }
        let single;
        let items: &[Json] = match tools {
            Json::Array(items) => items,
            other => {
                single = [other.clone()];
                &single
            }
        };
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.or_empty_object(item, false);
        }
        self.out.push(']');
    }

    /// Any value with object keys sorted at every depth; floats rounded to
    /// four decimals when `round`.
    fn value(&mut self, v: &Json, round: bool) {
        match v {
            Json::Null => self.out.push_str("null"),
            Json::Bool(true) => self.out.push_str("true"),
            Json::Bool(false) => self.out.push_str("false"),
            Json::Int(digits) => self.out.push_str(digits),
            Json::Float(x) => {
                let x = if round {
                    float::round4(*x, &mut self.scratch)
                } else {
                    *x
                };
                write_float(&mut self.out, x);
            }
            Json::Str(s) => write_str(&mut self.out, s),
            Json::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.value(item, round);
                }
                self.out.push(']');
            }
            Json::Object(members) => self.object(members, round),
        }
    }

    fn object(&mut self, members: &[(String, Json)], round: bool) {
        self.out.push('{');
        if let [(k, v)] = members {
            write_str(&mut self.out, k);
            self.out.push(':');
            self.value(v, round);
        } else if !members.is_empty() {
            let base = self.order.len();
            self.order.extend(0..members.len());
            // Stable, so among equal keys (only possible in hand-built values)
            // the last one is kept below, as a Python dict would.
            self.order[base..].sort_by(|&a, &b| members[a].0.cmp(&members[b].0));
            let end = self.order.len();
            let mut first = true;
            for at in base..end {
                let (k, v) = &members[self.order[at]];
                if at + 1 < end && members[self.order[at + 1]].0 == *k {
                    continue;
                }
                if !first {
                    self.out.push(',');
                }
                first = false;
                write_str(&mut self.out, k);
                self.out.push(':');
                self.value(v, round);
            }
            self.order.truncate(base);
        }
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{parse, Limits};

    const TAIL: &str = r#""grounding_profile_id":null,"grounding_snapshot_id":null,"retrieval_params":{},"preprocess_pipeline_id":null,"postprocess_pipeline_id":null}"#;

    fn canon(body: &str) -> String {
        let req = crate::TemplateRequest::parse(body.as_bytes(), &Limits::default()).unwrap();
        canonicalize(&req.config).into_string()
    }

    fn j(s: &str) -> Json {
        parse(s.as_bytes(), &Limits::default()).unwrap()
    }

    /// Canonical form of `inference_params` alone.
    fn params(v: &str) -> String {
        let cfg = TemplateConfig {
            inference_params: j(v),
            ..TemplateConfig::default()
        };
        let c = canonicalize(&cfg).into_string();
        let start = c.find("\"inference_params\":").unwrap() + 19;
        let end = c.find(",\"tools_spec\"").unwrap();
        c[start..end].to_owned()
    }

    fn field<'a>(c: &'a str, key: &str, next: &str) -> &'a str {
        let start = c.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
        let end = c.find(&format!(",\"{next}\"")).unwrap();
        &c[start..end]
    }

    #[test]
    fn issue_example_bytes() {
        let c = canon(
            r#"{"workspace_id":"w","name":"n","user_prompt_template":"Hi  {{brand}}\r\n","model_id":"gpt-4o","country_set":["uk","de"],"inference_params":{"temperature":0.70001}}"#,
        );
        assert_eq!(
            c,
            format!(
                r#"{{"system_instructions":"","user_prompt_template":"Hi {{{{brand}}}}","country_set":["DE","GB"],"model_id":"gpt-4o","inference_params":{{"temperature":0.7}},"tools_spec":[],"response_format":{{}},{TAIL}"#
            )
        );
    }

    #[test]
    fn empty_config() {
        assert_eq!(
            canonicalize(&TemplateConfig::default()).as_str(),
            format!(
                r#"{{"system_instructions":"","user_prompt_template":"","country_set":[],"model_id":"","inference_params":{{}},"tools_spec":[],"response_format":{{}},{TAIL}"#
            )
        );
    }

    #[test]
    fn inference_params_rules() {
        for falsy in [
            "null", "false", "0", "-0", "0.0", "-0.0", "\"\"", "[]", "{}",
        ] {
            assert_eq!(params(falsy), "{}", "{falsy}");
        }
        assert_eq!(params("0.70001"), "0.7");
        assert_eq!(params("0.00001"), "0.0");
        assert_eq!(params("\"  s  \""), "\"  s  \"");
        assert_eq!(params("7"), "7");
        assert_eq!(params("true"), "true");
        assert_eq!(
            params(r#"[0.33333,{"b":1,"a":2}]"#),
            r#"[0.3333,{"a":2,"b":1}]"#
        );
        assert_eq!(
            params(r#"{"z":{"y":[0.123456,{"b":2.71828,"a":[3.14159265]}]},"a":0.5}"#),
            r#"{"a":0.5,"z":{"y":[0.1235,{"a":[3.1416],"b":2.7183}]}}"#
        );
        assert_eq!(
            params(r#"{"a":0.00015,"b":0.00025,"c":0.99995,"d":1e-05,"e":-0.00001}"#),
            r#"{"a":0.0001,"b":0.0003,"c":1.0,"d":0.0,"e":-0.0}"#
        );
        assert_eq!(
            params(r#"{"i":1000000000000000000000000000000,"f":1.0,"g":1e2,"h":1e300}"#),
            r#"{"f":1.0,"g":100.0,"h":1e+300,"i":1000000000000000000000000000000}"#
        );
        assert_eq!(
            params(r#"{"b":1,"B":2,"a":3,"é":5,"😀":6,"aa":8,"a ":9}"#),
            r#"{"B":2,"a":3,"a ":9,"aa":8,"b":1,"é":5,"😀":6}"#
        );
        assert_eq!(
            params(r#"{"t":true,"f":false,"n":null}"#),
            r#"{"f":false,"n":null,"t":true}"#
        );
    }

    #[test]
    fn tools_spec_rules() {
        let c = canon(r#"{"tools_spec":[null,0,false,"",[],{},{"b":0.123456789,"a":1e-05}]}"#);
        assert_eq!(
            field(&c, "tools_spec", "response_format"),
            r#"[{},{},{},{},{},{},{"a":1e-05,"b":0.123456789}]"#
        );
        let c = canon(r#"{"tools_spec":[{"name":"z"},"s",[{"d":1,"c":2}]]}"#);
        assert_eq!(
            field(&c, "tools_spec", "response_format"),
            r#"[{"name":"z"},"s",[{"c":2,"d":1}]]"#
        );
        for falsy in ["null", "0", "false", "\"\"", "{}", "[]"] {
            let cfg = TemplateConfig {
                tools_spec: j(falsy),
                ..TemplateConfig::default()
            };
            let c = canonicalize(&cfg).into_string();
            assert_eq!(field(&c, "tools_spec", "response_format"), "[]");
        }
        let cfg = TemplateConfig {
            tools_spec: j(r#"{"b":1,"a":2}"#),
            ..TemplateConfig::default()
        };
        let c = canonicalize(&cfg).into_string();
        assert_eq!(
            field(&c, "tools_spec", "response_format"),
            r#"[{"a":2,"b":1}]"#
        );
    }

    #[test]
    fn response_format_and_retrieval_params() {
        let c = canon(
            r#"{"response_format":{"type":"json_schema","s":{"b":0.123456,"a":1}},"retrieval_params":{"top_k":5,"f":{"z":1,"a":[{"y":2,"x":1}]}}}"#,
        );
        assert_eq!(
            field(&c, "response_format", "grounding_profile_id"),
            r#"{"s":{"a":1,"b":0.123456},"type":"json_schema"}"#
        );
        assert_eq!(
            field(&c, "retrieval_params", "preprocess_pipeline_id"),
            r#"{"f":{"a":[{"x":1,"y":2}],"z":1},"top_k":5}"#
        );
        let c = canon(r#"{"response_format":0,"retrieval_params":""}"#);
        assert_eq!(field(&c, "response_format", "grounding_profile_id"), "{}");
        assert_eq!(
            field(&c, "retrieval_params", "preprocess_pipeline_id"),
            "{}"
        );
    }

    #[test]
    fn text_country_model_and_ids() {
        let c = canon(
            r#"{"system_instructions":"  a \t b \r\n","user_prompt_template":"\u001c{{x}}\u00a0","country_set":[" uk","UKK","de","DE","","ß"],"model_id":" M ","grounding_profile_id":"g","grounding_snapshot_id":""}"#,
        );
        assert_eq!(
            c,
            r#"{"system_instructions":"a b","user_prompt_template":"{{x}}","country_set":["DE","GB","SS"],"model_id":" M ","inference_params":{},"tools_spec":[],"response_format":{},"grounding_profile_id":"g","grounding_snapshot_id":"","retrieval_params":{},"preprocess_pipeline_id":null,"postprocess_pipeline_id":null}"#
        );
    }

    #[test]
    fn escaping_in_output() {
        let c = canon(
            r#"{"user_prompt_template":"a\u0000\u0007\b\"\\\u007f😀\u2028b","model_id":"m\tx"}"#,
        );
        assert_eq!(
            field(&c, "user_prompt_template", "country_set"),
            "\"a\\u0000\\u0007\\b\\\"\\\\\u{7f}😀\u{2028}b\""
        );
        assert_eq!(field(&c, "model_id", "inference_params"), r#""m\tx""#);
    }

    #[test]
    fn hand_built_duplicate_keys_last_wins() {
        let cfg = TemplateConfig {
            response_format: Json::Object(vec![
                ("b".into(), Json::Int("1".into())),
                ("a".into(), Json::Int("2".into())),
                ("b".into(), Json::Int("3".into())),
            ]),
            ..TemplateConfig::default()
        };
        let c = canonicalize(&cfg).into_string();
        assert_eq!(
            field(&c, "response_format", "grounding_profile_id"),
            r#"{"a":2,"b":3}"#
        );
    }

    #[test]
    fn accessors() {
        let c = canonicalize(&TemplateConfig::default());
        assert_eq!(c.as_bytes(), c.as_str().as_bytes());
        assert_eq!(c.to_string(), c.as_str());
        assert_eq!(c.as_ref(), c.clone().into_string());
    }
}
