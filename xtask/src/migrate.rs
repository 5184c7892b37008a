//! `cargo xtask migrate up|down|status|fresh|adopt-v7 [--database-url URL] [--hash-algorithm blake3|sha256]`
//! (the same code as `prompter migrate`).

use crate::TaskResult;
use prompter_storage::migrate_cli::{self, Confirm, MigrateCommand};
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

/// Consent flags of `down` and `fresh`.
#[derive(Debug, Clone, Copy, clap::Args)]
struct ConfirmArgs {
    /// Drop without asking.
    #[arg(long)]
    yes: bool,
    /// On a database adopted from V7: also go below the adoption point.
    #[arg(long)]
    yes_destroy_v7_data: bool,
}

impl From<ConfirmArgs> for Confirm {
    fn from(c: ConfirmArgs) -> Self {
        Confirm {
            yes: c.yes,
            destroy_v7_data: c.yes_destroy_v7_data,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Apply all pending migrations and pin the hash algorithm.
    Up,
    /// Roll back the newest migrations (prints what it drops; needs --yes).
    Down {
        /// How many migrations to roll back.
        #[arg(long, default_value_t = 1)]
        steps: u32,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Show applied and pending migrations and the pinned hash algorithm.
    Status,
    /// Drop every table and re-apply all migrations (destroys data; needs --yes).
    Fresh {
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Take over a V7 database in place.
    #[command(name = "adopt-v7")]
    AdoptV7 {
        /// Print the plan and the counts; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
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
        Action::Down { steps, confirm } => MigrateCommand::Down {
            steps,
            confirm: confirm.into(),
        },
        Action::Status => MigrateCommand::Status,
        Action::Fresh { confirm } => MigrateCommand::Fresh {
            confirm: confirm.into(),
        },
        Action::AdoptV7 { dry_run } => MigrateCommand::AdoptV7 { dry_run },
    };
    crate::runtime().block_on(migrate_cli::run(&url, cmd, args.hash_algorithm.as_deref()))?;
    Ok(())
}
