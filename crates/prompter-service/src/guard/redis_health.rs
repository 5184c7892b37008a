//! Redis health as the probe guard sees it, and its log policy: one line per
//! transition (up → down, down → up) and, while down, one summary line per
//! period with the failures since, instead of one line per failed operation.

use crate::metrics_catalog::REDIS_UP;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a still-down Redis is summarised in the log.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No operation finished yet.
    Unknown,
    Up,
    Down,
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// When Redis went down (while down).
    down_since: Option<Instant>,
    /// Failed operations since the last log line about the outage.
    failures: u64,
    /// When the outage was last logged (transition or summary).
    last_logged: Option<Instant>,
    /// The latest error, for the next log line.
    last_error: String,
}

/// What a health change asks the caller to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthLog {
    /// Redis answered for the first time.
    Connected,
    /// Redis stopped answering (or never answered).
    WentDown {
        /// The error that showed it.
        error: String,
    },
    /// Redis answers again.
    Recovered {
        /// How long it was down.
        down_for: Duration,
        /// Failed operations since the last line.
        failures: u64,
    },
    /// Still down: a periodic summary.
    StillDown {
        /// How long it has been down.
        down_for: Duration,
        /// Failed operations since the last line.
        failures: u64,
        /// The latest error.
        error: String,
    },
}

/// The health flag shared by every clone of a `RedisGuard`.
#[derive(Debug)]
pub struct RedisHealth {
    inner: Mutex<Inner>,
    summary_every: Duration,
}

impl RedisHealth {
    /// Unknown health; summaries every `summary_every` while down.
    pub fn new(summary_every: Duration) -> Self {
        RedisHealth {
            inner: Mutex::new(Inner {
                state: State::Unknown,
                down_since: None,
                failures: 0,
                last_logged: None,
                last_error: String::new(),
            }),
            summary_every,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the last operation succeeded.
    pub fn is_up(&self) -> bool {
        self.lock().state == State::Up
    }

    /// Records a successful operation; what to log, if anything.
    pub fn up(&self, now: Instant) -> Option<HealthLog> {
        metrics::gauge!(REDIS_UP).set(1.0);
        let mut s = self.lock();
        let log = match s.state {
            State::Up => None,
            State::Unknown => Some(HealthLog::Connected),
            State::Down => Some(HealthLog::Recovered {
                down_for: s
                    .down_since
                    .map_or(Duration::ZERO, |d| now.saturating_duration_since(d)),
                failures: s.failures,
            }),
        };
        s.state = State::Up;
        s.down_since = None;
        s.failures = 0;
        s.last_logged = None;
        log
    }

    /// Records a failed operation; what to log, if anything (only the
    /// first failure of an outage).
    pub fn down(&self, error: &str, now: Instant) -> Option<HealthLog> {
        metrics::gauge!(REDIS_UP).set(0.0);
        let mut s = self.lock();
        s.last_error = error.to_owned();
        if s.state == State::Down {
            s.failures += 1;
            return None;
        }
        s.state = State::Down;
        s.down_since = Some(now);
        s.failures = 0;
        s.last_logged = Some(now);
        Some(HealthLog::WentDown {
            error: error.to_owned(),
        })
    }

    /// The periodic summary, when Redis is down and the last line about it
    /// is at least one period old.
    pub fn summary(&self, now: Instant) -> Option<HealthLog> {
        let mut s = self.lock();
        if s.state != State::Down {
            return None;
        }
        let due = s
            .last_logged
            .is_none_or(|t| now.saturating_duration_since(t) >= self.summary_every);
        if !due {
            return None;
        }
        let log = HealthLog::StillDown {
            down_for: s
                .down_since
                .map_or(Duration::ZERO, |d| now.saturating_duration_since(d)),
            failures: s.failures,
            error: s.last_error.clone(),
        };
        s.failures = 0;
        s.last_logged = Some(now);
        Some(log)
    }
}

impl HealthLog {
    /// Writes the line.
    pub fn emit(&self) {
        match self {
            HealthLog::Connected => {
                tracing::info!("redis connected; the probe guard elects and rate limits count across instances")
            }
            HealthLog::WentDown { error } => tracing::warn!(
                %error,
                "redis is down; the probe guard and the rate limits work per instance until \
                 it is back (logged again when it recovers, and once a minute while down)"
            ),
            HealthLog::Recovered { down_for, failures } => tracing::info!(
                down_secs = down_for.as_secs(),
                failed_operations = failures,
                "redis is back; the probe guard and the rate limits are cluster-wide again"
            ),
            HealthLog::StillDown {
                down_for,
                failures,
                error,
            } => tracing::warn!(
                down_secs = down_for.as_secs(),
                failed_operations = failures,
                %error,
                "redis is still down; the probe guard and the rate limits work per instance"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_transition_and_one_summary_per_period() {
        let h = RedisHealth::new(Duration::from_secs(60));
        let t = Instant::now();
        let s = |n: u64| t + Duration::from_secs(n);
        assert_eq!(
            h.down("refused", s(0)),
            Some(HealthLog::WentDown {
                error: "refused".into()
            })
        );
        // A failure a second for two minutes: no line per failure…
        for i in 1..=59 {
            assert_eq!(h.down("refused", s(i)), None);
            assert_eq!(h.summary(s(i)), None);
        }
        // …one summary per minute, counting the failures since the last line.
        assert_eq!(
            h.summary(s(60)),
            Some(HealthLog::StillDown {
                down_for: Duration::from_secs(60),
                failures: 59,
                error: "refused".into()
            })
        );
        assert_eq!(h.summary(s(61)), None);
        assert_eq!(h.down("timeout", s(70)), None);
        assert!(!h.is_up());
        assert_eq!(
            h.up(s(90)),
            Some(HealthLog::Recovered {
                down_for: Duration::from_secs(90),
                failures: 1
            })
        );
        assert!(h.is_up());
        assert_eq!(h.up(s(91)), None);
        assert_eq!(h.summary(s(200)), None);
        // A new outage is a new transition.
        assert!(matches!(
            h.down("x", s(300)),
            Some(HealthLog::WentDown { .. })
        ));
        // First contact.
        let fresh = RedisHealth::new(SUMMARY_EVERY);
        assert_eq!(fresh.up(t), Some(HealthLog::Connected));
    }
}
