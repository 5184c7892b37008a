//! Prompt releases (issue 14): prompts and their revisions, labels (moved
//! with compare-and-set and a variable-contract check), label history,
//! rendering, and the release events sent through the webhook outbox.

use crate::error::{ServiceError, ServiceResult};
use crate::Prompter;
use chrono::{SecondsFormat, Utc};
use prompter_domain::render::{added_variables, render, PromptText, RenderError, Rendered};
use prompter_domain::Json;
use prompter_storage::{
    LabelEvent, LabelMove, Page, PageRequest, PromptKey, PromptSummary, RevisionSummary, Scope,
    TemplateRecord,
};
use serde_json::{json, Value};
use uuid::Uuid;

/// The label that always means the newest active revision.
pub const LATEST: &str = "latest";

/// Which revision of a prompt a request means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// What a label points to (`latest`: the newest active revision).
    Label(String),
    /// A revision number.
    Revision(i64),
}

impl Selector {
    /// The label, when addressed by one.
    pub fn label(&self) -> Option<&str> {
        match self {
            Selector::Label(l) => Some(l),
            Selector::Revision(_) => None,
        }
    }
}

/// A revision found by a [`Selector`].
#[derive(Debug, Clone)]
pub struct ResolvedPrompt {
    /// The revision's template.
    pub template: TemplateRecord,
    /// Labels pointing to it, by name.
    pub labels: Vec<String>,
}

/// A label move request.
#[derive(Debug, Clone)]
pub struct LabelMoveRequest {
    /// Target revision.
    pub revision: i64,
    /// Compare-and-set: the revision the label must point to now (0: it
    /// must not exist).
    pub expected_revision: Option<i64>,
    /// Skip the variable-contract check.
    pub force: bool,
}

/// A done label move.
#[derive(Debug, Clone)]
pub struct LabelMoved {
    /// Label.
    pub label: String,
    /// Revision it points to now.
    pub revision: i64,
    /// Its template.
    pub template_id: Uuid,
    /// Revision before (None: the label is new).
    pub previous_revision: Option<i64>,
}

/// `^[a-z0-9][a-z0-9_.-]{0,62}$`.
pub fn valid_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..].iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-')
        })
}

/// The placeholder texts of a template.
pub fn prompt_text(t: &TemplateRecord) -> PromptText<'_> {
    PromptText {
        system: &t.system_instructions,
        user: &t.user_prompt_template,
    }
}

/// Renders a template with `vars` (a JSON object), mapping failures to
/// service errors.
pub fn render_template(t: &TemplateRecord, vars: &Json) -> ServiceResult<Rendered> {
    render(prompt_text(t), vars).map_err(|e| match e {
        RenderError::Missing(missing) => ServiceError::MissingVariables { missing },
        RenderError::BadValue(names) => ServiceError::InvalidVariables { names },
        RenderError::NotAnObject => ServiceError::InvalidVariables { names: Vec::new() },
    })
}

fn occurred_at() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl Prompter {
    /// Prompts of a workspace by name; with `search`, names containing it.
    pub async fn list_prompts(
        &self,
        org_id: &str,
        workspace_id: &str,
        search: Option<&str>,
        page: &PageRequest,
    ) -> ServiceResult<Page<PromptSummary>> {
        Ok(self
            .inner
            .store
            .list_prompts(org_id, workspace_id, search, page)
            .await?)
    }

    /// Workspaces that hold templates (deleted ones included), in `scope`,
    /// optionally of one org.
    pub async fn list_workspaces(
        &self,
        scope: &Scope,
        org_id: Option<&str>,
        page: &PageRequest,
    ) -> ServiceResult<Page<prompter_storage::WorkspaceSummary>> {
        Ok(self
            .inner
            .store
            .list_workspaces(scope, org_id, page)
            .await?)
    }

    /// Revisions of a prompt, newest first; `PromptNotFound` when it has none.
    pub async fn list_revisions(
        &self,
        key: &PromptKey,
        page: &PageRequest,
    ) -> ServiceResult<Page<RevisionSummary>> {
        let page = self.inner.store.list_revisions(key, page).await?;
        if page.items.is_empty() && !self.inner.store.prompt_exists(key).await? {
            return Err(ServiceError::PromptNotFound);
        }
        Ok(page)
    }

    async fn prompt_missing(&self, key: &PromptKey, otherwise: ServiceError) -> ServiceError {
        match self.inner.store.prompt_exists(key).await {
            Ok(false) => ServiceError::PromptNotFound,
            Ok(true) => otherwise,
            Err(e) => e.into(),
        }
    }

    /// The revision a selector means, with the labels pointing to it.
    /// A deleted revision is found by number, never through a label.
    pub async fn resolve_prompt(
        &self,
        key: &PromptKey,
        sel: &Selector,
    ) -> ServiceResult<ResolvedPrompt> {
        let store = &self.inner.store;
        let labels = store.prompt_labels(key).await?;
        let template = match sel {
            Selector::Revision(n) => store.get_revision(key, *n).await?,
            Selector::Label(l) if l == LATEST => store.latest_revision(key).await?,
            Selector::Label(l) => match labels.iter().find(|x| &x.label == l) {
                Some(x) => store.get_revision(key, x.revision).await?,
                None => None,
            },
        };
        let Some(template) = template else {
            let otherwise = match sel {
                Selector::Revision(_) => ServiceError::RevisionNotFound,
                Selector::Label(l) if l == LATEST => ServiceError::PromptNotFound,
                Selector::Label(_) => ServiceError::LabelNotFound,
            };
            return Err(self.prompt_missing(key, otherwise).await);
        };
        let labels = labels
            .into_iter()
            .filter(|l| l.revision == template.revision)
            .map(|l| l.label)
            .collect();
        Ok(ResolvedPrompt { template, labels })
    }

    /// Moves (or creates) a label; see [`LabelMoveRequest`].
    pub async fn move_label(
        &self,
        key: &PromptKey,
        label: &str,
        req: &LabelMoveRequest,
        moved_by: Option<&str>,
    ) -> ServiceResult<LabelMoved> {
        if !valid_label(label) || label == LATEST {
            return Err(ServiceError::InvalidLabel {
                label: label.to_owned(),
            });
        }
        let store = &self.inner.store;
        let target = match store.get_revision(key, req.revision).await? {
            Some(t) if t.deleted_at.is_none() => t,
            _ => {
                return Err(self
                    .prompt_missing(key, ServiceError::RevisionNotFound)
                    .await)
            }
        };
        let expected = req
            .expected_revision
            .map(|e| if e == 0 { None } else { Some(e) });
        // A concurrent move without compare-and-set: look again (bounded).
        for _ in 0..8 {
            let current = store.get_label(key, label).await?;
            let cur_rev = current.as_ref().map(|l| l.revision);
            if let Some(want) = expected {
                if want != cur_rev {
                    return Err(ServiceError::LabelConflict { current: cur_rev });
                }
            }
            if let (false, Some(cur)) = (req.force, &current) {
                let from = store
                    .get_template(&Scope::Unrestricted, cur.template_id)
                    .await?;
                let added = added_variables(prompt_text(&from), prompt_text(&target));
                if !added.is_empty() {
                    return Err(ServiceError::VariableContractChanged { added });
                }
            }
            let event = self.event(json!({
                "type": "label.moved",
                "org_id": key.org_id,
                "workspace_id": key.workspace_id,
                "prompt": key.name,
                "label": label,
                "revision": target.revision,
                "previous_revision": cur_rev,
                "template_id": target.id,
                "moved_by": moved_by,
            }));
            match store
                .move_label(key, label, &target, cur_rev, moved_by, event)
                .await?
            {
                LabelMove::Moved { previous } => {
                    return Ok(LabelMoved {
                        label: label.to_owned(),
                        revision: target.revision,
                        template_id: target.id,
                        previous_revision: previous,
                    })
                }
                LabelMove::Conflict { current } => {
                    if expected.is_some() {
                        return Err(ServiceError::LabelConflict { current });
                    }
                }
            }
        }
        Err(ServiceError::LabelConflict {
            current: store.get_label(key, label).await?.map(|l| l.revision),
        })
    }

    /// Removes a label; `LabelNotFound` when absent.
    pub async fn remove_label(
        &self,
        key: &PromptKey,
        label: &str,
        moved_by: Option<&str>,
    ) -> ServiceResult<i64> {
        let current = self.inner.store.get_label(key, label).await?;
        let event = self.event(json!({
            "type": "label.removed",
            "org_id": key.org_id,
            "workspace_id": key.workspace_id,
            "prompt": key.name,
            "label": label,
            "revision": Value::Null,
            "previous_revision": current.map(|l| l.revision),
            "moved_by": moved_by,
        }));
        match self
            .inner
            .store
            .remove_label(key, label, moved_by, event)
            .await?
        {
            Some(rev) => Ok(rev),
            None => Err(self.prompt_missing(key, ServiceError::LabelNotFound).await),
        }
    }

    /// Moves and removals of a label, newest first.
    pub async fn label_history(
        &self,
        key: &PromptKey,
        label: &str,
        page: &PageRequest,
    ) -> ServiceResult<Page<LabelEvent>> {
        let page = self.inner.store.label_history(key, label, page).await?;
        if page.items.is_empty() && !self.inner.store.prompt_exists(key).await? {
            return Err(ServiceError::PromptNotFound);
        }
        Ok(page)
    }

    /// Renders a template (by id) with `vars`.
    pub async fn render_by_id(
        &self,
        scope: &Scope,
        id: Uuid,
        vars: &Json,
    ) -> ServiceResult<(TemplateRecord, Rendered)> {
        let tpl = self.get_template(scope, id).await?;
        let rendered = render_template(&tpl, vars)?;
        Ok((tpl, rendered))
    }

    /// An outbox event (id and body) when webhooks are on: `body` plus
    /// `event_id` and `occurred_at`.
    pub(crate) fn event(&self, mut body: Value) -> Option<(Uuid, String)> {
        if !self.inner.cfg.webhook_enabled {
            return None;
        }
        let id = Uuid::now_v7();
        body["event_id"] = json!(id);
        body["occurred_at"] = json!(occurred_at());
        Some((id, body.to_string()))
    }

    /// Enqueues a template lifecycle event (`template.created`, …) when
    /// webhooks are on. Best effort after the change: a failure is logged.
    pub(crate) async fn template_event(&self, kind: &str, t: &TemplateRecord) {
        let Some((id, body)) = self.event(json!({
            "type": kind,
            "org_id": t.org_id,
            "workspace_id": t.workspace_id,
            "prompt": t.name,
            "template_id": t.id,
            "revision": t.revision,
        })) else {
            return;
        };
        if let Err(e) = self.inner.store.enqueue_outbox(id, &body).await {
            tracing::warn!(error = %e, kind, "release event not enqueued");
        }
    }
}
