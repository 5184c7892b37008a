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
//! * `create_unique` ≥ 70 % of a raw sqlx baseline doing the same inserts as
//!   single-row transactions on the same database (server stopped meanwhile);
//! * `list` / `results` first-page p50 with 100k rows ≤ 2 × the same with 1k;
//! * a 50-way concurrent ensure-version burst on a fresh template makes exactly
//!   one probe (`prompter_probe_attempts_total` from `/metrics`).
//!
//! Output: a table on stdout, `target/bench/http.json`, and (full runs only)
//! the generated section of `docs/benchmarks.md` (the rest of that file is
//! hand-written and kept). A target below its ratio is reported, not fatal;
//! the program fails only when something is functionally wrong (the server
//! does not start, a scenario answers an unexpected status, the probe burst
//! probes more than once).

use crate::support::{target_dir, workspace_root};
use crate::TaskResult;
use chrono::{DateTime, Duration as ChronoDuration, SubsecRound, Utc};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use prompter_storage::testing::TestDb;
use serde_json::{json, Value};
use sqlx::{PgPool, QueryBuilder, SqlitePool};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use uuid::Uuid;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

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
struct Plan {
    quick: bool,
    seconds: f64,
    warmup: f64,
    connections: usize,
    llm_connections: usize,
    llm_latency_ms: u64,
    only: Vec<String>,
    small_rows: u64,
    mid_rows: u64,
    large_rows: u64,
    burst: usize,
    bin: PathBuf,
    wrapper: Vec<String>,
    server_args: Vec<String>,
    logs: PathBuf,
}

impl Plan {
    fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == scenario)
    }
}

const TARGET_LLM_THROUGHPUT: f64 = 0.90;
const TARGET_LLM_RSS_MIB: f64 = 100.0;
const TARGET_CREATE_VS_RAW: f64 = 0.70;
const TARGET_READ_GROWTH: f64 = 2.0;
const PAGE_LIMIT: u32 = 50;

const ORG: &str = "bench-org";
const LIST_WS: &str = "bench-list";
const RESULTS_WS: &str = "bench-results";
const SEED_WS: &str = "bench-seed";

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
        only: opts.only.clone(),
        small_rows: 1_000,
        mid_rows: if quick { 5_000 } else { 10_000 },
        large_rows: if quick { 20_000 } else { 100_000 },
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
        build_server(opts.debug_build)?;
    }
    // The load generator and the raw sqlx baseline must not be a debug build
    // (an unoptimised client steals the server's CPU, an unoptimised sqlx makes
    // a flattering baseline): `cargo xtask` is a dev build, so re-run this
    // command from the release xtask built beside the server.
    if cfg!(debug_assertions) && !opts.debug_build {
        let exe = target_dir().join("release").join("xtask");
        let args: Vec<String> = std::env::args().collect();
        let rest = args
            .iter()
            .position(|a| a == "http")
            .map(|i| &args[i + 1..])
            .unwrap_or(&[]);
        let status = std::process::Command::new(&exe)
            .args(["bench", "http", "--no-build"])
            .args(rest.iter().filter(|a| *a != "--no-build"))
            .status()
            .map_err(|e| {
                format!(
                    "running {}: {e} (build it, or drop --no-build)",
                    exe.display()
                )
            })?;
        return if status.success() {
            Ok(())
        } else {
            Err(format!("release xtask: {status}").into())
        };
    }
    if !plan.bin.exists() {
        return Err(format!(
            "{} does not exist (build it, or drop --no-build)",
            plan.bin.display()
        )
        .into());
    }
    let nofile = raise_fd_limit();
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
            reports.push(bench_backend(&plan, &db, None, &mut failures).await?);
        }
        if want_backend("postgres") {
            match &pg_url {
                Some(url) => {
                    let db = TestDb::postgres(url).await;
                    let r = bench_backend(&plan, &db, redis_url.as_deref(), &mut failures).await;
                    drop(db); // drops the scratch database
                    reports.push(r?);
                }
                None => println!(
                    "PostgreSQL skipped: no --postgres-url{}",
                    if quick { " (--quick ignores PROMPTER_TEST_POSTGRES_URL)" } else { " and PROMPTER_TEST_POSTGRES_URL unset" }
                ),
            }
        }
        let report = Report::new(&plan, reports);
        let table = report.table();
        println!("\n{table}");
        let json_path = target_dir().join("bench").join("http.json");
        std::fs::write(&json_path, serde_json::to_string_pretty(&report.json())?)?;
        println!("wrote {}", json_path.display());
        if !plan.quick && plan.only.is_empty() {
            let md = workspace_root().join("docs").join("benchmarks.md");
            write_docs(&md, &report.markdown())?;
            println!("wrote {} (generated section)", md.display());
        }
        if !failures.is_empty() {
            return Err(format!("functional failures:\n  {}", failures.join("\n  ")).into());
        }
        Ok(())
    })
}

fn build_server(debug: bool) -> Res<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "-p", "prompter-api"]);
    if !debug {
        // The release xtask too: it is the load generator (see `run`).
        cmd.args(["--release", "-p", "xtask"]);
    }
    println!("building the server: {cmd:?}");
    let status = cmd.status()?;
    if !status.success() {
        return Err(format!("cargo build failed: {status}").into());
    }
    Ok(())
}

/// Raises the soft open-files limit to the hard one (the server child inherits it).
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

// ---------------------------------------------------------------------------
// one backend

/// Results of one backend.
#[derive(Debug)]
struct BackendReport {
    backend: String,
    scenarios: Vec<ScenarioResult>,
    raw_create: Option<RawResult>,
    probe_burst: Option<u64>,
    seed_seconds: f64,
}

#[derive(Debug, Clone)]
struct RawResult {
    ops: u64,
    seconds: f64,
    errors: u64,
}

impl RawResult {
    fn rps(&self) -> f64 {
        self.ops as f64 / self.seconds
    }
}

async fn bench_backend(
    plan: &Plan,
    db: &TestDb,
    redis: Option<&str>,
    failures: &mut Vec<String>,
) -> Res<BackendReport> {
    let backend = match (db.backend().as_str(), redis) {
        ("postgres", Some(_)) => "postgres+redis".to_owned(),
        (b, _) => b.to_owned(),
    };
    println!("\n== {backend}");
    // Migrated by the storage layer itself (the server would do the same).
    db.store().await.close().await;
    let seeder = Seeder::connect(db.url()).await?;
    let mut out = BackendReport {
        backend: backend.clone(),
        scenarios: Vec::new(),
        raw_create: None,
        probe_burst: None,
        seed_seconds: 0.0,
    };
    let srv_cfg = ServerCfg {
        db_url: db.url().to_owned(),
        redis: redis.map(str::to_owned),
        label: backend.clone(),
    };
    let check =
        |r: &ScenarioResult, failures: &mut Vec<String>| {
            if r.unexpected > 0 && r.name != "run_llm" {
                failures.push(format!(
                "{backend}/{}: {} of {} answers were not {} (statuses {:?}, transport errors {})",
                r.name, r.unexpected, r.requests + r.unexpected, r.expect, r.statuses, r.errors
            ));
            }
        };

    // Reads on small tables, then on grown tables.
    let res_tpl = Uuid::now_v7();
    let t = Instant::now();
    seeder
        .template_rows(ORG, RESULTS_WS, 0, 1, Some(res_tpl))
        .await?;
    seeder
        .template_rows(ORG, LIST_WS, 0, plan.small_rows, None)
        .await?;
    seeder
        .result_rows(res_tpl, ORG, RESULTS_WS, 0, plan.small_rows)
        .await?;
    seeder.analyze().await?;
    out.seed_seconds += t.elapsed().as_secs_f64();
    let list_path =
        format!("/api/prompt-templates?workspace_id={LIST_WS}&org_id={ORG}&limit={PAGE_LIMIT}");
    let results_path = format!("/api/prompt-templates/{res_tpl}/results?limit={PAGE_LIMIT}");
    let k = |n: u64| format!("{}k", n / 1000);
    let reads = |n: u64| {
        vec![
            (format!("list_{}", k(n)), Gen::get(&list_path)),
            (format!("results_{}", k(n)), Gen::get(&results_path)),
        ]
    };
    for (name, gen) in reads(plan.small_rows) {
        if plan.wants(&name) || plan.wants(name.split('_').next().unwrap_or_default()) {
            let r = scenario(plan, &srv_cfg, &name, gen, plan.connections, 0, 200).await?;
            check(&r, failures);
            out.scenarios.push(r);
        }
    }
    let t = Instant::now();
    seeder
        .template_rows(
            ORG,
            LIST_WS,
            plan.small_rows,
            plan.mid_rows - plan.small_rows,
            None,
        )
        .await?;
    seeder.analyze().await?;
    out.seed_seconds += t.elapsed().as_secs_f64();
    if plan.wants("list") {
        let r = scenario(
            plan,
            &srv_cfg,
            "list",
            Gen::get(&list_path),
            plan.connections,
            0,
            200,
        )
        .await?;
        check(&r, failures);
        out.scenarios.push(r);
    }
    let t = Instant::now();
    seeder
        .template_rows(
            ORG,
            LIST_WS,
            plan.mid_rows,
            plan.large_rows - plan.mid_rows,
            None,
        )
        .await?;
    seeder
        .result_rows(
            res_tpl,
            ORG,
            RESULTS_WS,
            plan.small_rows,
            plan.large_rows - plan.small_rows,
        )
        .await?;
    seeder.analyze().await?;
    out.seed_seconds += t.elapsed().as_secs_f64();
    println!(
        "   seeded {} templates and {} results in {:.1}s",
        plan.large_rows + 1,
        plan.large_rows,
        out.seed_seconds
    );
    for (name, gen) in reads(plan.large_rows) {
        // `results` (the deliverable's name) is the large one.
        let name = if name.starts_with("results") {
            "results".to_owned()
        } else {
            name
        };
        if plan.wants(&name) || plan.wants(name.split('_').next().unwrap_or_default()) {
            let r = scenario(plan, &srv_cfg, &name, gen, plan.connections, 0, 200).await?;
            check(&r, failures);
            out.scenarios.push(r);
        }
    }

    // Writes.
    let tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    if plan.wants("create_unique") {
        // The HTTP scenario and its raw baseline alternate in short rounds, so
        // both see the same drift of a shared machine (a ratio of two windows
        // minutes apart was noise).
        const ROUNDS: u32 = 3;
        let mut round_plan = plan.clone();
        round_plan.seconds = plan.seconds / f64::from(ROUNDS);
        round_plan.warmup = plan.warmup / 2.0;
        let mut merged: Option<ScenarioResult> = None;
        let mut raw = RawResult {
            ops: 0,
            seconds: 0.0,
            errors: 0,
        };
        for round in 0..ROUNDS {
            seeder.checkpoint().await?;
            let r = scenario(
                &round_plan,
                &srv_cfg,
                "create_unique",
                Gen::CreateUnique {
                    tag: format!("{tag}r{round}"),
                },
                plan.connections,
                0,
                201,
            )
            .await?;
            match &mut merged {
                Some(m) => m.merge(r),
                None => merged = Some(r),
            }
            seeder.checkpoint().await?;
            let rr = seeder
                .raw_create_baseline(&round_plan, &format!("{tag}r{round}"))
                .await?;
            raw.ops += rr.ops;
            raw.seconds += rr.seconds;
            raw.errors += rr.errors;
        }
        let r = merged.expect("at least one round");
        check(&r, failures);
        println!(
            "   create_unique over {ROUNDS} rounds: {:.0} req/s; raw sqlx baseline (same inserts, single-row transactions, {} tasks, interleaved): {:.0} inserts/s ({} errors)",
            r.requests as f64 / r.seconds,
            plan.connections,
            raw.rps(),
            raw.errors
        );
        out.scenarios.push(r);
        out.raw_create = Some(raw);
    }
    let seed_body = create_body(ORG, SEED_WS, "seed");
    let needs_seed = ["create_dup", "check_dup", "ensure", "run", "run_llm"]
        .iter()
        .any(|s| plan.wants(s));
    let seed_id = if needs_seed {
        let srv = Server::start(plan, &srv_cfg, 0).await?;
        let (status, body) = request(
            srv.addr,
            Method::POST,
            "/api/prompt-templates",
            seed_body.clone(),
        )
        .await?;
        srv.stop().await;
        if status != 201 {
            return Err(format!(
                "creating the seed template: {status} {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        let v: Value = serde_json::from_slice(&body)?;
        v["id"]
            .as_str()
            .ok_or("seed template without id")?
            .to_owned()
    } else {
        String::new()
    };
    let ensure_body = Bytes::from(json!({"workspace_id": SEED_WS, "org_id": ORG}).to_string());
    let run_body = Bytes::from(
        json!({"rendered_prompt": "Tell me about Acme in Germany.", "brand_name": "Acme", "country": "DE"}).to_string(),
    );
    let writes: Vec<(&str, Gen, u16)> = vec![
        (
            "create_dup",
            Gen::post("/api/prompt-templates", seed_body.clone()),
            409,
        ),
        (
            "check_dup",
            Gen::post("/api/prompt-templates/check-duplicate", seed_body.clone()),
            200,
        ),
        (
            "ensure",
            Gen::post(
                &format!("/api/prompt-templates/{seed_id}/ensure-version"),
                ensure_body.clone(),
            ),
            200,
        ),
        (
            "run",
            Gen::post(
                &format!("/api/prompt-templates/{seed_id}/run"),
                run_body.clone(),
            ),
            200,
        ),
    ];
    for (name, gen, expect) in writes {
        if plan.wants(name) {
            let r = scenario(plan, &srv_cfg, name, gen, plan.connections, 0, expect).await?;
            check(&r, failures);
            out.scenarios.push(r);
        }
    }
    if plan.wants("probe_burst") {
        let n = probe_burst(plan, &srv_cfg).await?;
        println!(
            "   probe_burst: {} concurrent ensure-version on a fresh template -> {n} probe(s)",
            plan.burst
        );
        if n != 1 {
            failures.push(format!(
                "{backend}: a {}-way ensure burst made {n} probes (want 1)",
                plan.burst
            ));
        }
        out.probe_burst = Some(n);
    }
    if plan.wants("run_llm") {
        let gen = Gen::post(&format!("/api/prompt-templates/{seed_id}/run"), run_body);
        let r = scenario(
            plan,
            &srv_cfg,
            "run_llm",
            gen,
            plan.llm_connections,
            plan.llm_latency_ms,
            200,
        )
        .await?;
        out.scenarios.push(r);
    }
    seeder.close().await;
    Ok(out)
}

// ---------------------------------------------------------------------------
// the server subprocess

#[derive(Debug, Clone)]
struct ServerCfg {
    db_url: String,
    redis: Option<String>,
    label: String,
}

#[derive(Debug)]
struct Server {
    child: tokio::process::Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    async fn start(plan: &Plan, cfg: &ServerCfg, stub_latency_ms: u64) -> Res<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = plan
            .logs
            .join(format!("server-{}.log", cfg.label.replace('+', "-")));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut cmd = match plan.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = tokio::process::Command::new(first);
                c.args(rest).arg(&plan.bin);
                c
            }
            None => tokio::process::Command::new(&plan.bin),
        };
        cmd.arg("serve")
            .arg("--bind")
            .arg(addr.to_string())
            .arg("--database-url")
            .arg(&cfg.db_url)
            .arg("--migrate")
            .arg("--stub-latency-ms")
            .arg(stub_latency_ms.to_string())
            .arg("--shutdown-timeout-secs")
            .arg("5")
            .args(&plan.server_args)
            // Logging at `info` writes a line per request; the bench measures the
            // service, so only warnings reach the (file) log.
            .env("RUST_LOG", "warn")
            .env_remove("PROMPTER_REDIS_URL")
            .env_remove("PROMPTER_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true);
        if let Some(r) = &cfg.redis {
            cmd.arg("--redis-url").arg(r);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", plan.bin.display()))?;
        let deadline =
            Instant::now() + Duration::from_secs(if plan.wrapper.is_empty() { 60 } else { 300 });
        loop {
            if let Some(status) = child.try_wait()? {
                return Err(format!(
                    "the server exited during start-up ({status}); see {}",
                    log.display()
                )
                .into());
            }
            if let Ok((200, _)) = request(addr, Method::GET, "/healthz", Bytes::new()).await {
                break;
            }
            if Instant::now() > deadline {
                return Err(
                    format!("the server did not become healthy; see {}", log.display()).into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Server { child, addr, log })
    }

    /// Peak resident set size so far (VmHWM), MiB.
    fn peak_rss_mib(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// SIGTERM, then wait (graceful shutdown); SIGKILL after a timeout.
    async fn stop(mut self) {
        if let Some(pid) = self
            .child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(Ok(status)) if !status.success() => {
                eprintln!(
                    "   warning: the server exited with {status}; see {}",
                    self.log.display()
                )
            }
            Ok(_) => {}
            Err(_) => {
                eprintln!("   warning: the server did not stop in time; killed");
                let _ = self.child.kill().await;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// HTTP client

type Sender = SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Res<Sender> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn send(sender: &mut Sender, method: Method, path: &str, body: Bytes) -> Res<(u16, Bytes)> {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "127.0.0.1")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))?;
    sender.ready().await?;
    let res = sender.send_request(req).await?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// One request on a fresh connection (setup, health checks, /metrics).
async fn request(addr: SocketAddr, method: Method, path: &str, body: Bytes) -> Res<(u16, Bytes)> {
    let mut s = connect(addr).await?;
    send(&mut s, method, path, body).await
}

/// What each connection sends.
#[derive(Debug, Clone)]
enum Gen {
    /// The same request every time.
    Fixed {
        method: Method,
        path: String,
        body: Bytes,
    },
    /// A create in a new org (and workspace) every time.
    CreateUnique { tag: String },
}

impl Gen {
    fn get(path: &str) -> Gen {
        Gen::Fixed {
            method: Method::GET,
            path: path.to_owned(),
            body: Bytes::new(),
        }
    }

    fn post(path: &str, body: Bytes) -> Gen {
        Gen::Fixed {
            method: Method::POST,
            path: path.to_owned(),
            body,
        }
    }

    fn make(&self, conn: usize, seq: u64) -> (Method, &str, Bytes) {
        match self {
            Gen::Fixed { method, path, body } => (method.clone(), path, body.clone()),
            Gen::CreateUnique { tag } => (
                Method::POST,
                "/api/prompt-templates",
                create_body(&format!("org-{tag}-{conn}-{seq}"), "ws", "bench"),
            ),
        }
    }
}

fn create_body(org: &str, ws: &str, name: &str) -> Bytes {
    Bytes::from(
        json!({
            "org_id": org,
            "workspace_id": ws,
            "name": name,
            "model_id": "gpt-4o",
            "system_instructions": "You are a helpful assistant.",
            "user_prompt_template": "Tell me about {{brand}} in {{country}}.",
            "country_set": ["DE", "GB", "US"],
            "inference_params": {"temperature": 0.7, "max_tokens": 256},
        })
        .to_string(),
    )
}

/// Statistics of one connection (merged afterwards).
#[derive(Debug)]
struct ConnStats {
    hist: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
}

impl ConnStats {
    fn new() -> ConnStats {
        ConnStats {
            hist: Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds"),
            statuses: BTreeMap::new(),
            errors: 0,
        }
    }

    fn merge(&mut self, o: ConnStats) {
        let _ = self.hist.add(&o.hist);
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        self.errors += o.errors;
    }
}

/// Opens `n` connections (32 at a time, so the accept queue never overflows).
async fn open_connections(addr: SocketAddr, n: usize) -> Res<Vec<Sender>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let batch = (n - out.len()).min(32);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..batch {
            set.spawn(connect(addr));
        }
        while let Some(r) = set.join_next().await {
            out.push(r??);
        }
    }
    Ok(out)
}

/// Closed loop on every connection: warm-up, then `seconds` measured
/// (a request counts when it completes inside the window).
async fn drive(
    addr: SocketAddr,
    senders: Vec<Sender>,
    gen: Arc<Gen>,
    warmup: f64,
    seconds: f64,
) -> ConnStats {
    let start = Instant::now();
    let window_start = start + Duration::from_secs_f64(warmup);
    let window_end = window_start + Duration::from_secs_f64(seconds);
    let mut set = tokio::task::JoinSet::new();
    for (conn, mut sender) in senders.into_iter().enumerate() {
        let gen = gen.clone();
        set.spawn(async move {
            let mut st = ConnStats::new();
            let mut seq = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= window_end {
                    break;
                }
                let (method, path, body) = gen.make(conn, seq);
                seq += 1;
                let r = send(&mut sender, method, path, body).await;
                let t1 = Instant::now();
                let counted = t1 >= window_start && t1 <= window_end;
                match r {
                    Ok((status, _)) => {
                        if counted {
                            let us = (t1 - t0).as_micros().max(1) as u64;
                            st.hist.saturating_record(us);
                            *st.statuses.entry(status).or_default() += 1;
                        }
                    }
                    Err(_) => {
                        if counted {
                            st.errors += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        match connect(addr).await {
                            Ok(s) => sender = s,
                            Err(_) => continue,
                        }
                    }
                }
            }
            st
        });
    }
    let mut total = ConnStats::new();
    while let Some(r) = set.join_next().await {
        if let Ok(st) = r {
            total.merge(st);
        }
    }
    total
}

/// One scenario's numbers.
#[derive(Debug, Clone)]
struct ScenarioResult {
    name: String,
    connections: usize,
    stub_latency_ms: u64,
    seconds: f64,
    expect: u16,
    /// Answers with the expected status.
    requests: u64,
    /// Answers with another status, plus transport errors.
    unexpected: u64,
    non2xx: u64,
    conflicts: u64,
    errors: u64,
    statuses: BTreeMap<u16, u64>,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    mean_ms: f64,
    peak_rss_mib: Option<f64>,
    /// Latencies, µs (kept to merge rounds).
    hist: Histogram<u64>,
}

async fn scenario(
    plan: &Plan,
    cfg: &ServerCfg,
    name: &str,
    gen: Gen,
    connections: usize,
    stub_latency_ms: u64,
    expect: u16,
) -> Res<ScenarioResult> {
    let srv = Server::start(plan, cfg, stub_latency_ms).await?;
    let senders = open_connections(srv.addr, connections).await?;
    let st = drive(srv.addr, senders, Arc::new(gen), plan.warmup, plan.seconds).await;
    let rss = srv.peak_rss_mib();
    srv.stop().await;
    let total: u64 = st.statuses.values().sum();
    let expected = st.statuses.get(&expect).copied().unwrap_or(0);
    let ms = |q: f64| st.hist.value_at_quantile(q) as f64 / 1000.0;
    let r = ScenarioResult {
        name: name.to_owned(),
        connections,
        stub_latency_ms,
        seconds: plan.seconds,
        expect,
        requests: expected,
        unexpected: total - expected + st.errors,
        non2xx: st
            .statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(_, n)| n)
            .sum(),
        conflicts: st.statuses.get(&409).copied().unwrap_or(0),
        errors: st.errors,
        rps: total as f64 / plan.seconds,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        max_ms: st.hist.max() as f64 / 1000.0,
        mean_ms: st.hist.mean() / 1000.0,
        peak_rss_mib: rss,
        statuses: st.statuses,
        hist: st.hist,
    };
    println!(
        "   {:<14} {:>5} conns {:>9.0} req/s  p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  non-2xx {:>6}  409 {:>6}  errors {:>4}  rss {:>6.1} MiB",
        r.name,
        r.connections,
        r.rps,
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.non2xx,
        r.conflicts,
        r.errors,
        r.peak_rss_mib.unwrap_or(f64::NAN)
    );
    Ok(r)
}

impl ScenarioResult {
    /// Adds another round of the same scenario.
    fn merge(&mut self, o: ScenarioResult) {
        let _ = self.hist.add(&o.hist);
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        self.seconds += o.seconds;
        self.requests += o.requests;
        self.unexpected += o.unexpected;
        self.non2xx += o.non2xx;
        self.conflicts += o.conflicts;
        self.errors += o.errors;
        self.rps = self.statuses.values().sum::<u64>() as f64 / self.seconds;
        let ms = |q: f64| self.hist.value_at_quantile(q) as f64 / 1000.0;
        (self.p50_ms, self.p99_ms) = (ms(0.5), ms(0.99));
        self.max_ms = self.hist.max() as f64 / 1000.0;
        self.mean_ms = self.hist.mean() / 1000.0;
        self.peak_rss_mib = match (self.peak_rss_mib, o.peak_rss_mib) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// `plan.burst` concurrent ensure-version calls on a template no one probed
/// yet, on a fresh server; returns `prompter_probe_attempts_total` afterwards.
async fn probe_burst(plan: &Plan, cfg: &ServerCfg) -> Res<u64> {
    let srv = Server::start(plan, cfg, 20).await?;
    let ws = format!("burst-{}", Uuid::new_v4().simple());
    let (status, body) = request(
        srv.addr,
        Method::POST,
        "/api/prompt-templates",
        create_body(ORG, &ws, "burst"),
    )
    .await?;
    if status != 201 {
        srv.stop().await;
        return Err(format!(
            "burst template: {status} {}",
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    let id = serde_json::from_slice::<Value>(&body)?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/api/prompt-templates/{id}/ensure-version");
    let ensure = Bytes::from(json!({"workspace_id": ws, "org_id": ORG}).to_string());
    let senders = open_connections(srv.addr, plan.burst).await?;
    let barrier = Arc::new(tokio::sync::Barrier::new(plan.burst));
    let ok = Arc::new(AtomicU64::new(0));
    let mut set = tokio::task::JoinSet::new();
    for mut s in senders {
        let (barrier, path, ensure, ok) =
            (barrier.clone(), path.clone(), ensure.clone(), ok.clone());
        set.spawn(async move {
            barrier.wait().await;
            if let Ok((200, _)) = send(&mut s, Method::POST, &path, ensure).await {
                ok.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while set.join_next().await.is_some() {}
    let (_, metrics) = request(srv.addr, Method::GET, "/metrics", Bytes::new()).await?;
    srv.stop().await;
    let ok = ok.load(Ordering::Relaxed);
    if ok != plan.burst as u64 {
        return Err(format!(
            "probe burst: only {ok} of {} ensure-version calls answered 200",
            plan.burst
        )
        .into());
    }
    Ok(metric_sum(
        &String::from_utf8_lossy(&metrics),
        "prompter_probe_attempts_total",
    ) as u64)
}

/// Sum of every sample of a Prometheus metric.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ---------------------------------------------------------------------------
// direct SQL: seeding and the raw baseline

/// A plain sqlx pool on the bench database (the sqlx that sea-orm uses).
#[derive(Debug, Clone)]
enum Seeder {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The insert `create` makes, as one statement (dedup by the partial unique index).
const TEMPLATE_INSERT: &str =
    "INSERT INTO prompt_templates (id, org_id, workspace_id, name, provider, \
    system_instructions, user_prompt_template, country_set, model_id, inference_params, \
    tools_spec, response_format, grounding_profile_id, grounding_snapshot_id, retrieval_params, \
    config_hash, config_canonical_json, created_by, created_at) ";
const TEMPLATE_CONFLICT: &str =
    " ON CONFLICT (org_id, workspace_id, config_hash) WHERE deleted_at IS NULL DO NOTHING RETURNING id";
const RESULT_INSERT: &str = "INSERT INTO prompt_results (id, org_id, workspace_id, template_id, \
    version_id, provider_version_key, system_fingerprint, country, request, response, \
    analysis_config, created_at) ";

/// Rows per multi-row insert (19 or 12 parameters a row stays under both drivers' limits).
const SEED_BATCH: u64 = 1000;

fn sqlite_ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Distinct, increasing timestamps for seeded rows (1 ms apart, in the past).
fn seed_ts(i: u64) -> DateTime<Utc> {
    let base = DateTime::<Utc>::from_str("2025-01-01T00:00:00Z").expect("constant timestamp");
    base + ChronoDuration::milliseconds(i as i64)
}

struct TemplateRow {
    id: Uuid,
    org: String,
    ws: String,
    hash: String,
    canonical: String,
    created: DateTime<Utc>,
}

fn template_row(org: &str, ws: &str, i: u64, id: Option<Uuid>) -> TemplateRow {
    let hash = format!("{:064x}", (i as u128) << 32 | 0xbe7c);
    TemplateRow {
        id: id.unwrap_or_else(Uuid::now_v7),
        org: org.to_owned(),
        ws: ws.to_owned(),
        canonical: format!(
            r#"{{"country_set":["DE","GB","US"],"inference_params":{{"max_tokens":256,"temperature":0.7}},"model_id":"gpt-4o","seq":{i},"system_instructions":"You are a helpful assistant.","user_prompt_template":"Tell me about {{{{brand}}}} in {{{{country}}}}."}}"#
        ),
        hash,
        created: seed_ts(i),
    }
}

fn result_json() -> (Value, Value, Value) {
    (
        json!({"model": "gpt-4o", "params": {"temperature": 0.7},
            "messages": [{"role": "system", "content": "You are a helpful assistant."},
                         {"role": "user", "content": "Tell me about Acme in DE."}],
            "countries": ["DE"]}),
        json!({"id": "chatcmpl-bench", "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Acme is a company."}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5}}),
        json!({"analysis_scope": "brand"}),
    )
}

impl Seeder {
    async fn connect(url: &str) -> Res<Seeder> {
        if url.starts_with("sqlite:") {
            use sqlx::sqlite::{
                SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
            };
            // The server's connection settings (WAL, NORMAL sync, FKs, busy
            // timeout, journal size limit); one connection: SQLite has one
            // writer, so that is raw sqlx's best case.
            let opts = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(prompter_storage::SQLITE_BUSY_TIMEOUT)
                .pragma(
                    "journal_size_limit",
                    prompter_storage::SQLITE_JOURNAL_SIZE_LIMIT.to_string(),
                );
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await?;
            Ok(Seeder::Sqlite(pool))
        } else {
            // The server's default pool size.
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .connect(url)
                .await?;
            Ok(Seeder::Postgres(pool))
        }
    }

    /// Gathers planner statistics after a bulk seed. The PostgreSQL of this
    /// machine runs with autovacuum off, so without it the planner believes
    /// the tables are empty: it then lists a 100k-template workspace through
    /// the dedup index plus a sort of every row (≈400 ms a page, measured)
    /// instead of walking `ix_tpl_org_ws_created`. Production autoanalyze
    /// does this by itself; a bulk import should run ANALYZE too.
    async fn analyze(&self) -> Res<()> {
        if let Seeder::Postgres(pool) = self {
            sqlx::query("ANALYZE prompt_templates")
                .execute(pool)
                .await?;
            sqlx::query("ANALYZE prompt_results").execute(pool).await?;
        }
        Ok(())
    }

    /// SQLite: `PRAGMA wal_checkpoint(TRUNCATE)`, untimed, before each round
    /// of `create_unique` and of its baseline, so neither side starts on a
    /// WAL the other (or the seeding) left behind.
    async fn checkpoint(&self) -> Res<()> {
        if let Seeder::Sqlite(pool) = self {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_all(pool)
                .await?;
        }
        Ok(())
    }

    async fn close(&self) {
        match self {
            Seeder::Sqlite(p) => p.close().await,
            Seeder::Postgres(p) => p.close().await,
        }
    }

    /// Templates `first..first+n` of (org, ws), in batches; `id` fixes the id of a single row.
    async fn template_rows(
        &self,
        org: &str,
        ws: &str,
        first: u64,
        n: u64,
        id: Option<Uuid>,
    ) -> Res<()> {
        let mut i = first;
        while i < first + n {
            let end = (i + SEED_BATCH).min(first + n);
            let rows: Vec<TemplateRow> = (i..end).map(|k| template_row(org, ws, k, id)).collect();
            macro_rules! push_rows {
                ($db:ty, $uuid:expr, $json:expr, $ts:expr) => {{
                    let mut qb = QueryBuilder::<$db>::new(TEMPLATE_INSERT);
                    qb.push_values(rows, |mut b, r| {
                        b.push_bind($uuid(r.id))
                            .push_bind(r.org)
                            .push_bind(r.ws)
                            .push_bind("seeded")
                            .push_bind("openai")
                            .push_bind("You are a helpful assistant.")
                            .push_bind("Tell me about {{brand}} in {{country}}.")
                            .push_bind($json(json!(["DE", "GB", "US"])))
                            .push_bind("gpt-4o")
                            .push_bind($json(json!({"temperature": 0.7, "max_tokens": 256})))
                            .push_bind($json(json!([])))
                            .push_bind($json(json!({})))
                            .push_bind(None::<String>)
                            .push_bind(None::<String>)
                            .push_bind($json(json!({})))
                            .push_bind(r.hash)
                            .push_bind(r.canonical)
                            .push_bind("bench")
                            .push_bind($ts(r.created));
                    });
                    qb
                }};
            }
            match self {
                Seeder::Sqlite(pool) => {
                    let mut qb = push_rows!(
                        sqlx::Sqlite,
                        |u: Uuid| u.hyphenated().to_string(),
                        |v: Value| v.to_string(),
                        sqlite_ts
                    );
                    qb.build().execute(pool).await?;
                }
                Seeder::Postgres(pool) => {
                    let mut qb = push_rows!(
                        sqlx::Postgres,
                        |u: Uuid| u,
                        |v: Value| v,
                        |t: DateTime<Utc>| t
                    );
                    qb.build().execute(pool).await?;
                }
            }
            i = end;
        }
        Ok(())
    }

    /// Results `first..first+n` of one template.
    async fn result_rows(&self, tpl: Uuid, org: &str, ws: &str, first: u64, n: u64) -> Res<()> {
        let (request, response, analysis) = result_json();
        let mut i = first;
        while i < first + n {
            let end = (i + SEED_BATCH).min(first + n);
            macro_rules! push_rows {
                ($db:ty, $uuid:expr, $json:expr, $ts:expr) => {{
                    let mut qb = QueryBuilder::<$db>::new(RESULT_INSERT);
                    qb.push_values(i..end, |mut b, k| {
                        b.push_bind($uuid(Uuid::now_v7()))
                            .push_bind(org)
                            .push_bind(ws)
                            .push_bind($uuid(tpl))
                            .push_bind(None::<Uuid>.map($uuid))
                            .push_bind("gpt-4o-2024-08-06")
                            .push_bind("fp_bench")
                            .push_bind("DE")
                            .push_bind($json(request.clone()))
                            .push_bind($json(response.clone()))
                            .push_bind($json(analysis.clone()))
                            .push_bind($ts(seed_ts(k)));
                    });
                    qb
                }};
            }
            match self {
                Seeder::Sqlite(pool) => {
                    let mut qb = push_rows!(
                        sqlx::Sqlite,
                        |u: Uuid| u.hyphenated().to_string(),
                        |v: Value| v.to_string(),
                        sqlite_ts
                    );
                    qb.build().execute(pool).await?;
                }
                Seeder::Postgres(pool) => {
                    let mut qb = push_rows!(
                        sqlx::Postgres,
                        |u: Uuid| u,
                        |v: Value| v,
                        |t: DateTime<Utc>| t
                    );
                    qb.build().execute(pool).await?;
                }
            }
            i = end;
        }
        Ok(())
    }

    /// One create's insert, in its own (implicit) transaction, stepped to
    /// its end (`fetch_all`): SQLite runs its automatic WAL checkpoint only
    /// when an autocommit statement reaches `SQLITE_DONE`; sqlx's
    /// `fetch_optional` resets after the first row, so a baseline written
    /// with it never checkpointed, appended a WAL of hundreds of MB, and left
    /// that checkpoint to the server's next round.
    async fn raw_create(&self, org: &str, i: u64) -> Result<(), sqlx::Error> {
        let r = template_row(org, "ws", i, None);
        let now = Utc::now().trunc_subsecs(6);
        let sql = format!(
            "{TEMPLATE_INSERT} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19){TEMPLATE_CONFLICT}"
        );
        macro_rules! bind_all {
            ($q:expr, $uuid:expr, $json:expr, $ts:expr) => {
                $q.bind($uuid(r.id))
                    .bind(r.org)
                    .bind(r.ws)
                    .bind("bench")
                    .bind("openai")
                    .bind("You are a helpful assistant.")
                    .bind("Tell me about {{brand}} in {{country}}.")
                    .bind($json(json!(["DE", "GB", "US"])))
                    .bind("gpt-4o")
                    .bind($json(json!({"temperature": 0.7, "max_tokens": 256})))
                    .bind($json(json!([])))
                    .bind($json(json!({})))
                    .bind(None::<String>)
                    .bind(None::<String>)
                    .bind($json(json!({})))
                    .bind(r.hash)
                    .bind(r.canonical)
                    .bind(None::<String>)
                    .bind($ts(now))
            };
        }
        match self {
            Seeder::Sqlite(pool) => {
                bind_all!(
                    sqlx::query(&sql),
                    |u: Uuid| u.hyphenated().to_string(),
                    |v: Value| v.to_string(),
                    sqlite_ts
                )
                .fetch_all(pool)
                .await?;
            }
            Seeder::Postgres(pool) => {
                bind_all!(
                    sqlx::query(&sql),
                    |u: Uuid| u,
                    |v: Value| v,
                    |t: DateTime<Utc>| t
                )
                .fetch_all(pool)
                .await?;
            }
        }
        Ok(())
    }

    /// The raw baseline of `create_unique`: the same insert (a new org per
    /// row), `plan.connections` concurrent tasks, warm-up then `plan.seconds`.
    async fn raw_create_baseline(&self, plan: &Plan, tag: &str) -> Res<RawResult> {
        let start = Instant::now();
        let window_start = start + Duration::from_secs_f64(plan.warmup);
        let window_end = window_start + Duration::from_secs_f64(plan.seconds);
        let mut set = tokio::task::JoinSet::new();
        for conn in 0..plan.connections {
            let db = self.clone();
            let org = format!("raw-{tag}-{conn}");
            set.spawn(async move {
                let (mut ops, mut errors, mut i) = (0u64, 0u64, 0u64);
                while Instant::now() < window_end {
                    let r = db.raw_create(&format!("{org}-{i}"), i).await;
                    i += 1;
                    let t = Instant::now();
                    if t >= window_start && t <= window_end {
                        match r {
                            Ok(()) => ops += 1,
                            Err(_) => errors += 1,
                        }
                    }
                }
                (ops, errors)
            });
        }
        let mut out = RawResult {
            ops: 0,
            seconds: plan.seconds,
            errors: 0,
        };
        while let Some(r) = set.join_next().await {
            let (ops, errors) = r?;
            out.ops += ops;
            out.errors += errors;
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// report

#[derive(Debug)]
struct Target {
    backend: String,
    name: &'static str,
    measured: String,
    limit: String,
    ratio: f64,
    pass: bool,
}

#[derive(Debug)]
struct Report {
    plan: Plan,
    backends: Vec<BackendReport>,
    targets: Vec<Target>,
    git: String,
    when: String,
}

impl Report {
    fn new(plan: &Plan, backends: Vec<BackendReport>) -> Report {
        let mut targets = Vec::new();
        for b in &backends {
            let find = |n: &str| b.scenarios.iter().find(|s| s.name == n);
            if let Some(s) = find("run_llm") {
                let limit = s.connections as f64 / (s.stub_latency_ms as f64 / 1000.0);
                let ratio = s.rps / limit;
                targets.push(Target {
                    backend: b.backend.clone(),
                    name: "run_llm throughput / (connections / latency)",
                    measured: format!("{:.0} runs/s", s.rps),
                    limit: format!(">= {:.0}% of {limit:.0}/s", TARGET_LLM_THROUGHPUT * 100.0),
                    ratio,
                    pass: ratio >= TARGET_LLM_THROUGHPUT,
                });
                let errs = s.non2xx + s.errors;
                targets.push(Target {
                    backend: b.backend.clone(),
                    name: "run_llm errors (non-2xx + transport)",
                    measured: errs.to_string(),
                    limit: "0".into(),
                    ratio: errs as f64,
                    pass: errs == 0,
                });
                let rss = s.peak_rss_mib.unwrap_or(f64::NAN);
                targets.push(Target {
                    backend: b.backend.clone(),
                    name: "run_llm server peak RSS / 100 MiB",
                    measured: format!("{rss:.1} MiB"),
                    limit: "<= 1.00".into(),
                    ratio: rss / TARGET_LLM_RSS_MIB,
                    pass: rss <= TARGET_LLM_RSS_MIB,
                });
            }
            if let (Some(s), Some(raw)) = (find("create_unique"), &b.raw_create) {
                let ratio = s.requests as f64 / s.seconds / raw.rps();
                targets.push(Target {
                    backend: b.backend.clone(),
                    name: "create_unique / raw sqlx inserts",
                    measured: format!(
                        "{:.0} vs {:.0} /s",
                        s.requests as f64 / s.seconds,
                        raw.rps()
                    ),
                    limit: format!(">= {TARGET_CREATE_VS_RAW:.2}"),
                    ratio,
                    pass: ratio >= TARGET_CREATE_VS_RAW,
                });
            }
            let small = format!("{}k", plan.small_rows / 1000);
            let large = format!("{}k", plan.large_rows / 1000);
            for (what, small_name, large_name) in [
                ("list", format!("list_{small}"), format!("list_{large}")),
                ("results", format!("results_{small}"), "results".to_owned()),
            ] {
                if let (Some(a), Some(z)) = (find(&small_name), find(&large_name)) {
                    let ratio = z.p50_ms / a.p50_ms;
                    targets.push(Target {
                        backend: b.backend.clone(),
                        name: if what == "list" {
                            "list first page p50: large / small"
                        } else {
                            "results first page p50: large / small"
                        },
                        measured: format!(
                            "{:.2} ms @{large} vs {:.2} ms @{small}",
                            z.p50_ms, a.p50_ms
                        ),
                        limit: format!("<= {TARGET_READ_GROWTH:.1}"),
                        ratio,
                        pass: ratio <= TARGET_READ_GROWTH,
                    });
                }
            }
            if let Some(n) = b.probe_burst {
                targets.push(Target {
                    backend: b.backend.clone(),
                    name: "probes for a 50-way ensure burst",
                    measured: n.to_string(),
                    limit: "1".into(),
                    ratio: n as f64,
                    pass: n == 1,
                });
            }
        }
        let git = std::process::Command::new("git")
            .args(["describe", "--always", "--dirty"])
            .current_dir(workspace_root())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Report {
            plan: plan.clone(),
            backends,
            targets,
            git,
            when: Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }

    fn scenario_rows(&self) -> Vec<[String; 11]> {
        let mut rows = Vec::new();
        for b in &self.backends {
            for s in &b.scenarios {
                rows.push([
                    b.backend.clone(),
                    s.name.clone(),
                    s.connections.to_string(),
                    format!("{:.0}", s.rps),
                    format!("{:.2}", s.p50_ms),
                    format!("{:.2}", s.p99_ms),
                    format!("{:.1}", s.max_ms),
                    s.non2xx.to_string(),
                    s.conflicts.to_string(),
                    s.errors.to_string(),
                    s.peak_rss_mib
                        .map(|m| format!("{m:.1}"))
                        .unwrap_or_else(|| "?".into()),
                ]);
            }
            if let Some(raw) = &b.raw_create {
                rows.push([
                    b.backend.clone(),
                    "(raw sqlx insert)".into(),
                    self.plan.connections.to_string(),
                    format!("{:.0}", raw.rps()),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    raw.errors.to_string(),
                    "".into(),
                ]);
            }
        }
        rows
    }

    const HEADERS: [&'static str; 11] = [
        "backend", "scenario", "conns", "req/s", "p50 ms", "p99 ms", "max ms", "non-2xx", "409",
        "errors", "RSS MiB",
    ];

    fn table(&self) -> String {
        let rows = self.scenario_rows();
        let mut w: Vec<usize> = Self::HEADERS.iter().map(|h| h.len()).collect();
        for r in &rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.len());
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            for (i, c) in cells.iter().enumerate() {
                if i < 2 {
                    let _ = write!(out, "{:<width$}  ", c, width = w[i]);
                } else {
                    let _ = write!(out, "{:>width$}  ", c, width = w[i]);
                }
            }
            out.push('\n');
        };
        line(&Self::HEADERS.map(String::from), &mut out);
        for r in &rows {
            line(r, &mut out);
        }
        out.push_str("\ntargets (ratios from this run):\n");
        for t in &self.targets {
            let _ = writeln!(
                out,
                "  {:<4}  {:<15} {:<42} ratio {:>7.3}  ({}; want {})",
                if t.pass { "PASS" } else { "FAIL" },
                t.backend,
                t.name,
                t.ratio,
                t.measured,
                t.limit
            );
        }
        out
    }

    fn markdown(&self) -> String {
        let mut md = String::new();
        let p = &self.plan;
        let _ = writeln!(
            md,
            "Generated by `cargo xtask bench http` at {} on `{}` ({} cores, shared; {}s per scenario after {}s warm-up; \
             {} connections, run_llm {} at {} ms stub latency). Absolute numbers are noisy; the targets are ratios from this one run.\n",
            self.when,
            self.git,
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            p.seconds,
            p.warmup,
            p.connections,
            p.llm_connections,
            p.llm_latency_ms
        );
        let _ = writeln!(md, "| {} |", Self::HEADERS.join(" | "));
        let _ = writeln!(md, "|{}", "---|".repeat(Self::HEADERS.len()));
        for r in self.scenario_rows() {
            let _ = writeln!(md, "| {} |", r.join(" | "));
        }
        let _ = writeln!(
            md,
            "\n| target | backend | measured | want | ratio | |\n|---|---|---|---|---|---|"
        );
        for t in &self.targets {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.3} | {} |",
                t.name,
                t.backend,
                t.measured,
                t.limit,
                t.ratio,
                if t.pass { "PASS" } else { "FAIL" }
            );
        }
        md
    }

    fn json(&self) -> Value {
        let p = &self.plan;
        json!({
            "generated_at": self.when,
            "git": self.git,
            "quick": p.quick,
            "seconds": p.seconds,
            "warmup": p.warmup,
            "connections": p.connections,
            "llm_connections": p.llm_connections,
            "llm_latency_ms": p.llm_latency_ms,
            "rows": {"small": p.small_rows, "mid": p.mid_rows, "large": p.large_rows},
            "backends": self.backends.iter().map(|b| json!({
                "backend": b.backend,
                "seed_seconds": b.seed_seconds,
                "probe_burst_probes": b.probe_burst,
                "raw_create": b.raw_create.as_ref().map(|r| json!({
                    "ops": r.ops, "seconds": r.seconds, "per_second": r.rps(), "errors": r.errors,
                })),
                "scenarios": b.scenarios.iter().map(|s| json!({
                    "name": s.name,
                    "connections": s.connections,
                    "stub_latency_ms": s.stub_latency_ms,
                    "seconds": s.seconds,
                    "expected_status": s.expect,
                    "expected_answers": s.requests,
                    "requests_per_second": s.rps,
                    "p50_ms": s.p50_ms,
                    "p99_ms": s.p99_ms,
                    "max_ms": s.max_ms,
                    "mean_ms": s.mean_ms,
                    "non_2xx": s.non2xx,
                    "conflicts_409": s.conflicts,
                    "transport_errors": s.errors,
                    "statuses": s.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                    "server_peak_rss_mib": s.peak_rss_mib,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "targets": self.targets.iter().map(|t| json!({
                "backend": t.backend, "target": t.name, "measured": t.measured,
                "want": t.limit, "ratio": t.ratio, "pass": t.pass,
            })).collect::<Vec<_>>(),
        })
    }
}

const BEGIN: &str = "<!-- BEGIN generated by `cargo xtask bench http` -->";
const END: &str = "<!-- END generated by `cargo xtask bench http` -->";

/// Replaces the generated section of `path` (creating the file if needed),
/// keeping everything else.
fn write_docs(path: &Path, section: &str) -> Res<()> {
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| {
        format!("# Benchmarks\n\n## `cargo xtask bench http`\n\n{BEGIN}\n{END}\n")
    });
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(a), Some(z)) if a < z => format!("{}{BEGIN}\n{section}{}", &old[..a], &old[z..]),
        _ => format!("{old}\n## `cargo xtask bench http`\n\n{BEGIN}\n{section}{END}\n"),
    };
    std::fs::write(path, new)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sum_adds_every_labelled_sample() {
        let text = "# TYPE prompter_probe_attempts_total counter\n\
            prompter_probe_attempts_total{provider=\"openai\",model=\"gpt-4o\"} 1\n\
            prompter_probe_attempts_total{provider=\"anthropic\",model=\"c\"} 2\n\
            prompter_probe_attempts_total_other 7\n";
        assert_eq!(metric_sum(text, "prompter_probe_attempts_total"), 3.0);
    }

    #[test]
    fn docs_section_is_replaced_and_the_rest_kept() {
        let dir = std::env::temp_dir().join(format!("bench-docs-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("b.md");
        std::fs::write(&p, format!("head\n{BEGIN}\nold\n{END}\ntail\n")).unwrap();
        write_docs(&p, "new\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("head\n{BEGIN}\nnew\n{END}\ntail\n")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn seeded_template_hashes_are_distinct() {
        assert_ne!(
            template_row("o", "w", 1, None).hash,
            template_row("o", "w", 2, None).hash
        );
    }
}
