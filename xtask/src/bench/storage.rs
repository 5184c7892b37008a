//! `cargo xtask bench storage`: template and result inserts per second
//! through [`Store`], each beside a raw sqlx baseline that runs the same
//! single-row statements directly on the same sqlx pool (so the ratio is the
//! cost of the repository layer: sea-orm statements, value conversion,
//! error mapping, metrics). Runs on a SQLite temp file always and on a fresh
//! PostgreSQL database when `--postgres-url` or `PROMPTER_TEST_POSTGRES_URL`
//! is given. Bounded by `--count` operations and `--seconds` per round.

use crate::TaskResult;
use chrono::{DateTime, SubsecRound, Utc};
use prompter_storage::testing::{TestDb, RESULT_INSERT, TEMPLATE_INSERT};
use prompter_storage::{sqlite_timestamp, Backend, NewResult, NewTemplate, Store};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Options of `bench storage`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// PostgreSQL server to create a scratch database on
    /// [default: $PROMPTER_TEST_POSTGRES_URL; without either, PostgreSQL is skipped]
    #[arg(long)]
    postgres_url: Option<String>,
    /// Operations per measured round.
    #[arg(long, default_value_t = 2000)]
    count: u64,
    /// Upper bound of one measured round, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Rounds per mode (store and raw alternate, to share any drift).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Concurrent tasks issuing inserts.
    #[arg(long, default_value_t = 4)]
    concurrency: u64,
}

const TARGET_RATIO: f64 = 0.7;

/// The store's own single-row statements (`prompter_storage::testing`).
static TEMPLATE_SQL: LazyLock<String> = LazyLock::new(|| TEMPLATE_INSERT.sql(1));
static RESULT_SQL: LazyLock<String> = LazyLock::new(|| RESULT_INSERT.sql(1));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Template,
    Result,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Store,
    Raw,
}

/// Runs the storage benchmark.
pub fn run(opts: Options) -> TaskResult {
    crate::runtime().block_on(async move {
        let pg_url = opts
            .postgres_url
            .clone()
            .or_else(|| std::env::var("PROMPTER_TEST_POSTGRES_URL").ok())
            .filter(|s| !s.trim().is_empty());
        let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
        println!(
            "bench storage: {} ops x {} rounds per mode (max {}s per round), concurrency {}, {profile} build",
            opts.count, opts.rounds, opts.seconds, opts.concurrency
        );
        let mut rows = Vec::new();
        let sqlite = TestDb::sqlite().await;
        rows.extend(bench_backend(&sqlite, &opts).await?);
        let pg = match &pg_url {
            Some(url) => Some(TestDb::postgres(url).await),
            None => {
                println!("PostgreSQL skipped: no --postgres-url and PROMPTER_TEST_POSTGRES_URL unset");
                None
            }
        };
        if let Some(pg) = &pg {
            rows.extend(bench_backend(pg, &opts).await?);
        }
        println!();
        println!(
            "{:<9} {:<16} {:>14} {:>14} {:>7}  target >= {TARGET_RATIO}",
            "backend", "operation", "store ops/s", "raw sqlx ops/s", "ratio"
        );
        let mut all_ok = true;
        for (backend, op, store, raw) in &rows {
            let ratio = store / raw;
            let ok = ratio >= TARGET_RATIO;
            all_ok &= ok;
            println!(
                "{:<9} {:<16} {:>14.0} {:>14.0} {:>7.2}  {}",
                backend.as_str(),
                match op {
                    Op::Template => "template insert",
                    Op::Result => "result insert",
                },
                store,
                raw,
                ratio,
                if ok { "ok" } else { "BELOW TARGET" }
            );
        }
        if !all_ok {
            println!("(a ratio below target is reported, not fatal: timings on a shared machine are noisy)");
        }
        Ok(())
    })
}

type Row = (Backend, Op, f64, f64);

async fn bench_backend(
    db: &TestDb,
    opts: &Options,
) -> Result<Vec<Row>, Box<dyn std::error::Error + Send + Sync>> {
    let store = db.store().await;
    let backend = store.backend();
    let tpl = store.insert_template(template("seed")).await?;
    let mut out = Vec::new();
    for op in [Op::Template, Op::Result] {
        // warm up both paths (connections, statement caches)
        measure(&store, op, Mode::Store, &tpl, opts, opts.count / 10 + 1).await?;
        measure(&store, op, Mode::Raw, &tpl, opts, opts.count / 10 + 1).await?;
        let (mut s_ops, mut s_t, mut r_ops, mut r_t) = (0u64, 0f64, 0u64, 0f64);
        for _ in 0..opts.rounds {
            let (n, t) = measure(&store, op, Mode::Store, &tpl, opts, opts.count).await?;
            s_ops += n;
            s_t += t;
            let (n, t) = measure(&store, op, Mode::Raw, &tpl, opts, opts.count).await?;
            r_ops += n;
            r_t += t;
        }
        let (s, r) = (s_ops as f64 / s_t, r_ops as f64 / r_t);
        println!(
            "{backend:<9} {op:?}: store {s:.0} ops/s ({s_ops} ops), raw {r:.0} ops/s ({r_ops} ops)"
        );
        out.push((backend, op, s, r));
    }
    store.close().await;
    Ok(out)
}

/// Runs up to `count` operations (bounded by `opts.seconds`); returns (ops, seconds).
async fn measure(
    store: &Store,
    op: Op,
    mode: Mode,
    tpl: &prompter_storage::TemplateRecord,
    opts: &Options,
    count: u64,
) -> Result<(u64, f64), Box<dyn std::error::Error + Send + Sync>> {
    let deadline = Instant::now() + Duration::from_secs_f64(opts.seconds);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let store = store.clone();
        let next = next.clone();
        let tpl = tpl.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while next.fetch_add(1, Ordering::Relaxed) < count && Instant::now() < deadline {
                one(&store, op, mode, &tpl).await?;
                done += 1;
            }
            Ok::<u64, Box<dyn std::error::Error + Send + Sync>>(done)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok((total, start.elapsed().as_secs_f64()))
}

fn template(hash: &str) -> NewTemplate {
    NewTemplate {
        org_id: "bench-org".into(),
        workspace_id: "bench-ws".into(),
        name: "bench".into(),
        provider: Some("openai".into()),
        system_instructions: "You are a helpful assistant.".into(),
        user_prompt_template: "Tell me about {{brand}} in {{country}}.".into(),
        country_set: json!(["DE", "GB", "US"]),
        model_id: "gpt-4o".into(),
        inference_params: json!({"temperature": 0.7, "max_tokens": 256}),
        tools_spec: json!([]),
        response_format: json!({}),
        grounding_profile_id: None,
        grounding_snapshot_id: None,
        retrieval_params: json!({}),
        config_hash: hash.into(),
        config_canonical_json: format!(
            r#"{{"system_instructions":"You are a helpful assistant.","hash":"{hash}"}}"#
        ),
        created_by: Some("bench".into()),
    }
}

fn result(tpl: &prompter_storage::TemplateRecord) -> NewResult {
    NewResult {
        org_id: tpl.org_id.clone(),
        workspace_id: tpl.workspace_id.clone(),
        template_id: tpl.id,
        version_id: None,
        provider_version_key: "gpt-4o-2024-08-06".into(),
        system_fingerprint: Some("fp_bench".into()),
        country: Some("DE".into()),
        request: json!({"model": "gpt-4o", "params": {"temperature": 0.7},
            "messages": [{"role": "system", "content": "You are a helpful assistant."},
                         {"role": "user", "content": "Tell me about Acme in DE."}],
            "countries": ["DE"]}),
        response: json!({"id": "chatcmpl-bench", "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Acme is a company."}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5}}),
        analysis_config: json!({"analysis_scope": "brand"}),
        release: Default::default(),
        output: Some("Acme is a company.".into()),
        usage: prompter_storage::RunUsage {
            provider: Some("openai".into()),
            input_tokens: Some(20),
            output_tokens: Some(5),
            cached_input_tokens: Some(0),
            cache_write_input_tokens: None,
            cost_micros: Some(100),
        },
    }
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

async fn one(
    store: &Store,
    op: Op,
    mode: Mode,
    tpl: &prompter_storage::TemplateRecord,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match (mode, op) {
        (Mode::Store, Op::Template) => {
            store
                .insert_template(template(&Uuid::new_v4().simple().to_string()))
                .await?;
        }
        (Mode::Store, Op::Result) => {
            store.insert_result(result(tpl)).await?;
        }
        (Mode::Raw, Op::Template) => {
            raw_template(store, template(&Uuid::new_v4().simple().to_string())).await?
        }
        (Mode::Raw, Op::Result) => raw_result(store, result(tpl)).await?,
    }
    Ok(())
}

/// The template insert, written directly against sqlx on the Store's own pool.
async fn raw_template(store: &Store, t: NewTemplate) -> Result<(), sqlx::Error> {
    let id = Uuid::now_v7();
    let created = now();
    match store.backend() {
        Backend::Sqlite => {
            let pool = store.connection().get_sqlite_connection_pool();
            sqlx::query(&TEMPLATE_SQL)
                .bind(id.hyphenated().to_string())
                .bind(t.org_id)
                .bind(t.workspace_id)
                .bind(t.name)
                .bind(t.provider)
                .bind(t.system_instructions)
                .bind(t.user_prompt_template)
                .bind(t.country_set.to_string())
                .bind(t.model_id)
                .bind(t.inference_params.to_string())
                .bind(t.tools_spec.to_string())
                .bind(t.response_format.to_string())
                .bind(t.grounding_profile_id)
                .bind(t.grounding_snapshot_id)
                .bind(t.retrieval_params.to_string())
                .bind(t.config_hash)
                .bind(t.config_canonical_json)
                .bind(t.created_by)
                .bind(sqlite_timestamp(created))
                .fetch_optional(pool)
                .await?;
        }
        Backend::Postgres => {
            let pool = store.connection().get_postgres_connection_pool();
            sqlx::query(&TEMPLATE_SQL)
                .bind(id)
                .bind(t.org_id)
                .bind(t.workspace_id)
                .bind(t.name)
                .bind(t.provider)
                .bind(t.system_instructions)
                .bind(t.user_prompt_template)
                .bind(t.country_set)
                .bind(t.model_id)
                .bind(t.inference_params)
                .bind(t.tools_spec)
                .bind(t.response_format)
                .bind(t.grounding_profile_id)
                .bind(t.grounding_snapshot_id)
                .bind(t.retrieval_params)
                .bind(t.config_hash)
                .bind(t.config_canonical_json)
                .bind(t.created_by)
                .bind(created)
                .fetch_optional(pool)
                .await?;
        }
    }
    Ok(())
}

/// The result insert, written directly against sqlx on the Store's own pool.
async fn raw_result(store: &Store, r: NewResult) -> Result<(), sqlx::Error> {
    let id = Uuid::now_v7();
    let created = now();
    match store.backend() {
        Backend::Sqlite => {
            let pool = store.connection().get_sqlite_connection_pool();
            sqlx::query(&RESULT_SQL)
                .bind(id.hyphenated().to_string())
                .bind(r.org_id)
                .bind(r.workspace_id)
                .bind(r.template_id.hyphenated().to_string())
                .bind(r.version_id.map(|v| v.hyphenated().to_string()))
                .bind(r.provider_version_key)
                .bind(r.system_fingerprint)
                .bind(r.country)
                .bind(r.request.to_string())
                .bind(r.response.to_string())
                .bind(r.analysis_config.to_string())
                .bind(sqlite_timestamp(created))
                .bind(r.release.revision.map(|v| v as i32))
                .bind(r.release.label)
                .bind(r.output)
                .bind(r.usage.provider)
                .bind(r.usage.input_tokens)
                .bind(r.usage.output_tokens)
                .bind(r.usage.cached_input_tokens)
                .bind(r.usage.cache_write_input_tokens)
                .bind(r.usage.cost_micros)
                .execute(pool)
                .await?;
        }
        Backend::Postgres => {
            let pool = store.connection().get_postgres_connection_pool();
            sqlx::query(&RESULT_SQL)
                .bind(id)
                .bind(r.org_id)
                .bind(r.workspace_id)
                .bind(r.template_id)
                .bind(r.version_id)
                .bind(r.provider_version_key)
                .bind(r.system_fingerprint)
                .bind(r.country)
                .bind(r.request)
                .bind(r.response)
                .bind(r.analysis_config)
                .bind(created)
                .bind(r.release.revision.map(|v| v as i32))
                .bind(r.release.label)
                .bind(r.output)
                .bind(r.usage.provider)
                .bind(r.usage.input_tokens)
                .bind(r.usage.output_tokens)
                .bind(r.usage.cached_input_tokens)
                .bind(r.usage.cache_write_input_tokens)
                .bind(r.usage.cost_micros)
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}
