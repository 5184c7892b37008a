//! [`StorageError`] and the mapping from driver errors to its categories.

use sea_orm::{DbErr, RuntimeErr};
use sqlx::error::ErrorKind;
use uuid::Uuid;

/// What a storage call can fail with, in categories the API maps to HTTP.
///
/// | variant | meaning | typical HTTP |
/// |---|---|---|
/// | `Conflict` | a unique rule of the database refused the write | 409 |
/// | `NotFound` | absent, outside the caller's scope, or already in the target state | 404 |
/// | `Unavailable` | retryable: pool timeout, connection refused/lost, lock timeout | 503 |
/// | `Invalid` | the database cannot store this input (e.g. U+0000 on PostgreSQL) | 422 |
/// | `InvalidCursor` | a pagination cursor that this layer did not issue | 400 |
/// | `HashAlgorithmMismatch` | the deployment is pinned to another hash algorithm | startup / CLI error |
/// | `Refused` | the database must not be opened for this (a missing file, an un-adopted V7 database) | startup / CLI error |
/// | `Internal` | a bug or an unexpected database state | 500 |
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A unique rule refused the write. For templates, `existing_template_id`
    /// names the active twin (None if it vanished meanwhile, or for other tables).
    #[error("conflict: an active row with the same unique key already exists")]
    Conflict {
        /// The active template holding the same (org, workspace, config_hash).
        existing_template_id: Option<Uuid>,
    },
    /// Absent, outside the caller's scope, or not in a state the call applies to.
    #[error("not found")]
    NotFound,
    /// The database cannot be reached right now; retrying later may succeed.
    #[error("database unavailable: {message}")]
    Unavailable {
        /// Why.
        message: String,
    },
    /// The input cannot be stored (e.g. text containing U+0000 on PostgreSQL).
    #[error("invalid input for the database: {message}")]
    Invalid {
        /// Why.
        message: String,
    },
    /// A pagination cursor that was not produced by this layer.
    #[error("invalid pagination cursor")]
    InvalidCursor,
    /// The database is pinned to another hash algorithm than the one requested.
    #[error(
        "this database is pinned to hash algorithm `{pinned}`, but `{requested}` was requested; \
         the hash algorithm of a deployment cannot change (start with --hash-algorithm {pinned})"
    )]
    HashAlgorithmMismatch {
        /// The algorithm stored in `prompter_settings`.
        pinned: String,
        /// The algorithm the caller asked for.
        requested: String,
    },
    /// The database must not be opened for this command (a missing SQLite
    /// file, an un-adopted V7 database, a destructive step not confirmed);
    /// the message says what to do instead.
    #[error("{message}")]
    Refused {
        /// One line for the operator.
        message: String,
    },
    /// Anything else: a bug or an unexpected database state.
    #[error("internal storage error: {message}")]
    Internal {
        /// Details for the log (not for clients).
        message: String,
    },
}

impl StorageError {
    /// A stable machine code for this category.
    pub fn code(&self) -> &'static str {
        match self {
            StorageError::Conflict { .. } => "CONFLICT",
            StorageError::NotFound => "NOT_FOUND",
            StorageError::Unavailable { .. } => "DB_UNAVAILABLE",
            StorageError::Invalid { .. } => "INVALID_INPUT",
            StorageError::InvalidCursor => "INVALID_CURSOR",
            StorageError::HashAlgorithmMismatch { .. } => "HASH_ALGORITHM_MISMATCH",
            StorageError::Refused { .. } => "REFUSED",
            StorageError::Internal { .. } => "INTERNAL",
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Unavailable { .. })
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        StorageError::Internal {
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        StorageError::Invalid {
            message: message.into(),
        }
    }

    pub(crate) fn refused(message: impl Into<String>) -> Self {
        StorageError::Refused {
            message: message.into(),
        }
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        StorageError::Unavailable {
            message: message.into(),
        }
    }
}

/// How a driver error is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Unique,
    ForeignKey,
    Invalid,
    Unavailable,
    NotFound,
    Other,
}

/// A failure from either sea-orm or (SQLite write transactions) sqlx directly.
#[derive(Debug)]
pub(crate) enum DbFail {
    Orm(DbErr),
    Sqlx(sqlx::Error),
}

impl From<DbErr> for DbFail {
    fn from(e: DbErr) -> Self {
        DbFail::Orm(e)
    }
}

impl From<sqlx::Error> for DbFail {
    fn from(e: sqlx::Error) -> Self {
        DbFail::Sqlx(e)
    }
}

impl std::fmt::Display for DbFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbFail::Orm(e) => write!(f, "{e}"),
            DbFail::Sqlx(e) => write!(f, "{e}"),
        }
    }
}

impl DbFail {
    fn sqlx(&self) -> Option<&sqlx::Error> {
        match self {
            DbFail::Sqlx(e) => Some(e),
            DbFail::Orm(DbErr::Conn(RuntimeErr::SqlxError(e)))
            | DbFail::Orm(DbErr::Exec(RuntimeErr::SqlxError(e)))
            | DbFail::Orm(DbErr::Query(RuntimeErr::SqlxError(e))) => Some(e),
            DbFail::Orm(_) => None,
        }
    }

    pub(crate) fn class(&self) -> Class {
        if let DbFail::Orm(e) = self {
            match e {
                DbErr::ConnectionAcquire(_) => return Class::Unavailable,
                DbErr::RecordNotFound(_) => return Class::NotFound,
                _ => {}
            }
        }
        match self.sqlx() {
            Some(e) => classify_sqlx(e),
            None => Class::Other,
        }
    }

    pub(crate) fn is_unique(&self) -> bool {
        self.class() == Class::Unique
    }

    /// Maps to a [`StorageError`]; a unique violation on `table` is counted in
    /// `prompter_db_unique_violation_total{table}` and reported as `Conflict`.
    pub(crate) fn into_storage(self, table: &'static str) -> StorageError {
        match self.class() {
            Class::Unique => {
                count_unique_violation(table);
                StorageError::Conflict {
                    existing_template_id: None,
                }
            }
            Class::ForeignKey => StorageError::NotFound,
            Class::NotFound => StorageError::NotFound,
            Class::Invalid => StorageError::invalid(self.to_string()),
            Class::Unavailable => StorageError::unavailable(self.to_string()),
            Class::Other => StorageError::internal(self.to_string()),
        }
    }
}

/// Counts one unique violation on `table`.
pub(crate) fn count_unique_violation(table: &'static str) {
    metrics::counter!("prompter_db_unique_violation_total", "table" => table).increment(1);
}

fn classify_sqlx(e: &sqlx::Error) -> Class {
    match e {
        sqlx::Error::Database(db) => {
            match db.kind() {
                ErrorKind::UniqueViolation => return Class::Unique,
                ErrorKind::ForeignKeyViolation => return Class::ForeignKey,
                ErrorKind::NotNullViolation | ErrorKind::CheckViolation => return Class::Invalid,
                _ => {}
            }
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                classify_pg_code(&code)
            } else {
                classify_sqlite_code(&code)
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => Class::Unavailable,
        sqlx::Error::RowNotFound => Class::NotFound,
        _ => Class::Other,
    }
}

fn classify_pg_code(code: &str) -> Class {
    match code {
        // data exceptions: U+0000 in text (22021), \u0000 in jsonb (22P05), bad values
        c if c.starts_with("22") => Class::Invalid,
        // connection exceptions, operator intervention (terminated, shutting down,
        // cannot connect now), insufficient resources, serialization/deadlock
        c if c.starts_with("08") || c.starts_with("57P") || c.starts_with("53") => {
            Class::Unavailable
        }
        "40001" | "40P01" | "55P03" | "3D000" => Class::Unavailable,
        c if c.starts_with("28") => Class::Unavailable,
        _ => Class::Other,
    }
}

fn classify_sqlite_code(code: &str) -> Class {
    let Ok(n) = code.parse::<i64>() else {
        return Class::Other;
    };
    match n & 0xff {
        // BUSY, LOCKED, IOERR, CANTOPEN, FULL, PROTOCOL
        5 | 6 | 10 | 13 | 14 | 15 => Class::Unavailable,
        // TOOBIG, MISMATCH (e.g. wrong type into a STRICT column)
        18 | 20 => Class::Invalid,
        _ => Class::Other,
    }
}

impl From<DbErr> for StorageError {
    fn from(e: DbErr) -> Self {
        DbFail::Orm(e).into_storage("unknown")
    }
}
