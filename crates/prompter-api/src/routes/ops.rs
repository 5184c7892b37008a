//! Operational endpoints: health, readiness, version, metrics.

use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;

/// `GET /api/prompt-templates/health` (V7): `{"status":"ok","db":<backend>}`.
#[utoipa::path(get, path = "/api/prompt-templates/health", tag = "ops", operation_id = "v7Health",
    responses((status = 200, description = "Alive", body = crate::openapi::V7Health)))]
pub async fn v7_health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok", "db": state.backend_name}))
}

/// `GET /healthz`: the process is alive.
#[utoipa::path(get, path = "/healthz", tag = "ops", operation_id = "healthz",
    responses((status = 200, description = "Alive", body = crate::openapi::Healthz)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database (and Redis, when configured) answer; 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "ops", operation_id = "readyz",
    responses((status = 200, description = "Ready", body = crate::openapi::Readiness)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let db = state.prompter.store().ping().await.is_ok();
    let redis = match state.prompter.redis() {
        Some(r) => Some(r.ping().await),
        None => None,
    };
    let ready = db && redis.unwrap_or(true);
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": {
            "database": if db { "ok" } else { "unavailable" },
            "redis": match redis { None => "not_configured", Some(true) => "ok", Some(false) => "unavailable" },
        }
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(body)
    }
}

/// `GET /version`: build information.
#[utoipa::path(get, path = "/version", tag = "ops", operation_id = "version",
    responses((status = 200, description = "Build information", body = crate::openapi::VersionInfo)))]
pub async fn version(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": "prompter",
        "version": env!("CARGO_PKG_VERSION"),
        "git_sha": option_env!("PROMPTER_GIT_SHA").unwrap_or("unknown"),
        "hash_algorithm": state.prompter.config().hash_algorithm.to_string(),
        "validation": format!("{:?}", state.prompter.config().validation).to_lowercase(),
        "database": state.backend_name,
    }))
}

/// `GET /metrics`: Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4",
        body = String, content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.refresh_pool_gauges();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
