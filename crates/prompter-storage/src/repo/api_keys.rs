//! API keys: stored as a hash plus a unique public prefix.

use crate::entity::api_keys::{Column as C, Entity as Keys};
use crate::sql::{self, Row};
use crate::{ApiKeyRecord, NewApiKey, Scope, StorageError, Store};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Order, Query};
use sea_orm::Iterable;
use uuid::Uuid;

const TABLE: &str = "api_keys";

const INSERT_SQL: &str = "INSERT INTO api_keys (id, prefix, key_hash, org_id, workspace_id, \
    role, created_at, revoked_at, last_used_at, name, expires_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, $8, $9)";

fn decode(r: &Row<'_>) -> Result<ApiKeyRecord, StorageError> {
    Ok(ApiKeyRecord {
        id: r.uuid("id")?,
        prefix: r.text("prefix")?,
        key_hash: r.text("key_hash")?,
        org_id: r.text("org_id")?,
        workspace_id: r.text_opt("workspace_id")?,
        role: r.text("role")?,
        created_at: r.ts("created_at")?,
        revoked_at: r.ts_opt("revoked_at")?,
        last_used_at: r.ts_opt("last_used_at")?,
        name: r.text_opt("name")?,
        expires_at: r.ts_opt("expires_at")?,
    })
}

impl Store {
    /// Stores a key. A taken prefix is `Conflict` (and counts
    /// `prompter_db_unique_violation_total{table="api_keys"}`).
    pub async fn insert_api_key(&self, k: NewApiKey) -> Result<ApiKeyRecord, StorageError> {
        let b = self.backend;
        let rec = ApiKeyRecord {
            id: Uuid::now_v7(),
            prefix: k.prefix,
            key_hash: k.key_hash,
            org_id: k.org_id,
            workspace_id: k.workspace_id,
            role: k.role,
            created_at: sql::now(),
            revoked_at: None,
            last_used_at: None,
            name: k.name,
            expires_at: k.expires_at,
        };
        self.w_exec(self.stmt(
            INSERT_SQL,
            vec![
                b.uuid(rec.id),
                sql::text(&rec.prefix),
                sql::text(&rec.key_hash),
                sql::text(&rec.org_id),
                sql::text_opt(rec.workspace_id.as_deref()),
                sql::text(&rec.role),
                b.ts(rec.created_at),
                sql::text_opt(rec.name.as_deref()),
                b.ts_opt(rec.expires_at),
            ],
        ))
        .await
        .map_err(|e| e.into_storage(TABLE))?;
        Ok(rec)
    }

    /// The key with this prefix (revoked ones included: check `revoked_at`).
    pub async fn find_api_key_by_prefix(
        &self,
        prefix: &str,
    ) -> Result<Option<ApiKeyRecord>, StorageError> {
        let q = Query::select()
            .columns(C::iter())
            .from(Keys)
            .and_where(Expr::col(C::Prefix).eq(prefix))
            .to_owned();
        let row = self
            .q_one(self.build(&q))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        row.map(|r| decode(&self.row(&r))).transpose()
    }

    /// Keys visible in `scope` (a tenant scope sees its org's keys, or only
    /// its workspace's keys when it has one), oldest first.
    pub async fn list_api_keys(&self, scope: &Scope) -> Result<Vec<ApiKeyRecord>, StorageError> {
        let q = Query::select()
            .columns(C::iter())
            .from(Keys)
            .cond_where(scope.cond(C::OrgId, C::WorkspaceId))
            .order_by(C::CreatedAt, Order::Asc)
            .order_by(C::Id, Order::Asc)
            .to_owned();
        let rows = self
            .q_all(self.build(&q))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        rows.iter().map(|r| decode(&self.row(r))).collect()
    }

    /// Revokes the key with this prefix (idempotent: the first revocation
    /// time is kept); `NotFound` if no such key.
    pub async fn revoke_api_key(&self, prefix: &str) -> Result<ApiKeyRecord, StorageError> {
        let b = self.backend;
        let q = Query::update()
            .table(Keys)
            .value(
                C::RevokedAt,
                Expr::col(C::RevokedAt).if_null(b.ts(sql::now())),
            )
            .and_where(Expr::col(C::Prefix).eq(prefix))
            .returning(Query::returning().columns(C::iter()))
            .to_owned();
        let row = self
            .w_one(b.db().build(&q))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        match row {
            Some(r) => decode(&self.row(&r)),
            None => Err(StorageError::NotFound),
        }
    }

    /// Whether any key can authenticate at `now` (neither revoked nor expired).
    pub async fn has_usable_api_key(&self, now: DateTime<Utc>) -> Result<bool, StorageError> {
        let b = self.backend;
        let row = self
            .q_one(self.stmt(
                "SELECT 1 AS one FROM api_keys WHERE revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $1) LIMIT 1",
                vec![b.ts(now)],
            ))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        Ok(row.is_some())
    }

    /// Records a use of the key (best effort; only moves forward).
    pub async fn touch_api_key(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StorageError> {
        let b = self.backend;
        self.w_exec(self.stmt(
            "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 \
             AND (last_used_at IS NULL OR last_used_at < $1)",
            vec![b.ts(at), b.uuid(id)],
        ))
        .await
        .map_err(|e| e.into_storage(TABLE))?;
        Ok(())
    }
}
