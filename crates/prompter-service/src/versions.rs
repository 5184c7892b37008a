//! ensure-version: which build does the provider serve for this template now?

use crate::error::{ServiceError, ServiceResult};
use crate::guard::{EnsureOutcome, GuardDecision};
use crate::metrics_catalog as m;
use crate::telemetry;
use crate::Prompter;
use chrono::Utc;
use prompter_domain::{resolve_provider, version_key_from_response, Provider};
use prompter_providers::ProbeRequest;
use prompter_storage::{NewVersion, Scope, StorageError, TemplateRecord, VersionRecord};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

/// The ensure-version body (V7 fields; all but `workspace_id` optional).
#[derive(Debug, Clone, Default)]
pub struct EnsureRequest {
    /// Must match the template's workspace when given.
    pub workspace_id: Option<String>,
    /// Must match the template's org when given.
    pub org_id: Option<String>,
    /// Overrides the template's provider.
    pub provider: Option<String>,
    /// Overrides the template's model.
    pub model_id: Option<String>,
}

impl Prompter {
    /// Loads an active template visible in `scope`, checking body-supplied tenancy.
    pub(crate) async fn active_template(
        &self,
        scope: &Scope,
        id: Uuid,
        org_id: Option<&str>,
        workspace_id: Option<&str>,
    ) -> ServiceResult<Arc<TemplateRecord>> {
        let cache = &self.inner.templates;
        let tpl = match cache.template(id) {
            Some(t) if scope.allows(&t.org_id, &t.workspace_id) => t,
            Some(_) => return Err(ServiceError::TemplateNotFound),
            None => {
                let epoch = cache.epoch();
                let t = match self.inner.store.get_template(scope, id).await {
                    Ok(t) => Arc::new(t),
                    Err(StorageError::NotFound) => return Err(ServiceError::TemplateNotFound),
                    Err(e) => return Err(e.into()),
                };
                cache.put_template(epoch, t.clone());
                t
            }
        };
        let mismatch = org_id.is_some_and(|o| o != tpl.org_id)
            || workspace_id.is_some_and(|w| w != tpl.workspace_id);
        if tpl.deleted_at.is_some() || mismatch {
            return Err(ServiceError::TemplateNotFound);
        }
        Ok(tpl)
    }

    /// Ensures a version row for the build the provider serves now, probing at
    /// most once per probe window (see [`crate::guard`]).
    pub async fn ensure_version(
        &self,
        scope: &Scope,
        template_id: Uuid,
        req: EnsureRequest,
    ) -> ServiceResult<(EnsureOutcome, GuardDecision)> {
        let tpl = self
            .active_template(
                scope,
                template_id,
                req.org_id.as_deref(),
                req.workspace_id.as_deref(),
            )
            .await?;
        let model = req.model_id.unwrap_or_else(|| tpl.model_id.clone());
        let explicit = req.provider.as_deref().or(tpl.provider.as_deref());
        let provider = resolve_provider(explicit, &model);
        let started = Instant::now();
        let res = self.ensure_for(&tpl, provider, &model).await;
        metrics::histogram!(m::ENSURE_VERSION_SECONDS, "provider" => provider.as_str())
            .record(started.elapsed().as_secs_f64());
        res
    }

    /// The guarded probe for (template, provider, model), or the latest known
    /// version when probing is switched off.
    pub(crate) async fn ensure_for(
        &self,
        tpl: &TemplateRecord,
        provider: Provider,
        model: &str,
    ) -> ServiceResult<(EnsureOutcome, GuardDecision)> {
        if self.inner.cfg.probe_disabled {
            metrics::counter!(m::PROBE_GUARD_TOTAL, "outcome" => "disabled").increment(1);
            let scope = Scope::Unrestricted;
            let latest = self
                .inner
                .store
                .latest_version(&scope, tpl.id, provider.as_str(), model)
                .await?
                .ok_or(ServiceError::ProbeDisabledNoVersion)?;
            return Ok((outcome_of(&latest), GuardDecision::Reused));
        }
        let (key, window_end) = self.inner.window.key(
            &tpl.org_id,
            &tpl.workspace_id,
            tpl.id,
            provider.as_str(),
            model,
            Utc::now(),
        );
        let res = self
            .inner
            .guard
            .run(&key, window_end, || {
                self.probe_and_record(tpl, provider, model)
            })
            .await;
        if let Ok((_, decision)) = &res {
            metrics::counter!(m::PROBE_GUARD_TOTAL, "outcome" => decision.as_str()).increment(1);
        }
        res
    }

    /// One real provider probe, then the version upsert.
    async fn probe_and_record(
        &self,
        tpl: &TemplateRecord,
        provider: Provider,
        model: &str,
    ) -> ServiceResult<EnsureOutcome> {
        let name = provider.as_str();
        let client = self.client(provider)?;
        m::register_model(name, model);
        // An open circuit or a full cap refuses before any call (not an attempt).
        let call = self.admit_call(name, model).await?;
        metrics::counter!(m::PROBE_ATTEMPTS_TOTAL, "provider" => name, "model" => model.to_owned())
            .increment(1);
        let span = telemetry::provider_span("probe", name, model, tpl);
        let probe = client
            .probe(&ProbeRequest {
                model_id: model.to_owned(),
            })
            .instrument(span.clone())
            .await;
        call.finish(&probe);
        let probe = probe.map_err(|e| {
                metrics::counter!(m::PROBE_FAILURES_TOTAL, "provider" => name, "model" => model.to_owned())
                    .increment(1);
                span.record("error.type", e.kind());
                ServiceError::provider(name, e)
            })?;
        let vk = version_key_from_response(provider, model, &probe.raw_response);
        telemetry::record_response(
            &span,
            probe.response_model.as_deref(),
            None,
            None,
            probe.system_fingerprint.as_deref(),
        );
        span.record("prompter.version_key", vk.key.as_str());
        let now = Utc::now();
        let version = self
            .record_version(
                tpl,
                provider,
                model,
                &vk.key,
                vk.system_fingerprint.is_some(),
                now,
            )
            .await?;
        Ok(EnsureOutcome {
            version_id: version.id,
            provider: name.to_owned(),
            provider_version_key: version.provider_version_key,
            captured_at: now,
        })
    }

    /// Upserts the version row for `key`, counting drift.
    pub(crate) async fn record_version(
        &self,
        tpl: &TemplateRecord,
        provider: Provider,
        model: &str,
        key: &str,
        has_fingerprint: bool,
        now: chrono::DateTime<Utc>,
    ) -> ServiceResult<VersionRecord> {
        let recent = &self.inner.recent_versions;
        if let Some(v) = recent.get(tpl.id, provider.as_str(), model, key, has_fingerprint) {
            return Ok(v);
        }
        // One write per key at a time: a burst of runs that finish together
        // (a batch wave) waits for the first one's row instead of queueing
        // on its row lock, then reuses it.
        let gate = recent.gate(tpl.id, provider.as_str(), model);
        let _one = gate.lock().await;
        if let Some(v) = recent.get(tpl.id, provider.as_str(), model, key, has_fingerprint) {
            return Ok(v);
        }
        m::register_model(provider.as_str(), model);
        let up = self
            .inner
            .store
            .upsert_version(NewVersion {
                org_id: tpl.org_id.clone(),
                workspace_id: tpl.workspace_id.clone(),
                template_id: tpl.id,
                provider: provider.as_str().to_owned(),
                provider_version_key: key.to_owned(),
                model_id: model.to_owned(),
                seen_at: now,
                fingerprint_captured_at: has_fingerprint.then_some(now),
                enqueue_webhook: self.inner.cfg.webhook_enabled,
            })
            .await?;
        if up.drift.is_some() {
            metrics::counter!(m::VERSION_DRIFT_TOTAL, "provider" => provider.as_str(), "model" => model.to_owned())
                .increment(1);
        }
        recent.put(tpl.id, provider.as_str(), model, &up.version);
        Ok(up.version)
    }

    /// The client for `provider`, or a clear error when none is configured.
    pub(crate) fn client(
        &self,
        provider: Provider,
    ) -> ServiceResult<std::sync::Arc<dyn prompter_providers::ModelProvider>> {
        self.inner.providers.get(provider.as_str()).ok_or_else(|| {
            ServiceError::ProviderNotConfigured {
                provider: provider.as_str().to_owned(),
            }
        })
    }
}

fn outcome_of(v: &VersionRecord) -> EnsureOutcome {
    EnsureOutcome {
        version_id: v.id,
        provider: v.provider.clone(),
        provider_version_key: v.provider_version_key.clone(),
        captured_at: v.last_seen_at,
    }
}

/// Version rows this process upserted in the last [`RecentVersions::FRESH`],
/// one per (template, provider, model).
///
/// Performance (issue 9): every run upserts the version row of the key its
/// response carries. With an unchanged key that upsert only moves
/// `last_seen_at`, yet it is a write transaction on one hot row: it serialised
/// all runs of a template on the row lock (PostgreSQL) and took the single
/// SQLite writer twice per run. A run whose key equals the one this process
/// wrote less than `FRESH` ago now reuses that row, so `last_seen_at` lags by
/// at most `FRESH`. Any other key (drift, flapping builds, another model) and a
/// first fingerprint still go to the database, so drift events and
/// `fingerprint_captured_at` are recorded exactly as before.
#[derive(Debug, Default)]
pub(crate) struct RecentVersions {
    map: std::sync::Mutex<std::collections::HashMap<RecentKey, (VersionRecord, Instant)>>,
    /// One upsert at a time per key (see `record_version`).
    gates: std::sync::Mutex<
        std::collections::HashMap<RecentKey, std::sync::Arc<tokio::sync::Mutex<()>>>,
    >,
}

/// (template, provider, model).
type RecentKey = (Uuid, String, String);

impl RecentVersions {
    /// How long a written version row is reused for the same key.
    pub(crate) const FRESH: std::time::Duration = std::time::Duration::from_secs(1);
    /// Entries kept at most (the map is cleared when full; it is only a cache).
    const MAX_ENTRIES: usize = 10_000;

    fn get(
        &self,
        template: Uuid,
        provider: &str,
        model: &str,
        key: &str,
        has_fingerprint: bool,
    ) -> Option<VersionRecord> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (v, at) = map.get(&(template, provider.to_owned(), model.to_owned()))?;
        let usable = at.elapsed() < Self::FRESH
            && v.provider_version_key == key
            && (!has_fingerprint || v.fingerprint_captured_at.is_some());
        usable.then(|| v.clone())
    }

    /// The write gate of a key.
    fn gate(
        &self,
        template: Uuid,
        provider: &str,
        model: &str,
    ) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        if gates.len() >= Self::MAX_ENTRIES {
            gates.retain(|_, g| std::sync::Arc::strong_count(g) > 1);
        }
        gates
            .entry((template, provider.to_owned(), model.to_owned()))
            .or_default()
            .clone()
    }

    fn put(&self, template: Uuid, provider: &str, model: &str, v: &VersionRecord) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX_ENTRIES {
            map.clear();
        }
        map.insert(
            (template, provider.to_owned(), model.to_owned()),
            (v.clone(), Instant::now()),
        );
    }
}
