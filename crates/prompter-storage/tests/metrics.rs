//! Counters emitted through the `metrics` facade (own test binary: it installs
//! a global recorder).

mod common;

use common::*;
use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use prompter_storage::testing::TestDb;
use prompter_storage::{NewApiKey, Scope, StorageError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Default)]
struct Counting {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

fn render(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

struct Shared(Arc<AtomicU64>);

impl CounterFn for Shared {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

impl Recorder for &'static Counting {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let c = self
            .counters
            .lock()
            .unwrap()
            .entry(render(key))
            .or_default()
            .clone();
        Counter::from_arc(Arc::new(Shared(c)))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

fn recorder() -> &'static Counting {
    static R: OnceLock<&'static Counting> = OnceLock::new();
    R.get_or_init(|| {
        let r: &'static Counting = Box::leak(Box::default());
        metrics::set_global_recorder(r).expect("install recorder");
        r
    })
}

fn count(name: &str) -> u64 {
    recorder()
        .counters
        .lock()
        .unwrap()
        .get(name)
        .map(|c| c.load(Ordering::Relaxed))
        .unwrap_or(0)
}

/// Both backends in one test, sequentially, because the counters are global.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unique_violations_and_inserts_are_counted() {
    recorder();
    for db in TestDb::all().await {
        let tpl = "prompter_db_unique_violation_total{table=prompt_templates}";
        let keys = "prompter_db_unique_violation_total{table=api_keys}";
        let results = "prompter_prompt_results_insert_total{}";
        let (t0, k0, r0) = (count(tpl), count(keys), count(results));
        let store = db.store().await;
        // 8 concurrent identical creates: 7 conflicts
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(
                    async move { store.insert_template(new_template("o", "w", "same")).await },
                )
            })
            .collect();
        let mut conflicts = 0;
        for t in tasks {
            if let Err(StorageError::Conflict { .. }) = t.await.unwrap() {
                conflicts += 1;
            }
        }
        assert_eq!(conflicts, 7);
        assert_eq!(count(tpl) - t0, 7, "{:?}", db.backend());
        // restore into a collision counts too
        let winner = store
            .find_active_by_hash("o", "w", "same")
            .await
            .unwrap()
            .unwrap();
        store
            .soft_delete_template(&Scope::Unrestricted, winner.id, None)
            .await
            .unwrap();
        store
            .insert_template(new_template("o", "w", "same"))
            .await
            .unwrap();
        assert!(store
            .restore_template(&Scope::Unrestricted, winner.id, None)
            .await
            .is_err());
        assert_eq!(count(tpl) - t0, 8);
        // other tables: labelled with their table
        let key = NewApiKey {
            prefix: "pk".into(),
            key_hash: "h".into(),
            org_id: "o".into(),
            workspace_id: None,
            role: "read".into(),
            name: None,
            expires_at: None,
        };
        store.insert_api_key(key.clone()).await.unwrap();
        assert!(store.insert_api_key(key).await.is_err());
        assert_eq!(count(keys) - k0, 1);
        // results
        let t = template(&store, "o", "w").await;
        for _ in 0..3 {
            store
                .insert_result(new_result(&t, None, None))
                .await
                .unwrap();
        }
        assert_eq!(count(results) - r0, 3);
    }
}
