//! Provider calls are traced with the OpenTelemetry GenAI attributes.

use prompter_domain::{Limits, TemplateRequest};
use prompter_providers::{ProviderRegistry, StubConfig};
use prompter_service::{Prompter, RunRequest, Scope, ServiceConfig};
use prompter_storage::testing::TestDb;
use prompter_storage::{PoolConfig, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

type Fields = HashMap<String, String>;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(String, Fields)>>>);

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Visitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(&mut Visitor(fields));
            }
        }
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            let fields = span
                .extensions()
                .get::<Fields>()
                .cloned()
                .unwrap_or_default();
            self.0
                .lock()
                .unwrap()
                .push((span.name().to_owned(), fields));
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn provider_calls_carry_gen_ai_attributes() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let db = TestDb::sqlite().await;
    let store = Store::connect(db.url(), &PoolConfig::default())
        .await
        .unwrap();
    store.migrate_up().await.unwrap();
    let (registry, _stub) = ProviderRegistry::stub(StubConfig::default());
    let prompter = Prompter::new(store, registry, None, ServiceConfig::default());
    let body = br#"{"org_id":"o","workspace_id":"w","name":"n","model_id":"gemini-1.5-pro","user_prompt_template":"Hi {{brand}}"}"#;
    let tpl = prompter
        .create_template(TemplateRequest::parse(body, &Limits::default()).unwrap())
        .await
        .unwrap();
    let run = prompter
        .run(
            &Scope::Unrestricted,
            tpl.id,
            RunRequest {
                rendered_prompt: Some("Hi Acme".into()),
                analysis_scope: "brand".into(),
                runtime_vars: serde_json::json!({}),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    let spans = capture.0.lock().unwrap().clone();
    let (_, f) = spans
        .iter()
        .find(|(name, f)| {
            name == "gen_ai.client"
                && f.get("gen_ai.operation.name").map(String::as_str) == Some("chat")
        })
        .expect("a chat span");
    let get = |k: &str| {
        f.get(k)
            .cloned()
            .unwrap_or_else(|| panic!("missing {k} in {f:?}"))
    };
    assert_eq!(get("gen_ai.system"), "google");
    assert_eq!(get("gen_ai.request.model"), "gemini-1.5-pro");
    assert_eq!(get("gen_ai.response.model"), "gemini-1.5-pro-stub-001");
    assert_eq!(get("prompter.template_id"), tpl.id.to_string());
    assert_eq!(get("prompter.config_hash"), tpl.config_hash);
    assert_eq!(get("prompter.version_key"), run.result.provider_version_key);
    assert!(get("gen_ai.usage.input_tokens").parse::<u64>().is_ok());
    assert!(get("gen_ai.usage.output_tokens").parse::<u64>().is_ok());
}
