//! Group commit of result inserts (issue 9).
//!
//! Every run stores one result row. Written one autocommit statement each,
//! a commit per run dominated the run's cost under load: on PostgreSQL a
//! WAL flush and a round trip per row (≈0.4 ms of a 2-core machine per run,
//! measured against a read-only request), on SQLite one turn of the single
//! writer per row. [`ResultBatcher`] hands each insert to one background task
//! that takes whatever has queued up while its previous writes ran (one
//! round in flight on SQLite, up to four on PostgreSQL) and writes it as a
//! few multi-row `INSERT`s (chunks of 64, 32, …, 1 rows, so each
//! connection's statement cache holds at most 7 texts). A lone insert is
//! written at once, so nothing waits for a batch to fill.
//!
//! The caller still waits for its own row's commit and gets its own error:
//! when a chunk fails (say a row names an unknown template), each row of
//! that chunk is retried alone, so one bad row fails only its own caller.

use crate::error::DbFail;
use crate::Backend;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex, Semaphore};

/// Largest chunk written by one statement (12 parameters a row stays far
/// below both drivers' parameter limits).
const MAX_CHUNK: usize = 64;
/// Inserts taken per round of the writer task.
const MAX_ROUND: usize = 1024;

type Reply = oneshot::Sender<Result<(), DbFail>>;

struct Job {
    values: Vec<Value>,
    reply: Reply,
}

/// The sending side; cheap to clone. The writer task ends when the last
/// clone is dropped.
#[derive(Clone)]
pub(crate) struct ResultBatcher {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for ResultBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultBatcher").finish_non_exhaustive()
    }
}

impl ResultBatcher {
    /// Starts the writer task on the current tokio runtime. `gate` is the
    /// store's SQLite write gate (taken around each statement).
    pub(crate) fn spawn(
        db: DatabaseConnection,
        backend: Backend,
        gate: Option<Arc<Mutex<()>>>,
        columns: &'static str,
    ) -> ResultBatcher {
        let (tx, rx) = mpsc::channel(MAX_ROUND * 4);
        tokio::spawn(writer(rx, db, backend, gate, columns));
        ResultBatcher { tx }
    }

    /// Inserts one row (`values` in `columns` order) and waits for its commit.
    pub(crate) async fn insert(&self, values: Vec<Value>) -> Result<(), DbFail> {
        let (reply, done) = oneshot::channel();
        let gone = || DbFail::Orm(sea_orm::DbErr::Custom("result writer stopped".into()));
        self.tx
            .send(Job { values, reply })
            .await
            .map_err(|_| gone())?;
        done.await.map_err(|_| gone())?
    }
}

async fn writer(
    mut rx: mpsc::Receiver<Job>,
    db: DatabaseConnection,
    backend: Backend,
    gate: Option<Arc<Mutex<()>>>,
    columns: &'static str,
) {
    // Rounds written at the same time: SQLite has one writer anyway; on
    // PostgreSQL a few rounds in flight keep moderate concurrency from
    // waiting on one commit at a time.
    let in_flight = Arc::new(Semaphore::new(match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 4,
    }));
    while let Some(first) = rx.recv().await {
        // While every round is busy, more inserts queue up for the next one.
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
        let (db, gate) = (db.clone(), gate.clone());
        tokio::spawn(async move {
            while !round.is_empty() {
                // Largest power of two not above what is left (and MAX_CHUNK).
                let n = MAX_CHUNK.min(1 << (usize::BITS - 1 - round.len().leading_zeros()));
                let chunk: Vec<Job> = round.drain(..n).collect();
                write_chunk(&db, backend, gate.as_deref(), columns, chunk).await;
            }
            drop(permit);
        });
    }
}

async fn write_chunk(
    db: &DatabaseConnection,
    backend: Backend,
    gate: Option<&Mutex<()>>,
    columns: &'static str,
    mut chunk: Vec<Job>,
) {
    if chunk.len() == 1 {
        let job = chunk.pop().expect("one job");
        let res = exec(db, backend, gate, columns, 1, job.values).await;
        let _ = job.reply.send(res);
        return;
    }
    let values: Vec<Value> = chunk
        .iter()
        .flat_map(|j| j.values.iter().cloned())
        .collect();
    match exec(db, backend, gate, columns, chunk.len(), values).await {
        Ok(()) => {
            for job in chunk {
                let _ = job.reply.send(Ok(()));
            }
        }
        Err(_) => {
            // One row may be bad: give every row its own statement and answer.
            for job in chunk {
                let res = exec(db, backend, gate, columns, 1, job.values).await;
                let _ = job.reply.send(res);
            }
        }
    }
}

async fn exec(
    db: &DatabaseConnection,
    backend: Backend,
    gate: Option<&Mutex<()>>,
    columns: &'static str,
    rows: usize,
    values: Vec<Value>,
) -> Result<(), DbFail> {
    let per_row = values.len() / rows;
    let mut sql = format!("INSERT INTO prompt_results ({columns}) VALUES ");
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
    let stmt = Statement::from_sql_and_values(backend.db(), sql, values);
    let _gate = match gate {
        Some(g) => Some(g.lock().await),
        None => None,
    };
    db.execute(stmt).await?;
    Ok(())
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
