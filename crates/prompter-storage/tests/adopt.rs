//! `adopt-v7` on V7 databases built from the contract's DDL facts: every row
//! kept with its id, timestamps and JSON; hashes checked, mismatches listed;
//! the schema afterwards exactly a fresh database's; idempotent; a failure
//! half-way and a refused open change nothing.

mod common;

use chrono::{TimeZone, Utc};
use prompter_storage::adopt::{self, AdoptOptions, DbKind, Outcome, V7Flavour, MISMATCH_TABLE};
use prompter_storage::migrate_cli::{run_with_output, Confirm, MigrateCommand};
use prompter_storage::testing::TestDb;
use prompter_storage::v7_fixture;
use prompter_storage::{Backend, Scope, StorageError};
use sqlx::{Connection, Row};

on_all_backends!(
    adopts_in_place_keeping_every_row,
    failure_half_way_changes_nothing,
    refused_open_writes_nothing,
    adopted_database_guards_its_adoption_point,
    leftover_migration_table_of_an_old_start_is_still_adopted,
);

fn flavour(db: &TestDb) -> V7Flavour {
    match db.backend() {
        Backend::Sqlite => V7Flavour::Sqlite,
        Backend::Postgres => V7Flavour::Postgres,
    }
}

async fn adopt(
    db: &TestDb,
    opts: AdoptOptions,
) -> (Result<adopt::AdoptReport, StorageError>, String) {
    let mut out = Vec::new();
    let r = adopt::adopt_v7(db.url(), opts, &mut out).await;
    (r, String::from_utf8(out).unwrap())
}

/// Tables, columns, indexes and constraints, as comparable text.
async fn schema(url: &str, backend: Backend) -> Vec<String> {
    let queries: &[&str] = match backend {
        Backend::Sqlite => &[
            "SELECT type || ' ' || name || ' ' || coalesce(sql, '') AS s FROM sqlite_master \
             WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
        ],
        Backend::Postgres => &[
            "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
             || ' ' || coalesce(column_default, '') AS s FROM information_schema.columns \
             WHERE table_schema = current_schema() ORDER BY 1",
            "SELECT indexname || ' ' || indexdef AS s FROM pg_indexes \
             WHERE schemaname = current_schema() ORDER BY 1",
            "SELECT conname || ' ' || pg_get_constraintdef(oid) AS s FROM pg_constraint \
             WHERE connamespace = current_schema()::regnamespace ORDER BY 1",
        ],
    };
    let mut out = Vec::new();
    for q in queries {
        let rows = match backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
                let r: Vec<String> = sqlx::query(q)
                    .fetch_all(&mut c)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<String, _>("s"))
                    .collect();
                c.close().await.unwrap();
                r
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                let r: Vec<String> = sqlx::query(q)
                    .fetch_all(&mut c)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<String, _>("s"))
                    .collect();
                c.close().await.unwrap();
                r
            }
        };
        out.extend(rows);
    }
    out
}

async fn fresh_schema(backend: Backend) -> Vec<String> {
    let fresh = match backend {
        Backend::Sqlite => TestDb::sqlite().await,
        Backend::Postgres => TestDb::postgres_from_env().await.unwrap(),
    };
    let store = fresh.store().await;
    store.close().await;
    schema(fresh.url(), backend).await
}

async fn adopts_in_place_keeping_every_row(db: TestDb) {
    let seed = v7_fixture::seed(&db).await;
    let b = db.backend();
    assert_eq!(
        adopt::inspect(db.url()).await.unwrap(),
        DbKind::V7 {
            flavour: flavour(&db)
        }
    );
    let v7_schema = schema(db.url(), b).await;

    // Dry run: the plan and the counts, nothing written.
    let (r, out) = adopt(
        &db,
        AdoptOptions {
            dry_run: true,
            ..Default::default()
        },
    )
    .await;
    println!("{out}");
    let r = r.unwrap();
    assert_eq!(r.outcome, Outcome::DryRun);
    let counts =
        "templates 4 (active 3, soft-deleted 1), versions 1, results 2 (1 without version)";
    assert!(out.contains(&format!("Counts before: {counts}")), "{out}");
    assert!(out.contains("Dry run: nothing was written."), "{out}");
    assert_eq!(schema(db.url(), b).await, v7_schema);

    // Adopt.
    let (r, out) = adopt(&db, AdoptOptions::default()).await;
    println!("{out}");
    let r = r.unwrap();
    assert_eq!(r.outcome, Outcome::Adopted);
    assert_eq!(Some(r.before), r.after);
    assert!(out.contains(&format!("Counts after:  {counts}")), "{out}");
    let mismatched: Vec<uuid::Uuid> = r
        .mismatches
        .iter()
        .map(|m| m.template_id.parse().unwrap())
        .collect();
    assert_eq!(mismatched, seed.expected_mismatches(b), "{out}");
    if b == Backend::Sqlite {
        let backup = r.backup.clone().expect("SQLite adoption writes a backup");
        assert!(
            out.contains(&format!("Backup: {}", backup.display())),
            "{out}"
        );
        let backup_url = format!("sqlite://{}", backup.display());
        assert_eq!(
            adopt::inspect(&backup_url).await.unwrap(),
            DbKind::V7 {
                flavour: V7Flavour::Sqlite
            },
            "the backup is the V7 database as it was"
        );
    }

    // The schema is exactly a fresh database's (plus the mismatch report).
    let mut got = schema(db.url(), b).await;
    got.retain(|s| !s.contains(MISMATCH_TABLE));
    assert_eq!(got, fresh_schema(b).await);

    let store = db.connect().await;
    assert!(store.pending_migrations().await.unwrap().is_empty());
    assert_eq!(
        store.hash_algorithm().await.unwrap().as_deref(),
        Some("sha256")
    );
    let adoption = store.adoption().await.unwrap().expect("adoption facts");
    assert_eq!(adoption.from, flavour(&db).as_str());
    assert_eq!(adoption.uuid_ids_case_insensitive, b == Backend::Postgres);

    // Templates: ids, hashes, canonical text, both timestamp spellings, soft delete.
    for t in &seed.templates {
        let rec = store
            .get_template(&Scope::Unrestricted, t.id)
            .await
            .unwrap();
        assert_eq!(rec.config_hash, t.config_hash);
        assert_eq!(rec.org_id, t.org_id);
        assert_eq!(rec.deleted_at.is_some(), t.deleted);
        if !seed.expected_mismatches(b).contains(&t.id) {
            assert_eq!(rec.config_canonical_json, t.canonical);
        }
    }
    let t = |i: usize| seed.templates[i].id;
    let created = |id| {
        let store = store.clone();
        async move {
            store
                .get_template(&Scope::Unrestricted, id)
                .await
                .unwrap()
                .created_at
        }
    };
    assert_eq!(
        created(t(0)).await,
        Utc.with_ymd_and_hms(2026, 12, 1, 19, 10, 51).unwrap()
    );
    assert_eq!(
        created(t(1)).await,
        Utc.with_ymd_and_hms(2026, 12, 1, 19, 10, 52).unwrap()
            + chrono::Duration::microseconds(331_260)
    );
    assert_eq!(
        created(t(2)).await,
        Utc.with_ymd_and_hms(2026, 12, 1, 19, 10, 53).unwrap()
            + chrono::Duration::milliseconds(500)
    );
    let big = store
        .get_template(&Scope::Unrestricted, t(0))
        .await
        .unwrap();
    assert!(
        big.config_canonical_json
            .contains("123456789012345678901234567890"),
        "{}",
        big.config_canonical_json
    );
    assert!(big
        .config_canonical_json
        .contains("Grüße {{brand}} in 東京 😀"));

    // Results: full request and response, with and without a version.
    for r in &seed.results {
        let rec = store.get_result(&Scope::Unrestricted, r.id).await.unwrap();
        assert_eq!(rec.version_id, r.version_id);
        assert_eq!(rec.template_id, r.template_id);
        let want: serde_json::Value = serde_json::from_str(&r.request).unwrap();
        assert_eq!(rec.request, want);
        let want: serde_json::Value = serde_json::from_str(&r.response).unwrap();
        assert_eq!(rec.response, want);
    }

    // The mismatch report is a table the operator can read later.
    let rows = store
        .connection()
        .query_all(sea_orm::Statement::from_string(
            store.connection().get_database_backend(),
            format!("SELECT template_id, v7_config_hash, reason FROM {MISMATCH_TABLE}"),
        ))
        .await
        .unwrap();
    let listed: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "template_id").unwrap())
        .collect();
    let want: Vec<String> = seed
        .expected_mismatches(b)
        .iter()
        .map(|u| u.to_string())
        .collect();
    assert_eq!(listed, want);
    store.close().await;

    // Idempotent.
    let before = schema(db.url(), b).await;
    let (r, out) = adopt(&db, AdoptOptions::default()).await;
    println!("{out}");
    assert_eq!(r.unwrap().outcome, Outcome::AlreadyAdopted);
    assert!(out.contains("Already adopted (from "), "{out}");
    assert_eq!(schema(db.url(), b).await, before);
}

use sea_orm::ConnectionTrait;

async fn failure_half_way_changes_nothing(db: TestDb) {
    v7_fixture::seed(&db).await;
    let b = db.backend();
    let before = schema(db.url(), b).await;
    let (r, out) = adopt(
        &db,
        AdoptOptions {
            fail_after_copy: true,
            ..Default::default()
        },
    )
    .await;
    assert!(r.is_err(), "{out}");
    assert_eq!(
        schema(db.url(), b).await,
        before,
        "V7's schema is unchanged"
    );
    assert_eq!(
        adopt::inspect(db.url()).await.unwrap(),
        DbKind::V7 {
            flavour: flavour(&db)
        }
    );
    // and a real run afterwards still works
    let (r, out) = adopt(&db, AdoptOptions::default()).await;
    assert_eq!(r.unwrap().outcome, Outcome::Adopted, "{out}");
}

fn sqlite_files(db: &TestDb) -> Vec<(String, Vec<u8>)> {
    let path = adopt::sqlite_path(db.url()).unwrap().unwrap();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

async fn refused_open_writes_nothing(db: TestDb) {
    v7_fixture::seed(&db).await;
    let b = db.backend();
    let schema_before = schema(db.url(), b).await;
    let files_before = (b == Backend::Sqlite).then(|| sqlite_files(&db));
    let err = adopt::check_openable(db.url(), true).await.unwrap_err();
    assert!(matches!(err, StorageError::Refused { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("V7 database") && msg.contains("prompter migrate adopt-v7"),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "one line: {msg}");
    for cmd in [MigrateCommand::Up, MigrateCommand::Status] {
        let mut out = Vec::new();
        let err = run_with_output(db.url(), cmd, None, &mut out)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("adopt-v7"), "{err}");
    }
    assert_eq!(schema(db.url(), b).await, schema_before);
    if let Some(files) = files_before {
        assert_eq!(
            sqlite_files(&db),
            files,
            "not a byte changed, no file added"
        );
    }
}

async fn adopted_database_guards_its_adoption_point(db: TestDb) {
    v7_fixture::seed(&db).await;
    adopt(&db, AdoptOptions::default()).await.0.unwrap();
    let store = db.connect().await;
    let all = store.applied_migrations().await.unwrap();
    store.close().await;
    let yes = Confirm {
        yes: true,
        destroy_v7_data: false,
    };
    let url = db.url().to_owned();
    let run = |cmd| {
        let url = url.clone();
        async move {
            let mut out = Vec::new();
            let r = run_with_output(&url, cmd, None, &mut out).await;
            (r, String::from_utf8(out).unwrap())
        }
    };
    for cmd in [
        MigrateCommand::Down {
            steps: all.len() as u32,
            confirm: yes,
        },
        MigrateCommand::Fresh { confirm: yes },
    ] {
        let (r, out) = run(cmd).await;
        let err = r.unwrap_err().to_string();
        assert!(err.contains("--yes-destroy-v7-data"), "{err}\n{out}");
    }
    let store = db.connect().await;
    assert_eq!(
        store.applied_migrations().await.unwrap(),
        all,
        "nothing rolled back"
    );
    let n = store
        .get_template(&Scope::Unrestricted, v7_fixture::rows().templates[0].id)
        .await;
    assert!(n.is_ok());
    store.close().await;
    if all.len() > 1 {
        // Above the adoption point, down works (with --yes) and lists what it drops.
        let (r, out) = run(MigrateCommand::Down {
            steps: 1,
            confirm: yes,
        })
        .await;
        r.unwrap();
        // (The newest migration may drop columns only, or neither: 000008
        // drops only triggers; the dry run says so.)
        assert!(
            out.contains("Tables that would be dropped (rows):")
                || out.contains("Columns that would be dropped")
                || out.contains("No table would be dropped."),
            "{out}"
        );
        let (r, _) = run(MigrateCommand::Up).await;
        r.unwrap();
    }
    // Told to destroy: fresh runs and keeps the sha256 pin.
    let destroy = Confirm {
        yes: true,
        destroy_v7_data: true,
    };
    let (r, out) = run(MigrateCommand::Fresh { confirm: destroy }).await;
    r.unwrap();
    assert!(out.contains("prompt_templates (4)"), "{out}");
    assert!(out.contains("Hash algorithm: sha256"), "{out}");
}

/// Before this check existed, starting Prompter on a V7 database failed but
/// left an empty `seaql_migrations` behind: still a V7 database.
async fn leftover_migration_table_of_an_old_start_is_still_adopted(db: TestDb) {
    v7_fixture::seed(&db).await;
    let store = db.connect().await;
    store
        .connection()
        .execute_unprepared(
            "CREATE TABLE seaql_migrations (version VARCHAR NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await
        .unwrap();
    store.close().await;
    assert_eq!(
        adopt::inspect(db.url()).await.unwrap(),
        DbKind::V7 {
            flavour: flavour(&db)
        }
    );
    let (r, out) = adopt(&db, AdoptOptions::default()).await;
    assert_eq!(r.unwrap().outcome, Outcome::Adopted, "{out}");
    let store = db.connect().await;
    assert!(store.pending_migrations().await.unwrap().is_empty());
    store.close().await;
}
