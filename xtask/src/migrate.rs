//! `cargo xtask migrate up|down|status|fresh [--database-url URL] [--hash-algorithm blake3|sha256]`.

use crate::TaskResult;
use prompter_storage::migrate_cli::{self, MigrateCommand};
use prompter_storage::{DATABASE_URL_ENV, DEFAULT_DATABASE_URL};

/// Arguments of `migrate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    /// Database URL [default: $PROMPTER_DATABASE_URL, else sqlite://prompter.db?mode=rwc]
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Hash algorithm to pin on `up`/`fresh` when none is pinned (default blake3);
    /// refused if the database is pinned to another one.
    #[arg(long, global = true, value_parser = ["blake3", "sha256"])]
    hash_algorithm: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Apply all pending migrations and pin the hash algorithm.
    Up,
    /// Roll back the newest migrations.
    Down {
        /// How many migrations to roll back.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// Show applied and pending migrations and the pinned hash algorithm.
    Status,
    /// Drop every table and re-apply all migrations (destroys data).
    Fresh,
}

/// Runs `migrate`.
pub fn run(args: Args) -> TaskResult {
    let url = args
        .database_url
        .or_else(|| {
            std::env::var(DATABASE_URL_ENV)
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    let cmd = match args.action {
        Action::Up => MigrateCommand::Up,
        Action::Down { steps } => MigrateCommand::Down { steps },
        Action::Status => MigrateCommand::Status,
        Action::Fresh => MigrateCommand::Fresh,
    };
    crate::runtime().block_on(migrate_cli::run(&url, cmd, args.hash_algorithm.as_deref()))?;
    Ok(())
}
