//! Beyond V7: lifecycle (list, get, delete, restore), history (versions,
//! results), drift events and config diffs.

use super::template_id;
use crate::caller::{Caller, Role};
use crate::dto::{
    DriftView, List, ResultDetail, ResultSummary, TemplateView, VersionView,
};
use crate::error::{ApiError, Code};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use prompter_storage::{DriftFilter, PageRequest, ResultFilter, TemplateFilter};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use uuid::Uuid;

/// Parses the query string, answering 400 `INVALID_QUERY` naming the problem.
fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::new(Code::InvalidQuery, format!("invalid query string: {e}")))
}

/// `limit` (1..=1000, default 50) and `cursor` of a list call.
/// (Inlined in each query struct: `serde(flatten)` breaks number parsing
/// of url-encoded queries.)
fn page(limit: Option<u64>, cursor: &Option<String>) -> Result<PageRequest, ApiError> {
    let limit = limit.unwrap_or(PageRequest::DEFAULT_LIMIT);
    if limit == 0 || limit > PageRequest::MAX_LIMIT {
        return Err(ApiError::new(
            Code::InvalidQuery,
            format!("limit must be between 1 and {}", PageRequest::MAX_LIMIT),
        ));
    }
    Ok(PageRequest {
        limit,
        cursor: cursor.clone().filter(|c| !c.is_empty()),
    })
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    limit: Option<u64>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    org_id: Option<String>,
    workspace_id: Option<String>,
    #[serde(default)]
    include_deleted: bool,
    limit: Option<u64>,
    cursor: Option<String>,
}

/// `GET /api/prompt-templates`: templates newest first.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let q: ListQuery = query(&req)?;
    let filter = TemplateFilter {
        org_id: q.org_id,
        workspace_id: q.workspace_id,
        include_deleted: q.include_deleted,
    };
    let page = state
        .prompter
        .list_templates(&caller.scope, &filter, &page(q.limit, &q.cursor)?)
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, |r| TemplateView::from(r))))
}

/// `GET /api/prompt-templates/{id}`.
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
    Ok(HttpResponse::Ok().json(TemplateView::from(&tpl)))
}

/// `DELETE /api/prompt-templates/{id}`: soft delete, 204.
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
    Ok(HttpResponse::Ok().json(TemplateView::from(&tpl)))
}

/// `GET /api/prompt-templates/{id}/versions`.
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
        .list_versions(&caller.scope, template_id(&path)?, &page(q.limit, &q.cursor)?)
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, |r| VersionView::from(r))))
}

#[derive(Debug, Deserialize)]
struct ResultsQuery {
    version_id: Option<Uuid>,
    country: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    limit: Option<u64>,
    cursor: Option<String>,
}

/// `GET /api/prompt-templates/{id}/results`.
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
        since: q.since,
        until: q.until,
    };
    let page = state
        .prompter
        .list_results(&caller.scope, template_id(&path)?, &filter, &page(q.limit, &q.cursor)?)
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, |r| ResultSummary::from(r))))
}

/// `GET /api/prompt-templates/results/{result_id}`: summary plus full request/response.
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
    }))
}

#[derive(Debug, Deserialize)]
struct DriftQuery {
    org_id: Option<String>,
    workspace_id: Option<String>,
    template_id: Option<Uuid>,
    since: Option<DateTime<Utc>>,
    limit: Option<u64>,
    cursor: Option<String>,
}

/// `GET /api/prompt-templates/drift`: drift events newest first.
pub async fn drift(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let q: DriftQuery = query(&req)?;
    let filter = DriftFilter {
        org_id: q.org_id,
        workspace_id: q.workspace_id,
        template_id: q.template_id,
        since: q.since,
    };
    let page = state
        .prompter
        .list_drift(&caller.scope, &filter, &page(q.limit, &q.cursor)?)
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page, |r| DriftView::from(r))))
}

/// `GET /api/prompt-templates/{id}/diff/{other_id}`: canonical-config differences.
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
    Ok(HttpResponse::Ok().json(serde_json::json!({ "differences": differences })))
}
