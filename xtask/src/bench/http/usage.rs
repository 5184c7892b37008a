//! The usage scenarios (issue 17): `GET /api/usage` of one workspace, by
//! template and day, on 1,000 stored results and again on 1,000,000
//! (`--quick`: 20,000).
//!
//! The report reads the `usage_daily` rollup, whose size is templates × days
//! × providers, never the results. The layout keeps that fixed so the
//! results count is the only thing that grows: [`WORKSPACES`] × [`TEMPLATES`]
//! × [`DAYS`] = 1,000 rollup rows, each filled once by the first 1,000
//! results and a thousand times by the first 1,000,000. The query reads one
//! workspace's 20 of them through `ix_usage_daily_scope_day`.

use super::seed::{Placed, Seeder, SEED_USAGE};
use super::{Res, ORG};
use crate::client::request;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use hyper::body::Bytes;
use hyper::Method;
use prompter_storage::testing::TestDb;
use prompter_storage::{Scope, UsageKey, UsageQuery};
use serde_json::Value;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::LazyLock;
use uuid::Uuid;

/// Workspaces of the usage results (the query reads the first).
const WORKSPACES: u64 = 50;
/// Templates per workspace.
const TEMPLATES: u64 = 4;
/// UTC days, from [`FIRST_DAY`].
const DAYS: u64 = 5;
const FIRST_DAY: &str = "2025-02-01";
const LAST_DAY: &str = "2025-02-05";

static WS_NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    (0..WORKSPACES)
        .map(|w| format!("bench-usage-{w:02}"))
        .collect()
});

/// The seeded templates (workspace-major) and where result `k` goes.
#[derive(Debug)]
pub(super) struct Layout {
    templates: Vec<Uuid>,
}

impl Layout {
    /// Seeds the templates.
    pub(super) async fn seed(seeder: &Seeder) -> Res<Layout> {
        let mut templates = Vec::new();
        for ws in WS_NAMES.iter() {
            for t in 0..TEMPLATES {
                let id = Uuid::now_v7();
                seeder.template_rows(ORG, ws, t, 1, Some(id)).await?;
                templates.push(id);
            }
        }
        Ok(Layout { templates })
    }

    /// Result `k`: workspace `k % 50`, then template, then day, so any
    /// 1,000 consecutive results fill every rollup row exactly once.
    pub(super) fn place(&self, k: u64) -> Placed {
        let ws = k % WORKSPACES;
        let tpl = (k / WORKSPACES) % TEMPLATES;
        let day = (k / (WORKSPACES * TEMPLATES)) % DAYS;
        let base = DateTime::<Utc>::from_str(&format!("{FIRST_DAY}T00:00:00Z"))
            .expect("constant timestamp");
        Placed {
            tpl: self.templates[(ws * TEMPLATES + tpl) as usize],
            ws: &WS_NAMES[ws as usize],
            created: base
                + ChronoDuration::days(day as i64)
                + ChronoDuration::milliseconds((k / 1000) as i64),
        }
    }
}

/// The request of both scenarios.
pub(super) fn path() -> String {
    format!(
        "/api/usage?org_id={ORG}&workspace_id={}&group_by=template,day&since={FIRST_DAY}&until={LAST_DAY}",
        WS_NAMES[0]
    )
}

/// The same query as the store sees it (for its plan).
fn query() -> UsageQuery {
    let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("constant day");
    UsageQuery {
        org_id: Some(ORG.to_owned()),
        workspace_id: Some(WS_NAMES[0].clone()),
        group_by: vec![UsageKey::Template, UsageKey::Day],
        since: Some(day(FIRST_DAY)),
        until: Some(day(LAST_DAY)),
    }
}

/// Checks the API's sums against what `stored` seeded results put in the
/// first workspace (one in [`WORKSPACES`]): a rollup that drifted from the
/// results is a functional failure, not a fast query.
pub(super) async fn check_sums(addr: SocketAddr, stored: u64) -> Res<()> {
    let (status, body) = request(addr, Method::GET, &path(), Bytes::new()).await?;
    if status != 200 {
        return Err(format!("usage: {status} {}", String::from_utf8_lossy(&body)).into());
    }
    let v: Value = serde_json::from_slice(&body)?;
    let items = v["items"].as_array().ok_or("usage: no items")?;
    let sum = |k: &str| items.iter().filter_map(|i| i[k].as_i64()).sum::<i64>();
    let runs = stored.div_ceil(WORKSPACES) as i64;
    let want = [
        ("runs", runs),
        ("input_tokens", runs * SEED_USAGE.input),
        ("output_tokens", runs * SEED_USAGE.output),
        ("cost_micros", runs * SEED_USAGE.cost_micros),
    ];
    let groups = (TEMPLATES * DAYS).min(stored.div_ceil(WORKSPACES)) as usize;
    if items.len() != groups {
        return Err(format!("usage: {} groups, want {groups}", items.len()).into());
    }
    for (k, w) in want {
        if sum(k) != w {
            return Err(
                format!("usage: {k} sums to {}, want {w} ({stored} results)", sum(k)).into(),
            );
        }
    }
    Ok(())
}

/// The database's plan of the scenario's query.
pub(super) async fn plan(db: &TestDb) -> Res<String> {
    let store = db.store().await;
    let plan = store.usage_plan(&Scope::Unrestricted, &query()).await;
    store.close().await;
    Ok(plan?)
}
