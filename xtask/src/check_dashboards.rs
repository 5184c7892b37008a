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
//! HTTP is spoken with a tiny blocking HTTP/1.1 client over
//! `std::net::TcpStream` (loopback only), so no HTTP dependency is needed.

use crate::support::{free_port, tail, target_dir, workspace_root, TempDir};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

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
const SERVICE: &str = "prompter";
const ENV: &str = "check";
/// What `$__rate_interval` becomes (Grafana's value for a 1 s scrape and a
/// short time range would be smaller; 1m gives every rate several samples).
const RATE_INTERVAL: &str = "1m";

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
    let bin = match &opts.bin {
        Some(bin) => bin.clone(),
        None => {
            run_checked(
                Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                    .args(["build", "-p", "prompter-api"])
                    .current_dir(&root),
                "cargo build -p prompter-api",
            )?;
            target_dir().join("debug/prompter")
        }
    };
    if !bin.exists() {
        return Err(format!("{} not found after the build", bin.display()));
    }
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
            name,
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
        wait_http_ok(
            &mut process,
            &addr,
            &["/healthz", "/api/prompt-templates/health"],
            90,
        )?;
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
    wait_http_ok(&mut prometheus, &prom, &["/-/ready"], 60)?;
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

// ---------------------------------------------------------------- traffic

/// What a call must answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Status(u16),
    /// Any 4xx.
    ClientError,
    /// Any 5xx: the failing instance's provider errors surface as 502/503/504.
    ServerError,
}

impl Expect {
    fn matches(self, status: u16) -> bool {
        match self {
            Expect::Status(s) => s == status,
            Expect::ClientError => (400..500).contains(&status),
            Expect::ServerError => (500..600).contains(&status),
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Status(s) => write!(f, "{s}"),
            Expect::ClientError => f.write_str("4xx"),
            Expect::ServerError => f.write_str("5xx"),
        }
    }
}

/// One HTTP call of the traffic script.
#[derive(Debug)]
struct Call {
    what: &'static str,
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
    expect: Expect,
}

impl Call {
    fn new(what: &'static str, method: &'static str, path: impl Into<String>, expect: u16) -> Self {
        Call {
            what,
            method,
            path: path.into(),
            body: None,
            headers: Vec::new(),
            expect: Expect::Status(expect),
        }
    }
    fn json(mut self, body: Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self
    }
    fn raw(mut self, body: &str) -> Self {
        self.body = Some(body.as_bytes().to_vec());
        self
    }
    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
    fn client_error(mut self) -> Self {
        self.expect = Expect::ClientError;
        self
    }
    fn server_error(mut self) -> Self {
        self.expect = Expect::ServerError;
        self
    }
}

const ORG: &str = "org-check";
const PREFIX: &str = "/api/prompt-templates";

/// Models whose templates the traffic creates: one per provider rule. The
/// Azure runs carry no fingerprint and take their key from the version row;
/// the last model matches no provider (key `unknown`).
const MODELS: [&str; 5] = [
    "gpt-4o",
    "gemini-1.5-pro",
    "claude-3-5-sonnet",
    "azure-gpt-4o",
    "llama-3-70b",
];

fn template_body(ws: &str, model: &str) -> Value {
    json!({
        "org_id": ORG,
        "workspace_id": ws,
        "name": format!("check {model}"),
        "system_instructions": "You are a careful analyst.",
        "user_prompt_template": "What do people in {{country}} think of {{brand}}?",
        "country_set": ["US", "gb", "DE"],
        "model_id": model,
        "inference_params": {"temperature": 0.2},
    })
}

fn ensure_body(ws: &str) -> Value {
    json!({"org_id": ORG, "workspace_id": ws})
}

fn run_body(country: &str) -> Value {
    json!({
        "rendered_prompt": format!("What do people in {country} think of Acme?"),
        "brand_name": "Acme",
        "country": country,
    })
}

/// Sends `call` to `addr`, prints it, records a failure when the status is
/// not the expected one, and returns the parsed JSON body (or null).
fn send(addr: &str, c: Call, failures: &mut Vec<String>) -> Result<Value, String> {
    let body = c.body.unwrap_or_default();
    let ct = (!body.is_empty()).then_some("application/json");
    let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = http_with(addr, c.method, &c.path, ct, &headers, &body)?;
    let ok = c.expect.matches(resp.status);
    println!(
        "  {} {:<14} {:<4} {:<58} -> {} (expected {})",
        if ok { "ok  " } else { "FAIL" },
        c.what,
        c.method,
        c.path,
        resp.status,
        c.expect
    );
    if !ok {
        let snippet: String = resp.body.chars().take(300).collect();
        failures.push(format!(
            "traffic {}: {} {} on {addr} answered {} (expected {}): {snippet}",
            c.what, c.method, c.path, resp.status, c.expect
        ));
    }
    Ok(serde_json::from_str(&resp.body).unwrap_or(Value::Null))
}

/// Drives every route on `main`, drift on `newbuild`, provider failures on
/// `failing`. Returns the calls whose status differed from the expected one
/// (failures of the check: the panels are only proven if the routes really
/// answered what they count).
fn drive_traffic(
    main: &str,
    newbuild: &str,
    failing: &str,
    ws: &str,
) -> Result<Vec<String>, String> {
    let mut failures = Vec::new();
    let f = &mut failures;

    println!("  -- main: every route");
    for p in [
        "/healthz",
        "/readyz",
        "/version",
        "/api/prompt-templates/health",
    ] {
        send(main, Call::new("ops", "GET", p, 200), f)?;
    }
    let mut ids: Vec<String> = Vec::new();
    for m in MODELS {
        let v = send(
            main,
            Call::new("create", "POST", PREFIX, 201).json(template_body(ws, m)),
            f,
        )?;
        if let Some(id) = v.get("id").and_then(Value::as_str) {
            ids.push(id.to_string());
        }
    }
    // The same config again: dedup -> 409 (and a unique violation counted);
    // whitespace and country-order variants hash the same: also 409.
    send(
        main,
        Call::new("duplicate", "POST", PREFIX, 409).json(template_body(ws, "gpt-4o")),
        f,
    )?;
    let mut variant = template_body(ws, "gpt-4o");
    variant["user_prompt_template"] =
        json!("  What do people in {{country}}   think of {{brand}}?  ");
    variant["country_set"] = json!(["de", "US", "GB", "us"]);
    send(
        main,
        Call::new("dup variant", "POST", PREFIX, 409).json(variant),
        f,
    )?;
    send(
        main,
        Call::new(
            "check-dup",
            "POST",
            format!("{PREFIX}/check-duplicate"),
            200,
        )
        .json(template_body(ws, "gpt-4o")),
        f,
    )?;
    // Bad bodies: a wrong type and broken JSON are 422 (V7's FastAPI shape).
    send(
        main,
        Call::new("bad body", "POST", PREFIX, 422).json(json!({"org_id": ORG, "workspace_id": 5})),
        f,
    )?;
    send(
        main,
        Call::new("bad json", "POST", PREFIX, 422).raw("{\"org_id\": "),
        f,
    )?;
    let unknown = "00000000-0000-4000-8000-000000000000";
    send(
        main,
        Call::new(
            "unknown id",
            "POST",
            format!("{PREFIX}/{unknown}/ensure-version"),
            404,
        )
        .json(ensure_body(ws)),
        f,
    )?;
    send(
        main,
        Call::new("unknown id", "POST", format!("{PREFIX}/{unknown}/run"), 404)
            .json(run_body("US")),
        f,
    )?;
    // ensure-version twice per template: a probe, then a guard reuse.
    for what in ["ensure", "ensure again"] {
        for id in &ids {
            send(
                main,
                Call::new(what, "POST", format!("{PREFIX}/{id}/ensure-version"), 200)
                    .json(ensure_body(ws)),
                f,
            )?;
        }
    }
    // Runs: every template for US with an Idempotency-Key, the same again
    // (an idempotent replay, answered from the database without a provider
    // call), then DE without a key.
    for (what, country, keyed) in [
        ("run", "US", true),
        ("run replay", "US", true),
        ("run", "DE", false),
    ] {
        for id in &ids {
            let mut call =
                Call::new(what, "POST", format!("{PREFIX}/{id}/run"), 200).json(run_body(country));
            if keyed {
                call = call.header("Idempotency-Key", format!("check-{ws}-{id}"));
            }
            send(main, call, f)?;
        }
    }
    send(
        main,
        Call::new("no route", "GET", "/api/prompt-templates-nope", 404),
        f,
    )?;
    // A wrong method: 404 or 405 depending on how the router answers it.
    send(
        main,
        Call::new(
            "wrong method",
            "PUT",
            format!("{PREFIX}/check-duplicate"),
            0,
        )
        .client_error(),
        f,
    )?;
    send(main, Call::new("metrics", "GET", "/metrics", 200), f)?;

    println!("  -- newbuild: the provider serves a new build (drift)");
    for id in &ids {
        send(
            newbuild,
            Call::new(
                "ensure (drift)",
                "POST",
                format!("{PREFIX}/{id}/ensure-version"),
                200,
            )
            .json(ensure_body(ws)),
            f,
        )?;
        send(
            newbuild,
            Call::new("run", "POST", format!("{PREFIX}/{id}/run"), 200).json(run_body("FR")),
            f,
        )?;
    }

    println!("  -- failing: every provider call fails (probe failures, provider errors, 5xx)");
    for id in &ids {
        send(
            failing,
            Call::new(
                "ensure (fails)",
                "POST",
                format!("{PREFIX}/{id}/ensure-version"),
                0,
            )
            .json(ensure_body(ws))
            .server_error(),
            f,
        )?;
        send(
            failing,
            Call::new("run (fails)", "POST", format!("{PREFIX}/{id}/run"), 0)
                .json(run_body("IT"))
                .server_error(),
            f,
        )?;
    }
    Ok(failures)
}

// ------------------------------------------------------------- evaluation

/// Evaluates `expr` at "now"; prints it with its series count; records a
/// failure when it errors or returns no series.
fn evaluate(prom: &str, label: &str, expr: &str, failures: &mut Vec<String>) {
    match query(prom, expr) {
        Ok((n, values)) if n > 0 => {
            let shown = if n <= 3 {
                format!(" = {}", values.join(", "))
            } else {
                String::new()
            };
            println!("  {n:>3} series{shown}  {label} {expr}")
        }
        Ok(_) => {
            println!("  FAIL no series  {label} {expr}");
            failures.push(format!("{label} returned no series: {expr}"));
        }
        Err(e) => {
            println!("  FAIL error  {label} {expr}: {e}");
            failures.push(format!("{label} errored: {expr}: {e}"));
        }
    }
}

/// Runs an instant query; returns the number of series (a scalar counts 1)
/// and the values, rounded for display.
fn query(prom: &str, expr: &str) -> Result<(usize, Vec<String>), String> {
    let body = format!("query={}", urlencode(expr));
    let resp = http(
        prom,
        "POST",
        "/api/v1/query",
        Some("application/x-www-form-urlencoded"),
        body.as_bytes(),
    )?;
    let v: Value = serde_json::from_str(&resp.body).map_err(|e| {
        format!(
            "HTTP {} with a non-JSON body ({e}): {}",
            resp.status, resp.body
        )
    })?;
    if v["status"] != "success" {
        return Err(format!(
            "{}: {}",
            v["errorType"].as_str().unwrap_or("error"),
            v["error"].as_str().unwrap_or(&resp.body)
        ));
    }
    let show = |x: &Value| {
        let raw = x.as_str().unwrap_or("?");
        match raw.parse::<f64>() {
            Ok(f) if f.is_finite() => format!("{}", (f * 1000.0).round() / 1000.0),
            _ => raw.to_string(),
        }
    };
    let data = &v["data"];
    Ok(match data["resultType"].as_str() {
        Some("vector") => {
            let r = data["result"].as_array().cloned().unwrap_or_default();
            let values = r.iter().map(|s| show(&s["value"][1])).collect();
            (r.len(), values)
        }
        Some("matrix") => (data["result"].as_array().map_or(0, Vec::len), Vec::new()),
        Some("scalar") | Some("string") => (1, vec![show(&data["result"][1])]),
        _ => (0, Vec::new()),
    })
}

/// Values of `label_values(selector, label)` (Grafana's variable query).
fn label_values(prom: &str, q: &str) -> Result<Vec<String>, String> {
    let (selector, label) = parse_label_values(q)?;
    let selector = substitute(&selector);
    let path = format!(
        "/api/v1/label/{label}/values?match[]={}",
        urlencode(&selector)
    );
    let resp = http(prom, "GET", &path, None, &[])?;
    let v: Value = serde_json::from_str(&resp.body).map_err(|e| format!("{e}: {}", resp.body))?;
    if v["status"] != "success" {
        return Err(v["error"].as_str().unwrap_or(&resp.body).to_string());
    }
    Ok(v["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

/// `label_values(metric{...}, label)` -> (`metric{...}`, `label`).
fn parse_label_values(q: &str) -> Result<(String, String), String> {
    let inner = q
        .trim()
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("not a label_values(...) query: {q}"))?;
    let (sel, label) = inner
        .rsplit_once(',')
        .ok_or_else(|| format!("label_values without a label: {q}"))?;
    Ok((sel.trim().to_string(), label.trim().to_string()))
}

/// Number of scrapes of the prompter job Prometheus has stored, waiting
/// until there are at least `at_least`.
fn wait_scrapes(p: &mut Proc, prom: &str, at_least: usize, secs: u64) -> Result<usize, String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last;
    loop {
        p.check_alive()?;
        // Scrapes of the least-scraped target.
        match scalar(prom, "min(count_over_time(up{job=\"prompter\"}[1h]))") {
            Ok(n) if n as usize >= at_least => {
                // The target must be up, not merely scraped.
                let up = scalar(prom, "min(up{job=\"prompter\"})").unwrap_or(0.0);
                if up < 1.0 {
                    return Err("Prometheus reports the prompter target down (up == 0)".into());
                }
                return Ok(n as usize);
            }
            Ok(n) => last = format!("{n} scrape(s) so far"),
            Err(e) => last = e,
        }
        if Instant::now() > deadline {
            return Err(format!("waiting for {at_least} scrapes: {last}"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The single value of an instant query (NaN-free), or an error.
fn scalar(prom: &str, expr: &str) -> Result<f64, String> {
    let body = format!("query={}", urlencode(expr));
    let resp = http(
        prom,
        "POST",
        "/api/v1/query",
        Some("application/x-www-form-urlencoded"),
        body.as_bytes(),
    )?;
    let v: Value = serde_json::from_str(&resp.body).map_err(|e| e.to_string())?;
    let value = &v["data"]["result"][0]["value"][1];
    value
        .as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| format!("no value for {expr}"))
}

/// A rule as `/api/v1/rules` reports it.
#[derive(Debug)]
struct Rule {
    kind: String,
    name: String,
    query: String,
    health: String,
    last_error: String,
}

fn rules_from_api(prom: &str) -> Result<Vec<Rule>, String> {
    let resp = http(prom, "GET", "/api/v1/rules", None, &[])?;
    let v: Value = serde_json::from_str(&resp.body).map_err(|e| format!("{e}: {}", resp.body))?;
    let mut out = Vec::new();
    for g in v["data"]["groups"].as_array().into_iter().flatten() {
        for r in g["rules"].as_array().into_iter().flatten() {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            out.push(Rule {
                kind: s("type"),
                name: s("name"),
                query: s("query"),
                health: s("health"),
                last_error: s("lastError"),
            });
        }
    }
    Ok(out)
}

/// Waits until Prometheus has evaluated every rule once (the recording group
/// runs every 30 s, so its first evaluation can take that long).
fn wait_rules_evaluated(prom: &str, secs: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let rules = rules_from_api(prom)?;
        let pending: Vec<&str> = rules
            .iter()
            .filter(|r| r.health == "unknown" || r.health.is_empty())
            .map(|r| r.name.as_str())
            .collect();
        if !rules.is_empty() && pending.is_empty() {
            println!("  all {} rules evaluated", rules.len());
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("rules never evaluated: {pending:?}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Replaces Grafana's variables with the values the check's server exports.
fn substitute(expr: &str) -> String {
    expr.replace("${service}", &regex_escape(SERVICE))
        .replace("$service", &regex_escape(SERVICE))
        .replace("${env}", &regex_escape(ENV))
        .replace("$env", &regex_escape(ENV))
        .replace("$__rate_interval", RATE_INTERVAL)
        .replace("$__interval", "15s")
        .replace("$__range", "1h")
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            // Inside a PromQL string a regex backslash is itself escaped.
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

/// Replaces every use of a recording rule's name in `expr` by its
/// parenthesised expression.
pub(crate) fn inline_recorded(expr: &str, recorded: &[(String, String)]) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = String::with_capacity(expr.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        match recorded.iter().find(|(name, _)| name == token) {
            Some((_, q)) => {
                out.push('(');
                out.push_str(q.trim());
                out.push(')');
            }
            None => out.push_str(token),
        }
        token.clear();
    };
    let mut quote: Option<char> = None;
    for c in expr.chars() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        if is_name(c) {
            token.push(c);
            continue;
        }
        flush(&mut token, &mut out);
        if c == '"' || c == '\'' || c == '`' {
            quote = Some(c);
        }
        out.push(c);
    }
    flush(&mut token, &mut out);
    out
}

/// Turns every comparison outside label matchers and strings into a `bool`
/// comparison, so an alert condition returns its series (0/1) instead of
/// filtering them out: a healthy alert must still prove it has data.
pub(crate) fn boolify(expr: &str) -> String {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = String::with_capacity(expr.len() + 16);
    let mut braces = 0usize;
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' && q != '`' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            '"' | '\'' | '`' => {
                quote = Some(c);
                out.push(c);
                i += 1;
                continue;
            }
            '{' => braces += 1,
            '}' => braces = braces.saturating_sub(1),
            _ => {}
        }
        let next = chars.get(i + 1).copied();
        let op_len = if braces > 0 {
            0
        } else {
            match (c, next) {
                ('=', Some('=')) | ('!', Some('=')) | ('>', Some('=')) | ('<', Some('=')) => 2,
                ('>', _) | ('<', _) => 1,
                _ => 0,
            }
        };
        if op_len == 0 {
            out.push(c);
            i += 1;
            continue;
        }
        out.extend(&chars[i..i + op_len]);
        i += op_len;
        let rest: String = chars[i..].iter().collect();
        let trimmed = rest.trim_start();
        let already = trimmed.starts_with("bool")
            && !trimmed[4..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if !already {
            out.push_str(" bool");
        }
    }
    out
}

// --------------------------------------------------------- dashboard files

fn read_json(path: &Path) -> Result<Value, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))
}

/// One Grafana query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    pub panel: String,
    pub ref_id: String,
    pub expr: String,
}

/// Every `targets[].expr` of every panel (rows' nested panels included).
pub(crate) fn grafana_targets(dashboard: &Value) -> Vec<Target> {
    fn walk(panels: &Value, out: &mut Vec<Target>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("(untitled)");
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push(Target {
                        panel: title.to_string(),
                        ref_id: t["refId"].as_str().unwrap_or("?").to_string(),
                        expr: expr.to_string(),
                    });
                }
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// `(name, label_values query)` of every query variable.
pub(crate) fn grafana_variables(dashboard: &Value) -> Vec<(String, String)> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["type"] == "query")
        .filter_map(|v| {
            let q = v["query"]["query"]
                .as_str()
                .or_else(|| v["query"].as_str())
                .or_else(|| v["definition"].as_str())?;
            Some((v["name"].as_str()?.to_string(), q.to_string()))
        })
        .collect()
}

/// Every metric query string of a Datadog dashboard (`query` and legacy `q`).
pub(crate) fn datadog_queries(dashboard: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("query" | "q", Value::String(s)) => out.push(s.clone()),
                        _ => walk(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

/// Metric names in a Datadog metric query: the token between an
/// aggregator's `:` and the scope's `{` (`sum:prompter.runs.count{…}`).
pub(crate) fn datadog_metric_names(query: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = query.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b':' if depth == 0 => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] == b'.')
                {
                    j += 1;
                }
                if j > start && j < bytes.len() && bytes[j] == b'{' {
                    names.push(query[start..j].to_string());
                }
            }
            _ => {}
        }
        i += 1;
    }
    names
}

/// The Datadog mapping table of `docs/operations.md`.
#[derive(Debug, Default)]
pub(crate) struct Mapping {
    /// Prometheus series names (first column).
    pub prometheus: BTreeSet<String>,
    /// Datadog metric names (third column).
    pub datadog: BTreeSet<String>,
}

/// Parses the table under the `## Datadog metric mapping` heading whose header
/// has a `Datadog metric` column: backticked names in the `Prometheus series`
/// and `Datadog metric` columns.
pub(crate) fn parse_datadog_mapping(doc: &str) -> Result<Mapping, String> {
    let mut in_section = false;
    let mut columns: Option<(usize, usize)> = None;
    let mut mapping = Mapping::default();
    for line in doc.lines() {
        let t = line.trim();
        if t.starts_with("## ") {
            in_section = t.to_ascii_lowercase().contains("datadog metric mapping");
            columns = None;
            continue;
        }
        if !in_section || !t.starts_with('|') {
            if columns.is_some() && !t.starts_with('|') {
                columns = None;
            }
            continue;
        }
        let cells: Vec<&str> = t.trim_matches('|').split('|').map(str::trim).collect();
        match columns {
            None => {
                let find = |name: &str| cells.iter().position(|c| c.eq_ignore_ascii_case(name));
                if let (Some(p), Some(d)) = (find("Prometheus series"), find("Datadog metric")) {
                    columns = Some((p, d));
                }
            }
            Some((p, d)) => {
                if cells
                    .iter()
                    .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
                {
                    continue;
                }
                for (col, set) in [(p, &mut mapping.prometheus), (d, &mut mapping.datadog)] {
                    if let Some(cell) = cells.get(col) {
                        set.extend(backticked(cell));
                    }
                }
            }
        }
    }
    if mapping.datadog.is_empty() {
        return Err("docs/operations.md: no `## Datadog metric mapping` table with `Prometheus series` and `Datadog metric` columns".into());
    }
    Ok(mapping)
}

/// Series of the `## Metric catalogue` table whose `registered at start-up`
/// cell says `no`: they appear with their first event only.
pub(crate) fn first_event_series(doc: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_section = false;
    let mut columns: Option<(usize, usize)> = None;
    for line in doc.lines() {
        let t = line.trim();
        if t.starts_with("## ") {
            in_section = t.to_ascii_lowercase().contains("metric catalogue");
            columns = None;
            continue;
        }
        if !in_section || !t.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = t.trim_matches('|').split('|').map(str::trim).collect();
        match columns {
            None => {
                let find = |name: &str| {
                    cells
                        .iter()
                        .position(|c| c.to_ascii_lowercase().starts_with(name))
                };
                if let (Some(s), Some(r)) = (find("series"), find("registered")) {
                    columns = Some((s, r));
                }
            }
            Some((s, r)) => {
                let registered = cells.get(r).map(|c| c.to_ascii_lowercase());
                if registered.is_some_and(|c| c.starts_with("no")) {
                    if let Some(cell) = cells.get(s) {
                        out.extend(backticked(cell));
                    }
                }
            }
        }
    }
    out
}

/// `x_bucket`/`x_sum`/`x_count` -> `x`; other names unchanged.
fn histogram_base(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .enumerate()
        .filter(|(i, s)| i % 2 == 1 && !s.is_empty())
        .map(|(_, s)| s.to_string())
        .collect()
}

/// Series names in a Prometheus text exposition.
pub(crate) fn exported_series(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(String::from)
        .collect()
}

// -------------------------------------------------------------- processes

/// A child process killed (and reaped) when dropped.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> Result<Proc, String> {
        let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        println!(
            "  started {name} (pid {}), log {}",
            child.id(),
            log.display()
        );
        Ok(Proc {
            name,
            child,
            log: log.to_path_buf(),
        })
    }

    /// Errors (with the log's tail) if the process has exited.
    fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited early ({status}); last log lines:\n{}",
                self.name,
                tail(&self.log, 30)
            )),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        println!("  stopped {} (pid {})", self.name, self.child.id());
    }
}

/// Polls `paths` (the first that answers 200 wins) until one answers 200.
fn wait_http_ok(p: &mut Proc, addr: &str, paths: &[&str], secs: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        p.check_alive()?;
        for path in paths {
            if let Ok(r) = http(addr, "GET", path, None, &[]) {
                if r.status == 200 {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not answer 200 on {paths:?} within {secs}s; last log lines:\n{}",
                p.name,
                tail(&p.log, 30)
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<(), String> {
    println!("  $ {what}");
    let status = cmd.status().map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// Applies the migrations to the temp database: `prompter migrate up` when
/// the binary has that subcommand (the server does not migrate by itself in
/// production mode).
fn migrate(bin: &Path, db_url: &str, tmp: &Path) -> Result<(), String> {
    let log = tmp.join("migrate.log");
    let out = Command::new(bin)
        .args(["migrate", "up", "--database-url", db_url])
        .output()
        .map_err(|e| format!("prompter migrate up: {e}"))?;
    let _ = std::fs::write(&log, [&out.stdout[..], &out.stderr[..]].concat());
    if out.status.success() {
        println!("  migrated {db_url}");
        Ok(())
    } else {
        Err(format!(
            "prompter migrate up failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn prometheus_config(targets: &[String], rules: &Path) -> String {
    let targets: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "# written by cargo xtask check-dashboards\n\
         global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules:?}\n\
         scrape_configs:\n  - job_name: prompter\n    metrics_path: /metrics\n    \
         static_configs:\n      - targets: [{targets}]\n",
        rules = rules.display().to_string(),
        targets = targets.join(", "),
    )
}

/// Makes sure `promtool` and `prometheus` are on PATH, installing Debian's
/// `prometheus` package if not. The package's own service is not started:
/// a temporary `policy-rc.d` (only if none exists) and `RUNLEVEL=1` keep
/// invoke-rc.d from starting it, so nothing scrapes anything but our own
/// Prometheus, and nothing already running is touched.
fn ensure_prometheus(skip_install: bool) -> Result<(), String> {
    if on_path("promtool") && on_path("prometheus") {
        return Ok(());
    }
    if skip_install {
        return Err("promtool/prometheus not found (install Debian's `prometheus` package)".into());
    }
    section("install prometheus (Debian package)");
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if uid != "0" {
        return Err(
            "promtool/prometheus missing and not root: run `apt-get install prometheus`".into(),
        );
    }
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let created_policy = if policy.exists() {
        false
    } else {
        std::fs::write(
            policy,
            "#!/bin/sh\n# temporary, cargo xtask check-dashboards\nexit 101\n",
        )
        .map_err(|e| format!("writing {}: {e}", policy.display()))?;
        let _ = Command::new("chmod").arg("755").arg(policy).status();
        true
    };
    let result = (|| {
        run_checked(
            Command::new("apt-get").args(["update", "-qq"]),
            "apt-get update",
        )?;
        run_checked(
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "prometheus",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .env("RUNLEVEL", "1"),
            "apt-get install prometheus",
        )
    })();
    if created_policy {
        let _ = std::fs::remove_file(policy);
    }
    result?;
    if on_path("promtool") && on_path("prometheus") {
        Ok(())
    } else {
        Err("the prometheus package did not provide promtool and prometheus".into())
    }
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

fn section(title: &str) {
    println!("\n== {title}");
}

// ------------------------------------------------------------- tiny HTTP

/// A response: status and body (decoded if chunked).
#[derive(Debug)]
struct Response {
    status: u16,
    body: String,
}

fn fetch_ok(addr: &str, path: &str) -> Result<String, String> {
    let r = http(addr, "GET", path, None, &[])?;
    if r.status == 200 {
        Ok(r.body)
    } else {
        Err(format!("GET {path} answered {}", r.status))
    }
}

/// One HTTP/1.1 request on a fresh loopback connection (`Connection: close`).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Response, String> {
    http_with(addr, method, path, content_type, &[], body)
}

/// [`http`] with extra request headers.
fn http_with(
    addr: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let timeout = Some(Duration::from_secs(30));
    s.set_read_timeout(timeout).map_err(|e| e.to_string())?;
    s.set_write_timeout(timeout).map_err(|e| e.to_string())?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: xtask-check-dashboards\r\n\
         Accept: */*\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        let _ = write!(req, "Content-Type: {ct}\r\n");
    }
    for (name, value) in headers {
        let _ = write!(req, "{name}: {value}\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .and_then(|_| s.write_all(body))
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("{method} {path}: reading: {e}"))?;
    parse_response(&raw).map_err(|e| format!("{method} {path}: {e}"))
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_line = String::from_utf8_lossy(&data[..eol]);
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_file(rel: &str) -> String {
        std::fs::read_to_string(workspace_root().join(rel)).unwrap()
    }

    #[test]
    fn boolify_turns_comparisons_into_bool_outside_matchers() {
        assert_eq!(boolify("x >= 0.01"), "x >= bool 0.01");
        assert_eq!(
            boolify("a{s=~\"5..\",t!=\"x\"} > 3 and on (s) b == 1"),
            "a{s=~\"5..\",t!=\"x\"} > bool 3 and on (s) b == bool 1"
        );
        assert_eq!(boolify("a <= bool 1"), "a <= bool 1");
        assert_eq!(boolify("a != 0"), "a != bool 0");
        assert_eq!(boolify("a < 2 unless b"), "a < bool 2 unless b");
        assert_eq!(
            boolify("label_replace(a, \"x\", \">\", \"y\", \"\")"),
            "label_replace(a, \"x\", \">\", \"y\", \"\")"
        );
        assert_eq!(boolify("a > boolean"), "a > bool boolean");
    }

    #[test]
    fn recording_rules_are_inlined_by_name() {
        let rec = vec![
            ("p:a:rate5m".to_string(), "sum(rate(a[5m]))".to_string()),
            ("p:b".to_string(), "b".to_string()),
        ];
        assert_eq!(
            inline_recorded("p:a:rate5m >= 1 and on (x) p:b * 3 > p:a:rate5mx", &rec),
            "(sum(rate(a[5m]))) >= 1 and on (x) (b) * 3 > p:a:rate5mx"
        );
        assert_eq!(inline_recorded("x{l=\"p:b\"}", &rec), "x{l=\"p:b\"}");
    }

    #[test]
    fn datadog_names_are_found_between_aggregator_and_scope() {
        assert_eq!(
            datadog_metric_names(
                "sum:prompter.http_requests.count{$service,$env,status:5*}.as_count()"
            ),
            vec!["prompter.http_requests.count"]
        );
        assert_eq!(
            datadog_metric_names("p95:prompter.ensure_version_seconds{$service} by {provider}"),
            vec!["prompter.ensure_version_seconds"]
        );
        assert!(datadog_metric_names("no metric here").is_empty());
    }

    #[test]
    fn mapping_table_is_parsed_from_the_section() {
        let doc = "# x\n| Prometheus series | Datadog metric |\n|---|---|\n| `a_total` | `not.this` |\n\
                   ## Datadog metric mapping\ntext\n\
                   | Prometheus series | Prometheus type | Datadog metric | Datadog type |\n\
                   |---|---|---|---|\n\
                   | `prompter_runs_total` | counter | `prompter.runs.count` | count |\n\
                   | `prompter_redis_up` | gauge | `prompter.redis_up` | gauge |\n\nafter\n## Next\n";
        let m = parse_datadog_mapping(doc).unwrap();
        assert_eq!(
            m.datadog.into_iter().collect::<Vec<_>>(),
            vec!["prompter.redis_up", "prompter.runs.count"]
        );
        assert_eq!(
            m.prometheus.into_iter().collect::<Vec<_>>(),
            vec!["prompter_redis_up", "prompter_runs_total"]
        );
        assert!(parse_datadog_mapping("## Other\n").is_err());
    }

    #[test]
    fn every_datadog_query_of_the_repo_dashboard_is_in_the_repo_mapping() {
        let dd: Value =
            serde_json::from_str(&repo_file("dashboards/datadog/prompter.json")).unwrap();
        let mapping = parse_datadog_mapping(&repo_file("docs/operations.md")).unwrap();
        let queries = datadog_queries(&dd);
        assert!(queries.len() >= 18, "{queries:?}");
        for q in queries {
            let names = datadog_metric_names(&q);
            assert!(!names.is_empty(), "{q}");
            for n in names {
                assert!(mapping.datadog.contains(&n), "{n} ({q}) not in the mapping");
            }
        }
    }

    #[test]
    fn every_grafana_expression_is_filtered_by_service_and_env() {
        let g: Value =
            serde_json::from_str(&repo_file("dashboards/grafana/prompter.json")).unwrap();
        let targets = grafana_targets(&g);
        assert!(targets.len() >= 18);
        for t in &targets {
            // Every selector `metric{...}` carries both matchers.
            let selectors = t.expr.matches("prompter_").count();
            let filtered = t
                .expr
                .matches("service=~\"$service\", env=~\"$env\"")
                .count();
            assert_eq!(selectors, filtered, "{}: {}", t.panel, t.expr);
        }
        let vars = grafana_variables(&g);
        let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["service", "env"]);
        for (_, q) in vars {
            parse_label_values(&q).unwrap();
        }
    }

    #[test]
    fn first_event_series_come_from_the_catalogue() {
        let fe = first_event_series(&repo_file("docs/operations.md"));
        for s in [
            "prompter_http_requests_total",
            "prompter_http_request_duration_seconds",
            "prompter_probe_attempts_total",
            "prompter_probe_failures_total",
            "prompter_version_drift_total",
        ] {
            assert!(fe.contains(s), "{s} missing from {fe:?}");
        }
        assert!(!fe.contains("prompter_redis_up"));
        assert_eq!(histogram_base("a_seconds_bucket"), "a_seconds");
        assert_eq!(histogram_base("a_total"), "a_total");
    }

    #[test]
    fn substitute_fills_grafana_variables() {
        assert_eq!(
            substitute("rate(x{service=~\"$service\", env=~\"${env}\"}[$__rate_interval])"),
            format!("rate(x{{service=~\"{SERVICE}\", env=~\"{ENV}\"}}[{RATE_INTERVAL}])")
        );
    }

    #[test]
    fn http_response_parsing_handles_chunked_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n";
        let r = parse_response(raw).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "Wikipedia"));
        let raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno";
        let r = parse_response(raw).unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "no"));
    }

    #[test]
    fn exposition_names_and_urlencoding() {
        let text = "# TYPE a counter\na_total{x=\"1\"} 3\nb 1\n\n";
        let names = exported_series(text);
        assert!(names.contains("a_total") && names.contains("b"));
        assert_eq!(
            urlencode("a{b=\"c\"}[1m] + 1"),
            "a%7Bb%3D%22c%22%7D%5B1m%5D%20%2B%201"
        );
    }
}
