//! Security and protection settings of `prompter serve` (authentication,
//! rate limit, request timeout, body and field limits) and the pieces that
//! apply them outside the auth middleware: the auth-mode decision, field
//! limits on parsed bodies and the request timeout.
//!
//! Every limit has a flag with a `PROMPTER_*` environment twin; the defaults
//! accept every normal V7 body (see `docs/security.md` for the table).

use crate::error::{ApiError, Code};
use crate::ratelimit::RateLimit;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error};
use clap::{Args, ValueEnum};
use prompter_domain::{Json, Limits};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

/// `--auth`: whether requests need an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Every route except the open operational ones needs `Authorization: Bearer <key>`.
    Required,
    /// No keys: every caller may read and write every org (V7's behaviour; loopback only).
    Off,
}

/// Security settings of `prompter serve` (flattened into [`crate::ServeArgs`]).
#[derive(Debug, Clone, Args)]
pub struct SecurityArgs {
    /// API keys: `required`, or `off` (allowed only on a loopback bind). Default: `off` on loopback, `required` elsewhere.
    #[arg(long, env = "PROMPTER_AUTH", value_enum)]
    pub auth: Option<AuthMode>,
    /// How long a key lookup is cached, milliseconds: keys created or revoked while the server runs take effect within this time.
    #[arg(long, env = "PROMPTER_AUTH_CACHE_TTL_MS", default_value_t = 5000)]
    pub auth_cache_ttl_ms: u64,
    /// Host names (comma-separated) the server answers for besides the bind
    /// address, `localhost`, `127.0.0.1` and `::1`; any other `Host` header is
    /// refused with 421 (DNS rebinding). Without it only a loopback bind is
    /// checked; on any other bind every host is accepted until this is set.
    #[arg(long, env = "PROMPTER_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Require an admin API key for `/metrics` (with auth on; by default `/metrics` is open like the health routes).
    #[arg(long, env = "PROMPTER_METRICS_AUTH")]
    pub metrics_auth: bool,
    /// Sustained requests per second allowed per API key (token bucket; 0 switches rate limiting off).
    #[arg(long, env = "PROMPTER_RATE_LIMIT_RPS", default_value_t = 50.0)]
    pub rate_limit_rps: f64,
    /// Burst size of the per-key token bucket.
    #[arg(long, env = "PROMPTER_RATE_LIMIT_BURST", default_value_t = 100)]
    pub rate_limit_burst: u32,
    /// Also rate-limit anonymous callers (auth off), per client IP address.
    #[arg(long, env = "PROMPTER_RATE_LIMIT_ANONYMOUS")]
    pub rate_limit_anonymous: bool,
    /// Seconds a request may take before it is answered 503 `REQUEST_TIMEOUT` (0: no limit).
    #[arg(long, env = "PROMPTER_REQUEST_TIMEOUT_SECS", default_value_t = 120)]
    pub request_timeout_secs: u64,
    /// Deepest accepted JSON nesting (arrays/objects; the body itself is depth 1).
    #[arg(long, env = "PROMPTER_MAX_JSON_DEPTH", default_value_t = 64)]
    pub max_json_depth: usize,
    /// Longest accepted string or object key anywhere in a body, UTF-8 bytes.
    #[arg(long, env = "PROMPTER_MAX_STRING_BYTES", default_value_t = 1024 * 1024)]
    pub max_string_bytes: usize,
    /// Most entries in any JSON array or object of a body.
    #[arg(long, env = "PROMPTER_MAX_LIST_LEN", default_value_t = 10_000)]
    pub max_list_len: usize,
    /// Longest prompt text (`system_instructions`, `user_prompt_template`, `rendered_prompt`), UTF-8 bytes.
    #[arg(long, env = "PROMPTER_MAX_PROMPT_BYTES", default_value_t = 512 * 1024)]
    pub max_prompt_bytes: usize,
    /// Longest name or id field (`name`, `org_id`, `workspace_id`, `model_id`, `provider`, …), UTF-8 bytes.
    #[arg(long, env = "PROMPTER_MAX_NAME_BYTES", default_value_t = 1024)]
    pub max_name_bytes: usize,
    /// Most entries in `country_set`.
    #[arg(long, env = "PROMPTER_MAX_COUNTRIES", default_value_t = 300)]
    pub max_countries: usize,
    /// Most entries in `tools_spec`.
    #[arg(long, env = "PROMPTER_MAX_TOOLS", default_value_t = 128)]
    pub max_tools: usize,
}

impl SecurityArgs {
    /// Whether auth is required for a server bound to `bind`, or why the
    /// combination is refused: auth off is only allowed on a loopback address.
    pub fn auth_required(&self, bind: SocketAddr) -> Result<bool, String> {
        let loopback = bind.ip().is_loopback();
        match (self.auth, loopback) {
            (Some(AuthMode::Required), _) => Ok(true),
            (None, true) | (Some(AuthMode::Off), true) => Ok(false),
            (None, false) => Ok(true),
            (Some(AuthMode::Off), false) => Err(format!(
                "--auth off (PROMPTER_AUTH=off) is refused on the non-loopback address {bind}: \
                 anyone who can reach it could read and write every org. Use --auth required \
                 with API keys (`prompter keys create`), or bind to 127.0.0.1"
            )),
        }
    }

    /// Parser limits for every body.
    pub fn parser_limits(&self) -> Limits {
        Limits {
            max_depth: self.max_json_depth.max(1),
            max_string_bytes: self.max_string_bytes,
            max_list_len: self.max_list_len,
        }
    }

    /// Field-level limits for every body.
    pub fn field_limits(&self) -> FieldLimits {
        FieldLimits {
            max_prompt_bytes: self.max_prompt_bytes,
            max_name_bytes: self.max_name_bytes,
            max_countries: self.max_countries,
            max_tools: self.max_tools,
            reject_nul: false,
        }
    }

    /// The per-key token bucket.
    pub fn rate_limit(&self) -> RateLimit {
        RateLimit {
            rate: self.rate_limit_rps,
            burst: self.rate_limit_burst,
        }
    }

    /// The request timeout, if any.
    pub fn request_timeout(&self) -> Option<Duration> {
        (self.request_timeout_secs > 0).then(|| Duration::from_secs(self.request_timeout_secs))
    }
}

/// Top-level body fields holding prompt text.
pub const PROMPT_FIELDS: [&str; 3] = [
    "system_instructions",
    "user_prompt_template",
    "rendered_prompt",
];

/// Top-level body fields holding names and ids.
pub const NAME_FIELDS: [&str; 11] = [
    "name",
    "org_id",
    "workspace_id",
    "model_id",
    "provider",
    "created_by",
    "brand_name",
    "country",
    "analysis_scope",
    "grounding_profile_id",
    "grounding_snapshot_id",
];

/// Limits on named top-level fields of any body, checked after parsing
/// (the parser's own limits bound every string and list of the body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLimits {
    /// [`PROMPT_FIELDS`], UTF-8 bytes.
    pub max_prompt_bytes: usize,
    /// [`NAME_FIELDS`], UTF-8 bytes.
    pub max_name_bytes: usize,
    /// `country_set` entries.
    pub max_countries: usize,
    /// `tools_spec` entries.
    pub max_tools: usize,
    /// Refuse U+0000 anywhere in a body (PostgreSQL cannot store it in text
    /// or JSONB): 422 before any work is done, instead of a provider call
    /// whose result could then not be stored.
    pub reject_nul: bool,
}

impl Default for FieldLimits {
    fn default() -> Self {
        FieldLimits {
            max_prompt_bytes: 512 * 1024,
            max_name_bytes: 1024,
            max_countries: 300,
            max_tools: 128,
            reject_nul: false,
        }
    }
}

/// The dotted path of the first string or key holding U+0000, if any.
fn find_nul(v: &Json, path: &mut Vec<Value>) -> bool {
    match v {
        Json::Str(s) => s.contains('\0'),
        Json::Array(items) => items.iter().enumerate().any(|(i, item)| {
            path.push(Value::from(i));
            let found = find_nul(item, path);
            if !found {
                path.pop();
            }
            found
        }),
        Json::Object(members) => members.iter().any(|(k, item)| {
            path.push(Value::from(k.as_str()));
            let found = k.contains('\0') || find_nul(item, path);
            if !found {
                path.pop();
            }
            found
        }),
        _ => false,
    }
}

fn loc(field: &str) -> Vec<Value> {
    vec![Value::from("body"), Value::from(field)]
}

impl FieldLimits {
    /// 422 `VALIDATION_FAILED` (FastAPI types `string_too_long` / `too_long`)
    /// naming the first field over its limit.
    pub fn check(&self, body: &Json) -> Result<(), ApiError> {
        if self.reject_nul {
            let mut path = vec![Value::from("body")];
            if find_nul(body, &mut path) {
                return Err(ApiError::field(
                    Code::ValidationFailed,
                    path,
                    "string_unicode",
                    "U+0000 (NUL) cannot be stored by this deployment's database (PostgreSQL)",
                ));
            }
        }
        let Json::Object(members) = body else {
            return Ok(());
        };
        for (key, value) in members {
            let key = key.as_str();
            let text_limit = if PROMPT_FIELDS.contains(&key) {
                Some(self.max_prompt_bytes)
            } else if NAME_FIELDS.contains(&key) {
                Some(self.max_name_bytes)
            } else {
                None
            };
            match (value, text_limit) {
                (Json::Str(s), Some(max)) if s.len() > max => {
                    return Err(ApiError::field(
                        Code::ValidationFailed,
                        loc(key),
                        "string_too_long",
                        format!("{key} is {} bytes; at most {max} are accepted", s.len()),
                    )
                    .with("limit_bytes", max));
                }
                _ => {}
            }
            let list_limit = match key {
                "country_set" => Some(self.max_countries),
                "tools_spec" => Some(self.max_tools),
                _ => None,
            };
            match (value, list_limit) {
                (Json::Array(items), Some(max)) if items.len() > max => {
                    return Err(ApiError::field(
                        Code::ValidationFailed,
                        loc(key),
                        "too_long",
                        format!(
                            "{key} has {} items; at most {max} are accepted",
                            items.len()
                        ),
                    )
                    .with("limit_items", max));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The request timeout in effect (app data).
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeout(pub Option<Duration>);

/// Middleware: a request that takes longer than the configured timeout is
/// answered 503 `REQUEST_TIMEOUT` with `Retry-After`, and its handler is
/// dropped. Database writes are single statements or transactions, so a
/// dropped handler leaves nothing half-written (a transaction not committed
/// is rolled back); a run whose result was already stored stays stored.
pub async fn request_timeout(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let limit = req
        .app_data::<web::Data<RequestTimeout>>()
        .and_then(|t| t.0);
    let Some(limit) = limit else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(res) => res.map(ServiceResponse::map_into_boxed_body),
        Err(_) => {
            tracing::warn!(timeout_secs = limit.as_secs_f64(), "request timed out");
            Err(ApiError::new(
                Code::RequestTimeout,
                format!(
                    "the request took longer than the server's limit of {} s; retry later",
                    limit.as_secs_f64()
                ),
            )
            .retry_after(Duration::from_secs(1))
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(auth: Option<AuthMode>) -> SecurityArgs {
        let mut a = crate::ServeArgs::defaults().security;
        a.auth = auth;
        a
    }

    #[test]
    fn auth_defaults_follow_the_bind_address() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let lo6: SocketAddr = "[::1]:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(args(None).auth_required(lo), Ok(false));
        assert_eq!(args(None).auth_required(lo6), Ok(false));
        assert_eq!(args(None).auth_required(any), Ok(true));
        assert_eq!(args(Some(AuthMode::Required)).auth_required(lo), Ok(true));
        let err = args(Some(AuthMode::Off)).auth_required(any).unwrap_err();
        assert!(err.contains("refused") && err.contains("0.0.0.0"), "{err}");
    }

    #[test]
    fn field_limits_name_the_field() {
        let limits = FieldLimits {
            max_prompt_bytes: 10,
            max_name_bytes: 3,
            max_countries: 2,
            max_tools: 1,
            reject_nul: false,
        };
        let parse =
            |s: &str| prompter_domain::json::parse(s.as_bytes(), &Limits::default()).unwrap();
        assert!(limits
            .check(&parse(r#"{"name":"abc","country_set":["a","b"]}"#))
            .is_ok());
        let e = limits.check(&parse(r#"{"name":"abcd"}"#)).unwrap_err();
        assert_eq!(e.code(), Code::ValidationFailed);
        assert!(e.to_string().contains("name"));
        assert!(limits
            .check(&parse(r#"{"rendered_prompt":"12345678901"}"#))
            .is_err());
        assert!(limits
            .check(&parse(r#"{"country_set":["a","b","c"]}"#))
            .is_err());
        assert!(limits.check(&parse(r#"{"tools_spec":[{},{}]}"#)).is_err());
        // Nested and unknown fields are the parser's business.
        assert!(limits
            .check(&parse(r#"{"inference_params":{"name":"long long"}}"#))
            .is_ok());
        // NUL anywhere, when the database cannot store it.
        let nul = parse(r#"{"runtime_vars":{"a":["x","\u0000"]}}"#);
        assert!(limits.check(&nul).is_ok());
        let strict = FieldLimits {
            reject_nul: true,
            ..limits
        };
        let e = strict.check(&nul).unwrap_err();
        assert!(e.to_string().contains("U+0000"));
        assert!(strict.check(&parse(r#"{"k\u0000":1}"#)).is_err());
        assert!(strict.check(&parse(r#"{"rendered_prompt":"ok"}"#)).is_ok());
    }
}
