//! Schedules (issue 18): one batch per tick with two instances polling one
//! database; a label resolved at each tick; a schedule whose key is revoked
//! pauses instead of spending.

use crate::helpers::*;
use prompter_api::auth::{create_key, KeySpec};
use prompter_api::caller::Role;
use prompter_api::security::AuthMode;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

fn tracker(org: &str, system: &str) -> Value {
    json!({
        "org_id": org,
        "workspace_id": "ws-1",
        "name": "tracker",
        "model_id": "gpt-4o",
        "system_instructions": system,
        "user_prompt_template": "Best {{topic}} in {{country}} for {{brand}}?",
        "country_set": ["us", "de"],
    })
}

fn schedule_body(org: &str, label: &str) -> Value {
    json!({
        "cron": "* * * * * *",
        "prompt": "tracker",
        "label": label,
        "org_id": org,
        "workspace_id": "ws-1",
        "batch": {"variables": {"topic": "t"}, "brand_name": "Acme"},
    })
}

async fn schedule_batches(app: &TestApp, id: &str) -> Vec<Value> {
    let (s, b) = app
        .get(&format!("/api/batches?schedule_id={id}&limit=1000"))
        .await;
    assert_eq!(s, 200, "{b}");
    b["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_schedule_ticking_every_second_makes_one_batch_per_tick_on_two_instances() {
    for db in backends() {
        let test_db = fresh_db(db).await;
        let tweak = |a: &mut prompter_api::ServeArgs| {
            a.schedule_poll_ms = 50;
            a.batch_poll_ms = 20;
        };
        let a = spawn_on(test_db.clone(), tweak).await;
        // SQLite: one process per file; PostgreSQL: two instances tick.
        let b = match db {
            Db::Postgres => Some(spawn_on(test_db.clone(), tweak).await),
            Db::Sqlite => None,
        };
        let org = format!("org-{}", uuid::Uuid::new_v4());
        a.create(&tracker(&org, "S")).await;
        let (s, sch) = a
            .post("/api/schedules", &schedule_body(&org, "latest"))
            .await;
        assert_eq!(s, 201, "{sch}");
        let id = sch["id"].as_str().unwrap().to_owned();
        assert_eq!(sch["status"], "active");
        tokio::time::sleep(Duration::from_millis(4200)).await;
        let del = a
            .send(a.client.delete(a.url(&format!("/api/schedules/{id}"))))
            .await;
        assert_eq!(del.status, 204);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let batches = schedule_batches(&a, &id).await;
        let ticks: Vec<&str> = batches
            .iter()
            .map(|b| b["spec"]["scheduled_for"].as_str().unwrap())
            .collect();
        let distinct: HashSet<&&str> = ticks.iter().collect();
        assert_eq!(distinct.len(), ticks.len(), "one batch per tick: {ticks:?}");
        assert!((3..=6).contains(&ticks.len()), "{ticks:?}");
        for t in &ticks {
            assert!(
                t.contains(":") && t.ends_with(".000000Z"),
                "ticks fall on whole seconds: {t}"
            );
        }
        let (s, _) = a.get(&format!("/api/schedules/{id}")).await;
        assert_eq!(s, 404, "deleted");
        a.stop().await;
        if let Some(b) = b {
            b.stop().await;
        }
    }
}

#[tokio::test]
async fn a_label_is_resolved_at_each_tick_and_a_schedule_shows_its_runs() {
    for db in backends() {
        let app = spawn_with(db, |a| {
            a.schedule_poll_ms = 50;
            a.batch_poll_ms = 20;
        })
        .await;
        let org = format!("org-{}", uuid::Uuid::new_v4());
        app.create(&tracker(&org, "first")).await;
        let label =
            format!("/api/prompts/tracker/labels/production?org_id={org}&workspace_id=ws-1");
        let put = |rev: i64| {
            send(
                app.client
                    .put(app.url(&label))
                    .json(&json!({"revision": rev, "force": true})),
            )
        };
        assert_eq!(put(1).await.status, 200);
        let (s, sch) = app
            .post("/api/schedules", &schedule_body(&org, "production"))
            .await;
        assert_eq!(s, 201, "{sch}");
        let id = sch["id"].as_str().unwrap().to_owned();
        crate::harness::wait_for("a batch of revision 1", Duration::from_secs(10), || async {
            schedule_batches(&app, &id)
                .await
                .iter()
                .any(|b| b["revision"] == 1)
        })
        .await;
        app.create(&tracker(&org, "second")).await;
        assert_eq!(put(2).await.status, 200);
        crate::harness::wait_for("a batch of revision 2", Duration::from_secs(10), || async {
            schedule_batches(&app, &id)
                .await
                .iter()
                .any(|b| b["revision"] == 2)
        })
        .await;
        let (s, v) = app.get(&format!("/api/schedules/{id}")).await;
        assert_eq!(s, 200, "{v}");
        assert!(
            v["last_run_at"].is_string() && v["last_batch_id"].is_string(),
            "{v}"
        );
        assert!(v["next_run_at"].as_str().unwrap() > v["last_run_at"].as_str().unwrap());
        assert_eq!(v["batches"], format!("/api/batches?schedule_id={id}"));
        let batches = schedule_batches(&app, &id).await;
        assert!(batches
            .iter()
            .all(|b| b["label"] == "production" && b["schedule_id"] == id.as_str()));
        // Every scheduled batch runs.
        let last = batches[0]["id"].as_str().unwrap().to_owned();
        crate::harness::wait_for(
            "the latest scheduled batch to finish",
            Duration::from_secs(10),
            || async {
                let (_, b) = app.get(&format!("/api/batches/{last}")).await;
                b["status"] == "done"
            },
        )
        .await;
        // Bad specs and expressions are refused at creation.
        let mut bad = schedule_body(&org, "production");
        bad["cron"] = json!("every day");
        let (s, b) = app.post("/api/schedules", &bad).await;
        assert_eq!(
            (s, b["detail"]["code"].as_str()),
            (422, Some("INVALID_CRON")),
            "{b}"
        );
        let mut bad = schedule_body(&org, "production");
        bad["batch"] = json!({"brand_name": "x"});
        let (s, b) = app.post("/api/schedules", &bad).await;
        assert_eq!(
            (s, b["detail"]["code"].as_str()),
            (422, Some("MISSING_VARIABLES")),
            "{b}"
        );
        let (s, l) = app.get("/api/schedules").await;
        assert_eq!(s, 200);
        assert_eq!(l["items"].as_array().unwrap().len(), 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn a_schedule_whose_key_is_revoked_pauses_instead_of_spending() {
    for db in backends() {
        let app = spawn_with(db, |a| {
            a.security.auth = Some(AuthMode::Required);
            a.security.auth_cache_ttl_ms = 100;
            a.schedule_poll_ms = 50;
            a.batch_poll_ms = 20;
        })
        .await;
        let org = format!("org-{}", uuid::Uuid::new_v4());
        let spec = |role| KeySpec {
            org_id: &org,
            workspace_id: Some("ws-1"),
            role,
            name: None,
            expires_at: None,
        };
        let store = app.prompter.store();
        let (writer, _) = create_key(store, spec(Role::Write)).await.unwrap();
        let (reader, _) = create_key(store, spec(Role::Read)).await.unwrap();
        let post = |path: &str, body: Value| {
            send(
                app.client
                    .post(app.url(path))
                    .bearer_auth(&writer.key)
                    .json(&body),
            )
        };
        let created = post("/api/prompt-templates", tracker(&org, "S")).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let mut body = schedule_body(&org, "latest");
        body.as_object_mut().unwrap().remove("org_id");
        body.as_object_mut().unwrap().remove("workspace_id");
        let sch = post("/api/schedules", body).await;
        assert_eq!(sch.status, 201, "{}", sch.body);
        assert_eq!(sch.body["created_by"], writer.prefix.as_str());
        let id = sch.body["id"].as_str().unwrap().to_owned();
        let get = |path: String| send(app.client.get(app.url(&path)).bearer_auth(&reader.key));
        crate::harness::wait_for("a first batch", Duration::from_secs(10), || async {
            let a = get(format!("/api/batches?schedule_id={id}")).await;
            !a.body["items"].as_array().unwrap().is_empty()
        })
        .await;
        store.revoke_api_key(&writer.prefix).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let v = get(format!("/api/schedules/{id}")).await;
        assert_eq!(v.status, 200, "{}", v.body);
        assert_eq!(v.body["status"], "paused", "{}", v.body);
        assert_eq!(v.body["paused_reason"], "api_key_revoked");
        let before = get(format!("/api/batches?schedule_id={id}&limit=1000"))
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .len();
        tokio::time::sleep(Duration::from_millis(2200)).await;
        let after = get(format!("/api/batches?schedule_id={id}&limit=1000"))
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(before, after, "a paused schedule makes no batch");
        app.stop().await;
    }
}

#[tokio::test]
async fn ticks_missed_while_every_instance_was_down_run_once_at_start_up() {
    for db in backends() {
        let test_db = fresh_db(db).await;
        let tweak = |a: &mut prompter_api::ServeArgs| {
            a.schedule_poll_ms = 50;
            a.batch_poll_ms = 20;
        };
        let a = spawn_on(test_db.clone(), tweak).await;
        let org = format!("org-{}", uuid::Uuid::new_v4());
        a.create(&tracker(&org, "S")).await;
        let (s, sch) = a
            .post("/api/schedules", &schedule_body(&org, "latest"))
            .await;
        assert_eq!(s, 201, "{sch}");
        let id = sch["id"].as_str().unwrap().to_owned();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        a.stop().await;
        let before = {
            let b = spawn_on(test_db.clone(), |a| a.schedule_poll_ms = 3_600_000).await;
            let n = schedule_batches(&b, &id).await.len();
            b.stop().await;
            n
        };
        assert!(before >= 1, "ticked while up");
        // Everything down for four ticks, then one instance starts.
        tokio::time::sleep(Duration::from_millis(4000)).await;
        let c = spawn_on(test_db.clone(), tweak).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let after = schedule_batches(&c, &id).await.len();
        c.stop().await;
        assert!(
            (before + 1..=before + 2).contains(&after),
            "{db:?}: the missed ticks ran once (plus at most the tick now due), not once each: {before} → {after}"
        );
    }
}
