//! `prompter budgets set|list|delete`: the operator's monthly spend limits
//! per org or workspace (issue 17). Budgets live in the database, so running
//! instances apply a change within a second (they re-read the table at most
//! once a second); tenants read theirs with `GET /api/budgets` but cannot
//! change them.

use clap::{Args, Subcommand};
use prompter_storage::{BudgetRecord, Scope, Store};
use std::io::Write;

/// `prompter budgets …`.
#[derive(Debug, Args)]
pub struct BudgetsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: BudgetsAction,
    /// The database.
    #[command(flatten)]
    pub db: super::db::DatabaseArgs,
    /// Apply pending migrations first (PostgreSQL).
    #[arg(long, env = "PROMPTER_MIGRATE", global = true)]
    pub migrate: bool,
}

/// Budget commands.
#[derive(Debug, Subcommand)]
pub enum BudgetsAction {
    /// Create or replace the budget of an org (or one of its workspaces).
    Set {
        /// Org.
        #[arg(long)]
        org: String,
        /// Workspace (omit for the whole org).
        #[arg(long)]
        workspace: Option<String>,
        /// Limit per calendar month (UTC), USD.
        #[arg(long, value_parser = parse_usd)]
        monthly_usd: i64,
        /// Share of the limit at which one `budget.threshold` event is sent per month (0–1).
        #[arg(long, default_value = "0.8", value_parser = parse_share)]
        alert_at: i64,
    },
    /// List budgets (tab-separated: org, workspace, monthly_usd, alert_at, updated_at).
    List {
        /// Only this org.
        #[arg(long)]
        org: Option<String>,
    },
    /// Delete a budget.
    Delete {
        /// Org.
        #[arg(long)]
        org: String,
        /// Workspace (omit for the org-wide budget).
        #[arg(long)]
        workspace: Option<String>,
    },
}

/// USD → micro-dollars (positive, at most 6 decimals).
fn parse_usd(s: &str) -> Result<i64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !v.is_finite() || v <= 0.0 || v > 1e12 {
        return Err("must be a positive amount of USD".into());
    }
    Ok((v * 1e6).round() as i64)
}

/// A share in [0, 1] → thousandths.
fn parse_share(s: &str) -> Result<i64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err("must be between 0 and 1".into());
    }
    Ok((v * 1000.0).round() as i64)
}

/// Runs one budgets command.
pub async fn run(args: BudgetsArgs) -> Result<(), String> {
    let store = super::db::open_store("budgets", &args.db.url(), args.migrate).await?;
    let out = run_on(&store, args.action).await;
    store.close().await;
    out
}

async fn run_on(store: &Store, action: BudgetsAction) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match action {
        BudgetsAction::Set {
            org,
            workspace,
            monthly_usd,
            alert_at,
        } => {
            let b = BudgetRecord {
                org_id: org,
                workspace_id: workspace.filter(|w| !w.is_empty()),
                monthly_micros: monthly_usd,
                alert_permille: alert_at,
                updated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            };
            store.set_budget(&b).await.map_err(|e| e.to_string())?;
            let _ = writeln!(out, "budget set: {}", line(&b));
        }
        BudgetsAction::List { org } => {
            let scope = match org {
                Some(o) => Scope::tenant(o, None),
                None => Scope::Unrestricted,
            };
            for b in store
                .list_budgets(&scope)
                .await
                .map_err(|e| e.to_string())?
            {
                let _ = writeln!(out, "{}", line(&b));
            }
        }
        BudgetsAction::Delete { org, workspace } => {
            let ws = workspace.filter(|w| !w.is_empty());
            if !store
                .delete_budget(&org, ws.as_deref())
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!(
                    "no budget for org {org}{}",
                    ws.map(|w| format!(" workspace {w}")).unwrap_or_default()
                ));
            }
            let _ = writeln!(out, "budget deleted");
        }
    }
    Ok(())
}

fn line(b: &BudgetRecord) -> String {
    format!(
        "{}\t{}\t{:.2}\t{:.3}\t{}",
        b.org_id,
        b.workspace_id.as_deref().unwrap_or("-"),
        b.monthly_micros as f64 / 1e6,
        b.alert_permille as f64 / 1000.0,
        b.updated_at
    )
}
