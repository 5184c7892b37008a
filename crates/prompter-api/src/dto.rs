//! Request and response bodies of the HTTP API (never storage entities).

use chrono::{DateTime, SecondsFormat, Utc};
use prompter_storage::{ResultHead, ResultRecord, TemplateRecord};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
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
    /// The prompt, already rendered.
    pub rendered_prompt: String,
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

/// run answer (V7).
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
}

impl From<&ResultRecord> for RunAnswer {
    fn from(r: &ResultRecord) -> Self {
        RunAnswer {
            result_id: r.id,
            version_id: r.version_id,
            provider_version_key: r.provider_version_key.clone(),
            system_fingerprint: r.system_fingerprint.clone(),
            created_at: ts(r.created_at),
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
