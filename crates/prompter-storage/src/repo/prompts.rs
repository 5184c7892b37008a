//! Prompt releases (issue 14): prompts (the templates of one org, workspace
//! and name), their revisions, labels (compare-and-set moves) and label
//! history. Revision numbers are allocated by the template insert itself
//! (see [`crate::batch`]).

use crate::error::DbFail;
use crate::repo::templates::decode as decode_template;
use crate::sql::{self, Row};
use crate::{Backend, Page, PageRequest, StorageError, Store, TemplateRecord};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, Query};
use std::sync::LazyLock;
use uuid::Uuid;

const TEMPLATES: &str = "prompt_templates";
const LABELS: &str = "prompt_labels";
const HISTORY: &str = "prompt_label_history";

/// Every template column (of `t`), for the revision lookups.
const TEMPLATE_COLUMNS: &str = "t.id, t.org_id, t.workspace_id, t.name, t.provider, \
    t.system_instructions, t.user_prompt_template, t.country_set, t.model_id, \
    t.inference_params, t.tools_spec, t.response_format, t.grounding_profile_id, \
    t.grounding_snapshot_id, t.retrieval_params, t.config_hash, t.config_canonical_json, \
    t.created_by, t.created_at, t.deleted_at, t.revision";

/// What an ETag is computed from (see [`Store::revision_tag`]).
const TAG_COLUMNS: &str = "t.id, t.config_hash, t.deleted_at, t.revision";

/// Which revision of a prompt a lookup means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevisionRef<'a> {
    /// What a label points to (never a deleted revision).
    Label(&'a str),
    /// A revision number (deleted or not).
    Number(i64),
    /// The newest active revision.
    Latest,
}

/// A revision's template with the labels pointing to it.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledRevision {
    /// The template.
    pub template: TemplateRecord,
    /// Labels pointing to it, by name.
    pub labels: Vec<String>,
}

impl LabelledRevision {
    /// What an ETag covers of it (see [`Store::revision_tag`]).
    pub fn tag(&self) -> RevisionTag {
        RevisionTag {
            template_id: self.template.id,
            config_hash: self.template.config_hash.clone(),
            deleted: self.template.deleted_at.is_some(),
            revision: self.template.revision,
            labels: self.labels.clone(),
        }
    }
}

/// The small part of a revision that a conditional fetch compares: what
/// can change in the answer (see [`Store::revision_tag`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionTag {
    /// The template.
    pub template_id: Uuid,
    /// Its config hash.
    pub config_hash: String,
    /// Soft-deleted.
    pub deleted: bool,
    /// Revision number.
    pub revision: i64,
    /// Labels pointing to it, by name.
    pub labels: Vec<String>,
}

/// The one statement of a revision lookup: `columns` of the template `t`
/// that `by` means, plus `labels` (the labels pointing to it, joined by
/// `,`, which no label name contains). A label is resolved by joining its
/// row to the template, so every lookup is one round trip.
fn revision_sql(backend: Backend, columns: &str, by: RevisionRef<'_>) -> String {
    let agg = match backend {
        Backend::Postgres => "string_agg(x.label, ',')",
        Backend::Sqlite => "group_concat(x.label, ',')",
    };
    let head = format!(
        "SELECT {columns}, (SELECT {agg} FROM prompt_labels x WHERE x.template_id = t.id) \
         AS labels FROM "
    );
    let tail = match by {
        RevisionRef::Label(_) => {
            "prompt_labels l JOIN prompt_templates t ON t.id = l.template_id \
             WHERE l.org_id = $1 AND l.workspace_id = $2 AND l.name = $3 AND l.label = $4 \
             AND t.deleted_at IS NULL"
        }
        RevisionRef::Number(_) => {
            "prompt_templates t \
             WHERE t.org_id = $1 AND t.workspace_id = $2 AND t.name = $3 AND t.revision = $4"
        }
        RevisionRef::Latest => {
            "prompt_templates t \
             WHERE t.org_id = $1 AND t.workspace_id = $2 AND t.name = $3 \
             AND t.deleted_at IS NULL AND t.revision IS NOT NULL \
             ORDER BY t.revision DESC LIMIT 1"
        }
    };
    head + tail
}

/// [`revision_sql`] for every backend, column set and kind of lookup,
/// built once (these are the hot path of fetch by label).
struct RevisionSql {
    /// `[backend][full columns?][label, number, latest]`.
    texts: [[[String; 3]; 2]; 2],
}

static REVISION_SQL: LazyLock<RevisionSql> = LazyLock::new(|| {
    let by = [
        RevisionRef::Label(""),
        RevisionRef::Number(0),
        RevisionRef::Latest,
    ];
    let per = |b: Backend, cols: &str| by.map(|r| revision_sql(b, cols, r));
    let per_backend = |b: Backend| [per(b, TAG_COLUMNS), per(b, TEMPLATE_COLUMNS)];
    RevisionSql {
        texts: [per_backend(Backend::Postgres), per_backend(Backend::Sqlite)],
    }
});

impl RevisionSql {
    fn get(&self, backend: Backend, full: bool, by: RevisionRef<'_>) -> &str {
        let b = match backend {
            Backend::Postgres => 0,
            Backend::Sqlite => 1,
        };
        let k = match by {
            RevisionRef::Label(_) => 0,
            RevisionRef::Number(_) => 1,
            RevisionRef::Latest => 2,
        };
        &self.texts[b][usize::from(full)][k]
    }
}

/// The `labels` column of a revision lookup, sorted.
fn split_labels(r: &Row<'_>) -> Result<Vec<String>, StorageError> {
    let mut labels: Vec<String> = r
        .text_opt("labels")?
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    labels.sort_unstable();
    Ok(labels)
}

/// A prompt: (org, workspace, name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PromptKey {
    /// Org.
    pub org_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// Prompt name (the templates' `name`).
    pub name: String,
}

/// A prompt in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptSummary {
    /// Name.
    pub name: String,
    /// Revisions created (deleted ones included).
    pub revisions: i64,
    /// The newest active revision, if any.
    pub latest_revision: Option<i64>,
    /// Labels and the revision each points to, by label.
    pub labels: Vec<(String, i64)>,
}

/// One revision of a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionSummary {
    /// Revision number.
    pub revision: i64,
    /// The template.
    pub template_id: Uuid,
    /// Its config hash.
    pub config_hash: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Soft-deleted.
    pub deleted: bool,
    /// Labels pointing to it.
    pub labels: Vec<String>,
}

/// A label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRecord {
    /// Label name.
    pub label: String,
    /// Revision it points to.
    pub revision: i64,
    /// The template of that revision.
    pub template_id: Uuid,
    /// Last move.
    pub moved_at: DateTime<Utc>,
    /// Key prefix of the last mover.
    pub moved_by: Option<String>,
}

/// One move (or removal: `revision` None) of a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelEvent {
    /// Row id.
    pub id: Uuid,
    /// New revision; None when the label was removed.
    pub revision: Option<i64>,
    /// Revision before; None when the label was new.
    pub previous_revision: Option<i64>,
    /// When.
    pub moved_at: DateTime<Utc>,
    /// Key prefix of the mover.
    pub moved_by: Option<String>,
}

/// Outcome of [`Store::move_label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelMove {
    /// Moved; the revision it pointed to before (None: new label).
    Moved {
        /// Previous revision.
        previous: Option<i64>,
    },
    /// The label did not point where the caller expected.
    Conflict {
        /// Where it points now (None: absent).
        current: Option<i64>,
    },
    /// The target revision is deleted (or gone) by now; nothing changed.
    TargetGone,
}

fn cursor_err<E>(_: E) -> StorageError {
    StorageError::InvalidCursor
}

/// A `LIKE … ESCAPE '!'` pattern matching names that contain `s`
/// (lower-cased: the query compares `LOWER(name)`).
fn like_pattern(s: &str) -> String {
    let mut p = String::from("%");
    for c in s.to_ascii_lowercase().chars() {
        if matches!(c, '%' | '_' | '!') {
            p.push('!');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Name cursor of [`Store::list_prompts`].
fn encode_name_cursor(name: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("n:{name}"))
}

fn decode_name_cursor(c: &str) -> Result<String, StorageError> {
    let raw = URL_SAFE_NO_PAD.decode(c).map_err(cursor_err)?;
    let s = String::from_utf8(raw).map_err(cursor_err)?;
    s.strip_prefix("n:")
        .map(str::to_owned)
        .ok_or(StorageError::InvalidCursor)
}

/// Revision cursor of [`Store::list_revisions`].
fn encode_rev_cursor(rev: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("r:{rev}"))
}

fn decode_rev_cursor(c: &str) -> Result<i64, StorageError> {
    let raw = URL_SAFE_NO_PAD.decode(c).map_err(cursor_err)?;
    let s = String::from_utf8(raw).map_err(cursor_err)?;
    s.strip_prefix("r:")
        .and_then(|n| n.parse().ok())
        .ok_or(StorageError::InvalidCursor)
}

fn decode_label(r: &Row<'_>) -> Result<LabelRecord, StorageError> {
    Ok(LabelRecord {
        label: r.text("label")?,
        revision: r.i64("revision")?,
        template_id: r.uuid("template_id")?,
        moved_at: r.ts("moved_at")?,
        moved_by: r.text_opt("moved_by")?,
    })
}

fn decode_event(r: &Row<'_>) -> Result<LabelEvent, StorageError> {
    Ok(LabelEvent {
        id: r.uuid("id")?,
        revision: r.i64_opt("revision")?,
        previous_revision: r.i64_opt("previous_revision")?,
        moved_at: r.ts("moved_at")?,
        moved_by: r.text_opt("moved_by")?,
    })
}

fn key_values(k: &PromptKey) -> Vec<sea_orm::Value> {
    vec![
        sql::text(&k.org_id),
        sql::text(&k.workspace_id),
        sql::text(&k.name),
    ]
}

impl Store {
    /// Prompts of a workspace by name (cursor: the last name of a page);
    /// with `search`, only names containing it (ASCII case-insensitive).
    pub async fn list_prompts(
        &self,
        org_id: &str,
        workspace_id: &str,
        search: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<PromptSummary>, StorageError> {
        let limit = page.effective_limit();
        let mut values = vec![sql::text(org_id), sql::text(workspace_id)];
        let mut sql = String::from(
            "SELECT name, CAST(COUNT(*) AS INTEGER) AS revisions, \
             MAX(CASE WHEN deleted_at IS NULL THEN revision END) AS latest \
             FROM prompt_templates WHERE org_id = $1 AND workspace_id = $2",
        );
        if let Some(c) = &page.cursor {
            values.push(sql::text(&decode_name_cursor(c)?));
            sql.push_str(&format!(" AND name > ${}", values.len()));
        }
        if let Some(s) = search.filter(|s| !s.is_empty()) {
            values.push(sql::text(&like_pattern(s)));
            sql.push_str(&format!(
                " AND LOWER(name) LIKE ${} ESCAPE '!'",
                values.len()
            ));
        }
        sql.push_str(&format!(" GROUP BY name ORDER BY name LIMIT {}", limit + 1));
        let rows = self
            .q_all(self.stmt(&sql, values))
            .await
            .map_err(|e| e.into_storage(TEMPLATES))?;
        let more = rows.len() as u64 > limit;
        let mut items = Vec::with_capacity(rows.len().min(limit as usize));
        for row in rows.iter().take(limit as usize) {
            let r = self.row(row);
            items.push(PromptSummary {
                name: r.text("name")?,
                revisions: r.i64("revisions")?,
                latest_revision: r.i64_opt("latest")?,
                labels: Vec::new(),
            });
        }
        if let (Some(first), Some(last)) = (items.first(), items.last()) {
            let rows = self
                .q_all(self.stmt(
                    "SELECT name, label, revision FROM prompt_labels \
                     WHERE org_id = $1 AND workspace_id = $2 AND name >= $3 AND name <= $4 \
                     ORDER BY name, label",
                    vec![
                        sql::text(org_id),
                        sql::text(workspace_id),
                        sql::text(&first.name),
                        sql::text(&last.name),
                    ],
                ))
                .await
                .map_err(|e| e.into_storage(LABELS))?;
            for row in &rows {
                let r = self.row(row);
                let name = r.text("name")?;
                if let Some(p) = items.iter_mut().find(|p| p.name == name) {
                    p.labels.push((r.text("label")?, r.i64("revision")?));
                }
            }
        }
        let next_cursor = if more {
            items.last().map(|p| encode_name_cursor(&p.name))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Whether the prompt has any template (deleted ones included).
    pub async fn prompt_exists(&self, key: &PromptKey) -> Result<bool, StorageError> {
        let row = self
            .q_one(self.stmt(
                "SELECT 1 AS one FROM prompt_templates \
                 WHERE org_id = $1 AND workspace_id = $2 AND name = $3 LIMIT 1",
                key_values(key),
            ))
            .await
            .map_err(|e| e.into_storage(TEMPLATES))?;
        Ok(row.is_some())
    }

    /// Revisions of a prompt, newest first (cursor: the last revision of a page).
    pub async fn list_revisions(
        &self,
        key: &PromptKey,
        page: &PageRequest,
    ) -> Result<Page<RevisionSummary>, StorageError> {
        let limit = page.effective_limit();
        let mut values = key_values(key);
        let mut sql = String::from(
            "SELECT id, revision, config_hash, created_at, deleted_at FROM prompt_templates \
             WHERE org_id = $1 AND workspace_id = $2 AND name = $3 AND revision IS NOT NULL",
        );
        if let Some(c) = &page.cursor {
            values.push(sql::int(decode_rev_cursor(c)?));
            sql.push_str(" AND revision < $4");
        }
        sql.push_str(&format!(" ORDER BY revision DESC LIMIT {}", limit + 1));
        let rows = self
            .q_all(self.stmt(&sql, values))
            .await
            .map_err(|e| e.into_storage(TEMPLATES))?;
        let more = rows.len() as u64 > limit;
        let labels = self.prompt_labels(key).await?;
        let mut items = Vec::new();
        for row in rows.iter().take(limit as usize) {
            let r = self.row(row);
            let revision = r.i64("revision")?;
            items.push(RevisionSummary {
                revision,
                template_id: r.uuid("id")?,
                config_hash: r.text("config_hash")?,
                created_at: r.ts("created_at")?,
                deleted: r.ts_opt("deleted_at")?.is_some(),
                labels: labels
                    .iter()
                    .filter(|l| l.revision == revision)
                    .map(|l| l.label.clone())
                    .collect(),
            });
        }
        let next_cursor = if more {
            items.last().map(|r| encode_rev_cursor(r.revision))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// The values of a revision lookup.
    fn revision_values(key: &PromptKey, by: RevisionRef<'_>) -> Vec<sea_orm::Value> {
        let mut values = key_values(key);
        match by {
            RevisionRef::Label(l) => values.push(sql::text(l)),
            RevisionRef::Number(n) => values.push(sql::int(n)),
            RevisionRef::Latest => {}
        }
        values
    }

    /// The row of a revision lookup: every template column (`full`) or only
    /// the ETag's, plus `labels`.
    async fn revision_row(
        &self,
        key: &PromptKey,
        by: RevisionRef<'_>,
        full: bool,
    ) -> Result<Option<sea_orm::QueryResult>, StorageError> {
        let sql = REVISION_SQL.get(self.backend, full, by);
        self.q_one(self.stmt(sql, Self::revision_values(key, by)))
            .await
            .map_err(|e| e.into_storage(TEMPLATES))
    }

    /// The revision `by` means, with the labels pointing to it: one
    /// statement (a label is joined to its template).
    pub async fn find_revision(
        &self,
        key: &PromptKey,
        by: RevisionRef<'_>,
    ) -> Result<Option<LabelledRevision>, StorageError> {
        let Some(row) = self.revision_row(key, by, true).await? else {
            return Ok(None);
        };
        let r = self.row(&row);
        Ok(Some(LabelledRevision {
            template: decode_template(&r)?,
            labels: split_labels(&r)?,
        }))
    }

    /// What [`Store::find_revision`] would find, reduced to what can change
    /// in a fetched prompt (id, config hash, deletion, labels): one
    /// statement over a small row, for answering conditional requests
    /// without reading the template's texts and JSON.
    pub async fn revision_tag(
        &self,
        key: &PromptKey,
        by: RevisionRef<'_>,
    ) -> Result<Option<RevisionTag>, StorageError> {
        let Some(row) = self.revision_row(key, by, false).await? else {
            return Ok(None);
        };
        let r = self.row(&row);
        Ok(Some(RevisionTag {
            template_id: r.uuid("id")?,
            config_hash: r.text("config_hash")?,
            deleted: r.ts_opt("deleted_at")?.is_some(),
            revision: r.i64_opt("revision")?.unwrap_or(0),
            labels: split_labels(&r)?,
        }))
    }

    /// One revision's template (deleted or not).
    pub async fn get_revision(
        &self,
        key: &PromptKey,
        revision: i64,
    ) -> Result<Option<TemplateRecord>, StorageError> {
        Ok(self
            .find_revision(key, RevisionRef::Number(revision))
            .await?
            .map(|r| r.template))
    }

    /// The newest active revision's template (what `latest` means).
    pub async fn latest_revision(
        &self,
        key: &PromptKey,
    ) -> Result<Option<TemplateRecord>, StorageError> {
        Ok(self
            .find_revision(key, RevisionRef::Latest)
            .await?
            .map(|r| r.template))
    }

    /// Every label of a prompt, by name.
    pub async fn prompt_labels(&self, key: &PromptKey) -> Result<Vec<LabelRecord>, StorageError> {
        let rows = self
            .q_all(self.stmt(
                "SELECT label, revision, template_id, moved_at, moved_by FROM prompt_labels \
                 WHERE org_id = $1 AND workspace_id = $2 AND name = $3 ORDER BY label",
                key_values(key),
            ))
            .await
            .map_err(|e| e.into_storage(LABELS))?;
        rows.iter().map(|r| decode_label(&self.row(r))).collect()
    }

    /// One label.
    pub async fn get_label(
        &self,
        key: &PromptKey,
        label: &str,
    ) -> Result<Option<LabelRecord>, StorageError> {
        let mut values = key_values(key);
        values.push(sql::text(label));
        let row = self
            .q_one(self.stmt(
                "SELECT label, revision, template_id, moved_at, moved_by FROM prompt_labels \
                 WHERE org_id = $1 AND workspace_id = $2 AND name = $3 AND label = $4",
                values,
            ))
            .await
            .map_err(|e| e.into_storage(LABELS))?;
        row.map(|r| decode_label(&self.row(&r))).transpose()
    }

    /// Labels pointing to a template, by name.
    pub async fn labels_of_template(&self, template_id: Uuid) -> Result<Vec<String>, StorageError> {
        let rows = self
            .q_all(self.stmt(
                "SELECT label FROM prompt_labels WHERE template_id = $1 ORDER BY label",
                vec![self.backend.uuid(template_id)],
            ))
            .await
            .map_err(|e| e.into_storage(LABELS))?;
        rows.iter().map(|r| self.row(r).text("label")).collect()
    }

    /// Points `label` at `target` (a revision of the prompt `key`) if it
    /// points at `guard` now (None: the label must not exist) and `target`
    /// is not deleted, and records the move in the history, in one
    /// transaction. `outbox` (an event id and its JSON body) is enqueued for
    /// webhook delivery in the same transaction.
    ///
    /// The target's row is read with a share lock (PostgreSQL) before the
    /// label is written, so a concurrent [`Store::soft_delete_template`]
    /// either waits for this move and then sees its label, or deletes first
    /// and this move finds the target deleted ([`LabelMove::TargetGone`]).
    pub async fn move_label(
        &self,
        key: &PromptKey,
        label: &str,
        target: &TemplateRecord,
        guard: Option<i64>,
        moved_by: Option<&str>,
        outbox: Option<(Uuid, String)>,
    ) -> Result<LabelMove, StorageError> {
        let b = self.backend;
        let fail = |e: DbFail| e.into_storage(LABELS);
        let mut tx = self.begin_write().await.map_err(fail)?;
        let mut values = key_values(key);
        values.push(sql::text(label));
        let lock = match b {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let current = match tx
            .query_one(self.stmt(
                &format!(
                    "SELECT revision FROM prompt_labels \
                     WHERE org_id = $1 AND workspace_id = $2 AND name = $3 AND label = $4{lock}"
                ),
                values.clone(),
            ))
            .await
            .map_err(fail)?
        {
            Some(row) => Some(self.row(&row).i64("revision")?),
            None => None,
        };
        if current != guard {
            return Ok(LabelMove::Conflict { current });
        }
        let share = match b {
            Backend::Postgres => " FOR SHARE",
            Backend::Sqlite => "",
        };
        let alive = tx
            .query_one(self.stmt(
                &format!(
                    "SELECT id FROM prompt_templates WHERE id = $1 AND deleted_at IS NULL{share}"
                ),
                vec![b.uuid(target.id)],
            ))
            .await
            .map_err(|e| e.into_storage(TEMPLATES))?;
        if alive.is_none() {
            tx.rollback().await.map_err(fail)?;
            return Ok(LabelMove::TargetGone);
        }
        let now = sql::now();
        let mut row = values.clone();
        row.extend([
            b.uuid(target.id),
            sql::int(target.revision),
            b.ts(now),
            sql::text_opt(moved_by),
        ]);
        let written = if current.is_some() {
            tx.execute(self.stmt(
                "UPDATE prompt_labels SET template_id = $5, revision = $6, moved_at = $7, \
                 moved_by = $8 \
                 WHERE org_id = $1 AND workspace_id = $2 AND name = $3 AND label = $4",
                row,
            ))
            .await
            .map_err(fail)?
        } else {
            tx.execute(self.stmt(
                "INSERT INTO prompt_labels \
                 (org_id, workspace_id, name, label, template_id, revision, moved_at, moved_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (org_id, workspace_id, name, label) DO NOTHING",
                row,
            ))
            .await
            .map_err(fail)?
        };
        if written == 0 {
            // A concurrent first move of the same label won (PostgreSQL).
            drop(tx);
            let now = self.get_label(key, label).await?;
            return Ok(LabelMove::Conflict {
                current: now.map(|l| l.revision),
            });
        }
        self.record_label_event(
            &mut tx,
            key,
            label,
            Some(target.revision),
            current,
            now,
            moved_by,
        )
        .await?;
        if let Some((event_id, payload)) = outbox {
            self.enqueue_outbox_in(&mut tx, event_id, &payload, now)
                .await?;
        }
        tx.commit().await.map_err(fail)?;
        Ok(LabelMove::Moved { previous: current })
    }

    /// Removes a label, recording the removal; the revision it pointed to,
    /// or None when it did not exist.
    pub async fn remove_label(
        &self,
        key: &PromptKey,
        label: &str,
        moved_by: Option<&str>,
        outbox: Option<(Uuid, String)>,
    ) -> Result<Option<i64>, StorageError> {
        let fail = |e: DbFail| e.into_storage(LABELS);
        let mut tx = self.begin_write().await.map_err(fail)?;
        let mut values = key_values(key);
        values.push(sql::text(label));
        let removed = match tx
            .query_one(self.stmt(
                "DELETE FROM prompt_labels \
                 WHERE org_id = $1 AND workspace_id = $2 AND name = $3 AND label = $4 \
                 RETURNING revision",
                values,
            ))
            .await
            .map_err(fail)?
        {
            Some(row) => self.row(&row).i64("revision")?,
            None => return Ok(None),
        };
        let now = sql::now();
        self.record_label_event(&mut tx, key, label, None, Some(removed), now, moved_by)
            .await?;
        if let Some((event_id, payload)) = outbox {
            self.enqueue_outbox_in(&mut tx, event_id, &payload, now)
                .await?;
        }
        tx.commit().await.map_err(fail)?;
        Ok(Some(removed))
    }

    /// The template an org's idempotency key was first claimed under, if any
    /// (run by label scopes keys to the workspace, not the template).
    pub async fn idempotency_template(
        &self,
        org_id: &str,
        key: &str,
    ) -> Result<Option<Uuid>, StorageError> {
        let row = self
            .q_one(self.stmt(
                "SELECT template_id FROM run_idempotency \
                 WHERE org_id = $1 AND idempotency_key = $2 LIMIT 1",
                vec![sql::text(org_id), sql::text(key)],
            ))
            .await
            .map_err(|e| e.into_storage("run_idempotency"))?;
        row.map(|r| self.row(&r).uuid("template_id")).transpose()
    }

    /// Enqueues a webhook delivery inside `tx`.
    pub(crate) async fn enqueue_outbox_in(
        &self,
        tx: &mut sql::WriteTx,
        event_id: Uuid,
        payload: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let b = self.backend;
        tx.execute(self.stmt(
            super::drift::INSERT_OUTBOX_SQL,
            vec![
                b.uuid(Uuid::now_v7()),
                b.uuid(event_id),
                sql::text(payload),
                b.ts(now),
            ],
        ))
        .await
        .map_err(|e| e.into_storage("webhook_outbox"))?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_label_event(
        &self,
        tx: &mut sql::WriteTx,
        key: &PromptKey,
        label: &str,
        revision: Option<i64>,
        previous: Option<i64>,
        at: DateTime<Utc>,
        moved_by: Option<&str>,
    ) -> Result<(), StorageError> {
        let b = self.backend;
        let mut values = vec![b.uuid(Uuid::now_v7())];
        values.extend(key_values(key));
        values.extend([
            sql::text(label),
            sql::int_opt(revision),
            sql::int_opt(previous),
            b.ts(at),
            sql::text_opt(moved_by),
        ]);
        tx.execute(self.stmt(
            "INSERT INTO prompt_label_history (id, org_id, workspace_id, name, label, revision, \
             previous_revision, moved_at, moved_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            values,
        ))
        .await
        .map_err(|e| e.into_storage(HISTORY))?;
        Ok(())
    }

    /// Moves and removals of a label, newest first.
    pub async fn label_history(
        &self,
        key: &PromptKey,
        label: &str,
        page: &PageRequest,
    ) -> Result<Page<LabelEvent>, StorageError> {
        let col = |c: &str| (Alias::new(HISTORY), Alias::new(c));
        let q = Query::select()
            .columns(
                [
                    "id",
                    "revision",
                    "previous_revision",
                    "moved_at",
                    "moved_by",
                ]
                .map(col),
            )
            .from(Alias::new(HISTORY))
            .and_where(Expr::col(col("org_id")).eq(key.org_id.as_str()))
            .and_where(Expr::col(col("workspace_id")).eq(key.workspace_id.as_str()))
            .and_where(Expr::col(col("name")).eq(key.name.as_str()))
            .and_where(Expr::col(col("label")).eq(label))
            .to_owned();
        self.list_keyset(
            q,
            col("moved_at"),
            col("id"),
            page,
            HISTORY,
            decode_event,
            |e| (e.moved_at, e.id),
        )
        .await
    }
}
