//! Per-provider concurrency caps (issue 17): at most N calls in flight to a
//! provider from this instance (`--provider-max-inflight openai=64,…`);
//! callers beyond the cap wait up to the queue timeout, then get
//! [`ServiceError::ProviderSaturated`] (503 `PROVIDER_SATURATED` with
//! `Retry-After`). Gauges count calls in flight and waiting per provider.
//!
//! Batch work (issue 18) takes its own share of each cap
//! (`--batch-cap-share`, default half): a batch call first takes a slot of
//! the provider's batch semaphore (`ceil(cap × share)` slots), then a slot
//! of the cap itself, waiting as long as it takes (background work never
//! answers `PROVIDER_SATURATED`). So at most that share of the cap is ever
//! held by batches, and interactive runs keep the rest.

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
    /// The batch share of each cap.
    batch: HashMap<String, Arc<Semaphore>>,
    queue_timeout: Duration,
}

/// A call slot; the in-flight gauge goes down when it is dropped.
#[derive(Debug)]
pub struct CapPermit {
    provider: String,
    _permit: Option<OwnedSemaphorePermit>,
    _batch: Option<OwnedSemaphorePermit>,
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
        Self::with_batch_share(limits, queue_timeout, 0.5)
    }

    /// Caps whose batch share is `share` (clamped to `[0, 1]`; at least one slot).
    pub fn with_batch_share(
        limits: &HashMap<String, usize>,
        queue_timeout: Duration,
        share: f64,
    ) -> Self {
        let share = if share.is_nan() {
            0.5
        } else {
            share.clamp(0.0, 1.0)
        };
        ProviderCaps {
            caps: limits
                .iter()
                .map(|(p, n)| (p.clone(), (*n, Arc::new(Semaphore::new(*n)))))
                .collect(),
            batch: limits
                .iter()
                .map(|(p, n)| {
                    let slots = ((*n as f64) * share).ceil().max(1.0) as usize;
                    (p.clone(), Arc::new(Semaphore::new(slots.min(*n))))
                })
                .collect(),
            queue_timeout,
        }
    }

    /// A slot for batch work: one of the batch share, then one of the cap,
    /// however long they take.
    pub async fn acquire_batch(&self, provider: &str) -> Result<CapPermit, ServiceError> {
        let (Some((_, sem)), Some(batch)) = (self.caps.get(provider), self.batch.get(provider))
        else {
            return self.acquire(provider).await;
        };
        let closed = |_| ServiceError::ProviderSaturated {
            provider: provider.to_owned(),
            retry_after: Duration::from_secs(1),
        };
        let batch = batch.clone().acquire_owned().await.map_err(closed)?;
        let permit = sem.clone().acquire_owned().await.map_err(closed)?;
        metrics::gauge!(m::PROVIDER_INFLIGHT, "provider" => provider.to_owned()).increment(1.0);
        Ok(CapPermit {
            provider: provider.to_owned(),
            _permit: Some(permit),
            _batch: Some(batch),
        })
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
            _batch: None,
        })
    }
}
