//! Drops this instance's caches when another process changed what they
//! hold: polls the database's change generations (`cluster_generations`,
//! bumped by triggers) every `--cluster-poll-ms`, in one query, and
//! - clears the API-key cache when the `api_keys` generation moved: a
//!   revocation made on another instance, or by `prompter keys revoke`
//!   (which talks to no instance), takes effect everywhere within one poll
//!   period; the key cache's TTL remains the fallback while the database
//!   cannot be read;
//! - reports the `prompts` generation to the template cache, which drops
//!   everything when it moved and serves only while polls succeed (see
//!   `prompter_service::template_cache`).

use crate::auth::AuthLayer;
use actix_web::web;
use prompter_service::Prompter;
use prompter_storage::{API_KEYS_GENERATION, PROMPTS_GENERATION};
use std::time::Duration;

/// Spawns the poll loop.
pub fn spawn(
    auth: web::Data<AuthLayer>,
    prompter: Prompter,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut keys_seen: Option<i64> = None;
        let mut failing = false;
        loop {
            match prompter.store().generations().await {
                Ok(gens) => {
                    if failing {
                        tracing::info!("changes by other processes are followed again");
                        failing = false;
                    }
                    let of = |name: &str| gens.iter().find(|(n, _)| n == name).map(|(_, g)| *g);
                    let keys = of(API_KEYS_GENERATION).unwrap_or(0);
                    if keys_seen.is_some_and(|s| s != keys) {
                        if let Some(resolver) = &auth.resolver {
                            resolver.clear();
                        }
                        tracing::debug!(generation = keys, "API keys changed: key cache dropped");
                    }
                    keys_seen = Some(keys);
                    let prompts = of(PROMPTS_GENERATION).unwrap_or(0);
                    if prompter.template_cache().observe(Some(prompts)) {
                        tracing::debug!(
                            generation = prompts,
                            "templates or labels changed: template cache dropped"
                        );
                    }
                }
                Err(e) => {
                    prompter.template_cache().observe(None);
                    if !failing {
                        tracing::warn!(error = %e, "cannot read the change generations; cached keys expire with their TTL, templates are read from the database");
                        failing = true;
                    }
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}
