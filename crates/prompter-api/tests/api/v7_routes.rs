//! V7's tests and rollout checks, re-expressed against the real server.

use crate::helpers::*;
use serde_json::{json, Value};

#[tokio::test]
async fn create_then_duplicate_is_409_template_exists() {
    for db in backends() {
        let app = spawn(db).await;
        let body = template_body("gpt-4o");
        let (s1, v1) = app.post("/api/prompt-templates", &body).await;
        assert_eq!(s1, 201, "{db:?} {v1}");
        for key in [
            "id",
            "org_id",
            "workspace_id",
            "name",
            "provider",
            "model_id",
            "config_hash",
        ] {
            assert!(v1.get(key).is_some(), "{db:?} missing {key} in {v1}");
        }
        assert_eq!(v1["provider"], "openai");
        assert_eq!(v1["config_hash"].as_str().unwrap().len(), 64);
        let (s2, v2) = app.post("/api/prompt-templates", &body).await;
        assert_eq!(s2, 409, "{db:?} {v2}");
        assert_eq!(v2["detail"]["code"], "TEMPLATE_EXISTS");
        assert_eq!(v2["detail"]["template_id"], v1["id"]);
        assert!(v2["detail"]["message"].is_string());
        assert_eq!(v2["detail"]["name"], "greeting");
        let metrics = app.metrics().await;
        assert!(
            metric_sum(
                &metrics,
                "prompter_db_unique_violation_total",
                &[("table", "prompt_templates")]
            ) >= 1.0,
            "409 must count a unique violation"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn same_config_in_another_workspace_is_created() {
    for db in backends() {
        let app = spawn(db).await;
        let body = template_body("gpt-4o");
        app.create(&body).await;
        let mut other = body.clone();
        other["workspace_id"] = json!("ws-2");
        let (s, v) = app.post("/api/prompt-templates", &other).await;
        assert_eq!(s, 201, "{db:?} {v}");
        app.stop().await;
    }
}

#[tokio::test]
async fn whitespace_key_order_and_country_order_variants_hash_the_same() {
    for db in backends() {
        let app = spawn(db).await;
        let body = template_body("gpt-4o");
        let id = app.create(&body).await;
        let variant = json!({
            "inference_params": {"temperature": 0.70001},
            "country_set": [" DE", "gb", "uk"],
            "user_prompt_template": "  Say   hello\tto {{brand}}\r\n",
            "system_instructions": "You are terse.  ",
            "model_id": "gpt-4o",
            "name": "another name",
            "workspace_id": "ws-1",
            "org_id": body["org_id"],
        });
        let (s, v) = app.post("/api/prompt-templates", &variant).await;
        assert_eq!(s, 409, "{db:?} {v}");
        assert_eq!(v["detail"]["template_id"], json!(id));
        let (s, v) = app
            .post("/api/prompt-templates/check-duplicate", &variant)
            .await;
        assert_eq!(s, 200);
        assert_eq!(v["exact_match"], true);
        assert_eq!(v["template_id"], json!(id));
        app.stop().await;
    }
}

#[tokio::test]
async fn check_duplicate_true_false_and_scoped() {
    for db in backends() {
        let app = spawn(db).await;
        let body = template_body("claude-3-5-sonnet");
        let (s, v) = app
            .post("/api/prompt-templates/check-duplicate", &body)
            .await;
        assert_eq!(
            (s, v["exact_match"].clone(), v["template_id"].clone()),
            (200, json!(false), Value::Null)
        );
        let id = app.create(&body).await;
        let (_, v) = app
            .post("/api/prompt-templates/check-duplicate", &body)
            .await;
        assert_eq!(v["exact_match"], true);
        assert_eq!(v["template_id"], json!(id));
        assert_eq!(v["name"], "greeting");
        let mut other_ws = body.clone();
        other_ws["workspace_id"] = json!("ws-other");
        let (_, v) = app
            .post("/api/prompt-templates/check-duplicate", &other_ws)
            .await;
        assert_eq!(v["exact_match"], false, "another workspace must not see it");
        let mut other_org = body.clone();
        other_org["org_id"] = json!("org-other");
        let (_, v) = app
            .post("/api/prompt-templates/check-duplicate", &other_org)
            .await;
        assert_eq!(v["exact_match"], false, "another org must not see it");
        app.stop().await;
    }
}

#[tokio::test]
async fn ensure_version_is_idempotent_and_reports_the_stub_key() {
    for db in backends() {
        let app = spawn(db).await;
        let id = app.create(&template_body("gpt-4o")).await;
        let path = format!("/api/prompt-templates/{id}/ensure-version");
        let (s1, v1) = app.post(&path, &json!({"workspace_id": "ws-1"})).await;
        assert_eq!(s1, 200, "{db:?} {v1}");
        let expected = format!("fp_stub_{}", prompter_domain::hash8("openai:gpt-4o"));
        assert_eq!(v1["provider_version_key"], json!(expected));
        assert_eq!(v1["provider"], "openai");
        assert!(v1["captured_at"].is_string());
        let (s2, v2) = app.post(&path, &json!({"workspace_id": "ws-1"})).await;
        assert_eq!(s2, 200);
        assert_eq!(v2["version_id"], v1["version_id"]);
        assert_eq!(
            app.stub.probe_count(),
            1,
            "the second call reuses the window's probe"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn run_per_provider_returns_the_right_key_and_stores_everything() {
    type ExpectedKey = Box<dyn Fn(&str) -> String>;
    let cases: [(&str, ExpectedKey); 4] = [
        (
            "gpt-4o",
            Box::new(|m| format!("fp_stub_{}", prompter_domain::hash8(&format!("openai:{m}")))),
        ),
        ("gemini-1.5-pro", Box::new(|m| format!("{m}-stub-001"))),
        ("claude-3-5-sonnet", Box::new(|m| m.to_owned())),
        // Azure's completion carries no key: the run probes (guarded) for it.
        (
            "azure-gpt-4o",
            Box::new(|m| {
                format!(
                    "fp_stub_azure_{}",
                    prompter_domain::hash8(&format!("azure:{m}"))
                )
            }),
        ),
    ];
    for db in backends() {
        let app = spawn(db).await;
        let mut runs = Vec::new();
        for (model, expected) in &cases {
            let id = app.create(&template_body(model)).await;
            let (s, v) = app
                .post(
                    &format!("/api/prompt-templates/{id}/run"),
                    &json!({"rendered_prompt": "Say hello to Acme", "brand_name": "Acme", "country": "GB"}),
                )
                .await;
            assert_eq!(s, 200, "{db:?} {model}: {v}");
            assert_eq!(
                v["provider_version_key"],
                json!(expected(model)),
                "{db:?} {model}"
            );
            for key in [
                "result_id",
                "version_id",
                "system_fingerprint",
                "created_at",
            ] {
                assert!(v.get(key).is_some(), "{model}: missing {key}");
            }
            // Full request and response are stored.
            let rid: uuid::Uuid = v["result_id"].as_str().unwrap().parse().unwrap();
            let rec = app
                .prompter
                .store()
                .get_result(&prompter_storage::Scope::Unrestricted, rid)
                .await
                .unwrap();
            assert_eq!(rec.request["model"], json!(model));
            assert_eq!(rec.request["messages"][0]["role"], "system");
            assert_eq!(rec.request["messages"][0]["content"], "You are terse.");
            assert_eq!(rec.request["messages"][1]["content"], "Say hello to Acme");
            assert_eq!(rec.request["countries"], json!(["GB"]));
            assert_eq!(rec.response["content"], "Say hello to Acme");
            assert_eq!(rec.analysis_config["analysis_scope"], "brand");
            runs.push((id, v));
        }
        // Runs never probe when the response names the build: only azure probed.
        assert_eq!(app.stub.probe_count(), 1, "{db:?}");
        for (id, v) in &runs {
            // The version row's key equals the result's key (rollout check).
            let (_, ev) = app
                .post(
                    &format!("/api/prompt-templates/{id}/ensure-version"),
                    &json!({"workspace_id": "ws-1"}),
                )
                .await;
            assert_eq!(ev["provider_version_key"], v["provider_version_key"]);
            assert_eq!(ev["version_id"], v["version_id"]);
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn unknown_or_malformed_template_ids_are_404() {
    let app = spawn(Db::Sqlite).await;
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/api/prompt-templates/{unknown}/run"),
        "/api/prompt-templates/not-a-uuid/run".to_owned(),
    ] {
        let (s, v) = app.post(&path, &json!({"rendered_prompt": "x"})).await;
        assert_eq!(s, 404, "{path}: {v}");
        assert_eq!(v["detail"]["code"], "TEMPLATE_NOT_FOUND");
    }
    let (s, v) = app
        .post(
            &format!("/api/prompt-templates/{unknown}/ensure-version"),
            &json!({"workspace_id": "w"}),
        )
        .await;
    assert_eq!(s, 404, "{v}");
    // Wrong workspace in the body: the template is not visible there.
    let id = app.create(&template_body("gpt-4o")).await;
    let (s, _) = app
        .post(
            &format!("/api/prompt-templates/{id}/ensure-version"),
            &json!({"workspace_id": "elsewhere"}),
        )
        .await;
    assert_eq!(s, 404);
    app.stop().await;
}

#[tokio::test]
async fn fifty_parallel_identical_creates_make_one_template() {
    for db in backends() {
        let app = spawn(db).await;
        let body = template_body("gpt-4o");
        let futs = (0..50).map(|_| app.post("/api/prompt-templates", &body));
        let answers = futures::future::join_all(futs).await;
        let created: Vec<_> = answers.iter().filter(|(s, _)| *s == 201).collect();
        let conflicts: Vec<_> = answers.iter().filter(|(s, _)| *s == 409).collect();
        assert_eq!(created.len(), 1, "{db:?}: {answers:?}");
        assert_eq!(conflicts.len(), 49, "{db:?}: {answers:?}");
        let winner = &created[0].1["id"];
        assert!(conflicts
            .iter()
            .all(|(_, v)| &v["detail"]["template_id"] == winner));
        app.stop().await;
    }
}

#[tokio::test]
async fn health_and_ops_endpoints() {
    let app = spawn(Db::Sqlite).await;
    let (s, v) = app.get("/api/prompt-templates/health").await;
    assert_eq!((s, v), (200, json!({"status": "ok", "db": "sqlite"})));
    let (s, _) = app.get("/healthz").await;
    assert_eq!(s, 200);
    let (s, v) = app.get("/readyz").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["checks"]["database"], "ok");
    let (s, v) = app.get("/version").await;
    assert_eq!(s, 200);
    assert_eq!(v["hash_algorithm"], "blake3");
    let metrics = app.metrics().await;
    for name in [
        "prompter_http_requests_total",
        "prompter_redis_up",
        "prompter_prompt_results_insert_total",
        "prompter_provider_errors_total",
        "prompter_runs_total",
    ] {
        assert!(metrics.contains(name), "missing {name}");
    }
    assert!(metrics.contains("service=\"prompter\""), "global labels");
    assert!(
        metrics.contains("route=\"/api/prompt-templates/health\""),
        "route label is the matched pattern"
    );
    app.stop().await;
}

#[tokio::test]
async fn sha256_mode_reproduces_v7_hashes() {
    let app = spawn_with(Db::Sqlite, |a| a.hash_algorithm = Some("sha256".into())).await;
    let body = json!({"org_id": "o", "workspace_id": "w", "name": "n",
        "user_prompt_template": "Hi  {{brand}}\r\n", "model_id": "gpt-4o",
        "country_set": ["uk", "de"], "inference_params": {"temperature": 0.70001}});
    let (s, v) = app.post("/api/prompt-templates", &body).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v["config_hash"],
        "17330698efee5fa5ba6748539b2dcc2b73a60e4655a8ea8e7a98f85792ee559d"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_pinned_hash_algorithm_cannot_change_silently() {
    let db = fresh_db(Db::Sqlite).await;
    let first = spawn_on(db.clone(), |a| a.hash_algorithm = Some("sha256".into())).await;
    first.stop().await;
    let mut args = prompter_api::ServeArgs::defaults();
    args.bind = "127.0.0.1:0".parse().unwrap();
    args.database_url = Some(db.url().to_owned());
    args.hash_algorithm = Some("blake3".into());
    let err = prompter_api::Application::build(args)
        .await
        .expect_err("must refuse");
    let msg = err.to_string();
    assert!(msg.contains("sha256") && msg.contains("blake3"), "{msg}");
}
