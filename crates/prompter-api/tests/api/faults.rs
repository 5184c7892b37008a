//! Fault tests: Redis stopped, PostgreSQL sessions killed, provider 5xx /
//! timeouts / 429, `kill -9` and SIGTERM of a real `prompter` process, each
//! under load. Each prints one `FAULT` line with the requests sent, the 5xx
//! count and the results lost (a result id the client got a 200 for that is
//! not in `prompt_results`).
//!
//! They are `#[ignore]`d in the plain suite (they take seconds each and want
//! the machine to themselves) and run one at a time by `cargo xtask faults`
//! (`.ci/run`), which prints the table of figures.
//!
//! They never touch the machine's shared services: Redis is a private
//! `redis-server` on a free port, and PostgreSQL sessions are terminated only
//! in the database the test created.

use crate::harness::{wait_for, PrivateRedis, ServerProcess};
use crate::helpers::*;
use prompter_api::{Application, ServeArgs};
use prompter_providers::{HttpConfig, OpenAiClient, ProviderRegistry};
use prompter_storage::testing::TestDb;
use prompter_storage::{Scope, Store};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- tallies

/// What the load generator saw.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    statuses: BTreeMap<u16, u64>,
    codes_5xx: BTreeMap<String, u64>,
    transport_errors: u64,
    result_ids: Vec<String>,
    max_5xx_latency: Duration,
    five_xx_without_retry_after: u64,
    /// (seconds since start, status) of every answer.
    timeline: Vec<(f64, u16)>,
}

impl Tally {
    fn count_5xx(&self) -> u64 {
        self.statuses.range(500..).map(|(_, n)| n).sum()
    }

    fn record(
        &mut self,
        started: Instant,
        t0: Instant,
        status: u16,
        body: &Value,
        retry_after: bool,
    ) {
        self.sent += 1;
        *self.statuses.entry(status).or_default() += 1;
        self.timeline.push((t0.elapsed().as_secs_f64(), status));
        if status >= 500 {
            let code = body["detail"]["code"].as_str().unwrap_or("?").to_owned();
            *self.codes_5xx.entry(code).or_default() += 1;
            self.max_5xx_latency = self.max_5xx_latency.max(started.elapsed());
            if !retry_after {
                self.five_xx_without_retry_after += 1;
            }
        }
        if status == 200 {
            if let Some(id) = body["result_id"].as_str() {
                self.result_ids.push(id.to_owned());
            }
        }
    }
}

type Shared = Arc<Mutex<Tally>>;

/// Sends one request and records it.
async fn send(
    client: &reqwest::Client,
    tally: &Shared,
    t0: Instant,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Result<(u16, Value), reqwest::Error> {
    let started = Instant::now();
    let mut rb = client.request(method, url);
    if let Some(b) = &body {
        rb = rb.json(b);
    }
    let res = rb.send().await;
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            let mut t = tally.lock().unwrap();
            t.sent += 1;
            t.transport_errors += 1;
            return Err(e);
        }
    };
    let status = res.status().as_u16();
    let retry_after = res.headers().contains_key("retry-after");
    let text = match res.text().await {
        Ok(t) => t,
        Err(e) => {
            let mut t = tally.lock().unwrap();
            t.sent += 1;
            t.transport_errors += 1;
            return Err(e);
        }
    };
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    tally
        .lock()
        .unwrap()
        .record(started, t0, status, &v, retry_after);
    Ok((status, v))
}

/// Result ids the client was told were stored but are not in the database.
async fn lost_results(store: &Store, ids: &[String]) -> Vec<String> {
    let mut lost = Vec::new();
    for id in ids {
        let uuid = uuid::Uuid::parse_str(id).expect("result ids are UUIDs");
        if store.get_result(&Scope::Unrestricted, uuid).await.is_err() {
            lost.push(id.clone());
        }
    }
    lost
}

fn report(scenario: &str, db: Db, t: &Tally, lost: usize, extra: &str) {
    println!(
        "FAULT {scenario} [{db:?}]: sent={} 5xx={} lost={lost} ok={} statuses={:?} 5xx_codes={:?} transport_errors={} {extra}",
        t.sent,
        t.count_5xx(),
        t.result_ids.len(),
        t.statuses,
        t.codes_5xx,
        t.transport_errors,
    );
}

// ---------------------------------------------------------- Redis gauge

async fn redis_up(app: &TestApp) -> f64 {
    metric_sum(&app.metrics().await, "prompter_redis_up", &[])
}

async fn wait_gauge(app: &TestApp, want: f64, within: Duration) -> Duration {
    wait_for(&format!("prompter_redis_up == {want}"), within, || async {
        redis_up(app).await == want
    })
    .await
}

#[tokio::test]
#[ignore = "fault test: run by `cargo xtask faults`"]
async fn fault_redis_stopped_under_load() {
    for db in backends() {
        let Some(mut redis) = PrivateRedis::start().await else {
            return;
        };
        let app = spawn_with(db, |a| {
            a.redis_url = Some(redis.url());
            a.stub_latency_ms = 5;
        })
        .await;
        assert_eq!(redis_up(&app).await, 1.0);
        let shared_tpl = app.create(&template_body("gpt-4o")).await;
        let tally: Shared = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let t0 = Instant::now();
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let (client, base, tally, stop, shared) = (
                    app.client.clone(),
                    app.base.clone(),
                    tally.clone(),
                    stop.clone(),
                    shared_tpl.clone(),
                );
                tokio::spawn(async move {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let p = format!("{base}/api/prompt-templates");
                        // A new template (its first ensure-version probes under whatever Redis state).
                        let mut body = template_body(if i % 2 == 0 {
                            "gpt-4o"
                        } else {
                            "gemini-1.5-pro"
                        });
                        body["user_prompt_template"] = json!(format!("w{w} i{i}"));
                        let Ok((201, v)) = send(
                            &client,
                            &tally,
                            t0,
                            reqwest::Method::POST,
                            p.clone(),
                            Some(body),
                        )
                        .await
                        else {
                            continue;
                        };
                        let id = v["id"].as_str().unwrap().to_owned();
                        let ev = json!({"workspace_id": "ws-1"});
                        let _ = send(
                            &client,
                            &tally,
                            t0,
                            reqwest::Method::POST,
                            format!("{p}/{id}/ensure-version"),
                            Some(ev.clone()),
                        )
                        .await;
                        let _ = send(
                            &client,
                            &tally,
                            t0,
                            reqwest::Method::POST,
                            format!("{p}/{shared}/ensure-version"),
                            Some(ev),
                        )
                        .await;
                        let run = json!({"rendered_prompt": format!("hello {i}"), "country": "DE"});
                        let _ = send(
                            &client,
                            &tally,
                            t0,
                            reqwest::Method::POST,
                            format!("{p}/{id}/run"),
                            Some(run),
                        )
                        .await;
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        redis.stop();
        let down_after = wait_gauge(&app, 0.0, Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        redis.restart().await;
        let up_after = wait_gauge(&app, 1.0, Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.await.unwrap();
        }
        let t = std::mem::take(&mut *tally.lock().unwrap());
        let lost = lost_results(app.prompter.store(), &t.result_ids).await;
        report(
            "redis_stopped_under_load",
            db,
            &t,
            lost.len(),
            &format!("redis_up=0 after {down_after:?}, back to 1 after restart in {up_after:?}"),
        );
        assert_eq!(
            t.count_5xx(),
            0,
            "{db:?}: Redis down must cause no 5xx: {:?}",
            t.codes_5xx
        );
        assert_eq!(t.transport_errors, 0);
        assert!(lost.is_empty(), "{db:?}: lost {lost:?}");
        assert!(t.result_ids.len() > 20, "{db:?}: the load did run");

        app.stop().await;
        drop(redis);
    }
}

// ------------------------------------------------------ PostgreSQL killed

fn database_name(url: &str) -> String {
    let path = url.rsplit('/').next().unwrap();
    path.split('?').next().unwrap().to_owned()
}

#[tokio::test]
#[ignore = "fault test: run by `cargo xtask faults`"]
async fn fault_postgres_sessions_killed_under_load() {
    use prompter_storage::sea_orm::{ConnectionTrait, Database};
    let Ok(admin_url) = std::env::var("PROMPTER_TEST_POSTGRES_URL") else {
        println!("FAULT postgres_sessions_killed: skipped (PROMPTER_TEST_POSTGRES_URL not set)");
        return;
    };
    let db = fresh_db(Db::Postgres).await;
    let name = database_name(db.url());
    assert!(
        name.starts_with("prompter_test_"),
        "only a database this test created: {name}"
    );
    let app = spawn_on(db.clone(), |a| {
        a.db_max_connections = Some(8);
        a.stub_latency_ms = 5;
    })
    .await;
    let tpl = app.create(&template_body("gpt-4o")).await;
    let tally: Shared = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (client, base, tally, stop, tpl) = (
                app.client.clone(),
                app.base.clone(),
                tally.clone(),
                stop.clone(),
                tpl.clone(),
            );
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let p = format!("{base}/api/prompt-templates/{tpl}");
                    if i % 3 == 0 {
                        let _ = send(&client, &tally, t0, reqwest::Method::GET, p, None).await;
                    } else {
                        let run = json!({"rendered_prompt": format!("w{w} i{i}")});
                        let _ = send(
                            &client,
                            &tally,
                            t0,
                            reqwest::Method::POST,
                            format!("{p}/run"),
                            Some(run),
                        )
                        .await;
                    }
                }
            })
        })
        .collect();
    // Healthy for 1.5 s, then every session of our database is terminated
    // every 100 ms for 3 s, then healthy again for 3 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let admin = Database::connect(admin_url.as_str())
        .await
        .expect("admin connection");
    let kill_sql = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    );
    let outage_start = t0.elapsed().as_secs_f64();
    let mut terminated = 0usize;
    let kill_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < kill_until {
        let rows = admin
            .query_all(prompter_storage::sea_orm::Statement::from_string(
                admin.get_database_backend(),
                kill_sql.clone(),
            ))
            .await
            .expect("pg_terminate_backend");
        terminated += rows.len();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let outage_end = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let _ = admin.close().await;
    let t = std::mem::take(&mut *tally.lock().unwrap());
    let lost = lost_results(app.prompter.store(), &t.result_ids).await;
    let during: Vec<u16> = t
        .timeline
        .iter()
        .filter(|(s, _)| *s >= outage_start && *s <= outage_end)
        .map(|(_, st)| *st)
        .collect();
    let recovered_from = outage_end + 1.0;
    let after: Vec<u16> = t
        .timeline
        .iter()
        .filter(|(s, _)| *s > recovered_from)
        .map(|(_, st)| *st)
        .collect();
    let after_ok = after.iter().filter(|s| **s < 300).count();
    report(
        "postgres_sessions_killed",
        Db::Postgres,
        &t,
        lost.len(),
        &format!(
            "sessions_terminated={terminated} during_outage: {} answers ({} 503) max_503_latency={:?}; after: {after_ok}/{} ok",
            during.len(),
            during.iter().filter(|s| **s == 503).count(),
            t.max_5xx_latency,
            after.len()
        ),
    );
    assert!(terminated > 0, "sessions were really terminated");
    for code in t.codes_5xx.keys() {
        assert!(
            code == "DATABASE_UNAVAILABLE" || code == "RESULT_NOT_STORED",
            "only clean 503s while the database is down: {:?}",
            t.codes_5xx
        );
    }
    assert_eq!(t.statuses.get(&500), None, "no 500: {:?}", t.statuses);
    assert_eq!(
        t.five_xx_without_retry_after, 0,
        "every 503 carries Retry-After"
    );
    assert!(
        t.max_5xx_latency < Duration::from_secs(6),
        "503s come fast: {:?}",
        t.max_5xx_latency
    );
    assert_eq!(t.transport_errors, 0);
    assert!(
        !after.is_empty() && after_ok == after.len(),
        "recovered without a restart: {after:?}"
    );
    assert!(lost.is_empty(), "lost {lost:?}");

    app.stop().await;
}

// --------------------------------------------------------- provider faults

async fn spawn_with_registry(db: Db, registry: ProviderRegistry) -> (TestApp, Arc<TestDb>) {
    let tdb = fresh_db(db).await;
    let mut args = ServeArgs::defaults();
    args.bind = "127.0.0.1:0".parse().unwrap();
    args.database_url = Some(tdb.url().to_owned());
    args.migrate = true;
    args.workers = Some(2);
    args.shutdown_timeout_secs = 5;
    // This test checks how each provider fault maps to an answer; the circuit
    // breaker (tests/api/provider_limits.rs) would turn the later ones into
    // PROVIDER_CIRCUIT_OPEN, so it is off here.
    args.provider_breaker_failures = 0;
    let app = Application::build_with_providers(args, registry)
        .await
        .expect("server starts");
    let port = app.port();
    let prompter = app.prompter().clone();
    let app_handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let (_, stub) = ProviderRegistry::stub(Default::default());
    let t = TestApp {
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        stub,
        app_handle,
        prompter,
        db: tdb.clone(),
    };
    (t, tdb)
}

fn openai_ok() -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1764320000,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        "system_fingerprint": "fp_fault"
    }))
}

#[tokio::test]
#[ignore = "fault test: run by `cargo xtask faults`"]
async fn fault_provider_errors_timeouts_and_429() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    for db in backends() {
        let mock = MockServer::start().await;
        let http = HttpConfig {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_millis(300),
            max_attempts: 2,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(200),
        };
        let mut reg = ProviderRegistry::new();
        reg.insert(
            "openai",
            Arc::new(OpenAiClient::new(
                "sk-fault-test",
                format!("{}/v1", mock.uri()),
                http,
            )),
        );
        let (app, _tdb) = spawn_with_registry(db, reg).await;
        let err = |status: u16| {
            ResponseTemplate::new(status).set_body_json(json!({"error": {"message": "synthetic", "type": "server_error", "param": null, "code": null}}))
        };
        let cases: Vec<(&str, ResponseTemplate, u16, &str)> = vec![
            ("upstream_500", err(500), 502, "PROVIDER_UPSTREAM_ERROR"),
            (
                "timeout",
                openai_ok().set_delay(Duration::from_secs(2)),
                504,
                "PROVIDER_TIMEOUT",
            ),
            (
                "rate_limited_429",
                err(429).insert_header("retry-after", "30"),
                503,
                "PROVIDER_RATE_LIMITED",
            ),
            ("upstream_503", err(503), 502, "PROVIDER_UPSTREAM_ERROR"),
            (
                "overloaded_529",
                err(529).insert_header("retry-after", "30"),
                503,
                "PROVIDER_OVERLOADED",
            ),
        ];
        let t0 = Instant::now();
        for (name, response, want_status, want_code) in cases {
            mock.reset().await;
            Mock::given(method("POST"))
                .respond_with(response)
                .mount(&mock)
                .await;
            let tally: Shared = Arc::default();
            let tpl = app.create(&template_body("gpt-4o")).await;
            let p = format!("{}/api/prompt-templates/{tpl}", app.base);
            let runs = (0..10).map(|i| {
                send(
                    &app.client,
                    &tally,
                    t0,
                    reqwest::Method::POST,
                    format!("{p}/run"),
                    Some(json!({"rendered_prompt": format!("r{i}")})),
                )
            });
            let ensures = (0..3).map(|_| {
                send(
                    &app.client,
                    &tally,
                    t0,
                    reqwest::Method::POST,
                    format!("{p}/ensure-version"),
                    Some(json!({"workspace_id": "ws-1"})),
                )
            });
            let answers: Vec<_> = futures::future::join_all(runs.chain(ensures)).await;
            let mut wrong = Vec::new();
            for a in &answers {
                let (s, v) = a.as_ref().expect("no transport error");
                let code = v["detail"]["code"].as_str().unwrap_or("");
                // Ensure-version callers waiting on a failed probe may be told to retry.
                let ok = (*s == want_status && code == want_code) || code == "PROBE_PENDING";
                if !ok {
                    wrong.push((*s, v.clone()));
                }
            }
            // Nothing half-written: no result, no version row for this template.
            let (_, results) = app
                .get(&format!("/api/prompt-templates/{tpl}/results"))
                .await;
            let (_, versions) = app
                .get(&format!("/api/prompt-templates/{tpl}/versions"))
                .await;
            let stored = results["items"].as_array().map_or(usize::MAX, Vec::len);
            let version_rows = versions["items"].as_array().map_or(usize::MAX, Vec::len);
            let t = std::mem::take(&mut *tally.lock().unwrap());
            report(
                &format!("provider_{name}"),
                db,
                &t,
                0,
                &format!("expected {want_status} {want_code}; results_written={stored} versions_written={version_rows}"),
            );
            assert!(wrong.is_empty(), "{db:?} {name}: {wrong:?}");
            assert_eq!(stored, 0, "{db:?} {name}: no result row");
            assert_eq!(version_rows, 0, "{db:?} {name}: no version row");
            if want_status == 503 {
                assert_eq!(
                    t.five_xx_without_retry_after, 0,
                    "{db:?} {name}: 503s carry Retry-After"
                );
            }
        }
        // The provider recovers: the same server answers 200 and stores.
        mock.reset().await;
        Mock::given(method("POST"))
            .respond_with(openai_ok())
            .mount(&mock)
            .await;
        let tpl = app.create(&template_body("gpt-4o")).await;
        let (s, v) = app
            .post(
                &format!("/api/prompt-templates/{tpl}/run"),
                &json!({"rendered_prompt": "ok"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["provider_version_key"], "gpt-4o-2024-08-06");
        let (_, results) = app
            .get(&format!("/api/prompt-templates/{tpl}/results"))
            .await;
        assert_eq!(results["items"].as_array().unwrap().len(), 1);
        app.stop().await;
    }
}

// ------------------------------------------------- real server processes

async fn create_via(client: &reqwest::Client, base: &str) -> String {
    let r = client
        .post(format!("{base}/api/prompt-templates"))
        .json(&template_body("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
#[ignore = "fault test: run by `cargo xtask faults`"]
async fn fault_kill_9_during_run_load_loses_no_acknowledged_result() {
    let dbs: Vec<Db> = if std::env::var("PROMPTER_TEST_POSTGRES_URL").is_ok() {
        vec![Db::Postgres, Db::Sqlite]
    } else {
        println!("FAULT kill_9: PROMPTER_TEST_POSTGRES_URL not set, SQLite only");
        vec![Db::Sqlite]
    };
    for db in dbs {
        let tdb = fresh_db(db).await;
        let mut server = ServerProcess::start(tdb.url(), &["--stub-latency-ms", "10"]).await;
        let client = reqwest::Client::new();
        let tpl = create_via(&client, &server.base).await;
        let tally: Shared = Arc::default();
        let t0 = Instant::now();
        let workers: Vec<_> = (0..16)
            .map(|w| {
                let (client, base, tally, tpl) = (
                    client.clone(),
                    server.base.clone(),
                    tally.clone(),
                    tpl.clone(),
                );
                tokio::spawn(async move {
                    for i in 0.. {
                        let run = json!({"rendered_prompt": format!("w{w} i{i}")});
                        let url = format!("{base}/api/prompt-templates/{tpl}/run");
                        if send(&client, &tally, t0, reqwest::Method::POST, url, Some(run))
                            .await
                            .is_err()
                        {
                            break; // the server is gone
                        }
                        if t0.elapsed() > Duration::from_secs(20) {
                            break;
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let acked_before_kill = tally.lock().unwrap().result_ids.len();
        server.child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
        let status = server.child.wait().unwrap();
        for w in workers {
            w.await.unwrap();
        }
        let store = tdb.connect().await;
        let t = std::mem::take(&mut *tally.lock().unwrap());
        let lost = lost_results(&store, &t.result_ids).await;
        // The server comes back on the same database.
        let again = ServerProcess::start(tdb.url(), &[]).await;
        let r = client
            .post(format!("{}/api/prompt-templates/{tpl}/run", again.base))
            .json(&json!({"rendered_prompt": "after restart"}))
            .send()
            .await
            .unwrap();
        report(
            "kill_9_during_run_load",
            db,
            &t,
            lost.len(),
            &format!(
                "acked_before_kill>={acked_before_kill} in_flight_at_kill={} exit={status} restart_run={}",
                t.transport_errors,
                r.status().as_u16()
            ),
        );
        assert!(acked_before_kill > 20, "the load did run");
        assert!(
            lost.is_empty(),
            "{db:?}: acknowledged results lost: {lost:?}"
        );
        assert_eq!(t.count_5xx(), 0);
        assert_eq!(r.status().as_u16(), 200);

        store.close().await;
    }
}

#[tokio::test]
#[ignore = "fault test: run by `cargo xtask faults`"]
async fn fault_sigterm_during_load_completes_in_flight_requests() {
    for db in backends() {
        let tdb = fresh_db(db).await;
        let mut server = ServerProcess::start(
            tdb.url(),
            &["--stub-latency-ms", "1500", "--shutdown-timeout-secs", "20"],
        )
        .await;
        let client = reqwest::Client::new();
        let tpl = create_via(&client, &server.base).await;
        let tally: Shared = Arc::default();
        let t0 = Instant::now();
        let in_flight: Vec<_> = (0..24)
            .map(|i| {
                let (client, base, tally, tpl) = (
                    client.clone(),
                    server.base.clone(),
                    tally.clone(),
                    tpl.clone(),
                );
                tokio::spawn(async move {
                    let url = format!("{base}/api/prompt-templates/{tpl}/run");
                    send(
                        &client,
                        &tally,
                        t0,
                        reqwest::Method::POST,
                        url,
                        Some(json!({"rendered_prompt": format!("r{i}")})),
                    )
                    .await
                    .map_err(|e| e.to_string())
                })
            })
            .collect();
        // Every request is accepted and waiting on the 1.5 s provider when SIGTERM arrives.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let kill = Command::new("kill")
            .args(["-TERM", &server.pid().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let sigterm_at = t0.elapsed();
        // A new connection after SIGTERM is refused, not left hanging.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let fresh = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let late = fresh
            .get(format!("{}/healthz", server.base))
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        let late = match late {
            Ok(r) => format!("answered {}", r.status().as_u16()),
            Err(e) if e.is_connect() => "refused".to_owned(),
            Err(e) => format!("error {e}"),
        };
        let mut errors = Vec::new();
        for h in in_flight {
            if let Err(e) = h.await.unwrap() {
                errors.push(e);
            }
        }
        let exit = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            loop {
                if let Some(s) = server.child.try_wait().unwrap() {
                    return Some(s);
                }
                if started.elapsed() > Duration::from_secs(25) {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .await
        .unwrap();
        let store = tdb.connect().await;
        let t = std::mem::take(&mut *tally.lock().unwrap());
        let lost = lost_results(&store, &t.result_ids).await;
        report(
            "sigterm_during_load",
            db,
            &t,
            lost.len(),
            &format!(
                "sigterm_at={sigterm_at:?} completed_200={} connection_errors={} new_connection_after_sigterm={late} exit={exit:?}",
                t.result_ids.len(),
                errors.len()
            ),
        );
        assert!(
            errors.is_empty(),
            "{db:?}: in-flight requests broken by SIGTERM: {errors:?}"
        );
        assert_eq!(
            t.result_ids.len(),
            24,
            "{db:?}: every in-flight run completed: {:?}",
            t.statuses
        );
        assert!(lost.is_empty());
        assert!(
            exit.is_some_and(|s| s.success()),
            "{db:?}: clean exit, got {exit:?}"
        );

        store.close().await;
    }
}
