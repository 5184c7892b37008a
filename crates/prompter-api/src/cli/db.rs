//! The database flags every command shares and the one path that opens a
//! database for a command.
//!
//! Before anything is written, [`prompter_storage::adopt::check_openable`]
//! refuses a missing SQLite file (only `serve` and `migrate up` create one)
//! and an un-adopted V7 database. Each command prints the database it opened
//! (password redacted) on stderr.

use clap::Args;
use prompter_storage::{
    redact_url, Backend, PoolConfig, StorageError, Store, DEFAULT_DATABASE_URL,
};

/// `--database-url` / `PROMPTER_DATABASE_URL`, shared by every command.
#[derive(Debug, Clone, Default, Args)]
pub struct DatabaseArgs {
    /// Database URL (`sqlite://…` or `postgres://…`); default: the SQLite file `prompter.db` in the working directory.
    #[arg(long, env = "PROMPTER_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    /// The URL in effect.
    pub fn url(&self) -> String {
        resolve(self.database_url.as_deref())
    }
}

/// `url`, else the embedded default.
pub fn resolve(url: Option<&str>) -> String {
    url.filter(|u| !u.trim().is_empty())
        .unwrap_or(DEFAULT_DATABASE_URL)
        .to_owned()
}

/// The read-only pre-open check for `command` (see the module docs), then
/// the `database: …` line on stderr.
pub async fn check(command: &str, url: &str, may_create: bool) -> Result<(), StorageError> {
    prompter_storage::adopt::check_openable(url, may_create).await?;
    announce(command, url);
    Ok(())
}

/// Prints which database `command` opens (password redacted) on stderr.
pub fn announce(command: &str, url: &str) {
    eprintln!("prompter {command}: database {}", redact_url(url));
}

/// The command that applies pending migrations to `url`, for hints.
pub fn migrate_up_hint(url: &str) -> String {
    format!(
        "prompter migrate up --database-url '{}'",
        redact_url(url).replace('\'', "'\\''")
    )
}

/// Opens the store for a CLI command (`cmd` names it in refusals): the
/// database must exist; pending migrations are applied on SQLite, and on
/// PostgreSQL only with `--migrate` (else an error naming the command to run).
pub(crate) async fn open_store(cmd: &str, url: &str, migrate: bool) -> Result<Store, String> {
    check(cmd, url, false).await.map_err(|e| e.to_string())?;
    let store = Store::connect(url, &PoolConfig::single())
        .await
        .map_err(|e| format!("cannot open the database: {e}"))?;
    let pending = store
        .pending_migrations()
        .await
        .map_err(|e| e.to_string())?;
    if !pending.is_empty() {
        if store.backend() == Backend::Postgres && !migrate {
            return Err(format!(
                "the database has {} pending migration(s): {}; run `{}` (or pass --migrate)",
                pending.len(),
                pending.join(", "),
                migrate_up_hint(url)
            ));
        }
        store.migrate_up().await.map_err(|e| e.to_string())?;
    }
    Ok(store)
}
