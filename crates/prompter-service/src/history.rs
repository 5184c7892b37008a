//! Template lifecycle and history reads: get, list, delete, restore,
//! versions, results, drift events and config diffs. Every read goes
//! through the caller's [`Scope`].

use crate::diff::{diff_canonical, Difference};
use crate::error::{ServiceError, ServiceResult};
use crate::Prompter;
use prompter_storage::{
    DriftFilter, DriftRecord, Page, PageRequest, ResultFilter, ResultHead, ResultRecord, Scope,
    StorageError, TemplateDelete, TemplateFilter, TemplateRecord, VersionRecord,
};
use uuid::Uuid;

fn template_missing(e: StorageError) -> ServiceError {
    match e {
        StorageError::NotFound => ServiceError::TemplateNotFound,
        other => other.into(),
    }
}

impl Prompter {
    /// A template visible in `scope` (deleted ones included).
    pub async fn get_template(&self, scope: &Scope, id: Uuid) -> ServiceResult<TemplateRecord> {
        self.inner
            .store
            .get_template(scope, id)
            .await
            .map_err(template_missing)
    }

    /// Templates newest first, keyset-paginated.
    pub async fn list_templates(
        &self,
        scope: &Scope,
        filter: &TemplateFilter,
        page: &PageRequest,
    ) -> ServiceResult<Page<TemplateRecord>> {
        Ok(self.inner.store.list_templates(scope, filter, page).await?)
    }

    /// Soft-deletes an active template, freeing its config hash;
    /// `LabelInUse` while labels point to it (decided in the delete's
    /// transaction, so a concurrent label move cannot slip in between).
    pub async fn delete_template(&self, scope: &Scope, id: Uuid) -> ServiceResult<()> {
        let tpl = self.get_template(scope, id).await?;
        let event = self
            .template_event("template.deleted", &(&tpl).into())
            .map(|(id, body)| (id, body.to_string()));
        let deleted = self
            .inner
            .store
            .soft_delete_template(scope, id, event)
            .await;
        self.inner.templates.clear();
        match deleted.map_err(template_missing)? {
            TemplateDelete::Deleted => Ok(()),
            TemplateDelete::LabelsInUse(labels) => Err(ServiceError::LabelInUse { labels }),
        }
    }

    /// Restores a deleted template; `TemplateExists` names the active twin.
    pub async fn restore_template(&self, scope: &Scope, id: Uuid) -> ServiceResult<TemplateRecord> {
        let tpl = self.get_template(scope, id).await?;
        let event = self
            .template_event("template.restored", &(&tpl).into())
            .map(|(id, body)| (id, body.to_string()));
        let restored = self.inner.store.restore_template(scope, id, event).await;
        self.inner.templates.clear();
        match restored {
            Ok(t) => Ok(t),
            Err(StorageError::Conflict {
                existing_template_id,
            }) => Err(self
                .template_exists(
                    &tpl.org_id,
                    &tpl.workspace_id,
                    &tpl.config_hash,
                    existing_template_id,
                )
                .await),
            Err(e) => Err(template_missing(e)),
        }
    }

    /// Version rows of a template, newest first.
    pub async fn list_versions(
        &self,
        scope: &Scope,
        template_id: Uuid,
        page: &PageRequest,
    ) -> ServiceResult<Page<VersionRecord>> {
        self.get_template(scope, template_id).await?;
        Ok(self
            .inner
            .store
            .list_versions(scope, template_id, page)
            .await?)
    }

    /// Results of a template, newest first, filtered.
    pub async fn list_results(
        &self,
        scope: &Scope,
        template_id: Uuid,
        filter: &ResultFilter,
        page: &PageRequest,
    ) -> ServiceResult<Page<ResultHead>> {
        self.get_template(scope, template_id).await?;
        Ok(self
            .inner
            .store
            .list_results(scope, template_id, filter, page)
            .await?)
    }

    /// One stored result with its full request and response.
    pub async fn get_result(&self, scope: &Scope, id: Uuid) -> ServiceResult<ResultRecord> {
        self.inner
            .store
            .get_result(scope, id)
            .await
            .map_err(|e| match e {
                StorageError::NotFound => ServiceError::ResultNotFound,
                other => other.into(),
            })
    }

    /// Drift events newest first.
    pub async fn list_drift(
        &self,
        scope: &Scope,
        filter: &DriftFilter,
        page: &PageRequest,
    ) -> ServiceResult<Page<DriftRecord>> {
        Ok(self
            .inner
            .store
            .list_drift_events(scope, filter, page)
            .await?)
    }

    /// Canonical-config differences between two templates.
    pub async fn diff_templates(
        &self,
        scope: &Scope,
        left: Uuid,
        right: Uuid,
    ) -> ServiceResult<Vec<Difference>> {
        let l = self.get_template(scope, left).await?;
        let r = self.get_template(scope, right).await?;
        Ok(diff_canonical(
            &l.config_canonical_json,
            &r.config_canonical_json,
        ))
    }
}
