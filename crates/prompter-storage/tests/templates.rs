//! Template repository: DB-enforced dedup under concurrency, soft delete and
//! restore, tenancy, pagination.

mod common;

use common::*;
use prompter_storage::testing::TestDb;
use prompter_storage::{Backend, PageRequest, Scope, StorageError, TemplateFilter};
use std::collections::HashSet;

on_all_backends!(
    concurrent_identical_inserts_make_one_row,
    stored_template_round_trips,
    soft_delete_frees_the_hash,
    restore_into_a_collision_is_a_conflict,
    wrong_scope_sees_nothing,
    pagination_returns_every_row_once,
    bad_cursor_is_invalid_cursor,
    nul_text_is_invalid_on_postgres,
    same_hash_in_other_workspace_is_allowed,
    concurrent_creates_answer_each_caller,
    sqlite_wal_stays_bounded,
    analyze_templates_gives_the_planner_row_counts,
);

async fn concurrent_identical_inserts_make_one_row(db: TestDb) {
    let store = db.store().await;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(
                async move { store.insert_template(new_template("org", "ws", "h1")).await },
            )
        })
        .collect();
    let mut winners = Vec::new();
    let mut conflicts = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(rec) => winners.push(rec.id),
            Err(StorageError::Conflict {
                existing_template_id,
            }) => conflicts.push(existing_template_id),
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one insert wins");
    assert_eq!(conflicts.len(), 31);
    assert!(
        conflicts.iter().all(|c| *c == Some(winners[0])),
        "{conflicts:?}"
    );
    let page = store
        .list_templates(
            &Scope::Unrestricted,
            &TemplateFilter {
                include_deleted: true,
                ..Default::default()
            },
            &PageRequest::first(100),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, winners[0]);
}

async fn stored_template_round_trips(db: TestDb) {
    let store = db.store().await;
    let new = new_template("org", "ws", "rt");
    let rec = store.insert_template(new.clone()).await.unwrap();
    assert_eq!(rec.id.get_version_num(), 7);
    let got = store
        .get_template(&Scope::Unrestricted, rec.id)
        .await
        .unwrap();
    assert_eq!(got, rec, "what insert returns is what is stored");
    // exact canonical text, never re-serialised
    assert_eq!(got.config_canonical_json, new.config_canonical_json);
    assert_eq!(got.inference_params, new.inference_params);
    let found = store
        .find_active_by_hash("org", "ws", "rt")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, rec.id);
    assert!(store
        .find_active_by_hash("org", "other", "rt")
        .await
        .unwrap()
        .is_none());
}

async fn soft_delete_frees_the_hash(db: TestDb) {
    let store = db.store().await;
    let scope = Scope::Unrestricted;
    let first = store
        .insert_template(new_template("org", "ws", "h"))
        .await
        .unwrap();
    store
        .soft_delete_template(&scope, first.id, None)
        .await
        .unwrap();
    // already deleted -> NotFound
    assert!(matches!(
        store.soft_delete_template(&scope, first.id, None).await,
        Err(StorageError::NotFound)
    ));
    // deleted ones are still readable by id
    let deleted = store.get_template(&scope, first.id).await.unwrap();
    assert!(deleted.deleted_at.is_some());
    assert!(store
        .find_active_by_hash("org", "ws", "h")
        .await
        .unwrap()
        .is_none());
    let second = store
        .insert_template(new_template("org", "ws", "h"))
        .await
        .unwrap();
    assert_ne!(first.id, second.id);
    // listing: active only by default, both with include_deleted
    let active = store
        .list_templates(&scope, &TemplateFilter::default(), &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        active.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![second.id]
    );
    let all = store
        .list_templates(
            &scope,
            &TemplateFilter {
                include_deleted: true,
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);
}

async fn restore_into_a_collision_is_a_conflict(db: TestDb) {
    let store = db.store().await;
    let scope = Scope::Unrestricted;
    let first = store
        .insert_template(new_template("org", "ws", "h"))
        .await
        .unwrap();
    store
        .soft_delete_template(&scope, first.id, None)
        .await
        .unwrap();
    let twin = store
        .insert_template(new_template("org", "ws", "h"))
        .await
        .unwrap();
    match store.restore_template(&scope, first.id, None).await {
        Err(StorageError::Conflict {
            existing_template_id,
        }) => assert_eq!(existing_template_id, Some(twin.id)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    // free the hash again: restore now works, and is idempotent
    store
        .soft_delete_template(&scope, twin.id, None)
        .await
        .unwrap();
    let restored = store
        .restore_template(&scope, first.id, None)
        .await
        .unwrap();
    assert_eq!(restored.id, first.id);
    assert!(restored.deleted_at.is_none());
    assert_eq!(
        store
            .restore_template(&scope, first.id, None)
            .await
            .unwrap()
            .id,
        first.id
    );
    assert!(matches!(
        store
            .restore_template(&scope, uuid::Uuid::now_v7(), None)
            .await,
        Err(StorageError::NotFound)
    ));
}

async fn wrong_scope_sees_nothing(db: TestDb) {
    let store = db.store().await;
    let t = store
        .insert_template(new_template("org-a", "ws-a", "h"))
        .await
        .unwrap();
    let wrong_ws = Scope::tenant("org-a", Some("ws-b".into()));
    let wrong_org = Scope::tenant("org-b", Some("ws-a".into()));
    let wrong_org_any_ws = Scope::tenant("org-b", None);
    for scope in [&wrong_ws, &wrong_org, &wrong_org_any_ws] {
        assert!(
            matches!(
                store.get_template(scope, t.id).await,
                Err(StorageError::NotFound)
            ),
            "{scope:?}"
        );
        let page = store
            .list_templates(scope, &TemplateFilter::default(), &PageRequest::first(10))
            .await
            .unwrap();
        assert!(page.items.is_empty(), "{scope:?}");
        assert!(matches!(
            store.soft_delete_template(scope, t.id, None).await,
            Err(StorageError::NotFound)
        ));
        assert!(matches!(
            store.restore_template(scope, t.id, None).await,
            Err(StorageError::NotFound)
        ));
    }
    // a filter cannot widen the scope
    let filter = TemplateFilter {
        org_id: Some("org-a".into()),
        ..Default::default()
    };
    assert!(store
        .list_templates(&wrong_org, &filter, &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
    // the right scopes see it, and it is still active
    for scope in [
        Scope::tenant("org-a", Some("ws-a".into())),
        Scope::tenant("org-a", None),
        Scope::Unrestricted,
    ] {
        assert_eq!(store.get_template(&scope, t.id).await.unwrap().id, t.id);
        assert_eq!(
            store
                .list_templates(&scope, &TemplateFilter::default(), &PageRequest::first(10))
                .await
                .unwrap()
                .items
                .len(),
            1
        );
    }
    assert!(store
        .get_template(&Scope::Unrestricted, t.id)
        .await
        .unwrap()
        .deleted_at
        .is_none());
}

async fn pagination_returns_every_row_once(db: TestDb) {
    let store = db.store().await;
    // concurrent inserts: many rows share a created_at microsecond only by chance,
    // so ties on created_at are exercised by the id tiebreak in any case
    let mut expected = HashSet::new();
    let tasks: Vec<_> = (0..57)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .insert_template(new_template("org", "ws", &format!("p{i}")))
                    .await
                    .unwrap()
                    .id
            })
        })
        .collect();
    for t in tasks {
        expected.insert(t.await.unwrap());
    }
    // noise in another workspace
    template(&store, "org", "other").await;
    let scope = Scope::tenant("org", Some("ws".into()));
    let mut seen = Vec::new();
    let mut req = PageRequest::first(10);
    let mut pages = 0;
    loop {
        let page = store
            .list_templates(&scope, &TemplateFilter::default(), &req)
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 10);
        seen.extend(page.items.iter().map(|t| (t.created_at, t.id)));
        match page.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 6);
    assert_eq!(seen.len(), 57);
    assert_eq!(seen.iter().map(|s| s.1).collect::<HashSet<_>>(), expected);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first by (created_at, id)");
}

async fn bad_cursor_is_invalid_cursor(db: TestDb) {
    let store = db.store().await;
    let t = template(&store, "org", "ws").await;
    for bad in ["not-a-cursor", "", "YWJj", "%%%"] {
        let req = PageRequest {
            limit: 10,
            cursor: Some(bad.into()),
        };
        assert!(
            matches!(
                store
                    .list_templates(&Scope::Unrestricted, &TemplateFilter::default(), &req)
                    .await,
                Err(StorageError::InvalidCursor)
            ),
            "{bad}"
        );
        assert!(matches!(
            store.list_versions(&Scope::Unrestricted, t.id, &req).await,
            Err(StorageError::InvalidCursor)
        ));
        assert!(matches!(
            store
                .list_results(&Scope::Unrestricted, t.id, &Default::default(), &req)
                .await,
            Err(StorageError::InvalidCursor)
        ));
    }
}

async fn nul_text_is_invalid_on_postgres(db: TestDb) {
    let store = db.store().await;
    let mut t = new_template("org", "ws", "nul");
    t.user_prompt_template = "a\u{0000}b".into();
    let mut j = new_template("org", "ws", "nul-json");
    j.inference_params = serde_json::json!({"stop": "\u{0000}"});
    match db.backend() {
        Backend::Postgres => {
            for t in [t, j] {
                match store.insert_template(t).await {
                    Err(e @ StorageError::Invalid { .. }) => assert_eq!(e.code(), "INVALID_INPUT"),
                    other => panic!("expected Invalid, got {other:?}"),
                }
            }
        }
        Backend::Sqlite => {
            let rec = store.insert_template(t).await.unwrap();
            let got = store
                .get_template(&Scope::Unrestricted, rec.id)
                .await
                .unwrap();
            assert_eq!(got.user_prompt_template, "a\u{0000}b");
            store.insert_template(j).await.unwrap();
        }
    }
}

async fn same_hash_in_other_workspace_is_allowed(db: TestDb) {
    let store = db.store().await;
    store
        .insert_template(new_template("org", "ws1", "h"))
        .await
        .unwrap();
    store
        .insert_template(new_template("org", "ws2", "h"))
        .await
        .unwrap();
    store
        .insert_template(new_template("org2", "ws1", "h"))
        .await
        .unwrap();
    assert!(matches!(
        store.insert_template(new_template("org", "ws1", "h")).await,
        Err(StorageError::Conflict {
            existing_template_id: Some(_)
        })
    ));
}

/// Group commit (issue 9): concurrent distinct and duplicate inserts land in
/// shared multi-row statements, yet every caller gets its own answer; on
/// PostgreSQL a bad row (U+0000) fails only its own caller.
async fn concurrent_creates_answer_each_caller(db: TestDb) {
    let store = db.store().await;
    let tasks: Vec<_> = (0..48)
        .map(|i| {
            let store = store.clone();
            // 16 distinct hashes, each sent three times; #7 carries a NUL.
            let mut t = new_template("org", "ws", &format!("h{}", i % 16));
            if i == 7 {
                t.name = "bad\u{0000}".into();
                t.config_hash = "bad".into();
            }
            tokio::spawn(async move { (i, store.insert_template(t).await) })
        })
        .collect();
    let mut winners = std::collections::HashMap::new();
    let mut conflicts = Vec::new();
    for t in tasks {
        let (i, res) = t.await.unwrap();
        match res {
            Ok(rec) => {
                assert!(
                    winners.insert(rec.config_hash.clone(), rec.id).is_none(),
                    "two winners for {}",
                    rec.config_hash
                );
            }
            Err(StorageError::Conflict {
                existing_template_id,
            }) => conflicts.push((i, existing_template_id)),
            Err(e @ StorageError::Invalid { .. }) => {
                assert_eq!((i, db.backend()), (7, Backend::Postgres), "{e}");
            }
            Err(e) => panic!("insert {i}: {e}"),
        }
    }
    let bad_ok = winners.contains_key("bad");
    assert_eq!(bad_ok, db.backend() == Backend::Sqlite);
    assert_eq!(winners.len(), 17 - usize::from(!bad_ok));
    assert_eq!(conflicts.len(), 31);
    for (i, twin) in conflicts {
        assert_eq!(twin, Some(winners[&format!("h{}", i % 16)]), "insert {i}");
    }
    let page = store
        .list_templates(
            &Scope::Unrestricted,
            &TemplateFilter::default(),
            &PageRequest::first(100),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), winners.len());
}

/// SQLite checkpoints its WAL only when an autocommit statement steps to
/// its end; single-statement writes that stopped after their first row
/// (sqlx `fetch_one`) committed without ever checkpointing, so the WAL file
/// grew without bound. Thousands of such writes must leave it near
/// SQLite's 1000-page checkpoint threshold.
async fn sqlite_wal_stays_bounded(db: TestDb) {
    if db.backend() != Backend::Sqlite {
        return;
    }
    let store = db.store().await;
    let tpl = template(&store, "org", "ws").await;
    let ttl = std::time::Duration::from_secs(3600);
    for i in 0..3000 {
        // Each claim is one INSERT … RETURNING of a new key.
        let claim = store
            .claim_idempotency(
                tpl.id,
                "org",
                &format!("key-{i}-{}", "x".repeat(2000)),
                "h",
                ttl,
            )
            .await
            .unwrap();
        assert!(matches!(claim, prompter_storage::Claim::New));
    }
    let path = db
        .url()
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let db_len = std::fs::metadata(&path).unwrap().len();
    let wal_len = std::fs::metadata(format!("{path}-wal")).map_or(0, |m| m.len());
    // 3000 rows of > 2 KB: ≥ 6 MB were written; the default checkpoint
    // threshold is 1000 pages (4 MB) of WAL.
    assert!(db_len > 6_000_000, "database only {db_len} bytes");
    assert!(wal_len < 6_000_000, "WAL grew to {wal_len} bytes");
}

/// After a bulk load, `analyze_templates` gives PostgreSQL's planner the row
/// count (`reltuples` is -1 until the table was analysed); SQLite: no-op.
async fn analyze_templates_gives_the_planner_row_counts(db: TestDb) {
    let store = db.store().await;
    for _ in 0..5 {
        template(&store, "org", "ws").await;
    }
    store.analyze_templates().await.unwrap();
    if db.backend() == Backend::Postgres {
        assert_eq!(db.pg_reltuples("prompt_templates").await, 5.0);
    }
}
