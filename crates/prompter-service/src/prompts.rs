//! Prompt releases (issue 14): prompts and their revisions, labels (moved
//! with compare-and-set and a variable-contract check), label history,
//! rendering, and the release events sent through the webhook outbox.

use crate::error::{ServiceError, ServiceResult};
use crate::Prompter;
use chrono::{SecondsFormat, Utc};
use prompter_domain::render::{added_variables, render, PromptText, RenderError, Rendered};
use prompter_domain::Json;
use prompter_storage::{
    LabelEvent, LabelMove, LabelledRevision, Page, PageRequest, PromptKey, PromptSummary,
    RevisionRef, RevisionSummary, RevisionTag, Scope, TemplateRecord,
};
use serde_json::{json, Value};
use std::sync::Arc;
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
    /// The storage lookup it means (`latest` is the newest active revision).
    pub fn as_ref(&self) -> RevisionRef<'_> {
        match self {
            Selector::Label(l) if l == LATEST => RevisionRef::Latest,
            Selector::Label(l) => RevisionRef::Label(l),
            Selector::Revision(n) => RevisionRef::Number(*n),
        }
    }

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

/// Who a template lifecycle event is about.
pub(crate) struct TemplateEventSubject<'a> {
    /// None until the insert allocates it (with the revision).
    pub(crate) id: Option<Uuid>,
    pub(crate) org_id: &'a str,
    pub(crate) workspace_id: &'a str,
    pub(crate) name: &'a str,
    /// None until the insert allocates it.
    pub(crate) revision: Option<i64>,
}

impl<'a> From<&'a TemplateRecord> for TemplateEventSubject<'a> {
    fn from(t: &'a TemplateRecord) -> Self {
        TemplateEventSubject {
            id: Some(t.id),
            org_id: &t.org_id,
            workspace_id: &t.workspace_id,
            name: &t.name,
            revision: Some(t.revision),
        }
    }
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

    /// The revision a selector means, with the labels pointing to it: from
    /// the template cache, else one query (then cached, but never for
    /// `latest`). A deleted revision is found by number, never through a label.
    pub async fn resolve_prompt(
        &self,
        key: &PromptKey,
        sel: &Selector,
    ) -> ServiceResult<ResolvedPrompt> {
        let found = self.find_revision(key, sel).await?;
        let Some(found) = found else {
            let otherwise = match sel.as_ref() {
                RevisionRef::Number(_) => ServiceError::RevisionNotFound,
                RevisionRef::Latest => ServiceError::PromptNotFound,
                RevisionRef::Label(_) => ServiceError::LabelNotFound,
            };
            return Err(self.prompt_missing(key, otherwise).await);
        };
        let LabelledRevision { template, labels } = Arc::unwrap_or_clone(found);
        Ok(ResolvedPrompt { template, labels })
    }

    /// The cached lookup, else one query (cached when the cache serves).
    async fn find_revision(
        &self,
        key: &PromptKey,
        sel: &Selector,
    ) -> ServiceResult<Option<Arc<LabelledRevision>>> {
        let cache = &self.inner.templates;
        let by = sel.as_ref();
        if let Some(hit) = cache.lookup(key, by) {
            return Ok(Some(hit));
        }
        let epoch = cache.epoch();
        let Some(found) = self.inner.store.find_revision(key, by).await? else {
            return Ok(None);
        };
        let found = Arc::new(found);
        cache.put_lookup(epoch, key, by, found.clone());
        Ok(Some(found))
    }

    /// What [`Prompter::resolve_prompt`] would find, reduced to what an ETag
    /// covers: from the template cache when it serves (a miss reads the
    /// whole revision once and caches it), else a small-row query; None when
    /// nothing is found (resolve it for the error).
    pub async fn resolve_tag(
        &self,
        key: &PromptKey,
        sel: &Selector,
    ) -> ServiceResult<Option<RevisionTag>> {
        if !self.inner.templates.caches(sel.as_ref()) {
            return Ok(self.inner.store.revision_tag(key, sel.as_ref()).await?);
        }
        Ok(self.find_revision(key, sel).await?.map(|f| f.tag()))
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
            let moved = store
                .move_label(key, label, &target, cur_rev, moved_by, event)
                .await?;
            match moved {
                LabelMove::Moved { previous } => {
                    // Committed: this instance's cached lookups go now
                    // (others' with their next poll of the generation).
                    self.inner.templates.clear();
                    return Ok(LabelMoved {
                        label: label.to_owned(),
                        revision: target.revision,
                        template_id: target.id,
                        previous_revision: previous,
                    });
                }
                LabelMove::Conflict { current } => {
                    if expected.is_some() {
                        return Err(ServiceError::LabelConflict { current });
                    }
                }
                // Deleted since it was read above.
                LabelMove::TargetGone => return Err(ServiceError::RevisionNotFound),
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
        let removed = self
            .inner
            .store
            .remove_label(key, label, moved_by, event)
            .await?;
        self.inner.templates.clear();
        match removed {
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

    /// An outbox event (id and JSON body) when webhooks are on: `body` plus
    /// `event_id` and `occurred_at`.
    pub(crate) fn event_value(&self, mut body: Value) -> Option<(Uuid, Value)> {
        if !self.inner.cfg.webhook_enabled {
            return None;
        }
        let id = Uuid::now_v7();
        body["event_id"] = json!(id);
        body["occurred_at"] = json!(occurred_at());
        Some((id, body))
    }

    /// [`Prompter::event_value`] as stored text.
    pub(crate) fn event(&self, body: Value) -> Option<(Uuid, String)> {
        self.event_value(body).map(|(id, b)| (id, b.to_string()))
    }

    /// A template lifecycle event (`template.created`, …) when webhooks
    /// are on: its id and JSON body (storage enqueues it in the
    /// transaction of the change, and fills in a create's `template_id`
    /// and `revision`).
    pub(crate) fn template_event(
        &self,
        kind: &str,
        t: &TemplateEventSubject<'_>,
    ) -> Option<(Uuid, Value)> {
        self.event_value(json!({
            "type": kind,
            "org_id": t.org_id,
            "workspace_id": t.workspace_id,
            "prompt": t.name,
            "template_id": t.id,
            "revision": t.revision,
        }))
    }
}
