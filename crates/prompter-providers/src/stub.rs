//! The deterministic development stub (no network), contract §2.
//!
//! `hash8(s)` = first 8 hex chars of SHA-256(s). `TAG` below is the optional
//! build tag ([`StubConfig::build_tag`]); when set, `-TAG` is appended to
//! every version-key-bearing value the stub emits.
//!
//! | provider | `complete` → `raw_response["response_metadata"]` | `probe` → `raw_response["response_metadata"]` |
//! |---|---|---|
//! | `openai` | `{"system_fingerprint": "fp_stub_<hash8("openai:<model>")>[-TAG]"}` | same |
//! | `google` | `{"modelVersion": "<model>-stub-001[-TAG]"}` | same |
//! | `anthropic` | `{"model": "<model>[-TAG]"}` | same |
//! | `azure-openai` | *no `response_metadata` key at all* (key must come from a probe) | `{"system_fingerprint": "fp_stub_azure_<hash8("azure:<model>")>[-TAG]"}` |
//! | `unknown` (and any other name) | `{}` | `{}` (the contract rule then yields `unknown`, never tagged) |
//!
//! `complete` returns `{"content": <user prompt>, "response_metadata": …}`;
//! `probe` returns `{"response_metadata": …}`. `response_model` is the
//! `modelVersion`/`model` value and `system_fingerprint` the fingerprint, when
//! present. Usage is a word count: input = words of system + user prompt,
//! output = words of the echoed content; no cache details (`None`).
//!
//! Knobs: every call first sleeps `latency` + uniform random `[0, jitter]`,
//! then fails with probability `failure_rate` with the configured
//! [`StubFailure`]: `Timeout` → [`ProviderError::Timeout`], `RateLimited` →
//! `RateLimited { retry_after: 1s }`, `Upstream5xx` → `Upstream { status: 503 }`.
//!
//! The failure rate can be changed at run time ([`StubProvider::set_failure_rate`]);
//! [`StubProvider::max_in_flight`] is the most calls ever in flight at once.
//!
//! Counters count *served* calls — every call that reached the stub,
//! including the ones that then failed by the failure knob — and are shared
//! by all [`StubProvider`]s made from one another with
//! [`StubProvider::for_provider`] (so the registry's five stubs share them).

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ProviderError;
use crate::types::{
    Completion, CompletionRequest, ModelProvider, ProbeOutcome, ProbeRequest, Usage,
};

/// First 8 hex chars of SHA-256(`s`).
pub fn hash8(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    hex::encode(&digest[..4])
}

/// Which failure the stub simulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StubFailure {
    /// [`ProviderError::Timeout`], after the latency.
    #[default]
    Timeout,
    /// [`ProviderError::RateLimited`] with `retry_after = 1s`.
    RateLimited,
    /// [`ProviderError::Upstream`] with status 503.
    Upstream5xx,
}

impl FromStr for StubFailure {
    type Err = String;

    /// Accepts `timeout`; `rate_limited`, `rate-limited`, `429`;
    /// `upstream`, `5xx`, `503`, `upstream_5xx` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "timeout" => Ok(Self::Timeout),
            "rate_limited" | "rate-limited" | "ratelimited" | "429" => Ok(Self::RateLimited),
            "upstream" | "5xx" | "503" | "upstream_5xx" | "upstream5xx" => Ok(Self::Upstream5xx),
            other => Err(format!(
                "unknown stub failure kind '{other}' (expected timeout, 429 or 5xx)"
            )),
        }
    }
}

/// Stub knobs. Default: zero latency and jitter, no failures, no build tag.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StubConfig {
    /// Fixed delay of every call.
    pub latency: Duration,
    /// Extra uniform random delay in `[0, jitter]`.
    pub jitter: Duration,
    /// Probability in `[0, 1]` that a call fails (clamped; NaN = 0).
    pub failure_rate: f64,
    /// The failure simulated when a call fails.
    pub failure_kind: StubFailure,
    /// `--stub-build TAG` / `PROMPTER_STUB_BUILD`: appended as `-TAG` to every
    /// stub version key (empty or blank = none).
    pub build_tag: Option<String>,
}

#[derive(Debug)]
struct Shared {
    cfg: StubConfig,
    probes: AtomicU64,
    completions: AtomicU64,
    /// The failure rate in effect (f64 bits; [`StubProvider::set_failure_rate`]).
    failure_rate: AtomicU64,
    /// Calls inside `simulate` now, and the most ever at once.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

/// Counts a call in flight until dropped.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The deterministic stub provider; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct StubProvider {
    provider: String,
    shared: Arc<Shared>,
}

impl StubProvider {
    /// A stub serving the `unknown` provider, with fresh counters. Use
    /// [`Self::for_provider`] for the other names.
    pub fn new(cfg: StubConfig) -> Self {
        let mut cfg = cfg;
        cfg.build_tag = cfg
            .build_tag
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        cfg.failure_rate = if cfg.failure_rate.is_nan() {
            0.0
        } else {
            cfg.failure_rate.clamp(0.0, 1.0)
        };
        Self {
            provider: "unknown".to_string(),
            shared: Arc::new(Shared {
                failure_rate: AtomicU64::new(cfg.failure_rate.to_bits()),
                cfg,
                probes: AtomicU64::new(0),
                completions: AtomicU64::new(0),
                in_flight: AtomicU64::new(0),
                max_in_flight: AtomicU64::new(0),
            }),
        }
    }

    /// A stub serving `provider` that shares this one's config and counters.
    pub fn for_provider(&self, provider: &str) -> Self {
        Self {
            provider: provider.trim().to_ascii_lowercase(),
            shared: Arc::clone(&self.shared),
        }
    }

    /// The (normalised) configuration.
    pub fn config(&self) -> &StubConfig {
        &self.shared.cfg
    }

    /// Probes served so far by this stub and all its siblings (failed ones included).
    pub fn probe_count(&self) -> u64 {
        self.shared.probes.load(Ordering::SeqCst)
    }

    /// Completions served so far by this stub and all its siblings (failed ones included).
    pub fn completion_count(&self) -> u64 {
        self.shared.completions.load(Ordering::SeqCst)
    }

    /// The most calls (completions and probes) that were ever in flight at once.
    pub fn max_in_flight(&self) -> u64 {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Changes the failure rate of this stub and its siblings (clamped to `[0, 1]`).
    pub fn set_failure_rate(&self, rate: f64) {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self.shared
            .failure_rate
            .store(rate.to_bits(), Ordering::SeqCst);
    }

    fn tagged(&self, value: String) -> Value {
        match &self.shared.cfg.build_tag {
            Some(tag) => Value::String(format!("{value}-{tag}")),
            None => Value::String(value),
        }
    }

    /// Metadata per the table in the module docs; `None` = no metadata key.
    fn metadata(&self, model: &str, probe: bool) -> Option<Map<String, Value>> {
        let mut m = Map::new();
        match self.provider.as_str() {
            "openai" => {
                let fp = format!("fp_stub_{}", hash8(&format!("openai:{model}")));
                m.insert("system_fingerprint".into(), self.tagged(fp));
            }
            "google" => {
                m.insert(
                    "modelVersion".into(),
                    self.tagged(format!("{model}-stub-001")),
                );
            }
            "anthropic" => {
                m.insert("model".into(), self.tagged(model.to_string()));
            }
            "azure-openai" if !probe => return None,
            "azure-openai" => {
                let fp = format!("fp_stub_azure_{}", hash8(&format!("azure:{model}")));
                m.insert("system_fingerprint".into(), self.tagged(fp));
            }
            _ => {}
        }
        Some(m)
    }

    /// Latency, jitter and the failure knob.
    async fn simulate(&self) -> Result<(), ProviderError> {
        let _in_flight = InFlight::enter(&self.shared);
        let cfg = &self.shared.cfg;
        let delay = cfg.latency + cfg.jitter.mul_f64(rand::random::<f64>());
        let rate = f64::from_bits(self.shared.failure_rate.load(Ordering::SeqCst));
        let fail = rate > 0.0 && rand::random::<f64>() < rate;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if !fail {
            return Ok(());
        }
        Err(match cfg.failure_kind {
            StubFailure::Timeout => ProviderError::Timeout,
            StubFailure::RateLimited => ProviderError::RateLimited {
                retry_after: Some(Duration::from_secs(1)),
                message: "stub: simulated rate limit".into(),
            },
            StubFailure::Upstream5xx => ProviderError::Upstream {
                status: 503,
                message: "stub: simulated upstream failure".into(),
            },
        })
    }
}

fn key_fields(meta: Option<&Map<String, Value>>) -> (Option<String>, Option<String>) {
    let get = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    (
        get("modelVersion").or_else(|| get("model")),
        get("system_fingerprint"),
    )
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

#[async_trait::async_trait]
impl ModelProvider for StubProvider {
    fn name(&self) -> &str {
        &self.provider
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        self.shared.completions.fetch_add(1, Ordering::SeqCst);
        self.simulate().await?;
        let meta = self.metadata(&req.model_id, false);
        let (response_model, system_fingerprint) = key_fields(meta.as_ref());
        let mut raw = Map::new();
        raw.insert("content".into(), json!(req.user_prompt));
        if let Some(meta) = meta {
            raw.insert("response_metadata".into(), Value::Object(meta));
        }
        Ok(Completion {
            content: req.user_prompt.clone(),
            usage: Some(Usage::plain(
                words(&req.system_instructions) + words(&req.user_prompt),
                words(&req.user_prompt),
            )),
            raw_response: Value::Object(raw),
            response_model,
            response_id: None,
            system_fingerprint,
        })
    }

    async fn probe(&self, req: &ProbeRequest) -> Result<ProbeOutcome, ProviderError> {
        self.shared.probes.fetch_add(1, Ordering::SeqCst);
        self.simulate().await?;
        let meta = self.metadata(&req.model_id, true).unwrap_or_default();
        let (response_model, system_fingerprint) = key_fields(Some(&meta));
        Ok(ProbeOutcome {
            raw_response: json!({ "response_metadata": meta }),
            response_model,
            system_fingerprint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash8_is_sha256_prefix() {
        // sha256("abc") = ba7816bf8f01cfea…
        assert_eq!(hash8("abc"), "ba7816bf");
        assert_eq!(hash8("openai:gpt-4o").len(), 8);
    }

    #[test]
    fn failure_kind_parsing() {
        assert_eq!("timeout".parse(), Ok(StubFailure::Timeout));
        assert_eq!("429".parse(), Ok(StubFailure::RateLimited));
        assert_eq!("5XX".parse(), Ok(StubFailure::Upstream5xx));
        assert!("boom".parse::<StubFailure>().is_err());
    }

    #[test]
    fn config_is_normalised() {
        let s = StubProvider::new(StubConfig {
            failure_rate: f64::NAN,
            build_tag: Some("  ".into()),
            ..StubConfig::default()
        });
        assert_eq!(s.config().failure_rate, 0.0);
        assert_eq!(s.config().build_tag, None);
        let s = StubProvider::new(StubConfig {
            failure_rate: 7.0,
            ..StubConfig::default()
        });
        assert_eq!(s.config().failure_rate, 1.0);
    }
}
