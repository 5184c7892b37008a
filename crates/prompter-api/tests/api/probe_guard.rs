//! The probe guard really gates: one probe per template/provider/model and
//! window, within a process, across processes sharing Redis, and without Redis.

use crate::harness::{wait_for, PrivateRedis};
use crate::helpers::*;
use serde_json::json;
use std::time::Duration;

async fn burst(app: &TestApp, id: &str, n: usize) -> Vec<(u16, serde_json::Value)> {
    let path = format!("/api/prompt-templates/{id}/ensure-version");
    let body = json!({"workspace_id": "ws-1"});
    futures::future::join_all((0..n).map(|_| app.post(&path, &body))).await
}

#[tokio::test]
async fn fifty_parallel_ensure_versions_make_one_probe() {
    for db in backends() {
        // Slow probes make the calls overlap for real.
        let app = spawn_with(db, |a| a.stub_latency_ms = 200).await;
        let model = format!("gpt-4o-burst-{}", uuid::Uuid::new_v4().simple());
        let id = app.create(&template_body(&model)).await;
        let answers = burst(&app, &id, 50).await;
        assert!(
            answers.iter().all(|(s, _)| *s == 200),
            "{db:?}: {answers:?}"
        );
        let first = &answers[0].1["version_id"];
        assert!(answers.iter().all(|(_, v)| &v["version_id"] == first));
        assert_eq!(app.stub.probe_count(), 1, "{db:?}");
        let metrics = app.metrics().await;
        assert_eq!(
            metric_sum(
                &metrics,
                "prompter_probe_attempts_total",
                &[("model", &model)]
            ),
            1.0,
            "{db:?}: prompter_probe_attempts_total counts real probes only"
        );
        // Later calls in the window reuse the outcome.
        burst(&app, &id, 5).await;
        assert_eq!(app.stub.probe_count(), 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn two_instances_on_one_redis_make_one_probe() {
    let Some(redis) = redis_url() else { return };
    for db in backends() {
        let shared = fresh_db(db).await;
        let a = spawn_on(shared.clone(), |a| {
            a.redis_url = Some(redis.clone());
            a.stub_latency_ms = 200;
        })
        .await;
        let b = spawn_on(shared.clone(), |a| {
            a.redis_url = Some(redis.clone());
            a.stub_latency_ms = 200;
        })
        .await;
        let id = a.create(&template_body("gpt-4o")).await;
        let (ra, rb) = tokio::join!(burst(&a, &id, 25), burst(&b, &id, 25));
        assert!(
            ra.iter().chain(rb.iter()).all(|(s, _)| *s == 200),
            "{ra:?} {rb:?}"
        );
        assert_eq!(
            a.stub.probe_count() + b.stub.probe_count(),
            1,
            "{db:?}: one probe across both instances"
        );
        assert_eq!(ra[0].1["version_id"], rb[0].1["version_id"]);
        assert!(redis_up(&a), "the instance reports Redis up");
        a.stop().await;
        b.stop().await;
    }
}

/// This instance's view of Redis: the value it sets `prompter_redis_up` to.
/// (The gauge itself is process-global and shared by the servers of parallel
/// tests in this binary; `cargo xtask faults` checks the gauge in isolation.)
fn redis_up(app: &TestApp) -> bool {
    app.prompter.redis().is_some_and(|r| r.is_up())
}

#[tokio::test]
async fn redis_outage_causes_no_5xx_and_recovers() {
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let app = spawn_with(Db::Sqlite, |a| a.redis_url = Some(redis.url())).await;
    let id = app.create(&template_body("gpt-4o")).await;
    let answers = burst(&app, &id, 5).await;
    assert!(answers.iter().all(|(s, _)| *s == 200));
    assert!(redis_up(&app));

    redis.stop();
    // Under the outage: a new template probes once (in-process rule), no 5xx.
    let id2 = app.create(&template_body("gemini-1.5-pro")).await;
    let answers = burst(&app, &id2, 20).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    assert_eq!(app.stub.probe_count(), 2);
    let (s, _) = app
        .post(
            &format!("/api/prompt-templates/{id2}/run"),
            &json!({"rendered_prompt": "hi"}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(!redis_up(&app), "Redis reported down");
    let (s, _) = app.get("/readyz").await;
    assert_eq!(s, 503, "readiness reports the configured Redis down");

    // Redis returns: reported up again without a restart.
    redis.restart().await;
    wait_for(
        "Redis reported up again",
        Duration::from_secs(5),
        || async { redis_up(&app) },
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn probe_kill_switch_answers_from_the_latest_version() {
    let db = fresh_db(Db::Sqlite).await;
    let normal = spawn_on(db.clone(), |_| {}).await;
    let known = normal.create(&template_body("gpt-4o")).await;
    let (_, v) = normal
        .post(
            &format!("/api/prompt-templates/{known}/ensure-version"),
            &json!({"workspace_id": "ws-1"}),
        )
        .await;
    let unknown = normal.create(&template_body("claude-3-opus")).await;
    normal.stop().await;

    let off = spawn_on(db, |a| a.probe_disabled = true).await;
    let (s, v2) = off
        .post(
            &format!("/api/prompt-templates/{known}/ensure-version"),
            &json!({"workspace_id": "ws-1"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v2["version_id"], v["version_id"]);
    let (s, e) = off
        .post(
            &format!("/api/prompt-templates/{unknown}/ensure-version"),
            &json!({"workspace_id": "ws-1"}),
        )
        .await;
    assert_eq!(s, 503);
    assert_eq!(e["detail"]["code"], "PROBE_DISABLED_NO_VERSION");
    assert_eq!(off.stub.probe_count(), 0);
    off.stop().await;
}
