//! Cross-instance election through Redis `SET NX PX`.
//!
//! The winner stores `pending:<token>` under the probe key, probes, then
//! overwrites the value with its outcome (JSON, `XX KEEPTTL`). Losers poll the
//! key: an outcome is reused, a pending value is waited on (bounded), a
//! vanished key (the winner failed and released it) is contended again.
//! Any Redis error marks Redis down (`prompter_redis_up` 0) and the call falls
//! back to the in-process rule; a background pinger marks it up again. The
//! log gets one line per transition and a summary a minute while down
//! (`redis_health`).

use super::redis_health::{RedisHealth, SUMMARY_EVERY};
use super::{EnsureOutcome, GuardDecision};
use crate::error::ServiceResult;
use deadpool_redis::redis::{self, AsyncCommands};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const PENDING_PREFIX: &str = "pending:";
const OP_TIMEOUT: Duration = Duration::from_millis(750);
const POLL_EVERY: Duration = Duration::from_millis(20);
const RELEASE_SCRIPT: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// A Redis connection pool plus its health flag.
#[derive(Clone)]
pub struct RedisGuard {
    pool: deadpool_redis::Pool,
    health: Arc<RedisHealth>,
}

impl std::fmt::Debug for RedisGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisGuard")
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

/// A failed Redis operation (logged by the health flag, not here).
#[derive(Debug)]
pub(super) struct RedisDown(pub(super) String);

impl<E: std::fmt::Display> From<E> for RedisDown {
    fn from(e: E) -> Self {
        RedisDown(e.to_string())
    }
}

enum Claim {
    Won(String),
    Reuse(EnsureOutcome),
    Pending,
}

impl RedisGuard {
    /// Builds a pool for `url` (no connection is made yet).
    pub fn connect(url: &str) -> Result<Self, String> {
        let mut cfg = deadpool_redis::Config::from_url(url);
        let mut pool_cfg = deadpool_redis::PoolConfig::new(32);
        pool_cfg.timeouts.wait = Some(OP_TIMEOUT);
        pool_cfg.timeouts.create = Some(OP_TIMEOUT);
        pool_cfg.timeouts.recycle = Some(OP_TIMEOUT);
        cfg.pool = Some(pool_cfg);
        let pool = cfg
            .create_pool(Some(deadpool_redis::Runtime::Tokio1))
            .map_err(|e| format!("invalid redis url: {e}"))?;
        Ok(RedisGuard {
            pool,
            health: Arc::new(RedisHealth::new(SUMMARY_EVERY)),
        })
    }

    /// Whether the last Redis operation succeeded.
    pub fn is_up(&self) -> bool {
        self.health.is_up()
    }

    fn mark_up(&self) {
        if let Some(log) = self.health.up(Instant::now()) {
            log.emit();
        }
    }

    pub(super) fn mark_down(&self, e: &RedisDown) {
        if let Some(log) = self.health.down(&e.0, Instant::now()) {
            log.emit();
        }
    }

    /// One `PING`; updates the health flag and gauge.
    pub async fn ping(&self) -> bool {
        let res: Result<(), RedisDown> = async {
            let mut conn = tokio::time::timeout(OP_TIMEOUT, self.pool.get()).await??;
            let _: String =
                tokio::time::timeout(OP_TIMEOUT, redis::cmd("PING").query_async(&mut conn))
                    .await??;
            Ok(())
        }
        .await;
        match &res {
            Ok(()) => self.mark_up(),
            Err(e) => self.mark_down(e),
        }
        res.is_ok()
    }

    /// Pings every `every` until the process ends, keeping `prompter_redis_up`
    /// current and logging the outage summary while Redis is down.
    pub fn spawn_pinger(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                me.ping().await;
                if let Some(log) = me.health.summary(Instant::now()) {
                    log.emit();
                }
                tokio::time::sleep(every).await;
            }
        })
    }

    pub(super) async fn conn(&self) -> Result<deadpool_redis::Connection, RedisDown> {
        Ok(tokio::time::timeout(OP_TIMEOUT, self.pool.get()).await??)
    }

    async fn claim(&self, key: &str, ttl: Duration, wait: Duration) -> Result<Claim, RedisDown> {
        let token = format!("{PENDING_PREFIX}{}", Uuid::new_v4());
        let deadline = tokio::time::Instant::now() + wait;
        let mut conn = self.conn().await?;
        loop {
            let set: Option<String> = tokio::time::timeout(
                OP_TIMEOUT,
                redis::cmd("SET")
                    .arg(key)
                    .arg(&token)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl.as_millis() as u64)
                    .query_async(&mut conn),
            )
            .await??;
            if set.is_some() {
                return Ok(Claim::Won(token));
            }
            let current: Option<String> = tokio::time::timeout(OP_TIMEOUT, conn.get(key)).await??;
            match current {
                Some(v) if !v.starts_with(PENDING_PREFIX) => {
                    if let Ok(o) = serde_json::from_str::<EnsureOutcome>(&v) {
                        return Ok(Claim::Reuse(o));
                    }
                    // Not ours to read (foreign value): treat as pending.
                }
                // Released between our SET and GET: contend again at once.
                None => continue,
                Some(_) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Claim::Pending);
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    async fn publish(&self, key: &str, outcome: &EnsureOutcome) -> Result<(), RedisDown> {
        let json = serde_json::to_string(outcome).map_err(RedisDown::from)?;
        let mut conn = self.conn().await?;
        let _: Option<String> = tokio::time::timeout(
            OP_TIMEOUT,
            redis::cmd("SET")
                .arg(key)
                .arg(json)
                .arg("XX")
                .arg("KEEPTTL")
                .query_async(&mut conn),
        )
        .await??;
        Ok(())
    }

    async fn release(&self, key: &str, token: &str) -> Result<(), RedisDown> {
        let mut conn = self.conn().await?;
        let _: i64 = tokio::time::timeout(
            OP_TIMEOUT,
            redis::cmd("EVAL")
                .arg(RELEASE_SCRIPT)
                .arg(1)
                .arg(key)
                .arg(token)
                .query_async(&mut conn),
        )
        .await??;
        Ok(())
    }

    /// Elects one prober for `key` across instances; falls back to probing
    /// locally (the in-process guard still applies) when Redis is down.
    pub(super) async fn run<F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        wait: Duration,
        probe: F,
    ) -> ServiceResult<(EnsureOutcome, GuardDecision)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ServiceResult<EnsureOutcome>>,
    {
        if !self.is_up() && !self.ping().await {
            return probe().await.map(|o| (o, GuardDecision::Probed));
        }
        match self.claim(key, ttl, wait).await {
            Ok(Claim::Reuse(o)) => Ok((o, GuardDecision::Reused)),
            Ok(Claim::Pending) => Err(super::pending(wait)),
            Ok(Claim::Won(token)) => match probe().await {
                Ok(o) => {
                    if let Err(down) = self.publish(key, &o).await {
                        self.mark_down(&down);
                    }
                    Ok((o, GuardDecision::Probed))
                }
                Err(e) => {
                    if let Err(down) = self.release(key, &token).await {
                        self.mark_down(&down);
                    }
                    Err(e)
                }
            },
            Err(down) => {
                self.mark_down(&down);
                probe().await.map(|o| (o, GuardDecision::Probed))
            }
        }
    }
}
