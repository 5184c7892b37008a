//! The adoption transaction: V7's three tables rewritten into exactly the
//! shape of Prompter's first migration, which is recorded as applied; then
//! the settings, the hash check and every later migration, all in one
//! transaction (SQLite and PostgreSQL DDL are transactional).

use super::inspect::{self, exec, get, rows, StoredCanonical};
use super::{
    Counts, Mismatch, V7Flavour, ADOPTED_AT_KEY, ADOPTED_FROM_KEY, ADOPTION_POINT,
    ADOPTION_POINT_KEY, MISMATCH_TABLE, UUID_CASE_INSENSITIVE_KEY,
};
use crate::sql;
use crate::{Backend, StorageError};
use prompter_domain::{canonical::rederive_stored, ConfigHash, HashAlgorithm};
use prompter_migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait};
use uuid::Uuid;

/// What the transaction did.
pub(crate) struct Rewritten {
    pub after: Counts,
    pub mismatches: Vec<Mismatch>,
    pub checked: usize,
    pub applied: Vec<String>,
}

const TEMP: [(&str, &str); 3] = [
    ("prompt_templates", "v7_templates"),
    ("prompt_versions", "v7_versions"),
    ("prompt_results", "v7_results"),
];

/// Adopts the V7 database behind `db` in one transaction; any error rolls
/// everything back. `fail_after_copy` (tests) fails after the rows were copied.
pub(crate) async fn run(
    db: &DatabaseConnection,
    flavour: V7Flavour,
    uuid_ids: bool,
    fail_after_copy: bool,
) -> Result<Rewritten, StorageError> {
    let tx = db.begin().await.map_err(inspect::db_err)?;
    let out = steps(&tx, flavour, uuid_ids, fail_after_copy).await;
    match out {
        Ok(r) => {
            tx.commit().await.map_err(inspect::db_err)?;
            Ok(r)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

async fn steps(
    tx: &DatabaseTransaction,
    flavour: V7Flavour,
    uuid_ids: bool,
    fail_after_copy: bool,
) -> Result<Rewritten, StorageError> {
    let b = inspect::backend_of(tx);
    if b == Backend::Postgres {
        // V7 columns typed `timestamp` (without zone) hold UTC.
        exec(tx, "SET LOCAL TimeZone = 'UTC'").await?;
    }
    let before = inspect::counts(tx).await?;
    for (v7, temp) in TEMP {
        let sql = match b {
            Backend::Sqlite => format!("CREATE TEMP TABLE {temp} AS SELECT * FROM {v7}"),
            Backend::Postgres => {
                format!("CREATE TEMP TABLE {temp} ON COMMIT DROP AS SELECT * FROM {v7}")
            }
        };
        exec(tx, &sql).await?;
    }
    let alembic = alembic_revision(tx).await?;
    for (v7, _) in TEMP.iter().rev() {
        let cascade = if b == Backend::Postgres {
            " CASCADE"
        } else {
            ""
        };
        exec(tx, &format!("DROP TABLE {v7}{cascade}")).await?;
    }
    if alembic.is_some() {
        exec(tx, "DROP TABLE alembic_version").await?;
    }
    // Prompter's first migration creates the tables and is recorded as applied.
    let pending = Migrator::get_pending_migrations(tx)
        .await
        .map_err(inspect::db_err)?;
    let names: Vec<String> = pending.iter().map(|m| m.name().to_owned()).collect();
    if names.first().map(String::as_str) != Some(ADOPTION_POINT) {
        return Err(StorageError::internal(format!(
            "expected {ADOPTION_POINT} to be the first pending migration, found {names:?}"
        )));
    }
    Migrator::up(tx, Some(1)).await.map_err(inspect::db_err)?;
    for sql in copy_sql(b) {
        exec(tx, &sql).await?;
    }
    if b == Backend::Sqlite {
        check_sqlite_timestamps(tx).await?;
    }
    let after = inspect::counts(tx).await?;
    if after != before {
        return Err(StorageError::internal(format!(
            "row counts differ after the copy: before {before}, after {after}"
        )));
    }
    if fail_after_copy {
        return Err(StorageError::internal(
            "injected failure after the copy (test)",
        ));
    }
    let stored = inspect::stored_canonicals(tx).await?;
    let checked = stored.len();
    let mismatches = recanonicalize(tx, b, &stored).await?;
    record_mismatches(tx, b, &mismatches).await?;
    let mut settings = vec![
        ("hash_algorithm", "sha256".to_owned()),
        (ADOPTED_FROM_KEY, flavour.as_str().to_owned()),
        (ADOPTED_AT_KEY, sql::sqlite_timestamp(sql::now())),
        (ADOPTION_POINT_KEY, ADOPTION_POINT.to_owned()),
        (UUID_CASE_INSENSITIVE_KEY, uuid_ids.to_string()),
        ("v7_hash_mismatches", mismatches.len().to_string()),
    ];
    if let Some(rev) = alembic {
        settings.push(("v7_alembic_revision", rev));
    }
    for (key, value) in settings {
        let stmt = sea_orm::Statement::from_sql_and_values(
            b.db(),
            "INSERT INTO prompter_settings (key, value, updated_at) VALUES ($1, $2, $3)",
            vec![sql::text(key), sql::text(&value), b.ts(sql::now())],
        );
        tx.execute(stmt).await.map_err(inspect::db_err)?;
    }
    // Every later migration, exactly as on a fresh database.
    Migrator::up(tx, None).await.map_err(inspect::db_err)?;
    if b == Backend::Sqlite {
        for (_, temp) in TEMP {
            exec(tx, &format!("DROP TABLE temp.{temp}")).await?;
        }
    }
    Ok(Rewritten {
        after,
        mismatches,
        checked,
        applied: names,
    })
}

async fn alembic_revision(tx: &DatabaseTransaction) -> Result<Option<String>, StorageError> {
    if !inspect::tables(tx)
        .await?
        .iter()
        .any(|t| t == "alembic_version")
    {
        return Ok(None);
    }
    let r = rows(
        tx,
        "SELECT version_num::text AS v FROM alembic_version",
        vec![],
    )
    .await?;
    Ok(Some(match r.first() {
        Some(r) => get::<String>(r, "v")?,
        None => String::new(),
    }))
}

/// SQLite: V7's two naive-UTC spellings (`2026-12-01 19:10:51`,
/// `2026-12-01 19:10:52.331260`, also with `T` or a `+00:00` suffix) as
/// Prompter's fixed-width `2026-12-01T19:10:51.000000Z`; anything else is
/// left as it is and refused by [`check_sqlite_timestamps`].
fn sqlite_ts(col: &str) -> String {
    let c = format!(
        "(CASE WHEN {col} LIKE '%+00:00' THEN substr({col}, 1, length({col}) - 6) ELSE {col} END)"
    );
    format!(
        "(CASE WHEN {c} IS NULL THEN NULL \
         WHEN length({c}) = 19 AND substr({c}, 11, 1) IN (' ', 'T') \
           THEN substr({c}, 1, 10) || 'T' || substr({c}, 12, 8) || '.000000Z' \
         WHEN length({c}) BETWEEN 21 AND 26 AND substr({c}, 11, 1) IN (' ', 'T') AND substr({c}, 20, 1) = '.' \
           THEN substr({c}, 1, 10) || 'T' || substr({c}, 12, 8) || '.' || substr(substr({c}, 21) || '000000', 1, 6) || 'Z' \
         ELSE {col} END)"
    )
}

/// A column expression: V7's column name → the value to insert.
type Expr = fn(&str) -> String;

/// `INSERT … SELECT` from the temporary copies into the new tables.
fn copy_sql(b: Backend) -> Vec<String> {
    let (id, text, json, ts): (Expr, Expr, Expr, Expr) = match b {
        // Service ids in lower case (V7 wrote Python's `str(uuid4())`);
        // caller ids stay the opaque strings V7 accepted on SQLite.
        Backend::Sqlite => (
            |c| format!("lower({c})"),
            |c| c.to_owned(),
            |c| c.to_owned(),
            sqlite_ts,
        ),
        // UUID-typed caller ids become their lower-case hyphenated text.
        Backend::Postgres => (
            |c| c.to_owned(),
            |c| format!("{c}::text"),
            |c| format!("{c}::jsonb"),
            |c| format!("{c}::timestamptz"),
        ),
    };
    vec![
        format!(
            "INSERT INTO prompt_templates (id, org_id, workspace_id, name, provider, \
             system_instructions, user_prompt_template, country_set, model_id, inference_params, \
             tools_spec, response_format, grounding_profile_id, grounding_snapshot_id, \
             retrieval_params, config_hash, config_canonical_json, created_by, created_at, deleted_at) \
             SELECT {}, {}, {}, COALESCE({}, ''), {}, COALESCE({}, ''), COALESCE({}, ''), {}, \
             COALESCE({}, ''), {}, {}, {}, {}, {}, {}, config_hash, {}, {}, {}, {} FROM v7_templates",
            id("id"),
            text("org_id"),
            text("workspace_id"),
            text("name"),
            text("provider"),
            text("system_instructions"),
            text("user_prompt_template"),
            json("country_set"),
            text("model_id"),
            json("inference_params"),
            json("tools_spec"),
            json("response_format"),
            text("grounding_profile_id"),
            text("grounding_snapshot_id"),
            json("retrieval_params"),
            text("config_canonical_json"),
            text("created_by"),
            ts("created_at"),
            ts("deleted_at"),
        ),
        format!(
            "INSERT INTO prompt_versions (id, org_id, workspace_id, template_id, provider, \
             provider_version_key, model_id, fingerprint_captured_at, first_seen_at, last_seen_at) \
             SELECT {}, {}, {}, {}, COALESCE({}, 'unknown'), {}, COALESCE({}, ''), {}, \
             COALESCE({}, {}, {}), COALESCE({}, {}) FROM v7_versions",
            id("id"),
            text("org_id"),
            text("workspace_id"),
            id("template_id"),
            text("provider"),
            text("provider_version_key"),
            text("model_id"),
            ts("fingerprint_captured_at"),
            ts("first_seen_at"),
            ts("fingerprint_captured_at"),
            ts("last_seen_at"),
            ts("last_seen_at"),
            ts("first_seen_at"),
        ),
        format!(
            "INSERT INTO prompt_results (id, org_id, workspace_id, template_id, version_id, \
             provider_version_key, system_fingerprint, country, request, response, \
             analysis_config, created_at) \
             SELECT {}, {}, {}, {}, {}, COALESCE({}, 'unknown'), {}, NULL, {}, {}, {}, {} \
             FROM v7_results",
            id("id"),
            text("org_id"),
            text("workspace_id"),
            id("template_id"),
            id("version_id"),
            text("provider_version_key"),
            text("system_fingerprint"),
            json("request"),
            json("response"),
            json("analysis_config"),
            ts("created_at"),
        ),
    ]
}

const UUID_GLOB: &str = "[0-9a-f]*-[0-9a-f]*-[0-9a-f]*-[0-9a-f]*-[0-9a-f]*";

const FIXED_TS_GLOB: &str = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z";

/// Refuses (rolls back) when a timestamp is in neither V7 spelling.
async fn check_sqlite_timestamps(tx: &DatabaseTransaction) -> Result<(), StorageError> {
    let cols = [
        ("prompt_templates", "created_at"),
        ("prompt_templates", "deleted_at"),
        ("prompt_versions", "fingerprint_captured_at"),
        ("prompt_versions", "first_seen_at"),
        ("prompt_versions", "last_seen_at"),
        ("prompt_results", "created_at"),
    ];
    for (table, col) in cols {
        let r = rows(
            tx,
            &format!(
                "SELECT id, {col} AS v FROM {table} \
                 WHERE {col} IS NOT NULL AND {col} NOT GLOB '{FIXED_TS_GLOB}' LIMIT 1"
            ),
            vec![],
        )
        .await?;
        if let Some(r) = r.first() {
            return Err(StorageError::refused(format!(
                "{table}.{col} of row {} is `{}`, in neither of V7's timestamp spellings; nothing was changed",
                get::<String>(r, "id")?,
                get::<String>(r, "v")?
            )));
        }
    }
    let ids = [
        ("prompt_templates", "id"),
        ("prompt_versions", "id"),
        ("prompt_versions", "template_id"),
        ("prompt_results", "id"),
        ("prompt_results", "template_id"),
        ("prompt_results", "version_id"),
    ];
    for (table, col) in ids {
        let r = rows(
            tx,
            &format!(
                "SELECT {col} AS v FROM {table} WHERE {col} IS NOT NULL \
                 AND (length({col}) <> 36 OR {col} NOT GLOB '{UUID_GLOB}') LIMIT 1"
            ),
            vec![],
        )
        .await?;
        if let Some(r) = r.first() {
            return Err(StorageError::refused(format!(
                "{table}.{col} `{}` is not a hyphenated UUID; nothing was changed",
                get::<String>(r, "v")?
            )));
        }
    }
    Ok(())
}

/// Stores each template's re-derived canonical text and lists every
/// template whose recomputed sha256 differs from V7's `config_hash` (which
/// stays its identity).
async fn recanonicalize(
    tx: &DatabaseTransaction,
    b: Backend,
    stored: &[StoredCanonical],
) -> Result<Vec<Mismatch>, StorageError> {
    let mut mismatches = Vec::new();
    for t in stored {
        let (rederived, recomputed, reason) = match rederive_stored(&t.canonical) {
            Ok(c) => {
                let h = ConfigHash::compute(HashAlgorithm::Sha256, &c).into_string();
                (Some(c.into_string()), Some(h), None)
            }
            Err(e) => (
                None,
                None,
                Some(format!("canonical text not re-derivable: {e}")),
            ),
        };
        if let Some(text) = &rederived {
            if *text != t.canonical {
                let id = Uuid::parse_str(&t.id)
                    .map_err(|e| StorageError::internal(format!("template id `{}`: {e}", t.id)))?;
                let stmt = sea_orm::Statement::from_sql_and_values(
                    b.db(),
                    "UPDATE prompt_templates SET config_canonical_json = $1 WHERE id = $2",
                    vec![sql::text(text), b.uuid(id)],
                );
                tx.execute(stmt).await.map_err(inspect::db_err)?;
            }
        }
        let reason = match (&recomputed, reason) {
            (_, Some(r)) => Some(r),
            (Some(h), None) if *h != t.config_hash => {
                Some("recomputed sha256 differs from V7's config_hash".to_owned())
            }
            _ => None,
        };
        if let Some(reason) = reason {
            mismatches.push(Mismatch {
                template_id: t.id.clone(),
                org_id: t.org_id.clone(),
                workspace_id: t.workspace_id.clone(),
                active: t.active,
                v7_config_hash: t.config_hash.clone(),
                recomputed_hash: recomputed,
                v7_canonical: t.canonical.clone(),
                stored_canonical: rederived.unwrap_or_else(|| t.canonical.clone()),
                reason,
            });
        }
    }
    Ok(mismatches)
}

async fn record_mismatches(
    tx: &DatabaseTransaction,
    b: Backend,
    mismatches: &[Mismatch],
) -> Result<(), StorageError> {
    exec(
        tx,
        &format!(
            "CREATE TABLE {MISMATCH_TABLE} (
                template_id TEXT NOT NULL PRIMARY KEY,
                org_id TEXT NOT NULL,
                workspace_id TEXT NOT NULL,
                status TEXT NOT NULL,
                v7_config_hash TEXT NOT NULL,
                recomputed_hash TEXT NULL,
                v7_canonical_text TEXT NOT NULL,
                stored_canonical_text TEXT NOT NULL,
                reason TEXT NOT NULL,
                recorded_at TEXT NOT NULL
            )"
        ),
    )
    .await?;
    let at = sql::sqlite_timestamp(sql::now());
    for m in mismatches {
        let stmt = sea_orm::Statement::from_sql_and_values(
            b.db(),
            format!(
                "INSERT INTO {MISMATCH_TABLE} (template_id, org_id, workspace_id, status, \
                 v7_config_hash, recomputed_hash, v7_canonical_text, stored_canonical_text, \
                 reason, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            vec![
                sql::text(&m.template_id),
                sql::text(&m.org_id),
                sql::text(&m.workspace_id),
                sql::text(if m.active { "active" } else { "deleted" }),
                sql::text(&m.v7_config_hash),
                sql::text_opt(m.recomputed_hash.as_deref()),
                sql::text(&m.v7_canonical),
                sql::text(&m.stored_canonical),
                sql::text(&m.reason),
                sql::text(&at),
            ],
        );
        tx.execute(stmt).await.map_err(inspect::db_err)?;
    }
    Ok(())
}
