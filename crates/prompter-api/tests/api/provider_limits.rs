//! Concurrency caps and circuit breakers (issue 17) against the stub:
//! at most N calls in flight, the rest 503 `PROVIDER_SATURATED` after the
//! queue timeout (or served within it); a circuit opens after N provider
//! faults, fails fast without reaching the stub, half-opens after the
//! cool-down and closes on a successful trial.

use crate::helpers::*;
use serde_json::json;

async fn runs(app: &TestApp, id: &str, n: usize) -> Vec<Answer> {
    let path = format!("/api/prompt-templates/{id}/run");
    let calls = (0..n).map(|i| {
        let req = app
            .client
            .post(app.url(&path))
            .json(&json!({"rendered_prompt": format!("hello {i}")}));
        send(req)
    });
    futures::future::join_all(calls).await
}

#[tokio::test]
async fn calls_beyond_the_cap_wait_then_get_provider_saturated() {
    for db in backends() {
        // 2 slots; each call holds its slot 1 s; waiting ends after 200 ms.
        let app = spawn_with(db, |a| {
            a.stub_latency_ms = 1000;
            a.provider_max_inflight = vec!["openai=2".into()];
            a.provider_queue_timeout_ms = 200;
        })
        .await;
        let id = app.create(&template_body("gpt-4o")).await;
        let answers = runs(&app, &id, 5).await;
        let ok = answers.iter().filter(|a| a.status == 200).count();
        let saturated: Vec<&Answer> = answers.iter().filter(|a| a.status == 503).collect();
        assert_eq!(
            (ok, saturated.len()),
            (2, 3),
            "{:?}",
            answers.iter().map(|a| &a.body).collect::<Vec<_>>()
        );
        for a in &saturated {
            assert_eq!(a.body["detail"]["code"], "PROVIDER_SATURATED");
            assert!(a.headers.contains_key("retry-after"));
        }
        assert_eq!(app.stub.max_in_flight(), 2);
        assert_eq!(
            app.stub.completion_count(),
            2,
            "refused calls never reach the provider"
        );
        let text = app.metrics().await;
        assert!(
            metric_sum(
                &text,
                "prompter_provider_saturated_total",
                &[("provider", "openai")]
            ) >= 3.0
        );
        assert!(text.contains("prompter_provider_inflight{"));
        assert!(text.contains("prompter_provider_queued{"));
        app.stop().await;

        // Waiting longer than a call: every caller is served, one at a time.
        let app = spawn_with(db, |a| {
            a.stub_latency_ms = 100;
            a.provider_max_inflight = vec!["openai=1".into()];
            a.provider_queue_timeout_ms = 30_000;
        })
        .await;
        let id = app.create(&template_body("gpt-4o")).await;
        let answers = runs(&app, &id, 4).await;
        assert!(answers.iter().all(|a| a.status == 200));
        assert_eq!(app.stub.max_in_flight(), 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn a_circuit_opens_fails_fast_half_opens_and_closes() {
    for db in backends() {
        let app = spawn_with(db, |a| {
            a.stub_failure_rate = 1.0;
            a.stub_failure_kind = prompter_api::config::StubFailureArg::Upstream;
            a.provider_breaker_failures = 3;
            a.provider_breaker_cooldown_ms = 1500;
        })
        .await;
        // A model of its own: the circuit gauge is process-wide.
        let model = format!("gpt-4o-breaker-{db:?}").to_lowercase();
        let id = app.create(&template_body(&model)).await;
        for _ in 0..3 {
            let a = &runs(&app, &id, 1).await[0];
            assert_eq!(a.status, 502, "{}", a.body);
        }
        assert_eq!(app.stub.completion_count(), 3);
        // Open: fails fast, the stub is not called.
        let a = &runs(&app, &id, 1).await[0];
        assert_eq!(a.status, 503, "{}", a.body);
        assert_eq!(a.body["detail"]["code"], "PROVIDER_CIRCUIT_OPEN");
        assert!(a.headers.contains_key("retry-after"));
        assert_eq!(app.stub.completion_count(), 3);
        let text = app.metrics().await;
        let labels = [("provider", "openai"), ("model", model.as_str())];
        assert_eq!(
            metric_sum(&text, "prompter_provider_circuit_state", &labels),
            2.0
        );
        assert_eq!(
            metric_sum(&text, "prompter_provider_circuit_opened_total", &labels),
            1.0
        );
        // The detail view shows it; readiness does not fail.
        let (s, v) = app.get("/readyz?detail=1").await;
        assert_eq!(s, 200, "{v}");
        let c = v["circuits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["model"] == model.as_str())
            .unwrap()
            .clone();
        assert_eq!(c["state"], "open");
        assert_eq!(c["consecutive_failures"], 3);
        let (_, plain) = app.get("/readyz").await;
        assert!(plain.get("circuits").is_none());

        // The provider recovers; after the cool-down one trial closes it.
        app.stub.set_failure_rate(0.0);
        tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
        let a = &runs(&app, &id, 1).await[0];
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(app.stub.completion_count(), 4);
        let text = app.metrics().await;
        assert_eq!(
            metric_sum(&text, "prompter_provider_circuit_state", &labels),
            0.0
        );
        let answers = runs(&app, &id, 2).await;
        assert!(answers.iter().all(|a| a.status == 200));
        app.stop().await;
    }
}
