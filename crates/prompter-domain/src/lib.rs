//! Pure Prompter rules: no I/O beyond [`batch`]'s reader/writer, no async,
//! no ORM, no HTTP.
//!
//! - [`json`]: a strict JSON parser whose [`Json`] value keeps number
//!   spelling (`10**30` stays an exact integer, `1.0` stays a float), with
//!   the [`Limits`] that protect the service.
//! - [`TemplateRequest`] / [`TemplateConfig`]: the typed V7 create-template
//!   body.
//! - [`canonicalize`]: the canonical config JSON, byte-for-byte what V7
//!   produced (contract §1), and [`ConfigHash`] over it with
//!   [`HashAlgorithm::Blake3`] (default) or [`HashAlgorithm::Sha256`] (V7's
//!   stored hashes).
//! - [`validate()`]: [`ValidationMode::V7`] (accept what V7 accepted) or
//!   [`ValidationMode::Strict`] (ISO 3166-1 countries, non-empty prompt and
//!   model).
//! - [`provider`]: [`infer_provider`], [`resolve_provider`] and the
//!   provider-version-key rules (contract §2).
//! - [`render`]: `{{ name }}` placeholders: [`render::variables`] and
//!   [`render::render`], exactly as the server renders prompts.
//! - [`batch::hash_lines`]: JSON Lines in, canonical JSON and both hashes out
//!   (`prompter hash`).
//! - [`DomainError`]: every rejection, with a stable `code()` and `field()`.
//!
//! Identity is one canonical byte string per config; the hash is a pure
//! function of those bytes.
//!
//! ```
//! use prompter_domain::{validate, ConfigHash, HashAlgorithm, Limits, TemplateRequest, ValidationMode};
//!
//! let body = br#"{"workspace_id":"w","name":"n","user_prompt_template":"Hi  {{brand}}\r\n",
//!   "model_id":"gpt-4o","country_set":["uk","de"],"inference_params":{"temperature":0.70001}}"#;
//! let req = TemplateRequest::parse(body, &Limits::default())?;
//! assert!(req.missing_required().is_empty());
//! validate(&req, ValidationMode::V7)?;
//!
//! let canonical = req.canonicalize();
//! assert_eq!(
//!     canonical.as_str(),
//!     r#"{"system_instructions":"","user_prompt_template":"Hi {{brand}}","country_set":["DE","GB"],"model_id":"gpt-4o","inference_params":{"temperature":0.7},"tools_spec":[],"response_format":{},"grounding_profile_id":null,"grounding_snapshot_id":null,"retrieval_params":{},"preprocess_pipeline_id":null,"postprocess_pipeline_id":null}"#
//! );
//! let v7_hash = ConfigHash::compute(HashAlgorithm::Sha256, &canonical);
//! assert_eq!(v7_hash.as_str(), "17330698efee5fa5ba6748539b2dcc2b73a60e4655a8ea8e7a98f85792ee559d");
//!
//! let err = TemplateRequest::parse(br#"{"country_set":["US", 1]}"#, &Limits::default()).unwrap_err();
//! assert_eq!((err.code(), err.field()), ("invalid_type", Some("country_set.1")));
//! # Ok::<(), prompter_domain::DomainError>(())
//! ```

#![warn(missing_docs)]

pub mod batch;
pub mod canonical;
pub mod error;
pub mod hash;
pub mod iso3166;
pub mod json;
pub mod provider;
pub mod render;
pub mod request;
pub mod validate;

pub use batch::{hash_lines, HashStats};
pub use canonical::{canonicalize, CanonicalConfig};
pub use error::DomainError;
pub use hash::{ConfigHash, HashAlgorithm};
pub use json::{parse, Json, Limits};
pub use provider::{
    hash8, infer_provider, resolve_provider, version_key_from_response, Provider, VersionKey,
    UNKNOWN_VERSION_KEY,
};
pub use request::{TemplateConfig, TemplateRequest};
pub use validate::{validate, ValidationMode};
