//! Claiming rows with a lease: the one statement shape behind webhook
//! outbox deliveries ([`Store::claim_outbox`]) and batch items
//! ([`Store::claim_batch_items`]), so the two cannot drift apart.
//!
//! `UPDATE t SET claimed_by = $1, lease_until = $2 … WHERE id IN (SELECT id
//! FROM t WHERE <due at $3> ORDER BY … LIMIT $4 [FOR UPDATE SKIP LOCKED])
//! RETURNING …`: on PostgreSQL the inner select skips rows another claimer
//! has locked instead of waiting (and re-checks the lease after a
//! concurrent commit); on SQLite the statement runs under the database
//! write lock, which serialises claimers of every process on the file. A
//! row whose lease ran out (its instance died) is due again.

use crate::error::DbFail;
use crate::sql;
use crate::{Backend, Store};
use chrono::{DateTime, Utc};
use sea_orm::QueryResult;

/// What a claim of one table sets and selects.
pub(crate) struct LeaseClaim {
    /// The table.
    pub(crate) table: &'static str,
    /// More assignments after `claimed_by` and `lease_until` (may use `$3`,
    /// the claim time), each starting with `, `; or empty.
    pub(crate) also_set: &'static str,
    /// When a row is due, at `$3` (its lease, if any, must have run out).
    pub(crate) due: &'static str,
    /// Which due rows go first.
    pub(crate) order_by: &'static str,
    /// The columns returned.
    pub(crate) returning: &'static str,
}

/// When a lease of `lease` taken at `now` ends.
pub(crate) fn lease_end(now: DateTime<Utc>, lease: std::time::Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX)
}

impl LeaseClaim {
    fn sql(&self, backend: Backend) -> String {
        let lock = match backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let LeaseClaim {
            table,
            also_set,
            due,
            order_by,
            returning,
        } = self;
        format!(
            "UPDATE {table} SET claimed_by = $1, lease_until = $2{also_set} WHERE id IN (\
             SELECT id FROM {table} WHERE {due} ORDER BY {order_by} LIMIT $4{lock}) \
             RETURNING {returning}"
        )
    }
}

impl Store {
    /// Claims up to `limit` due rows of `claim.table` for `owner` until
    /// `now + lease`; the claimed rows, in no particular order.
    pub(crate) async fn claim_leased(
        &self,
        claim: &LeaseClaim,
        owner: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u64,
    ) -> Result<Vec<QueryResult>, DbFail> {
        let b = self.backend;
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        self.w_all(self.stmt(
            &claim.sql(b),
            vec![
                sql::text(owner),
                b.ts(lease_end(now, lease)),
                b.ts(now),
                limit.into(),
            ],
        ))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_skips_locked_rows_sqlite_relies_on_its_write_lock() {
        let c = LeaseClaim {
            table: "t",
            also_set: ", n = n + 1",
            due: "due_at <= $3",
            order_by: "due_at, id",
            returning: "id",
        };
        assert_eq!(
            c.sql(Backend::Postgres),
            "UPDATE t SET claimed_by = $1, lease_until = $2, n = n + 1 WHERE id IN (\
             SELECT id FROM t WHERE due_at <= $3 ORDER BY due_at, id LIMIT $4 \
             FOR UPDATE SKIP LOCKED) RETURNING id"
        );
        assert!(!c.sql(Backend::Sqlite).contains("SKIP LOCKED"));
    }
}
