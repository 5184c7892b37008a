//! Create and check-duplicate: canonicalise, hash, let the database decide.

use crate::error::{ServiceError, ServiceResult};
use crate::prompts::TemplateEventSubject;
use crate::Prompter;
use prompter_domain::{
    canonicalize, resolve_provider, validate, CanonicalConfig, ConfigHash, TemplateRequest,
};
use prompter_storage::{NewTemplate, StorageError, TemplateRecord};
use serde_json::Value;

/// The identity of a request: who it belongs to and its canonical config.
struct Identified {
    org_id: String,
    workspace_id: String,
    canonical: CanonicalConfig,
    hash: ConfigHash,
}

impl Prompter {
    fn identify(&self, req: &TemplateRequest, for_create: bool) -> ServiceResult<Identified> {
        if let Some(field) = req.missing_required().into_iter().next() {
            if for_create || field == "workspace_id" {
                return Err(ServiceError::MissingField { field });
            }
        }
        // V7 declared org_id optional but stored it NOT NULL and answered a fake 409;
        // we name the missing field instead.
        let org_id = req
            .org_id
            .clone()
            .ok_or(ServiceError::MissingField { field: "org_id" })?;
        let workspace_id = req.workspace_id.clone().ok_or(ServiceError::MissingField {
            field: "workspace_id",
        })?;
        validate(req, self.inner.cfg.validation)?;
        let canonical = canonicalize(&req.config);
        let hash = ConfigHash::compute(self.inner.cfg.hash_algorithm, &canonical);
        Ok(Identified {
            org_id,
            workspace_id,
            canonical,
            hash,
        })
    }

    /// Creates a template; `TemplateExists` when an active twin has the same hash.
    pub async fn create_template(&self, req: TemplateRequest) -> ServiceResult<TemplateRecord> {
        let id = self.identify(&req, true)?;
        let cfg = &req.config;
        let model_id = cfg.model_id.clone().unwrap_or_default();
        let provider = resolve_provider(req.provider.as_deref(), &model_id);
        let new = NewTemplate {
            org_id: id.org_id.clone(),
            workspace_id: id.workspace_id.clone(),
            name: req.name.clone().unwrap_or_default(),
            provider: Some(provider.as_str().to_owned()),
            system_instructions: cfg.system_instructions.clone().unwrap_or_default(),
            user_prompt_template: cfg.user_prompt_template.clone().unwrap_or_default(),
            country_set: Value::from(cfg.country_set.clone()),
            model_id,
            inference_params: cfg.inference_params.to_serde(),
            tools_spec: cfg.tools_spec.to_serde(),
            response_format: cfg.response_format.to_serde(),
            grounding_profile_id: cfg.grounding_profile_id.clone(),
            grounding_snapshot_id: cfg.grounding_snapshot_id.clone(),
            retrieval_params: cfg.retrieval_params.to_serde(),
            config_hash: id.hash.as_str().to_owned(),
            config_canonical_json: id.canonical.as_str().to_owned(),
            created_by: req.created_by.clone(),
        };
        let event = self.template_event(
            "template.created",
            &TemplateEventSubject {
                id: None,
                org_id: &new.org_id,
                workspace_id: &new.workspace_id,
                name: &new.name,
                revision: None,
            },
        );
        match self
            .inner
            .store
            .insert_template_with_event(new, event)
            .await
        {
            Ok(rec) => Ok(rec),
            Err(StorageError::Conflict {
                existing_template_id,
            }) => Err(self
                .template_exists(
                    &id.org_id,
                    &id.workspace_id,
                    id.hash.as_str(),
                    existing_template_id,
                )
                .await),
            Err(e) => Err(e.into()),
        }
    }

    /// Builds the 409 error, naming the active twin when it can be read.
    pub(crate) async fn template_exists(
        &self,
        org_id: &str,
        workspace_id: &str,
        hash: &str,
        known_id: Option<uuid::Uuid>,
    ) -> ServiceError {
        let twin = self
            .inner
            .store
            .find_active_by_hash(org_id, workspace_id, hash)
            .await
            .ok()
            .flatten();
        match (twin, known_id) {
            (Some(t), _) => ServiceError::TemplateExists {
                template_id: t.id,
                name: Some(t.name),
                created_at: Some(t.created_at),
            },
            (None, Some(id)) => ServiceError::TemplateExists {
                template_id: id,
                name: None,
                created_at: None,
            },
            (None, None) => ServiceError::TemplateExists {
                template_id: uuid::Uuid::nil(),
                name: None,
                created_at: None,
            },
        }
    }

    /// The active template in the request's org+workspace with the same config, if any.
    pub async fn check_duplicate(
        &self,
        req: TemplateRequest,
    ) -> ServiceResult<Option<TemplateRecord>> {
        let id = self.identify(&req, false)?;
        Ok(self
            .inner
            .store
            .find_active_by_hash(&id.org_id, &id.workspace_id, id.hash.as_str())
            .await?)
    }
}
