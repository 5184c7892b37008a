//! Model provider clients for Prompter: one object-safe trait
//! ([`ModelProvider`]) with *complete* and *probe*, a deterministic
//! [stub] with fault knobs, and real OpenAI, Azure OpenAI, Anthropic
//! and Gemini clients over `reqwest` (rustls).
//!
//! The crate does **not** compute the provider version key: it returns the
//! raw response (plus the parsed `response_model` / `system_fingerprint`),
//! and the service applies the domain's rule (contract §2) to it —
//! [`Completion::version_metadata`] / [`ProbeOutcome::version_metadata`]
//! give the object that rule expects for both the stub and real providers.
//!
//! ```
//! use prompter_providers::{CompletionRequest, ProbeRequest, ProviderRegistry, StubConfig};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let (registry, stub) = ProviderRegistry::stub(StubConfig::default());
//! let google = registry.get("google").expect("the stub serves every name");
//! let probe = google.probe(&ProbeRequest { model_id: "gemini-2.5-flash".into() }).await?;
//! assert_eq!(probe.response_model.as_deref(), Some("gemini-2.5-flash-stub-001"));
//! let done = google.complete(&CompletionRequest::new("gemini-2.5-flash", "hello")).await?;
//! assert_eq!(done.content, "hello");
//! assert_eq!(stub.probe_count(), 1);
//! # Ok::<(), prompter_providers::ProviderError>(())
//! # }).unwrap();
//! ```
//!
//! # Providers
//!
//! | provider (name) | request shape | version key source | retry cases covered (tests) |
//! |---|---|---|---|
//! | OpenAI (`openai`) | `POST {base}/chat/completions`, `Authorization: Bearer`; `messages` = system + user; `max_tokens`, `temperature`, `top_p`, `stop`, `response_format`, `tools`/`tool_choice`, other params verbatim. Reasoning models (`o1*`/`o3*`/`o4*`/`gpt-5*`): `max_completion_tokens`, non-default `temperature`/`top_p` and `stop`/penalties dropped. Probe: `max_tokens: 1` (reasoning: `max_completion_tokens: 16`) | `model` (resolved snapshot, e.g. `gpt-4o-2024-08-06`); `system_fingerprint` kept separately (nullable) | 429 + `retry-after`/`retry-after-ms` retried then OK; 429 exhausted → `RateLimited{retry_after}`; 429 `insufficient_quota` not retried; 500 retried; 500 exhausted; `x-should-retry: false`; timeout; 401/400 never retried |
//! | Azure OpenAI (`azure-openai`) | `POST {endpoint}/openai/deployments/{model_id}/chat/completions?api-version=2024-10-21`, `api-key`; OpenAI body without `model`, same reasoning rules (by deployment name) | `model` (often unversioned, e.g. `gpt-4`), else `system_fingerprint` (usually absent), else `unknown` | 429 `retry-after-ms` honoured then OK; 429 exhausted; 429 hint above `max_backoff` not slept; 500 retried; timeout; 401/400 content filter/404 never retried |
//! | Anthropic (`anthropic`) | `POST {base}/v1/messages`, `x-api-key`, `anthropic-version: 2023-06-01`; top-level `system`; `max_tokens` required (default 1024); `stop_sequences`; tools as `input_schema`; `json_schema` → `output_config.format`. Probe: `max_tokens: 1` | `model` (the model id that served the call) | 429 `retry-after` retried then OK; 429 exhausted; 500 retried; 529 → `Overloaded` retried then OK; 529 exhausted; timeout; 401, 400 (even with `x-should-retry: true`) never retried |
//! | Gemini (`google`) | `POST {base}/v1beta/models/{model}:generateContent`, `x-goog-api-key`; `systemInstruction`, `contents`, `generationConfig` (`maxOutputTokens`, `temperature`, `topP`, `topK`, `stopSequences`, `responseMimeType`/`responseJsonSchema`), `tools[].functionDeclarations`, `toolConfig`. Probe: `maxOutputTokens: 1` | `modelVersion` (`responseId` kept as response id) | 429 `RetryInfo.retryDelay` honoured then OK; 429 exhausted; 429 `PerDay` quota not retried; 500 and 503 retried; timeout; 400 `API_KEY_INVALID` → `Auth`, 400 never retried |
//! | stub (all five names) | none (in-process) | see [`stub`]: `fp_stub_<hash8>`, `<model>-stub-001`, model id, Azure probe `fp_stub_azure_<hash8>`, `unknown`; `-TAG` appended with a build tag | failure knob: `Timeout`, `RateLimited{1s}`, `Upstream{503}` |
//!
//! # Retries and timeouts
//!
//! [`HttpConfig`] sets the connect timeout, the total per-attempt timeout
//! and the retry budget. All real clients share one loop
//! ([`retry`]): retried are 408, 409, 429, 5xx, 529, timeouts and
//! connection failures; never 401/403, other 4xx, a terminal 429 (quota
//! exhausted) or undecodable success bodies. The wait is the server hint
//! (`retry-after-ms`, `retry-after` seconds or HTTP-date, Gemini
//! `RetryInfo.retryDelay`) or exponential backoff with jitter; a hint longer
//! than `max_backoff` ends the call immediately with the hint in the error.
//! `x-should-retry: false` stops retries; `x-should-retry: true` allows
//! them except for auth and validation errors. See [`error`] for the status
//! → [`ProviderError`] table.
//!
//! # Secrets
//!
//! API keys are held in a type whose `Debug` prints `[REDACTED]`, sent in
//! headers marked sensitive, never put in URLs or logs, and scrubbed from
//! every error message (even if a provider echoes them back).

pub mod anthropic;
pub mod azure;
pub mod error;
pub mod gemini;
mod http;
pub mod openai;
pub mod params;
pub mod registry;
pub mod retry;
pub mod stub;
mod types;

pub use anthropic::AnthropicClient;
pub use azure::AzureOpenAiClient;
pub use error::ProviderError;
pub use gemini::GeminiClient;
pub use openai::OpenAiClient;
pub use params::is_openai_reasoning_model;
pub use registry::{live_provider, LiveProvider, ProviderRegistry, LIVE_PROVIDERS};
pub use retry::HttpConfig;
pub use stub::{hash8, StubConfig, StubFailure, StubProvider};
pub use types::{
    version_metadata, Completion, CompletionRequest, ModelProvider, ProbeOutcome, ProbeRequest,
    Usage, PROVIDER_NAMES,
};
