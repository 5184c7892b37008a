//! `cargo xtask …`: project automation. `main` only parses and dispatches;
//! each subcommand lives in its own module.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod bench;
mod check_dashboards;
mod client;
mod dist;
mod faults;
mod fuzz_api;
mod migrate;
mod support;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Prompter project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Database migrations: up | down | status | fresh.
    Migrate(migrate::Args),
    /// Benchmarks: `bench storage`, `bench http`, `bench batch`.
    Bench(bench::Args),
    /// schemathesis against a live server: no 5xx, every status and body as documented.
    FuzzApi(fuzz_api::Args),
    /// The Debian package (cargo-deb); `--smoke` installs, checks, runs and purges it.
    Dist(dist::Args),
    /// Fault tests (Redis/PostgreSQL/provider outages, kill -9, SIGTERM) with their figures: sent / 5xx / lost.
    Faults(faults::Args),
    /// Check the dashboards and alert rules against a live server (see the module docs).
    #[command(disable_help_flag = true)]
    CheckDashboards {
        /// Passed through: [--keep] [--skip-install]
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Migrate(args) => migrate::run(args),
        Command::Bench(args) => bench::run(args),
        Command::FuzzApi(args) => fuzz_api::run(args),
        Command::Faults(args) => faults::run(args),
        Command::Dist(args) => dist::run(args),
        Command::CheckDashboards { args } => return check_dashboards::main(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Error type of every subcommand: a message for the operator.
pub type TaskResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A multi-threaded tokio runtime for a subcommand.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
