//! Beyond V7: lifecycle (list, get, delete, restore), history (versions,
//! results), drift events and config diffs.

use super::{query, template_id};
use crate::caller::{Caller, Role};
use crate::dto::{
    ConfigDiff, Difference, DriftView, List, ResultDetail, ResultSummary, TemplateView, VersionView,
};
use crate::error::{ApiError, Code};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use prompter_storage::{DriftFilter, PageRequest, ResultFilter, TemplateFilter};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

/// `limit` (1..=1000, default 50) and `cursor` of a list call.
/// (Inlined in each query struct: `serde(flatten)` breaks number parsing
/// of url-encoded queries.)
pub(crate) fn page(limit: Option<u64>, cursor: &Option<String>) -> Result<PageRequest, ApiError> {
    let limit = limit.unwrap_or(PageRequest::DEFAULT_LIMIT);
    if limit == 0 || limit > PageRequest::MAX_LIMIT {
        return Err(super::invalid_query(&[(
            "limit".to_owned(),
            format!("must be between 1 and {}", PageRequest::MAX_LIMIT),
        )]));
    }
    Ok(PageRequest {
        limit,
        cursor: cursor.clone().filter(|c| !c.is_empty()),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
    /// Opaque cursor from a previous page's `next_cursor`.
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this org's templates.
    org_id: Option<String>,
    /// Only this workspace's templates.
    workspace_id: Option<String>,
    /// Also list soft-deleted templates.
    #[serde(default)]
    include_deleted: bool,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
    /// Opaque cursor from a previous page's `next_cursor`.
    cursor: Option<String>,
}

/// `GET /api/prompt-templates`: templates newest first.
#[utoipa::path(get, path = "/api/prompt-templates", tag = "templates", operation_id = "listTemplates",
    params(ListQuery), responses((status = 200, description = "A page of templates", body = List<TemplateView>)))]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let q: ListQuery = query(&req)?;
    let filter = TemplateFilter {
        org_id: state.fold_opt(q.org_id),
        workspace_id: state.fold_opt(q.workspace_id),
        include_deleted: q.include_deleted,
    };
    let page = state
        .prompter
        .list_templates(&caller.scope, &filter, &page(q.limit, &q.cursor)?)
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, TemplateView::from)))
}

/// `GET /api/prompt-templates/{id}`.
#[utoipa::path(get, path = "/api/prompt-templates/{id}", tag = "templates", operation_id = "getTemplate",
    params(crate::openapi::TemplatePath), responses((status = 200, description = "The template", body = TemplateView)))]
pub async fn get(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let tpl = state
        .prompter
        .get_template(&caller.scope, template_id(&path)?)
        .await?;
    Ok(HttpResponse::Ok().json(TemplateView::from(tpl)))
}

/// `DELETE /api/prompt-templates/{id}`: soft delete, 204.
#[utoipa::path(delete, path = "/api/prompt-templates/{id}", tag = "templates", operation_id = "deleteTemplate",
    params(crate::openapi::TemplatePath), responses((status = 204, description = "Soft-deleted; its config hash is free again")))]
pub async fn delete(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Write)?;
    state
        .prompter
        .delete_template(&caller.scope, template_id(&path)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/prompt-templates/{id}/restore`: 200, or 409 naming the active twin.
#[utoipa::path(post, path = "/api/prompt-templates/{id}/restore", tag = "templates", operation_id = "restoreTemplate",
    params(crate::openapi::TemplatePath), responses((status = 200, description = "Restored", body = TemplateView)))]
pub async fn restore(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Write)?;
    let tpl = state
        .prompter
        .restore_template(&caller.scope, template_id(&path)?)
        .await?;
    Ok(HttpResponse::Ok().json(TemplateView::from(tpl)))
}

/// `GET /api/prompt-templates/{id}/versions`.
#[utoipa::path(get, path = "/api/prompt-templates/{id}/versions", tag = "history", operation_id = "listVersions",
    params(crate::openapi::TemplatePath, PageQuery), responses((status = 200, description = "Version rows newest first", body = List<VersionView>)))]
pub async fn versions(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let q: PageQuery = query(&req)?;
    let page = state
        .prompter
        .list_versions(
            &caller.scope,
            template_id(&path)?,
            &page(q.limit, &q.cursor)?,
        )
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, |r| VersionView::from(&r))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ResultsQuery {
    /// Only results of this version row.
    version_id: Option<Uuid>,
    /// Only results of this country.
    country: Option<String>,
    /// Only results of this batch.
    batch_id: Option<Uuid>,
    /// Only results stored at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Only results stored before this time (RFC 3339).
    until: Option<DateTime<Utc>>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
    /// Opaque cursor from a previous page's `next_cursor`.
    cursor: Option<String>,
}

/// `GET /api/prompt-templates/{id}/results`.
#[utoipa::path(get, path = "/api/prompt-templates/{id}/results", tag = "history", operation_id = "listResults",
    params(crate::openapi::TemplatePath, ResultsQuery), responses((status = 200, description = "Results newest first", body = List<ResultSummary>)))]
pub async fn results(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let q: ResultsQuery = query(&req)?;
    let filter = ResultFilter {
        version_id: q.version_id,
        country: q.country,
        batch_id: q.batch_id,
        since: q.since,
        until: q.until,
    };
    let page = state
        .prompter
        .list_results(
            &caller.scope,
            template_id(&path)?,
            &filter,
            &page(q.limit, &q.cursor)?,
        )
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, |r| ResultSummary::from(&r))))
}

/// `GET /api/prompt-templates/results/{result_id}`: summary plus full request/response.
#[utoipa::path(get, path = "/api/prompt-templates/results/{result_id}", tag = "history", operation_id = "getResult",
    params(("result_id" = Uuid, Path, description = "Result id")),
    responses((status = 200, description = "The result with everything stored", body = ResultDetail)))]
pub async fn result(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let id = Uuid::parse_str(&path)
        .map_err(|_| ApiError::new(Code::ResultNotFound, "Result not found"))?;
    let r = state.prompter.get_result(&caller.scope, id).await?;
    Ok(HttpResponse::Ok().json(ResultDetail {
        summary: ResultSummary::from(&r),
        request: r.request,
        response: r.response,
        analysis_config: r.analysis_config,
        output: r.output,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DriftQuery {
    /// Only this org's events.
    org_id: Option<String>,
    /// Only this workspace's events.
    workspace_id: Option<String>,
    /// Only this template's events.
    template_id: Option<Uuid>,
    /// Only events detected at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
    /// Opaque cursor from a previous page's `next_cursor`.
    cursor: Option<String>,
}

/// `GET /api/prompt-templates/drift`: drift events newest first.
#[utoipa::path(get, path = "/api/prompt-templates/drift", tag = "drift", operation_id = "listDrift",
    params(DriftQuery), responses((status = 200, description = "Drift events newest first", body = List<DriftView>)))]
pub async fn drift(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let q: DriftQuery = query(&req)?;
    let filter = DriftFilter {
        org_id: state.fold_opt(q.org_id),
        workspace_id: state.fold_opt(q.workspace_id),
        template_id: q.template_id,
        since: q.since,
    };
    let page = state
        .prompter
        .list_drift(&caller.scope, &filter, &page(q.limit, &q.cursor)?)
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, |r| DriftView::from(&r))))
}

/// `GET /api/prompt-templates/{id}/diff/{other_id}`: canonical-config differences.
#[utoipa::path(get, path = "/api/prompt-templates/{id}/diff/{other_id}", tag = "templates", operation_id = "diffTemplates",
    params(crate::openapi::TemplatePath, ("other_id" = Uuid, Path, description = "The template to compare with")),
    responses((status = 200, description = "Canonical-config differences", body = ConfigDiff)))]
pub async fn diff(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let (left, right) = path.into_inner();
    let differences = state
        .prompter
        .diff_templates(&caller.scope, template_id(&left)?, template_id(&right)?)
        .await?;
    Ok(HttpResponse::Ok().json(ConfigDiff {
        differences: differences.into_iter().map(Difference::from).collect(),
    }))
}
