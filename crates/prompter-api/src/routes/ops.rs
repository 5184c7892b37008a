//! Operational endpoints: health, readiness, version, metrics.

use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;

/// `GET /api/prompt-templates/health` (V7): `{"status":"ok","db":<backend>}`.
pub async fn v7_health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok", "db": state.backend_name}))
}

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database (and Redis, when configured) answer; 503 otherwise.
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
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.refresh_pool_gauges();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
