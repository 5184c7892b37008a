//! Operational endpoints (health, readiness, version, metrics) and their
//! wire types.

use crate::auth::AuthLayer;
use crate::caller::Role;
use crate::error::ApiError;
use crate::provider_status::ProviderStatus;
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Database backend name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgresql,
}

impl From<prompter_storage::Backend> for Backend {
    fn from(b: prompter_storage::Backend) -> Self {
        match b {
            prompter_storage::Backend::Sqlite => Backend::Sqlite,
            prompter_storage::Backend::Postgres => Backend::Postgresql,
        }
    }
}

/// `GET /api/prompt-templates/health` (V7).
#[derive(Debug, Serialize, ToSchema)]
pub struct V7Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    pub status: &'static str,
    /// Database backend.
    pub db: Backend,
}

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Healthz {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    pub status: &'static str,
}

/// `GET /readyz` (200 when ready, 503 otherwise).
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: ReadyStatus,
    /// Each dependency.
    pub checks: ReadinessChecks,
    /// `?detail=1` only (admin key, or auth off): each live provider and
    /// the environment variables it needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub providers: Option<Vec<ProviderStatus>>,
    /// `?detail=1` only: this instance's provider/model circuit breakers
    /// (an open circuit never fails readiness).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub circuits: Option<Vec<CircuitStatus>>,
}

/// A provider/model circuit breaker's state.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitStateView {
    /// Calls go through.
    Closed,
    /// One trial call is in flight; others fail fast.
    HalfOpen,
    /// Calls fail fast with 503 `PROVIDER_CIRCUIT_OPEN` until the cool-down ends.
    Open,
}

/// One provider/model circuit of this instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CircuitStatus {
    /// Provider.
    pub provider: String,
    /// Model.
    pub model: String,
    /// State.
    pub state: CircuitStateView,
    /// Consecutive provider-fault failures (5xx, timeouts, overload).
    pub consecutive_failures: u32,
    /// Open only: seconds until a trial call is let through.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub retry_in_secs: Option<u64>,
}

impl From<prompter_service::breaker::CircuitView> for CircuitStatus {
    fn from(c: prompter_service::breaker::CircuitView) -> Self {
        use prompter_service::breaker::CircuitState as S;
        CircuitStatus {
            provider: c.provider,
            model: c.model,
            state: match c.state {
                S::Closed => CircuitStateView::Closed,
                S::HalfOpen => CircuitStateView::HalfOpen,
                S::Open => CircuitStateView::Open,
            },
            consecutive_failures: c.consecutive_failures,
            retry_in_secs: c.retry_in_secs,
        }
    }
}

/// Query of `GET /readyz`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadyQuery {
    /// `1`/`true`: also list the providers (needs an admin key when auth is on).
    #[param(value_type = Option<bool>)]
    pub detail: Option<String>,
}

fn flag(name: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "0" | "false" | "no") => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some(_) => Err(super::invalid_query(&[(
            name.to_owned(),
            "expected 1, true, 0 or false".to_owned(),
        )])),
    }
}

/// Overall readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    /// Every dependency answers.
    Ready,
    /// One does not.
    Unavailable,
}

/// State of one dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    /// It answers.
    Ok,
    /// It does not.
    Unavailable,
    /// Not configured (Redis is optional).
    NotConfigured,
}

/// Readiness of each dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessChecks {
    /// The database (never `not_configured`).
    pub database: CheckState,
    /// Redis.
    pub redis: CheckState,
}

/// `GET /version`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionInfo {
    /// `prompter`.
    pub name: &'static str,
    /// Crate version.
    pub version: &'static str,
    /// Git commit of the build, or `unknown`.
    pub git_sha: &'static str,
    /// The pinned config hash algorithm.
    pub hash_algorithm: String,
    /// Validation mode (`v7` or `strict`).
    pub validation: &'static str,
    /// Database backend.
    pub database: Backend,
}

/// `GET /api/prompt-templates/health` (V7): `{"status":"ok","db":<backend>}`.
#[utoipa::path(get, path = "/api/prompt-templates/health", tag = "ops", operation_id = "v7Health",
    responses((status = 200, description = "Alive", body = V7Health)))]
pub async fn v7_health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(V7Health {
        status: "ok",
        db: state.backend,
    })
}

/// `GET /healthz`: the process is alive.
#[utoipa::path(get, path = "/healthz", tag = "ops", operation_id = "healthz",
    responses((status = 200, description = "Alive", body = Healthz)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Healthz { status: "ok" })
}

/// `GET /readyz`: the database (and Redis, when configured) answer; 503
/// otherwise. `?detail=1` adds the providers, for an admin key (or anyone
/// when auth is off, which is loopback only); plain `/readyz` stays open
/// for probes.
#[utoipa::path(get, path = "/readyz", tag = "ops", operation_id = "readyz", params(ReadyQuery),
    responses((status = 200, description = "Ready", body = Readiness)))]
pub async fn readyz(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: web::Data<AuthLayer>,
) -> Result<HttpResponse, ApiError> {
    let q: ReadyQuery = super::query(&req)?;
    let detail = flag("detail", q.detail.as_deref())?;
    if detail {
        auth.caller_of(&req).await?.require(Role::Admin)?;
    }
    let db = state.prompter.store().ping().await.is_ok();
    let redis = match state.prompter.redis() {
        Some(r) => Some(r.ping().await),
        None => None,
    };
    let ready = db && redis.unwrap_or(true);
    let state_of = |ok: bool| {
        if ok {
            CheckState::Ok
        } else {
            CheckState::Unavailable
        }
    };
    let body = Readiness {
        status: if ready {
            ReadyStatus::Ready
        } else {
            ReadyStatus::Unavailable
        },
        checks: ReadinessChecks {
            database: state_of(db),
            redis: redis.map_or(CheckState::NotConfigured, state_of),
        },
        providers: detail.then(|| state.providers.clone()),
        circuits: detail.then(|| {
            state
                .prompter
                .circuits()
                .into_iter()
                .map(CircuitStatus::from)
                .collect()
        }),
    };
    Ok(if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(body)
    })
}

/// `GET /version`: build information.
#[utoipa::path(get, path = "/version", tag = "ops", operation_id = "version",
    responses((status = 200, description = "Build information", body = VersionInfo)))]
pub async fn version(state: web::Data<AppState>) -> HttpResponse {
    let cfg = state.prompter.config();
    HttpResponse::Ok().json(VersionInfo {
        name: "prompter",
        version: env!("CARGO_PKG_VERSION"),
        git_sha: option_env!("PROMPTER_GIT_SHA").unwrap_or("unknown"),
        hash_algorithm: cfg.hash_algorithm.to_string(),
        validation: cfg.validation.as_str(),
        database: state.backend,
    })
}

/// `GET /metrics`: Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4",
        body = String, content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.refresh_pool_gauges();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::telemetry::render_metrics(&state.metrics))
}
