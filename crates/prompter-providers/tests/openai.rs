//! OpenAI Chat Completions against wiremock (payloads from the wire-format doc §1).

mod common;

use std::time::{Duration, Instant};

use common::*;
use prompter_providers::{ModelProvider, OpenAiClient, ProbeRequest, ProviderError, Usage};
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, header as header_eq, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-test-abcdefghijklmnopqrstuvwxyz";

fn ok_body() -> Value {
    json!({
      "id": "chatcmpl-Cx81TqPbd2ZkYw0aFq7LmN3eRtUv", "object": "chat.completion", "created": 1764320000,
      "model": "gpt-4o-2024-08-06",
      "choices": [{
        "index": 0, "logprobs": null, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "{\"capital\": \"Paris\"}", "refusal": null, "annotations": []}
      }],
      "usage": {
        "prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
      },
      "service_tier": "default", "system_fingerprint": "fp_7c1a9e04b2"
    })
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("x-request-id", "req_8a7b6c5d4e3f")
        .insert_header("openai-version", "2020-10-01")
        .set_body_json(ok_body())
}

fn rate_limited() -> ResponseTemplate {
    ResponseTemplate::new(429)
        .insert_header("x-ratelimit-remaining-tokens", "0")
        .insert_header("x-ratelimit-reset-tokens", "1.002s")
        .set_body_json(json!({"error": {"message": "Rate limit reached for gpt-4o in organization org-AbC123 on tokens per min (TPM): Limit 30000, Used 29100, Requested 1400. Please try again in 1.002s. Visit https://platform.openai.com/account/rate-limits to learn more.",
          "type": "tokens", "param": null, "code": "rate_limit_exceeded"}}))
}

fn server_error() -> ResponseTemplate {
    ResponseTemplate::new(500).set_body_json(json!({"error": {"message": "The server had an error while processing your request. Sorry about that!", "type": "server_error", "param": null, "code": null}}))
}

async fn client(server: &MockServer, http: prompter_providers::HttpConfig) -> OpenAiClient {
    OpenAiClient::new(KEY, format!("{}/v1", server.uri()), http)
}

fn chat() -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(path("/v1/chat/completions"))
}

#[tokio::test]
async fn openai_success_sends_chat_request_and_parses_snapshot_fingerprint_usage() {
    let server = MockServer::start().await;
    chat().respond_with(ok()).expect(1).mount(&server).await;
    let mut req = request(
        "gpt-4o",
        json!({"temperature": 0.2, "top_p": 1, "max_tokens": 256, "stop": ["\n\n###"], "tool_choice": "auto"}),
    );
    req.response_format = json!({"type": "json_object"});
    req.tools = json!([{"type": "function", "function": {"name": "lookup_city", "description": "Look up facts about a city",
        "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}]);

    let c = client(&server, fast_http())
        .await
        .complete(&req)
        .await
        .unwrap();

    // What we parsed.
    assert_eq!(c.content, "{\"capital\": \"Paris\"}");
    assert_eq!(
        c.usage,
        Some(Usage {
            input_tokens: 31,
            output_tokens: 9,
            cached_input_tokens: Some(0),
            cache_write_input_tokens: None
        })
    );
    assert_eq!(c.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(c.system_fingerprint.as_deref(), Some("fp_7c1a9e04b2"));
    assert_eq!(
        c.response_id.as_deref(),
        Some("chatcmpl-Cx81TqPbd2ZkYw0aFq7LmN3eRtUv")
    );
    assert_eq!(c.raw_response, ok_body());
    assert_eq!(
        c.version_metadata(),
        json!({"model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_7c1a9e04b2"})
    );

    // What we sent.
    let (sent, body) = single_body(&server).await;
    assert_eq!(
        header(&sent, "authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(header(&sent, "content-type"), Some("application/json"));
    assert_eq!(
        body,
        json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "You are a terse assistant. Answer in JSON."},
                {"role": "user", "content": "Capital of France?"}
            ],
            "temperature": 0.2, "top_p": 1.0, "max_tokens": 256, "stop": ["\n\n###"],
            "response_format": {"type": "json_object"},
            "tools": [{"type": "function", "function": {"name": "lookup_city", "description": "Look up facts about a city",
                "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}],
            "tool_choice": "auto"
        })
    );
}

#[tokio::test]
async fn openai_o3_gets_max_completion_tokens_and_no_temperature() {
    let server = MockServer::start().await;
    chat()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-o3x", "object": "chat.completion", "created": 1764320000, "model": "o3-2025-04-16",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Paris"}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 70, "total_tokens": 90,
                      "completion_tokens_details": {"reasoning_tokens": 64}}
        })))
        .mount(&server)
        .await;
    let req = request(
        "o3",
        json!({"temperature": 0.2, "top_p": 0.9, "max_tokens": 256, "stop": ["###"], "reasoning_effort": "low"}),
    );
    let c = client(&server, fast_http())
        .await
        .complete(&req)
        .await
        .unwrap();
    assert_eq!(c.content, "Paris");
    assert_eq!(c.response_model.as_deref(), Some("o3-2025-04-16"));
    assert_eq!(c.system_fingerprint, None);

    let (_, body) = single_body(&server).await;
    assert_eq!(body["model"], "o3");
    assert_eq!(body["max_completion_tokens"], 256);
    assert_eq!(body["reasoning_effort"], "low");
    for absent in ["max_tokens", "temperature", "top_p", "stop"] {
        assert!(
            body.get(absent).is_none(),
            "{absent} must not be sent to o3"
        );
    }
}

#[tokio::test]
async fn openai_gpt5_is_a_reasoning_model_and_default_temperature_is_kept() {
    let server = MockServer::start().await;
    chat().respond_with(ok()).mount(&server).await;
    let req = request("gpt-5-mini", json!({"temperature": 1, "max_tokens": 50}));
    client(&server, fast_http())
        .await
        .complete(&req)
        .await
        .unwrap();
    let (_, body) = single_body(&server).await;
    assert_eq!(body["max_completion_tokens"], 50);
    assert_eq!(body["temperature"], 1.0);
    assert!(body.get("max_tokens").is_none());
}

#[tokio::test]
async fn openai_success_with_null_fingerprint_and_tool_call_only() {
    let server = MockServer::start().await;
    chat()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-tool1", "object": "chat.completion", "created": 1764320000, "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "call_Q2xyz", "type": "function", "function": {"name": "lookup_city", "arguments": "{\"name\":\"Paris\"}"}}]}}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52},
            "system_fingerprint": null
        })))
        .mount(&server)
        .await;
    let c = client(&server, fast_http())
        .await
        .complete(&request("gpt-4o", json!({})))
        .await
        .unwrap();
    assert_eq!(c.content, "");
    assert_eq!(c.system_fingerprint, None);
    assert_eq!(c.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(
        c.raw_response["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "lookup_city"
    );
}

#[tokio::test]
async fn openai_probe_sends_one_token_completion() {
    let server = MockServer::start().await;
    chat()
        .and(body_partial_json(
            json!({"model": "gpt-4o", "max_tokens": 1}),
        ))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let p = client(&server, fast_http())
        .await
        .probe(&ProbeRequest {
            model_id: "gpt-4o".into(),
        })
        .await
        .unwrap();
    assert_eq!(p.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(p.system_fingerprint.as_deref(), Some("fp_7c1a9e04b2"));
    assert_eq!(p.raw_response, ok_body());
    let (_, body) = single_body(&server).await;
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);
    assert!(body.get("temperature").is_none());
}

#[tokio::test]
async fn openai_probe_reasoning_model_uses_max_completion_tokens() {
    let server = MockServer::start().await;
    chat().respond_with(ok()).mount(&server).await;
    client(&server, fast_http())
        .await
        .probe(&ProbeRequest {
            model_id: "o4-mini".into(),
        })
        .await
        .unwrap();
    let (_, body) = single_body(&server).await;
    assert_eq!(body["max_completion_tokens"], 16);
    assert!(body.get("max_tokens").is_none());
}

#[tokio::test]
async fn openai_401_is_auth_and_not_retried() {
    let server = MockServer::start().await;
    chat()
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {
            "message": "Incorrect API key provided: sk-test********************wxyz. You can find your API key at https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .await
        .complete(&request("gpt-4o", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth");
    assert!(!err.is_retryable());
    let msg = err.message().unwrap();
    assert!(msg.starts_with("Incorrect API key provided"), "{msg}");
    assert!(msg.contains("invalid_api_key"));
}

#[tokio::test]
async fn openai_400_is_bad_request_with_provider_message_and_not_retried() {
    let server = MockServer::start().await;
    chat()
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is supported.",
            "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .await
        .complete(&request("gpt-4o", json!({"temperature": 0.2})))
        .await
        .unwrap_err();
    match &err {
        ProviderError::BadRequest { message } => {
            assert!(message.contains("'temperature' does not support 0.2"));
            assert!(message.contains("unsupported_value"));
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

#[tokio::test]
async fn openai_404_unknown_model_is_bad_request() {
    let server = MockServer::start().await;
    chat()
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {
            "message": "The model `gpt-9-turbo` does not exist or you do not have access to it.",
            "type": "invalid_request_error", "param": null, "code": "model_not_found"}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .await
        .complete(&request("gpt-9-turbo", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "bad_request");
    assert!(err.message().unwrap().contains("model_not_found"));
}

#[tokio::test]
async fn openai_429_with_retry_after_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    chat()
        .respond_with(
            rate_limited()
                .insert_header("retry-after-ms", "150")
                .insert_header("retry-after", "1"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    chat().respond_with(ok()).mount(&server).await;
    let started = Instant::now();
    let c = client(&server, fast_http())
        .await
        .complete(&request("gpt-4o", json!({})))
        .await
        .unwrap();
    assert_eq!(c.content, "{\"capital\": \"Paris\"}");
    assert_eq!(received(&server).await.len(), 2);
    // retry-after-ms (150 ms) wins over retry-after (1 s) and is honoured.
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn openai_429_exhausted_is_rate_limited_with_retry_after() {
    let server = MockServer::start().await;
    chat()
        .respond_with(rate_limited().insert_header("retry-after-ms", "20"))
        .expect(3)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .await
        .complete(&request("gpt-4o", json!({})))
        .await
        .unwrap_err();
    match &err {
        ProviderError::RateLimited {
            retry_after,
            message,
        } => {
            assert_eq!(*retry_after, Some(Duration::from_millis(20)));
            assert!(message.contains("Rate limit reached for gpt-4o"));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(err.is_retryable());
}

#[tokio::test]
async fn openai_429_insufficient_quota_is_not_retried() {
    let server = MockServer::start().await;
    chat()
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"error": {
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .await
        .complete(&request("gpt-4o", json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::Upstream {
            status: 429,
            message: "You exceeded your current quota, please check your plan and billing details. (insufficient_quota, insufficient_quota)".into()
        }
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn openai_500_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    chat()
        .respond_with(server_error())
        .up_to_n_times(2)
        .mount(&server)
        .await;
    chat().respond_with(ok()).mount(&server).await;
    let c = client(&server, fast_http())
        .await
        .complete(&request("gpt-4o", json!({})))
        .await
        .unwrap();
    assert_eq!(c.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(received(&server).await.len(), 3);
}

#[tokio::test]
async fn openai_500_exhausted_is_upstream_with_message() {
    let server = MockServer::start().await;
    chat()
        .respond_with(server_error())
        .expect(2)
        .mount(&server)
        .await;
    let err = client(&server, http_attempts(2))
        .await
        .complete(&request("gpt-4o", json!({})))
        .await
        .unwrap_err();
    match err {
        ProviderError::Upstream { status, message } => {
            assert_eq!(status, 500);
            assert!(message.starts_with("The server had an error"));
        }
        other => panic!("expected Upstream, got {other:?}"),
    }
}

#[tokio::test]
async fn openai_x_should_retry_false_stops_retries() {
    let server = MockServer::start().await;
    chat()
        .respond_with(server_error().insert_header("x-should-retry", "false"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .await
        .complete(&request("gpt-4o", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "upstream");
}

#[tokio::test]
async fn openai_html_502_from_proxy_is_upstream_and_retried() {
    let server = MockServer::start().await;
    chat()
        .respond_with(
            ResponseTemplate::new(502)
                .insert_header("content-type", "text/html")
                .set_body_string("<html><body><h1>502 Bad Gateway</h1></body></html>"),
        )
        .expect(3)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .await
        .complete(&request("gpt-4o", json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::Upstream {
            status: 502,
            message: "HTTP 502: <html><body><h1>502 Bad Gateway</h1></body></html>".into()
        }
    );
}

#[tokio::test]
async fn openai_slow_response_times_out() {
    let server = MockServer::start().await;
    chat()
        .respond_with(ok().set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let started = Instant::now();
    let err = client(&server, timeout_http())
        .await
        .complete(&request("gpt-4o", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err, ProviderError::Timeout);
    assert!(err.is_retryable());
    // Both attempts were made, and neither waited for the slow answer.
    assert_eq!(received(&server).await.len(), 2);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn openai_malformed_json_is_decode_error() {
    let server = MockServer::start().await;
    chat()
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/json")
                .set_body_string("{\"id\": \"chatcmpl-1\", \"choices\": [{"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .await
        .complete(&request("gpt-4o", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "decode");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn openai_success_without_choices_is_decode_error() {
    let server = MockServer::start().await;
    chat()
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "x", "object": "chat.completion"})),
        )
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .await
        .complete(&request("gpt-4o", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "decode");
}

#[tokio::test]
async fn openai_connection_refused_is_upstream_status_0() {
    // Bind then drop a listener so the port is (very likely) closed.
    // (Not a MockServer: wiremock pools and reuses those.)
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = OpenAiClient::new(KEY, format!("http://{addr}/v1"), http_attempts(1));
    let err = c.complete(&request("gpt-4o", json!({}))).await.unwrap_err();
    match err {
        ProviderError::Upstream { status: 0, message } => {
            assert!(
                message.starts_with("could not connect to openai"),
                "{message}"
            );
            assert!(!message.contains(KEY));
        }
        ProviderError::Timeout => {}
        other => panic!("expected a transport error, got {other:?}"),
    }
}

#[tokio::test]
async fn openai_debug_output_redacts_api_key() {
    let server = MockServer::start().await;
    let c = client(&server, fast_http()).await;
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(KEY), "{dbg}");
    assert!(!dbg.contains("abcdefghijklmnop"), "{dbg}");
    assert!(dbg.contains("REDACTED"));
    let dbg = format!("{c:#?}");
    assert!(!dbg.contains(KEY));
}

#[tokio::test]
async fn openai_error_message_never_contains_api_key() {
    let server = MockServer::start().await;
    chat()
        .and(header_eq("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {
            "message": format!("Incorrect API key provided: {KEY}."),
            "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .await
        .complete(&request("gpt-4o", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth");
    assert!(!err.to_string().contains(KEY), "{err}");
    assert!(!format!("{err:?}").contains(KEY));
    assert!(err.message().unwrap().contains("[REDACTED]"));
}

#[tokio::test]
async fn openai_cached_prompt_tokens_are_read_and_missing_usage_is_none() {
    let server = MockServer::start().await;
    chat()
        .and(body_partial_json(json!({"messages": [{"role": "user", "content": "cached"}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-c", "object": "chat.completion", "created": 1764320000, "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 2048, "completion_tokens": 12, "total_tokens": 2060,
                      "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0}}
        })))
        .mount(&server)
        .await;
    chat()
        .and(body_partial_json(json!({"messages": [{"role": "user", "content": "bare"}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-b", "object": "chat.completion", "created": 1764320000, "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]
        })))
        .mount(&server)
        .await;
    let c = client(&server, fast_http()).await;
    let mut req = request("gpt-4o", json!({}));
    req.system_instructions = String::new();
    req.user_prompt = "cached".into();
    let done = c.complete(&req).await.unwrap();
    assert_eq!(
        done.usage,
        Some(Usage {
            input_tokens: 2048,
            output_tokens: 12,
            cached_input_tokens: Some(1920),
            cache_write_input_tokens: None
        })
    );
    req.user_prompt = "bare".into();
    let done = c.complete(&req).await.unwrap();
    assert_eq!(done.usage, None);
}
