//! Provider inference and the provider-version-key rules (contract §2).

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The key used when a response says nothing about the build that served it.
pub const UNKNOWN_VERSION_KEY: &str = "unknown";

/// A model provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Provider {
    /// OpenAI.
    #[serde(rename = "openai")]
    OpenAi,
    /// Azure OpenAI.
    #[serde(rename = "azure-openai")]
    AzureOpenAi,
    /// Anthropic.
    #[serde(rename = "anthropic")]
    Anthropic,
    /// Google (Gemini).
    #[serde(rename = "google")]
    Google,
    /// Anything else.
    #[serde(rename = "unknown")]
    Unknown,
}

impl Provider {
    /// The stored name: `openai`, `azure-openai`, `anthropic`, `google`,
    /// `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::AzureOpenAi => "azure-openai",
            Self::Anthropic => "anthropic",
            Self::Google => "google",
            Self::Unknown => "unknown",
        }
    }

    /// Reads a provider name, ASCII case-insensitively and ignoring
    /// surrounding whitespace: `openai`; `azure`, `azure_openai`,
    /// `azure-openai`; `anthropic`; `google`, `gemini`. Anything else is
    /// [`Provider::Unknown`].
    pub fn parse(name: &str) -> Provider {
        let name = name.trim().to_ascii_lowercase();
        match name.as_str() {
            "openai" => Self::OpenAi,
            "azure" | "azure_openai" | "azure-openai" => Self::AzureOpenAi,
            "anthropic" => Self::Anthropic,
            "google" | "gemini" => Self::Google,
            _ => Self::Unknown,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Infers the provider from a model id (contract §2), case-insensitively
/// (full Unicode lowercase, as Python's `str.lower()`), checks in this order:
/// starts with `gpt`, `o3`, `o4` or `omni`, or contains `turbo` or
/// `chatgpt` → OpenAI; contains `gemini` or `google` → Google; contains
/// `claude` or `anthropic` → Anthropic; contains `azure` → Azure OpenAI;
/// else unknown.
pub fn infer_provider(model_id: &str) -> Provider {
    let m = model_id.to_lowercase();
    if ["gpt", "o3", "o4", "omni"].iter().any(|p| m.starts_with(p))
        || m.contains("turbo")
        || m.contains("chatgpt")
    {
        Provider::OpenAi
    } else if m.contains("gemini") || m.contains("google") {
        Provider::Google
    } else if m.contains("claude") || m.contains("anthropic") {
        Provider::Anthropic
    } else if m.contains("azure") {
        Provider::AzureOpenAi
    } else {
        Provider::Unknown
    }
}

/// The template's explicit provider when it is non-empty (V7:
/// `req.provider or infer_provider(model_id)`), read with
/// [`Provider::parse`]; otherwise [`infer_provider`]`(model_id)`.
pub fn resolve_provider(explicit: Option<&str>, model_id: &str) -> Provider {
    match explicit {
        Some(p) if !p.is_empty() => Provider::parse(p),
        _ => infer_provider(model_id),
    }
}

/// The provider version key of a response, and its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionKey {
    /// The key a version row is identified by.
    pub key: String,
    /// `system_fingerprint`, when the response carried a non-empty one.
    pub system_fingerprint: Option<String>,
}

/// Derives the provider version key from a completion or probe response.
///
/// The metadata object is `response["response_metadata"]` if that is an
/// object, else `response["metadata"]` if that is an object, else the
/// response itself (so raw provider bodies work directly: OpenAI's resolved
/// `model` snapshot, Gemini's `modelVersion`).
///
/// - Anthropic: the model id — the metadata's `model` when it is a non-empty
///   string (the id the API answered with), else the `model_id` argument,
///   else [`UNKNOWN_VERSION_KEY`] if that is empty too.
/// - Others: the first non-empty string among `modelVersion`, `model`,
///   `model_name`, `system_fingerprint`, else [`UNKNOWN_VERSION_KEY`].
///
/// `system_fingerprint` is returned separately when it is a non-empty string.
pub fn version_key_from_response(
    provider: Provider,
    model_id: &str,
    response: &serde_json::Value,
) -> VersionKey {
    let meta = ["response_metadata", "metadata"]
        .iter()
        .find_map(|k| response.get(k).filter(|v| v.is_object()))
        .unwrap_or(response);
    let text = |key: &str| {
        meta.get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let key = if provider == Provider::Anthropic {
        text("model")
            .or(Some(model_id).filter(|m| !m.is_empty()))
            .unwrap_or(UNKNOWN_VERSION_KEY)
    } else {
        ["modelVersion", "model", "model_name", "system_fingerprint"]
            .iter()
            .find_map(|k| text(k))
            .unwrap_or(UNKNOWN_VERSION_KEY)
    };
    VersionKey {
        key: key.to_owned(),
        system_fingerprint: text("system_fingerprint").map(str::to_owned),
    }
}

/// First 8 hex digits of SHA-256 of `s` (the dev stub's fingerprints:
/// `fp_stub_` + `hash8("openai:<model>")`).
pub fn hash8(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    hex::encode(&digest[..4])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        for p in [
            Provider::OpenAi,
            Provider::AzureOpenAi,
            Provider::Anthropic,
            Provider::Google,
            Provider::Unknown,
        ] {
            assert_eq!(Provider::parse(p.as_str()), p);
            assert_eq!(p.to_string(), p.as_str());
            assert_eq!(serde_json::to_value(p).unwrap(), json!(p.as_str()));
        }
        assert_eq!(Provider::parse("Azure"), Provider::AzureOpenAi);
        assert_eq!(Provider::parse("AZURE_OPENAI"), Provider::AzureOpenAi);
        assert_eq!(Provider::parse(" Gemini "), Provider::Google);
        assert_eq!(Provider::parse("OpenAI"), Provider::OpenAi);
        assert_eq!(Provider::parse("mistral"), Provider::Unknown);
        assert_eq!(Provider::parse(""), Provider::Unknown);
    }

    #[test]
    fn inference_order() {
        let cases = [
            ("gpt-4o", Provider::OpenAi),
            ("GPT-4o-mini", Provider::OpenAi),
            ("o3-mini", Provider::OpenAi),
            ("o4-mini", Provider::OpenAi),
            ("omni-moderation", Provider::OpenAi),
            ("gpt-3.5-turbo", Provider::OpenAi),
            ("my-turbo-model", Provider::OpenAi),
            ("chatgpt-4o-latest", Provider::OpenAi),
            ("o1-preview", Provider::Unknown),
            ("gemini-2.0-flash", Provider::Google),
            ("models/Gemini-1.5-pro", Provider::Google),
            ("google/gemma", Provider::Google),
            ("claude-3-5-sonnet", Provider::Anthropic),
            ("anthropic.claude-v2", Provider::Anthropic),
            ("azure-gpt4-deploy", Provider::AzureOpenAi),
            ("my-azure-deployment", Provider::AzureOpenAi),
            // Earlier checks win.
            ("gpt-claude", Provider::OpenAi),
            ("claude-turbo", Provider::OpenAi),
            ("azure-gemini", Provider::Google),
            ("azure-claude", Provider::Anthropic),
            ("xgpt-4", Provider::Unknown),
            ("llama-3", Provider::Unknown),
            ("", Provider::Unknown),
            // Python lower(): 'İ' → 'i̇', so "OMNİ" starts with "omni".
            ("OMNİ", Provider::OpenAi),
        ];
        for (model, want) in cases {
            assert_eq!(infer_provider(model), want, "{model}");
        }
    }

    #[test]
    fn resolve() {
        assert_eq!(
            resolve_provider(Some("anthropic"), "gpt-4o"),
            Provider::Anthropic
        );
        assert_eq!(resolve_provider(Some(""), "gpt-4o"), Provider::OpenAi);
        assert_eq!(resolve_provider(None, "claude-3"), Provider::Anthropic);
        assert_eq!(resolve_provider(Some("foo"), "gpt-4o"), Provider::Unknown);
    }

    #[test]
    fn version_keys() {
        let k = |p, m, v| version_key_from_response(p, m, &v);
        // Real OpenAI body: resolved model snapshot, fingerprint kept.
        let v = k(
            Provider::OpenAi,
            "gpt-4o",
            json!({"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_7c1a9e04b2"}),
        );
        assert_eq!(v.key, "gpt-4o-2024-08-06");
        assert_eq!(v.system_fingerprint.as_deref(), Some("fp_7c1a9e04b2"));
        // OpenAI with null fingerprint.
        let v = k(
            Provider::OpenAi,
            "gpt-4o",
            json!({"model":"gpt-4o-2024-08-06","system_fingerprint":null}),
        );
        assert_eq!(v.system_fingerprint, None);
        // Stub metadata: only a fingerprint.
        let fp = format!("fp_stub_{}", hash8("openai:gpt-4o"));
        let v = k(
            Provider::OpenAi,
            "gpt-4o",
            json!({"response_metadata":{"system_fingerprint":fp}}),
        );
        assert_eq!(v.key, fp);
        assert_eq!(v.system_fingerprint.as_deref(), Some(fp.as_str()));
        // Gemini: modelVersion beats model.
        let v = k(
            Provider::Google,
            "gemini-2.0-flash",
            json!({"modelVersion":"gemini-2.0-flash-001","model":"x","responseId":"r"}),
        );
        assert_eq!(v.key, "gemini-2.0-flash-001");
        let v = k(
            Provider::Google,
            "g",
            json!({"metadata":{"model_name":"mn","system_fingerprint":"fp"}}),
        );
        assert_eq!(v.key, "mn");
        // response_metadata beats metadata; non-object ones are skipped.
        let v = k(
            Provider::OpenAi,
            "m",
            json!({"response_metadata":{"model":"a"},"metadata":{"model":"b"}}),
        );
        assert_eq!(v.key, "a");
        let v = k(
            Provider::OpenAi,
            "m",
            json!({"response_metadata":"x","metadata":{"model":"b"},"model":"c"}),
        );
        assert_eq!(v.key, "b");
        // Empty or non-string values are skipped.
        let v = k(
            Provider::OpenAi,
            "m",
            json!({"modelVersion":"","model":5,"model_name":"n"}),
        );
        assert_eq!(v.key, "n");
        // Azure stub: no metadata at all.
        let v = k(Provider::AzureOpenAi, "gpt-4o", json!({"content":"hi"}));
        assert_eq!(v.key, UNKNOWN_VERSION_KEY);
        assert_eq!(k(Provider::Unknown, "m", json!(null)).key, "unknown");
        // Anthropic: the model id.
        let v = k(
            Provider::Anthropic,
            "claude-3-5-sonnet",
            json!({"model":"claude-3-5-sonnet-20241022","id":"msg_1"}),
        );
        assert_eq!(v.key, "claude-3-5-sonnet-20241022");
        let v = k(
            Provider::Anthropic,
            "claude-3",
            json!({"modelVersion":"x","system_fingerprint":"fp"}),
        );
        assert_eq!(v.key, "claude-3");
        assert_eq!(v.system_fingerprint.as_deref(), Some("fp"));
        assert_eq!(k(Provider::Anthropic, "", json!({})).key, "unknown");
    }

    #[test]
    fn hash8_is_sha256_prefix() {
        // python3: hashlib.sha256(b"").hexdigest()[:8]
        assert_eq!(hash8(""), "e3b0c442");
        assert_eq!(hash8("openai:gpt-4o").len(), 8);
    }
}
