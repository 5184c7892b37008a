//! Azure OpenAI chat completions on the classic deployment route:
//! `POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…`
//! with an `api-key` header. The deployment name is the request's `model_id`;
//! the body is OpenAI's, without `model` (the deployment selects it).
//!
//! Version key: Azure's `model` is the underlying model name, often
//! unversioned (`gpt-4`, `gpt-35-turbo`) and never the deployment name, and
//! `system_fingerprint` is usually `null`/absent. Both are returned as parsed
//! (`response_model`, `system_fingerprint`); with the contract's precedence
//! the key is therefore that `model` value (falling back to the fingerprint,
//! then `unknown`). Reasoning-model param rules are applied when the
//! deployment name looks like a reasoning model (`o3-mini`, `gpt-5…`).

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::error::ProviderError;
use crate::http::{encode_path_segment, join_url, ApiKey, PostJson, Transport};
use crate::openai::{
    chat_body, non_empty_or, parse_chat_completion, parse_chat_probe, parse_openai_error,
    probe_body,
};
use crate::retry::HttpConfig;
use crate::types::{Completion, CompletionRequest, ModelProvider, ProbeOutcome, ProbeRequest};

/// Client for Azure OpenAI chat completions (classic dated `api-version`s).
#[derive(Debug, Clone)]
pub struct AzureOpenAiClient {
    transport: Transport,
    endpoint: String,
    api_version: String,
}

impl AzureOpenAiClient {
    /// GA `api-version` used unless [`Self::with_api_version`] says otherwise.
    pub const DEFAULT_API_VERSION: &'static str = "2024-10-21";

    /// `endpoint` is the resource URL, e.g. `https://my-res.openai.azure.com`.
    ///
    /// # Panics
    /// If the TLS backend cannot be initialised (as `reqwest::Client::new`).
    pub fn new(api_key: impl Into<String>, endpoint: impl Into<String>, http: HttpConfig) -> Self {
        let transport = Transport::new(
            "azure-openai",
            ApiKey::new(api_key),
            http,
            parse_openai_error,
        )
        .expect("failed to initialise the HTTP client (TLS backend)");
        Self {
            transport,
            endpoint: endpoint.into().trim().to_string(),
            api_version: Self::DEFAULT_API_VERSION.to_string(),
        }
    }

    /// Uses another `api-version` (an empty string keeps the default).
    pub fn with_api_version(mut self, api_version: impl Into<String>) -> Self {
        self.api_version = non_empty_or(api_version.into(), Self::DEFAULT_API_VERSION);
        self
    }

    /// The `api-version` this client sends.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    async fn post(&self, deployment: &str, body: &Value) -> Result<Value, ProviderError> {
        if self.endpoint.is_empty() {
            return Err(ProviderError::NotConfigured {
                provider: "azure-openai".into(),
            });
        }
        if deployment.trim().is_empty() {
            return Err(ProviderError::BadRequest {
                message: "Azure OpenAI needs a deployment name (model_id is empty)".into(),
            });
        }
        let mut headers = HeaderMap::new();
        let (name, value) = self.transport.auth_header("api-key", "")?;
        headers.insert(name, value);
        let url = join_url(
            &self.endpoint,
            &format!(
                "openai/deployments/{}/chat/completions",
                encode_path_segment(deployment.trim())
            ),
        );
        self.transport
            .post_json(PostJson {
                url: &url,
                query: &[("api-version", &self.api_version)],
                headers,
                body,
            })
            .await
    }
}

#[async_trait::async_trait]
impl ModelProvider for AzureOpenAiClient {
    fn name(&self) -> &str {
        "azure-openai"
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        let body = chat_body(req, false);
        let raw = self.post(&req.model_id, &body).await?;
        parse_chat_completion(raw)
    }

    async fn probe(&self, req: &ProbeRequest) -> Result<ProbeOutcome, ProviderError> {
        let raw = self
            .post(&req.model_id, &probe_body(&req.model_id, false))
            .await?;
        Ok(parse_chat_probe(raw))
    }
}
