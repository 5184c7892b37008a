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
//! # Prompt releases (third migration)
//!
//! * Every template has a `revision` within its prompt (org, workspace,
//!   name), allocated in the insert's own transaction from
//!   `prompt_revision_counters` (see [`batch`]): gapless, never reused.
//! * Labels ([`Store::move_label`], compare-and-set on the current revision,
//!   [`Store::remove_label`]) record every change in
//!   `prompt_label_history` ([`Store::label_history`]) in the same
//!   transaction, optionally with a webhook outbox row.
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
pub use repo::{
    item_status, BatchCreated, BatchItemRecord, BatchRecord, BudgetRecord, FinishEvent, LabelEvent,
    LabelMove, LabelRecord, LabelledRevision, NewBatch, NewBatchItem, NewSchedule, PromptKey,
    PromptSummary, RevisionRef, RevisionSummary, RevisionTag, ScheduleRecord, TemplateDelete,
    TickClaim, UsageKey, UsageQuery, UsageRow, WorkspaceSummary, API_KEYS_GENERATION,
    IDEMPOTENCY_IN_FLIGHT_LEASE, PROMPTS_GENERATION,
};
pub use sql::sqlite_timestamp;
pub use store::{
    Store, DEFAULT_HASH_ALGORITHM, HASH_ALGORITHMS, SQLITE_BUSY_TIMEOUT, SQLITE_JOURNAL_SIZE_LIMIT,
};

/// The database the server uses when none is configured: a SQLite file in
/// the working directory, created on first use.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://prompter.db?mode=rwc";

/// Env var naming the database URL (`--database-url` default).
pub const DATABASE_URL_ENV: &str = "PROMPTER_DATABASE_URL";

/// Query parameters whose values are secrets (matched case-insensitively,
/// also as a suffix such as `access_token` or `x-api-key`).
const SECRET_PARAMS: [&str; 7] = ["password", "passwd", "pwd", "token", "secret", "key", "sig"];

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| name.ends_with(s)) || name == "signature"
}

/// `url` with its secrets replaced by `***`, for messages and logs: the
/// password of `scheme://user:password@host/…` (everything between the
/// first `:` of the user info and its **last** `@`, so passwords holding
/// `@`, `:` or `/` are hidden whole) and the values of query parameters
/// named like secrets (`password`, `token`, `secret`, `*key`, `sig`, …).
/// The one redaction function of the workspace: database, Redis and
/// webhook URLs all go through it.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let (head, rest) = url.split_at(scheme_end + 3);
    // The query starts at the first `?`; user info ends at the last `@` before it.
    let query_at = rest.find(['?', '#']).unwrap_or(rest.len());
    let (before_query, query) = rest.split_at(query_at);
    let mut out = String::with_capacity(url.len());
    out.push_str(head);
    match before_query
        .rfind('@')
        .filter(|_| !before_query.starts_with('/'))
    {
        Some(at) => {
            let userinfo = &before_query[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&before_query[at..]);
        }
        None => out.push_str(before_query),
    }
    let Some(params) = query.strip_prefix('?') else {
        out.push_str(query);
        return out;
    };
    let (params, fragment) = params.split_at(params.find('#').unwrap_or(params.len()));
    out.push('?');
    let redacted: Vec<String> = params
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if is_secret_param(k) && !v.is_empty() => format!("{k}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    out.push_str(&redacted.join("&"));
    out.push_str(fragment);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_with_separators_are_hidden_whole() {
        for (url, want) in [
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u:p@ss@h:5432/db?sslmode=require",
                "postgres://u:***@h:5432/db?sslmode=require",
            ),
            ("postgres://u:a:b@c/d@h/db", "postgres://u:***@h/db"),
            (
                "redis://:s3cr@t@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
            (
                "postgres://h/db?user=u&password=p@ss&sslmode=require",
                "postgres://h/db?user=u&password=***&sslmode=require",
            ),
            (
                "https://user:pw@hooks.example/in?token=abc&x=1#frag",
                "https://user:***@hooks.example/in?token=***&x=1#frag",
            ),
            (
                "https://hooks.example/in?api_key=abc&sig=zz",
                "https://hooks.example/in?api_key=***&sig=***",
            ),
            (
                "sqlite:///tmp/a@b:c/x.db?mode=rwc",
                "sqlite:///tmp/a@b:c/x.db?mode=rwc",
            ),
        ] {
            let got = redact_url(url);
            assert_eq!(got, want, "{url}");
            for secret in ["p@ss", "a:b@c/d", "s3cr@t", "abc", "pw@"] {
                if url.contains(secret) && !want.contains(secret) {
                    assert!(!got.contains(secret), "{url} leaks {secret}: {got}");
                }
            }
        }
    }

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
