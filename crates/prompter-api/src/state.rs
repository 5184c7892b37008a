//! Shared per-process state handed to every handler.
//!
//! Built once in [`crate::app::Application::build`], outside actix's
//! per-worker factory, so all workers share one pool, one provider registry
//! and one probe guard (per-worker copies would multiply probes).

use crate::body::BodyConfig;
use metrics_exporter_prometheus::PrometheusHandle;
use prompter_service::metrics_catalog::DB_POOL_CONNECTIONS;
use prompter_service::Prompter;

/// What every handler needs.
#[derive(Debug)]
pub struct AppState {
    /// The use cases.
    pub prompter: Prompter,
    /// Body limits.
    pub body: BodyConfig,
    /// Prometheus renderer.
    pub metrics: PrometheusHandle,
    /// The database backend (V7's health field).
    pub backend: crate::routes::ops::Backend,
    /// Each live provider's status (for `/readyz?detail=1`).
    pub providers: Vec<crate::provider_status::ProviderStatus>,
    /// Lower-case UUID-shaped org/workspace ids of every request: set on
    /// databases adopted from V7's PostgreSQL, which matched them
    /// case-insensitively (`prompter_settings.uuid_ids_case_insensitive`).
    pub fold_uuid_ids: bool,
    /// Release settings of the prompt routes.
    pub releases: ReleaseConfig,
}

/// Settings of the prompt release routes.
#[derive(Debug, Clone, Default)]
pub struct ReleaseConfig {
    /// `Cache-Control` max-age of a fetched prompt, seconds.
    pub max_age_secs: u64,
    /// Labels only an admin key may move or remove.
    pub protected_labels: Vec<String>,
}

impl AppState {
    /// `id` as stored: lower-case hyphenated when it is UUID-shaped and
    /// [`Self::fold_uuid_ids`] is set, otherwise unchanged.
    pub fn fold_id(&self, id: String) -> String {
        crate::caller::fold_uuid_id(self.fold_uuid_ids, id)
    }

    /// [`Self::fold_id`] of an optional id.
    pub fn fold_opt(&self, id: Option<String>) -> Option<String> {
        id.map(|i| self.fold_id(i))
    }

    /// Updates the pool gauges just before a scrape.
    pub fn refresh_pool_gauges(&self) {
        let (size, idle) = self.prompter.store().pool_stats();
        let in_use = size.saturating_sub(idle);
        metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(idle as f64);
        metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "in_use").set(in_use as f64);
    }
}
