//! OpenAI Chat Completions (`POST {base}/chat/completions`, bearer key).
//!
//! The request/response/error handling here is shared with Azure OpenAI,
//! which speaks the same body format.

use reqwest::header::HeaderMap;
use serde_json::{json, Map, Value};

use crate::error::{fallback_message, json_str, with_codes, ErrorDetails, ProviderError};
use crate::http::{join_url, ApiKey, PostJson, Transport};
use crate::params::{is_openai_reasoning_model, openai_tools, parse_tools, put, InferenceParams};
use crate::retry::HttpConfig;
use crate::types::{
    Completion, CompletionRequest, ModelProvider, ProbeOutcome, ProbeRequest, Usage,
};

/// Prompt sent by every probe (its answer is irrelevant).
pub(crate) const PROBE_PROMPT: &str = "ping";
/// `max_completion_tokens` for probing reasoning models: their budget also
/// covers hidden reasoning tokens, so one token is not a meaningful call.
pub const REASONING_PROBE_MAX_COMPLETION_TOKENS: u64 = 16;

/// Params reasoning models reject; dropped for them.
const REASONING_REJECTED: &[&str] = &["logprobs", "top_logprobs", "logit_bias"];

/// Client for the OpenAI Chat Completions API.
#[derive(Debug, Clone)]
pub struct OpenAiClient {
    transport: Transport,
    base_url: String,
}

impl OpenAiClient {
    /// Default base URL (includes `/v1`, as `OPENAI_BASE_URL` does).
    pub const DEFAULT_BASE_URL: &'static str = "https://api.openai.com/v1";

    /// `base_url` includes the version prefix, e.g. `https://api.openai.com/v1`
    /// (an empty string selects [`Self::DEFAULT_BASE_URL`]).
    ///
    /// # Panics
    /// If the TLS backend cannot be initialised (as `reqwest::Client::new`).
    pub fn new(api_key: impl Into<String>, base_url: impl Into<String>, http: HttpConfig) -> Self {
        let base_url = non_empty_or(base_url.into(), Self::DEFAULT_BASE_URL);
        let transport = Transport::new("openai", ApiKey::new(api_key), http, parse_openai_error)
            .expect("failed to initialise the HTTP client (TLS backend)");
        Self {
            transport,
            base_url,
        }
    }

    async fn post(&self, body: &Value) -> Result<Value, ProviderError> {
        let mut headers = HeaderMap::new();
        let (name, value) = self.transport.auth_header("authorization", "Bearer ")?;
        headers.insert(name, value);
        let url = join_url(&self.base_url, "chat/completions");
        self.transport
            .post_json(PostJson {
                url: &url,
                query: &[],
                headers,
                body,
            })
            .await
    }
}

#[async_trait::async_trait]
impl ModelProvider for OpenAiClient {
    fn name(&self) -> &str {
        "openai"
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        let body = chat_body(req, true);
        let raw = self.post(&body).await?;
        parse_chat_completion(raw)
    }

    async fn probe(&self, req: &ProbeRequest) -> Result<ProbeOutcome, ProviderError> {
        let raw = self.post(&probe_body(&req.model_id, true)).await?;
        Ok(parse_chat_probe(raw))
    }
}

pub(crate) fn non_empty_or(s: String, default: &str) -> String {
    if s.trim().is_empty() {
        default.to_string()
    } else {
        s.trim().to_string()
    }
}

/// Builds a Chat Completions body. `include_model` is false for Azure's
/// deployment route, where the deployment in the path selects the model.
pub(crate) fn chat_body(req: &CompletionRequest, include_model: bool) -> Value {
    let reasoning = is_openai_reasoning_model(&req.model_id);
    let p = InferenceParams::parse(&req.inference_params);
    let mut body: Map<String, Value> = p.extra.clone();
    if reasoning {
        for k in REASONING_REJECTED {
            body.remove(*k);
        }
    }
    if include_model {
        body.insert("model".into(), json!(req.model_id));
    } else {
        body.remove("model");
    }
    let mut messages = Vec::new();
    if !req.system_instructions.is_empty() {
        messages.push(json!({"role": "system", "content": req.system_instructions}));
    }
    messages.push(json!({"role": "user", "content": req.user_prompt}));
    body.insert("messages".into(), Value::Array(messages));

    if reasoning {
        put(&mut body, "max_completion_tokens", p.max_tokens);
        // Only the default (1) is accepted; anything else is a 400.
        put(
            &mut body,
            "temperature",
            p.temperature.filter(|t| *t == 1.0),
        );
        put(&mut body, "top_p", p.top_p.filter(|t| *t == 1.0));
        put(&mut body, "reasoning_effort", p.reasoning_effort.clone());
        let dropped: Vec<&str> = [
            ("temperature", p.temperature.is_some_and(|t| t != 1.0)),
            ("top_p", p.top_p.is_some_and(|t| t != 1.0)),
            ("stop", !p.stop.is_empty()),
            ("presence_penalty", p.presence_penalty.is_some()),
            ("frequency_penalty", p.frequency_penalty.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, d)| d.then_some(k))
        .collect();
        if !dropped.is_empty() {
            tracing::debug!(model = %req.model_id, ?dropped, "params unsupported by reasoning model dropped");
        }
    } else {
        put(&mut body, "max_tokens", p.max_tokens);
        put(&mut body, "temperature", p.temperature);
        put(&mut body, "top_p", p.top_p);
        if !p.stop.is_empty() {
            body.insert("stop".into(), json!(p.stop));
        }
        put(&mut body, "presence_penalty", p.presence_penalty);
        put(&mut body, "frequency_penalty", p.frequency_penalty);
    }
    put(&mut body, "seed", p.seed);

    let tools = parse_tools(&req.tools);
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(openai_tools(&tools)));
        put(&mut body, "tool_choice", p.tool_choice.clone());
    }
    if req
        .response_format
        .as_object()
        .is_some_and(|o| !o.is_empty())
    {
        body.insert("response_format".into(), req.response_format.clone());
    }
    Value::Object(body)
}

/// The 1-token probe body.
pub(crate) fn probe_body(model_id: &str, include_model: bool) -> Value {
    let mut body = Map::new();
    if include_model {
        body.insert("model".into(), json!(model_id));
    }
    body.insert(
        "messages".into(),
        json!([{"role": "user", "content": PROBE_PROMPT}]),
    );
    if is_openai_reasoning_model(model_id) {
        body.insert(
            "max_completion_tokens".into(),
            json!(REASONING_PROBE_MAX_COMPLETION_TOKENS),
        );
    } else {
        body.insert("max_tokens".into(), json!(1));
    }
    Value::Object(body)
}

fn opt_string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

/// Parses a Chat Completions success body.
pub(crate) fn parse_chat_completion(raw: Value) -> Result<Completion, ProviderError> {
    let Some(choices) = raw.get("choices").and_then(Value::as_array) else {
        return Err(ProviderError::Decode {
            message: "chat completion has no `choices` array".into(),
        });
    };
    let message = choices.first().and_then(|c| c.get("message"));
    let content = message
        .and_then(|m| {
            m.get("content")
                .and_then(Value::as_str)
                .or_else(|| m.get("refusal").and_then(Value::as_str))
        })
        .unwrap_or_default()
        .to_string();
    // `prompt_tokens` includes `prompt_tokens_details.cached_tokens`;
    // older Azure API versions send no details (cached stays unknown).
    let usage = raw.get("usage").filter(|u| u.is_object()).map(|u| Usage {
        input_tokens: u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
        output_tokens: u
            .get("completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        cached_input_tokens: u
            .get("prompt_tokens_details")
            .and_then(|d| d.get("cached_tokens"))
            .and_then(Value::as_u64),
        cache_write_input_tokens: None,
    });
    Ok(Completion {
        content,
        usage,
        response_model: opt_string(raw.get("model")),
        response_id: opt_string(raw.get("id")),
        system_fingerprint: opt_string(raw.get("system_fingerprint")),
        raw_response: raw,
    })
}

pub(crate) fn parse_chat_probe(raw: Value) -> ProbeOutcome {
    ProbeOutcome {
        response_model: opt_string(raw.get("model")),
        system_fingerprint: opt_string(raw.get("system_fingerprint")),
        raw_response: raw,
    }
}

/// Parses OpenAI's (and Azure's) error envelope
/// `{"error": {"message", "type", "param", "code"}}`.
pub(crate) fn parse_openai_error(status: u16, body: &[u8]) -> ErrorDetails {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let Some(err) = err else {
        return ErrorDetails {
            message: fallback_message(status, body),
            ..Default::default()
        };
    };
    if let Some(s) = err.as_str() {
        return ErrorDetails {
            message: s.to_string(),
            ..Default::default()
        };
    }
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| fallback_message(status, body));
    let code = json_str(err.get("code"));
    let ty = json_str(err.get("type"));
    let is = |s: &str| code.as_deref() == Some(s) || ty.as_deref() == Some(s);
    ErrorDetails {
        quota_exhausted: is("insufficient_quota"),
        request_too_large: status == 429 && message.contains("Request too large"),
        message: with_codes(&message, &[code.clone(), ty.clone()]),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_response_format_is_not_sent() {
        let req = CompletionRequest::new("gpt-4o", "hi");
        let body = chat_body(&req, true);
        assert!(body.get("response_format").is_none());
        assert!(body.get("tools").is_none());
        assert_eq!(body["messages"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn reasoning_drops_unsupported_params() {
        let mut req = CompletionRequest::new("o4-mini", "hi");
        req.inference_params = json!({"temperature": 1, "top_p": 0.5, "max_tokens": 100,
            "stop": ["x"], "logprobs": true, "reasoning_effort": "low", "frequency_penalty": 0.1});
        let body = chat_body(&req, true);
        assert_eq!(body["temperature"], json!(1.0));
        assert!(body.get("top_p").is_none());
        assert!(body.get("stop").is_none());
        assert!(body.get("logprobs").is_none());
        assert!(body.get("frequency_penalty").is_none());
        assert!(body.get("max_tokens").is_none());
        assert_eq!(body["max_completion_tokens"], json!(100));
        assert_eq!(body["reasoning_effort"], json!("low"));
    }

    #[test]
    fn error_envelope_parsing() {
        let d = parse_openai_error(
            429,
            br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert!(d.quota_exhausted);
        let d = parse_openai_error(502, b"<html>Bad Gateway</html>");
        assert_eq!(d.message, "HTTP 502: <html>Bad Gateway</html>");
        let d = parse_openai_error(
            401,
            br#"{"error":{"code":"401","message":"Access denied"}}"#,
        );
        assert_eq!(d.message, "Access denied (401)");
    }
}
