//! Budgets (issue 17) across two instances on one database: a budget set by
//! the operator (the store call `prompter budgets set` makes) applies to
//! running instances within a second, a spent budget answers 429
//! `BUDGET_EXCEEDED` before any provider call on either instance, and the
//! threshold event is sent once per month and scope.

use crate::helpers::*;
use prompter_api::auth::{create_key, KeySpec};
use prompter_api::caller::Role;
use prompter_api::security::AuthMode;
use prompter_storage::BudgetRecord;
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn budget(org: &str, usd_micros: i64, alert_permille: i64) -> BudgetRecord {
    BudgetRecord {
        org_id: org.into(),
        workspace_id: None,
        monthly_micros: usd_micros,
        alert_permille,
        updated_at: "2026-12-01T00:00:00Z".into(),
    }
}

async fn threshold_events(receiver: &MockServer) -> Vec<Value> {
    receiver
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|v| v["type"] == "budget.threshold")
        .collect()
}

#[tokio::test]
async fn budgets_refuse_runs_before_the_provider_on_every_instance_and_alert_once() {
    for db in backends() {
        let shared = fresh_db(db).await;
        let receiver = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hook"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&receiver)
            .await;
        let hook = format!("{}/hook", receiver.uri());
        let tweak = |a: &mut prompter_api::ServeArgs| {
            a.webhook_url = Some(hook.clone());
            a.webhook_poll_ms = 50;
        };
        let a1 = spawn_on(shared.clone(), tweak).await;
        let a2 = spawn_on(shared.clone(), tweak).await;
        let body = template_body("gpt-4o");
        let org = body["org_id"].as_str().unwrap().to_owned();
        let id = a1.create(&body).await;
        let run = format!("/api/prompt-templates/{id}/run");
        // Stub usage = word counts: 1003 in, 1000 out → 2507.5 + 10000 µ$ at gpt-4o prices.
        let prompt = json!({"rendered_prompt": "word ".repeat(1000)});

        // No budget yet: runs; both instances have read the (empty) budget table.
        let (s, v) = a1.post(&run, &prompt).await;
        assert_eq!(s, 200, "{v}");
        let cost = v["usage"]["cost_micros"].as_i64().unwrap();
        assert_eq!(cost, 12_508);
        let other = a2.create(&template_body("gpt-4o")).await;
        let (s, _) = a2
            .post(
                &format!("/api/prompt-templates/{other}/run"),
                &json!({"rendered_prompt": "x"}),
            )
            .await;
        assert_eq!(s, 200);

        // The operator sets 0.02 USD a month, alert at 50 %; instances see it within 1 s.
        a1.prompter
            .store()
            .set_budget(&budget(&org, 20_000, 500))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // 12508 < 20000: runs; the spend (25016) crosses the alert level and the limit.
        let (s, v) = a1.post(&run, &prompt).await;
        assert_eq!(s, 200, "{v}");
        // Spent: refused on both instances before any provider call.
        for app in [&a1, &a2] {
            let before = app.stub.completion_count();
            let (s, v) = app.post(&run, &prompt).await;
            assert_eq!(s, 429, "{v}");
            assert_eq!(v["detail"]["code"], "BUDGET_EXCEEDED");
            assert_eq!(app.stub.completion_count(), before, "no provider call");
        }
        // Tenants read it (auth off: every budget is visible).
        let (s, b) = a2.get("/api/budgets").await;
        assert_eq!(s, 200, "{b}");
        let mine = b["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["org_id"] == org.as_str())
            .unwrap()
            .clone();
        assert_eq!(mine["spent_micros"], 2 * cost);
        assert_eq!(mine["exceeded"], true);
        assert_eq!(mine["alert_at"], 0.5);

        // Raised: runs again; the alert level is crossed again but the
        // month's event was sent already.
        a2.prompter
            .store()
            .set_budget(&budget(&org, 1_000_000, 10))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (s, v) = a2.post(&run, &prompt).await;
        assert_eq!(s, 200, "{v}");

        for _ in 0..100 {
            if !threshold_events(&receiver).await.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Give the second instance's dispatcher time to send a duplicate, if any.
        tokio::time::sleep(Duration::from_millis(300)).await;
        // One event (one event_id); delivery is at least once, so two
        // instances' dispatchers may both deliver it: receivers dedupe by id.
        let events = threshold_events(&receiver).await;
        let ids: std::collections::BTreeSet<String> = events
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 1, "{events:?}");
        assert_eq!(events[0]["org_id"], org.as_str());
        assert_eq!(events[0]["spent_usd"], json!(0.025016));
        a1.stop().await;
        a2.stop().await;
    }
}

#[tokio::test]
async fn tenants_see_only_their_own_budgets() {
    let app = spawn_with(Db::Sqlite, |a| {
        a.security.auth = Some(AuthMode::Required);
    })
    .await;
    let store = app.prompter.store();
    store
        .set_budget(&budget("org-a", 5_000_000, 800))
        .await
        .unwrap();
    store
        .set_budget(&budget("org-b", 7_000_000, 800))
        .await
        .unwrap();
    let key = create_key(
        store,
        KeySpec {
            org_id: "org-a",
            workspace_id: None,
            role: Role::Read,
            name: None,
            expires_at: None,
        },
    )
    .await
    .unwrap()
    .0
    .key;
    let a = app
        .send(app.client.get(app.url("/api/budgets")).bearer_auth(&key))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let items = a.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", a.body);
    assert_eq!(items[0]["org_id"], "org-a");
    assert_eq!(items[0]["monthly_usd"], 5.0);
    app.stop().await;
}

/// `prompter budgets …` (the binary, as the operator runs it).
fn budgets_cli(db_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prompter"))
        .arg("budgets")
        .args(args)
        .args(["--database-url", db_url])
        .env_remove("PROMPTER_DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_budget_set_by_the_cli_applies_to_a_running_instance_within_a_second() {
    for db in backends() {
        let shared = fresh_db(db).await;
        let app = spawn_on(shared.clone(), |_| {}).await;
        let body = template_body("gpt-4o");
        let org = body["org_id"].as_str().unwrap().to_owned();
        let id = app.create(&body).await;
        let run = format!("/api/prompt-templates/{id}/run");
        let prompt = json!({"rendered_prompt": "word ".repeat(10)});
        let (s, v) = app.post(&run, &prompt).await;
        assert_eq!(s, 200, "{v}");

        // One micro-dollar a month: the run above spent more.
        let (ok, out, err) = budgets_cli(
            shared.url(),
            &[
                "set",
                "--org",
                &org,
                "--monthly-usd",
                "0.000001",
                "--alert-at",
                "0.5",
            ],
        );
        assert!(ok, "{err}");
        assert!(out.starts_with("budget set: "), "{out}");
        let (ok, out, err) = budgets_cli(shared.url(), &["list", "--org", &org]);
        assert!(ok, "{err}");
        assert!(
            out.starts_with(&format!("{org}\t-\t0.00\t0.500\t")),
            "{out}"
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let before = app.stub.completion_count();
        let (s, v) = app.post(&run, &prompt).await;
        assert_eq!(s, 429, "{v}");
        assert_eq!(v["detail"]["code"], "BUDGET_EXCEEDED");
        assert_eq!(app.stub.completion_count(), before, "no provider call");

        // Deleted by the CLI: runs again within a second.
        let (ok, _, err) = budgets_cli(shared.url(), &["delete", "--org", &org]);
        assert!(ok, "{err}");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (s, v) = app.post(&run, &prompt).await;
        assert_eq!(s, 200, "{v}");
        // Deleting again is an error naming the org.
        let (ok, _, err) = budgets_cli(shared.url(), &["delete", "--org", &org]);
        assert!(!ok);
        assert!(err.contains(&org), "{err}");
        app.stop().await;
    }
}

#[tokio::test]
async fn no_api_key_can_change_a_budget() {
    let app = spawn_with(Db::Sqlite, |a| {
        a.security.auth = Some(AuthMode::Required);
    })
    .await;
    let store = app.prompter.store();
    let key = create_key(
        store,
        KeySpec {
            org_id: "org-a",
            workspace_id: None,
            role: Role::Admin,
            name: None,
            expires_at: None,
        },
    )
    .await
    .unwrap()
    .0
    .key;
    let body = json!({"org_id": "org-a", "monthly_usd": 1e9, "alert_at": 0.8});
    for req in [
        app.client.post(app.url("/api/budgets")).json(&body),
        app.client.put(app.url("/api/budgets")).json(&body),
        app.client.delete(app.url("/api/budgets")),
    ] {
        let r = app.send(req.bearer_auth(&key)).await;
        assert_eq!(r.status, 405, "{}", r.body);
    }
    app.stop().await;
}
