//! The probe guard: at most one provider probe per probe key and window.
//!
//! A *probe key* names (org, workspace, template, provider, model, window) in
//! V7's format `probe:{org}:{ws}:{template}:{provider}:{model}:{YYYYMMDDHH}`.
//! Within one process an in-memory map gives single-flight: the first caller
//! probes, concurrent callers wait for its outcome, later callers in the same
//! window reuse it. Across processes a shared Redis (`SET NX PX`) elects one
//! winner, which publishes its outcome under the key for the others. A failed
//! probe releases the key so the next caller may try. Without Redis, or while
//! it is down, the in-process rule still holds and nothing fails.

mod local;
mod redis;
mod redis_health;
mod token_bucket;

pub use self::redis::RedisGuard;
pub use self::token_bucket::TOKEN_BUCKET_SCRIPT;
use crate::error::{ServiceError, ServiceResult};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

/// What ensure-version settles for one probe key; shared with the other callers of the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnsureOutcome {
    /// The version row.
    pub version_id: Uuid,
    /// Provider name.
    pub provider: String,
    /// The provider version key the probe revealed.
    pub provider_version_key: String,
    /// When the version was captured (the probe's time).
    pub captured_at: DateTime<Utc>,
}

/// How the guard answered a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardDecision {
    /// This call probed the provider.
    Probed,
    /// This call reused an outcome already settled in this window.
    Reused,
    /// This call waited for a concurrent probe and took its outcome.
    Waited,
}

impl GuardDecision {
    /// Label value for `prompter_probe_guard_total{outcome}`.
    pub fn as_str(self) -> &'static str {
        match self {
            GuardDecision::Probed => "probed",
            GuardDecision::Reused => "reused",
            GuardDecision::Waited => "waited",
        }
    }
}

/// Probe window arithmetic: the UTC bucket a moment falls in.
#[derive(Debug, Clone, Copy)]
pub struct ProbeWindow {
    ttl: Duration,
}

impl ProbeWindow {
    /// A window of `ttl` (at least one second).
    pub fn new(ttl: Duration) -> Self {
        ProbeWindow {
            ttl: ttl.max(Duration::from_secs(1)),
        }
    }

    /// Window length.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The bucket label for `now`: V7's `YYYYMMDDHH` for hour windows,
    /// `YYYYMMDDHHMMSS` of the window start otherwise.
    pub fn bucket(&self, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
        let secs = self.ttl.as_secs() as i64;
        let start_ts = now.timestamp() - now.timestamp().rem_euclid(secs);
        let start = DateTime::<Utc>::from_timestamp(start_ts, 0).unwrap_or(now);
        let end = start + chrono::Duration::seconds(secs);
        let label = if secs == 3600 {
            start.format("%Y%m%d%H").to_string()
        } else {
            start.format("%Y%m%d%H%M%S").to_string()
        };
        (label, end)
    }

    /// The V7 probe key for these coordinates at `now`, and when its window ends.
    pub fn key(
        &self,
        org: &str,
        ws: &str,
        template: Uuid,
        provider: &str,
        model: &str,
        now: DateTime<Utc>,
    ) -> (String, DateTime<Utc>) {
        let (bucket, end) = self.bucket(now);
        (
            format!("probe:{org}:{ws}:{template}:{provider}:{model}:{bucket}"),
            end,
        )
    }
}

/// The guard: in-process single-flight plus an optional Redis election.
#[derive(Debug)]
pub struct ProbeGuard {
    local: local::LocalFlights,
    redis: Option<RedisGuard>,
    wait_timeout: Duration,
}

impl ProbeGuard {
    /// A guard; `redis` is `None` for single-instance deployments.
    pub fn new(redis: Option<RedisGuard>, wait_timeout: Duration) -> Self {
        ProbeGuard {
            local: local::LocalFlights::default(),
            redis,
            wait_timeout,
        }
    }

    /// The Redis side, if configured.
    pub fn redis(&self) -> Option<&RedisGuard> {
        self.redis.as_ref()
    }

    /// Runs `probe` at most once per `key` until `window_end`, sharing its outcome.
    pub async fn run<F, Fut>(
        &self,
        key: &str,
        window_end: DateTime<Utc>,
        probe: F,
    ) -> ServiceResult<(EnsureOutcome, GuardDecision)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ServiceResult<EnsureOutcome>>,
    {
        let ttl = (window_end - Utc::now())
            .to_std()
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_secs(1));
        let redis = self.redis.as_ref();
        let wait = self.wait_timeout;
        self.local
            .run(key, window_end, wait, || async move {
                match redis {
                    Some(r) => r.run(key, ttl, wait, probe).await,
                    None => probe().await.map(|o| (o, GuardDecision::Probed)),
                }
            })
            .await
    }
}

pub(crate) fn pending(wait: Duration) -> ServiceError {
    ServiceError::ProbePending {
        retry_after: wait.min(Duration::from_secs(5)).max(Duration::from_secs(1)),
    }
}
