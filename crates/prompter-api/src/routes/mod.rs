//! HTTP routes: V7's drop-in routes and the operational endpoints.

pub mod history;
pub mod ops;
pub mod v7;

use crate::error::{ApiError, Code};
use actix_web::web;
use uuid::Uuid;

/// Registers every route on an actix `ServiceConfig`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/prompt-templates")
            .route("", web::post().to(v7::create))
            .route("", web::get().to(history::list))
            .route("/health", web::get().to(ops::v7_health))
            .route("/check-duplicate", web::post().to(v7::check_duplicate))
            .route("/drift", web::get().to(history::drift))
            .route("/results/{result_id}", web::get().to(history::result))
            .route("/{id}", web::get().to(history::get))
            .route("/{id}", web::delete().to(history::delete))
            .route("/{id}/restore", web::post().to(history::restore))
            .route("/{id}/versions", web::get().to(history::versions))
            .route("/{id}/results", web::get().to(history::results))
            .route("/{id}/diff/{other_id}", web::get().to(history::diff))
            .route("/{id}/ensure-version", web::post().to(v7::ensure_version))
            .route("/{id}/run", web::post().to(v7::run)),
    )
    .route("/metrics", web::get().to(ops::metrics))
    .route("/healthz", web::get().to(ops::healthz))
    .route("/readyz", web::get().to(ops::readyz))
    .route("/version", web::get().to(ops::version))
    .route("/openapi.json", web::get().to(crate::openapi::openapi_json));
}

/// Parses a template id from the path; anything else is an unknown template.
pub(crate) fn template_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::new(Code::TemplateNotFound, "Template not found"))
}
