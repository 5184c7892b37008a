//! Shared helpers for the wiremock suites.
#![allow(dead_code)]

use std::time::Duration;

use prompter_providers::{CompletionRequest, HttpConfig};
use serde_json::Value;
use wiremock::{MockServer, Request};

/// Short backoffs so the suite is fast; `max_backoff` is 2 s so that a
/// `retry-after: 1` header is honoured (a longer hint is not slept).
pub fn fast_http() -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(5),
        max_attempts: 3,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_secs(2),
    }
}

/// Same, with `max_attempts` attempts.
pub fn http_attempts(max_attempts: u32) -> HttpConfig {
    HttpConfig {
        max_attempts,
        ..fast_http()
    }
}

/// A 200 ms total timeout, two attempts.
pub fn timeout_http() -> HttpConfig {
    HttpConfig {
        request_timeout: Duration::from_millis(200),
        max_attempts: 2,
        ..fast_http()
    }
}

/// A completion request with a system prompt and the given params.
pub fn request(model: &str, params: Value) -> CompletionRequest {
    CompletionRequest {
        model_id: model.to_string(),
        system_instructions: "You are a terse assistant. Answer in JSON.".to_string(),
        user_prompt: "Capital of France?".to_string(),
        inference_params: params,
        tools: Value::Array(vec![]),
        response_format: serde_json::json!({}),
    }
}

/// Every request the server received.
pub async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

/// The JSON body of the only request the server received.
pub async fn single_body(server: &MockServer) -> (Request, Value) {
    let reqs = received(server).await;
    assert_eq!(reqs.len(), 1, "expected exactly one request");
    let req = reqs.into_iter().next().unwrap();
    let body: Value = serde_json::from_slice(&req.body).expect("request body is JSON");
    (req, body)
}

/// A header of a received request, as a string.
pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}
