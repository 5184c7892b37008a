//! Tracking batches (issue 18) over HTTP, on SQLite and PostgreSQL:
//! countries × repeats rendered per country and run in the background,
//! results tagged with batch, country and repeat; idempotent creation;
//! missing variables refused before anything is queued; cancel and
//! retry-failed; the breaker ending a batch `done_with_failures`; the batch
//! share of a provider cap; two instances sharing a batch with no item run
//! twice; a `kill -9` mid-batch finished by another instance (or the
//! restarted one) with no duplicate result; the progress event stream.

use crate::harness::{wait_for, ServerProcess};
use crate::helpers::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

/// A template whose prompt uses the built-ins and one variable.
fn tracker(org: &str) -> Value {
    json!({
        "org_id": org,
        "workspace_id": "ws-1",
        "name": "tracker",
        "model_id": "gpt-4o",
        "system_instructions": "You answer briefly.",
        "user_prompt_template": "Best {{topic}} in {{country}} for {{brand}}?",
        "country_set": ["us", "de", "fr"],
        "inference_params": {"temperature": 0.2},
    })
}

fn new_org() -> String {
    format!("org-{}", uuid::Uuid::new_v4())
}

fn batches_path(org: &str) -> String {
    format!("/api/prompts/tracker/batches?org_id={org}&workspace_id=ws-1&label=latest")
}

/// Waits until the batch has ended; returns its detail.
async fn wait_finished(app: &TestApp, id: &str, within: Duration) -> Value {
    let started = std::time::Instant::now();
    loop {
        let (s, b) = app.get(&format!("/api/batches/{id}")).await;
        assert_eq!(s, 200, "{b}");
        if !b["finished_at"].is_null() {
            return b;
        }
        assert!(
            started.elapsed() < within,
            "batch {id} did not finish in {within:?}: {b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every result of a batch (listing by `batch_id`).
async fn batch_results(app: &TestApp, tpl: &str, batch: &str) -> Vec<Value> {
    let (s, b) = app
        .get(&format!(
            "/api/prompt-templates/{tpl}/results?batch_id={batch}&limit=1000"
        ))
        .await;
    assert_eq!(s, 200, "{b}");
    b["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_batch_runs_each_country_and_repeat_once_with_per_country_prompts() {
    for db in backends() {
        let app = spawn_with(db, |a| a.batch_poll_ms = 50).await;
        let org = new_org();
        let tpl = app.create(&tracker(&org)).await;
        let body = json!({
            "variables": {"topic": "running shoes"},
            "variables_by_country": {"DE": {"topic": "Laufschuhe"}},
            "repeats": 4,
            "brand_name": "Acme",
        });
        let a = app
            .send(
                app.client
                    .post(app.url(&batches_path(&org)))
                    .header("Idempotency-Key", "nightly-1")
                    .json(&body),
            )
            .await;
        assert_eq!(a.status, 202, "{}", a.body);
        assert_eq!(a.body["items"], 12);
        let id = a.body["batch_id"].as_str().unwrap().to_owned();
        // The same key and body: the same batch, nothing new queued.
        let again = app
            .send(
                app.client
                    .post(app.url(&batches_path(&org)))
                    .header("Idempotency-Key", "nightly-1")
                    .json(&body),
            )
            .await;
        assert_eq!(
            (again.status, again.body["batch_id"].as_str()),
            (202, Some(id.as_str()))
        );
        assert_eq!(again.headers["idempotent-replayed"], "true");
        let reused = app
            .send(
                app.client
                    .post(app.url(&batches_path(&org)))
                    .header("Idempotency-Key", "nightly-1")
                    .json(&json!({"variables": {"topic": "x"}, "brand_name": "Acme"})),
            )
            .await;
        assert_eq!(reused.status, 422);
        assert_eq!(reused.body["detail"]["code"], "IDEMPOTENCY_KEY_REUSED");

        let b = wait_finished(&app, &id, Duration::from_secs(30)).await;
        assert_eq!(b["status"], "done", "{b}");
        assert_eq!(
            (
                b["total"].as_i64(),
                b["done"].as_i64(),
                b["failed"].as_i64()
            ),
            (Some(12), Some(12), Some(0))
        );
        let items = b["items"].as_array().unwrap();
        let cells: HashSet<(String, i64)> = items
            .iter()
            .map(|i| {
                (
                    i["country"].as_str().unwrap().to_owned(),
                    i["repeat"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(cells.len(), 12);
        for c in ["US", "DE", "FR"] {
            for r in 0..4 {
                assert!(cells.contains(&(c.to_owned(), r)), "{c} {r}");
            }
        }
        assert!(items
            .iter()
            .all(|i| i["status"] == "done" && i["result_id"].is_string()));
        assert_eq!(
            app.stub.completion_count(),
            12,
            "one provider call per item"
        );

        // The results history shows batch, country and repeat.
        let results = batch_results(&app, &tpl, &id).await;
        assert_eq!(results.len(), 12);
        let seen: HashSet<(String, i64)> = results
            .iter()
            .map(|r| {
                assert_eq!(r["batch_id"], id.as_str());
                (
                    r["country"].as_str().unwrap().to_owned(),
                    r["repeat"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(seen, cells);
        // Each country's prompt was rendered with its own variables.
        for item in items {
            let rid = item["result_id"].as_str().unwrap();
            let (s, r) = app
                .get(&format!("/api/prompt-templates/results/{rid}"))
                .await;
            assert_eq!(s, 200, "{r}");
            let user = r["request"]["messages"][1]["content"].as_str().unwrap();
            let want = match item["country"].as_str().unwrap() {
                "DE" => "Best Laufschuhe in DE for Acme?",
                "US" => "Best running shoes in US for Acme?",
                _ => "Best running shoes in FR for Acme?",
            };
            assert_eq!(user, want);
            assert_eq!(r["request"]["countries"], json!([item["country"]]));
        }
        // Listed, newest first.
        let (s, l) = app.get("/api/batches").await;
        assert_eq!(s, 200);
        assert!(l["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == id.as_str()));
        // Narrowed to one workspace: this one lists it, another lists nothing.
        let (s, l) = app
            .get(&format!("/api/batches?org_id={org}&workspace_id=ws-1"))
            .await;
        assert_eq!(s, 200);
        assert_eq!(l["items"].as_array().unwrap().len(), 1, "{l}");
        assert_eq!(l["items"][0]["id"], id.as_str());
        let (s, l) = app
            .get(&format!("/api/batches?org_id={org}&workspace_id=ws-2"))
            .await;
        assert_eq!(s, 200);
        assert_eq!(l["items"], json!([]));
        let (s, _) = app.get(&format!("/api/batches?org_id={org}")).await;
        assert_eq!(s, 422, "a workspace filter needs both ids with auth off");
        app.stop().await;
    }
}

#[tokio::test]
async fn bad_batches_are_refused_before_anything_is_queued() {
    for db in backends() {
        let app = spawn_with(db, |a| a.batch_max_items = 10).await;
        let org = new_org();
        let tpl = app.create(&tracker(&org)).await;
        // `topic` missing everywhere; `brand` missing (no brand_name).
        let (s, b) = app.post(&batches_path(&org), &json!({})).await;
        assert_eq!(s, 422, "{b}");
        assert_eq!(b["detail"]["code"], "MISSING_VARIABLES");
        let missing: HashSet<&str> = b["detail"]["missing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(missing, HashSet::from(["topic", "brand"]));
        // Given for one country only: still refused.
        let (s, b) = app
            .post(
                &format!("/api/prompt-templates/{tpl}/batches"),
                &json!({"brand_name": "Acme", "variables_by_country": {"US": {"topic": "x"}}}),
            )
            .await;
        assert_eq!(
            (s, b["detail"]["code"].as_str()),
            (422, Some("MISSING_VARIABLES"))
        );
        // Too many items.
        let (s, b) = app
            .post(
                &batches_path(&org),
                &json!({"brand_name": "A", "variables": {"topic": "t"}, "repeats": 4}),
            )
            .await;
        assert_eq!(
            (s, b["detail"]["code"].as_str()),
            (422, Some("BATCH_TOO_LARGE")),
            "{b}"
        );
        let (s, b) = app
            .post(
                &batches_path(&org),
                &json!({"repeats": 0, "brand_name": "A", "variables": {"topic": "t"}}),
            )
            .await;
        // Field errors use V7's validation envelope (a list naming the field).
        assert_eq!(s, 422, "{b}");
        assert_eq!(b["detail"][0]["loc"], json!(["body", "repeats"]), "{b}");
        let (s, b) = app
            .post(&batches_path(&org), &json!({"countries": ["not a code"], "brand_name": "A", "variables": {"topic": "t"}}))
            .await;
        assert_eq!(s, 422, "{b}");
        assert_eq!(b["detail"][0]["loc"], json!(["body", "countries"]), "{b}");
        let (s, _) = app.post(&batches_path(&org), &json!({"repeat": 2})).await;
        assert_eq!(s, 422, "unknown fields are refused");
        let (s, b) = app.get("/api/batches").await;
        assert_eq!(s, 200);
        assert_eq!(b["items"], json!([]), "nothing was queued");
        let (s, b) = app
            .get(&format!("/api/batches/{}", uuid::Uuid::new_v4()))
            .await;
        assert_eq!(
            (s, b["detail"]["code"].as_str()),
            (404, Some("BATCH_NOT_FOUND"))
        );
        let (s, _) = app.get("/api/batches/nope").await;
        assert_eq!(s, 404);
        app.stop().await;
    }
}

#[tokio::test]
async fn cancel_stops_queued_items_and_retry_failed_requeues_failures() {
    for db in backends() {
        // One item at a time, 300 ms each: a cancel lands while most are queued.
        let app = spawn_with(db, |a| {
            a.stub_latency_ms = 300;
            a.batch_concurrency = 1;
            a.batch_poll_ms = 50;
        })
        .await;
        let org = new_org();
        app.create(&tracker(&org)).await;
        let body = json!({"variables": {"topic": "t"}, "brand_name": "A", "repeats": 3});
        let (s, b) = app.post(&batches_path(&org), &body).await;
        assert_eq!(s, 202, "{b}");
        let id = b["batch_id"].as_str().unwrap().to_owned();
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (s, c) = app
            .post(&format!("/api/batches/{id}/cancel"), &json!({}))
            .await;
        assert_eq!(s, 200, "{c}");
        let b = wait_finished(&app, &id, Duration::from_secs(10)).await;
        assert_eq!(b["status"], "cancelled", "{b}");
        let done = b["done"].as_i64().unwrap();
        let cancelled = b["cancelled"].as_i64().unwrap();
        assert!(done >= 1 && cancelled >= 5, "{b}");
        assert_eq!(done + cancelled, 9);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            app.stub.completion_count() as i64,
            done,
            "cancelled items never ran"
        );
        app.stop().await;

        // Every call fails: items fail after their attempts; retry-failed
        // with a healthy provider finishes them.
        let app = spawn_with(db, |a| {
            a.stub_failure_rate = 1.0;
            a.batch_max_attempts = 2;
            a.batch_retry_base_ms = 10;
            a.batch_poll_ms = 20;
            a.provider_breaker_failures = 0;
        })
        .await;
        let org = new_org();
        let tpl = app.create(&tracker(&org)).await;
        let (s, b) = app
            .post(
                &batches_path(&org),
                &json!({"variables": {"topic": "t"}, "brand_name": "A"}),
            )
            .await;
        assert_eq!(s, 202, "{b}");
        let id = b["batch_id"].as_str().unwrap().to_owned();
        let b = wait_finished(&app, &id, Duration::from_secs(20)).await;
        assert_eq!(b["status"], "done_with_failures", "{b}");
        assert_eq!(b["failed"], 3);
        for i in b["items"].as_array().unwrap() {
            assert_eq!(i["status"], "failed");
            assert_eq!(i["attempts"], 2);
            assert_eq!(i["error"]["code"], "PROVIDER_UPSTREAM_ERROR", "{i}");
        }
        assert_eq!(app.stub.completion_count(), 6, "two attempts per item");
        app.stub.set_failure_rate(0.0);
        let (s, r) = app
            .post(&format!("/api/batches/{id}/retry-failed"), &json!({}))
            .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["requeued"], 3);
        let b = wait_finished(&app, &id, Duration::from_secs(20)).await;
        assert_eq!(
            (
                b["status"].as_str(),
                b["done"].as_i64(),
                b["failed"].as_i64()
            ),
            (Some("done"), Some(3), Some(0)),
            "{b}"
        );
        assert_eq!(batch_results(&app, &tpl, &id).await.len(), 3);
        app.stop().await;
    }
}

#[tokio::test]
async fn a_failing_provider_opens_the_breaker_and_the_batch_ends_with_failures() {
    for db in backends() {
        let app = spawn_with(db, |a| {
            a.stub_failure_rate = 1.0;
            a.provider_breaker_failures = 3;
            // Retries of an open circuit wait for its cool-down.
            a.provider_breaker_cooldown_ms = 300;
            a.batch_max_attempts = 2;
            a.batch_retry_base_ms = 10;
            a.batch_concurrency = 1;
            a.batch_poll_ms = 20;
        })
        .await;
        let org = new_org();
        app.create(&tracker(&org)).await;
        let (s, b) = app
            .post(
                &batches_path(&org),
                &json!({"variables": {"topic": "t"}, "brand_name": "A", "repeats": 4}),
            )
            .await;
        assert_eq!(s, 202, "{b}");
        let id = b["batch_id"].as_str().unwrap().to_owned();
        let b = wait_finished(&app, &id, Duration::from_secs(30)).await;
        assert_eq!(b["status"], "done_with_failures", "{b}");
        assert_eq!(b["failed"], 12);
        let codes: Vec<&str> = b["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["error"]["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&"PROVIDER_CIRCUIT_OPEN"), "{codes:?}");
        assert!(codes
            .iter()
            .all(|c| ["PROVIDER_CIRCUIT_OPEN", "PROVIDER_UPSTREAM_ERROR"].contains(c)));
        // 12 items × 2 attempts; the open circuit kept most from the provider
        // (3 calls opened it, then one half-open trial per cool-down).
        let calls = app.stub.completion_count();
        assert!((3..24).contains(&calls), "{calls} provider calls");
        app.stop().await;
    }
}

#[tokio::test]
async fn batch_work_stays_within_its_share_of_the_cap_and_interactive_runs_get_the_rest() {
    for db in backends() {
        let app = spawn_with(db, |a| {
            a.stub_latency_ms = 100;
            a.provider_max_inflight = vec!["openai=4".into()];
            a.provider_queue_timeout_ms = 300;
            a.batch_concurrency = 16;
            a.batch_poll_ms = 20;
        })
        .await;
        let org = new_org();
        let tpl = app.create(&tracker(&org)).await;
        let (s, b) = app
            .post(
                &batches_path(&org),
                &json!({"variables": {"topic": "t"}, "brand_name": "A", "repeats": 8}),
            )
            .await;
        assert_eq!(s, 202, "{b}");
        let id = b["batch_id"].as_str().unwrap().to_owned();
        wait_for("the batch to start", Duration::from_secs(10), || async {
            app.stub.max_in_flight() >= 2
        })
        .await;
        // While the batch holds its half, two interactive runs are served.
        let runs = (0..2).map(|i| {
            send(
                app.client
                    .post(app.url(&format!("/api/prompt-templates/{tpl}/run")))
                    .json(&json!({"rendered_prompt": format!("hi {i}")})),
            )
        });
        for a in futures::future::join_all(runs).await {
            assert_eq!(a.status, 200, "{}", a.body);
        }
        let b = wait_finished(&app, &id, Duration::from_secs(30)).await;
        assert_eq!(b["done"], 24, "{b}");
        assert!(
            app.stub.max_in_flight() <= 4,
            "the cap held: {}",
            app.stub.max_in_flight()
        );
        app.stop().await;

        // Batch work alone never goes past its share (2 of 4).
        let app = spawn_with(db, |a| {
            a.stub_latency_ms = 50;
            a.provider_max_inflight = vec!["openai=4".into()];
            a.batch_concurrency = 16;
            a.batch_poll_ms = 20;
        })
        .await;
        let org = new_org();
        app.create(&tracker(&org)).await;
        let (_, b) = app
            .post(
                &batches_path(&org),
                &json!({"variables": {"topic": "t"}, "brand_name": "A", "repeats": 8}),
            )
            .await;
        let id = b["batch_id"].as_str().unwrap().to_owned();
        wait_finished(&app, &id, Duration::from_secs(30)).await;
        assert_eq!(app.stub.max_in_flight(), 2, "batch share of a cap of 4");
        app.stop().await;
    }
}

#[tokio::test]
async fn two_instances_share_a_200_item_batch_and_run_each_item_once() {
    let Ok(_) = std::env::var("PROMPTER_TEST_POSTGRES_URL") else {
        skip("PROMPTER_TEST_POSTGRES_URL not set: multi-instance batch test skipped");
        return;
    };
    let db = fresh_db(Db::Postgres).await;
    let tweak = |a: &mut prompter_api::ServeArgs| {
        a.stub_latency_ms = 20;
        a.batch_concurrency = 8;
        a.batch_poll_ms = 20;
    };
    let a = spawn_on(db.clone(), tweak).await;
    let b = spawn_on(db.clone(), tweak).await;
    let org = new_org();
    let tpl = a.create(&tracker(&org)).await;
    let (s, body) = a
        .post(
            &batches_path(&org),
            &json!({"countries": ["US", "DE", "FR", "GB"], "variables": {"topic": "t"}, "brand_name": "A", "repeats": 50}),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    let id = body["batch_id"].as_str().unwrap().to_owned();
    let detail = wait_finished(&b, &id, Duration::from_secs(60)).await;
    assert_eq!(detail["done"], 200, "{detail}");
    let (ca, cb) = (a.stub.completion_count(), b.stub.completion_count());
    assert_eq!(ca + cb, 200, "each item ran once: {ca} + {cb}");
    assert!(ca > 0 && cb > 0, "both instances worked: {ca} + {cb}");
    let results = batch_results(&a, &tpl, &id).await;
    assert_eq!(results.len(), 200);
    let cells: HashSet<(String, i64)> = results
        .iter()
        .map(|r| {
            (
                r["country"].as_str().unwrap().to_owned(),
                r["repeat"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(cells.len(), 200, "no cell has two results");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_worker_killed_mid_batch_leaves_its_items_to_the_next_instance() {
    for db in backends() {
        let test_db = fresh_db(db).await;
        // The instance that dies: a child process, one slow item at a time.
        let mut child = ServerProcess::start(
            test_db.url(),
            &[
                "--stub-latency-ms",
                "300",
                "--batch-concurrency",
                "2",
                "--batch-poll-ms",
                "20",
                "--batch-lease-ms",
                "1500",
            ],
        )
        .await;
        let client = reqwest::Client::new();
        let org = new_org();
        let created = client
            .post(format!("{}/api/prompt-templates", child.base))
            .json(&tracker(&org))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let tpl = created.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = client
            .post(format!("{}{}", child.base, batches_path(&org)))
            .json(&json!({"variables": {"topic": "t"}, "brand_name": "A", "repeats": 4}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let id = r.json::<Value>().await.unwrap()["batch_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let url = format!("{}/api/batches/{id}", child.base);
        wait_for(
            "two items done on the doomed instance",
            Duration::from_secs(20),
            || {
                let f = client.get(&url).send();
                async move {
                    f.await.unwrap().json::<Value>().await.unwrap()["done"]
                        .as_i64()
                        .unwrap()
                        >= 2
                }
            },
        )
        .await;
        // kill -9: no graceful release; items it ran stay claimed.
        child.child.kill().unwrap();
        child.child.wait().unwrap();

        // What the dead instance stored, read before anyone else works.
        let store = prompter_storage::Store::connect(test_db.url(), &Default::default())
            .await
            .unwrap();
        let at_kill = store
            .get_batch(&prompter_storage::Scope::Unrestricted, id.parse().unwrap())
            .await
            .unwrap();
        store.close().await;
        let done_at_kill = at_kill.done;
        assert!((2..12).contains(&done_at_kill), "{at_kill:?}");
        let survivor = spawn_on(test_db.clone(), |a| {
            a.batch_poll_ms = 20;
            a.batch_lease_ms = 1500;
        })
        .await;
        let b = wait_finished(&survivor, &id, Duration::from_secs(30)).await;
        assert_eq!(b["status"], "done", "{b}");
        assert_eq!(b["done"], 12);
        let results = batch_results(&survivor, &tpl, &id).await;
        assert_eq!(results.len(), 12, "exactly one result per item");
        assert_eq!(
            survivor.stub.completion_count() as i64,
            12 - done_at_kill,
            "the survivor called the provider once per unfinished item"
        );
        survivor.stop().await;
    }
}

#[tokio::test]
async fn the_event_stream_reports_progress_then_done() {
    for db in backends() {
        let app = spawn_with(db, |a| {
            a.stub_latency_ms = 100;
            a.batch_concurrency = 1;
            a.batch_poll_ms = 20;
        })
        .await;
        let org = new_org();
        app.create(&tracker(&org)).await;
        let (_, b) = app
            .post(&batches_path(&org), &json!({"countries": ["US", "DE"], "variables": {"topic": "t"}, "brand_name": "A", "repeats": 2}))
            .await;
        let id = b["batch_id"].as_str().unwrap().to_owned();
        let a = app
            .send(
                app.client
                    .get(app.url(&format!("/api/batches/{id}/events"))),
            )
            .await;
        assert_eq!(a.status, 200);
        assert!(a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let progress: Vec<Value> = a
            .text
            .split("\n\n")
            .filter_map(|ev| ev.strip_prefix("event: progress\ndata: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert!(progress.len() >= 2, "{}", a.text);
        let dones: Vec<i64> = progress
            .iter()
            .map(|p| p["done"].as_i64().unwrap())
            .collect();
        assert!(dones.windows(2).all(|w| w[0] <= w[1]), "{dones:?}");
        assert!(a.text.contains("event: done\ndata: "), "{}", a.text);
        assert_eq!(progress.last().unwrap()["status"], "done");
        assert_eq!(progress.last().unwrap()["done"], 4);
        app.stop().await;
    }
}

#[tokio::test]
async fn the_cli_submits_follows_and_summarises_a_batch() {
    let app = spawn_with(Db::Sqlite, |a| {
        a.stub_latency_ms = 50;
        a.batch_concurrency = 2;
        a.batch_poll_ms = 20;
    })
    .await;
    let org = new_org();
    app.create(&tracker(&org)).await;
    let bin = env!("CARGO_BIN_EXE_prompter");
    let base = app.base.clone();
    let org2 = org.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args([
                "batch",
                "run",
                "--server",
                &base,
                "--workspace",
                "ws-1",
                "--org",
                &org2,
            ])
            .args([
                "--name",
                "tracker",
                "--label",
                "latest",
                "--countries",
                "US,DE",
            ])
            .args([
                "--repeats",
                "3",
                "--brand",
                "Acme",
                "--var",
                "topic=shoes",
                "--follow",
            ])
            .env_remove("PROMPTER_API_KEY")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(": 6 items"), "{stdout}");
    assert!(stdout.contains("done — 6 of 6 done, 0 failed"), "{stdout}");
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("US ") || l.starts_with("DE "))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(
        rows.iter()
            .all(|r| r.split_whitespace().nth(1) == Some("3")),
        "{rows:?}"
    );
    let id = stdout
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    let base = app.base.clone();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(["batch", "status", &id, "--server", &base])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(status.status.success());
    assert!(String::from_utf8_lossy(&status.stdout).contains("done — 6 of 6 done"));
    // Errors come back with their code.
    let base = app.base.clone();
    let bad = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args([
                "batch",
                "run",
                "--server",
                &base,
                "--workspace",
                "ws-1",
                "--org",
                &org,
            ])
            .args(["--name", "tracker"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("MISSING_VARIABLES"));
    app.stop().await;
}
