//! `cargo xtask bench <target>`: benchmark programs (never timed assertions in tests).

use crate::TaskResult;

mod batch;
mod http;
mod storage;

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to benchmark.
    #[command(subcommand)]
    target: Target,
}

#[derive(Debug, clap::Subcommand)]
enum Target {
    /// Canonicalise + hash (criterion): `cargo bench -p prompter-domain`.
    Domain {
        /// Extra criterion arguments (e.g. `--measurement-time 3`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Store vs raw sqlx: template and result inserts/s on SQLite and PostgreSQL.
    Storage(storage::Options),
    /// The release server under load: every route, both backends, targets as ratios.
    Http(http::Options),
    /// Items/s of one tracking batch (stub latency, provider cap; issue 18).
    Batch(batch::Options),
}

/// Runs `bench`.
pub fn run(args: Args) -> TaskResult {
    match args.target {
        Target::Domain { args } => domain(&args),
        Target::Storage(opts) => storage::run(opts),
        Target::Http(opts) => http::run(opts),
        Target::Batch(opts) => batch::run(opts),
    }
}

/// Runs the domain crate's criterion benchmarks.
fn domain(extra: &[String]) -> TaskResult {
    let mut cmd = crate::support::cargo();
    cmd.args([
        "bench",
        "-p",
        "prompter-domain",
        "--bench",
        "canonicalize",
        "--",
    ]);
    cmd.args(extra);
    let status = cmd.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo bench failed: {status}").into())
    }
}
