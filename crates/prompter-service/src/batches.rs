//! Tracking batches (issue 18): one request runs a prompt for each of its
//! countries, `repeats` times, durably.
//!
//! Creating a batch resolves the revision (label or number), renders every
//! item's prompt server-side (built-in variables `country` and `brand`,
//! per-country variables on top), refuses the whole batch with
//! `MISSING_VARIABLES` when any country lacks a variable, and stores the
//! batch and its items in one transaction. Items are run by the batch
//! workers of any instance ([`crate::batch_worker`]) through the same run
//! path as `run` (rendering, budgets, breakers, the batch share of the
//! provider caps, usage and cost).

use crate::error::{ServiceError, ServiceResult};
use crate::prompts::render_template;
use crate::runs::IdempotencyKey;
use crate::{Prompter, Selector};
use chrono::SecondsFormat;
use prompter_domain::Json;
use prompter_storage::{
    BatchCreated, BatchItemRecord, BatchRecord, NewBatch, NewBatchItem, Page, PageRequest,
    PromptKey, Scope, StorageError, TemplateRecord, TickClaim,
};
use serde_json::{json, Value};
use uuid::Uuid;

/// Default (and `--batch-max-items` default) most items per batch.
pub const DEFAULT_MAX_ITEMS: usize = 10_000;
/// Most repeats per country.
pub const MAX_REPEATS: i64 = 1000;

/// What a batch runs: a prompt revision by name, or a template by id.
#[derive(Debug, Clone)]
pub enum BatchTarget {
    /// `POST /api/prompts/{name}/batches?label=L|revision=N`.
    Prompt {
        /// The prompt.
        key: PromptKey,
        /// Which revision.
        selector: Selector,
    },
    /// `POST /api/prompt-templates/{id}/batches`.
    Template {
        /// The template.
        id: Uuid,
    },
}

/// The batch body.
#[derive(Debug, Clone)]
pub struct BatchRequest {
    /// Countries (None: the template's `country_set`).
    pub countries: Option<Vec<String>>,
    /// Variables for every item (a JSON object).
    pub variables: Json,
    /// Variables per country, over `variables` and the built-ins.
    pub variables_by_country: Vec<(String, Json)>,
    /// Runs per country (≥ 1).
    pub repeats: i64,
    /// Brand (also the `brand` variable unless set).
    pub brand_name: Option<String>,
    /// Stored in `analysis_config`.
    pub analysis_scope: String,
    /// The body as given (stored and shown back).
    pub spec: Value,
}

/// A batch with its items (`GET /api/batches/{id}`).
#[derive(Debug, Clone)]
pub struct BatchView {
    /// The batch and its counters.
    pub batch: BatchRecord,
    /// Its items in order.
    pub items: Vec<BatchItemRecord>,
}

/// A country code as batches store it: trimmed, upper case, 2 to 16 of
/// `A-Z 0-9 _ -`.
fn country_code(raw: &str) -> ServiceResult<String> {
    let c = raw.trim().to_ascii_uppercase();
    let ok = (2..=16).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(c)
    } else {
        Err(ServiceError::InvalidBatch {
            field: "countries",
            message: format!("{raw:?} is not a country code"),
        })
    }
}

/// Sets `name` in an object unless it is there.
fn set_default(members: &mut Vec<(String, Json)>, name: &str, value: Json) {
    if !members.iter().any(|(k, _)| k == name) {
        members.push((name.to_owned(), value));
    }
}

/// The variables of one country's items: `variables_by_country[c]` over the
/// built-ins (`country`, and `brand` from `brand_name`) over `variables`.
fn item_variables(req: &BatchRequest, country: &str) -> ServiceResult<Json> {
    let Json::Object(base) = &req.variables else {
        return Err(ServiceError::InvalidVariables { names: Vec::new() });
    };
    let mut members: Vec<(String, Json)> = Vec::new();
    for (c, vars) in &req.variables_by_country {
        if c.eq_ignore_ascii_case(country) {
            let Json::Object(v) = vars else {
                return Err(ServiceError::InvalidBatch {
                    field: "variables_by_country",
                    message: format!("variables_by_country.{c} must be an object"),
                });
            };
            members.extend(v.iter().cloned());
        }
    }
    set_default(&mut members, "country", Json::Str(country.to_owned()));
    for (k, v) in base {
        set_default(&mut members, k, v.clone());
    }
    if let Some(b) = &req.brand_name {
        set_default(&mut members, "brand", Json::Str(b.clone()));
    }
    Ok(Json::Object(members))
}

/// The countries of a batch: the request's, or the template's `country_set`.
fn countries(req: &BatchRequest, tpl: &TemplateRecord) -> ServiceResult<Vec<String>> {
    let raw: Vec<String> = match &req.countries {
        Some(c) => c.clone(),
        None => tpl
            .country_set
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    };
    let mut out: Vec<String> = Vec::new();
    for c in raw {
        let c = country_code(&c)?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err(ServiceError::InvalidBatch {
            field: "countries",
            message: "no countries: give `countries` or use a template with a country_set"
                .to_owned(),
        });
    }
    for (c, _) in &req.variables_by_country {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(c)) {
            return Err(ServiceError::InvalidBatch {
                field: "variables_by_country",
                message: format!(
                    "variables_by_country names {c}, which is not one of the batch's countries"
                ),
            });
        }
    }
    Ok(out)
}

impl Prompter {
    /// Plans a batch of `tpl`: one item per (country, repeat), each rendered
    /// now, so that missing variables refuse the batch before anything is
    /// queued (every missing name, over all countries).
    pub(crate) fn plan_batch(
        &self,
        tpl: &TemplateRecord,
        req: &BatchRequest,
        label: Option<&str>,
    ) -> ServiceResult<Vec<NewBatchItem>> {
        if req.repeats < 1 || req.repeats > MAX_REPEATS {
            return Err(ServiceError::InvalidBatch {
                field: "repeats",
                message: format!("repeats must be between 1 and {MAX_REPEATS}"),
            });
        }
        let countries = countries(req, tpl)?;
        let max = self.inner.cfg.batch_max_items;
        let items = countries.len().saturating_mul(req.repeats as usize);
        if items > max {
            return Err(ServiceError::BatchTooLarge { items, max });
        }
        let mut missing: Vec<String> = Vec::new();
        let mut per_country = Vec::with_capacity(countries.len());
        for c in &countries {
            let vars = item_variables(req, c)?;
            match render_template(tpl, &vars) {
                Ok(_) => {}
                Err(ServiceError::MissingVariables { missing: m }) => {
                    for name in m {
                        if !missing.contains(&name) {
                            missing.push(name);
                        }
                    }
                }
                Err(e) => return Err(e),
            }
            per_country.push((c, vars));
        }
        if !missing.is_empty() {
            return Err(ServiceError::MissingVariables { missing });
        }
        let runtime_vars = req.variables.to_serde();
        let mut out = Vec::with_capacity(items);
        for (c, vars) in per_country {
            for r in 0..req.repeats {
                out.push(NewBatchItem {
                    country: c.clone(),
                    repeat: r,
                    run: json!({
                        "template_id": tpl.id,
                        "vars": vars.to_serde(),
                        "runtime_vars": runtime_vars,
                        "brand_name": req.brand_name,
                        "analysis_scope": req.analysis_scope,
                        "label": label,
                    }),
                });
            }
        }
        Ok(out)
    }

    /// Creates a batch (202 `{"batch_id","items"}`); with an idempotency key
    /// (scoped to the workspace) a repeat answers the first batch. Returns
    /// the batch and whether it was created now.
    pub async fn create_batch(
        &self,
        scope: &Scope,
        target: &BatchTarget,
        req: BatchRequest,
        idempotency: Option<IdempotencyKey>,
        created_by: Option<String>,
    ) -> ServiceResult<(BatchRecord, bool)> {
        let (tpl, prompt, label) = self.batch_template(scope, target).await?;
        let items = self.plan_batch(&tpl, &req, label.as_deref())?;
        let new = NewBatch {
            org_id: tpl.org_id.clone(),
            workspace_id: tpl.workspace_id.clone(),
            template_id: tpl.id,
            prompt,
            label,
            revision: Some(tpl.revision),
            schedule_id: None,
            spec: req.spec.clone(),
            idempotency: idempotency.map(|k| (k.key, k.request_hash)),
            created_by,
            items,
        };
        match self.inner.store.create_batch(new, None).await? {
            BatchCreated::New(b) => {
                metrics::counter!(crate::metrics_catalog::BATCHES_CREATED_TOTAL).increment(1);
                metrics::counter!(crate::metrics_catalog::BATCH_ITEMS_QUEUED_TOTAL)
                    .increment(b.total as u64);
                self.inner.batch_wake.notify_waiters();
                Ok((b, true))
            }
            BatchCreated::Existing(b) => Ok((b, false)),
            BatchCreated::Mismatch => Err(ServiceError::IdempotencyKeyReused),
            // Only a schedule's tick can be taken.
            BatchCreated::TickTaken => Err(ServiceError::Storage(StorageError::Internal {
                message: "a batch without a tick reported a taken tick".to_owned(),
            })),
        }
    }

    /// Creates the batch of a schedule's tick, claiming the tick in the
    /// same transaction. `Ok(None)`: another instance took the tick.
    pub(crate) async fn create_tick_batch(
        &self,
        target: &BatchTarget,
        req: BatchRequest,
        schedule_id: Uuid,
        tick: TickClaim,
        created_by: Option<String>,
    ) -> ServiceResult<Option<BatchRecord>> {
        let (tpl, prompt, label) = self.batch_template(&Scope::Unrestricted, target).await?;
        let items = self.plan_batch(&tpl, &req, label.as_deref())?;
        let new = NewBatch {
            org_id: tpl.org_id.clone(),
            workspace_id: tpl.workspace_id.clone(),
            template_id: tpl.id,
            prompt,
            label,
            revision: Some(tpl.revision),
            schedule_id: Some(schedule_id),
            spec: {
                // The tick it is for: one batch per tick, visibly.
                let mut spec = req.spec.clone();
                if let Value::Object(o) = &mut spec {
                    o.insert(
                        "scheduled_for".to_owned(),
                        json!(tick.expected.to_rfc3339_opts(SecondsFormat::Micros, true)),
                    );
                }
                spec
            },
            idempotency: None,
            created_by,
            items,
        };
        match self.inner.store.create_batch(new, Some(tick)).await? {
            BatchCreated::New(b) => {
                metrics::counter!(crate::metrics_catalog::BATCHES_CREATED_TOTAL).increment(1);
                metrics::counter!(crate::metrics_catalog::BATCH_ITEMS_QUEUED_TOTAL)
                    .increment(b.total as u64);
                self.inner.batch_wake.notify_waiters();
                Ok(Some(b))
            }
            _ => Ok(None),
        }
    }

    /// The template a batch runs, its prompt name and label.
    async fn batch_template(
        &self,
        scope: &Scope,
        target: &BatchTarget,
    ) -> ServiceResult<(TemplateRecord, Option<String>, Option<String>)> {
        match target {
            BatchTarget::Prompt { key, selector } => {
                let resolved = self.resolve_prompt(key, selector).await?;
                if resolved.template.deleted_at.is_some() {
                    return Err(ServiceError::RevisionNotFound);
                }
                Ok((
                    resolved.template,
                    Some(key.name.clone()),
                    selector.label().map(str::to_owned),
                ))
            }
            BatchTarget::Template { id } => {
                let tpl = std::sync::Arc::unwrap_or_clone(
                    self.active_template(scope, *id, None, None).await?,
                );
                let name = tpl.name.clone();
                Ok((tpl, Some(name).filter(|n| !n.is_empty()), None))
            }
        }
    }

    /// A batch with its items.
    pub async fn get_batch(&self, scope: &Scope, id: Uuid) -> ServiceResult<BatchView> {
        let batch = self
            .inner
            .store
            .get_batch(scope, id)
            .await
            .map_err(batch_missing)?;
        let items = self.inner.store.batch_items(id).await?;
        Ok(BatchView { batch, items })
    }

    /// A batch's counters (no items: the progress stream's poll).
    pub async fn batch_progress(&self, scope: &Scope, id: Uuid) -> ServiceResult<BatchRecord> {
        self.inner
            .store
            .get_batch(scope, id)
            .await
            .map_err(batch_missing)
    }

    /// Batches newest first (optionally a schedule's).
    pub async fn list_batches(
        &self,
        scope: &Scope,
        schedule_id: Option<Uuid>,
        page: &PageRequest,
    ) -> ServiceResult<Page<BatchRecord>> {
        Ok(self
            .inner
            .store
            .list_batches(scope, schedule_id, page)
            .await?)
    }

    /// Cancels a batch: queued items never start; running ones finish.
    pub async fn cancel_batch(&self, scope: &Scope, id: Uuid) -> ServiceResult<BatchRecord> {
        let finish = |b: &BatchRecord| self.completed_event(b);
        self.inner
            .store
            .cancel_batch(scope, id, &finish)
            .await
            .map_err(batch_missing)
    }

    /// Queues a batch's failed items again; returns the batch and how many.
    pub async fn retry_failed(&self, scope: &Scope, id: Uuid) -> ServiceResult<(BatchRecord, u64)> {
        let out = self
            .inner
            .store
            .retry_failed_batch_items(scope, id)
            .await
            .map_err(batch_missing)?;
        if out.1 > 0 {
            self.inner.batch_wake.notify_waiters();
        }
        Ok(out)
    }

    /// The `batch.completed` webhook event of a finished batch (when
    /// webhooks are on).
    pub(crate) fn completed_event(&self, b: &BatchRecord) -> Option<(Uuid, String)> {
        self.event(json!({
            "type": "batch.completed",
            "org_id": b.org_id,
            "workspace_id": b.workspace_id,
            "batch_id": b.id,
            "prompt": b.prompt,
            "template_id": b.template_id,
            "revision": b.revision,
            "label": b.label,
            "schedule_id": b.schedule_id,
            "status": b.status(),
            "total": b.total,
            "done": b.done,
            "failed": b.failed,
            "cancelled": b.cancelled,
            "finished_at": b.finished_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true)),
        }))
    }

    /// Resolves when a batch was created or re-queued on this instance.
    pub(crate) async fn batch_wakeup(&self) {
        self.inner.batch_wake.notified().await
    }
}

fn batch_missing(e: StorageError) -> ServiceError {
    match e {
        StorageError::NotFound => ServiceError::BatchNotFound,
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(vars: Json, by_country: Vec<(String, Json)>, brand: Option<&str>) -> BatchRequest {
        BatchRequest {
            countries: None,
            variables: vars,
            variables_by_country: by_country,
            repeats: 1,
            brand_name: brand.map(str::to_owned),
            analysis_scope: "brand".into(),
            spec: Value::Null,
        }
    }

    fn get<'a>(j: &'a Json, k: &str) -> Option<&'a str> {
        j.get(k).and_then(Json::as_str)
    }

    #[test]
    fn built_ins_sit_between_variables_and_per_country_ones() {
        let vars = Json::Object(vec![
            ("topic".into(), Json::Str("shoes".into())),
            ("country".into(), Json::Str("ignored".into())),
        ]);
        let r = req(
            vars,
            vec![(
                "de".into(),
                Json::Object(vec![("brand".into(), Json::Str("Marke".into()))]),
            )],
            Some("Acme"),
        );
        let de = item_variables(&r, "DE").unwrap();
        assert_eq!(get(&de, "country"), Some("DE"));
        assert_eq!(get(&de, "brand"), Some("Marke"));
        assert_eq!(get(&de, "topic"), Some("shoes"));
        let us = item_variables(&r, "US").unwrap();
        assert_eq!(get(&us, "country"), Some("US"));
        assert_eq!(get(&us, "brand"), Some("Acme"));
    }

    #[test]
    fn country_codes_are_upper_cased_and_checked() {
        assert_eq!(country_code(" us ").unwrap(), "US");
        assert!(country_code("x").is_err());
        assert!(country_code("u s").is_err());
    }
}
