//! In-process single-flight with a per-window memory of settled outcomes.

use super::{EnsureOutcome, GuardDecision};
use crate::error::ServiceResult;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug)]
enum Slot {
    InFlight(watch::Receiver<Option<EnsureOutcome>>),
    Done {
        outcome: EnsureOutcome,
        until: DateTime<Utc>,
    },
}

/// Map of probe keys to their in-flight or settled state.
#[derive(Debug, Default)]
pub(super) struct LocalFlights {
    slots: Mutex<HashMap<String, Slot>>,
}

enum Step {
    Reuse(EnsureOutcome),
    Wait(watch::Receiver<Option<EnsureOutcome>>),
    Lead(watch::Sender<Option<EnsureOutcome>>),
}

/// Removes an abandoned in-flight slot if the leading future is dropped.
struct LeadGuard<'a> {
    flights: &'a LocalFlights,
    key: &'a str,
    armed: bool,
}

impl Drop for LeadGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut slots = self.flights.slots.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(slots.get(self.key), Some(Slot::InFlight(_))) {
                slots.remove(self.key);
            }
        }
    }
}

impl LocalFlights {
    fn step(&self, key: &str) -> Step {
        let now = Utc::now();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots.get(key) {
            Some(Slot::Done { outcome, until }) if *until > now => {
                return Step::Reuse(outcome.clone())
            }
            // A live leader: wait for it. A dead one (sender dropped) is replaced below.
            Some(Slot::InFlight(rx)) if rx.has_changed().is_ok() => return Step::Wait(rx.clone()),
            _ => {}
        }
        if slots.len() > 4096 {
            slots.retain(|_, s| match s {
                Slot::Done { until, .. } => *until > now,
                Slot::InFlight(rx) => rx.has_changed().is_ok(),
            });
        }
        let (tx, rx) = watch::channel(None);
        slots.insert(key.to_owned(), Slot::InFlight(rx));
        Step::Lead(tx)
    }

    /// Runs `lead` once per key and window; concurrent callers wait up to `wait`.
    pub(super) async fn run<F, Fut>(
        &self,
        key: &str,
        until: DateTime<Utc>,
        wait: Duration,
        lead: F,
    ) -> ServiceResult<(EnsureOutcome, GuardDecision)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ServiceResult<(EnsureOutcome, GuardDecision)>>,
    {
        let mut lead = Some(lead);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.step(key) {
                Step::Reuse(o) => return Ok((o, GuardDecision::Reused)),
                Step::Wait(mut rx) => {
                    match tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await {
                        Ok(Ok(v)) => {
                            let outcome = v.clone().expect("wait_for guarantees Some");
                            return Ok((outcome, GuardDecision::Waited));
                        }
                        // The leader failed or was dropped: try again (maybe leading).
                        Ok(Err(_)) => continue,
                        Err(_) => return Err(super::pending(wait)),
                    }
                }
                Step::Lead(tx) => {
                    let f = lead
                        .take()
                        .expect("a call leads at most once: it returns after leading");
                    let mut guard = LeadGuard {
                        flights: self,
                        key,
                        armed: true,
                    };
                    let res = f().await;
                    guard.armed = false;
                    let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
                    match res {
                        Ok((outcome, decision)) => {
                            slots.insert(
                                key.to_owned(),
                                Slot::Done {
                                    outcome: outcome.clone(),
                                    until,
                                },
                            );
                            drop(slots);
                            let _ = tx.send(Some(outcome.clone()));
                            return Ok((outcome, decision));
                        }
                        Err(e) => {
                            slots.remove(key);
                            return Err(e);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use uuid::Uuid;

    fn outcome() -> EnsureOutcome {
        EnsureOutcome {
            version_id: Uuid::nil(),
            provider: "openai".into(),
            provider_version_key: "k".into(),
            captured_at: Utc::now(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_lead() {
        let flights = Arc::new(LocalFlights::default());
        let calls = Arc::new(AtomicU32::new(0));
        let until = Utc::now() + chrono::Duration::seconds(60);
        let mut handles = Vec::new();
        for _ in 0..50 {
            let flights = flights.clone();
            let calls = calls.clone();
            handles.push(tokio::spawn(async move {
                flights
                    .run("k", until, Duration::from_secs(5), || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok((outcome(), GuardDecision::Probed))
                    })
                    .await
                    .unwrap()
                    .1
            }));
        }
        let mut probed = 0;
        for h in handles {
            if h.await.unwrap() == GuardDecision::Probed {
                probed += 1;
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(probed, 1);
    }

    #[tokio::test]
    async fn a_failed_lead_releases_the_key() {
        let flights = LocalFlights::default();
        let until = Utc::now() + chrono::Duration::seconds(60);
        let first = flights
            .run("k", until, Duration::from_secs(1), || async {
                Err(crate::error::ServiceError::TemplateNotFound)
            })
            .await;
        assert!(first.is_err());
        let second = flights
            .run("k", until, Duration::from_secs(1), || async {
                Ok((outcome(), GuardDecision::Probed))
            })
            .await
            .unwrap();
        assert_eq!(second.1, GuardDecision::Probed);
        let third = flights
            .run("k", until, Duration::from_secs(1), || async {
                panic!("must not probe again in the window")
            })
            .await
            .unwrap();
        assert_eq!(third.1, GuardDecision::Reused);
    }

    #[tokio::test]
    async fn an_expired_window_probes_again() {
        let flights = LocalFlights::default();
        let past = Utc::now() - chrono::Duration::seconds(1);
        for _ in 0..2 {
            let (_, d) = flights
                .run("k", past, Duration::from_secs(1), || async {
                    Ok((outcome(), GuardDecision::Probed))
                })
                .await
                .unwrap();
            assert_eq!(d, GuardDecision::Probed);
        }
    }
}
