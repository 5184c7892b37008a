//! Per-provider concurrency caps (issue 17): at most N calls in flight to a
//! provider from this instance (`--provider-max-inflight openai=64,…`);
//! callers beyond the cap wait up to the queue timeout, then get
//! [`ServiceError::ProviderSaturated`] (503 `PROVIDER_SATURATED` with
//! `Retry-After`). Gauges count calls in flight and waiting per provider.

use crate::metrics_catalog as m;
use crate::ServiceError;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The caps of one instance; providers without a cap are unlimited.
#[derive(Debug, Default)]
pub struct ProviderCaps {
    caps: HashMap<String, (usize, Arc<Semaphore>)>,
    queue_timeout: Duration,
}

/// A call slot; the in-flight gauge goes down when it is dropped.
#[derive(Debug)]
pub struct CapPermit {
    provider: String,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for CapPermit {
    fn drop(&mut self) {
        metrics::gauge!(m::PROVIDER_INFLIGHT, "provider" => self.provider.clone()).decrement(1.0);
    }
}

/// Decrements the queued gauge however the wait ends.
struct Queued(String);

impl Drop for Queued {
    fn drop(&mut self) {
        metrics::gauge!(m::PROVIDER_QUEUED, "provider" => self.0.clone()).decrement(1.0);
    }
}

impl ProviderCaps {
    /// Caps by provider name (a cap of 0 is refused by the flag parser).
    pub fn new(limits: &HashMap<String, usize>, queue_timeout: Duration) -> Self {
        ProviderCaps {
            caps: limits
                .iter()
                .map(|(p, n)| (p.clone(), (*n, Arc::new(Semaphore::new(*n)))))
                .collect(),
            queue_timeout,
        }
    }

    /// The cap of `provider`, if any.
    pub fn limit(&self, provider: &str) -> Option<usize> {
        self.caps.get(provider).map(|(n, _)| *n)
    }

    /// Waits for a slot (at most the queue timeout).
    pub async fn acquire(&self, provider: &str) -> Result<CapPermit, ServiceError> {
        let permit = match self.caps.get(provider) {
            None => None,
            Some((_, sem)) => {
                let sem = sem.clone();
                let permit = match sem.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        metrics::gauge!(m::PROVIDER_QUEUED, "provider" => provider.to_owned())
                            .increment(1.0);
                        let _queued = Queued(provider.to_owned());
                        match tokio::time::timeout(self.queue_timeout, sem.acquire_owned()).await {
                            Ok(Ok(p)) => p,
                            _ => {
                                metrics::counter!(m::PROVIDER_SATURATED_TOTAL, "provider" => provider.to_owned())
                                    .increment(1);
                                return Err(ServiceError::ProviderSaturated {
                                    provider: provider.to_owned(),
                                    retry_after: self.queue_timeout.max(Duration::from_secs(1)),
                                });
                            }
                        }
                    }
                };
                Some(permit)
            }
        };
        metrics::gauge!(m::PROVIDER_INFLIGHT, "provider" => provider.to_owned()).increment(1.0);
        Ok(CapPermit {
            provider: provider.to_owned(),
            _permit: permit,
        })
    }
}
