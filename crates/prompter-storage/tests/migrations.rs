//! Migrations up/down/up, fresh + status, hash algorithm pinning, schema checks.

mod common;

use prompter_storage::migrate_cli::{run_with_output, MigrateCommand};
use prompter_storage::testing::TestDb;
use prompter_storage::{Backend, StorageError};

on_all_backends!(
    up_down_up,
    fresh_then_status_shows_nothing_pending,
    hash_algorithm_pin,
    partial_index_exists,
);

async fn migrate(
    db: &TestDb,
    cmd: MigrateCommand,
    hash: Option<&str>,
) -> Result<String, StorageError> {
    let mut out = Vec::new();
    run_with_output(db.url(), cmd, hash, &mut out).await?;
    Ok(String::from_utf8(out).unwrap())
}

async fn up_down_up(db: TestDb) {
    let store = db.connect().await;
    let all = store.pending_migrations().await.unwrap();
    assert!(!all.is_empty());
    assert_eq!(store.migrate_up().await.unwrap(), all);
    assert!(store.pending_migrations().await.unwrap().is_empty());
    // data goes in, the schema works
    let t = common::template(&store, "o", "w").await;
    assert!(!t.config_hash.is_empty());
    let steps = all.len() as u32;
    let mut rolled = store.migrate_down(steps).await.unwrap();
    rolled.reverse();
    assert_eq!(rolled, all);
    assert_eq!(store.pending_migrations().await.unwrap(), all);
    assert_eq!(store.migrate_up().await.unwrap(), all);
    // tables are back and empty
    common::template(&store, "o", "w").await;
    // the CLI: down one step, status shows it pending, up again
    let out = migrate(
        &db,
        MigrateCommand::Down {
            steps: 1,
            confirm: prompter_storage::migrate_cli::Confirm {
                yes: true,
                destroy_v7_data: false,
            },
        },
        None,
    )
    .await
    .unwrap();
    assert!(
        out.contains(&format!("Rolled back {}", all.last().unwrap())),
        "{out}"
    );
    assert!(out.contains("1 pending"), "{out}");
    let out = migrate(&db, MigrateCommand::Up, None).await.unwrap();
    assert!(
        out.contains(&format!("Applied {}", all.last().unwrap())),
        "{out}"
    );
}

async fn fresh_then_status_shows_nothing_pending(db: TestDb) {
    if db.backend() == Backend::Sqlite {
        // Only `up` creates a missing SQLite file.
        let err = migrate(&db, MigrateCommand::Status, None)
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Refused { .. }), "{err}");
        assert!(err.to_string().contains("--database-url"), "{err}");
        db.connect().await.close().await; // an empty file
    }
    let out = migrate(&db, MigrateCommand::Status, None).await.unwrap();
    assert!(out.contains("0 applied"), "{out}");
    assert!(out.contains("not pinned yet"), "{out}");
    let store = db.store().await;
    common::template(&store, "o", "w").await;
    let out = migrate(
        &db,
        MigrateCommand::Fresh {
            confirm: prompter_storage::migrate_cli::Confirm {
                yes: true,
                destroy_v7_data: false,
            },
        },
        Some("sha256"),
    )
    .await
    .unwrap();
    assert!(out.contains("Applied m20260101_000001_init"), "{out}");
    assert!(out.contains("Hash algorithm: sha256 (pinned now)"), "{out}");
    let out = migrate(&db, MigrateCommand::Status, None).await.unwrap();
    println!("{out}");
    assert!(out.contains(", 0 pending: schema is up to date."), "{out}");
    assert!(!out.contains("  pending  "), "{out}");
    assert!(out.contains("Hash algorithm: sha256"), "{out}");
    // fresh dropped the data
    let page = store
        .list_templates(
            &prompter_storage::Scope::Unrestricted,
            &Default::default(),
            &Default::default(),
        )
        .await
        .unwrap();
    assert!(page.items.is_empty());
}

async fn hash_algorithm_pin(db: TestDb) {
    let store = db.store().await;
    assert_eq!(store.hash_algorithm().await.unwrap(), None);
    assert_eq!(
        store.pin_hash_algorithm(Some("sha256")).await.unwrap(),
        "sha256"
    );
    assert_eq!(
        store.pin_hash_algorithm(Some("sha256")).await.unwrap(),
        "sha256"
    );
    assert_eq!(store.pin_hash_algorithm(None).await.unwrap(), "sha256");
    match store.pin_hash_algorithm(Some("blake3")).await {
        Err(StorageError::HashAlgorithmMismatch { pinned, requested }) => {
            assert_eq!((pinned.as_str(), requested.as_str()), ("sha256", "blake3"));
        }
        other => panic!("expected mismatch, got {other:?}"),
    }
    assert!(matches!(
        store.pin_hash_algorithm(Some("md5")).await,
        Err(StorageError::Invalid { .. })
    ));
    // the CLI refuses too, with the reason
    let err = migrate(&db, MigrateCommand::Up, Some("blake3"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("pinned to hash algorithm `sha256`"),
        "{err}"
    );
    // nothing pinned: default blake3
    let other = TestDb::sqlite().await;
    let out = migrate(&other, MigrateCommand::Up, None).await.unwrap();
    assert!(out.contains("Hash algorithm: blake3 (pinned now)"), "{out}");
}

async fn partial_index_exists(db: TestDb) {
    let store = db.store().await;
    let sql = match db.backend() {
        Backend::Postgres => "SELECT indexdef AS def FROM pg_indexes WHERE indexname = 'ux_tpl_org_ws_confighash_active'",
        Backend::Sqlite => "SELECT sql AS def FROM sqlite_master WHERE name = 'ux_tpl_org_ws_confighash_active'",
    };
    use prompter_storage::sea_orm::ConnectionTrait;
    let row = store
        .connection()
        .query_one(prompter_storage::sea_orm::Statement::from_string(
            store.connection().get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .expect("index exists");
    let def: String = row.try_get("", "def").unwrap();
    assert!(def.contains("UNIQUE"), "{def}");
    assert!(
        def.to_lowercase().contains("where (deleted_at is null)")
            || def.to_lowercase().contains("where deleted_at is null"),
        "{def}"
    );
}

#[tokio::test]
async fn unreachable_database_is_unavailable_and_bad_urls_invalid() {
    use prompter_storage::{PoolConfig, Store};
    let cfg = PoolConfig {
        connect_timeout: std::time::Duration::from_secs(2),
        ..PoolConfig::default()
    };
    match Store::connect("postgres://postgres@127.0.0.1:1/nope", &cfg).await {
        Err(e @ StorageError::Unavailable { .. }) => {
            assert!(e.is_retryable());
            assert!(e.to_string().contains("refused"), "{e}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(matches!(
        Store::connect("mysql://x", &cfg).await,
        Err(StorageError::Invalid { .. })
    ));
    let out = run_with_output(
        "sqlite:///nonexistent-dir/x/y.db",
        MigrateCommand::Status,
        None,
        &mut Vec::new(),
    )
    .await;
    assert!(
        matches!(&out, Err(StorageError::Refused { message }) if message.contains("/nonexistent-dir/x/y.db")),
        "{out:?}"
    );
}

on_all_backends!(pool_exhaustion_is_unavailable);

async fn pool_exhaustion_is_unavailable(db: TestDb) {
    use prompter_storage::sea_orm::TransactionTrait;
    use prompter_storage::{PoolConfig, Scope, Store};
    db.store().await;
    let cfg = PoolConfig {
        max_connections: 1,
        acquire_timeout: std::time::Duration::from_millis(200),
        ..PoolConfig::default()
    };
    let store = Store::connect(db.url(), &cfg).await.unwrap();
    let held = store.connection().begin().await.unwrap();
    match store
        .get_template(&Scope::Unrestricted, uuid::Uuid::now_v7())
        .await
    {
        Err(e @ StorageError::Unavailable { .. }) => assert_eq!(e.code(), "DB_UNAVAILABLE"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    drop(held);
}
