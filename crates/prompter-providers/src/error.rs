//! One error type for every provider.
//!
//! Classification (shared by all real clients):
//!
//! | HTTP status / condition                         | variant                     | retryable |
//! |-------------------------------------------------|-----------------------------|-----------|
//! | 401, 403, Gemini 400 `API_KEY_INVALID`          | [`ProviderError::Auth`]     | no        |
//! | 429 (transient rate limit)                      | [`ProviderError::RateLimited`] | yes    |
//! | 429 quota/billing exhausted (OpenAI `insufficient_quota`, Gemini `PerDay` quota, Anthropic spend limit) | [`ProviderError::Upstream`] `{status: 429}` | no |
//! | 429 "request too large" (OpenAI)                | [`ProviderError::BadRequest`] | no      |
//! | 529, Anthropic `overloaded_error`               | [`ProviderError::Overloaded`] | yes     |
//! | 408, 409, 5xx                                   | [`ProviderError::Upstream`] | yes       |
//! | other 4xx (400, 404, 413, 422, …)               | [`ProviderError::BadRequest`] | no      |
//! | client-side timeout (connect or total)          | [`ProviderError::Timeout`]  | yes       |
//! | connection failure without an HTTP answer       | [`ProviderError::Upstream`] `{status: 0}` | yes |
//! | 2xx whose body is not the expected JSON         | [`ProviderError::Decode`]   | no        |
//!
//! Messages carry the provider's own error message (plus its code/type when
//! present). API keys are scrubbed from every message before it leaves the
//! crate.

use std::time::Duration;

/// Error returned by every [`crate::ModelProvider`] operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The key was rejected (401/403, or Gemini's 400 `API_KEY_INVALID`).
    #[error("provider authentication failed: {message}")]
    Auth { message: String },
    /// Transient rate limit (429). `retry_after` is the provider's hint, if any.
    #[error("provider rate limited the request: {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// Provider is overloaded (Anthropic 529 `overloaded_error`).
    #[error("provider overloaded: {message}")]
    Overloaded {
        retry_after: Option<Duration>,
        message: String,
    },
    /// The provider rejected the request as invalid (400, 404, 422, …).
    #[error("provider rejected the request: {message}")]
    BadRequest { message: String },
    /// No answer within the configured connect or total timeout.
    #[error("provider request timed out")]
    Timeout,
    /// Any other upstream failure: 5xx, 408, 409, a terminal 429 (quota
    /// exhausted) or `status: 0` for a connection failure with no HTTP answer.
    #[error("provider upstream error (HTTP {status}): {message}")]
    Upstream { status: u16, message: String },
    /// A success response whose body could not be decoded.
    #[error("could not decode provider response: {message}")]
    Decode { message: String },
    /// No client is registered for this provider name (e.g. its API key is unset).
    #[error("provider '{provider}' is not configured")]
    NotConfigured { provider: String },
}

impl ProviderError {
    /// Stable machine-readable kind: `auth`, `rate_limited`, `overloaded`,
    /// `bad_request`, `timeout`, `upstream`, `decode`, `not_configured`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Auth { .. } => "auth",
            Self::RateLimited { .. } => "rate_limited",
            Self::Overloaded { .. } => "overloaded",
            Self::BadRequest { .. } => "bad_request",
            Self::Timeout => "timeout",
            Self::Upstream { .. } => "upstream",
            Self::Decode { .. } => "decode",
            Self::NotConfigured { .. } => "not_configured",
        }
    }

    /// The provider's "wait this long" hint, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Overloaded { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// Whether repeating the same request later may succeed.
    ///
    /// True for rate limits, overload, timeouts and `Upstream` with status
    /// 0 (connection failure), 408, 409 or 5xx. False for auth, validation,
    /// decode and configuration errors, and for a terminal 429 (quota
    /// exhausted), which is reported as `Upstream { status: 429 }`.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Overloaded { .. } | Self::Timeout => true,
            Self::Upstream { status, .. } => is_retryable_status(*status) && *status != 429,
            Self::Auth { .. }
            | Self::BadRequest { .. }
            | Self::Decode { .. }
            | Self::NotConfigured { .. } => false,
        }
    }

    /// The message carried by this error, if any.
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Auth { message }
            | Self::RateLimited { message, .. }
            | Self::Overloaded { message, .. }
            | Self::BadRequest { message }
            | Self::Upstream { message, .. }
            | Self::Decode { message } => Some(message),
            Self::Timeout | Self::NotConfigured { .. } => None,
        }
    }

    /// Rewrites the message (used to scrub secrets).
    pub(crate) fn map_message(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            Self::Auth { message } => Self::Auth {
                message: f(message),
            },
            Self::RateLimited {
                retry_after,
                message,
            } => Self::RateLimited {
                retry_after,
                message: f(message),
            },
            Self::Overloaded {
                retry_after,
                message,
            } => Self::Overloaded {
                retry_after,
                message: f(message),
            },
            Self::BadRequest { message } => Self::BadRequest {
                message: f(message),
            },
            Self::Upstream { status, message } => Self::Upstream {
                status,
                message: f(message),
            },
            Self::Decode { message } => Self::Decode {
                message: f(message),
            },
            other @ (Self::Timeout | Self::NotConfigured { .. }) => other,
        }
    }
}

/// Statuses that are worth retrying at the HTTP level (0 = no HTTP answer).
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 0 | 408 | 409 | 429 | 529) || (500..=599).contains(&status)
}

/// What a provider-specific error-body parser extracted from a non-2xx answer.
#[derive(Debug, Default, Clone)]
pub(crate) struct ErrorDetails {
    /// The provider's own message, possibly suffixed with its code/type.
    pub message: String,
    /// The body says the credentials are bad (Gemini `API_KEY_INVALID`).
    pub auth: bool,
    /// A 429 that waiting will not fix (quota/billing exhausted, daily cap).
    pub quota_exhausted: bool,
    /// A 429 whose single request is too large (retrying cannot help).
    pub request_too_large: bool,
    /// The body says the provider is overloaded (Anthropic `overloaded_error`).
    pub overloaded: bool,
    /// A retry hint found in the body (Gemini `RetryInfo.retryDelay`).
    pub body_retry_after: Option<Duration>,
}

/// Maps an HTTP status plus parsed error details to a [`ProviderError`].
pub(crate) fn classify(
    status: u16,
    details: ErrorDetails,
    retry_after: Option<Duration>,
) -> ProviderError {
    let message = details.message;
    if details.auth || matches!(status, 401 | 403) {
        return ProviderError::Auth { message };
    }
    match status {
        429 if details.quota_exhausted => ProviderError::Upstream { status, message },
        429 if details.request_too_large => ProviderError::BadRequest { message },
        429 => ProviderError::RateLimited {
            retry_after,
            message,
        },
        529 => ProviderError::Overloaded {
            retry_after,
            message,
        },
        _ if details.overloaded => ProviderError::Overloaded {
            retry_after,
            message,
        },
        408 | 409 => ProviderError::Upstream { status, message },
        400..=499 => ProviderError::BadRequest { message },
        _ => ProviderError::Upstream { status, message },
    }
}

/// Message for an error body that is not the provider's JSON envelope
/// (e.g. an HTML 502 page from a proxy): status plus a short, single-line
/// excerpt of the body.
pub(crate) fn fallback_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let excerpt: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    if excerpt.is_empty() {
        format!("HTTP {status} with an empty body")
    } else {
        format!("HTTP {status}: {excerpt}")
    }
}

/// Joins a provider message with its machine code(s): `message (a, b)`.
pub(crate) fn with_codes(message: &str, codes: &[Option<String>]) -> String {
    let codes: Vec<&str> = codes
        .iter()
        .flatten()
        .map(String::as_str)
        .filter(|c| !c.is_empty())
        .collect();
    if codes.is_empty() {
        message.to_string()
    } else {
        format!("{message} ({})", codes.join(", "))
    }
}

/// Reads a JSON value as a string (numbers are rendered, null → None).
pub(crate) fn json_str(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_retryability() {
        let cases: Vec<(ProviderError, &str, bool)> = vec![
            (
                ProviderError::Auth {
                    message: "x".into(),
                },
                "auth",
                false,
            ),
            (
                ProviderError::RateLimited {
                    retry_after: None,
                    message: "x".into(),
                },
                "rate_limited",
                true,
            ),
            (
                ProviderError::Overloaded {
                    retry_after: None,
                    message: "x".into(),
                },
                "overloaded",
                true,
            ),
            (
                ProviderError::BadRequest {
                    message: "x".into(),
                },
                "bad_request",
                false,
            ),
            (ProviderError::Timeout, "timeout", true),
            (
                ProviderError::Upstream {
                    status: 503,
                    message: "x".into(),
                },
                "upstream",
                true,
            ),
            (
                ProviderError::Upstream {
                    status: 429,
                    message: "quota".into(),
                },
                "upstream",
                false,
            ),
            (
                ProviderError::Upstream {
                    status: 0,
                    message: "refused".into(),
                },
                "upstream",
                true,
            ),
            (
                ProviderError::Decode {
                    message: "x".into(),
                },
                "decode",
                false,
            ),
            (
                ProviderError::NotConfigured {
                    provider: "openai".into(),
                },
                "not_configured",
                false,
            ),
        ];
        for (err, kind, retryable) in cases {
            assert_eq!(err.kind(), kind);
            assert_eq!(err.is_retryable(), retryable, "{err:?}");
        }
    }

    #[test]
    fn classify_statuses() {
        let d = || ErrorDetails {
            message: "m".into(),
            ..Default::default()
        };
        assert_eq!(classify(401, d(), None).kind(), "auth");
        assert_eq!(classify(403, d(), None).kind(), "auth");
        assert_eq!(classify(400, d(), None).kind(), "bad_request");
        assert_eq!(classify(404, d(), None).kind(), "bad_request");
        assert_eq!(classify(408, d(), None).kind(), "upstream");
        assert_eq!(classify(500, d(), None).kind(), "upstream");
        assert_eq!(classify(529, d(), None).kind(), "overloaded");
        let hint = Some(Duration::from_secs(2));
        assert_eq!(classify(429, d(), hint).retry_after(), hint);
        let quota = ErrorDetails {
            quota_exhausted: true,
            ..d()
        };
        assert!(!classify(429, quota, None).is_retryable());
        let auth = ErrorDetails { auth: true, ..d() };
        assert_eq!(classify(400, auth, None).kind(), "auth");
    }

    #[test]
    fn fallback_message_is_short_and_single_line() {
        let html = b"<html>\n<body>\n  <h1>502 Bad Gateway</h1>\n</body></html>";
        assert_eq!(
            fallback_message(502, html),
            "HTTP 502: <html> <body> <h1>502 Bad Gateway</h1> </body></html>"
        );
        assert_eq!(fallback_message(504, b""), "HTTP 504 with an empty body");
    }
}
