//! `cargo xtask bench cluster`: several release `prompter` instances behind
//! a real load balancer (Debian's `haproxy`) on one PostgreSQL database of
//! their own and one Redis act as one service; measured in one run.
//!
//! Phases (the instances are restarted for each, like `bench http`):
//! 1. **throughput**: the same load (`run_llm` at 500 ms stub latency with
//!    900 connections, `create_unique`, `run`) against one instance
//!    directly, one behind haproxy, and three behind haproxy; the ratio
//!    3-behind-haproxy / 1-direct is reported as measured (2 cores cannot
//!    show capacity growth: it shows what the hop and the sharing cost);
//! 2. **probe burst**: 50 concurrent ensure-version on a fresh template,
//!    connections spread round robin over the three instances; the probes
//!    summed over their `/metrics` must be 1;
//! 3. **webhooks**: templates settled under stub build `b1` are ensured
//!    under `b2` through haproxy (one drift event each); a receiver in the
//!    bench counts deliveries per `X-Prompter-Event-Id`: must be 1 each;
//! 4. **kill -9** of one of three instances under keyed `run` load through
//!    haproxy (retries of connection failures only, redispatch); the client
//!    retries failed attempts with the same `Idempotency-Key`; sent / 5xx /
//!    lost / duplicated from the database afterwards: 0 lost, 0 duplicated.
//!
//! Modules: `haproxy` (install, config, stats), `fleet` (the instances),
//! `receiver` (the webhook receiver), `kill` (phase 4), `report` (table,
//! JSON, docs). The load generator, server processes and probe burst are
//! `bench http`'s.
//!
//! Output: a table on stdout, `target/bench/cluster.json`, and (full runs)
//! the generated section of `docs/benchmarks.md`. Fails on functional
//! errors: a probe count ≠ 1, a delivery count ≠ 1 per event, a lost or
//! duplicated run, an unexpected status.

mod fleet;
mod haproxy;
mod kill;
mod receiver;
mod report;

use super::http::load::{create_body, ensure_burst, measure, Gen, ScenarioResult};
use super::http::server::ServerCfg;
use super::http::{Plan, Res};
use crate::client::request;
use crate::support::{cargo_build, target_dir, workspace_root};
use crate::TaskResult;
use fleet::Fleet;
use haproxy::Haproxy;
use hyper::body::Bytes;
use hyper::Method;
use prompter_storage::testing::TestDb;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `bench cluster`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Smoke run (~1 min): short phases, fewer connections; docs/benchmarks.md untouched.
    #[arg(long)]
    quick: bool,
    /// PostgreSQL server to create the scratch database on [default: $PROMPTER_TEST_POSTGRES_URL].
    #[arg(long)]
    postgres_url: Option<String>,
    /// Redis shared by the instances [default: $PROMPTER_TEST_REDIS_URL].
    #[arg(long)]
    redis_url: Option<String>,
    /// Measured seconds per throughput scenario [default: 8; --quick: 2].
    #[arg(long)]
    seconds: Option<f64>,
    /// Warm-up seconds per throughput scenario [default: 2; --quick: 0.5].
    #[arg(long)]
    warmup: Option<f64>,
    /// Connections of `create_unique`, `run` and the kill phase [default: 16; --quick: 8].
    #[arg(long)]
    connections: Option<usize>,
    /// Connections of `run_llm` [default: 900; --quick: 150].
    #[arg(long)]
    llm_connections: Option<usize>,
    /// Stub latency of `run_llm`, milliseconds.
    #[arg(long, default_value_t = 500)]
    llm_latency_ms: u64,
    /// `--db-max-connections` of every instance (3 × this must fit PostgreSQL's
    /// `max_connections` beside everything else using it).
    #[arg(long, default_value_t = 10)]
    db_max_connections: u32,
    /// Drift events of the webhook phase [default: 20; --quick: 10].
    #[arg(long)]
    events: Option<usize>,
    /// Stub latency of the kill phase's runs, milliseconds.
    #[arg(long, default_value_t = 20)]
    kill_latency_ms: u64,
    /// Do not run `cargo build`; use the binaries already built.
    #[arg(long)]
    no_build: bool,
    /// Use the debug builds (CI smoke): numbers mean nothing.
    #[arg(long)]
    debug_build: bool,
}

/// The three topologies of the throughput phase.
const TOPOLOGIES: [&str; 3] = ["1 direct", "haproxy → 1", "haproxy → 3"];

/// One throughput scenario in every topology.
#[derive(Debug)]
struct Throughput {
    name: String,
    /// In [`TOPOLOGIES`] order.
    runs: Vec<ScenarioResult>,
}

/// Everything measured.
#[derive(Debug, Default)]
struct Measured {
    throughput: Vec<Throughput>,
    probes: Option<u64>,
    /// (events in the outbox, deliveries received, events delivered more than once, events never delivered)
    webhooks: Option<(u64, u64, u64, u64)>,
    kill: Option<kill::KillReport>,
}

/// Runs the cluster benchmark.
pub fn run(opts: Options) -> TaskResult {
    let quick = opts.quick;
    let env = |k: &str| std::env::var(k).ok().filter(|s| !s.trim().is_empty());
    let pg_url = opts
        .postgres_url
        .clone()
        .or_else(|| env(prompter_storage::testing::POSTGRES_URL_ENV))
        .ok_or("bench cluster needs PostgreSQL: --postgres-url or PROMPTER_TEST_POSTGRES_URL")?;
    let redis_url = opts
        .redis_url
        .clone()
        .or_else(|| env("PROMPTER_TEST_REDIS_URL"))
        .ok_or("bench cluster needs Redis: --redis-url or PROMPTER_TEST_REDIS_URL")?;
    let haproxy = haproxy::ensure_installed()?;
    let profile = if opts.debug_build { "debug" } else { "release" };
    if !opts.no_build {
        let mut packages = vec!["prompter-api"];
        if !opts.debug_build {
            packages.push("xtask");
        }
        cargo_build(&packages, !opts.debug_build)?;
    }
    if let Some(done) = super::rerun_from_release("cluster", opts.debug_build) {
        return done;
    }
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
            .unwrap_or(if quick { 150 } else { 900 })
            .max(1),
        llm_latency_ms: opts.llm_latency_ms.max(1),
        llm_many_connections: 0,
        only: Vec::new(),
        small_rows: 0,
        mid_rows: 0,
        large_rows: 0,
        usage_rows: 0,
        burst: 50,
        bin: target_dir().join(profile).join("prompter"),
        wrapper: Vec::new(),
        server_args: vec![
            "--db-max-connections".into(),
            opts.db_max_connections.to_string(),
        ],
        logs,
    };
    if !plan.bin.exists() {
        return Err(format!("{} does not exist (drop --no-build)", plan.bin.display()).into());
    }
    let nofile = super::raise_fd_limit();
    let events = opts.events.unwrap_or(if quick { 10 } else { 20 });
    crate::runtime().block_on(async move {
        println!(
            "bench cluster: {profile} build, {}s per scenario after {}s warm-up, {} connections (run_llm: {} at {} ms), pool {} per instance, fd limit {nofile}, load average {}",
            plan.seconds, plan.warmup, plan.connections, plan.llm_connections, plan.llm_latency_ms,
            opts.db_max_connections, loadavg()
        );
        let db = TestDb::postgres(&pg_url).await;
        let mut failures = Vec::new();
        let setup = Setup {
            plan: &plan,
            haproxy,
            base: ServerCfg {
                db_url: db.url().to_owned(),
                redis: Some(redis_url),
                label: String::new(),
                extra_args: Vec::new(),
            },
            events,
            kill_latency_ms: opts.kill_latency_ms,
        };
        let measured = phases(&setup, &mut failures).await;
        drop(db); // drops the scratch database
        let measured = measured?;
        let rep = report::Report::new(&plan, &measured, opts.db_max_connections, events);
        println!("\n{}", rep.table());
        let json_path = target_dir().join("bench").join("cluster.json");
        std::fs::write(&json_path, serde_json::to_string_pretty(&rep.json())?)?;
        println!("wrote {}", json_path.display());
        println!("{}", rep.one_line());
        if !quick {
            let md = workspace_root().join("docs").join("benchmarks.md");
            super::http::report::replace_section(&md, "cargo xtask bench cluster", &rep.markdown())?;
            println!("wrote {} (generated section)", md.display());
        }
        if !failures.is_empty() {
            return Err(format!("functional failures:\n  {}", failures.join("\n  ")).into());
        }
        Ok(())
    })
}

/// `/proc/loadavg`'s first three fields.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

struct Setup<'a> {
    plan: &'a Plan,
    haproxy: PathBuf,
    base: ServerCfg,
    events: usize,
    kill_latency_ms: u64,
}

const ORG: &str = "cluster-org";
const WS: &str = "cluster-ws";

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

/// POSTs `body` to `path` and returns the answer's `id` (want `expect`).
async fn post_id(addr: SocketAddr, path: &str, body: Bytes, expect: u16) -> Res<String> {
    let (status, answer) = request(addr, Method::POST, path, body).await?;
    if status != expect {
        return Err(format!("POST {path}: {status} {}", String::from_utf8_lossy(&answer)).into());
    }
    let v: Value = serde_json::from_slice(&answer)?;
    Ok(v["id"].as_str().unwrap_or_default().to_owned())
}

/// Every phase, in order.
async fn phases(s: &Setup<'_>, failures: &mut Vec<String>) -> Res<Measured> {
    let plan = s.plan;
    let b1 = args(&["--stub-build", "b1"]);
    let mut out = Measured::default();

    // Seed: the run template, and the drift templates settled under b1.
    let fleet = Fleet::start(plan, &s.base, 1, 0, &b1).await?;
    let a = fleet.addrs()[0];
    let seeded = async {
        let seed = post_id(
            a,
            "/api/prompt-templates",
            create_body(ORG, WS, "seed"),
            201,
        )
        .await?;
        let mut drift = Vec::new();
        for i in 0..s.events {
            let id = post_id(
                a,
                "/api/prompt-templates",
                create_body(ORG, &format!("drift-{i}"), "drift"),
                201,
            )
            .await?;
            ensure(a, &id, &format!("drift-{i}")).await?;
            drift.push((id, format!("drift-{i}")));
        }
        Res::Ok((seed, drift))
    }
    .await;
    fleet.stop().await;
    let (seed, drift) = seeded?;

    // 1. Throughput: 1 direct, haproxy → 1, haproxy → 3.
    let run_body = Bytes::from(
        json!({"rendered_prompt": "Tell me about Acme in Germany.", "brand_name": "Acme", "country": "DE"}).to_string(),
    );
    let run_path = format!("/api/prompt-templates/{seed}/run");
    let scenarios: Vec<(&str, u64, usize, u16)> = vec![
        ("run_llm", plan.llm_latency_ms, plan.llm_connections, 200),
        ("create_unique", 0, plan.connections, 201),
        ("run", 0, plan.connections, 200),
    ];
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    for (name, latency, conns, expect) in scenarios {
        println!("\n== {name}: {conns} connections, stub latency {latency} ms");
        let mut runs = Vec::new();
        for (t, topo) in TOPOLOGIES.iter().enumerate() {
            let n = if t == 2 { 3 } else { 1 };
            let gen = match name {
                "create_unique" => Gen::CreateUnique {
                    tag: format!("{tag}t{t}"),
                },
                _ => Gen::post(&run_path, run_body.clone()),
            };
            let fleet = Fleet::start(plan, &s.base, n, latency, &b1).await?;
            let lb = if t == 0 {
                None
            } else {
                match Haproxy::start(&s.haproxy, &fleet.addrs()).await {
                    Ok(h) => Some(h),
                    Err(e) => {
                        fleet.stop().await;
                        return Err(e);
                    }
                }
            };
            let addr = lb.as_ref().map_or(fleet.addrs()[0], |h| h.addr);
            let r = measure(
                plan,
                addr,
                &format!("{name} [{topo}]"),
                gen,
                conns,
                latency,
                expect,
            )
            .await;
            let rss = fleet.peak_rss_mib();
            if let Some(h) = lb {
                h.stop().await;
            }
            fleet.stop().await;
            let mut r = r?;
            r.peak_rss_mib = rss;
            r.print();
            if r.unexpected > 0 {
                failures.push(format!(
                    "{name} [{topo}]: {} of {} answers were not {expect} (statuses {:?}, transport errors {})",
                    r.unexpected, r.requests + r.unexpected, r.statuses, r.errors
                ));
            }
            runs.push(r);
        }
        out.throughput.push(Throughput {
            name: name.to_owned(),
            runs,
        });
    }

    // 2. Probe burst over three instances.
    println!(
        "\n== probe burst: {} ensure-version over 3 instances",
        plan.burst
    );
    let fleet = Fleet::start(plan, &s.base, 3, 20, &b1).await?;
    let burst = async {
        let id = post_id(
            fleet.addrs()[0],
            "/api/prompt-templates",
            create_body(ORG, &format!("burst-{tag}"), "burst"),
            201,
        )
        .await?;
        let body =
            Bytes::from(json!({"workspace_id": format!("burst-{tag}"), "org_id": ORG}).to_string());
        ensure_burst(
            &fleet.addrs(),
            plan.burst,
            &format!("/api/prompt-templates/{id}/ensure-version"),
            body,
        )
        .await?;
        fleet.metric("prompter_probe_attempts_total").await
    }
    .await;
    fleet.stop().await;
    let probes = burst? as u64;
    println!("   {probes} probe(s) in total");
    if probes != 1 {
        failures.push(format!(
            "a {}-way ensure burst over 3 instances made {probes} probes (want 1)",
            plan.burst
        ));
    }
    out.probes = Some(probes);

    // 3. Webhook deliveries per event.
    println!("\n== webhooks: {} drift events, 3 instances", s.events);
    let rx = receiver::Receiver::start().await?;
    let b2 = args(&[
        "--stub-build",
        "b2",
        "--webhook-url",
        &format!("http://{}/hook", rx.addr),
        "--webhook-poll-ms",
        "50",
        // A probe window of its own: the b1 probes of the seed phase sit in
        // Redis under the hour's window, and would be reused.
        "--probe-ttl-secs",
        "1",
    ]);
    let fleet = Fleet::start(plan, &s.base, 3, 0, &b2).await?;
    let hooks = async {
        let lb = Haproxy::start(&s.haproxy, &fleet.addrs()).await?;
        let r = async {
            for (id, ws) in &drift {
                ensure(lb.addr, id, ws).await?;
            }
            wait_delivered(&s.base.db_url, s.events as i64).await
        }
        .await;
        lb.stop().await;
        r?;
        // Any second delivery would land within a few polls.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        outbox_events(&s.base.db_url).await
    }
    .await;
    fleet.stop().await;
    let events = hooks?;
    let got = rx.snapshot();
    let deliveries: u64 = got.values().map(|n| u64::from(*n)).sum();
    let twice = events
        .iter()
        .filter(|e| got.get(*e).is_some_and(|n| *n > 1))
        .count() as u64;
    let never = events.iter().filter(|e| !got.contains_key(*e)).count() as u64;
    let strangers = got.keys().filter(|k| !events.contains(k)).count();
    println!(
        "   {} events, {deliveries} deliveries ({twice} delivered more than once, {never} never)",
        events.len()
    );
    if deliveries != events.len() as u64 || twice > 0 || never > 0 || strangers > 0 {
        failures.push(format!(
            "webhooks: {} events, {deliveries} deliveries ({twice} twice, {never} never, {strangers} unknown ids)",
            events.len()
        ));
    }
    out.webhooks = Some((events.len() as u64, deliveries, twice, never));

    // 4. kill -9 under keyed run load.
    let (before, after, retry) = if plan.quick {
        (3.0, 3.0, 10.0)
    } else {
        (6.0, 6.0, 20.0)
    };
    println!(
        "\n== kill -9: {} connections of keyed runs (stub latency {} ms) through haproxy → 3; instance 1 killed after {before}s",
        plan.connections, s.kill_latency_ms
    );
    let mut fleet = Fleet::start(plan, &s.base, 3, s.kill_latency_ms, &b1).await?;
    let killed = async {
        // A template of its own: every stored result of it is a keyed run.
        let tpl = post_id(
            fleet.addrs()[0],
            "/api/prompt-templates",
            create_body(ORG, &format!("kill-{tag}"), "kill"),
            201,
        )
        .await?;
        let lb = Haproxy::start(&s.haproxy, &fleet.addrs()).await?;
        let k = kill::run(
            &mut fleet,
            &lb,
            &s.base.db_url,
            &tpl,
            plan.connections,
            before,
            after,
            retry,
        )
        .await;
        lb.stop().await;
        k
    }
    .await;
    fleet.stop().await;
    let k = killed?;
    println!(
        "   keys {} sent {} acked {} 5xx {:?} transport errors {} unresolved {} (of which in_flight claims {}) lost {} duplicated {} haproxy retries {} redispatches {} 5xx {}; servers {}",
        k.keys, k.sent, k.acked, k.five_xx, k.transport_errors, k.unresolved, k.unresolved_in_flight,
        k.lost, k.duplicated, k.haproxy_retries, k.haproxy_redispatches, k.haproxy_5xx, k.servers
    );
    if k.lost > 0 || k.duplicated > 0 || !k.other.is_empty() {
        failures.push(format!(
            "kill -9: lost {} duplicated {} unexpected statuses {:?}",
            k.lost, k.duplicated, k.other
        ));
    }
    out.kill = Some(k);
    Ok(out)
}

/// `POST /{id}/ensure-version` (want 200).
async fn ensure(addr: SocketAddr, id: &str, ws: &str) -> Res<()> {
    let (status, body) = request(
        addr,
        Method::POST,
        &format!("/api/prompt-templates/{id}/ensure-version"),
        Bytes::from(json!({"workspace_id": ws, "org_id": ORG}).to_string()),
    )
    .await?;
    if status != 200 {
        return Err(format!(
            "ensure-version {id}: {status} {}",
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    Ok(())
}

/// Waits (≤ 60 s) until the outbox holds `n` rows, all delivered.
async fn wait_delivered(db_url: &str, n: i64) -> Res<()> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db_url)
        .await?;
    let started = Instant::now();
    let r = loop {
        let (rows, delivered): (i64, i64) =
            sqlx::query_as("SELECT count(*), count(delivered_at) FROM webhook_outbox")
                .fetch_one(&pool)
                .await?;
        if rows >= n && delivered == rows {
            break Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            break Err(format!(
                "webhooks: {delivered} of {rows} outbox rows delivered after 60 s (want {n})"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    pool.close().await;
    r
}

/// The outbox's event ids.
async fn outbox_events(db_url: &str) -> Res<Vec<String>> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db_url)
        .await?;
    let rows: Vec<(String,)> = sqlx::query_as("SELECT event_id::text FROM webhook_outbox")
        .fetch_all(&pool)
        .await?;
    pool.close().await;
    Ok(rows.into_iter().map(|(e,)| e).collect())
}
