//! `spawn_app` and friends: the in-process server on a fresh database, and
//! every answer checked against the OpenAPI document. Processes beside it
//! (private Redis, `prompter` children, waits) are in `crate::harness`.

use prompter_api::{Application, ServeArgs};
use prompter_providers::StubProvider;
use prompter_storage::testing::TestDb;
use serde_json::{json, Value};
use std::sync::Arc;

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Prints a skip reason past cargo's output capture (raw stderr).
pub fn skip(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIP: {reason}");
}

/// The backends this run covers: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<Db> {
    if std::env::var("PROMPTER_TEST_POSTGRES_URL").is_ok() {
        vec![Db::Sqlite, Db::Postgres]
    } else {
        skip("PROMPTER_TEST_POSTGRES_URL not set: PostgreSQL variant skipped");
        vec![Db::Sqlite]
    }
}

/// The Redis URL for Redis-backed tests, or a printed skip.
pub fn redis_url() -> Option<String> {
    match std::env::var("PROMPTER_TEST_REDIS_URL") {
        Ok(u) => Some(u),
        Err(_) => {
            skip("PROMPTER_TEST_REDIS_URL not set: Redis test skipped");
            None
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub stub: Arc<StubProvider>,
    pub app_handle: actix_web::dev::ServerHandle,
    pub prompter: prompter_service::Prompter,
    #[allow(dead_code)]
    pub db: Arc<TestDb>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POSTs `body` as JSON; the answer is checked against the OpenAPI document.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let a = send(self.client.post(self.url(path)).json(body)).await;
        (a.status, a.body)
    }

    /// GETs `path`; the answer is checked against the OpenAPI document.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let a = send(self.client.get(self.url(path))).await;
        (a.status, a.body)
    }

    /// Sends any request built on `self.client`, checked against the OpenAPI document.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        send(req).await
    }

    pub async fn metrics(&self) -> String {
        send(self.client.get(self.url("/metrics"))).await.text
    }

    /// Creates a template and returns its id.
    pub async fn create(&self, body: &Value) -> String {
        let (status, v) = self.post("/api/prompt-templates", body).await;
        assert_eq!(status, 201, "create failed: {v}");
        v["id"].as_str().unwrap().to_owned()
    }

    pub async fn stop(&self) {
        self.app_handle.stop(true).await;
    }
}

/// Spawns a server on `db` with default flags.
pub async fn spawn(db: Db) -> TestApp {
    spawn_with(db, |_| {}).await
}

/// Fresh database for `db`.
pub async fn fresh_db(db: Db) -> Arc<TestDb> {
    Arc::new(match db {
        Db::Sqlite => TestDb::sqlite().await,
        Db::Postgres => TestDb::postgres_from_env()
            .await
            .expect("PROMPTER_TEST_POSTGRES_URL is set but PostgreSQL is unreachable"),
    })
}

/// Spawns a server on `db`, letting the test adjust the flags.
pub async fn spawn_with(db: Db, tweak: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let db = fresh_db(db).await;
    spawn_on(db, tweak).await
}

/// Spawns a server on an existing test database (several servers may share one).
pub async fn spawn_on(db: Arc<TestDb>, tweak: impl FnOnce(&mut ServeArgs)) -> TestApp {
    crate::harness::init_test_log();
    let mut args = ServeArgs::defaults();
    args.bind = "127.0.0.1:0".parse().unwrap();
    args.database_url = Some(db.url().to_owned());
    args.migrate = true;
    args.workers = Some(2);
    args.shutdown_timeout_secs = 5;
    tweak(&mut args);
    let app = Application::build(args)
        .await
        .expect("server failed to start");
    let port = app.port();
    let stub = app.stub().expect("stub provider");
    let prompter = app.prompter().clone();
    let app_handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        stub,
        app_handle,
        prompter,
        db,
    }
}

/// A unique create body (unique org so tests never collide).
pub fn template_body(model: &str) -> Value {
    json!({
        "org_id": format!("org-{}", uuid::Uuid::new_v4()),
        "workspace_id": "ws-1",
        "name": "greeting",
        "model_id": model,
        "system_instructions": "You are terse.",
        "user_prompt_template": "Say hello to {{brand}}",
        "country_set": ["uk", "de"],
        "inference_params": {"temperature": 0.7},
    })
}

/// Sum of a counter's samples whose label set contains every `(k, v)` pair.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b'{') | Some(b' '))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A response whose status, headers and body were checked against the
/// server's OpenAPI document.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON (a JSON string holding the text when it is not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
}

/// Sends a request and checks the response against the OpenAPI document
/// (see [`check_response`]); panics on a violation.
pub async fn send(req: reqwest::RequestBuilder) -> Answer {
    let (client, req) = req.build_split();
    let req = req.expect("request builds");
    let method = req.method().as_str().to_owned();
    let path = req.url().path().to_owned();
    let res = client.execute(req).await.expect("request failed");
    check(&method, &path, res).await
}

/// Checks a response of `method path` (for requests sent without [`send`])
/// and returns it read.
pub async fn check(method: &str, path: &str, res: reqwest::Response) -> Answer {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.expect("reading the body");
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    assert!(
        headers.contains_key("x-request-id"),
        "{method} {path} -> {status}: every response carries x-request-id"
    );
    check_response(method, path, status, content_type, &bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
    Answer {
        status,
        headers,
        body,
        text,
    }
}

/// Looks up the operation by method and matched path template, and the
/// response by status, in the document the server serves at
/// `/openapi.json`, and validates the body against its schema. Panics on an
/// undocumented route, method or status, an undocumented content type, or a
/// schema violation. Unknown routes and methods must answer 404/405 in the
/// error envelope.
pub fn check_response(
    method: &str,
    path: &str,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) {
    let doc = prompter_api::openapi::document();
    let method = method.to_ascii_lowercase();
    let what = format!("{} {path} -> {status}", method.to_uppercase());
    // Undocumented routes and methods: 404/405, or what the middleware
    // answers before routing (401 with auth on, 421 foreign Host, 429, 503
    // timeout), as an error.
    let envelope = json!({"$ref": "#/components/schemas/ErrorEnvelope"});
    let unrouted = [401, 404, 405, 421, 429, 503];
    let (template, schema) = match match_path(doc, path) {
        None => {
            assert!(
                unrouted.contains(&status),
                "{what}: the route is not in the OpenAPI document"
            );
            ("(no route)".to_owned(), Some(envelope))
        }
        Some(template) => match doc["paths"][&template].get(&method) {
            None => {
                assert!(
                    unrouted.contains(&status),
                    "{what}: {template} has no {method} operation in the OpenAPI document"
                );
                (template, Some(envelope))
            }
            Some(op) => {
                let Some(response) = op["responses"].get(status.to_string()) else {
                    panic!(
                        "{what}: status {status} is not documented for {method} {template} \
                         (documented: {:?})",
                        op["responses"]
                            .as_object()
                            .map(|o| o.keys().collect::<Vec<_>>())
                    );
                };
                match response.get("content").and_then(Value::as_object) {
                    None => {
                        assert!(
                            body.is_empty(),
                            "{what}: documented without a body, got {} bytes",
                            body.len()
                        );
                        (template, None)
                    }
                    Some(content) => {
                        let essence = content_type
                            .unwrap_or("")
                            .split(';')
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_ascii_lowercase();
                        let Some(media) = content.get(&essence) else {
                            panic!(
                                "{what}: content type {essence:?} is not documented (documented: {:?})",
                                content.keys().collect::<Vec<_>>()
                            );
                        };
                        (
                            template,
                            Some(media.get("schema").cloned().unwrap_or(json!({}))),
                        )
                    }
                }
            }
        },
    };
    let Some(schema) = schema else { return };
    let text = String::from_utf8_lossy(body);
    let instance = if content_type.is_some_and(|c| c.contains("json")) {
        serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("{what}: the body is not JSON ({e}): {text}"))
    } else {
        Value::String(text.clone().into_owned())
    };
    let mut root = schema.as_object().cloned().unwrap_or_default();
    root.insert("components".into(), doc["components"].clone());
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&Value::Object(root))
        .unwrap_or_else(|e| panic!("{what}: the documented schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("at {}: {e}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} ({template}): the body violates the OpenAPI schema:\n  {}\nbody: {text}",
        errors.join("\n  ")
    );
}

/// The documented path template matching `path`: `{param}` segments match
/// any segment, literal segments win (as in the router, where
/// `/drift` is registered before `/{id}`).
fn match_path(doc: &Value, path: &str) -> Option<String> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    doc["paths"]
        .as_object()?
        .keys()
        .filter_map(|template| {
            let tsegs: Vec<&str> = template.split('/').collect();
            if tsegs.len() != segs.len() {
                return None;
            }
            let mut literal = 0;
            for (t, s) in tsegs.iter().zip(&segs) {
                if t.starts_with('{') && t.ends_with('}') {
                    if s.is_empty() {
                        return None;
                    }
                } else if t == s {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, template.clone()))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, t)| t)
}
