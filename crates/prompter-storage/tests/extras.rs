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
    outbox_claims_have_one_holder_until_the_lease_ends,
    concurrent_outbox_claimers_never_share_a_row,
    api_keys_lifecycle,
    api_key_changes_bump_the_generation,
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
        .mark_outbox_failed(row.id, "instance-a", later, "HTTP 500")
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

async fn outbox_claims_have_one_holder_until_the_lease_ends(db: TestDb) {
    let store = db.store().await;
    let ev = uuid::Uuid::now_v7();
    let row = store.enqueue_outbox(ev, r#"{"e":1}"#).await.unwrap();
    let now = chrono::Utc::now();
    let lease = Duration::from_secs(30);
    let a = store.claim_outbox("a", now, lease, 10).await.unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].id, row.id);
    assert_eq!(a[0].event_id, ev);
    assert_eq!(a[0].claimed_by.as_deref(), Some("a"));
    // While the lease runs nobody else gets it, and it is not "due".
    assert!(store
        .claim_outbox("b", now, lease, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.due_outbox(now, 10).await.unwrap().is_empty());
    // A failure reported by another instance does not touch a's claim.
    assert!(matches!(
        store.mark_outbox_failed(row.id, "b", now, "x").await,
        Err(StorageError::NotFound)
    ));
    // a dies: after the lease, b claims the same row (same event id).
    let after = now + chrono::Duration::seconds(31);
    let b = store.claim_outbox("b", after, lease, 10).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!((b[0].id, b[0].event_id), (row.id, ev));
    assert_eq!(b[0].claimed_by.as_deref(), Some("b"));
    // b fails: the claim is released and the retry waits for its time.
    let retry_at = after + chrono::Duration::seconds(2);
    store
        .mark_outbox_failed(row.id, "b", retry_at, "HTTP 503")
        .await
        .unwrap();
    let got = store.get_outbox(row.id).await.unwrap();
    assert_eq!(
        (got.claimed_by, got.lease_until, got.attempts),
        (None, None, 1)
    );
    assert!(store
        .claim_outbox("c", after, lease, 10)
        .await
        .unwrap()
        .is_empty());
    let c = store.claim_outbox("c", retry_at, lease, 10).await.unwrap();
    assert_eq!(c.len(), 1);
    // A graceful stop gives the claim back at once.
    assert_eq!(store.release_outbox_claims("c").await.unwrap(), 1);
    let d = store.claim_outbox("d", retry_at, lease, 10).await.unwrap();
    assert_eq!(d.len(), 1);
    store.mark_outbox_delivered(row.id).await.unwrap();
    let done = store.get_outbox(row.id).await.unwrap();
    assert!(done.delivered_at.is_some() && done.claimed_by.is_none());
    let far = retry_at + chrono::Duration::days(1);
    assert!(store
        .claim_outbox("e", far, lease, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.list_outbox(10).await.unwrap().len(), 1);
}

async fn concurrent_outbox_claimers_never_share_a_row(db: TestDb) {
    // Six claimers on their own pools (as six instances would be) race for
    // 200 rows in batches of 7: every row is claimed exactly once.
    let store = db.store().await;
    let mut events = std::collections::BTreeSet::new();
    for i in 0..200 {
        let ev = uuid::Uuid::now_v7();
        events.insert(ev);
        store
            .enqueue_outbox(ev, &format!(r#"{{"i":{i}}}"#))
            .await
            .unwrap();
    }
    let now = chrono::Utc::now();
    let mut tasks = Vec::new();
    for c in 0..6 {
        let s = db.connect().await;
        tasks.push(tokio::spawn(async move {
            let owner = format!("claimer-{c}");
            let mut mine = Vec::new();
            loop {
                let got = s
                    .claim_outbox(&owner, now, Duration::from_secs(60), 7)
                    .await
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                assert!(got
                    .iter()
                    .all(|r| r.claimed_by.as_deref() == Some(owner.as_str())));
                mine.extend(got.into_iter().map(|r| r.event_id));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!(all.len(), 200, "each row claimed once");
    let unique: std::collections::BTreeSet<_> = all.into_iter().collect();
    assert_eq!(unique, events);
}

async fn api_key_changes_bump_the_generation(db: TestDb) {
    use prompter_storage::API_KEYS_GENERATION as G;
    let store = db.store().await;
    let g0 = store.generation(G).await.unwrap();
    let key = NewApiKey {
        prefix: "gen00001".into(),
        key_hash: "h".into(),
        org_id: "o".into(),
        workspace_id: None,
        role: "read".into(),
        name: None,
        expires_at: None,
    };
    let rec = store.insert_api_key(key).await.unwrap();
    let g1 = store.generation(G).await.unwrap();
    assert!(g1 > g0, "a new key bumps the generation");
    // Using a key (last_used_at) is not a change of what it grants.
    store
        .touch_api_key(rec.id, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(store.generation(G).await.unwrap(), g1);
    store.revoke_api_key("gen00001").await.unwrap();
    let g2 = store.generation(G).await.unwrap();
    assert!(g2 > g1, "a revocation bumps the generation");
    // Other caches may have their own counter.
    assert_eq!(store.generation("other").await.unwrap(), 0);
    store.bump_generation("other").await.unwrap();
    store.bump_generation("other").await.unwrap();
    assert_eq!(store.generation("other").await.unwrap(), 2);
}
