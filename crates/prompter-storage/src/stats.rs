//! Connection pool statistics for the `prompter_db_pool_connections` gauge.

use crate::Store;
use sea_orm::DatabaseConnection;

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
}
