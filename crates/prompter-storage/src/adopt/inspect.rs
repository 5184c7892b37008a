//! Read-only inspection of a database before anything opens it for
//! writing: does the SQLite file exist, is it empty, Prompter's, or an
//! un-adopted V7 database (and its counts and hash check for the plan).

use super::{Counts, DbKind, V7Flavour, ADOPTED_FROM_KEY, ADOPTION_POINT};
use crate::{redact_url, Backend, StorageError};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, QueryResult, SqlxPostgresConnector, SqlxSqliteConnector,
    Statement, Value,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The file a SQLite URL names; None for an in-memory database or a
/// PostgreSQL URL.
pub fn sqlite_path(url: &str) -> Result<Option<PathBuf>, StorageError> {
    if Backend::from_url(url)? != Backend::Sqlite {
        return Ok(None);
    }
    let opts = SqliteConnectOptions::from_str(url).map_err(|e| {
        StorageError::invalid(format!("bad database URL `{}`: {e}", redact_url(url)))
    })?;
    let lower = url.to_ascii_lowercase();
    if lower.contains(":memory:") || lower.contains("mode=memory") {
        return Ok(None);
    }
    Ok(Some(opts.get_filename().to_path_buf()))
}

/// A read-only connection (one connection): SQLite opened `SQLITE_OPEN_READONLY`
/// without any pragma that writes (no journal-mode change), PostgreSQL with
/// `default_transaction_read_only`.
pub(crate) async fn read_only(url: &str) -> Result<DatabaseConnection, StorageError> {
    let bad_url = |e: sqlx::Error| {
        StorageError::invalid(format!("bad database URL `{}`: {e}", redact_url(url)))
    };
    let unreachable = |e: sqlx::Error| {
        StorageError::unavailable(format!("cannot connect to {}: {e}", redact_url(url)))
    };
    let timeout = Duration::from_secs(5);
    match Backend::from_url(url)? {
        Backend::Sqlite => {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(bad_url)?
                .create_if_missing(false)
                .read_only(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(timeout)
                .connect_with(opts)
                .await
                .map_err(unreachable)?;
            Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
        }
        Backend::Postgres => {
            let opts = PgConnectOptions::from_str(url)
                .map_err(bad_url)?
                .application_name("prompter")
                .options([("default_transaction_read_only", "on")]);
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(timeout)
                .connect_with(opts)
                .await
                .map_err(unreachable)?;
            Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
        }
    }
}

pub(crate) fn db_err(e: sea_orm::DbErr) -> StorageError {
    crate::error::DbFail::from(e).into_storage("v7 adoption")
}

pub(crate) fn backend_of(db: &impl ConnectionTrait) -> Backend {
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => Backend::Postgres,
        _ => Backend::Sqlite,
    }
}

pub(crate) async fn rows(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, StorageError> {
    let stmt = Statement::from_sql_and_values(db.get_database_backend(), sql, values);
    db.query_all(stmt).await.map_err(db_err)
}

pub(crate) async fn exec(db: &impl ConnectionTrait, sql: &str) -> Result<(), StorageError> {
    db.execute_unprepared(sql)
        .await
        .map(|_| ())
        .map_err(|e| StorageError::internal(format!("`{}`: {e}", first_line(sql))))
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or("")
}

pub(crate) fn get<T: sea_orm::TryGetable>(r: &QueryResult, col: &str) -> Result<T, StorageError> {
    r.try_get::<T>("", col)
        .map_err(|e| StorageError::internal(format!("cannot read column `{col}`: {e}")))
}

/// Names of the tables in the current schema.
pub(crate) async fn tables(db: &impl ConnectionTrait) -> Result<Vec<String>, StorageError> {
    let sql = match backend_of(db) {
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        Backend::Postgres => {
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
    };
    rows(db, sql, vec![])
        .await?
        .iter()
        .map(|r| get::<String>(r, "name"))
        .collect()
}

/// What kind of database `db` holds.
pub(crate) async fn kind(db: &impl ConnectionTrait) -> Result<DbKind, StorageError> {
    let tables = tables(db).await?;
    let has = |t: &str| tables.iter().any(|x| x == t);
    let init_applied = has("seaql_migrations")
        && !rows(
            db,
            "SELECT version FROM seaql_migrations WHERE version = $1",
            vec![ADOPTION_POINT.into()],
        )
        .await?
        .is_empty();
    if init_applied {
        let adopted_from = if has("prompter_settings") {
            match rows(
                db,
                "SELECT value FROM prompter_settings WHERE key = $1",
                vec![ADOPTED_FROM_KEY.into()],
            )
            .await?
            .first()
            {
                Some(r) => Some(get::<String>(r, "value")?),
                None => None,
            }
        } else {
            None
        };
        return Ok(DbKind::Prompter { adopted_from });
    }
    if has("prompt_templates") {
        let flavour = match backend_of(db) {
            Backend::Sqlite => V7Flavour::Sqlite,
            Backend::Postgres => V7Flavour::Postgres,
        };
        return Ok(DbKind::V7 { flavour });
    }
    Ok(DbKind::Empty)
}

/// PostgreSQL: whether V7 typed `prompt_templates.org_id` as UUID (then it
/// matched caller ids case-insensitively).
pub(crate) async fn org_id_is_uuid(db: &impl ConnectionTrait) -> Result<bool, StorageError> {
    if backend_of(db) != Backend::Postgres {
        return Ok(false);
    }
    let r = rows(
        db,
        "SELECT data_type::text AS t FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = 'prompt_templates' \
         AND column_name = 'org_id'",
        vec![],
    )
    .await?;
    Ok(match r.first() {
        Some(r) => get::<String>(r, "t")? == "uuid",
        None => false,
    })
}

/// Row counts of the three core tables (V7's or Prompter's: same names).
pub(crate) async fn counts(db: &impl ConnectionTrait) -> Result<Counts, StorageError> {
    let r = rows(
        db,
        "SELECT (SELECT count(*) FROM prompt_templates) AS templates, \
         (SELECT count(*) FROM prompt_templates WHERE deleted_at IS NULL) AS active, \
         (SELECT count(*) FROM prompt_versions) AS versions, \
         (SELECT count(*) FROM prompt_results) AS results, \
         (SELECT count(*) FROM prompt_results WHERE version_id IS NULL) AS unversioned",
        vec![],
    )
    .await?;
    let r = r
        .first()
        .ok_or_else(|| StorageError::internal("count query returned no row"))?;
    let n = |c: &str| get::<i64>(r, c).map(|v| v as u64);
    let templates = n("templates")?;
    let active = n("active")?;
    Ok(Counts {
        templates,
        active_templates: active,
        deleted_templates: templates - active,
        versions: n("versions")?,
        results: n("results")?,
        results_without_version: n("unversioned")?,
    })
}

/// V7's stored canonical config of every template, as text.
pub(crate) struct StoredCanonical {
    pub id: String,
    pub org_id: String,
    pub workspace_id: String,
    pub config_hash: String,
    pub canonical: String,
    pub active: bool,
}

/// Every template's stored hash and canonical text (`::text` of JSONB on
/// PostgreSQL), oldest first.
pub(crate) async fn stored_canonicals(
    db: &impl ConnectionTrait,
) -> Result<Vec<StoredCanonical>, StorageError> {
    let sql = match backend_of(db) {
        Backend::Sqlite => {
            "SELECT id, org_id, workspace_id, config_hash, config_canonical_json AS canonical, \
             deleted_at FROM prompt_templates ORDER BY created_at, id"
        }
        Backend::Postgres => {
            "SELECT id::text AS id, org_id::text AS org_id, workspace_id::text AS workspace_id, \
             config_hash, config_canonical_json::text AS canonical, deleted_at::text AS deleted_at \
             FROM prompt_templates ORDER BY created_at, id"
        }
    };
    rows(db, sql, vec![])
        .await?
        .iter()
        .map(|r| {
            Ok(StoredCanonical {
                id: get(r, "id")?,
                org_id: get(r, "org_id")?,
                workspace_id: get(r, "workspace_id")?,
                config_hash: get(r, "config_hash")?,
                canonical: get(r, "canonical")?,
                active: get::<Option<String>>(r, "deleted_at")?.is_none(),
            })
        })
        .collect()
}
