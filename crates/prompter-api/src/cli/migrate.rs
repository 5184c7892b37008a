//! `prompter migrate up|down|status|fresh`, for ops who deploy only the binary.

use clap::{Args, Subcommand};
use prompter_storage::migrate_cli::{self, MigrateCommand};

/// Migration arguments.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: MigrateAction,
    /// Database URL (default: PROMPTER_DATABASE_URL, else the embedded SQLite file).
    #[arg(long, env = "PROMPTER_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Hash algorithm to pin when nothing is pinned yet.
    #[arg(long, env = "PROMPTER_HASH_ALGORITHM", global = true, value_parser = ["blake3", "sha256"])]
    pub hash_algorithm: Option<String>,
}

/// Migration actions.
#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply all pending migrations.
    Up,
    /// Roll back the last `steps` migrations.
    Down {
        /// How many to roll back.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List applied and pending migrations.
    Status,
    /// Drop everything and re-apply all migrations.
    Fresh,
}

/// Runs the action; the error says why (e.g. the database is unreachable).
pub async fn run(args: MigrateArgs) -> Result<(), String> {
    let url = args
        .database_url
        .unwrap_or_else(|| prompter_storage::DEFAULT_DATABASE_URL.to_owned());
    let cmd = match args.action {
        MigrateAction::Up => MigrateCommand::Up,
        MigrateAction::Down { steps } => MigrateCommand::Down { steps },
        MigrateAction::Status => MigrateCommand::Status,
        MigrateAction::Fresh => MigrateCommand::Fresh,
    };
    migrate_cli::run(&url, cmd, args.hash_algorithm.as_deref())
        .await
        .map_err(|e| e.to_string())
}
