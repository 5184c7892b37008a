//! Version upserts under concurrency, listing, latest.

mod common;

use common::*;
use prompter_storage::testing::TestDb;
use prompter_storage::{PageRequest, Scope, StorageError};

on_all_backends!(
    concurrent_same_key_upserts_make_one_row,
    new_key_makes_a_second_row,
    fingerprint_is_set_once,
    versions_list_newest_first_and_scoped,
    unknown_template_is_not_found,
    timestamps_order_as_text_and_round_trip,
    two_pools_write_concurrently_without_busy_errors,
);

async fn concurrent_same_key_upserts_make_one_row(db: TestDb) {
    let store = db.store().await;
    let t = template(&store, "org", "ws").await;
    // seen_at values deliberately out of order
    let offsets: Vec<i64> = (0..32).map(|i| (i * 7919) % 1000).collect();
    let max = offsets.iter().copied().max().unwrap();
    let min = offsets.iter().copied().min().unwrap();
    let tasks: Vec<_> = offsets
        .iter()
        .map(|&ms| {
            let store = store.clone();
            let v = new_version(&t, "key-1", at(ms));
            tokio::spawn(async move { store.upsert_version(v).await })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    let mut inserted = 0;
    for task in tasks {
        let up = task.await.unwrap().expect("upsert");
        ids.insert(up.version.id);
        inserted += usize::from(up.inserted);
        assert!(up.drift.is_none());
    }
    assert_eq!(ids.len(), 1, "one row for one key");
    assert_eq!(inserted, 1, "exactly one call created it");
    let page = store
        .list_versions(&Scope::Unrestricted, t.id, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let v = &page.items[0];
    assert_eq!(v.last_seen_at, at(max), "last_seen_at is the maximum");
    assert_eq!(v.first_seen_at, at(min), "first_seen_at is the minimum");
    // never moves backward
    let up = store
        .upsert_version(new_version(&t, "key-1", at(-5000)))
        .await
        .unwrap();
    assert_eq!(up.version.last_seen_at, at(max));
    assert!(!up.inserted);
}

async fn new_key_makes_a_second_row(db: TestDb) {
    let store = db.store().await;
    let t = template(&store, "org", "ws").await;
    let a = store
        .upsert_version(new_version(&t, "key-1", at(0)))
        .await
        .unwrap();
    let b = store
        .upsert_version(new_version(&t, "key-2", at(10)))
        .await
        .unwrap();
    assert!(a.inserted && b.inserted);
    assert_ne!(a.version.id, b.version.id);
    let latest = store
        .latest_version(&Scope::Unrestricted, t.id, "openai", &t.model_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.provider_version_key, "key-2");
    // key-1 seen again later becomes the latest again
    store
        .upsert_version(new_version(&t, "key-1", at(20)))
        .await
        .unwrap();
    let latest = store
        .latest_version(&Scope::Unrestricted, t.id, "openai", &t.model_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.provider_version_key, "key-1");
    assert!(store
        .latest_version(&Scope::Unrestricted, t.id, "google", &t.model_id)
        .await
        .unwrap()
        .is_none());
    let got = store
        .get_version(&Scope::Unrestricted, b.version.id)
        .await
        .unwrap();
    assert_eq!(got, b.version);
}

async fn fingerprint_is_set_once(db: TestDb) {
    let store = db.store().await;
    let t = template(&store, "org", "ws").await;
    let v0 = store
        .upsert_version(new_version(&t, "k", at(0)))
        .await
        .unwrap()
        .version;
    assert!(v0.fingerprint_captured_at.is_none());
    let mut with_fp = new_version(&t, "k", at(10));
    with_fp.fingerprint_captured_at = Some(at(10));
    let v1 = store.upsert_version(with_fp.clone()).await.unwrap().version;
    assert_eq!(v1.fingerprint_captured_at, Some(at(10)));
    with_fp.seen_at = at(20);
    with_fp.fingerprint_captured_at = Some(at(20));
    let v2 = store.upsert_version(with_fp).await.unwrap().version;
    assert_eq!(
        v2.fingerprint_captured_at,
        Some(at(10)),
        "only set while empty"
    );
    assert_eq!(v2.last_seen_at, at(20));
}

async fn versions_list_newest_first_and_scoped(db: TestDb) {
    let store = db.store().await;
    let t = template(&store, "org", "ws").await;
    for i in 0..25 {
        store
            .upsert_version(new_version(&t, &format!("k{i:02}"), at(i * 100)))
            .await
            .unwrap();
    }
    let mut req = PageRequest::first(7);
    let mut keys = Vec::new();
    loop {
        let page = store
            .list_versions(&Scope::tenant("org", Some("ws".into())), t.id, &req)
            .await
            .unwrap();
        keys.extend(page.items.into_iter().map(|v| v.provider_version_key));
        match page.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().map(|i| format!("k{i:02}")).collect();
    assert_eq!(keys, expected);
    let other = Scope::tenant("org", Some("other".into()));
    assert!(store
        .list_versions(&other, t.id, &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .latest_version(&other, t.id, "openai", &t.model_id)
        .await
        .unwrap()
        .is_none());
    let any = store
        .latest_version(&Scope::Unrestricted, t.id, "openai", &t.model_id)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        store.get_version(&other, any.id).await,
        Err(StorageError::NotFound)
    ));
}

async fn unknown_template_is_not_found(db: TestDb) {
    let store = db.store().await;
    let t = template(&store, "org", "ws").await;
    let mut v = new_version(&t, "k", at(0));
    v.template_id = uuid::Uuid::now_v7();
    assert!(matches!(
        store.upsert_version(v).await,
        Err(StorageError::NotFound)
    ));
}

async fn timestamps_order_as_text_and_round_trip(db: TestDb) {
    use chrono::Duration;
    let store = db.store().await;
    let t = template(&store, "org", "ws").await;
    // sub-second parts that variable-width encodings would misorder as text
    let offsets_us = [
        0i64, 1, 10, 100_000, 120_000, 999_999, 1_000_000, 1_000_001, 1_500_000,
    ];
    for (i, us) in offsets_us.iter().enumerate() {
        store
            .upsert_version(new_version(
                &t,
                &format!("k{i}"),
                t0() + Duration::microseconds(*us),
            ))
            .await
            .unwrap();
    }
    let page = store
        .list_versions(&Scope::Unrestricted, t.id, &PageRequest::first(100))
        .await
        .unwrap();
    let got: Vec<_> = page.items.iter().map(|v| v.first_seen_at).collect();
    let expected: Vec<_> = offsets_us
        .iter()
        .rev()
        .map(|us| t0() + Duration::microseconds(*us))
        .collect();
    assert_eq!(got, expected, "newest first, exact to the microsecond");
    if db.backend() == prompter_storage::Backend::Sqlite {
        use prompter_storage::sea_orm::ConnectionTrait;
        let conn = store.connection();
        let rows = conn
            .query_all(prompter_storage::sea_orm::Statement::from_string(
                conn.get_database_backend(),
                "SELECT first_seen_at AS t FROM prompt_versions ORDER BY first_seen_at",
            ))
            .await
            .unwrap();
        let texts: Vec<String> = rows.iter().map(|r| r.try_get("", "t").unwrap()).collect();
        assert!(
            texts
                .iter()
                .all(|s| s.len() == "2026-01-01T12:00:00.000000Z".len()),
            "{texts:?}"
        );
        assert_eq!(texts[0], "2026-01-01T12:00:00.000000Z");
        assert_eq!(texts[1], "2026-01-01T12:00:00.000001Z");
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted);
    }
}

/// Two independent pools (as two server processes would have) writing
/// multi-statement transactions at once: `BEGIN IMMEDIATE` + `busy_timeout`
/// make them wait for each other instead of failing with SQLITE_BUSY.
async fn two_pools_write_concurrently_without_busy_errors(db: TestDb) {
    let a = db.store().await;
    let b = db.connect().await;
    let t = template(&a, "org", "ws").await;
    a.upsert_version(new_version(&t, "base", at(0)))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let v = new_version(&t, &format!("k{}", i % 6), at(10 + i));
            tokio::spawn(async move { store.upsert_version(v).await })
        })
        .collect();
    let mut drifts = 0;
    for task in tasks {
        drifts += usize::from(task.await.unwrap().expect("no busy error").drift.is_some());
    }
    assert_eq!(drifts, 6, "one drift event per new key");
    let page = b
        .list_versions(&Scope::Unrestricted, t.id, &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 7);
}
