//! `cargo xtask check-dashboards`: prove that every dashboard panel and every
//! alert/recording rule returns data from a real server scraped by a real
//! Prometheus.
//!
//! Steps: install Prometheus from Debian's packages if `promtool` or
//! `prometheus` is missing; `promtool check rules` and `promtool test rules`;
//! build and start `prompter serve` (SQLite in a temp dir, stub provider) on a
//! free loopback port; start a private Prometheus on another loopback port
//! scraping it every second with `dashboards/prometheus/alerts.yml` loaded;
//! drive traffic through every route (errors, probes, fingerprint-less runs
//! included); after two more scrapes evaluate every Grafana expression and
//! every rule expression through `/api/v1/query`; check the Datadog queries
//! against the mapping table in `docs/operations.md`. Every failing or empty
//! expression is named, and the exit code is non-zero. The server and
//! Prometheus are killed on every path out (a guard's `Drop`).
//!
//! Phases, one module each: `files` (the dashboards and the docs' tables),
//! `prometheus` (install, configure, migrate), `traffic` (the calls that
//! make every series appear), `query` (evaluation through Prometheus' API).
//! Processes are `support::Proc` guards; HTTP is the crate's one client.

mod files;
mod prometheus;
mod query;
mod traffic;

use crate::support::{free_port, prompter_bin, run_checked, workspace_root, Proc, TempDir};
use files::{
    catalogue_types, datadog_metric_names, datadog_queries, exported_series, exported_types,
    first_event_series, grafana_targets, grafana_variables, histogram_base, parse_datadog_mapping,
    read_json,
};
use prometheus::{ensure_prometheus, migrate, prometheus_config};
use query::{
    boolify, evaluate, inline_recorded, label_values, rules_from_api, substitute,
    wait_rules_evaluated, wait_scrapes,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use traffic::drive_traffic;

/// The server instances: name and extra `serve` flags.
const INSTANCES: &[(&str, &[&str])] = &[
    ("main", &[]),
    ("newbuild", &["--stub-build", "check2"]),
    (
        "failing",
        &[
            "--stub-failure-rate",
            "1",
            "--stub-failure-kind",
            "upstream",
        ],
    ),
];

/// A running server instance.
struct Instance {
    addr: String,
    /// Killed when the instance is dropped.
    _process: Proc,
}

/// Values the server's global labels get, substituted for `$service`/`$env`.
pub(super) const SERVICE: &str = "prompter";
pub(super) const ENV: &str = "check";
/// What `$__rate_interval` becomes (Grafana's value for a 1 s scrape and a
/// short time range would be smaller; 1m gives every rate several samples).
pub(super) const RATE_INTERVAL: &str = "1m";

/// Entry point: `args` are the arguments after `check-dashboards`.
pub fn main(args: &[String]) -> ExitCode {
    let mut opts = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--keep" => opts.keep = true,
            "--skip-install" => opts.skip_install = true,
            "--bin" => match it.next() {
                Some(p) => opts.bin = Some(PathBuf::from(p)),
                None => {
                    eprintln!("check-dashboards: --bin needs a path");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!(
                    "cargo xtask check-dashboards [--keep] [--skip-install] [--bin PATH]\n\n  \
                     --keep          leave the temp dir (configs, logs, TSDB) in place\n  \
                     --skip-install  fail instead of installing Prometheus with apt-get\n  \
                     --bin PATH      use this prompter binary instead of building prompter-api"
                );
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("check-dashboards: unknown argument {other:?} (try --help)");
                return ExitCode::from(2);
            }
        }
    }
    match run(&opts) {
        Ok(()) => {
            println!("check-dashboards: OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("check-dashboards: FAILED\n{e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, Default)]
struct Options {
    keep: bool,
    skip_install: bool,
    bin: Option<PathBuf>,
}

fn run(opts: &Options) -> Result<(), String> {
    let root = workspace_root();
    let dashboards = root.join("dashboards");
    let grafana_path = dashboards.join("grafana/prompter.json");
    let datadog_path = dashboards.join("datadog/prompter.json");
    let rules_path = dashboards.join("prometheus/alerts.yml");
    let ops_path = root.join("docs/operations.md");

    // Static checks first: they need neither the server nor Prometheus.
    let grafana: Value = read_json(&grafana_path)?;
    let datadog: Value = read_json(&datadog_path)?;
    let ops_doc = std::fs::read_to_string(&ops_path)
        .map_err(|e| format!("reading {}: {e}", ops_path.display()))?;
    let mapping = parse_datadog_mapping(&ops_doc)?;
    let panels = grafana_targets(&grafana);
    if panels.is_empty() {
        return Err("no Grafana panel expressions found".into());
    }
    let dd_queries = datadog_queries(&datadog);
    let mut failures: Vec<String> = Vec::new();

    section("Datadog queries vs docs/operations.md mapping table");
    println!(
        "  mapping table: {} Datadog metrics from {} Prometheus series",
        mapping.datadog.len(),
        mapping.prometheus.len()
    );
    for q in &dd_queries {
        let names = datadog_metric_names(q);
        if names.is_empty() {
            failures.push(format!("datadog query names no metric: {q}"));
            println!("  FAIL (no metric)  {q}");
            continue;
        }
        for n in names {
            if mapping.datadog.contains(&n) {
                println!("  ok  {n:<48} {q}");
            } else {
                failures.push(format!(
                    "datadog query uses {n}, not in the mapping table: {q}"
                ));
                println!("  FAIL {n:<47} {q}");
            }
        }
    }

    ensure_prometheus(opts.skip_install)?;
    section("promtool");
    run_checked(
        Command::new("promtool")
            .arg("check")
            .arg("rules")
            .arg(&rules_path),
        "promtool check rules",
    )?;
    let rules_test = dashboards.join("prometheus/alerts_test.yml");
    if rules_test.exists() {
        run_checked(
            Command::new("promtool")
                .arg("test")
                .arg("rules")
                .arg("alerts_test.yml")
                .current_dir(dashboards.join("prometheus")),
            "promtool test rules",
        )?;
    }

    let tmp = TempDir::new("prompter-check-dashboards", opts.keep)?;
    println!("  temp dir: {}", tmp.path.display());

    section("build and start prompter");
    let bin = prompter_bin(opts.bin.as_deref())?;
    let db_url = format!("sqlite://{}/x.db?mode=rwc", tmp.path.display());
    migrate(&bin, &db_url, &tmp.path)?;
    // Three instances on one database, like a scaled-out deployment without
    // Redis: `main` takes the ordinary traffic, `newbuild` serves a new stub
    // build (its probes see new version keys: drift), `failing` has a
    // provider that fails every call (probe failures, provider errors, 5xx).
    let mut servers: Vec<Instance> = Vec::new();
    for (name, extra) in INSTANCES {
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let mut process = Proc::spawn(
            &format!("prompter {name}"),
            Command::new(&bin)
                .arg("serve")
                .args(["--bind", &addr])
                .args(["--database-url", &db_url])
                .args(["--provider", "stub"])
                .args(["--metrics-service", SERVICE])
                .args(["--metrics-env", ENV])
                .args(*extra)
                .env_remove("PROMPTER_REDIS_URL")
                .env_remove("PROMPTER_PROBE_DISABLED")
                .env_remove("PROMPTER_STUB_BUILD")
                .env("RUST_LOG", "info"),
            &tmp.path.join(format!("prompter-{name}.log")),
        )?;
        process.wait_http_ok(&addr, &["/healthz", "/api/prompt-templates/health"], 90)?;
        println!("  {name} serving on {addr} {extra:?}");
        servers.push(Instance {
            addr,
            _process: process,
        });
    }
    let targets: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();

    section("start prometheus");
    let prom_port = free_port()?;
    let prom = format!("127.0.0.1:{prom_port}");
    let prom_cfg = tmp.path.join("prometheus.yml");
    std::fs::write(&prom_cfg, prometheus_config(&targets, &rules_path))
        .map_err(|e| format!("writing {}: {e}", prom_cfg.display()))?;
    let mut prometheus = Proc::spawn(
        "prometheus",
        Command::new("prometheus")
            .arg(format!("--config.file={}", prom_cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .arg("--storage.tsdb.retention.time=1h")
            .arg("--log.level=warn"),
        &tmp.path.join("prometheus.log"),
    )?;
    prometheus.wait_http_ok(&prom, &["/-/ready"], 60)?;
    println!("  prometheus on {prom}, scraping {targets:?} every 1s");
    // One scrape of the fresh server before any traffic.
    let scrapes_fresh = wait_scrapes(&mut prometheus, &prom, 1, 30)?;
    println!("  {scrapes_fresh} scrape(s) of the fresh server");

    // Two rounds: series keyed by status, model or error kind are born with
    // their first event, and a counter's first sample is not an increase.
    // After round 1 has been scraped, round 2 repeats every kind of call, so
    // the error, 409, probe-failure and drift panels show real rates.
    let mut scrapes = scrapes_fresh;
    for round in 1..=2 {
        section(&format!("traffic, round {round}"));
        failures.extend(drive_traffic(
            &servers[0].addr,
            &servers[1].addr,
            &servers[2].addr,
            &format!("ws-check-{round}"),
        )?);
        // Round 1: one scrape of it; round 2: two, so every rate has data.
        scrapes = wait_scrapes(&mut prometheus, &prom, scrapes + round, 30)?;
    }
    println!("  {scrapes} scrapes of every instance in total");
    wait_rules_evaluated(&prom, 90)?;

    section("Grafana variables");
    for (name, query) in grafana_variables(&grafana) {
        match label_values(&prom, &query) {
            Ok(values) => {
                let expected = if name == "env" { ENV } else { SERVICE };
                let ok = values.iter().any(|v| v == expected);
                println!(
                    "  {:<5} {name:<8} {query} -> {values:?}",
                    if ok { "ok" } else { "FAIL" }
                );
                if !ok {
                    failures.push(format!(
                        "variable {name}: {query} has no value {expected:?}"
                    ));
                }
            }
            Err(e) => {
                println!("  FAIL  {name:<8} {query}: {e}");
                failures.push(format!("variable {name}: {query}: {e}"));
            }
        }
    }

    section("Grafana panel expressions");
    for t in &panels {
        let expr = substitute(&t.expr);
        let label = format!("[{} / {}]", t.panel, t.ref_id);
        evaluate(&prom, &label, &expr, &mut failures);
    }

    section("Prometheus rules (recording as is, alerts with bool comparisons)");
    let rules = rules_from_api(&prom)?;
    if rules.is_empty() {
        failures.push(format!(
            "Prometheus loaded no rules from {}",
            rules_path.display()
        ));
    }
    // Alerts are evaluated with the recording rules they use inlined, so the
    // result does not depend on whether the 30 s recording group has run
    // since the traffic.
    let recorded: Vec<(String, String)> = rules
        .iter()
        .filter(|r| r.kind == "recording")
        .map(|r| (r.name.clone(), r.query.clone()))
        .collect();
    for r in &rules {
        if r.health != "ok" {
            println!(
                "  FAIL {} {}: health {} {}",
                r.kind, r.name, r.health, r.last_error
            );
            failures.push(format!(
                "rule {} health {}: {}",
                r.name, r.health, r.last_error
            ));
        }
        let (label, expr) = if r.kind == "alerting" {
            (
                format!("[alert {}]", r.name),
                boolify(&inline_recorded(&r.query, &recorded)),
            )
        } else {
            (format!("[record {}]", r.name), r.query.clone())
        };
        evaluate(&prom, &label, &expr, &mut failures);
    }

    section("mapping table series exported by the server");
    let mut exported = BTreeSet::new();
    for srv in &servers {
        exported.extend(exported_series(&fetch_ok(&srv.addr, "/metrics")?));
    }
    section("metric types: GET /metrics `# TYPE` lines vs the docs' catalogue");
    let catalogue = catalogue_types(&ops_doc);
    let mut types = BTreeMap::new();
    for srv in &servers {
        types.extend(exported_types(&fetch_ok(&srv.addr, "/metrics")?));
    }
    for (name, kind) in &types {
        match catalogue.get(name) {
            Some(want) if want == kind => println!("  ok   {name} {kind}"),
            Some(want) => {
                println!("  FAIL {name}: /metrics says {kind}, the catalogue {want}");
                failures.push(format!(
                    "{name} is a {kind} in GET /metrics but a {want} in docs/operations.md"
                ));
            }
            None => {}
        }
    }
    let first_event = first_event_series(&ops_doc);
    for s in &mapping.prometheus {
        let base = histogram_base(s);
        if exported.contains(s) {
            println!("  ok   {s}");
        } else if first_event.contains(base) {
            // Keyed by a label not knowable at start-up (model, route):
            // appears with its first event, which this traffic may not cause.
            println!("  skip {s} (catalogue: appears with its first event; none happened)");
        } else {
            println!("  FAIL {s} (not in GET /metrics)");
            failures.push(format!(
                "mapping table lists {s}, which GET /metrics does not export"
            ));
        }
    }

    drop(prometheus);
    drop(servers);
    if failures.is_empty() {
        Ok(())
    } else {
        let mut msg = format!("{} problem(s):\n", failures.len());
        for f in &failures {
            let _ = writeln!(msg, "  - {f}");
        }
        if !opts.keep {
            msg.push_str("(rerun with --keep to inspect the logs and configs)\n");
        }
        Err(msg)
    }
}

pub(super) fn section(title: &str) {
    println!("\n== {title}");
}

/// The body of a `GET` that must answer 200.
fn fetch_ok(addr: &str, path: &str) -> Result<String, String> {
    let r = crate::client::get(addr, path)?;
    if r.status == 200 {
        Ok(r.body)
    } else {
        Err(format!("GET {path} answered {}", r.status))
    }
}
