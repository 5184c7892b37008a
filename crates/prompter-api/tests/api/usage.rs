//! Usage and cost (issue 17): real-shaped usage blocks of each provider
//! (wiremock) land in the result's columns, priced to the micro-dollar; the
//! usage API's sums equal the sums over the stored results for every
//! `group_by`.

use crate::helpers::*;
use prompter_api::{Application, ServeArgs};
use prompter_providers::{
    AnthropicClient, AzureOpenAiClient, GeminiClient, HttpConfig, OpenAiClient, ProviderRegistry,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn http() -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        max_attempts: 1,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
    }
}

/// The four real clients, all pointed at `mock`.
fn registry(mock: &MockServer) -> ProviderRegistry {
    let mut reg = ProviderRegistry::new();
    let uri = mock.uri();
    reg.insert(
        "openai",
        Arc::new(OpenAiClient::new("sk-usage", format!("{uri}/v1"), http())),
    );
    reg.insert(
        "azure-openai",
        Arc::new(AzureOpenAiClient::new("az-usage", uri.clone(), http())),
    );
    reg.insert(
        "anthropic",
        Arc::new(AnthropicClient::new("ant-usage", uri.clone(), http())),
    );
    reg.insert(
        "google",
        Arc::new(GeminiClient::new("g-usage", uri, http())),
    );
    reg
}

async fn spawn_live(db: Db, mock: &MockServer, tweak: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let tdb = fresh_db(db).await;
    let mut args = ServeArgs::defaults();
    args.bind = "127.0.0.1:0".parse().unwrap();
    args.database_url = Some(tdb.url().to_owned());
    args.migrate = true;
    args.workers = Some(2);
    args.shutdown_timeout_secs = 5;
    tweak(&mut args);
    let app = Application::build_with_providers(args, registry(mock))
        .await
        .expect("server starts");
    let port = app.port();
    let prompter = app.prompter().clone();
    let app_handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let (_, stub) = ProviderRegistry::stub(Default::default());
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        stub,
        app_handle,
        prompter,
        db: tdb,
    }
}

fn openai_body(model: &str, usage: Option<Value>) -> Value {
    let mut b = json!({
        "id": "chatcmpl-u", "object": "chat.completion", "created": 1764320000,
        "model": format!("{model}-2024-08-06"),
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        "system_fingerprint": "fp_usage"
    });
    if let Some(u) = usage {
        b["usage"] = u;
    }
    b
}

async fn mount(mock: &MockServer) {
    let ok = |b: Value| ResponseTemplate::new(200).set_body_json(b);
    // OpenAI gpt-4o: 2048 prompt tokens of which 1920 cached, 12 out.
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"model": "gpt-4o"})))
        .respond_with(ok(openai_body(
            "gpt-4o",
            Some(
                json!({"prompt_tokens": 2048, "completion_tokens": 12, "total_tokens": 2060,
                "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0}}),
            ),
        )))
        .mount(mock)
        .await;
    // A model the price table does not know.
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"model": "gpt-9"})))
        .respond_with(ok(openai_body(
            "gpt-9",
            Some(json!({"prompt_tokens": 40, "completion_tokens": 2, "total_tokens": 42})),
        )))
        .mount(mock)
        .await;
    // A response without usage.
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"model": "gpt-4o-mini"})))
        .respond_with(ok(openai_body("gpt-4o-mini", None)))
        .mount(mock)
        .await;
    // Azure deployment `prod-chat` (mapped to gpt-4o by flag); older API
    // versions send no prompt_tokens_details.
    Mock::given(method("POST"))
        .and(path("/openai/deployments/prod-chat/chat/completions"))
        .respond_with(ok(json!({
            "id": "chatcmpl-az", "object": "chat.completion", "created": 1764320100,
            "model": "gpt-4o-2024-11-20", "system_fingerprint": null,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Paris."}}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
        })))
        .mount(mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ok(json!({
            "id": "msg_u", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 100,
                "cache_read_input_tokens": 1000,
                "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 0},
                "service_tier": "standard"}
        })))
        .mount(mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1beta/models/gemini-2.5-pro:generateContent"))
        .respond_with(ok(json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 200, "thoughtsTokenCount": 50,
                "totalTokenCount": 1250, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1000}]},
            "modelVersion": "gemini-2.5-pro", "responseId": "resp-u"
        })))
        .mount(mock)
        .await;
}

async fn run(app: &TestApp, org: &str, provider: &str, model: &str) -> Value {
    let mut body = template_body(model);
    body["org_id"] = json!(org);
    body["name"] = json!(format!("p-{model}"));
    body["provider"] = json!(provider);
    let id = app.create(&body).await;
    let (s, v) = app
        .post(
            &format!("/api/prompt-templates/{id}/run"),
            &json!({"rendered_prompt": "Say hello to Acme"}),
        )
        .await;
    assert_eq!(s, 200, "{provider}/{model}: {v}");
    v
}

#[tokio::test]
async fn each_providers_usage_lands_in_the_result_and_is_priced_to_the_micro_dollar() {
    for db in backends() {
        let mock = MockServer::start().await;
        mount(&mock).await;
        let app = spawn_live(db, &mock, |a| {
            a.azure_deployment_model = vec!["prod-chat=gpt-4o".into()];
        })
        .await;
        let org = format!("org-{}", Uuid::new_v4());
        // Metrics are process-wide (other tests, the other backend): deltas.
        let before = app.metrics().await;
        // (provider, model, input, output, cached, cache write, cost µ$)
        type Want = (
            &'static str,
            &'static str,
            u64,
            u64,
            Option<u64>,
            Option<u64>,
            Option<i64>,
        );
        let cases: [Want; 5] = [
            // 128 × $2.50 + 1920 × $1.25 + 12 × $10 per 1M tokens.
            ("openai", "gpt-4o", 2048, 12, Some(1920), None, Some(2_840)),
            // gpt-4o via the deployment map: 1000 × $2.50 + 100 × $10.
            (
                "azure-openai",
                "prod-chat",
                1000,
                100,
                None,
                None,
                Some(3_500),
            ),
            // 10 × $3 + 1000 × $0.30 + 100 × $3.75 + 5 × $15.
            (
                "anthropic",
                "claude-sonnet-4-5-20250929",
                1110,
                5,
                Some(1000),
                Some(100),
                Some(780),
            ),
            // 1000 × $1.25 + (200 + 50 thinking) × $10.
            (
                "google",
                "gemini-2.5-pro",
                1000,
                250,
                Some(0),
                None,
                Some(3_750),
            ),
            // No price: tokens kept, cost null.
            ("openai", "gpt-9", 40, 2, None, None, None),
        ];
        for (provider, model, input, output, cached, written, cost) in cases {
            let v = run(&app, &org, provider, model).await;
            let u = &v["usage"];
            assert_eq!(u["input_tokens"], json!(input), "{model}: {v}");
            assert_eq!(u["output_tokens"], json!(output), "{model}");
            assert_eq!(u["cached_input_tokens"], json!(cached), "{model}");
            assert_eq!(u["cache_write_input_tokens"], json!(written), "{model}");
            assert_eq!(u["cost_micros"], json!(cost), "{model}");
            // The stored columns (and the history read) say the same.
            let id: Uuid = v["result_id"].as_str().unwrap().parse().unwrap();
            let stored = app
                .prompter
                .store()
                .get_result(&prompter_storage::Scope::Unrestricted, id)
                .await
                .unwrap()
                .usage;
            assert_eq!(stored.provider.as_deref(), Some(provider));
            assert_eq!(stored.input_tokens, Some(input as i64));
            assert_eq!(stored.output_tokens, Some(output as i64));
            assert_eq!(stored.cached_input_tokens, cached.map(|c| c as i64));
            assert_eq!(stored.cache_write_input_tokens, written.map(|c| c as i64));
            assert_eq!(stored.cost_micros, cost);
            let (s, detail) = app
                .get(&format!("/api/prompt-templates/results/{id}"))
                .await;
            assert_eq!(s, 200);
            assert_eq!(detail["usage"], v["usage"]);
        }
        // No usage in the response: nulls, never zeros.
        let v = run(&app, &org, "openai", "gpt-4o-mini").await;
        assert_eq!(v["usage"], Value::Null, "{v}");
        let id: Uuid = v["result_id"].as_str().unwrap().parse().unwrap();
        let stored = app
            .prompter
            .store()
            .get_result(&prompter_storage::Scope::Unrestricted, id)
            .await
            .unwrap()
            .usage;
        assert_eq!(stored.input_tokens, None);
        assert_eq!(stored.cost_micros, None);

        let text = app.metrics().await;
        let m = |name: &str, labels: &[(&str, &str)]| {
            metric_sum(&text, name, labels) - metric_sum(&before, name, labels)
        };
        assert_eq!(
            m(
                "prompter_cost_unpriced_total",
                &[("provider", "openai"), ("model", "gpt-9")]
            ),
            1.0
        );
        assert_eq!(
            m(
                "prompter_tokens_total",
                &[("provider", "anthropic"), ("kind", "cache_write_input")]
            ),
            100.0
        );
        assert!(
            m(
                "prompter_cost_usd_total",
                &[("provider", "google"), ("model", "gemini-2.5-pro")]
            ) >= 0.00375 - 1e-9
        );
        // A counter in USD (the facade's integer counters cannot hold it).
        assert!(
            text.contains("# TYPE prompter_cost_usd_total counter\n"),
            "{text}"
        );
        assert!(!text.contains("# TYPE prompter_cost_usd_total gauge"));
        // The usage API totals the org: 5 priced + 1 unpriced + 1 without usage.
        let (s, rep) = app
            .get(&format!("/api/usage?org_id={org}&group_by=provider"))
            .await;
        assert_eq!(s, 200, "{rep}");
        let by: BTreeMap<String, Value> = rep["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["provider"].as_str().unwrap().to_string(), i.clone()))
            .collect();
        assert_eq!(by["openai"]["runs"], 3);
        assert_eq!(by["openai"]["unpriced_runs"], 2);
        assert_eq!(by["openai"]["cost_micros"], 2_840);
        assert_eq!(by["anthropic"]["cost_usd"], json!(0.00078));
        assert_eq!(by["azure-openai"]["input_tokens"], 1000);
        app.stop().await;
    }
}

/// What a stored result contributes to the usage report.
struct Stored {
    keys: BTreeMap<&'static str, String>,
    usage: prompter_storage::RunUsage,
}

const KEYS: [(&str, &str); 7] = [
    ("org", "org_id"),
    ("workspace", "workspace_id"),
    ("template", "template_id"),
    ("prompt", "prompt"),
    ("provider", "provider"),
    ("model", "model"),
    ("day", "day"),
];

#[tokio::test]
async fn usage_api_sums_equal_the_stored_results_for_every_group_by() {
    for db in backends() {
        let app = spawn(db).await;
        let orgs = [
            format!("org-{}", Uuid::new_v4()),
            format!("org-{}", Uuid::new_v4()),
        ];
        // (org, workspace, name, model): stub usage = word counts; the last
        // model has no price and no provider (stub `unknown`).
        let templates = [
            (0, "ws-1", "greeting", "gpt-4o"),
            (0, "ws-2", "greeting", "claude-sonnet-4-5"),
            (1, "ws-1", "summary", "gemini-2.5-flash"),
            (1, "ws-1", "other", "mystery-model"),
        ];
        let mut stored = Vec::new();
        for (i, (org, ws, name, model)) in templates.iter().enumerate() {
            let mut body = template_body(model);
            body["org_id"] = json!(orgs[*org]);
            body["workspace_id"] = json!(ws);
            body["name"] = json!(name);
            let id = app.create(&body).await;
            for r in 0..(3 + i) {
                let prompt = "word ".repeat(r * 7 + i + 1);
                let (s, v) = app
                    .post(
                        &format!("/api/prompt-templates/{id}/run"),
                        &json!({"rendered_prompt": prompt}),
                    )
                    .await;
                assert_eq!(s, 200, "{v}");
                let rid: Uuid = v["result_id"].as_str().unwrap().parse().unwrap();
                let rec = app
                    .prompter
                    .store()
                    .get_result(&prompter_storage::Scope::Unrestricted, rid)
                    .await
                    .unwrap();
                let keys = BTreeMap::from([
                    ("org", rec.org_id.clone()),
                    ("workspace", rec.workspace_id.clone()),
                    ("template", rec.template_id.to_string()),
                    ("prompt", name.to_string()),
                    ("provider", rec.usage.provider.clone().unwrap()),
                    ("model", model.to_string()),
                    ("day", rec.created_at.format("%Y-%m-%d").to_string()),
                ]);
                stored.push(Stored {
                    keys,
                    usage: rec.usage,
                });
            }
        }
        assert!(stored.iter().any(|s| s.usage.cost_micros.is_none()));
        assert!(stored.iter().any(|s| s.usage.cost_micros.unwrap_or(0) > 0));
        // The report is scoped to the caller: filter to our two orgs' rows
        // by grouping with `org` always included in the comparison below.
        for mask in 0u32..(1 << KEYS.len()) {
            let keys: Vec<(&str, &str)> = KEYS
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, k)| *k)
                .collect();
            for org in &orgs {
                let group_by: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
                let (s, rep) = app
                    .get(&format!(
                        "/api/usage?org_id={org}&group_by={}",
                        group_by.join(",")
                    ))
                    .await;
                assert_eq!(s, 200, "{rep}");
                let mut want: BTreeMap<Vec<String>, [i64; 7]> = BTreeMap::new();
                for st in stored.iter().filter(|s| &s.keys["org"] == org) {
                    let k: Vec<String> = keys.iter().map(|(n, _)| st.keys[n].clone()).collect();
                    let u = &st.usage;
                    let e = want.entry(k).or_default();
                    e[0] += 1;
                    e[1] += u.input_tokens.unwrap_or(0);
                    e[2] += u.output_tokens.unwrap_or(0);
                    e[3] += u.cached_input_tokens.unwrap_or(0);
                    e[4] += u.cache_write_input_tokens.unwrap_or(0);
                    e[5] += u.cost_micros.unwrap_or(0);
                    e[6] += i64::from(u.cost_micros.is_none());
                }
                let got: BTreeMap<Vec<String>, [i64; 7]> = rep["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| {
                        let k = keys
                            .iter()
                            .map(|(_, f)| i[*f].as_str().unwrap().to_string())
                            .collect();
                        let n = |f: &str| i[f].as_i64().unwrap();
                        (
                            k,
                            [
                                n("runs"),
                                n("input_tokens"),
                                n("output_tokens"),
                                n("cached_input_tokens"),
                                n("cache_write_input_tokens"),
                                n("cost_micros"),
                                n("unpriced_runs"),
                            ],
                        )
                    })
                    .collect();
                assert_eq!(got, want, "group_by={group_by:?} org={org}");
            }
        }
        // Bad queries name the field.
        for (q, needle) in [
            ("group_by=org,brand", "group_by"),
            ("since=2026-13-01", "since"),
            ("until=yesterday", "until"),
            ("since=2026-12-02&until=2026-12-01", "since"),
        ] {
            let (s, v) = app.get(&format!("/api/usage?{q}")).await;
            assert_eq!(s, 400, "{q}: {v}");
            assert_eq!(v["detail"]["code"], "INVALID_QUERY");
            assert!(
                v["detail"]["message"].as_str().unwrap().contains(needle),
                "{v}"
            );
        }
        // A day range with nothing in it.
        let (s, v) = app
            .get(&format!(
                "/api/usage?org_id={}&since=2000-01-01&until=2000-01-31&group_by=day",
                orgs[0]
            ))
            .await;
        assert_eq!(s, 200);
        assert_eq!(v["items"], json!([]));
        app.stop().await;
    }
}
