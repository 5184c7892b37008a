//! Prompter's use cases, free of HTTP: create and check-duplicate templates,
//! ensure the provider version behind a template, run a prompt and store its
//! full request and response, and read history.
//!
//! [`Prompter`] is built once per process (pools, provider registry and the
//! probe guard live inside it) and cloned cheaply into every request handler.
//! All storage goes through [`prompter_storage::Store`], whose queries are
//! tenant-scoped by [`Scope`]; all model calls go through the
//! [`prompter_providers::ModelProvider`] trait objects of the registry.

pub mod batch_worker;
pub mod batches;
pub mod breaker;
pub mod budgets;
pub mod caps;
pub mod cost_counter;
pub mod diff;
pub mod error;
pub mod guard;
mod history;
pub mod metrics_catalog;
pub mod pricing;
pub mod prompts;
mod runs;
pub mod schedules;
pub mod telemetry;
pub mod template_cache;
mod templates;
mod usage;
mod versions;
pub mod webhook;

pub use batches::{BatchRequest, BatchTarget, BatchView};
pub use error::{ServiceError, ServiceResult};
pub use guard::{EnsureOutcome, GuardDecision, ProbeGuard, ProbeWindow, RedisGuard};
pub use pricing::PriceTable;
pub use prompter_storage::Scope;
pub use prompts::{LabelMoveRequest, LabelMoved, ResolvedPrompt, Selector};
pub use runs::{IdempotencyKey, RunOutcome, RunRequest, IDEMPOTENCY_TTL};
pub use versions::EnsureRequest;

use prompter_domain::{HashAlgorithm, Limits, ValidationMode};
use prompter_providers::ProviderRegistry;
use prompter_storage::Store;
use std::sync::Arc;
use std::time::Duration;

/// Service settings (the API binary fills them from flags and env).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Hash algorithm pinned for this deployment.
    pub hash_algorithm: HashAlgorithm,
    /// `v7` (drop-in) or `strict` validation of create bodies.
    pub validation: ValidationMode,
    /// Parser limits applied to every body.
    pub limits: Limits,
    /// Probe window length (default one hour, V7's bucket).
    pub probe_ttl: Duration,
    /// Kill switch: never probe; answer ensure-version from the latest known version.
    pub probe_disabled: bool,
    /// How long a caller waits for another caller's in-flight probe.
    pub probe_wait_timeout: Duration,
    /// Whether drift events are queued for webhook delivery.
    pub webhook_enabled: bool,
    /// List prices that cost each run (default: the shipped `config/prices.toml`).
    pub prices: Arc<pricing::PriceTable>,
    /// Calls in flight per provider (absent: unlimited).
    pub provider_max_inflight: std::collections::HashMap<String, usize>,
    /// How long a call waits for a slot under its provider's cap.
    pub provider_queue_timeout: Duration,
    /// Circuit breakers per (provider, model).
    pub breaker: breaker::BreakerConfig,
    /// Share of each provider cap that batch work may hold (default half).
    pub batch_cap_share: f64,
    /// Most items one batch may have.
    pub batch_max_items: usize,
    /// Bound of the template cache (templates, and label/revision lookups;
    /// 0 turns it off; see [`template_cache`]).
    pub template_cache_entries: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            hash_algorithm: HashAlgorithm::Blake3,
            validation: ValidationMode::V7,
            limits: Limits::default(),
            probe_ttl: Duration::from_secs(3600),
            probe_disabled: false,
            probe_wait_timeout: Duration::from_secs(30),
            webhook_enabled: false,
            prices: Arc::new(pricing::PriceTable::builtin()),
            provider_max_inflight: Default::default(),
            provider_queue_timeout: Duration::from_secs(5),
            breaker: breaker::BreakerConfig::default(),
            batch_cap_share: 0.5,
            batch_max_items: batches::DEFAULT_MAX_ITEMS,
            template_cache_entries: template_cache::DEFAULT_ENTRIES,
        }
    }
}

/// An admitted provider call (circuit ticket and cap slot).
#[derive(Debug)]
pub(crate) struct ProviderCall {
    ticket: breaker::Ticket,
    _permit: caps::CapPermit,
}

impl ProviderCall {
    /// Records the outcome with the breaker and frees the slot.
    pub(crate) fn finish<T>(self, result: &Result<T, prompter_providers::ProviderError>) {
        self.ticket.finish(result);
    }
}

/// Who a provider call is for: a caller waiting on it, or batch work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// A request (waits at most the queue timeout).
    Interactive,
    /// A batch item (the batch share of the cap, no timeout).
    Batch,
}

/// The use cases, with everything they need. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Prompter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    providers: ProviderRegistry,
    guard: ProbeGuard,
    window: ProbeWindow,
    cfg: ServiceConfig,
    /// Per-provider concurrency caps.
    caps: caps::ProviderCaps,
    /// The budget table, re-read at most once a second.
    budgets: budgets::BudgetCache,
    /// Per-(provider, model) circuit breakers.
    breakers: Arc<breaker::Breakers>,
    /// Version rows this process wrote recently (see `versions::RecentVersions`).
    recent_versions: versions::RecentVersions,
    /// Wakes this instance's batch worker when a batch is created here.
    batch_wake: tokio::sync::Notify,
    /// Templates and revision lookups (serving once the host polls the
    /// `prompts` generation into it).
    templates: template_cache::TemplateCache,
}

impl Prompter {
    /// Wires the use cases. `redis` enables the cross-instance probe guard.
    pub fn new(
        store: Store,
        providers: ProviderRegistry,
        redis: Option<RedisGuard>,
        cfg: ServiceConfig,
    ) -> Self {
        let guard = ProbeGuard::new(redis, cfg.probe_wait_timeout);
        let window = ProbeWindow::new(cfg.probe_ttl);
        Prompter {
            inner: Arc::new(Inner {
                caps: caps::ProviderCaps::with_batch_share(
                    &cfg.provider_max_inflight,
                    cfg.provider_queue_timeout,
                    cfg.batch_cap_share,
                ),
                batch_wake: Default::default(),
                templates: template_cache::TemplateCache::new(cfg.template_cache_entries),
                breakers: Arc::new(breaker::Breakers::new(cfg.breaker)),
                budgets: Default::default(),
                store,
                providers,
                guard,
                window,
                cfg,
                recent_versions: Default::default(),
            }),
        }
    }

    /// The store (for health checks and history reads).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The template cache; the host reports each poll of the `prompts`
    /// generation to it ([`template_cache::TemplateCache::observe`]).
    pub fn template_cache(&self) -> &template_cache::TemplateCache {
        &self.inner.templates
    }

    /// The settings.
    pub fn config(&self) -> &ServiceConfig {
        &self.inner.cfg
    }

    /// The circuits of this instance (for `/readyz?detail=1`).
    pub fn circuits(&self) -> Vec<breaker::CircuitView> {
        self.inner.breakers.snapshot()
    }

    /// Admits one provider call: the circuit first (fail fast), then a slot
    /// under the provider's cap. Report the outcome with [`ProviderCall::finish`].
    pub(crate) async fn admit_call(
        &self,
        provider: &str,
        model: &str,
    ) -> ServiceResult<ProviderCall> {
        self.admit_call_in(provider, model, Lane::Interactive).await
    }

    /// [`Self::admit_call`] in a lane: batch calls take the batch share of the cap.
    pub(crate) async fn admit_call_in(
        &self,
        provider: &str,
        model: &str,
        lane: Lane,
    ) -> ServiceResult<ProviderCall> {
        let ticket = self.inner.breakers.admit(provider, model)?;
        let permit = match lane {
            Lane::Interactive => self.inner.caps.acquire(provider).await?,
            Lane::Batch => self.inner.caps.acquire_batch(provider).await?,
        };
        Ok(ProviderCall {
            ticket,
            _permit: permit,
        })
    }

    /// The Redis side of the probe guard, if configured.
    pub fn redis(&self) -> Option<&RedisGuard> {
        self.inner.guard.redis()
    }
}
