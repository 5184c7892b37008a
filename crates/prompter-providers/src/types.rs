//! The provider trait and its request/response types.

use serde_json::{Map, Value};

use crate::error::ProviderError;

/// Canonical provider names served by this crate.
pub const PROVIDER_NAMES: [&str; 5] = ["openai", "azure-openai", "anthropic", "google", "unknown"];

/// A client that can run a completion and probe which model build it serves.
///
/// Provider names: `"openai"`, `"azure-openai"`, `"anthropic"`, `"google"`,
/// `"unknown"`. Object safe: use it as `Arc<dyn ModelProvider>`.
#[async_trait::async_trait]
pub trait ModelProvider: Send + Sync + std::fmt::Debug {
    /// Provider name this client serves (e.g. `"openai"`).
    fn name(&self) -> &str;

    /// Sends the rendered prompt with the template's system instructions,
    /// inference params, tools and response format.
    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError>;

    /// Cheapest real call that reveals the served build (a 1-token completion).
    async fn probe(&self, req: &ProbeRequest) -> Result<ProbeOutcome, ProviderError>;
}

/// One completion call.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    /// Model id (Azure: the deployment name).
    pub model_id: String,
    /// System prompt; empty means none is sent.
    pub system_instructions: String,
    /// The rendered user prompt.
    pub user_prompt: String,
    /// Any JSON; object keys like `temperature`, `top_p`, `max_tokens`,
    /// `stop`, … (see [`crate::params`]). A non-object is treated as `{}`.
    pub inference_params: Value,
    /// A list of tools, or `[]`.
    pub tools: Value,
    /// An object such as `{"type":"json_object"}`, or `{}`.
    pub response_format: Value,
}

impl CompletionRequest {
    /// A request with no system prompt, params, tools or response format.
    pub fn new(model_id: impl Into<String>, user_prompt: impl Into<String>) -> Self {
        Self {
            model_id: model_id.into(),
            system_instructions: String::new(),
            user_prompt: user_prompt.into(),
            inference_params: Value::Object(Map::new()),
            tools: Value::Array(Vec::new()),
            response_format: Value::Object(Map::new()),
        }
    }
}

/// The result of [`ModelProvider::complete`].
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The text answer (concatenated text parts; `""` when the model only
    /// called tools or the prompt was blocked — see `raw_response`).
    pub content: String,
    /// Token usage, when the provider reported it.
    pub usage: Option<Usage>,
    /// The provider's response body, verbatim (stub: see [`crate::stub`]).
    pub raw_response: Value,
    /// OpenAI/Azure/Anthropic `model`, Gemini `modelVersion`.
    pub response_model: Option<String>,
    /// OpenAI/Azure/Anthropic `id`, Gemini `responseId`.
    pub response_id: Option<String>,
    /// OpenAI/Azure `system_fingerprint` when present and non-null.
    pub system_fingerprint: Option<String>,
}

impl Completion {
    /// The metadata object the contract's version-key rule reads: see
    /// [`version_metadata`].
    pub fn version_metadata(&self) -> Value {
        version_metadata(
            &self.raw_response,
            self.response_model.as_deref(),
            self.system_fingerprint.as_deref(),
        )
    }
}

/// Token usage as the provider reported it.
///
/// `input_tokens` is every prompt token, including the ones read from or
/// written to a prompt cache (Anthropic reports those apart: they are added
/// here); `cached_input_tokens` and `cache_write_input_tokens` are the parts
/// of it billed at the cache read and cache write prices. `None` means the
/// provider did not report that detail (never a guessed zero). Reasoning and
/// thinking tokens count as output (all four providers bill them so).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// All prompt tokens (uncached + cache reads + cache writes).
    pub input_tokens: u64,
    /// Output tokens, reasoning/thinking included.
    pub output_tokens: u64,
    /// Prompt tokens served from the provider's cache.
    pub cached_input_tokens: Option<u64>,
    /// Prompt tokens written to the provider's cache (Anthropic).
    pub cache_write_input_tokens: Option<u64>,
}

impl Usage {
    /// Input and output only (no cache details reported).
    pub fn plain(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
            cached_input_tokens: None,
            cache_write_input_tokens: None,
        }
    }
}

/// One probe call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRequest {
    /// Model id (Azure: the deployment name).
    pub model_id: String,
}

/// The result of [`ModelProvider::probe`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutcome {
    /// The provider's response body, verbatim (stub: `{"response_metadata": …}`).
    pub raw_response: Value,
    /// OpenAI/Azure/Anthropic `model`, Gemini `modelVersion`.
    pub response_model: Option<String>,
    /// OpenAI/Azure `system_fingerprint` when present and non-null.
    pub system_fingerprint: Option<String>,
}

impl ProbeOutcome {
    /// The metadata object the contract's version-key rule reads: see
    /// [`version_metadata`].
    pub fn version_metadata(&self) -> Value {
        version_metadata(
            &self.raw_response,
            self.response_model.as_deref(),
            self.system_fingerprint.as_deref(),
        )
    }
}

/// The object the contract §2 version-key rule should be applied to.
///
/// `raw["response_metadata"]` if it is an object (the stub), else
/// `raw["metadata"]` if it is an object, else an object built from the
/// parsed fields: `{"model": response_model, "system_fingerprint": fp}`
/// (absent ones omitted). For real providers this yields OpenAI's resolved
/// snapshot, Azure's (unversioned) model, Anthropic's model id and Gemini's
/// `modelVersion` under `model`, so "first of modelVersion, model,
/// model_name, system_fingerprint" picks the right key. An empty object
/// means "no metadata" (Azure stub completions): the key is then `unknown`
/// and must come from a probe.
pub fn version_metadata(
    raw: &Value,
    response_model: Option<&str>,
    system_fingerprint: Option<&str>,
) -> Value {
    for key in ["response_metadata", "metadata"] {
        if let Some(m) = raw.get(key).filter(|m| m.is_object()) {
            return m.clone();
        }
    }
    let mut m = Map::new();
    if let Some(model) = response_model {
        m.insert("model".into(), Value::String(model.to_string()));
    }
    if let Some(fp) = system_fingerprint {
        m.insert("system_fingerprint".into(), Value::String(fp.to_string()));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn version_metadata_prefers_response_metadata() {
        let raw = json!({"content": "x", "response_metadata": {"modelVersion": "m-stub-001"}});
        assert_eq!(
            version_metadata(&raw, Some("ignored"), None),
            json!({"modelVersion": "m-stub-001"})
        );
        let raw = json!({"model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_1"});
        assert_eq!(
            version_metadata(&raw, Some("gpt-4o-2024-08-06"), Some("fp_1")),
            json!({"model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_1"})
        );
        assert_eq!(
            version_metadata(&json!({"content": "x"}), None, None),
            json!({})
        );
    }
}
