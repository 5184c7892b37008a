//! Per-test databases for integration tests (feature `test-util`).
//!
//! * [`TestDb::sqlite`]: a SQLite file in a fresh temp directory.
//! * [`TestDb::postgres_from_env`]: a fresh PostgreSQL database created
//!   through the server named by `PROMPTER_TEST_POSTGRES_URL`; `None` (with a
//!   skip reason on stderr) when the variable is unset, a panic when it is set
//!   but the server cannot be reached. The database is dropped (`WITH (FORCE)`)
//!   when the `TestDb` is dropped.
//!
//! * [`TEMPLATE_INSERT`], [`RESULT_INSERT`]: the repositories' own insert
//!   statements ([`InsertSpec`]), for benchmarks whose raw sqlx baselines
//!   and seeders must write exactly what the store writes (no second copy of
//!   the SQL outside this crate); timestamps for SQLite via
//!   [`crate::sqlite_timestamp`].
//!
//! ```no_run
//! # async fn demo() {
//! use prompter_storage::testing::TestDb;
//! let db = TestDb::sqlite().await;
//! let store = db.store().await; // connected and migrated
//! if let Some(pg) = TestDb::postgres_from_env().await {
//!     let _url = pg.url();
//! }
//! # }
//! ```

pub use crate::batch::InsertSpec;
pub use crate::repo::{RESULT_INSERT, TEMPLATE_INSERT};
use crate::{Backend, PoolConfig, Store};
use sqlx::Connection;
use tempfile::TempDir;

/// Env var with the URL of a PostgreSQL server (any existing database on it).
pub const POSTGRES_URL_ENV: &str = "PROMPTER_TEST_POSTGRES_URL";

/// A database owned by one test.
pub struct TestDb {
    url: String,
    backend: Backend,
    _dir: Option<TempDir>,
    pg_drop: Option<PgDrop>,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("url", &crate::redact_url(&self.url))
            .finish_non_exhaustive()
    }
}

struct PgDrop {
    admin_url: String,
    name: String,
}

/// A SQLite test database in a temp directory.
pub async fn sqlite_temp() -> TestDb {
    TestDb::sqlite().await
}

/// A fresh PostgreSQL test database, or None when `PROMPTER_TEST_POSTGRES_URL` is unset.
pub async fn postgres_fresh() -> Option<TestDb> {
    TestDb::postgres_from_env().await
}

impl TestDb {
    /// A new SQLite database file in its own temp directory (removed on drop).
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::Builder::new()
            .prefix("prompter-test-")
            .tempdir()
            .expect("create temp dir for SQLite test database");
        let path = dir.path().join("test.db");
        TestDb {
            url: format!("sqlite://{}?mode=rwc", path.display()),
            backend: Backend::Sqlite,
            _dir: Some(dir),
            pg_drop: None,
        }
    }

    /// A new database on the server of `PROMPTER_TEST_POSTGRES_URL`.
    ///
    /// Unset: prints a skip reason and returns None. Set but unreachable:
    /// panics, so a misconfigured CI fails loudly instead of skipping.
    pub async fn postgres_from_env() -> Option<TestDb> {
        match std::env::var(POSTGRES_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => Some(TestDb::postgres(url.trim()).await),
            _ => {
                // Written to the raw stderr so cargo's output capture does not hide it.
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "skipping PostgreSQL test: {POSTGRES_URL_ENV} is not set"
                );
                None
            }
        }
    }

    /// A new database `prompter_test_<uuid>` created through `admin_url`. Panics on failure.
    pub async fn postgres(admin_url: &str) -> TestDb {
        let name = format!("prompter_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{POSTGRES_URL_ENV} is set but PostgreSQL at {} is unreachable: {e}",
                    crate::redact_url(admin_url)
                )
            });
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} failed: {e}"));
        let _ = conn.close().await;
        TestDb {
            url: with_database(admin_url, &name),
            backend: Backend::Postgres,
            _dir: None,
            pg_drop: Some(PgDrop {
                admin_url: admin_url.to_owned(),
                name,
            }),
        }
    }

    /// SQLite always, plus PostgreSQL when `PROMPTER_TEST_POSTGRES_URL` is set.
    pub async fn all() -> Vec<TestDb> {
        let mut v = vec![TestDb::sqlite().await];
        v.extend(TestDb::postgres_from_env().await);
        v
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connected store (default pool), not migrated.
    pub async fn connect(&self) -> Store {
        Store::connect(&self.url, &PoolConfig::default())
            .await
            .unwrap_or_else(|e| panic!("connect to test database {:?}: {e}", self))
    }

    /// PostgreSQL: the planner's row estimate of `table` (`pg_class.reltuples`,
    /// -1 until the table is analysed). Panics on SQLite.
    pub async fn pg_reltuples(&self, table: &str) -> f64 {
        assert_eq!(self.backend, Backend::Postgres, "reltuples is PostgreSQL's");
        let mut conn = sqlx::PgConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connect to test database {:?}: {e}", self));
        let (n,): (f64,) =
            sqlx::query_as("SELECT reltuples::float8 FROM pg_class WHERE relname = $1")
                .bind(table)
                .fetch_one(&mut conn)
                .await
                .expect("read pg_class.reltuples");
        n
    }

    /// A connected store with every migration applied.
    pub async fn store(&self) -> Store {
        let store = self.connect().await;
        store
            .migrate_up()
            .await
            .unwrap_or_else(|e| panic!("migrate test database {:?}: {e}", self));
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(PgDrop { admin_url, name }) = self.pg_drop.take() else {
            return;
        };
        // Async work in Drop: a short-lived runtime on its own thread.
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for dropping the test database");
            rt.block_on(async move {
                let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        });
        if let Ok(Err(e)) = handle.join() {
            eprintln!("warning: could not drop test database: {e}");
        }
    }
}

/// `url` with its database path replaced by `/name` (query string kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[authority_start..]
        .find('/')
        .map(|i| authority_start + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..path_start], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }

    #[test]
    fn insert_specs_number_every_placeholder() {
        use super::{RESULT_INSERT, TEMPLATE_INSERT};
        assert_eq!(TEMPLATE_INSERT.width(), 19);
        assert_eq!(RESULT_INSERT.width(), 15);
        let one = RESULT_INSERT.sql(1);
        assert!(
            one.starts_with("INSERT INTO prompt_results (id, org_id"),
            "{one}"
        );
        assert!(
            one.ends_with("($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"),
            "{one}"
        );
        let two = TEMPLATE_INSERT.sql(2);
        assert!(two.contains("$19), ($20,") && two.contains("$38)"), "{two}");
        assert!(two.ends_with("DO NOTHING RETURNING id"), "{two}");
    }
}
