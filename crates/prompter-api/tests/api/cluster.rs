//! Several `prompter` instances on one database (and one Redis) act as one
//! service (issue 16): one webhook delivery per event, every event delivered
//! when an instance holding leases is killed (`kill -9` of a real process),
//! a key revoked by `prompter keys revoke` refused by every instance within
//! one second, a label moved or a template deleted on one instance seen by
//! every other instance's template cache within one second, and one rate
//! limit per key across instances.

use crate::helpers::*;
use prompter_api::auth::{create_key, KeySpec};
use prompter_api::caller::Role;
use prompter_api::security::AuthMode;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Waits (polling) until `check` holds; panics with `what` after `within`.
async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A webhook receiver answering 200 to every delivery.
async fn receiver() -> MockServer {
    let r = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&r)
        .await;
    r
}

/// Deliveries received, per `X-Prompter-Event-Id`.
async fn deliveries(r: &MockServer) -> BTreeMap<String, usize> {
    let mut per_event = BTreeMap::new();
    for req in r.received_requests().await.unwrap_or_default() {
        let id = req
            .headers
            .get("x-prompter-event-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_owned();
        *per_event.entry(id).or_insert(0) += 1;
    }
    per_event
}

/// Creates `n` templates and settles a version for each under stub build
/// `b1` (then stops that instance); returns their ids.
async fn templates_seen_under_b1(
    db: &Arc<prompter_storage::testing::TestDb>,
    n: usize,
) -> Vec<String> {
    let v1 = spawn_on(db.clone(), |a| a.stub_build = Some("b1".into())).await;
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = v1.create(&template_body("gpt-4o")).await;
        let (s, v) = v1
            .post(
                &format!("/api/prompt-templates/{id}/ensure-version"),
                &json!({"workspace_id": "ws-1"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        ids.push(id);
    }
    v1.stop().await;
    ids
}

/// The event ids of the outbox, and how many rows are delivered.
async fn outbox_state(store: &prompter_storage::Store) -> (BTreeSet<String>, usize) {
    let rows = store.list_outbox(10_000).await.unwrap();
    let delivered = rows.iter().filter(|r| r.delivered_at.is_some()).count();
    (
        rows.iter().map(|r| r.event_id.to_string()).collect(),
        delivered,
    )
}

#[tokio::test]
async fn three_instances_deliver_each_event_once() {
    for db in backends() {
        let shared = fresh_db(db).await;
        let ids = templates_seen_under_b1(&shared, 20).await;
        let hook = receiver().await;
        let url = format!("{}/hook", hook.uri());
        // Three instances under the new build, all polling the outbox hard.
        let mut apps = Vec::new();
        for _ in 0..3 {
            let url = url.clone();
            apps.push(
                spawn_on(shared.clone(), move |a| {
                    a.stub_build = Some("b2".into());
                    a.webhook_url = Some(url);
                    a.webhook_poll_ms = 10;
                })
                .await,
            );
        }
        // Each template's drift is found by one of them.
        for (i, id) in ids.iter().enumerate() {
            let (s, v) = apps[i % 3]
                .post(
                    &format!("/api/prompt-templates/{id}/ensure-version"),
                    &json!({"workspace_id": "ws-1"}),
                )
                .await;
            assert_eq!(s, 200, "{v}");
        }
        let store = apps[0].prompter.store().clone();
        wait_until(
            "20 delivered outbox rows",
            Duration::from_secs(30),
            || async { outbox_state(&store).await.1 == 20 },
        )
        .await;
        // Let any second delivery land before counting.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (events, delivered) = outbox_state(&store).await;
        assert_eq!(
            (events.len(), delivered),
            (20, 20),
            "{db:?}: 20 drift events"
        );
        let got = deliveries(&hook).await;
        let total: usize = got.values().sum();
        println!("{db:?}: 20 events, {total} deliveries by 3 instances");
        assert_eq!(total, 20, "{db:?}: one delivery per event, got {got:?}");
        assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), events);
        for app in &apps {
            app.stop().await;
        }
    }
}

/// A `prompter serve` child process, `kill -9`ed on drop.
struct Process {
    child: Child,
    base: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_process(db_url: &str, extra: &[&str]) -> Process {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_prompter"))
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            db_url,
            "--migrate",
            "--workers",
            "2",
        ])
        .args(extra)
        .env_remove("PROMPTER_AUTH")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("spawn prompter");
    let p = Process {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    let ready = format!("{}/readyz", p.base);
    wait_until(
        "the child prompter to be ready",
        Duration::from_secs(30),
        || {
            let (client, ready) = (client.clone(), ready.clone());
            async move {
                client
                    .get(&ready)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        },
    )
    .await;
    p
}

#[tokio::test]
async fn an_instance_killed_while_holding_leases_loses_no_event() {
    for db in backends() {
        let shared = fresh_db(db).await;
        let ids = templates_seen_under_b1(&shared, 8).await;
        // Instance A delivers to a receiver that accepts connections and
        // never answers: its claims are in flight when it is killed.
        let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hole = format!("http://{}/hook", black_hole.local_addr().unwrap());
        let mut a = start_process(
            shared.url(),
            &[
                "--stub-build",
                "b2",
                "--webhook-url",
                &hole,
                "--webhook-poll-ms",
                "10",
                // A waits up to 5 s on the receiver; its leases last 6 s
                // (timeout + 1 s, however short --webhook-lease-ms is).
                "--webhook-timeout-ms",
                "5000",
                "--webhook-lease-ms",
                "1000",
                "--instance-id",
                "instance-a",
            ],
        )
        .await;
        let client = reqwest::Client::new();
        for id in &ids {
            let r = client
                .post(format!(
                    "{}/api/prompt-templates/{id}/ensure-version",
                    a.base
                ))
                .json(&json!({"workspace_id": "ws-1"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        let store = shared.connect().await;
        wait_until("A to claim all 8 rows", Duration::from_secs(20), || async {
            let rows = store.list_outbox(100).await.unwrap();
            if std::env::var_os("TEST_LOG").is_some() {
                eprintln!(
                    "{:?}",
                    rows.iter()
                        .map(|r| (&r.claimed_by, r.attempts))
                        .collect::<Vec<_>>()
                );
            }
            rows.len() == 8
                && rows.iter().all(|r| {
                    r.claimed_by.as_deref() == Some("instance-a") && r.delivered_at.is_none()
                })
        })
        .await;
        a.child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
        a.child.wait().unwrap();
        let held = store.list_outbox(100).await.unwrap();
        let events: BTreeSet<String> = held.iter().map(|r| r.event_id.to_string()).collect();
        assert!(
            held.iter().all(|r| r.delivered_at.is_none()),
            "{db:?}: nothing was delivered by A"
        );

        // B takes over once the leases end, with the same event ids.
        let hook = receiver().await;
        let url = format!("{}/hook", hook.uri());
        let b = spawn_on(shared.clone(), move |a| {
            a.stub_build = Some("b2".into());
            a.webhook_url = Some(url);
            a.webhook_poll_ms = 10;
            a.instance_id = Some("instance-b".into());
        })
        .await;
        wait_until(
            "B to deliver all 8 rows",
            Duration::from_secs(30),
            || async { outbox_state(&store).await.1 == 8 },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = deliveries(&hook).await;
        assert_eq!(
            got.keys().cloned().collect::<BTreeSet<_>>(),
            events,
            "{db:?}: every event A held is delivered, same event ids"
        );
        assert!(got.values().all(|n| *n == 1), "{db:?}: once each: {got:?}");
        b.stop().await;
        drop(black_hole);
    }
}

#[tokio::test]
async fn a_key_revoked_by_the_cli_is_refused_by_every_instance_within_a_second() {
    for db in backends() {
        let shared = fresh_db(db).await;
        let mut apps = Vec::new();
        for _ in 0..2 {
            apps.push(
                spawn_on(shared.clone(), |a| {
                    a.security.auth = Some(AuthMode::Required);
                    // Far longer than the test: only the generation watch can
                    // explain a refusal.
                    a.security.auth_cache_ttl_ms = 600_000;
                })
                .await,
            );
        }
        let (generated, _) = create_key(
            apps[0].prompter.store(),
            KeySpec {
                org_id: "org-cluster",
                workspace_id: None,
                role: Role::Read,
                name: None,
                expires_at: None,
            },
        )
        .await
        .unwrap();
        let key = generated.key;
        let status = |app: &TestApp| {
            let rb = app
                .client
                .get(app.url("/api/prompt-templates?limit=1"))
                .bearer_auth(&key);
            async move { send(rb).await.status }
        };
        // Accepted (and cached) by both.
        wait_until(
            "the new key to be accepted by both",
            Duration::from_secs(5),
            || async { status(&apps[0]).await == 200 && status(&apps[1]).await == 200 },
        )
        .await;
        let out = Command::new(env!("CARGO_BIN_EXE_prompter"))
            .args([
                "keys",
                "revoke",
                &generated.prefix,
                "--database-url",
                shared.url(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let revoked = Instant::now();
        let mut refused = [None, None];
        while refused.iter().any(Option::is_none) && revoked.elapsed() < Duration::from_secs(5) {
            for (i, app) in apps.iter().enumerate() {
                if refused[i].is_none() && status(app).await == 401 {
                    refused[i] = Some(revoked.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("{db:?}: revoked key refused after {refused:?}");
        for (i, r) in refused.iter().enumerate() {
            let r = r.unwrap_or_else(|| panic!("{db:?}: instance {i} still accepts the key"));
            assert!(
                r < Duration::from_secs(1),
                "{db:?}: instance {i} refused the key after {r:?}"
            );
        }
        for app in &apps {
            app.stop().await;
        }
    }
}

/// Polls `check` every 20 ms until it holds; how long that took (panics
/// after 5 s).
async fn time_until<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = Instant::now();
    while !check().await {
        assert!(t0.elapsed() < Duration::from_secs(5), "{what} after 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t0.elapsed()
}

#[tokio::test]
async fn template_caches_follow_changes_made_on_another_instance_within_a_second() {
    for db in backends() {
        let shared = fresh_db(db).await;
        let a = spawn_on(shared.clone(), |_| {}).await;
        let b = spawn_on(shared.clone(), |_| {}).await;
        let q = "org_id=org-cache&workspace_id=ws-1";
        let mut ids = Vec::new();
        for user in ["Say hello.", "Say hello twice."] {
            let (st, t) = a
                .post(
                    "/api/prompt-templates",
                    &json!({"org_id": "org-cache", "workspace_id": "ws-1", "name": "cached",
                            "model_id": "gpt-4o", "user_prompt_template": user}),
                )
                .await;
            assert_eq!(st, 201, "{t}");
            ids.push(t["id"].as_str().unwrap().to_owned());
        }
        let put = |app: &TestApp, body: serde_json::Value| {
            let rb = app
                .client
                .put(app.url(&format!("/api/prompts/cached/labels/production?{q}")))
                .json(&body);
            async move { send(rb).await }
        };
        assert_eq!(put(&a, json!({"revision": 1})).await.status, 200);
        let fetched = |app: &TestApp| {
            let url = format!("/api/prompts/cached?label=production&{q}");
            let rb = app.client.get(app.url(&url));
            async move { send(rb).await.body["revision"].as_i64() }
        };
        assert_eq!(fetched(&b).await, Some(1));
        // B answers from memory now.
        let key = prompter_storage::PromptKey {
            org_id: "org-cache".into(),
            workspace_id: "ws-1".into(),
            name: "cached".into(),
        };
        let by = prompter_storage::RevisionRef::Label("production");
        assert!(
            b.prompter.template_cache().lookup(&key, by).is_some(),
            "{db:?}: B cached the lookup"
        );
        // A moves the label: B follows within a second.
        assert_eq!(
            put(&a, json!({"revision": 2, "expected_revision": 1}))
                .await
                .status,
            200
        );
        let moved = time_until("B to see the label move", || async {
            fetched(&b).await == Some(2)
        })
        .await;
        // A deletes revision 1 (no label points to it now), which B has
        // cached from a run: B refuses to run it within a second.
        let run = |app: &TestApp| {
            let rb = app
                .client
                .post(app.url(&format!("/api/prompt-templates/{}/run", ids[0])))
                .json(&json!({"rendered_prompt": "hi"}));
            async move { send(rb).await.status }
        };
        assert_eq!(run(&b).await, 200);
        let id0: uuid::Uuid = ids[0].parse().unwrap();
        assert!(b.prompter.template_cache().template(id0).is_some());
        let del = a
            .send(
                a.client
                    .delete(a.url(&format!("/api/prompt-templates/{}", ids[0]))),
            )
            .await;
        assert!(
            del.status < 300,
            "{db:?}: delete: {} {}",
            del.status,
            del.body
        );
        assert_eq!(run(&a).await, 404, "{db:?}: A at once");
        let deleted = time_until("B to refuse the deleted template", || async {
            run(&b).await == 404
        })
        .await;
        println!("{db:?}: label move seen by B after {moved:?}, deletion after {deleted:?}");
        for (what, t) in [("label move", moved), ("deletion", deleted)] {
            assert!(
                t < Duration::from_secs(1),
                "{db:?}: {what} seen after {t:?}"
            );
        }
        a.stop().await;
        b.stop().await;
    }
}

#[tokio::test]
async fn one_rate_limit_per_key_across_three_instances() {
    let Some(redis) = redis_url() else { return };
    let shared = fresh_db(Db::Sqlite).await;
    let (rate, burst) = (20.0, 5u32);
    let mut apps = Vec::new();
    for _ in 0..3 {
        let redis = redis.clone();
        apps.push(
            spawn_on(shared.clone(), move |a| {
                a.redis_url = Some(redis);
                a.security.auth = Some(AuthMode::Required);
                a.security.rate_limit_rps = rate;
                a.security.rate_limit_burst = burst;
            })
            .await,
        );
    }
    let (generated, _) = create_key(
        apps[0].prompter.store(),
        KeySpec {
            org_id: "org-rl",
            workspace_id: None,
            role: Role::Read,
            name: None,
            expires_at: None,
        },
    )
    .await
    .unwrap();
    let key = Arc::new(generated.key);
    let apps = Arc::new(apps);
    // Six clients spread over the three instances for two seconds.
    let started = Instant::now();
    let window = Duration::from_secs(2);
    let mut tasks = Vec::new();
    for c in 0..6 {
        let (apps, key) = (apps.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut counts = BTreeMap::new();
            let mut i = c;
            while started.elapsed() < window {
                let app = &apps[i % 3];
                i += 1;
                let a = send(
                    app.client
                        .get(app.url("/api/prompt-templates?limit=1"))
                        .bearer_auth(key.as_str()),
                )
                .await;
                *counts.entry(a.status).or_insert(0u64) += 1;
            }
            counts
        }));
    }
    let mut counts = BTreeMap::new();
    for t in tasks {
        for (s, n) in t.await.unwrap() {
            *counts.entry(s).or_insert(0u64) += n;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = counts.get(&200).copied().unwrap_or(0) as f64;
    let limited = counts.get(&429).copied().unwrap_or(0);
    assert_eq!(
        counts.keys().filter(|s| ![200, 429].contains(*s)).count(),
        0,
        "{counts:?}"
    );
    assert!(limited > 0, "the limit was reached: {counts:?}");
    // A Redis call slower than its timeout (a loaded machine) makes that
    // instance decide alone until its pinger sees Redis again (≤ 1 s): by
    // design, at most one more burst per instance. The in-process servers
    // share one metrics recorder, so the count is the sum over the three.
    let fallbacks = metric_sum(
        &apps[0].metrics().await,
        "prompter_rate_limit_fallback_total",
        &[],
    );
    let extra = if fallbacks > 0.0 { 3.0 } else { 0.0 };
    // One bucket: the burst plus the rate over the window, ± one burst.
    // (Three per-instance buckets would allow about three times as much.)
    let allowed = f64::from(burst) + rate * elapsed;
    let what = format!(
        "{ok} accepted in {elapsed:.2} s, one bucket allows {allowed:.0}: {counts:?}, \
         {fallbacks} per-instance fallback decisions"
    );
    println!("{what}");
    assert!(ok <= allowed + f64::from(burst) * (1.0 + extra), "{what}");
    assert!(ok >= allowed - f64::from(burst) - rate * 0.5, "{what}");
    assert!(
        fallbacks < (ok + limited as f64) / 4.0,
        "Redis answered most decisions: {what}"
    );
    for app in apps.iter() {
        app.stop().await;
    }
}

/// A private `redis-server` on a free port (stopped on drop).
struct PrivateRedis {
    child: Child,
    port: u16,
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn redis_down_falls_back_to_per_instance_buckets() {
    if redis_url().is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Ok(child) = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        skip("redis-server not installed: fallback test skipped");
        return;
    };
    let mut redis = PrivateRedis { child, port };
    wait_until("the private redis", Duration::from_secs(10), || async {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let app = spawn_with(Db::Sqlite, move |a| {
        a.redis_url = Some(url);
        a.security.auth = Some(AuthMode::Required);
        a.security.rate_limit_rps = 1.0;
        a.security.rate_limit_burst = 3;
    })
    .await;
    let (generated, _) = create_key(
        app.prompter.store(),
        KeySpec {
            org_id: "org-fallback",
            workspace_id: None,
            role: Role::Read,
            name: None,
            expires_at: None,
        },
    )
    .await
    .unwrap();
    let get = || {
        send(
            app.client
                .get(app.url("/api/prompt-templates?limit=1"))
                .bearer_auth(&generated.key),
        )
    };
    // Redis up: the cluster bucket (3 tokens) is spent.
    for _ in 0..3 {
        assert_eq!(get().await.status, 200);
    }
    assert_eq!(get().await.status, 429);
    // Redis stops: requests are served from this instance's own bucket
    // (full: it was never used), neither failed nor slowed into errors.
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(get().await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429], "local bucket of 3");
    // (The in-process servers of this test binary share one metrics
    // recorder: the counter only grows, the gauge may be set by another test.)
    let m = app.metrics().await;
    assert!(metric_sum(&m, "prompter_rate_limit_fallback_total", &[]) >= 5.0);
    app.stop().await;
}
