//! Shared helpers for the storage integration tests.
#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use prompter_storage::{NewResult, NewTemplate, NewVersion, Store, TemplateRecord, VersionRecord};
use serde_json::json;
use uuid::Uuid;

/// Runs `async fn $name(db: TestDb)` as two tests: `$name::sqlite` (always)
/// and `$name::postgres` (when PROMPTER_TEST_POSTGRES_URL is set), each on
/// its own fresh database, on a multi-threaded runtime.
#[macro_export]
macro_rules! on_all_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(prompter_storage::testing::TestDb::sqlite().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(db) = prompter_storage::testing::TestDb::postgres_from_env().await {
                    super::$name(db).await
                }
            }
        }
    )*};
}

pub fn new_template(org: &str, ws: &str, hash: &str) -> NewTemplate {
    NewTemplate {
        org_id: org.into(),
        workspace_id: ws.into(),
        name: format!("tpl {hash}"),
        provider: Some("openai".into()),
        system_instructions: "Be brief.".into(),
        user_prompt_template: "Tell me about {{brand}}".into(),
        country_set: json!(["DE", "GB"]),
        model_id: "gpt-4o".into(),
        inference_params: json!({"temperature": 0.7}),
        tools_spec: json!([]),
        response_format: json!({}),
        grounding_profile_id: None,
        grounding_snapshot_id: None,
        retrieval_params: json!({}),
        config_hash: hash.into(),
        config_canonical_json: format!(r#"{{"b":1,"a":1.50,"hash":"{hash}"}}"#),
        created_by: Some("tester".into()),
    }
}

pub async fn template(store: &Store, org: &str, ws: &str) -> TemplateRecord {
    store
        .insert_template(new_template(org, ws, &Uuid::new_v4().simple().to_string()))
        .await
        .expect("insert template")
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

pub fn at(ms: i64) -> DateTime<Utc> {
    t0() + Duration::milliseconds(ms)
}

pub fn new_version(t: &TemplateRecord, key: &str, seen_at: DateTime<Utc>) -> NewVersion {
    NewVersion {
        org_id: t.org_id.clone(),
        workspace_id: t.workspace_id.clone(),
        template_id: t.id,
        provider: "openai".into(),
        provider_version_key: key.into(),
        model_id: t.model_id.clone(),
        seen_at,
        fingerprint_captured_at: None,
        enqueue_webhook: false,
    }
}

pub fn new_result(
    t: &TemplateRecord,
    v: Option<&VersionRecord>,
    country: Option<&str>,
) -> NewResult {
    NewResult {
        org_id: t.org_id.clone(),
        workspace_id: t.workspace_id.clone(),
        template_id: t.id,
        version_id: v.map(|v| v.id),
        provider_version_key: v
            .map(|v| v.provider_version_key.clone())
            .unwrap_or_else(|| "unknown".into()),
        system_fingerprint: Some("fp_1".into()),
        country: country.map(str::to_owned),
        request: json!({"model": t.model_id, "messages": [{"role": "user", "content": "hi"}]}),
        response: json!({"choices": [{"message": {"content": "hello"}}], "model": "gpt-4o-2024"}),
        analysis_config: json!({"analysis_scope": "brand"}),
        release: Default::default(),
        output: Some("hello".into()),
    }
}
