//! `spawn_app` and friends.

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

/// The backends this run covers: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<Db> {
    if std::env::var("PROMPTER_TEST_POSTGRES_URL").is_ok() {
        vec![Db::Sqlite, Db::Postgres]
    } else {
        eprintln!("PROMPTER_TEST_POSTGRES_URL not set: PostgreSQL variant skipped");
        vec![Db::Sqlite]
    }
}

/// The Redis URL for Redis-backed tests, or a printed skip.
pub fn redis_url() -> Option<String> {
    match std::env::var("PROMPTER_TEST_REDIS_URL") {
        Ok(u) => Some(u),
        Err(_) => {
            eprintln!("PROMPTER_TEST_REDIS_URL not set: Redis test skipped");
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

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let res = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request failed");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self.client.get(self.url(path)).send().await.expect("request failed");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
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
    let mut args = ServeArgs::defaults();
    args.bind = "127.0.0.1:0".parse().unwrap();
    args.database_url = Some(db.url().to_owned());
    args.migrate = true;
    args.workers = Some(2);
    args.shutdown_timeout_secs = 5;
    tweak(&mut args);
    let app = Application::build(args).await.expect("server failed to start");
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
            l.starts_with(name)
                && matches!(l.as_bytes().get(name.len()), Some(b'{') | Some(b' '))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
