//! Backend-aware values, row decoding and write transactions.
//!
//! PostgreSQL gets native UUID / JSONB / TIMESTAMPTZ values; SQLite gets TEXT:
//! hyphenated lower-case UUIDs, JSON text, and timestamps in the fixed-width
//! form `YYYY-MM-DDTHH:MM:SS.ffffffZ` (always six fractional digits), so
//! that text comparison orders them in time. All timestamps are truncated to
//! microseconds before they are written, so both backends store the same
//! instant and cursors round-trip exactly.

use crate::error::DbFail;
use crate::{Backend, StorageError};
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult, Statement, Value, Values};
use sqlx::Arguments;
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

/// Current time, truncated to microseconds.
pub(crate) fn now() -> DateTime<Utc> {
    micros(Utc::now())
}

/// `t` truncated to microseconds (the precision of both backends).
pub(crate) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// The fixed-width SQLite text form of `t`.
pub fn sqlite_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn parse_sqlite_timestamp(s: &str) -> Result<DateTime<Utc>, StorageError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StorageError::internal(format!("bad timestamp `{s}` in database: {e}")))
}

impl Backend {
    /// Appends the `n`th (1-based) placeholder of a statement whose
    /// placeholders appear once each, in order: `$n` on PostgreSQL, `?` on
    /// SQLite. SQLite keeps `$n` names in a list it scans linearly when
    /// parsing and when sqlx binds each value, so a 64-row insert with `$n`
    /// costs O(values²); anonymous `?` costs nothing (measured, issue 16).
    pub(crate) fn push_param(self, sql: &mut String, n: usize) {
        match self {
            Backend::Postgres => {
                use std::fmt::Write as _;
                let _ = write!(sql, "${n}");
            }
            Backend::Sqlite => sql.push('?'),
        }
    }

    pub(crate) fn uuid(self, u: Uuid) -> Value {
        self.uuid_opt(Some(u))
    }

    pub(crate) fn uuid_opt(self, u: Option<Uuid>) -> Value {
        match self {
            Backend::Postgres => Value::Uuid(u.map(Box::new)),
            Backend::Sqlite => Value::String(u.map(|u| Box::new(u.hyphenated().to_string()))),
        }
    }

    pub(crate) fn ts(self, t: DateTime<Utc>) -> Value {
        self.ts_opt(Some(t))
    }

    pub(crate) fn ts_opt(self, t: Option<DateTime<Utc>>) -> Value {
        let t = t.map(micros);
        match self {
            Backend::Postgres => Value::ChronoDateTimeUtc(t.map(Box::new)),
            Backend::Sqlite => Value::String(t.map(|t| Box::new(sqlite_timestamp(t)))),
        }
    }

    /// JSON `null` is stored as SQL NULL (and read back as `null`).
    pub(crate) fn json(self, v: &serde_json::Value) -> Value {
        let v = (!v.is_null()).then_some(v);
        match self {
            Backend::Postgres => Value::Json(v.map(|v| Box::new(v.clone()))),
            Backend::Sqlite => Value::String(v.map(|v| Box::new(v.to_string()))),
        }
    }
}

pub(crate) fn text(s: &str) -> Value {
    Value::String(Some(Box::new(s.to_owned())))
}

/// An INTEGER column's value (revisions fit in 32 bits on both backends).
pub(crate) fn int_opt(i: Option<i64>) -> Value {
    Value::Int(i.map(|i| i32::try_from(i).unwrap_or(i32::MAX)))
}

pub(crate) fn int(i: i64) -> Value {
    int_opt(Some(i))
}

pub(crate) fn text_opt(s: Option<&str>) -> Value {
    Value::String(s.map(|s| Box::new(s.to_owned())))
}

/// Typed access to one result row, per backend.
pub(crate) struct Row<'a> {
    pub(crate) row: &'a QueryResult,
    pub(crate) backend: Backend,
}

fn col_err(col: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::internal(format!("cannot read column `{col}`: {e}"))
}

impl Row<'_> {
    pub(crate) fn text(&self, col: &str) -> Result<String, StorageError> {
        self.row
            .try_get::<String>("", col)
            .map_err(|e| col_err(col, e))
    }

    pub(crate) fn text_opt(&self, col: &str) -> Result<Option<String>, StorageError> {
        self.row
            .try_get::<Option<String>>("", col)
            .map_err(|e| col_err(col, e))
    }

    pub(crate) fn i64(&self, col: &str) -> Result<i64, StorageError> {
        match self.backend {
            Backend::Postgres => self
                .row
                .try_get::<i32>("", col)
                .map(i64::from)
                .map_err(|e| col_err(col, e)),
            Backend::Sqlite => self
                .row
                .try_get::<i64>("", col)
                .map_err(|e| col_err(col, e)),
        }
    }

    /// A `BIGINT` (PostgreSQL) / `INTEGER` (SQLite) column.
    pub(crate) fn big(&self, col: &str) -> Result<i64, StorageError> {
        self.row
            .try_get::<i64>("", col)
            .map_err(|e| col_err(col, e))
    }

    pub(crate) fn i64_opt(&self, col: &str) -> Result<Option<i64>, StorageError> {
        match self.backend {
            Backend::Postgres => self
                .row
                .try_get::<Option<i32>>("", col)
                .map(|v| v.map(i64::from))
                .map_err(|e| col_err(col, e)),
            Backend::Sqlite => self
                .row
                .try_get::<Option<i64>>("", col)
                .map_err(|e| col_err(col, e)),
        }
    }

    /// A 64-bit column (`BIGINT` on PostgreSQL, where [`Row::i64`] reads `INTEGER`).
    pub(crate) fn big_opt(&self, col: &str) -> Result<Option<i64>, StorageError> {
        self.row
            .try_get::<Option<i64>>("", col)
            .map_err(|e| col_err(col, e))
    }

    pub(crate) fn uuid(&self, col: &str) -> Result<Uuid, StorageError> {
        self.uuid_opt(col)?
            .ok_or_else(|| col_err(col, "unexpected NULL"))
    }

    pub(crate) fn uuid_opt(&self, col: &str) -> Result<Option<Uuid>, StorageError> {
        match self.backend {
            Backend::Postgres => self
                .row
                .try_get::<Option<Uuid>>("", col)
                .map_err(|e| col_err(col, e)),
            Backend::Sqlite => self
                .text_opt(col)?
                .map(|s| Uuid::parse_str(&s).map_err(|e| col_err(col, e)))
                .transpose(),
        }
    }

    pub(crate) fn ts(&self, col: &str) -> Result<DateTime<Utc>, StorageError> {
        self.ts_opt(col)?
            .ok_or_else(|| col_err(col, "unexpected NULL"))
    }

    pub(crate) fn ts_opt(&self, col: &str) -> Result<Option<DateTime<Utc>>, StorageError> {
        match self.backend {
            Backend::Postgres => self
                .row
                .try_get::<Option<DateTime<Utc>>>("", col)
                .map_err(|e| col_err(col, e)),
            Backend::Sqlite => self
                .text_opt(col)?
                .map(|s| parse_sqlite_timestamp(&s))
                .transpose(),
        }
    }

    /// SQL NULL reads as JSON `null`.
    pub(crate) fn json(&self, col: &str) -> Result<serde_json::Value, StorageError> {
        match self.backend {
            Backend::Postgres => self
                .row
                .try_get::<Option<serde_json::Value>>("", col)
                .map(Option::unwrap_or_default)
                .map_err(|e| col_err(col, e)),
            Backend::Sqlite => match self.text_opt(col)? {
                None => Ok(serde_json::Value::Null),
                Some(s) => serde_json::from_str(&s).map_err(|e| col_err(col, e)),
            },
        }
    }
}

/// Binds sea-query values as SQLite arguments, the way the rest of this crate
/// stores them (UUID/JSON/timestamps as text).
fn sqlite_args(values: Option<Values>) -> Result<sqlx::sqlite::SqliteArguments<'static>, DbFail> {
    let mut args = sqlx::sqlite::SqliteArguments::default();
    let bad = |e: sqlx::error::BoxDynError| DbFail::Sqlx(sqlx::Error::Encode(e));
    for v in values.map(|v| v.0).unwrap_or_default() {
        match v {
            Value::Bool(b) => args.add(b).map_err(bad)?,
            Value::TinyInt(i) => args.add(i.map(i32::from)).map_err(bad)?,
            Value::SmallInt(i) => args.add(i.map(i32::from)).map_err(bad)?,
            Value::Int(i) => args.add(i).map_err(bad)?,
            Value::BigInt(i) => args.add(i).map_err(bad)?,
            Value::Double(f) => args.add(f).map_err(bad)?,
            Value::String(s) => args.add(s.map(|s| *s)).map_err(bad)?,
            Value::Bytes(b) => args.add(b.map(|b| *b)).map_err(bad)?,
            Value::Json(j) => args.add(j.map(|j| j.to_string())).map_err(bad)?,
            Value::Uuid(u) => args
                .add(u.map(|u| u.hyphenated().to_string()))
                .map_err(bad)?,
            Value::ChronoDateTimeUtc(t) => args
                .add(t.map(|t| sqlite_timestamp(micros(*t))))
                .map_err(bad)?,
            other => {
                return Err(DbFail::Sqlx(sqlx::Error::Encode(
                    format!("unsupported SQLite argument {other:?}").into(),
                )))
            }
        }
    }
    Ok(args)
}

/// A write transaction: sea-orm's on PostgreSQL; on SQLite a sqlx
/// transaction opened with `BEGIN IMMEDIATE` (takes the write lock up front,
/// waiting through `busy_timeout`, instead of failing with SQLITE_BUSY when a
/// deferred transaction upgrades), held together with the in-process write gate.
pub(crate) enum WriteTx {
    Orm(DatabaseTransaction),
    Sqlite {
        tx: sqlx::Transaction<'static, sqlx::Sqlite>,
        _gate: Option<OwnedMutexGuard<()>>,
    },
}

impl WriteTx {
    pub(crate) async fn query_one(
        &mut self,
        stmt: Statement,
    ) -> Result<Option<QueryResult>, DbFail> {
        match self {
            WriteTx::Orm(tx) => Ok(tx.query_one(stmt).await?),
            WriteTx::Sqlite { tx, .. } => {
                let args = sqlite_args(stmt.values)?;
                let row = sqlx::query_with(&stmt.sql, args)
                    .fetch_optional(&mut **tx)
                    .await?;
                Ok(row.map(QueryResult::from))
            }
        }
    }

    pub(crate) async fn query_all(&mut self, stmt: Statement) -> Result<Vec<QueryResult>, DbFail> {
        match self {
            WriteTx::Orm(tx) => Ok(tx.query_all(stmt).await?),
            WriteTx::Sqlite { tx, .. } => {
                let args = sqlite_args(stmt.values)?;
                let rows = sqlx::query_with(&stmt.sql, args)
                    .fetch_all(&mut **tx)
                    .await?;
                Ok(rows.into_iter().map(QueryResult::from).collect())
            }
        }
    }

    pub(crate) async fn execute(&mut self, stmt: Statement) -> Result<u64, DbFail> {
        match self {
            WriteTx::Orm(tx) => Ok(tx.execute(stmt).await?.rows_affected()),
            WriteTx::Sqlite { tx, .. } => {
                let args = sqlite_args(stmt.values)?;
                let res = sqlx::query_with(&stmt.sql, args).execute(&mut **tx).await?;
                Ok(res.rows_affected())
            }
        }
    }

    pub(crate) async fn commit(self) -> Result<(), DbFail> {
        match self {
            WriteTx::Orm(tx) => Ok(tx.commit().await?),
            WriteTx::Sqlite { tx, _gate } => Ok(tx.commit().await?),
        }
    }

    pub(crate) async fn rollback(self) -> Result<(), DbFail> {
        match self {
            WriteTx::Orm(tx) => Ok(tx.rollback().await?),
            WriteTx::Sqlite { tx, _gate } => Ok(tx.rollback().await?),
        }
    }
}
