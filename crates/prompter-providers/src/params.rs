//! Mapping of a template's generation config (inference params, tools,
//! response format) onto each provider's request fields.
//!
//! Inference params are read leniently from any JSON: a non-object is treated
//! as `{}`, `null` values as absent, and these keys (with aliases) are
//! understood:
//!
//! | concept | accepted keys | OpenAI / Azure | Anthropic | Gemini `generationConfig` |
//! |---|---|---|---|---|
//! | max tokens | `max_tokens`, `max_completion_tokens`, `max_output_tokens`, `maxOutputTokens` | `max_tokens` (reasoning models: `max_completion_tokens`) | `max_tokens` (required; default 1024) | `maxOutputTokens` |
//! | temperature | `temperature` | `temperature` (reasoning: dropped unless 1) | `temperature` | `temperature` |
//! | top_p | `top_p`, `topP` | `top_p` (reasoning: dropped unless 1) | `top_p` | `topP` |
//! | top_k | `top_k`, `topK` | dropped | `top_k` | `topK` |
//! | stop | `stop`, `stop_sequences`, `stopSequences` (string or list) | `stop` (reasoning: dropped) | `stop_sequences` | `stopSequences` |
//! | seed | `seed` | `seed` | dropped | `seed` |
//! | penalties | `presence_penalty`, `frequency_penalty` | same (reasoning: dropped) | dropped | `presencePenalty`, `frequencyPenalty` |
//! | reasoning effort | `reasoning_effort` | `reasoning_effort` (reasoning models only) | dropped | dropped |
//! | tool choice | `tool_choice` (OpenAI shape) | verbatim | `{type: auto/none/any/tool}` | `toolConfig.functionCallingConfig` |
//! | anything else | | passed through verbatim | dropped | dropped |
//!
//! Tools may be given in OpenAI shape (`{"type":"function","function":{…}}`),
//! Anthropic shape (`{name, description, input_schema}`) or as a bare
//! `{name, description, parameters}`; function tools are translated to each
//! provider's shape, any other item (a provider-native or server tool) is
//! passed through verbatim.
//!
//! Response format (`{"type":"json_object"}` or `{"type":"json_schema",
//! "json_schema":{"schema":…}}`): OpenAI/Azure verbatim; Gemini
//! `responseMimeType: application/json` (+ `responseJsonSchema`); Anthropic
//! has no JSON mode, so only `json_schema` is mapped (to
//! `output_config.format`), `json_object` is left to the prompt.

use serde_json::{json, Map, Value};

/// Anthropic requires `max_tokens`; used when the template sets none.
pub const ANTHROPIC_DEFAULT_MAX_TOKENS: u64 = 1024;

/// Normalised inference params.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InferenceParams {
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub reasoning_effort: Option<String>,
    pub tool_choice: Option<Value>,
    /// Keys not listed above, verbatim.
    pub extra: Map<String, Value>,
}

const MAX_TOKENS_KEYS: &[&str] = &[
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "maxOutputTokens",
];
const TOP_P_KEYS: &[&str] = &["top_p", "topP"];
const TOP_K_KEYS: &[&str] = &["top_k", "topK"];
const STOP_KEYS: &[&str] = &["stop", "stop_sequences", "stopSequences"];
const PRESENCE_KEYS: &[&str] = &["presence_penalty", "presencePenalty"];
const FREQUENCY_KEYS: &[&str] = &["frequency_penalty", "frequencyPenalty"];

impl InferenceParams {
    pub(crate) fn parse(value: &Value) -> Self {
        let Some(obj) = value.as_object() else {
            return Self::default();
        };
        let first = |keys: &[&str]| {
            keys.iter()
                .filter_map(|k| obj.get(*k))
                .find(|v| !v.is_null())
        };
        let known: Vec<&str> = [
            MAX_TOKENS_KEYS,
            TOP_P_KEYS,
            TOP_K_KEYS,
            STOP_KEYS,
            PRESENCE_KEYS,
            FREQUENCY_KEYS,
            &["temperature", "seed", "reasoning_effort", "tool_choice"],
        ]
        .concat();
        Self {
            max_tokens: first(MAX_TOKENS_KEYS).and_then(as_u64),
            temperature: first(&["temperature"]).and_then(Value::as_f64),
            top_p: first(TOP_P_KEYS).and_then(Value::as_f64),
            top_k: first(TOP_K_KEYS).and_then(as_u64),
            stop: first(STOP_KEYS).map(as_string_list).unwrap_or_default(),
            seed: first(&["seed"]).and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            }),
            presence_penalty: first(PRESENCE_KEYS).and_then(Value::as_f64),
            frequency_penalty: first(FREQUENCY_KEYS).and_then(Value::as_f64),
            reasoning_effort: first(&["reasoning_effort"])
                .and_then(Value::as_str)
                .map(str::to_string),
            tool_choice: first(&["tool_choice"]).cloned(),
            extra: obj
                .iter()
                .filter(|(k, v)| !known.contains(&k.as_str()) && !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1e15)
            .map(|f| f as u64)
    })
}

fn as_string_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// OpenAI reasoning models (o1/o3/o4 series, gpt-5 family) take
/// `max_completion_tokens` and reject non-default sampling params. For Azure
/// the same test is applied to the deployment name.
pub fn is_openai_reasoning_model(model: &str) -> bool {
    let m = model.trim().to_ascii_lowercase();
    let m = m.rsplit('/').next().unwrap_or(&m);
    ["o1", "o3", "o4", "gpt-5"].iter().any(|p| m.starts_with(p))
}

/// A function tool, whatever shape it was given in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FunctionTool {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Option<Value>,
}

/// One tool item: a function we can translate, or something native.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tool {
    Function(FunctionTool),
    Native(Value),
}

/// Reads the template's tools (`[]`, `null` or a single object are accepted).
pub(crate) fn parse_tools(tools: &Value) -> Vec<Tool> {
    let items: Vec<&Value> = match tools {
        Value::Array(items) => items.iter().collect(),
        Value::Object(o) if !o.is_empty() => vec![tools],
        _ => Vec::new(),
    };
    items
        .into_iter()
        .filter(|t| t.as_object().is_some_and(|o| !o.is_empty()))
        .map(parse_tool)
        .collect()
}

fn parse_tool(t: &Value) -> Tool {
    let ty = t.get("type").and_then(Value::as_str);
    let from = |o: &Value, params_key: &str| {
        let name = o.get("name").and_then(Value::as_str)?;
        Some(FunctionTool {
            name: name.to_string(),
            description: o
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            parameters: o.get(params_key).filter(|p| !p.is_null()).cloned(),
        })
    };
    let parsed = match ty {
        Some("function") => t.get("function").and_then(|f| from(f, "parameters")),
        None | Some("custom") => {
            if t.get("input_schema").is_some() {
                from(t, "input_schema")
            } else {
                from(t, "parameters")
            }
        }
        Some(_) => None,
    };
    parsed.map_or_else(|| Tool::Native(t.clone()), Tool::Function)
}

pub(crate) fn openai_tools(tools: &[Tool]) -> Vec<Value> {
    tools
        .iter()
        .map(|t| match t {
            Tool::Function(f) => {
                let mut func = Map::new();
                func.insert("name".into(), json!(f.name));
                if let Some(d) = &f.description {
                    func.insert("description".into(), json!(d));
                }
                if let Some(p) = &f.parameters {
                    func.insert("parameters".into(), p.clone());
                }
                json!({"type": "function", "function": func})
            }
            Tool::Native(v) => v.clone(),
        })
        .collect()
}

pub(crate) fn anthropic_tools(tools: &[Tool]) -> Vec<Value> {
    tools
        .iter()
        .map(|t| match t {
            Tool::Function(f) => {
                let mut o = Map::new();
                o.insert("name".into(), json!(f.name));
                if let Some(d) = &f.description {
                    o.insert("description".into(), json!(d));
                }
                o.insert(
                    "input_schema".into(),
                    f.parameters
                        .clone()
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                );
                Value::Object(o)
            }
            Tool::Native(v) => v.clone(),
        })
        .collect()
}

pub(crate) fn gemini_tools(tools: &[Tool]) -> Vec<Value> {
    let decls: Vec<Value> = tools
        .iter()
        .filter_map(|t| match t {
            Tool::Function(f) => {
                let mut o = Map::new();
                o.insert("name".into(), json!(f.name));
                if let Some(d) = &f.description {
                    o.insert("description".into(), json!(d));
                }
                if let Some(p) = &f.parameters {
                    // Plain JSON Schema (OpenAI/Anthropic style), not the
                    // upper-case OpenAPI subset `parameters` expects.
                    o.insert("parametersJsonSchema".into(), p.clone());
                }
                Some(Value::Object(o))
            }
            Tool::Native(_) => None,
        })
        .collect();
    let mut out = Vec::new();
    if !decls.is_empty() {
        out.push(json!({ "functionDeclarations": decls }));
    }
    out.extend(tools.iter().filter_map(|t| match t {
        Tool::Native(v) => Some(v.clone()),
        Tool::Function(_) => None,
    }));
    out
}

/// OpenAI `tool_choice` → Anthropic `tool_choice`.
pub(crate) fn anthropic_tool_choice(choice: &Value) -> Option<Value> {
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "none" => Some(json!({"type": "none"})),
            "required" | "any" => Some(json!({"type": "any"})),
            _ => None,
        },
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .map(|name| json!({"type": "tool", "name": name})),
            Some("auto" | "any" | "tool" | "none") => Some(choice.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// OpenAI `tool_choice` → Gemini `toolConfig`.
pub(crate) fn gemini_tool_config(choice: &Value) -> Option<Value> {
    let mode = |m: &str| json!({"functionCallingConfig": {"mode": m}});
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Some(mode("AUTO")),
            "none" => Some(mode("NONE")),
            "required" | "any" => Some(mode("ANY")),
            _ => None,
        },
        Value::Object(o) if o.contains_key("functionCallingConfig") => Some(choice.clone()),
        Value::Object(o) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map(|name| {
                json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}})
            }),
        _ => None,
    }
}

/// A template's response format, normalised.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ResponseFormat {
    /// `{}` or `{"type":"text"}`.
    Text,
    /// `{"type":"json_object"}`.
    JsonObject,
    /// `{"type":"json_schema", …}` with its schema.
    JsonSchema(Value),
    /// Anything else: only OpenAI-family clients pass it (verbatim).
    Other,
}

pub(crate) fn parse_response_format(rf: &Value) -> ResponseFormat {
    let Some(o) = rf.as_object().filter(|o| !o.is_empty()) else {
        return ResponseFormat::Text;
    };
    match o.get("type").and_then(Value::as_str) {
        Some("text") => ResponseFormat::Text,
        Some("json_object") => ResponseFormat::JsonObject,
        Some("json_schema") => {
            let schema = o
                .get("json_schema")
                .and_then(|j| j.get("schema"))
                .or_else(|| o.get("schema"))
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            ResponseFormat::JsonSchema(schema)
        }
        _ => ResponseFormat::Other,
    }
}

/// Inserts `key: value` when `value` is `Some`.
pub(crate) fn put<T: Into<Value>>(map: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        map.insert(key.to_string(), v.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_params_with_aliases_and_extras() {
        let p = InferenceParams::parse(&json!({
            "maxOutputTokens": 64.0, "temperature": 0.2, "topP": 0.9, "top_k": 40,
            "stop": "###", "seed": 7, "presence_penalty": 0.5, "tool_choice": "auto",
            "logprobs": true, "user": null
        }));
        assert_eq!(p.max_tokens, Some(64));
        assert_eq!(p.temperature, Some(0.2));
        assert_eq!(p.top_p, Some(0.9));
        assert_eq!(p.top_k, Some(40));
        assert_eq!(p.stop, vec!["###".to_string()]);
        assert_eq!(p.seed, Some(7));
        assert_eq!(p.presence_penalty, Some(0.5));
        assert_eq!(p.tool_choice, Some(json!("auto")));
        assert_eq!(p.extra.len(), 1);
        assert_eq!(p.extra["logprobs"], json!(true));
    }

    #[test]
    fn non_object_params_are_empty() {
        for v in [json!(null), json!(0), json!("x"), json!([1, 2])] {
            assert_eq!(InferenceParams::parse(&v), InferenceParams::default());
        }
    }

    #[test]
    fn reasoning_model_detection() {
        for m in [
            "o1",
            "o1-mini",
            "o3",
            "o3-mini-2025-01-31",
            "o4-mini",
            "gpt-5",
            "gpt-5-mini",
            "GPT-5.1",
        ] {
            assert!(is_openai_reasoning_model(m), "{m}");
        }
        for m in ["gpt-4o", "gpt-4.1-mini", "gpt-3.5-turbo", "omni-moderation"] {
            assert!(!is_openai_reasoning_model(m), "{m}");
        }
    }

    #[test]
    fn tools_in_any_shape_translate_everywhere() {
        let tools = parse_tools(&json!([
            {"type": "function", "function": {"name": "a", "description": "A",
              "parameters": {"type": "object"}}},
            {"name": "b", "input_schema": {"type": "object", "properties": {}}},
            {"name": "c"},
            {"type": "web_search_20250305", "name": "web_search"},
            null, {}
        ]));
        assert_eq!(tools.len(), 4);
        let oa = openai_tools(&tools);
        assert_eq!(oa[1]["function"]["name"], "b");
        assert_eq!(oa[1]["function"]["parameters"]["type"], "object");
        assert_eq!(oa[3]["type"], "web_search_20250305");
        let an = anthropic_tools(&tools);
        assert_eq!(an[0]["input_schema"], json!({"type": "object"}));
        assert_eq!(
            an[2]["input_schema"],
            json!({"type": "object", "properties": {}})
        );
        let ge = gemini_tools(&tools);
        assert_eq!(ge.len(), 2);
        assert_eq!(ge[0]["functionDeclarations"][0]["name"], "a");
        assert_eq!(
            ge[0]["functionDeclarations"][0]["parametersJsonSchema"],
            json!({"type": "object"})
        );
        assert!(parse_tools(&json!(null)).is_empty());
        assert!(parse_tools(&json!({})).is_empty());
    }

    #[test]
    fn tool_choice_mappings() {
        assert_eq!(
            anthropic_tool_choice(&json!("required")),
            Some(json!({"type": "any"}))
        );
        assert_eq!(
            anthropic_tool_choice(&json!({"type": "function", "function": {"name": "f"}})),
            Some(json!({"type": "tool", "name": "f"}))
        );
        assert_eq!(
            gemini_tool_config(&json!("none")),
            Some(json!({"functionCallingConfig": {"mode": "NONE"}}))
        );
        assert_eq!(
            gemini_tool_config(&json!({"type": "function", "function": {"name": "f"}})),
            Some(json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}))
        );
    }

    #[test]
    fn response_formats() {
        assert_eq!(parse_response_format(&json!({})), ResponseFormat::Text);
        assert_eq!(
            parse_response_format(&json!({"type": "json_object"})),
            ResponseFormat::JsonObject
        );
        assert_eq!(
            parse_response_format(&json!({"type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object"}}})),
            ResponseFormat::JsonSchema(json!({"type": "object"}))
        );
        assert_eq!(
            parse_response_format(&json!({"type": "grammar"})),
            ResponseFormat::Other
        );
    }
}
