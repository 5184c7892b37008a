//! Run idempotency keys: claim, complete together with the result, release.

use crate::sql;
use crate::{Claim, NewResult, ResultRecord, StorageError, Store};
use std::time::Duration;
use uuid::Uuid;

const TABLE: &str = "run_idempotency";

/// An in-flight claim older than this may be taken over (its owner is
/// presumed dead: a run never takes this long).
pub const IDEMPOTENCY_IN_FLIGHT_LEASE: Duration = Duration::from_secs(300);

/// Insert a fresh claim, or take over an expired one (or a stale in-flight
/// one) in the same statement; a row comes back only when this caller won.
const CLAIM_SQL: &str = "INSERT INTO run_idempotency (template_id, org_id, idempotency_key, \
    request_hash, result_id, state, created_at, expires_at) \
    VALUES ($1, $2, $3, $4, NULL, 'in_flight', $5, $6) \
    ON CONFLICT (template_id, idempotency_key) DO UPDATE SET \
    org_id = excluded.org_id, request_hash = excluded.request_hash, result_id = NULL, \
    state = 'in_flight', created_at = excluded.created_at, expires_at = excluded.expires_at \
    WHERE run_idempotency.expires_at <= excluded.created_at \
    OR (run_idempotency.state = 'in_flight' AND run_idempotency.created_at <= $7) \
    RETURNING state";

const READ_SQL: &str = "SELECT org_id, request_hash, result_id, state FROM run_idempotency \
    WHERE template_id = $1 AND idempotency_key = $2";

const COMPLETE_SQL: &str = "UPDATE run_idempotency SET state = 'completed', result_id = $1 \
    WHERE template_id = $2 AND idempotency_key = $3 AND state = 'in_flight'";

const RELEASE_SQL: &str = "DELETE FROM run_idempotency \
    WHERE template_id = $1 AND idempotency_key = $2 AND state = 'in_flight'";

const PURGE_SQL: &str = "DELETE FROM run_idempotency WHERE expires_at <= $1";

fn chrono_duration(d: Duration) -> Result<chrono::Duration, StorageError> {
    chrono::Duration::from_std(d).map_err(|_| StorageError::invalid("duration out of range"))
}

impl Store {
    /// Claims `key` for a run of `template_id` with a body hashing to
    /// `request_hash`, valid for `ttl`.
    ///
    /// `New`: the caller owns the key (expired claims, and in-flight claims
    /// older than [`IDEMPOTENCY_IN_FLIGHT_LEASE`], are taken over);
    /// `InFlight`: another caller is running it; `Completed(result_id)`:
    /// replay that result; `Mismatch`: same key, different body or org.
    pub async fn claim_idempotency(
        &self,
        template_id: Uuid,
        org_id: &str,
        key: &str,
        request_hash: &str,
        ttl: Duration,
    ) -> Result<Claim, StorageError> {
        let b = self.backend;
        let ttl = chrono_duration(ttl)?;
        let lease = chrono_duration(IDEMPOTENCY_IN_FLIGHT_LEASE)?;
        let err = |e: crate::error::DbFail| e.into_storage(TABLE);
        for _ in 0..3 {
            let now = sql::now();
            let won = self
                .w_one(self.stmt(
                    CLAIM_SQL,
                    vec![
                        b.uuid(template_id),
                        sql::text(org_id),
                        sql::text(key),
                        sql::text(request_hash),
                        b.ts(now),
                        b.ts(now + ttl),
                        b.ts(now - lease),
                    ],
                ))
                .await
                .map_err(err)?;
            if won.is_some() {
                return Ok(Claim::New);
            }
            let row = self
                .q_one(self.stmt(READ_SQL, vec![b.uuid(template_id), sql::text(key)]))
                .await
                .map_err(err)?;
            let Some(row) = row else {
                continue; // released meanwhile: try again
            };
            let r = self.row(&row);
            if r.text("request_hash")? != request_hash || r.text("org_id")? != org_id {
                return Ok(Claim::Mismatch);
            }
            return Ok(
                match (r.text("state")?.as_str(), r.uuid_opt("result_id")?) {
                    ("completed", Some(id)) => Claim::Completed(id),
                    _ => Claim::InFlight,
                },
            );
        }
        Err(StorageError::unavailable(
            "idempotency key is being claimed and released concurrently; retry",
        ))
    }

    /// Stores a result and, when `idempotency` names a claimed key
    /// (`(template_id, key)`), completes that key with the result, in one
    /// transaction. Counts `prompter_prompt_results_insert_total`.
    pub async fn insert_result_idempotent(
        &self,
        r: NewResult,
        idempotency: Option<(Uuid, &str)>,
    ) -> Result<ResultRecord, StorageError> {
        let Some((template_id, key)) = idempotency else {
            return self.insert_result(r).await;
        };
        let b = self.backend;
        let (stmt, rec) = self.result_insert(r);
        let mut tx = self
            .begin_write()
            .await
            .map_err(|e| e.into_storage("prompt_results"))?;
        tx.execute(stmt)
            .await
            .map_err(|e| e.into_storage("prompt_results"))?;
        tx.execute(crate::repo::usage::rollup_stmt(b, &[rec.id]))
            .await
            .map_err(|e| e.into_storage("usage_daily"))?;
        tx.execute(self.stmt(
            COMPLETE_SQL,
            vec![b.uuid(rec.id), b.uuid(template_id), sql::text(key)],
        ))
        .await
        .map_err(|e| e.into_storage(TABLE))?;
        tx.commit()
            .await
            .map_err(|e| e.into_storage("prompt_results"))?;
        metrics::counter!("prompter_prompt_results_insert_total").increment(1);
        Ok(rec)
    }

    /// Releases an in-flight claim (the run failed before storing a
    /// result), so the next caller may try. Completed keys are kept.
    pub async fn release_idempotency(
        &self,
        template_id: Uuid,
        key: &str,
    ) -> Result<(), StorageError> {
        let b = self.backend;
        self.w_exec(self.stmt(RELEASE_SQL, vec![b.uuid(template_id), sql::text(key)]))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        Ok(())
    }

    /// Deletes expired claims; returns how many.
    pub async fn purge_expired_idempotency(&self) -> Result<u64, StorageError> {
        self.w_exec(self.stmt(PURGE_SQL, vec![self.backend.ts(sql::now())]))
            .await
            .map_err(|e| e.into_storage(TABLE))
    }
}
