//! Budgets (issue 17): the operator's monthly spend limits (calendar month,
//! UTC) per org or workspace. A run that would start once its budget is
//! spent is refused with [`ServiceError::BudgetExceeded`] before any
//! provider call; crossing the alert level enqueues one `budget.threshold`
//! webhook event per month and scope (marked in the database, so once
//! across instances). Budgets are re-read at most once a second, so a change
//! made with `prompter budgets set` applies to running instances within a
//! second; the spend is read from the usage rollups, which every instance
//! writes, so all instances see it.
//!
//! Overshoot is bounded by the runs already in flight when the limit is
//! reached: their cost is only known when they answer.

use crate::{Prompter, ServiceError, ServiceResult};
use chrono::{Datelike, NaiveDate, Utc};
use prompter_storage::{BudgetRecord, Scope, TemplateRecord};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long a read of the budget table is reused.
pub const BUDGET_REFRESH: Duration = Duration::from_secs(1);

/// The budget table, re-read at most every [`BUDGET_REFRESH`].
#[derive(Debug, Default)]
pub(crate) struct BudgetCache {
    read: Mutex<Option<(Instant, Arc<Vec<BudgetRecord>>)>>,
}

/// A budget with the month's spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetStatus {
    /// The budget.
    pub budget: BudgetRecord,
    /// Spend this month (UTC), micro-dollars.
    pub spent_micros: i64,
    /// `YYYY-MM`.
    pub month: String,
}

/// The first day of the current UTC month and its `YYYY-MM`.
pub fn current_month() -> (NaiveDate, String) {
    let today = Utc::now().date_naive();
    let first = today.with_day(1).unwrap_or(today);
    (first, first.format("%Y-%m").to_string())
}

impl Prompter {
    async fn budgets_now(&self) -> ServiceResult<Arc<Vec<BudgetRecord>>> {
        let mut read = self.inner.budgets.read.lock().await;
        if let Some((at, b)) = read.as_ref() {
            if at.elapsed() < BUDGET_REFRESH {
                return Ok(b.clone());
            }
        }
        let b = Arc::new(self.inner.store.list_budgets(&Scope::Unrestricted).await?);
        *read = Some((Instant::now(), b.clone()));
        Ok(b)
    }

    /// The budgets that apply to `tpl`: its org's and its workspace's.
    async fn budgets_for(&self, tpl: &TemplateRecord) -> ServiceResult<Vec<BudgetRecord>> {
        Ok(self
            .budgets_now()
            .await?
            .iter()
            .filter(|b| {
                b.org_id == tpl.org_id
                    && b.workspace_id
                        .as_deref()
                        .is_none_or(|w| w == tpl.workspace_id)
            })
            .cloned()
            .collect())
    }

    /// Refuses a run whose org or workspace budget is spent.
    pub(crate) async fn check_budget(&self, tpl: &TemplateRecord) -> ServiceResult<()> {
        let budgets = self.budgets_for(tpl).await?;
        if budgets.is_empty() {
            return Ok(());
        }
        let (first, month) = current_month();
        for b in budgets {
            let spent = self
                .inner
                .store
                .spend_since(&b.org_id, b.workspace_id.as_deref(), first)
                .await?;
            if spent >= b.monthly_micros {
                metrics::counter!(crate::metrics_catalog::BUDGET_EXCEEDED_TOTAL).increment(1);
                return Err(ServiceError::BudgetExceeded {
                    org_id: b.org_id,
                    workspace_id: b.workspace_id,
                    month,
                });
            }
        }
        Ok(())
    }

    /// After a priced run: emits `budget.threshold` once per month and
    /// scope when the spend reached the alert level. Best effort (logged).
    pub(crate) async fn budget_after_run(&self, tpl: &TemplateRecord) {
        if let Err(e) = self.budget_threshold(tpl).await {
            tracing::warn!(error = %e, "budget threshold check failed");
        }
    }

    async fn budget_threshold(&self, tpl: &TemplateRecord) -> ServiceResult<()> {
        let (first, month) = current_month();
        for b in self.budgets_for(tpl).await? {
            let ws = b.workspace_id.as_deref();
            let spent = self.inner.store.spend_since(&b.org_id, ws, first).await?;
            let level = i128::from(b.monthly_micros) * i128::from(b.alert_permille) / 1000;
            if i128::from(spent) < level {
                continue;
            }
            if !self
                .inner
                .store
                .mark_budget_alert(&b.org_id, ws, &month)
                .await?
            {
                continue;
            }
            if let Some((id, body)) = self.event(json!({
                "type": "budget.threshold",
                "org_id": b.org_id,
                "workspace_id": b.workspace_id,
                "month": month,
                "monthly_usd": b.monthly_micros as f64 / 1e6,
                "alert_at": b.alert_permille as f64 / 1000.0,
                "spent_usd": spent as f64 / 1e6,
            })) {
                self.inner.store.enqueue_outbox(id, &body).await?;
            }
        }
        Ok(())
    }

    /// Budgets visible in `scope`, each with the month's spend.
    pub async fn budgets(&self, scope: &Scope) -> ServiceResult<Vec<BudgetStatus>> {
        let (first, month) = current_month();
        let mut out = Vec::new();
        for b in self.inner.store.list_budgets(scope).await? {
            let spent_micros = self
                .inner
                .store
                .spend_since(&b.org_id, b.workspace_id.as_deref(), first)
                .await?;
            out.push(BudgetStatus {
                budget: b,
                spent_micros,
                month: month.clone(),
            });
        }
        Ok(out)
    }
}
