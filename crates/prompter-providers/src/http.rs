//! The HTTP plumbing shared by the real clients: one `reqwest` client with
//! connect/total timeouts, JSON POST with [`crate::retry::with_retries`],
//! error classification through a provider-specific body parser, and secret
//! hygiene (sensitive header values, key scrubbed from error messages).

use std::fmt;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::error::{classify, ErrorDetails, ProviderError};
use crate::retry::{
    retry_after_from_headers, should_retry_header, with_retries, AttemptError, HttpConfig,
};

/// An API key. Its `Debug` output is redacted and it has no `Display`, so it
/// cannot end up in logs or error messages by accident.
#[derive(Clone)]
pub(crate) struct ApiKey(String);

impl ApiKey {
    pub(crate) fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// A header value marked sensitive (hidden from `reqwest`/`http` Debug).
    pub(crate) fn header_value(&self, prefix: &str) -> Result<HeaderValue, ProviderError> {
        let mut v = HeaderValue::from_str(&format!("{prefix}{}", self.0)).map_err(|_| {
            ProviderError::Auth {
                message: "API key contains characters that are not valid in an HTTP header"
                    .to_string(),
            }
        })?;
        v.set_sensitive(true);
        Ok(v)
    }

    /// Replaces every occurrence of the key in `text`.
    pub(crate) fn scrub(&self, text: String) -> String {
        if self.0.len() >= 4 && text.contains(&self.0) {
            text.replace(&self.0, "[REDACTED]")
        } else {
            text
        }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[REDACTED]\"")
    }
}

/// Parses a provider's error body (any status ≥ 300) into [`ErrorDetails`].
pub(crate) type ErrorParser = fn(status: u16, body: &[u8]) -> ErrorDetails;

/// One provider's HTTP transport.
#[derive(Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    config: HttpConfig,
    provider: &'static str,
    key: ApiKey,
    parse_error: ErrorParser,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("provider", &self.provider)
            .field("config", &self.config)
            .field("api_key", &self.key)
            .finish_non_exhaustive()
    }
}

/// One JSON POST.
pub(crate) struct PostJson<'a> {
    pub url: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub headers: HeaderMap,
    pub body: &'a Value,
}

impl Transport {
    pub(crate) fn new(
        provider: &'static str,
        key: ApiKey,
        config: HttpConfig,
        parse_error: ErrorParser,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("prompter-providers/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            config,
            provider,
            key,
            parse_error,
        })
    }

    /// A sensitive auth header (`name: prefix + key`).
    pub(crate) fn auth_header(
        &self,
        name: &'static str,
        prefix: &str,
    ) -> Result<(HeaderName, HeaderValue), ProviderError> {
        Ok((
            HeaderName::from_static(name),
            self.key.header_value(prefix)?,
        ))
    }

    /// POSTs `req.body` as JSON with retries; returns the decoded 2xx body.
    pub(crate) async fn post_json(&self, req: PostJson<'_>) -> Result<Value, ProviderError> {
        tracing::debug!(provider = self.provider, url = req.url, "provider request");
        let result = with_retries(&self.config, self.provider, |attempt| {
            self.attempt(&req, attempt)
        })
        .await;
        result.map_err(|e| e.map_message(|m| self.key.scrub(m)))
    }

    async fn attempt(&self, req: &PostJson<'_>, attempt: u32) -> Result<Value, AttemptError> {
        let response = self
            .client
            .post(req.url)
            .query(req.query)
            .headers(req.headers.clone())
            .json(req.body)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        tracing::debug!(
            provider = self.provider,
            attempt,
            status,
            "provider response"
        );
        if (200..300).contains(&status) {
            return match serde_json::from_slice::<Value>(&body) {
                Ok(v) if v.is_object() => Ok(v),
                Ok(_) => Err(ProviderError::Decode {
                    message: format!("HTTP {status}: expected a JSON object"),
                }
                .into()),
                Err(e) => Err(ProviderError::Decode {
                    message: format!("HTTP {status}: invalid JSON body: {e}"),
                }
                .into()),
            };
        }
        let details = (self.parse_error)(status, &body);
        let server_hint = details
            .body_retry_after
            .or_else(|| retry_after_from_headers(&headers));
        Err(AttemptError {
            error: classify(status, details, server_hint),
            server_hint,
            should_retry: should_retry_header(&headers),
        })
    }

    fn transport_error(&self, e: &reqwest::Error) -> AttemptError {
        if e.is_timeout() {
            return ProviderError::Timeout.into();
        }
        // Only the source chain: reqwest's own Display embeds the URL.
        let detail = error_chain(e);
        let message = if e.is_connect() {
            format!("could not connect to {}: {detail}", self.provider)
        } else {
            format!("request to {} failed: {detail}", self.provider)
        };
        ProviderError::Upstream { status: 0, message }.into()
    }
}

/// `e` and its sources joined by ": ", without the request URL.
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        "transport error".to_string()
    } else {
        parts.join(": ")
    }
}

/// Joins a base URL and a path, tolerating slashes on either side.
pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Percent-encodes one URL path segment (keeps RFC 3986 unreserved chars).
pub(crate) fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_debug_is_redacted_and_scrub_works() {
        let k = ApiKey::new("sk-secret-123456");
        assert_eq!(format!("{k:?}"), "\"[REDACTED]\"");
        assert_eq!(
            k.scrub("bad key sk-secret-123456!".into()),
            "bad key [REDACTED]!"
        );
        let hv = k.header_value("Bearer ").unwrap();
        assert!(hv.is_sensitive());
        assert!(!format!("{hv:?}").contains("secret"));
    }

    #[test]
    fn urls() {
        assert_eq!(join_url("http://x/v1/", "/chat"), "http://x/v1/chat");
        assert_eq!(encode_path_segment("gemini-2.5-flash"), "gemini-2.5-flash");
        assert_eq!(encode_path_segment("a b/c"), "a%20b%2Fc");
    }
}
