//! Anthropic Messages API: `POST {base}/v1/messages` with `x-api-key` and
//! `anthropic-version: 2023-06-01`. `max_tokens` is required (default
//! [`ANTHROPIC_DEFAULT_MAX_TOKENS`]); the system prompt is the top-level
//! `system` field. Version key: the response's `model` (the model id that
//! served the call).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Map, Value};

use crate::error::{fallback_message, json_str, with_codes, ErrorDetails, ProviderError};
use crate::http::{join_url, ApiKey, PostJson, Transport};
use crate::openai::{non_empty_or, PROBE_PROMPT};
use crate::params::{
    anthropic_tool_choice, anthropic_tools, parse_response_format, parse_tools, put,
    InferenceParams, ResponseFormat, ANTHROPIC_DEFAULT_MAX_TOKENS,
};
use crate::retry::HttpConfig;
use crate::types::{
    Completion, CompletionRequest, ModelProvider, ProbeOutcome, ProbeRequest, Usage,
};

/// The API version header value this client speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Client for the Anthropic Messages API.
#[derive(Debug, Clone)]
pub struct AnthropicClient {
    transport: Transport,
    base_url: String,
}

impl AnthropicClient {
    /// Default base URL (without `/v1`, as `ANTHROPIC_BASE_URL` does).
    pub const DEFAULT_BASE_URL: &'static str = "https://api.anthropic.com";

    /// `base_url` without the `/v1` suffix (empty selects the default).
    ///
    /// # Panics
    /// If the TLS backend cannot be initialised (as `reqwest::Client::new`).
    pub fn new(api_key: impl Into<String>, base_url: impl Into<String>, http: HttpConfig) -> Self {
        let transport = Transport::new(
            "anthropic",
            ApiKey::new(api_key),
            http,
            parse_anthropic_error,
        )
        .expect("failed to initialise the HTTP client (TLS backend)");
        Self {
            transport,
            base_url: non_empty_or(base_url.into(), Self::DEFAULT_BASE_URL),
        }
    }

    async fn post(&self, body: &Value) -> Result<Value, ProviderError> {
        let mut headers = HeaderMap::new();
        let (name, value) = self.transport.auth_header("x-api-key", "")?;
        headers.insert(name, value);
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        let url = join_url(&self.base_url, "v1/messages");
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
impl ModelProvider for AnthropicClient {
    fn name(&self) -> &str {
        "anthropic"
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        let raw = self.post(&messages_body(req)).await?;
        parse_message(raw)
    }

    async fn probe(&self, req: &ProbeRequest) -> Result<ProbeOutcome, ProviderError> {
        let body = json!({
            "model": req.model_id,
            "max_tokens": 1,
            "messages": [{"role": "user", "content": PROBE_PROMPT}],
        });
        let raw = self.post(&body).await?;
        Ok(ProbeOutcome {
            response_model: raw.get("model").and_then(Value::as_str).map(str::to_string),
            system_fingerprint: None,
            raw_response: raw,
        })
    }
}

/// Builds a Messages API body.
pub(crate) fn messages_body(req: &CompletionRequest) -> Value {
    let p = InferenceParams::parse(&req.inference_params);
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model_id));
    body.insert(
        "max_tokens".into(),
        json!(p.max_tokens.unwrap_or(ANTHROPIC_DEFAULT_MAX_TOKENS)),
    );
    if !req.system_instructions.is_empty() {
        body.insert("system".into(), json!(req.system_instructions));
    }
    body.insert(
        "messages".into(),
        json!([{"role": "user", "content": req.user_prompt}]),
    );
    put(&mut body, "temperature", p.temperature);
    // Recent models reject temperature together with top_p; a top_p of 1 is
    // the default anyway, so it is only sent when it changes something.
    let top_p = p.top_p.filter(|t| p.temperature.is_none() || *t != 1.0);
    put(&mut body, "top_p", top_p);
    put(&mut body, "top_k", p.top_k);
    if !p.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(p.stop));
    }
    let tools = parse_tools(&req.tools);
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(anthropic_tools(&tools)));
        put(
            &mut body,
            "tool_choice",
            p.tool_choice.as_ref().and_then(anthropic_tool_choice),
        );
    }
    match parse_response_format(&req.response_format) {
        ResponseFormat::JsonSchema(schema) => {
            body.insert(
                "output_config".into(),
                json!({"format": {"type": "json_schema", "schema": schema}}),
            );
        }
        ResponseFormat::JsonObject | ResponseFormat::Other => {
            tracing::debug!("anthropic has no JSON mode; response_format left to the prompt");
        }
        ResponseFormat::Text => {}
    }
    Value::Object(body)
}

fn parse_message(raw: Value) -> Result<Completion, ProviderError> {
    let Some(blocks) = raw.get("content").and_then(Value::as_array) else {
        return Err(ProviderError::Decode {
            message: "message has no `content` array".into(),
        });
    };
    let content: String = blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    // `input_tokens` excludes cache reads and writes, which are reported
    // (and billed) apart; the total prompt is their sum.
    let usage = raw.get("usage").filter(|u| u.is_object()).map(|u| {
        let opt = |k: &str| u.get(k).and_then(Value::as_u64);
        let n = |k: &str| opt(k).unwrap_or(0);
        Usage {
            input_tokens: n("input_tokens")
                + n("cache_creation_input_tokens")
                + n("cache_read_input_tokens"),
            output_tokens: n("output_tokens"),
            cached_input_tokens: opt("cache_read_input_tokens"),
            cache_write_input_tokens: opt("cache_creation_input_tokens"),
        }
    });
    let s = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(Completion {
        content,
        usage,
        response_model: s("model"),
        response_id: s("id"),
        system_fingerprint: None,
        raw_response: raw,
    })
}

/// Parses `{"type":"error","error":{"type","message"},"request_id"}`.
pub(crate) fn parse_anthropic_error(status: u16, body: &[u8]) -> ErrorDetails {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let Some(err) = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .filter(|e| e.is_object())
    else {
        return ErrorDetails {
            message: fallback_message(status, body),
            ..Default::default()
        };
    };
    let ty = json_str(err.get("type"));
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| fallback_message(status, body));
    let request_id = parsed
        .as_ref()
        .and_then(|v| json_str(v.get("request_id")))
        .map(|r| format!("request_id {r}"));
    let spend_limit = err
        .get("details")
        .and_then(|d| d.get("error_code"))
        .and_then(Value::as_str)
        == Some("enforced_spend_limit_reached");
    ErrorDetails {
        overloaded: ty.as_deref() == Some("overloaded_error"),
        quota_exhausted: spend_limit || ty.as_deref() == Some("billing_error"),
        message: with_codes(&message, &[ty.clone(), request_id]),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_p_default_dropped_when_temperature_set() {
        let mut req = CompletionRequest::new("claude-sonnet-4-5", "hi");
        req.inference_params = json!({"temperature": 0.2, "top_p": 1});
        let body = messages_body(&req);
        assert_eq!(body["temperature"], json!(0.2));
        assert!(body.get("top_p").is_none());
        req.inference_params = json!({"top_p": 1});
        assert_eq!(messages_body(&req)["top_p"], json!(1.0));
    }

    #[test]
    fn json_schema_maps_to_output_config() {
        let mut req = CompletionRequest::new("claude-sonnet-4-5", "hi");
        req.response_format = json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}});
        let body = messages_body(&req);
        assert_eq!(
            body["output_config"],
            json!({"format": {"type": "json_schema", "schema": {"type": "object"}}})
        );
        req.response_format = json!({"type": "json_object"});
        assert!(messages_body(&req).get("output_config").is_none());
    }

    #[test]
    fn error_parsing() {
        let d = parse_anthropic_error(
            529,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#,
        );
        assert!(d.overloaded);
        assert_eq!(d.message, "Overloaded (overloaded_error, request_id req_1)");
    }
}
