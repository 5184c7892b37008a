//! Tracking batches (issue 18): create by prompt and label/revision or by
//! template id (202), read with items, list, cancel, retry the failed
//! items, and follow progress as Server-Sent Events.

use super::history::page;
use super::prompts::{key, selector, tenant, NamePath, SelectQuery};
use super::{query, template_id};
use crate::body::{dto_from_json, read_json};
use crate::caller::{Caller, Role};
use crate::dto::{
    BatchAccepted, BatchBody, BatchDetail, BatchItemView, BatchSummary, List, RetryFailedAnswer,
};
use crate::error::{ApiError, Code};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::stream;
use prompter_service::{BatchRequest, BatchTarget, Scope};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use utoipa::IntoParams;
use uuid::Uuid;

/// The `{id}` path parameter of a batch.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct BatchPath {
    /// Batch id (a UUID; anything else is 404 `BATCH_NOT_FOUND`).
    #[allow(dead_code)]
    id: Uuid,
}

/// Filters and paging of the batch list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct BatchListQuery {
    /// Only this org's batches (optional; with `workspace_id`, unless the key fixes them).
    org_id: Option<String>,
    /// Only this workspace's batches (optional).
    workspace_id: Option<String>,
    /// Only the batches of this schedule.
    schedule_id: Option<Uuid>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
    /// Opaque cursor from a previous page's `next_cursor`.
    cursor: Option<String>,
}

fn batch_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::new(Code::BatchNotFound, "Batch not found"))
}

/// Reads a batch body: the typed DTO (shape errors as 422), then the
/// service's request (with the body kept as the batch's spec).
async fn batch_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(BatchRequest, Option<prompter_service::IdempotencyKey>), ApiError> {
    let json = read_json(req, payload, &state.body).await?;
    let _: BatchBody = dto_from_json(&json)?;
    let idempotency = super::v7::idempotency_key(req, &json)?;
    let body = BatchRequest::from_json(&json.to_serde())?;
    Ok((body, idempotency))
}

fn accepted(b: &prompter_storage::BatchRecord, created: bool) -> HttpResponse {
    let mut res = HttpResponse::Accepted();
    res.insert_header(("Location", format!("/api/batches/{}", b.id)));
    if !created {
        res.insert_header(("Idempotent-Replayed", "true"));
    }
    res.json(BatchAccepted {
        batch_id: b.id,
        items: b.total,
    })
}

/// `POST /api/prompts/{name}/batches?label=L|revision=N`: one item per
/// country and repeat, rendered now, run in the background.
#[utoipa::path(post, path = "/api/prompts/{name}/batches", tag = "batches",
    operation_id = "createPromptBatch",
    params(NamePath, SelectQuery, crate::openapi::IdempotencyHeader), request_body = BatchBody,
    responses((status = 202, description = "Queued (the first batch when an Idempotency-Key replays)",
        body = BatchAccepted,
        headers(("Location" = String, description = "`/api/batches/{batch_id}`"),
            ("Idempotent-Replayed" = String, description = "`true` when an Idempotency-Key answered an earlier batch")))))]
pub async fn create_for_prompt(
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
    let (body, idempotency) = batch_body(&req, payload, &state).await?;
    let target = BatchTarget::Prompt {
        key: k,
        selector: sel,
    };
    let (b, created) = state
        .prompter
        .create_batch(
            &caller.scope,
            &target,
            body,
            idempotency,
            caller.key_prefix.clone(),
        )
        .await?;
    Ok(accepted(&b, created))
}

/// `POST /api/prompt-templates/{id}/batches`.
#[utoipa::path(post, path = "/api/prompt-templates/{id}/batches", tag = "batches",
    operation_id = "createTemplateBatch",
    params(crate::openapi::TemplatePath, crate::openapi::IdempotencyHeader), request_body = BatchBody,
    responses((status = 202, description = "Queued (the first batch when an Idempotency-Key replays)",
        body = BatchAccepted,
        headers(("Location" = String, description = "`/api/batches/{batch_id}`"),
            ("Idempotent-Replayed" = String, description = "`true` when an Idempotency-Key answered an earlier batch")))))]
pub async fn create_for_template(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Write)?;
    let id = template_id(&path)?;
    let (body, idempotency) = batch_body(&req, payload, &state).await?;
    let (b, created) = state
        .prompter
        .create_batch(
            &caller.scope,
            &BatchTarget::Template { id },
            body,
            idempotency,
            caller.key_prefix.clone(),
        )
        .await?;
    Ok(accepted(&b, created))
}

/// `GET /api/batches`: newest first.
#[utoipa::path(get, path = "/api/batches", tag = "batches", operation_id = "listBatches",
    params(BatchListQuery),
    responses((status = 200, description = "A page of batches, newest first", body = List<BatchSummary>)))]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let q: BatchListQuery = query(&req)?;
    // Without org/workspace: everything the key can see; with them, one workspace.
    let scope = if q.org_id.is_none() && q.workspace_id.is_none() {
        caller.scope.clone()
    } else {
        let (org_id, workspace_id) = match tenant(&state, &caller, q.org_id, q.workspace_id) {
            Ok(ids) => ids,
            // Another org or workspace than the key's: nothing of it is visible.
            Err(e) if e.code() == Code::PromptNotFound => {
                return Ok(HttpResponse::Ok().json(json!({"items": [], "next_cursor": null})));
            }
            Err(e) => return Err(e),
        };
        Scope::Tenant {
            org_id,
            workspace_id: Some(workspace_id),
        }
    };
    let p = state
        .prompter
        .list_batches(&scope, q.schedule_id, &page(q.limit, &q.cursor)?)
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(p, |b| BatchSummary::from(&b))))
}

/// `GET /api/batches/{id}`: state, counters and every item.
#[utoipa::path(get, path = "/api/batches/{id}", tag = "batches", operation_id = "getBatch",
    params(BatchPath),
    responses((status = 200, description = "The batch with its items", body = BatchDetail)))]
pub async fn get(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let v = state
        .prompter
        .get_batch(&caller.scope, batch_id(&path)?)
        .await?;
    Ok(HttpResponse::Ok().json(BatchDetail {
        batch: BatchSummary::from(&v.batch),
        items: v.items.iter().map(BatchItemView::from).collect(),
    }))
}

/// `POST /api/batches/{id}/cancel`: queued items never start; running ones finish.
#[utoipa::path(post, path = "/api/batches/{id}/cancel", tag = "batches", operation_id = "cancelBatch",
    params(BatchPath),
    responses((status = 200, description = "The batch after the cancel", body = BatchSummary)))]
pub async fn cancel(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Write)?;
    let b = state
        .prompter
        .cancel_batch(&caller.scope, batch_id(&path)?)
        .await?;
    Ok(HttpResponse::Ok().json(BatchSummary::from(&b)))
}

/// `POST /api/batches/{id}/retry-failed`: failed items are queued again.
#[utoipa::path(post, path = "/api/batches/{id}/retry-failed", tag = "batches",
    operation_id = "retryFailedBatchItems", params(BatchPath),
    responses((status = 200, description = "The batch after the change", body = RetryFailedAnswer)))]
pub async fn retry_failed(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Write)?;
    let (b, requeued) = state
        .prompter
        .retry_failed(&caller.scope, batch_id(&path)?)
        .await?;
    Ok(HttpResponse::Ok().json(RetryFailedAnswer {
        batch: BatchSummary::from(&b),
        requeued,
    }))
}

/// How often the progress stream reads the batch.
const EVENTS_POLL: Duration = Duration::from_millis(250);
/// A comment line at least this often keeps proxies from closing the stream.
const EVENTS_KEEPALIVE: Duration = Duration::from_secs(15);

/// `GET /api/batches/{id}/events`: Server-Sent Events. `event: progress`
/// with the counters whenever they change (the first at once), then
/// `event: done` when every item has ended, and the stream closes. Takes the
/// bearer header like every route (browsers read it with `fetch`).
#[utoipa::path(get, path = "/api/batches/{id}/events", tag = "batches", operation_id = "batchEvents",
    params(BatchPath),
    responses((status = 200, description = "`text/event-stream`: `progress` events (`data`: status and counters as JSON), then `done`",
        content_type = "text/event-stream", body = String)))]
pub async fn events(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let id = batch_id(&path)?;
    let prompter = state.prompter.clone();
    let scope = caller.scope.clone();
    // Fails before the stream starts when the batch is absent.
    prompter.batch_progress(&scope, id).await?;
    struct St {
        last: Option<String>,
        quiet: Duration,
        ended: bool,
    }
    let init = St {
        last: None,
        quiet: Duration::ZERO,
        ended: false,
    };
    let body = stream::unfold(init, move |mut st| {
        let prompter = prompter.clone();
        let scope = scope.clone();
        async move {
            if st.ended {
                return None;
            }
            loop {
                let b = match prompter.batch_progress(&scope, id).await {
                    Ok(b) => b,
                    Err(e) => {
                        st.ended = true;
                        let msg = format!(
                            "event: error\ndata: {}\n\n",
                            json!({"message": e.to_string()})
                        );
                        return Some((Ok::<_, actix_web::Error>(web::Bytes::from(msg)), st));
                    }
                };
                let data = json!({
                    "batch_id": b.id,
                    "status": b.status(),
                    "total": b.total,
                    "done": b.done,
                    "failed": b.failed,
                    "cancelled": b.cancelled,
                })
                .to_string();
                let mut out = String::new();
                if st.last.as_deref() != Some(data.as_str()) {
                    out.push_str(&format!("event: progress\ndata: {data}\n\n"));
                    st.last = Some(data.clone());
                }
                if b.finished_at.is_some() {
                    out.push_str(&format!("event: done\ndata: {data}\n\n"));
                    st.ended = true;
                }
                if out.is_empty() && st.quiet >= EVENTS_KEEPALIVE {
                    out.push_str(": keep-alive\n\n");
                }
                if !out.is_empty() {
                    st.quiet = Duration::ZERO;
                    return Some((Ok(web::Bytes::from(out)), st));
                }
                tokio::time::sleep(EVENTS_POLL).await;
                st.quiet += EVENTS_POLL;
            }
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header(("Content-Type", "text/event-stream"))
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
