//! `prompter keys create|list|revoke`: API key administration, straight
//! against the database (no running server needed; a trigger bumps the key
//! generation every running server polls, so each honours the change within
//! `--cluster-poll-ms`, the key-cache TTL being the fallback).
//!
//! `keys create` prints the new key alone on the last line of stdout and
//! everything else on stderr, so `KEY=$(prompter keys create …)` works. The
//! key is shown only then: the database keeps its SHA-256 hash.

use crate::auth;
use crate::caller::Role;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use prompter_storage::{Scope, StorageError, Store};
use std::io::Write;

/// `prompter keys …`
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: KeysAction,
    /// Which database.
    #[command(flatten)]
    pub db: super::db::DatabaseArgs,
    /// Apply pending migrations first (SQLite always does).
    #[arg(long, env = "PROMPTER_MIGRATE", global = true)]
    pub migrate: bool,
}

/// Key actions.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key; prints it once, alone on the last line of stdout.
    Create {
        /// The org the key is scoped to.
        #[arg(long)]
        org: String,
        /// Restrict the key to one workspace of the org.
        #[arg(long)]
        workspace: Option<String>,
        /// What the key may do: read (GET routes and check-duplicate), write (also create, ensure-version, run, delete, restore) or admin (also /metrics with --metrics-auth).
        #[arg(long, value_parser = ["read", "write", "admin"])]
        role: String,
        /// A name to recognise the key by in `keys list` (e.g. `ci-deploy`).
        #[arg(long)]
        name: Option<String>,
        /// Let the key expire after this long (`90d`, `12h`, `2w`, `1y`); default: never.
        #[arg(long, value_parser = parse_expires_in)]
        expires_in: Option<std::time::Duration>,
    },
    /// List keys (never the keys themselves): prefix, name, scope, role, status (active, expired, revoked), times.
    List {
        /// Only the keys of this org.
        #[arg(long)]
        org: Option<String>,
    },
    /// Revoke the key with this public prefix (idempotent).
    Revoke {
        /// The 8-character prefix (`prm_<prefix>_…`), or the whole key.
        prefix: String,
    },
}

fn ts(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".into())
}

/// `--expires-in`: a positive duration such as `90d`, `12h` or `2w`.
fn parse_expires_in(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e} (examples: 90d, 12h, 2w, 1y)"))?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

fn check_id(what: &str, v: &str) -> Result<(), String> {
    if v.trim().is_empty() || v.len() > 1024 || v.chars().any(char::is_control) {
        return Err(format!(
            "--{what} must be 1 to 1024 bytes without control characters"
        ));
    }
    Ok(())
}

/// Runs the action; the error says why.
pub async fn run(args: KeysArgs) -> Result<(), String> {
    let store = super::db::open_store("keys", &args.db.url(), args.migrate).await?;
    let out = run_on(&store, args.action).await;
    store.close().await;
    out
}

async fn run_on(store: &Store, action: KeysAction) -> Result<(), String> {
    match action {
        KeysAction::Create {
            org,
            workspace,
            role,
            name,
            expires_in,
        } => {
            check_id("org", &org)?;
            if let Some(w) = &workspace {
                check_id("workspace", w)?;
            }
            if let Some(n) = &name {
                check_id("name", n)?;
            }
            let role: Role = role.parse()?;
            let expires_at = match expires_in {
                None => None,
                Some(d) => Some(
                    chrono::Duration::from_std(d)
                        .ok()
                        .and_then(|d| Utc::now().checked_add_signed(d))
                        .ok_or("--expires-in is too long")?,
                ),
            };
            let spec = auth::KeySpec {
                org_id: &org,
                workspace_id: workspace.as_deref(),
                role,
                name: name.as_deref(),
                expires_at,
            };
            let (generated, rec) = auth::create_key(store, spec)
                .await
                .map_err(|e| format!("cannot store the key: {e}"))?;
            eprintln!(
                "Created API key {}{} (org {}, workspace {}, role {}, expires {}).",
                rec.prefix,
                rec.name
                    .as_deref()
                    .map(|n| format!(" \"{n}\""))
                    .unwrap_or_default(),
                rec.org_id,
                rec.workspace_id.as_deref().unwrap_or("(all)"),
                rec.role,
                rec.expires_at
                    .map_or_else(|| "never".to_owned(), |t| ts(Some(t)))
            );
            eprintln!("It is shown only now: store it in a secret manager. Send it as `Authorization: Bearer <key>`.");
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", generated.key).map_err(|e| e.to_string())?;
            stdout.flush().map_err(|e| e.to_string())?;
            Ok(())
        }
        KeysAction::List { org } => {
            let scope = match org {
                Some(o) => Scope::tenant(o, None),
                None => Scope::Unrestricted,
            };
            let keys = store
                .list_api_keys(&scope)
                .await
                .map_err(|e| e.to_string())?;
            let mut stdout = std::io::stdout().lock();
            let line = |s: &mut std::io::StdoutLock<'_>, cols: [&str; 9]| {
                writeln!(
                    s,
                    "{:<10} {:<20} {:<24} {:<24} {:<6} {:<8} {:<21} {:<21} {}",
                    cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8]
                )
            };
            line(
                &mut stdout,
                [
                    "PREFIX",
                    "NAME",
                    "ORG",
                    "WORKSPACE",
                    "ROLE",
                    "STATUS",
                    "CREATED",
                    "EXPIRES",
                    "LAST_USED",
                ],
            )
            .map_err(|e| e.to_string())?;
            let now = Utc::now();
            for k in &keys {
                let status = if k.revoked_at.is_some() {
                    "revoked"
                } else if k.is_expired(now) {
                    "expired"
                } else {
                    "active"
                };
                line(
                    &mut stdout,
                    [
                        &k.prefix,
                        k.name.as_deref().unwrap_or("-"),
                        &k.org_id,
                        k.workspace_id.as_deref().unwrap_or("*"),
                        &k.role,
                        status,
                        &ts(Some(k.created_at)),
                        &ts(k.expires_at),
                        &ts(k.last_used_at),
                    ],
                )
                .map_err(|e| e.to_string())?;
            }
            eprintln!("{} key(s)", keys.len());
            Ok(())
        }
        KeysAction::Revoke { prefix } => {
            let prefix = auth::key_prefix(&prefix).unwrap_or(&prefix).to_owned();
            match store.revoke_api_key(&prefix).await {
                Ok(rec) => {
                    println!("revoked {} at {}", rec.prefix, ts(rec.revoked_at));
                    eprintln!(
                        "Running servers reject it within --cluster-poll-ms (default 250 ms)."
                    );
                    Ok(())
                }
                Err(StorageError::NotFound) => Err(format!("no API key with prefix {prefix}")),
                Err(e) => Err(e.to_string()),
            }
        }
    }
}
