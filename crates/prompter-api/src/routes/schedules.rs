//! Schedules (issue 18): `POST/GET/DELETE /api/schedules`, a cron
//! expression (UTC) and the batch each tick creates.

use super::history::page;
use super::prompts::{key, selector, tenant};
use super::query;
use crate::body::{dto_from_json, read_json};
use crate::caller::{Caller, Role};
use crate::dto::{List, ScheduleBody, ScheduleView};
use crate::error::{ApiError, Code};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use prompter_service::schedules::ScheduleRequest;
use prompter_service::BatchTarget;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;

/// The `{id}` path parameter of a schedule.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct SchedulePath {
    /// Schedule id (a UUID; anything else is 404 `SCHEDULE_NOT_FOUND`).
    #[allow(dead_code)]
    id: Uuid,
}

/// Paging of the schedule list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ScheduleListQuery {
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
    /// Opaque cursor from a previous page's `next_cursor`.
    cursor: Option<String>,
}

fn schedule_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::new(Code::ScheduleNotFound, "Schedule not found"))
}

/// `POST /api/schedules`: 201 with the schedule (its first tick is the
/// expression's next time). The spec is checked now: it must make a batch.
#[utoipa::path(post, path = "/api/schedules", tag = "batches", operation_id = "createSchedule",
    request_body = ScheduleBody,
    responses((status = 201, description = "Created", body = ScheduleView)))]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Write)?;
    let json = read_json(&req, payload, &state.body).await?;
    let body: ScheduleBody = dto_from_json(&json)?;
    let batch = json
        .to_serde()
        .get("batch")
        .cloned()
        .filter(|b| !b.is_null())
        .unwrap_or_else(|| json!({}));
    prompter_service::BatchRequest::from_json(&batch)?;
    let target = match (body.template_id, body.prompt) {
        (Some(id), None) => {
            if body.label.is_some() || body.revision.is_some() {
                return Err(ApiError::new(
                    Code::ValidationFailed,
                    "label and revision go with prompt, not template_id",
                ));
            }
            BatchTarget::Template { id }
        }
        (None, Some(name)) => BatchTarget::Prompt {
            key: key(
                tenant(&state, &caller, body.org_id, body.workspace_id)?,
                name,
            ),
            selector: selector(body.label, body.revision).map_err(|_| {
                ApiError::new(
                    Code::ValidationFailed,
                    "give either label or revision, not both",
                )
            })?,
        },
        _ => {
            return Err(ApiError::new(
                Code::ValidationFailed,
                "give either prompt or template_id",
            ))
        }
    };
    let view = state
        .prompter
        .create_schedule(
            &caller.scope,
            ScheduleRequest {
                cron: body.cron,
                target,
                body: batch,
            },
            caller.key_prefix.clone(),
        )
        .await?;
    let view = ScheduleView::from(view);
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/schedules/{}", view.id)))
        .json(view))
}

/// `GET /api/schedules`: newest first.
#[utoipa::path(get, path = "/api/schedules", tag = "batches", operation_id = "listSchedules",
    params(ScheduleListQuery),
    responses((status = 200, description = "A page of schedules, newest first", body = List<ScheduleView>)))]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let q: ScheduleListQuery = query(&req)?;
    let p = state
        .prompter
        .list_schedules(&caller.scope, &page(q.limit, &q.cursor)?)
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(p, ScheduleView::from)))
}

/// `GET /api/schedules/{id}`: last and next run, state, and a link to its batches.
#[utoipa::path(get, path = "/api/schedules/{id}", tag = "batches", operation_id = "getSchedule",
    params(SchedulePath),
    responses((status = 200, description = "The schedule", body = ScheduleView)))]
pub async fn get(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let v = state
        .prompter
        .get_schedule(&caller.scope, schedule_id(&path)?)
        .await?;
    Ok(HttpResponse::Ok().json(ScheduleView::from(v)))
}

/// `DELETE /api/schedules/{id}`: 204; its batches stay.
#[utoipa::path(delete, path = "/api/schedules/{id}", tag = "batches", operation_id = "deleteSchedule",
    params(SchedulePath),
    responses((status = 204, description = "Deleted")))]
pub async fn delete(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Write)?;
    state
        .prompter
        .delete_schedule(&caller.scope, schedule_id(&path)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
