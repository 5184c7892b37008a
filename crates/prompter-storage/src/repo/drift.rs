//! Version upsert with drift detection, and the drift event listing.

use super::versions::{decode as decode_version, UPSERT_SQL};
use crate::entity::version_drift_events::{Column as C, Entity as Drift};
use crate::sql::{self, Row};
use crate::{
    DriftFilter, DriftRecord, NewVersion, Page, PageRequest, Scope, StorageError, Store,
    VersionUpsert,
};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::Iterable;
use uuid::Uuid;

const PREVIOUS_KEY_SQL: &str = "SELECT provider_version_key FROM prompt_versions \
    WHERE org_id = $1 AND workspace_id = $2 AND template_id = $3 AND provider = $4 \
    AND model_id = $5 AND provider_version_key <> $6 \
    ORDER BY last_seen_at DESC, id DESC LIMIT 1";

const INSERT_DRIFT_SQL: &str = "INSERT INTO version_drift_events (id, org_id, workspace_id, \
    template_id, provider, model_id, previous_key, new_key, detected_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
    ON CONFLICT (template_id, provider, model_id, new_key) DO NOTHING RETURNING id";

pub(crate) const INSERT_OUTBOX_SQL: &str = "INSERT INTO webhook_outbox (id, event_id, payload, \
    attempts, next_attempt_at, delivered_at, last_error, created_at) \
    VALUES ($1, $2, $3, 0, $4, NULL, NULL, $4)";

fn decode(r: &Row<'_>) -> Result<DriftRecord, StorageError> {
    Ok(DriftRecord {
        id: r.uuid("id")?,
        org_id: r.text("org_id")?,
        workspace_id: r.text("workspace_id")?,
        template_id: r.uuid("template_id")?,
        provider: r.text("provider")?,
        model_id: r.text("model_id")?,
        previous_key: r.text("previous_key")?,
        new_key: r.text("new_key")?,
        detected_at: r.ts("detected_at")?,
    })
}

impl Store {
    /// Records a sighting of a provider version key.
    ///
    /// The version row is written by one `INSERT … ON CONFLICT … DO UPDATE …
    /// RETURNING` statement: a new key inserts a row; a known key moves
    /// `last_seen_at` forward only, `first_seen_at` backward only, and sets
    /// `fingerprint_captured_at` only while empty. When the key is new for
    /// the template and another key was already known for the same
    /// (template, provider, model), a drift event is recorded in the same
    /// transaction (`ON CONFLICT DO NOTHING` on its unique key, so
    /// concurrent callers record one) and, when `v.enqueue_webhook`, a
    /// webhook outbox row. An unknown template is `NotFound`.
    pub async fn upsert_version(&self, v: NewVersion) -> Result<VersionUpsert, StorageError> {
        const TABLE: &str = "prompt_versions";
        let b = self.backend;
        let id = Uuid::now_v7();
        let err = |e: crate::error::DbFail| e.into_storage(TABLE);
        let mut tx = self.begin_write().await.map_err(err)?;
        let row = tx
            .query_one(self.stmt(UPSERT_SQL, self.upsert_values(id, &v)))
            .await
            .map_err(err)?
            .ok_or_else(|| StorageError::internal("version upsert returned no row"))?;
        let version = decode_version(&self.row(&row))?;
        let inserted = version.id == id;
        let mut drift = None;
        if inserted {
            let prev = tx
                .query_one(self.stmt(
                    PREVIOUS_KEY_SQL,
                    vec![
                        sql::text(&v.org_id),
                        sql::text(&v.workspace_id),
                        b.uuid(v.template_id),
                        sql::text(&v.provider),
                        sql::text(&v.model_id),
                        sql::text(&v.provider_version_key),
                    ],
                ))
                .await
                .map_err(err)?;
            if let Some(prev) = prev {
                let ev = DriftRecord {
                    id: Uuid::now_v7(),
                    org_id: v.org_id.clone(),
                    workspace_id: v.workspace_id.clone(),
                    template_id: v.template_id,
                    provider: v.provider.clone(),
                    model_id: v.model_id.clone(),
                    previous_key: self.row(&prev).text("provider_version_key")?,
                    new_key: v.provider_version_key.clone(),
                    detected_at: version.first_seen_at,
                };
                let recorded = tx
                    .query_one(self.stmt(
                        INSERT_DRIFT_SQL,
                        vec![
                            b.uuid(ev.id),
                            sql::text(&ev.org_id),
                            sql::text(&ev.workspace_id),
                            b.uuid(ev.template_id),
                            sql::text(&ev.provider),
                            sql::text(&ev.model_id),
                            sql::text(&ev.previous_key),
                            sql::text(&ev.new_key),
                            b.ts(ev.detected_at),
                        ],
                    ))
                    .await
                    .map_err(|e| e.into_storage("version_drift_events"))?;
                if recorded.is_some() {
                    if v.enqueue_webhook {
                        tx.execute(self.stmt(
                            INSERT_OUTBOX_SQL,
                            vec![
                                b.uuid(Uuid::now_v7()),
                                b.uuid(ev.id),
                                sql::text(&ev.webhook_payload().to_string()),
                                b.ts(sql::now()),
                            ],
                        ))
                        .await
                        .map_err(|e| e.into_storage("webhook_outbox"))?;
                    }
                    drift = Some(ev);
                }
            }
        }
        tx.commit().await.map_err(err)?;
        Ok(VersionUpsert {
            version,
            inserted,
            drift,
        })
    }

    /// Drift events newest first (keyset on detected_at, id), within `scope`
    /// and `filter` (`since` inclusive).
    pub async fn list_drift_events(
        &self,
        scope: &Scope,
        filter: &DriftFilter,
        page: &PageRequest,
    ) -> Result<Page<DriftRecord>, StorageError> {
        let b = self.backend;
        let mut q = Query::select()
            .columns(C::iter())
            .from(Drift)
            .cond_where(scope.cond(C::OrgId, C::WorkspaceId))
            .to_owned();
        if let Some(o) = &filter.org_id {
            q.and_where(Expr::col(C::OrgId).eq(o.as_str()));
        }
        if let Some(w) = &filter.workspace_id {
            q.and_where(Expr::col(C::WorkspaceId).eq(w.as_str()));
        }
        if let Some(t) = filter.template_id {
            q.and_where(Expr::col(C::TemplateId).eq(b.uuid(t)));
        }
        if let Some(t) = filter.since {
            q.and_where(Expr::col(C::DetectedAt).gte(b.ts(t)));
        }
        self.list_keyset(
            q,
            C::DetectedAt,
            C::Id,
            page,
            "version_drift_events",
            decode,
            |d| (d.detected_at, d.id),
        )
        .await
    }
}
