//! One table of stable error codes, each mapped to an HTTP status, keeping
//! V7's `{"detail": …}` envelope.
//!
//! Validation errors keep FastAPI's shape (`detail` is a list of
//! `{type, loc, msg}`) so V7 clients read them unchanged, with a top-level
//! `code`. Every other error answers `{"detail": {"code", "message", …}}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use prompter_domain::DomainError;
use prompter_providers::ProviderError;
use prompter_service::metrics_catalog::DB_POOL_TIMEOUTS_TOTAL;
use prompter_service::ServiceError;
use prompter_storage::StorageError;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Stable machine-readable error codes and their HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 422: a body field is missing, of the wrong type or breaks a rule.
    ValidationFailed,
    /// 422: the body is not valid JSON (FastAPI answered 422 too).
    MalformedJson,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 413: the body is larger than the configured limit.
    PayloadTooLarge,
    /// 400: a query parameter is malformed.
    InvalidQuery,
    /// 400: a pagination cursor is not one this server issued.
    InvalidCursor,
    /// 401: no API key, or not a valid one.
    Unauthorized,
    /// 401: the API key has expired.
    ApiKeyExpired,
    /// 403: the API key's role does not allow this route.
    Forbidden,
    /// 403: the body names an org or workspace outside the key's scope.
    ScopeForbidden,
    /// 429: the API key exceeded its request rate.
    RateLimited,
    /// 404: no such template (or not in the caller's scope).
    TemplateNotFound,
    /// 404: no such result (or not in the caller's scope).
    ResultNotFound,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 409: an active template with the same config exists.
    TemplateExists,
    /// 422: an Idempotency-Key reused with a different body.
    IdempotencyKeyReused,
    /// 502: the provider rejected our credentials.
    ProviderAuthFailed,
    /// 502: the provider rejected the request.
    ProviderBadRequest,
    /// 502: the provider failed.
    ProviderUpstreamError,
    /// 502: the provider's answer could not be read.
    ProviderDecodeError,
    /// 503: the provider rate-limited us.
    ProviderRateLimited,
    /// 503: the provider is overloaded.
    ProviderOverloaded,
    /// 504: the provider did not answer in time.
    ProviderTimeout,
    /// 503: no client is configured for the template's provider.
    ProviderNotConfigured,
    /// 503: probing is switched off and no version is known.
    ProbeDisabledNoVersion,
    /// 503: another caller's probe is still in flight.
    ProbePending,
    /// 503: a run with the same Idempotency-Key is still in flight.
    RunInFlight,
    /// 503: the database is unreachable or its pool exhausted.
    DatabaseUnavailable,
    /// 503: the request took longer than the server's request timeout.
    RequestTimeout,
    /// 503: the provider answered but the result could not be stored.
    ResultNotStored,
    /// 500: a bug; the body carries the request id.
    InternalError,
}

impl Code {
    /// The code's wire name.
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            ValidationFailed => "VALIDATION_FAILED",
            MalformedJson => "MALFORMED_JSON",
            UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            InvalidQuery => "INVALID_QUERY",
            InvalidCursor => "INVALID_CURSOR",
            Unauthorized => "UNAUTHORIZED",
            ApiKeyExpired => "API_KEY_EXPIRED",
            Forbidden => "FORBIDDEN",
            ScopeForbidden => "SCOPE_FORBIDDEN",
            RateLimited => "RATE_LIMITED",
            TemplateNotFound => "TEMPLATE_NOT_FOUND",
            ResultNotFound => "RESULT_NOT_FOUND",
            NotFound => "NOT_FOUND",
            MethodNotAllowed => "METHOD_NOT_ALLOWED",
            TemplateExists => "TEMPLATE_EXISTS",
            IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ProviderAuthFailed => "PROVIDER_AUTH_FAILED",
            ProviderBadRequest => "PROVIDER_BAD_REQUEST",
            ProviderUpstreamError => "PROVIDER_UPSTREAM_ERROR",
            ProviderDecodeError => "PROVIDER_DECODE_ERROR",
            ProviderRateLimited => "PROVIDER_RATE_LIMITED",
            ProviderOverloaded => "PROVIDER_OVERLOADED",
            ProviderTimeout => "PROVIDER_TIMEOUT",
            ProviderNotConfigured => "PROVIDER_NOT_CONFIGURED",
            ProbeDisabledNoVersion => "PROBE_DISABLED_NO_VERSION",
            ProbePending => "PROBE_PENDING",
            RunInFlight => "RUN_IN_FLIGHT",
            DatabaseUnavailable => "DATABASE_UNAVAILABLE",
            RequestTimeout => "REQUEST_TIMEOUT",
            ResultNotStored => "RESULT_NOT_STORED",
            InternalError => "INTERNAL_ERROR",
        }
    }

    /// The HTTP status this code always answers with.
    pub fn status(self) -> StatusCode {
        use Code::*;
        match self {
            ValidationFailed | MalformedJson | IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            InvalidQuery | InvalidCursor => StatusCode::BAD_REQUEST,
            Unauthorized | ApiKeyExpired => StatusCode::UNAUTHORIZED,
            Forbidden | ScopeForbidden => StatusCode::FORBIDDEN,
            RateLimited => StatusCode::TOO_MANY_REQUESTS,
            TemplateNotFound | ResultNotFound | NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            TemplateExists => StatusCode::CONFLICT,
            ProviderAuthFailed
            | ProviderBadRequest
            | ProviderUpstreamError
            | ProviderDecodeError => StatusCode::BAD_GATEWAY,
            ProviderRateLimited
            | ProviderOverloaded
            | ProviderNotConfigured
            | ProbeDisabledNoVersion
            | ProbePending
            | RunInFlight
            | DatabaseUnavailable
            | RequestTimeout
            | ResultNotStored => StatusCode::SERVICE_UNAVAILABLE,
            ProviderTimeout => StatusCode::GATEWAY_TIMEOUT,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Every code, for documentation and the OpenAPI document.
    pub const ALL: [Code; 32] = {
        use Code::*;
        [
            ValidationFailed,
            MalformedJson,
            UnsupportedMediaType,
            PayloadTooLarge,
            InvalidQuery,
            InvalidCursor,
            Unauthorized,
            ApiKeyExpired,
            Forbidden,
            ScopeForbidden,
            RateLimited,
            TemplateNotFound,
            ResultNotFound,
            NotFound,
            MethodNotAllowed,
            TemplateExists,
            IdempotencyKeyReused,
            ProviderAuthFailed,
            ProviderBadRequest,
            ProviderUpstreamError,
            ProviderDecodeError,
            ProviderRateLimited,
            ProviderOverloaded,
            ProviderTimeout,
            ProviderNotConfigured,
            ProbeDisabledNoVersion,
            ProbePending,
            RunInFlight,
            DatabaseUnavailable,
            RequestTimeout,
            ResultNotStored,
            InternalError,
        ]
    };
}

/// One field problem in FastAPI's shape.
#[derive(Debug, Clone)]
pub struct FieldError {
    /// Location, e.g. `["body", "country_set", 1]`.
    pub loc: Vec<Value>,
    /// Human message.
    pub msg: String,
    /// Machine type (domain error code or `missing`).
    pub kind: String,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    code: Code,
    message: String,
    fields: Vec<FieldError>,
    extra: Map<String, Value>,
    retry_after: Option<Duration>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            fields: Vec::new(),
            extra: Map::new(),
            retry_after: None,
        }
    }

    /// A 422 naming one field.
    pub fn field(code: Code, loc: Vec<Value>, kind: &str, msg: impl Into<String>) -> Self {
        let msg = msg.into();
        let mut e = ApiError::new(code, msg.clone());
        e.fields.push(FieldError {
            loc,
            msg,
            kind: kind.to_owned(),
        });
        e
    }

    /// Adds a key to the `detail` object.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// Sets a `Retry-After` header.
    pub fn retry_after(mut self, d: Duration) -> Self {
        self.retry_after = Some(d);
        self
    }

    /// The code.
    pub fn code(&self) -> Code {
        self.code
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let body = if self.fields.is_empty() {
            let mut detail = Map::new();
            detail.insert("code".into(), self.code.as_str().into());
            detail.insert("message".into(), self.message.clone().into());
            detail.extend(self.extra.clone());
            json!({ "detail": detail })
        } else {
            let items: Vec<Value> = self
                .fields
                .iter()
                .map(|f| json!({"type": f.kind, "loc": f.loc, "msg": f.msg}))
                .collect();
            json!({ "detail": items, "code": self.code.as_str(), "message": self.message })
        };
        let mut res = HttpResponse::build(self.status_code());
        if let Some(d) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, d.as_secs().max(1).to_string()));
        }
        res.json(body)
    }
}

/// Splits a dotted field path (`country_set.1`) into a FastAPI `loc`.
pub fn loc_of(path: &str) -> Vec<Value> {
    let mut loc = vec![Value::from("body")];
    if path.is_empty() || path == "body" {
        return loc;
    }
    for seg in path.split('.') {
        match seg.parse::<u64>() {
            Ok(i) => loc.push(i.into()),
            Err(_) => loc.push(seg.into()),
        }
    }
    loc
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let code = match e.code() {
            "invalid_json" | "invalid_utf8" => Code::MalformedJson,
            _ => Code::ValidationFailed,
        };
        let loc = loc_of(e.field().unwrap_or(""));
        ApiError::field(code, loc, e.code(), e.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => ApiError::new(Code::NotFound, "not found"),
            StorageError::InvalidCursor => ApiError::new(
                Code::InvalidCursor,
                "the cursor is not one this server issued",
            ),
            StorageError::Invalid { message } => {
                ApiError::field(Code::ValidationFailed, loc_of(""), "invalid_value", message)
            }
            StorageError::Unavailable { message } => {
                metrics::counter!(DB_POOL_TIMEOUTS_TOTAL).increment(1);
                tracing::warn!(%message, "database unavailable");
                ApiError::new(
                    Code::DatabaseUnavailable,
                    "the database is unavailable; retry shortly",
                )
                .retry_after(Duration::from_secs(1))
            }
            StorageError::Conflict {
                existing_template_id,
            } => ApiError::new(
                Code::TemplateExists,
                "an active template with the same config already exists",
            )
            .with("template_id", existing_template_id.map(|i| i.to_string())),
            other => {
                tracing::error!(error = %other, "storage error");
                ApiError::new(Code::InternalError, "internal storage error")
            }
        }
    }
}

fn provider_error(provider: &str, e: &ProviderError) -> ApiError {
    let code = match e {
        ProviderError::Auth { .. } => Code::ProviderAuthFailed,
        ProviderError::RateLimited { .. } => Code::ProviderRateLimited,
        ProviderError::Overloaded { .. } => Code::ProviderOverloaded,
        ProviderError::BadRequest { .. } => Code::ProviderBadRequest,
        ProviderError::Timeout => Code::ProviderTimeout,
        ProviderError::Upstream { .. } => Code::ProviderUpstreamError,
        ProviderError::Decode { .. } => Code::ProviderDecodeError,
        ProviderError::NotConfigured { .. } => Code::ProviderNotConfigured,
    };
    if let ProviderError::NotConfigured { provider } = e {
        return not_configured(provider);
    }
    tracing::warn!(
        provider,
        code = code.as_str(),
        kind = e.kind(),
        error = %e,
        "provider call failed"
    );
    let mut err = ApiError::new(code, format!("provider {provider}: {e}"))
        .with("provider", provider.to_owned());
    if let Some(d) = e.retry_after() {
        err = err.retry_after(d);
    } else if code.status() == StatusCode::SERVICE_UNAVAILABLE {
        err = err.retry_after(Duration::from_secs(1));
    }
    err
}

/// 503 `PROVIDER_NOT_CONFIGURED` naming the environment variables to set.
fn not_configured(provider: &str) -> ApiError {
    let (message, env) = crate::provider_status::not_configured(provider);
    tracing::warn!(provider, "{message}");
    ApiError::new(Code::ProviderNotConfigured, message)
        .with("provider", provider.to_owned())
        .with("env", env)
        .retry_after(Duration::from_secs(1))
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Domain(d) => d.into(),
            ServiceError::MissingField { field } => ApiError::field(
                Code::ValidationFailed,
                loc_of(field),
                "missing",
                format!("Field required: {field}"),
            ),
            ServiceError::TemplateExists {
                template_id,
                name,
                created_at,
            } => {
                let mut err = ApiError::new(
                    Code::TemplateExists,
                    "A template with this configuration already exists",
                )
                .with("template_id", template_id.to_string());
                if let Some(n) = name {
                    err = err.with("name", n);
                }
                if let Some(c) = created_at {
                    err = err.with("created_at", crate::dto::ts(c));
                }
                err
            }
            ServiceError::TemplateNotFound | ServiceError::ScopeMismatch => {
                ApiError::new(Code::TemplateNotFound, "Template not found")
            }
            ServiceError::ResultNotFound => ApiError::new(Code::ResultNotFound, "Result not found"),
            ServiceError::Provider { provider, source } => provider_error(&provider, &source),
            ServiceError::ProviderNotConfigured { provider } => not_configured(&provider),
            ServiceError::ProbeDisabledNoVersion => ApiError::new(
                Code::ProbeDisabledNoVersion,
                "probing is disabled and no version is known for this template",
            ),
            ServiceError::ProbePending { retry_after } => ApiError::new(
                Code::ProbePending,
                "a probe for this template is still in flight; retry shortly",
            )
            .retry_after(retry_after),
            ServiceError::RunInFlight { retry_after } => ApiError::new(
                Code::RunInFlight,
                "a run with this Idempotency-Key is still in flight; retry shortly",
            )
            .retry_after(retry_after),
            ServiceError::IdempotencyKeyReused => ApiError::new(
                Code::IdempotencyKeyReused,
                "this Idempotency-Key was already used with a different request body",
            ),
            ServiceError::ResultNotStored { source } => {
                tracing::error!(error = %source, "provider answered but the result was not stored");
                ApiError::new(
                    Code::ResultNotStored,
                    "the provider answered but the result could not be stored; it was not recorded",
                )
                .retry_after(Duration::from_secs(1))
            }
            ServiceError::Storage(s) => s.into(),
        }
    }
}
