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

use crate::error::DbFail;
use crate::Backend;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};
use std::collections::HashSet;
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
}

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

    /// The whole statement for `rows` rows, placeholders `$1…` in row order.
    pub fn sql(&self, rows: usize) -> String {
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
                sql.push('$');
                sql.push_str(&p.to_string());
            }
            sql.push(')');
        }
        sql.push_str(self.tail);
        sql
    }
}

type Reply = oneshot::Sender<Result<bool, DbFail>>;

struct Job {
    /// The row's id (its first value), matched against `RETURNING id`.
    id: Uuid,
    /// The row's unique key (empty when it has none): chunks are written in
    /// this order, so two chunks in flight take row locks in the same order
    /// and cannot deadlock on PostgreSQL.
    key: String,
    values: Vec<Value>,
    reply: Reply,
}

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
    /// `key` its unique key, or empty) and waits for its commit.
    /// `Ok(false)`: the spec's `ON CONFLICT` skipped it.
    pub(crate) async fn insert(
        &self,
        id: Uuid,
        key: String,
        values: Vec<Value>,
    ) -> Result<bool, DbFail> {
        let (reply, done) = oneshot::channel();
        let gone = || DbFail::Orm(sea_orm::DbErr::Custom("insert writer stopped".into()));
        self.tx
            .send(Job {
                id,
                key,
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
            let res = self
                .exec(1, job.values)
                .await
                .map(|ids| self.written(&ids, job.id));
            let _ = job.reply.send(res);
            return;
        }
        let values: Vec<Value> = chunk
            .iter()
            .flat_map(|j| j.values.iter().cloned())
            .collect();
        match self.exec(chunk.len(), values).await {
            Ok(ids) => {
                for job in chunk {
                    let _ = job.reply.send(Ok(self.written(&ids, job.id)));
                }
            }
            Err(_) => {
                // One row may be bad: give every row its own statement and answer.
                for job in chunk {
                    let res = self
                        .exec(1, job.values)
                        .await
                        .map(|ids| self.written(&ids, job.id));
                    let _ = job.reply.send(res);
                }
            }
        }
    }

    /// Whether the row `id` was written, given the ids the statement returned.
    fn written(&self, returned: &HashSet<Uuid>, id: Uuid) -> bool {
        !self.spec.returns_ids() || returned.contains(&id)
    }

    /// One `rows`-row statement; the ids it returned (empty without a tail).
    async fn exec(&self, rows: usize, values: Vec<Value>) -> Result<HashSet<Uuid>, DbFail> {
        let spec = self.spec;
        debug_assert_eq!(values.len(), rows * spec.width());
        let sql = spec.sql(rows);
        let stmt = Statement::from_sql_and_values(self.backend.db(), sql, values);
        let _gate = match &self.gate {
            Some(g) => Some(g.lock().await),
            None => None,
        };
        if !spec.returns_ids() {
            self.db.execute(stmt).await?;
            return Ok(HashSet::new());
        }
        let rows = self.db.query_all(stmt).await?;
        drop(_gate);
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
