//! `prompter serve` settings: flags with `PROMPTER_*` environment twins.

use clap::{Args, ValueEnum};
use prompter_storage::redact_url;
use std::net::SocketAddr;

/// Which model clients the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderMode {
    /// Deterministic, no network (the default).
    Stub,
    /// Real provider APIs, keys from the environment.
    Live,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Stub failure kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StubFailureArg {
    /// The call times out.
    Timeout,
    /// HTTP 429.
    RateLimited,
    /// HTTP 5xx.
    Upstream,
}

/// Settings of the HTTP server.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "PROMPTER_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Database URL (`sqlite://…` or `postgres://…`); default: a SQLite file `prompter.db`.
    #[arg(long, env = "PROMPTER_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Redis URL for the cross-instance probe guard (optional).
    #[arg(long, env = "PROMPTER_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Model clients: the deterministic stub or the real providers.
    #[arg(long, env = "PROMPTER_PROVIDER", value_enum, default_value = "stub")]
    pub provider: ProviderMode,
    /// Stub latency per call, milliseconds.
    #[arg(long, env = "PROMPTER_STUB_LATENCY_MS", default_value_t = 0)]
    pub stub_latency_ms: u64,
    /// Stub latency jitter (uniform, added), milliseconds.
    #[arg(long, env = "PROMPTER_STUB_JITTER_MS", default_value_t = 0)]
    pub stub_jitter_ms: u64,
    /// Stub failure probability in [0, 1].
    #[arg(long, env = "PROMPTER_STUB_FAILURE_RATE", default_value_t = 0.0)]
    pub stub_failure_rate: f64,
    /// Stub failure kind.
    #[arg(
        long,
        env = "PROMPTER_STUB_FAILURE_KIND",
        value_enum,
        default_value = "upstream"
    )]
    pub stub_failure_kind: StubFailureArg,
    /// Stub build tag appended to every stub version key (simulates a new provider build).
    #[arg(long, env = "PROMPTER_STUB_BUILD")]
    pub stub_build: Option<String>,
    /// Hash algorithm; pinned in the database on first use, a mismatch refuses to start.
    #[arg(long, env = "PROMPTER_HASH_ALGORITHM", value_parser = ["blake3", "sha256"])]
    pub hash_algorithm: Option<String>,
    /// Validation of create bodies: `v7` (drop-in) or `strict`.
    #[arg(long, env = "PROMPTER_VALIDATION", default_value = "v7", value_parser = ["v7", "strict"])]
    pub validation: String,
    /// Probe window length in seconds (at most one probe per template/provider/model per window).
    #[arg(long, env = "PROMPTER_PROBE_TTL_SECS", default_value_t = 3600)]
    pub probe_ttl_secs: u64,
    /// Kill switch: never probe providers.
    #[arg(long, env = "PROMPTER_PROBE_DISABLED")]
    pub probe_disabled: bool,
    /// `service` label on every metric.
    #[arg(long, env = "PROMPTER_METRICS_SERVICE", default_value = "prompter")]
    pub metrics_service: String,
    /// `env` label on every metric.
    #[arg(long, env = "PROMPTER_METRICS_ENV", default_value = "dev")]
    pub metrics_env: String,
    /// Log format.
    #[arg(
        long,
        env = "PROMPTER_LOG_FORMAT",
        value_enum,
        default_value = "pretty"
    )]
    pub log_format: LogFormat,
    /// Log one line per request (method, route pattern, status, latency, request id, key prefix).
    #[arg(long, env = "PROMPTER_ACCESS_LOG")]
    pub access_log: bool,
    /// Largest accepted request body, bytes.
    #[arg(long, env = "PROMPTER_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Apply pending migrations at start-up (always done for SQLite; PostgreSQL refuses to start on pending migrations without it).
    #[arg(long, env = "PROMPTER_MIGRATE")]
    pub migrate: bool,
    /// Database pool size (default: 16; at most 4 on SQLite).
    #[arg(long, env = "PROMPTER_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<u32>,
    /// HTTP worker threads (default: number of cores).
    #[arg(long, env = "PROMPTER_WORKERS")]
    pub workers: Option<usize>,
    /// Drift webhook receiver; events are delivered from a durable outbox.
    #[arg(long, env = "PROMPTER_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// HMAC-SHA256 secret signing each webhook body (`X-Prompter-Signature`).
    #[arg(
        long,
        env = "PROMPTER_WEBHOOK_SECRET",
        hide_env_values = true,
        default_value = ""
    )]
    pub webhook_secret: String,
    /// How often the webhook outbox is polled, milliseconds.
    #[arg(long, env = "PROMPTER_WEBHOOK_POLL_MS", default_value_t = 500)]
    pub webhook_poll_ms: u64,
    /// Timeout of one webhook delivery, milliseconds.
    #[arg(long, env = "PROMPTER_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,
    /// How long an instance's claim on an outbox row holds, milliseconds;
    /// after it, another instance delivers the row (at least the delivery
    /// timeout plus one second is used).
    #[arg(long, env = "PROMPTER_WEBHOOK_LEASE_MS", default_value_t = 30_000)]
    pub webhook_lease_ms: u64,
    /// This instance's name in outbox claims and logs (default: host name
    /// plus a random suffix, new at every start).
    #[arg(long, env = "PROMPTER_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// How often the database's change generations are polled to drop
    /// caches (API keys, templates) changed by another process, milliseconds.
    #[arg(long, env = "PROMPTER_CLUSTER_POLL_MS", default_value_t = 250)]
    pub cluster_poll_ms: u64,
    /// Templates (and label/revision lookups) each instance keeps in memory
    /// for runs, ensure-version and fetch by label; dropped within
    /// `--cluster-poll-ms` of a delete, restore or label change made by any
    /// process. 0 turns the cache off.
    #[arg(long, env = "PROMPTER_TEMPLATE_CACHE_ENTRIES", default_value_t = 4096)]
    pub template_cache_entries: usize,
    /// `Cache-Control: private, max-age=N` of `GET /api/prompts/{name}`
    /// (clients revalidate with `If-None-Match` after that).
    #[arg(long, env = "PROMPTER_PROMPT_MAX_AGE_SECS", default_value_t = 5)]
    pub prompt_max_age_secs: u64,
    /// Labels that only an admin key may move or remove (comma-separated).
    #[arg(
        long,
        env = "PROMPTER_PROTECTED_LABELS",
        value_delimiter = ',',
        default_value = "production"
    )]
    pub protected_labels: Vec<String>,
    /// Price table (TOML shaped like the built-in `config/prices.toml`) that
    /// replaces the built-in one; review either before billing from it.
    #[arg(long, env = "PROMPTER_PRICE_TABLE")]
    pub price_table: Option<String>,
    /// Azure OpenAI deployment → underlying model for pricing
    /// (`deployment=model,…`), over the table's `[azure_deployments]`.
    #[arg(long, env = "PROMPTER_AZURE_DEPLOYMENT_MODEL", value_delimiter = ',')]
    pub azure_deployment_model: Vec<String>,
    /// Provider calls in flight per provider on this instance
    /// (`openai=64,anthropic=32,…`; unlisted providers are unlimited).
    #[arg(long, env = "PROMPTER_PROVIDER_MAX_INFLIGHT", value_delimiter = ',')]
    pub provider_max_inflight: Vec<String>,
    /// How long a call waits for a slot under its provider's cap before 503
    /// `PROVIDER_SATURATED`, milliseconds.
    #[arg(
        long,
        env = "PROMPTER_PROVIDER_QUEUE_TIMEOUT_MS",
        default_value_t = 5000
    )]
    pub provider_queue_timeout_ms: u64,
    /// Consecutive provider-fault failures (5xx, timeouts, overload) that open
    /// a provider/model circuit; 0 turns the breakers off.
    #[arg(long, env = "PROMPTER_PROVIDER_BREAKER_FAILURES", default_value_t = 5)]
    pub provider_breaker_failures: u32,
    /// How long an open circuit fails fast before one trial call, milliseconds.
    #[arg(
        long,
        env = "PROMPTER_PROVIDER_BREAKER_COOLDOWN_MS",
        default_value_t = 30_000
    )]
    pub provider_breaker_cooldown_ms: u64,
    /// Run batch items and schedule ticks on this instance (`false`: serve
    /// the API only; other instances do the work).
    #[arg(long, env = "PROMPTER_BATCH_WORKER", default_value_t = true, action = clap::ArgAction::Set)]
    pub batch_worker: bool,
    /// Batch items this instance runs at once.
    #[arg(long, env = "PROMPTER_BATCH_CONCURRENCY", default_value_t = 32)]
    pub batch_concurrency: usize,
    /// How long a claim on a batch item holds without a heartbeat,
    /// milliseconds; an instance that dies leaves its items to the others
    /// after it.
    #[arg(long, env = "PROMPTER_BATCH_LEASE_MS", default_value_t = 60_000)]
    pub batch_lease_ms: u64,
    /// How often an idle worker polls for due batch items, milliseconds.
    #[arg(long, env = "PROMPTER_BATCH_POLL_MS", default_value_t = 500)]
    pub batch_poll_ms: u64,
    /// Attempts of a batch item before a provider-side failure fails it.
    #[arg(long, env = "PROMPTER_BATCH_MAX_ATTEMPTS", default_value_t = 5)]
    pub batch_max_attempts: u32,
    /// First retry delay of a batch item, milliseconds (doubled per attempt).
    #[arg(long, env = "PROMPTER_BATCH_RETRY_BASE_MS", default_value_t = 2000)]
    pub batch_retry_base_ms: u64,
    /// Share of each `--provider-max-inflight` cap batch work may hold
    /// (0 to 1; at least one slot), so batches never starve interactive runs.
    #[arg(long, env = "PROMPTER_BATCH_CAP_SHARE", default_value_t = 0.5)]
    pub batch_cap_share: f64,
    /// Most items (countries × repeats) one batch may have.
    #[arg(long, env = "PROMPTER_BATCH_MAX_ITEMS", default_value_t = 10_000)]
    pub batch_max_items: usize,
    /// How often due schedules are polled, milliseconds.
    #[arg(long, env = "PROMPTER_SCHEDULE_POLL_MS", default_value_t = 1000)]
    pub schedule_poll_ms: u64,
    /// Serve the web console at `/ui/` (and redirect `/` to it); `--ui=false` turns it off.
    #[arg(long, env = "PROMPTER_UI", default_value_t = true, action = clap::ArgAction::Set,
        num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ui: bool,
    /// Seconds to let in-flight requests finish on SIGTERM/SIGINT.
    #[arg(long, env = "PROMPTER_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
    /// Authentication, rate limit, request timeout and body/field limits.
    #[command(flatten)]
    pub security: crate::security::SecurityArgs,
}

impl ServeArgs {
    /// Defaults as if no flag and no env were given (for tests and embedding).
    pub fn defaults() -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: ServeArgs,
        }
        Wrapper::parse_from(["prompter"]).args
    }

    /// The instance id in effect: `--instance-id`, or the host name plus
    /// eight random hex digits.
    pub fn instance_id(&self) -> String {
        if let Some(id) = self.instance_id.as_deref().filter(|s| !s.trim().is_empty()) {
            return id.trim().to_owned();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "prompter".to_owned());
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}-{}", &suffix[..8])
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| prompter_storage::DEFAULT_DATABASE_URL.to_owned())
    }

    /// A one-line summary for the start-up log, with secrets redacted.
    pub fn redacted_summary(&self) -> String {
        format!(
            "bind={} database={} redis={} provider={:?} hash_algorithm={} validation={} probe_ttl_secs={} probe_disabled={} stub_build={} webhook={}",
            self.bind,
            redact_url(&self.database_url()),
            self.redis_url.as_deref().map(redact_url).unwrap_or_else(|| "none".into()),
            self.provider,
            self.hash_algorithm.as_deref().unwrap_or("(pinned or blake3)"),
            self.validation,
            self.probe_ttl_secs,
            self.probe_disabled,
            self.stub_build.as_deref().unwrap_or("none"),
            self.webhook_url.as_deref().map(redact_url).unwrap_or_else(|| "none".into()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_up_summary_hides_every_url_secret() {
        let mut a = ServeArgs::defaults();
        a.database_url = Some("postgres://u:p@ss@db.internal/prompter".into());
        a.redis_url = Some("redis://:r3d@is@cache:6379".into());
        a.webhook_url = Some("https://bot:w@bhook@hooks.example/in?token=t0k".into());
        let s = a.redacted_summary();
        for secret in ["p@ss", "r3d@is", "w@bhook", "t0k"] {
            assert!(!s.contains(secret), "{secret} leaks: {s}");
        }
        assert!(
            s.contains("database=postgres://u:***@db.internal/prompter"),
            "{s}"
        );
        assert!(
            s.contains("webhook=https://bot:***@hooks.example/in?token=***"),
            "{s}"
        );
    }

    #[test]
    fn defaults_match_the_readme() {
        let d = ServeArgs::defaults();
        assert_eq!(d.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(d.provider, ProviderMode::Stub);
        assert_eq!(d.probe_ttl_secs, 3600);
        assert_eq!(d.max_body_bytes, 1024 * 1024);
        assert!(d.ui, "the console is on by default");
    }

    #[test]
    fn ui_flag_takes_an_optional_value() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: ServeArgs,
        }
        let ui = |argv: &[&str]| Wrapper::try_parse_from(argv).map(|w| w.args.ui);
        assert!(ui(&["prompter", "--ui"]).unwrap());
        assert!(!ui(&["prompter", "--ui=false"]).unwrap());
        assert!(ui(&["prompter", "--ui=true"]).unwrap());
        let hosts = Wrapper::try_parse_from(["prompter", "--allowed-hosts", "a.example,b.example"])
            .unwrap()
            .args
            .security
            .allowed_hosts;
        assert_eq!(hosts, ["a.example", "b.example"]);
    }
}
