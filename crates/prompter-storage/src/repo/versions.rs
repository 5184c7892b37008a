//! Versions: one-statement upsert, latest, get, list.

use crate::entity::prompt_versions::{Column as C, Entity as Versions};
use crate::sql::{self, Row};
use crate::{NewVersion, Page, PageRequest, Scope, StorageError, Store, VersionRecord};
use sea_orm::sea_query::{Expr, Order, Query};
use sea_orm::Iterable;
use uuid::Uuid;

const TABLE: &str = "prompt_versions";

/// One statement: a new key inserts a row; a known key moves `last_seen_at`
/// forward only (max of old and new), `first_seen_at` backward only, and sets
/// `fingerprint_captured_at` only while it is empty.
pub(crate) const UPSERT_SQL: &str = "INSERT INTO prompt_versions (id, org_id, workspace_id, \
    template_id, provider, provider_version_key, model_id, fingerprint_captured_at, \
    first_seen_at, last_seen_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
    ON CONFLICT (org_id, workspace_id, template_id, provider_version_key) DO UPDATE SET \
    last_seen_at = CASE WHEN excluded.last_seen_at > prompt_versions.last_seen_at \
        THEN excluded.last_seen_at ELSE prompt_versions.last_seen_at END, \
    first_seen_at = CASE WHEN excluded.first_seen_at < prompt_versions.first_seen_at \
        THEN excluded.first_seen_at ELSE prompt_versions.first_seen_at END, \
    fingerprint_captured_at = COALESCE(prompt_versions.fingerprint_captured_at, \
        excluded.fingerprint_captured_at) \
    RETURNING id, org_id, workspace_id, template_id, provider, provider_version_key, model_id, \
    fingerprint_captured_at, first_seen_at, last_seen_at";

pub(crate) fn decode(r: &Row<'_>) -> Result<VersionRecord, StorageError> {
    Ok(VersionRecord {
        id: r.uuid("id")?,
        org_id: r.text("org_id")?,
        workspace_id: r.text("workspace_id")?,
        template_id: r.uuid("template_id")?,
        provider: r.text("provider")?,
        provider_version_key: r.text("provider_version_key")?,
        model_id: r.text("model_id")?,
        fingerprint_captured_at: r.ts_opt("fingerprint_captured_at")?,
        first_seen_at: r.ts("first_seen_at")?,
        last_seen_at: r.ts("last_seen_at")?,
    })
}

impl Store {
    pub(crate) fn upsert_values(&self, id: Uuid, v: &NewVersion) -> Vec<sea_orm::Value> {
        let b = self.backend;
        vec![
            b.uuid(id),
            sql::text(&v.org_id),
            sql::text(&v.workspace_id),
            b.uuid(v.template_id),
            sql::text(&v.provider),
            sql::text(&v.provider_version_key),
            sql::text(&v.model_id),
            b.ts_opt(v.fingerprint_captured_at),
            b.ts(v.seen_at),
        ]
    }

    /// The most recently seen version of (template, provider, model).
    pub async fn latest_version(
        &self,
        scope: &Scope,
        template_id: Uuid,
        provider: &str,
        model_id: &str,
    ) -> Result<Option<VersionRecord>, StorageError> {
        let q = Query::select()
            .columns(C::iter())
            .from(Versions)
            .and_where(Expr::col(C::TemplateId).eq(self.backend.uuid(template_id)))
            .and_where(Expr::col(C::Provider).eq(provider))
            .and_where(Expr::col(C::ModelId).eq(model_id))
            .cond_where(scope.cond(C::OrgId, C::WorkspaceId))
            .order_by(C::LastSeenAt, Order::Desc)
            .order_by(C::Id, Order::Desc)
            .limit(1)
            .to_owned();
        let row = self
            .q_one(self.build(&q))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        row.map(|r| decode(&self.row(&r))).transpose()
    }

    /// A version by id; `NotFound` if absent or outside `scope`.
    pub async fn get_version(
        &self,
        scope: &Scope,
        id: Uuid,
    ) -> Result<VersionRecord, StorageError> {
        let q = Query::select()
            .columns(C::iter())
            .from(Versions)
            .and_where(Expr::col(C::Id).eq(self.backend.uuid(id)))
            .cond_where(scope.cond(C::OrgId, C::WorkspaceId))
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

    /// Versions of a template, newest first (keyset on first_seen_at, id).
    pub async fn list_versions(
        &self,
        scope: &Scope,
        template_id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<VersionRecord>, StorageError> {
        let q = Query::select()
            .columns(C::iter())
            .from(Versions)
            .and_where(Expr::col(C::TemplateId).eq(self.backend.uuid(template_id)))
            .cond_where(scope.cond(C::OrgId, C::WorkspaceId))
            .to_owned();
        self.list_keyset(q, C::FirstSeenAt, C::Id, page, TABLE, decode, |v| {
            (v.first_seen_at, v.id)
        })
        .await
    }
}
