//! Cluster-wide token buckets: one bucket per key in Redis, taken from by an
//! atomic Lua script, so N instances share one limit.
//!
//! The script refills the bucket from Redis's own clock (`TIME`, so the
//! instances' clocks do not matter), takes a token if one is there, and
//! answers `{allowed, wait_ms}`. The bucket expires once it would be full
//! again, so idle keys cost nothing. Any Redis error marks Redis down (one
//! log line per transition, see `redis_health`) and the caller falls back to
//! its own per-instance bucket; while down, no Redis call is attempted (the
//! pinger marks it up again).

use super::redis::{RedisDown, RedisGuard};
use deadpool_redis::redis;
use std::time::Duration;

/// Shorter than the probe guard's timeout: a request waits on this.
const OP_TIMEOUT: Duration = Duration::from_millis(250);

/// The bucket script: `KEYS[1]` the bucket, `ARGV[1]` the rate (tokens/s),
/// `ARGV[2]` the burst. Returns `{1, 0}` when a token was taken, else
/// `{0, ms until one is}`.
pub const TOKEN_BUCKET_SCRIPT: &str = r"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
local elapsed = math.max(0, now - at) / 1000000
tokens = math.min(burst, tokens + elapsed * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, wait}
";

/// Prefix of the bucket keys.
const KEY_PREFIX: &str = "prompter:rl:";

impl RedisGuard {
    /// Takes one token of the cluster-wide bucket `key` (`rate` tokens/s,
    /// `burst` at most): `Some(Ok(()))` when taken, `Some(Err(wait))` when
    /// empty, `None` when Redis is down (the caller uses its own bucket).
    pub async fn take_token(
        &self,
        key: &str,
        rate: f64,
        burst: u32,
    ) -> Option<Result<(), Duration>> {
        if !self.is_up() {
            return None;
        }
        let res: Result<(i64, i64), RedisDown> = async {
            let mut conn = self.conn().await?;
            let call = redis::cmd("EVAL")
                .arg(TOKEN_BUCKET_SCRIPT)
                .arg(1)
                .arg(format!("{KEY_PREFIX}{key}"))
                .arg(rate)
                .arg(burst)
                .to_owned();
            Ok(tokio::time::timeout(OP_TIMEOUT, call.query_async(&mut conn)).await??)
        }
        .await;
        match res {
            Ok((1, _)) => Some(Ok(())),
            Ok((_, wait_ms)) => Some(Err(Duration::from_millis(wait_ms.max(1) as u64))),
            Err(down) => {
                self.mark_down(&down);
                None
            }
        }
    }
}
