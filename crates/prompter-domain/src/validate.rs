//! Validation, kept apart from canonicalisation, in two modes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::canonical::{normalize_country, normalize_text};
use crate::error::DomainError;
use crate::iso3166::is_iso_alpha2;
use crate::request::TemplateRequest;

/// How strictly a template request is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValidationMode {
    /// Accept everything V7's create route accepted (the default): any
    /// country strings, empty prompt or model, any `inference_params`.
    #[default]
    V7,
    /// Opt-in: countries must be ISO 3166-1 alpha-2 codes after
    /// normalisation (`UK`/`UKK` count as `GB`), and `user_prompt_template`
    /// and `model_id` must be non-empty after the text rule.
    Strict,
}

impl ValidationMode {
    /// `"v7"` or `"strict"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V7 => "v7",
            Self::Strict => "strict",
        }
    }
}

impl fmt::Display for ValidationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ValidationMode {
    type Err = DomainError;

    /// `"v7"` or `"strict"` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, DomainError> {
        if s.eq_ignore_ascii_case("v7") {
            Ok(Self::V7)
        } else if s.eq_ignore_ascii_case("strict") {
            Ok(Self::Strict)
        } else {
            Err(DomainError::InvalidValidationMode {
                value: s.to_owned(),
            })
        }
    }
}

/// Validates a parsed request in `mode`.
///
/// The limits that protect the service (non-finite numbers, nesting depth,
/// string and list sizes) are enforced earlier, by the parser, in both modes;
/// V7 mode adds nothing to them. Required-field presence is checked by the
/// caller with [`TemplateRequest::missing_required`]. In strict mode an
/// absent prompt or model counts as empty, and an entry of `country_set`
/// that is empty after stripping is rejected (V7 silently dropped it).
pub fn validate(req: &TemplateRequest, mode: ValidationMode) -> Result<(), DomainError> {
    if mode == ValidationMode::V7 {
        return Ok(());
    }
    let cfg = &req.config;
    for (i, raw) in cfg.country_set.iter().enumerate() {
        let ok = normalize_country(raw).is_some_and(|c| is_iso_alpha2(&c));
        if !ok {
            return Err(DomainError::InvalidCountry {
                field: format!("country_set.{i}"),
                value: raw.clone(),
            });
        }
    }
    for (field, value) in [
        ("user_prompt_template", &cfg.user_prompt_template),
        ("model_id", &cfg.model_id),
    ] {
        if normalize_text(value.as_deref().unwrap_or("")).is_empty() {
            return Err(DomainError::EmptyField {
                field: field.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Limits;

    fn req(s: &str) -> TemplateRequest {
        TemplateRequest::parse(s.as_bytes(), &Limits::default()).unwrap()
    }

    #[test]
    fn modes_parse() {
        assert_eq!(ValidationMode::default(), ValidationMode::V7);
        assert_eq!(
            "strict".parse::<ValidationMode>().unwrap(),
            ValidationMode::Strict
        );
        assert_eq!("V7".parse::<ValidationMode>().unwrap(), ValidationMode::V7);
        assert_eq!(
            "lax".parse::<ValidationMode>().unwrap_err().code(),
            "invalid_validation_mode"
        );
        assert_eq!(ValidationMode::Strict.to_string(), "strict");
    }

    #[test]
    fn v7_accepts_what_v7_accepted() {
        for body in [
            r#"{}"#,
            r#"{"country_set":["XX","usa","中国",""],"user_prompt_template":"","model_id":""}"#,
            r#"{"inference_params":"anything","country_set":["  "]}"#,
        ] {
            assert!(validate(&req(body), ValidationMode::V7).is_ok(), "{body}");
        }
    }

    #[test]
    fn strict_countries() {
        let ok = req(
            r#"{"country_set":["us"," de ","UK","ukk","gb"],"user_prompt_template":"p","model_id":"m"}"#,
        );
        assert!(validate(&ok, ValidationMode::Strict).is_ok());
        for (countries, bad_index) in [
            (r#"["US","XX"]"#, 1),
            (r#"["usa"]"#, 0),
            (r#"["中国"]"#, 0),
            (r#"["DE",""]"#, 1),
            (r#"["EU"]"#, 0),
            (r#"["UKKK"]"#, 0),
        ] {
            let r = req(&format!(
                r#"{{"country_set":{countries},"user_prompt_template":"p","model_id":"m"}}"#
            ));
            let e = validate(&r, ValidationMode::Strict).unwrap_err();
            assert_eq!(e.code(), "invalid_country", "{countries}");
            assert_eq!(e.field(), Some(format!("country_set.{bad_index}").as_str()));
        }
    }

    #[test]
    fn strict_non_empty_prompt_and_model() {
        for (body, field) in [
            (r#"{"model_id":"m"}"#, "user_prompt_template"),
            (
                r#"{"model_id":"m","user_prompt_template":" \t\r\n\u3000"}"#,
                "user_prompt_template",
            ),
            (r#"{"user_prompt_template":"p"}"#, "model_id"),
            (
                r#"{"user_prompt_template":"p","model_id":"  "}"#,
                "model_id",
            ),
        ] {
            let e = validate(&req(body), ValidationMode::Strict).unwrap_err();
            assert_eq!(e.code(), "empty_field", "{body}");
            assert_eq!(e.field(), Some(field));
        }
    }
}
