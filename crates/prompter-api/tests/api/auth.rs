//! API keys end to end: the 401/403/404 matrix over every route, body scope,
//! open routes, `--metrics-auth`, keys created/revoked while the server runs
//! (cache TTL), the `prompter keys` CLI, the rate limit, and the refusal to
//! serve a non-loopback address without auth.

use crate::helpers::*;
use prompter_api::auth::{create_key, KeySpec};
use prompter_api::caller::Role;
use prompter_api::security::AuthMode;
use prompter_api::{Application, ServeArgs};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Sends one request with an optional bearer key.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut rb = app.client.request(method, app.url(path));
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let a = send(rb).await;
    (a.status, a.body, a.headers)
}

async fn spawn_auth(db: Db, tweak: impl FnOnce(&mut ServeArgs)) -> TestApp {
    spawn_with(db, |a| {
        a.security.auth = Some(AuthMode::Required);
        a.security.auth_cache_ttl_ms = 300;
        tweak(a);
    })
    .await
}

fn spec<'a>(org: &'a str, ws: Option<&'a str>, role: Role) -> KeySpec<'a> {
    KeySpec {
        org_id: org,
        workspace_id: ws,
        role,
        name: None,
        expires_at: None,
    }
}

async fn key(app: &TestApp, org: &str, ws: Option<&str>, role: Role) -> String {
    create_key(app.prompter.store(), spec(org, ws, role))
        .await
        .unwrap()
        .0
        .key
}

/// One route of the matrix.
struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
    /// Minimum role.
    role: Role,
    /// Whether the route addresses one template/result (cross-tenant → 404),
    /// rather than listing (cross-tenant → 200 without the other tenant's rows).
    addressed: bool,
}

fn routes(tpl: &str, twin: &str, result: &str, org: &str) -> Vec<Route> {
    let r =
        |method: Method, path: String, body: Option<Value>, role: Role, addressed: bool| Route {
            method,
            path,
            body,
            role,
            addressed,
        };
    let p = "/api/prompt-templates";
    vec![
        r(
            Method::POST,
            format!("{p}/{tpl}/ensure-version"),
            Some(json!({"workspace_id": "ws-1"})),
            Role::Write,
            true,
        ),
        r(
            Method::POST,
            format!("{p}/{tpl}/run"),
            Some(json!({"rendered_prompt": "hi"})),
            Role::Write,
            true,
        ),
        r(Method::GET, format!("{p}/{tpl}"), None, Role::Read, true),
        r(
            Method::GET,
            format!("{p}/{tpl}/versions"),
            None,
            Role::Read,
            true,
        ),
        r(
            Method::GET,
            format!("{p}/{tpl}/results"),
            None,
            Role::Read,
            true,
        ),
        r(
            Method::GET,
            format!("{p}/{tpl}/diff/{twin}"),
            None,
            Role::Read,
            true,
        ),
        r(
            Method::GET,
            format!("{p}/results/{result}"),
            None,
            Role::Read,
            true,
        ),
        // The owner deletes, then restores.
        r(
            Method::DELETE,
            format!("{p}/{twin}"),
            None,
            Role::Write,
            true,
        ),
        r(
            Method::POST,
            format!("{p}/{twin}/restore"),
            None,
            Role::Write,
            true,
        ),
        r(
            Method::GET,
            format!("{p}?org_id={org}"),
            None,
            Role::Read,
            false,
        ),
        r(Method::GET, format!("{p}/drift"), None, Role::Read, false),
        r(
            Method::POST,
            format!("{p}/check-duplicate"),
            Some(template_like(org)),
            Role::Read,
            false,
        ),
        r(
            Method::POST,
            p.to_string(),
            Some(template_like(org)),
            Role::Write,
            false,
        ),
    ]
}

fn template_like(org: &str) -> Value {
    let mut b = template_body("gpt-4o");
    b["org_id"] = json!(org);
    b["user_prompt_template"] = json!(format!("matrix {}", uuid::Uuid::new_v4()));
    b
}

fn code(v: &Value) -> &str {
    v["detail"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn the_401_403_404_matrix_covers_every_route() {
    for db in backends() {
        let app = spawn_auth(db, |_| {}).await;
        let org_a = format!("org-a-{}", uuid::Uuid::new_v4().simple());
        let org_b = format!("org-b-{}", uuid::Uuid::new_v4().simple());
        let a_write = key(&app, &org_a, Some("ws-1"), Role::Write).await;
        let a_read = key(&app, &org_a, Some("ws-1"), Role::Read).await;
        let a_admin_org = key(&app, &org_a, None, Role::Admin).await;
        let a_other_ws = key(&app, &org_a, Some("ws-2"), Role::Admin).await;
        let b_admin = key(&app, &org_b, None, Role::Admin).await;
        let (revoked, _) = create_key(app.prompter.store(), spec(&org_a, None, Role::Admin))
            .await
            .unwrap();
        app.prompter
            .store()
            .revoke_api_key(&revoked.prefix)
            .await
            .unwrap();
        // A well-formed key nobody issued, and one with a real prefix but a wrong secret.
        let unknown = prompter_api::auth::generate_key().key;
        let forged = format!("{}{}", &a_admin_org[..13], &unknown[13..]);

        // Fixtures in org A, ws-1: a template with a version and a result, and a twin.
        let (s, t, _) = call(
            &app,
            Method::POST,
            "/api/prompt-templates",
            Some(&a_write),
            Some(&template_like(&org_a)),
        )
        .await;
        assert_eq!(s, 201, "{db:?} {t}");
        let tpl = t["id"].as_str().unwrap().to_owned();
        let (s, t2, _) = call(
            &app,
            Method::POST,
            "/api/prompt-templates",
            Some(&a_write),
            Some(&template_like(&org_a)),
        )
        .await;
        assert_eq!(s, 201, "{t2}");
        let twin = t2["id"].as_str().unwrap().to_owned();
        let (s, r, _) = call(
            &app,
            Method::POST,
            &format!("/api/prompt-templates/{tpl}/run"),
            Some(&a_write),
            Some(&json!({"rendered_prompt": "hi"})),
        )
        .await;
        assert_eq!(s, 200, "{r}");
        let result = r["result_id"].as_str().unwrap().to_owned();

        let mut rows = Vec::new();
        for route in routes(&tpl, &twin, &result, &org_a) {
            let label = format!("{db:?} {} {}", route.method, route.path);
            let send = |k: Option<&str>| {
                let k = k.map(str::to_owned);
                let (m, p, b) = (route.method.clone(), route.path.clone(), route.body.clone());
                let app = &app;
                async move { call(app, m, &p, k.as_deref(), b.as_ref()).await }
            };
            // 401: no key, garbage, unknown, forged, revoked.
            for (what, k) in [
                ("no key", None),
                ("garbage", Some("not-a-key")),
                ("unknown", Some(unknown.as_str())),
                ("wrong secret", Some(forged.as_str())),
                ("revoked", Some(revoked.key.as_str())),
            ] {
                let (s, v, h) = send(k).await;
                assert_eq!(s, 401, "{label} {what}: {v}");
                assert_eq!(code(&v), "UNAUTHORIZED", "{label} {what}");
                assert_eq!(h.get("www-authenticate").unwrap(), "Bearer");
                if let Some(k) = k {
                    assert!(!v.to_string().contains(k), "the key is never echoed");
                }
            }
            // 403: a read key on a write route.
            let (s, v, _) = send(Some(&a_read)).await;
            if route.role == Role::Write {
                assert_eq!(s, 403, "{label} read key: {v}");
                assert_eq!(code(&v), "FORBIDDEN");
            } else {
                assert!(s < 300, "{label} read key on a read route: {s} {v}");
            }
            // Another org / another workspace of the same org.
            for (what, k) in [("other org", &b_admin), ("other workspace", &a_other_ws)] {
                let (s, v, _) = send(Some(k)).await;
                if route.addressed {
                    assert_eq!(s, 404, "{label} {what}: {v}");
                    assert!(code(&v).ends_with("NOT_FOUND"), "{label} {what}: {v}");
                } else if route.body.is_some() {
                    // The body names org A (and ws-1): outside this key's scope.
                    assert_eq!(s, 403, "{label} {what}: {v}");
                    assert_eq!(code(&v), "SCOPE_FORBIDDEN");
                } else {
                    assert_eq!(s, 200, "{label} {what}: {v}");
                    assert!(
                        !v.to_string().contains(&tpl),
                        "{label} {what}: org A's rows leaked: {v}"
                    );
                }
                rows.push((label.clone(), what, s));
            }
            // The owner (org-wide admin key).
            let (s, v, _) = send(Some(&a_admin_org)).await;
            assert!(s < 300, "{label} owner: {s} {v}");
        }
        // Cross-tenant 404 is indistinguishable from a template that does not exist.
        let missing = uuid::Uuid::now_v7();
        let (s1, v1, _) = call(
            &app,
            Method::GET,
            &format!("/api/prompt-templates/{missing}"),
            Some(&b_admin),
            None,
        )
        .await;
        let (s2, v2, _) = call(
            &app,
            Method::GET,
            &format!("/api/prompt-templates/{tpl}"),
            Some(&b_admin),
            None,
        )
        .await;
        assert_eq!(
            (s1, code(&v1), v1["detail"]["message"].clone()),
            (s2, code(&v2), v2["detail"]["message"].clone())
        );
        eprintln!("{db:?}: cross-tenant matrix: {} cells checked", rows.len());
        app.stop().await;
    }
}

#[tokio::test]
async fn bodies_must_stay_inside_the_key_scope() {
    let app = spawn_auth(Db::Sqlite, |_| {}).await;
    let org = format!("org-{}", uuid::Uuid::new_v4().simple());
    let ws_key = key(&app, &org, Some("ws-1"), Role::Write).await;
    let org_key = key(&app, &org, None, Role::Write).await;
    let path = "/api/prompt-templates";
    // Absent org/workspace default to the key's.
    let mut b = template_like(&org);
    b.as_object_mut().unwrap().remove("org_id");
    b.as_object_mut().unwrap().remove("workspace_id");
    let (s, v, _) = call(&app, Method::POST, path, Some(&ws_key), Some(&b)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["org_id"], json!(org));
    assert_eq!(v["workspace_id"], "ws-1");
    // Another workspace in the body with a workspace key: refused.
    let mut b = template_like(&org);
    b["workspace_id"] = json!("ws-2");
    let (s, v, _) = call(&app, Method::POST, path, Some(&ws_key), Some(&b)).await;
    assert_eq!((s, code(&v)), (403, "SCOPE_FORBIDDEN"), "{v}");
    // ... allowed with an org-wide key.
    let (s, v, _) = call(&app, Method::POST, path, Some(&org_key), Some(&b)).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    // ensure-version naming another org than the template's: 404.
    let (s, v, _) = call(
        &app,
        Method::POST,
        &format!("{path}/{id}/ensure-version"),
        Some(&org_key),
        Some(&json!({"workspace_id": "ws-2", "org_id": "someone-else"})),
    )
    .await;
    assert_eq!(s, 404, "{v}");
    // The ws-1 key cannot see the ws-2 template.
    let (s, _, _) = call(
        &app,
        Method::GET,
        &format!("{path}/{id}"),
        Some(&ws_key),
        None,
    )
    .await;
    assert_eq!(s, 404);
    app.stop().await;
}

#[tokio::test]
async fn open_routes_and_metrics_auth() {
    let app = spawn_auth(Db::Sqlite, |_| {}).await;
    for path in [
        "/healthz",
        "/readyz",
        "/version",
        "/api/prompt-templates/health",
        "/metrics",
    ] {
        let (s, v, _) = call(&app, Method::GET, path, None, None).await;
        assert_eq!(s, 200, "{path} is open: {v}");
    }
    // Unknown routes need a key too (no route discovery without one).
    let (s, _, _) = call(&app, Method::GET, "/nope", None, None).await;
    assert_eq!(s, 401);
    app.stop().await;

    let app = spawn_auth(Db::Sqlite, |a| a.security.metrics_auth = true).await;
    let write = key(&app, "org-m", None, Role::Write).await;
    let admin = key(&app, "org-m", None, Role::Admin).await;
    assert_eq!(call(&app, Method::GET, "/metrics", None, None).await.0, 401);
    assert_eq!(
        call(&app, Method::GET, "/metrics", Some(&write), None)
            .await
            .0,
        403
    );
    let (s, text, _) = call(&app, Method::GET, "/metrics", Some(&admin), None).await;
    assert_eq!(s, 200);
    assert!(text.as_str().unwrap().contains("prompter"));
    assert_eq!(call(&app, Method::GET, "/healthz", None, None).await.0, 200);
    app.stop().await;
}

/// Polls until `path` answers `want` for `key`, returning how long it took.
async fn wait_status(
    app: &TestApp,
    path: &str,
    key: &str,
    want: u16,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let (s, v, _) = call(app, Method::GET, path, Some(key), None).await;
        if s == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{path} still {s} after {within:?}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn keys_created_and_revoked_while_running_take_effect_within_the_cache_ttl() {
    for db in backends() {
        let app = spawn_auth(db, |a| a.security.auth_cache_ttl_ms = 1000).await;
        let path = "/api/prompt-templates?limit=1";
        let store = app.prompter.store().clone();
        // A key used before it exists (its prefix is then cached as unknown),
        // then stored: accepted within the TTL.
        let generated = prompter_api::auth::generate_key();
        assert_eq!(
            call(&app, Method::GET, path, Some(&generated.key), None)
                .await
                .0,
            401
        );
        store
            .insert_api_key(prompter_storage::NewApiKey {
                prefix: generated.prefix.clone(),
                key_hash: generated.key_hash.clone(),
                org_id: "org-x".into(),
                workspace_id: None,
                role: "read".into(),
                name: None,
                expires_at: None,
            })
            .await
            .unwrap();
        let took = wait_status(&app, path, &generated.key, 200, Duration::from_secs(3)).await;
        assert!(
            took <= Duration::from_millis(1500),
            "{db:?}: creation took {took:?}"
        );
        eprintln!("{db:?}: key created after start accepted after {took:?}");
        let fresh = generated.key.clone();

        // Revocation: accepted now (cached), rejected within the TTL.
        let prefix = prompter_api::auth::key_prefix(&fresh).unwrap().to_owned();
        assert_eq!(
            call(&app, Method::GET, path, Some(&fresh), None).await.0,
            200
        );
        store.revoke_api_key(&prefix).await.unwrap();
        let took = wait_status(&app, path, &fresh, 401, Duration::from_secs(3)).await;
        assert!(
            took <= Duration::from_millis(1500),
            "{db:?}: revocation took {took:?}"
        );
        eprintln!("{db:?}: revoked key rejected after {took:?}");
        let (_, v, _) = call(&app, Method::GET, path, Some(&fresh), None).await;
        assert!(v["detail"]["message"].as_str().unwrap().contains("revoked"));
        // last_used_at was recorded (best effort, asynchronously).
        let listed = store
            .list_api_keys(&prompter_storage::Scope::tenant("org-x", None))
            .await
            .unwrap();
        let rec = listed.iter().find(|k| k.prefix == prefix).unwrap();
        assert!(rec.revoked_at.is_some());
        assert!(
            !rec.key_hash.contains(&fresh) && rec.key_hash.len() == 64,
            "only the hash is stored"
        );
        app.stop().await;
    }
}

fn prompter_bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_prompter"))
}

#[tokio::test]
async fn keys_cli_create_list_revoke_against_a_running_server() {
    for db in backends() {
        let app = spawn_auth(db, |a| a.security.auth_cache_ttl_ms = 500).await;
        let url = app.db.url().to_owned();
        let out = prompter_bin()
            .args([
                "keys",
                "create",
                "--org",
                "org-cli",
                "--workspace",
                "ws-1",
                "--role",
                "write",
                "--database-url",
                &url,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let key = stdout.lines().last().unwrap().trim().to_owned();
        assert!(
            prompter_api::auth::key_prefix(&key).is_some(),
            "last stdout line is the key: {stdout:?}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("shown only now") && !stderr.contains(&key),
            "{stderr}"
        );

        let mut b = template_like("org-cli");
        b["workspace_id"] = json!("ws-1");
        let (s, v, _) = call(
            &app,
            Method::POST,
            "/api/prompt-templates",
            Some(&key),
            Some(&b),
        )
        .await;
        assert_eq!(s, 201, "{db:?} {v}");

        // Env var instead of the flag.
        let out = prompter_bin()
            .args(["keys", "list"])
            .env("PROMPTER_DATABASE_URL", &url)
            .output()
            .unwrap();
        assert!(out.status.success());
        let listing = String::from_utf8(out.stdout).unwrap();
        let prefix = prompter_api::auth::key_prefix(&key).unwrap();
        assert!(
            listing.contains(prefix) && listing.contains("org-cli") && listing.contains("active"),
            "{listing}"
        );
        assert!(!listing.contains(&key[13..]), "list never shows the secret");

        let out = prompter_bin()
            .args(["keys", "revoke", prefix, "--database-url", &url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        wait_status(
            &app,
            "/api/prompt-templates?limit=1",
            &key,
            401,
            Duration::from_secs(3),
        )
        .await;
        let out = prompter_bin()
            .args(["keys", "revoke", "zzzzzzzz", "--database-url", &url])
            .output()
            .unwrap();
        assert!(!out.status.success(), "unknown prefix fails");
        let out = prompter_bin()
            .args([
                "keys",
                "create",
                "--org",
                "o",
                "--role",
                "owner",
                "--database-url",
                &url,
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "unknown role refused");
        app.stop().await;
    }
}

#[tokio::test]
async fn per_key_rate_limit_answers_429_with_retry_after() {
    let app = spawn_auth(Db::Sqlite, |a| {
        a.security.rate_limit_rps = 0.5;
        a.security.rate_limit_burst = 3;
    })
    .await;
    let k1 = key(&app, "org-rl", None, Role::Read).await;
    let k2 = key(&app, "org-rl", None, Role::Read).await;
    let path = "/api/prompt-templates?limit=1";
    for _ in 0..3 {
        assert_eq!(call(&app, Method::GET, path, Some(&k1), None).await.0, 200);
    }
    let (s, v, h) = call(&app, Method::GET, path, Some(&k1), None).await;
    assert_eq!((s, code(&v)), (429, "RATE_LIMITED"), "{v}");
    let retry: u64 = h
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // Other keys have their own bucket; open routes are not limited.
    assert_eq!(call(&app, Method::GET, path, Some(&k2), None).await.0, 200);
    assert_eq!(call(&app, Method::GET, "/healthz", None, None).await.0, 200);
    app.stop().await;

    // Anonymous callers (auth off) are limited only when asked.
    let app = spawn_with(Db::Sqlite, |a| {
        a.security.rate_limit_rps = 0.5;
        a.security.rate_limit_burst = 2;
    })
    .await;
    for _ in 0..5 {
        assert_eq!(app.get(path).await.0, 200);
    }
    app.stop().await;
    let app = spawn_with(Db::Sqlite, |a| {
        a.security.rate_limit_rps = 0.5;
        a.security.rate_limit_burst = 2;
        a.security.rate_limit_anonymous = true;
    })
    .await;
    let statuses: Vec<u16> = futures::future::join_all((0..4).map(|_| app.get(path)))
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "{statuses:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn non_loopback_bind_without_auth_refuses_to_start() {
    let db = fresh_db(Db::Sqlite).await;
    let mut args = ServeArgs::defaults();
    args.bind = "0.0.0.0:0".parse().unwrap();
    args.database_url = Some(db.url().to_owned());
    args.security.auth = Some(AuthMode::Off);
    let err = Application::build(args.clone())
        .await
        .expect_err("must refuse");
    let msg = err.to_string();
    assert!(
        msg.contains("--auth off") && msg.contains("0.0.0.0"),
        "{msg}"
    );

    // Without --auth, a non-loopback bind means auth required.
    args.security.auth = None;
    let app = Application::build(args)
        .await
        .expect("starts with auth required");
    let port = app.port();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let s = send(client.get(format!("http://127.0.0.1:{port}/api/prompt-templates")))
        .await
        .status;
    assert_eq!(s, 401);
    let s = send(client.get(format!("http://127.0.0.1:{port}/healthz")))
        .await
        .status;
    assert_eq!(s, 200);
    handle.stop(true).await;
}

#[tokio::test]
async fn the_binary_refuses_a_public_bind_with_auth_off() {
    let out = prompter_bin()
        .args([
            "serve",
            "--bind",
            "0.0.0.0:0",
            "--auth",
            "off",
            "--database-url",
            "sqlite::memory:",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to start") && stderr.contains("--auth off"),
        "{stderr}"
    );
    // Printed once (not once by the log and again by the binary).
    assert_eq!(stderr.matches("--auth off").count(), 1, "{stderr}");
}

#[tokio::test]
async fn keys_never_reach_the_logs() {
    let db = fresh_db(Db::Sqlite).await;
    db.store().await.close().await; // `keys` never creates a database
    let url = db.url().to_owned();
    let out = prompter_bin()
        .args([
            "keys",
            "create",
            "--org",
            "org-log",
            "--role",
            "write",
            "--database-url",
            &url,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let secret = key[13..].to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let mut child = prompter_bin()
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--auth",
            "required",
        ])
        .args(["--database-url", &url, "--log-format", "json"])
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        ready,
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let forged = format!("{}{}", &key[..13], "A".repeat(43));
    let mut body = template_like("org-log");
    body["workspace_id"] = json!("ws-1");
    for k in [key.as_str(), forged.as_str(), "garbage-key"] {
        let _ = client
            .post(format!("{base}/api/prompt-templates"))
            .bearer_auth(k)
            .json(&body)
            .send()
            .await
            .unwrap();
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("prompter listening"),
        "the log was captured: {text}"
    );
    assert!(text.len() > 200);
    assert!(!text.contains(&secret), "the key's secret is in the log");
    assert!(
        !text.contains(&"A".repeat(43)),
        "a presented (forged) secret is in the log"
    );
    assert!(
        !text.contains("garbage-key"),
        "a presented bad key is in the log"
    );
}
