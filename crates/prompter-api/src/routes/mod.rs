//! HTTP routes: V7's drop-in routes and the operational endpoints.

pub mod history;
pub mod ops;
pub mod prompts;
pub mod usage;
pub mod v7;

use crate::error::{ApiError, Code};
use actix_web::web;
use uuid::Uuid;

/// Registers every route on an actix `ServiceConfig`.
///
/// One `resource` per path with all its methods, so a known path with an
/// unsupported method answers 405 `METHOD_NOT_ALLOWED` (not 404), and static
/// segments (`/health`, `/check-duplicate`, `/drift`) are matched before `/{id}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, post, put, resource};
    cfg.service(
        web::scope("/api/prompt-templates")
            .service(
                resource("")
                    .route(post().to(v7::create))
                    .route(get().to(history::list)),
            )
            .service(resource("/health").route(get().to(ops::v7_health)))
            .service(resource("/check-duplicate").route(post().to(v7::check_duplicate)))
            .service(resource("/drift").route(get().to(history::drift)))
            .service(resource("/results/{result_id}").route(get().to(history::result)))
            .service(
                resource("/{id}")
                    .route(get().to(history::get))
                    .route(delete().to(history::delete)),
            )
            .service(resource("/{id}/restore").route(post().to(history::restore)))
            .service(resource("/{id}/versions").route(get().to(history::versions)))
            .service(resource("/{id}/results").route(get().to(history::results)))
            .service(resource("/{id}/diff/{other_id}").route(get().to(history::diff)))
            .service(resource("/{id}/ensure-version").route(post().to(v7::ensure_version)))
            .service(resource("/{id}/run").route(post().to(v7::run)))
            .service(resource("/{id}/render").route(post().to(prompts::render_template_route))),
    )
    .service(
        web::scope("/api/prompts")
            .service(resource("").route(get().to(prompts::list)))
            .service(resource("/{name}").route(get().to(prompts::fetch)))
            .service(resource("/{name}/revisions").route(get().to(prompts::revisions)))
            .service(resource("/{name}/render").route(post().to(prompts::render)))
            .service(resource("/{name}/run").route(post().to(prompts::run)))
            .service(
                resource("/{name}/labels/{label}")
                    .route(put().to(prompts::move_label))
                    .route(delete().to(prompts::remove_label)),
            )
            .service(
                resource("/{name}/labels/{label}/history").route(get().to(prompts::label_history)),
            ),
    )
    .service(resource("/api/usage").route(get().to(usage::usage)))
    .service(resource("/metrics").route(get().to(ops::metrics)))
    .service(resource("/healthz").route(get().to(ops::healthz)))
    .service(resource("/readyz").route(get().to(ops::readyz)))
    .service(resource("/version").route(get().to(ops::version)))
    .service(resource("/openapi.json").route(get().to(crate::openapi::openapi_json)));
}

/// Parses a template id from the path; anything else is an unknown template.
pub(crate) fn template_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::new(Code::TemplateNotFound, "Template not found"))
}
