//! `cargo xtask bench <target>`: benchmark programs (never timed assertions in tests).

use crate::TaskResult;

mod batch;
mod cluster;
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
    /// 1 and 3 release servers behind haproxy on one PostgreSQL + Redis: throughput
    /// ratio, probe burst, webhook deliveries per event, kill -9 under load.
    Cluster(cluster::Options),
    /// Items/s of one tracking batch (stub latency, provider cap; issue 18).
    Batch(batch::Options),
}

/// Runs `bench`.
pub fn run(args: Args) -> TaskResult {
    match args.target {
        Target::Domain { args } => domain(&args),
        Target::Storage(opts) => storage::run(opts),
        Target::Http(opts) => http::run(opts),
        Target::Cluster(opts) => cluster::run(opts),
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

/// `cargo xtask` is a dev build, and an unoptimised load generator steals the
/// server's CPU: unless `debug_build`, re-run this `bench <sub>` command from
/// the release xtask built beside the server (`Some` = its outcome; `None` =
/// this already is the release xtask, or a debug run).
fn rerun_from_release(sub: &str, debug_build: bool) -> Option<TaskResult> {
    if !cfg!(debug_assertions) || debug_build {
        return None;
    }
    let exe = crate::support::target_dir().join("release").join("xtask");
    let args: Vec<String> = std::env::args().collect();
    let rest = args
        .iter()
        .position(|a| a == sub)
        .map(|i| &args[i + 1..])
        .unwrap_or(&[]);
    let status = std::process::Command::new(&exe)
        .args(["bench", sub, "--no-build"])
        .args(rest.iter().filter(|a| *a != "--no-build"))
        .status();
    Some(match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("release xtask: {s}").into()),
        Err(e) => Err(format!(
            "running {}: {e} (build it, or drop --no-build)",
            exe.display()
        )
        .into()),
    })
}

/// Raises the soft open-files limit to the hard one (server children
/// inherit it); returns the limit now in force.
fn raise_fd_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let cur = getrlimit(Resource::Nofile);
    if let Some(max) = cur.maximum {
        if cur.current.is_some_and(|c| c < max) {
            let _ = setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(max),
                    maximum: Some(max),
                },
            );
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}
