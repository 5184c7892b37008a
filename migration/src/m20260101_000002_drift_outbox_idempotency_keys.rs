//! Beyond V7: version drift events, the webhook outbox, run idempotency keys
//! and API keys.

use crate::types::{run_all, ColumnTypes};
use sea_orm_migration::prelude::*;

/// `m20260101_000002_drift_outbox_idempotency_keys`.
#[derive(Debug)]
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20260101_000002_drift_outbox_idempotency_keys"
    }
}

fn up_sql(t: ColumnTypes) -> Vec<String> {
    let ColumnTypes {
        uuid,
        ts,
        table_suffix: sfx,
        ..
    } = t;
    vec![
        format!(
            "CREATE TABLE version_drift_events (
                id {uuid} NOT NULL PRIMARY KEY,
                org_id TEXT NOT NULL,
                workspace_id TEXT NOT NULL,
                template_id {uuid} NOT NULL REFERENCES prompt_templates (id),
                provider TEXT NOT NULL,
                model_id TEXT NOT NULL,
                previous_key TEXT NOT NULL,
                new_key TEXT NOT NULL,
                detected_at {ts} NOT NULL,
                -- concurrent detectors of the same new key record one event
                CONSTRAINT ux_drift_tpl_provider_model_key
                    UNIQUE (template_id, provider, model_id, new_key)
            ){sfx}"
        ),
        "CREATE INDEX ix_drift_org_ws_time \
            ON version_drift_events (org_id, workspace_id, detected_at DESC, id DESC)"
            .into(),
        "CREATE INDEX ix_drift_time ON version_drift_events (detected_at DESC, id DESC)".into(),
        format!(
            "CREATE TABLE webhook_outbox (
                id {uuid} NOT NULL PRIMARY KEY,
                event_id {uuid} NOT NULL,
                payload TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                next_attempt_at {ts} NOT NULL,
                delivered_at {ts} NULL,
                last_error TEXT NULL,
                created_at {ts} NOT NULL
            ){sfx}"
        ),
        "CREATE INDEX ix_outbox_due ON webhook_outbox (delivered_at, next_attempt_at)".into(),
        format!(
            "CREATE TABLE run_idempotency (
                template_id {uuid} NOT NULL REFERENCES prompt_templates (id),
                org_id TEXT NOT NULL,
                idempotency_key TEXT NOT NULL,
                request_hash TEXT NOT NULL,
                result_id {uuid} NULL REFERENCES prompt_results (id),
                state TEXT NOT NULL,
                created_at {ts} NOT NULL,
                expires_at {ts} NOT NULL,
                PRIMARY KEY (template_id, idempotency_key)
            ){sfx}"
        ),
        "CREATE INDEX ix_idempotency_expires ON run_idempotency (expires_at)".into(),
        format!(
            "CREATE TABLE api_keys (
                id {uuid} NOT NULL PRIMARY KEY,
                prefix TEXT NOT NULL,
                key_hash TEXT NOT NULL,
                org_id TEXT NOT NULL,
                workspace_id TEXT NULL,
                role TEXT NOT NULL,
                created_at {ts} NOT NULL,
                revoked_at {ts} NULL,
                last_used_at {ts} NULL,
                CONSTRAINT ux_api_keys_prefix UNIQUE (prefix)
            ){sfx}"
        ),
        "CREATE INDEX ix_api_keys_org ON api_keys (org_id, created_at)".into(),
    ]
}

const DOWN_SQL: &[&str] = &[
    "DROP TABLE IF EXISTS api_keys",
    "DROP TABLE IF EXISTS run_idempotency",
    "DROP TABLE IF EXISTS webhook_outbox",
    "DROP TABLE IF EXISTS version_drift_events",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let types = ColumnTypes::for_backend(manager.get_database_backend())?;
        run_all(manager, &up_sql(types)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql: Vec<String> = DOWN_SQL.iter().map(|s| (*s).to_owned()).collect();
        run_all(manager, &sql).await
    }
}
