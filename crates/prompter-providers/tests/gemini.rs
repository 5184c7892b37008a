//! Gemini generateContent (v1beta) against wiremock (wire-format doc §4).

mod common;

use std::time::{Duration, Instant};

use common::*;
use prompter_providers::{
    GeminiClient, HttpConfig, ModelProvider, ProbeRequest, ProviderError, Usage,
};
use serde_json::{json, Value};
use wiremock::matchers::{header as header_eq, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "AIzaSyTest0123456789abcdefghijklmnop";
const MODEL: &str = "gemini-2.5-flash";

fn ok_body() -> Value {
    json!({
      "candidates": [{"content": {"role": "model", "parts": [{"text": "{\"capital\": \"Paris\"}"}]},
        "finishReason": "STOP", "index": 0, "avgLogprobs": -0.0213}],
      "usageMetadata": {"promptTokenCount": 19, "candidatesTokenCount": 8, "totalTokenCount": 27,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 19}]},
      "modelVersion": "gemini-2.5-flash",
      "responseId": "q3GxaPzKDcWo1e8Pm9uJ4Qw"
    })
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(ok_body())
}

fn rate_limited(retry_delay: &str, quota_id: &str) -> ResponseTemplate {
    ResponseTemplate::new(429).set_body_json(json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
      "message": "You exceeded your current quota, please check your plan and billing details. ... Please retry in 38.2s.",
      "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
          "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
          "quotaId": quota_id,
          "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"}}]},
        {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas",
          "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}]}}))
}

fn client(server: &MockServer, http: HttpConfig) -> GeminiClient {
    GeminiClient::new(KEY, server.uri(), http)
}

fn generate() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/v1beta/models/gemini-2.5-flash:generateContent"))
        .and(header_eq("x-goog-api-key", KEY))
}

#[tokio::test]
async fn gemini_success_sends_generate_content_and_parses_model_version_and_response_id() {
    let server = MockServer::start().await;
    generate().respond_with(ok()).expect(1).mount(&server).await;
    let mut req = request(
        MODEL,
        json!({"temperature": 0.2, "top_p": 0.95, "top_k": 40, "max_tokens": 512, "stop": ["###"], "tool_choice": "auto"}),
    );
    req.system_instructions = "You are a terse assistant.".into();
    req.user_prompt = "Capital of France? Reply as JSON.".into();
    req.response_format = json!({"type": "json_object"});
    req.tools = json!([{"type": "function", "function": {"name": "lookup_city", "description": "Look up facts about a city",
        "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}]);

    let c = client(&server, fast_http()).complete(&req).await.unwrap();

    assert_eq!(c.content, "{\"capital\": \"Paris\"}");
    assert_eq!(
        c.usage,
        Some(Usage {
            input_tokens: 19,
            output_tokens: 8,
            cached_input_tokens: Some(0),
            cache_write_input_tokens: None
        })
    );
    assert_eq!(c.response_model.as_deref(), Some("gemini-2.5-flash"));
    assert_eq!(c.response_id.as_deref(), Some("q3GxaPzKDcWo1e8Pm9uJ4Qw"));
    assert_eq!(c.system_fingerprint, None);
    assert_eq!(c.raw_response["modelVersion"], "gemini-2.5-flash");

    let (sent, body) = single_body(&server).await;
    assert!(
        sent.url.query().is_none(),
        "key goes in the header, not ?key="
    );
    assert_eq!(
        body,
        json!({
          "systemInstruction": {"parts": [{"text": "You are a terse assistant."}]},
          "contents": [{"role": "user", "parts": [{"text": "Capital of France? Reply as JSON."}]}],
          "generationConfig": {
            "temperature": 0.2, "topP": 0.95, "topK": 40, "maxOutputTokens": 512,
            "stopSequences": ["###"], "responseMimeType": "application/json"
          },
          "tools": [{"functionDeclarations": [{"name": "lookup_city", "description": "Look up facts about a city",
            "parametersJsonSchema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}]}],
          "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}
        })
    );
}

#[tokio::test]
async fn gemini_json_schema_maps_to_response_json_schema_and_thoughts_count_as_output() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1beta/models/gemini-2.5-pro:generateContent"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
          "candidates": [{"content": {"role": "model", "parts": [{"text": "{\"capital\":\"Paris\"}"}]},
            "finishReason": "A_NEW_REASON", "index": 0}],
          "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 6, "thoughtsTokenCount": 30, "totalTokenCount": 48},
          "modelVersion": "gemini-2.5-pro", "responseId": "abc"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let mut req = request("models/gemini-2.5-pro", json!({}));
    req.response_format = json!({"type": "json_schema", "json_schema": {"name": "city", "strict": true,
        "schema": {"type": "object", "properties": {"capital": {"type": "string"}}, "required": ["capital"]}}});
    let c = client(&server, fast_http()).complete(&req).await.unwrap();
    assert_eq!(
        c.usage,
        Some(Usage {
            input_tokens: 12,
            output_tokens: 36,
            cached_input_tokens: Some(0),
            cache_write_input_tokens: None
        })
    );
    let (_, body) = single_body(&server).await;
    assert_eq!(
        body["generationConfig"],
        json!({"responseMimeType": "application/json",
               "responseJsonSchema": {"type": "object", "properties": {"capital": {"type": "string"}}, "required": ["capital"]}})
    );
}

#[tokio::test]
async fn gemini_blocked_prompt_is_empty_content_with_model_version() {
    let server = MockServer::start().await;
    generate()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
          "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
          "usageMetadata": {"promptTokenCount": 911, "totalTokenCount": 911},
          "modelVersion": "gemini-2.5-flash", "responseId": "Zt2xaLb0Ab6p1e8P2KaZ-Ak"
        })))
        .mount(&server)
        .await;
    let c = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap();
    assert_eq!(c.content, "");
    assert_eq!(c.response_model.as_deref(), Some("gemini-2.5-flash"));
    assert_eq!(
        c.raw_response["promptFeedback"]["blockReason"],
        "PROHIBITED_CONTENT"
    );
    assert_eq!(
        c.usage,
        Some(Usage {
            input_tokens: 911,
            output_tokens: 0,
            cached_input_tokens: Some(0),
            cache_write_input_tokens: None
        })
    );
}

#[tokio::test]
async fn gemini_probe_sends_one_token_generation() {
    let server = MockServer::start().await;
    generate()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
          "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}],
          "usageMetadata": {"promptTokenCount": 1, "totalTokenCount": 1},
          "modelVersion": "gemini-2.5-flash", "responseId": "probe123"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let p = client(&server, fast_http())
        .probe(&ProbeRequest {
            model_id: MODEL.into(),
        })
        .await
        .unwrap();
    assert_eq!(p.response_model.as_deref(), Some("gemini-2.5-flash"));
    assert_eq!(p.system_fingerprint, None);
    assert_eq!(p.raw_response["responseId"], "probe123");
    let (_, body) = single_body(&server).await;
    assert_eq!(body["generationConfig"], json!({"maxOutputTokens": 1}));
    assert!(body.get("systemInstruction").is_none());
}

#[tokio::test]
async fn gemini_400_api_key_invalid_is_auth_and_not_retried() {
    let server = MockServer::start().await;
    generate()
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
          "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
             "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": "API key not valid. Please pass a valid API key."}]}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::Auth {
            message: "API key not valid. Please pass a valid API key. (INVALID_ARGUMENT, API_KEY_INVALID)".into()
        }
    );
}

#[tokio::test]
async fn gemini_400_invalid_argument_is_bad_request_and_not_retried() {
    let server = MockServer::start().await;
    generate()
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
          "message": "Invalid JSON payload received. Unknown name \"maxTokens\" at 'generation_config': Cannot find field.",
          "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": "generation_config",
            "description": "Invalid JSON payload received. Unknown name \"maxTokens\" at 'generation_config': Cannot find field."}]}]}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "bad_request");
    assert!(err
        .message()
        .unwrap()
        .contains("Unknown name \"maxTokens\""));
}

#[tokio::test]
async fn gemini_403_permission_denied_is_auth() {
    let server = MockServer::start().await;
    generate()
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"error": {"code": 403,
          "message": "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
          "status": "PERMISSION_DENIED"}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth");
}

#[tokio::test]
async fn gemini_429_retry_info_delay_is_honoured_then_succeeds() {
    let server = MockServer::start().await;
    generate()
        .respond_with(rate_limited(
            "0.150s",
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    generate().respond_with(ok()).mount(&server).await;
    let started = Instant::now();
    let c = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap();
    assert_eq!(c.response_id.as_deref(), Some("q3GxaPzKDcWo1e8Pm9uJ4Qw"));
    assert_eq!(received(&server).await.len(), 2);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn gemini_429_exhausted_is_rate_limited_with_retry_delay() {
    let server = MockServer::start().await;
    generate()
        .respond_with(rate_limited(
            "0.01s",
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        ))
        .expect(3)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "rate_limited");
    assert_eq!(err.retry_after(), Some(Duration::from_millis(10)));
    assert!(err.message().unwrap().contains("RESOURCE_EXHAUSTED"));
}

#[tokio::test]
async fn gemini_429_retry_delay_beyond_max_backoff_is_not_slept() {
    let server = MockServer::start().await;
    generate()
        .respond_with(rate_limited(
            "38s",
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(38)));
}

#[tokio::test]
async fn gemini_429_per_day_quota_is_not_retried() {
    let server = MockServer::start().await;
    generate()
        .respond_with(rate_limited(
            "0.01s",
            "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "upstream");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn gemini_bare_429_without_retry_info_uses_backoff() {
    let server = MockServer::start().await;
    generate()
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"error": {"code": 429,
          "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    generate().respond_with(ok()).mount(&server).await;
    client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap();
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn gemini_500_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    generate()
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": {"code": 500, "message": "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting", "status": "INTERNAL"}})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    generate().respond_with(ok()).mount(&server).await;
    client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap();
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn gemini_503_unavailable_exhausted_is_upstream() {
    let server = MockServer::start().await;
    generate()
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}})))
        .expect(3)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::Upstream {
            status: 503,
            message: "The model is overloaded. Please try again later. (UNAVAILABLE)".into()
        }
    );
}

#[tokio::test]
async fn gemini_slow_response_times_out() {
    let server = MockServer::start().await;
    generate()
        .respond_with(ok().set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let err = client(&server, timeout_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap_err();
    assert_eq!(err, ProviderError::Timeout);
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn gemini_malformed_json_is_decode_error() {
    let server = MockServer::start().await;
    generate()
        .respond_with(
            ResponseTemplate::new(200).set_body_string("{\"candidates\": [{\"content\": "),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "decode");
}

#[tokio::test]
async fn gemini_debug_output_redacts_api_key() {
    let server = MockServer::start().await;
    let c = client(&server, fast_http());
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(KEY), "{dbg}");
    assert!(!dbg.contains("AIzaSy"), "{dbg}");
    assert!(dbg.contains("REDACTED"));
}

#[tokio::test]
async fn gemini_cached_content_tokens_are_read() {
    let server = MockServer::start().await;
    generate()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
          "candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP", "index": 0}],
          "usageMetadata": {"promptTokenCount": 5000, "cachedContentTokenCount": 4096, "candidatesTokenCount": 7,
            "thoughtsTokenCount": 3, "totalTokenCount": 5010},
          "modelVersion": "gemini-2.5-pro", "responseId": "r1"
        })))
        .mount(&server)
        .await;
    let c = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap();
    assert_eq!(
        c.usage,
        Some(Usage {
            input_tokens: 5000,
            output_tokens: 10,
            cached_input_tokens: Some(4096),
            cache_write_input_tokens: None
        })
    );
}
