//! The batch worker of one instance: claims due items with a lease
//! (`Store::claim_batch_items`), runs each through the run path
//! (`Prompter::produce` in the batch lane: rendering, budget check,
//! breaker, the batch share of the provider cap, usage and cost), and
//! stores the result in the transaction that marks the item done, only
//! while this instance still owns the item.
//!
//! A heartbeat renews the leases of the items this instance runs; an
//! instance that dies stops renewing, and any other instance claims its
//! items once their lease runs out (a SQLite server, alone on its file,
//! re-queues them at start-up). A worker killed after the provider answered
//! but before its transaction committed stored nothing: the item runs
//! again, and no item ever has a second result (the item update is
//! conditional on the owner, and a unique index covers batch results).
//!
//! Provider-side failures (rate limits, overload, timeouts, 5xx, an open
//! circuit, a saturated cap) are retried with exponential backoff until
//! `max_attempts`; other errors (bad request, auth, budget, missing
//! template) fail the item at once with its error code.

use crate::error::ServiceError;
use crate::metrics_catalog as m;
use crate::runs::RunRequest;
use crate::{Lane, Prompter};
use chrono::Utc;
use prompter_domain::Json;
use prompter_providers::ProviderError;
use prompter_storage::{
    BatchItemRecord, BatchRecord, NewResult, ResultRecord, Scope, StorageError,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

/// An error as stored on an item: `(code, message)` in the API's terms.
pub type DescribeError = fn(ServiceError) -> (String, String);

/// Worker settings.
#[derive(Debug, Clone)]
pub struct BatchWorkerConfig {
    /// This instance's name in `batch_items.claimed_by`.
    pub instance_id: String,
    /// How long a claim holds without a heartbeat (default 60 s).
    pub lease: Duration,
    /// How often the queue is polled when idle.
    pub poll_every: Duration,
    /// Items this instance runs at once.
    pub concurrency: usize,
    /// Attempts of an item before a provider-side failure fails it.
    pub max_attempts: i64,
    /// First retry delay (doubled per attempt, at most 5 min).
    pub retry_base: Duration,
    /// Maps an error to its stable code and message.
    pub describe: DescribeError,
}

/// How long a busy worker lets slots free up before claiming again.
const CLAIM_GATHER: Duration = Duration::from_millis(10);

/// Default claim lease.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// The delay before attempt `attempts + 1`.
pub fn backoff(base: Duration, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 16) - 1).unwrap_or(0);
    base.saturating_mul(2u32.saturating_pow(exp))
        .min(Duration::from_secs(300))
}

/// Whether an item failing with `e` is worth another attempt (the provider
/// side or a passing condition), and the least wait it asks for.
fn retryable(e: &ServiceError) -> Option<Duration> {
    match e {
        ServiceError::Provider { source, .. } => match source {
            ProviderError::RateLimited { .. }
            | ProviderError::Overloaded { .. }
            | ProviderError::Timeout
            | ProviderError::Upstream { .. } => Some(source.retry_after().unwrap_or_default()),
            _ => None,
        },
        ServiceError::ProviderSaturated { retry_after, .. }
        | ServiceError::CircuitOpen { retry_after, .. }
        | ServiceError::ProbePending { retry_after } => Some(*retry_after),
        ServiceError::ResultNotStored { .. } => Some(Duration::ZERO),
        ServiceError::Storage(prompter_storage::StorageError::Unavailable { .. }) => {
            Some(Duration::ZERO)
        }
        _ => None,
    }
}

/// The run of an item, from what its batch stored.
fn run_request(item: &BatchItemRecord) -> RunRequest {
    let run = &item.run;
    let text = |k: &str| run.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    RunRequest {
        rendered_prompt: None,
        render_vars: Some(Json::from_serde(
            run.get("vars").unwrap_or(&serde_json::Value::Null),
        )),
        label: text("label"),
        brand_name: text("brand_name"),
        country: Some(item.country.clone()),
        analysis_scope: text("analysis_scope").unwrap_or_else(|| "brand".to_owned()),
        runtime_vars: run
            .get("runtime_vars")
            .cloned()
            .unwrap_or(serde_json::Value::Null),
        use_grounding: false,
    }
}

impl Prompter {
    /// Runs one claimed item to its end state (done, retried or failed).
    async fn run_batch_item(
        &self,
        cfg: &BatchWorkerConfig,
        commits: &Committer,
        item: BatchItemRecord,
    ) {
        let owner = cfg.instance_id.as_str();
        let store = &self.inner.store;
        let finish = |b: &BatchRecord| self.completed_event(b);
        let outcome = async {
            let id: Uuid = item
                .run
                .get("template_id")
                .and_then(|v| v.as_str())
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or(ServiceError::TemplateNotFound)?;
            let tpl = self.get_template(&Scope::Unrestricted, id).await?;
            let new = self.produce(&tpl, run_request(&item), Lane::Batch).await?;
            Ok::<_, ServiceError>((tpl, new))
        }
        .await;
        let label = match outcome {
            Ok((tpl, new)) => match commits.commit(item.clone(), new).await {
                Ok(Some(result)) => {
                    if result.usage.cost_micros.is_some_and(|c| c > 0) {
                        self.budget_after_run(&tpl).await;
                    }
                    "done"
                }
                Ok(None) => "lost",
                Err(e) => {
                    // The result was not stored; the item runs again.
                    tracing::warn!(item = %item.id, error = %e, "batch result not stored; retrying the item");
                    let at = Utc::now() + chrono::Duration::seconds(1);
                    let _ = store
                        .retry_batch_item_at(
                            &item,
                            owner,
                            at,
                            &error_json("RESULT_NOT_STORED", &e.to_string()),
                        )
                        .await;
                    "retried"
                }
            },
            Err(e) => {
                let wait = retryable(&e);
                let (code, message) = (cfg.describe)(e);
                let error = error_json(&code, &message);
                match wait {
                    Some(min) if item.attempts < cfg.max_attempts => {
                        let delay = backoff(cfg.retry_base, item.attempts).max(min);
                        let at = Utc::now()
                            + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                        match store.retry_batch_item_at(&item, owner, at, &error).await {
                            Ok(true) => "retried",
                            Ok(false) => "lost",
                            Err(e) => {
                                tracing::warn!(item = %item.id, error = %e, "batch item not re-queued; its lease will");
                                "retried"
                            }
                        }
                    }
                    _ => match store.fail_batch_item(&item, owner, &error, &finish).await {
                        Ok(Some(_)) => "failed",
                        Ok(None) => "lost",
                        Err(e) => {
                            tracing::warn!(item = %item.id, error = %e, "batch item failure not recorded; its lease will retry it");
                            "retried"
                        }
                    },
                }
            }
        };
        metrics::counter!(m::BATCH_ITEMS_TOTAL, "outcome" => label).increment(1);
    }
}

/// Items whose results wait for the next group commit.
type Pending = (
    BatchItemRecord,
    NewResult,
    oneshot::Sender<Result<Option<ResultRecord>, String>>,
);

/// Group commit of finished items: one task takes whatever finished
/// meanwhile (up to [`COMMIT_BATCH`]) and stores it in one transaction
/// (`Store::complete_batch_items`), so a batch's counter row and the usage
/// rollup are written once per transaction rather than once per item.
#[derive(Clone)]
struct Committer {
    tx: mpsc::Sender<Pending>,
}

/// Group commits in flight at once: one on SQLite (one writer anyway),
/// four on PostgreSQL (each statement is a round trip; the batch's counter
/// row is the only lock they share, taken last).
fn committers(backend: prompter_storage::Backend) -> usize {
    match backend {
        prompter_storage::Backend::Sqlite => 1,
        prompter_storage::Backend::Postgres => 4,
    }
}

/// Most items per group commit (several commits share a burst).
const COMMIT_BATCH: usize = 64;

impl Committer {
    fn spawn(prompter: Prompter, owner: String) -> Committer {
        let (tx, rx) = mpsc::channel::<Pending>(COMMIT_BATCH * 4);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..committers(prompter.store().backend()) {
            let rx = rx.clone();
            let prompter = prompter.clone();
            let owner = owner.clone();
            tokio::spawn(async move {
                let mut buf: Vec<Pending> = Vec::with_capacity(COMMIT_BATCH);
                loop {
                    // Whoever holds the receiver takes what is queued now.
                    if rx.lock().await.recv_many(&mut buf, COMMIT_BATCH).await == 0 {
                        return;
                    }
                    let finish = |b: &BatchRecord| prompter.completed_event(b);
                    let (work, replies): (Vec<_>, Vec<_>) = buf
                        .drain(..)
                        .map(|(item, result, reply)| ((item, result), reply))
                        .unzip();
                    match prompter
                        .store()
                        .complete_batch_items(&owner, work, &finish)
                        .await
                    {
                        Ok(out) => {
                            for (reply, r) in replies.into_iter().zip(out) {
                                let _ = reply.send(Ok(r));
                            }
                        }
                        Err(e) => {
                            let e = e.to_string();
                            for reply in replies {
                                let _ = reply.send(Err(e.clone()));
                            }
                        }
                    }
                }
            });
        }
        Committer { tx }
    }

    /// Stores an item's result with the next group commit.
    async fn commit(
        &self,
        item: BatchItemRecord,
        result: NewResult,
    ) -> Result<Option<ResultRecord>, StorageError> {
        let stopped = || StorageError::Unavailable {
            message: "the batch committer stopped".to_owned(),
        };
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((item, result, reply))
            .await
            .map_err(|_| stopped())?;
        rx.await
            .map_err(|_| stopped())?
            .map_err(|message| StorageError::Unavailable { message })
    }
}

fn error_json(code: &str, message: &str) -> String {
    serde_json::json!({"code": code, "message": message}).to_string()
}

/// Starts this instance's batch worker (claim loop and lease heartbeat).
/// On SQLite, items left running by a dead process are re-queued first.
pub fn spawn(prompter: Prompter, cfg: BatchWorkerConfig) -> Vec<tokio::task::JoinHandle<()>> {
    let cfg = Arc::new(cfg);
    let heartbeat = {
        let p = prompter.clone();
        let cfg = cfg.clone();
        tokio::spawn(async move {
            let every = (cfg.lease / 3).max(Duration::from_millis(50));
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = p
                    .store()
                    .renew_batch_leases(&cfg.instance_id, Utc::now(), cfg.lease)
                    .await
                {
                    tracing::warn!(error = %e, "batch lease renewal failed");
                }
            }
        })
    };
    let claims = tokio::spawn(async move {
        if prompter.store().backend() == prompter_storage::Backend::Sqlite {
            match prompter.store().requeue_batch_items(None).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(items = n, "re-queued batch items left running"),
                Err(e) => tracing::warn!(error = %e, "could not re-queue batch items"),
            }
        }
        claim_loop(prompter, cfg).await
    });
    vec![heartbeat, claims]
}

/// Batches this process has marked started (bounded; a repeat mark is a
/// harmless no-op write).
const STARTED_MEMORY: usize = 1024;

async fn claim_loop(prompter: Prompter, cfg: Arc<BatchWorkerConfig>) {
    let concurrency = cfg.concurrency.max(1);
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut started: std::collections::VecDeque<Uuid> = Default::default();
    let commits = Committer::spawn(prompter.clone(), cfg.instance_id.clone());
    loop {
        // Wait for a free slot, then claim as many items as slots are free;
        // while most slots are busy, let a few more free up first, so that
        // claims come in batches rather than one statement per item.
        match slots.clone().acquire_owned().await {
            Ok(p) => drop(p),
            Err(_) => return,
        }
        if slots.available_permits() < concurrency / 4 {
            tokio::time::sleep(CLAIM_GATHER).await;
        }
        let free = slots.available_permits() as u64;
        let claimed = prompter
            .store()
            .claim_batch_items(&cfg.instance_id, Utc::now(), cfg.lease, free)
            .await;
        let items = match claimed {
            Ok(items) => items,
            Err(e) => {
                tracing::warn!(error = %e, "claiming batch items failed");
                tokio::time::sleep(cfg.poll_every).await;
                continue;
            }
        };
        if items.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(cfg.poll_every) => {}
                _ = prompter.batch_wakeup() => {}
            }
            continue;
        }
        for item in &items {
            if !started.contains(&item.batch_id) {
                if let Err(e) = prompter
                    .store()
                    .mark_batch_started(item.batch_id, Utc::now())
                    .await
                {
                    tracing::warn!(error = %e, "could not mark a batch started");
                }
                started.push_back(item.batch_id);
                if started.len() > STARTED_MEMORY {
                    started.pop_front();
                }
            }
        }
        for item in items {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let p = prompter.clone();
            let cfg = cfg.clone();
            let commits = commits.clone();
            metrics::gauge!(m::BATCH_ITEMS_INFLIGHT).increment(1.0);
            tokio::spawn(async move {
                p.run_batch_item(&cfg, &commits, item).await;
                metrics::gauge!(m::BATCH_ITEMS_INFLIGHT).decrement(1.0);
                drop(permit);
            });
        }
    }
}

/// Puts this instance's running items back in the queue (a graceful stop),
/// so other instances need not wait for the leases.
pub async fn release_claims(prompter: &Prompter, instance_id: &str) {
    match prompter
        .store()
        .requeue_batch_items(Some(instance_id))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(items = n, "gave back batch items on shutdown"),
        Err(e) => tracing::warn!(error = %e, "could not give back batch items"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_millis(100);
        assert_eq!(backoff(b, 1), Duration::from_millis(100));
        assert_eq!(backoff(b, 3), Duration::from_millis(400));
        assert_eq!(backoff(b, 40), Duration::from_secs(300));
    }
}
