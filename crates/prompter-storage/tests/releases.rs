//! Prompt releases in storage: the migration numbers existing templates per
//! prompt by `created_at`, then id, and later creates continue the count;
//! template events are written in the transaction of the change; a label
//! never points to a deleted template, whatever runs concurrently; fetch
//! lookups (label, number, latest) with their labels.

mod common;

use prompter_migration::MigratorTrait;
use prompter_storage::migrate_cli::{run_with_output, MigrateCommand};
use prompter_storage::sea_orm::ConnectionTrait;
use prompter_storage::testing::TestDb;
use prompter_storage::{
    LabelMove, PageRequest, PromptKey, RevisionRef, RevisionTag, Scope, StorageError, Store,
    TemplateDelete,
};
use serde_json::{json, Value};
use uuid::Uuid;

on_all_backends!(migration_numbers_existing_templates);

async fn migration_numbers_existing_templates(db: TestDb) {
    // The schema before releases: the first two migrations.
    let store = db.connect().await;
    let pending = store.pending_migrations().await.unwrap();
    let releases = pending
        .iter()
        .position(|m| m == "m20261201_000003_prompt_releases")
        .expect("the releases migration");
    prompter_migration::Migrator::up(store.connection(), Some(releases as u32))
        .await
        .unwrap();
    // Same name in two orgs; equal created_at broken by id; inserted out of order.
    let rows = [
        (
            "00000000-0000-7000-8000-000000000003",
            "o1",
            "2026-01-02T00:00:00.000000Z",
        ),
        (
            "00000000-0000-7000-8000-000000000002",
            "o1",
            "2026-01-01T00:00:00.000000Z",
        ),
        (
            "00000000-0000-7000-8000-000000000001",
            "o1",
            "2026-01-01T00:00:00.000000Z",
        ),
        (
            "00000000-0000-7000-8000-000000000004",
            "o2",
            "2025-01-01T00:00:00.000000Z",
        ),
    ];
    for (i, (id, org, at)) in rows.iter().enumerate() {
        store
            .connection()
            .execute_unprepared(&format!(
                "INSERT INTO prompt_templates (id, org_id, workspace_id, name, \
                 system_instructions, user_prompt_template, model_id, config_hash, \
                 config_canonical_json, created_at) \
                 VALUES ('{id}', '{org}', 'w', 'p', '', 'u{i}', 'm', 'h{i}', '{{}}', '{at}')"
            ))
            .await
            .unwrap();
    }
    let mut out = Vec::new();
    run_with_output(db.url(), MigrateCommand::Up, None, &mut out)
        .await
        .unwrap();
    let key = |org: &str| PromptKey {
        org_id: org.into(),
        workspace_id: "w".into(),
        name: "p".into(),
    };
    let page = store
        .list_revisions(&key("o1"), &PageRequest::first(10))
        .await
        .unwrap();
    let got: Vec<(i64, String)> = page
        .items
        .iter()
        .map(|r| (r.revision, r.template_id.to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, rows[0].0.to_owned()),
            (2, rows[1].0.to_owned()),
            (1, rows[2].0.to_owned()),
        ]
    );
    // The counter continues after the numbered rows.
    let mut t = common::new_template("o1", "w", "h-new");
    t.name = "p".into();
    let created = store.insert_template(t).await.unwrap();
    assert_eq!(created.revision, 4);
    let o2 = store.latest_revision(&key("o2")).await.unwrap().unwrap();
    assert_eq!(o2.revision, 1);
}

on_all_backends!(
    template_events_are_written_with_the_change,
    delete_and_label_moves_never_leave_a_label_on_a_deleted_template,
    fetch_lookups_resolve_in_one_statement,
);

/// `(event_id, payload)` of every outbox row.
async fn outbox(store: &Store) -> Vec<(Uuid, Value)> {
    store
        .list_outbox(100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.event_id, serde_json::from_str(&r.payload).unwrap()))
        .collect()
}

fn created_event(org: &str, name: &str) -> (Uuid, Value) {
    let id = Uuid::now_v7();
    (
        id,
        json!({"type": "template.created", "event_id": id, "org_id": org, "prompt": name,
               "template_id": null, "revision": null}),
    )
}

async fn template_events_are_written_with_the_change(db: TestDb) {
    let store = db.store().await;
    let named = |hash: &str| {
        let mut t = common::new_template("o", "w", hash);
        t.name = "p".into();
        t
    };
    // 24 concurrent creates (group-committed), 4 of them twins of another:
    // each created template has exactly one event carrying its id and
    // revision; a create that loses to its twin has none.
    let creates = (0..24).map(|i| {
        let store = store.clone();
        let hash = format!("h{}", i % 20);
        let (event_id, body) = created_event("o", "p");
        tokio::spawn(async move {
            let r = store
                .insert_template_with_event(named(&hash), Some((event_id, body)))
                .await;
            (event_id, r)
        })
    });
    let mut created = Vec::new();
    let mut refused = Vec::new();
    for h in futures::future::join_all(creates).await {
        match h.unwrap() {
            (e, Ok(t)) => created.push((e, t)),
            (e, Err(StorageError::Conflict { .. })) => refused.push(e),
            (_, Err(other)) => panic!("{other:?}"),
        }
    }
    assert_eq!((created.len(), refused.len()), (20, 4));
    let events = outbox(&store).await;
    assert_eq!(events.len(), 20, "{events:?}");
    for (event_id, t) in &created {
        let mine: Vec<&Value> = events
            .iter()
            .filter(|(_, b)| b["template_id"] == t.id.to_string())
            .map(|(_, b)| b)
            .collect();
        assert_eq!(mine.len(), 1, "{}", t.id);
        assert_eq!(mine[0]["revision"], t.revision);
        assert_eq!(mine[0]["event_id"], event_id.to_string());
    }
    let revisions: std::collections::BTreeSet<i64> =
        created.iter().map(|(_, t)| t.revision).collect();
    assert_eq!(revisions, (1..=20).collect());
    for e in &refused {
        assert!(events.iter().all(|(id, _)| id != e));
    }

    // A delete refused because a label points to the template rolls back:
    // no event. A done delete and restore have one each.
    let key = PromptKey {
        org_id: "o".into(),
        workspace_id: "w".into(),
        name: "p".into(),
    };
    let t = store.get_revision(&key, 1).await.unwrap().unwrap();
    let ev = |kind: &str| (Uuid::now_v7(), json!({"type": kind}).to_string());
    let moved = store
        .move_label(&key, "prod", &t, None, None, None)
        .await
        .unwrap();
    assert_eq!(moved, LabelMove::Moved { previous: None });
    let refused = ev("template.deleted");
    assert_eq!(
        store
            .soft_delete_template(&Scope::Unrestricted, t.id, Some(refused.clone()))
            .await
            .unwrap(),
        TemplateDelete::LabelsInUse(vec!["prod".into()])
    );
    assert!(store
        .get_template(&Scope::Unrestricted, t.id)
        .await
        .unwrap()
        .deleted_at
        .is_none());
    assert_eq!(
        store.remove_label(&key, "prod", None, None).await.unwrap(),
        Some(1)
    );
    let deleted = ev("template.deleted");
    assert_eq!(
        store
            .soft_delete_template(&Scope::Unrestricted, t.id, Some(deleted.clone()))
            .await
            .unwrap(),
        TemplateDelete::Deleted
    );
    // A twin takes the freed hash: restoring fails and leaves no event.
    let twin = store.insert_template(named(&t.config_hash)).await.unwrap();
    let clash = ev("template.restored");
    assert!(matches!(
        store
            .restore_template(&Scope::Unrestricted, t.id, Some(clash.clone()))
            .await,
        Err(StorageError::Conflict { existing_template_id: Some(id) }) if id == twin.id
    ));
    store
        .soft_delete_template(&Scope::Unrestricted, twin.id, None)
        .await
        .unwrap();
    let restored = ev("template.restored");
    store
        .restore_template(&Scope::Unrestricted, t.id, Some(restored.clone()))
        .await
        .unwrap();
    // Restoring an active template changes nothing: no event.
    let again = ev("template.restored");
    store
        .restore_template(&Scope::Unrestricted, t.id, Some(again.clone()))
        .await
        .unwrap();
    let ids: Vec<Uuid> = outbox(&store).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 22);
    for (e, want) in [
        (refused.0, false),
        (deleted.0, true),
        (clash.0, false),
        (restored.0, true),
        (again.0, false),
    ] {
        assert_eq!(ids.contains(&e), want, "{e}");
    }

    // On PostgreSQL a create that fails (U+0000 cannot be stored) leaves
    // no event either.
    if db.backend() == prompter_storage::Backend::Postgres {
        let mut bad = named("nul");
        bad.user_prompt_template = "a\u{0}b".into();
        let (e, body) = created_event("o", "p");
        assert!(store
            .insert_template_with_event(bad, Some((e, body)))
            .await
            .is_err());
        let ids: Vec<Uuid> = outbox(&store).await.into_iter().map(|(id, _)| id).collect();
        assert!(!ids.contains(&e));
        assert_eq!(ids.len(), 22);
    }
}

async fn delete_and_label_moves_never_leave_a_label_on_a_deleted_template(db: TestDb) {
    let store = db.store().await;
    let key = PromptKey {
        org_id: "o".into(),
        workspace_id: "w".into(),
        name: "p".into(),
    };
    let mut tpl = Vec::new();
    for h in ["a", "b"] {
        let mut t = common::new_template("o", "w", h);
        t.name = "p".into();
        tpl.push(store.insert_template(t).await.unwrap());
    }
    let (home, target) = (tpl[0].clone(), tpl[1].clone());
    let labels = ["l0", "l1", "l2", "l3"];
    for l in labels {
        store
            .move_label(&key, l, &home, None, None, None)
            .await
            .unwrap();
    }
    let (mut deletes, mut moves) = (0, 0);
    for round in 0..40 {
        // One delete of `target` against four moves onto it, all at once.
        let del = {
            let store = store.clone();
            let id = target.id;
            tokio::spawn(async move {
                store
                    .soft_delete_template(&Scope::Unrestricted, id, None)
                    .await
                    .unwrap()
            })
        };
        let movers: Vec<_> = labels
            .iter()
            .map(|l| {
                let (store, key, target) = (store.clone(), key.clone(), target.clone());
                let l = l.to_string();
                let guard = Some(home.revision);
                tokio::spawn(async move {
                    store
                        .move_label(&key, &l, &target, guard, None, None)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let deleted = del.await.unwrap();
        let mut moved = Vec::new();
        for (l, m) in labels.iter().zip(movers) {
            match m.await.unwrap() {
                LabelMove::Moved { .. } => moved.push(l.to_string()),
                LabelMove::TargetGone => {}
                other => panic!("round {round}: {other:?}"),
            }
        }
        // Never both: the delete wins and every move is refused, or some
        // move wins and the delete names (some of) the moved labels.
        match &deleted {
            TemplateDelete::Deleted => {
                assert!(moved.is_empty(), "round {round}: {moved:?}");
                deletes += 1;
            }
            TemplateDelete::LabelsInUse(names) => {
                assert!(!moved.is_empty(), "round {round}");
                assert!(
                    names.iter().all(|n| moved.contains(n)),
                    "{names:?} {moved:?}"
                );
                moves += 1;
            }
        }
        let dangling = store
            .connection()
            .query_one(prompter_storage::sea_orm::Statement::from_string(
                store.connection().get_database_backend(),
                "SELECT COUNT(*) AS n FROM prompt_labels l JOIN prompt_templates t \
                 ON t.id = l.template_id WHERE t.deleted_at IS NOT NULL",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap();
        assert_eq!(dangling, 0, "round {round}");
        // Back to the start.
        if matches!(deleted, TemplateDelete::Deleted) {
            store
                .restore_template(&Scope::Unrestricted, target.id, None)
                .await
                .unwrap();
        }
        for l in &moved {
            let back = store
                .move_label(&key, l, &home, Some(target.revision), None, None)
                .await
                .unwrap();
            assert!(matches!(back, LabelMove::Moved { .. }));
        }
    }
    println!(
        "{:?}: {deletes} rounds won by the delete, {moves} by moves",
        db.backend()
    );
}

async fn fetch_lookups_resolve_in_one_statement(db: TestDb) {
    let store = db.store().await;
    let key = PromptKey {
        org_id: "o".into(),
        workspace_id: "w".into(),
        name: "p".into(),
    };
    let mut tpl = Vec::new();
    for h in ["a", "b", "c"] {
        let mut t = common::new_template("o", "w", h);
        t.name = "p".into();
        tpl.push(store.insert_template(t).await.unwrap());
    }
    for (l, t) in [
        ("staging", &tpl[1]),
        ("production", &tpl[1]),
        ("canary", &tpl[0]),
    ] {
        store
            .move_label(&key, l, t, None, None, None)
            .await
            .unwrap();
    }
    store
        .soft_delete_template(&Scope::Unrestricted, tpl[2].id, None)
        .await
        .unwrap();
    let found = store
        .find_revision(&key, RevisionRef::Label("production"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.template, tpl[1]);
    assert_eq!(found.labels, vec!["production", "staging"]);
    let tag = store
        .revision_tag(&key, RevisionRef::Label("production"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        tag,
        RevisionTag {
            template_id: tpl[1].id,
            config_hash: "b".into(),
            deleted: false,
            revision: 2,
            labels: vec!["production".into(), "staging".into()],
        }
    );
    // latest skips the deleted revision 3; a number finds it.
    let latest = store
        .find_revision(&key, RevisionRef::Latest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (latest.template.revision, latest.labels),
        (2, vec!["production".to_owned(), "staging".to_owned()])
    );
    let third = store
        .revision_tag(&key, RevisionRef::Number(3))
        .await
        .unwrap()
        .unwrap();
    assert!(third.deleted && third.labels.is_empty());
    let first = store
        .find_revision(&key, RevisionRef::Number(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.labels, vec!["canary"]);
    for by in [RevisionRef::Label("nope"), RevisionRef::Number(9)] {
        assert!(store.find_revision(&key, by).await.unwrap().is_none());
        assert!(store.revision_tag(&key, by).await.unwrap().is_none());
    }
    let other = PromptKey {
        org_id: "o2".into(),
        ..key.clone()
    };
    assert!(store
        .find_revision(&other, RevisionRef::Label("production"))
        .await
        .unwrap()
        .is_none());
}
