//! run: call the model, record the build that served it, store everything.

use crate::error::{ServiceError, ServiceResult};
use crate::metrics_catalog as m;
use crate::telemetry;
use crate::{Lane, Prompter};
use chrono::Utc;
use prompter_domain::Json;
use prompter_domain::{resolve_provider, version_key_from_response, Provider, UNKNOWN_VERSION_KEY};
use prompter_providers::CompletionRequest;
use prompter_storage::{
    Claim, NewResult, PromptKey, ResultRecord, RunRelease, Scope, TemplateRecord,
};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;
use uuid::Uuid;

/// How long an idempotency key replays its result.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
/// How often a caller waiting on another caller's in-flight key looks again.
const IDEMPOTENCY_POLL: Duration = Duration::from_millis(25);

/// An `Idempotency-Key` and the hash of the body it was sent with.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The caller's key.
    pub key: String,
    /// Hash of the request body (same key + different hash → refused).
    pub request_hash: String,
}

/// The run body (V7 fields, plus server-side rendering and the label).
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// The prompt, already rendered by the caller; None: rendered here from
    /// `render_vars` (system instructions too).
    pub rendered_prompt: Option<String>,
    /// Variables for server-side rendering (a JSON object), used when
    /// `rendered_prompt` is None.
    pub render_vars: Option<Json>,
    /// The label the run was addressed through (run by label).
    pub label: Option<String>,
    /// Brand the prompt is about.
    pub brand_name: Option<String>,
    /// Country this run is for.
    pub country: Option<String>,
    /// Stored in `analysis_config` (V7 default `brand`).
    pub analysis_scope: String,
    /// Caller variables, kept for audit.
    pub runtime_vars: Value,
    /// Whether grounding was requested.
    pub use_grounding: bool,
}

/// A stored run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The stored result.
    pub result: ResultRecord,
    /// True when answered from an idempotency key without calling the provider.
    pub replayed: bool,
}

impl Prompter {
    /// Runs the template's prompt once and stores the full request and response.
    ///
    /// The version key comes from the completion's own response; a probe (through
    /// the guard) happens only when the response carries no key. With an
    /// idempotency key, a repeat (also concurrent, also across restarts and
    /// instances: the key lives in the database) replays the first result.
    pub async fn run(
        &self,
        scope: &Scope,
        template_id: Uuid,
        req: RunRequest,
        idempotency: Option<IdempotencyKey>,
    ) -> ServiceResult<RunOutcome> {
        // Sub-futures that are not alive while the provider answers are boxed
        // (here and below), so the future a request holds for the whole call
        // stays small: at 3000 connections each byte counts 3000 times.
        let tpl = Box::pin(self.active_template(scope, template_id, None, None)).await?;
        let claim_id = tpl.id;
        self.run_resolved(scope, tpl, claim_id, req, idempotency)
            .await
    }

    /// Runs the revision a selector means (rendered server-side from
    /// `req.render_vars`). An idempotency key is scoped to the org,
    /// workspace and key, not the template: a retry after the label moved
    /// replays the stored result.
    pub async fn run_prompt(
        &self,
        scope: &Scope,
        key: &PromptKey,
        sel: &crate::Selector,
        mut req: RunRequest,
        idempotency: Option<IdempotencyKey>,
    ) -> ServiceResult<RunOutcome> {
        let resolved = self.resolve_prompt(key, sel).await?;
        let tpl = Arc::new(resolved.template);
        if tpl.deleted_at.is_some() {
            return Err(ServiceError::RevisionNotFound);
        }
        req.rendered_prompt = None;
        req.label = sel.label().map(str::to_owned);
        let (idempotency, claim_id) = match idempotency {
            None => (None, tpl.id),
            Some(k) => {
                let scoped = IdempotencyKey {
                    key: format!("prompt\u{1f}{}\u{1f}{}", key.workspace_id, k.key),
                    request_hash: k.request_hash,
                };
                let claim_id = self
                    .inner
                    .store
                    .idempotency_template(&key.org_id, &scoped.key)
                    .await?
                    .unwrap_or(tpl.id);
                (Some(scoped), claim_id)
            }
        };
        self.run_resolved(scope, tpl, claim_id, req, idempotency)
            .await
    }

    /// Runs `tpl`, claiming an idempotency key under `claim_id`.
    async fn run_resolved(
        &self,
        scope: &Scope,
        tpl: Arc<TemplateRecord>,
        claim_id: Uuid,
        req: RunRequest,
        idempotency: Option<IdempotencyKey>,
    ) -> ServiceResult<RunOutcome> {
        let Some(idem) = idempotency else {
            let new = self.produce(&tpl, req, Lane::Interactive).await?;
            let result = Box::pin(self.inner.store.insert_result(new))
                .await
                .map_err(|source| ServiceError::ResultNotStored { source })?;
            if result.usage.cost_micros.is_some_and(|c| c > 0) {
                Box::pin(self.budget_after_run(&tpl)).await;
            }
            return Ok(RunOutcome {
                result,
                replayed: false,
            });
        };
        let deadline = tokio::time::Instant::now() + self.inner.cfg.probe_wait_timeout;
        loop {
            let claim = Box::pin(self.inner.store.claim_idempotency(
                claim_id,
                &tpl.org_id,
                &idem.key,
                &idem.request_hash,
                IDEMPOTENCY_TTL,
            ))
            .await?;
            match claim {
                Claim::New => break,
                Claim::Mismatch => return Err(ServiceError::IdempotencyKeyReused),
                Claim::Completed(id) => {
                    metrics::counter!(m::IDEMPOTENT_REPLAYS_TOTAL).increment(1);
                    let result = Box::pin(self.get_result(scope, id)).await?;
                    return Ok(RunOutcome {
                        result,
                        replayed: true,
                    });
                }
                Claim::InFlight => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ServiceError::RunInFlight {
                            retry_after: Duration::from_secs(1),
                        });
                    }
                    tokio::time::sleep(IDEMPOTENCY_POLL).await;
                }
            }
        }
        let produced = self.produce(&tpl, req, Lane::Interactive).await;
        let new = match produced {
            Ok(n) => n,
            Err(e) => {
                // Nothing was produced: free the key so a retry may run.
                let _ = Box::pin(self.inner.store.release_idempotency(claim_id, &idem.key)).await;
                return Err(e);
            }
        };
        let result = Box::pin(
            self.inner
                .store
                .insert_result_idempotent(new, Some((claim_id, &idem.key))),
        )
        .await
        .map_err(|source| ServiceError::ResultNotStored { source })?;
        if result.usage.cost_micros.is_some_and(|c| c > 0) {
            Box::pin(self.budget_after_run(&tpl)).await;
        }
        Ok(RunOutcome {
            result,
            replayed: false,
        })
    }

    /// Calls the model and records the version; returns the result to store.
    pub(crate) async fn produce(
        &self,
        tpl: &TemplateRecord,
        req: RunRequest,
        lane: Lane,
    ) -> ServiceResult<NewResult> {
        let (system, user) = match &req.rendered_prompt {
            Some(p) => (tpl.system_instructions.clone(), p.clone()),
            None => {
                let empty = Json::Object(Vec::new());
                let vars = req.render_vars.as_ref().unwrap_or(&empty);
                let r = crate::prompts::render_template(tpl, vars)?;
                (r.system, r.user)
            }
        };
        let model = tpl.model_id.clone();
        let provider = resolve_provider(tpl.provider.as_deref(), &model);
        let name = provider.as_str();
        let client = self.client(provider)?;
        Box::pin(self.check_budget(tpl)).await?;
        let call = Box::pin(self.admit_call_in(name, &model, lane)).await?;
        let span = telemetry::provider_span("chat", name, &model, tpl);
        let completion = client
            .complete(&CompletionRequest {
                model_id: model.clone(),
                system_instructions: system.clone(),
                user_prompt: user.clone(),
                inference_params: tpl.inference_params.clone(),
                tools: tpl.tools_spec.clone(),
                response_format: tpl.response_format.clone(),
            })
            .instrument(span.clone())
            .await;
        call.finish(&completion);
        let completion = completion.map_err(|e| {
            span.record("error.type", e.kind());
            ServiceError::provider(name, e)
        })?;
        metrics::counter!(m::RUNS_TOTAL, "provider" => name).increment(1);
        telemetry::record_response(
            &span,
            completion.response_model.as_deref(),
            completion.response_id.as_deref(),
            completion.usage.map(|u| (u.input_tokens, u.output_tokens)),
            completion.system_fingerprint.as_deref(),
        );

        // From here on a result exists: any failure must say it was not stored.
        let not_stored = |e: ServiceError| match e {
            ServiceError::Storage(source) => ServiceError::ResultNotStored { source },
            other => other,
        };
        let vk = version_key_from_response(provider, &model, &completion.raw_response);
        let fingerprint = vk
            .system_fingerprint
            .clone()
            .or(completion.system_fingerprint.clone());
        if provider == Provider::OpenAi && fingerprint.is_some() {
            metrics::counter!(m::OPENAI_FINGERPRINT_PRESENT_TOTAL).increment(1);
        }
        let now = Utc::now();
        let (version_id, key) = if vk.key == UNKNOWN_VERSION_KEY {
            // The response does not say which build served it: ask (guarded).
            match Box::pin(self.ensure_for(tpl, provider, &model)).await {
                Ok((o, _)) => (Some(o.version_id), o.provider_version_key),
                Err(ServiceError::ProbeDisabledNoVersion) => (None, vk.key.clone()),
                Err(e) => return Err(not_stored(e)),
            }
        } else {
            let v = Box::pin(self.record_version(
                tpl,
                provider,
                &model,
                &vk.key,
                fingerprint.is_some(),
                now,
            ))
            .await
            .map_err(not_stored)?;
            (Some(v.id), v.provider_version_key)
        };
        span.record("prompter.version_key", key.as_str());
        if key == UNKNOWN_VERSION_KEY {
            metrics::counter!(m::RUNS_UNKNOWN_VERSION_TOTAL, "provider" => name).increment(1);
        }
        let countries = match &req.country {
            Some(c) => json!([c]),
            None => tpl.country_set.clone(),
        };
        let request = json!({
            "model": model,
            "params": tpl.inference_params,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "countries": countries,
        });
        let analysis_config = json!({
            "analysis_scope": req.analysis_scope,
            "brand_name": req.brand_name,
            "runtime_vars": req.runtime_vars,
            "use_grounding": req.use_grounding,
        });
        let usage = self.run_usage(name, &model, completion.usage.as_ref());
        Ok(NewResult {
            org_id: tpl.org_id.clone(),
            workspace_id: tpl.workspace_id.clone(),
            template_id: tpl.id,
            version_id,
            provider_version_key: key,
            system_fingerprint: fingerprint,
            country: req.country.clone(),
            request,
            response: completion.raw_response,
            analysis_config,
            release: RunRelease {
                revision: Some(tpl.revision),
                label: req.label.clone(),
            },
            output: Some(completion.content),
            usage,
        })
    }
}
