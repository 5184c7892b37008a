//! Group commit of single-row inserts (issue 9): result rows and templates.
//!
//! Every run stores one result row and every create one template row.
//! Written one autocommit statement each, a commit per row dominated their
//! cost under load: on PostgreSQL a WAL flush and a round trip per row
//! (≈0.4 ms of a 2-core machine per run, measured against a read-only
//! request), on SQLite one turn of the single writer per row, which under a
//! saturated CPU became a convoy (creates ran at a quarter of a raw sqlx
//! loop's inserts). An [`InsertBatcher`] hands each insert to one background
//! task that takes whatever has queued up while its previous writes ran and
//! writes it as a few multi-row `INSERT`s (chunks of 64, 32, …, 1 rows, so
//! each connection's statement cache holds at most 7 texts per table; one
//! statement in flight on SQLite, up to four on PostgreSQL, in unique-key
//! order so that they cannot deadlock). A lone insert is written at once, so
//! nothing waits for a batch to fill.
//!
//! The caller still waits for its own row's commit and gets its own answer:
//! with an `ON CONFLICT … DO NOTHING RETURNING id` tail (templates), a row
//! whose id is not returned was skipped by the unique index, and the caller
//! is told so; when a chunk fails (say a row names an unknown template),
//! each row of that chunk is retried alone, so one bad row fails only its
//! own caller.
//!
//! Templates are *numbered* (issue 14): each chunk is one transaction that
//! inserts the rows, then takes a range of revision numbers per prompt from
//! `prompt_revision_counters` (one multi-row upsert, prompts in key order so
//! concurrent chunks lock counters in the same order) for the rows that were
//! actually inserted, in id (= creation) order, and sets them. A row skipped
//! by the unique index takes no number; numbers are gapless per prompt.
//! A row may carry a webhook event (`template.created`): its body gets the
//! row's id and revision and is written to `webhook_outbox` in the same
//! transaction, so a created template has exactly one event and a skipped
//! or failed row none.

use crate::error::DbFail;
use crate::sql::WriteTx;
use crate::Backend;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex, Semaphore};
use uuid::Uuid;

/// Largest chunk written by one statement (64 × 19 parameters for templates
/// stays far below both drivers' parameter limits).
const MAX_CHUNK: usize = 64;
/// Inserts taken per round of the writer task.
const MAX_ROUND: usize = 1024;

/// What a batcher writes: `INSERT INTO {table} ({columns}) VALUES … {tail}`.
/// The one text of a table's insert: the repositories, the batcher and (with
/// `test-util`) the benchmarks' raw baselines all build their SQL from it.
#[derive(Debug)]
pub struct InsertSpec {
    pub(crate) table: &'static str,
    pub(crate) columns: &'static str,
    /// Appended to the statement: empty, or an `ON CONFLICT … DO NOTHING
    /// RETURNING id` clause (then [`InsertBatcher::insert`] reports skips).
    pub(crate) tail: &'static str,
    /// Rows get revision numbers per prompt (templates; see the module doc).
    pub(crate) numbered: bool,
    /// A statement run after the insert, in its transaction, over the ids
    /// of the rows it inserted (results: the usage rollup, issue 17).
    pub(crate) after: Option<fn(Backend, &[Uuid]) -> Statement>,
}

/// The prompt a numbered row belongs to: (org, workspace, name).
pub(crate) type PromptKey = (String, String, String);

/// What a numbered row carries besides its values.
#[derive(Debug)]
pub(crate) struct Numbered {
    /// Its prompt.
    pub(crate) prompt: PromptKey,
    /// A webhook event (id, JSON object body) enqueued with the row; the
    /// body's `template_id` and `revision` members are set to the row's.
    pub(crate) event: Option<(Uuid, serde_json::Value)>,
}

/// What happened to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    /// False when the spec's `ON CONFLICT` skipped it.
    pub(crate) inserted: bool,
    /// Its revision (numbered specs only).
    pub(crate) revision: Option<i64>,
}

/// Inserted ids → their revision (None unless numbered).
type Returned = HashMap<Uuid, Option<i64>>;

impl InsertSpec {
    fn returns_ids(&self) -> bool {
        !self.tail.is_empty()
    }

    /// `INSERT INTO {table} ({columns}) ` (a multi-row builder's prefix).
    pub fn prefix(&self) -> String {
        format!("INSERT INTO {} ({}) ", self.table, self.columns)
    }

    /// Number of columns (values per row).
    pub fn width(&self) -> usize {
        self.columns.split(',').count()
    }

    /// The statement the store runs after inserting `rows` rows, in the same
    /// transaction (results: the usage rollup), placeholders `$1…$rows` for
    /// their ids; `None` when there is none. A bulk loader writing rows with
    /// [`InsertSpec::prefix`] must run it too, or derived rows drift.
    #[cfg(feature = "test-util")]
    pub fn after_sql(&self, backend: Backend, rows: usize) -> Option<String> {
        self.after
            .map(|after| after(backend, &vec![Uuid::nil(); rows]).sql)
    }

    /// The whole statement for `rows` rows, placeholders `$1…` in row order.
    pub fn sql(&self, rows: usize) -> String {
        self.sql_for(Backend::Postgres, rows)
    }

    /// [`InsertSpec::sql`] with `backend`'s placeholders (`?` on SQLite; see
    /// [`Backend::push_param`]).
    pub(crate) fn sql_for(&self, backend: Backend, rows: usize) -> String {
        let per_row = self.width();
        let mut sql = self.prefix();
        sql.push_str("VALUES ");
        let mut p = 0;
        for r in 0..rows {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..per_row {
                p += 1;
                if c > 0 {
                    sql.push_str(", ");
                }
                backend.push_param(&mut sql, p);
            }
            sql.push(')');
        }
        sql.push_str(self.tail);
        sql
    }
}

type Reply = oneshot::Sender<Result<Written, DbFail>>;

struct Job {
    /// The row's id (its first value), matched against `RETURNING id`.
    id: Uuid,
    /// The row's unique key (empty when it has none): chunks are written in
    /// this order, so two chunks in flight take row locks in the same order
    /// and cannot deadlock on PostgreSQL.
    key: String,
    /// The prompt (and event) of a numbered row.
    numbered: Option<Numbered>,
    values: Vec<Value>,
    reply: Reply,
}

/// A row of a chunk as [`Writer::exec`] sees it.
type RowRef<'a> = (Uuid, Option<&'a Numbered>);

/// The sending side; cheap to clone. The writer task ends when the last
/// clone is dropped.
#[derive(Clone)]
pub(crate) struct InsertBatcher {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for InsertBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InsertBatcher").finish_non_exhaustive()
    }
}

/// The writer task's fixed context.
struct Writer {
    db: DatabaseConnection,
    backend: Backend,
    gate: Option<Arc<Mutex<()>>>,
    spec: &'static InsertSpec,
}

impl InsertBatcher {
    /// Starts the writer task on the current tokio runtime. `gate` is the
    /// store's SQLite write gate (taken around each statement).
    pub(crate) fn spawn(
        db: DatabaseConnection,
        backend: Backend,
        gate: Option<Arc<Mutex<()>>>,
        spec: &'static InsertSpec,
    ) -> InsertBatcher {
        let (tx, rx) = mpsc::channel(MAX_ROUND * 4);
        let w = Arc::new(Writer {
            db,
            backend,
            gate,
            spec,
        });
        tokio::spawn(run(rx, w));
        InsertBatcher { tx }
    }

    /// Inserts one row (`values` in the spec's column order, `id` first;
    /// `key` its unique key, or empty; `numbered` for numbered specs) and
    /// waits for its commit.
    pub(crate) async fn insert(
        &self,
        id: Uuid,
        key: String,
        numbered: Option<Numbered>,
        values: Vec<Value>,
    ) -> Result<Written, DbFail> {
        let (reply, done) = oneshot::channel();
        let gone = || DbFail::Orm(sea_orm::DbErr::Custom("insert writer stopped".into()));
        self.tx
            .send(Job {
                id,
                key,
                numbered,
                values,
                reply,
            })
            .await
            .map_err(|_| gone())?;
        done.await.map_err(|_| gone())?
    }
}

async fn run(mut rx: mpsc::Receiver<Job>, w: Arc<Writer>) {
    // Statements written at the same time: SQLite has one writer anyway; on
    // PostgreSQL a few in flight (each on its own connection) keep a large
    // round from waiting on one commit after another.
    let in_flight = Arc::new(Semaphore::new(match w.backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 4,
    }));
    while let Some(first) = rx.recv().await {
        // While every statement slot is busy, more inserts queue up for the
        // next round.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let mut round = vec![first];
        while round.len() < MAX_ROUND {
            match rx.try_recv() {
                Ok(job) => round.push(job),
                Err(_) => break,
            }
        }
        round.sort_by(|a, b| a.key.cmp(&b.key));
        let mut permit = Some(permit);
        while !round.is_empty() {
            // Largest power of two not above what is left (and MAX_CHUNK).
            let n = MAX_CHUNK.min(1 << (usize::BITS - 1 - round.len().leading_zeros()));
            let chunk: Vec<Job> = round.drain(..n).collect();
            let permit = match permit.take() {
                Some(p) => p,
                None => match in_flight.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let w = w.clone();
            tokio::spawn(async move {
                w.write_chunk(chunk).await;
                drop(permit);
            });
        }
    }
}

impl Writer {
    async fn write_chunk(&self, mut chunk: Vec<Job>) {
        if chunk.len() == 1 {
            let job = chunk.pop().expect("one job");
            let rows = [(job.id, job.numbered.as_ref())];
            let res = self
                .exec(&rows, job.values)
                .await
                .map(|ids| self.written(&ids, job.id));
            let _ = job.reply.send(res);
            return;
        }
        let values: Vec<Value> = chunk
            .iter()
            .flat_map(|j| j.values.iter().cloned())
            .collect();
        let rows: Vec<RowRef<'_>> = chunk.iter().map(|j| (j.id, j.numbered.as_ref())).collect();
        let res = self.exec(&rows, values).await;
        drop(rows);
        match res {
            Ok(ids) => {
                for job in chunk {
                    let _ = job.reply.send(Ok(self.written(&ids, job.id)));
                }
            }
            Err(_) => {
                // One row may be bad: give every row its own statement and answer.
                for job in chunk {
                    let rows = [(job.id, job.numbered.as_ref())];
                    let res = self
                        .exec(&rows, job.values)
                        .await
                        .map(|ids| self.written(&ids, job.id));
                    let _ = job.reply.send(res);
                }
            }
        }
    }

    /// What happened to row `id`, given what the statement returned.
    fn written(&self, returned: &Returned, id: Uuid) -> Written {
        if !self.spec.returns_ids() {
            return Written {
                inserted: true,
                revision: None,
            };
        }
        match returned.get(&id) {
            Some(revision) => Written {
                inserted: true,
                revision: *revision,
            },
            None => Written {
                inserted: false,
                revision: None,
            },
        }
    }

    /// One multi-row statement (numbered specs: one transaction); the ids it
    /// inserted with their revisions (empty without a tail).
    async fn exec(&self, rows: &[RowRef<'_>], values: Vec<Value>) -> Result<Returned, DbFail> {
        let stmt = self.insert_stmt(rows.len(), values);
        if self.spec.numbered {
            return self.exec_numbered(rows, stmt).await;
        }
        if let Some(after) = self.spec.after {
            return self.exec_then(rows, stmt, after).await;
        }
        let spec = self.spec;
        let _gate = match &self.gate {
            Some(g) => Some(g.lock().await),
            None => None,
        };
        if !spec.returns_ids() {
            self.db.execute(stmt).await?;
            return Ok(HashMap::new());
        }
        let rows = self.db.query_all(stmt).await?;
        drop(_gate);
        Ok(self.ids(&rows)?.into_iter().map(|id| (id, None)).collect())
    }

    fn ids(&self, rows: &[sea_orm::QueryResult]) -> Result<HashSet<Uuid>, DbFail> {
        rows.iter()
            .map(|row| {
                crate::sql::Row {
                    row,
                    backend: self.backend,
                }
                .uuid("id")
                .map_err(|e| DbFail::Orm(sea_orm::DbErr::Custom(e.to_string())))
            })
            .collect()
    }

    /// Opens a write transaction (SQLite: the gate, then `BEGIN IMMEDIATE`).
    async fn begin(&self) -> Result<WriteTx, DbFail> {
        match self.backend {
            Backend::Postgres => Ok(WriteTx::Orm(self.db.begin().await?)),
            Backend::Sqlite => {
                let gate = match &self.gate {
                    Some(g) => Some(g.clone().lock_owned().await),
                    None => None,
                };
                let tx = self
                    .db
                    .get_sqlite_connection_pool()
                    .begin_with("BEGIN IMMEDIATE")
                    .await?;
                Ok(WriteTx::Sqlite { tx, _gate: gate })
            }
        }
    }

    /// Inserts, then runs `after` over the rows' ids, in one transaction
    /// (specs without a tail: every row is inserted or the statement fails).
    async fn exec_then(
        &self,
        rows: &[RowRef<'_>],
        insert: Statement,
        after: fn(Backend, &[Uuid]) -> Statement,
    ) -> Result<Returned, DbFail> {
        debug_assert!(!self.spec.returns_ids());
        let ids: Vec<Uuid> = rows.iter().map(|(id, _)| *id).collect();
        let mut tx = self.begin().await?;
        tx.execute(insert).await?;
        tx.execute(after(self.backend, &ids)).await?;
        tx.commit().await?;
        Ok(HashMap::new())
    }

    /// Inserts, then numbers the inserted rows per prompt and enqueues
    /// their events, in one transaction.
    async fn exec_numbered(
        &self,
        rows: &[RowRef<'_>],
        insert: Statement,
    ) -> Result<Returned, DbFail> {
        let mut tx = self.begin().await?;
        let inserted = self.ids(&tx.query_all(insert).await?)?;
        // Inserted rows per prompt, each in id (creation) order.
        let mut by_prompt: BTreeMap<&PromptKey, Vec<Uuid>> = BTreeMap::new();
        for (id, numbered) in rows {
            if let (true, Some(n)) = (inserted.contains(id), numbered) {
                by_prompt.entry(&n.prompt).or_default().push(*id);
            }
        }
        let mut out: Returned = inserted.iter().map(|id| (*id, None)).collect();
        if by_prompt.is_empty() {
            tx.commit().await?;
            return Ok(out);
        }
        let b = self.backend;
        // 1. Take a range of numbers per prompt (prompts in key order).
        let mut sql = String::from(
            "INSERT INTO prompt_revision_counters (org_id, workspace_id, name, last_revision) VALUES ",
        );
        let mut values = Vec::with_capacity(by_prompt.len() * 4);
        for (i, ((org, ws, name), ids)) in by_prompt.iter_mut().enumerate() {
            ids.sort();
            let p = i * 4;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for k in 1..=4 {
                if k > 1 {
                    sql.push_str(", ");
                }
                b.push_param(&mut sql, p + k);
            }
            sql.push(')');
            values.extend([
                crate::sql::text(org),
                crate::sql::text(ws),
                crate::sql::text(name),
                crate::sql::int(ids.len() as i64),
            ]);
        }
        sql.push_str(
            " ON CONFLICT (org_id, workspace_id, name) DO UPDATE \
             SET last_revision = prompt_revision_counters.last_revision + excluded.last_revision \
             RETURNING org_id, workspace_id, name, last_revision",
        );
        let counters = tx
            .query_all(Statement::from_sql_and_values(b.db(), sql, values))
            .await?;
        let mut assigned: Vec<(Uuid, i64)> = Vec::with_capacity(inserted.len());
        for row in &counters {
            let r = crate::sql::Row { row, backend: b };
            let bad = |e: crate::StorageError| DbFail::Orm(sea_orm::DbErr::Custom(e.to_string()));
            let key = (
                r.text("org_id").map_err(bad)?,
                r.text("workspace_id").map_err(bad)?,
                r.text("name").map_err(bad)?,
            );
            let last = r.i64("last_revision").map_err(bad)?;
            if let Some(ids) = by_prompt.get(&key) {
                let first = last - ids.len() as i64 + 1;
                for (k, id) in ids.iter().enumerate() {
                    assigned.push((*id, first + k as i64));
                }
            }
        }
        // 2. Set them.
        let mut sql = String::from("UPDATE prompt_templates SET revision = v.");
        sql.push_str(match b {
            Backend::Postgres => "rev FROM (VALUES ",
            Backend::Sqlite => "column2 FROM (VALUES ",
        });
        let mut values = Vec::with_capacity(assigned.len() * 2);
        for (i, (id, rev)) in assigned.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            b.push_param(&mut sql, i * 2 + 1);
            sql.push_str(", ");
            b.push_param(&mut sql, i * 2 + 2);
            sql.push(')');
            values.extend([b.uuid(*id), crate::sql::int(*rev)]);
        }
        sql.push_str(match b {
            Backend::Postgres => ") AS v (id, rev) WHERE prompt_templates.id = v.id",
            Backend::Sqlite => ") AS v WHERE prompt_templates.id = v.column1",
        });
        tx.execute(Statement::from_sql_and_values(b.db(), sql, values))
            .await?;
        // 3. The inserted rows' events.
        let events: Vec<(Uuid, String)> = assigned
            .iter()
            .filter_map(|(id, rev)| {
                let (_, Some(n)) = rows.iter().find(|(r, _)| r == id)? else {
                    return None;
                };
                let (event_id, body) = n.event.as_ref()?;
                let mut body = body.clone();
                body["template_id"] = serde_json::Value::from(id.to_string());
                body["revision"] = serde_json::Value::from(*rev);
                Some((*event_id, body.to_string()))
            })
            .collect();
        if !events.is_empty() {
            tx.execute(outbox_insert(b, &events)).await?;
        }
        tx.commit().await?;
        for (id, rev) in assigned {
            out.insert(id, Some(rev));
        }
        Ok(out)
    }

    /// `INSERT INTO … VALUES (…), … {tail}` for `rows` rows (see [`InsertSpec::sql`]).
    fn insert_stmt(&self, rows: usize, values: Vec<Value>) -> Statement {
        debug_assert_eq!(values.len(), rows * self.spec.width());
        Statement::from_sql_and_values(
            self.backend.db(),
            self.spec.sql_for(self.backend, rows),
            values,
        )
    }
}

/// One multi-row insert of webhook deliveries (event id, payload), due now.
fn outbox_insert(b: Backend, events: &[(Uuid, String)]) -> Statement {
    let mut sql = String::from(
        "INSERT INTO webhook_outbox (id, event_id, payload, attempts, next_attempt_at, \
         delivered_at, last_error, created_at) VALUES ",
    );
    let now = b.ts(crate::sql::now());
    let mut values = Vec::with_capacity(events.len() * 3 + 1);
    values.push(now);
    for (i, (event_id, payload)) in events.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let p = i * 3 + 2;
        sql.push_str(&format!(
            "(${p}, ${}, ${}, 0, $1, NULL, NULL, $1)",
            p + 1,
            p + 2
        ));
        values.extend([
            b.uuid(Uuid::now_v7()),
            b.uuid(*event_id),
            crate::sql::text(payload),
        ]);
    }
    Statement::from_sql_and_values(b.db(), sql, values)
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunks_are_powers_of_two() {
        let chunk =
            |left: usize| super::MAX_CHUNK.min(1 << (usize::BITS - 1 - left.leading_zeros()));
        assert_eq!(chunk(1), 1);
        assert_eq!(chunk(37), 32);
        assert_eq!(chunk(64), 64);
        assert_eq!(chunk(1000), 64);
    }
}
