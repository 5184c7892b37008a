//! Anthropic Messages API against wiremock (wire-format doc §3).

mod common;

use std::time::{Duration, Instant};

use common::*;
use prompter_providers::{
    AnthropicClient, HttpConfig, ModelProvider, ProbeRequest, ProviderError, Usage,
};
use serde_json::{json, Value};
use wiremock::matchers::{header as header_eq, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-ant-api03-test-0123456789abcdef";
const MODEL: &str = "claude-sonnet-4-5-20250929";

fn ok_body() -> Value {
    json!({
      "id": "msg_01HkQ7v3ZcY8mT2pXwR9aBcD", "type": "message", "role": "assistant",
      "model": MODEL,
      "content": [{"type": "text", "text": "{\"capital\": \"Paris\"}"}],
      "stop_reason": "end_turn", "stop_sequence": null,
      "usage": {"input_tokens": 24, "output_tokens": 11, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "service_tier": "standard"}
    })
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("request-id", "req_011CAbcDeFgHiJkLmNoPqRs0")
        .set_body_json(ok_body())
}

fn error(status: u16, ty: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"type": "error",
        "error": {"type": ty, "message": message}, "request_id": "req_011CAbcDeFgHiJkLmNoPqRs6"}))
}

fn rate_limited() -> ResponseTemplate {
    error(429, "rate_limit_error", "This request would exceed the rate limit for your organization of 50,000 input tokens per minute. Please reduce the prompt length or try again later.")
}

fn overloaded() -> ResponseTemplate {
    error(529, "overloaded_error", "Overloaded")
}

fn client(server: &MockServer, http: HttpConfig) -> AnthropicClient {
    AnthropicClient::new(KEY, server.uri(), http)
}

fn messages() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header_eq("anthropic-version", "2023-06-01"))
        .and(header_eq("x-api-key", KEY))
}

#[tokio::test]
async fn anthropic_success_sends_messages_request_and_parses_model_usage_id() {
    let server = MockServer::start().await;
    messages().respond_with(ok()).expect(1).mount(&server).await;
    let mut req = request(
        MODEL,
        json!({"max_tokens": 512, "temperature": 0.2, "stop": ["\n\nHuman:"], "tool_choice": "auto"}),
    );
    req.system_instructions = "You are a terse assistant.".into();
    req.user_prompt = "Capital of France? Reply as JSON.".into();
    req.tools = json!([{"type": "function", "function": {"name": "lookup_city", "description": "Look up facts about a city",
        "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}]);

    let c = client(&server, fast_http()).complete(&req).await.unwrap();

    assert_eq!(c.content, "{\"capital\": \"Paris\"}");
    assert_eq!(
        c.usage,
        Some(Usage {
            input_tokens: 24,
            output_tokens: 11,
            cached_input_tokens: Some(0),
            cache_write_input_tokens: Some(0)
        })
    );
    assert_eq!(c.response_model.as_deref(), Some(MODEL));
    assert_eq!(
        c.response_id.as_deref(),
        Some("msg_01HkQ7v3ZcY8mT2pXwR9aBcD")
    );
    assert_eq!(c.system_fingerprint, None);
    assert_eq!(c.version_metadata(), json!({"model": MODEL}));

    let (sent, body) = single_body(&server).await;
    assert!(sent.headers.get("authorization").is_none());
    assert_eq!(
        body,
        json!({
          "model": MODEL,
          "max_tokens": 512,
          "system": "You are a terse assistant.",
          "messages": [{"role": "user", "content": "Capital of France? Reply as JSON."}],
          "temperature": 0.2, "stop_sequences": ["\n\nHuman:"],
          "tools": [{"name": "lookup_city", "description": "Look up facts about a city",
            "input_schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}],
          "tool_choice": {"type": "auto"}
        })
    );
}

#[tokio::test]
async fn anthropic_max_tokens_defaults_and_no_system_when_empty() {
    let server = MockServer::start().await;
    messages().respond_with(ok()).mount(&server).await;
    let mut req = request("claude-sonnet-4-5", json!({"top_p": 0.9, "top_k": 40}));
    req.system_instructions = String::new();
    client(&server, fast_http()).complete(&req).await.unwrap();
    let (_, body) = single_body(&server).await;
    assert_eq!(body["max_tokens"], 1024);
    assert_eq!(body["top_p"], 0.9);
    assert_eq!(body["top_k"], 40);
    assert!(body.get("system").is_none());
    assert!(body.get("temperature").is_none());
}

#[tokio::test]
async fn anthropic_text_blocks_concatenated_and_cache_tokens_counted() {
    let server = MockServer::start().await;
    messages()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
          "id": "msg_02", "type": "message", "role": "assistant", "model": MODEL,
          "content": [
            {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
            {"type": "text", "text": "Let me look. "},
            {"type": "tool_use", "id": "toolu_01A", "name": "lookup_city", "input": {"name": "Paris"}},
            {"type": "text", "text": "Paris."}],
          "stop_reason": "some_future_reason", "stop_sequence": null,
          "usage": {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000}
        })))
        .mount(&server)
        .await;
    let c = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap();
    assert_eq!(c.content, "Let me look. Paris.");
    assert_eq!(
        c.usage,
        Some(Usage {
            input_tokens: 1110,
            output_tokens: 5,
            cached_input_tokens: Some(1000),
            cache_write_input_tokens: Some(100)
        })
    );
}

#[tokio::test]
async fn anthropic_probe_sends_one_token_message() {
    let server = MockServer::start().await;
    messages().respond_with(ok()).expect(1).mount(&server).await;
    let p = client(&server, fast_http())
        .probe(&ProbeRequest {
            model_id: MODEL.into(),
        })
        .await
        .unwrap();
    assert_eq!(p.response_model.as_deref(), Some(MODEL));
    assert_eq!(p.system_fingerprint, None);
    let (_, body) = single_body(&server).await;
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["max_tokens"], 1);
    assert!(body.get("system").is_none());
}

#[tokio::test]
async fn anthropic_401_is_auth_and_not_retried() {
    let server = MockServer::start().await;
    messages()
        .respond_with(error(401, "authentication_error", "invalid x-api-key"))
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
            message:
                "invalid x-api-key (authentication_error, request_id req_011CAbcDeFgHiJkLmNoPqRs6)"
                    .into()
        }
    );
}

#[tokio::test]
async fn anthropic_400_is_bad_request_even_with_x_should_retry_true() {
    let server = MockServer::start().await;
    messages()
        .respond_with(
            error(400, "invalid_request_error", "`temperature` and `top_p` cannot both be specified for this model. Please use only one.")
                .insert_header("x-should-retry", "true"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .complete(&request(MODEL, json!({"temperature": 0.5, "top_p": 0.5})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "bad_request");
    assert!(err.message().unwrap().contains("cannot both be specified"));
}

#[tokio::test]
async fn anthropic_429_with_retry_after_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    messages()
        .respond_with(rate_limited().insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    messages().respond_with(ok()).mount(&server).await;
    let started = Instant::now();
    let c = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap();
    assert_eq!(c.response_model.as_deref(), Some(MODEL));
    assert_eq!(received(&server).await.len(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retry-after: 1 honoured"
    );
}

#[tokio::test]
async fn anthropic_429_exhausted_is_rate_limited_with_retry_after() {
    let server = MockServer::start().await;
    messages()
        .respond_with(rate_limited().insert_header("retry-after", "0"))
        .expect(3)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "rate_limited");
    assert_eq!(err.retry_after(), Some(Duration::ZERO));
    assert!(err.message().unwrap().contains("rate_limit_error"));
}

#[tokio::test]
async fn anthropic_429_spend_limit_is_not_retried() {
    let server = MockServer::start().await;
    messages()
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"type": "error",
            "error": {"type": "rate_limit_error", "message": "You have reached your specified API usage limits.",
                      "details": {"error_code": "enforced_spend_limit_reached"}}})))
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
async fn anthropic_500_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    messages()
        .respond_with(error(500, "api_error", "Internal server error"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    messages().respond_with(ok()).mount(&server).await;
    client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap();
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn anthropic_529_overloaded_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    messages()
        .respond_with(overloaded())
        .up_to_n_times(2)
        .mount(&server)
        .await;
    messages().respond_with(ok()).mount(&server).await;
    let c = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap();
    assert_eq!(c.content, "{\"capital\": \"Paris\"}");
    assert_eq!(received(&server).await.len(), 3);
}

#[tokio::test]
async fn anthropic_529_exhausted_is_overloaded() {
    let server = MockServer::start().await;
    messages()
        .respond_with(overloaded())
        .expect(2)
        .mount(&server)
        .await;
    let err = client(&server, http_attempts(2))
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap_err();
    match &err {
        ProviderError::Overloaded {
            retry_after,
            message,
        } => {
            assert_eq!(*retry_after, None);
            assert!(message.starts_with("Overloaded (overloaded_error"));
        }
        other => panic!("expected Overloaded, got {other:?}"),
    }
    assert!(err.is_retryable());
}

#[tokio::test]
async fn anthropic_slow_response_times_out() {
    let server = MockServer::start().await;
    messages()
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
async fn anthropic_malformed_json_is_decode_error() {
    let server = MockServer::start().await;
    messages()
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("{\"id\": \"msg_01\", \"content\": [{\"type\": \"te"),
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
async fn anthropic_non_json_413_from_edge_is_bad_request() {
    let server = MockServer::start().await;
    messages()
        .respond_with(ResponseTemplate::new(413).set_body_string("Request Entity Too Large"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .complete(&request(MODEL, json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::BadRequest {
            message: "HTTP 413: Request Entity Too Large".into()
        }
    );
}

#[tokio::test]
async fn anthropic_debug_output_redacts_api_key() {
    let server = MockServer::start().await;
    let c = client(&server, fast_http());
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(KEY), "{dbg}");
    assert!(!dbg.contains("0123456789abcdef"), "{dbg}");
    assert!(dbg.contains("REDACTED"));
}
