//! What the console asks first: who the caller is (`GET /api/me`) and which
//! workspaces it can see (`GET /api/workspaces`), both within the key's scope.

use super::history::page;
use super::query;
use crate::auth::AuthLayer;
use crate::caller::{Caller, Role};
use crate::dto::{List, MeView, WorkspaceView};
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use prompter_service::Scope;
use serde::Deserialize;
use utoipa::IntoParams;

/// `GET /api/me`: the caller's org, workspace and role.
#[utoipa::path(get, path = "/api/me", tag = "console", operation_id = "getMe",
    responses((status = 200, description = "The caller: its key's org, workspace and role (with auth off: none, role admin)", body = MeView)))]
pub async fn me(req: HttpRequest, caller: Caller) -> Result<HttpResponse, ApiError> {
    let required = req
        .app_data::<web::Data<AuthLayer>>()
        .is_some_and(|a| a.required());
    let (org_id, workspace_id) = match caller.scope {
        Scope::Unrestricted => (None, None),
        Scope::Tenant {
            org_id,
            workspace_id,
        } => (Some(org_id), workspace_id),
    };
    Ok(HttpResponse::Ok().json(MeView {
        auth: if required { "required" } else { "off" }.to_owned(),
        org_id,
        workspace_id,
        role: caller.role.as_str().to_owned(),
        key_prefix: caller.key_prefix,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct WorkspacesQuery {
    /// Only this org's workspaces (within the key's scope either way).
    org_id: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
    /// Opaque cursor from a previous page's `next_cursor`.
    cursor: Option<String>,
}

/// `GET /api/workspaces?org_id=`: workspaces holding templates, by org then workspace.
#[utoipa::path(get, path = "/api/workspaces", tag = "console", operation_id = "listWorkspaces",
    params(WorkspacesQuery),
    responses((status = 200, description = "Workspaces that hold templates, within the caller's scope", body = List<WorkspaceView>)))]
pub async fn workspaces(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let q: WorkspacesQuery = query(&req)?;
    let org = state.fold_opt(q.org_id);
    let p = state
        .prompter
        .list_workspaces(&caller.scope, org.as_deref(), &page(q.limit, &q.cursor)?)
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(p, WorkspaceView::from)))
}
