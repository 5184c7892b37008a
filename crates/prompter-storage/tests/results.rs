//! Result inserts, reads and filtered listings.

mod common;

use common::*;
use prompter_storage::testing::TestDb;
use prompter_storage::{PageRequest, ResultFilter, Scope, StorageError};
use std::collections::HashSet;

on_all_backends!(
    results_round_trip_and_scope,
    results_list_filters_and_pages,
    result_for_unknown_template_is_not_found,
    concurrent_inserts_are_group_committed_and_one_bad_row_fails_alone,
);

async fn results_round_trip_and_scope(db: TestDb) {
    let store = db.store().await;
    let t = template(&store, "org", "ws").await;
    let v = store
        .upsert_version(new_version(&t, "k1", at(0)))
        .await
        .unwrap()
        .version;
    let r = store
        .insert_result(new_result(&t, Some(&v), Some("DE")))
        .await
        .unwrap();
    let got = store
        .get_result(&Scope::tenant("org", Some("ws".into())), r.id)
        .await
        .unwrap();
    assert_eq!(got, r);
    assert_eq!(got.version_id, Some(v.id));
    for wrong in [
        Scope::tenant("org", Some("ws2".into())),
        Scope::tenant("org2", None),
    ] {
        assert!(matches!(
            store.get_result(&wrong, r.id).await,
            Err(StorageError::NotFound)
        ));
        assert!(store
            .list_results(
                &wrong,
                t.id,
                &ResultFilter::default(),
                &PageRequest::first(10)
            )
            .await
            .unwrap()
            .items
            .is_empty());
    }
    // a result without a version
    let r2 = store
        .insert_result(new_result(&t, None, None))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_result(&Scope::Unrestricted, r2.id)
            .await
            .unwrap()
            .version_id,
        None
    );
}

async fn results_list_filters_and_pages(db: TestDb) {
    let store = db.store().await;
    let t = template(&store, "org", "ws").await;
    let other = template(&store, "org", "ws").await;
    let v1 = store
        .upsert_version(new_version(&t, "k1", at(0)))
        .await
        .unwrap()
        .version;
    let v2 = store
        .upsert_version(new_version(&t, "k2", at(1)))
        .await
        .unwrap()
        .version;
    let mut all = Vec::new();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            let v = if i % 2 == 0 { v1.clone() } else { v2.clone() };
            let country = if i % 4 < 2 { "DE" } else { "GB" };
            let nr = new_result(&t, Some(&v), Some(country));
            tokio::spawn(async move { store.insert_result(nr).await.unwrap() })
        })
        .collect();
    for task in tasks {
        all.push(task.await.unwrap());
    }
    store
        .insert_result(new_result(&other, None, Some("DE")))
        .await
        .unwrap();

    let collect = |filter: ResultFilter| {
        let store = store.clone();
        let tid = t.id;
        async move {
            let mut req = PageRequest::first(6);
            let mut out = Vec::new();
            loop {
                let page = store
                    .list_results(&Scope::Unrestricted, tid, &filter, &req)
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
    let everything = collect(ResultFilter::default()).await;
    assert_eq!(everything.len(), 40);
    assert_eq!(
        everything.iter().map(|r| r.id).collect::<HashSet<_>>(),
        all.iter().map(|r| r.id).collect()
    );
    assert!(everything
        .windows(2)
        .all(|w| (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id)));

    let by_version = collect(ResultFilter {
        version_id: Some(v1.id),
        ..Default::default()
    })
    .await;
    assert_eq!(by_version.len(), 20);
    assert!(by_version.iter().all(|r| r.version_id == Some(v1.id)));
    let by_country = collect(ResultFilter {
        country: Some("GB".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(by_country.len(), 20);

    // time range: [since, until)
    let mut times: Vec<_> = all.iter().map(|r| r.created_at).collect();
    times.sort();
    let (since, until) = (times[10], times[30]);
    let expected = all
        .iter()
        .filter(|r| r.created_at >= since && r.created_at < until)
        .count();
    let ranged = collect(ResultFilter {
        since: Some(since),
        until: Some(until),
        ..Default::default()
    })
    .await;
    assert_eq!(ranged.len(), expected);
    assert!(ranged
        .iter()
        .all(|r| r.created_at >= since && r.created_at < until));
}

async fn result_for_unknown_template_is_not_found(db: TestDb) {
    let store = db.store().await;
    let t = template(&store, "org", "ws").await;
    let mut nr = new_result(&t, None, None);
    nr.template_id = uuid::Uuid::now_v7();
    assert!(matches!(
        store.insert_result(nr).await,
        Err(StorageError::NotFound)
    ));
}

/// Result inserts are group-committed (issue 9): a burst of concurrent
/// inserts with one row naming an unknown template stores every good row and
/// fails only the bad one, with its own error.
async fn concurrent_inserts_are_group_committed_and_one_bad_row_fails_alone(db: TestDb) {
    let store = db.store().await;
    let t = template(&store, "org", "ws").await;
    let calls = (0..200).map(|i| {
        let store = store.clone();
        let mut nr = new_result(&t, None, Some("DE"));
        if i == 77 {
            nr.template_id = uuid::Uuid::now_v7();
        }
        async move { store.insert_result(nr).await }
    });
    let outcomes = futures::future::join_all(calls).await;
    let (ok, bad): (Vec<_>, Vec<_>) = outcomes
        .into_iter()
        .enumerate()
        .partition(|(_, r)| r.is_ok());
    assert_eq!(ok.len(), 199);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, 77);
    assert!(matches!(bad[0].1, Err(StorageError::NotFound)));
    let ids: HashSet<_> = ok.into_iter().map(|(_, r)| r.unwrap().id).collect();
    let mut stored = HashSet::new();
    let mut page = PageRequest {
        limit: 100,
        cursor: None,
    };
    loop {
        let p = store
            .list_results(&Scope::Unrestricted, t.id, &ResultFilter::default(), &page)
            .await
            .unwrap();
        stored.extend(p.items.iter().map(|r| r.id));
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(stored, ids);
}
