//! Prompt releases (issue 14) under `/api/prompts`: prompts and revisions,
//! fetch by label or revision with `ETag`/304, labels (compare-and-set
//! moves, contract check, history), render and run by label; plus
//! `POST /api/prompt-templates/{id}/render`.

use super::history::page;
use super::query;
use super::template_id;
use crate::body::{dto_from_json, read_dto, read_json};
use crate::caller::{Caller, Role};
use crate::dto::{
    LabelEventView, LabelMoveAnswer, LabelMoveBody, List, PromptRunAnswer, PromptRunBody,
    PromptSummaryView, PromptView, RenderAnswer, RevisionView, TemplateView,
};
use crate::error::{ApiError, Code};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use prompter_domain::render::variables;
use prompter_domain::Json;
use prompter_service::prompts::{prompt_text, render_template, LATEST};
use prompter_service::{LabelMoveRequest, RunRequest, Scope, Selector};
use prompter_storage::PromptKey;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

/// `org_id` / `workspace_id` of the prompt routes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TenantQuery {
    /// Org (required unless the API key fixes it).
    org_id: Option<String>,
    /// Workspace (required unless the API key fixes it).
    workspace_id: Option<String>,
}

/// Tenancy, `label` or `revision`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SelectQuery {
    /// Org (required unless the API key fixes it).
    pub(crate) org_id: Option<String>,
    /// Workspace (required unless the API key fixes it).
    pub(crate) workspace_id: Option<String>,
    /// A label (`latest`: the newest active revision).
    pub(crate) label: Option<String>,
    /// A revision number.
    #[param(minimum = 1)]
    pub(crate) revision: Option<i64>,
}

/// Tenancy and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TenantPageQuery {
    /// Org (required unless the API key fixes it).
    org_id: Option<String>,
    /// Workspace (required unless the API key fixes it).
    workspace_id: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
    /// Opaque cursor from a previous page's `next_cursor`.
    cursor: Option<String>,
}

/// Tenancy, name search and paging of `GET /api/prompts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PromptListQuery {
    /// Org (required unless the API key fixes it).
    org_id: Option<String>,
    /// Workspace (required unless the API key fixes it).
    workspace_id: Option<String>,
    /// Only prompts whose name contains this (ASCII case-insensitive).
    search: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
    /// Opaque cursor from a previous page's `next_cursor`.
    cursor: Option<String>,
}

/// The `{name}` path parameter.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct NamePath {
    /// Prompt name (one percent-encoded path segment).
    #[allow(dead_code)]
    name: String,
}

/// The `{name}` and `{label}` path parameters.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct LabelPath {
    /// Prompt name (one percent-encoded path segment).
    #[allow(dead_code)]
    name: String,
    /// Label name.
    #[allow(dead_code)]
    label: String,
}

/// The org and workspace a request addresses: the key's, or the query's
/// (required when the key does not fix them). Another tenant's → 404.
pub(crate) fn tenant(
    state: &AppState,
    caller: &Caller,
    org_id: Option<String>,
    workspace_id: Option<String>,
) -> Result<(String, String), ApiError> {
    let (org_id, workspace_id) = (state.fold_opt(org_id), state.fold_opt(workspace_id));
    let (org, ws) = match &caller.scope {
        Scope::Unrestricted => (org_id, workspace_id),
        Scope::Tenant {
            org_id: key_org,
            workspace_id: key_ws,
        } => {
            let other_org = org_id.as_ref().is_some_and(|o| o != key_org);
            let other_ws = matches!((key_ws, &workspace_id), (Some(k), Some(q)) if k != q);
            if other_org || other_ws {
                return Err(ApiError::new(Code::PromptNotFound, "Prompt not found"));
            }
            (Some(key_org.clone()), key_ws.clone().or(workspace_id))
        }
    };
    match (org, ws) {
        (Some(o), Some(w)) => Ok((o, w)),
        (o, w) => {
            let mut err = ApiError::new(
                Code::ValidationFailed,
                "org_id and workspace_id are required unless the API key fixes them",
            );
            for (name, missing) in [("org_id", o.is_none()), ("workspace_id", w.is_none())] {
                if missing {
                    err.push_field(
                        vec!["query".into(), name.into()],
                        "missing",
                        format!("Field required: {name}"),
                    );
                }
            }
            Err(err)
        }
    }
}

pub(crate) fn key(org_workspace: (String, String), name: String) -> PromptKey {
    PromptKey {
        org_id: org_workspace.0,
        workspace_id: org_workspace.1,
        name,
    }
}

pub(crate) fn selector(label: Option<String>, revision: Option<i64>) -> Result<Selector, ApiError> {
    match (label, revision) {
        (Some(_), Some(_)) => Err(ApiError::new(
            Code::InvalidQuery,
            "give either label or revision, not both",
        )),
        (None, Some(n)) => Ok(Selector::Revision(n)),
        (Some(l), None) => Ok(Selector::Label(l)),
        (None, None) => Ok(Selector::Label(LATEST.to_owned())),
    }
}

/// Moving or removing a protected label needs an admin key.
fn require_for_label(state: &AppState, caller: &Caller, label: &str) -> Result<(), ApiError> {
    if state.releases.protected_labels.iter().any(|p| p == label) {
        caller.require(Role::Admin)
    } else {
        caller.require(Role::Write)
    }
}

/// The `variables` member of a body (an empty object when absent).
fn body_variables(json: &Json) -> Json {
    json.get("variables")
        .cloned()
        .unwrap_or(Json::Object(Vec::new()))
}

/// `GET /api/prompts`: prompts by name.
#[utoipa::path(get, path = "/api/prompts", tag = "prompts", operation_id = "listPrompts",
    params(PromptListQuery),
    responses((status = 200, description = "A page of prompts by name", body = List<PromptSummaryView>)))]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let q: PromptListQuery = query(&req)?;
    let (org, ws) = tenant(&state, &caller, q.org_id, q.workspace_id)?;
    let p = state
        .prompter
        .list_prompts(&org, &ws, q.search.as_deref(), &page(q.limit, &q.cursor)?)
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(p, PromptSummaryView::from)))
}

/// `GET /api/prompts/{name}/revisions`: newest first.
#[utoipa::path(get, path = "/api/prompts/{name}/revisions", tag = "prompts",
    operation_id = "listRevisions", params(NamePath, TenantPageQuery),
    responses((status = 200, description = "Revisions newest first", body = List<RevisionView>)))]
pub async fn revisions(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let q: TenantPageQuery = query(&req)?;
    let k = key(
        tenant(&state, &caller, q.org_id, q.workspace_id)?,
        path.into_inner(),
    );
    let p = state
        .prompter
        .list_revisions(&k, &page(q.limit, &q.cursor)?)
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(p, RevisionView::from)))
}

/// The ETag of a fetched prompt: everything in the body that can change.
fn etag(t: &prompter_storage::TemplateRecord, labels: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(t.id.as_bytes());
    h.update(t.config_hash.as_bytes());
    h.update([u8::from(t.deleted_at.is_some())]);
    for l in labels {
        h.update(b"\x1f");
        h.update(l.as_bytes());
    }
    format!("\"{}\"", &hex::encode(h.finalize())[..32])
}

/// Whether `If-None-Match` matches `tag` (weak comparison, `*`).
fn not_modified(req: &HttpRequest, tag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|c| c == "*" || c.strip_prefix("W/").unwrap_or(c) == tag)
}

/// `GET /api/prompts/{name}?label=L|revision=N`: the template with its
/// revision, labels and variables; `ETag`, 304 on a matching `If-None-Match`.
#[utoipa::path(get, path = "/api/prompts/{name}", tag = "prompts", operation_id = "getPrompt",
    params(NamePath, SelectQuery, ("If-None-Match" = Option<String>, Header,
        description = "ETags of a copy the client holds: 304 when one matches")),
    responses(
        (status = 200, description = "The revision", body = PromptView, headers(
            ("ETag" = String, description = "Changes with the template, its config and its labels"),
            ("Cache-Control" = String, description = "`private, max-age=<--prompt-max-age-secs>`"))),
        (status = 304, description = "Not modified (no body)", headers(
            ("ETag" = String, description = "The current ETag"))),
    ))]
pub async fn fetch(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let q: SelectQuery = query(&req)?;
    let k = key(
        tenant(&state, &caller, q.org_id, q.workspace_id)?,
        path.into_inner(),
    );
    let sel = selector(q.label, q.revision)?;
    let found = state.prompter.resolve_prompt(&k, &sel).await?;
    let tag = etag(&found.template, &found.labels);
    let cache = format!("private, max-age={}", state.releases.max_age_secs);
    if not_modified(&req, &tag) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .insert_header((header::CACHE_CONTROL, cache))
            .finish());
    }
    let vars = variables(prompt_text(&found.template));
    let revision = found.template.revision;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, cache))
        .json(PromptView {
            template: TemplateView::from(found.template),
            revision,
            labels: found.labels,
            variables: vars,
        }))
}

/// `PUT /api/prompts/{name}/labels/{label}`: move (or create) a label.
#[utoipa::path(put, path = "/api/prompts/{name}/labels/{label}", tag = "prompts",
    operation_id = "moveLabel", params(LabelPath, TenantQuery), request_body = LabelMoveBody,
    responses((status = 200, description = "Moved", body = LabelMoveAnswer)))]
pub async fn move_label(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (name, label) = path.into_inner();
    require_for_label(&state, &caller, &label)?;
    let q: TenantQuery = query(&req)?;
    let k = key(tenant(&state, &caller, q.org_id, q.workspace_id)?, name);
    let body: LabelMoveBody = read_dto(&req, payload, &state.body).await?;
    let moved = state
        .prompter
        .move_label(
            &k,
            &label,
            &LabelMoveRequest {
                revision: body.revision,
                expected_revision: body.expected_revision,
                force: body.force,
            },
            caller.key_prefix.as_deref(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(LabelMoveAnswer {
        label: moved.label,
        revision: moved.revision,
        template_id: moved.template_id,
        previous_revision: moved.previous_revision,
    }))
}

/// `DELETE /api/prompts/{name}/labels/{label}`: 204.
#[utoipa::path(delete, path = "/api/prompts/{name}/labels/{label}", tag = "prompts",
    operation_id = "removeLabel", params(LabelPath, TenantQuery),
    responses((status = 204, description = "Removed")))]
pub async fn remove_label(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (name, label) = path.into_inner();
    require_for_label(&state, &caller, &label)?;
    let q: TenantQuery = query(&req)?;
    let k = key(tenant(&state, &caller, q.org_id, q.workspace_id)?, name);
    state
        .prompter
        .remove_label(&k, &label, caller.key_prefix.as_deref())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/prompts/{name}/labels/{label}/history`: newest first.
#[utoipa::path(get, path = "/api/prompts/{name}/labels/{label}/history", tag = "prompts",
    operation_id = "labelHistory", params(LabelPath, TenantPageQuery),
    responses((status = 200, description = "Moves and removals newest first", body = List<LabelEventView>)))]
pub async fn label_history(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let (name, label) = path.into_inner();
    let q: TenantPageQuery = query(&req)?;
    let k = key(tenant(&state, &caller, q.org_id, q.workspace_id)?, name);
    let p = state
        .prompter
        .label_history(&k, &label, &page(q.limit, &q.cursor)?)
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(p, LabelEventView::from)))
}

/// `POST /api/prompt-templates/{id}/render`.
#[utoipa::path(post, path = "/api/prompt-templates/{id}/render", tag = "prompts",
    operation_id = "renderTemplate", params(crate::openapi::TemplatePath),
    request_body = crate::dto::RenderBody,
    responses((status = 200, description = "The rendered messages", body = RenderAnswer)))]
pub async fn render_template_route(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let id = template_id(&path)?;
    let json = read_json(&req, payload, &state.body).await?;
    let _: crate::dto::RenderBody = dto_from_json(&json)?;
    let (_, rendered) = state
        .prompter
        .render_by_id(&caller.scope, id, &body_variables(&json))
        .await?;
    Ok(HttpResponse::Ok().json(RenderAnswer::from(rendered)))
}

/// `POST /api/prompts/{name}/render?label=L|revision=N`.
#[utoipa::path(post, path = "/api/prompts/{name}/render", tag = "prompts",
    operation_id = "renderPrompt", params(NamePath, SelectQuery),
    request_body = crate::dto::RenderBody,
    responses((status = 200, description = "The rendered messages", body = RenderAnswer)))]
pub async fn render(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let q: SelectQuery = query(&req)?;
    let k = key(
        tenant(&state, &caller, q.org_id, q.workspace_id)?,
        path.into_inner(),
    );
    let sel = selector(q.label, q.revision)?;
    let json = read_json(&req, payload, &state.body).await?;
    let _: crate::dto::RenderBody = dto_from_json(&json)?;
    let found = state.prompter.resolve_prompt(&k, &sel).await?;
    let rendered = render_template(&found.template, &body_variables(&json))?;
    Ok(HttpResponse::Ok().json(RenderAnswer::from(rendered)))
}

/// `POST /api/prompts/{name}/run?label=L|revision=N`: render server-side and run.
#[utoipa::path(post, path = "/api/prompts/{name}/run", tag = "prompts", operation_id = "runPrompt",
    params(NamePath, SelectQuery, crate::openapi::IdempotencyHeader), request_body = PromptRunBody,
    responses((status = 200, description = "The stored result (the original one when replayed)",
        body = PromptRunAnswer,
        headers(("Idempotent-Replayed" = String, description = "`true` when an Idempotency-Key replay answered the stored result")))))]
pub async fn run(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Write)?;
    let q: SelectQuery = query(&req)?;
    let k = key(
        tenant(&state, &caller, q.org_id, q.workspace_id)?,
        path.into_inner(),
    );
    let sel = selector(q.label, q.revision)?;
    let json = read_json(&req, payload, &state.body).await?;
    let body: PromptRunBody = dto_from_json(&json)?;
    let idempotency = super::v7::idempotency_key(&req, &json)?;
    let vars = body_variables(&json);
    let outcome = state
        .prompter
        .run_prompt(
            &caller.scope,
            &k,
            &sel,
            RunRequest {
                rendered_prompt: None,
                runtime_vars: Value::Object(body.variables),
                render_vars: Some(vars),
                label: None,
                brand_name: body.brand_name,
                country: body.country,
                analysis_scope: body.analysis_scope,
                use_grounding: body.use_grounding,
            },
            idempotency,
        )
        .await?;
    let mut res = HttpResponse::Ok();
    if outcome.replayed {
        res.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(res.json(PromptRunAnswer::from(&outcome.result)))
}
