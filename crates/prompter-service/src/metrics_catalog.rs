//! Names of every metric the service emits, and their start-up registration.
//!
//! Dashboards and alerts (`dashboards/`) depend on these names; `cargo xtask
//! check-dashboards` proves they return data. Registering every series at
//! start-up (at 0 where the labels are knowable) makes a fresh server show 0
//! rather than "no data".

/// HTTP requests by `method`, `route` (matched pattern) and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "prompter_http_requests_total";
/// HTTP request latency histogram by `method`, `route`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "prompter_http_request_duration_seconds";
/// Real provider probe calls by `provider`, `model`.
pub const PROBE_ATTEMPTS_TOTAL: &str = "prompter_probe_attempts_total";
/// Failed provider probe calls by `provider`, `model`.
pub const PROBE_FAILURES_TOTAL: &str = "prompter_probe_failures_total";
/// Probe guard decisions by `outcome` (probed, reused, waited, disabled).
pub const PROBE_GUARD_TOTAL: &str = "prompter_probe_guard_total";
/// ensure-version latency histogram by `provider`.
pub const ENSURE_VERSION_SECONDS: &str = "prompter_ensure_version_seconds";
/// Results stored.
pub const RESULTS_INSERT_TOTAL: &str = "prompter_prompt_results_insert_total";
/// Runs by `provider`.
pub const RUNS_TOTAL: &str = "prompter_runs_total";
/// Runs stored with the version key `unknown`, by `provider`.
pub const RUNS_UNKNOWN_VERSION_TOTAL: &str = "prompter_runs_unknown_version_total";
/// OpenAI runs whose response carried a `system_fingerprint`.
pub const OPENAI_FINGERPRINT_PRESENT_TOTAL: &str = "prompter_openai_fingerprint_present_total";
/// 1 while the configured Redis answers, else 0 (also 0 without Redis).
pub const REDIS_UP: &str = "prompter_redis_up";
/// 1 when a Redis URL is configured, else 0 (tells "down" from "not used").
pub const REDIS_CONFIGURED: &str = "prompter_redis_configured";
/// Rate-limit decisions taken by this instance's own bucket because Redis
/// was configured but down (cluster-wide limits fell back to per instance).
pub const RATE_LIMIT_FALLBACK_TOTAL: &str = "prompter_rate_limit_fallback_total";
/// 1 while rate limits are cluster-wide (Redis configured and up), else 0.
pub const RATE_LIMIT_CLUSTER: &str = "prompter_rate_limit_cluster";
/// Unique-index violations by `table` (a 409 dedup hit counts here).
pub const DB_UNIQUE_VIOLATION_TOTAL: &str = "prompter_db_unique_violation_total";
/// Provider call errors by `provider`, `kind`.
pub const PROVIDER_ERRORS_TOTAL: &str = "prompter_provider_errors_total";
/// Version drift events by `provider`, `model`.
pub const VERSION_DRIFT_TOTAL: &str = "prompter_version_drift_total";
/// Runs answered from an idempotency key without calling the provider.
pub const IDEMPOTENT_REPLAYS_TOTAL: &str = "prompter_idempotent_replays_total";
/// Template cache lookups by `result` (hit, miss), counted while the cache
/// serves (see [`crate::template_cache`]).
pub const TEMPLATE_CACHE_TOTAL: &str = "prompter_template_cache_total";
/// Database pool connections by `state` (idle, in_use).
pub const DB_POOL_CONNECTIONS: &str = "prompter_db_pool_connections";
/// Database operations that failed because the pool or database was unavailable.
pub const DB_POOL_TIMEOUTS_TOTAL: &str = "prompter_db_pool_timeouts_total";

/// Tokens reported by providers, by `provider`, `model` and `kind` (input,
/// output, cached_input, cache_write_input; cached and cache-write tokens
/// are also counted in input).
pub const TOKENS_TOTAL: &str = "prompter_tokens_total";
/// Cost of runs in USD by `provider`, `model` (list prices), a counter kept
/// and rendered by [`crate::cost_counter`] (the facade's counters hold integers).
pub const COST_USD_TOTAL: &str = "prompter_cost_usd_total";
/// Runs with usage whose model has no price (cost stored as null), by `provider`, `model`.
pub const COST_UNPRICED_TOTAL: &str = "prompter_cost_unpriced_total";

/// Provider calls in flight on this instance, by `provider`.
pub const PROVIDER_INFLIGHT: &str = "prompter_provider_inflight";
/// Provider calls waiting for a slot under `--provider-max-inflight`, by `provider`.
pub const PROVIDER_QUEUED: &str = "prompter_provider_queued";
/// Calls refused with PROVIDER_SATURATED after the queue timeout, by `provider`.
pub const PROVIDER_SATURATED_TOTAL: &str = "prompter_provider_saturated_total";
/// Circuit state by `provider`, `model`: 0 closed, 1 half-open, 2 open.
pub const PROVIDER_CIRCUIT_STATE: &str = "prompter_provider_circuit_state";
/// Circuits opened, by `provider`, `model`.
pub const PROVIDER_CIRCUIT_OPENED_TOTAL: &str = "prompter_provider_circuit_opened_total";

/// Runs refused with BUDGET_EXCEEDED.
pub const BUDGET_EXCEEDED_TOTAL: &str = "prompter_budget_exceeded_total";

/// Batches created (by a request or a schedule tick).
pub const BATCHES_CREATED_TOTAL: &str = "prompter_batches_created_total";
/// Batch items queued by new batches.
pub const BATCH_ITEMS_QUEUED_TOTAL: &str = "prompter_batch_items_queued_total";
/// Batch item attempts that ended, by `outcome`: `done`, `retried`, `failed`, `lost`
/// (the item's lease ran out and another worker owns it).
pub const BATCH_ITEMS_TOTAL: &str = "prompter_batch_items_total";
/// Batch items this instance is running now.
pub const BATCH_ITEMS_INFLIGHT: &str = "prompter_batch_items_inflight";
/// Schedule ticks, by `outcome`: `batch`, `taken` (another instance), `skipped`
/// (the spec did not resolve), `paused` (its key is revoked or expired).
pub const SCHEDULE_TICKS_TOTAL: &str = "prompter_schedule_ticks_total";

/// Batch item outcomes used as label values.
pub const BATCH_ITEM_OUTCOMES: [&str; 4] = ["done", "retried", "failed", "lost"];
/// Schedule tick outcomes used as label values.
pub const SCHEDULE_TICK_OUTCOMES: [&str; 4] = ["batch", "taken", "skipped", "paused"];

/// Provider names used as label values.
pub const PROVIDERS: [&str; 5] = ["openai", "azure-openai", "anthropic", "google", "unknown"];
/// Provider error kinds used as label values.
pub const PROVIDER_ERROR_KINDS: [&str; 8] = [
    "auth",
    "rate_limited",
    "overloaded",
    "bad_request",
    "timeout",
    "upstream",
    "decode",
    "not_configured",
];
/// Probe guard outcomes used as label values.
pub const GUARD_OUTCOMES: [&str; 4] = ["probed", "reused", "waited", "disabled"];

/// Makes the per-(provider, model) series visible at 0 (without changing a
/// value already counted) once the labels are known: at a template's
/// first probe or run, rather than at its first failure or drift.
pub fn register_model(provider: &str, model: &str) {
    use metrics::counter;
    counter!(PROBE_FAILURES_TOTAL, "provider" => provider.to_owned(), "model" => model.to_owned())
        .increment(0);
    counter!(VERSION_DRIFT_TOTAL, "provider" => provider.to_owned(), "model" => model.to_owned())
        .increment(0);
}

/// Registers every series whose labels are knowable at start-up, at 0.
pub fn register_all() {
    use metrics::{counter, gauge, histogram};
    for p in PROVIDERS {
        counter!(RUNS_TOTAL, "provider" => p).absolute(0);
        counter!(RUNS_UNKNOWN_VERSION_TOTAL, "provider" => p).absolute(0);
        let _ = histogram!(ENSURE_VERSION_SECONDS, "provider" => p);
        for k in PROVIDER_ERROR_KINDS {
            counter!(PROVIDER_ERRORS_TOTAL, "provider" => p, "kind" => k).absolute(0);
        }
    }
    for o in GUARD_OUTCOMES {
        counter!(PROBE_GUARD_TOTAL, "outcome" => o).absolute(0);
    }
    for table in ["prompt_templates", "prompt_versions", "prompt_results"] {
        counter!(DB_UNIQUE_VIOLATION_TOTAL, "table" => table).absolute(0);
    }
    counter!(RESULTS_INSERT_TOTAL).absolute(0);
    counter!(OPENAI_FINGERPRINT_PRESENT_TOTAL).absolute(0);
    counter!(IDEMPOTENT_REPLAYS_TOTAL).absolute(0);
    counter!(TEMPLATE_CACHE_TOTAL, "result" => "hit").absolute(0);
    counter!(TEMPLATE_CACHE_TOTAL, "result" => "miss").absolute(0);
    counter!(DB_POOL_TIMEOUTS_TOTAL).absolute(0);
    counter!(BUDGET_EXCEEDED_TOTAL).absolute(0);
    counter!(BATCHES_CREATED_TOTAL).absolute(0);
    counter!(BATCH_ITEMS_QUEUED_TOTAL).absolute(0);
    gauge!(BATCH_ITEMS_INFLIGHT).set(0.0);
    for o in BATCH_ITEM_OUTCOMES {
        counter!(BATCH_ITEMS_TOTAL, "outcome" => o).absolute(0);
    }
    for o in SCHEDULE_TICK_OUTCOMES {
        counter!(SCHEDULE_TICKS_TOTAL, "outcome" => o).absolute(0);
    }
    for p in PROVIDERS {
        gauge!(PROVIDER_INFLIGHT, "provider" => p).increment(0.0);
        gauge!(PROVIDER_QUEUED, "provider" => p).increment(0.0);
        counter!(PROVIDER_SATURATED_TOTAL, "provider" => p).absolute(0);
    }
    gauge!(REDIS_UP).set(0.0);
    gauge!(REDIS_CONFIGURED).set(0.0);
    counter!(RATE_LIMIT_FALLBACK_TOTAL).absolute(0);
    gauge!(RATE_LIMIT_CLUSTER).set(0.0);
    gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(0.0);
    gauge!(DB_POOL_CONNECTIONS, "state" => "in_use").set(0.0);
}
