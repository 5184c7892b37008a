//! Drops this instance's caches when another process changed what they
//! hold: polls the database's change generations (`cluster_generations`,
//! bumped by triggers) every `--cluster-poll-ms` and clears the API-key
//! cache when the `api_keys` generation moved. This is how a revocation made
//! on another instance, or by `prompter keys revoke` (which talks to no
//! instance), takes effect everywhere within one poll period; the cache TTL
//! remains the fallback while the database cannot be read.

use crate::auth::AuthLayer;
use actix_web::web;
use prompter_storage::{Store, API_KEYS_GENERATION};
use std::time::Duration;

/// Spawns the poll loop; nothing to watch (auth off) → `None`.
pub fn spawn(
    auth: web::Data<AuthLayer>,
    store: Store,
    every: Duration,
) -> Option<tokio::task::JoinHandle<()>> {
    auth.resolver.as_ref()?;
    Some(tokio::spawn(async move {
        let mut seen: Option<i64> = None;
        let mut failing = false;
        loop {
            match store.generation(API_KEYS_GENERATION).await {
                Ok(g) => {
                    if failing {
                        tracing::info!("key changes are followed again");
                        failing = false;
                    }
                    if seen.is_some_and(|s| s != g) {
                        if let Some(resolver) = &auth.resolver {
                            resolver.clear();
                        }
                        tracing::debug!(generation = g, "API keys changed: key cache dropped");
                    }
                    seen = Some(g);
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot read the key generation; cached keys expire with their TTL");
                        failing = true;
                    }
                }
            }
            tokio::time::sleep(every).await;
        }
    }))
}
