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

/// Declares every error code once: variant, HTTP status, wire name and doc.
///
/// Generates [`Code`], [`Code::as_str`], [`Code::status`], [`Code::doc`] and
/// [`Code::ALL`], so the enum, the wire names, the statuses and the OpenAPI
/// and `docs/errors.md` tables cannot drift apart.
macro_rules! error_codes {
    ($($variant:ident = $status:literal, $wire:literal, $doc:literal;)+) => {
        /// Stable machine-readable error codes and their HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $(#[doc = $doc] $variant,)+
        }

        impl Code {
            /// Every code, in table order, for documentation and the OpenAPI document.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)+];

            /// The code's wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $wire,)+
                }
            }

            /// The HTTP status this code always answers with.
            pub fn status(self) -> StatusCode {
                let status: u16 = match self {
                    $(Code::$variant => $status,)+
                };
                StatusCode::from_u16(status).expect("error table holds valid statuses")
            }

            /// What the code means, for people.
            pub fn doc(self) -> &'static str {
                match self {
                    $(Code::$variant => $doc,)+
                }
            }
        }
    };
}

error_codes! {
    ValidationFailed = 422, "VALIDATION_FAILED", "a body field is missing, of the wrong type or breaks a rule.";
    MalformedJson = 422, "MALFORMED_JSON", "the body is not valid JSON (FastAPI answered 422 too).";
    UnsupportedMediaType = 415, "UNSUPPORTED_MEDIA_TYPE", "the body is not JSON.";
    PayloadTooLarge = 413, "PAYLOAD_TOO_LARGE", "the body is larger than the configured limit.";
    InvalidQuery = 400, "INVALID_QUERY", "a query parameter is malformed.";
    InvalidCursor = 400, "INVALID_CURSOR", "a pagination cursor is not one this server issued.";
    Unauthorized = 401, "UNAUTHORIZED", "no API key, or not a valid one.";
    ApiKeyExpired = 401, "API_KEY_EXPIRED", "the API key has expired (`keys create --expires-in`).";
    Forbidden = 403, "FORBIDDEN", "the API key's role does not allow this route.";
    ScopeForbidden = 403, "SCOPE_FORBIDDEN", "the body names an org or workspace outside the key's scope.";
    RateLimited = 429, "RATE_LIMITED", "the API key exceeded its request rate.";
    TemplateNotFound = 404, "TEMPLATE_NOT_FOUND", "no such template (or not in the caller's scope).";
    ResultNotFound = 404, "RESULT_NOT_FOUND", "no such result (or not in the caller's scope).";
    NotFound = 404, "NOT_FOUND", "no such route.";
    MethodNotAllowed = 405, "METHOD_NOT_ALLOWED", "the route exists but not with this method.";
    TemplateExists = 409, "TEMPLATE_EXISTS", "an active template with the same config exists.";
    IdempotencyKeyReused = 422, "IDEMPOTENCY_KEY_REUSED", "an Idempotency-Key reused with a different body.";
    ProviderAuthFailed = 502, "PROVIDER_AUTH_FAILED", "the provider rejected our credentials.";
    ProviderBadRequest = 502, "PROVIDER_BAD_REQUEST", "the provider rejected the request.";
    ProviderUpstreamError = 502, "PROVIDER_UPSTREAM_ERROR", "the provider failed.";
    ProviderDecodeError = 502, "PROVIDER_DECODE_ERROR", "the provider's answer could not be read.";
    ProviderRateLimited = 503, "PROVIDER_RATE_LIMITED", "the provider rate-limited us.";
    ProviderOverloaded = 503, "PROVIDER_OVERLOADED", "the provider is overloaded.";
    ProviderTimeout = 504, "PROVIDER_TIMEOUT", "the provider did not answer in time.";
    BudgetExceeded = 429, "BUDGET_EXCEEDED", "the org's or workspace's monthly budget (`prompter budgets`) is spent; no provider call was made.";
    ProviderSaturated = 503, "PROVIDER_SATURATED", "every call slot of the provider (`--provider-max-inflight`) stayed busy for `--provider-queue-timeout-ms`; retry after `Retry-After`.";
    ProviderCircuitOpen = 503, "PROVIDER_CIRCUIT_OPEN", "the provider/model circuit is open after repeated provider failures; calls fail fast until `Retry-After`.";
    ProviderNotConfigured = 503, "PROVIDER_NOT_CONFIGURED", "no client is configured for the template's provider.";
    ProbeDisabledNoVersion = 503, "PROBE_DISABLED_NO_VERSION", "probing is switched off and no version is known.";
    ProbePending = 503, "PROBE_PENDING", "another caller's probe is still in flight.";
    RunInFlight = 503, "RUN_IN_FLIGHT", "a run with the same Idempotency-Key is still in flight.";
    DatabaseUnavailable = 503, "DATABASE_UNAVAILABLE", "the database is unreachable or its pool exhausted.";
    RequestTimeout = 503, "REQUEST_TIMEOUT", "the request took longer than the server's request timeout.";
    ResultNotStored = 503, "RESULT_NOT_STORED", "the provider answered but the result could not be stored.";
    InternalError = 500, "INTERNAL_ERROR", "a bug; the body carries the request id.";
    PromptNotFound = 404, "PROMPT_NOT_FOUND", "no template has this prompt name (or not in the caller's scope).";
    LabelNotFound = 404, "LABEL_NOT_FOUND", "the prompt has no such label.";
    RevisionNotFound = 404, "REVISION_NOT_FOUND", "the prompt has no such revision (or it is deleted, for a label move).";
    LabelConflict = 409, "LABEL_CONFLICT", "the label does not point to `expected_revision`; `current_revision` says where it does.";
    VariableContractChanged = 409, "VARIABLE_CONTRACT_CHANGED", "the target revision uses variables the label's current one does not (`added`); `force` moves anyway.";
    LabelInUse = 409, "LABEL_IN_USE", "labels point to the template (`labels`); move or remove them first.";
    MissingVariables = 422, "MISSING_VARIABLES", "variables the prompt uses were not given (`missing`).";
    BatchNotFound = 404, "BATCH_NOT_FOUND", "no such batch (or not in the caller's scope).";
    BatchTooLarge = 422, "BATCH_TOO_LARGE", "countries × repeats exceeds `--batch-max-items` (`max`).";
    ScheduleNotFound = 404, "SCHEDULE_NOT_FOUND", "no such schedule (or not in the caller's scope).";
    InvalidCron = 422, "INVALID_CRON", "the schedule's cron expression does not parse (5, 6 or 7 fields, UTC).";
    CrossOrigin = 403, "CROSS_ORIGIN", "a POST/PUT/DELETE whose `Origin` is another site's (requests without `Origin` are unaffected).";
    HostNotAllowed = 421, "HOST_NOT_ALLOWED", "the `Host` header names a host this server does not answer for (`--allowed-hosts`; guards against DNS rebinding).";
}

impl Code {
    /// `docs/errors.md`'s table, generated from the error table (a test keeps
    /// the file equal to it).
    pub fn markdown_table() -> String {
        let mut out = String::from("| code | status | meaning |\n| --- | --- | --- |\n");
        for c in Code::ALL {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                c.as_str(),
                c.status().as_u16(),
                c.doc()
            ));
        }
        out
    }
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
    /// Extra context (e.g. `line`/`column` of a JSON syntax error).
    pub ctx: Option<Value>,
}

impl FieldError {
    /// A problem at `loc`.
    pub fn new(loc: Vec<Value>, kind: &str, msg: impl Into<String>) -> Self {
        FieldError {
            loc,
            msg: msg.into(),
            kind: kind.to_owned(),
            ctx: None,
        }
    }

    /// `Field required: <field>` at `field`'s location.
    pub fn missing(field: &str) -> Self {
        FieldError::new(loc_of(field), "missing", format!("Field required: {field}"))
    }
}

impl From<&DomainError> for FieldError {
    fn from(e: &DomainError) -> Self {
        FieldError::new(loc_of(e.field().unwrap_or("")), e.code(), e.to_string())
    }
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
        Self::fields(code, vec![FieldError::new(loc, kind, msg)])
    }

    /// A 422 naming every problem at once (FastAPI's list); the message
    /// is the problem's, or says how many there are and lists them.
    pub fn fields(code: Code, fields: Vec<FieldError>) -> Self {
        let message = match fields.as_slice() {
            [one] => one.msg.clone(),
            many => format!(
                "{} problems: {}",
                many.len(),
                many.iter()
                    .map(|f| f.msg.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        let mut e = ApiError::new(code, message);
        e.fields = fields;
        e
    }

    /// Adds one more field problem.
    pub fn push_field(&mut self, loc: Vec<Value>, kind: &str, msg: impl Into<String>) {
        self.fields.push(FieldError::new(loc, kind, msg));
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
                .map(|f| {
                    let mut item = json!({"type": f.kind, "loc": f.loc, "msg": f.msg});
                    if let Some(ctx) = &f.ctx {
                        item["ctx"] = ctx.clone();
                    }
                    item
                })
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
            ServiceError::BudgetExceeded {
                org_id,
                workspace_id,
                month,
            } => ApiError::new(
                Code::BudgetExceeded,
                match workspace_id {
                    Some(w) => format!("the {month} budget of workspace {w} (org {org_id}) is spent"),
                    None => format!("the {month} budget of org {org_id} is spent"),
                },
            ),
            ServiceError::ProviderSaturated {
                provider,
                retry_after,
            } => ApiError::new(
                Code::ProviderSaturated,
                format!("too many calls to {provider} are in flight on this instance; retry shortly"),
            )
            .retry_after(retry_after),
            ServiceError::CircuitOpen {
                provider,
                model,
                retry_after,
            } => ApiError::new(
                Code::ProviderCircuitOpen,
                format!("{provider}/{model} failed repeatedly; calls fail fast until the circuit's cool-down ends"),
            )
            .retry_after(retry_after),
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
            ServiceError::PromptNotFound => ApiError::new(Code::PromptNotFound, "Prompt not found"),
            ServiceError::LabelNotFound => ApiError::new(Code::LabelNotFound, "Label not found"),
            ServiceError::RevisionNotFound => {
                ApiError::new(Code::RevisionNotFound, "Revision not found")
            }
            ServiceError::InvalidLabel { label } => ApiError::field(
                Code::ValidationFailed,
                vec!["path".into(), "label".into()],
                "invalid_label",
                format!(
                    "label {label:?} must match ^[a-z0-9][a-z0-9_.-]{{0,62}}$ and not be `latest`"
                ),
            ),
            ServiceError::LabelConflict { current } => ApiError::new(
                Code::LabelConflict,
                match current {
                    Some(c) => format!("the label points to revision {c}"),
                    None => "the label does not exist".to_owned(),
                },
            )
            .with("current_revision", current),
            ServiceError::VariableContractChanged { added } => ApiError::new(
                Code::VariableContractChanged,
                format!(
                    "the target revision needs variables the current one does not: {}; \
                     send \"force\": true to move anyway",
                    added.join(", ")
                ),
            )
            .with("added", added),
            ServiceError::LabelInUse { labels } => ApiError::new(
                Code::LabelInUse,
                format!(
                    "labels point to this template: {}; move or remove them first",
                    labels.join(", ")
                ),
            )
            .with("labels", labels),
            ServiceError::MissingVariables { missing } => ApiError::new(
                Code::MissingVariables,
                format!("missing variables: {}", missing.join(", ")),
            )
            .with("missing", missing),
            ServiceError::InvalidVariables { names } => {
                let mut err = ApiError::new(
                    Code::ValidationFailed,
                    "variables must be an object of strings, numbers or booleans",
                );
                if names.is_empty() {
                    err.push_field(
                        vec!["body".into(), "variables".into()],
                        "invalid_type",
                        "variables must be an object",
                    );
                }
                for n in names {
                    err.push_field(
                        vec!["body".into(), "variables".into(), n.clone().into()],
                        "invalid_type",
                        format!("variable {n:?} must be a string, number or boolean"),
                    );
                }
                err
            }
            ServiceError::BatchNotFound => ApiError::new(Code::BatchNotFound, "Batch not found"),
            ServiceError::ScheduleNotFound => {
                ApiError::new(Code::ScheduleNotFound, "Schedule not found")
            }
            ServiceError::InvalidBatch { field, message } => ApiError::field(
                Code::ValidationFailed,
                vec!["body".into(), field.into()],
                "invalid_value",
                message,
            ),
            ServiceError::BatchTooLarge { items, max } => ApiError::new(
                Code::BatchTooLarge,
                format!("a batch may have at most {max} items (countries × repeats); {items} requested"),
            )
            .with("max", max),
            ServiceError::InvalidCron { message } => {
                ApiError::new(Code::InvalidCron, format!("invalid cron expression: {message}"))
            }
            ServiceError::Storage(s) => s.into(),
        }
    }
}

/// The stable code and message of a service error, as batch items and
/// schedule ticks store it (the batch worker's `describe`).
pub fn describe(e: ServiceError) -> (String, String) {
    let a = ApiError::from(e);
    (a.code.as_str().to_owned(), a.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- BEGIN generated by Code::markdown_table -->\n";
    const END: &str = "<!-- END generated -->";

    /// `docs/errors.md` lists every code the server can answer with, as the
    /// table generates it. `PROMPTER_UPDATE_DOCS=1 cargo test -p prompter-api
    /// --lib error` rewrites the generated part.
    #[test]
    fn docs_errors_md_lists_every_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md");
        let text = std::fs::read_to_string(path).expect("docs/errors.md exists");
        let start = text.find(BEGIN).expect("begin marker") + BEGIN.len();
        let end = text.find(END).expect("end marker");
        let want = Code::markdown_table();
        if text[start..end] != want {
            if std::env::var_os("PROMPTER_UPDATE_DOCS").is_some() {
                let updated = format!("{}{}{}", &text[..start], want, &text[end..]);
                std::fs::write(path, updated).unwrap();
            } else {
                panic!("docs/errors.md is out of date: run PROMPTER_UPDATE_DOCS=1 cargo test -p prompter-api --lib error");
            }
        }
    }

    #[test]
    fn wire_names_are_unique_screaming_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            let w = c.as_str();
            assert!(seen.insert(w), "duplicate wire name {w}");
            assert!(
                w.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'),
                "{w}"
            );
            assert!(
                c.status().is_client_error() || c.status().is_server_error(),
                "{w}"
            );
        }
    }
}
