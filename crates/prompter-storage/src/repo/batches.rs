//! Tracking batches (issue 18): a batch row with its counters, and one item
//! row per (country, repeat).
//!
//! Items are claimed like webhook outbox rows ([`Store::claim_batch_items`]:
//! one `UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` on
//! PostgreSQL, the write lock on SQLite) with a lease; an item whose lease
//! ran out (its instance died) is claimed again. Every item transition is
//! conditional on the item's state and owner, and moves the batch's
//! counters in the same transaction, so the counters are exact and the
//! batch is finished (`finished_at`, and its `batch.completed` event) by
//! exactly one transaction. A result is stored in the transaction that marks
//! its item done, only while the caller still owns the item, and the unique
//! index on (`batch_id`, `country`, `batch_repeat`) refuses a second one:
//! an item produces at most one result.

use super::lease::{lease_end, LeaseClaim};
use crate::sql::{self, Row, WriteTx};
use crate::{NewResult, Page, PageRequest, ResultRecord, Scope, StorageError, Store};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::Value;
use serde_json::Value as JsonValue;
use uuid::Uuid;

const TABLE: &str = "batches";
const ITEMS: &str = "batch_items";

/// Item states.
pub mod item_status {
    /// Waiting to be claimed (maybe after a backoff).
    pub const QUEUED: &str = "queued";
    /// Claimed by a worker.
    pub const RUNNING: &str = "running";
    /// Its result is stored.
    pub const DONE: &str = "done";
    /// Given up (a permanent error, or retries exhausted).
    pub const FAILED: &str = "failed";
    /// Cancelled before it started.
    pub const CANCELLED: &str = "cancelled";
}

/// A batch to create.
#[derive(Debug, Clone)]
pub struct NewBatch {
    /// Org.
    pub org_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// The template every item runs.
    pub template_id: Uuid,
    /// Prompt name (batches created by name).
    pub prompt: Option<String>,
    /// The label it was addressed through.
    pub label: Option<String>,
    /// The template's revision.
    pub revision: Option<i64>,
    /// The schedule that created it.
    pub schedule_id: Option<Uuid>,
    /// The request as given (shown back).
    pub spec: JsonValue,
    /// `(Idempotency-Key, request hash)`.
    pub idempotency: Option<(String, String)>,
    /// Prefix of the creating API key.
    pub created_by: Option<String>,
    /// Items in order.
    pub items: Vec<NewBatchItem>,
}

/// One item to create.
#[derive(Debug, Clone)]
pub struct NewBatchItem {
    /// Country code.
    pub country: String,
    /// Repeat index (0-based).
    pub repeat: i64,
    /// What the worker needs to run it (opaque here).
    pub run: JsonValue,
}

/// A batch with its counters.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRecord {
    /// Id.
    pub id: Uuid,
    /// Org.
    pub org_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// Template run by every item.
    pub template_id: Uuid,
    /// Prompt name.
    pub prompt: Option<String>,
    /// Label.
    pub label: Option<String>,
    /// Revision.
    pub revision: Option<i64>,
    /// Schedule that created it.
    pub schedule_id: Option<Uuid>,
    /// The request as given.
    pub spec: JsonValue,
    /// Items.
    pub total: i64,
    /// Items done.
    pub done: i64,
    /// Items failed.
    pub failed: i64,
    /// Items cancelled.
    pub cancelled: i64,
    /// Creating key prefix.
    pub created_by: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// First item claimed.
    pub started_at: Option<DateTime<Utc>>,
    /// Cancel requested.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Every item ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl BatchRecord {
    /// `queued`, `running`, `done`, `done_with_failures` or `cancelled`.
    pub fn status(&self) -> &'static str {
        match (self.finished_at, self.cancelled_at) {
            (Some(_), Some(_)) if self.cancelled > 0 => "cancelled",
            (Some(_), _) if self.failed > 0 => "done_with_failures",
            (Some(_), _) => "done",
            (None, _) if self.started_at.is_none() => "queued",
            (None, _) => "running",
        }
    }
}

/// One item.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItemRecord {
    /// Id.
    pub id: Uuid,
    /// Its batch.
    pub batch_id: Uuid,
    /// Position in the batch.
    pub seq: i64,
    /// Country code.
    pub country: String,
    /// Repeat index.
    pub repeat: i64,
    /// What to run.
    pub run: JsonValue,
    /// See [`item_status`].
    pub status: String,
    /// Claims so far.
    pub attempts: i64,
    /// The stored result.
    pub result_id: Option<Uuid>,
    /// Last error (JSON text written by the service).
    pub error: Option<String>,
}

/// Outcome of [`Store::create_batch`].
#[derive(Debug, Clone)]
pub enum BatchCreated {
    /// Created now.
    New(BatchRecord),
    /// The idempotency key created this batch before.
    Existing(BatchRecord),
    /// Same key, different request.
    Mismatch,
    /// The schedule's tick was taken by another instance.
    TickTaken,
}

/// A schedule tick to claim with a batch: (schedule, the `next_run_at` it
/// must still have, the next one after this tick, now).
#[derive(Debug, Clone, Copy)]
pub struct TickClaim {
    /// Schedule id.
    pub schedule_id: Uuid,
    /// Expected `next_run_at`.
    pub expected: DateTime<Utc>,
    /// New `next_run_at`.
    pub next: DateTime<Utc>,
    /// The tick's time (`last_run_at`).
    pub now: DateTime<Utc>,
}

/// Builds the `batch.completed` event (id, payload) of a finished batch.
pub type FinishEvent<'a> = &'a (dyn Fn(&BatchRecord) -> Option<(Uuid, String)> + Sync);

const BATCH_COLUMNS: &str = "id, org_id, workspace_id, template_id, prompt, label, revision, \
    schedule_id, spec, total, done_count, failed_count, cancelled_count, created_by, created_at, \
    started_at, cancelled_at, finished_at";

const ITEM_COLUMNS: &str =
    "id, batch_id, seq, country, repeat_index, run, status, attempts, result_id, error";

/// Items per multi-row INSERT.
const ITEM_CHUNK: usize = 200;

fn decode_batch(r: &Row<'_>) -> Result<BatchRecord, StorageError> {
    Ok(BatchRecord {
        id: r.uuid("id")?,
        org_id: r.text("org_id")?,
        workspace_id: r.text("workspace_id")?,
        template_id: r.uuid("template_id")?,
        prompt: r.text_opt("prompt")?,
        label: r.text_opt("label")?,
        revision: r.i64_opt("revision")?,
        schedule_id: r.uuid_opt("schedule_id")?,
        spec: r.json("spec")?,
        total: r.i64("total")?,
        done: r.i64("done_count")?,
        failed: r.i64("failed_count")?,
        cancelled: r.i64("cancelled_count")?,
        created_by: r.text_opt("created_by")?,
        created_at: r.ts("created_at")?,
        started_at: r.ts_opt("started_at")?,
        cancelled_at: r.ts_opt("cancelled_at")?,
        finished_at: r.ts_opt("finished_at")?,
    })
}

fn decode_item(r: &Row<'_>) -> Result<BatchItemRecord, StorageError> {
    Ok(BatchItemRecord {
        id: r.uuid("id")?,
        batch_id: r.uuid("batch_id")?,
        seq: r.i64("seq")?,
        country: r.text("country")?,
        repeat: r.i64("repeat_index")?,
        run: r.json("run")?,
        status: r.text("status")?,
        attempts: r.i64("attempts")?,
        result_id: r.uuid_opt("result_id")?,
        error: r.text_opt("error")?,
    })
}

/// The claim: queued items due at `$3`, and running ones whose lease ran out.
const CLAIM: LeaseClaim = LeaseClaim {
    table: ITEMS,
    also_set: ", status = 'running', attempts = attempts + 1, updated_at = $3",
    due: "(status = 'queued' AND next_attempt_at <= $3) \
          OR (status = 'running' AND lease_until <= $3)",
    order_by: "next_attempt_at, seq",
    returning: ITEM_COLUMNS,
};

impl Store {
    /// Creates a batch and its items in one transaction, `queued`. With an
    /// idempotency key already used in the workspace: the earlier batch
    /// (`Existing`) or `Mismatch`. With a `tick`, the schedule's
    /// `next_run_at` moves by compare-and-set in the same transaction
    /// (`TickTaken`: another instance took this tick; nothing is written).
    pub async fn create_batch(
        &self,
        new: NewBatch,
        tick: Option<TickClaim>,
    ) -> Result<BatchCreated, StorageError> {
        let b = self.backend;
        let now = sql::now();
        let id = Uuid::now_v7();
        let err = |e: crate::error::DbFail| e.into_storage(TABLE);
        let mut tx = self.begin_write().await.map_err(err)?;
        if let Some(t) = tick {
            let n = tx
                .execute(self.stmt(
                    "UPDATE schedules SET next_run_at = $1, last_run_at = $2, last_batch_id = $3, \
                     last_error = NULL WHERE id = $4 AND next_run_at = $5",
                    vec![
                        b.ts(t.next),
                        b.ts(t.now),
                        b.uuid(id),
                        b.uuid(t.schedule_id),
                        b.ts(t.expected),
                    ],
                ))
                .await
                .map_err(|e| e.into_storage("schedules"))?;
            if n == 0 {
                return Ok(BatchCreated::TickTaken);
            }
        }
        let (key, hash) = match &new.idempotency {
            Some((k, h)) => (Some(k.as_str()), Some(h.as_str())),
            None => (None, None),
        };
        let total = i64::try_from(new.items.len()).unwrap_or(i64::MAX);
        let inserted = tx
            .query_all(self.stmt(
                &format!(
                    "INSERT INTO batches ({BATCH_COLUMNS}, idempotency_key, request_hash) VALUES \
                     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 0, 0, $11, $12, NULL, NULL, NULL, \
                     $13, $14) ON CONFLICT (org_id, workspace_id, idempotency_key) \
                     WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING {BATCH_COLUMNS}"
                ),
                vec![
                    b.uuid(id),
                    sql::text(&new.org_id),
                    sql::text(&new.workspace_id),
                    b.uuid(new.template_id),
                    sql::text_opt(new.prompt.as_deref()),
                    sql::text_opt(new.label.as_deref()),
                    sql::int_opt(new.revision),
                    b.uuid_opt(new.schedule_id),
                    b.json(&new.spec),
                    sql::int(total),
                    sql::text_opt(new.created_by.as_deref()),
                    b.ts(now),
                    sql::text_opt(key),
                    sql::text_opt(hash),
                ],
            ))
            .await
            .map_err(err)?;
        let Some(row) = inserted.first() else {
            drop(tx);
            let (Some(key), Some(hash)) = (key, hash) else {
                return Err(StorageError::internal("batch insert returned no row"));
            };
            let row = self
                .q_one(self.stmt(
                    &format!(
                        "SELECT {BATCH_COLUMNS}, request_hash FROM batches WHERE org_id = $1 \
                         AND workspace_id = $2 AND idempotency_key = $3"
                    ),
                    vec![
                        sql::text(&new.org_id),
                        sql::text(&new.workspace_id),
                        sql::text(key),
                    ],
                ))
                .await
                .map_err(err)?
                .ok_or_else(|| StorageError::unavailable("batch idempotency key raced; retry"))?;
            let r = self.row(&row);
            if r.text_opt("request_hash")?.as_deref() != Some(hash) {
                return Ok(BatchCreated::Mismatch);
            }
            return Ok(BatchCreated::Existing(decode_batch(&r)?));
        };
        let rec = decode_batch(&self.row(row))?;
        for (c, chunk) in new.items.chunks(ITEM_CHUNK).enumerate() {
            let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 10);
            let mut rows = Vec::with_capacity(chunk.len());
            for (i, item) in chunk.iter().enumerate() {
                let seq = (c * ITEM_CHUNK + i) as i64;
                let p = values.len();
                rows.push(format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, 'queued', 0, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7,
                    p + 8
                ));
                values.extend([
                    b.uuid(Uuid::now_v7()),
                    b.uuid(id),
                    sql::int(seq),
                    sql::text(&item.country),
                    sql::int(item.repeat),
                    b.json(&item.run),
                    b.ts(now),
                    b.ts(now),
                ]);
            }
            tx.execute(self.stmt(
                &format!(
                    "INSERT INTO batch_items (id, batch_id, seq, country, repeat_index, run, \
                     status, attempts, next_attempt_at, updated_at) VALUES {}",
                    rows.join(", ")
                ),
                values,
            ))
            .await
            .map_err(|e| e.into_storage(ITEMS))?;
        }
        tx.commit().await.map_err(err)?;
        Ok(BatchCreated::New(rec))
    }

    /// A batch by id; `NotFound` if absent or outside `scope`.
    pub async fn get_batch(&self, scope: &Scope, id: Uuid) -> Result<BatchRecord, StorageError> {
        let q = Query::select()
            .expr(Expr::cust(BATCH_COLUMNS))
            .from(Alias::new(TABLE))
            .and_where(Expr::col(Alias::new("id")).eq(self.backend.uuid(id)))
            .cond_where(scope.cond(Alias::new("org_id"), Alias::new("workspace_id")))
            .to_owned();
        let row = self
            .q_one(self.build(&q))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        match row {
            Some(r) => decode_batch(&self.row(&r)),
            None => Err(StorageError::NotFound),
        }
    }

    /// The items of a batch in order (call after [`Store::get_batch`] has
    /// checked the scope).
    pub async fn batch_items(&self, batch_id: Uuid) -> Result<Vec<BatchItemRecord>, StorageError> {
        let rows = self
            .q_all(self.stmt(
                &format!("SELECT {ITEM_COLUMNS} FROM batch_items WHERE batch_id = $1 ORDER BY seq"),
                vec![self.backend.uuid(batch_id)],
            ))
            .await
            .map_err(|e| e.into_storage(ITEMS))?;
        rows.iter().map(|r| decode_item(&self.row(r))).collect()
    }

    /// Batches newest first, optionally only a schedule's.
    pub async fn list_batches(
        &self,
        scope: &Scope,
        schedule_id: Option<Uuid>,
        page: &PageRequest,
    ) -> Result<Page<BatchRecord>, StorageError> {
        let mut q = Query::select()
            .expr(Expr::cust(BATCH_COLUMNS))
            .from(Alias::new(TABLE))
            .cond_where(scope.cond(Alias::new("org_id"), Alias::new("workspace_id")))
            .to_owned();
        if let Some(s) = schedule_id {
            q.and_where(Expr::col(Alias::new("schedule_id")).eq(self.backend.uuid(s)));
        }
        self.list_keyset(
            q,
            Alias::new("created_at"),
            Alias::new("id"),
            page,
            TABLE,
            decode_batch,
            |r| (r.created_at, r.id),
        )
        .await
    }

    /// Claims up to `limit` items for `owner` until `now + lease`: queued
    /// ones due at `now`, and running ones whose lease ran out (their
    /// instance died). Each claim counts an attempt. No two claimers get
    /// the same item while its lease runs (see the module docs). Call
    /// [`Store::mark_batch_started`] for batches seen for the first time.
    pub async fn claim_batch_items(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u64,
    ) -> Result<Vec<BatchItemRecord>, StorageError> {
        let rows = self
            .claim_leased(&CLAIM, owner, now, lease, limit)
            .await
            .map_err(|e| e.into_storage(ITEMS))?;
        let mut items = rows
            .iter()
            .map(|r| decode_item(&self.row(r)))
            .collect::<Result<Vec<_>, _>>()?;
        items.sort_by_key(|i| (i.batch_id, i.seq));
        Ok(items)
    }

    /// Records that a batch has started (its first claim); a no-op after.
    pub async fn mark_batch_started(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let b = self.backend;
        self.w_exec(self.stmt(
            "UPDATE batches SET started_at = $1 WHERE id = $2 AND started_at IS NULL",
            vec![b.ts(at), b.uuid(id)],
        ))
        .await
        .map_err(|e| e.into_storage(TABLE))?;
        Ok(())
    }

    /// Extends the lease of every item `owner` runs (its heartbeat).
    pub async fn renew_batch_leases(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> Result<u64, StorageError> {
        let b = self.backend;
        self.w_exec(self.stmt(
            "UPDATE batch_items SET lease_until = $1 WHERE claimed_by = $2 AND status = 'running'",
            vec![b.ts(lease_end(now, lease)), sql::text(owner)],
        ))
        .await
        .map_err(|e| e.into_storage(ITEMS))
    }

    /// Puts every running item of `owner` back in the queue (a graceful
    /// stop), or with `owner` None every running item (SQLite start-up: one
    /// process owns the file, so whatever runs was left by a dead one).
    pub async fn requeue_batch_items(&self, owner: Option<&str>) -> Result<u64, StorageError> {
        let (cond, values) = match owner {
            Some(o) => (" AND claimed_by = $1", vec![sql::text(o)]),
            None => ("", vec![]),
        };
        self.w_exec(self.stmt(
            &format!(
                "UPDATE batch_items SET status = 'queued', claimed_by = NULL, lease_until = NULL \
                 WHERE status = 'running'{cond}"
            ),
            values,
        ))
        .await
        .map_err(|e| e.into_storage(ITEMS))
    }

    /// Stores the results of items `owner` still runs and marks them done,
    /// all in one transaction (group commit: the batch worker gathers the
    /// items that finished meanwhile), with the usage rollup and each
    /// batch's counters moved once; `finish` builds the completion event of
    /// a batch that ends here. Per item, in order: `None` when the item is
    /// no longer this owner's (its lease ran out and another worker took
    /// it): its result is not stored.
    pub async fn complete_batch_items(
        &self,
        owner: &str,
        done: Vec<(BatchItemRecord, NewResult)>,
        finish: FinishEvent<'_>,
    ) -> Result<Vec<Option<ResultRecord>>, StorageError> {
        let b = self.backend;
        let now = sql::now();
        let err = |e: crate::error::DbFail| e.into_storage("prompt_results");
        let mut tx = self.begin_write().await.map_err(err)?;
        // 1. Take the items still ours (one statement), 2. insert their
        // results (one multi-row statement).
        let prepared: Vec<(BatchItemRecord, sea_orm::Statement, ResultRecord)> = done
            .into_iter()
            .map(|(item, result)| {
                let (stmt, rec) = self.result_insert(result);
                (item, stmt, rec)
            })
            .collect();
        let mut values: Vec<Value> = vec![b.ts(now), sql::text(owner)];
        let mut case = String::new();
        let mut ids = Vec::with_capacity(prepared.len());
        for (item, _, rec) in &prepared {
            let k = values.len() + 1;
            case.push_str(&format!(" WHEN ${k} THEN ${}", k + 1));
            ids.push(format!("${k}"));
            values.extend([b.uuid(item.id), b.uuid(rec.id)]);
        }
        let won = tx
            .query_all(self.stmt(
                &format!(
                    "UPDATE batch_items SET status = 'done', result_id = CASE id{case} END, \
                     claimed_by = NULL, lease_until = NULL, error = NULL, updated_at = $1 \
                     WHERE id IN ({}) AND status = 'running' AND claimed_by = $2 RETURNING id",
                    ids.join(", ")
                ),
                values,
            ))
            .await
            .map_err(|e| e.into_storage(ITEMS))?;
        let won: std::collections::HashSet<Uuid> = won
            .iter()
            .map(|r| self.row(r).uuid("id"))
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(prepared.len());
        let mut stored: Vec<Uuid> = Vec::new();
        let mut per_batch: std::collections::BTreeMap<Uuid, i64> = Default::default();
        let mut rows: Vec<Value> = Vec::new();
        let width = crate::repo::results::RESULT_INSERT
            .columns
            .split(',')
            .count()
            + 2;
        for (item, stmt, mut rec) in prepared {
            if !won.contains(&item.id) {
                out.push(None);
                continue;
            }
            rows.extend(stmt.values.map(|v| v.0).unwrap_or_default());
            rows.extend([b.uuid(item.batch_id), sql::int(item.repeat)]);
            rec.batch = Some(crate::BatchRef {
                batch_id: item.batch_id,
                repeat: item.repeat,
            });
            stored.push(rec.id);
            *per_batch.entry(item.batch_id).or_default() += 1;
            out.push(Some(rec));
        }
        if !stored.is_empty() {
            let tuples: Vec<String> = (0..stored.len())
                .map(|r| {
                    let ps: Vec<String> =
                        (1..=width).map(|c| format!("${}", r * width + c)).collect();
                    format!("({})", ps.join(", "))
                })
                .collect();
            tx.execute(self.stmt(
                &format!(
                    "INSERT INTO prompt_results ({}, batch_id, batch_repeat) VALUES {}",
                    crate::repo::results::RESULT_INSERT.columns,
                    tuples.join(", ")
                ),
                rows,
            ))
            .await
            .map_err(err)?;
        }
        if !stored.is_empty() {
            tx.execute(crate::repo::usage::rollup_stmt(b, &stored))
                .await
                .map_err(|e| e.into_storage("usage_daily"))?;
        }
        // Batch rows last and in id order: short, deadlock-free row locks.
        for (batch_id, n) in per_batch {
            self.count_and_finish(&mut tx, batch_id, "done_count", n, finish)
                .await?;
        }
        tx.commit().await.map_err(err)?;
        metrics::counter!("prompter_prompt_results_insert_total").increment(stored.len() as u64);
        Ok(out)
    }

    /// Gives up an item `owner` runs: `failed` with `error`. `Ok(None)`
    /// when it is no longer this owner's; else whether the batch finished.
    pub async fn fail_batch_item(
        &self,
        item: &BatchItemRecord,
        owner: &str,
        error: &str,
        finish: FinishEvent<'_>,
    ) -> Result<Option<bool>, StorageError> {
        let b = self.backend;
        let err = |e: crate::error::DbFail| e.into_storage(ITEMS);
        let mut tx = self.begin_write().await.map_err(err)?;
        let n = tx
            .execute(self.stmt(
                "UPDATE batch_items SET status = 'failed', error = $1, claimed_by = NULL, \
                 lease_until = NULL, updated_at = $2 \
                 WHERE id = $3 AND status = 'running' AND claimed_by = $4",
                vec![
                    sql::text(error),
                    b.ts(sql::now()),
                    b.uuid(item.id),
                    sql::text(owner),
                ],
            ))
            .await
            .map_err(err)?;
        if n == 0 {
            return Ok(None);
        }
        let finished = self
            .count_and_finish(&mut tx, item.batch_id, "failed_count", 1, finish)
            .await?;
        tx.commit().await.map_err(err)?;
        Ok(Some(finished))
    }

    /// Puts an item `owner` runs back in the queue, due at `at` (a retry
    /// after a provider-side failure); false when it is no longer this
    /// owner's.
    pub async fn retry_batch_item_at(
        &self,
        item: &BatchItemRecord,
        owner: &str,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StorageError> {
        let b = self.backend;
        let n = self
            .w_exec(self.stmt(
                "UPDATE batch_items SET status = 'queued', next_attempt_at = $1, error = $2, \
                 claimed_by = NULL, lease_until = NULL, updated_at = $3 \
                 WHERE id = $4 AND status = 'running' AND claimed_by = $5",
                vec![
                    b.ts(at),
                    sql::text(error),
                    b.ts(sql::now()),
                    b.uuid(item.id),
                    sql::text(owner),
                ],
            ))
            .await
            .map_err(|e| e.into_storage(ITEMS))?;
        Ok(n == 1)
    }

    /// Cancels a batch: its queued items never start (running ones finish).
    /// Returns the batch after the change.
    pub async fn cancel_batch(
        &self,
        scope: &Scope,
        id: Uuid,
        finish: FinishEvent<'_>,
    ) -> Result<BatchRecord, StorageError> {
        self.get_batch(scope, id).await?;
        let b = self.backend;
        let now = sql::now();
        let err = |e: crate::error::DbFail| e.into_storage(ITEMS);
        let mut tx = self.begin_write().await.map_err(err)?;
        let n = tx
            .execute(self.stmt(
                "UPDATE batch_items SET status = 'cancelled', updated_at = $1 \
                 WHERE batch_id = $2 AND status = 'queued'",
                vec![b.ts(now), b.uuid(id)],
            ))
            .await
            .map_err(err)?;
        tx.execute(self.stmt(
            "UPDATE batches SET cancelled_at = $1 WHERE id = $2 AND cancelled_at IS NULL",
            vec![b.ts(now), b.uuid(id)],
        ))
        .await
        .map_err(err)?;
        self.count_and_finish(&mut tx, id, "cancelled_count", n as i64, finish)
            .await?;
        tx.commit().await.map_err(err)?;
        self.get_batch(scope, id).await
    }

    /// Puts a batch's failed items back in the queue (attempts from 0);
    /// the batch is unfinished again when there were any. Returns the
    /// batch after the change and how many items were requeued.
    pub async fn retry_failed_batch_items(
        &self,
        scope: &Scope,
        id: Uuid,
    ) -> Result<(BatchRecord, u64), StorageError> {
        self.get_batch(scope, id).await?;
        let b = self.backend;
        let now = sql::now();
        let err = |e: crate::error::DbFail| e.into_storage(ITEMS);
        let mut tx = self.begin_write().await.map_err(err)?;
        let n = tx
            .execute(self.stmt(
                "UPDATE batch_items SET status = 'queued', attempts = 0, error = NULL, \
                 next_attempt_at = $1, updated_at = $1 WHERE batch_id = $2 AND status = 'failed'",
                vec![b.ts(now), b.uuid(id)],
            ))
            .await
            .map_err(err)?;
        if n > 0 {
            tx.execute(self.stmt(
                "UPDATE batches SET failed_count = failed_count - $1, finished_at = NULL \
                 WHERE id = $2",
                vec![sql::int(n as i64), b.uuid(id)],
            ))
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok((self.get_batch(scope, id).await?, n))
    }

    /// Adds `by` to a counter and, when every item has ended, finishes the
    /// batch (once) and enqueues its event, in one statement. Returns
    /// whether it finished now.
    async fn count_and_finish(
        &self,
        tx: &mut WriteTx,
        batch_id: Uuid,
        counter: &'static str,
        by: i64,
        finish: FinishEvent<'_>,
    ) -> Result<bool, StorageError> {
        let b = self.backend;
        let err = |e: crate::error::DbFail| e.into_storage(TABLE);
        let now = sql::now();
        // SET expressions read the row as it was: `finished_at` is set by
        // the statement whose addition reaches the total.
        let row = tx
            .query_all(self.stmt(
                &format!(
                    "UPDATE batches SET {counter} = {counter} + $1, finished_at = CASE \
                     WHEN finished_at IS NULL \
                     AND done_count + failed_count + cancelled_count + $1 >= total THEN $2 \
                     ELSE finished_at END WHERE id = $3 \
                     RETURNING {BATCH_COLUMNS}"
                ),
                vec![sql::int(by), b.ts(now), b.uuid(batch_id)],
            ))
            .await
            .map_err(err)?;
        let Some(row) = row.first() else {
            return Ok(false);
        };
        let r = self.row(row);
        let ended_before =
            r.i64("done_count")? + r.i64("failed_count")? + r.i64("cancelled_count")? - by;
        let rec = decode_batch(&r)?;
        if rec.finished_at.is_none() || ended_before >= rec.total {
            return Ok(false);
        }
        if let Some((event_id, payload)) = finish(&rec) {
            tx.execute(self.stmt(
                super::drift::INSERT_OUTBOX_SQL,
                vec![
                    b.uuid(Uuid::now_v7()),
                    b.uuid(event_id),
                    sql::text(&payload),
                    b.ts(now),
                ],
            ))
            .await
            .map_err(|e| e.into_storage("webhook_outbox"))?;
        }
        Ok(true)
    }
}
