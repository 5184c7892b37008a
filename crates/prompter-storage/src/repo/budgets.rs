//! Budgets (issue 17): the operator's monthly spend limits per org or
//! workspace, the month's spend read from the usage rollups, and the
//! once-per-month threshold marker.

use crate::sql::{self, Row};
use crate::{Scope, StorageError, Store};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// One budget. `workspace_id` None = the whole org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetRecord {
    /// Org.
    pub org_id: String,
    /// Workspace, or None for the whole org.
    pub workspace_id: Option<String>,
    /// Monthly limit, micro-dollars.
    pub monthly_micros: i64,
    /// Alert threshold, thousandths of the limit (800 = 0.8).
    pub alert_permille: i64,
    /// When it was last set (RFC 3339).
    pub updated_at: String,
}

fn ws_key(ws: Option<&str>) -> &str {
    ws.unwrap_or("")
}

fn decode(r: &Row<'_>) -> Result<BudgetRecord, StorageError> {
    let ws = r.text("workspace_id")?;
    Ok(BudgetRecord {
        org_id: r.text("org_id")?,
        workspace_id: (!ws.is_empty()).then_some(ws),
        monthly_micros: r.big("monthly_micros")?,
        alert_permille: r.i64("alert_permille")?,
        updated_at: r.text("updated_at")?,
    })
}

impl Store {
    /// Creates or replaces a budget.
    pub async fn set_budget(&self, b: &BudgetRecord) -> Result<(), StorageError> {
        self.w_exec(self.stmt(
            "INSERT INTO provider_budgets (org_id, workspace_id, monthly_micros, alert_permille, \
             updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id, workspace_id) DO UPDATE \
             SET monthly_micros = excluded.monthly_micros, alert_permille = excluded.alert_permille, \
             updated_at = excluded.updated_at",
            vec![
                sql::text(&b.org_id),
                sql::text(ws_key(b.workspace_id.as_deref())),
                sql::int(b.monthly_micros),
                sql::int(b.alert_permille),
                sql::text(&b.updated_at),
            ],
        ))
        .await
        .map_err(|e| e.into_storage("provider_budgets"))?;
        Ok(())
    }

    /// Deletes a budget; false when there was none.
    pub async fn delete_budget(&self, org: &str, ws: Option<&str>) -> Result<bool, StorageError> {
        let n = self
            .w_exec(self.stmt(
                "DELETE FROM provider_budgets WHERE org_id = $1 AND workspace_id = $2",
                vec![sql::text(org), sql::text(ws_key(ws))],
            ))
            .await
            .map_err(|e| e.into_storage("provider_budgets"))?;
        Ok(n > 0)
    }

    /// Budgets visible in `scope` (a workspace key sees its org's budget
    /// and its workspace's), ordered by org and workspace.
    pub async fn list_budgets(&self, scope: &Scope) -> Result<Vec<BudgetRecord>, StorageError> {
        let (sql, values) = match scope {
            Scope::Unrestricted => (
                "SELECT * FROM provider_budgets ORDER BY org_id, workspace_id".to_string(),
                vec![],
            ),
            Scope::Tenant {
                org_id,
                workspace_id: None,
            } => (
                "SELECT * FROM provider_budgets WHERE org_id = $1 ORDER BY workspace_id".into(),
                vec![sql::text(org_id)],
            ),
            Scope::Tenant {
                org_id,
                workspace_id: Some(ws),
            } => (
                "SELECT * FROM provider_budgets WHERE org_id = $1 AND workspace_id IN ('', $2) \
                 ORDER BY workspace_id"
                    .into(),
                vec![sql::text(org_id), sql::text(ws)],
            ),
        };
        let rows = self
            .q_all(self.stmt(&sql, values))
            .await
            .map_err(|e| e.into_storage("provider_budgets"))?;
        rows.iter().map(|row| decode(&self.row(row))).collect()
    }

    /// Spend in micro-dollars of an org (or one workspace) from `since`
    /// (a UTC day, inclusive), from the usage rollups.
    pub async fn spend_since(
        &self,
        org: &str,
        ws: Option<&str>,
        since: NaiveDate,
    ) -> Result<i64, StorageError> {
        let day = sql::text(&since.format("%Y-%m-%d").to_string());
        let (sql, values) = match ws {
            None => (
                "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) AS spend FROM usage_daily \
                 WHERE org_id = $1 AND day >= $2",
                vec![sql::text(org), day],
            ),
            Some(w) => (
                "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) AS spend FROM usage_daily \
                 WHERE org_id = $1 AND workspace_id = $2 AND day >= $3",
                vec![sql::text(org), sql::text(w), day],
            ),
        };
        let row = self
            .q_one(self.stmt(sql, values))
            .await
            .map_err(|e| e.into_storage("usage_daily"))?;
        match row {
            Some(r) => self.row(&r).big("spend"),
            None => Ok(0),
        }
    }

    /// Marks the threshold of (`org`, `ws`) as alerted for `month`
    /// (`YYYY-MM`); true only for the first caller (across instances).
    pub async fn mark_budget_alert(
        &self,
        org: &str,
        ws: Option<&str>,
        month: &str,
    ) -> Result<bool, StorageError> {
        let n = self
            .w_exec(self.stmt(
                "INSERT INTO budget_alerts (org_id, workspace_id, month) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                vec![sql::text(org), sql::text(ws_key(ws)), sql::text(month)],
            ))
            .await
            .map_err(|e| e.into_storage("budget_alerts"))?;
        Ok(n > 0)
    }
}
