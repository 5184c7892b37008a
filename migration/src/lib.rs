//! Prompter's schema migrations, for PostgreSQL and SQLite.
//!
//! Both backends get the same tables, keys and indexes; only the column types
//! differ, chosen per backend by [`types::ColumnTypes`]:
//!
//! | logical type | PostgreSQL    | SQLite (STRICT tables)                               |
//! |--------------|---------------|------------------------------------------------------|
//! | service id   | `UUID`        | `TEXT` (lower-case hyphenated)                       |
//! | JSON         | `JSONB`       | `TEXT` (JSON text)                                   |
//! | timestamp    | `TIMESTAMPTZ` | `TEXT`, fixed width `YYYY-MM-DDTHH:MM:SS.ffffffZ` UTC |
//!
//! SQLite timestamps are written by `prompter-storage` with exactly six
//! fractional digits, so text order equals time order and the same
//! `ORDER BY` / range predicates work on both backends.
//!
//! Caller-owned ids (`org_id`, `workspace_id`, `created_by`, grounding ids) are
//! opaque `TEXT` on both backends; `config_canonical_json` is `TEXT` on both
//! (never JSONB, which would reorder keys and respell numbers).
//!
//! Every migration has a working `down`.

pub use sea_orm_migration::prelude::*;

mod m20260101_000001_init;
mod m20260101_000002_drift_outbox_idempotency_keys;
mod m20261201_000003_prompt_releases;
mod m20261201_000004_api_key_name_expiry;
mod m20261201_000005_provider_usage;
mod m20261201_000006_cluster_coordination;
mod m20261201_000007_batches_schedules;
mod m20261202_000008_prompt_generation;
pub mod types;

/// The migrator: every Prompter migration, oldest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20260101_000001_init::Migration),
            Box::new(m20260101_000002_drift_outbox_idempotency_keys::Migration),
            Box::new(m20261201_000003_prompt_releases::Migration),
            Box::new(m20261201_000004_api_key_name_expiry::Migration),
            Box::new(m20261201_000005_provider_usage::Migration),
            Box::new(m20261201_000006_cluster_coordination::Migration),
            Box::new(m20261201_000007_batches_schedules::Migration),
            Box::new(m20261202_000008_prompt_generation::Migration),
        ]
    }
}

/// Name of the partial unique index that makes template dedup a database rule.
pub const TEMPLATE_DEDUP_INDEX: &str = "ux_tpl_org_ws_confighash_active";
