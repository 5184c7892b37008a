//! Schedules (issue 18): a cron expression and a batch spec. A tick is
//! claimed by moving `next_run_at` with compare-and-set, in the transaction
//! that creates the tick's batch (`Store::create_batch` with a
//! [`crate::TickClaim`]), so several instances create one batch per tick.

use crate::sql::{self, Row};
use crate::{Page, PageRequest, Scope, StorageError, Store};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, Query};
use serde_json::Value as JsonValue;
use uuid::Uuid;

const TABLE: &str = "schedules";

const COLUMNS: &str = "id, org_id, workspace_id, cron, spec, created_by, next_run_at, \
    last_run_at, last_batch_id, last_error, paused_reason, created_at";

/// A schedule to create.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    /// Org.
    pub org_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// Cron expression (UTC).
    pub cron: String,
    /// The batch spec (prompt, selector, body).
    pub spec: JsonValue,
    /// Prefix of the creating API key (None with auth off).
    pub created_by: Option<String>,
    /// First tick.
    pub next_run_at: DateTime<Utc>,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRecord {
    /// Id.
    pub id: Uuid,
    /// Org.
    pub org_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// Cron expression.
    pub cron: String,
    /// The batch spec.
    pub spec: JsonValue,
    /// Creating key prefix.
    pub created_by: Option<String>,
    /// Next tick.
    pub next_run_at: DateTime<Utc>,
    /// Last tick that ran.
    pub last_run_at: Option<DateTime<Utc>>,
    /// Batch of the last tick.
    pub last_batch_id: Option<Uuid>,
    /// Why the last tick made no batch.
    pub last_error: Option<String>,
    /// Why it is paused (its key was revoked or expired).
    pub paused_reason: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

fn decode(r: &Row<'_>) -> Result<ScheduleRecord, StorageError> {
    Ok(ScheduleRecord {
        id: r.uuid("id")?,
        org_id: r.text("org_id")?,
        workspace_id: r.text("workspace_id")?,
        cron: r.text("cron")?,
        spec: r.json("spec")?,
        created_by: r.text_opt("created_by")?,
        next_run_at: r.ts("next_run_at")?,
        last_run_at: r.ts_opt("last_run_at")?,
        last_batch_id: r.uuid_opt("last_batch_id")?,
        last_error: r.text_opt("last_error")?,
        paused_reason: r.text_opt("paused_reason")?,
        created_at: r.ts("created_at")?,
    })
}

impl Store {
    /// Stores a schedule.
    pub async fn insert_schedule(&self, s: NewSchedule) -> Result<ScheduleRecord, StorageError> {
        let b = self.backend;
        let rec = ScheduleRecord {
            id: Uuid::now_v7(),
            org_id: s.org_id,
            workspace_id: s.workspace_id,
            cron: s.cron,
            spec: s.spec,
            created_by: s.created_by,
            next_run_at: sql::micros(s.next_run_at),
            last_run_at: None,
            last_batch_id: None,
            last_error: None,
            paused_reason: None,
            created_at: sql::now(),
        };
        self.w_exec(self.stmt(
            &format!(
                "INSERT INTO schedules ({COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, NULL, NULL, $8)"
            ),
            vec![
                b.uuid(rec.id),
                sql::text(&rec.org_id),
                sql::text(&rec.workspace_id),
                sql::text(&rec.cron),
                b.json(&rec.spec),
                sql::text_opt(rec.created_by.as_deref()),
                b.ts(rec.next_run_at),
                b.ts(rec.created_at),
            ],
        ))
        .await
        .map_err(|e| e.into_storage(TABLE))?;
        Ok(rec)
    }

    /// A schedule; `NotFound` if absent or outside `scope`.
    pub async fn get_schedule(
        &self,
        scope: &Scope,
        id: Uuid,
    ) -> Result<ScheduleRecord, StorageError> {
        let q = Query::select()
            .expr(Expr::cust(COLUMNS))
            .from(Alias::new(TABLE))
            .and_where(Expr::col(Alias::new("id")).eq(self.backend.uuid(id)))
            .cond_where(scope.cond(Alias::new("org_id"), Alias::new("workspace_id")))
            .to_owned();
        match self
            .q_one(self.build(&q))
            .await
            .map_err(|e| e.into_storage(TABLE))?
        {
            Some(r) => decode(&self.row(&r)),
            None => Err(StorageError::NotFound),
        }
    }

    /// Schedules newest first.
    pub async fn list_schedules(
        &self,
        scope: &Scope,
        page: &PageRequest,
    ) -> Result<Page<ScheduleRecord>, StorageError> {
        let q = Query::select()
            .expr(Expr::cust(COLUMNS))
            .from(Alias::new(TABLE))
            .cond_where(scope.cond(Alias::new("org_id"), Alias::new("workspace_id")))
            .to_owned();
        self.list_keyset(
            q,
            Alias::new("created_at"),
            Alias::new("id"),
            page,
            TABLE,
            decode,
            |r| (r.created_at, r.id),
        )
        .await
    }

    /// Deletes a schedule (its batches stay); `NotFound` if absent or
    /// outside `scope`.
    pub async fn delete_schedule(&self, scope: &Scope, id: Uuid) -> Result<(), StorageError> {
        self.get_schedule(scope, id).await?;
        self.w_exec(self.stmt(
            "DELETE FROM schedules WHERE id = $1",
            vec![self.backend.uuid(id)],
        ))
        .await
        .map_err(|e| e.into_storage(TABLE))?;
        Ok(())
    }

    /// Schedules due at `now` (paused ones included: the caller re-checks
    /// their key), earliest first, at most `limit`.
    pub async fn due_schedules(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<ScheduleRecord>, StorageError> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let rows = self
            .q_all(self.stmt(
                &format!(
                    "SELECT {COLUMNS} FROM schedules WHERE next_run_at <= $1 \
                     ORDER BY next_run_at, id LIMIT $2"
                ),
                vec![self.backend.ts(now), limit.into()],
            ))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        rows.iter().map(|r| decode(&self.row(r))).collect()
    }

    /// Takes a tick that makes no batch (its spec no longer resolves):
    /// moves `next_run_at` from `expected` to `next` and records `error`.
    /// False when another instance took the tick.
    pub async fn skip_schedule_tick(
        &self,
        id: Uuid,
        expected: DateTime<Utc>,
        next: DateTime<Utc>,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StorageError> {
        let b = self.backend;
        let n = self
            .w_exec(self.stmt(
                "UPDATE schedules SET next_run_at = $1, last_run_at = $2, last_error = $3 \
                 WHERE id = $4 AND next_run_at = $5",
                vec![
                    b.ts(next),
                    b.ts(now),
                    sql::text(error),
                    b.uuid(id),
                    b.ts(expected),
                ],
            ))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        Ok(n == 1)
    }

    /// Sets or clears why a schedule is paused.
    pub async fn set_schedule_paused(
        &self,
        id: Uuid,
        reason: Option<&str>,
    ) -> Result<(), StorageError> {
        self.w_exec(self.stmt(
            "UPDATE schedules SET paused_reason = $1 WHERE id = $2",
            vec![sql::text_opt(reason), self.backend.uuid(id)],
        ))
        .await
        .map_err(|e| e.into_storage(TABLE))?;
        Ok(())
    }
}
