//! Circuit breakers per (provider, model) (issue 17). After
//! `failures` consecutive calls that failed by the provider's fault
//! (5xx, connection failures, timeouts, overload; never a 4xx) the circuit
//! opens: calls fail fast with [`ServiceError::CircuitOpen`] (503
//! `PROVIDER_CIRCUIT_OPEN`, `Retry-After` = the rest of the cool-down).
//! After the cool-down one trial call is let through (half-open): its
//! success closes the circuit, its failure opens it again; other callers
//! fail fast meanwhile. Any answer that is not the provider's fault (a
//! success or a 4xx) resets the count.
//!
//! State per instance, as `prompter_provider_circuit_state{provider,model}`
//! (0 closed, 1 half-open, 2 open) and in `/readyz?detail=1`.

use crate::metrics_catalog as m;
use crate::ServiceError;
use prompter_providers::ProviderError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive provider-fault failures that open a circuit (0: never).
    pub failures: u32,
    /// How long an open circuit fails fast before a trial call.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// A circuit's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// One trial call is in flight; the others fail fast.
    HalfOpen,
    /// Calls fail fast until the cool-down ends.
    Open,
}

impl CircuitState {
    fn gauge(self) -> f64 {
        match self {
            CircuitState::Closed => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open => 2.0,
        }
    }
}

#[derive(Debug)]
struct Circuit {
    state: CircuitState,
    consecutive: u32,
    opened_at: Instant,
}

/// One circuit as `/readyz?detail=1` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CircuitView {
    /// Provider.
    pub provider: String,
    /// Model.
    pub model: String,
    /// State.
    pub state: CircuitState,
    /// Consecutive provider-fault failures so far.
    pub consecutive_failures: u32,
    /// Seconds until an open circuit lets a trial call through.
    pub retry_in_secs: Option<u64>,
}

/// All circuits of this instance.
#[derive(Debug, Default)]
pub struct Breakers {
    cfg: BreakerConfig,
    circuits: Mutex<BTreeMap<(String, String), Circuit>>,
}

/// Permission for one call; report its outcome with [`Ticket::finish`].
/// Dropped unfinished (the caller went away), a trial lets the next caller try.
#[derive(Debug)]
pub struct Ticket {
    breakers: Option<Arc<Breakers>>,
    key: (String, String),
    trial: bool,
}

/// Whether `e` is the provider's fault (counts towards opening).
pub fn is_provider_fault(e: &ProviderError) -> bool {
    match e {
        ProviderError::Timeout | ProviderError::Overloaded { .. } => true,
        ProviderError::Upstream { status, .. } => *status == 0 || *status >= 500,
        _ => false,
    }
}

fn set_gauge(key: &(String, String), state: CircuitState) {
    metrics::gauge!(m::PROVIDER_CIRCUIT_STATE, "provider" => key.0.clone(), "model" => key.1.clone())
        .set(state.gauge());
}

impl Breakers {
    /// Breakers with `cfg`.
    pub fn new(cfg: BreakerConfig) -> Self {
        Breakers {
            cfg,
            circuits: Mutex::default(),
        }
    }

    /// Lets a call to (`provider`, `model`) through, or fails fast.
    pub fn admit(self: &Arc<Self>, provider: &str, model: &str) -> Result<Ticket, ServiceError> {
        let key = (provider.to_owned(), model.to_owned());
        if self.cfg.failures == 0 {
            return Ok(Ticket {
                breakers: None,
                key,
                trial: false,
            });
        }
        let mut map = self.circuits.lock().expect("breaker lock");
        let c = map.entry(key.clone()).or_insert_with(|| {
            set_gauge(&key, CircuitState::Closed);
            Circuit {
                state: CircuitState::Closed,
                consecutive: 0,
                opened_at: Instant::now(),
            }
        });
        let trial = match c.state {
            CircuitState::Closed => false,
            CircuitState::HalfOpen => {
                return Err(open(provider, model, Duration::from_secs(1)));
            }
            CircuitState::Open => {
                let waited = c.opened_at.elapsed();
                if waited < self.cfg.cooldown {
                    return Err(open(provider, model, self.cfg.cooldown - waited));
                }
                c.state = CircuitState::HalfOpen;
                set_gauge(&key, c.state);
                true
            }
        };
        Ok(Ticket {
            breakers: Some(self.clone()),
            key,
            trial,
        })
    }

    /// Every circuit seen so far.
    pub fn snapshot(&self) -> Vec<CircuitView> {
        let map = self.circuits.lock().expect("breaker lock");
        map.iter()
            .map(|((p, md), c)| CircuitView {
                provider: p.clone(),
                model: md.clone(),
                state: c.state,
                consecutive_failures: c.consecutive,
                retry_in_secs: (c.state == CircuitState::Open).then(|| {
                    self.cfg
                        .cooldown
                        .saturating_sub(c.opened_at.elapsed())
                        .as_secs_f64()
                        .ceil() as u64
                }),
            })
            .collect()
    }

    /// Ends every cool-down now (tests).
    #[cfg(test)]
    fn expire(&self) {
        let mut map = self.circuits.lock().expect("breaker lock");
        for c in map.values_mut() {
            c.opened_at = Instant::now()
                .checked_sub(self.cfg.cooldown)
                .unwrap_or_else(Instant::now);
        }
    }

    fn record(&self, key: &(String, String), trial: bool, fault: Option<bool>) {
        let mut map = self.circuits.lock().expect("breaker lock");
        let Some(c) = map.get_mut(key) else {
            return;
        };
        let before = c.state;
        match fault {
            // Abandoned trial: the next caller may try at once.
            None => {
                if trial && c.state == CircuitState::HalfOpen {
                    c.state = CircuitState::Open;
                    c.opened_at = Instant::now()
                        .checked_sub(self.cfg.cooldown)
                        .unwrap_or_else(Instant::now);
                }
            }
            Some(false) => {
                c.consecutive = 0;
                if trial || c.state == CircuitState::HalfOpen {
                    c.state = CircuitState::Closed;
                }
            }
            Some(true) => {
                c.consecutive = c.consecutive.saturating_add(1);
                let reopen = trial && c.state == CircuitState::HalfOpen;
                if reopen || (c.state == CircuitState::Closed && c.consecutive >= self.cfg.failures)
                {
                    c.state = CircuitState::Open;
                    c.opened_at = Instant::now();
                    metrics::counter!(m::PROVIDER_CIRCUIT_OPENED_TOTAL, "provider" => key.0.clone(), "model" => key.1.clone())
                        .increment(1);
                    tracing::warn!(provider = %key.0, model = %key.1, failures = c.consecutive,
                        "circuit opened: calls fail fast for the cool-down");
                }
            }
        }
        if c.state != before {
            set_gauge(key, c.state);
        }
    }
}

fn open(provider: &str, model: &str, retry_after: Duration) -> ServiceError {
    ServiceError::CircuitOpen {
        provider: provider.to_owned(),
        model: model.to_owned(),
        retry_after: retry_after.max(Duration::from_secs(1)),
    }
}

impl Ticket {
    /// Records the call's outcome.
    pub fn finish<T>(mut self, result: &Result<T, ProviderError>) {
        if let Some(b) = self.breakers.take() {
            let fault = match result {
                Ok(_) => false,
                Err(e) => is_provider_fault(e),
            };
            b.record(&self.key, self.trial, Some(fault));
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(b) = self.breakers.take() {
            b.record(&self.key, self.trial, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail() -> Result<(), ProviderError> {
        Err(ProviderError::Upstream {
            status: 503,
            message: "x".into(),
        })
    }

    #[test]
    fn opens_after_n_faults_half_opens_and_closes() {
        let b = Arc::new(Breakers::new(BreakerConfig {
            failures: 3,
            cooldown: Duration::from_secs(3600),
        }));
        // 4xx answers never count and reset the streak.
        for _ in 0..2 {
            b.admit("openai", "m").unwrap().finish(&fail());
        }
        b.admit("openai", "m")
            .unwrap()
            .finish(&Err::<(), _>(ProviderError::BadRequest {
                message: "x".into(),
            }));
        for _ in 0..3 {
            b.admit("openai", "m").unwrap().finish(&fail());
        }
        assert!(matches!(
            b.admit("openai", "m"),
            Err(ServiceError::CircuitOpen { .. })
        ));
        // Other models are independent.
        b.admit("openai", "other")
            .unwrap()
            .finish(&Ok::<_, ProviderError>(()));
        b.expire();
        let trial = b.admit("openai", "m").unwrap();
        assert!(trial.trial);
        assert!(b.admit("openai", "m").is_err(), "one trial at a time");
        trial.finish(&fail());
        assert_eq!(b.snapshot()[0].state, CircuitState::Open);
        assert!(
            b.admit("openai", "m").is_err(),
            "open again for a cool-down"
        );
        b.expire();
        // An abandoned trial lets the next caller try at once.
        drop(b.admit("openai", "m").unwrap());
        let trial = b.admit("openai", "m").unwrap();
        trial.finish(&Ok::<_, ProviderError>(()));
        assert_eq!(b.snapshot()[0].state, CircuitState::Closed);
        b.admit("openai", "m")
            .unwrap()
            .finish(&Ok::<_, ProviderError>(()));
    }
}
