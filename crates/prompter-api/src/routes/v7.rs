//! V7's routes under `/api/prompt-templates`, same shapes and statuses.

use super::template_id;
use crate::body::{dto_from_json, read_dto, read_json};
use crate::caller::{Caller, Role};
use crate::dto::{
    ts, CreatedTemplate, DuplicateCheck, EnsureVersionBody, EnsuredVersion, RunAnswer, RunBody,
};
use crate::error::{ApiError, Code, FieldError};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use prompter_domain::TemplateRequest;
use prompter_service::{EnsureRequest, IdempotencyKey, RunRequest, Scope};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Reads a create-shaped body; with an API key, absent org/workspace default
/// to the key's and others are refused. Every field of the wrong type and
/// every missing required one (all four V7 fields for a create, the
/// workspace for a duplicate check, and the org without a key) is reported
/// in one 422.
async fn template_request(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    caller: &Caller,
    for_create: bool,
) -> Result<TemplateRequest, ApiError> {
    let json = read_json(req, payload, &state.body).await?;
    let (mut body, errors) = TemplateRequest::from_json_all(&json);
    body.org_id = state.fold_opt(body.org_id.take());
    body.workspace_id = state.fold_opt(body.workspace_id.take());
    if let Scope::Tenant {
        org_id,
        workspace_id,
    } = &caller.scope
    {
        body.org_id.get_or_insert_with(|| org_id.clone());
        if let Some(ws) = workspace_id {
            body.workspace_id.get_or_insert_with(|| ws.clone());
        }
    }
    let mut problems: Vec<FieldError> = errors.iter().map(FieldError::from).collect();
    if !errors.iter().any(|e| e.code() == "invalid_body") {
        let wrong = |f: &str| errors.iter().any(|e| e.field() == Some(f));
        let mut missing = body.missing_required();
        if !for_create {
            missing.retain(|f| *f == "workspace_id");
        }
        if body.org_id.is_none() {
            missing.insert(0, "org_id");
        }
        problems.extend(
            missing
                .into_iter()
                .filter(|f| !wrong(f))
                .map(FieldError::missing),
        );
    }
    if !problems.is_empty() {
        return Err(ApiError::fields(Code::ValidationFailed, problems));
    }
    caller.check_body_scope(body.org_id.as_deref(), body.workspace_id.as_deref())?;
    Ok(body)
}

/// `POST /api/prompt-templates`: 201, or 409 `TEMPLATE_EXISTS`.
#[utoipa::path(post, path = "/api/prompt-templates", tag = "v7", operation_id = "createTemplate",
    request_body = crate::openapi::TemplateCreateBody,
    responses((status = 201, description = "Created", body = CreatedTemplate)))]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Write)?;
    let body = template_request(&req, payload, &state, &caller, true).await?;
    let rec = state.prompter.create_template(body).await?;
    Ok(HttpResponse::Created().json(CreatedTemplate::from(&rec)))
}

/// `POST /api/prompt-templates/check-duplicate`.
#[utoipa::path(post, path = "/api/prompt-templates/check-duplicate", tag = "v7",
    operation_id = "checkDuplicate", request_body = crate::openapi::DuplicateCheckBody,
    responses((status = 200, description = "Whether an active twin exists", body = DuplicateCheck)))]
pub async fn check_duplicate(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let body = template_request(&req, payload, &state, &caller, false).await?;
    let twin = state.prompter.check_duplicate(body).await?;
    Ok(HttpResponse::Ok().json(DuplicateCheck {
        exact_match: twin.is_some(),
        template_id: twin.as_ref().map(|t| t.id),
        name: twin.as_ref().map(|t| t.name.clone()),
        created_at: twin.as_ref().map(|t| ts(t.created_at)),
    }))
}

/// `POST /api/prompt-templates/{id}/ensure-version`.
#[utoipa::path(post, path = "/api/prompt-templates/{id}/ensure-version", tag = "v7",
    operation_id = "ensureVersion", params(crate::openapi::TemplatePath), request_body = EnsureVersionBody,
    responses((status = 200, description = "The version the provider serves now", body = EnsuredVersion)))]
pub async fn ensure_version(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Write)?;
    let id = template_id(&path)?;
    let body: EnsureVersionBody = read_dto(&req, payload, &state.body).await?;
    let (outcome, _) = state
        .prompter
        .ensure_version(
            &caller.scope,
            id,
            EnsureRequest {
                workspace_id: Some(state.fold_id(body.workspace_id)),
                org_id: state.fold_opt(body.org_id),
                provider: body.provider,
                model_id: body.model_id,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(EnsuredVersion {
        version_id: outcome.version_id,
        provider: outcome.provider,
        provider_version_key: outcome.provider_version_key,
        captured_at: ts(outcome.captured_at),
    }))
}

/// `POST /api/prompt-templates/{id}/run`.
#[utoipa::path(post, path = "/api/prompt-templates/{id}/run", tag = "v7", operation_id = "runTemplate",
    params(crate::openapi::TemplatePath, crate::openapi::IdempotencyHeader), request_body = RunBody,
    responses((status = 200, description = "The stored result (the original one when replayed)", body = RunAnswer,
        headers(("Idempotent-Replayed" = String, description = "`true` when an Idempotency-Key replay answered the stored result")))))]
pub async fn run(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Write)?;
    let id = template_id(&path)?;
    let json = read_json(&req, payload, &state.body).await?;
    let body: RunBody = dto_from_json(&json)?;
    // V7 answered 422 without `rendered_prompt`; with `runtime_vars` the
    // server renders the template instead (a present one, even empty, is used as is).
    if json.get("rendered_prompt").is_some() {
        // Present (even null or empty): exactly V7's rules.
        #[derive(serde::Deserialize)]
        struct V7Prompt {
            #[allow(dead_code)]
            rendered_prompt: String,
        }
        let _: V7Prompt = dto_from_json(&json)?;
    }
    let render_vars = match (&body.rendered_prompt, json.get("runtime_vars")) {
        (Some(_), _) => None,
        (None, Some(vars)) => Some(vars.clone()),
        (None, None) => {
            return Err(ApiError::field(
                crate::error::Code::ValidationFailed,
                crate::error::loc_of("rendered_prompt"),
                "missing",
                "missing field `rendered_prompt`",
            ))
        }
    };
    let idempotency = idempotency_key(&req, &json)?;
    let outcome = state
        .prompter
        .run(
            &caller.scope,
            id,
            RunRequest {
                rendered_prompt: body.rendered_prompt,
                render_vars,
                label: None,
                brand_name: body.brand_name,
                country: body.country,
                analysis_scope: body.analysis_scope,
                runtime_vars: Value::Object(body.runtime_vars),
                use_grounding: body.use_grounding,
            },
            idempotency,
        )
        .await?;
    let mut res = HttpResponse::Ok();
    if outcome.replayed {
        res.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(res.json(RunAnswer::from(&outcome.result)))
}

/// Reads the optional `Idempotency-Key` header; the body hash is over the
/// parsed body with sorted keys, so formatting differences do not matter.
pub(crate) fn idempotency_key(
    req: &HttpRequest,
    body: &prompter_domain::Json,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::field(
                Code::ValidationFailed,
                vec!["header".into(), "Idempotency-Key".into()],
                "invalid_header",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
        })?;
    let canonical = serde_json::to_string(&body.to_serde()).unwrap_or_default();
    Ok(Some(IdempotencyKey {
        key: key.to_owned(),
        request_hash: hex::encode(Sha256::digest(canonical.as_bytes())),
    }))
}
