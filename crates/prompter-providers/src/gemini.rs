//! Google Gemini `generateContent` (Generative Language API, v1beta):
//! `POST {base}/v1beta/models/{model}:generateContent` with `x-goog-api-key`.
//! Body: `systemInstruction`, `contents`, `generationConfig`, `tools`,
//! `toolConfig`. Version key: `modelVersion`; `responseId` is kept as the
//! response id.
//!
//! Errors: a bad key is a **400** with `details[].reason == "API_KEY_INVALID"`
//! (mapped to `Auth`); a 429's wait hint is in the body
//! (`google.rpc.RetryInfo.retryDelay`); a quota whose `quotaId` contains
//! `PerDay` is not retried (`Upstream {status: 429}`).

use reqwest::header::HeaderMap;
use serde_json::{json, Map, Value};

use crate::error::{fallback_message, json_str, with_codes, ErrorDetails, ProviderError};
use crate::http::{encode_path_segment, join_url, ApiKey, PostJson, Transport};
use crate::openai::{non_empty_or, PROBE_PROMPT};
use crate::params::{
    gemini_tool_config, gemini_tools, parse_response_format, parse_tools, put, InferenceParams,
    ResponseFormat,
};
use crate::retry::{parse_proto_duration, HttpConfig};
use crate::types::{
    Completion, CompletionRequest, ModelProvider, ProbeOutcome, ProbeRequest, Usage,
};

/// Client for the Gemini API (`v1beta` `generateContent`).
#[derive(Debug, Clone)]
pub struct GeminiClient {
    transport: Transport,
    base_url: String,
}

impl GeminiClient {
    /// Default base URL (the `/v1beta/...` path is appended).
    pub const DEFAULT_BASE_URL: &'static str = "https://generativelanguage.googleapis.com";

    /// `base_url` without the version path (empty selects the default).
    ///
    /// # Panics
    /// If the TLS backend cannot be initialised (as `reqwest::Client::new`).
    pub fn new(api_key: impl Into<String>, base_url: impl Into<String>, http: HttpConfig) -> Self {
        let transport = Transport::new("google", ApiKey::new(api_key), http, parse_gemini_error)
            .expect("failed to initialise the HTTP client (TLS backend)");
        Self {
            transport,
            base_url: non_empty_or(base_url.into(), Self::DEFAULT_BASE_URL),
        }
    }

    async fn post(&self, model_id: &str, body: &Value) -> Result<Value, ProviderError> {
        let model = model_id.trim();
        let model = model.strip_prefix("models/").unwrap_or(model);
        if model.is_empty() {
            return Err(ProviderError::BadRequest {
                message: "Gemini needs a model id (model_id is empty)".into(),
            });
        }
        let mut headers = HeaderMap::new();
        let (name, value) = self.transport.auth_header("x-goog-api-key", "")?;
        headers.insert(name, value);
        let url = join_url(
            &self.base_url,
            &format!(
                "v1beta/models/{}:generateContent",
                encode_path_segment(model)
            ),
        );
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
impl ModelProvider for GeminiClient {
    fn name(&self) -> &str {
        "google"
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        let raw = self.post(&req.model_id, &generate_body(req)).await?;
        parse_generate(raw)
    }

    async fn probe(&self, req: &ProbeRequest) -> Result<ProbeOutcome, ProviderError> {
        let body = json!({
            "contents": [{"role": "user", "parts": [{"text": PROBE_PROMPT}]}],
            "generationConfig": {"maxOutputTokens": 1},
        });
        let raw = self.post(&req.model_id, &body).await?;
        Ok(ProbeOutcome {
            response_model: model_version(&raw),
            system_fingerprint: None,
            raw_response: raw,
        })
    }
}

/// Builds a `generateContent` body.
pub(crate) fn generate_body(req: &CompletionRequest) -> Value {
    let p = InferenceParams::parse(&req.inference_params);
    let mut body = Map::new();
    if !req.system_instructions.is_empty() {
        body.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": req.system_instructions}]}),
        );
    }
    body.insert(
        "contents".into(),
        json!([{"role": "user", "parts": [{"text": req.user_prompt}]}]),
    );
    let mut gc = Map::new();
    put(&mut gc, "temperature", p.temperature);
    put(&mut gc, "topP", p.top_p);
    put(&mut gc, "topK", p.top_k);
    put(&mut gc, "maxOutputTokens", p.max_tokens);
    if !p.stop.is_empty() {
        gc.insert("stopSequences".into(), json!(p.stop));
    }
    put(&mut gc, "seed", p.seed);
    put(&mut gc, "presencePenalty", p.presence_penalty);
    put(&mut gc, "frequencyPenalty", p.frequency_penalty);
    match parse_response_format(&req.response_format) {
        ResponseFormat::JsonObject => {
            gc.insert("responseMimeType".into(), json!("application/json"));
        }
        ResponseFormat::JsonSchema(schema) => {
            gc.insert("responseMimeType".into(), json!("application/json"));
            gc.insert("responseJsonSchema".into(), schema);
        }
        ResponseFormat::Text | ResponseFormat::Other => {}
    }
    if !gc.is_empty() {
        body.insert("generationConfig".into(), Value::Object(gc));
    }
    let tools = parse_tools(&req.tools);
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(gemini_tools(&tools)));
        put(
            &mut body,
            "toolConfig",
            p.tool_choice.as_ref().and_then(gemini_tool_config),
        );
    }
    Value::Object(body)
}

fn model_version(raw: &Value) -> Option<String> {
    raw.get("modelVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn parse_generate(raw: Value) -> Result<Completion, ProviderError> {
    let candidates = raw.get("candidates").and_then(Value::as_array);
    if candidates.is_none() && raw.get("promptFeedback").is_none() {
        return Err(ProviderError::Decode {
            message: "generateContent response has neither `candidates` nor `promptFeedback`"
                .into(),
        });
    }
    // A blocked prompt (no candidates) or a candidate without parts yields "".
    let content: String = candidates
        .and_then(|c| c.first())
        .and_then(|c| c.get("content"))
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    // Gemini omits counts that are zero, so an absent
    // `cachedContentTokenCount` in a present block means none was cached.
    let usage = raw.get("usageMetadata").filter(|u| u.is_object()).map(|u| {
        let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
        Usage {
            input_tokens: n("promptTokenCount"),
            output_tokens: n("candidatesTokenCount") + n("thoughtsTokenCount"),
            cached_input_tokens: Some(n("cachedContentTokenCount")),
            cache_write_input_tokens: None,
        }
    });
    Ok(Completion {
        content,
        usage,
        response_model: model_version(&raw),
        response_id: raw
            .get("responseId")
            .and_then(Value::as_str)
            .map(str::to_string),
        system_fingerprint: None,
        raw_response: raw,
    })
}

/// Parses the `google.rpc.Status` envelope.
pub(crate) fn parse_gemini_error(status: u16, body: &[u8]) -> ErrorDetails {
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
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| fallback_message(status, body));
    let rpc_status = json_str(err.get("status"));
    let details: &[Value] = err
        .get("details")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let of_type = |t: &'static str| {
        details.iter().filter(move |d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|s| s.ends_with(t))
        })
    };
    let reason = of_type("google.rpc.ErrorInfo").find_map(|d| json_str(d.get("reason")));
    let retry_delay = of_type("google.rpc.RetryInfo")
        .find_map(|d| d.get("retryDelay").and_then(Value::as_str))
        .and_then(parse_proto_duration);
    let per_day = of_type("google.rpc.QuotaFailure")
        .filter_map(|d| d.get("violations").and_then(Value::as_array))
        .flatten()
        .filter_map(|v| v.get("quotaId").and_then(Value::as_str))
        .any(|q| q.contains("PerDay"));
    ErrorDetails {
        auth: reason.as_deref() == Some("API_KEY_INVALID"),
        quota_exhausted: per_day,
        body_retry_after: retry_delay,
        message: with_codes(&message, &[rpc_status, reason]),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retry_info_and_key_invalid() {
        let d = parse_gemini_error(
            429,
            br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"quota",
              "details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"38s"}]}}"#,
        );
        assert_eq!(d.body_retry_after, Some(Duration::from_secs(38)));
        assert!(!d.quota_exhausted);
        let d = parse_gemini_error(
            400,
            br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",
              "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#,
        );
        assert!(d.auth);
        assert_eq!(
            d.message,
            "API key not valid. Please pass a valid API key. (INVALID_ARGUMENT, API_KEY_INVALID)"
        );
    }

    #[test]
    fn thought_parts_are_skipped() {
        let c = parse_generate(json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "thinking...", "thought": true}, {"text": "Par"}, {"text": "is"}]}}],
            "modelVersion": "gemini-2.5-pro"
        }))
        .unwrap();
        assert_eq!(c.content, "Paris");
        assert_eq!(c.usage, None);
    }
}
