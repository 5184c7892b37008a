//! V7 databases for adoption tests (feature `test-util`), built from the DDL
//! facts of the V7 contract (§3, §3a), not from V7's code: on SQLite every
//! column TEXT, JSON written as Python's `json.dumps` default (`", "`,
//! `": "`, `\u` escapes) including the re-serialised canonical dict, and
//! both timestamp spellings; on PostgreSQL UUID caller ids, JSONB columns
//! (the canonical config too), TIMESTAMPTZ, `alembic_version`, `pgcrypto`.
//!
//! [`seed`] fills it with rows like V7 wrote: active and soft-deleted
//! templates, Unicode, a 30-digit integer, a float `1e16` (which JSONB
//! respells, so its hash cannot be recomputed on PostgreSQL), a version row
//! with the stub provider's key, and results with and without a version.

use crate::testing::TestDb;
use crate::Backend;
use prompter_domain::{
    canonicalize, hash8, ConfigHash, HashAlgorithm, Json, Limits, TemplateRequest,
};
use sqlx::Connection;

/// A template as V7 stored it.
#[derive(Debug, Clone)]
pub struct V7Template {
    /// V7's id.
    pub id: uuid::Uuid,
    /// Org (a UUID string).
    pub org_id: String,
    /// Workspace (a UUID string).
    pub workspace_id: String,
    /// The create body V7 accepted (exact text: big integers survive).
    pub body: String,
    /// V7's `config_hash` (sha256 of the canonical bytes).
    pub config_hash: String,
    /// The compact canonical bytes.
    pub canonical: String,
    /// Soft-deleted.
    pub deleted: bool,
    /// `created_at` as V7 spelled it (naive UTC).
    pub created_at: &'static str,
}

/// A version row as V7 stored it.
#[derive(Debug, Clone)]
pub struct V7Version {
    /// V7's id.
    pub id: uuid::Uuid,
    /// Its template.
    pub template_id: uuid::Uuid,
    /// The stub's key for openai `gpt-4o`.
    pub provider_version_key: String,
    /// `first_seen_at` as V7 spelled it.
    pub first_seen_at: &'static str,
}

/// A result as V7 stored it.
#[derive(Debug, Clone)]
pub struct V7Result {
    /// V7's id.
    pub id: uuid::Uuid,
    /// Its template.
    pub template_id: uuid::Uuid,
    /// Its version (None: V7 stored results without one).
    pub version_id: Option<uuid::Uuid>,
    /// The request JSON (exact text).
    pub request: String,
    /// The response JSON (exact text).
    pub response: String,
}

/// Everything [`seed`] wrote.
#[derive(Debug, Clone)]
pub struct V7Seed {
    /// Templates, oldest first.
    pub templates: Vec<V7Template>,
    /// Version rows.
    pub versions: Vec<V7Version>,
    /// Results.
    pub results: Vec<V7Result>,
}

impl V7Seed {
    /// Templates whose hash cannot be recomputed on this backend (the JSONB-respelled float).
    pub fn expected_mismatches(&self, backend: Backend) -> Vec<uuid::Uuid> {
        match backend {
            Backend::Sqlite => vec![],
            Backend::Postgres => self
                .templates
                .iter()
                .filter(|t| t.body.contains("1e16"))
                .map(|t| t.id)
                .collect(),
        }
    }
}

/// The stub provider's version key for openai `model` (contract §2).
pub fn stub_openai_key(model: &str) -> String {
    format!("fp_stub_{}", hash8(&format!("openai:{model}")))
}

/// Python's `json.dumps(v)` with default arguments (`", "`, `": "`,
/// `ensure_ascii=True`).
pub fn python_dumps(v: &Json) -> String {
    let mut out = String::new();
    dumps_into(&mut out, v);
    out
}

fn dumps_into(out: &mut String, v: &Json) {
    match v {
        Json::Str(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\u{8}' => out.push_str("\\b"),
                    '\u{c}' => out.push_str("\\f"),
                    c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                        let mut buf = [0u16; 2];
                        for unit in c.encode_utf16(&mut buf) {
                            out.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dumps_into(out, item);
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dumps_into(out, &Json::Str(k.clone()));
                out.push_str(": ");
                dumps_into(out, item);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

const SQLITE_DDL: &[&str] = &[
    "CREATE TABLE prompt_templates (id TEXT PRIMARY KEY, org_id TEXT NOT NULL, \
     workspace_id TEXT NOT NULL, name TEXT NOT NULL, provider TEXT, system_instructions TEXT, \
     user_prompt_template TEXT NOT NULL, country_set TEXT, model_id TEXT NOT NULL, \
     inference_params TEXT, tools_spec TEXT, response_format TEXT, grounding_profile_id TEXT, \
     grounding_snapshot_id TEXT, retrieval_params TEXT, config_hash TEXT NOT NULL, \
     config_canonical_json TEXT NOT NULL, created_by TEXT, \
     created_at TEXT DEFAULT (datetime('now')), deleted_at TEXT)",
    "CREATE UNIQUE INDEX ux_tpl_org_ws_confighash_active ON prompt_templates \
     (org_id, workspace_id, config_hash) WHERE deleted_at IS NULL",
    "CREATE TABLE prompt_versions (id TEXT PRIMARY KEY, org_id TEXT NOT NULL, \
     workspace_id TEXT NOT NULL, template_id TEXT NOT NULL REFERENCES prompt_templates (id), \
     provider TEXT NOT NULL, provider_version_key TEXT NOT NULL, model_id TEXT NOT NULL, \
     fingerprint_captured_at TEXT, first_seen_at TEXT DEFAULT (datetime('now')), \
     last_seen_at TEXT DEFAULT (datetime('now')), \
     UNIQUE (org_id, workspace_id, template_id, provider_version_key))",
    "CREATE TABLE prompt_results (id TEXT PRIMARY KEY, org_id TEXT NOT NULL, \
     workspace_id TEXT NOT NULL, template_id TEXT NOT NULL REFERENCES prompt_templates (id), \
     version_id TEXT REFERENCES prompt_versions (id), provider_version_key TEXT, \
     system_fingerprint TEXT, request TEXT, response TEXT, analysis_config TEXT, \
     created_at TEXT DEFAULT (datetime('now')))",
    "CREATE INDEX ix_results_tpl_time ON prompt_results (template_id, created_at DESC)",
    "CREATE INDEX ix_results_workspace ON prompt_results (workspace_id, created_at DESC)",
];

const PG_DDL: &[&str] = &[
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
    "INSERT INTO alembic_version VALUES ('7a1b2c3d4e5f')",
    "CREATE TABLE prompt_templates (id UUID PRIMARY KEY DEFAULT gen_random_uuid(), \
     org_id UUID NOT NULL, workspace_id UUID NOT NULL, name TEXT NOT NULL, provider TEXT, \
     system_instructions TEXT, user_prompt_template TEXT NOT NULL, country_set JSONB, \
     model_id TEXT NOT NULL, inference_params JSONB, tools_spec JSONB, response_format JSONB, \
     grounding_profile_id UUID, grounding_snapshot_id TEXT, retrieval_params JSONB, \
     config_hash TEXT NOT NULL, config_canonical_json JSONB NOT NULL, created_by UUID, \
     created_at TIMESTAMPTZ DEFAULT now(), deleted_at TIMESTAMPTZ)",
    "CREATE UNIQUE INDEX ux_tpl_org_ws_confighash_active ON prompt_templates \
     (org_id, workspace_id, config_hash) WHERE deleted_at IS NULL",
    "CREATE TABLE prompt_versions (id UUID PRIMARY KEY DEFAULT gen_random_uuid(), \
     org_id UUID NOT NULL, workspace_id UUID NOT NULL, \
     template_id UUID NOT NULL REFERENCES prompt_templates (id), provider TEXT NOT NULL, \
     provider_version_key TEXT NOT NULL, model_id TEXT NOT NULL, \
     fingerprint_captured_at TIMESTAMPTZ, first_seen_at TIMESTAMPTZ DEFAULT now(), \
     last_seen_at TIMESTAMPTZ DEFAULT now(), \
     CONSTRAINT ux_versions_org_ws_tpl_pvk \
     UNIQUE (org_id, workspace_id, template_id, provider_version_key))",
    "CREATE TABLE prompt_results (id UUID PRIMARY KEY DEFAULT gen_random_uuid(), \
     org_id UUID NOT NULL, workspace_id UUID NOT NULL, \
     template_id UUID NOT NULL REFERENCES prompt_templates (id), \
     version_id UUID REFERENCES prompt_versions (id), provider_version_key TEXT, \
     system_fingerprint TEXT, request JSONB, response JSONB, analysis_config JSONB, \
     created_at TIMESTAMPTZ DEFAULT now())",
    "CREATE INDEX ix_results_tpl_time ON prompt_results (template_id, created_at DESC)",
    "CREATE INDEX ix_results_workspace ON prompt_results (workspace_id, created_at DESC)",
];

/// Org and workspace of the seeded rows.
pub const ORG: &str = "4f8b2c1e-9d3a-4e6b-8c2d-1a2b3c4d5e6f";
/// Workspace of the seeded rows.
pub const WORKSPACE: &str = "0c9d8e7f-6a5b-4c3d-9e2f-112233445566";

fn template(n: u128, body: String, deleted: bool, created_at: &'static str) -> V7Template {
    let req = TemplateRequest::parse(body.as_bytes(), &Limits::default())
        .unwrap_or_else(|e| panic!("fixture body {body}: {e}"));
    let canonical = canonicalize(&req.config);
    V7Template {
        id: uuid::Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0000 + n),
        org_id: ORG.into(),
        workspace_id: WORKSPACE.into(),
        config_hash: ConfigHash::compute(HashAlgorithm::Sha256, &canonical).into_string(),
        canonical: canonical.into_string(),
        body,
        deleted,
        created_at,
    }
}

fn body(prompt: &str, extra: &str) -> String {
    format!(
        r#"{{"org_id":"{ORG}","workspace_id":"{WORKSPACE}","name":"t","provider":"openai","model_id":"gpt-4o","user_prompt_template":"{prompt}","country_set":["uk","de"]{extra}}}"#
    )
}

/// The rows [`seed`] writes.
pub fn rows() -> V7Seed {
    let templates = vec![
        template(
            1,
            body(
                "Grüße {{brand}} in 東京 😀",
                r#","inference_params":{"temperature":0.7,"seed":123456789012345678901234567890}"#,
            ),
            false,
            "2026-12-01 19:10:51",
        ),
        template(
            2,
            body(
                "Second {{brand}}",
                r#","tools_spec":[{"type":"function","name":"f","parameters":{"b":1.25,"a":true}}]"#,
            ),
            false,
            "2026-12-01 19:10:52.331260",
        ),
        template(
            3,
            body("Deleted {{brand}}", ""),
            true,
            "2026-12-01 19:10:53.5",
        ),
        template(
            4,
            body("Huge {{brand}}", r#","inference_params":{"x":1e16}"#),
            false,
            "2026-12-01 19:10:54",
        ),
    ];
    let key = stub_openai_key("gpt-4o");
    let versions = vec![V7Version {
        id: uuid::Uuid::from_u128(0x2000_0000_0000_4000_8000_0000_0000_0001),
        template_id: templates[0].id,
        provider_version_key: key.clone(),
        first_seen_at: "2026-12-01 19:11:00.000001",
    }];
    let results = vec![
        V7Result {
            id: uuid::Uuid::from_u128(0x3000_0000_0000_4000_8000_0000_0000_0001),
            template_id: templates[0].id,
            version_id: Some(versions[0].id),
            request: r#"{"model": "gpt-4o", "params": {"temperature": 0.7}, "messages": [{"role": "system", "content": ""}, {"role": "user", "content": "Grüße ACME"}], "countries": ["DE", "GB"]}"#.into(),
            response: r#"{"content": "Hallo 😀", "usage": {"total_tokens": 12}, "metadata": {"system_fingerprint": "fp"}}"#.into(),
        },
        V7Result {
            id: uuid::Uuid::from_u128(0x3000_0000_0000_4000_8000_0000_0000_0002),
            template_id: templates[1].id,
            version_id: None,
            request: r#"{"model": "gpt-4o", "messages": []}"#.into(),
            response: r#"{"content": "no version"}"#.into(),
        },
    ];
    V7Seed {
        templates,
        versions,
        results,
    }
}

fn field(body: &Json, key: &str) -> Option<String> {
    body.get(key)
        .filter(|v| !matches!(v, Json::Null))
        .map(python_dumps)
}

/// Creates V7's schema in the (empty) test database and writes [`rows`].
pub async fn seed(db: &TestDb) -> V7Seed {
    let seed = rows();
    match db.backend() {
        Backend::Sqlite => seed_sqlite(db, &seed).await,
        Backend::Postgres => seed_pg(db, &seed).await,
    }
    seed
}

async fn seed_sqlite(db: &TestDb, seed: &V7Seed) {
    let mut c = sqlx::SqliteConnection::connect(db.url())
        .await
        .expect("open the V7 SQLite file");
    for sql in SQLITE_DDL {
        sqlx::query(sql).execute(&mut c).await.expect(sql);
    }
    for t in &seed.templates {
        let b = prompter_domain::parse(t.body.as_bytes(), &Limits::default()).unwrap();
        let canon = prompter_domain::parse(t.canonical.as_bytes(), &Limits::default()).unwrap();
        sqlx::query(
            "INSERT INTO prompt_templates (id, org_id, workspace_id, name, provider, \
             system_instructions, user_prompt_template, country_set, model_id, inference_params, \
             tools_spec, response_format, config_hash, config_canonical_json, created_at, deleted_at) \
             VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)",
        )
        .bind(t.id.to_string())
        .bind(&t.org_id)
        .bind(&t.workspace_id)
        .bind("t")
        .bind("openai")
        .bind(b.get("user_prompt_template").and_then(Json::as_str).unwrap())
        .bind(field(&b, "country_set"))
        .bind("gpt-4o")
        .bind(field(&b, "inference_params").unwrap_or_else(|| "{}".into()))
        .bind(field(&b, "tools_spec").unwrap_or_else(|| "[]".into()))
        .bind(&t.config_hash)
        .bind(python_dumps(&canon))
        .bind(t.created_at)
        .bind(t.deleted.then_some("2026-12-01 20:00:00.123456"))
        .execute(&mut c)
        .await
        .expect("insert V7 template");
    }
    for v in &seed.versions {
        sqlx::query(
            "INSERT INTO prompt_versions (id, org_id, workspace_id, template_id, provider, \
             provider_version_key, model_id, fingerprint_captured_at, first_seen_at, last_seen_at) \
             VALUES (?, ?, ?, ?, 'openai', ?, 'gpt-4o', ?, ?, datetime('now'))",
        )
        .bind(v.id.to_string())
        .bind(ORG)
        .bind(WORKSPACE)
        .bind(v.template_id.to_string())
        .bind(&v.provider_version_key)
        .bind(v.first_seen_at)
        .bind(v.first_seen_at)
        .execute(&mut c)
        .await
        .expect("insert V7 version");
    }
    for r in &seed.results {
        sqlx::query(
            "INSERT INTO prompt_results (id, org_id, workspace_id, template_id, version_id, \
             provider_version_key, system_fingerprint, request, response, analysis_config) \
             VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, '{\"analysis_scope\": \"brand\"}')",
        )
        .bind(r.id.to_string())
        .bind(ORG)
        .bind(WORKSPACE)
        .bind(r.template_id.to_string())
        .bind(r.version_id.map(|v| v.to_string()))
        .bind(if r.version_id.is_some() {
            seed.versions[0].provider_version_key.clone()
        } else {
            "unknown".into()
        })
        .bind(&r.request)
        .bind(&r.response)
        .execute(&mut c)
        .await
        .expect("insert V7 result");
    }
    c.close().await.unwrap();
}

async fn seed_pg(db: &TestDb, seed: &V7Seed) {
    let mut c = sqlx::PgConnection::connect(db.url())
        .await
        .expect("open the V7 PostgreSQL database");
    // gen_random_uuid() is built in since PostgreSQL 13; V7 also created pgcrypto.
    let _ = sqlx::query("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        .execute(&mut c)
        .await;
    for sql in PG_DDL {
        sqlx::query(sql).execute(&mut c).await.expect(sql);
    }
    for t in &seed.templates {
        let b = prompter_domain::parse(t.body.as_bytes(), &Limits::default()).unwrap();
        sqlx::query(
            "INSERT INTO prompt_templates (id, org_id, workspace_id, name, provider, \
             system_instructions, user_prompt_template, country_set, model_id, inference_params, \
             tools_spec, response_format, config_hash, config_canonical_json, created_at, deleted_at) \
             VALUES ($1::uuid, $2::uuid, $3::uuid, 't', 'openai', '', $4, $5::jsonb, 'gpt-4o', \
             $6::jsonb, $7::jsonb, NULL, $8, $9::jsonb, $10::timestamptz, $11::timestamptz)",
        )
        .bind(t.id.to_string())
        .bind(&t.org_id)
        .bind(&t.workspace_id)
        .bind(b.get("user_prompt_template").and_then(Json::as_str).unwrap())
        .bind(field(&b, "country_set"))
        .bind(field(&b, "inference_params").unwrap_or_else(|| "{}".into()))
        .bind(field(&b, "tools_spec").unwrap_or_else(|| "[]".into()))
        .bind(&t.config_hash)
        .bind(&t.canonical)
        .bind(format!("{}+00", t.created_at))
        .bind(t.deleted.then_some("2026-12-01 20:00:00.123456+00"))
        .execute(&mut c)
        .await
        .expect("insert V7 template");
    }
    for v in &seed.versions {
        sqlx::query(
            "INSERT INTO prompt_versions (id, org_id, workspace_id, template_id, provider, \
             provider_version_key, model_id, fingerprint_captured_at, first_seen_at) \
             VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, 'openai', $5, 'gpt-4o', \
             $6::timestamptz, $6::timestamptz)",
        )
        .bind(v.id.to_string())
        .bind(ORG)
        .bind(WORKSPACE)
        .bind(v.template_id.to_string())
        .bind(&v.provider_version_key)
        .bind(format!("{}+00", v.first_seen_at))
        .execute(&mut c)
        .await
        .expect("insert V7 version");
    }
    for r in &seed.results {
        sqlx::query(
            "INSERT INTO prompt_results (id, org_id, workspace_id, template_id, version_id, \
             provider_version_key, request, response, analysis_config) \
             VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5::uuid, $6, $7::jsonb, $8::jsonb, \
             '{\"analysis_scope\": \"brand\"}'::jsonb)",
        )
        .bind(r.id.to_string())
        .bind(ORG)
        .bind(WORKSPACE)
        .bind(r.template_id.to_string())
        .bind(r.version_id.map(|v| v.to_string()))
        .bind(if r.version_id.is_some() {
            seed.versions[0].provider_version_key.clone()
        } else {
            "unknown".into()
        })
        .bind(&r.request)
        .bind(&r.response)
        .execute(&mut c)
        .await
        .expect("insert V7 result");
    }
    c.close().await.unwrap();
}
