//! This instance's cache of templates (by id) and of revision lookups (by
//! label or revision number), so that a run, an ensure-version or a fetch by
//! label does not read the template again on every request.
//!
//! Invariants:
//! - A template's texts and config never change (it is its config's hash);
//!   what can change is its deletion and the labels pointing to it. Every
//!   such change bumps the `prompts` generation in the same transaction
//!   (triggers, migration 000008), whoever makes it.
//! - The cache serves only while it is *following*: the generation poll
//!   ([`TemplateCache::observe`], every `--cluster-poll-ms`) succeeded last
//!   time. A moved generation or a failed poll drops everything; a failed
//!   poll also stops caching until a poll succeeds again. So another
//!   instance's change is seen within one poll period, this instance's own
//!   at once ([`TemplateCache::clear`] after its commit).
//! - An answer read from the database is stored only if no clear happened
//!   since the read began (an epoch), so a read racing a change cannot put
//!   the old answer back.
//! - `latest` is never cached (every new template changes it).

use crate::metrics_catalog::TEMPLATE_CACHE_TOTAL;
use prompter_storage::{LabelledRevision, PromptKey, RevisionRef, TemplateRecord};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Default bound of each map (entries); past it a map is emptied.
pub const DEFAULT_ENTRIES: usize = 4096;

/// A lookup that can be cached: (org, workspace, name, label or revision).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LookupKey {
    org_id: String,
    workspace_id: String,
    name: String,
    label: Option<String>,
    revision: i64,
}

impl LookupKey {
    fn new(key: &PromptKey, by: RevisionRef<'_>) -> Option<LookupKey> {
        let (label, revision) = match by {
            RevisionRef::Label(l) => (Some(l.to_owned()), 0),
            RevisionRef::Number(n) => (None, n),
            RevisionRef::Latest => return None,
        };
        Some(LookupKey {
            org_id: key.org_id.clone(),
            workspace_id: key.workspace_id.clone(),
            name: key.name.clone(),
            label,
            revision,
        })
    }
}

#[derive(Debug, Default)]
struct Maps {
    templates: HashMap<Uuid, Arc<TemplateRecord>>,
    lookups: HashMap<LookupKey, Arc<LabelledRevision>>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct TemplateCache {
    maps: Mutex<Maps>,
    /// Bumped by every clear; a read stores its answer only if unchanged.
    epoch: AtomicU64,
    following: AtomicBool,
    /// The last generation seen by [`TemplateCache::observe`].
    seen: Mutex<Option<i64>>,
    capacity: usize,
}

impl TemplateCache {
    /// A cache of at most `capacity` templates and as many lookups (0: off).
    pub fn new(capacity: usize) -> TemplateCache {
        TemplateCache {
            maps: Mutex::default(),
            epoch: AtomicU64::new(0),
            following: AtomicBool::new(false),
            seen: Mutex::new(None),
            capacity,
        }
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn serving(&self) -> bool {
        self.capacity > 0 && self.following.load(Ordering::Acquire)
    }

    /// Whether a lookup `by` is served from (and stored in) the cache now.
    pub fn caches(&self, by: RevisionRef<'_>) -> bool {
        self.serving() && by != RevisionRef::Latest
    }

    /// The epoch to pass to a `put_*` after reading the database.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Drops everything (after a change this instance committed, or when
    /// another process changed something).
    pub fn clear(&self) {
        let mut maps = self.maps();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        maps.templates.clear();
        maps.lookups.clear();
    }

    /// Reports a poll of the `prompts` generation: `Some(g)` read, `None`
    /// the poll failed. Returns whether the cache was dropped.
    pub fn observe(&self, generation: Option<i64>) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match generation {
            Some(g) => {
                let moved = seen.is_some_and(|s| s != g);
                *seen = Some(g);
                if moved {
                    self.clear();
                }
                self.following.store(true, Ordering::Release);
                moved
            }
            None => {
                *seen = None;
                let was = self.following.swap(false, Ordering::AcqRel);
                self.clear();
                was
            }
        }
    }

    /// A cached template.
    pub fn template(&self, id: Uuid) -> Option<Arc<TemplateRecord>> {
        if !self.serving() {
            return None;
        }
        let hit = self.maps().templates.get(&id).cloned();
        count(hit.is_some());
        hit
    }

    /// Stores a template read at `epoch`.
    pub fn put_template(&self, epoch: u64, t: Arc<TemplateRecord>) {
        self.put(epoch, |m| &mut m.templates, t.id, t);
    }

    /// Inserts into the map `pick` chooses, unless a clear happened since
    /// `epoch` or the cache does not serve; a full map is emptied first.
    fn put<K: Eq + Hash, V>(
        &self,
        epoch: u64,
        pick: impl FnOnce(&mut Maps) -> &mut HashMap<K, V>,
        k: K,
        v: V,
    ) {
        if !self.serving() {
            return;
        }
        let mut maps = self.maps();
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        let map = pick(&mut maps);
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(k, v);
    }

    /// A cached lookup (never for `latest`).
    pub fn lookup(&self, key: &PromptKey, by: RevisionRef<'_>) -> Option<Arc<LabelledRevision>> {
        if !self.serving() {
            return None;
        }
        let k = LookupKey::new(key, by)?;
        let hit = self.maps().lookups.get(&k).cloned();
        count(hit.is_some());
        hit
    }

    /// Stores a lookup's answer read at `epoch` (ignored for `latest`).
    pub fn put_lookup(
        &self,
        epoch: u64,
        key: &PromptKey,
        by: RevisionRef<'_>,
        found: Arc<LabelledRevision>,
    ) {
        if let Some(k) = LookupKey::new(key, by) {
            self.put(epoch, |m| &mut m.lookups, k, found);
        }
    }
}

fn count(hit: bool) {
    if hit {
        metrics::counter!(TEMPLATE_CACHE_TOTAL, "result" => "hit").increment(1);
    } else {
        metrics::counter!(TEMPLATE_CACHE_TOTAL, "result" => "miss").increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn record() -> TemplateRecord {
        TemplateRecord {
            id: Uuid::now_v7(),
            org_id: "o".into(),
            workspace_id: "w".into(),
            name: "n".into(),
            provider: None,
            system_instructions: String::new(),
            user_prompt_template: "hi".into(),
            country_set: Value::Null,
            model_id: "gpt-4o".into(),
            inference_params: Value::Null,
            tools_spec: Value::Null,
            response_format: Value::Null,
            grounding_profile_id: None,
            grounding_snapshot_id: None,
            retrieval_params: Value::Null,
            config_hash: "h".into(),
            config_canonical_json: "{}".into(),
            created_by: None,
            created_at: chrono::Utc::now(),
            deleted_at: None,
            revision: 1,
        }
    }

    fn tpl() -> Arc<TemplateRecord> {
        Arc::new(record())
    }

    #[test]
    fn serves_only_while_following() {
        let c = TemplateCache::new(8);
        let t = tpl();
        c.put_template(c.epoch(), t.clone());
        assert!(
            c.template(t.id).is_none(),
            "not following yet: nothing kept"
        );
        assert!(!c.observe(Some(3)));
        c.put_template(c.epoch(), t.clone());
        assert!(c.template(t.id).is_some());
        assert!(c.observe(None), "a failed poll drops the cache");
        assert!(c.template(t.id).is_none());
        c.put_template(c.epoch(), t.clone());
        assert!(c.template(t.id).is_none(), "and stops caching");
        c.observe(Some(3));
        c.put_template(c.epoch(), t.clone());
        assert!(c.template(t.id).is_some());
    }

    #[test]
    fn a_moved_generation_drops_everything() {
        let c = TemplateCache::new(8);
        c.observe(Some(1));
        let t = tpl();
        c.put_template(c.epoch(), t.clone());
        assert!(!c.observe(Some(1)));
        assert!(c.template(t.id).is_some());
        assert!(c.observe(Some(2)));
        assert!(c.template(t.id).is_none());
    }

    #[test]
    fn a_read_that_raced_a_clear_is_not_stored() {
        let c = TemplateCache::new(8);
        c.observe(Some(1));
        let t = tpl();
        let before = c.epoch();
        c.clear();
        c.put_template(before, t.clone());
        assert!(c.template(t.id).is_none());
    }

    #[test]
    fn lookups_by_label_and_number_but_never_latest() {
        let c = TemplateCache::new(8);
        c.observe(Some(1));
        let key = PromptKey {
            org_id: "o".into(),
            workspace_id: "w".into(),
            name: "n".into(),
        };
        let found = Arc::new(LabelledRevision {
            template: record(),
            labels: vec!["production".into()],
        });
        for by in [
            RevisionRef::Label("production"),
            RevisionRef::Number(2),
            RevisionRef::Latest,
        ] {
            c.put_lookup(c.epoch(), &key, by, found.clone());
        }
        assert!(c.lookup(&key, RevisionRef::Label("production")).is_some());
        assert!(c.lookup(&key, RevisionRef::Label("staging")).is_none());
        assert!(c.lookup(&key, RevisionRef::Number(2)).is_some());
        assert!(c.lookup(&key, RevisionRef::Latest).is_none());
    }

    #[test]
    fn bounded() {
        let c = TemplateCache::new(2);
        c.observe(Some(1));
        let ts: Vec<_> = (0..3).map(|_| tpl()).collect();
        for t in &ts {
            c.put_template(c.epoch(), t.clone());
        }
        let kept = ts.iter().filter(|t| c.template(t.id).is_some()).count();
        assert!(kept <= 2, "{kept}");
        assert!(c.template(ts[2].id).is_some(), "the newest is kept");
    }
}
