//! Provider usage and cost (issue 17): token counts, provider and cost of
//! each stored result, and `usage_daily`, the per-day rollup the usage API
//! reads (written in the same transaction as the results it counts).
//!
//! Budgets (`provider_budgets`, operator-owned: a monthly limit per org or
//! workspace, `workspace_id = ''` for the whole org) and `budget_alerts`
//! (one row per scope and month whose threshold event was emitted).
//!
//! Token and cost columns of a result are NULL when the provider reported
//! no usage or the model has no price; the rollup sums them as 0 and counts
//! unpriced runs apart. Costs are integer micro-dollars.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// `m20261201_000005_provider_usage`.
#[derive(Debug)]
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000005_provider_usage"
    }
}

/// Result columns added here (all nullable).
const RESULT_COLUMNS: [&str; 5] = [
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "cost_micros",
];

fn up_sql(backend: DbBackend) -> Result<Vec<String>, DbErr> {
    // 64-bit integers: SQLite's INTEGER is (STRICT tables accept no BIGINT).
    let (big, uuid, sfx) = match backend {
        DbBackend::Postgres => ("BIGINT", "UUID", ""),
        DbBackend::Sqlite => ("INTEGER", "TEXT", " STRICT"),
        DbBackend::MySql => {
            return Err(DbErr::Migration(
                "Prompter supports PostgreSQL and SQLite only".into(),
            ))
        }
    };
    let mut sql: Vec<String> = RESULT_COLUMNS
        .iter()
        .map(|c| format!("ALTER TABLE prompt_results ADD COLUMN {c} {big} NULL"))
        .collect();
    sql.push("ALTER TABLE prompt_results ADD COLUMN provider TEXT NULL".into());
    // One row per template, UTC day and provider; org, workspace, prompt
    // name and model follow from the template and are copied for grouping.
    sql.push(format!(
        "CREATE TABLE usage_daily (
            template_id {uuid} NOT NULL,
            day TEXT NOT NULL,
            provider TEXT NOT NULL,
            org_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            prompt TEXT NOT NULL,
            model TEXT NOT NULL,
            runs {big} NOT NULL,
            input_tokens {big} NOT NULL,
            output_tokens {big} NOT NULL,
            cached_input_tokens {big} NOT NULL,
            cache_write_input_tokens {big} NOT NULL,
            cost_micros {big} NOT NULL,
            unpriced_runs {big} NOT NULL,
            PRIMARY KEY (template_id, day, provider)
        ){sfx}"
    ));
    sql.push(
        "CREATE INDEX ix_usage_daily_scope_day ON usage_daily (org_id, workspace_id, day)".into(),
    );
    sql.push(format!(
        "CREATE TABLE provider_budgets (
            org_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            monthly_micros {big} NOT NULL,
            alert_permille INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (org_id, workspace_id)
        ){sfx}"
    ));
    sql.push(format!(
        "CREATE TABLE budget_alerts (
            org_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            month TEXT NOT NULL,
            PRIMARY KEY (org_id, workspace_id, month)
        ){sfx}"
    ));
    Ok(sql)
}

fn down_sql() -> Vec<String> {
    let mut sql = vec![
        "DROP TABLE IF EXISTS budget_alerts".to_string(),
        "DROP TABLE IF EXISTS provider_budgets".to_string(),
        "DROP INDEX IF EXISTS ix_usage_daily_scope_day".to_string(),
        "DROP TABLE IF EXISTS usage_daily".to_string(),
        "ALTER TABLE prompt_results DROP COLUMN provider".to_string(),
    ];
    sql.extend(
        RESULT_COLUMNS
            .iter()
            .rev()
            .map(|c| format!("ALTER TABLE prompt_results DROP COLUMN {c}")),
    );
    sql
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = up_sql(manager.get_database_backend())?;
        crate::types::run_all(manager, &sql).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::types::run_all(manager, &down_sql()).await
    }
}
