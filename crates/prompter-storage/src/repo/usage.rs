//! Usage rollups (issue 17): `usage_daily` rows written in the same
//! transaction as the results they count, and the usage report read from
//! them (never from `prompt_results`, so its cost does not grow with the
//! number of stored runs, only with templates × days in range).

use crate::sql::{self, Row};
use crate::{Backend, Scope, StorageError, Store};
use chrono::NaiveDate;
use sea_orm::{Statement, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Summed columns, in `usage_daily` order.
const SUMS: [&str; 5] = [
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "cost_micros",
];

/// The UTC day (`YYYY-MM-DD`) of `prompt_results.created_at` (alias `r`).
fn day_expr(b: Backend) -> &'static str {
    match b {
        Backend::Postgres => "to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        // Fixed-width `YYYY-MM-DDTHH:MM:SS.ffffffZ` text.
        Backend::Sqlite => "substr(r.created_at, 1, 10)",
    }
}

/// Adds the results `ids` (just inserted, same transaction) to their
/// `usage_daily` rows. Rows are upserted in key order, so concurrent
/// transactions lock them in the same order.
pub(crate) fn rollup_stmt(b: Backend, ids: &[Uuid]) -> Statement {
    let mut sql = String::from(
        "INSERT INTO usage_daily (template_id, day, provider, org_id, workspace_id, prompt, \
         model, runs, input_tokens, output_tokens, cached_input_tokens, \
         cache_write_input_tokens, cost_micros, unpriced_runs) \
         SELECT r.template_id, ",
    );
    sql.push_str(day_expr(b));
    sql.push_str(
        ", COALESCE(r.provider, 'unknown'), MIN(r.org_id), MIN(r.workspace_id), MIN(t.name), \
         MIN(t.model_id), COUNT(*)",
    );
    for c in SUMS {
        sql.push_str(&format!(", CAST(COALESCE(SUM(r.{c}), 0) AS BIGINT)"));
    }
    sql.push_str(
        ", CAST(SUM(CASE WHEN r.cost_micros IS NULL THEN 1 ELSE 0 END) AS BIGINT) \
         FROM prompt_results r JOIN prompt_templates t ON t.id = r.template_id WHERE r.id IN (",
    );
    for i in 0..ids.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        b.push_param(&mut sql, i + 1);
    }
    sql.push_str(
        ") GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 \
         ON CONFLICT (template_id, day, provider) DO UPDATE SET \
         runs = usage_daily.runs + excluded.runs, \
         unpriced_runs = usage_daily.unpriced_runs + excluded.unpriced_runs",
    );
    for c in SUMS {
        sql.push_str(&format!(", {c} = usage_daily.{c} + excluded.{c}"));
    }
    let values: Vec<Value> = ids.iter().map(|id| b.uuid(*id)).collect();
    Statement::from_sql_and_values(b.db(), sql, values)
}

/// A grouping key of the usage report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum UsageKey {
    /// `org_id`.
    Org,
    /// `workspace_id`.
    Workspace,
    /// `template_id`.
    Template,
    /// The prompt (template name).
    Prompt,
    /// The provider that served the runs.
    Provider,
    /// The template's model id (Azure: the deployment).
    Model,
    /// The UTC day.
    Day,
}

impl UsageKey {
    /// Every key, in report column order.
    pub const ALL: [UsageKey; 7] = [
        UsageKey::Org,
        UsageKey::Workspace,
        UsageKey::Template,
        UsageKey::Prompt,
        UsageKey::Provider,
        UsageKey::Model,
        UsageKey::Day,
    ];

    /// The `group_by` spelling (`org`, `workspace`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            UsageKey::Org => "org",
            UsageKey::Workspace => "workspace",
            UsageKey::Template => "template",
            UsageKey::Prompt => "prompt",
            UsageKey::Provider => "provider",
            UsageKey::Model => "model",
            UsageKey::Day => "day",
        }
    }

    /// Parses a `group_by` name.
    pub fn parse(s: &str) -> Option<UsageKey> {
        UsageKey::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn column(self) -> &'static str {
        match self {
            UsageKey::Org => "org_id",
            UsageKey::Workspace => "workspace_id",
            UsageKey::Template => "template_id",
            UsageKey::Prompt => "prompt",
            UsageKey::Provider => "provider",
            UsageKey::Model => "model",
            UsageKey::Day => "day",
        }
    }
}

/// What to report: groups, an inclusive range of UTC days, and optional
/// org/workspace filters (applied within the caller's scope).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    /// Only this org.
    pub org_id: Option<String>,
    /// Only this workspace.
    pub workspace_id: Option<String>,
    /// Grouping keys (duplicates ignored); empty = one total row.
    pub group_by: Vec<UsageKey>,
    /// First day (inclusive).
    pub since: Option<NaiveDate>,
    /// Last day (inclusive).
    pub until: Option<NaiveDate>,
}

/// One group of the usage report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    /// The group's key values, in [`UsageKey::ALL`] order.
    pub keys: Vec<(UsageKey, String)>,
    /// Stored runs.
    pub runs: i64,
    /// Prompt tokens (NULL counts as 0).
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Prompt tokens read from a cache.
    pub cached_input_tokens: i64,
    /// Prompt tokens written to a cache.
    pub cache_write_input_tokens: i64,
    /// Cost of the priced runs, micro-dollars.
    pub cost_micros: i64,
    /// Runs whose model had no price (not in `cost_micros`).
    pub unpriced_runs: i64,
}

/// The report's keys (in [`UsageKey::ALL`] order), statement and values.
fn usage_sql(scope: &Scope, q: &UsageQuery) -> (Vec<UsageKey>, String, Vec<Value>) {
    let keys: Vec<UsageKey> = UsageKey::ALL
        .into_iter()
        .filter(|k| q.group_by.contains(k))
        .collect();
    let mut values: Vec<Value> = Vec::new();
    let param = |v: Value, values: &mut Vec<Value>| {
        values.push(v);
        format!("${}", values.len())
    };
    let mut conds: Vec<String> = Vec::new();
    if let Scope::Tenant {
        org_id,
        workspace_id,
    } = scope
    {
        conds.push(format!(
            "org_id = {}",
            param(sql::text(org_id), &mut values)
        ));
        if let Some(ws) = workspace_id {
            conds.push(format!(
                "workspace_id = {}",
                param(sql::text(ws), &mut values)
            ));
        }
    }
    if let Some(o) = &q.org_id {
        conds.push(format!("org_id = {}", param(sql::text(o), &mut values)));
    }
    if let Some(w) = &q.workspace_id {
        conds.push(format!(
            "workspace_id = {}",
            param(sql::text(w), &mut values)
        ));
    }
    if let Some(d) = q.since {
        let p = param(sql::text(&d.format("%Y-%m-%d").to_string()), &mut values);
        conds.push(format!("day >= {p}"));
    }
    if let Some(d) = q.until {
        let p = param(sql::text(&d.format("%Y-%m-%d").to_string()), &mut values);
        conds.push(format!("day <= {p}"));
    }
    let cols: Vec<&str> = keys.iter().map(|k| k.column()).collect();
    let mut sql = String::from("SELECT ");
    for c in &cols {
        sql.push_str(c);
        sql.push_str(", ");
    }
    sql.push_str("CAST(COALESCE(SUM(runs), 0) AS BIGINT) AS runs");
    for c in SUMS.iter().chain(["unpriced_runs"].iter()) {
        sql.push_str(&format!(", CAST(COALESCE(SUM({c}), 0) AS BIGINT) AS {c}"));
    }
    sql.push_str(" FROM usage_daily");
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    if !cols.is_empty() {
        let list = cols.join(", ");
        sql.push_str(&format!(" GROUP BY {list} ORDER BY {list}"));
    }
    (keys, sql, values)
}

impl Store {
    /// The usage report in `scope`, from the daily rollups: one row per
    /// group, ordered by the keys.
    pub async fn usage(
        &self,
        scope: &Scope,
        q: &UsageQuery,
    ) -> Result<Vec<UsageRow>, StorageError> {
        let b = self.backend;
        let (keys, sql, values) = usage_sql(scope, q);
        let rows = self
            .q_all(self.stmt(&sql, values))
            .await
            .map_err(|e| e.into_storage("usage_daily"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let r = Row { row, backend: b };
            // No group and no rows in range: the total is all zeros.
            let mut kv = Vec::with_capacity(keys.len());
            for k in &keys {
                let v = match k {
                    UsageKey::Template => r.uuid(k.column())?.to_string(),
                    _ => r.text(k.column())?,
                };
                kv.push((*k, v));
            }
            out.push(UsageRow {
                keys: kv,
                runs: r.big("runs")?,
                input_tokens: r.big("input_tokens")?,
                output_tokens: r.big("output_tokens")?,
                cached_input_tokens: r.big("cached_input_tokens")?,
                cache_write_input_tokens: r.big("cache_write_input_tokens")?,
                cost_micros: r.big("cost_micros")?,
                unpriced_runs: r.big("unpriced_runs")?,
            });
        }
        Ok(out)
    }

    /// The database's plan of [`Store::usage`] for `q` in `scope`
    /// (PostgreSQL `EXPLAIN`, SQLite `EXPLAIN QUERY PLAN`), one line per
    /// node: shows that the report reads `usage_daily` through an index.
    pub async fn usage_plan(&self, scope: &Scope, q: &UsageQuery) -> Result<String, StorageError> {
        let (_, sql, values) = usage_sql(scope, q);
        let (explain, col) = match self.backend {
            Backend::Postgres => ("EXPLAIN ", "QUERY PLAN"),
            Backend::Sqlite => ("EXPLAIN QUERY PLAN ", "detail"),
        };
        let rows = self
            .q_all(self.stmt(&format!("{explain}{sql}"), values))
            .await
            .map_err(|e| e.into_storage("usage_daily"))?;
        let mut lines = Vec::with_capacity(rows.len());
        for row in &rows {
            lines.push(self.row(row).text(col)?);
        }
        Ok(lines.join("\n"))
    }
}
