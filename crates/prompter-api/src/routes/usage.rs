//! `GET /api/usage`: tokens, runs and cost grouped by org, workspace,
//! template, prompt, provider, model and/or UTC day, read from the daily
//! rollups (issue 17), within the caller's scope; `GET /api/budgets`: the
//! operator's budgets that apply to the caller, with the month's spend.

use super::{invalid_query, query};
use crate::caller::{Caller, Role};
use crate::dto::micros_to_usd;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use prompter_storage::{UsageKey, UsageQuery, UsageRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Query of `GET /api/usage`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// Comma-separated keys: `org`, `workspace`, `template`, `prompt`,
    /// `provider`, `model`, `day`. Absent or empty: one total.
    group_by: Option<String>,
    /// First UTC day, inclusive (`YYYY-MM-DD`).
    #[param(format = Date)]
    since: Option<String>,
    /// Last UTC day, inclusive (`YYYY-MM-DD`).
    #[param(format = Date)]
    until: Option<String>,
    /// Only this org (within the caller's scope).
    org_id: Option<String>,
    /// Only this workspace (within the caller's scope).
    workspace_id: Option<String>,
}

/// One group: its keys (only those grouped by) and its sums.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsageItem {
    /// Org (group_by `org`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// Workspace (group_by `workspace`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// Template id (group_by `template`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    /// Prompt name (group_by `prompt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Provider (group_by `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The template's model id; Azure: the deployment (group_by `model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// UTC day `YYYY-MM-DD` (group_by `day`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    /// Stored runs.
    pub runs: i64,
    /// Prompt tokens (cache reads and writes included; unreported as 0).
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Prompt tokens read from a provider cache.
    pub cached_input_tokens: i64,
    /// Prompt tokens written to a provider cache.
    pub cache_write_input_tokens: i64,
    /// Cost of the priced runs, USD.
    pub cost_usd: f64,
    /// Cost of the priced runs, integer micro-dollars.
    pub cost_micros: i64,
    /// Runs whose model had no price (not in the cost).
    pub unpriced_runs: i64,
}

impl From<UsageRow> for UsageItem {
    fn from(r: UsageRow) -> Self {
        let mut item = UsageItem {
            org_id: None,
            workspace_id: None,
            template_id: None,
            prompt: None,
            provider: None,
            model: None,
            day: None,
            runs: r.runs,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cached_input_tokens: r.cached_input_tokens,
            cache_write_input_tokens: r.cache_write_input_tokens,
            cost_usd: micros_to_usd(r.cost_micros),
            cost_micros: r.cost_micros,
            unpriced_runs: r.unpriced_runs,
        };
        for (k, v) in r.keys {
            let slot = match k {
                UsageKey::Org => &mut item.org_id,
                UsageKey::Workspace => &mut item.workspace_id,
                UsageKey::Template => &mut item.template_id,
                UsageKey::Prompt => &mut item.prompt,
                UsageKey::Provider => &mut item.provider,
                UsageKey::Model => &mut item.model,
                UsageKey::Day => &mut item.day,
            };
            *slot = Some(v);
        }
        item
    }
}

/// `{"items": [...]}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsageReport {
    /// One item per group, ordered by the keys.
    pub items: Vec<UsageItem>,
}

/// Parses a `YYYY-MM-DD` parameter, noting a problem.
fn day(name: &str, v: Option<String>, problems: &mut Vec<(String, String)>) -> Option<NaiveDate> {
    let s = v.filter(|s| !s.is_empty())?;
    match NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            problems.push((name.into(), format!("`{s}` is not a date (YYYY-MM-DD)")));
            None
        }
    }
}

/// The storage query; 400 `INVALID_QUERY` naming every bad parameter.
fn usage_query(p: UsageParams) -> Result<UsageQuery, ApiError> {
    let mut problems = Vec::new();
    let mut group_by = Vec::new();
    let mut unknown = Vec::new();
    for k in p.group_by.as_deref().unwrap_or("").split(',') {
        let k = k.trim();
        if k.is_empty() {
            continue;
        }
        match UsageKey::parse(k) {
            Some(key) => group_by.push(key),
            None => unknown.push(k.to_string()),
        }
    }
    if !unknown.is_empty() {
        problems.push((
            "group_by".into(),
            format!(
                "unknown key(s) {}; use org, workspace, template, prompt, provider, model, day",
                unknown.join(", ")
            ),
        ));
    }
    let since = day("since", p.since, &mut problems);
    let until = day("until", p.until, &mut problems);
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            problems.push(("since".into(), format!("{s} is after until ({u})")));
        }
    }
    if !problems.is_empty() {
        return Err(invalid_query(&problems));
    }
    Ok(UsageQuery {
        org_id: p.org_id.filter(|s| !s.is_empty()),
        workspace_id: p.workspace_id.filter(|s| !s.is_empty()),
        group_by,
        since,
        until,
    })
}

/// `GET /api/usage`.
#[utoipa::path(get, path = "/api/usage", tag = "usage", operation_id = "getUsage",
    params(UsageParams), responses((status = 200, description = "Usage grouped as asked", body = UsageReport)))]
pub async fn usage(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let q = usage_query(query(&req)?)?;
    let rows = state.prompter.usage(&caller.scope, &q).await?;
    Ok(HttpResponse::Ok().json(UsageReport {
        items: rows.into_iter().map(UsageItem::from).collect(),
    }))
}

/// One budget as its tenant sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BudgetView {
    /// Org.
    pub org_id: String,
    /// Workspace (null: the whole org).
    pub workspace_id: Option<String>,
    /// Monthly limit, USD (calendar month, UTC).
    pub monthly_usd: f64,
    /// Alert level as a share of the limit (0.8 = 80 %).
    pub alert_at: f64,
    /// `YYYY-MM` of the spend below.
    pub month: String,
    /// This month's spend at list prices, USD.
    pub spent_usd: f64,
    /// This month's spend, integer micro-dollars.
    pub spent_micros: i64,
    /// Whether runs are refused (`BUDGET_EXCEEDED`).
    pub exceeded: bool,
}

/// `{"items": [...]}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BudgetList {
    /// The budgets, by org and workspace.
    pub items: Vec<BudgetView>,
}

/// `GET /api/budgets`: the budgets that apply to the caller (set by the
/// operator with `prompter budgets`; another org's are invisible).
#[utoipa::path(get, path = "/api/budgets", tag = "usage", operation_id = "listBudgets",
    responses((status = 200, description = "Budgets with the month's spend", body = BudgetList)))]
pub async fn budgets(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Read)?;
    let items = state
        .prompter
        .budgets(&caller.scope)
        .await?
        .into_iter()
        .map(|s| BudgetView {
            org_id: s.budget.org_id,
            workspace_id: s.budget.workspace_id,
            monthly_usd: micros_to_usd(s.budget.monthly_micros),
            alert_at: s.budget.alert_permille as f64 / 1000.0,
            month: s.month,
            spent_usd: micros_to_usd(s.spent_micros),
            spent_micros: s.spent_micros,
            exceeded: s.spent_micros >= s.budget.monthly_micros,
        })
        .collect();
    Ok(HttpResponse::Ok().json(BudgetList { items }))
}
