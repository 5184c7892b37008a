//! The OpenAPI 3.1 document served at `GET /openapi.json`.
//!
//! Generated from the code with utoipa: every handler carries a
//! `#[utoipa::path]` attribute (method, path, parameters, request body and
//! success responses), every wire DTO derives `ToSchema`, and the route
//! table (`crate::routes::table`) lists the handlers. This module adds what
//! the attributes cannot say once per route:
//!
//! - the error responses of each operation, derived from the error code
//!   table ([`Code::ALL`], [`Code::status`]) and the codes each route can
//!   answer (its row in `crate::routes::table`): one response per status, whose schema
//!   narrows `code` to the codes of that status;
//! - the `x-request-id` header on every response, `Retry-After` on 429/503,
//!   `WWW-Authenticate` on 401;
//! - the optional bearer security scheme (auth is configurable: with
//!   `--auth off` no key is needed; the operational routes are always open).
//!
//! The create and check-duplicate bodies are parsed by the domain crate
//! (`prompter_domain::TemplateRequest`), not serde, so they are documented by
//! the mirror types [`TemplateCreateBody`] and [`DuplicateCheckBody`]; the
//! integration tests validate every response they see against this document
//! and `cargo xtask fuzz-api` runs schemathesis against a live server.

use crate::error::Code;
use crate::routes::table::{routes, Access};
use actix_web::HttpResponse;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};
use uuid::Uuid;

// ------------------------------------------------------------ parameters

/// The `{id}` path parameter of the template routes.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TemplatePath {
    /// Template id (a UUID; anything else is 404 `TEMPLATE_NOT_FOUND`).
    pub id: Uuid,
}

/// The optional `Idempotency-Key` request header of `POST /{id}/run`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// The same key with the same body within 24 h answers the original
    /// result (header `Idempotent-Replayed: true`) without calling the
    /// provider again; with a different body, 422 `IDEMPOTENCY_KEY_REUSED`.
    /// Keys are scoped to the template (and the caller's org). 1 to 255
    /// visible ASCII characters.
    #[param(
        rename = "Idempotency-Key",
        value_type = String,
        required = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]{1,255}$"
    )]
    pub idempotency_key: Option<String>,
}

// ------------------------------------------------------------ request bodies

/// Body of `POST /api/prompt-templates` (V7's fields). Parsed by the domain
/// crate: unknown keys are ignored, `null` counts as absent, numbers keep
/// their spelling. Only the config fields (`system_instructions`,
/// `user_prompt_template`, `country_set`, `model_id`, `inference_params`,
/// `tools_spec`, `response_format`, `grounding_*`, `retrieval_params`) reach
/// the config hash.
#[derive(Debug, ToSchema)]
pub struct TemplateCreateBody {
    /// Org of the template. Required without an API key; with one it
    /// defaults to the key's org and must match it.
    pub org_id: Option<String>,
    /// Workspace (brand) of the template.
    pub workspace_id: String,
    /// Template name (not part of the hash).
    pub name: String,
    /// Explicit provider (`openai`, `azure`, `anthropic`, `gemini`, …);
    /// inferred from `model_id` when absent or empty.
    pub provider: Option<String>,
    /// System prompt.
    pub system_instructions: Option<String>,
    /// User prompt with `{{placeholders}}`.
    pub user_prompt_template: String,
    /// Country codes as given (normalised in the canonical form).
    #[schema(default = json!([]))]
    pub country_set: Option<Vec<String>>,
    /// Model id, e.g. `gpt-4o`.
    pub model_id: String,
    /// Any JSON (floats rounded to 4 decimals in the canonical form).
    #[schema(required = false)]
    pub inference_params: Value,
    /// A list of tool definitions (or a falsy value).
    pub tools_spec: Option<Vec<Value>>,
    /// Any JSON.
    #[schema(required = false)]
    pub response_format: Value,
    /// Opaque grounding profile id.
    pub grounding_profile_id: Option<String>,
    /// Opaque grounding snapshot id.
    pub grounding_snapshot_id: Option<String>,
    /// Any JSON.
    #[schema(required = false)]
    pub retrieval_params: Value,
    /// Free-form author id (not part of the hash).
    pub created_by: Option<String>,
}

/// Body of `POST /api/prompt-templates/check-duplicate`: the create body,
/// of which only `workspace_id` (and `org_id` without an API key) is required.
#[derive(Debug, ToSchema)]
pub struct DuplicateCheckBody {
    /// Org of the template. Required without an API key; with one it
    /// defaults to the key's org and must match it.
    pub org_id: Option<String>,
    /// Workspace (brand) of the template.
    pub workspace_id: String,
    /// Template name (ignored).
    pub name: Option<String>,
    /// Explicit provider (ignored by the hash).
    pub provider: Option<String>,
    /// System prompt.
    pub system_instructions: Option<String>,
    /// User prompt with `{{placeholders}}`.
    pub user_prompt_template: Option<String>,
    /// Country codes as given.
    #[schema(default = json!([]))]
    pub country_set: Option<Vec<String>>,
    /// Model id.
    pub model_id: Option<String>,
    /// Any JSON.
    #[schema(required = false)]
    pub inference_params: Value,
    /// A list of tool definitions (or a falsy value).
    pub tools_spec: Option<Vec<Value>>,
    /// Any JSON.
    #[schema(required = false)]
    pub response_format: Value,
    /// Opaque grounding profile id.
    pub grounding_profile_id: Option<String>,
    /// Opaque grounding snapshot id.
    pub grounding_snapshot_id: Option<String>,
    /// Any JSON.
    #[schema(required = false)]
    pub retrieval_params: Value,
    /// Free-form author id.
    pub created_by: Option<String>,
}

// ------------------------------------------------------------ errors

/// Every error code; each always answers with the same HTTP status
/// (generated from [`Code::ALL`]).
#[derive(Debug)]
pub struct ErrorCode;

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        let table: Vec<String> = Code::ALL
            .iter()
            .map(|c| format!("`{}` ({})", c.as_str(), c.status().as_u16()))
            .collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(format!(
                "Stable machine-readable error code and its HTTP status: {}.",
                table.join(", ")
            )))
            .enum_values(Some(Code::ALL.iter().map(|c| c.as_str())))
            .into()
    }
}

impl ToSchema for ErrorCode {}

/// The `detail` object of every error but validation errors. Besides `code`
/// and `message` it may carry context (other keys may be added).
#[derive(Debug, ToSchema)]
pub struct ErrorDetail {
    /// The error code.
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
    /// `TEMPLATE_EXISTS`: the active twin (null when the database did not say).
    pub template_id: Option<Uuid>,
    /// `TEMPLATE_EXISTS`: the twin's name.
    pub name: Option<String>,
    /// `TEMPLATE_EXISTS`: when the twin was created.
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
    /// Provider errors: the provider.
    pub provider: Option<String>,
    /// `PAYLOAD_TOO_LARGE`: the body limit.
    pub limit_bytes: Option<u64>,
    /// `INTERNAL_ERROR`: the request id to quote.
    pub request_id: Option<String>,
    /// `PROVIDER_NOT_CONFIGURED`: the environment variables that enable the provider.
    pub env: Option<Vec<String>>,
    /// `INVALID_QUERY`: every bad query parameter.
    pub parameters: Option<Vec<String>>,
    /// `LABEL_CONFLICT`: where the label points now (null: absent).
    pub current_revision: Option<i64>,
    /// `VARIABLE_CONTRACT_CHANGED`: the variables the target needs in addition.
    pub added: Option<Vec<String>>,
    /// `LABEL_IN_USE`: the labels pointing to the template.
    pub labels: Option<Vec<String>>,
    /// `MISSING_VARIABLES`: the variables not given.
    pub missing: Option<Vec<String>>,
}

/// `{"detail": {"code", "message", …}}`: every error but validation errors.
#[derive(Debug, ToSchema)]
pub struct ErrorEnvelope {
    /// The error.
    pub detail: ErrorDetail,
}

/// A location segment: a field name or a list index.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LocSegment {
    /// Field name (the first is `body` or `header`).
    Field(String),
    /// List index.
    Index(u64),
}

/// One field problem in FastAPI's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationIssue {
    /// Machine type, e.g. `missing`, `invalid_type`, `invalid_json`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Location, e.g. `["body", "country_set", 1]`.
    pub loc: Vec<LocSegment>,
    /// Human-readable message.
    pub msg: String,
    /// Context, when there is some: `line`, `column` and `offset` of a JSON
    /// syntax error (`loc` is then `["body", <byte offset>]`, as FastAPI's).
    #[schema(required = false, value_type = Object)]
    pub ctx: Option<Value>,
}

/// Validation errors keep FastAPI's shape (`detail` is a list), with a top-level `code`.
#[derive(Debug, ToSchema)]
pub struct ValidationErrorEnvelope {
    /// The field problems.
    pub detail: Vec<ValidationIssue>,
    /// `VALIDATION_FAILED` or `MALFORMED_JSON`.
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
}

/// Codes answered in the validation shape (`ApiError::field`).
const VALIDATION_SHAPED: [Code; 2] = [Code::ValidationFailed, Code::MalformedJson];

// ------------------------------------------------------------ the document

/// The document's frame and the schemas no route reaches by itself; the
/// operations come from the route table (`crate::routes::table`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Prompter API",
        description = "Content-addressed prompt template registry: V7's routes unchanged (create, \
            check-duplicate, ensure-version, run), plus template lifecycle, version and result \
            history, drift events, config diffs and idempotent runs.\n\n\
            Errors answer `{\"detail\": {\"code\", \"message\", …}}`, validation errors \
            `{\"detail\": [{\"type\", \"loc\", \"msg\"}], \"code\", \"message\"}`; unknown routes \
            answer 404 `NOT_FOUND` and wrong methods 405 `METHOD_NOT_ALLOWED` in the same \
            envelope. Every response carries `x-request-id`. Authentication is configurable: \
            with `--auth required` every route but the operational ones needs \
            `Authorization: Bearer <key>`."
    ),
    components(schemas(
        ErrorCode,
        ErrorDetail,
        ErrorEnvelope,
        ValidationIssue,
        ValidationErrorEnvelope,
        crate::routes::ops::Readiness
    )),
    tags(
        (name = "v7", description = "V7's drop-in routes"),
        (name = "templates", description = "Template lifecycle and config diffs"),
        (name = "history", description = "Version and result history"),
        (name = "drift", description = "Provider version drift events"),
        (name = "prompts", description = "Prompt releases: revisions, labels, fetch with ETag, render, run by label"),
        (name = "usage", description = "Token usage and cost from daily rollups"),
        (name = "console", description = "Who the caller is and which workspaces it sees (the web console's sign-in and workspace picker)"),
        (name = "batches", description = "Tracking batches (countries × repeats, run in the background) and their schedules"),
        (name = "ops", description = "Health, readiness, version, metrics, this document"),
    )
)]
pub struct ApiDoc;

fn header(description: &str, schema: Value) -> Value {
    json!({ "description": description, "schema": schema })
}

/// The error response of one status with these codes.
fn error_response(status: u16, codes: &[Code], readiness: bool) -> Value {
    let names =
        |cs: &[Code]| -> Vec<Value> { cs.iter().map(|c| Value::from(c.as_str())).collect() };
    let plain: Vec<Code> = codes.to_vec();
    let validation: Vec<Code> = codes
        .iter()
        .copied()
        .filter(|c| VALIDATION_SHAPED.contains(c))
        .collect();
    let envelope = json!({
        "type": "object",
        "required": ["detail"],
        "properties": {
            "detail": {
                "allOf": [
                    {"$ref": "#/components/schemas/ErrorDetail"},
                    {"type": "object", "properties": {"code": {"enum": names(&plain)}}}
                ]
            }
        }
    });
    let mut variants = vec![envelope];
    if !validation.is_empty() {
        variants.push(json!({
            "allOf": [
                {"$ref": "#/components/schemas/ValidationErrorEnvelope"},
                {"type": "object", "properties": {"code": {"enum": names(&validation)}}}
            ]
        }));
    }
    if readiness {
        variants.push(json!({"$ref": "#/components/schemas/Readiness"}));
    }
    let schema = if variants.len() == 1 {
        variants.remove(0)
    } else {
        json!({ "anyOf": variants })
    };
    let list: Vec<String> = codes.iter().map(|c| format!("`{}`", c.as_str())).collect();
    let mut description = format!("Error: {}", list.join(", "));
    if readiness {
        description = format!("Not ready (the readiness body), or {description}");
    }
    let mut headers = Map::new();
    if status == 429 || status == 503 {
        headers.insert(
            "Retry-After".into(),
            header(
                "Seconds to wait before retrying",
                json!({"type": "string", "pattern": "^[0-9]+$"}),
            ),
        );
    }
    if status == 401 {
        headers.insert(
            "WWW-Authenticate".into(),
            header("`Bearer`", json!({"type": "string"})),
        );
    }
    json!({
        "description": description,
        "headers": headers,
        "content": {"application/json": {"schema": schema}}
    })
}

/// Adds each route's error responses, headers and security (from the route
/// table) to the generated document.
fn complete(doc: &mut Value) {
    let request_id = header(
        "The request id: the client's `x-request-id` when sane, else a generated UUID",
        json!({"type": "string"}),
    );
    for route in routes() {
        let method = route.method.as_str().to_ascii_lowercase();
        let Some(op) = doc["paths"][&route.path]
            .get_mut(&method)
            .and_then(Value::as_object_mut)
        else {
            panic!(
                "{method} {} is in the route table but not documented",
                route.path
            );
        };
        let mut by_status: BTreeMap<u16, Vec<Code>> = BTreeMap::new();
        for code in &route.codes {
            by_status
                .entry(code.status().as_u16())
                .or_default()
                .push(*code);
        }
        let responses = op
            .entry("responses")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("responses is an object");
        for (status, codes) in by_status {
            let readiness = route.operation_id == "readyz" && status == 503;
            responses.insert(
                status.to_string(),
                error_response(status, &codes, readiness),
            );
        }
        for response in responses.values_mut() {
            let Some(r) = response.as_object_mut() else {
                continue;
            };
            let headers = r.entry("headers").or_insert_with(|| json!({}));
            if let Some(h) = headers.as_object_mut() {
                h.insert("x-request-id".into(), request_id.clone());
            }
        }
        if route.access == Access::Open {
            op.insert("security".into(), json!([{}]));
        }
    }
    doc["components"]["securitySchemes"] = json!({
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`prm_<prefix>_<secret>`, from `prompter keys create`). \
                Needed only when the server runs with `--auth required` (the default off \
                loopback); `/metrics` needs an admin key only with `--metrics-auth`."
        }
    });
    doc["security"] = json!([{"bearerAuth": []}, {}]);
}

/// The complete document as JSON.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut api = ApiDoc::openapi();
        for route in routes() {
            api.merge(route.doc.clone());
        }
        let mut doc = serde_json::to_value(api).expect("the OpenAPI document serializes");
        complete(&mut doc);
        doc
    })
}

fn document_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| document().to_string())
}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", operation_id = "openapi",
    responses((status = 200, description = "This OpenAPI 3.1 document", body = Value)))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_in_the_error_code_enum() {
        let doc = document();
        let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap();
        assert_eq!(codes.len(), Code::ALL.len());
        for c in Code::ALL {
            assert!(codes.contains(&Value::from(c.as_str())), "{}", c.as_str());
        }
    }

    #[test]
    fn is_openapi_3_1_with_every_route() {
        let doc = document();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        for (path, method) in [
            ("/api/prompt-templates", "post"),
            ("/api/prompt-templates", "get"),
            ("/api/prompt-templates/health", "get"),
            ("/api/prompt-templates/check-duplicate", "post"),
            ("/api/prompt-templates/drift", "get"),
            ("/api/prompt-templates/results/{result_id}", "get"),
            ("/api/prompt-templates/{id}", "get"),
            ("/api/prompt-templates/{id}", "delete"),
            ("/api/prompt-templates/{id}/restore", "post"),
            ("/api/prompt-templates/{id}/versions", "get"),
            ("/api/prompt-templates/{id}/results", "get"),
            ("/api/prompt-templates/{id}/diff/{other_id}", "get"),
            ("/api/prompt-templates/{id}/ensure-version", "post"),
            ("/api/prompt-templates/{id}/run", "post"),
            ("/api/usage", "get"),
            ("/metrics", "get"),
            ("/healthz", "get"),
            ("/readyz", "get"),
            ("/version", "get"),
            ("/openapi.json", "get"),
            ("/api/prompt-templates/{id}/render", "post"),
            ("/api/prompts", "get"),
            ("/api/prompts/{name}", "get"),
            ("/api/prompts/{name}/revisions", "get"),
            ("/api/prompts/{name}/render", "post"),
            ("/api/prompts/{name}/run", "post"),
            ("/api/prompts/{name}/labels/{label}", "put"),
            ("/api/prompts/{name}/labels/{label}", "delete"),
            ("/api/prompts/{name}/labels/{label}/history", "get"),
        ] {
            let op = &paths[path][method];
            assert!(op.is_object(), "{method} {path} is documented");
            assert!(
                op["responses"]["500"].is_object(),
                "{method} {path} documents 500"
            );
        }
        let run = &paths["/api/prompt-templates/{id}/run"]["post"];
        assert!(run["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"));
        assert!(run["responses"]["200"]["headers"]["Idempotent-Replayed"].is_object());
        assert!(run["responses"]["503"]["headers"]["Retry-After"].is_object());
        assert!(doc["components"]["securitySchemes"]["bearerAuth"].is_object());
    }
}
