//! `cargo xtask bench http`: the release server under load, end to end.
//!
//! Builds `prompter` (`cargo build --release -p prompter-api`), then for each
//! backend (a SQLite temp file always; a fresh PostgreSQL database, plus Redis
//! when given, with `--postgres-url` / `PROMPTER_TEST_POSTGRES_URL`) starts
//! the server as a subprocess on its own fresh database and drives each
//! scenario with a fixed number of keep-alive HTTP/1.1 connections (one tokio
//! task and one hyper connection each, closed loop) for a fixed time after a
//! warm-up. Latencies go into an HDR histogram (µs). The server is restarted
//! for every scenario so its peak RSS (`VmHWM` of `/proc/<pid>/status`) is that
//! scenario's own.
//!
//! Rows for `list` / `results` are seeded straight through sqlx (multi-row
//! inserts), not through HTTP. Read scenarios run first, on small tables
//! (1k rows), then again after the tables grew to 100k rows, so an O(n)
//! path (a scan of the tenant or of the whole table) shows as a ratio.
//!
//! The targets are ratios taken in the same run (the machine is shared and
//! noisy; absolute numbers are not comparable between runs):
//! * `run_llm` (stub latency 500 ms, 1000 connections): throughput ≥ 90 % of
//!   connections ÷ latency, no errors, server peak RSS ≤ 100 MiB;
//! * `run_llm_3k` (SQLite only; 500 ms, 3000 connections): the same
//!   throughput ratio (of 6000 runs/s), no errors, peak RSS ≤ 128 MiB;
//!   printed as one `RESULT run_llm_3k …` line with the load average;
//! * `create_unique` ≥ 70 % of a raw sqlx baseline doing the same inserts as
//!   single-row transactions on the same database (server stopped meanwhile);
//! * `list` / `results` first-page p50 with 100k rows ≤ 2 × the same with 1k;
//! * `usage` (`GET /api/usage` of one workspace by template and day) p50 with
//!   1,000,000 stored results ≤ 2 × the same with 1,000 (`--quick`: 20,000);
//!   the seeded results carry usage and their `usage_daily` rollup rows are
//!   written in the same transaction by the store's own statement, checked
//!   against the API's sums before the scenario runs, and the query's plan
//!   (`EXPLAIN`) is printed;
//! * a 50-way concurrent ensure-version burst on a fresh template makes exactly
//!   one probe (`prompter_probe_attempts_total` from `/metrics`);
//! * `fetch_label` (`GET /api/prompts/{name}?label=production`) and
//!   `fetch_label_304` (the same with a matching `If-None-Match`) at least as
//!   many requests per second as `check_dup`.
//!
//! Phases, one module each: `backend` (the order of the phases of one
//! backend and their checks), `seed` (rows written straight through sqlx,
//! and the raw baseline), `server` (the server subprocess), `load` (the
//! scenarios: connections, closed-loop driving, the probe burst) and
//! `report` (the table, JSON and the docs section). Requests go through
//! the crate's one HTTP client (`crate::client`).
//!
//! Output: a table on stdout, `target/bench/http.json`, and (full runs only)
//! the generated section of `docs/benchmarks.md` (the rest of that file is
//! hand-written and kept). A target below its ratio is reported, not fatal;
//! the program fails only when something is functionally wrong (the server
//! does not start, a scenario answers an unexpected status, the probe burst
//! probes more than once).

mod backend;
pub(super) mod load;
pub(super) mod report;
mod seed;
pub(super) mod server;
mod usage;

use crate::support::{cargo_build, target_dir, workspace_root};
use crate::TaskResult;
use prompter_storage::testing::TestDb;
use std::path::PathBuf;

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(super) type Res<T> = Result<T, BoxError>;

/// Options of `bench http`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Smoke run: short scenarios, fewer connections and rows; SQLite only
    /// unless `--postgres-url` is given explicitly; docs/benchmarks.md untouched.
    #[arg(long)]
    quick: bool,
    /// PostgreSQL server to create a scratch database on
    /// [default: $PROMPTER_TEST_POSTGRES_URL (not in --quick); without either, PostgreSQL is skipped]
    #[arg(long)]
    postgres_url: Option<String>,
    /// Redis for the probe guard of the PostgreSQL runs
    /// [default: $PROMPTER_TEST_REDIS_URL (not in --quick)]
    #[arg(long)]
    redis_url: Option<String>,
    /// Measured seconds per scenario [default: 8; --quick: 2].
    #[arg(long)]
    seconds: Option<f64>,
    /// Warm-up seconds per scenario (same load, not recorded) [default: 2; --quick: 0.5].
    #[arg(long)]
    warmup: Option<f64>,
    /// Connections of every scenario but run_llm [default: 16; --quick: 8].
    #[arg(long)]
    connections: Option<usize>,
    /// Connections of run_llm [default: 1000; --quick: 200].
    #[arg(long)]
    llm_connections: Option<usize>,
    /// Connections of run_llm_3k (one SQLite instance; issue 16) [default: 3000; --quick: 300].
    #[arg(long)]
    llm_many_connections: Option<usize>,
    /// Stub latency of run_llm, milliseconds.
    #[arg(long, default_value_t = 500)]
    llm_latency_ms: u64,
    /// Only these scenarios (comma-separated names; the probe burst is `probe_burst`,
    /// the raw baseline runs with `create_unique`).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Only these backends (comma-separated: sqlite, postgres).
    #[arg(long, value_delimiter = ',')]
    backends: Vec<String>,
    /// Do not run `cargo build`; use the binary already built.
    #[arg(long)]
    no_build: bool,
    /// Bench the debug builds (target/debug/prompter, and this dev-built xtask as
    /// the client): only to check that the bench works (CI smoke), numbers mean nothing.
    #[arg(long)]
    debug_build: bool,
    /// Command prefix for the server, whitespace-separated, e.g.
    /// "valgrind --tool=callgrind --callgrind-out-file=target/bench/cg.%p".
    #[arg(long)]
    server_wrapper: Option<String>,
    /// Extra `prompter serve` argument (repeatable), e.g. `--server-arg=--workers=1`.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
}

// ---------------------------------------------------------------------------
// settings

/// Everything a run needs, resolved from the options.
#[derive(Debug, Clone)]
pub(in crate::bench) struct Plan {
    pub(in crate::bench) quick: bool,
    pub(in crate::bench) seconds: f64,
    pub(in crate::bench) warmup: f64,
    pub(in crate::bench) connections: usize,
    pub(in crate::bench) llm_connections: usize,
    pub(in crate::bench) llm_latency_ms: u64,
    pub(in crate::bench) llm_many_connections: usize,
    pub(in crate::bench) only: Vec<String>,
    pub(in crate::bench) small_rows: u64,
    pub(in crate::bench) mid_rows: u64,
    pub(in crate::bench) large_rows: u64,
    /// Stored results of the large `usage` scenario.
    pub(in crate::bench) usage_rows: u64,
    pub(in crate::bench) burst: usize,
    pub(in crate::bench) bin: PathBuf,
    pub(in crate::bench) wrapper: Vec<String>,
    pub(in crate::bench) server_args: Vec<String>,
    pub(in crate::bench) logs: PathBuf,
}

impl Plan {
    pub(super) fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == scenario)
    }
}

pub(super) const TARGET_LLM_THROUGHPUT: f64 = 0.90;
pub(super) const TARGET_LLM_RSS_MIB: f64 = 100.0;
/// run_llm_3k: peak RSS of the one instance holding 3000 connections.
pub(super) const TARGET_LLM_MANY_RSS_MIB: f64 = 128.0;
pub(super) const TARGET_CREATE_VS_RAW: f64 = 0.70;
pub(super) const TARGET_READ_GROWTH: f64 = 2.0;
pub(super) const PAGE_LIMIT: u32 = 50;

pub(super) const ORG: &str = "bench-org";
pub(super) const LIST_WS: &str = "bench-list";
pub(super) const RESULTS_WS: &str = "bench-results";
pub(super) const SEED_WS: &str = "bench-seed";

/// Runs the HTTP benchmark.
pub fn run(opts: Options) -> TaskResult {
    let quick = opts.quick;
    let env = |k: &str| std::env::var(k).ok().filter(|s| !s.trim().is_empty());
    let pg_url = opts.postgres_url.clone().or_else(|| {
        (!quick)
            .then(|| env(prompter_storage::testing::POSTGRES_URL_ENV))
            .flatten()
    });
    let redis_url = opts
        .redis_url
        .clone()
        .or_else(|| (!quick).then(|| env("PROMPTER_TEST_REDIS_URL")).flatten());
    let profile = if opts.debug_build { "debug" } else { "release" };
    let bin = target_dir().join(profile).join("prompter");
    let logs = target_dir().join("bench");
    std::fs::create_dir_all(&logs)?;
    let plan = Plan {
        quick,
        seconds: opts.seconds.unwrap_or(if quick { 2.0 } else { 8.0 }),
        warmup: opts.warmup.unwrap_or(if quick { 0.5 } else { 2.0 }),
        connections: opts
            .connections
            .unwrap_or(if quick { 8 } else { 16 })
            .max(1),
        llm_connections: opts
            .llm_connections
            .unwrap_or(if quick { 200 } else { 1000 })
            .max(1),
        llm_latency_ms: opts.llm_latency_ms.max(1),
        llm_many_connections: opts
            .llm_many_connections
            .unwrap_or(if quick { 300 } else { 3000 })
            .max(1),
        only: opts.only.clone(),
        small_rows: 1_000,
        mid_rows: if quick { 5_000 } else { 10_000 },
        large_rows: if quick { 20_000 } else { 100_000 },
        usage_rows: if quick { 20_000 } else { 1_000_000 },
        burst: 50,
        bin,
        wrapper: opts
            .server_wrapper
            .as_deref()
            .map(|w| w.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        server_args: opts.server_args.clone(),
        logs,
    };
    if !opts.no_build {
        // The release xtask too: it is the load generator (see below).
        let mut packages = vec!["prompter-api"];
        if !opts.debug_build {
            packages.push("xtask");
        }
        cargo_build(&packages, !opts.debug_build)?;
    }
    // The load generator and the raw sqlx baseline must not be a debug build
    // (an unoptimised client steals the server's CPU, an unoptimised sqlx makes
    // a flattering baseline).
    if let Some(done) = super::rerun_from_release("http", opts.debug_build) {
        return done;
    }
    if !plan.bin.exists() {
        return Err(format!(
            "{} does not exist (build it, or drop --no-build)",
            plan.bin.display()
        )
        .into());
    }
    let nofile = super::raise_fd_limit();
    let want_backend = |b: &str| opts.backends.is_empty() || opts.backends.iter().any(|x| x == b);

    crate::runtime().block_on(async move {
        println!(
            "bench http: {} build, {}s per scenario after {}s warm-up, {} connections (run_llm: {} at {} ms), fd limit {nofile}",
            profile, plan.seconds, plan.warmup, plan.connections, plan.llm_connections, plan.llm_latency_ms
        );
        let mut reports = Vec::new();
        let mut failures = Vec::new();
        if want_backend("sqlite") {
            let db = TestDb::sqlite().await;
            reports.push(backend::bench_backend(&plan, &db, None, &mut failures).await?);
        }
        if want_backend("postgres") {
            match &pg_url {
                Some(url) => {
                    let db = TestDb::postgres(url).await;
                    let r = backend::bench_backend(&plan, &db, redis_url.as_deref(), &mut failures).await;
                    drop(db); // drops the scratch database
                    reports.push(r?);
                }
                None => println!(
                    "PostgreSQL skipped: no --postgres-url{}",
                    if quick { " (--quick ignores PROMPTER_TEST_POSTGRES_URL)" } else { " and PROMPTER_TEST_POSTGRES_URL unset" }
                ),
            }
        }
        let report = report::Report::new(&plan, reports);
        let table = report.table();
        println!("\n{table}");
        let json_path = target_dir().join("bench").join("http.json");
        std::fs::write(&json_path, serde_json::to_string_pretty(&report.json())?)?;
        println!("wrote {}", json_path.display());
        if !plan.quick && plan.only.is_empty() {
            let md = workspace_root().join("docs").join("benchmarks.md");
            report::write_docs(&md, &report.markdown())?;
            println!("wrote {} (generated section)", md.display());
        }
        if !failures.is_empty() {
            return Err(format!("functional failures:\n  {}", failures.join("\n  ")).into());
        }
        Ok(())
    })
}
