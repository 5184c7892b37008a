//! Request and response bodies of the HTTP API (never storage entities).

use chrono::{DateTime, SecondsFormat, Utc};
use prompter_storage::{ResultHead, ResultRecord, TemplateRecord};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

/// RFC 3339 UTC with microseconds, as every timestamp on the wire.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Pydantic's lax boolean: JSON booleans, 0/1, and the usual strings.
fn lax_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    use serde::de::Error;
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "1" | "true" | "t" | "yes" | "y" | "on" => Ok(true),
            "0" | "false" | "f" | "no" | "n" | "off" => Ok(false),
            _ => Err(D::Error::custom("Input should be a valid boolean")),
        },
        _ => Err(D::Error::custom("Input should be a valid boolean")),
    }
}

fn default_scope() -> String {
    "brand".to_owned()
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// `POST /{id}/ensure-version` body (V7).
#[derive(Debug, Deserialize, ToSchema)]
pub struct EnsureVersionBody {
    /// Workspace of the template (required, as in V7).
    pub workspace_id: String,
    /// Org of the template.
    #[serde(default)]
    pub org_id: Option<String>,
    /// Provider override.
    #[serde(default)]
    pub provider: Option<String>,
    /// Model override.
    #[serde(default)]
    pub model_id: Option<String>,
    /// Accepted for V7 compatibility; the template's own instructions are used.
    #[serde(default)]
    pub system_instructions: Option<String>,
    /// Accepted for V7 compatibility.
    #[serde(default = "empty_object")]
    pub inference_params: Value,
}

/// `POST /{id}/run` body (V7).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RunBody {
    /// The prompt, already rendered. When absent (V7 answered 422) and
    /// `runtime_vars` is given, the server renders the template's
    /// `{{placeholders}}` with `runtime_vars`.
    #[serde(default)]
    pub rendered_prompt: Option<String>,
    /// Brand the prompt is about.
    #[serde(default)]
    pub brand_name: Option<String>,
    /// Country of this run.
    #[serde(default)]
    pub country: Option<String>,
    /// Analysis scope (default `brand`).
    #[serde(default = "default_scope")]
    #[schema(default = "brand")]
    pub analysis_scope: String,
    /// Caller variables (an object).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub runtime_vars: serde_json::Map<String, Value>,
    /// Grounding flag.
    #[serde(default, deserialize_with = "lax_bool")]
    pub use_grounding: bool,
}

/// 201 answer of create (V7 fields).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedTemplate {
    /// Template id.
    pub id: Uuid,
    /// Org.
    pub org_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// Name.
    pub name: String,
    /// Resolved provider.
    pub provider: Option<String>,
    /// Model.
    pub model_id: String,
    /// Hex config hash.
    pub config_hash: String,
}

impl From<&TemplateRecord> for CreatedTemplate {
    fn from(t: &TemplateRecord) -> Self {
        CreatedTemplate {
            id: t.id,
            org_id: t.org_id.clone(),
            workspace_id: t.workspace_id.clone(),
            name: t.name.clone(),
            provider: t.provider.clone(),
            model_id: t.model_id.clone(),
            config_hash: t.config_hash.clone(),
        }
    }
}

/// check-duplicate answer: V7's two fields plus what the twin is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DuplicateCheck {
    /// Whether an active twin exists.
    pub exact_match: bool,
    /// The twin's id.
    pub template_id: Option<Uuid>,
    /// The twin's name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// When the twin was created.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
}

/// ensure-version answer (V7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnsuredVersion {
    /// Version row id.
    pub version_id: Uuid,
    /// Provider name.
    pub provider: String,
    /// The served build.
    pub provider_version_key: String,
    /// When it was captured.
    #[schema(format = DateTime)]
    pub captured_at: String,
}

/// Token counts and cost of a run, as the provider reported them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunUsage {
    /// Prompt tokens (cache reads and writes included).
    pub input_tokens: u64,
    /// Completion tokens (reasoning included).
    pub output_tokens: u64,
    /// Prompt tokens read from the provider's cache (null: not reported).
    pub cached_input_tokens: Option<u64>,
    /// Prompt tokens written to the provider's cache (null: not reported).
    pub cache_write_input_tokens: Option<u64>,
    /// Cost at the price table's list prices, integer micro-dollars (null: the model has no price).
    pub cost_micros: Option<i64>,
    /// `cost_micros` in USD.
    pub cost_usd: Option<f64>,
}

impl RunUsage {
    /// The stored usage, when the provider reported any.
    pub fn from_stored(u: &prompter_storage::RunUsage) -> Option<RunUsage> {
        let n = |v: Option<i64>| v.map(|v| u64::try_from(v).unwrap_or(0));
        Some(RunUsage {
            input_tokens: n(u.input_tokens)?,
            output_tokens: n(u.output_tokens)?,
            cached_input_tokens: n(u.cached_input_tokens),
            cache_write_input_tokens: n(u.cache_write_input_tokens),
            cost_micros: u.cost_micros,
            cost_usd: u.cost_micros.map(micros_to_usd),
        })
    }
}

/// Micro-dollars as USD.
pub fn micros_to_usd(micros: i64) -> f64 {
    micros as f64 / 1e6
}

/// run answer (V7's fields, plus `output` and `usage`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunAnswer {
    /// Result id.
    pub result_id: Uuid,
    /// Version row id.
    pub version_id: Option<Uuid>,
    /// The served build.
    pub provider_version_key: String,
    /// OpenAI's fingerprint when the response carried one.
    pub system_fingerprint: Option<String>,
    /// When the result was stored.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The model's text (null for results stored before it was recorded).
    pub output: Option<String>,
    /// Token counts and cost (null when the provider reported no usage).
    pub usage: Option<RunUsage>,
}

impl From<&ResultRecord> for RunAnswer {
    fn from(r: &ResultRecord) -> Self {
        RunAnswer {
            result_id: r.id,
            version_id: r.version_id,
            provider_version_key: r.provider_version_key.clone(),
            system_fingerprint: r.system_fingerprint.clone(),
            created_at: ts(r.created_at),
            output: r.output.clone(),
            usage: RunUsage::from_stored(&r.usage),
        }
    }
}

/// `POST /api/prompts/{name}/run` answer: V7's run answer plus the release.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptRunAnswer {
    /// V7's fields, `output` and `usage`.
    #[serde(flatten)]
    pub run: RunAnswer,
    /// Revision that ran.
    pub revision: Option<i64>,
    /// Label it ran through (null when addressed by revision).
    pub label: Option<String>,
}

impl From<&ResultRecord> for PromptRunAnswer {
    fn from(r: &ResultRecord) -> Self {
        PromptRunAnswer {
            run: RunAnswer::from(r),
            revision: r.release.revision,
            label: r.release.label.clone(),
        }
    }
}

/// `POST /api/prompts/{name}/run` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PromptRunBody {
    /// Values of the prompt's variables (strings, numbers, booleans).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: serde_json::Map<String, Value>,
    /// Brand the prompt is about.
    #[serde(default)]
    pub brand_name: Option<String>,
    /// Country of this run.
    #[serde(default)]
    pub country: Option<String>,
    /// Analysis scope (default `brand`).
    #[serde(default = "default_scope")]
    #[schema(default = "brand")]
    pub analysis_scope: String,
    /// Grounding flag.
    #[serde(default, deserialize_with = "lax_bool")]
    pub use_grounding: bool,
}

/// Body of the render routes.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RenderBody {
    /// Values of the prompt's variables (strings, numbers, booleans).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: serde_json::Map<String, Value>,
}

/// A chat message.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    /// `system` or `user`.
    pub role: String,
    /// Rendered text.
    pub content: String,
}

/// A render answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenderAnswer {
    /// The system message (absent when the instructions are empty), then the user message.
    pub messages: Vec<Message>,
    /// Variables the prompt uses.
    pub variables: Vec<String>,
    /// Given variables it does not use.
    pub unused: Vec<String>,
}

impl From<prompter_domain::render::Rendered> for RenderAnswer {
    fn from(r: prompter_domain::render::Rendered) -> Self {
        let mut messages = Vec::new();
        if !r.system.is_empty() {
            messages.push(Message {
                role: "system".into(),
                content: r.system,
            });
        }
        messages.push(Message {
            role: "user".into(),
            content: r.user,
        });
        RenderAnswer {
            messages,
            variables: r.variables,
            unused: r.unused,
        }
    }
}

/// A prompt in `GET /api/prompts`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptSummaryView {
    /// Prompt name.
    pub name: String,
    /// Revisions created (deleted ones included).
    pub revisions: i64,
    /// Newest active revision (null when every revision is deleted).
    pub latest_revision: Option<i64>,
    /// Each label and the revision it points to.
    #[schema(value_type = Object)]
    pub labels: serde_json::Map<String, Value>,
}

impl From<prompter_storage::PromptSummary> for PromptSummaryView {
    fn from(p: prompter_storage::PromptSummary) -> Self {
        PromptSummaryView {
            name: p.name,
            revisions: p.revisions,
            latest_revision: p.latest_revision,
            labels: p
                .labels
                .into_iter()
                .map(|(l, r)| (l, Value::from(r)))
                .collect(),
        }
    }
}

/// A revision in `GET /api/prompts/{name}/revisions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionView {
    /// Revision number.
    pub revision: i64,
    /// Its template.
    pub template_id: Uuid,
    /// Its config hash.
    pub config_hash: String,
    /// Creation time.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Soft-deleted.
    pub deleted: bool,
    /// Labels pointing to it.
    pub labels: Vec<String>,
}

impl From<prompter_storage::RevisionSummary> for RevisionView {
    fn from(r: prompter_storage::RevisionSummary) -> Self {
        RevisionView {
            revision: r.revision,
            template_id: r.template_id,
            config_hash: r.config_hash,
            created_at: ts(r.created_at),
            deleted: r.deleted,
            labels: r.labels,
        }
    }
}

/// `GET /api/prompts/{name}`: the template plus its release facts.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptView {
    /// The template as `GET /api/prompt-templates/{id}` gives it.
    #[serde(flatten)]
    pub template: TemplateView,
    /// Revision number.
    pub revision: i64,
    /// Labels pointing to this revision.
    pub labels: Vec<String>,
    /// Variables its texts use.
    pub variables: Vec<String>,
}

/// `PUT /api/prompts/{name}/labels/{label}` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LabelMoveBody {
    /// Target revision.
    #[schema(minimum = 1)]
    pub revision: i64,
    /// Compare-and-set: where the label must point now (0: it must not exist yet).
    #[serde(default)]
    #[schema(minimum = 0)]
    pub expected_revision: Option<i64>,
    /// Move even when the target needs new variables.
    #[serde(default)]
    pub force: bool,
}

/// A done label move.
#[derive(Debug, Serialize, ToSchema)]
pub struct LabelMoveAnswer {
    /// Label.
    pub label: String,
    /// Revision it points to now.
    pub revision: i64,
    /// Its template.
    pub template_id: Uuid,
    /// Revision before (null when the label is new).
    pub previous_revision: Option<i64>,
}

/// One move (or removal: `revision` null) of a label.
#[derive(Debug, Serialize, ToSchema)]
pub struct LabelEventView {
    /// New revision (null: removed).
    pub revision: Option<i64>,
    /// Revision before (null: the label was new).
    pub previous_revision: Option<i64>,
    /// When.
    #[schema(format = DateTime)]
    pub moved_at: String,
    /// API key prefix of the mover (null with auth off).
    pub moved_by: Option<String>,
}

impl From<prompter_storage::LabelEvent> for LabelEventView {
    fn from(e: prompter_storage::LabelEvent) -> Self {
        LabelEventView {
            revision: e.revision,
            previous_revision: e.previous_revision,
            moved_at: ts(e.moved_at),
            moved_by: e.moved_by,
        }
    }
}

/// Every list answers `{"items": [...], "next_cursor": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    /// This page.
    pub items: Vec<T>,
    /// Opaque cursor of the next page, or null at the end.
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// Maps a storage page into a wire list.
    pub fn from_page<R>(page: prompter_storage::Page<R>, f: impl FnMut(R) -> T) -> Self {
        List {
            items: page.items.into_iter().map(f).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// A template with its full config as given.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    /// Template id.
    pub id: Uuid,
    /// Org.
    pub org_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// Name.
    pub name: String,
    /// Resolved provider.
    pub provider: Option<String>,
    /// Model.
    pub model_id: String,
    /// System instructions as given.
    pub system_instructions: String,
    /// Prompt template as given.
    pub user_prompt_template: String,
    /// Countries as given.
    pub country_set: Value,
    /// Inference params as given.
    pub inference_params: Value,
    /// Tools as given.
    pub tools_spec: Value,
    /// Response format as given.
    pub response_format: Value,
    /// Grounding profile.
    pub grounding_profile_id: Option<String>,
    /// Grounding snapshot.
    pub grounding_snapshot_id: Option<String>,
    /// Retrieval params as given.
    pub retrieval_params: Value,
    /// Creator.
    pub created_by: Option<String>,
    /// Hex config hash.
    pub config_hash: String,
    /// The canonical JSON the hash is computed over, as a string.
    pub config_canonical_json: String,
    /// Creation time.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Deletion time, when soft-deleted.
    #[schema(format = DateTime)]
    pub deleted_at: Option<String>,
}

impl From<TemplateRecord> for TemplateView {
    /// Moves the record's fields (a listing page holds up to 1000 of them).
    fn from(t: TemplateRecord) -> Self {
        TemplateView {
            id: t.id,
            org_id: t.org_id,
            workspace_id: t.workspace_id,
            name: t.name,
            provider: t.provider,
            model_id: t.model_id,
            system_instructions: t.system_instructions,
            user_prompt_template: t.user_prompt_template,
            country_set: t.country_set,
            inference_params: t.inference_params,
            tools_spec: t.tools_spec,
            response_format: t.response_format,
            grounding_profile_id: t.grounding_profile_id,
            grounding_snapshot_id: t.grounding_snapshot_id,
            retrieval_params: t.retrieval_params,
            created_by: t.created_by,
            config_hash: t.config_hash,
            config_canonical_json: t.config_canonical_json,
            created_at: ts(t.created_at),
            deleted_at: t.deleted_at.map(ts),
        }
    }
}

/// A version row.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    /// Version id.
    pub version_id: Uuid,
    /// Provider.
    pub provider: String,
    /// The served build.
    pub provider_version_key: String,
    /// Model.
    pub model_id: String,
    /// First sighting.
    #[schema(format = DateTime)]
    pub first_seen_at: String,
    /// Latest sighting.
    #[schema(format = DateTime)]
    pub last_seen_at: String,
    /// When a fingerprint was first captured.
    #[schema(format = DateTime)]
    pub fingerprint_captured_at: Option<String>,
}

impl From<&prompter_storage::VersionRecord> for VersionView {
    fn from(v: &prompter_storage::VersionRecord) -> Self {
        VersionView {
            version_id: v.id,
            provider: v.provider.clone(),
            provider_version_key: v.provider_version_key.clone(),
            model_id: v.model_id.clone(),
            first_seen_at: ts(v.first_seen_at),
            last_seen_at: ts(v.last_seen_at),
            fingerprint_captured_at: v.fingerprint_captured_at.map(ts),
        }
    }
}

/// A result in a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultSummary {
    /// Result id.
    pub result_id: Uuid,
    /// Template id.
    pub template_id: Uuid,
    /// Version row.
    pub version_id: Option<Uuid>,
    /// The served build.
    pub provider_version_key: String,
    /// Fingerprint, when present.
    pub system_fingerprint: Option<String>,
    /// Country of the run.
    pub country: Option<String>,
    /// When it was stored.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Revision of the template that ran (null for runs before releases).
    pub revision: Option<i64>,
    /// Label the run went through (run by label).
    pub label: Option<String>,
    /// Token counts and cost (null when the provider reported no usage).
    pub usage: Option<RunUsage>,
    /// The batch that produced it (batch results only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<Uuid>,
    /// Its repeat index within the batch, from 0 (batch results only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat: Option<i64>,
}

impl From<&ResultRecord> for ResultSummary {
    fn from(r: &ResultRecord) -> Self {
        ResultSummary::from(&ResultHead::from(r))
    }
}

impl From<&ResultHead> for ResultSummary {
    fn from(r: &ResultHead) -> Self {
        ResultSummary {
            result_id: r.id,
            template_id: r.template_id,
            version_id: r.version_id,
            provider_version_key: r.provider_version_key.clone(),
            system_fingerprint: r.system_fingerprint.clone(),
            country: r.country.clone(),
            created_at: ts(r.created_at),
            revision: r.release.revision,
            label: r.release.label.clone(),
            usage: RunUsage::from_stored(&r.usage),
            batch_id: r.batch.map(|b| b.batch_id),
            repeat: r.batch.map(|b| b.repeat),
        }
    }
}

/// One result with everything stored for audit.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultDetail {
    /// The summary fields.
    #[serde(flatten)]
    pub summary: ResultSummary,
    /// Full request.
    pub request: Value,
    /// Full provider response.
    pub response: Value,
    /// Analysis config.
    pub analysis_config: Value,
    /// The model's text.
    pub output: Option<String>,
}

/// A drift event.
#[derive(Debug, Serialize, ToSchema)]
pub struct DriftView {
    /// Event id.
    pub event_id: Uuid,
    /// Template id.
    pub template_id: Uuid,
    /// Provider.
    pub provider: String,
    /// Model.
    pub model_id: String,
    /// Key seen before.
    pub previous_key: String,
    /// New key.
    pub new_key: String,
    /// When it was detected.
    #[schema(format = DateTime)]
    pub detected_at: String,
}

impl From<&prompter_storage::DriftRecord> for DriftView {
    fn from(d: &prompter_storage::DriftRecord) -> Self {
        DriftView {
            event_id: d.id,
            template_id: d.template_id,
            provider: d.provider.clone(),
            model_id: d.model_id.clone(),
            previous_key: d.previous_key.clone(),
            new_key: d.new_key.clone(),
            detected_at: ts(d.detected_at),
        }
    }
}

/// `GET /{id}/diff/{other_id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigDiff {
    /// Differences of the canonical configs (names, ids and timestamps are not config).
    pub differences: Vec<Difference>,
}

/// One difference.
#[derive(Debug, Serialize, ToSchema)]
pub struct Difference {
    /// Dotted path, e.g. `inference_params.temperature` (list items by index).
    pub path: String,
    /// Value on the left (null when absent).
    pub left: Value,
    /// Value on the right (null when absent).
    pub right: Value,
}

impl From<prompter_service::diff::Difference> for Difference {
    fn from(d: prompter_service::diff::Difference) -> Self {
        Difference {
            path: d.path,
            left: d.left,
            right: d.right,
        }
    }
}

/// The body of `POST /api/prompts/{name}/batches` and
/// `POST /api/prompt-templates/{id}/batches`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// Country codes (default: the template's `country_set`); upper-cased.
    #[serde(default)]
    pub countries: Option<Vec<String>>,
    /// Variables of every item (strings, numbers or booleans).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Option<Map<String, Value>>,
    /// Variables per country code, over `variables` and the built-ins.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables_by_country: Option<Map<String, Value>>,
    /// Runs per country (1 to 1000; default 1).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub repeats: Option<i64>,
    /// Brand the prompt is about (also the `brand` variable unless set).
    #[serde(default)]
    pub brand_name: Option<String>,
    /// Stored in each result's `analysis_config` (default `brand`).
    #[serde(default)]
    pub analysis_scope: Option<String>,
}

/// A batch accepted (202).
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAccepted {
    /// The batch.
    pub batch_id: Uuid,
    /// Its items (countries × repeats).
    pub items: i64,
}

/// A batch's state and counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchSummary {
    /// Batch id.
    pub id: Uuid,
    /// `queued`, `running`, `done`, `done_with_failures` or `cancelled`.
    #[schema(pattern = "^(queued|running|done|done_with_failures|cancelled)$")]
    pub status: String,
    /// Items.
    pub total: i64,
    /// Items with a stored result.
    pub done: i64,
    /// Items given up.
    pub failed: i64,
    /// Items cancelled before they started.
    pub cancelled: i64,
    /// Prompt name.
    pub prompt: Option<String>,
    /// Template every item runs.
    pub template_id: Uuid,
    /// Its revision.
    pub revision: Option<i64>,
    /// The label it was addressed through.
    pub label: Option<String>,
    /// The schedule that created it.
    pub schedule_id: Option<Uuid>,
    /// Org.
    pub org_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// The request body as given.
    pub spec: Value,
    /// Created.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// First item claimed.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// Every item ended.
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
}

impl From<&prompter_storage::BatchRecord> for BatchSummary {
    fn from(b: &prompter_storage::BatchRecord) -> Self {
        BatchSummary {
            id: b.id,
            status: b.status().to_owned(),
            total: b.total,
            done: b.done,
            failed: b.failed,
            cancelled: b.cancelled,
            prompt: b.prompt.clone(),
            template_id: b.template_id,
            revision: b.revision,
            label: b.label.clone(),
            schedule_id: b.schedule_id,
            org_id: b.org_id.clone(),
            workspace_id: b.workspace_id.clone(),
            spec: b.spec.clone(),
            created_at: ts(b.created_at),
            started_at: b.started_at.map(ts),
            finished_at: b.finished_at.map(ts),
        }
    }
}

/// An item's last error.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemError {
    /// A code of the error table (`PROVIDER_UPSTREAM_ERROR`, …).
    pub code: String,
    /// What happened.
    pub message: String,
}

/// One item of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItemView {
    /// Country code.
    pub country: String,
    /// Repeat index, from 0.
    pub repeat: i64,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    #[schema(pattern = "^(queued|running|done|failed|cancelled)$")]
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The stored result (done items).
    pub result_id: Option<Uuid>,
    /// The last error (failed items, and queued ones waiting to retry).
    pub error: Option<ItemError>,
}

impl From<&prompter_storage::BatchItemRecord> for BatchItemView {
    fn from(i: &prompter_storage::BatchItemRecord) -> Self {
        BatchItemView {
            country: i.country.clone(),
            repeat: i.repeat,
            status: i.status.clone(),
            attempts: i.attempts,
            result_id: i.result_id,
            error: i
                .error
                .as_deref()
                .and_then(|e| serde_json::from_str(e).ok()),
        }
    }
}

/// A batch with its items.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchDetail {
    /// State and counters.
    #[serde(flatten)]
    pub batch: BatchSummary,
    /// Items in order (country by country, repeats in order).
    pub items: Vec<BatchItemView>,
}

/// `POST /api/batches/{id}/retry-failed`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetryFailedAnswer {
    /// The batch after the change.
    #[serde(flatten)]
    pub batch: BatchSummary,
    /// Failed items queued again.
    pub requeued: u64,
}

/// The body of `POST /api/schedules`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// Cron expression, UTC: 5 fields (`min hour day month weekday`), or 6–7
    /// with seconds first (and a year last).
    pub cron: String,
    /// Prompt name (or give `template_id`).
    #[serde(default)]
    pub prompt: Option<String>,
    /// Label resolved at each tick (default `latest`), or…
    #[serde(default)]
    pub label: Option<String>,
    /// …a revision kept for every tick.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub revision: Option<i64>,
    /// A template by id instead of a prompt.
    #[serde(default)]
    pub template_id: Option<Uuid>,
    /// Org (required unless the API key fixes it; prompts only).
    #[serde(default)]
    pub org_id: Option<String>,
    /// Workspace (required unless the API key fixes it; prompts only).
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// The batch each tick creates.
    #[serde(default)]
    pub batch: Option<BatchBody>,
}

/// A schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleView {
    /// Schedule id.
    pub id: Uuid,
    /// Cron expression (UTC).
    pub cron: String,
    /// `active`, or `paused` (its API key is revoked, expired or deleted).
    #[schema(pattern = "^(active|paused)$")]
    pub status: String,
    /// Why it is paused.
    pub paused_reason: Option<String>,
    /// Org.
    pub org_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// What each tick runs: `prompt` with `label` or `revision`, or `template_id`; and `body`.
    pub spec: Value,
    /// Next tick.
    #[schema(format = DateTime)]
    pub next_run_at: String,
    /// Last tick.
    #[schema(format = DateTime)]
    pub last_run_at: Option<String>,
    /// Batch of the last tick.
    pub last_batch_id: Option<Uuid>,
    /// Why the last tick made no batch.
    pub last_error: Option<ItemError>,
    /// Its batches: `/api/batches?schedule_id=<id>`.
    pub batches: String,
    /// Prefix of the API key that created it.
    pub created_by: Option<String>,
    /// Created.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<prompter_service::schedules::ScheduleView> for ScheduleView {
    fn from(v: prompter_service::schedules::ScheduleView) -> Self {
        let s = v.schedule;
        ScheduleView {
            id: s.id,
            cron: s.cron,
            status: if v.paused_reason.is_some() {
                "paused"
            } else {
                "active"
            }
            .to_owned(),
            paused_reason: v.paused_reason,
            org_id: s.org_id,
            workspace_id: s.workspace_id,
            spec: s.spec,
            next_run_at: ts(s.next_run_at),
            last_run_at: s.last_run_at.map(ts),
            last_batch_id: s.last_batch_id,
            last_error: s
                .last_error
                .as_deref()
                .and_then(|e| serde_json::from_str(e).ok()),
            batches: format!("/api/batches?schedule_id={}", s.id),
            created_by: s.created_by,
            created_at: ts(s.created_at),
        }
    }
}

/// `GET /api/me`: who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    /// `required` (requests carry an API key) or `off`.
    #[schema(example = "required")]
    pub auth: String,
    /// The key's org (null with auth off: every org).
    pub org_id: Option<String>,
    /// The key's workspace (null: every workspace of the org, or auth off).
    pub workspace_id: Option<String>,
    /// `read`, `write` or `admin` (`admin` with auth off).
    pub role: String,
    /// Public prefix of the key (null with auth off).
    pub key_prefix: Option<String>,
}

/// A workspace in `GET /api/workspaces`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    /// Org.
    pub org_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// Templates it holds (deleted ones included).
    pub templates: i64,
}

impl From<prompter_storage::WorkspaceSummary> for WorkspaceView {
    fn from(w: prompter_storage::WorkspaceSummary) -> Self {
        WorkspaceView {
            org_id: w.org_id,
            workspace_id: w.workspace_id,
            templates: w.templates,
        }
    }
}
