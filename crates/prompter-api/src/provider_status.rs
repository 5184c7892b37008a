//! Which model providers this server can call: logged once at start-up,
//! listed by `/readyz?detail=1`, and named (with the environment variables
//! to set) in `PROVIDER_NOT_CONFIGURED` answers.

use prompter_providers::{live_provider, ProviderRegistry, LIVE_PROVIDERS};
use serde::Serialize;
use utoipa::ToSchema;

/// Whether a provider has a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderState {
    /// A real client is registered (its variables are set).
    Configured,
    /// No client: calls answer 503 `PROVIDER_NOT_CONFIGURED`.
    Missing,
    /// The deterministic stub answers (`--provider stub`).
    Stub,
}

/// One live provider as this server sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProviderStatus {
    /// Provider name (`openai`, `azure-openai`, `anthropic`, `google`).
    pub name: &'static str,
    /// Whether it has a client.
    pub state: ProviderState,
    /// The environment variables its live client needs.
    pub env: Vec<&'static str>,
    /// Those of them that are unset or blank (names only, never values).
    pub missing_env: Vec<&'static str>,
}

/// The status of every live provider: `stub` when the stub serves them,
/// else configured or missing by `registry`, with the unset variables read
/// through `lookup` (the process environment in production).
pub fn statuses(
    registry: &ProviderRegistry,
    stub: bool,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<ProviderStatus> {
    LIVE_PROVIDERS
        .iter()
        .map(|p| {
            let state = if stub {
                ProviderState::Stub
            } else if registry.get(p.name).is_some() {
                ProviderState::Configured
            } else {
                ProviderState::Missing
            };
            let missing_env = if state == ProviderState::Stub {
                Vec::new()
            } else {
                p.required_env
                    .iter()
                    .copied()
                    .filter(|k| lookup(k).is_none_or(|v| v.trim().is_empty()))
                    .collect()
            };
            ProviderStatus {
                name: p.name,
                state,
                env: p.required_env.to_vec(),
                missing_env,
            }
        })
        .collect()
}

/// One start-up line per provider (names of variables only, never values).
pub fn log(statuses: &[ProviderStatus]) {
    if statuses.iter().all(|s| s.state == ProviderState::Stub) {
        tracing::info!(
            "providers: the deterministic stub answers for every provider (--provider stub)"
        );
        return;
    }
    for s in statuses {
        let env = s.env.join(", ");
        match s.state {
            ProviderState::Configured => {
                tracing::info!(provider = s.name, env = %env, "provider configured");
            }
            _ => {
                let missing = s.missing_env.join(", ");
                tracing::warn!(
                    provider = s.name,
                    env = %env,
                    missing = %missing,
                    "provider not configured: its calls answer 503 PROVIDER_NOT_CONFIGURED; set {} to enable it",
                    if missing.is_empty() { &env } else { &missing }
                );
            }
        }
    }
}

/// What a `PROVIDER_NOT_CONFIGURED` answer tells the caller: the message
/// and the variables to set (none for a provider with no live client).
pub fn not_configured(provider: &str) -> (String, Vec<&'static str>) {
    match live_provider(provider) {
        Some(p) => (
            format!(
                "no client is configured for provider {}: set {} in the server's environment \
                 and restart it with --provider live",
                p.name,
                p.required_env.join(" and ")
            ),
            p.required_env.to_vec(),
        ),
        None => {
            let names: Vec<&str> = LIVE_PROVIDERS.iter().map(|p| p.name).collect();
            (
                format!(
                    "no client is configured for provider {provider}: there is no live client \
                     for it; set the template's `provider` to one of {}",
                    names.join(", ")
                ),
                Vec::new(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prompter_providers::HttpConfig;

    #[test]
    fn live_statuses_name_the_missing_variables() {
        let env = |k: &str| {
            matches!(k, "OPENAI_API_KEY" | "AZURE_OPENAI_API_KEY").then(|| "secret".to_owned())
        };
        let registry = ProviderRegistry::live_from_lookup(HttpConfig::default(), env);
        let s = statuses(&registry, false, env);
        assert_eq!(s[0].name, "openai");
        assert_eq!(s[0].state, ProviderState::Configured);
        assert!(s[0].missing_env.is_empty());
        assert_eq!(s[1].name, "azure-openai");
        assert_eq!(s[1].state, ProviderState::Missing);
        assert_eq!(s[1].missing_env, vec!["AZURE_OPENAI_ENDPOINT"]);
        assert_eq!(s[3].missing_env, vec!["GEMINI_API_KEY"]);
        let (stub_registry, _) = ProviderRegistry::stub(Default::default());
        assert!(statuses(&stub_registry, true, env)
            .iter()
            .all(|s| s.state == ProviderState::Stub && s.missing_env.is_empty()));
    }

    #[test]
    fn not_configured_names_the_variables() {
        let (msg, env) = not_configured("azure-openai");
        assert!(
            msg.contains("AZURE_OPENAI_API_KEY and AZURE_OPENAI_ENDPOINT"),
            "{msg}"
        );
        assert_eq!(env.len(), 2);
        let (msg, env) = not_configured("unknown");
        assert!(
            msg.contains("openai, azure-openai, anthropic, google"),
            "{msg}"
        );
        assert!(env.is_empty());
    }
}
