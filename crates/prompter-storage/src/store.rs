//! [`Store`]: the connection pool plus every repository method.

use crate::batch::InsertBatcher;
use crate::error::DbFail;
use crate::page::{Cursor, Page, PageRequest};
use crate::sql::{self, Row, WriteTx};
use crate::{redact_url, Backend, PoolConfig, StorageError};
use chrono::{DateTime, Utc};
use prompter_migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Condition, Expr, IntoColumnRef, Order, SelectStatement};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, QueryResult, SqlxPostgresConnector, SqlxSqliteConnector,
    Statement, TransactionTrait, Value,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};
use uuid::Uuid;

/// SQLite `busy_timeout`: how long a writer waits for another process's write lock.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite `journal_size_limit`: the WAL file is truncated back to this many
/// bytes when a checkpoint resets it (SQLite's default never shrinks it).
pub const SQLITE_JOURNAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

/// Hash algorithms a deployment may pin.
pub const HASH_ALGORITHMS: &[&str] = &["blake3", "sha256"];

/// The hash algorithm pinned when none is requested.
pub const DEFAULT_HASH_ALGORITHM: &str = "blake3";

const HASH_ALGORITHM_KEY: &str = "hash_algorithm";

/// The storage handle: a connection pool and the repository methods.
///
/// Cheap to clone (the pool is reference-counted). Every read and write of a
/// tenant's rows takes a [`crate::Scope`] or carries the tenant ids itself.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    pub(crate) backend: Backend,
    /// SQLite only: in-process writes (transactions and single statements,
    /// see [`Store::w_one`]) queue here (fair FIFO) instead of sleeping in
    /// SQLite's busy handler while another one holds the write lock;
    /// `busy_timeout` remains for other processes.
    write_gate: Option<Arc<Mutex<()>>>,
    /// Group commit of result inserts (see [`crate::batch`]).
    pub(crate) results: InsertBatcher,
    /// Group commit of template inserts (see [`crate::batch`]).
    pub(crate) templates: InsertBatcher,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to `url` (`sqlite:…` or `postgres://…`).
    ///
    /// SQLite: the file is created if missing; WAL journal, `busy_timeout`
    /// [`SQLITE_BUSY_TIMEOUT`], `foreign_keys=ON`, `synchronous=NORMAL`,
    /// `journal_size_limit` [`SQLITE_JOURNAL_SIZE_LIMIT`]; pool
    /// capped at [`PoolConfig::SQLITE_MAX_CONNECTIONS`].
    /// An unreachable database is `Unavailable`, a malformed URL `Invalid`.
    pub async fn connect(url: &str, pool: &PoolConfig) -> Result<Store, StorageError> {
        let backend = Backend::from_url(url)?;
        let bad_url = |e: sqlx::Error| {
            StorageError::invalid(format!("bad database URL `{}`: {e}", redact_url(url)))
        };
        let unreachable = |e: String| {
            StorageError::unavailable(format!("cannot connect to {}: {e}", redact_url(url)))
        };
        let db = match backend {
            Backend::Sqlite => {
                let opts = SqliteConnectOptions::from_str(url)
                    .map_err(bad_url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
                    .synchronous(SqliteSynchronous::Normal)
                    // After a checkpoint that could reset the WAL, shrink the
                    // file back to this size (a long reader can make it grow).
                    .pragma("journal_size_limit", SQLITE_JOURNAL_SIZE_LIMIT.to_string());
                let max = pool
                    .max_connections
                    .clamp(1, PoolConfig::SQLITE_MAX_CONNECTIONS);
                probe(&opts, pool.connect_timeout)
                    .await
                    .map_err(unreachable)?;
                let pool = SqlitePoolOptions::new()
                    .max_connections(max)
                    .min_connections(pool.min_connections.min(max))
                    .acquire_timeout(pool.acquire_timeout)
                    .connect_lazy_with(opts);
                SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
            }
            Backend::Postgres => {
                let opts = PgConnectOptions::from_str(url)
                    .map_err(bad_url)?
                    .application_name("prompter");
                let max = pool.max_connections.max(1);
                probe(&opts, pool.connect_timeout)
                    .await
                    .map_err(unreachable)?;
                let pool = PgPoolOptions::new()
                    .max_connections(max)
                    .min_connections(pool.min_connections.min(max))
                    .acquire_timeout(pool.acquire_timeout)
                    .connect_lazy_with(opts);
                SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
            }
        };
        let write_gate = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let batcher = |spec| InsertBatcher::spawn(db.clone(), backend, write_gate.clone(), spec);
        let results = batcher(&crate::repo::RESULT_INSERT);
        let templates = batcher(&crate::repo::TEMPLATE_INSERT);
        Ok(Store {
            db,
            backend,
            write_gate,
            results,
            templates,
        })
    }

    /// The database engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The underlying sea-orm connection (pool).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Closes the pool; later calls fail with `Unavailable`.
    pub async fn close(&self) {
        match self.backend {
            Backend::Sqlite => self.db.get_sqlite_connection_pool().close().await,
            Backend::Postgres => self.db.get_postgres_connection_pool().close().await,
        }
    }

    /// Round trip to the database.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.db
            .ping()
            .await
            .map_err(|e| DbFail::from(e).into_storage("none"))
    }

    /// Names of migrations not yet applied, oldest first.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StorageError> {
        let pending = Migrator::get_pending_migrations(&self.db)
            .await
            .map_err(migration_err)?;
        Ok(pending.iter().map(|m| m.name().to_owned()).collect())
    }

    /// Names of applied migrations, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<String>, StorageError> {
        let applied = Migrator::get_applied_migrations(&self.db)
            .await
            .map_err(migration_err)?;
        Ok(applied.iter().map(|m| m.name().to_owned()).collect())
    }

    /// Applies every pending migration; returns the names applied.
    pub async fn migrate_up(&self) -> Result<Vec<String>, StorageError> {
        let pending = self.pending_migrations().await?;
        if !pending.is_empty() {
            Migrator::up(&self.db, None).await.map_err(migration_err)?;
        }
        Ok(pending)
    }

    /// Rolls back the last `steps` applied migrations; returns their names, newest first.
    pub async fn migrate_down(&self, steps: u32) -> Result<Vec<String>, StorageError> {
        let mut applied = self.applied_migrations().await?;
        applied.reverse();
        applied.truncate(steps as usize);
        if !applied.is_empty() {
            Migrator::down(&self.db, Some(steps))
                .await
                .map_err(migration_err)?;
        }
        Ok(applied)
    }

    /// Pins the deployment's hash algorithm.
    ///
    /// Nothing pinned → pins `requested.unwrap_or("blake3")`; pinned and a
    /// different algorithm requested → `HashAlgorithmMismatch`; returns the
    /// pinned value. Unknown algorithms are `Invalid`.
    pub async fn pin_hash_algorithm(
        &self,
        requested: Option<&str>,
    ) -> Result<String, StorageError> {
        if let Some(r) = requested {
            if !HASH_ALGORITHMS.contains(&r) {
                return Err(StorageError::invalid(format!(
                    "unknown hash algorithm `{r}` (expected one of: {})",
                    HASH_ALGORITHMS.join(", ")
                )));
            }
        }
        let want = requested.unwrap_or(DEFAULT_HASH_ALGORITHM);
        let b = self.backend;
        let insert = self.stmt(
            "INSERT INTO prompter_settings (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO NOTHING",
            vec![
                sql::text(HASH_ALGORITHM_KEY),
                sql::text(want),
                b.ts(sql::now()),
            ],
        );
        self.w_exec(insert)
            .await
            .map_err(|e| e.into_storage("prompter_settings"))?;
        let pinned = self
            .hash_algorithm()
            .await?
            .ok_or_else(|| StorageError::internal("hash algorithm vanished after pinning"))?;
        match requested {
            Some(r) if r != pinned => Err(StorageError::HashAlgorithmMismatch {
                pinned,
                requested: r.to_owned(),
            }),
            _ => Ok(pinned),
        }
    }

    /// The pinned hash algorithm, if any (None also before the first migration).
    pub async fn hash_algorithm(&self) -> Result<Option<String>, StorageError> {
        let q = self.stmt(
            "SELECT value FROM prompter_settings WHERE key = $1",
            vec![sql::text(HASH_ALGORITHM_KEY)],
        );
        match self.q_one(q).await {
            Ok(Some(row)) => Ok(Some(self.row(&row).text("value")?)),
            Ok(None) => Ok(None),
            Err(e) => {
                // before the first migration the table does not exist
                if self
                    .pending_migrations()
                    .await
                    .is_ok_and(|p| p.iter().any(|m| m == "m20260101_000001_init"))
                {
                    Ok(None)
                } else {
                    Err(e.into_storage("prompter_settings"))
                }
            }
        }
    }

    // ---- internal helpers -------------------------------------------------

    pub(crate) fn stmt(&self, sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(self.backend.db(), sql, values)
    }

    pub(crate) fn build(&self, q: &SelectStatement) -> Statement {
        self.backend.db().build(q)
    }

    pub(crate) fn row<'a>(&self, row: &'a QueryResult) -> Row<'a> {
        Row {
            row,
            backend: self.backend,
        }
    }

    async fn gate(&self) -> Option<OwnedMutexGuard<()>> {
        match &self.write_gate {
            Some(g) => Some(g.clone().lock_owned().await),
            None => None,
        }
    }

    /// A read.
    pub(crate) async fn q_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbFail> {
        Ok(self.db.query_one(stmt).await?)
    }

    /// A read.
    pub(crate) async fn q_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbFail> {
        Ok(self.db.query_all(stmt).await?)
    }

    /// A single-statement write (autocommit) returning at most one row.
    ///
    /// On SQLite it queues on the write gate like a transaction does (issue 9):
    /// ungated, a single-statement write that meets a gated transaction (or
    /// another one) waits inside SQLite's busy handler, which sleeps 1, 2, 5,
    /// … 100 ms between tries, so under load runs (version upsert + result
    /// insert) lost most of their time sleeping. Never call it while this task
    /// holds a [`WriteTx`].
    ///
    /// The statement is stepped to its end (`query_all`, never `query_one`):
    /// sqlx's `fetch_one` resets a statement after its first row, and SQLite
    /// runs its WAL hook (the automatic checkpoint) only when an autocommit
    /// statement steps to `SQLITE_DONE`. Writes through `fetch_one` commit but
    /// never checkpoint, so a busy server's WAL grew without bound (seen as a
    /// 700 MB WAL and 1.5 s stalls in `cargo xtask bench http`).
    pub(crate) async fn w_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbFail> {
        let _gate = self.gate().await;
        Ok(self.db.query_all(stmt).await?.into_iter().next())
    }

    /// A single-statement write (autocommit) returning all its rows
    /// (`UPDATE … RETURNING`). Gated on SQLite, see [`Store::w_one`].
    pub(crate) async fn w_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbFail> {
        let _gate = self.gate().await;
        Ok(self.db.query_all(stmt).await?)
    }

    /// A single-statement write (autocommit); returns rows affected. Gated on
    /// SQLite, see [`Store::w_one`].
    pub(crate) async fn w_exec(&self, stmt: Statement) -> Result<u64, DbFail> {
        let _gate = self.gate().await;
        Ok(self.db.execute(stmt).await?.rows_affected())
    }

    /// Opens a write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, DbFail> {
        match self.backend {
            Backend::Postgres => Ok(WriteTx::Orm(self.db.begin().await?)),
            Backend::Sqlite => {
                let gate = self.gate().await;
                let tx = self
                    .db
                    .get_sqlite_connection_pool()
                    .begin_with("BEGIN IMMEDIATE")
                    .await?;
                Ok(WriteTx::Sqlite { tx, _gate: gate })
            }
        }
    }

    /// Runs a newest-first keyset listing over (`time_col`, `id_col`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn list_keyset<T, C1, C2>(
        &self,
        mut q: SelectStatement,
        time_col: C1,
        id_col: C2,
        page: &PageRequest,
        table: &'static str,
        decode: impl Fn(&Row<'_>) -> Result<T, StorageError>,
        key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
    ) -> Result<Page<T>, StorageError>
    where
        C1: IntoColumnRef + Clone,
        C2: IntoColumnRef + Clone,
    {
        let limit = page.effective_limit();
        if let Some(c) = &page.cursor {
            let c = Cursor::decode(c)?;
            let b = self.backend;
            q.cond_where(
                Condition::any()
                    .add(Expr::col(time_col.clone()).lt(b.ts(c.at)))
                    .add(
                        Condition::all()
                            .add(Expr::col(time_col.clone()).eq(b.ts(c.at)))
                            .add(Expr::col(id_col.clone()).lt(b.uuid(c.id))),
                    ),
            );
        }
        q.order_by(time_col, Order::Desc)
            .order_by(id_col, Order::Desc)
            .limit(limit + 1);
        let rows = self
            .q_all(self.build(&q))
            .await
            .map_err(|e| e.into_storage(table))?;
        // The extra row only says that another page exists: not decoded.
        let more = rows.len() as u64 > limit;
        let items = rows
            .iter()
            .take(limit as usize)
            .map(|r| decode(&self.row(r)))
            .collect::<Result<Vec<T>, _>>()?;
        let next_cursor = if more {
            items.last().map(|last| {
                let (at, id) = key(last);
                Cursor { at, id }.encode()
            })
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}

/// Opens and closes one connection, so an unreachable database fails now
/// with the driver's reason (a pool would only report its own timeout).
async fn probe<O>(opts: &O, timeout: Duration) -> Result<(), String>
where
    O: sqlx::ConnectOptions,
    O::Connection: Sized,
{
    match tokio::time::timeout(timeout, opts.connect()).await {
        Err(_) => Err(format!("no connection within {timeout:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(conn)) => {
            let _ = sqlx::Connection::close(conn).await;
            Ok(())
        }
    }
}

fn migration_err(e: sea_orm::DbErr) -> StorageError {
    match DbFail::from(e).into_storage("seaql_migrations") {
        StorageError::Internal { message } => {
            StorageError::internal(format!("migration failed: {message}"))
        }
        other => other,
    }
}
