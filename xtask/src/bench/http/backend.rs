//! One backend's phases, in order: reads on small tables (and the usage
//! report on 1,000 results), reads after the tables grew (the usage report
//! on 1,000,000), `create_unique` interleaved with its raw baseline, the
//! write scenarios on a seed template, the probe burst, `run_llm`. Each
//! scenario's unexpected statuses become functional failures.

use super::load::{create_body, probe_burst, scenario, Gen, ScenarioResult};
use super::seed::{seed_ts, Placed, RawResult, Seeder};
use super::server::{Server, ServerCfg};
use super::usage::{self, Layout};
use super::{Plan, Res, LIST_WS, ORG, PAGE_LIMIT, RESULTS_WS, SEED_WS};
use crate::client::request;
use hyper::body::Bytes;
use hyper::Method;
use prompter_storage::testing::TestDb;
use serde_json::{json, Value};
use std::time::Instant;
use uuid::Uuid;

/// Results of one backend.
#[derive(Debug)]
pub(super) struct BackendReport {
    pub(super) backend: String,
    pub(super) scenarios: Vec<ScenarioResult>,
    pub(super) raw_create: Option<RawResult>,
    pub(super) probe_burst: Option<u64>,
    pub(super) seed_seconds: f64,
    /// `EXPLAIN` of the usage query after the large seed.
    pub(super) usage_plan: Option<String>,
}

/// The `ETag` of `GET path` (a fetch by label).
async fn fetch_etag(addr: std::net::SocketAddr, path: &str) -> Res<String> {
    use http_body_util::Full;
    let mut conn = crate::client::connect(addr).await?;
    let req = hyper::Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(hyper::header::HOST, "127.0.0.1")
        .body(Full::new(Bytes::new()))?;
    let res = conn.send_request(req).await?;
    let status = res.status();
    let etag = res
        .headers()
        .get(hyper::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match etag {
        Some(e) if status == 200 => Ok(e),
        _ => Err(format!("fetching {path}: {status} without an ETag").into()),
    }
}

/// Runs every wanted phase on one backend; functional failures go to `failures`.
pub(super) async fn bench_backend(
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
        usage_plan: None,
    };
    let srv_cfg = ServerCfg {
        db_url: db.url().to_owned(),
        redis: redis.map(str::to_owned),
        label: backend.clone(),
        extra_args: Vec::new(),
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
    let k = |n: u64| format!("{}k", n / 1000);
    let res_tpl = Uuid::now_v7();
    let t = Instant::now();
    seeder
        .template_rows(ORG, RESULTS_WS, 0, 1, Some(res_tpl))
        .await?;
    seeder
        .template_rows(ORG, LIST_WS, 0, plan.small_rows, None)
        .await?;
    let res_place = |k: u64| Placed {
        tpl: res_tpl,
        ws: RESULTS_WS,
        created: seed_ts(k),
    };
    seeder.result_rows(0, plan.small_rows, res_place).await?;
    let want_usage = plan.wants("usage") || plan.wants(&format!("usage_{}", k(plan.small_rows)));
    let layout = if want_usage {
        let layout = Layout::seed(&seeder).await?;
        seeder
            .result_rows(0, plan.small_rows, |k| layout.place(k))
            .await?;
        Some(layout)
    } else {
        None
    };
    seeder.analyze().await?;
    out.seed_seconds += t.elapsed().as_secs_f64();
    let list_path =
        format!("/api/prompt-templates?workspace_id={LIST_WS}&org_id={ORG}&limit={PAGE_LIMIT}");
    let results_path = format!("/api/prompt-templates/{res_tpl}/results?limit={PAGE_LIMIT}");
    let usage_path = usage::path();
    let reads = |n: u64| {
        vec![
            (format!("list_{}", k(n)), Gen::get(&list_path)),
            (format!("results_{}", k(n)), Gen::get(&results_path)),
            (format!("usage_{}", k(n)), Gen::get(&usage_path)),
        ]
    };
    for (name, gen) in reads(plan.small_rows) {
        if plan.wants(&name) || plan.wants(name.split('_').next().unwrap_or_default()) {
            if name.starts_with("usage") {
                check_usage(plan, &srv_cfg, plan.small_rows, failures).await?;
            }
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
            plan.small_rows,
            plan.large_rows - plan.small_rows,
            res_place,
        )
        .await?;
    if let Some(layout) = &layout {
        let t = Instant::now();
        seeder
            .result_rows(plan.small_rows, plan.usage_rows - plan.small_rows, |k| {
                layout.place(k)
            })
            .await?;
        println!(
            "   seeded {} usage results (with their usage_daily rollup) in {:.1}s",
            plan.usage_rows,
            t.elapsed().as_secs_f64()
        );
    }
    seeder.analyze().await?;
    out.seed_seconds += t.elapsed().as_secs_f64();
    println!(
        "   seeded {} templates and {} results in {:.1}s",
        plan.large_rows + 1,
        plan.large_rows + if layout.is_some() { plan.usage_rows } else { 0 },
        out.seed_seconds
    );
    if layout.is_some() {
        let p = usage::plan(db).await?;
        println!(
            "   usage query plan ({backend}):\n      {}",
            p.replace('\n', "\n      ")
        );
        if !p.contains("ix_usage_daily_scope_day") {
            failures.push(format!(
                "{backend}: the usage query does not read usage_daily through ix_usage_daily_scope_day:\n{p}"
            ));
        }
        out.usage_plan = Some(p);
    }
    for (name, gen) in reads(plan.large_rows) {
        // `results` and `usage` (the deliverables' names) are the large ones.
        let name = match name.split('_').next().unwrap_or_default() {
            "results" => "results".to_owned(),
            "usage" => "usage".to_owned(),
            _ => name,
        };
        if plan.wants(&name) || plan.wants(name.split('_').next().unwrap_or_default()) {
            if name == "usage" {
                check_usage(plan, &srv_cfg, plan.usage_rows, failures).await?;
            }
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
    let needs_seed = [
        "create_dup",
        "check_dup",
        "ensure",
        "run",
        "run_llm",
        "run_llm_3k",
        "fetch_label",
        "fetch_label_304",
    ]
    .iter()
    .any(|s| plan.wants(s));
    let fetch_path =
        format!("/api/prompts/seed?org_id={ORG}&workspace_id={SEED_WS}&label=production");
    let (seed_id, etag) = if needs_seed {
        let srv = Server::start(plan, &srv_cfg, 0).await?;
        let (status, body) = request(
            srv.addr,
            Method::POST,
            "/api/prompt-templates",
            seed_body.clone(),
        )
        .await?;
        if status != 201 {
            srv.stop().await;
            return Err(format!(
                "creating the seed template: {status} {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        let v: Value = serde_json::from_slice(&body)?;
        let id = v["id"]
            .as_str()
            .ok_or("seed template without id")?
            .to_owned();
        // The seed is revision 1 of prompt "seed"; `production` points to it.
        let label =
            format!("/api/prompts/seed/labels/production?org_id={ORG}&workspace_id={SEED_WS}");
        let mut conn = crate::client::connect(srv.addr).await?;
        let put = Method::PUT;
        let (status, body) = crate::client::send(
            &mut conn,
            crate::client::Req::json(&put, &label),
            Bytes::from(json!({"revision": 1}).to_string()),
        )
        .await?;
        let etag = fetch_etag(srv.addr, &fetch_path).await;
        srv.stop().await;
        if status != 200 {
            return Err(format!(
                "moving the seed's label: {status} {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        (id, etag?)
    } else {
        (String::new(), String::new())
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
    let reads_by_label: Vec<(&str, Gen, u16)> = vec![
        ("fetch_label", Gen::get(&fetch_path), 200),
        (
            "fetch_label_304",
            Gen::get_with(&fetch_path, &[("if-none-match", &etag)]),
            304,
        ),
    ];
    for (name, gen, expect) in writes.into_iter().chain(reads_by_label) {
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
    let run_path = format!("/api/prompt-templates/{seed_id}/run");
    if plan.wants("run_llm") {
        let gen = Gen::post(&run_path, run_body.clone());
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
    // One SQLite instance holding many keep-alive connections (issue 16).
    if plan.wants("run_llm_3k") && backend == "sqlite" {
        let gen = Gen::post(&run_path, run_body);
        let r = scenario(
            plan,
            &srv_cfg,
            "run_llm_3k",
            gen,
            plan.llm_many_connections,
            plan.llm_latency_ms,
            200,
        )
        .await?;
        let limit = r.connections as f64 / (r.stub_latency_ms as f64 / 1000.0);
        println!(
            "RESULT run_llm_3k: {:.0} runs/s = {:.3} of {limit:.0}/s (want >= {:.2}), errors {} (non-2xx {}, transport {}), peak RSS {:.1} MiB (want <= {:.0}), {} connections, load average {}",
            r.rps,
            r.rps / limit,
            super::TARGET_LLM_THROUGHPUT,
            r.non2xx + r.errors,
            r.non2xx,
            r.errors,
            r.peak_rss_mib.unwrap_or(f64::NAN),
            super::TARGET_LLM_MANY_RSS_MIB,
            r.connections,
            std::fs::read_to_string("/proc/loadavg")
                .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
        );
        out.scenarios.push(r);
    }
    seeder.close().await;
    Ok(out)
}

/// Starts a server, compares the usage report's sums with the `stored`
/// seeded results, stops it; a mismatch is a functional failure.
async fn check_usage(
    plan: &Plan,
    cfg: &ServerCfg,
    stored: u64,
    failures: &mut Vec<String>,
) -> Res<()> {
    let srv = Server::start(plan, cfg, 0).await?;
    let r = usage::check_sums(srv.addr, stored).await;
    srv.stop().await;
    if let Err(e) = r {
        failures.push(format!("{}: {e}", cfg.label));
    }
    Ok(())
}
