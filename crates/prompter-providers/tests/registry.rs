//! Live registry construction from (simulated) environment variables, and an
//! opt-in live smoke test.

use std::collections::HashMap;

use prompter_providers::{HttpConfig, ProbeRequest, ProviderError, ProviderRegistry};

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn registry_live_registers_only_configured_providers() {
    let reg = ProviderRegistry::live_from_lookup(
        HttpConfig::default(),
        lookup(&[
            ("OPENAI_API_KEY", "sk-live-secret-1"),
            ("GEMINI_API_KEY", "  "),
        ]),
    );
    assert_eq!(reg.names(), vec!["openai"]);
    assert_eq!(reg.get("openai").unwrap().name(), "openai");
    assert!(reg.get("google").is_none(), "blank key = unset");
    assert!(reg.get("unknown").is_none());
    assert_eq!(
        reg.require("anthropic").unwrap_err(),
        ProviderError::NotConfigured {
            provider: "anthropic".into()
        }
    );
}

#[test]
fn registry_live_all_providers_and_azure_needs_endpoint() {
    let all = ProviderRegistry::live_from_lookup(
        HttpConfig::default(),
        lookup(&[
            ("OPENAI_API_KEY", "sk-live-secret-1"),
            ("AZURE_OPENAI_API_KEY", "azure-secret-2"),
            ("AZURE_OPENAI_ENDPOINT", "https://my-res.openai.azure.com"),
            ("AZURE_OPENAI_API_VERSION", "2025-04-01-preview"),
            ("ANTHROPIC_API_KEY", "sk-ant-secret-3"),
            ("GEMINI_API_KEY", "AIza-secret-4"),
        ]),
    );
    assert_eq!(
        all.names(),
        vec!["anthropic", "azure-openai", "google", "openai"]
    );
    for (name, p) in all.names().iter().map(|n| (n, all.get(n).unwrap())) {
        assert_eq!(p.name(), name);
        let dbg = format!("{p:?}");
        for secret in [
            "sk-live-secret-1",
            "azure-secret-2",
            "sk-ant-secret-3",
            "AIza-secret-4",
        ] {
            assert!(!dbg.contains(secret), "{name}: {dbg}");
        }
    }
    assert!(format!("{:?}", all.get("azure-openai").unwrap()).contains("2025-04-01-preview"));
    let dbg = format!("{all:?}");
    assert!(!dbg.contains("secret"), "{dbg}");

    let no_endpoint = ProviderRegistry::live_from_lookup(
        HttpConfig::default(),
        lookup(&[("AZURE_OPENAI_API_KEY", "azure-secret-2")]),
    );
    assert!(no_endpoint.get("azure-openai").is_none());
}

/// Opt-in: `PROMPTER_LIVE_PROVIDER_TESTS=1` plus provider keys in the
/// environment probes each configured provider for real (needs network).
/// Models can be overridden with `PROMPTER_LIVE_<PROVIDER>_MODEL`
/// (`OPENAI`, `AZURE`, `ANTHROPIC`, `GEMINI`).
#[tokio::test]
async fn live_smoke_probe_configured_providers() {
    if std::env::var("PROMPTER_LIVE_PROVIDER_TESTS").as_deref() != Ok("1") {
        eprintln!(
            "skipping live_smoke_probe_configured_providers: set PROMPTER_LIVE_PROVIDER_TESTS=1 \
             (and provider API keys) to run it against the real APIs"
        );
        return;
    }
    let reg = ProviderRegistry::live_from_env(HttpConfig::default());
    if reg.names().is_empty() {
        eprintln!("skipping live smoke test: no provider API key is set");
        return;
    }
    let model = |var: &str, default: &str| std::env::var(var).unwrap_or_else(|_| default.into());
    let cases = [
        ("openai", model("PROMPTER_LIVE_OPENAI_MODEL", "gpt-4o-mini")),
        (
            "azure-openai",
            model("PROMPTER_LIVE_AZURE_MODEL", "gpt-4o-mini"),
        ),
        (
            "anthropic",
            model("PROMPTER_LIVE_ANTHROPIC_MODEL", "claude-haiku-4-5"),
        ),
        (
            "google",
            model("PROMPTER_LIVE_GEMINI_MODEL", "gemini-2.5-flash"),
        ),
    ];
    for (name, model_id) in cases {
        let Some(p) = reg.get(name) else {
            eprintln!("live: {name} not configured, skipped");
            continue;
        };
        let out = p
            .probe(&ProbeRequest {
                model_id: model_id.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("live probe {name}/{model_id} failed: {e}"));
        eprintln!(
            "live: {name}/{model_id} → model={:?} fingerprint={:?}",
            out.response_model, out.system_fingerprint
        );
        assert!(out.response_model.is_some() || out.system_fingerprint.is_some());
    }
}
