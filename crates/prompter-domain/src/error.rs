//! [`DomainError`]: every way the domain rules can reject input, with a stable
//! machine code ([`DomainError::code`]) and the dotted path of the offending
//! field ([`DomainError::field`]) when there is one.

/// An error raised by parsing, typed input, validation or parsing of
/// domain values.
///
/// `Display` gives the human message; [`code`](Self::code) the stable
/// snake_case code that clients branch on; [`field`](Self::field) the dotted
/// path of the field (for example `country_set.1` or
/// `inference_params.temperature`) when the error concerns one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// The body is not syntactically valid JSON (RFC 8259).
    #[error("invalid JSON at byte {offset}: {reason}")]
    InvalidJson {
        /// Byte offset in the input where the problem was found.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
        /// Path of the value being parsed, if inside one.
        field: Option<String>,
    },
    /// The body is not valid UTF-8.
    #[error("input is not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// A `\uXXXX` escape encodes half of a UTF-16 surrogate pair without
    /// its other half; such a string cannot be represented as UTF-8.
    #[error("lone UTF-16 surrogate escape at byte {offset}")]
    LoneSurrogate {
        /// Byte offset of the escape.
        offset: usize,
        /// Path of the string.
        field: Option<String>,
    },
    /// `NaN`, `Infinity`, or a number too large for a 64-bit float (`1e400`).
    #[error("non-finite number at byte {offset}: NaN, Infinity and numbers beyond the float range are rejected")]
    NonFiniteNumber {
        /// Byte offset of the number.
        offset: usize,
        /// Path of the number.
        field: Option<String>,
    },
    /// An integer has more digits than Python's default conversion limit,
    /// which V7 could not parse either.
    #[error("integer at byte {offset} has more than {max} digits")]
    NumberTooLong {
        /// Byte offset of the number.
        offset: usize,
        /// The digit limit.
        max: usize,
        /// Path of the number.
        field: Option<String>,
    },
    /// Arrays/objects nested deeper than the limit.
    #[error("JSON nesting deeper than {max} levels")]
    NestingTooDeep {
        /// The depth limit.
        max: usize,
        /// Path of the container that went too deep.
        field: Option<String>,
    },
    /// A string (value or key) longer than the limit, in UTF-8 bytes.
    #[error("string longer than {max} bytes")]
    StringTooLong {
        /// The byte limit.
        max: usize,
        /// Path of the string.
        field: Option<String>,
    },
    /// An array or object with more entries than the limit.
    #[error("array or object with more than {max} entries")]
    ListTooLong {
        /// The entry limit.
        max: usize,
        /// Path of the container.
        field: Option<String>,
    },
    /// A body (or input line) larger than the limit.
    #[error("body larger than {max} bytes")]
    BodyTooLarge {
        /// The byte limit.
        max: usize,
    },
    /// The request body is valid JSON but not an object.
    #[error("request body must be a JSON object")]
    InvalidBody,
    /// A field has the wrong JSON type.
    #[error("field `{field}` must be {expected}")]
    InvalidType {
        /// Dotted path of the field.
        field: String,
        /// What was expected, e.g. "a string or null".
        expected: &'static str,
    },
    /// Strict mode: a country is not an assigned ISO 3166-1 alpha-2 code.
    #[error("field `{field}`: {value:?} is not an ISO 3166-1 alpha-2 country code")]
    InvalidCountry {
        /// Dotted path of the country entry.
        field: String,
        /// The value as given.
        value: String,
    },
    /// Strict mode: a required text is empty after normalisation.
    #[error("field `{field}` must not be empty")]
    EmptyField {
        /// Dotted path of the field.
        field: String,
    },
    /// Unknown hash algorithm name.
    #[error("unknown hash algorithm {value:?} (expected \"blake3\" or \"sha256\")")]
    InvalidHashAlgorithm {
        /// The name given.
        value: String,
    },
    /// Unknown validation mode name.
    #[error("unknown validation mode {value:?} (expected \"v7\" or \"strict\")")]
    InvalidValidationMode {
        /// The name given.
        value: String,
    },
    /// A string that should be a config hash is not 64 lowercase hex digits.
    #[error("invalid config hash {value:?}: expected 64 lowercase hex digits")]
    InvalidConfigHash {
        /// The value given.
        value: String,
    },
}

impl DomainError {
    /// The stable snake_case machine code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson { .. } => "invalid_json",
            Self::InvalidUtf8 { .. } => "invalid_utf8",
            Self::LoneSurrogate { .. } => "lone_surrogate",
            Self::NonFiniteNumber { .. } => "non_finite_number",
            Self::NumberTooLong { .. } => "number_too_long",
            Self::NestingTooDeep { .. } => "nesting_too_deep",
            Self::StringTooLong { .. } => "string_too_long",
            Self::ListTooLong { .. } => "list_too_long",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::InvalidBody => "invalid_body",
            Self::InvalidType { .. } => "invalid_type",
            Self::InvalidCountry { .. } => "invalid_country",
            Self::EmptyField { .. } => "empty_field",
            Self::InvalidHashAlgorithm { .. } => "invalid_hash_algorithm",
            Self::InvalidValidationMode { .. } => "invalid_validation_mode",
            Self::InvalidConfigHash { .. } => "invalid_config_hash",
        }
    }

    /// Dotted path of the offending field, if the error concerns one
    /// (`"body"` for [`DomainError::InvalidBody`]).
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidJson { field, .. }
            | Self::LoneSurrogate { field, .. }
            | Self::NonFiniteNumber { field, .. }
            | Self::NumberTooLong { field, .. }
            | Self::NestingTooDeep { field, .. }
            | Self::StringTooLong { field, .. }
            | Self::ListTooLong { field, .. } => field.as_deref(),
            Self::InvalidType { field, .. }
            | Self::InvalidCountry { field, .. }
            | Self::EmptyField { field } => Some(field),
            Self::InvalidBody => Some("body"),
            Self::InvalidUtf8 { .. }
            | Self::BodyTooLarge { .. }
            | Self::InvalidHashAlgorithm { .. }
            | Self::InvalidValidationMode { .. }
            | Self::InvalidConfigHash { .. } => None,
        }
    }

    /// Sets the field path of a parser error (used when the parser unwinds).
    pub(crate) fn set_field(&mut self, path: String) {
        match self {
            Self::InvalidJson { field, .. }
            | Self::LoneSurrogate { field, .. }
            | Self::NonFiniteNumber { field, .. }
            | Self::NumberTooLong { field, .. }
            | Self::NestingTooDeep { field, .. }
            | Self::StringTooLong { field, .. }
            | Self::ListTooLong { field, .. } => *field = Some(path),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_fields() {
        let e = DomainError::InvalidType {
            field: "country_set.1".into(),
            expected: "a string",
        };
        assert_eq!(e.code(), "invalid_type");
        assert_eq!(e.field(), Some("country_set.1"));
        assert_eq!(e.to_string(), "field `country_set.1` must be a string");
        assert_eq!(DomainError::InvalidBody.field(), Some("body"));
        assert_eq!(DomainError::InvalidBody.code(), "invalid_body");
        let e = DomainError::InvalidUtf8 { offset: 3 };
        assert_eq!(e.code(), "invalid_utf8");
        assert_eq!(e.field(), None);
    }
}
