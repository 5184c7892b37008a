//! Plain record structs returned and accepted by the repositories.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A stored template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRecord {
    /// Service-generated id (UUIDv7).
    pub id: Uuid,
    /// Owning org (opaque caller id).
    pub org_id: String,
    /// Owning workspace (opaque caller id).
    pub workspace_id: String,
    /// Display name (not part of the config hash).
    pub name: String,
    /// Explicit provider, if one was given.
    pub provider: Option<String>,
    /// System instructions as given.
    pub system_instructions: String,
    /// User prompt template as given.
    pub user_prompt_template: String,
    /// Countries as given (JSON).
    pub country_set: Value,
    /// Model id.
    pub model_id: String,
    /// Inference parameters as given (JSON).
    pub inference_params: Value,
    /// Tools spec as given (JSON).
    pub tools_spec: Value,
    /// Response format as given (JSON).
    pub response_format: Value,
    /// Grounding profile id.
    pub grounding_profile_id: Option<String>,
    /// Grounding snapshot id.
    pub grounding_snapshot_id: Option<String>,
    /// Retrieval parameters as given (JSON).
    pub retrieval_params: Value,
    /// Hash of `config_canonical_json` (hex, algorithm pinned per deployment).
    pub config_hash: String,
    /// The canonical config, byte for byte as hashed.
    pub config_canonical_json: String,
    /// Creator (opaque caller id).
    pub created_by: Option<String>,
    /// Creation time (UTC, microseconds).
    pub created_at: DateTime<Utc>,
    /// Soft-delete time; None while active.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Number within its prompt (org, workspace, name): 1, 2, 3… in
    /// creation order, never reused.
    pub revision: i64,
}

/// A template to insert: a [`TemplateRecord`] without id, created_at and deleted_at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTemplate {
    /// Owning org.
    pub org_id: String,
    /// Owning workspace.
    pub workspace_id: String,
    /// Display name.
    pub name: String,
    /// Explicit provider.
    pub provider: Option<String>,
    /// System instructions.
    pub system_instructions: String,
    /// User prompt template.
    pub user_prompt_template: String,
    /// Countries (JSON).
    pub country_set: Value,
    /// Model id.
    pub model_id: String,
    /// Inference parameters (JSON).
    pub inference_params: Value,
    /// Tools spec (JSON).
    pub tools_spec: Value,
    /// Response format (JSON).
    pub response_format: Value,
    /// Grounding profile id.
    pub grounding_profile_id: Option<String>,
    /// Grounding snapshot id.
    pub grounding_snapshot_id: Option<String>,
    /// Retrieval parameters (JSON).
    pub retrieval_params: Value,
    /// Config hash (hex).
    pub config_hash: String,
    /// Canonical config text, stored verbatim.
    pub config_canonical_json: String,
    /// Creator.
    pub created_by: Option<String>,
}

/// Which templates a listing returns (intersected with the caller's [`crate::Scope`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateFilter {
    /// Only this org.
    pub org_id: Option<String>,
    /// Only this workspace.
    pub workspace_id: Option<String>,
    /// Also soft-deleted templates.
    pub include_deleted: bool,
}

/// A provider build seen for a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Service-generated id.
    pub id: Uuid,
    /// Org of the template.
    pub org_id: String,
    /// Workspace of the template.
    pub workspace_id: String,
    /// The template.
    pub template_id: Uuid,
    /// Provider name.
    pub provider: String,
    /// Provider version key (what the wire says the build is).
    pub provider_version_key: String,
    /// Model id.
    pub model_id: String,
    /// When a fingerprint was first captured for this key.
    pub fingerprint_captured_at: Option<DateTime<Utc>>,
    /// Earliest sighting.
    pub first_seen_at: DateTime<Utc>,
    /// Latest sighting (never moves backward).
    pub last_seen_at: DateTime<Utc>,
}

/// A sighting of a provider version key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewVersion {
    /// Org of the template.
    pub org_id: String,
    /// Workspace of the template.
    pub workspace_id: String,
    /// The template.
    pub template_id: Uuid,
    /// Provider name.
    pub provider: String,
    /// Provider version key.
    pub provider_version_key: String,
    /// Model id.
    pub model_id: String,
    /// When it was seen.
    pub seen_at: DateTime<Utc>,
    /// Set when the sighting carried a fingerprint.
    pub fingerprint_captured_at: Option<DateTime<Utc>>,
    /// When the sighting is a drift, also enqueue a webhook outbox row.
    pub enqueue_webhook: bool,
}

/// Outcome of [`crate::Store::upsert_version`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionUpsert {
    /// The version row after the upsert.
    pub version: VersionRecord,
    /// True when this call created the row.
    pub inserted: bool,
    /// The drift event this call recorded, if the key was new and another
    /// key was already known for the same (template, provider, model).
    pub drift: Option<DriftRecord>,
}

/// A version drift event: a template's (provider, model) moved to a new key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftRecord {
    /// Event id.
    pub id: Uuid,
    /// Org of the template.
    pub org_id: String,
    /// Workspace of the template.
    pub workspace_id: String,
    /// The template.
    pub template_id: Uuid,
    /// Provider name.
    pub provider: String,
    /// Model id.
    pub model_id: String,
    /// The key seen before (the most recently seen other key).
    pub previous_key: String,
    /// The new key.
    pub new_key: String,
    /// When the new key was first seen.
    pub detected_at: DateTime<Utc>,
}

impl DriftRecord {
    /// The JSON body of the drift webhook (also stored in the outbox).
    pub fn webhook_payload(&self) -> Value {
        serde_json::json!({
            "type": "version.drift",
            "event_id": self.id,
            "org_id": self.org_id,
            "workspace_id": self.workspace_id,
            "template_id": self.template_id,
            "provider": self.provider,
            "model_id": self.model_id,
            "previous_key": self.previous_key,
            "new_key": self.new_key,
            "detected_at": self.detected_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        })
    }
}

/// Filter of drift listings (intersected with the caller's scope).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftFilter {
    /// Only this org.
    pub org_id: Option<String>,
    /// Only this workspace.
    pub workspace_id: Option<String>,
    /// Only this template.
    pub template_id: Option<Uuid>,
    /// Only events detected at or after this time.
    pub since: Option<DateTime<Utc>>,
}

/// A stored run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    /// Service-generated id.
    pub id: Uuid,
    /// Org of the template.
    pub org_id: String,
    /// Workspace of the template.
    pub workspace_id: String,
    /// The template.
    pub template_id: Uuid,
    /// The version row the run was recorded against.
    pub version_id: Option<Uuid>,
    /// Provider version key of the run.
    pub provider_version_key: String,
    /// Provider fingerprint, when present.
    pub system_fingerprint: Option<String>,
    /// Country of the run.
    pub country: Option<String>,
    /// Full request (JSON).
    pub request: Value,
    /// Full provider response (JSON).
    pub response: Value,
    /// Analysis config (JSON).
    pub analysis_config: Value,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// The release the run went through (revision, label).
    pub release: RunRelease,
    /// The model's text (null for runs stored before it was recorded).
    pub output: Option<String>,
    /// Provider, token counts and cost of the run.
    pub usage: RunUsage,
    /// The batch item that produced it (issue 18).
    #[serde(default)]
    pub batch: Option<BatchRef>,
}

/// What a run records about the provider call it made (issue 17). Token
/// counts are None when the provider reported none (never a guessed 0);
/// `cost_micros` (integer micro-dollars) is None when the model has no price.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunUsage {
    /// The provider that served the run (`openai`, `azure-openai`, …).
    pub provider: Option<String>,
    /// All prompt tokens (cache reads and writes included).
    pub input_tokens: Option<i64>,
    /// Output tokens (reasoning included).
    pub output_tokens: Option<i64>,
    /// Prompt tokens read from the provider's cache.
    pub cached_input_tokens: Option<i64>,
    /// Prompt tokens written to the provider's cache.
    pub cache_write_input_tokens: Option<i64>,
    /// Cost in micro-dollars.
    pub cost_micros: Option<i64>,
}

/// The batch item a result belongs to: its batch and repeat index (the
/// country is the result's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRef {
    /// The batch.
    pub batch_id: Uuid,
    /// Repeat index within the batch (0-based).
    pub repeat: i64,
}

/// What a run records about the release it ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRelease {
    /// Revision of the template within its prompt.
    pub revision: Option<i64>,
    /// Label the run was addressed through (run by label).
    pub label: Option<String>,
}

/// A stored run without its payloads (request, response, analysis config):
/// what a listing shows, read without fetching or decoding the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultHead {
    /// Service-generated id.
    pub id: Uuid,
    /// Org of the template.
    pub org_id: String,
    /// Workspace of the template.
    pub workspace_id: String,
    /// The template.
    pub template_id: Uuid,
    /// The version row the run was recorded against.
    pub version_id: Option<Uuid>,
    /// Provider version key of the run.
    pub provider_version_key: String,
    /// Provider fingerprint, when present.
    pub system_fingerprint: Option<String>,
    /// Country of the run.
    pub country: Option<String>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// The release the run went through.
    pub release: RunRelease,
    /// Provider, token counts and cost of the run.
    pub usage: RunUsage,
    /// The batch item that produced it (issue 18).
    #[serde(default)]
    pub batch: Option<BatchRef>,
}

impl ResultHead {
    /// The full record: this head plus the stored payloads.
    pub fn with_payloads(
        self,
        request: Value,
        response: Value,
        analysis_config: Value,
        output: Option<String>,
    ) -> ResultRecord {
        ResultRecord {
            id: self.id,
            org_id: self.org_id,
            workspace_id: self.workspace_id,
            template_id: self.template_id,
            version_id: self.version_id,
            provider_version_key: self.provider_version_key,
            system_fingerprint: self.system_fingerprint,
            country: self.country,
            request,
            response,
            analysis_config,
            created_at: self.created_at,
            release: self.release,
            output,
            usage: self.usage,
            batch: self.batch,
        }
    }
}

impl From<&ResultRecord> for ResultHead {
    fn from(r: &ResultRecord) -> Self {
        ResultHead {
            id: r.id,
            org_id: r.org_id.clone(),
            workspace_id: r.workspace_id.clone(),
            template_id: r.template_id,
            version_id: r.version_id,
            provider_version_key: r.provider_version_key.clone(),
            system_fingerprint: r.system_fingerprint.clone(),
            country: r.country.clone(),
            created_at: r.created_at,
            release: r.release.clone(),
            usage: r.usage.clone(),
            batch: r.batch,
        }
    }
}

/// A run to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewResult {
    /// Org of the template.
    pub org_id: String,
    /// Workspace of the template.
    pub workspace_id: String,
    /// The template.
    pub template_id: Uuid,
    /// The version row.
    pub version_id: Option<Uuid>,
    /// Provider version key.
    pub provider_version_key: String,
    /// Provider fingerprint.
    pub system_fingerprint: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Full request.
    pub request: Value,
    /// Full response.
    pub response: Value,
    /// Analysis config.
    pub analysis_config: Value,
    /// The release the run went through.
    pub release: RunRelease,
    /// The model's text.
    pub output: Option<String>,
    /// Provider, token counts and cost (rolled up into `usage_daily`).
    pub usage: RunUsage,
}

/// Filter of result listings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultFilter {
    /// Only results recorded against this version.
    pub version_id: Option<Uuid>,
    /// Only this country.
    pub country: Option<String>,
    /// Only results of this batch.
    pub batch_id: Option<Uuid>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Created strictly before.
    pub until: Option<DateTime<Utc>>,
}

/// Outcome of [`crate::Store::claim_idempotency`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Claim {
    /// The caller owns the key now: run, then store with
    /// [`crate::Store::insert_result_idempotent`] (or release on failure).
    New,
    /// Another caller holds the key and has not finished: wait and retry.
    InFlight,
    /// The key already produced this result: replay it.
    Completed(Uuid),
    /// The key was used with a different request body (or another org).
    Mismatch,
}

/// A webhook delivery waiting in (or done with) the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// Outbox row id.
    pub id: Uuid,
    /// The event delivered (e.g. a drift event id); stable across retries.
    pub event_id: Uuid,
    /// The JSON body to POST, exactly as stored.
    pub payload: String,
    /// Failed attempts so far.
    pub attempts: i64,
    /// Not to be attempted before this time.
    pub next_attempt_at: DateTime<Utc>,
    /// Set once delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Reason of the last failure.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// The instance delivering it now, while its lease runs.
    pub claimed_by: Option<String>,
    /// Until when that claim holds; after it, another instance may claim the row.
    pub lease_until: Option<DateTime<Utc>>,
}

/// An API key to store (the secret itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiKey {
    /// Short public prefix used for lookup (unique).
    pub prefix: String,
    /// Hash of the full key.
    pub key_hash: String,
    /// The org the key is scoped to.
    pub org_id: String,
    /// The workspace the key is scoped to, or all of the org's.
    pub workspace_id: Option<String>,
    /// `read`, `write` or `admin`.
    pub role: String,
    /// Optional human name (`--name`).
    pub name: Option<String>,
    /// When the key stops authenticating, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A stored API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Row id.
    pub id: Uuid,
    /// Public prefix.
    pub prefix: String,
    /// Hash of the full key.
    pub key_hash: String,
    /// Org scope.
    pub org_id: String,
    /// Workspace scope.
    pub workspace_id: Option<String>,
    /// Role.
    pub role: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Revocation time; a revoked key authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Last successful use (best effort).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Optional human name.
    pub name: Option<String>,
    /// When the key stops authenticating, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

impl ApiKeyRecord {
    /// The [`crate::Scope`] this key grants.
    pub fn scope(&self) -> crate::Scope {
        crate::Scope::tenant(self.org_id.clone(), self.workspace_id.clone())
    }

    /// Whether the key has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}
