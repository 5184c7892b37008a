//! Shared retry policy: bounded attempts, exponential backoff with jitter,
//! server hints (`retry-after-ms`, `retry-after`, Gemini `RetryInfo`) and the
//! `x-should-retry` override.
//!
//! Every real client goes through `with_retries`; nothing else loops.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

use crate::error::ProviderError;

/// HTTP behaviour shared by the real clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// TCP/TLS connect timeout. Default 5 s.
    pub connect_timeout: Duration,
    /// Total timeout of one attempt (connect + send + whole body). Default 60 s.
    pub request_timeout: Duration,
    /// Attempts per call, first one included (0 is treated as 1). Default 3.
    pub max_attempts: u32,
    /// Backoff before the 2nd attempt; doubles after each retry. Default 250 ms.
    pub base_backoff: Duration,
    /// Cap on the computed backoff, and the longest server hint
    /// (`Retry-After`, `retryDelay`) we are willing to sleep for: a longer
    /// hint ends the call at once with the hint in the error. Default 10 s.
    pub max_backoff: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            max_attempts: 3,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// The outcome of one failed attempt, as seen by the retry loop.
#[derive(Debug)]
pub(crate) struct AttemptError {
    pub error: ProviderError,
    /// Server-provided wait hint (headers or body).
    pub server_hint: Option<Duration>,
    /// Value of the `x-should-retry` response header, when present.
    pub should_retry: Option<bool>,
}

impl From<ProviderError> for AttemptError {
    fn from(error: ProviderError) -> Self {
        Self {
            error,
            server_hint: None,
            should_retry: None,
        }
    }
}

/// Whether this failure may be retried at all (before budget/ceiling checks).
///
/// Auth and validation errors are never retried, whatever the server says.
/// Otherwise `x-should-retry: false|true` wins over the status-based rule.
pub(crate) fn should_retry(attempt: &AttemptError) -> bool {
    match &attempt.error {
        ProviderError::Auth { .. }
        | ProviderError::BadRequest { .. }
        | ProviderError::NotConfigured { .. } => false,
        other => attempt.should_retry.unwrap_or_else(|| other.is_retryable()),
    }
}

/// Exponential backoff for the retry after attempt number `attempt` (1-based):
/// `base * 2^(attempt-1)`, capped at `max_backoff`, then scaled by a random
/// factor in `[0.75, 1.0]` (jitter, as the official SDKs do).
pub(crate) fn backoff(cfg: &HttpConfig, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    let raw = cfg.base_backoff.saturating_mul(1u32 << exp);
    let capped = raw.min(cfg.max_backoff);
    let jitter: f64 = 1.0 - 0.25 * rand::random::<f64>();
    capped.mul_f64(jitter)
}

/// Runs `op` up to `cfg.max_attempts` times.
///
/// A failed attempt is retried when [`should_retry`] allows it and attempts
/// remain. The wait is the server hint when there is one (a hint longer than
/// `max_backoff` stops retrying and returns the error, hint included), else
/// [`backoff`].
pub(crate) async fn with_retries<T, F, Fut>(
    cfg: &HttpConfig,
    provider: &str,
    mut op: F,
) -> Result<T, ProviderError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, AttemptError>>,
{
    let max_attempts = cfg.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let failure = match op(attempt).await {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        if attempt >= max_attempts || !should_retry(&failure) {
            if attempt > 1 || failure.error.is_retryable() {
                tracing::warn!(
                    provider,
                    attempt,
                    kind = failure.error.kind(),
                    "provider call failed, not retrying"
                );
            }
            return Err(failure.error);
        }
        let delay = match failure.server_hint {
            Some(hint) if hint > cfg.max_backoff => {
                tracing::warn!(
                    provider,
                    attempt,
                    kind = failure.error.kind(),
                    hint_ms = hint.as_millis() as u64,
                    "provider asked to wait longer than max_backoff, giving up"
                );
                return Err(failure.error);
            }
            Some(hint) => hint,
            None => backoff(cfg, attempt),
        };
        tracing::warn!(
            provider,
            attempt,
            kind = failure.error.kind(),
            delay_ms = delay.as_millis() as u64,
            "provider call failed, retrying"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// Reads the server's wait hint from response headers:
/// `retry-after-ms` (milliseconds, may be fractional) first, then
/// `retry-after` (delta-seconds, possibly fractional, or an HTTP-date).
pub(crate) fn retry_after_from_headers(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = get("retry-after-ms").and_then(parse_non_negative) {
        return Some(secs_capped(ms / 1000.0));
    }
    let value = get("retry-after")?;
    if let Some(secs) = parse_non_negative(value) {
        return Some(secs_capped(secs));
    }
    let at = parse_http_date(value)?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Reads `x-should-retry: true|false`.
pub(crate) fn should_retry_header(headers: &HeaderMap) -> Option<bool> {
    let value = headers.get("x-should-retry")?.to_str().ok()?.trim();
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Parses a protobuf JSON `Duration` such as `"38s"`, `"0.5s"`, `"1.500s"`.
pub(crate) fn parse_proto_duration(s: &str) -> Option<Duration> {
    let secs = s.trim().strip_suffix('s')?;
    parse_non_negative(secs).map(secs_capped)
}

fn parse_non_negative(s: &str) -> Option<f64> {
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// Seconds → Duration, capped at a year so the conversion cannot panic.
fn secs_capped(secs: f64) -> Duration {
    Duration::from_secs_f64(secs.min(31_536_000.0))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only
/// HTTP-date form servers are required to send.
pub(crate) fn parse_http_date(s: &str) -> Option<SystemTime> {
    let rest = s.trim().split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: u32 = day.parse().ok()?;
    let month = match *month {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = year.parse().ok()?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<Vec<_>>>()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days.checked_mul(86_400)? + (*h * 3600 + *m * 60 + *sec) as i64;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> HttpConfig {
        HttpConfig {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(20),
            ..HttpConfig::default()
        }
    }

    #[test]
    fn retry_after_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after_from_headers(&h), None);
        h.insert("retry-after", HeaderValue::from_static("6"));
        assert_eq!(retry_after_from_headers(&h), Some(Duration::from_secs(6)));
        h.insert("retry-after-ms", HeaderValue::from_static("1500.5"));
        assert_eq!(
            retry_after_from_headers(&h),
            Some(Duration::from_secs_f64(1.5005))
        );
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after_from_headers(&h), Some(Duration::ZERO));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after_from_headers(&h), None);
        // Large millisecond values are converted before capping.
        let mut h = HeaderMap::new();
        h.insert("retry-after-ms", HeaderValue::from_static("86400000"));
        assert_eq!(
            retry_after_from_headers(&h),
            Some(Duration::from_secs(86_400))
        );
        h.insert("retry-after-ms", HeaderValue::from_static("1e300"));
        assert_eq!(
            retry_after_from_headers(&h),
            Some(Duration::from_secs(31_536_000))
        );
    }

    #[test]
    fn http_date_parses_to_epoch() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 784_111_777);
        let t = parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT").unwrap();
        assert_eq!(t, UNIX_EPOCH);
        assert!(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST").is_none());
        assert!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").is_none());
    }

    #[test]
    fn proto_durations() {
        assert_eq!(parse_proto_duration("38s"), Some(Duration::from_secs(38)));
        assert_eq!(
            parse_proto_duration("0.5s"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_proto_duration("1.500s"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_proto_duration("38"), None);
        assert_eq!(parse_proto_duration("-1s"), None);
    }

    #[test]
    fn should_retry_header_values() {
        let mut h = HeaderMap::new();
        assert_eq!(should_retry_header(&h), None);
        h.insert("x-should-retry", HeaderValue::from_static("false"));
        assert_eq!(should_retry_header(&h), Some(false));
        h.insert("x-should-retry", HeaderValue::from_static("TRUE"));
        assert_eq!(should_retry_header(&h), Some(true));
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let cfg = HttpConfig {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..HttpConfig::default()
        };
        for _ in 0..50 {
            let b1 = backoff(&cfg, 1);
            assert!(b1 >= Duration::from_millis(75) && b1 <= Duration::from_millis(100));
            let b2 = backoff(&cfg, 2);
            assert!(b2 >= Duration::from_millis(150) && b2 <= Duration::from_millis(200));
            let b9 = backoff(&cfg, 9);
            assert!(b9 >= Duration::from_micros(262_500) && b9 <= Duration::from_millis(350));
        }
        // No overflow on absurd attempt numbers.
        assert!(backoff(&cfg, u32::MAX) <= Duration::from_millis(350));
    }

    #[test]
    fn never_retry_auth_or_validation_even_if_server_says_so() {
        let a = AttemptError {
            error: ProviderError::BadRequest {
                message: "x".into(),
            },
            server_hint: None,
            should_retry: Some(true),
        };
        assert!(!should_retry(&a));
        let a = AttemptError {
            error: ProviderError::Upstream {
                status: 500,
                message: "x".into(),
            },
            server_hint: None,
            should_retry: Some(false),
        };
        assert!(!should_retry(&a));
    }

    #[tokio::test]
    async fn loop_is_bounded_and_returns_last_error() {
        let calls = AtomicU32::new(0);
        let res: Result<(), _> = with_retries(&fast(), "test", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err(AttemptError::from(ProviderError::Upstream {
                    status: 500,
                    message: "boom".into(),
                }))
            }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(res.unwrap_err().kind(), "upstream");
    }

    #[tokio::test]
    async fn hint_above_ceiling_stops_immediately() {
        let calls = AtomicU32::new(0);
        let res: Result<(), _> = with_retries(&fast(), "test", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err(AttemptError {
                    error: ProviderError::RateLimited {
                        retry_after: Some(Duration::from_secs(86_400)),
                        message: "daily".into(),
                    },
                    server_hint: Some(Duration::from_secs(86_400)),
                    should_retry: None,
                })
            }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            res.unwrap_err().retry_after(),
            Some(Duration::from_secs(86_400))
        );
    }

    #[tokio::test]
    async fn zero_attempts_means_one() {
        let cfg = HttpConfig {
            max_attempts: 0,
            ..fast()
        };
        let calls = AtomicU32::new(0);
        let res: Result<(), _> = with_retries(&cfg, "test", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(AttemptError::from(ProviderError::Timeout)) }
        })
        .await;
        assert!(res.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
