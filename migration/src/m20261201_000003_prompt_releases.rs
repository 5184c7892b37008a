//! Prompt releases (issue 14): a revision number per template within its
//! prompt (org, workspace, name), the per-prompt revision counter, labels
//! and their history, and the release columns of stored results.
//!
//! Existing templates (ours and adopted V7 ones) are numbered 1, 2, 3… per
//! prompt by `created_at`, then id; the counters start after them.

use crate::types::{run_all, ColumnTypes};
use sea_orm_migration::prelude::*;

/// `m20261201_000003_prompt_releases`.
#[derive(Debug)]
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000003_prompt_releases"
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
        // NULL only between a template's insert and the revision update of
        // the same transaction.
        "ALTER TABLE prompt_templates ADD COLUMN revision INTEGER NULL".into(),
        "UPDATE prompt_templates SET revision = numbered.rn \
            FROM (SELECT id, ROW_NUMBER() OVER ( \
                    PARTITION BY org_id, workspace_id, name ORDER BY created_at, id) AS rn \
                  FROM prompt_templates) AS numbered \
            WHERE prompt_templates.id = numbered.id"
            .into(),
        "CREATE UNIQUE INDEX ux_tpl_prompt_revision \
            ON prompt_templates (org_id, workspace_id, name, revision)"
            .into(),
        format!(
            "CREATE TABLE prompt_revision_counters (
                org_id TEXT NOT NULL,
                workspace_id TEXT NOT NULL,
                name TEXT NOT NULL,
                last_revision INTEGER NOT NULL,
                PRIMARY KEY (org_id, workspace_id, name)
            ){sfx}"
        ),
        "INSERT INTO prompt_revision_counters (org_id, workspace_id, name, last_revision) \
            SELECT org_id, workspace_id, name, MAX(revision) FROM prompt_templates \
            GROUP BY org_id, workspace_id, name"
            .into(),
        format!(
            "CREATE TABLE prompt_labels (
                org_id TEXT NOT NULL,
                workspace_id TEXT NOT NULL,
                name TEXT NOT NULL,
                label TEXT NOT NULL,
                template_id {uuid} NOT NULL REFERENCES prompt_templates (id),
                revision INTEGER NOT NULL,
                moved_at {ts} NOT NULL,
                moved_by TEXT NULL,
                PRIMARY KEY (org_id, workspace_id, name, label)
            ){sfx}"
        ),
        "CREATE INDEX ix_labels_template ON prompt_labels (template_id)".into(),
        format!(
            "CREATE TABLE prompt_label_history (
                id {uuid} NOT NULL PRIMARY KEY,
                org_id TEXT NOT NULL,
                workspace_id TEXT NOT NULL,
                name TEXT NOT NULL,
                label TEXT NOT NULL,
                revision INTEGER NULL,
                previous_revision INTEGER NULL,
                moved_at {ts} NOT NULL,
                moved_by TEXT NULL
            ){sfx}"
        ),
        "CREATE INDEX ix_label_history_label \
            ON prompt_label_history (org_id, workspace_id, name, label, moved_at DESC, id DESC)"
            .into(),
        "ALTER TABLE prompt_results ADD COLUMN revision INTEGER NULL".into(),
        "ALTER TABLE prompt_results ADD COLUMN label TEXT NULL".into(),
        "ALTER TABLE prompt_results ADD COLUMN output TEXT NULL".into(),
    ]
}

const DOWN_SQL: &[&str] = &[
    "ALTER TABLE prompt_results DROP COLUMN output",
    "ALTER TABLE prompt_results DROP COLUMN label",
    "ALTER TABLE prompt_results DROP COLUMN revision",
    "DROP TABLE IF EXISTS prompt_label_history",
    "DROP TABLE IF EXISTS prompt_labels",
    "DROP TABLE IF EXISTS prompt_revision_counters",
    "DROP INDEX IF EXISTS ux_tpl_prompt_revision",
    "ALTER TABLE prompt_templates DROP COLUMN revision",
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
