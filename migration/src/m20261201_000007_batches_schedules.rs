//! Tracking batches and schedules (issue 18).
//!
//! `batches`: one row per batch (what to run, counters kept in the same
//! transactions that move its items, `finished_at` set once when the last
//! item ends). `batch_items`: one row per (country, repeat), claimed by a
//! worker with a lease (`claimed_by`, `lease_until`) exactly like the webhook
//! outbox. `schedules`: a cron expression and a batch spec; `next_run_at` is
//! moved by compare-and-set in the transaction that creates the tick's batch,
//! so one batch per tick however many instances poll.
//!
//! `prompt_results` gains `batch_id` and `batch_repeat`; a partial unique
//! index on (`batch_id`, `country`, `batch_repeat`) makes a second result for
//! one item impossible.

use crate::types::{run_all, ColumnTypes};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// `m20261201_000007_batches_schedules`.
#[derive(Debug)]
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000007_batches_schedules"
    }
}

fn up_sql(backend: DbBackend) -> Result<Vec<String>, DbErr> {
    let t = ColumnTypes::for_backend(backend)?;
    let (uuid, json, ts, sfx) = (t.uuid, t.json, t.ts, t.table_suffix);
    Ok(vec![
        format!(
            "CREATE TABLE schedules (
                id {uuid} NOT NULL PRIMARY KEY,
                org_id TEXT NOT NULL,
                workspace_id TEXT NOT NULL,
                cron TEXT NOT NULL,
                spec {json} NOT NULL,
                created_by TEXT NULL,
                next_run_at {ts} NOT NULL,
                last_run_at {ts} NULL,
                last_batch_id {uuid} NULL,
                last_error TEXT NULL,
                paused_reason TEXT NULL,
                created_at {ts} NOT NULL
            ){sfx}"
        ),
        "CREATE INDEX ix_schedules_next_run ON schedules (next_run_at)".into(),
        "CREATE INDEX ix_schedules_scope ON schedules (org_id, workspace_id, created_at)".into(),
        format!(
            "CREATE TABLE batches (
                id {uuid} NOT NULL PRIMARY KEY,
                org_id TEXT NOT NULL,
                workspace_id TEXT NOT NULL,
                template_id {uuid} NOT NULL REFERENCES prompt_templates (id),
                prompt TEXT NULL,
                label TEXT NULL,
                revision INTEGER NULL,
                schedule_id {uuid} NULL,
                spec {json} NOT NULL,
                total INTEGER NOT NULL,
                done_count INTEGER NOT NULL,
                failed_count INTEGER NOT NULL,
                cancelled_count INTEGER NOT NULL,
                idempotency_key TEXT NULL,
                request_hash TEXT NULL,
                created_by TEXT NULL,
                created_at {ts} NOT NULL,
                started_at {ts} NULL,
                cancelled_at {ts} NULL,
                finished_at {ts} NULL
            ){sfx}"
        ),
        "CREATE INDEX ix_batches_scope ON batches (org_id, workspace_id, created_at)".into(),
        "CREATE INDEX ix_batches_schedule ON batches (schedule_id, created_at)".into(),
        "CREATE UNIQUE INDEX ux_batches_idempotency ON batches (org_id, workspace_id, idempotency_key) \
         WHERE idempotency_key IS NOT NULL"
            .into(),
        format!(
            "CREATE TABLE batch_items (
                id {uuid} NOT NULL PRIMARY KEY,
                batch_id {uuid} NOT NULL REFERENCES batches (id),
                seq INTEGER NOT NULL,
                country TEXT NOT NULL,
                repeat_index INTEGER NOT NULL,
                run {json} NOT NULL,
                status TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                next_attempt_at {ts} NOT NULL,
                claimed_by TEXT NULL,
                lease_until {ts} NULL,
                result_id {uuid} NULL,
                error TEXT NULL,
                updated_at {ts} NOT NULL
            ){sfx}"
        ),
        "CREATE UNIQUE INDEX ux_batch_items_cell ON batch_items (batch_id, country, repeat_index)"
            .into(),
        "CREATE INDEX ix_batch_items_batch ON batch_items (batch_id, seq)".into(),
        "CREATE INDEX ix_batch_items_due ON batch_items (status, next_attempt_at)".into(),
        format!("ALTER TABLE prompt_results ADD COLUMN batch_id {uuid} NULL"),
        "ALTER TABLE prompt_results ADD COLUMN batch_repeat INTEGER NULL".into(),
        "CREATE UNIQUE INDEX ux_results_batch_cell ON prompt_results (batch_id, country, batch_repeat) \
         WHERE batch_id IS NOT NULL"
            .into(),
    ])
}

fn down_sql() -> Vec<String> {
    [
        "DROP INDEX IF EXISTS ux_results_batch_cell",
        "ALTER TABLE prompt_results DROP COLUMN batch_repeat",
        "ALTER TABLE prompt_results DROP COLUMN batch_id",
        "DROP TABLE IF EXISTS batch_items",
        "DROP TABLE IF EXISTS batches",
        "DROP TABLE IF EXISTS schedules",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_all(manager, &up_sql(manager.get_database_backend())?).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_all(manager, &down_sql()).await
    }
}
