//! The deterministic stub (contract §2) and the registry built on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prompter_providers::{
    hash8, CompletionRequest, ModelProvider, ProbeRequest, ProviderError, ProviderRegistry,
    StubConfig, StubFailure, StubProvider, Usage,
};
use serde_json::{json, Value};

// Precomputed: sha256("openai:gpt-4o")[..8], sha256("azure:my-gpt4o")[..8].
const H_OPENAI_GPT4O: &str = "1cffe337";
const H_AZURE_MY_GPT4O: &str = "204dccd4";

fn req(model: &str) -> CompletionRequest {
    CompletionRequest {
        model_id: model.into(),
        system_instructions: "Be brief.".into(),
        user_prompt: "What is the capital of France?".into(),
        inference_params: json!({"temperature": 0}),
        tools: json!([]),
        response_format: json!({}),
    }
}

fn probe(model: &str) -> ProbeRequest {
    ProbeRequest {
        model_id: model.into(),
    }
}

fn stubs(cfg: StubConfig) -> (ProviderRegistry, Arc<StubProvider>) {
    ProviderRegistry::stub(cfg)
}

async fn complete(reg: &ProviderRegistry, provider: &str, model: &str) -> Value {
    reg.get(provider)
        .unwrap()
        .complete(&req(model))
        .await
        .unwrap()
        .raw_response
}

async fn probe_meta(reg: &ProviderRegistry, provider: &str, model: &str) -> Value {
    reg.get(provider)
        .unwrap()
        .probe(&probe(model))
        .await
        .unwrap()
        .raw_response
}

#[test]
fn stub_hash8_matches_precomputed_sha256() {
    assert_eq!(hash8("openai:gpt-4o"), H_OPENAI_GPT4O);
    assert_eq!(hash8("azure:my-gpt4o"), H_AZURE_MY_GPT4O);
}

#[tokio::test]
async fn stub_openai_completion_has_fingerprint_and_echoes_prompt() {
    let (reg, _) = stubs(StubConfig::default());
    let c = reg
        .get("openai")
        .unwrap()
        .complete(&req("gpt-4o"))
        .await
        .unwrap();
    let fp = format!("fp_stub_{H_OPENAI_GPT4O}");
    assert_eq!(
        c.raw_response,
        json!({"content": "What is the capital of France?",
               "response_metadata": {"system_fingerprint": fp}})
    );
    assert_eq!(c.content, "What is the capital of France?");
    assert_eq!(c.system_fingerprint.as_deref(), Some(fp.as_str()));
    assert_eq!(c.response_model, None);
    assert_eq!(c.usage, Some(Usage::plain(8, 6)));
    assert_eq!(c.version_metadata(), json!({"system_fingerprint": fp}));
}

#[tokio::test]
async fn stub_google_completion_has_model_version() {
    let (reg, _) = stubs(StubConfig::default());
    let c = reg
        .get("google")
        .unwrap()
        .complete(&req("gemini-2.5-flash"))
        .await
        .unwrap();
    assert_eq!(
        c.raw_response["response_metadata"],
        json!({"modelVersion": "gemini-2.5-flash-stub-001"})
    );
    assert_eq!(
        c.response_model.as_deref(),
        Some("gemini-2.5-flash-stub-001")
    );
    assert_eq!(c.system_fingerprint, None);
}

#[tokio::test]
async fn stub_anthropic_completion_has_model_id() {
    let (reg, _) = stubs(StubConfig::default());
    let raw = complete(&reg, "anthropic", "claude-sonnet-4-5").await;
    assert_eq!(
        raw,
        json!({"content": "What is the capital of France?",
               "response_metadata": {"model": "claude-sonnet-4-5"}})
    );
}

#[tokio::test]
async fn stub_azure_completion_has_no_metadata_at_all() {
    let (reg, _) = stubs(StubConfig::default());
    let c = reg
        .get("azure-openai")
        .unwrap()
        .complete(&req("my-gpt4o"))
        .await
        .unwrap();
    assert_eq!(
        c.raw_response,
        json!({"content": "What is the capital of France?"})
    );
    assert!(c.raw_response.get("response_metadata").is_none());
    assert_eq!(c.response_model, None);
    assert_eq!(c.system_fingerprint, None);
    assert_eq!(c.version_metadata(), json!({}));
}

#[tokio::test]
async fn stub_unknown_completion_has_empty_metadata() {
    let (reg, _) = stubs(StubConfig::default());
    let raw = complete(&reg, "unknown", "mystery-1").await;
    assert_eq!(raw["response_metadata"], json!({}));
}

#[tokio::test]
async fn stub_probe_values_per_provider() {
    let (reg, _) = stubs(StubConfig::default());
    assert_eq!(
        probe_meta(&reg, "openai", "gpt-4o").await,
        json!({"response_metadata": {"system_fingerprint": format!("fp_stub_{H_OPENAI_GPT4O}")}})
    );
    assert_eq!(
        probe_meta(&reg, "google", "gemini-2.5-flash").await,
        json!({"response_metadata": {"modelVersion": "gemini-2.5-flash-stub-001"}})
    );
    assert_eq!(
        probe_meta(&reg, "anthropic", "claude-sonnet-4-5").await,
        json!({"response_metadata": {"model": "claude-sonnet-4-5"}})
    );
    assert_eq!(
        probe_meta(&reg, "azure-openai", "my-gpt4o").await,
        json!({"response_metadata": {"system_fingerprint": format!("fp_stub_azure_{H_AZURE_MY_GPT4O}")}})
    );
    assert_eq!(
        probe_meta(&reg, "unknown", "mystery-1").await,
        json!({"response_metadata": {}})
    );
    let p = reg
        .get("azure-openai")
        .unwrap()
        .probe(&probe("my-gpt4o"))
        .await
        .unwrap();
    assert_eq!(
        p.system_fingerprint,
        Some(format!("fp_stub_azure_{H_AZURE_MY_GPT4O}"))
    );
    assert_eq!(p.response_model, None);
}

#[tokio::test]
async fn stub_openai_probe_equals_completion_key() {
    let (reg, _) = stubs(StubConfig::default());
    let c = complete(&reg, "openai", "gpt-4o").await;
    let p = probe_meta(&reg, "openai", "gpt-4o").await;
    assert_eq!(c["response_metadata"], p["response_metadata"]);
}

#[tokio::test]
async fn stub_build_tag_is_appended_to_every_version_key() {
    let (reg, _) = stubs(StubConfig {
        build_tag: Some("b2".into()),
        ..StubConfig::default()
    });
    let fp = format!("fp_stub_{H_OPENAI_GPT4O}-b2");
    assert_eq!(
        complete(&reg, "openai", "gpt-4o").await["response_metadata"],
        json!({"system_fingerprint": fp})
    );
    assert_eq!(
        probe_meta(&reg, "openai", "gpt-4o").await["response_metadata"],
        json!({"system_fingerprint": fp})
    );
    assert_eq!(
        complete(&reg, "google", "gemini-2.5-flash").await["response_metadata"],
        json!({"modelVersion": "gemini-2.5-flash-stub-001-b2"})
    );
    assert_eq!(
        probe_meta(&reg, "google", "gemini-2.5-flash").await["response_metadata"],
        json!({"modelVersion": "gemini-2.5-flash-stub-001-b2"})
    );
    assert_eq!(
        complete(&reg, "anthropic", "claude-sonnet-4-5").await["response_metadata"],
        json!({"model": "claude-sonnet-4-5-b2"})
    );
    assert_eq!(
        probe_meta(&reg, "anthropic", "claude-sonnet-4-5").await["response_metadata"],
        json!({"model": "claude-sonnet-4-5-b2"})
    );
    assert_eq!(
        probe_meta(&reg, "azure-openai", "my-gpt4o").await["response_metadata"],
        json!({"system_fingerprint": format!("fp_stub_azure_{H_AZURE_MY_GPT4O}-b2")})
    );
    // Still no metadata on Azure completions, and nothing to tag for unknown.
    assert!(complete(&reg, "azure-openai", "my-gpt4o")
        .await
        .get("response_metadata")
        .is_none());
    assert_eq!(
        probe_meta(&reg, "unknown", "x").await["response_metadata"],
        json!({})
    );
    let c = reg
        .get("anthropic")
        .unwrap()
        .complete(&req("claude-sonnet-4-5"))
        .await
        .unwrap();
    assert_eq!(c.response_model.as_deref(), Some("claude-sonnet-4-5-b2"));
}

#[tokio::test]
async fn stub_different_build_tags_give_different_keys() {
    let (a, _) = stubs(StubConfig {
        build_tag: Some("one".into()),
        ..StubConfig::default()
    });
    let (b, _) = stubs(StubConfig {
        build_tag: Some("two".into()),
        ..StubConfig::default()
    });
    for provider in ["openai", "google", "anthropic", "azure-openai"] {
        assert_ne!(
            probe_meta(&a, provider, "m").await,
            probe_meta(&b, provider, "m").await,
            "{provider}"
        );
    }
}

#[tokio::test]
async fn stub_probe_counter_counts_probes_across_all_names() {
    let (reg, handle) = stubs(StubConfig::default());
    assert_eq!(handle.probe_count(), 0);
    for name in ["openai", "azure-openai", "anthropic", "google", "unknown"] {
        reg.get(name).unwrap().probe(&probe("m")).await.unwrap();
    }
    reg.get("openai").unwrap().probe(&probe("m")).await.unwrap();
    reg.get("google")
        .unwrap()
        .complete(&req("m"))
        .await
        .unwrap();
    assert_eq!(handle.probe_count(), 6);
    assert_eq!(handle.completion_count(), 1);
}

#[tokio::test]
async fn stub_counters_include_failed_calls() {
    let (reg, handle) = stubs(StubConfig {
        failure_rate: 1.0,
        failure_kind: StubFailure::Upstream5xx,
        ..StubConfig::default()
    });
    let p = reg.get("openai").unwrap();
    assert!(p.probe(&probe("m")).await.is_err());
    assert!(p.complete(&req("m")).await.is_err());
    assert_eq!(handle.probe_count(), 1);
    assert_eq!(handle.completion_count(), 1);
}

#[tokio::test]
async fn stub_failure_timeout() {
    let (reg, _) = stubs(StubConfig {
        latency: Duration::from_millis(30),
        failure_rate: 1.0,
        failure_kind: StubFailure::Timeout,
        ..StubConfig::default()
    });
    let started = Instant::now();
    let err = reg
        .get("google")
        .unwrap()
        .probe(&probe("gemini-2.5-flash"))
        .await
        .unwrap_err();
    assert_eq!(err, ProviderError::Timeout);
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "fails after the latency"
    );
}

#[tokio::test]
async fn stub_failure_rate_limited_has_one_second_retry_after() {
    let (reg, _) = stubs(StubConfig {
        failure_rate: 1.0,
        failure_kind: StubFailure::RateLimited,
        ..StubConfig::default()
    });
    let err = reg
        .get("anthropic")
        .unwrap()
        .complete(&req("claude"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "rate_limited");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
}

#[tokio::test]
async fn stub_failure_upstream_5xx_is_503() {
    let (reg, _) = stubs(StubConfig {
        failure_rate: 1.0,
        failure_kind: StubFailure::Upstream5xx,
        ..StubConfig::default()
    });
    let err = reg
        .get("azure-openai")
        .unwrap()
        .probe(&probe("d"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Upstream { status: 503, .. }));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn stub_failure_rate_zero_never_fails_and_half_fails_sometimes() {
    let (reg, _) = stubs(StubConfig {
        failure_rate: 0.0,
        failure_kind: StubFailure::Upstream5xx,
        ..StubConfig::default()
    });
    let p = reg.get("openai").unwrap();
    for _ in 0..200 {
        p.probe(&probe("m")).await.unwrap();
    }
    let (reg, handle) = stubs(StubConfig {
        failure_rate: 0.5,
        failure_kind: StubFailure::Upstream5xx,
        ..StubConfig::default()
    });
    let p = reg.get("openai").unwrap();
    let mut failures = 0;
    for _ in 0..400 {
        if p.probe(&probe("m")).await.is_err() {
            failures += 1;
        }
    }
    // P(outside [100, 300]) for Binomial(400, 0.5) is ~1e-23.
    assert!((100..=300).contains(&failures), "{failures}");
    assert_eq!(handle.probe_count(), 400);
}

#[tokio::test]
async fn stub_latency_and_jitter_are_applied() {
    let (reg, _) = stubs(StubConfig {
        latency: Duration::from_millis(40),
        jitter: Duration::from_millis(20),
        ..StubConfig::default()
    });
    let started = Instant::now();
    reg.get("openai")
        .unwrap()
        .complete(&req("m"))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(40));
}

#[tokio::test]
async fn stub_registry_serves_all_five_names_with_their_own_name() {
    let (reg, handle) = stubs(StubConfig::default());
    assert_eq!(
        reg.names(),
        vec!["anthropic", "azure-openai", "google", "openai", "unknown"]
    );
    for name in ["openai", "azure-openai", "anthropic", "google", "unknown"] {
        assert_eq!(reg.get(name).unwrap().name(), name);
    }
    assert_eq!(handle.name(), "unknown");
    assert_eq!(reg.get("  OpenAI ").unwrap().name(), "openai");
    assert!(reg.get("mistral").is_none());
}

#[tokio::test]
async fn stub_registry_select_prefers_explicit_provider() {
    let (reg, _) = stubs(StubConfig::default());
    let (name, p) = reg.select(Some("azure-openai"), "openai");
    assert_eq!(name, "azure-openai");
    assert_eq!(p.unwrap().name(), "azure-openai");
    let (name, p) = reg.select(Some("  "), "google");
    assert_eq!(name, "google");
    assert_eq!(p.unwrap().name(), "google");
    let (name, p) = reg.select(None, "mistral");
    assert_eq!(name, "mistral");
    assert!(p.is_none());
}

#[tokio::test]
async fn stub_for_provider_shares_counters() {
    let base = StubProvider::new(StubConfig::default());
    let openai = base.for_provider("openai");
    openai.probe(&probe("gpt-4o")).await.unwrap();
    assert_eq!(base.probe_count(), 1);
    assert_eq!(openai.probe_count(), 1);
    let fresh = StubProvider::new(StubConfig::default());
    assert_eq!(fresh.probe_count(), 0);
}

#[tokio::test]
async fn stub_is_usable_as_trait_object_across_tasks() {
    let (reg, handle) = stubs(StubConfig::default());
    let mut tasks = Vec::new();
    for i in 0..20 {
        let p: Arc<dyn ModelProvider> = reg.get("openai").unwrap();
        tasks.push(tokio::spawn(async move {
            p.probe(&probe(&format!("m{}", i % 2))).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(handle.probe_count(), 20);
}
