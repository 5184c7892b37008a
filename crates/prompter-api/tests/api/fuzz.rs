//! Bad input, as a property: no body of any shape, sent to any route with any
//! content type, makes the server answer 5xx (or panic). Bodies are arbitrary
//! JSON values, objects of the real field names with values of any type
//! (duplicate keys included), valid bodies with one field replaced, raw bytes
//! (invalid UTF-8), deep nesting and huge numbers.
//!
//! `cargo fuzz` needs a nightly toolchain, which cannot be installed here, so
//! proptest is the fuzzer: it runs on stable, in every `cargo test`, and
//! shrinks a failure to a minimal body. The domain crate's own properties
//! (`crates/prompter-domain/tests/properties.rs`) fuzz the parser and the
//! canonicaliser directly; this file adds the API's request DTOs and the
//! whole HTTP path.

use crate::helpers::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};

/// Field names of every body the API reads.
const FIELDS: &[&str] = &[
    "org_id",
    "workspace_id",
    "name",
    "provider",
    "created_by",
    "system_instructions",
    "user_prompt_template",
    "country_set",
    "model_id",
    "inference_params",
    "tools_spec",
    "response_format",
    "grounding_profile_id",
    "grounding_snapshot_id",
    "retrieval_params",
    "rendered_prompt",
    "brand_name",
    "country",
    "analysis_scope",
    "runtime_vars",
    "use_grounding",
    "variables",
    "revision",
    "expected_revision",
    "force",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        "[\\x00-\\x1f\\u{80}-\\u{10ffff}]{0,6}",
        Just("gpt-4o".to_owned()),
        Just("claude-3-opus".to_owned()),
        Just("ws-1".to_owned()),
        Just("\u{0}".to_owned()),
        Just(String::new()),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(FIELDS).prop_map(str::to_owned),
                    inner.clone()
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            prop::collection::vec((text(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Raw JSON text for an object of `(key, value)` members, duplicates kept.
fn object_text(members: &[(String, Value)]) -> Vec<u8> {
    let inner: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
        .collect();
    format!("{{{}}}", inner.join(",")).into_bytes()
}

fn valid_create() -> Value {
    json!({
        "org_id": "org-fuzz", "workspace_id": "ws-1", "name": "n", "model_id": "gpt-4o",
        "user_prompt_template": "hi {{brand}}", "country_set": ["uk"], "inference_params": {"temperature": 0.5},
        "rendered_prompt": "hello", "use_grounding": false,
    })
}

/// Number spellings no `f64`/`i64` holds.
fn huge_number() -> impl Strategy<Value = String> {
    prop_oneof![
        (1usize..6000).prop_map(|n| "9".repeat(n)),
        (1usize..400).prop_map(|n| format!("-{}.5e-{}", "1".repeat(n), n * 7)),
        Just("1e400".to_owned()),
        Just("-1e400".to_owned()),
        Just("1e-400".to_owned()),
        Just("123456789012345678901234567890".to_owned()),
        Just("-0.0".to_owned()),
        Just("1E+2".to_owned()),
        Just("01".to_owned()),
        Just("NaN".to_owned()),
        Just("Infinity".to_owned()),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => value().prop_map(|v| v.to_string().into_bytes()),
        3 => prop::collection::vec((prop::sample::select(FIELDS).prop_map(str::to_owned), value()), 0..10)
            .prop_map(|m| object_text(&m)),
        3 => (prop::sample::select(FIELDS), value()).prop_map(|(k, v)| {
            let mut b = valid_create();
            b[k] = v;
            b.to_string().into_bytes()
        }),
        1 => (prop::sample::select(FIELDS), huge_number()).prop_map(|(k, n)| {
            // The field's value becomes the raw number spelling.
            let mut v = valid_create();
            v[k] = Value::String("@@N@@".into());
            v.to_string().replace("\"@@N@@\"", &n).into_bytes()
        }),
        1 => (1usize..3000, any::<bool>()).prop_map(|(n, arrays)| if arrays {
            format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()
        } else {
            format!("{}1{}", "{\"inference_params\":".repeat(n), "}".repeat(n)).into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..300),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|junk| {
            // Invalid UTF-8 inside an otherwise valid string.
            let mut b = br#"{"org_id":"o","workspace_id":"ws-1","name":""#.to_vec();
            b.extend(junk);
            b.extend(br#"","model_id":"gpt-4o","user_prompt_template":"x","rendered_prompt":"p"}"#);
            b
        }),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(Some("application/json".to_owned())),
        1 => Just(None),
        1 => Just(Some("text/plain".to_owned())),
        1 => Just(Some("application/x-www-form-urlencoded".to_owned())),
        1 => Just(Some("multipart/form-data; boundary=xyz".to_owned())),
        1 => Just(Some("application/json; charset=latin1".to_owned())),
        1 => Just(Some("application/problem+json".to_owned())),
        1 => "[ -~]{0,20}".prop_map(Some),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    route: usize,
    body: Vec<u8>,
    content_type: Option<String>,
}

fn case(routes: usize) -> impl Strategy<Value = Case> {
    (0..routes, body(), content_type()).prop_map(|(route, body, content_type)| Case {
        route,
        body,
        content_type,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_body_to_any_route_yields_a_5xx() {
    for db in backends() {
        let app = spawn(db).await;
        let tpl_body = template_body("gpt-4o");
        let tpl = app.create(&tpl_body).await;
        let spare = app.create(&template_body("gemini-1.5-pro")).await;
        let prompt = format!(
            "/api/prompts/greeting/{{}}?org_id={}&workspace_id=ws-1",
            tpl_body["org_id"].as_str().unwrap()
        );
        let prompt = |tail: &str| prompt.replace("{}", tail);
        let (s, r) = app
            .post(
                &format!("/api/prompt-templates/{tpl}/run"),
                &json!({"rendered_prompt": "x"}),
            )
            .await;
        assert_eq!(s, 200, "{r}");
        let result = r["result_id"].as_str().unwrap().to_owned();
        let missing = uuid::Uuid::new_v4();
        let p = "/api/prompt-templates";
        let routes: Vec<(reqwest::Method, String)> = vec![
            (reqwest::Method::POST, p.to_owned()),
            (reqwest::Method::POST, format!("{p}/check-duplicate")),
            (reqwest::Method::POST, format!("{p}/{tpl}/ensure-version")),
            (reqwest::Method::POST, format!("{p}/{tpl}/run")),
            (reqwest::Method::POST, format!("{p}/{spare}/run")),
            (reqwest::Method::POST, format!("{p}/{missing}/run")),
            (
                reqwest::Method::POST,
                format!("{p}/not-a-uuid/ensure-version"),
            ),
            (reqwest::Method::POST, format!("{p}/{spare}/restore")),
            (reqwest::Method::POST, format!("{p}/{tpl}/render")),
            (reqwest::Method::POST, prompt("render")),
            (reqwest::Method::POST, prompt("run")),
            (reqwest::Method::PUT, prompt("labels/staging")),
            (reqwest::Method::DELETE, format!("{p}/{spare}")),
            (reqwest::Method::GET, format!("{p}/{tpl}")),
            (reqwest::Method::GET, format!("{p}/results/{result}")),
            (reqwest::Method::GET, format!("{p}/{tpl}/diff/{spare}")),
            (reqwest::Method::GET, p.to_owned()),
            (reqwest::Method::PUT, p.to_owned()),
            (reqwest::Method::PATCH, format!("{p}/{tpl}")),
            (reqwest::Method::POST, "/healthz".to_owned()),
            (reqwest::Method::POST, "/nowhere".to_owned()),
        ];
        let client = reqwest::Client::new();
        let mut runner = TestRunner::new(Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        });
        let handle = tokio::runtime::Handle::current();
        let sent = std::cell::Cell::new(0usize);
        let outcome = runner.run(&case(routes.len()), |c| {
            let (method, path) = routes[c.route].clone();
            let url = app.url(&path);
            let client = client.clone();
            sent.set(sent.get() + 1);
            let (status, text) = tokio::task::block_in_place(|| {
                handle.block_on(async move {
                    let mut rb = client.request(method, url).body(c.body.clone());
                    if let Some(ct) = &c.content_type {
                        rb = rb.header("content-type", ct.as_str());
                    }
                    // Also checked against the OpenAPI document.
                    let a = send(rb).await;
                    (a.status, a.text)
                })
            });
            if status >= 500 {
                return Err(TestCaseError::fail(format!(
                    "{} {path} -> {status}: {text}",
                    routes[c.route].0
                )));
            }
            Ok(())
        });
        println!(
            "{db:?}: {} fuzzed requests (incl. shrinking), outcome {:?}",
            sent.get(),
            outcome.is_ok()
        );
        if let Err(e) = outcome {
            panic!("{db:?}: {e}");
        }
        // The server is still healthy afterwards.
        assert_eq!(app.get("/healthz").await.0, 200);
        app.stop().await;
    }
}

/// The named bad inputs, each with its exact answer.
#[tokio::test]
async fn named_bad_inputs_get_clear_4xx() {
    let app = spawn_with(Db::Sqlite, |a| {
        a.security.max_json_depth = 16;
        a.security.max_prompt_bytes = 1000;
        a.security.max_name_bytes = 64;
        a.security.max_countries = 5;
        a.security.max_tools = 2;
        a.max_body_bytes = 64 * 1024;
    })
    .await;
    let create = "/api/prompt-templates";
    let raw = |body: Vec<u8>, ct: &'static str| {
        let c = app.client.clone();
        let url = app.url(create);
        async move {
            let a = send(c.post(url).header("content-type", ct).body(body)).await;
            let v: Value = serde_json::from_str(&a.text).unwrap_or(Value::Null);
            (a.status, v)
        }
    };
    let code = |v: &Value| {
        v["code"]
            .as_str()
            .or(v["detail"]["code"].as_str())
            .unwrap_or("")
            .to_owned()
    };
    let mut b = template_body("gpt-4o");
    let cases: Vec<(&str, Vec<u8>, &'static str, u16, &str)> = vec![
        (
            "invalid utf-8",
            b"{\"name\":\"\xff\"}".to_vec(),
            "application/json",
            422,
            "MALFORMED_JSON",
        ),
        (
            "truncated",
            b"{\"name\":".to_vec(),
            "application/json",
            422,
            "MALFORMED_JSON",
        ),
        (
            "deep nesting",
            format!("{}{}", "[".repeat(40), "]".repeat(40)).into_bytes(),
            "application/json",
            422,
            "VALIDATION_FAILED",
        ),
        (
            "1e400",
            br#"{"inference_params":{"t":1e400}}"#.to_vec(),
            "application/json",
            422,
            "VALIDATION_FAILED",
        ),
        (
            "5000 digits",
            format!("{{\"inference_params\":{}}}", "9".repeat(5000)).into_bytes(),
            "application/json",
            422,
            "VALIDATION_FAILED",
        ),
        (
            "wrong content type",
            b"{}".to_vec(),
            "text/plain",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "too large",
            vec![b' '; 65 * 1024],
            "application/json",
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            "not an object",
            b"[1,2]".to_vec(),
            "application/json",
            422,
            "VALIDATION_FAILED",
        ),
    ];
    for (what, body, ct, want, want_code) in cases {
        let (s, v) = raw(body, ct).await;
        assert_eq!((s, code(&v).as_str()), (want, want_code), "{what}: {v}");
    }
    // Field limits: prompt text, names, countries, tools.
    for (field, value) in [
        ("user_prompt_template", json!("x".repeat(1001))),
        ("system_instructions", json!("x".repeat(1001))),
        ("name", json!("n".repeat(65))),
        ("org_id", json!("o".repeat(65))),
        ("model_id", json!("m".repeat(65))),
        ("country_set", json!(["a", "b", "c", "d", "e", "f"])),
        ("tools_spec", json!([{}, {}, {}])),
    ] {
        let mut body = template_body("gpt-4o");
        body[field] = value;
        let (s, v) = app.post(create, &body).await;
        assert_eq!(s, 422, "{field}: {v}");
        assert_eq!(v["detail"][0]["loc"], json!(["body", field]), "{v}");
        assert!(
            ["string_too_long", "too_long"].contains(&v["detail"][0]["type"].as_str().unwrap()),
            "{v}"
        );
    }
    // At the limits: accepted.
    b["user_prompt_template"] = json!("x".repeat(1000));
    b["country_set"] = json!(["DE", "FR", "IT", "ES", "GB"]);
    b["tools_spec"] =
        json!([{"type": "function"}, {"type": "function", "function": {"name": "f"}}]);
    let (s, v) = app.post(create, &b).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    // The run prompt too.
    let (s, v) = app
        .post(
            &format!("{create}/{id}/run"),
            &json!({"rendered_prompt": "p".repeat(1001)}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["detail"][0]["loc"], json!(["body", "rendered_prompt"]));
    // Duplicate keys: the last wins, as in V7 (accepted, not an error).
    let dup = br#"{"org_id":"o-dup","workspace_id":"ws-1","name":"a","name":"b","model_id":"gpt-4o","user_prompt_template":"x"}"#;
    let (s, v) = raw(dup.to_vec(), "application/json").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["name"], "b");
    app.stop().await;
}

#[tokio::test]
async fn request_timeout_answers_503_request_timeout() {
    let app = spawn_with(Db::Sqlite, |a| {
        a.stub_latency_ms = 3000;
        a.security.request_timeout_secs = 1;
    })
    .await;
    let id = app.create(&template_body("gpt-4o")).await;
    let started = std::time::Instant::now();
    let res = app
        .send(
            app.client
                .post(app.url(&format!("/api/prompt-templates/{id}/run")))
                .json(&json!({"rendered_prompt": "slow"})),
        )
        .await;
    let elapsed = started.elapsed();
    assert_eq!(res.status, 503);
    assert_eq!(res.headers.get("retry-after").unwrap(), "1");
    let v: Value = res.body;
    assert_eq!(v["detail"]["code"], "REQUEST_TIMEOUT");
    assert!(
        elapsed < std::time::Duration::from_millis(2500),
        "{elapsed:?}"
    );
    // Nothing half-written: the timed-out run left no result.
    let (_, results) = app
        .get(&format!("/api/prompt-templates/{id}/results"))
        .await;
    assert_eq!(results["items"], json!([]));
    app.stop().await;
}

proptest! {
    #![proptest_config(Config { cases: 2000, failure_persistence: None, ..Config::default() })]

    /// The API's own request DTOs never panic on any parsed body.
    #[test]
    fn request_dtos_never_panic(v in value(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let parsed = prompter_domain::Json::from_serde(&v);
        let _ = prompter_api::body::dto_from_json::<prompter_api::dto::RunBody>(&parsed);
        let _ = prompter_api::body::dto_from_json::<prompter_api::dto::EnsureVersionBody>(&parsed);
        let _ = prompter_api::security::FieldLimits::default().check(&parsed);
        if let Ok(req) = prompter_domain::TemplateRequest::from_json(&parsed) {
            let canonical = req.config.canonicalize();
            let _ = prompter_domain::ConfigHash::compute(prompter_domain::HashAlgorithm::Sha256, &canonical);
        }
        let limits = prompter_domain::Limits::default();
        if let Ok(j) = prompter_domain::json::parse(&bytes, &limits) {
            let _ = prompter_api::body::dto_from_json::<prompter_api::dto::RunBody>(&j);
        }
    }
}

/// Found by the property above on PostgreSQL: a run whose prompt held U+0000
/// called the provider and then could not store the result (503). The body is
/// now refused first, with the 422 the contract promises there.
#[tokio::test]
async fn nul_characters_are_a_422_on_postgresql_and_accepted_on_sqlite() {
    for db in backends() {
        let app = spawn(db).await;
        let id = app.create(&template_body("gpt-4o")).await;
        let before = app.stub.completion_count();
        let run = format!("/api/prompt-templates/{id}/run");
        let (s1, v1) = app.post(&run, &json!({"rendered_prompt": "a\u{0}b"})).await;
        let (s2, v2) = app
            .post(
                &run,
                &json!({"rendered_prompt": "x", "runtime_vars": {"k": ["\u{0}"]}}),
            )
            .await;
        let mut b = template_body("gpt-4o");
        b["inference_params"] = json!({"a": "\u{0}"});
        let (s3, v3) = app.post("/api/prompt-templates", &b).await;
        match db {
            Db::Postgres => {
                assert_eq!((s1, s2, s3), (422, 422, 422), "{v1} {v2} {v3}");
                assert_eq!(v1["detail"][0]["loc"], json!(["body", "rendered_prompt"]));
                assert_eq!(
                    v2["detail"][0]["loc"],
                    json!(["body", "runtime_vars", "k", 0])
                );
                assert_eq!(
                    app.stub.completion_count(),
                    before,
                    "no provider call for a refused body"
                );
            }
            Db::Sqlite => assert_eq!((s1, s2, s3), (200, 200, 201), "{v1} {v2} {v3}"),
        }
        app.stop().await;
    }
}
