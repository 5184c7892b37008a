//! Backend detection and connection-pool settings.

use crate::StorageError;
use std::time::Duration;

/// The database engine behind a [`crate::Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite (development, single-node deployments).
    Sqlite,
    /// PostgreSQL (production).
    Postgres,
}

impl Backend {
    /// The backend a database URL names: `sqlite:…` or `postgres://…` / `postgresql://…`.
    pub fn from_url(url: &str) -> Result<Backend, StorageError> {
        let lower = url.trim_start().to_ascii_lowercase();
        if lower.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StorageError::invalid(format!(
                "unsupported database URL `{}`: expected sqlite:… or postgres://…",
                crate::redact_url(url)
            )))
        }
    }

    /// A short lower-case name: `sqlite` or `postgres` (as in `/health`).
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    pub(crate) fn db(self) -> sea_orm::DbBackend {
        match self {
            Backend::Sqlite => sea_orm::DbBackend::Sqlite,
            Backend::Postgres => sea_orm::DbBackend::Postgres,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Connection-pool settings.
///
/// On SQLite the pool is capped at [`PoolConfig::SQLITE_MAX_CONNECTIONS`]:
/// SQLite has one writer at a time, so more connections only add
/// busy-waiting writers (and starve some of them); in-process writers also
/// queue on a fair async lock before touching the database, and readers run
/// concurrently under WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Upper bound of open connections.
    pub max_connections: u32,
    /// Connections kept open while idle.
    pub min_connections: u32,
    /// How long a query waits for a free connection before `Unavailable`.
    pub acquire_timeout: Duration,
    /// How long [`crate::Store::connect`] waits for the first connection.
    pub connect_timeout: Duration,
}

impl PoolConfig {
    /// Cap applied to `max_connections` on SQLite.
    pub const SQLITE_MAX_CONNECTIONS: u32 = 4;

    /// A pool of exactly one connection (CLI tools, `migrate fresh` on SQLite).
    pub fn single() -> PoolConfig {
        PoolConfig {
            max_connections: 1,
            min_connections: 0,
            ..PoolConfig::default()
        }
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_connections: 16,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}
