//! Typed input: the V7 create-template body.

use crate::canonical::{canonicalize, CanonicalConfig};
use crate::error::DomainError;
use crate::json::{parse, Json, Limits};

/// A create-template request body as V7 took it (also the body of
/// check-duplicate and each line of `prompter hash`).
///
/// Missing fields are not an error at this layer: see
/// [`missing_required`](Self::missing_required). Unknown keys are ignored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TemplateRequest {
    /// Caller-owned org id (optional in V7's body).
    pub org_id: Option<String>,
    /// Caller-owned workspace (brand) id; required by V7.
    pub workspace_id: Option<String>,
    /// Template name; required by V7. Not part of the hash.
    pub name: Option<String>,
    /// Explicit provider; wins over inference from `model_id`.
    pub provider: Option<String>,
    /// Free-form author id.
    pub created_by: Option<String>,
    /// The generation config: the only part that reaches the hash.
    pub config: TemplateConfig,
}

/// The generation config of a template: everything that identifies it.
/// Absent JSON values are [`Json::Null`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TemplateConfig {
    /// System prompt (text rule applies in the canonical form).
    pub system_instructions: Option<String>,
    /// User prompt with `{{placeholders}}`; required by V7.
    pub user_prompt_template: Option<String>,
    /// Country codes as given (normalised only in the canonical form).
    pub country_set: Vec<String>,
    /// Model id, e.g. `gpt-4o`; required by V7.
    pub model_id: Option<String>,
    /// Any JSON; floats rounded to 4 decimals in the canonical form.
    pub inference_params: Json,
    /// A list of tool definitions (or a falsy value).
    pub tools_spec: Json,
    /// Any JSON.
    pub response_format: Json,
    /// Opaque grounding profile id.
    pub grounding_profile_id: Option<String>,
    /// Opaque grounding snapshot id.
    pub grounding_snapshot_id: Option<String>,
    /// Any JSON.
    pub retrieval_params: Json,
}

impl TemplateConfig {
    /// Shorthand for [`canonicalize`]`(self)`.
    pub fn canonicalize(&self) -> CanonicalConfig {
        canonicalize(self)
    }
}

/// Fields V7's pydantic model required (`model_id: str`,
/// `user_prompt_template: str`, ...), in body order.
const REQUIRED: [&str; 4] = ["workspace_id", "name", "user_prompt_template", "model_id"];

const STRING_OR_NULL: &str = "a string or null";

impl TemplateRequest {
    /// Parses a request body: [`json::parse`](crate::json::parse) with
    /// `limits`, then [`from_json`](Self::from_json).
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self, DomainError> {
        Self::try_from(parse(bytes, limits)?)
    }

    /// Reads the typed request from a parsed body.
    ///
    /// The body must be an object (`invalid_body`). String fields must be
    /// strings or null, `country_set` a list of strings or null, and
    /// `tools_spec` a list or a falsy value; anything else is
    /// `invalid_type` naming the field (`country_set.1`). Like V7's pydantic
    /// v2 model, nothing is coerced (an integer is not a string).
    /// `inference_params`, `response_format` and `retrieval_params` take any
    /// JSON. Unknown keys are ignored; nothing is required here.
    pub fn from_json(body: &Json) -> Result<Self, DomainError> {
        let Json::Object(members) = body else {
            return Err(DomainError::InvalidBody);
        };
        let mut req = Self::default();
        for (key, value) in members {
            if is_known(key) {
                req.assign(key, value.clone())?;
            }
        }
        Ok(req)
    }

    /// Like [`Self::from_json`], but reads every field: each field of the
    /// wrong type is left unset and reported, so a client sees all its
    /// mistakes at once (as FastAPI's validation did). The error list is
    /// empty when the body is fine; a body that is not an object is one error.
    pub fn from_json_all(body: &Json) -> (Self, Vec<DomainError>) {
        let Json::Object(members) = body else {
            return (Self::default(), vec![DomainError::InvalidBody]);
        };
        let mut req = Self::default();
        let mut errors = Vec::new();
        for (key, value) in members {
            if is_known(key) {
                if let Err(e) = req.assign(key, value.clone()) {
                    errors.push(e);
                }
            }
        }
        (req, errors)
    }

    /// The V7-required fields (`workspace_id`, `name`,
    /// `user_prompt_template`, `model_id`) that are absent or null, so the
    /// API can answer 422. The canonical form treats them as `""`.
    pub fn missing_required(&self) -> Vec<&'static str> {
        REQUIRED
            .into_iter()
            .filter(|field| match *field {
                "workspace_id" => self.workspace_id.is_none(),
                "name" => self.name.is_none(),
                "user_prompt_template" => self.config.user_prompt_template.is_none(),
                _ => self.config.model_id.is_none(),
            })
            .collect()
    }

    /// The canonical config of this request.
    pub fn canonicalize(&self) -> CanonicalConfig {
        canonicalize(&self.config)
    }

    fn assign(&mut self, key: &str, value: Json) -> Result<(), DomainError> {
        let c = &mut self.config;
        match key {
            "org_id" => self.org_id = opt_string(key, value)?,
            "workspace_id" => self.workspace_id = opt_string(key, value)?,
            "name" => self.name = opt_string(key, value)?,
            "provider" => self.provider = opt_string(key, value)?,
            "created_by" => self.created_by = opt_string(key, value)?,
            "system_instructions" => c.system_instructions = opt_string(key, value)?,
            "user_prompt_template" => c.user_prompt_template = opt_string(key, value)?,
            "model_id" => c.model_id = opt_string(key, value)?,
            "grounding_profile_id" => c.grounding_profile_id = opt_string(key, value)?,
            "grounding_snapshot_id" => c.grounding_snapshot_id = opt_string(key, value)?,
            "country_set" => c.country_set = string_list(key, value)?,
            "inference_params" => c.inference_params = value,
            "response_format" => c.response_format = value,
            "retrieval_params" => c.retrieval_params = value,
            "tools_spec" => {
                if value.is_truthy() && !matches!(value, Json::Array(_)) {
                    return Err(DomainError::InvalidType {
                        field: key.to_owned(),
                        expected: "a list or null",
                    });
                }
                c.tools_spec = value;
            }
            _ => {}
        }
        Ok(())
    }
}

impl TryFrom<Json> for TemplateRequest {
    type Error = DomainError;

    /// Like [`TemplateRequest::from_json`], moving the values instead of
    /// cloning them.
    fn try_from(body: Json) -> Result<Self, DomainError> {
        let Json::Object(members) = body else {
            return Err(DomainError::InvalidBody);
        };
        let mut req = Self::default();
        for (key, value) in members {
            req.assign(&key, value)?;
        }
        Ok(req)
    }
}

fn is_known(key: &str) -> bool {
    matches!(
        key,
        "org_id"
            | "workspace_id"
            | "name"
            | "provider"
            | "created_by"
            | "system_instructions"
            | "user_prompt_template"
            | "model_id"
            | "grounding_profile_id"
            | "grounding_snapshot_id"
            | "country_set"
            | "inference_params"
            | "response_format"
            | "retrieval_params"
            | "tools_spec"
    )
}

fn opt_string(key: &str, value: Json) -> Result<Option<String>, DomainError> {
    match value {
        Json::Null => Ok(None),
        Json::Str(s) => Ok(Some(s)),
        _ => Err(DomainError::InvalidType {
            field: key.to_owned(),
            expected: STRING_OR_NULL,
        }),
    }
}

fn string_list(key: &str, value: Json) -> Result<Vec<String>, DomainError> {
    match value {
        Json::Null => Ok(Vec::new()),
        Json::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Json::Str(s) => Ok(s),
                _ => Err(DomainError::InvalidType {
                    field: format!("{key}.{i}"),
                    expected: "a string",
                }),
            })
            .collect(),
        _ => Err(DomainError::InvalidType {
            field: key.to_owned(),
            expected: "a list of strings or null",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &str) -> Result<TemplateRequest, DomainError> {
        TemplateRequest::parse(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn reads_all_fields() {
        let r = req(r#"{"org_id":"o","workspace_id":"w","name":"n","provider":"openai","created_by":"me",
            "system_instructions":"s","user_prompt_template":"u","country_set":["us"],"model_id":"m",
            "inference_params":{"t":1},"tools_spec":[{}],"response_format":{"type":"text"},
            "grounding_profile_id":"gp","grounding_snapshot_id":"gs","retrieval_params":5,"extra":[1]}"#)
        .unwrap();
        assert_eq!(r.org_id.as_deref(), Some("o"));
        assert_eq!(r.workspace_id.as_deref(), Some("w"));
        assert_eq!(r.name.as_deref(), Some("n"));
        assert_eq!(r.provider.as_deref(), Some("openai"));
        assert_eq!(r.created_by.as_deref(), Some("me"));
        let c = &r.config;
        assert_eq!(c.system_instructions.as_deref(), Some("s"));
        assert_eq!(c.user_prompt_template.as_deref(), Some("u"));
        assert_eq!(c.country_set, vec!["us"]);
        assert_eq!(c.model_id.as_deref(), Some("m"));
        assert_eq!(c.inference_params.get("t"), Some(&Json::Int("1".into())));
        assert_eq!(c.tools_spec, Json::Array(vec![Json::Object(vec![])]));
        assert_eq!(c.grounding_profile_id.as_deref(), Some("gp"));
        assert_eq!(c.grounding_snapshot_id.as_deref(), Some("gs"));
        assert_eq!(c.retrieval_params, Json::Int("5".into()));
        assert!(r.missing_required().is_empty());
        let by_ref = TemplateRequest::from_json(
            &crate::json::parse(br#"{"model_id":"m","x":1}"#, &Limits::default()).unwrap(),
        )
        .unwrap();
        assert_eq!(by_ref.config.model_id.as_deref(), Some("m"));
    }

    #[test]
    fn missing_and_null_fields() {
        let r = req(r#"{"model_id":null,"country_set":null,"inference_params":null}"#).unwrap();
        assert_eq!(
            r.missing_required(),
            vec!["workspace_id", "name", "user_prompt_template", "model_id"]
        );
        assert!(r.config.country_set.is_empty());
        assert_eq!(r.config.inference_params, Json::Null);
        let r = req(r#"{"workspace_id":"w","name":"","user_prompt_template":"","model_id":""}"#)
            .unwrap();
        assert!(r.missing_required().is_empty());
    }

    #[test]
    fn from_json_all_reports_every_wrong_field() {
        let body = crate::json::parse(
            br#"{"name":1,"model_id":"m","country_set":["US",2],"tools_spec":"x","org_id":"o"}"#,
            &Limits::default(),
        )
        .unwrap();
        let (req, errors) = TemplateRequest::from_json_all(&body);
        let fields: Vec<&str> = errors.iter().filter_map(|e| e.field()).collect();
        assert_eq!(fields, vec!["name", "country_set.1", "tools_spec"]);
        assert_eq!(req.config.model_id.as_deref(), Some("m"));
        assert_eq!(req.org_id.as_deref(), Some("o"));
        assert_eq!(req.name, None);
        let (_, errors) = TemplateRequest::from_json_all(&Json::Array(vec![]));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code(), "invalid_body");
    }

    #[test]
    fn body_must_be_object() {
        for body in ["[]", "null", "1", "\"x\""] {
            let e = req(body).unwrap_err();
            assert_eq!(e.code(), "invalid_body");
            assert_eq!(e.field(), Some("body"));
        }
        assert_eq!(
            TemplateRequest::from_json(&Json::Array(vec![]))
                .unwrap_err()
                .code(),
            "invalid_body"
        );
    }

    #[test]
    fn wrong_types_rejected_without_coercion() {
        let cases = [
            (r#"{"model_id":1}"#, "model_id"),
            (r#"{"name":true}"#, "name"),
            (r#"{"org_id":{}}"#, "org_id"),
            (r#"{"user_prompt_template":["a"]}"#, "user_prompt_template"),
            (r#"{"grounding_profile_id":1.5}"#, "grounding_profile_id"),
            (r#"{"country_set":"US"}"#, "country_set"),
            (r#"{"country_set":{"a":"US"}}"#, "country_set"),
            (r#"{"country_set":["US",1]}"#, "country_set.1"),
            (r#"{"country_set":[null]}"#, "country_set.0"),
            (r#"{"tools_spec":{"a":1}}"#, "tools_spec"),
            (r#"{"tools_spec":"x"}"#, "tools_spec"),
        ];
        for (body, field) in cases {
            let e = req(body).unwrap_err();
            assert_eq!(e.code(), "invalid_type", "{body}");
            assert_eq!(e.field(), Some(field), "{body}");
        }
        // Unknown keys are never inspected.
        assert!(req(r#"{"extra":{"deep":[1e5]}}"#).is_ok());
        // Falsy tools_spec values are accepted (canonical `[]`).
        assert!(req(r#"{"tools_spec":0}"#).is_ok());
        assert!(req(r#"{"tools_spec":{}}"#).is_ok());
    }

    #[test]
    fn duplicate_top_level_key_last_wins() {
        let r = req(r#"{"model_id":"a","model_id":"b"}"#).unwrap();
        assert_eq!(r.config.model_id.as_deref(), Some("b"));
        // The earlier, badly typed value is overwritten before typing.
        let r = req(r#"{"model_id":1,"model_id":"b"}"#).unwrap();
        assert_eq!(r.config.model_id.as_deref(), Some("b"));
    }
}
