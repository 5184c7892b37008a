//! Prompt releases (issue 14) end to end, on SQLite and PostgreSQL: gapless
//! revisions under concurrent creates, fetch by label/revision with ETag and
//! 304, label moves (compare-and-set, contract check, force, history),
//! LABEL_IN_USE, render, run by label (idempotency across a label move),
//! V7's run rendering server-side, names that need percent-encoding, and
//! tenancy with API keys. Every answer is validated against /openapi.json.

use crate::helpers::*;
use prompter_api::auth::{create_key, KeySpec};
use prompter_api::caller::Role;
use prompter_api::security::AuthMode;
use serde_json::{json, Value};

/// Percent-encodes everything but unreserved characters (one path segment).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A prompt of a fresh org: its query string and name.
struct Prompt {
    org: String,
    name: String,
}

impl Prompt {
    fn new(name: &str) -> Prompt {
        Prompt {
            org: format!("org-{}", uuid::Uuid::new_v4()),
            name: name.to_owned(),
        }
    }

    fn q(&self) -> String {
        format!("org_id={}&workspace_id=ws-1", self.org)
    }

    /// `/api/prompts/{name}{tail}?{q}{extra}`.
    fn url(&self, tail: &str, extra: &str) -> String {
        let name = enc(&self.name);
        format!("/api/prompts/{name}{tail}?{}{extra}", self.q())
    }

    fn body(&self, user: &str, system: &str) -> Value {
        json!({
            "org_id": self.org, "workspace_id": "ws-1", "name": self.name,
            "model_id": "gpt-4o", "system_instructions": system,
            "user_prompt_template": user,
        })
    }
}

async fn put(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let a = app.send(app.client.put(app.url(path)).json(&body)).await;
    (a.status, a.body)
}

async fn delete(app: &TestApp, path: &str) -> (u16, Value) {
    let a = app.send(app.client.delete(app.url(path))).await;
    (a.status, a.body)
}

fn revisions(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["revision"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn concurrent_creates_get_gapless_revisions() {
    for db in backends() {
        let app = spawn(db).await;
        let p = Prompt::new("greeting");
        let creates = (0..20).map(|i| {
            let body = p.body(&format!("variant {i} for {{{{brand}}}}"), "");
            let app = &app;
            async move { app.post("/api/prompt-templates", &body).await }
        });
        let answers = futures::future::join_all(creates).await;
        for (s, v) in &answers {
            assert_eq!(*s, 201, "{db:?} {v}");
        }
        let (s, page) = app.get(&p.url("/revisions", "&limit=1000")).await;
        assert_eq!(s, 200, "{db:?} {page}");
        assert_eq!(
            revisions(&page),
            (1..=20).rev().collect::<Vec<i64>>(),
            "{db:?}"
        );

        // A create that loses to its twin takes no number; a deleted
        // template keeps its number.
        let (s, _) = app
            .post(
                "/api/prompt-templates",
                &p.body("variant 3 for {{brand}}", ""),
            )
            .await;
        assert_eq!(s, 409);
        let first = page["items"][19]["template_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, _) = delete(&app, &format!("/api/prompt-templates/{first}")).await;
        assert_eq!(s, 204);
        app.create(&p.body("one more", "")).await;
        let (_, page) = app.get(&p.url("/revisions", "&limit=2")).await;
        assert_eq!(revisions(&page), vec![21, 20]);
        let cursor = page["next_cursor"].as_str().unwrap();
        let (_, rest) = app
            .get(&p.url("/revisions", &format!("&limit=1000&cursor={cursor}")))
            .await;
        let last = rest["items"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            (last["revision"].as_i64(), last["deleted"].as_bool()),
            (Some(1), Some(true))
        );

        // Another name in the same workspace starts at 1.
        let other = Prompt {
            org: p.org.clone(),
            name: "other".into(),
        };
        app.create(&other.body("x", "")).await;
        let (_, list) = app.get(&format!("/api/prompts?{}", p.q())).await;
        let names: Vec<(&str, i64, i64)> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["name"].as_str().unwrap(),
                    i["revisions"].as_i64().unwrap(),
                    i["latest_revision"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(names, vec![("greeting", 21, 21), ("other", 1, 1)], "{db:?}");
        app.stop().await;
    }
}

#[tokio::test]
async fn fetch_by_label_or_revision_with_etag_and_304() {
    for db in backends() {
        let app = spawn_with(db, |a| a.prompt_max_age_secs = 30).await;
        let p = Prompt::new("support reply");
        let t1 = app.create(&p.body("Hi {{brand}}", "Be {{ tone }}.")).await;
        let t2 = app.create(&p.body("Hello {{brand}}", "")).await;

        // Neither label nor revision: latest.
        let a = app.send(app.client.get(app.url(&p.url("", "")))).await;
        assert_eq!(a.status, 200, "{db:?} {}", a.body);
        assert_eq!(a.body["id"], t2.as_str());
        assert_eq!(a.body["revision"], 2);
        assert_eq!(a.body["variables"], json!(["brand"]));
        assert_eq!(a.headers["cache-control"], "private, max-age=30");
        let a = app
            .send(app.client.get(app.url(&p.url("", "&revision=1"))))
            .await;
        assert_eq!(a.body["id"], t1.as_str());
        assert_eq!(a.body["variables"], json!(["tone", "brand"]));
        assert_eq!(a.body["user_prompt_template"], "Hi {{brand}}");
        let tag = a.headers["etag"].to_str().unwrap().to_owned();

        // A matching If-None-Match: 304 without a body.
        let a = app
            .send(
                app.client
                    .get(app.url(&p.url("", "&revision=1")))
                    .header("If-None-Match", format!("\"other\", {tag}")),
            )
            .await;
        assert_eq!(a.status, 304);
        assert!(a.text.is_empty());
        assert_eq!(a.headers["etag"].to_str().unwrap(), tag);

        // A label on the revision changes the ETag.
        let (s, v) = put(
            &app,
            &p.url("/labels/production", ""),
            json!({"revision": 1}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let a = app
            .send(
                app.client
                    .get(app.url(&p.url("", "&label=production")))
                    .header("If-None-Match", &tag),
            )
            .await;
        assert_eq!(a.status, 200);
        assert_eq!(a.body["labels"], json!(["production"]));
        assert_ne!(a.headers["etag"].to_str().unwrap(), tag);

        for (extra, code) in [
            ("&label=nope", "LABEL_NOT_FOUND"),
            ("&revision=9", "REVISION_NOT_FOUND"),
        ] {
            let (s, e) = app.get(&p.url("", extra)).await;
            assert_eq!((s, e["detail"]["code"].as_str()), (404, Some(code)), "{e}");
        }
        let (s, e) = app.get(&format!("/api/prompts/nobody?{}", p.q())).await;
        assert_eq!(
            (s, e["detail"]["code"].as_str()),
            (404, Some("PROMPT_NOT_FOUND"))
        );
        let (s, e) = app.get("/api/prompts/x").await;
        assert_eq!(s, 422, "org and workspace are required without a key: {e}");
        assert_eq!(e["detail"].as_array().unwrap().len(), 2);
        app.stop().await;
    }
}

#[tokio::test]
async fn label_moves_check_cas_and_contract_and_keep_history() {
    for db in backends() {
        let app = spawn(db).await;
        let p = Prompt::new("digest");
        let t1 = app.create(&p.body("Summarise {{topic}}", "")).await;
        app.create(&p.body("Summarise {{topic}} for {{audience}}", ""))
            .await;
        let t3 = app.create(&p.body("third {{topic}}", "")).await;
        let lbl = p.url("/labels/staging", "");

        let (s, v) = put(&app, &lbl, json!({"revision": 1, "expected_revision": 0})).await;
        assert_eq!(s, 200, "{db:?} {v}");
        assert_eq!(
            v,
            json!({"label": "staging", "revision": 1, "template_id": t1, "previous_revision": null})
        );
        // The target needs a new variable: refused unless forced.
        let (s, e) = put(&app, &lbl, json!({"revision": 2})).await;
        assert_eq!(s, 409, "{e}");
        assert_eq!(e["detail"]["code"], "VARIABLE_CONTRACT_CHANGED");
        assert_eq!(e["detail"]["added"], json!(["audience"]));
        let (s, v) = put(&app, &lbl, json!({"revision": 2, "force": true})).await;
        assert_eq!((s, v["previous_revision"].as_i64()), (200, Some(1)), "{v}");
        // Compare-and-set.
        let (s, e) = put(&app, &lbl, json!({"revision": 1, "expected_revision": 1})).await;
        assert_eq!(s, 409);
        assert_eq!(e["detail"]["code"], "LABEL_CONFLICT");
        assert_eq!(e["detail"]["current_revision"], 2);
        let (s, e) = put(&app, &lbl, json!({"revision": 1, "expected_revision": 0})).await;
        assert_eq!(
            (s, e["detail"]["code"].as_str()),
            (409, Some("LABEL_CONFLICT"))
        );
        // Names, latest, unknown and deleted revisions.
        for bad in ["latest", "Bad", "-x", "a b"] {
            let path = p.url(&format!("/labels/{}", enc(bad)), "");
            let (s, e) = put(&app, &path, json!({"revision": 1})).await;
            assert_eq!(s, 422, "{bad}: {e}");
        }
        let (s, e) = put(&app, &lbl, json!({"revision": 7})).await;
        assert_eq!(
            (s, e["detail"]["code"].as_str()),
            (404, Some("REVISION_NOT_FOUND"))
        );
        let (s, _) = delete(&app, &format!("/api/prompt-templates/{t3}")).await;
        assert_eq!(s, 204);
        let (s, e) = put(&app, &lbl, json!({"revision": 3})).await;
        assert_eq!(
            (s, e["detail"]["code"].as_str()),
            (404, Some("REVISION_NOT_FOUND"))
        );

        // A template a label points to cannot be deleted.
        let t2 = v["template_id"].as_str().unwrap().to_owned();
        let (s, e) = delete(&app, &format!("/api/prompt-templates/{t2}")).await;
        assert_eq!(s, 409);
        assert_eq!(e["detail"]["code"], "LABEL_IN_USE");
        assert_eq!(e["detail"]["labels"], json!(["staging"]));

        let (_, list) = app.get(&format!("/api/prompts?{}", p.q())).await;
        assert_eq!(list["items"][0]["labels"], json!({"staging": 2}));
        let (_, revs) = app.get(&p.url("/revisions", "")).await;
        assert_eq!(revs["items"][1]["labels"], json!(["staging"]));

        let (s, _) = delete(&app, &lbl).await;
        assert_eq!(s, 204);
        let (s, e) = delete(&app, &lbl).await;
        assert_eq!(
            (s, e["detail"]["code"].as_str()),
            (404, Some("LABEL_NOT_FOUND"))
        );
        let (s, h) = app.get(&p.url("/labels/staging/history", "")).await;
        assert_eq!(s, 200, "{h}");
        let moves: Vec<(Value, Value)> = h["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["revision"].clone(), i["previous_revision"].clone()))
            .collect();
        assert_eq!(
            moves,
            vec![
                (Value::Null, json!(2)),
                (json!(2), json!(1)),
                (json!(1), Value::Null)
            ]
        );
        assert!(h["items"][0]["moved_by"].is_null(), "auth is off");
        app.stop().await;
    }
}

#[tokio::test]
async fn concurrent_moves_with_the_same_expected_revision_one_wins() {
    for db in backends() {
        let app = spawn(db).await;
        let p = Prompt::new("race");
        for i in 0..3 {
            app.create(&p.body(&format!("v{i} {{{{x}}}}"), "")).await;
        }
        let lbl = p.url("/labels/canary", "");
        put(&app, &lbl, json!({"revision": 1})).await;
        for round in 0..5 {
            let (a, b) = tokio::join!(
                put(&app, &lbl, json!({"revision": 2, "expected_revision": 1})),
                put(&app, &lbl, json!({"revision": 3, "expected_revision": 1})),
            );
            let mut statuses = [a.0, b.0];
            statuses.sort();
            assert_eq!(statuses, [200, 409], "{db:?} round {round}: {a:?} {b:?}");
            put(&app, &lbl, json!({"revision": 1})).await;
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn concurrent_delete_and_label_move_never_leave_a_label_on_a_deleted_template() {
    for db in backends() {
        let app = spawn(db).await;
        let p = Prompt::new("contested");
        app.create(&p.body("one {{x}}", "")).await;
        let t2 = app.create(&p.body("two {{x}}", "")).await;
        let lbl = p.url("/labels/live", "");
        put(&app, &lbl, json!({"revision": 1})).await;
        let del = format!("/api/prompt-templates/{t2}");
        for round in 0..10 {
            let (d, m) = tokio::join!(
                delete(&app, &del),
                put(&app, &lbl, json!({"revision": 2, "expected_revision": 1})),
            );
            match (d.0, m.0) {
                // The delete first: the move finds the revision deleted.
                (204, 404) => {
                    assert_eq!(m.1["detail"]["code"], "REVISION_NOT_FOUND");
                    let (s, _) = app.post(&format!("{del}/restore"), &json!({})).await;
                    assert_eq!(s, 200);
                }
                // The move first: the delete is refused, naming the label.
                (409, 200) => {
                    assert_eq!(d.1["detail"]["code"], "LABEL_IN_USE");
                    assert_eq!(d.1["detail"]["labels"], json!(["live"]));
                    put(&app, &lbl, json!({"revision": 1})).await;
                }
                other => panic!("{db:?} round {round}: {other:?} {d:?} {m:?}"),
            }
            let (_, v) = app.get(&p.url("", "&label=live")).await;
            assert_eq!(v["revision"], 1, "{v}");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn render_and_run_by_label() {
    for db in backends() {
        let app = spawn(db).await;
        let p = Prompt::new("teaser");
        let t1 = app
            .create(&p.body("Tell {{ who }} about {{brand}}", ""))
            .await;
        app.create(&p.body("Pitch {{brand}} to {{who}}", "You sell {{brand}}."))
            .await;
        put(
            &app,
            &p.url("/labels/production", ""),
            json!({"revision": 1}),
        )
        .await;

        let (s, r) = app
            .post(
                &format!("/api/prompt-templates/{t1}/render"),
                &json!({"variables": {"who": "Ana", "brand": 7, "extra": true}}),
            )
            .await;
        assert_eq!(s, 200, "{db:?} {r}");
        assert_eq!(
            r,
            json!({"messages": [{"role": "user", "content": "Tell Ana about 7"}],
                   "variables": ["who", "brand"], "unused": ["extra"]})
        );
        let (s, r) = app
            .post(
                &p.url("/render", "&revision=2"),
                &json!({"variables": {"who": "Bo", "brand": "{{who}}"}}),
            )
            .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(
            r["messages"][0],
            json!({"role": "system", "content": "You sell {{who}}."})
        );
        let (s, e) = app
            .post(
                &p.url("/render", "&label=production"),
                &json!({"variables": {}}),
            )
            .await;
        assert_eq!(s, 422);
        assert_eq!(e["detail"]["code"], "MISSING_VARIABLES");
        assert_eq!(e["detail"]["missing"], json!(["who", "brand"]));
        let (s, e) = app
            .post(
                &p.url("/render", ""),
                &json!({"variables": {"who": [1], "brand": null}}),
            )
            .await;
        assert_eq!(
            (s, e["code"].as_str()),
            (422, Some("VALIDATION_FAILED")),
            "{e}"
        );
        assert_eq!(e["detail"].as_array().unwrap().len(), 2);

        // Run by label, idempotent across a label move.
        let run = p.url("/run", "&label=production");
        let body = json!({"variables": {"who": "Cy", "brand": "Acme"}, "country": "DE"});
        let first = app
            .send(
                app.client
                    .post(app.url(&run))
                    .header("Idempotency-Key", "k-1")
                    .json(&body),
            )
            .await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(first.body["revision"], 1);
        assert_eq!(first.body["label"], "production");
        assert_eq!(first.body["output"], "Tell Cy about Acme");
        // Usage is filled since issue 17 (stub: word counts).
        assert_eq!(first.body["usage"]["output_tokens"], 4);
        let result_id = first.body["result_id"].as_str().unwrap().to_owned();
        put(
            &app,
            &p.url("/labels/production", ""),
            json!({"revision": 2, "force": true}),
        )
        .await;
        let again = app
            .send(
                app.client
                    .post(app.url(&run))
                    .header("Idempotency-Key", "k-1")
                    .json(&body),
            )
            .await;
        assert_eq!(again.status, 200);
        assert_eq!(again.body["result_id"], result_id.as_str());
        assert_eq!(again.headers["idempotent-replayed"], "true");
        let (s, fresh) = app.post(&run, &body).await;
        assert_eq!((s, fresh["revision"].as_i64()), (200, Some(2)));
        assert_eq!(fresh["output"], "Pitch Acme to Cy");

        // The stored result: rendered messages, revision and label in the history.
        let (_, detail) = app
            .get(&format!("/api/prompt-templates/results/{result_id}"))
            .await;
        assert_eq!(
            detail["request"]["messages"][1]["content"],
            "Tell Cy about Acme"
        );
        assert_eq!(detail["output"], "Tell Cy about Acme");
        let (_, hist) = app
            .get(&format!("/api/prompt-templates/{t1}/results"))
            .await;
        assert_eq!(hist["items"][0]["revision"], 1);
        assert_eq!(hist["items"][0]["label"], "production");

        // V7's run: server-side rendering only without `rendered_prompt`.
        let v7 = format!("/api/prompt-templates/{t1}/run");
        let (s, r) = app
            .post(
                &v7,
                &json!({"runtime_vars": {"who": "Di", "brand": "Acme"}}),
            )
            .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["output"], "Tell Di about Acme");
        let (s, r) = app
            .post(
                &v7,
                &json!({"rendered_prompt": "", "runtime_vars": {"who": "x"}}),
            )
            .await;
        assert_eq!((s, r["output"].as_str()), (200, Some("")), "{r}");
        let (s, e) = app.post(&v7, &json!({})).await;
        assert_eq!(s, 422);
        assert_eq!(e["detail"][0]["loc"], json!(["body", "rendered_prompt"]));
        let (s, e) = app
            .post(&v7, &json!({"rendered_prompt": null, "runtime_vars": {}}))
            .await;
        assert_eq!(s, 422, "{e}");
        let (s, e) = app.post(&v7, &json!({"runtime_vars": {}})).await;
        assert_eq!(
            (s, e["detail"]["code"].as_str()),
            (422, Some("MISSING_VARIABLES"))
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn names_with_slash_space_percent_and_unicode() {
    for db in backends() {
        let app = spawn(db).await;
        for name in ["team/a b", "100% ünïcødé 名前", "a%2Fb"] {
            let p = Prompt::new(name);
            app.create(&p.body("hi {{x}}", "")).await;
            let (s, v) = app.get(&p.url("", "")).await;
            assert_eq!(
                (s, v["name"].as_str()),
                (200, Some(name)),
                "{db:?} {name}: {v}"
            );
            let (s, v) = put(&app, &p.url("/labels/prod", ""), json!({"revision": 1})).await;
            assert_eq!(s, 200, "{name}: {v}");
            let (s, v) = app.get(&p.url("/labels/prod/history", "")).await;
            assert_eq!((s, v["items"].as_array().map(Vec::len)), (200, Some(1)));
            let (_, list) = app.get(&format!("/api/prompts?{}", p.q())).await;
            assert_eq!(list["items"][0]["name"], name);
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn tenancy_roles_and_protected_labels() {
    for db in backends() {
        let app = spawn_with(db, |a| {
            a.security.auth = Some(AuthMode::Required);
        })
        .await;
        let store = app.prompter.store();
        let org = format!("org-{}", uuid::Uuid::new_v4());
        let spec = |org: &'static str, ws: Option<&'static str>, role| KeySpec {
            org_id: org,
            workspace_id: ws,
            role,
            name: None,
            expires_at: None,
        };
        let org: &'static str = Box::leak(org.into_boxed_str());
        let key = |role| create_key(store, spec(org, Some("ws-1"), role));
        let (admin, _) = key(Role::Admin).await.unwrap();
        let (write, _) = key(Role::Write).await.unwrap();
        let (read, _) = key(Role::Read).await.unwrap();
        let (other, _) = create_key(store, spec("org-other", None, Role::Admin))
            .await
            .unwrap();
        let call = |method: reqwest::Method, path: String, k: String, body: Option<Value>| {
            let mut rb = app.client.request(method, app.url(&path)).bearer_auth(k);
            if let Some(b) = body {
                rb = rb.json(&b);
            }
            send(rb)
        };
        use reqwest::Method as M;
        let body = json!({"workspace_id": "ws-1", "name": "welcome", "model_id": "gpt-4o",
                          "user_prompt_template": "hi {{x}}"});
        let a = call(
            M::POST,
            "/api/prompt-templates".into(),
            write.key.clone(),
            Some(body),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.body);

        // The key fixes org and workspace: no query needed.
        let a = call(
            M::GET,
            "/api/prompts/welcome".into(),
            read.key.clone(),
            None,
        )
        .await;
        assert_eq!(
            (a.status, a.body["revision"].as_i64()),
            (200, Some(1)),
            "{db:?} {}",
            a.body
        );
        // Another org: 404, whether named or taken from the key.
        let a = call(
            M::GET,
            "/api/prompts/welcome?org_id=org-other".into(),
            read.key.clone(),
            None,
        )
        .await;
        assert_eq!(a.status, 404);
        let a = call(
            M::GET,
            "/api/prompts/welcome?workspace_id=ws-1".into(),
            other.key.clone(),
            None,
        )
        .await;
        assert_eq!(a.status, 404, "{}", a.body);

        let lbl = |l: &str| format!("/api/prompts/welcome/labels/{l}");
        let mv = Some(json!({"revision": 1}));
        let a = call(M::PUT, lbl("staging"), read.key.clone(), mv.clone()).await;
        assert_eq!(a.status, 403, "a read key cannot move labels");
        let a = call(M::PUT, lbl("staging"), write.key.clone(), mv.clone()).await;
        assert_eq!(a.status, 200);
        let a = call(M::PUT, lbl("production"), write.key.clone(), mv.clone()).await;
        assert_eq!(a.status, 403, "a write key cannot move production");
        let a = call(M::PUT, lbl("production"), admin.key.clone(), mv.clone()).await;
        assert_eq!(a.status, 200);
        let a = call(M::DELETE, lbl("production"), write.key.clone(), None).await;
        assert_eq!(a.status, 403);
        let a = call(
            M::GET,
            format!("{}/history", lbl("staging")),
            read.key.clone(),
            None,
        )
        .await;
        assert_eq!(a.body["items"][0]["moved_by"], write.prefix.as_str());
        app.stop().await;
    }
}

#[tokio::test]
async fn release_events_go_through_the_signed_webhook_outbox() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    for db in backends() {
        let receiver = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hook"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&receiver)
            .await;
        let app = spawn_with(db, |a| {
            a.webhook_url = Some(format!("{}/hook", receiver.uri()));
            a.webhook_secret = "s3cret".into();
            a.webhook_poll_ms = 50;
        })
        .await;
        let p = Prompt::new("events");
        let t1 = app.create(&p.body("a {{x}}", "")).await;
        let t2 = app.create(&p.body("b {{x}}", "")).await;
        put(&app, &p.url("/labels/beta", ""), json!({"revision": 1})).await;
        put(&app, &p.url("/labels/beta", ""), json!({"revision": 2})).await;
        delete(&app, &p.url("/labels/beta", "")).await;
        delete(&app, &format!("/api/prompt-templates/{t2}")).await;
        app.post(&format!("/api/prompt-templates/{t2}/restore"), &json!({}))
            .await;

        let want = 7;
        let mut got = Vec::new();
        for _ in 0..200 {
            got = receiver.received_requests().await.unwrap();
            if got.len() >= want {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(got.len(), want, "{db:?}");
        let mut events: Vec<Value> = Vec::new();
        for req in &got {
            let sig = req.headers.get("x-prompter-signature").unwrap();
            assert_eq!(
                prompter_service::webhook::sign("s3cret", &req.body),
                sig.to_str().unwrap()
            );
            events.push(serde_json::from_slice(&req.body).unwrap());
        }
        events.sort_by(|a, b| a["occurred_at"].as_str().cmp(&b["occurred_at"].as_str()));
        let kinds: Vec<(&str, Value, Value)> = events
            .iter()
            .map(|e| {
                assert!(
                    e["event_id"].is_string() && e["occurred_at"].is_string(),
                    "{e}"
                );
                assert_eq!(e["prompt"], "events");
                (
                    e["type"].as_str().unwrap(),
                    e["revision"].clone(),
                    e.get("previous_revision").cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("template.created", json!(1), Value::Null),
                ("template.created", json!(2), Value::Null),
                ("label.moved", json!(1), Value::Null),
                ("label.moved", json!(2), json!(1)),
                ("label.removed", Value::Null, json!(2)),
                ("template.deleted", json!(2), Value::Null),
                ("template.restored", json!(2), Value::Null),
            ],
            "{db:?}"
        );
        assert_eq!(events[0]["template_id"], t1.as_str());
        app.stop().await;
    }
}
