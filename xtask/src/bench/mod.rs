//! `cargo xtask bench <target>`: benchmark programs (never timed assertions in tests).

use crate::TaskResult;

mod storage;

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to benchmark.
    #[arg(value_enum)]
    target: Target,
    #[command(flatten)]
    storage: storage::Options,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Target {
    /// Store vs raw sqlx: template and result inserts/s on SQLite and PostgreSQL.
    Storage,
}

/// Runs `bench`.
pub fn run(args: Args) -> TaskResult {
    match args.target {
        Target::Storage => storage::run(args.storage),
    }
}
