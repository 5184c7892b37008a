//! Direct SQL on the bench database: seeding the read scenarios' rows in
//! multi-row inserts, and the raw sqlx baseline of `create_unique`. The
//! statements are the store's own ([`TEMPLATE_INSERT`], [`RESULT_INSERT`]).

use super::{Plan, Res, ORG};
use chrono::{DateTime, Duration as ChronoDuration, SubsecRound, Utc};
use prompter_storage::testing::{RESULT_INSERT, TEMPLATE_INSERT};
use prompter_storage::{sqlite_timestamp, Backend};
use serde_json::{json, Value};
use sqlx::{PgPool, QueryBuilder, SqlitePool};
use std::str::FromStr;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The raw baseline's count.
#[derive(Debug, Clone)]
pub(super) struct RawResult {
    pub(super) ops: u64,
    pub(super) seconds: f64,
    pub(super) errors: u64,
}

impl RawResult {
    /// Inserts per second.
    pub(super) fn rps(&self) -> f64 {
        self.ops as f64 / self.seconds
    }
}

/// A plain sqlx pool on the bench database (the sqlx that sea-orm uses).
#[derive(Debug, Clone)]
pub(super) enum Seeder {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Rows per multi-row insert (19 or 12 parameters a row stays under both drivers' limits).
const SEED_BATCH: u64 = 1000;

/// Distinct, increasing timestamps for seeded rows (1 ms apart, in the past).
pub(super) fn seed_ts(i: u64) -> DateTime<Utc> {
    let base = DateTime::<Utc>::from_str("2025-01-01T00:00:00Z").expect("constant timestamp");
    base + ChronoDuration::milliseconds(i as i64)
}

/// Where a seeded result goes: its template, workspace (org [`ORG`]) and time.
#[derive(Debug, Clone, Copy)]
pub(super) struct Placed {
    pub(super) tpl: Uuid,
    pub(super) ws: &'static str,
    pub(super) created: DateTime<Utc>,
}

/// The usage every seeded result stores, as its response's `usage` block
/// says (`prompt_tokens` 20, `completion_tokens` 5).
#[derive(Debug, Clone, Copy)]
pub(super) struct SeedUsage {
    pub(super) input: i64,
    pub(super) output: i64,
    pub(super) cost_micros: i64,
}

/// gpt-4o at config/prices.toml's $2.50 / $10.00 per MTok: 20 × 2.5 + 5 × 10 = 100 µ$.
pub(super) const SEED_USAGE: SeedUsage = SeedUsage {
    input: 20,
    output: 5,
    cost_micros: 100,
};

struct TemplateRow {
    id: Uuid,
    org: String,
    ws: String,
    hash: String,
    canonical: String,
    created: DateTime<Utc>,
}

fn template_row(org: &str, ws: &str, i: u64, id: Option<Uuid>) -> TemplateRow {
    let hash = format!("{:064x}", (i as u128) << 32 | 0xbe7c);
    TemplateRow {
        id: id.unwrap_or_else(Uuid::now_v7),
        org: org.to_owned(),
        ws: ws.to_owned(),
        canonical: format!(
            r#"{{"country_set":["DE","GB","US"],"inference_params":{{"max_tokens":256,"temperature":0.7}},"model_id":"gpt-4o","seq":{i},"system_instructions":"You are a helpful assistant.","user_prompt_template":"Tell me about {{{{brand}}}} in {{{{country}}}}."}}"#
        ),
        hash,
        created: seed_ts(i),
    }
}

fn result_json() -> (Value, Value, Value) {
    (
        json!({"model": "gpt-4o", "params": {"temperature": 0.7},
            "messages": [{"role": "system", "content": "You are a helpful assistant."},
                         {"role": "user", "content": "Tell me about Acme in DE."}],
            "countries": ["DE"]}),
        json!({"id": "chatcmpl-bench", "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Acme is a company."}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5}}),
        json!({"analysis_scope": "brand"}),
    )
}

impl Seeder {
    pub(super) async fn connect(url: &str) -> Res<Seeder> {
        if url.starts_with("sqlite:") {
            use sqlx::sqlite::{
                SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
            };
            // The server's connection settings (WAL, NORMAL sync, FKs, busy
            // timeout, journal size limit); one connection: SQLite has one
            // writer, so that is raw sqlx's best case.
            let opts = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(prompter_storage::SQLITE_BUSY_TIMEOUT)
                .pragma(
                    "journal_size_limit",
                    prompter_storage::SQLITE_JOURNAL_SIZE_LIMIT.to_string(),
                );
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await?;
            Ok(Seeder::Sqlite(pool))
        } else {
            // The server's default pool size.
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .connect(url)
                .await?;
            Ok(Seeder::Postgres(pool))
        }
    }

    /// Gathers planner statistics after a bulk seed. The PostgreSQL of this
    /// machine runs with autovacuum off, so without it the planner believes
    /// the tables are empty: it then lists a 100k-template workspace through
    /// the dedup index plus a sort of every row (≈400 ms a page, measured)
    /// instead of walking `ix_tpl_org_ws_created`. Production autoanalyze
    /// does this by itself; a bulk import should run ANALYZE too. Likewise
    /// `VACUUM` of the (small, often updated) `usage_daily` rollup.
    pub(super) async fn analyze(&self) -> Res<()> {
        if let Seeder::Postgres(pool) = self {
            sqlx::query("ANALYZE prompt_templates")
                .execute(pool)
                .await?;
            sqlx::query("ANALYZE prompt_results").execute(pool).await?;
            // Every seeded batch updates the rollup rows it counts (as every
            // stored result does in production), leaving dead row versions
            // that autovacuum would clean up; it is off here, so vacuum.
            sqlx::query("VACUUM ANALYZE usage_daily")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// SQLite: `PRAGMA wal_checkpoint(TRUNCATE)`, untimed, before each round
    /// of `create_unique` and of its baseline, so neither side starts on a
    /// WAL the other (or the seeding) left behind.
    pub(super) async fn checkpoint(&self) -> Res<()> {
        if let Seeder::Sqlite(pool) = self {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_all(pool)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn close(&self) {
        match self {
            Seeder::Sqlite(p) => p.close().await,
            Seeder::Postgres(p) => p.close().await,
        }
    }

    /// Templates `first..first+n` of (org, ws), in batches; `id` fixes the id of a single row.
    pub(super) async fn template_rows(
        &self,
        org: &str,
        ws: &str,
        first: u64,
        n: u64,
        id: Option<Uuid>,
    ) -> Res<()> {
        let mut i = first;
        while i < first + n {
            let end = (i + SEED_BATCH).min(first + n);
            let rows: Vec<TemplateRow> = (i..end).map(|k| template_row(org, ws, k, id)).collect();
            macro_rules! push_rows {
                ($db:ty, $uuid:expr, $json:expr, $ts:expr) => {{
                    let mut qb = QueryBuilder::<$db>::new(TEMPLATE_INSERT.prefix());
                    qb.push_values(rows, |mut b, r| {
                        b.push_bind($uuid(r.id))
                            .push_bind(r.org)
                            .push_bind(r.ws)
                            .push_bind("seeded")
                            .push_bind("openai")
                            .push_bind("You are a helpful assistant.")
                            .push_bind("Tell me about {{brand}} in {{country}}.")
                            .push_bind($json(json!(["DE", "GB", "US"])))
                            .push_bind("gpt-4o")
                            .push_bind($json(json!({"temperature": 0.7, "max_tokens": 256})))
                            .push_bind($json(json!([])))
                            .push_bind($json(json!({})))
                            .push_bind(None::<String>)
                            .push_bind(None::<String>)
                            .push_bind($json(json!({})))
                            .push_bind(r.hash)
                            .push_bind(r.canonical)
                            .push_bind("bench")
                            .push_bind($ts(r.created));
                    });
                    qb
                }};
            }
            match self {
                Seeder::Sqlite(pool) => {
                    let mut qb = push_rows!(
                        sqlx::Sqlite,
                        |u: Uuid| u.hyphenated().to_string(),
                        |v: Value| v.to_string(),
                        sqlite_timestamp
                    );
                    qb.build().execute(pool).await?;
                }
                Seeder::Postgres(pool) => {
                    let mut qb = push_rows!(
                        sqlx::Postgres,
                        |u: Uuid| u,
                        |v: Value| v,
                        |t: DateTime<Utc>| t
                    );
                    qb.build().execute(pool).await?;
                }
            }
            i = end;
        }
        Ok(())
    }

    /// Results `first..first+n`, result `k` where `place(k)` puts it, each
    /// with the usage its response reports ([`SEED_USAGE`]). Every batch and
    /// its `usage_daily` rollup (the store's own statement,
    /// [`InsertSpec::after_sql`](prompter_storage::testing::InsertSpec::after_sql))
    /// commit together, as the store writes them.
    pub(super) async fn result_rows(
        &self,
        first: u64,
        n: u64,
        place: impl Fn(u64) -> Placed,
    ) -> Res<()> {
        let (request, response, analysis) = result_json();
        let mut i = first;
        while i < first + n {
            let end = (i + SEED_BATCH).min(first + n);
            let rows: Vec<(Uuid, Placed)> = (i..end).map(|k| (Uuid::now_v7(), place(k))).collect();
            let ids: Vec<Uuid> = rows.iter().map(|(id, _)| *id).collect();
            macro_rules! push_rows {
                ($db:ty, $uuid:expr, $json:expr, $ts:expr) => {{
                    let mut qb = QueryBuilder::<$db>::new(RESULT_INSERT.prefix());
                    qb.push_values(rows, |mut b, (id, p)| {
                        b.push_bind($uuid(id))
                            .push_bind(ORG)
                            .push_bind(p.ws)
                            .push_bind($uuid(p.tpl))
                            .push_bind(None::<Uuid>.map($uuid))
                            .push_bind("gpt-4o-2024-08-06")
                            .push_bind("fp_bench")
                            .push_bind("DE")
                            .push_bind($json(request.clone()))
                            .push_bind($json(response.clone()))
                            .push_bind($json(analysis.clone()))
                            .push_bind($ts(p.created))
                            .push_bind(None::<i32>)
                            .push_bind(None::<String>)
                            .push_bind(Some("Acme is a company."))
                            .push_bind("openai")
                            .push_bind(Some(SEED_USAGE.input))
                            .push_bind(Some(SEED_USAGE.output))
                            .push_bind(None::<i64>)
                            .push_bind(None::<i64>)
                            .push_bind(Some(SEED_USAGE.cost_micros));
                    });
                    qb
                }};
            }
            match self {
                Seeder::Sqlite(pool) => {
                    let mut qb = push_rows!(
                        sqlx::Sqlite,
                        |u: Uuid| u.hyphenated().to_string(),
                        |v: Value| v.to_string(),
                        sqlite_timestamp
                    );
                    let mut tx = pool.begin().await?;
                    qb.build().execute(&mut *tx).await?;
                    let sql = RESULT_INSERT
                        .after_sql(Backend::Sqlite, ids.len())
                        .ok_or("RESULT_INSERT has no rollup statement")?;
                    let mut q = sqlx::query(&sql);
                    for id in &ids {
                        q = q.bind(id.hyphenated().to_string());
                    }
                    q.execute(&mut *tx).await?;
                    tx.commit().await?;
                }
                Seeder::Postgres(pool) => {
                    let mut qb = push_rows!(
                        sqlx::Postgres,
                        |u: Uuid| u,
                        |v: Value| v,
                        |t: DateTime<Utc>| t
                    );
                    let mut tx = pool.begin().await?;
                    qb.build().execute(&mut *tx).await?;
                    let sql = RESULT_INSERT
                        .after_sql(Backend::Postgres, ids.len())
                        .ok_or("RESULT_INSERT has no rollup statement")?;
                    let mut q = sqlx::query(&sql);
                    for id in &ids {
                        q = q.bind(*id);
                    }
                    q.execute(&mut *tx).await?;
                    tx.commit().await?;
                }
            }
            i = end;
        }
        Ok(())
    }

    /// One create's insert, in its own (implicit) transaction, stepped to
    /// its end (`fetch_all`): SQLite runs its automatic WAL checkpoint only
    /// when an autocommit statement reaches `SQLITE_DONE`; sqlx's
    /// `fetch_optional` resets after the first row, so a baseline written
    /// with it never checkpointed, appended a WAL of hundreds of MB, and left
    /// that checkpoint to the server's next round.
    async fn raw_create(&self, org: &str, i: u64) -> Result<(), sqlx::Error> {
        let r = template_row(org, "ws", i, None);
        let now = Utc::now().trunc_subsecs(6);
        let sql = TEMPLATE_INSERT.sql(1);
        macro_rules! bind_all {
            ($q:expr, $uuid:expr, $json:expr, $ts:expr) => {
                $q.bind($uuid(r.id))
                    .bind(r.org)
                    .bind(r.ws)
                    .bind("bench")
                    .bind("openai")
                    .bind("You are a helpful assistant.")
                    .bind("Tell me about {{brand}} in {{country}}.")
                    .bind($json(json!(["DE", "GB", "US"])))
                    .bind("gpt-4o")
                    .bind($json(json!({"temperature": 0.7, "max_tokens": 256})))
                    .bind($json(json!([])))
                    .bind($json(json!({})))
                    .bind(None::<String>)
                    .bind(None::<String>)
                    .bind($json(json!({})))
                    .bind(r.hash)
                    .bind(r.canonical)
                    .bind(None::<String>)
                    .bind($ts(now))
            };
        }
        match self {
            Seeder::Sqlite(pool) => {
                bind_all!(
                    sqlx::query(&sql),
                    |u: Uuid| u.hyphenated().to_string(),
                    |v: Value| v.to_string(),
                    sqlite_timestamp
                )
                .fetch_all(pool)
                .await?;
            }
            Seeder::Postgres(pool) => {
                bind_all!(
                    sqlx::query(&sql),
                    |u: Uuid| u,
                    |v: Value| v,
                    |t: DateTime<Utc>| t
                )
                .fetch_all(pool)
                .await?;
            }
        }
        Ok(())
    }

    /// The raw baseline of `create_unique`: the same insert (a new org per
    /// row), `plan.connections` concurrent tasks, warm-up then `plan.seconds`.
    pub(super) async fn raw_create_baseline(&self, plan: &Plan, tag: &str) -> Res<RawResult> {
        let start = Instant::now();
        let window_start = start + Duration::from_secs_f64(plan.warmup);
        let window_end = window_start + Duration::from_secs_f64(plan.seconds);
        let mut set = tokio::task::JoinSet::new();
        for conn in 0..plan.connections {
            let db = self.clone();
            let org = format!("raw-{tag}-{conn}");
            set.spawn(async move {
                let (mut ops, mut errors, mut i) = (0u64, 0u64, 0u64);
                while Instant::now() < window_end {
                    let r = db.raw_create(&format!("{org}-{i}"), i).await;
                    i += 1;
                    let t = Instant::now();
                    if t >= window_start && t <= window_end {
                        match r {
                            Ok(()) => ops += 1,
                            Err(_) => errors += 1,
                        }
                    }
                }
                (ops, errors)
            });
        }
        let mut out = RawResult {
            ops: 0,
            seconds: plan.seconds,
            errors: 0,
        };
        while let Some(r) = set.join_next().await {
            let (ops, errors) = r?;
            out.ops += ops;
            out.errors += errors;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_template_hashes_are_distinct() {
        assert_ne!(
            template_row("o", "w", 1, None).hash,
            template_row("o", "w", 2, None).hash
        );
    }
}
