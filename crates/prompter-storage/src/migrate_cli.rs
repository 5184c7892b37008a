//! `migrate up|down|status|fresh`, shared by `cargo xtask migrate` and
//! `prompter migrate`.

use crate::{redact_url, PoolConfig, StorageError, Store};
use prompter_migration::{Migrator, MigratorTrait};
use std::io::Write;

/// A migration command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateCommand {
    /// Apply every pending migration, then pin the hash algorithm.
    Up,
    /// Roll back the last `steps` migrations.
    Down {
        /// How many (newest first).
        steps: u32,
    },
    /// List applied and pending migrations and the pinned hash algorithm.
    Status,
    /// Drop every table, re-apply every migration, pin the hash algorithm.
    Fresh,
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
    // One connection: `fresh` on SQLite switches foreign keys off per connection.
    let store = Store::connect(database_url, &PoolConfig::single()).await?;
    let io = |e: std::io::Error| StorageError::internal(format!("cannot write report: {e}"));
    writeln!(
        out,
        "Database: {} ({})",
        redact_url(database_url),
        store.backend()
    )
    .map_err(io)?;
    match cmd {
        MigrateCommand::Up => {
            let applied = store.migrate_up().await?;
            report_applied(out, &applied).map_err(io)?;
            pin(&store, hash_algorithm, out).await?;
        }
        MigrateCommand::Down { steps } => {
            let rolled = store.migrate_down(steps).await?;
            if rolled.is_empty() {
                writeln!(out, "Nothing to roll back.").map_err(io)?;
            }
            for m in &rolled {
                writeln!(out, "Rolled back {m}").map_err(io)?;
            }
            status(&store, out).await?;
        }
        MigrateCommand::Status => status(&store, out).await?,
        MigrateCommand::Fresh => {
            writeln!(out, "Dropping every table and re-applying all migrations.").map_err(io)?;
            Migrator::fresh(store.connection())
                .await
                .map_err(|e| StorageError::internal(format!("migrate fresh failed: {e}")))?;
            let applied = store.applied_migrations().await?;
            report_applied(out, &applied).map_err(io)?;
            pin(&store, hash_algorithm, out).await?;
        }
    }
    store.close().await;
    Ok(())
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

async fn status(store: &Store, out: &mut dyn Write) -> Result<(), StorageError> {
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
            "{} applied, {} pending: run `migrate up` to apply.",
            applied.len(),
            pending.len()
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
