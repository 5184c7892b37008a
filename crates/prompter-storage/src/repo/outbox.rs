//! Webhook outbox: durable deliveries with retry bookkeeping, claimed with a
//! lease so that one instance among many delivers each row.
//!
//! [`Store::claim_outbox`] is the claim-with-lease statement of
//! `repo/lease.rs` (shared with batch items): one `UPDATE … WHERE id IN
//! (SELECT … LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING …`. A claim holds
//! until `lease_until`; a row claimed by an instance that died is claimed
//! again after it.

use super::drift::INSERT_OUTBOX_SQL;
use super::lease::LeaseClaim;
use crate::entity::webhook_outbox::{Column as C, Entity as Outbox};
use crate::sql::{self, Row};
use crate::{OutboxRecord, StorageError, Store};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Order, Query};
use sea_orm::Iterable;
use uuid::Uuid;

const TABLE: &str = "webhook_outbox";

const FAILED_SQL: &str = "UPDATE webhook_outbox SET attempts = attempts + 1, \
    next_attempt_at = $1, last_error = $2, claimed_by = NULL, lease_until = NULL \
    WHERE id = $3 AND delivered_at IS NULL AND (claimed_by IS NULL OR claimed_by = $4)";

const DELIVERED_SQL: &str = "UPDATE webhook_outbox SET delivered_at = $1, claimed_by = NULL, \
    lease_until = NULL WHERE id = $2 AND delivered_at IS NULL";

const RELEASE_SQL: &str = "UPDATE webhook_outbox SET claimed_by = NULL, lease_until = NULL \
    WHERE claimed_by = $1 AND delivered_at IS NULL";

const COLUMNS: &str = "id, event_id, payload, attempts, next_attempt_at, delivered_at, \
    last_error, created_at, claimed_by, lease_until";

/// The claim: undelivered rows due at `$3` whose lease, if any, ran out.
const CLAIM: LeaseClaim = LeaseClaim {
    table: TABLE,
    also_set: "",
    due: "delivered_at IS NULL AND next_attempt_at <= $3 \
          AND (lease_until IS NULL OR lease_until <= $3)",
    order_by: "next_attempt_at, id",
    returning: COLUMNS,
};

fn decode(r: &Row<'_>) -> Result<OutboxRecord, StorageError> {
    Ok(OutboxRecord {
        id: r.uuid("id")?,
        event_id: r.uuid("event_id")?,
        payload: r.text("payload")?,
        attempts: r.i64("attempts")?,
        next_attempt_at: r.ts("next_attempt_at")?,
        delivered_at: r.ts_opt("delivered_at")?,
        last_error: r.text_opt("last_error")?,
        created_at: r.ts("created_at")?,
        claimed_by: r.text_opt("claimed_by")?,
        lease_until: r.ts_opt("lease_until")?,
    })
}

impl Store {
    /// Enqueues a delivery of `payload` for `event_id`, due now.
    pub async fn enqueue_outbox(
        &self,
        event_id: Uuid,
        payload: &str,
    ) -> Result<OutboxRecord, StorageError> {
        let b = self.backend;
        let id = Uuid::now_v7();
        let now = sql::now();
        self.w_exec(self.stmt(
            INSERT_OUTBOX_SQL,
            vec![b.uuid(id), b.uuid(event_id), sql::text(payload), b.ts(now)],
        ))
        .await
        .map_err(|e| e.into_storage(TABLE))?;
        Ok(OutboxRecord {
            id,
            event_id,
            payload: payload.to_owned(),
            attempts: 0,
            next_attempt_at: now,
            delivered_at: None,
            last_error: None,
            created_at: now,
            claimed_by: None,
            lease_until: None,
        })
    }

    /// Claims up to `limit` undelivered rows due at `now` whose lease (if
    /// any) has run out, for `owner` until `now + lease`; returns them
    /// oldest due first. No two claimers get the same row while its lease
    /// runs, whatever the number of instances (see the module docs).
    pub async fn claim_outbox(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u64,
    ) -> Result<Vec<OutboxRecord>, StorageError> {
        let rows = self
            .claim_leased(&CLAIM, owner, now, lease, limit)
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        let mut claimed = rows
            .iter()
            .map(|r| decode(&self.row(r)))
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|r| (r.next_attempt_at, r.id));
        Ok(claimed)
    }

    /// Gives up every undelivered claim of `owner` (a graceful shutdown), so
    /// other instances need not wait for the leases; returns how many.
    pub async fn release_outbox_claims(&self, owner: &str) -> Result<u64, StorageError> {
        self.w_exec(self.stmt(RELEASE_SQL, vec![sql::text(owner)]))
            .await
            .map_err(|e| e.into_storage(TABLE))
    }

    /// Every outbox row, oldest first, at most `limit` (operators and tests).
    pub async fn list_outbox(&self, limit: u64) -> Result<Vec<OutboxRecord>, StorageError> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let rows = self
            .q_all(self.stmt(
                &format!("SELECT {COLUMNS} FROM webhook_outbox ORDER BY created_at, id LIMIT $1"),
                vec![limit.into()],
            ))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        rows.iter().map(|r| decode(&self.row(r))).collect()
    }

    /// Undelivered, unleased rows due at `now`, oldest due first, at most
    /// `limit` (a read: deliverers use [`Store::claim_outbox`]).
    pub async fn due_outbox(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<OutboxRecord>, StorageError> {
        let q = Query::select()
            .columns(C::iter())
            .from(Outbox)
            .and_where(Expr::col(C::DeliveredAt).is_null())
            .and_where(Expr::col(C::NextAttemptAt).lte(self.backend.ts(now)))
            .and_where(
                Expr::col(C::LeaseUntil)
                    .is_null()
                    .or(Expr::col(C::LeaseUntil).lte(self.backend.ts(now))),
            )
            .order_by(C::NextAttemptAt, Order::Asc)
            .order_by(C::Id, Order::Asc)
            .limit(limit.max(1))
            .to_owned();
        let rows = self
            .q_all(self.build(&q))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        rows.iter().map(|r| decode(&self.row(r))).collect()
    }

    /// An outbox row by id.
    pub async fn get_outbox(&self, id: Uuid) -> Result<OutboxRecord, StorageError> {
        let q = Query::select()
            .columns(C::iter())
            .from(Outbox)
            .and_where(Expr::col(C::Id).eq(self.backend.uuid(id)))
            .to_owned();
        let row = self
            .q_one(self.build(&q))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        match row {
            Some(r) => decode(&self.row(&r)),
            None => Err(StorageError::NotFound),
        }
    }

    /// Marks a row delivered and drops its claim (`NotFound` if absent or
    /// already delivered).
    pub async fn mark_outbox_delivered(&self, id: Uuid) -> Result<(), StorageError> {
        let b = self.backend;
        let n = self
            .w_exec(self.stmt(DELIVERED_SQL, vec![b.ts(sql::now()), b.uuid(id)]))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        if n == 0 {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }

    /// Records a failed attempt by `owner`: `attempts + 1`, retry at
    /// `next_attempt_at`, claim released. `NotFound` if the row is absent,
    /// delivered, or claimed by another instance meanwhile (its lease ran
    /// out and someone else is delivering it).
    pub async fn mark_outbox_failed(
        &self,
        id: Uuid,
        owner: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError> {
        let b = self.backend;
        let n = self
            .w_exec(self.stmt(
                FAILED_SQL,
                vec![
                    b.ts(next_attempt_at),
                    sql::text(error),
                    b.uuid(id),
                    sql::text(owner),
                ],
            ))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        if n == 0 {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }
}
