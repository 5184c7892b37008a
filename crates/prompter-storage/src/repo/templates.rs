//! Templates: insert (dedup by the partial unique index), find, get, list,
//! soft delete, restore.

use crate::batch::{InsertSpec, Numbered};
use crate::entity::prompt_templates::{Column as C, Entity as Templates};
use crate::error::count_unique_violation;
use crate::sql::{self, Row};
use crate::{
    NewTemplate, Page, PageRequest, Scope, StorageError, Store, TemplateFilter, TemplateRecord,
};
use sea_orm::sea_query::{Condition, Expr, Query};
use sea_orm::Iterable;
use uuid::Uuid;

const TABLE: &str = "prompt_templates";

/// `get_template`'s SELECT (every column of the entity) for each scope shape.
macro_rules! get_by_id_sql {
    ($tail:literal) => {
        concat!(
            "SELECT id, org_id, workspace_id, name, provider, system_instructions, \
             user_prompt_template, country_set, model_id, inference_params, tools_spec, \
             response_format, grounding_profile_id, grounding_snapshot_id, retrieval_params, \
             config_hash, config_canonical_json, created_by, created_at, deleted_at, revision \
             FROM prompt_templates WHERE id = $1",
            $tail
        )
    };
}
const GET_BY_ID_SQL: &str = get_by_id_sql!("");
const GET_BY_ID_ORG_SQL: &str = get_by_id_sql!(" AND org_id = $2");
const GET_BY_ID_ORG_WS_SQL: &str = get_by_id_sql!(" AND org_id = $2 AND workspace_id = $3");

/// The group-commit writer's rows (`deleted_at` stays NULL). The partial
/// unique index decides (no read-then-write): a row it skips is not returned.
pub static TEMPLATE_INSERT: InsertSpec = InsertSpec {
    table: TABLE,
    columns: "id, org_id, workspace_id, name, provider, system_instructions, \
        user_prompt_template, country_set, model_id, inference_params, tools_spec, \
        response_format, grounding_profile_id, grounding_snapshot_id, retrieval_params, \
        config_hash, config_canonical_json, created_by, created_at",
    tail: " ON CONFLICT (org_id, workspace_id, config_hash) WHERE deleted_at IS NULL \
        DO NOTHING RETURNING id",
    numbered: true,
    after: None,
};

pub(crate) fn decode(r: &Row<'_>) -> Result<TemplateRecord, StorageError> {
    Ok(TemplateRecord {
        id: r.uuid("id")?,
        org_id: r.text("org_id")?,
        workspace_id: r.text("workspace_id")?,
        name: r.text("name")?,
        provider: r.text_opt("provider")?,
        system_instructions: r.text("system_instructions")?,
        user_prompt_template: r.text("user_prompt_template")?,
        country_set: r.json("country_set")?,
        model_id: r.text("model_id")?,
        inference_params: r.json("inference_params")?,
        tools_spec: r.json("tools_spec")?,
        response_format: r.json("response_format")?,
        grounding_profile_id: r.text_opt("grounding_profile_id")?,
        grounding_snapshot_id: r.text_opt("grounding_snapshot_id")?,
        retrieval_params: r.json("retrieval_params")?,
        config_hash: r.text("config_hash")?,
        config_canonical_json: r.text("config_canonical_json")?,
        created_by: r.text_opt("created_by")?,
        created_at: r.ts("created_at")?,
        deleted_at: r.ts_opt("deleted_at")?,
        // NULL only inside the inserting transaction.
        revision: r.i64_opt("revision")?.unwrap_or(0),
    })
}

/// Outcome of [`Store::soft_delete_template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateDelete {
    /// Deleted.
    Deleted,
    /// Not deleted: these labels (by name) point to it.
    LabelsInUse(Vec<String>),
}

impl Store {
    /// Inserts a template (group-committed with concurrent creates, see
    /// [`crate::batch`]). The partial unique index
    /// `ux_tpl_org_ws_confighash_active` decides: a second active template
    /// with the same (org, workspace, config_hash) is `Conflict` carrying the
    /// active twin's id, and counts `prompter_db_unique_violation_total{table="prompt_templates"}`.
    pub async fn insert_template(&self, t: NewTemplate) -> Result<TemplateRecord, StorageError> {
        self.insert_template_with_event(t, None).await
    }

    /// [`Store::insert_template`], enqueueing `event` (an id and a JSON
    /// object body) for webhook delivery in the insert's transaction, with
    /// the body's `template_id` and `revision` set to the new row's: a created
    /// template has exactly one event, a refused or failed create none.
    pub async fn insert_template_with_event(
        &self,
        t: NewTemplate,
        event: Option<(Uuid, serde_json::Value)>,
    ) -> Result<TemplateRecord, StorageError> {
        let b = self.backend;
        let id = Uuid::now_v7();
        let created_at = sql::now();
        let values = vec![
            b.uuid(id),
            sql::text(&t.org_id),
            sql::text(&t.workspace_id),
            sql::text(&t.name),
            sql::text_opt(t.provider.as_deref()),
            sql::text(&t.system_instructions),
            sql::text(&t.user_prompt_template),
            b.json(&t.country_set),
            sql::text(&t.model_id),
            b.json(&t.inference_params),
            b.json(&t.tools_spec),
            b.json(&t.response_format),
            sql::text_opt(t.grounding_profile_id.as_deref()),
            sql::text_opt(t.grounding_snapshot_id.as_deref()),
            b.json(&t.retrieval_params),
            sql::text(&t.config_hash),
            sql::text(&t.config_canonical_json),
            sql::text_opt(t.created_by.as_deref()),
            b.ts(created_at),
        ];
        // Group commit: written together with the other creates queued
        // meanwhile; this returns after its own row's commit (issue 9).
        let key = format!(
            "{}\u{1f}{}\u{1f}{}",
            t.org_id, t.workspace_id, t.config_hash
        );
        let numbered = Numbered {
            prompt: (t.org_id.clone(), t.workspace_id.clone(), t.name.clone()),
            event,
        };
        let written = self
            .templates
            .insert(id, key, Some(numbered), values)
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        if !written.inserted {
            count_unique_violation(TABLE);
            let twin = self
                .find_active_by_hash(&t.org_id, &t.workspace_id, &t.config_hash)
                .await?;
            return Err(StorageError::Conflict {
                existing_template_id: twin.map(|t| t.id),
            });
        }
        Ok(TemplateRecord {
            id,
            org_id: t.org_id,
            workspace_id: t.workspace_id,
            name: t.name,
            provider: t.provider,
            system_instructions: t.system_instructions,
            user_prompt_template: t.user_prompt_template,
            country_set: t.country_set,
            model_id: t.model_id,
            inference_params: t.inference_params,
            tools_spec: t.tools_spec,
            response_format: t.response_format,
            grounding_profile_id: t.grounding_profile_id,
            grounding_snapshot_id: t.grounding_snapshot_id,
            retrieval_params: t.retrieval_params,
            config_hash: t.config_hash,
            config_canonical_json: t.config_canonical_json,
            created_by: t.created_by,
            created_at,
            deleted_at: None,
            revision: written.revision.unwrap_or(0),
        })
    }

    /// The active template of (org, workspace) with this config hash.
    pub async fn find_active_by_hash(
        &self,
        org_id: &str,
        workspace_id: &str,
        config_hash: &str,
    ) -> Result<Option<TemplateRecord>, StorageError> {
        let q = Query::select()
            .columns(C::iter())
            .from(Templates)
            .and_where(Expr::col(C::OrgId).eq(org_id))
            .and_where(Expr::col(C::WorkspaceId).eq(workspace_id))
            .and_where(Expr::col(C::ConfigHash).eq(config_hash))
            .and_where(Expr::col(C::DeletedAt).is_null())
            .to_owned();
        let row = self
            .q_one(self.build(&q))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        row.map(|r| decode(&self.row(&r))).transpose()
    }

    /// A template by id, deleted or not; `NotFound` if absent or outside `scope`.
    pub async fn get_template(
        &self,
        scope: &Scope,
        id: Uuid,
    ) -> Result<TemplateRecord, StorageError> {
        // Every run and ensure-version starts here, so the SELECT is written
        // out once per scope shape instead of being rebuilt through sea-query
        // on each call (that was ≈10 % of a run's instructions; issue 9).
        let mut values = vec![self.backend.uuid(id)];
        let sql = match scope {
            Scope::Unrestricted => GET_BY_ID_SQL,
            Scope::Tenant {
                org_id,
                workspace_id: None,
            } => {
                values.push(sql::text(org_id));
                GET_BY_ID_ORG_SQL
            }
            Scope::Tenant {
                org_id,
                workspace_id: Some(ws),
            } => {
                values.push(sql::text(org_id));
                values.push(sql::text(ws));
                GET_BY_ID_ORG_WS_SQL
            }
        };
        let row = self
            .q_one(self.stmt(sql, values))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        match row {
            Some(r) => decode(&self.row(&r)),
            None => Err(StorageError::NotFound),
        }
    }

    /// Templates newest first (keyset on created_at, id); active only unless
    /// `filter.include_deleted`.
    pub async fn list_templates(
        &self,
        scope: &Scope,
        filter: &TemplateFilter,
        page: &PageRequest,
    ) -> Result<Page<TemplateRecord>, StorageError> {
        let mut cond = Condition::all().add(scope.cond(C::OrgId, C::WorkspaceId));
        if let Some(o) = &filter.org_id {
            cond = cond.add(Expr::col(C::OrgId).eq(o.as_str()));
        }
        if let Some(w) = &filter.workspace_id {
            cond = cond.add(Expr::col(C::WorkspaceId).eq(w.as_str()));
        }
        if !filter.include_deleted {
            cond = cond.add(Expr::col(C::DeletedAt).is_null());
        }
        let q = Query::select()
            .columns(C::iter())
            .from(Templates)
            .cond_where(cond)
            .to_owned();
        self.list_keyset(q, C::CreatedAt, C::Id, page, TABLE, decode, |t| {
            (t.created_at, t.id)
        })
        .await
    }

    /// Soft-deletes a template, freeing its config hash for a new template,
    /// unless labels point to it (then nothing changes). `NotFound` if
    /// absent, outside `scope`, or already deleted. `event` (an id and its
    /// body) is enqueued for webhook delivery in the same transaction.
    ///
    /// Atomic with label moves ([`Store::move_label`] locks its target row
    /// and refuses a deleted one): the row is updated first, which waits
    /// for a move holding its lock, and the labels are read after that, by
    /// a statement that sees the move's commit (PostgreSQL runs each
    /// statement of a READ COMMITTED transaction on a fresh snapshot; SQLite
    /// has one writer). So a label never points to a deleted template.
    pub async fn soft_delete_template(
        &self,
        scope: &Scope,
        id: Uuid,
        event: Option<(Uuid, String)>,
    ) -> Result<TemplateDelete, StorageError> {
        let b = self.backend;
        let fail = |e: crate::error::DbFail| e.into_storage(TABLE);
        let q = Query::update()
            .table(Templates)
            .value(C::DeletedAt, b.ts(sql::now()))
            .and_where(Expr::col(C::Id).eq(b.uuid(id)))
            .and_where(Expr::col(C::DeletedAt).is_null())
            .cond_where(scope.cond(C::OrgId, C::WorkspaceId))
            .to_owned();
        let mut tx = self.begin_write().await.map_err(fail)?;
        if tx.execute(b.db().build(&q)).await.map_err(fail)? == 0 {
            tx.rollback().await.map_err(fail)?;
            return Err(StorageError::NotFound);
        }
        let labels = tx
            .query_all(self.stmt(
                "SELECT label FROM prompt_labels WHERE template_id = $1 ORDER BY label",
                vec![b.uuid(id)],
            ))
            .await
            .map_err(|e| e.into_storage("prompt_labels"))?
            .iter()
            .map(|r| self.row(r).text("label"))
            .collect::<Result<Vec<_>, _>>()?;
        if !labels.is_empty() {
            tx.rollback().await.map_err(fail)?;
            return Ok(TemplateDelete::LabelsInUse(labels));
        }
        if let Some((event_id, payload)) = event {
            self.enqueue_outbox_in(&mut tx, event_id, &payload, sql::now())
                .await?;
        }
        tx.commit().await.map_err(fail)?;
        Ok(TemplateDelete::Deleted)
    }

    /// Restores a soft-deleted template (an active one is returned as is).
    /// `Conflict { existing_template_id }` if an active twin with the same
    /// config exists by now (decided by the unique index); `NotFound` if
    /// absent or outside `scope`.
    /// `event` (an id and its body) is enqueued for webhook delivery in the
    /// same transaction when the template is restored (not when it was
    /// active already).
    pub async fn restore_template(
        &self,
        scope: &Scope,
        id: Uuid,
        event: Option<(Uuid, String)>,
    ) -> Result<TemplateRecord, StorageError> {
        let b = self.backend;
        let fail = |e: crate::error::DbFail| e.into_storage(TABLE);
        let q = Query::update()
            .table(Templates)
            .value(C::DeletedAt, b.ts_opt(None))
            .and_where(Expr::col(C::Id).eq(b.uuid(id)))
            .and_where(Expr::col(C::DeletedAt).is_not_null())
            .cond_where(scope.cond(C::OrgId, C::WorkspaceId))
            .returning(Query::returning().columns(C::iter()))
            .to_owned();
        let mut tx = self.begin_write().await.map_err(fail)?;
        let unique = match tx.query_one(b.db().build(&q)).await {
            Ok(Some(row)) => {
                let t = decode(&self.row(&row))?;
                if let Some((event_id, payload)) = event {
                    self.enqueue_outbox_in(&mut tx, event_id, &payload, sql::now())
                        .await?;
                }
                tx.commit().await.map_err(fail)?;
                return Ok(t);
            }
            // absent, outside scope, or already active
            Ok(None) => false,
            Err(e) if e.is_unique() => true,
            Err(e) => return Err(fail(e)),
        };
        tx.rollback().await.map_err(fail)?;
        if !unique {
            return self.get_template(scope, id).await;
        }
        count_unique_violation(TABLE);
        let me = self.get_template(scope, id).await?;
        let twin = self
            .find_active_by_hash(&me.org_id, &me.workspace_id, &me.config_hash)
            .await?;
        Err(StorageError::Conflict {
            existing_template_id: twin.map(|t| t.id),
        })
    }
}
