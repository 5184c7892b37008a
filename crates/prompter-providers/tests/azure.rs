//! Azure OpenAI chat completions against wiremock (wire-format doc §2).

mod common;

use std::time::{Duration, Instant};

use common::*;
use prompter_providers::{
    AzureOpenAiClient, HttpConfig, ModelProvider, ProbeRequest, ProviderError, Usage,
};
use serde_json::{json, Value};
use wiremock::matchers::{header as header_eq, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "0123456789abcdef0123456789abcdef";
const DEPLOYMENT: &str = "my-gpt4o";

fn ok_body(model: &str) -> Value {
    json!({
      "id": "chatcmpl-Cx82ab9XYZ0kLmPq1rStUvWx", "object": "chat.completion", "created": 1764320100,
      "model": model, "system_fingerprint": null,
      "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {
        "hate": {"filtered": false, "severity": "safe"}, "self_harm": {"filtered": false, "severity": "safe"},
        "sexual": {"filtered": false, "severity": "safe"}, "violence": {"filtered": false, "severity": "safe"},
        "jailbreak": {"filtered": false, "detected": false}}}],
      "choices": [{
        "index": 0, "finish_reason": "stop", "logprobs": null,
        "message": {"role": "assistant", "content": "Paris.", "refusal": null, "annotations": []},
        "content_filter_results": {
          "hate": {"filtered": false, "severity": "safe"}, "self_harm": {"filtered": false, "severity": "safe"},
          "sexual": {"filtered": false, "severity": "safe"}, "violence": {"filtered": false, "severity": "safe"},
          "protected_material_code": {"filtered": false, "detected": false},
          "protected_material_text": {"filtered": false, "detected": false}}
      }],
      "usage": {"prompt_tokens": 22, "completion_tokens": 3, "total_tokens": 25}
    })
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("apim-request-id", "6f1e1c3a-0000-4000-8000-000000000001")
        .insert_header("x-ms-region", "East US")
        .set_body_json(ok_body("gpt-4o-2024-11-20"))
}

fn rate_limited(retry_after: &str, retry_after_ms: &str) -> ResponseTemplate {
    ResponseTemplate::new(429)
        .insert_header("retry-after", retry_after)
        .insert_header("retry-after-ms", retry_after_ms)
        .set_body_json(json!({"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."}}))
}

fn client(server: &MockServer, http: HttpConfig) -> AzureOpenAiClient {
    AzureOpenAiClient::new(KEY, server.uri(), http)
}

fn deployment_route() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(format!(
            "/openai/deployments/{DEPLOYMENT}/chat/completions"
        )))
        .and(query_param("api-version", "2024-10-21"))
        .and(header_eq("api-key", KEY))
}

#[tokio::test]
async fn azure_success_uses_deployment_path_api_version_and_api_key() {
    let server = MockServer::start().await;
    deployment_route()
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let mut req = request(
        DEPLOYMENT,
        json!({"temperature": 0.2, "max_tokens": 64, "stop": "###"}),
    );
    req.response_format = json!({"type": "json_object"});

    let c = client(&server, fast_http()).complete(&req).await.unwrap();

    assert_eq!(c.content, "Paris.");
    assert_eq!(c.usage, Some(Usage::plain(22, 3)));
    assert_eq!(c.response_model.as_deref(), Some("gpt-4o-2024-11-20"));
    assert_eq!(c.system_fingerprint, None);
    assert_eq!(
        c.response_id.as_deref(),
        Some("chatcmpl-Cx82ab9XYZ0kLmPq1rStUvWx")
    );
    // Content-filter annotations are kept verbatim in the raw response.
    assert_eq!(
        c.raw_response["prompt_filter_results"][0]["content_filter_results"]["jailbreak"]
            ["detected"],
        false
    );

    let (sent, body) = single_body(&server).await;
    assert_eq!(sent.url.query(), Some("api-version=2024-10-21"));
    assert!(sent.headers.get("authorization").is_none());
    assert!(body.get("model").is_none(), "deployment selects the model");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "Capital of France?"})
    );
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["stop"], json!(["###"]));
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
}

#[tokio::test]
async fn azure_unversioned_model_is_the_version_source_without_fingerprint() {
    let server = MockServer::start().await;
    deployment_route()
        .respond_with(ResponseTemplate::new(200).set_body_json({
            let mut b = ok_body("gpt-4");
            b.as_object_mut().unwrap().remove("system_fingerprint");
            b
        }))
        .mount(&server)
        .await;
    let c = client(&server, fast_http())
        .complete(&request(DEPLOYMENT, json!({})))
        .await
        .unwrap();
    assert_eq!(c.response_model.as_deref(), Some("gpt-4"));
    assert_eq!(c.system_fingerprint, None);
    assert_eq!(c.version_metadata(), json!({"model": "gpt-4"}));
}

#[tokio::test]
async fn azure_custom_api_version_and_reasoning_deployment() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/openai/deployments/o3-mini/chat/completions"))
        .and(query_param("api-version", "2025-04-01-preview"))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server, fast_http()).with_api_version("2025-04-01-preview");
    assert_eq!(c.api_version(), "2025-04-01-preview");
    c.complete(&request(
        "o3-mini",
        json!({"max_tokens": 500, "temperature": 0.3}),
    ))
    .await
    .unwrap();
    let (_, body) = single_body(&server).await;
    assert_eq!(body["max_completion_tokens"], 500);
    assert!(body.get("max_tokens").is_none());
    assert!(body.get("temperature").is_none());
}

#[tokio::test]
async fn azure_probe_sends_one_token_completion_to_the_deployment() {
    let server = MockServer::start().await;
    deployment_route()
        .respond_with(ResponseTemplate::new(200).set_body_json({
            let mut b = ok_body("gpt-4o-2024-11-20");
            b["system_fingerprint"] = json!("fp_a1b2c3d4e5");
            b
        }))
        .expect(1)
        .mount(&server)
        .await;
    let p = client(&server, fast_http())
        .probe(&ProbeRequest {
            model_id: DEPLOYMENT.into(),
        })
        .await
        .unwrap();
    assert_eq!(p.response_model.as_deref(), Some("gpt-4o-2024-11-20"));
    assert_eq!(p.system_fingerprint.as_deref(), Some("fp_a1b2c3d4e5"));
    let (_, body) = single_body(&server).await;
    assert_eq!(body["max_tokens"], 1);
    assert!(body.get("model").is_none());
}

#[tokio::test]
async fn azure_401_is_auth_and_not_retried() {
    let server = MockServer::start().await;
    deployment_route()
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .complete(&request(DEPLOYMENT, json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth");
    assert!(err
        .message()
        .unwrap()
        .starts_with("Access denied due to invalid subscription key"));
}

#[tokio::test]
async fn azure_400_content_filter_is_bad_request_and_not_retried() {
    let server = MockServer::start().await;
    deployment_route()
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
            "type": null, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation",
              "content_filter_result": {"violence": {"filtered": true, "severity": "high"}}}}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .complete(&request(DEPLOYMENT, json!({})))
        .await
        .unwrap_err();
    match err {
        ProviderError::BadRequest { message } => {
            assert!(message.contains("content management policy"));
            assert!(message.contains("content_filter"));
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

#[tokio::test]
async fn azure_404_deployment_not_found_is_bad_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .complete(&request("missing-deployment", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "bad_request");
    assert!(err.message().unwrap().contains("DeploymentNotFound"));
}

#[tokio::test]
async fn azure_429_retry_after_ms_is_honoured_then_succeeds() {
    let server = MockServer::start().await;
    deployment_route()
        .respond_with(rate_limited("1", "120"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    deployment_route().respond_with(ok()).mount(&server).await;
    let started = Instant::now();
    let c = client(&server, fast_http())
        .complete(&request(DEPLOYMENT, json!({})))
        .await
        .unwrap();
    assert_eq!(c.content, "Paris.");
    assert_eq!(received(&server).await.len(), 2);
    assert!(started.elapsed() >= Duration::from_millis(120));
}

#[tokio::test]
async fn azure_429_exhausted_is_rate_limited_with_retry_after() {
    let server = MockServer::start().await;
    deployment_route()
        .respond_with(rate_limited("1", "10"))
        .expect(2)
        .mount(&server)
        .await;
    let err = client(&server, http_attempts(2))
        .complete(&request(DEPLOYMENT, json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "rate_limited");
    assert_eq!(err.retry_after(), Some(Duration::from_millis(10)));
    assert!(err.message().unwrap().contains("exceeded token rate limit"));
}

#[tokio::test]
async fn azure_429_hint_beyond_max_backoff_is_not_slept() {
    let server = MockServer::start().await;
    deployment_route()
        .respond_with(rate_limited("86400", "86400000"))
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let err = client(&server, fast_http())
        .complete(&request(DEPLOYMENT, json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(86_400)));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn azure_500_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    deployment_route()
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": {"message": "The server had an error while processing your request. Sorry about that!", "type": "server_error", "param": null, "code": null}})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    deployment_route().respond_with(ok()).mount(&server).await;
    let c = client(&server, fast_http())
        .complete(&request(DEPLOYMENT, json!({})))
        .await
        .unwrap();
    assert_eq!(c.content, "Paris.");
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn azure_slow_response_times_out() {
    let server = MockServer::start().await;
    deployment_route()
        .respond_with(ok().set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let err = client(&server, timeout_http())
        .complete(&request(DEPLOYMENT, json!({})))
        .await
        .unwrap_err();
    assert_eq!(err, ProviderError::Timeout);
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn azure_malformed_json_is_decode_error() {
    let server = MockServer::start().await;
    deployment_route()
        .respond_with(ResponseTemplate::new(200).set_body_string("not json at all"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, fast_http())
        .complete(&request(DEPLOYMENT, json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "decode");
}

#[tokio::test]
async fn azure_empty_endpoint_is_not_configured() {
    let c = AzureOpenAiClient::new(KEY, "", fast_http());
    let err = c
        .complete(&request(DEPLOYMENT, json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "not_configured");
}

#[tokio::test]
async fn azure_debug_output_redacts_api_key() {
    let server = MockServer::start().await;
    let c = client(&server, fast_http());
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(KEY), "{dbg}");
    assert!(dbg.contains("REDACTED"));
    assert!(dbg.contains("2024-10-21"));
}
