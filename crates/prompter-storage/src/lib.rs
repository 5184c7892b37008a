//! Prompter's storage layer: SeaORM entities and tenant-scoped repositories
//! for templates, versions and results, on PostgreSQL or SQLite.
//!
//! Everything goes through [`Store`]; repositories return the plain record
//! structs of this crate ([`TemplateRecord`], [`VersionRecord`],
//! [`ResultRecord`]); the SeaORM [`entity`] types never leave the crate's
//! API as DTOs.
//!
//! # Tenancy
//!
//! Every read, delete and restore takes a [`Scope`], applied in SQL by this
//! layer so no caller can forget it: `Scope::Tenant { org_id, workspace_id }`
//! sees only that org (and workspace, when given); anything else behaves as
//! absent (`NotFound`, empty pages). `Scope::Unrestricted` is for deployments
//! without auth, where an id alone addresses a row, as in V7. Inserts carry
//! their org and workspace in the record.
//!
//! # Invariants
//!
//! * Template dedup is a database rule: the partial unique index
//!   `ux_tpl_org_ws_confighash_active` on (org_id, workspace_id, config_hash)
//!   `WHERE deleted_at IS NULL` decides [`Store::insert_template`] and
//!   [`Store::restore_template`]; there is no read-then-write guard. A
//!   soft-deleted template frees its hash.
//! * `config_canonical_json` is stored as its exact text on both backends.
//! * A version row exists per (org, workspace, template, provider_version_key);
//!   [`Store::upsert_version`] is one `INSERT … ON CONFLICT … DO UPDATE`
//!   statement and `last_seen_at` never moves backward.
//! * Timestamps are UTC with microsecond precision; on SQLite they are
//!   fixed-width text so text order is time order. Service ids are UUIDv7.
//! * Lists are newest first with an opaque keyset cursor on (time, id); a
//!   cursor this layer did not issue is [`StorageError::InvalidCursor`].
//! * SQLite runs with WAL, `busy_timeout`, `foreign_keys=ON`,
//!   `synchronous=NORMAL`; multi-statement writes start with
//!   `BEGIN IMMEDIATE` (and queue on a fair in-process lock first), single
//!   statements run in autocommit; the pool is capped at
//!   [`PoolConfig::SQLITE_MAX_CONNECTIONS`].
//! * PostgreSQL cannot store U+0000 in text: that is [`StorageError::Invalid`],
//!   never `Internal`. Pool timeouts and lost connections are
//!   [`StorageError::Unavailable`].
//!
//! # Beyond V7 (second migration)
//!
//! * Drift: [`Store::upsert_version`] records a [`DriftRecord`] when a key is
//!   new for a template and another key was known for the same (provider,
//!   model), in the same transaction as the version row, once per new key
//!   (unique key + `ON CONFLICT DO NOTHING`), optionally with a webhook
//!   outbox row ([`Store::claim_outbox`] with a lease, so one instance of
//!   many delivers each row; [`Store::mark_outbox_delivered`],
//!   [`Store::mark_outbox_failed`], [`Store::release_outbox_claims`]).
//! * Cluster: [`Store::generation`] of `cluster_generations`, bumped by a
//!   trigger on `api_keys` ([`API_KEYS_GENERATION`]), lets every instance
//!   drop its key cache within a poll period of any change.
//! * Idempotent runs: [`Store::claim_idempotency`] → [`Claim`];
//!   [`Store::insert_result_idempotent`] stores the result and completes the
//!   key in one transaction; [`Store::release_idempotency`] after a failure.
//! * API keys: [`Store::insert_api_key`], [`Store::find_api_key_by_prefix`],
//!   [`Store::list_api_keys`], [`Store::revoke_api_key`].
//!
//! # Metrics
//!
//! `prompter_db_unique_violation_total{table}` for every unique violation
//! (including the dedup conflicts), `prompter_prompt_results_insert_total`
//! per stored result, through the `metrics` facade.

pub mod adopt;
mod batch;
mod config;
pub mod entity;
mod error;
pub mod migrate_cli;
mod page;
mod records;
mod repo;
mod sql;
mod stats;
mod store;
#[cfg(feature = "test-util")]
pub mod testing;
#[cfg(feature = "test-util")]
pub mod v7_fixture;

/// The sea-orm version this crate is built on (for [`Store::connection`]).
pub use sea_orm;

pub use config::{Backend, PoolConfig};
pub use error::StorageError;
pub use page::{Page, PageRequest, Scope};
pub use records::*;
pub use repo::{API_KEYS_GENERATION, IDEMPOTENCY_IN_FLIGHT_LEASE};
pub use sql::sqlite_timestamp;
pub use store::{
    Store, DEFAULT_HASH_ALGORITHM, HASH_ALGORITHMS, SQLITE_BUSY_TIMEOUT, SQLITE_JOURNAL_SIZE_LIMIT,
};

/// The database the server uses when none is configured: a SQLite file in
/// the working directory, created on first use.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://prompter.db?mode=rwc";

/// Env var naming the database URL (`--database-url` default).
pub const DATABASE_URL_ENV: &str = "PROMPTER_DATABASE_URL";

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("sqlite://prompter.db?mode=rwc"),
            "sqlite://prompter.db?mode=rwc"
        );
    }

    #[test]
    fn sqlite_timestamps_are_fixed_width_and_ordered() {
        use chrono::{TimeZone, Utc};
        let a = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let b = a + chrono::Duration::microseconds(1);
        let c = a + chrono::Duration::milliseconds(1);
        let (sa, sb, sc) = (
            sqlite_timestamp(a),
            sqlite_timestamp(b),
            sqlite_timestamp(c),
        );
        assert_eq!(sa, "2026-01-01T00:00:00.000000Z");
        assert_eq!(sa.len(), sb.len());
        assert_eq!(sb.len(), sc.len());
        assert!(sa < sb && sb < sc);
    }
}
