//! Beyond V7: lifecycle, history, drift events + webhook, diff, idempotent runs.

use crate::helpers::*;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn lifecycle_list_get_delete_restore() {
    for db in backends() {
        let app = spawn(db).await;
        let org = format!("org-{}", uuid::Uuid::new_v4());
        let mut made = Vec::new();
        for i in 0..3 {
            let mut b = template_body("gpt-4o");
            b["org_id"] = json!(org);
            b["user_prompt_template"] = json!(format!("prompt {i}"));
            made.push(app.create(&b).await);
        }
        // Newest first, paginated by an opaque cursor.
        let (s, p1) = app
            .get(&format!(
                "/api/prompt-templates?org_id={org}&workspace_id=ws-1&limit=2"
            ))
            .await;
        assert_eq!(s, 200, "{db:?} {p1}");
        assert_eq!(ids(&p1), vec![made[2].clone(), made[1].clone()]);
        let cursor = p1["next_cursor"].as_str().expect("a next page").to_owned();
        let (_, p2) = app
            .get(&format!(
                "/api/prompt-templates?org_id={org}&workspace_id=ws-1&limit=2&cursor={cursor}"
            ))
            .await;
        assert_eq!(ids(&p2), vec![made[0].clone()]);
        assert!(p2["next_cursor"].is_null());
        let (s, e) = app.get("/api/prompt-templates?cursor=not-a-cursor").await;
        assert_eq!(s, 400, "{e}");
        assert_eq!(e["detail"]["code"], "INVALID_CURSOR");
        let (s, _) = app.get("/api/prompt-templates?limit=abc").await;
        assert_eq!(s, 400);

        // Full view.
        let (s, t) = app.get(&format!("/api/prompt-templates/{}", made[0])).await;
        assert_eq!(s, 200);
        assert_eq!(t["user_prompt_template"], "prompt 0");
        assert_eq!(t["country_set"], json!(["uk", "de"]), "config as given");
        assert!(t["config_canonical_json"]
            .as_str()
            .unwrap()
            .contains("\"country_set\":[\"DE\",\"GB\"]"));
        assert!(t["deleted_at"].is_null());
        assert!(t["created_at"].as_str().unwrap().ends_with('Z'));

        // Delete frees the hash; list hides it unless asked.
        let res = app
            .send(
                app.client
                    .delete(app.url(&format!("/api/prompt-templates/{}", made[0]))),
            )
            .await;
        assert_eq!(res.status, 204);
        let (_, l) = app
            .get(&format!("/api/prompt-templates?org_id={org}"))
            .await;
        assert_eq!(ids(&l).len(), 2);
        let (_, l) = app
            .get(&format!(
                "/api/prompt-templates?org_id={org}&include_deleted=true"
            ))
            .await;
        assert_eq!(ids(&l).len(), 3);
        let (_, t) = app.get(&format!("/api/prompt-templates/{}", made[0])).await;
        assert!(t["deleted_at"].is_string());
        let mut again = template_body("gpt-4o");
        again["org_id"] = json!(org);
        again["user_prompt_template"] = json!("prompt 0");
        let twin = app.create(&again).await;

        // Restore into a collision names the active twin.
        let (s, e) = app
            .post(
                &format!("/api/prompt-templates/{}/restore", made[0]),
                &json!({}),
            )
            .await;
        assert_eq!(s, 409, "{e}");
        assert_eq!(e["detail"]["code"], "TEMPLATE_EXISTS");
        assert_eq!(e["detail"]["template_id"], json!(twin));
        app.send(
            app.client
                .delete(app.url(&format!("/api/prompt-templates/{twin}"))),
        )
        .await;
        let (s, t) = app
            .post(
                &format!("/api/prompt-templates/{}/restore", made[0]),
                &json!({}),
            )
            .await;
        assert_eq!(s, 200, "{t}");
        assert!(t["deleted_at"].is_null());
        let (s, _) = app
            .get(&format!("/api/prompt-templates/{}", uuid::Uuid::new_v4()))
            .await;
        assert_eq!(s, 404);
        app.stop().await;
    }
}

#[tokio::test]
async fn versions_results_and_result_detail() {
    for db in backends() {
        let app = spawn(db).await;
        let id = app.create(&template_body("gemini-1.5-pro")).await;
        for country in ["GB", "DE", "GB"] {
            let (s, _) = app
                .post(
                    &format!("/api/prompt-templates/{id}/run"),
                    &json!({"rendered_prompt": "hi", "country": country}),
                )
                .await;
            assert_eq!(s, 200);
        }
        let (s, v) = app
            .get(&format!("/api/prompt-templates/{id}/versions"))
            .await;
        assert_eq!(s, 200, "{v}");
        let items = v["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["provider_version_key"], "gemini-1.5-pro-stub-001");
        for k in [
            "version_id",
            "provider",
            "model_id",
            "first_seen_at",
            "last_seen_at",
            "fingerprint_captured_at",
        ] {
            assert!(items[0].get(k).is_some(), "missing {k}");
        }
        let vid = items[0]["version_id"].as_str().unwrap().to_owned();

        let (_, r) = app
            .get(&format!("/api/prompt-templates/{id}/results?country=GB"))
            .await;
        let rs = r["items"].as_array().unwrap();
        assert_eq!(rs.len(), 2);
        assert!(
            rs[0]["created_at"].as_str() >= rs[1]["created_at"].as_str(),
            "newest first"
        );
        let (_, r) = app
            .get(&format!(
                "/api/prompt-templates/{id}/results?version_id={vid}&limit=1"
            ))
            .await;
        assert_eq!(r["items"].as_array().unwrap().len(), 1);
        assert!(r["next_cursor"].is_string());
        let (_, r) = app
            .get(&format!(
                "/api/prompt-templates/{id}/results?since=2999-01-01T00:00:00Z"
            ))
            .await;
        assert!(r["items"].as_array().unwrap().is_empty());

        let rid = rs[0]["result_id"].as_str().unwrap();
        let (s, d) = app
            .get(&format!("/api/prompt-templates/results/{rid}"))
            .await;
        assert_eq!(s, 200);
        assert_eq!(d["result_id"], json!(rid));
        assert_eq!(d["request"]["messages"][1]["content"], "hi");
        assert_eq!(d["response"]["content"], "hi");
        assert_eq!(d["analysis_config"]["analysis_scope"], "brand");
        let (s, e) = app
            .get(&format!(
                "/api/prompt-templates/results/{}",
                uuid::Uuid::new_v4()
            ))
            .await;
        assert_eq!(
            (s, e["detail"]["code"].clone()),
            (404, json!("RESULT_NOT_FOUND"))
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn config_diff_names_the_differing_paths() {
    let app = spawn(Db::Sqlite).await;
    let a = template_body("gpt-4o");
    let mut b = a.clone();
    b["inference_params"] = json!({"temperature": 0.2});
    b["name"] = json!("other name is not config");
    let ia = app.create(&a).await;
    let ib = app.create(&b).await;
    let (s, d) = app
        .get(&format!("/api/prompt-templates/{ia}/diff/{ib}"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        d,
        json!({"differences": [{"path": "inference_params.temperature", "left": 0.7, "right": 0.2}]})
    );
    app.stop().await;
}

#[tokio::test]
async fn idempotent_runs_replay_and_refuse_reuse() {
    for db in backends() {
        let shared = fresh_db(db).await;
        let app = spawn_on(shared.clone(), |a| a.stub_latency_ms = 100).await;
        let id = app.create(&template_body("gpt-4o")).await;
        let url = app.url(&format!("/api/prompt-templates/{id}/run"));
        let body = json!({"rendered_prompt": "hello", "country": "GB"});
        let send = |key: &'static str, body: Value| {
            let client = app.client.clone();
            let url = url.clone();
            async move {
                let r = send(client.post(url).header("Idempotency-Key", key).json(&body)).await;
                let replayed = r.headers.get("idempotent-replayed").is_some();
                (r.status, replayed, r.body)
            }
        };
        // Concurrent requests with one key: one provider call, one result.
        let answers = futures::future::join_all((0..10).map(|_| send("k-1", body.clone()))).await;
        assert!(
            answers.iter().all(|(s, _, _)| *s == 200),
            "{db:?} {answers:?}"
        );
        let first = &answers[0].2["result_id"];
        assert!(answers.iter().all(|(_, _, v)| &v["result_id"] == first));
        assert_eq!(
            answers.iter().filter(|(_, r, _)| !r).count(),
            1,
            "one original, the rest replayed"
        );
        assert_eq!(app.stub.completion_count(), 1, "{db:?}");
        // Same key, different body.
        let (s, _, e) = send("k-1", json!({"rendered_prompt": "other"})).await;
        assert_eq!(s, 422);
        assert_eq!(e["detail"]["code"], "IDEMPOTENCY_KEY_REUSED");
        // Same body, formatting aside, after a restart on another instance.
        app.stop().await;
        let again = spawn_on(shared, |_| {}).await;
        let r = again
            .send(
                again
                    .client
                    .post(again.url(&format!("/api/prompt-templates/{id}/run")))
                    .header("Idempotency-Key", "k-1")
                    .header("content-type", "application/json")
                    .body("{ \"country\" : \"GB\",\n \"rendered_prompt\": \"hello\" }"),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers.get("idempotent-replayed").unwrap(), "true");
        let v: Value = r.body;
        assert_eq!(&v["result_id"], first);
        assert_eq!(again.stub.completion_count(), 0);
        let m = again.metrics().await;
        assert!(metric_sum(&m, "prompter_idempotent_replays_total", &[]) >= 1.0);
        again.stop().await;
    }
}

fn verify(secret: &str, body: &[u8], header: &str) -> bool {
    prompter_service::webhook::sign(secret, body) == header
}

#[tokio::test]
async fn drift_rotating_the_stub_build_makes_one_event_and_one_signed_webhook() {
    for db in backends() {
        let shared = fresh_db(db).await;
        let receiver = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hook"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&receiver)
            .await;
        let hook = format!("{}/hook", receiver.uri());

        let v1 = spawn_on(shared.clone(), |a| a.stub_build = Some("b1".into())).await;
        let body = template_body("gpt-4o");
        let org = body["org_id"].as_str().unwrap().to_owned();
        let id = v1.create(&body).await;
        let ens = format!("/api/prompt-templates/{id}/ensure-version");
        let (_, k1) = v1.post(&ens, &json!({"workspace_id": "ws-1"})).await;
        v1.stop().await;

        // The provider ships a new build: a restart with another tag.
        let v2 = spawn_on(shared.clone(), |a| {
            a.stub_build = Some("b2".into());
            a.webhook_url = Some(hook.clone());
            a.webhook_secret = "s3cret".into();
            a.webhook_poll_ms = 50;
        })
        .await;
        let (_, k2) = v2.post(&ens, &json!({"workspace_id": "ws-1"})).await;
        assert_ne!(k1["provider_version_key"], k2["provider_version_key"]);
        // A run with the same new key is not a second drift.
        v2.post(
            &format!("/api/prompt-templates/{id}/run"),
            &json!({"rendered_prompt": "x"}),
        )
        .await;
        let (s, d) = v2
            .get(&format!("/api/prompt-templates/drift?org_id={org}"))
            .await;
        assert_eq!(s, 200, "{d}");
        let events = d["items"].as_array().unwrap();
        assert_eq!(events.len(), 1, "{db:?} {d}");
        assert_eq!(events[0]["previous_key"], k1["provider_version_key"]);
        assert_eq!(events[0]["new_key"], k2["provider_version_key"]);
        assert_eq!(events[0]["template_id"], json!(id));
        let m = v2.metrics().await;
        assert!(
            metric_sum(
                &m,
                "prompter_version_drift_total",
                &[("provider", "openai")]
            ) >= 1.0
        );

        let mut delivered = Vec::new();
        for _ in 0..100 {
            delivered = receiver.received_requests().await.unwrap();
            if !delivered.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(delivered.len(), 1, "{db:?}: one delivery");
        let req = &delivered[0];
        let sig = req
            .headers
            .get("x-prompter-signature")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(verify("s3cret", &req.body, sig), "valid HMAC signature");
        // The timestamped signature verifies now, and not as a late replay.
        let header = |name: &str| req.headers.get(name).unwrap().to_str().unwrap();
        let (ts, tsig) = (
            header("x-prompter-timestamp"),
            header("x-prompter-signature-timestamped"),
        );
        let now = chrono::Utc::now().timestamp();
        use prompter_service::webhook::{verify_timestamped, VerifyError, DEFAULT_TOLERANCE};
        assert_eq!(
            verify_timestamped("s3cret", ts, tsig, &req.body, now, DEFAULT_TOLERANCE),
            Ok(())
        );
        assert_eq!(
            verify_timestamped("s3cret", ts, tsig, &req.body, now + 3600, DEFAULT_TOLERANCE),
            Err(VerifyError::Stale)
        );
        let payload: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(payload["event_id"], events[0]["event_id"]);
        v2.stop().await;
    }
}

#[tokio::test]
async fn drift_webhook_survives_a_restart_between_event_and_delivery() {
    let shared = fresh_db(Db::Sqlite).await;
    let v1 = spawn_on(shared.clone(), |a| a.stub_build = Some("b1".into())).await;
    let id = v1.create(&template_body("claude-3-5-sonnet")).await;
    let ens = format!("/api/prompt-templates/{id}/ensure-version");
    v1.post(&ens, &json!({"workspace_id": "ws-1"})).await;
    v1.stop().await;

    // Receiver down while the drift is found: the outbox keeps it.
    let down = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&down)
        .await;
    let v2 = spawn_on(shared.clone(), |a| {
        a.stub_build = Some("b2".into());
        a.webhook_url = Some(format!("{}/hook", down.uri()));
        a.webhook_poll_ms = 50;
    })
    .await;
    let (s, _) = v2.post(&ens, &json!({"workspace_id": "ws-1"})).await;
    assert_eq!(
        s, 200,
        "the run that finds the drift is not slowed or failed by delivery"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    v2.stop().await;
    assert!(
        !down.received_requests().await.unwrap().is_empty(),
        "a delivery was attempted"
    );

    // After a restart, with the receiver back, the event is delivered.
    let up = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&up)
        .await;
    // The retry is scheduled with backoff (1 s after the first failure).
    let v3 = spawn_on(shared, |a| {
        a.stub_build = Some("b2".into());
        a.webhook_url = Some(format!("{}/hook", up.uri()));
        a.webhook_poll_ms = 50;
    })
    .await;
    let mut got = Vec::new();
    for _ in 0..100 {
        got = up.received_requests().await.unwrap();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(got.len(), 1, "delivered exactly once after the restart");
    let (_, d) = v3.get("/api/prompt-templates/drift").await;
    assert_eq!(d["items"].as_array().unwrap().len(), 1);
    v3.stop().await;
}
