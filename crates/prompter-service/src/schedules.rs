//! Schedules (issue 18): a cron expression (UTC) and a batch spec; each
//! tick creates one batch.
//!
//! Every instance runs a ticker ([`spawn`]) that polls due schedules. A
//! tick is claimed by moving `next_run_at` with compare-and-set in the
//! transaction that creates its batch, so several instances create exactly
//! one batch per tick. The next run is computed from now, not from the
//! missed time: a tick missed while everything was down runs once at
//! start-up, not once per missed tick. A schedule naming a label resolves
//! it at each tick (moving `production` changes what the next run uses);
//! one naming a revision keeps it. A schedule whose creating API key is
//! revoked or expired is paused (no batch, nothing spent) until the key is
//! usable again.

use crate::batch_worker::DescribeError;
use crate::batches::{BatchRequest, BatchTarget};
use crate::error::{ServiceError, ServiceResult};
use crate::metrics_catalog as m;
use crate::{Prompter, Selector};
use chrono::{DateTime, Utc};
use prompter_domain::Json;
use prompter_storage::{
    NewSchedule, Page, PageRequest, PromptKey, ScheduleRecord, Scope, StorageError, TickClaim,
};
use serde_json::{json, Value};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// Schedules claimed per poll.
const DUE_BATCH: u64 = 32;

/// A parsed cron expression: 6 or 7 fields (`sec min hour day month
/// weekday [year]`), or the classic 5 (`min hour day month weekday`, run at
/// second 0). Times are UTC.
pub fn parse_cron(expr: &str) -> ServiceResult<cron::Schedule> {
    let fields = expr.split_whitespace().count();
    let full = if fields == 5 {
        format!("0 {}", expr.trim())
    } else {
        expr.trim().to_owned()
    };
    cron::Schedule::from_str(&full).map_err(|e| ServiceError::InvalidCron {
        message: e.to_string(),
    })
}

/// The first tick of `schedule` strictly after `after`.
fn next_after(schedule: &cron::Schedule, after: DateTime<Utc>) -> ServiceResult<DateTime<Utc>> {
    schedule
        .after(&after)
        .next()
        .ok_or_else(|| ServiceError::InvalidCron {
            message: "the expression never fires again".to_owned(),
        })
}

/// A schedule to create.
#[derive(Debug, Clone)]
pub struct ScheduleRequest {
    /// Cron expression (UTC).
    pub cron: String,
    /// What each tick runs.
    pub target: BatchTarget,
    /// The batch body of each tick.
    pub body: Value,
}

/// A schedule as shown: the record, its state and the next runs.
#[derive(Debug, Clone)]
pub struct ScheduleView {
    /// The stored schedule.
    pub schedule: ScheduleRecord,
    /// Why it is paused now (its key is revoked or expired), if it is.
    pub paused_reason: Option<String>,
}

/// The stored spec of a target and body.
fn spec_of(target: &BatchTarget, body: &Value) -> Value {
    match target {
        BatchTarget::Prompt { key, selector } => json!({
            "prompt": key.name,
            "label": selector.label(),
            "revision": match selector { Selector::Revision(n) => Some(*n), _ => None },
            "body": body,
        }),
        BatchTarget::Template { id } => json!({"template_id": id, "body": body}),
    }
}

/// The target and body of a stored spec.
fn target_of(s: &ScheduleRecord) -> ServiceResult<(BatchTarget, BatchRequest)> {
    let spec = &s.spec;
    let body = spec.get("body").cloned().unwrap_or_else(|| json!({}));
    let req = BatchRequest::from_json(&body)?;
    let target = if let Some(id) = spec.get("template_id").and_then(Value::as_str) {
        BatchTarget::Template {
            id: Uuid::parse_str(id).map_err(|_| ServiceError::TemplateNotFound)?,
        }
    } else {
        let name = spec
            .get("prompt")
            .and_then(Value::as_str)
            .ok_or(ServiceError::PromptNotFound)?;
        let selector = match (
            spec.get("revision").and_then(Value::as_i64),
            spec.get("label").and_then(Value::as_str),
        ) {
            (Some(n), _) => Selector::Revision(n),
            (None, Some(l)) => Selector::Label(l.to_owned()),
            (None, None) => Selector::Label(crate::prompts::LATEST.to_owned()),
        };
        BatchTarget::Prompt {
            key: PromptKey {
                org_id: s.org_id.clone(),
                workspace_id: s.workspace_id.clone(),
                name: name.to_owned(),
            },
            selector,
        }
    };
    Ok((target, req))
}

impl BatchRequest {
    /// A batch body (`countries`, `variables`, `variables_by_country`,
    /// `repeats`, `brand_name`, `analysis_scope`) from JSON; the body is
    /// kept as the batch's spec.
    pub fn from_json(body: &Value) -> ServiceResult<BatchRequest> {
        let bad = |field: &'static str, message: &str| ServiceError::InvalidBatch {
            field,
            message: message.to_owned(),
        };
        let countries = match body.get("countries") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|c| {
                        c.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| bad("countries", "countries must be strings"))
                    })
                    .collect::<ServiceResult<Vec<_>>>()?,
            ),
            Some(_) => return Err(bad("countries", "countries must be a list")),
        };
        let variables = match body.get("variables") {
            None | Some(Value::Null) => Json::Object(Vec::new()),
            Some(v @ Value::Object(_)) => Json::from_serde(v),
            Some(_) => return Err(ServiceError::InvalidVariables { names: Vec::new() }),
        };
        let variables_by_country = match body.get("variables_by_country") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(o)) => o
                .iter()
                .map(|(k, v)| (k.clone(), Json::from_serde(v)))
                .collect(),
            Some(_) => {
                return Err(bad(
                    "variables_by_country",
                    "variables_by_country must be an object",
                ))
            }
        };
        let repeats = match body.get("repeats") {
            None | Some(Value::Null) => 1,
            Some(v) => v
                .as_i64()
                .ok_or_else(|| bad("repeats", "repeats must be an integer"))?,
        };
        let text = |k: &'static str| -> ServiceResult<Option<String>> {
            match body.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad(k, "must be a string")),
            }
        };
        Ok(BatchRequest {
            countries,
            variables,
            variables_by_country,
            repeats,
            brand_name: text("brand_name")?,
            analysis_scope: text("analysis_scope")?.unwrap_or_else(|| "brand".to_owned()),
            spec: body.clone(),
        })
    }
}

impl Prompter {
    /// Creates a schedule in the org and workspace of its target, after
    /// checking that its spec makes a batch now (same errors as creating
    /// one). The first tick is the expression's next time.
    pub async fn create_schedule(
        &self,
        scope: &Scope,
        req: ScheduleRequest,
        created_by: Option<String>,
    ) -> ServiceResult<ScheduleView> {
        let cron = parse_cron(&req.cron)?;
        let next = next_after(&cron, Utc::now())?;
        let batch = BatchRequest::from_json(&req.body)?;
        let tpl = match &req.target {
            BatchTarget::Prompt { key, selector } => {
                self.resolve_prompt(key, selector).await?.template
            }
            BatchTarget::Template { id } => {
                std::sync::Arc::unwrap_or_clone(self.active_template(scope, *id, None, None).await?)
            }
        };
        self.plan_batch(&tpl, &batch, req.target_label())?;
        let rec = self
            .inner
            .store
            .insert_schedule(NewSchedule {
                org_id: tpl.org_id.clone(),
                workspace_id: tpl.workspace_id.clone(),
                cron: req.cron.trim().to_owned(),
                spec: spec_of(&req.target, &req.body),
                created_by,
                next_run_at: next,
            })
            .await?;
        Ok(ScheduleView {
            schedule: rec,
            paused_reason: None,
        })
    }

    /// A schedule, with whether its key still allows it to run.
    pub async fn get_schedule(&self, scope: &Scope, id: Uuid) -> ServiceResult<ScheduleView> {
        let s = self
            .inner
            .store
            .get_schedule(scope, id)
            .await
            .map_err(schedule_missing)?;
        let paused_reason = self.pause_reason(&s).await?;
        Ok(ScheduleView {
            schedule: s,
            paused_reason,
        })
    }

    /// Schedules newest first.
    pub async fn list_schedules(
        &self,
        scope: &Scope,
        page: &PageRequest,
    ) -> ServiceResult<Page<ScheduleView>> {
        let p = self.inner.store.list_schedules(scope, page).await?;
        let mut items = Vec::with_capacity(p.items.len());
        for s in p.items {
            let paused_reason = self.pause_reason(&s).await?;
            items.push(ScheduleView {
                schedule: s,
                paused_reason,
            });
        }
        Ok(Page {
            items,
            next_cursor: p.next_cursor,
        })
    }

    /// Deletes a schedule (its batches stay).
    pub async fn delete_schedule(&self, scope: &Scope, id: Uuid) -> ServiceResult<()> {
        self.inner
            .store
            .delete_schedule(scope, id)
            .await
            .map_err(schedule_missing)
    }

    /// Why a schedule may not spend now: its creating key is revoked,
    /// expired or gone. None with auth off (no key) or a usable key.
    async fn pause_reason(&self, s: &ScheduleRecord) -> ServiceResult<Option<String>> {
        let Some(prefix) = &s.created_by else {
            return Ok(None);
        };
        let key = self.inner.store.find_api_key_by_prefix(prefix).await?;
        Ok(match key {
            None => Some("api_key_deleted".to_owned()),
            Some(k) if k.revoked_at.is_some() => Some("api_key_revoked".to_owned()),
            Some(k) if k.expires_at.is_some_and(|e| e <= Utc::now()) => {
                Some("api_key_expired".to_owned())
            }
            Some(_) => None,
        })
    }

    /// Runs the due ticks once; returns the batches created.
    pub async fn tick_schedules(&self, describe: DescribeError) -> ServiceResult<usize> {
        let now = Utc::now();
        let due = self.inner.store.due_schedules(now, DUE_BATCH).await?;
        let mut created = 0;
        for s in due {
            let reason = self.pause_reason(&s).await?;
            if reason != s.paused_reason {
                self.inner
                    .store
                    .set_schedule_paused(s.id, reason.as_deref())
                    .await?;
            }
            if reason.is_some() {
                metrics::counter!(m::SCHEDULE_TICKS_TOTAL, "outcome" => "paused").increment(1);
                continue;
            }
            let next = match parse_cron(&s.cron).and_then(|c| next_after(&c, now)) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(schedule = %s.id, error = %e, "schedule has a bad cron expression");
                    continue;
                }
            };
            let tick = TickClaim {
                schedule_id: s.id,
                expected: s.next_run_at,
                next,
                now,
            };
            let made = match target_of(&s) {
                Ok((target, req)) => {
                    self.create_tick_batch(&target, req, s.id, tick, s.created_by.clone())
                        .await
                }
                Err(e) => Err(e),
            };
            let outcome = match made {
                Ok(Some(b)) => {
                    tracing::info!(schedule = %s.id, batch = %b.id, items = b.total, "schedule tick created a batch");
                    created += 1;
                    "batch"
                }
                Ok(None) => "taken",
                Err(e) => {
                    let (code, message) = describe(e);
                    let error = json!({"code": code, "message": message}).to_string();
                    match self
                        .inner
                        .store
                        .skip_schedule_tick(s.id, s.next_run_at, next, now, &error)
                        .await?
                    {
                        true => {
                            tracing::warn!(schedule = %s.id, %code, "schedule tick made no batch");
                            "skipped"
                        }
                        false => "taken",
                    }
                }
            };
            metrics::counter!(m::SCHEDULE_TICKS_TOTAL, "outcome" => outcome).increment(1);
        }
        Ok(created)
    }
}

impl ScheduleRequest {
    fn target_label(&self) -> Option<&str> {
        match &self.target {
            BatchTarget::Prompt { selector, .. } => selector.label(),
            BatchTarget::Template { .. } => None,
        }
    }
}

fn schedule_missing(e: StorageError) -> ServiceError {
    match e {
        StorageError::NotFound => ServiceError::ScheduleNotFound,
        other => other.into(),
    }
}

/// Starts this instance's schedule ticker (polls every `poll_every`).
pub fn spawn(
    prompter: Prompter,
    poll_every: Duration,
    describe: DescribeError,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = prompter.tick_schedules(describe).await {
                tracing::warn!(error = %e, "schedule tick failed");
            }
            tokio::time::sleep(poll_every).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_six_and_seven_field_expressions_parse() {
        let t = DateTime::parse_from_rfc3339("2026-12-01T10:00:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let daily = parse_cron("0 6 * * *").unwrap();
        assert_eq!(
            next_after(&daily, t).unwrap().to_rfc3339(),
            "2026-12-02T06:00:00+00:00"
        );
        let secondly = parse_cron("* * * * * *").unwrap();
        assert_eq!(
            next_after(&secondly, t).unwrap().to_rfc3339(),
            "2026-12-01T10:00:31+00:00"
        );
        assert!(parse_cron("0 0 6 * * * 2027").is_ok());
        assert!(matches!(
            parse_cron("every day"),
            Err(ServiceError::InvalidCron { .. })
        ));
    }
}
