//! `migrate up|down|status|fresh|adopt-v7`, shared by `cargo xtask migrate`
//! and `prompter migrate`.
//!
//! Every command first checks the database read-only
//! ([`crate::adopt::check_openable`]): only `up` may create a SQLite file,
//! and an un-adopted V7 database is refused (except by `adopt-v7`).
//! `down` and `fresh` print what they would drop (tables and row counts)
//! and need [`Confirm::yes`] (or a typed confirmation on a terminal); on a
//! database adopted from V7 they refuse to go below the adoption point
//! without [`Confirm::destroy_v7_data`]. `fresh` keeps the pinned hash
//! algorithm unless another one is requested.

use crate::adopt::{self, inspect, AdoptOptions};
use crate::{redact_url, PoolConfig, StorageError, Store};
use prompter_migration::{Migrator, MigratorTrait};
use sea_orm::TransactionTrait;
use std::io::{BufRead, IsTerminal, Write};

/// Consent to a destructive command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Confirm {
    /// `--yes`: drop without asking.
    pub yes: bool,
    /// `--yes-destroy-v7-data`: also below the adoption point of a database adopted from V7.
    pub destroy_v7_data: bool,
}

/// A migration command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateCommand {
    /// Apply every pending migration, then pin the hash algorithm.
    Up,
    /// Roll back the last `steps` migrations.
    Down {
        /// How many (newest first).
        steps: u32,
        /// Consent.
        confirm: Confirm,
    },
    /// List applied and pending migrations and the pinned hash algorithm.
    Status,
    /// Drop every table, re-apply every migration, pin the hash algorithm.
    Fresh {
        /// Consent.
        confirm: Confirm,
    },
    /// Adopt a V7 database in place (see [`crate::adopt`]).
    AdoptV7 {
        /// Print the plan and counts only.
        dry_run: bool,
    },
}

/// Runs `cmd` against `database_url`, printing what happened to stdout.
///
/// `hash_algorithm` (`blake3` | `sha256`) is pinned by `up` and `fresh`
/// when nothing is pinned yet (default `blake3`); a different pinned value
/// is `HashAlgorithmMismatch`. An unreachable database is `Unavailable`.
pub async fn run(
    database_url: &str,
    cmd: MigrateCommand,
    hash_algorithm: Option<&str>,
) -> Result<(), StorageError> {
    let mut out = std::io::stdout().lock();
    run_with_output(database_url, cmd, hash_algorithm, &mut out).await
}

/// [`run`], writing its report to `out`.
pub async fn run_with_output(
    database_url: &str,
    cmd: MigrateCommand,
    hash_algorithm: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), StorageError> {
    let io = |e: std::io::Error| StorageError::internal(format!("cannot write report: {e}"));
    if let MigrateCommand::AdoptV7 { dry_run } = cmd {
        let opts = AdoptOptions {
            dry_run,
            ..AdoptOptions::default()
        };
        adopt::adopt_v7(database_url, opts, out).await?;
        return Ok(());
    }
    adopt::check_openable(database_url, cmd == MigrateCommand::Up).await?;
    // One connection: `fresh` on SQLite switches foreign keys off per connection.
    let store = Store::connect(database_url, &PoolConfig::single()).await?;
    writeln!(
        out,
        "Database: {} ({})",
        redact_url(database_url),
        store.backend()
    )
    .map_err(io)?;
    let done = run_on(&store, database_url, cmd, hash_algorithm, out).await;
    store.close().await;
    done
}

async fn run_on(
    store: &Store,
    url: &str,
    cmd: MigrateCommand,
    hash_algorithm: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), StorageError> {
    let io = |e: std::io::Error| StorageError::internal(format!("cannot write report: {e}"));
    match cmd {
        MigrateCommand::Up => {
            let applied = store.migrate_up().await?;
            report_applied(out, &applied).map_err(io)?;
            pin(store, hash_algorithm, out).await?;
        }
        MigrateCommand::Down { steps, confirm } => {
            let mut applied = store.applied_migrations().await?;
            applied.reverse();
            applied.truncate(steps as usize);
            if applied.is_empty() {
                writeln!(out, "Nothing to roll back.").map_err(io)?;
                return status(store, url, out).await;
            }
            if let Some(a) = store.adoption().await? {
                if applied.contains(&a.point) && !confirm.destroy_v7_data {
                    return Err(below_adoption_point(&a.from, &a.point));
                }
            }
            writeln!(out, "Would roll back: {}", applied.join(", ")).map_err(io)?;
            let dropped = trial_down(store, steps).await?;
            report_drops(out, &dropped.tables).map_err(io)?;
            report_column_drops(out, &dropped.columns).map_err(io)?;
            confirm_or_refuse(confirm, "down", out)?;
            let rolled = store.migrate_down(steps).await?;
            for m in &rolled {
                writeln!(out, "Rolled back {m}").map_err(io)?;
            }
            status(store, url, out).await?;
        }
        MigrateCommand::Status => status(store, url, out).await?,
        MigrateCommand::Fresh { confirm } => {
            if let Some(a) = store.adoption().await? {
                if !confirm.destroy_v7_data {
                    return Err(below_adoption_point(&a.from, &a.point));
                }
            }
            let tables = table_counts(store.connection()).await?;
            writeln!(out, "Would drop every table and re-apply all migrations.").map_err(io)?;
            report_drops(out, &tables).map_err(io)?;
            confirm_or_refuse(confirm, "fresh", out)?;
            let previous = store.hash_algorithm().await?;
            Migrator::fresh(store.connection())
                .await
                .map_err(|e| StorageError::internal(format!("migrate fresh failed: {e}")))?;
            let applied = store.applied_migrations().await?;
            report_applied(out, &applied).map_err(io)?;
            // The pin survives unless another algorithm is asked for.
            pin(store, hash_algorithm.or(previous.as_deref()), out).await?;
        }
        MigrateCommand::AdoptV7 { .. } => unreachable!("handled before opening"),
    }
    Ok(())
}

fn below_adoption_point(from: &str, point: &str) -> StorageError {
    StorageError::refused(format!(
        "this database was adopted from V7 ({from}); going below {point} would drop V7's          templates, versions and results. To roll back an adoption, restore the backup taken          before it; to destroy the data anyway, add --yes-destroy-v7-data"
    ))
}

/// Tables and row counts, as `(table, rows)`.
async fn table_counts(
    db: &impl sea_orm::ConnectionTrait,
) -> Result<Vec<(String, u64)>, StorageError> {
    let mut out = Vec::new();
    let mut tables = inspect::tables(db).await?;
    tables.sort();
    for t in tables {
        let r = inspect::rows(
            db,
            &format!("SELECT count(*) AS n FROM \"{}\"", t.replace('"', "\"\"")),
            vec![],
        )
        .await?;
        let n = match r.first() {
            Some(r) => inspect::get::<i64>(r, "n")? as u64,
            None => 0,
        };
        out.push((t, n));
    }
    Ok(out)
}

/// What a rollback would drop: whole tables and, of the tables that stay,
/// columns, each with the table's row count.
#[derive(Debug, Default)]
struct Drops {
    tables: Vec<(String, u64)>,
    columns: Vec<(String, u64)>,
}

/// `(table, column)` of every table in the current schema.
async fn columns(
    db: &impl sea_orm::ConnectionTrait,
) -> Result<Vec<(String, String)>, StorageError> {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
             WHERE table_schema = current_schema()"
        }
        _ => {
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p WHERE m.type = 'table'"
        }
    };
    inspect::rows(db, sql, vec![])
        .await?
        .iter()
        .map(|r| Ok((inspect::get(r, "t")?, inspect::get(r, "c")?)))
        .collect()
}

/// Runs the rollback inside a transaction that is rolled back, to list the
/// tables and columns it would drop with their row counts.
async fn trial_down(store: &Store, steps: u32) -> Result<Drops, StorageError> {
    let tx = store.connection().begin().await.map_err(inspect::db_err)?;
    let before = table_counts(&tx).await?;
    let cols_before = columns(&tx).await?;
    let trial = async {
        Migrator::down(&tx, Some(steps))
            .await
            .map_err(inspect::db_err)?;
        Ok::<_, StorageError>((inspect::tables(&tx).await?, columns(&tx).await?))
    }
    .await;
    let _ = tx.rollback().await;
    let (after, cols_after) = trial?;
    let rows_of = |t: &str| before.iter().find(|(n, _)| n == t).map_or(0, |(_, n)| *n);
    let mut drops = Drops::default();
    for (t, c) in cols_before {
        if after.contains(&t) && !cols_after.contains(&(t.clone(), c.clone())) {
            drops.columns.push((format!("{t}.{c}"), rows_of(&t)));
        }
    }
    drops.columns.sort();
    drops.tables = before
        .into_iter()
        .filter(|(t, _)| !after.contains(t))
        .collect();
    Ok(drops)
}

fn report_drops(out: &mut dyn Write, tables: &[(String, u64)]) -> std::io::Result<()> {
    if tables.is_empty() {
        return writeln!(out, "No table would be dropped.");
    }
    writeln!(out, "Tables that would be dropped (rows):")?;
    for (t, n) in tables {
        writeln!(out, "  {t} ({n})")?;
    }
    Ok(())
}

fn report_column_drops(out: &mut dyn Write, columns: &[(String, u64)]) -> std::io::Result<()> {
    if columns.is_empty() {
        return Ok(());
    }
    writeln!(out, "Columns that would be dropped (rows of their table):")?;
    for (c, n) in columns {
        writeln!(out, "  {c} ({n})")?;
    }
    Ok(())
}

/// `--yes`, or the command's name typed on a terminal; otherwise refused.
fn confirm_or_refuse(
    confirm: Confirm,
    command: &str,
    out: &mut dyn Write,
) -> Result<(), StorageError> {
    if confirm.yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let _ = out.flush();
        eprint!("Type `{command}` to confirm: ");
        let mut line = String::new();
        let _ = stdin.lock().read_line(&mut line);
        if line.trim() == command {
            return Ok(());
        }
        return Err(StorageError::refused(format!(
            "not confirmed: nothing was dropped (type `{command}`, or pass --yes)"
        )));
    }
    Err(StorageError::refused(format!(
        "`migrate {command}` drops data: nothing was dropped; rerun it with --yes to confirm"
    )))
}

fn report_applied(out: &mut dyn Write, applied: &[String]) -> std::io::Result<()> {
    if applied.is_empty() {
        writeln!(out, "No pending migrations.")?;
    }
    for m in applied {
        writeln!(out, "Applied {m}")?;
    }
    writeln!(out, "Schema is up to date.")
}

async fn pin(
    store: &Store,
    requested: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), StorageError> {
    let before = store.hash_algorithm().await?;
    let pinned = store.pin_hash_algorithm(requested).await?;
    let how = if before.is_some() {
        "already pinned"
    } else {
        "pinned now"
    };
    writeln!(out, "Hash algorithm: {pinned} ({how})")
        .map_err(|e| StorageError::internal(format!("cannot write report: {e}")))
}

async fn status(store: &Store, url: &str, out: &mut dyn Write) -> Result<(), StorageError> {
    let io = |e: std::io::Error| StorageError::internal(format!("cannot write report: {e}"));
    let applied = store.applied_migrations().await?;
    let pending = store.pending_migrations().await?;
    writeln!(out, "Migrations:").map_err(io)?;
    for m in &applied {
        writeln!(out, "  applied  {m}").map_err(io)?;
    }
    for m in &pending {
        writeln!(out, "  pending  {m}").map_err(io)?;
    }
    if pending.is_empty() {
        writeln!(
            out,
            "{} applied, 0 pending: schema is up to date.",
            applied.len()
        )
        .map_err(io)?;
    } else {
        writeln!(
            out,
            "{} applied, {} pending: run `prompter migrate up --database-url '{}'` to apply.",
            applied.len(),
            pending.len(),
            redact_url(url).replace('\'', "'\\''")
        )
        .map_err(io)?;
    }
    match store.hash_algorithm().await? {
        Some(h) => writeln!(out, "Hash algorithm: {h}"),
        None => writeln!(
            out,
            "Hash algorithm: not pinned yet (the first `migrate up` or server start pins it; default blake3)"
        ),
    }
    .map_err(io)
}
