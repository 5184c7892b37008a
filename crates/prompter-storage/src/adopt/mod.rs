//! Taking over a live V7 database in place (`prompter migrate adopt-v7`),
//! and the check every command runs before it opens a database.
//!
//! * [`check_openable`]: read-only, before anything is written: refuses a
//!   missing SQLite file (unless the command may create one) and an
//!   un-adopted V7 database, naming the command that adopts it.
//! * [`adopt_v7`]: recognises V7's schema (SQLite parity SQL, or PostgreSQL
//!   with UUID caller ids, JSONB and TIMESTAMPTZ), backs SQLite up with
//!   `VACUUM INTO`, then in ONE transaction rewrites V7's three tables into
//!   exactly the shape of [`ADOPTION_POINT`] (recorded as applied), copies
//!   every row with its id, timestamps and JSON, re-derives each template's
//!   canonical text (V7's `config_hash` stays its identity; differences are
//!   listed in [`MISMATCH_TABLE`]), pins sha256 and the adoption facts in
//!   `prompter_settings`, and applies every later migration as on a fresh
//!   database. Counts before and after must be equal, or nothing changes.
//!   A second run reports "already adopted" and changes nothing.

pub(crate) mod inspect;
mod rewrite;

pub use inspect::sqlite_path;

use crate::{redact_url, Backend, PoolConfig, StorageError, Store};
use prompter_domain::{canonical::rederive_stored, ConfigHash, HashAlgorithm};
use prompter_migration::{Migrator, MigratorTrait};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The migration an adopted database starts from: going below it drops V7's rows.
pub const ADOPTION_POINT: &str = "m20260101_000001_init";

/// The table listing templates whose recomputed hash differs from V7's.
pub const MISMATCH_TABLE: &str = "v7_adoption_hash_mismatches";

/// `prompter_settings` key: `v7-sqlite` or `v7-postgres` on adopted databases.
pub const ADOPTED_FROM_KEY: &str = "adopted_from";
/// `prompter_settings` key: when the adoption ran.
pub const ADOPTED_AT_KEY: &str = "adopted_at";
/// `prompter_settings` key: the migration the adoption recorded as applied.
pub const ADOPTION_POINT_KEY: &str = "adoption_point";
/// `prompter_settings` key: `true` when V7 matched UUID caller ids
/// case-insensitively (PostgreSQL), so requests' UUID-shaped ids are lower-cased.
pub const UUID_CASE_INSENSITIVE_KEY: &str = "uuid_ids_case_insensitive";

/// Which V7 backend a database was written by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V7Flavour {
    /// V7's SQLite parity SQL (every column TEXT).
    Sqlite,
    /// V7's Alembic revision on PostgreSQL (UUID ids, JSONB, TIMESTAMPTZ).
    Postgres,
}

impl V7Flavour {
    /// `v7-sqlite` or `v7-postgres` (the `adopted_from` setting).
    pub fn as_str(self) -> &'static str {
        match self {
            V7Flavour::Sqlite => "v7-sqlite",
            V7Flavour::Postgres => "v7-postgres",
        }
    }
}

/// What a database URL points at, found without writing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbKind {
    /// A SQLite URL whose file does not exist.
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// Neither Prompter's nor V7's tables.
    Empty,
    /// Prompter's schema (at least its first migration applied).
    Prompter {
        /// `v7-sqlite` / `v7-postgres` when adopted from V7.
        adopted_from: Option<String>,
    },
    /// V7's tables, not adopted yet.
    V7 {
        /// Which backend wrote it.
        flavour: V7Flavour,
    },
}

/// Row counts of the three core tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Templates, soft-deleted ones included.
    pub templates: u64,
    /// Templates with `deleted_at` NULL.
    pub active_templates: u64,
    /// Soft-deleted templates.
    pub deleted_templates: u64,
    /// Version rows.
    pub versions: u64,
    /// Results.
    pub results: u64,
    /// Results without a version row.
    pub results_without_version: u64,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "templates {} (active {}, soft-deleted {}), versions {}, results {} ({} without version)",
            self.templates,
            self.active_templates,
            self.deleted_templates,
            self.versions,
            self.results,
            self.results_without_version
        )
    }
}

/// A template whose canonical text, re-derived from what V7 stored, does
/// not hash to V7's `config_hash` (or could not be re-derived).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The template (V7's id).
    pub template_id: String,
    /// Its org.
    pub org_id: String,
    /// Its workspace.
    pub workspace_id: String,
    /// Whether it is active (not soft-deleted).
    pub active: bool,
    /// V7's hash: still the template's identity.
    pub v7_config_hash: String,
    /// sha256 of the re-derived text (None when it could not be re-derived).
    pub recomputed_hash: Option<String>,
    /// `config_canonical_json` as V7 stored it (as text).
    pub v7_canonical: String,
    /// The canonical text Prompter stores now.
    pub stored_canonical: String,
    /// Why it is listed.
    pub reason: String,
}

/// How an adoption run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The database was adopted now.
    Adopted,
    /// `--dry-run`: the plan was printed, nothing written.
    DryRun,
    /// Adopted earlier: nothing changed.
    AlreadyAdopted,
}

/// What [`adopt_v7`] found and did.
#[derive(Debug, Clone)]
pub struct AdoptReport {
    /// How it ended.
    pub outcome: Outcome,
    /// Which V7 backend wrote the database (None when already adopted).
    pub flavour: Option<V7Flavour>,
    /// Counts before (or now, when already adopted).
    pub before: Counts,
    /// Counts after the adoption.
    pub after: Option<Counts>,
    /// Templates whose hash was recomputed.
    pub checked: usize,
    /// Templates whose recomputed hash differs (also in [`MISMATCH_TABLE`]).
    pub mismatches: Vec<Mismatch>,
    /// SQLite: the backup written before the change.
    pub backup: Option<PathBuf>,
    /// Migrations recorded or applied, oldest first.
    pub applied: Vec<String>,
    /// Whether UUID-shaped caller ids are matched case-insensitively from now on.
    pub uuid_ids_case_insensitive: bool,
}

/// Adoption options.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdoptOptions {
    /// Print the plan and the counts, write nothing.
    pub dry_run: bool,
    /// Tests only: fail inside the transaction after the rows were copied.
    #[doc(hidden)]
    pub fail_after_copy: bool,
}

/// What a database URL holds, found read-only (nothing is written, not even
/// a journal-mode change).
pub async fn inspect(url: &str) -> Result<DbKind, StorageError> {
    if Backend::from_url(url)? == Backend::Sqlite {
        if let Some(path) = sqlite_path(url)? {
            if !path.exists() {
                return Ok(DbKind::Missing { path });
            }
        }
    }
    let db = inspect::read_only(url).await?;
    let kind = inspect::kind(&db).await;
    let _ = db.close().await;
    kind
}

/// The one-line refusal of an un-adopted V7 database.
pub fn v7_refusal(url: &str) -> String {
    format!(
        "{} is a Prompter V7 database that has not been adopted yet; nothing was written. \
         Adopt it first: `prompter migrate adopt-v7 --database-url '{}'` (add --dry-run to see the plan)",
        redact_url(url),
        redact_url(url)
    )
}

/// The one-line refusal of a missing SQLite file.
pub fn missing_refusal(path: &Path) -> String {
    format!(
        "no SQLite database at {}: point --database-url (or PROMPTER_DATABASE_URL) at your database; \
         only `prompter serve` and `prompter migrate up` create a new one",
        path.display()
    )
}

/// The read-only check every command runs before it opens `url`: a missing
/// SQLite file is refused unless `may_create`; an un-adopted V7 database is
/// always refused. Returns what the database holds.
pub async fn check_openable(url: &str, may_create: bool) -> Result<DbKind, StorageError> {
    match inspect(url).await? {
        DbKind::Missing { path } if !may_create => {
            Err(StorageError::refused(missing_refusal(&path)))
        }
        DbKind::V7 { .. } => Err(StorageError::refused(v7_refusal(url))),
        kind => Ok(kind),
    }
}

/// The adoption facts of a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// `v7-sqlite` or `v7-postgres`.
    pub from: String,
    /// The migration below which V7's rows would be dropped.
    pub point: String,
    /// Whether UUID-shaped caller ids are lower-cased on every request.
    pub uuid_ids_case_insensitive: bool,
}

impl Store {
    /// The adoption facts, when this database was adopted from V7.
    pub async fn adoption(&self) -> Result<Option<Adoption>, StorageError> {
        let r = inspect::rows(
            &self.db,
            "SELECT key, value FROM prompter_settings WHERE key IN ($1, $2, $3)",
            vec![
                ADOPTED_FROM_KEY.into(),
                ADOPTION_POINT_KEY.into(),
                UUID_CASE_INSENSITIVE_KEY.into(),
            ],
        )
        .await;
        let Ok(rows) = r else {
            // before the first migration there is no settings table
            return Ok(None);
        };
        let mut from = None;
        let mut point = ADOPTION_POINT.to_owned();
        let mut fold = false;
        for r in &rows {
            let key: String = inspect::get(r, "key")?;
            let value: String = inspect::get(r, "value")?;
            match key.as_str() {
                ADOPTED_FROM_KEY => from = Some(value),
                ADOPTION_POINT_KEY => point = value,
                _ => fold = value == "true",
            }
        }
        Ok(from.map(|from| Adoption {
            from,
            point,
            uuid_ids_case_insensitive: fold,
        }))
    }
}

fn io(e: std::io::Error) -> StorageError {
    StorageError::internal(format!("cannot write report: {e}"))
}

/// Adopts the V7 database at `url` (see the module docs), printing the plan,
/// counts and mismatches to `out`.
pub async fn adopt_v7(
    url: &str,
    opts: AdoptOptions,
    out: &mut dyn Write,
) -> Result<AdoptReport, StorageError> {
    let backend = Backend::from_url(url)?;
    writeln!(out, "Database: {} ({backend})", redact_url(url)).map_err(io)?;
    let flavour = match inspect(url).await? {
        DbKind::Missing { path } => return Err(StorageError::refused(missing_refusal(&path))),
        DbKind::Empty => {
            return Err(StorageError::refused(
                "this database has no V7 tables (prompt_templates): nothing to adopt",
            ))
        }
        DbKind::Prompter { adopted_from: None } => {
            return Err(StorageError::refused(
                "this is already a Prompter database (not adopted from V7): nothing to adopt",
            ))
        }
        DbKind::Prompter {
            adopted_from: Some(from),
        } => return already_adopted(url, &from, out).await,
        DbKind::V7 { flavour } => flavour,
    };
    let ro = inspect::read_only(url).await?;
    let plan = async {
        let before = inspect::counts(&ro).await?;
        let stored = inspect::stored_canonicals(&ro).await?;
        let uuid_ids = inspect::org_id_is_uuid(&ro).await?;
        Ok::<_, StorageError>((before, stored, uuid_ids))
    }
    .await;
    let (before, stored, uuid_ids) = match plan {
        Ok(p) => p,
        Err(e) => {
            let _ = ro.close().await;
            return Err(e);
        }
    };
    let preview = stored
        .iter()
        .filter(|t| {
            rederive_stored(&t.canonical).map_or(true, |c| {
                ConfigHash::compute(HashAlgorithm::Sha256, &c).as_str() != t.config_hash
            })
        })
        .count();
    let migrations: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    writeln!(
        out,
        "Found: a V7 database written by V7's {} path, not adopted yet.",
        if flavour == V7Flavour::Sqlite {
            "SQLite"
        } else {
            "PostgreSQL"
        }
    )
    .map_err(io)?;
    writeln!(out, "Counts before: {before}").map_err(io)?;
    writeln!(out, "Plan:").map_err(io)?;
    if backend == Backend::Sqlite {
        writeln!(out, "  1. back up the file next to it (VACUUM INTO)").map_err(io)?;
    } else {
        writeln!(
            out,
            "  1. (PostgreSQL) everything below runs in ONE transaction"
        )
        .map_err(io)?;
    }
    writeln!(
        out,
        "  2. rewrite prompt_templates, prompt_versions, prompt_results into Prompter's schema \
         and record {ADOPTION_POINT} as applied (every id, timestamp and JSON kept{})",
        if uuid_ids {
            "; UUID caller ids become lower-case text"
        } else {
            ""
        }
    )
    .map_err(io)?;
    writeln!(
        out,
        "  3. pin hash algorithm sha256; re-derive each template's canonical text \
         ({} template(s), {preview} whose recomputed hash differs: listed in {MISMATCH_TABLE})",
        stored.len()
    )
    .map_err(io)?;
    writeln!(
        out,
        "  4. apply the later migrations: {}",
        migrations
            .iter()
            .skip(1)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    )
    .map_err(io)?;
    if uuid_ids {
        writeln!(
            out,
            "  5. remember that V7 matched UUID caller ids case-insensitively ({UUID_CASE_INSENSITIVE_KEY}=true)"
        )
        .map_err(io)?;
    }
    let mut report = AdoptReport {
        outcome: Outcome::DryRun,
        flavour: Some(flavour),
        before,
        after: None,
        checked: stored.len(),
        mismatches: Vec::new(),
        backup: None,
        applied: Vec::new(),
        uuid_ids_case_insensitive: uuid_ids,
    };
    if opts.dry_run {
        let _ = ro.close().await;
        writeln!(out, "Dry run: nothing was written.").map_err(io)?;
        return Ok(report);
    }
    if backend == Backend::Sqlite {
        let path = sqlite_path(url)?
            .ok_or_else(|| StorageError::refused("an in-memory database cannot be adopted"))?;
        let backup = backup_path(&path);
        let quoted = backup.display().to_string().replace('\'', "''");
        let done = inspect::exec(&ro, &format!("VACUUM INTO '{quoted}'")).await;
        let _ = ro.close().await;
        done?;
        writeln!(out, "Backup: {}", backup.display()).map_err(io)?;
        report.backup = Some(backup);
    } else {
        let _ = ro.close().await;
    }
    let store = Store::connect(url, &PoolConfig::single()).await?;
    let done = rewrite::run(store.connection(), flavour, uuid_ids, opts.fail_after_copy).await;
    store.close().await;
    let done = done?;
    writeln!(out, "Counts after:  {}", done.after).map_err(io)?;
    for m in &done.applied {
        let note = if m == ADOPTION_POINT {
            " (adoption point: recorded, tables rewritten from V7's)"
        } else {
            ""
        };
        writeln!(out, "Applied {m}{note}").map_err(io)?;
    }
    writeln!(out, "Hash algorithm: sha256 (pinned)").map_err(io)?;
    writeln!(
        out,
        "Hash check: {} template(s), {} mismatch(es) (table {MISMATCH_TABLE}); V7's config_hash stays each template's identity",
        done.checked,
        done.mismatches.len()
    )
    .map_err(io)?;
    for m in &done.mismatches {
        writeln!(
            out,
            "  mismatch {} ({}): v7 {} recomputed {}: {}",
            m.template_id,
            if m.active { "active" } else { "deleted" },
            m.v7_config_hash,
            m.recomputed_hash.as_deref().unwrap_or("-"),
            m.reason
        )
        .map_err(io)?;
    }
    let rollback = match backend {
        Backend::Sqlite => "to roll back, stop Prompter and put the backup in place of the file",
        Backend::Postgres => {
            "to roll back, restore the dump you took before (docs/migrating-from-v7.md)"
        }
    };
    writeln!(
        out,
        "Adopted ({}). Start Prompter on this database; {rollback}.",
        flavour.as_str()
    )
    .map_err(io)?;
    report.outcome = Outcome::Adopted;
    report.after = Some(done.after);
    report.checked = done.checked;
    report.mismatches = done.mismatches;
    report.applied = done.applied;
    Ok(report)
}

async fn already_adopted(
    url: &str,
    from: &str,
    out: &mut dyn Write,
) -> Result<AdoptReport, StorageError> {
    let ro = inspect::read_only(url).await?;
    let counts = inspect::counts(&ro).await;
    let at = inspect::rows(
        &ro,
        "SELECT value FROM prompter_settings WHERE key = $1",
        vec![ADOPTED_AT_KEY.into()],
    )
    .await;
    let _ = ro.close().await;
    let counts = counts?;
    let at = match at?.first() {
        Some(r) => inspect::get::<String>(r, "value")?,
        None => "?".into(),
    };
    writeln!(
        out,
        "Already adopted (from {from} at {at}): nothing to do, nothing changed."
    )
    .map_err(io)?;
    writeln!(out, "Counts: {counts}").map_err(io)?;
    Ok(AdoptReport {
        outcome: Outcome::AlreadyAdopted,
        flavour: None,
        before: counts,
        after: None,
        checked: 0,
        mismatches: Vec::new(),
        backup: None,
        applied: Vec::new(),
        uuid_ids_case_insensitive: false,
    })
}

/// `<file>.v7-backup-<UTC time>` next to the database (a counter when taken).
fn backup_path(db: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let base = format!("{}.v7-backup-{stamp}", db.display());
    let mut p = PathBuf::from(&base);
    let mut n = 1;
    while p.exists() {
        p = PathBuf::from(format!("{base}-{n}"));
        n += 1;
    }
    p
}
