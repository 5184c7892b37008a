//! Core tables: templates, versions, results, and the settings table that pins
//! the deployment's hash algorithm.

use crate::types::{run_all, ColumnTypes};
use sea_orm_migration::prelude::*;

/// `m20260101_000001_init`.
#[derive(Debug)]
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20260101_000001_init"
    }
}

fn up_sql(t: ColumnTypes) -> Vec<String> {
    let ColumnTypes {
        uuid,
        json,
        ts,
        table_suffix: sfx,
    } = t;
    vec![
        format!(
            "CREATE TABLE prompt_templates (
                id {uuid} NOT NULL PRIMARY KEY,
                org_id TEXT NOT NULL,
                workspace_id TEXT NOT NULL,
                name TEXT NOT NULL,
                provider TEXT NULL,
                system_instructions TEXT NOT NULL,
                user_prompt_template TEXT NOT NULL,
                country_set {json} NULL,
                model_id TEXT NOT NULL,
                inference_params {json} NULL,
                tools_spec {json} NULL,
                response_format {json} NULL,
                grounding_profile_id TEXT NULL,
                grounding_snapshot_id TEXT NULL,
                retrieval_params {json} NULL,
                config_hash TEXT NOT NULL,
                config_canonical_json TEXT NOT NULL,
                created_by TEXT NULL,
                created_at {ts} NOT NULL,
                deleted_at {ts} NULL
            ){sfx}"
        ),
        // Dedup is a database rule: one ACTIVE template per (org, workspace, hash).
        "CREATE UNIQUE INDEX ux_tpl_org_ws_confighash_active \
            ON prompt_templates (org_id, workspace_id, config_hash) \
            WHERE deleted_at IS NULL"
            .into(),
        // Listing newest first within a tenant, keyset on (created_at, id).
        "CREATE INDEX ix_tpl_org_ws_created \
            ON prompt_templates (org_id, workspace_id, created_at DESC, id DESC)"
            .into(),
        // Listing newest first without a tenant filter (auth off).
        "CREATE INDEX ix_tpl_created ON prompt_templates (created_at DESC, id DESC)".into(),
        format!(
            "CREATE TABLE prompt_versions (
                id {uuid} NOT NULL PRIMARY KEY,
                org_id TEXT NOT NULL,
                workspace_id TEXT NOT NULL,
                template_id {uuid} NOT NULL REFERENCES prompt_templates (id),
                provider TEXT NOT NULL,
                provider_version_key TEXT NOT NULL,
                model_id TEXT NOT NULL,
                fingerprint_captured_at {ts} NULL,
                first_seen_at {ts} NOT NULL,
                last_seen_at {ts} NOT NULL,
                CONSTRAINT ux_versions_tpl_key
                    UNIQUE (org_id, workspace_id, template_id, provider_version_key)
            ){sfx}"
        ),
        "CREATE INDEX ix_versions_tpl_first_seen \
            ON prompt_versions (template_id, first_seen_at DESC, id DESC)"
            .into(),
        "CREATE INDEX ix_versions_tpl_provider_model \
            ON prompt_versions (template_id, provider, model_id, last_seen_at DESC)"
            .into(),
        format!(
            "CREATE TABLE prompt_results (
                id {uuid} NOT NULL PRIMARY KEY,
                org_id TEXT NOT NULL,
                workspace_id TEXT NOT NULL,
                template_id {uuid} NOT NULL REFERENCES prompt_templates (id),
                version_id {uuid} NULL REFERENCES prompt_versions (id),
                provider_version_key TEXT NOT NULL,
                system_fingerprint TEXT NULL,
                country TEXT NULL,
                request {json} NULL,
                response {json} NULL,
                analysis_config {json} NULL,
                created_at {ts} NOT NULL
            ){sfx}"
        ),
        "CREATE INDEX ix_results_tpl_time ON prompt_results (template_id, created_at DESC)".into(),
        "CREATE INDEX ix_results_workspace ON prompt_results (workspace_id, created_at DESC)"
            .into(),
        "CREATE INDEX ix_results_version ON prompt_results (version_id)".into(),
        format!(
            "CREATE TABLE prompter_settings (
                key TEXT NOT NULL PRIMARY KEY,
                value TEXT NOT NULL,
                updated_at {ts} NOT NULL
            ){sfx}"
        ),
    ]
}

const DOWN_SQL: &[&str] = &[
    "DROP TABLE IF EXISTS prompt_results",
    "DROP TABLE IF EXISTS prompt_versions",
    "DROP TABLE IF EXISTS prompt_templates",
    "DROP TABLE IF EXISTS prompter_settings",
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
