//! Per-caller token buckets: `burst` tokens, refilled at `rate` tokens per
//! second; a request takes one token or is refused with the time until the
//! next token (the `Retry-After` of the 429).
//!
//! Buckets are keyed by the API key's public prefix (or `anon:<peer ip>` for
//! anonymous callers when that is switched on), kept in one mutex-guarded map:
//! the critical section is a few float operations, far cheaper than the
//! request it guards. The map is bounded: past [`MAX_BUCKETS`] entries, the
//! buckets that have refilled completely (idle callers, indistinguishable
//! from new ones) are dropped.
//!
//! With Redis configured the bucket is cluster-wide: one bucket per key in
//! Redis, taken from by an atomic script (`RedisGuard::take_token`), so N
//! instances behind a load balancer share one limit. While Redis is down
//! each instance falls back to its own bucket (up to N times the rate):
//! `prompter_rate_limit_fallback_total` counts those decisions,
//! `prompter_rate_limit_cluster` is 0, and the log says so once per Redis
//! transition (plus a summary a minute), not per request.

use prompter_service::metrics_catalog::{RATE_LIMIT_CLUSTER, RATE_LIMIT_FALLBACK_TOTAL};
use prompter_service::RedisGuard;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bound on the number of buckets kept before idle ones are swept.
pub const MAX_BUCKETS: usize = 100_000;

/// Token-bucket settings; `rate <= 0` or `burst == 0` switches limiting off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub rate: f64,
    /// Requests allowed at once after an idle period.
    pub burst: u32,
}

impl RateLimit {
    /// Whether this limit limits anything.
    pub fn is_enabled(&self) -> bool {
        self.rate > 0.0 && self.rate.is_finite() && self.burst > 0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The buckets: in Redis when configured and up, else this process's own.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
    redis: Option<RedisGuard>,
}

impl RateLimiter {
    /// A per-process limiter with `limit` for every key.
    pub fn new(limit: RateLimit) -> Self {
        Self::clustered(limit, None)
    }

    /// A limiter whose buckets live in `redis` (when given and up).
    pub fn clustered(limit: RateLimit, redis: Option<RedisGuard>) -> Self {
        metrics::gauge!(RATE_LIMIT_CLUSTER).set(if redis.is_some() && limit.is_enabled() {
            1.0
        } else {
            0.0
        });
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
            redis,
        }
    }

    /// The configured limit.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes a token for `key` now: from the cluster-wide bucket when Redis
    /// is configured and answers, else from this process's bucket.
    pub async fn check(&self, key: &str) -> Result<(), Duration> {
        if !self.limit.is_enabled() {
            return Ok(());
        }
        if let Some(redis) = &self.redis {
            if let Some(decision) = redis
                .take_token(key, self.limit.rate, self.limit.burst)
                .await
            {
                metrics::gauge!(RATE_LIMIT_CLUSTER).set(1.0);
                return decision;
            }
            metrics::gauge!(RATE_LIMIT_CLUSTER).set(0.0);
            metrics::counter!(RATE_LIMIT_FALLBACK_TOTAL).increment(1);
        }
        self.check_at(key, Instant::now())
    }

    /// Takes a token for `key` at `now`; `Err(wait)` names the time until a
    /// token is available.
    pub fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if !self.limit.is_enabled() {
            return Ok(());
        }
        let burst = f64::from(self.limit.burst);
        let rate = self.limit.rate;
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_BUCKETS && !map.contains_key(key) {
            map.retain(|_, b| {
                let refilled =
                    b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate;
                refilled < burst
            });
            if map.len() >= MAX_BUCKETS {
                // Every bucket is busy: forget them all rather than grow without bound.
                map.clear();
            }
        }
        let b = map.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let l = RateLimiter::new(RateLimit {
            rate: 2.0,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at("k", t0).is_ok());
        }
        let wait = l.check_at("k", t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        // Another key has its own bucket.
        assert!(l.check_at("other", t0).is_ok());
        // Half a second later one token is back.
        let t1 = t0 + Duration::from_millis(500);
        assert!(l.check_at("k", t1).is_ok());
        assert!(l.check_at("k", t1).is_err());
        // Long idle: refilled to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(l.check_at("k", t2).is_ok());
        }
        assert!(l.check_at("k", t2).is_err());
    }

    #[test]
    fn disabled_limits_nothing() {
        for limit in [
            RateLimit {
                rate: 0.0,
                burst: 10,
            },
            RateLimit {
                rate: 10.0,
                burst: 0,
            },
        ] {
            let l = RateLimiter::new(limit);
            let t = Instant::now();
            assert!((0..1000).all(|_| l.check_at("k", t).is_ok()));
        }
    }

    #[test]
    fn the_map_stays_bounded() {
        let l = RateLimiter::new(RateLimit {
            rate: 1000.0,
            burst: 1,
        });
        let t = Instant::now();
        for i in 0..(MAX_BUCKETS + 10) {
            let _ = l.check_at(&format!("k{i}"), t);
        }
        assert!(l.buckets.lock().unwrap().len() <= MAX_BUCKETS);
    }
}
