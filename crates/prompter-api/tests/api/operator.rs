//! Operator experience (issue 19 items 3, 6, 7, 8, 9, 11, 13): what the
//! server says at start, in its logs and in its error answers. Log checks
//! run the real binary (`--log-format json`) and read its stderr.

use crate::helpers::*;
use prompter_api::auth::{create_key, KeySpec};
use prompter_api::caller::Role;
use prompter_api::{Application, ServeArgs, StartupError};
use prompter_providers::{HttpConfig, OpenAiClient, ProviderRegistry};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

// ------------------------------------------------------------ the binary

/// The real binary serving on a free port, its stderr collected line by line.
struct Server {
    child: Child,
    base: String,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts `prompter serve --bind 127.0.0.1:0 --log-format json ARGS`
    /// with only `env` in its environment; waits for "prompter listening".
    fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_prompter"))
            .args(["serve", "--bind", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<Option<u16>>();
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["fields"]["message"] == "prompter listening" {
                        let _ = tx.send(v["fields"]["port"].as_u64().map(|p| p as u16));
                    }
                }
                sink.lock().unwrap().push(line);
            }
            let _ = tx.send(None);
        });
        let port = rx.recv_timeout(Duration::from_secs(120)).ok().flatten();
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the server did not start:\n{}",
                lines.lock().unwrap().join("\n")
            );
        };
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            lines,
            reader: Some(reader),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the server and returns every stderr line.
    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.lines.lock().unwrap().clone()
    }
}

/// The JSON log lines whose message contains `needle`.
fn logged(lines: &[String], needle: &str) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle))
        })
        .collect()
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}/p.db?mode=rwc", dir.path().display())
}

// ------------------------------------------------------------ 19.3 providers

#[tokio::test]
async fn live_providers_are_logged_listed_and_named_in_errors() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let openai = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"message": "bad request from the mock", "type": "invalid_request_error", "param": null, "code": null}
        })))
        .mount(&openai)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    let secret = "sk-test-never-logged-4242";
    let base = format!("{}/v1", openai.uri());
    let server = Server::start(
        &["--provider", "live", "--database-url", &db],
        &[
            ("OPENAI_API_KEY", secret),
            ("OPENAI_BASE_URL", &base),
            ("AZURE_OPENAI_API_KEY", "az-key"),
        ],
    );
    let client = reqwest::Client::new();
    // The detail view (auth is off on loopback: anyone local may read it).
    let a = send(client.get(server.url("/readyz?detail=1"))).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let providers = a.body["providers"].as_array().unwrap();
    let by_name = |n: &str| providers.iter().find(|p| p["name"] == n).unwrap().clone();
    assert_eq!(by_name("openai")["state"], "configured");
    assert_eq!(by_name("azure-openai")["state"], "missing");
    assert_eq!(
        by_name("azure-openai")["missing_env"],
        json!(["AZURE_OPENAI_ENDPOINT"])
    );
    assert_eq!(by_name("google")["missing_env"], json!(["GEMINI_API_KEY"]));
    assert!(!a.text.contains(secret) && !a.text.contains("az-key"));
    // Plain /readyz stays as it was.
    let plain = send(client.get(server.url("/readyz"))).await;
    assert!(plain.body.get("providers").is_none(), "{}", plain.text);

    // Anthropic has no key: its templates name the variable.
    let mut body = template_body("claude-sonnet-4-5");
    let created = send(client.post(server.url("/api/prompt-templates")).json(&body)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let ws = json!({"workspace_id": "ws-1"});
    let a = send(
        client
            .post(server.url(&format!("/api/prompt-templates/{id}/ensure-version")))
            .json(&ws),
    )
    .await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert_eq!(a.body["detail"]["code"], "PROVIDER_NOT_CONFIGURED");
    assert_eq!(a.body["detail"]["env"], json!(["ANTHROPIC_API_KEY"]));
    let msg = a.body["detail"]["message"].as_str().unwrap();
    assert!(msg.contains("ANTHROPIC_API_KEY"), "{msg}");

    // An OpenAI error is logged once, with the request id, without the key.
    body["model_id"] = json!("gpt-4o");
    let created = send(client.post(server.url("/api/prompt-templates")).json(&body)).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let a = send(
        client
            .post(server.url(&format!("/api/prompt-templates/{id}/run")))
            .header("x-request-id", "rid-provider-error-1")
            .json(&json!({"rendered_prompt": "hi", "workspace_id": "ws-1"})),
    )
    .await;
    assert_eq!(a.status, 502, "{}", a.text);
    assert_eq!(a.body["detail"]["code"], "PROVIDER_BAD_REQUEST");

    let lines = server.stop();
    let all = lines.join("\n");
    assert!(!all.contains(secret), "the key reached the log");
    // One start-up line per provider, naming its variables.
    let configured = logged(&lines, "provider configured");
    assert_eq!(configured.len(), 1, "{all}");
    assert_eq!(configured[0]["fields"]["provider"], "openai");
    assert_eq!(configured[0]["fields"]["env"], "OPENAI_API_KEY");
    let missing = logged(&lines, "provider not configured");
    let names: Vec<&str> = missing
        .iter()
        .map(|v| v["fields"]["provider"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["azure-openai", "anthropic", "google"], "{all}");
    assert_eq!(missing[0]["fields"]["missing"], "AZURE_OPENAI_ENDPOINT");
    assert_eq!(missing[2]["fields"]["missing"], "GEMINI_API_KEY");
    // The provider error: one line, with the request id of its request.
    let failed = logged(&lines, "provider call failed");
    assert_eq!(failed.len(), 1, "{all}");
    assert_eq!(failed[0]["span"]["request_id"], "rid-provider-error-1");
    assert_eq!(failed[0]["fields"]["provider"], "openai");
    assert_eq!(failed[0]["fields"]["code"], "PROVIDER_BAD_REQUEST");
}

#[tokio::test]
async fn readyz_detail_needs_an_admin_key_with_auth_on() {
    let app = spawn_with(Db::Sqlite, |a| {
        a.security.auth = Some(prompter_api::security::AuthMode::Required);
    })
    .await;
    let spec = |role| KeySpec {
        org_id: "org-ready",
        workspace_id: None,
        role,
        name: None,
        expires_at: None,
    };
    let store = app.prompter.store();
    let admin = create_key(store, spec(Role::Admin)).await.unwrap().0.key;
    let write = create_key(store, spec(Role::Write)).await.unwrap().0.key;
    let get = |q: &str, key: Option<&str>| {
        let mut r = app.client.get(app.url(&format!("/readyz{q}")));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        send(r)
    };
    let plain = get("", None).await;
    assert_eq!(plain.status, 200);
    assert!(plain.body.get("providers").is_none());
    assert_eq!(get("?detail=1", None).await.status, 401);
    assert_eq!(get("?detail=1", Some(&write)).await.status, 403);
    let a = get("?detail=true", Some(&admin)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let providers = a.body["providers"].as_array().unwrap();
    assert_eq!(providers.len(), 4);
    assert!(providers.iter().all(|p| p["state"] == "stub"));
    let bad = get("?detail=maybe", Some(&admin)).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["detail"]["code"], "INVALID_QUERY");
    assert_eq!(bad.body["detail"]["parameters"], json!(["detail"]));
    app.stop().await;
}

/// A registry without the template's provider (what `--provider live`
/// gives without keys) answers 503 naming the variable to set.
#[tokio::test]
async fn provider_not_configured_names_the_variable() {
    let tdb = fresh_db(Db::Sqlite).await;
    let mut args = ServeArgs::defaults();
    args.bind = "127.0.0.1:0".parse().unwrap();
    args.database_url = Some(tdb.url().to_owned());
    let mut registry = ProviderRegistry::new();
    registry.insert(
        "anthropic",
        Arc::new(OpenAiClient::new(
            "unused",
            "http://127.0.0.1:1/v1",
            HttpConfig::default(),
        )),
    );
    let app = Application::build_with_providers(args, registry)
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let created = send(
        client
            .post(format!("{base}/api/prompt-templates"))
            .json(&template_body("gpt-4o")),
    )
    .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let a = send(
        client
            .post(format!("{base}/api/prompt-templates/{id}/run"))
            .json(&json!({"rendered_prompt": "hi"})),
    )
    .await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert_eq!(a.body["detail"]["code"], "PROVIDER_NOT_CONFIGURED");
    assert_eq!(a.body["detail"]["provider"], "openai");
    assert_eq!(a.body["detail"]["env"], json!(["OPENAI_API_KEY"]));
    assert!(a.headers.contains_key("retry-after"));
    handle.stop(true).await;
}

// ------------------------------------------------------------ 19.6 422s

#[tokio::test]
async fn every_field_error_is_reported_at_once() {
    let app = spawn(Db::Sqlite).await;
    // Three required fields missing: all three named.
    let mut body = template_body("gpt-4o");
    for f in ["name", "user_prompt_template", "model_id"] {
        body.as_object_mut().unwrap().remove(f);
    }
    let (s, v) = app.post("/api/prompt-templates", &body).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["code"], "VALIDATION_FAILED");
    let locs: Vec<Value> = v["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"].clone())
        .collect();
    assert_eq!(
        locs,
        vec![
            json!(["body", "name"]),
            json!(["body", "user_prompt_template"]),
            json!(["body", "model_id"])
        ]
    );
    assert!(v["detail"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["type"] == "missing"));
    // Wrong types and missing fields together, each once.
    let mut body = template_body("gpt-4o");
    body["name"] = json!(5);
    body["country_set"] = json!(["DE", 7]);
    body.as_object_mut().unwrap().remove("workspace_id");
    let (s, v) = app.post("/api/prompt-templates", &body).await;
    assert_eq!(s, 422, "{v}");
    let locs: Vec<Value> = v["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"].clone())
        .collect();
    assert_eq!(locs.len(), 3, "{v}");
    for want in [
        json!(["body", "name"]),
        json!(["body", "country_set", 1]),
        json!(["body", "workspace_id"]),
    ] {
        assert!(locs.contains(&want), "{want} in {v}");
    }
    // Typed bodies too (ensure-version: one required field, one wrong type).
    let id = app.create(&template_body("gpt-4o")).await;
    let (s, v) = app
        .post(
            &format!("/api/prompt-templates/{id}/ensure-version"),
            &json!({"provider": 7}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["detail"].as_array().unwrap().len(), 2, "{v}");
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_is_located_by_line_and_column() {
    let app = spawn(Db::Sqlite).await;
    let text = "{\n  \"org_id\": \"o\",\n  \"name\": tru\n}";
    let a = send(
        app.client
            .post(app.url("/api/prompt-templates"))
            .header("content-type", "application/json")
            .body(text),
    )
    .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.body["code"], "MALFORMED_JSON");
    let d = &a.body["detail"][0];
    // FastAPI's shape: ["body", <byte offset>], not the field being parsed.
    let offset = text.find("tru").unwrap();
    assert_eq!(d["loc"], json!(["body", offset]), "{}", a.text);
    assert_eq!(d["ctx"]["line"], 3);
    assert_eq!(d["ctx"]["column"], 11);
    assert!(d["msg"].as_str().unwrap().contains("line 3, column 11"));
    app.stop().await;
}

#[tokio::test]
async fn bad_query_values_name_their_parameters() {
    let app = spawn(Db::Sqlite).await;
    let id = app.create(&template_body("gpt-4o")).await;
    let (s, v) = app
        .get(&format!(
            "/api/prompt-templates/{id}/results?limit=ten&since=yesterday&country=DE"
        ))
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["detail"]["code"], "INVALID_QUERY");
    assert_eq!(v["detail"]["parameters"], json!(["limit", "since"]), "{v}");
    let msg = v["detail"]["message"].as_str().unwrap();
    assert!(msg.contains("`since`") && msg.contains("`limit`"), "{msg}");
    let (s, v) = app.get("/api/prompt-templates?limit=0").await;
    assert_eq!(s, 400);
    assert_eq!(v["detail"]["parameters"], json!(["limit"]));
    app.stop().await;
}

// ------------------------------------------------------------ 19.7 logs

#[tokio::test]
async fn access_log_and_the_no_keys_warning() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    // No key yet: the server warns, and the 401 says how to make one.
    let server = Server::start(
        &["--database-url", &db, "--auth", "required", "--access-log"],
        &[],
    );
    let client = reqwest::Client::new();
    let a = send(client.get(server.url("/api/prompt-templates"))).await;
    assert_eq!(a.status, 401);
    let msg = a.body["detail"]["message"].as_str().unwrap();
    assert!(msg.contains("prompter keys create --org"), "{msg}");
    let lines = server.stop();
    let warned = logged(&lines, "no usable API key");
    assert_eq!(warned.len(), 1, "{}", lines.join("\n"));
    assert!(warned[0]["fields"]["message"]
        .as_str()
        .unwrap()
        .contains("prompter keys create"));

    // With a key: one access line per request, naming its key prefix.
    let out = Command::new(env!("CARGO_BIN_EXE_prompter"))
        .args([
            "keys",
            "create",
            "--org",
            "org-log",
            "--role",
            "read",
            "--database-url",
            &db,
        ])
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let prefix = prompter_api::auth::key_prefix(&key).unwrap().to_owned();
    let server = Server::start(
        &["--database-url", &db, "--auth", "required", "--access-log"],
        &[],
    );
    let missing = uuid::Uuid::new_v4();
    let a = send(
        client
            .get(server.url(&format!("/api/prompt-templates/{missing}")))
            .bearer_auth(&key)
            .header("x-request-id", "rid-access-7"),
    )
    .await;
    assert_eq!(a.status, 404);
    let a = send(client.get(server.url("/healthz"))).await;
    assert_eq!(a.status, 200);
    let lines = server.stop();
    assert!(logged(&lines, "no usable API key").is_empty());
    let access: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "prompter::access")
        .collect();
    assert_eq!(access.len(), 2, "{}", lines.join("\n"));
    let f = &access[0]["fields"];
    assert_eq!(f["method"], "GET");
    assert_eq!(f["route"], "/api/prompt-templates/{id}");
    assert_eq!(f["status"], 404);
    assert_eq!(f["request_id"], "rid-access-7");
    assert_eq!(f["key_prefix"], prefix.as_str());
    assert!(f["latency_ms"].as_f64().is_some());
    assert_eq!(access[1]["fields"]["route"], "/healthz");
    assert_eq!(access[1]["fields"]["key_prefix"], "-");
    assert!(!lines.join("\n").contains(&key), "the key reached the log");
}

#[tokio::test]
async fn redis_down_is_logged_once_and_urls_are_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    let server = Server::start(
        &[
            "--database-url",
            &db,
            // Nothing listens on port 1; the password holds an `@`.
            "--redis-url",
            "redis://:r3d@is-pass@127.0.0.1:1/0",
            "--webhook-url",
            "https://bot:w3b@hook-pass@127.0.0.1:1/in?token=t0ken-value",
        ],
        &[],
    );
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let a = send(client.get(server.url("/readyz"))).await;
        assert_eq!(a.status, 503);
        assert_eq!(a.body["checks"]["redis"], "unavailable");
    }
    let metrics = send(client.get(server.url("/metrics"))).await.text;
    assert_eq!(metric_sum(&metrics, "prompter_redis_configured", &[]), 1.0);
    assert_eq!(metric_sum(&metrics, "prompter_redis_up", &[]), 0.0);
    let lines = server.stop();
    let all = lines.join("\n");
    assert_eq!(logged(&lines, "redis is down").len(), 1, "{all}");
    for secret in [
        "r3d@is-pass",
        "is-pass",
        "w3b@hook-pass",
        "hook-pass",
        "t0ken-value",
    ] {
        assert!(!all.contains(secret), "{secret} reached the log:\n{all}");
    }
    let listening = logged(&lines, "prompter listening");
    let config = listening[0]["fields"]["config"].as_str().unwrap();
    assert!(
        config.contains("redis=redis://:***@127.0.0.1:1/0"),
        "{config}"
    );
    assert!(
        config.contains("webhook=https://bot:***@127.0.0.1:1/in?token=***"),
        "{config}"
    );
}

#[tokio::test]
async fn no_notice_noise_on_a_postgres_restart() {
    if !backends().contains(&Db::Postgres) {
        return;
    }
    let tdb = fresh_db(Db::Postgres).await;
    tdb.store().await.close().await; // migrated
    for _ in 0..2 {
        let server = Server::start(&["--database-url", tdb.url()], &[]);
        let lines = server.stop();
        let all = lines.join("\n");
        assert!(!all.contains("already exists"), "{all}");
        assert_eq!(logged(&lines, "prompter listening").len(), 1, "{all}");
    }
}

// ------------------------------------------------------------ 19.8 start-up

#[tokio::test]
async fn a_taken_port_fails_before_anything_is_opened() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("never.db");
    let mut args = ServeArgs::defaults();
    args.bind = taken.local_addr().unwrap();
    args.database_url = Some(format!("sqlite://{}?mode=rwc", file.display()));
    args.redis_url = Some("redis://127.0.0.1:1".into());
    let err = Application::build(args).await.unwrap_err();
    assert!(matches!(err, StartupError::Bind { .. }), "{err}");
    assert!(std::error::Error::source(&err).is_some());
    assert!(!file.exists(), "the database was opened before the bind");
}

#[tokio::test]
async fn startup_errors_keep_their_source() {
    let mut args = ServeArgs::defaults();
    args.bind = "127.0.0.1:0".parse().unwrap();
    args.database_url = Some("postgres://nobody:p@ss@127.0.0.1:1/none".into());
    let err = Application::build(args).await.unwrap_err();
    assert!(matches!(err, StartupError::Database(_)), "{err}");
    let source = std::error::Error::source(&err).expect("a source");
    assert!(
        source
            .downcast_ref::<prompter_storage::StorageError>()
            .is_some(),
        "{source:?}"
    );
    assert!(!err.to_string().contains("p@ss"), "{err}");
}

// ------------------------------------------------------------ 19.9 keys

#[tokio::test]
async fn expired_keys_answer_api_key_expired() {
    for db in backends() {
        let app = spawn_with(db, |a| {
            a.security.auth = Some(prompter_api::security::AuthMode::Required);
        })
        .await;
        let store = app.prompter.store();
        let spec = |expires_at| KeySpec {
            org_id: "org-exp",
            workspace_id: None,
            role: Role::Read,
            name: Some("short-lived"),
            expires_at,
        };
        let now = chrono::Utc::now();
        let (old, rec) = create_key(store, spec(Some(now - chrono::Duration::seconds(1))))
            .await
            .unwrap();
        assert_eq!(rec.name.as_deref(), Some("short-lived"));
        let (fresh, _) = create_key(store, spec(Some(now + chrono::Duration::days(1))))
            .await
            .unwrap();
        let list = |key: &str| {
            send(
                app.client
                    .get(app.url("/api/prompt-templates?org_id=org-exp"))
                    .bearer_auth(key.to_owned()),
            )
        };
        let a = list(&old.key).await;
        assert_eq!(a.status, 401, "{}", a.text);
        assert_eq!(a.body["detail"]["code"], "API_KEY_EXPIRED");
        assert!(a.headers.contains_key("www-authenticate"));
        assert_eq!(list(&fresh.key).await.status, 200);
        app.stop().await;
    }
}

#[tokio::test]
async fn keys_cli_names_and_expiry() {
    let db = fresh_db(Db::Sqlite).await;
    db.store().await.close().await;
    let keys = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_prompter"))
            .arg("keys")
            .args(args)
            .args(["--database-url", db.url()])
            .env_clear()
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, key, err) = keys(&[
        "create",
        "--org",
        "org-cli",
        "--role",
        "write",
        "--name",
        "ci-deploy",
        "--expires-in",
        "90d",
    ]);
    assert_eq!(code, 0, "{err}");
    let prefix = prompter_api::auth::key_prefix(key.trim())
        .unwrap()
        .to_owned();
    let expires = (chrono::Utc::now() + chrono::Duration::days(90))
        .format("%Y-%m-%d")
        .to_string();
    assert!(
        err.contains("\"ci-deploy\"") && err.contains(&expires),
        "{err}"
    );
    let (code, _, _) = keys(&["create", "--org", "org-cli", "--role", "read"]);
    assert_eq!(code, 0);
    let (code, out, _) = keys(&["list"]);
    assert_eq!(code, 0);
    let header = out.lines().next().unwrap();
    assert!(
        header.contains("NAME") && header.contains("EXPIRES"),
        "{out}"
    );
    let row = out.lines().find(|l| l.starts_with(&prefix)).unwrap();
    assert!(row.contains("ci-deploy") && row.contains(&expires), "{row}");
    assert!(row.contains("active"), "{row}");
    for bad in ["0s", "banana"] {
        let (code, _, err) = keys(&[
            "create",
            "--org",
            "org-cli",
            "--role",
            "read",
            "--expires-in",
            bad,
        ]);
        assert_ne!(code, 0, "{bad}");
        assert!(err.contains("--expires-in"), "{err}");
    }
}

// ------------------------------------------------------------ 19.11 metrics

#[tokio::test]
async fn per_model_series_show_zero_from_the_first_probe() {
    let app = spawn(Db::Sqlite).await;
    let model = format!("gpt-4o-metrics-{}", uuid::Uuid::new_v4().simple());
    let id = app.create(&template_body(&model)).await;
    let labels = [("provider", "openai"), ("model", model.as_str())];
    let before = app.metrics().await;
    assert!(!before.contains(&model));
    let (s, v) = app
        .post(
            &format!("/api/prompt-templates/{id}/ensure-version"),
            &json!({"workspace_id": "ws-1"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let text = app.metrics().await;
    for name in [
        "prompter_probe_failures_total",
        "prompter_version_drift_total",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(name) && l.contains(&format!("model=\"{model}\"")));
        assert!(line.is_some(), "{name} for {model} is shown");
        assert_eq!(metric_sum(&text, name, &labels), 0.0);
    }
    assert_eq!(
        metric_sum(&text, "prompter_probe_attempts_total", &labels),
        1.0
    );
    assert!(text.contains("prompter_redis_configured"));
    app.stop().await;
}

// ------------------------------------------------------------ 19.13 one route table

/// Every route of the table is served and documented, and the auth layer
/// follows the table: open rows pass without a key, keyed rows need one.
#[tokio::test]
async fn the_route_table_drives_auth_and_the_document() {
    use prompter_api::routes::table::{routes, Access};
    let app = spawn_with(Db::Sqlite, |a| {
        a.security.auth = Some(prompter_api::security::AuthMode::Required);
    })
    .await;
    let doc = prompter_api::openapi::document();
    for r in routes() {
        let method = r.method.as_str().to_ascii_lowercase();
        let op = &doc["paths"][&r.path][&method];
        assert_eq!(
            op["operationId"],
            r.operation_id.as_str(),
            "{method} {}",
            r.path
        );
        let path = r
            .path
            .replace("{id}", &uuid::Uuid::new_v4().to_string())
            .replace("{other_id}", &uuid::Uuid::new_v4().to_string())
            .replace("{result_id}", &uuid::Uuid::new_v4().to_string());
        let req = app
            .client
            .request(r.method.as_str().parse().unwrap(), app.url(&path))
            .header("content-type", "application/json")
            .body("{}");
        let a = send(req).await;
        match r.access {
            Access::Keyed => assert_eq!(a.status, 401, "{method} {}", r.path),
            Access::Open | Access::Metrics => {
                assert_ne!(a.status, 401, "{method} {}", r.path);
                assert_ne!(a.status, 404, "{method} {}", r.path);
            }
        }
        let documented_open = op["security"] == json!([{}]);
        assert_eq!(documented_open, r.access == Access::Open, "{}", r.path);
    }
    app.stop().await;
}
