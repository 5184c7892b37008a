//! Re-deriving the hashed canonical bytes from a canonical config as V7
//! stored it (contract §3a), for adopting V7 databases.
//!
//! V7's SQLite path stored the canonical dict re-serialised with Python's
//! default separators (`", "`, `": "`, `\u` escapes); its PostgreSQL path
//! stored it as JSONB (keys reordered, numbers respelled). Both still hold
//! the canonical values, so: parse, put the top-level keys back in the
//! canonical field order, sort nested object keys (they were sorted when
//! V7 hashed them), and write compactly. A JSONB-respelled number (a float
//! `1e16` read back as the integer `10000000000000000`) cannot be recovered:
//! the result then hashes differently from V7's stored `config_hash`, which
//! the caller reports.

use super::CanonicalConfig;
use crate::error::DomainError;
use crate::json::{parse, Json, Limits};

/// The canonical config's top-level keys, in V7's order (contract §1).
pub const CANONICAL_FIELDS: [&str; 12] = [
    "system_instructions",
    "user_prompt_template",
    "country_set",
    "model_id",
    "inference_params",
    "tools_spec",
    "response_format",
    "grounding_profile_id",
    "grounding_snapshot_id",
    "retrieval_params",
    "preprocess_pipeline_id",
    "postprocess_pipeline_id",
];

/// The compact canonical bytes of a canonical config stored by V7 in any
/// spelling (see the module docs). Unknown top-level keys keep their place
/// after the known ones. Fails when the text is not a JSON object (or holds
/// `NaN`/`Infinity`, which V7 could write).
pub fn rederive_stored(stored: &str) -> Result<CanonicalConfig, DomainError> {
    let limits = Limits {
        max_depth: 1024,
        max_string_bytes: usize::MAX,
        max_list_len: usize::MAX,
    };
    let Json::Object(members) = parse(stored.as_bytes(), &limits)? else {
        return Err(DomainError::InvalidJson {
            offset: 0,
            reason: "the stored canonical config is not a JSON object",
            field: None,
        });
    };
    let rank = |k: &str| {
        CANONICAL_FIELDS
            .iter()
            .position(|f| *f == k)
            .unwrap_or(CANONICAL_FIELDS.len())
    };
    let mut members: Vec<(String, Json)> = members
        .into_iter()
        .map(|(k, v)| (k, sort_nested(v)))
        .collect();
    // Stable: unknown keys keep their relative order.
    members.sort_by_key(|(k, _)| rank(k));
    Ok(CanonicalConfig(Json::Object(members).to_string()))
}

/// `v` with the keys of every object sorted by code point, at every depth.
fn sort_nested(v: Json) -> Json {
    match v {
        Json::Array(items) => Json::Array(items.into_iter().map(sort_nested).collect()),
        Json::Object(members) => {
            let mut members: Vec<(String, Json)> = members
                .into_iter()
                .map(|(k, v)| (k, sort_nested(v)))
                .collect();
            members.sort_by(|a, b| a.0.cmp(&b.0));
            Json::Object(members)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{canonicalize, ConfigHash, HashAlgorithm, Limits, TemplateRequest};

    const BODY: &str = r#"{"workspace_id":"w","name":"n","user_prompt_template":"Grüße {{brand}}","model_id":"gpt-4o","country_set":["uk","de"],"inference_params":{"temperature":0.7,"max_tokens":128,"big":100000000000000000000000},"tools_spec":[{"b":1.5,"a":{"z":1,"y":2}}]}"#;

    #[test]
    fn python_default_spelling_rederives_the_hashed_bytes() {
        let req = TemplateRequest::parse(BODY.as_bytes(), &Limits::default()).unwrap();
        let canonical = canonicalize(&req.config);
        // What V7's SQLite path stored: default separators, ASCII escapes.
        let stored = r#"{"system_instructions": "", "user_prompt_template": "Gr\u00fc\u00dfe {{brand}}", "country_set": ["DE", "GB"], "model_id": "gpt-4o", "inference_params": {"big": 100000000000000000000000, "max_tokens": 128, "temperature": 0.7}, "tools_spec": [{"a": {"y": 2, "z": 1}, "b": 1.5}], "response_format": {}, "grounding_profile_id": null, "grounding_snapshot_id": null, "retrieval_params": {}, "preprocess_pipeline_id": null, "postprocess_pipeline_id": null}"#;
        let again = rederive_stored(stored).unwrap();
        assert_eq!(again, canonical);
        assert_eq!(
            ConfigHash::compute(HashAlgorithm::Sha256, &again),
            ConfigHash::compute(HashAlgorithm::Sha256, &canonical)
        );
    }

    #[test]
    fn jsonb_key_order_is_restored_and_respelled_floats_are_not() {
        // JSONB orders keys by length, then bytes.
        let jsonb = r#"{"model_id": "m", "country_set": [], "tools_spec": [], "response_format": {}, "inference_params": {"x": 10000000000000000, "temperature": 0.5}, "retrieval_params": {}, "system_instructions": "", "grounding_profile_id": null, "user_prompt_template": "p", "grounding_snapshot_id": null, "preprocess_pipeline_id": null, "postprocess_pipeline_id": null}"#;
        let got = rederive_stored(jsonb).unwrap();
        assert_eq!(
            got.as_str(),
            r#"{"system_instructions":"","user_prompt_template":"p","country_set":[],"model_id":"m","inference_params":{"temperature":0.5,"x":10000000000000000},"tools_spec":[],"response_format":{},"grounding_profile_id":null,"grounding_snapshot_id":null,"retrieval_params":{},"preprocess_pipeline_id":null,"postprocess_pipeline_id":null}"#
        );
    }

    #[test]
    fn non_objects_and_infinity_are_errors() {
        assert!(rederive_stored("[1]").is_err());
        assert!(rederive_stored(r#"{"inference_params": {"t": Infinity}}"#).is_err());
    }
}
