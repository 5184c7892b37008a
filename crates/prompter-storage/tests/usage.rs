//! Usage rollups: written with the results (group commit and idempotent
//! path), and the report equals the sums over the stored results for every
//! `group_by`.

mod common;

use common::*;
use prompter_storage::testing::TestDb;
use prompter_storage::{ResultRecord, RunUsage, Scope, Store, UsageKey, UsageQuery, UsageRow};
use std::collections::BTreeMap;
use uuid::Uuid;

on_all_backends!(usage_report_equals_sums_over_results);

/// Deterministic, varied usage: some runs report nothing, some are unpriced.
fn usage(i: i64) -> RunUsage {
    let reported = i % 7 != 0;
    RunUsage {
        provider: Some(if i % 3 == 0 { "anthropic" } else { "openai" }.into()),
        input_tokens: reported.then_some(100 + i),
        output_tokens: reported.then_some(10 + i % 13),
        cached_input_tokens: (reported && i % 2 == 0).then_some(i % 50),
        cache_write_input_tokens: (reported && i % 3 == 0).then_some(i % 20),
        cost_micros: (reported && i % 5 != 0).then_some(1_000 + 7 * i),
    }
}

fn key_of(r: &ResultRecord, names: &BTreeMap<Uuid, (String, String)>, k: UsageKey) -> String {
    match k {
        UsageKey::Org => r.org_id.clone(),
        UsageKey::Workspace => r.workspace_id.clone(),
        UsageKey::Template => r.template_id.to_string(),
        UsageKey::Prompt => names[&r.template_id].0.clone(),
        UsageKey::Model => names[&r.template_id].1.clone(),
        UsageKey::Provider => r.usage.provider.clone().unwrap_or("unknown".into()),
        UsageKey::Day => r.created_at.format("%Y-%m-%d").to_string(),
    }
}

fn expected(
    results: &[ResultRecord],
    names: &BTreeMap<Uuid, (String, String)>,
    keys: &[UsageKey],
    scope: &Scope,
) -> Vec<UsageRow> {
    let mut groups: BTreeMap<Vec<String>, UsageRow> = BTreeMap::new();
    for r in results
        .iter()
        .filter(|r| scope.allows(&r.org_id, &r.workspace_id))
    {
        let kv: Vec<(UsageKey, String)> = keys.iter().map(|k| (*k, key_of(r, names, *k))).collect();
        let g = groups
            .entry(kv.iter().map(|(_, v)| v.clone()).collect())
            .or_insert_with(|| UsageRow {
                keys: kv.clone(),
                runs: 0,
                input_tokens: 0,
                output_tokens: 0,
                cached_input_tokens: 0,
                cache_write_input_tokens: 0,
                cost_micros: 0,
                unpriced_runs: 0,
            });
        let u = &r.usage;
        g.runs += 1;
        g.input_tokens += u.input_tokens.unwrap_or(0);
        g.output_tokens += u.output_tokens.unwrap_or(0);
        g.cached_input_tokens += u.cached_input_tokens.unwrap_or(0);
        g.cache_write_input_tokens += u.cache_write_input_tokens.unwrap_or(0);
        g.cost_micros += u.cost_micros.unwrap_or(0);
        g.unpriced_runs += i64::from(u.cost_micros.is_none());
    }
    groups.into_values().collect()
}

async fn report(store: &Store, scope: &Scope, keys: &[UsageKey]) -> Vec<UsageRow> {
    let q = UsageQuery {
        group_by: keys.to_vec(),
        ..Default::default()
    };
    let mut rows = store.usage(scope, &q).await.unwrap();
    rows.sort_by(|a, b| a.keys.cmp(&b.keys));
    rows
}

async fn usage_report_equals_sums_over_results(db: TestDb) {
    let store = db.store().await;
    let templates = [
        template(&store, "org-a", "ws-1").await,
        template(&store, "org-a", "ws-2").await,
        template(&store, "org-b", "ws-1").await,
    ];
    let names: BTreeMap<Uuid, (String, String)> = templates
        .iter()
        .map(|t| (t.id, (t.name.clone(), t.model_id.clone())))
        .collect();
    // Concurrent inserts (group-committed together) plus one bad row.
    let mut tasks = Vec::new();
    for i in 0..120i64 {
        let store = store.clone();
        let t = templates[(i % 3) as usize].clone();
        tasks.push(tokio::spawn(async move {
            let mut r = new_result(&t, None, Some("DE"));
            r.usage = usage(i);
            if i == 61 {
                r.template_id = Uuid::now_v7();
            }
            store.insert_result(r).await
        }));
    }
    let mut results = Vec::new();
    let mut failed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => results.push(r),
            Err(_) => failed += 1,
        }
    }
    assert_eq!(failed, 1, "only the row of an unknown template fails");
    // The idempotent path rolls up in its own transaction.
    let t = &templates[0];
    store
        .claim_idempotency(
            t.id,
            &t.org_id,
            "k-usage",
            "h",
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    let mut r = new_result(t, None, None);
    r.usage = usage(1000);
    results.push(
        store
            .insert_result_idempotent(r, Some((t.id, "k-usage")))
            .await
            .unwrap(),
    );

    // Every subset of the keys, unrestricted and in two tenant scopes.
    let scopes = [
        Scope::Unrestricted,
        Scope::tenant("org-a", None),
        Scope::tenant("org-a", Some("ws-2".into())),
    ];
    for mask in 0u32..(1 << UsageKey::ALL.len()) {
        let keys: Vec<UsageKey> = UsageKey::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, k)| k)
            .collect();
        for scope in &scopes {
            let mut want = expected(&results, &names, &keys, scope);
            want.sort_by(|a, b| a.keys.cmp(&b.keys));
            assert_eq!(
                report(&store, scope, &keys).await,
                want,
                "{keys:?} in {scope:?}"
            );
        }
    }
    // Days outside the range: nothing (the total row is all zeros).
    let tomorrow = chrono::Utc::now().date_naive() + chrono::Days::new(1);
    let q = UsageQuery {
        group_by: vec![UsageKey::Day],
        since: Some(tomorrow),
        ..Default::default()
    };
    assert!(store
        .usage(&Scope::Unrestricted, &q)
        .await
        .unwrap()
        .is_empty());
    let total = store
        .usage(
            &Scope::Unrestricted,
            &UsageQuery {
                since: Some(tomorrow),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(total.len(), 1);
    assert_eq!(total[0].runs, 0);
}
