//! OTLP trace export (cargo feature `otlp`): with `OTEL_EXPORTER_OTLP_ENDPOINT`
//! set, `init_tracing` exports spans over OTLP/HTTP (protobuf) to
//! `<endpoint>/v1/traces`, named from `otel.name`, with the service resource
//! attributes; shutting the guard down flushes them.
//!
//! One test in this binary on purpose: the environment and the global
//! subscriber are process-wide.
#![cfg(feature = "otlp")]

use prompter_api::config::LogFormat;
use prompter_api::telemetry;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_otlp_endpoint_on_shutdown() {
    let collector = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&collector)
        .await;

    std::env::set_var("RUST_LOG", "info");
    std::env::remove_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", collector.uri());
    let guard = telemetry::init_tracing(LogFormat::Json, "prompter-otlp-test", "otlp-test-env");
    assert!(guard.exports_spans(), "OTEL_EXPORTER_OTLP_ENDPOINT is set");

    {
        // Shaped like prompter_service::telemetry::provider_span.
        let span = tracing::info_span!(
            "gen_ai.client",
            otel.name = %format!("chat {}", "otlp-model-x"),
            gen_ai.system = "stub",
            gen_ai.request.model = "otlp-model-x",
            gen_ai.usage.input_tokens = tracing::field::Empty,
        );
        span.record("gen_ai.usage.input_tokens", 12_u64);
        let _entered = span.enter();
        tracing::info!("inside the provider call");
    }
    // Spans are batched (every 5 s); shutdown exports what is buffered and
    // blocks until then.
    tokio::task::spawn_blocking(move || guard.shutdown())
        .await
        .unwrap();

    let requests = collector.received_requests().await.unwrap();
    let exports: Vec<_> = requests
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/traces")
        .collect();
    assert!(
        !exports.is_empty(),
        "no POST /v1/traces arrived; got {:?}",
        requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.url))
            .collect::<Vec<_>>()
    );
    for r in &exports {
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/x-protobuf")
        );
    }
    // Protobuf carries strings verbatim: look for them in the bodies.
    let body: Vec<u8> = exports
        .iter()
        .flat_map(|r| r.body.iter().copied())
        .collect();
    let has = |needle: &str| body.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(has("chat otlp-model-x"), "span named from otel.name");
    assert!(
        !has("gen_ai.client"),
        "the tracing span name is replaced by otel.name"
    );
    for attr in [
        "service.name",
        "prompter-otlp-test",
        "deployment.environment",
        "otlp-test-env",
        "gen_ai.system",
        "gen_ai.request.model",
        "otlp-model-x",
        "gen_ai.usage.input_tokens",
        "inside the provider call",
    ] {
        assert!(has(attr), "{attr} missing from the exported spans");
    }
}
