//! Provider lookup by name.
//!
//! Which name to ask for is the caller's business (contract §2: the
//! template's explicit `provider` wins over `infer_provider(model_id)`); the
//! registry only maps a name to a client. Names are matched after trimming
//! and ASCII-lowercasing.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::anthropic::AnthropicClient;
use crate::azure::AzureOpenAiClient;
use crate::error::ProviderError;
use crate::gemini::GeminiClient;
use crate::openai::OpenAiClient;
use crate::retry::HttpConfig;
use crate::stub::{StubConfig, StubProvider};
use crate::types::{ModelProvider, PROVIDER_NAMES};

/// Environment variables read by [`ProviderRegistry::live_from_env`].
pub mod env {
    pub const OPENAI_API_KEY: &str = "OPENAI_API_KEY";
    pub const OPENAI_BASE_URL: &str = "OPENAI_BASE_URL";
    pub const AZURE_OPENAI_API_KEY: &str = "AZURE_OPENAI_API_KEY";
    pub const AZURE_OPENAI_ENDPOINT: &str = "AZURE_OPENAI_ENDPOINT";
    pub const AZURE_OPENAI_API_VERSION: &str = "AZURE_OPENAI_API_VERSION";
    pub const ANTHROPIC_API_KEY: &str = "ANTHROPIC_API_KEY";
    pub const ANTHROPIC_BASE_URL: &str = "ANTHROPIC_BASE_URL";
    pub const GEMINI_API_KEY: &str = "GEMINI_API_KEY";
    pub const GEMINI_BASE_URL: &str = "GEMINI_BASE_URL";
}

/// A live provider: its registry name and the environment variables it
/// needs (all of them, non-blank) to be registered by
/// [`ProviderRegistry::live_from_env`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveProvider {
    /// Registry name (`openai`, `azure-openai`, `anthropic`, `google`).
    pub name: &'static str,
    /// Variables that must be set.
    pub required_env: &'static [&'static str],
}

/// Every live provider, in the order start-up logs them.
pub const LIVE_PROVIDERS: [LiveProvider; 4] = [
    LiveProvider {
        name: "openai",
        required_env: &[env::OPENAI_API_KEY],
    },
    LiveProvider {
        name: "azure-openai",
        required_env: &[env::AZURE_OPENAI_API_KEY, env::AZURE_OPENAI_ENDPOINT],
    },
    LiveProvider {
        name: "anthropic",
        required_env: &[env::ANTHROPIC_API_KEY],
    },
    LiveProvider {
        name: "google",
        required_env: &[env::GEMINI_API_KEY],
    },
];

/// The live provider named `name` (after trimming and lower-casing), if any.
pub fn live_provider(name: &str) -> Option<&'static LiveProvider> {
    let name = normalise(name);
    LIVE_PROVIDERS.iter().find(|p| p.name == name)
}

/// Provider name → client.
#[derive(Debug, Clone, Default)]
pub struct ProviderRegistry {
    providers: BTreeMap<String, Arc<dyn ModelProvider>>,
}

fn normalise(name: &str) -> String {
    name.trim().to_ascii_lowercase()
}

impl ProviderRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) the client for `name`.
    pub fn insert(&mut self, name: &str, p: Arc<dyn ModelProvider>) {
        self.providers.insert(normalise(name), p);
    }

    /// The client for `name`, if one is registered.
    pub fn get(&self, name: &str) -> Option<Arc<dyn ModelProvider>> {
        self.providers.get(&normalise(name)).cloned()
    }

    /// Like [`Self::get`], but a missing provider is
    /// [`ProviderError::NotConfigured`].
    pub fn require(&self, name: &str) -> Result<Arc<dyn ModelProvider>, ProviderError> {
        self.get(name).ok_or_else(|| ProviderError::NotConfigured {
            provider: normalise(name),
        })
    }

    /// Picks the client for a template: its explicit `provider` (when set
    /// and not blank) wins over the provider inferred from its model id.
    /// Returns the chosen (normalised) name with the client, if registered.
    pub fn select(
        &self,
        explicit: Option<&str>,
        inferred: &str,
    ) -> (String, Option<Arc<dyn ModelProvider>>) {
        let name = explicit
            .map(normalise)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| normalise(inferred));
        let client = self.providers.get(&name).cloned();
        (name, client)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.providers.keys().cloned().collect()
    }

    /// One stub per provider name (`openai`, `azure-openai`, `anthropic`,
    /// `google`, `unknown`), all sharing `cfg` and counters. The returned
    /// handle is the `unknown` stub; its counters count calls to all five.
    pub fn stub(cfg: StubConfig) -> (Self, Arc<StubProvider>) {
        let handle = Arc::new(StubProvider::new(cfg));
        let mut reg = Self::new();
        for name in PROVIDER_NAMES {
            if name == handle.name() {
                reg.insert(name, handle.clone());
            } else {
                reg.insert(name, Arc::new(handle.for_provider(name)));
            }
        }
        (reg, handle)
    }

    /// Real clients for every provider whose key is set in the process
    /// environment (see [`mod@env`]); see [`Self::live_from_lookup`].
    pub fn live_from_env(http: HttpConfig) -> Self {
        Self::live_from_lookup(http, |k| std::env::var(k).ok())
    }

    /// Real clients built from `lookup(VAR)` (blank values count as unset):
    ///
    /// - `openai`: `OPENAI_API_KEY` [+ `OPENAI_BASE_URL`, default `https://api.openai.com/v1`]
    /// - `azure-openai`: `AZURE_OPENAI_API_KEY` + `AZURE_OPENAI_ENDPOINT`
    ///   [+ `AZURE_OPENAI_API_VERSION`, default `2024-10-21`]; deployment = `model_id`
    /// - `anthropic`: `ANTHROPIC_API_KEY` [+ `ANTHROPIC_BASE_URL`, default `https://api.anthropic.com`]
    /// - `google`: `GEMINI_API_KEY` [+ `GEMINI_BASE_URL`, default `https://generativelanguage.googleapis.com`]
    ///
    /// A provider without its key is absent (`get` → `None`); `unknown` is
    /// never registered.
    pub fn live_from_lookup(http: HttpConfig, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let url = |k: &str| var(k).unwrap_or_default();
        let mut reg = Self::new();
        if let Some(key) = var(env::OPENAI_API_KEY) {
            let c = OpenAiClient::new(key, url(env::OPENAI_BASE_URL), http.clone());
            reg.insert("openai", Arc::new(c));
        }
        match (var(env::AZURE_OPENAI_API_KEY), var(env::AZURE_OPENAI_ENDPOINT)) {
            (Some(key), Some(endpoint)) => {
                let c = AzureOpenAiClient::new(key, endpoint, http.clone())
                    .with_api_version(url(env::AZURE_OPENAI_API_VERSION));
                reg.insert("azure-openai", Arc::new(c));
            }
            (Some(_), None) => tracing::warn!(
                "AZURE_OPENAI_API_KEY is set but AZURE_OPENAI_ENDPOINT is not; azure-openai disabled"
            ),
            _ => {}
        }
        if let Some(key) = var(env::ANTHROPIC_API_KEY) {
            let c = AnthropicClient::new(key, url(env::ANTHROPIC_BASE_URL), http.clone());
            reg.insert("anthropic", Arc::new(c));
        }
        if let Some(key) = var(env::GEMINI_API_KEY) {
            let c = GeminiClient::new(key, url(env::GEMINI_BASE_URL), http);
            reg.insert("google", Arc::new(c));
        }
        reg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_live_provider_is_registered_exactly_when_its_variables_are_set() {
        for p in LIVE_PROVIDERS {
            let set = |k: &str| p.required_env.contains(&k).then(|| "x".to_owned());
            let reg = ProviderRegistry::live_from_lookup(HttpConfig::default(), set);
            assert_eq!(reg.names(), vec![p.name.to_owned()], "{}", p.name);
            // Any one variable missing (or blank) leaves it out.
            for missing in p.required_env {
                let partial = |k: &str| {
                    (p.required_env.contains(&k) && k != *missing).then(|| "x".to_owned())
                };
                let reg = ProviderRegistry::live_from_lookup(HttpConfig::default(), partial);
                assert!(reg.get(p.name).is_none(), "{} without {missing}", p.name);
            }
        }
        assert_eq!(
            live_provider(" Azure-OpenAI ").map(|p| p.required_env),
            Some(&[env::AZURE_OPENAI_API_KEY, env::AZURE_OPENAI_ENDPOINT][..])
        );
        assert!(live_provider("unknown").is_none());
    }
}
