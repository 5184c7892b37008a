//! `prompter migrate up|down|status|fresh|adopt-v7`, for ops who deploy only the binary.

use super::db::{self, DatabaseArgs};
use clap::{Args, Subcommand};
use prompter_storage::migrate_cli::{self, Confirm, MigrateCommand};

/// Migration arguments.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: MigrateAction,
    /// Which database.
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Hash algorithm to pin when nothing is pinned yet (`fresh` keeps the existing pin unless this says otherwise).
    #[arg(long, env = "PROMPTER_HASH_ALGORITHM", global = true, value_parser = ["blake3", "sha256"])]
    pub hash_algorithm: Option<String>,
}

/// Consent flags of the destructive actions.
#[derive(Debug, Clone, Copy, Args)]
pub struct ConfirmArgs {
    /// Drop without asking (otherwise a terminal asks to type the command's name; without a terminal it is refused).
    #[arg(long)]
    pub yes: bool,
    /// On a database adopted from V7: also go below the adoption point, dropping V7's rows.
    #[arg(long)]
    pub yes_destroy_v7_data: bool,
}

impl From<ConfirmArgs> for Confirm {
    fn from(c: ConfirmArgs) -> Self {
        Confirm {
            yes: c.yes,
            destroy_v7_data: c.yes_destroy_v7_data,
        }
    }
}

/// Migration actions.
#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply all pending migrations (creates a SQLite file if missing).
    Up,
    /// Roll back the last `steps` migrations (prints what it drops; needs --yes).
    Down {
        /// How many to roll back.
        #[arg(long, default_value_t = 1)]
        steps: u32,
        /// Consent.
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// List applied and pending migrations.
    Status,
    /// Drop everything and re-apply all migrations (prints what it drops; needs --yes).
    Fresh {
        /// Consent.
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Take over a V7 database in place (SQLite: a backup is written next to the file first).
    #[command(name = "adopt-v7")]
    AdoptV7 {
        /// Print the plan and the counts; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs the action; the error says why (e.g. the database is unreachable).
pub async fn run(args: MigrateArgs) -> Result<(), String> {
    let url = args.db.url();
    let cmd = match args.action {
        MigrateAction::Up => MigrateCommand::Up,
        MigrateAction::Down { steps, confirm } => MigrateCommand::Down {
            steps,
            confirm: confirm.into(),
        },
        MigrateAction::Status => MigrateCommand::Status,
        MigrateAction::Fresh { confirm } => MigrateCommand::Fresh {
            confirm: confirm.into(),
        },
        MigrateAction::AdoptV7 { dry_run } => MigrateCommand::AdoptV7 { dry_run },
    };
    db::announce("migrate", &url);
    migrate_cli::run(&url, cmd, args.hash_algorithm.as_deref())
        .await
        .map_err(|e| e.to_string())
}
