//! Per-backend column types and a helper to run DDL one statement at a time.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// SQL type names for the logical column types, per backend.
#[derive(Debug, Clone, Copy)]
pub struct ColumnTypes {
    /// Service-generated UUID ids.
    pub uuid: &'static str,
    /// JSON documents.
    pub json: &'static str,
    /// UTC timestamps.
    pub ts: &'static str,
    /// Suffix after a table's closing parenthesis (`STRICT` on SQLite).
    pub table_suffix: &'static str,
}

impl ColumnTypes {
    /// The types for `backend`. MySQL is not supported.
    pub fn for_backend(backend: DbBackend) -> Result<Self, DbErr> {
        match backend {
            DbBackend::Postgres => Ok(ColumnTypes {
                uuid: "UUID",
                json: "JSONB",
                ts: "TIMESTAMPTZ",
                table_suffix: "",
            }),
            DbBackend::Sqlite => Ok(ColumnTypes {
                uuid: "TEXT",
                json: "TEXT",
                ts: "TEXT",
                table_suffix: " STRICT",
            }),
            DbBackend::MySql => Err(DbErr::Migration(
                "Prompter supports PostgreSQL and SQLite only".into(),
            )),
        }
    }
}

/// Runs each statement in order (one statement per call, so both drivers
/// accept it).
pub async fn run_all(manager: &SchemaManager<'_>, statements: &[String]) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}
