//! Connection pool statistics for the `prompter_db_pool_connections` gauge,
//! and planner statistics after a bulk load.

use crate::{Backend, StorageError, Store};
use sea_orm::{ConnectionTrait, DatabaseConnection};

impl Store {
    /// `(open connections, idle connections)` of the pool.
    pub fn pool_stats(&self) -> (u32, u32) {
        match &self.db {
            DatabaseConnection::SqlxSqlitePoolConnection(_) => {
                let p = self.db.get_sqlite_connection_pool();
                (p.size(), p.num_idle() as u32)
            }
            DatabaseConnection::SqlxPostgresPoolConnection(_) => {
                let p = self.db.get_postgres_connection_pool();
                (p.size(), p.num_idle() as u32)
            }
            _ => (0, 0),
        }
    }

    /// Refreshes PostgreSQL's planner statistics of the template table
    /// (`ANALYZE prompt_templates`); a no-op on SQLite. Run after a bulk load
    /// (`prompter import` does): without statistics, and before autovacuum's
    /// autoanalyze gets to it, PostgreSQL lists a large workspace through the
    /// dedup index plus a sort of every row (≈ 400 ms a page measured at
    /// 100k templates) instead of walking `ix_tpl_org_ws_created`.
    pub async fn analyze_templates(&self) -> Result<(), StorageError> {
        if self.backend == Backend::Postgres {
            self.db
                .execute_unprepared("ANALYZE prompt_templates")
                .await
                .map_err(|e| crate::error::DbFail::Orm(e).into_storage("prompt_templates"))?;
        }
        Ok(())
    }
}
