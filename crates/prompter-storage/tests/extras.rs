//! Second migration: drift events, webhook outbox, idempotency keys, API keys.

mod common;

use common::*;
use prompter_storage::testing::TestDb;
use prompter_storage::{Claim, DriftFilter, NewApiKey, PageRequest, Scope, StorageError};
use std::time::Duration;

on_all_backends!(
    new_key_records_one_drift_event,
    concurrent_new_key_upserts_make_one_drift_event,
    drift_listing_is_scoped_and_paged,
    idempotency_claims,
    concurrent_claims_have_one_winner,
    outbox_lifecycle,
    api_keys_lifecycle,
);

async fn new_key_records_one_drift_event(db: TestDb) {
    let store = db.store().await;
    let t = template(&store, "org", "ws").await;
    let first = store
        .upsert_version(new_version(&t, "k1", at(0)))
        .await
        .unwrap();
    assert!(first.drift.is_none(), "the first key is not a drift");
    let again = store
        .upsert_version(new_version(&t, "k1", at(5)))
        .await
        .unwrap();
    assert!(again.drift.is_none());
    let mut v2 = new_version(&t, "k2", at(10));
    v2.enqueue_webhook = true;
    let second = store.upsert_version(v2).await.unwrap();
    let ev = second.drift.expect("drift event");
    assert_eq!(
        (ev.previous_key.as_str(), ev.new_key.as_str()),
        ("k1", "k2")
    );
    assert_eq!(ev.detected_at, at(10));
    // another model of the same template: its first key is no drift
    let mut other_model = new_version(&t, "k9", at(20));
    other_model.model_id = "gpt-4.1".into();
    assert!(store
        .upsert_version(other_model)
        .await
        .unwrap()
        .drift
        .is_none());
    // back to k1: not new, no drift
    assert!(store
        .upsert_version(new_version(&t, "k1", at(30)))
        .await
        .unwrap()
        .drift
        .is_none());
    // k3 now: previous is the most recently seen other key (k1)
    let third = store
        .upsert_version(new_version(&t, "k3", at(40)))
        .await
        .unwrap();
    assert_eq!(third.drift.unwrap().previous_key, "k1");
    let events = store
        .list_drift_events(
            &Scope::Unrestricted,
            &DriftFilter::default(),
            &PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(events.items.len(), 2);
    assert_eq!(events.items[1], ev);
    // the webhook was enqueued only for the event that asked for it
    let due = store.due_outbox(chrono::Utc::now(), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].event_id, ev.id);
    let payload: serde_json::Value = serde_json::from_str(&due[0].payload).unwrap();
    assert_eq!(payload["new_key"], "k2");
    assert_eq!(payload["event_id"], ev.id.to_string());
}

async fn concurrent_new_key_upserts_make_one_drift_event(db: TestDb) {
    let store = db.store().await;
    let t = template(&store, "org", "ws").await;
    store
        .upsert_version(new_version(&t, "k1", at(0)))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            let mut v = new_version(&t, "k2", at(100 + i));
            v.enqueue_webhook = true;
            tokio::spawn(async move { store.upsert_version(v).await })
        })
        .collect();
    let mut drifts = 0;
    let mut inserted = 0;
    for task in tasks {
        let up = task.await.unwrap().expect("upsert");
        drifts += usize::from(up.drift.is_some());
        inserted += usize::from(up.inserted);
    }
    assert_eq!(inserted, 1);
    assert_eq!(drifts, 1, "exactly one caller records the drift");
    let events = store
        .list_drift_events(
            &Scope::Unrestricted,
            &DriftFilter::default(),
            &PageRequest::first(100),
        )
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1);
    assert_eq!(
        store
            .due_outbox(chrono::Utc::now(), 100)
            .await
            .unwrap()
            .len(),
        1
    );
    let versions = store
        .list_versions(&Scope::Unrestricted, t.id, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(versions.items.len(), 2);
    assert_eq!(versions.items[0].last_seen_at, at(131));
}

async fn drift_listing_is_scoped_and_paged(db: TestDb) {
    let store = db.store().await;
    let a = template(&store, "org", "ws-a").await;
    let b = template(&store, "org", "ws-b").await;
    for t in [&a, &b] {
        for i in 0..6 {
            store
                .upsert_version(new_version(t, &format!("k{i}"), at(i * 10)))
                .await
                .unwrap();
        }
    }
    let all = |scope: Scope, filter: DriftFilter| {
        let store = store.clone();
        async move {
            let mut req = PageRequest::first(2);
            let mut out = Vec::new();
            loop {
                let page = store
                    .list_drift_events(&scope, &filter, &req)
                    .await
                    .unwrap();
                out.extend(page.items);
                match page.next_cursor {
                    Some(c) => req.cursor = Some(c),
                    None => break out,
                }
            }
        }
    };
    assert_eq!(
        all(Scope::Unrestricted, DriftFilter::default()).await.len(),
        10
    );
    let ws_a = all(
        Scope::tenant("org", Some("ws-a".into())),
        DriftFilter::default(),
    )
    .await;
    assert_eq!(ws_a.len(), 5);
    assert!(ws_a.iter().all(|e| e.template_id == a.id));
    assert!(ws_a
        .windows(2)
        .all(|w| (w[0].detected_at, w[0].id) > (w[1].detected_at, w[1].id)));
    assert!(all(Scope::tenant("other", None), DriftFilter::default())
        .await
        .is_empty());
    let filtered = DriftFilter {
        workspace_id: Some("ws-b".into()),
        since: Some(at(30)),
        ..Default::default()
    };
    let recent_b = all(Scope::tenant("org", None), filtered).await;
    assert_eq!(
        recent_b
            .iter()
            .map(|e| e.new_key.as_str())
            .collect::<Vec<_>>(),
        ["k5", "k4", "k3"]
    );
}

async fn idempotency_claims(db: TestDb) {
    let store = db.store().await;
    let t = template(&store, "org", "ws").await;
    let day = Duration::from_secs(86_400);
    let claim = |key: &'static str, hash: &'static str| {
        let store = store.clone();
        let tid = t.id;
        async move {
            store
                .claim_idempotency(tid, "org", key, hash, day)
                .await
                .unwrap()
        }
    };
    assert_eq!(claim("k", "h1").await, Claim::New);
    assert_eq!(claim("k", "h1").await, Claim::InFlight);
    assert_eq!(claim("k", "h2").await, Claim::Mismatch);
    let rec = store
        .insert_result_idempotent(new_result(&t, None, Some("DE")), Some((t.id, "k")))
        .await
        .unwrap();
    assert_eq!(claim("k", "h1").await, Claim::Completed(rec.id));
    assert_eq!(claim("k", "h2").await, Claim::Mismatch);
    // release keeps completed keys
    store.release_idempotency(t.id, "k").await.unwrap();
    assert_eq!(claim("k", "h1").await, Claim::Completed(rec.id));
    // a failed run releases its key: the next caller owns it
    assert_eq!(claim("f", "h1").await, Claim::New);
    store.release_idempotency(t.id, "f").await.unwrap();
    assert_eq!(claim("f", "h1").await, Claim::New);
    // expired keys are taken over, even with another body
    assert_eq!(
        store
            .claim_idempotency(t.id, "org", "e", "h1", Duration::ZERO)
            .await
            .unwrap(),
        Claim::New
    );
    assert_eq!(
        store
            .claim_idempotency(t.id, "org", "e", "h2", day)
            .await
            .unwrap(),
        Claim::New
    );
    assert_eq!(store.purge_expired_idempotency().await.unwrap(), 0);
    // no key: plain insert
    store
        .insert_result_idempotent(new_result(&t, None, None), None)
        .await
        .unwrap();
}

async fn concurrent_claims_have_one_winner(db: TestDb) {
    let store = db.store().await;
    let t = template(&store, "org", "ws").await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            let tid = t.id;
            tokio::spawn(async move {
                store
                    .claim_idempotency(tid, "org", "key", "hash", Duration::from_secs(60))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut new = 0;
    for task in tasks {
        match task.await.unwrap() {
            Claim::New => new += 1,
            Claim::InFlight => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(new, 1);
}

async fn outbox_lifecycle(db: TestDb) {
    let store = db.store().await;
    let ev = uuid::Uuid::now_v7();
    let row = store
        .enqueue_outbox(ev, r#"{"hello":"world"}"#)
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let due = store.due_outbox(now, 10).await.unwrap();
    assert_eq!(due, vec![row.clone()]);
    let later = now + chrono::Duration::seconds(30);
    store
        .mark_outbox_failed(row.id, later, "HTTP 500")
        .await
        .unwrap();
    assert!(store.due_outbox(now, 10).await.unwrap().is_empty());
    let retry = store.due_outbox(later, 10).await.unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 1);
    assert_eq!(retry[0].last_error.as_deref(), Some("HTTP 500"));
    store.mark_outbox_delivered(row.id).await.unwrap();
    assert!(store.due_outbox(later, 10).await.unwrap().is_empty());
    assert!(store
        .get_outbox(row.id)
        .await
        .unwrap()
        .delivered_at
        .is_some());
    assert!(matches!(
        store.mark_outbox_delivered(row.id).await,
        Err(StorageError::NotFound)
    ));
}

async fn api_keys_lifecycle(db: TestDb) {
    let store = db.store().await;
    let key = |prefix: &str, org: &str, ws: Option<&str>| NewApiKey {
        prefix: prefix.into(),
        key_hash: format!("hash-{prefix}"),
        org_id: org.into(),
        workspace_id: ws.map(str::to_owned),
        role: "write".into(),
        name: None,
        expires_at: None,
    };
    assert!(!store.has_usable_api_key(at(0)).await.unwrap());
    let a = store
        .insert_api_key(key("pk_a", "org", Some("ws")))
        .await
        .unwrap();
    store
        .insert_api_key(key("pk_b", "org", None))
        .await
        .unwrap();
    store
        .insert_api_key(key("pk_c", "other", None))
        .await
        .unwrap();
    assert!(matches!(
        store.insert_api_key(key("pk_a", "org", None)).await,
        Err(StorageError::Conflict {
            existing_template_id: None
        })
    ));
    assert_eq!(
        store.find_api_key_by_prefix("pk_a").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(a.scope(), Scope::tenant("org", Some("ws".into())));
    assert!(store
        .find_api_key_by_prefix("nope")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .list_api_keys(&Scope::Unrestricted)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store
            .list_api_keys(&Scope::tenant("org", None))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(store.has_usable_api_key(at(0)).await.unwrap());
    // Name and expiry round-trip; an expired key is not usable.
    let named = store
        .insert_api_key(NewApiKey {
            name: Some("ci deploy".into()),
            expires_at: Some(at(-5)),
            ..key("pk_n", "named", None)
        })
        .await
        .unwrap();
    let got = store.find_api_key_by_prefix("pk_n").await.unwrap().unwrap();
    assert_eq!(got, named);
    assert_eq!(got.name.as_deref(), Some("ci deploy"));
    assert_eq!(got.expires_at, Some(at(-5)));
    assert!(got.is_expired(at(0)) && !got.is_expired(at(-6)));
    let revoked = store.revoke_api_key("pk_a").await.unwrap();
    let first_revocation = revoked.revoked_at.expect("revoked");
    let again = store.revoke_api_key("pk_a").await.unwrap();
    assert_eq!(again.revoked_at, Some(first_revocation), "idempotent");
    assert!(matches!(
        store.revoke_api_key("nope").await,
        Err(StorageError::NotFound)
    ));
    store.touch_api_key(a.id, at(0)).await.unwrap();
    store.touch_api_key(a.id, at(-10)).await.unwrap();
    let got = store.find_api_key_by_prefix("pk_a").await.unwrap().unwrap();
    assert_eq!(got.last_used_at, Some(at(0)));
    // Left: pk_b and pk_c (never expire) and pk_n (expired).
    store.revoke_api_key("pk_b").await.unwrap();
    assert!(store.has_usable_api_key(at(0)).await.unwrap());
    store.revoke_api_key("pk_c").await.unwrap();
    assert!(!store.has_usable_api_key(at(0)).await.unwrap());
    assert!(
        store.has_usable_api_key(at(-6)).await.unwrap(),
        "pk_n before its expiry"
    );
}
