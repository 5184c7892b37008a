//! Webhook outbox: durable deliveries with retry bookkeeping.

use super::drift::INSERT_OUTBOX_SQL;
use crate::entity::webhook_outbox::{Column as C, Entity as Outbox};
use crate::sql::{self, Row};
use crate::{OutboxRecord, StorageError, Store};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Order, Query};
use sea_orm::Iterable;
use uuid::Uuid;

const TABLE: &str = "webhook_outbox";

const FAILED_SQL: &str = "UPDATE webhook_outbox SET attempts = attempts + 1, \
    next_attempt_at = $1, last_error = $2 WHERE id = $3 AND delivered_at IS NULL";

const DELIVERED_SQL: &str =
    "UPDATE webhook_outbox SET delivered_at = $1 WHERE id = $2 AND delivered_at IS NULL";

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
        })
    }

    /// Undelivered rows due at `now`, oldest due first, at most `limit`.
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

    /// Marks a row delivered (`NotFound` if absent or already delivered).
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

    /// Records a failed attempt: `attempts + 1`, retry at `next_attempt_at`.
    pub async fn mark_outbox_failed(
        &self,
        id: Uuid,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError> {
        let b = self.backend;
        let n = self
            .w_exec(self.stmt(
                FAILED_SQL,
                vec![b.ts(next_attempt_at), sql::text(error), b.uuid(id)],
            ))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        if n == 0 {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }
}
