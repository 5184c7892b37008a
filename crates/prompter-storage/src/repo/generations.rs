//! `cluster_generations`: change counters that every running instance polls
//! to drop its caches when another process changed what they hold.
//!
//! The `api_keys` generation is bumped by a database trigger on the key
//! table (insert, delete, and updates of what a key grants), so a change
//! made by any process — `prompter keys revoke` included — is seen without
//! that process knowing about the servers. Other caches may add a name and
//! call [`Store::bump_generation`] when they change.

use crate::sql;
use crate::{StorageError, Store};

const TABLE: &str = "cluster_generations";

/// The generation bumped by every change to `api_keys` (trigger).
pub const API_KEYS_GENERATION: &str = "api_keys";

/// The generation bumped (triggers) when a template is deleted or restored
/// and when a label is created, moved or removed: what a template cache
/// holds (migration 000008).
pub const PROMPTS_GENERATION: &str = "prompts";

impl Store {
    /// The current generation of `name` (0 when it was never bumped).
    pub async fn generation(&self, name: &str) -> Result<i64, StorageError> {
        let row = self
            .q_one(self.stmt(
                "SELECT generation FROM cluster_generations WHERE name = $1",
                vec![sql::text(name)],
            ))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        match row {
            Some(r) => self.row(&r).big("generation"),
            None => Ok(0),
        }
    }

    /// Every generation, by name (one round trip for a poll).
    pub async fn generations(&self) -> Result<Vec<(String, i64)>, StorageError> {
        let rows = self
            .q_all(self.stmt(
                "SELECT name, generation FROM cluster_generations ORDER BY name",
                vec![],
            ))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        rows.iter()
            .map(|r| {
                let r = self.row(r);
                Ok((r.text("name")?, r.big("generation")?))
            })
            .collect()
    }

    /// Bumps the generation of `name` (creating it at 1).
    pub async fn bump_generation(&self, name: &str) -> Result<(), StorageError> {
        self.w_exec(self.stmt(
            "INSERT INTO cluster_generations (name, generation) VALUES ($1, 1) \
             ON CONFLICT (name) DO UPDATE SET generation = cluster_generations.generation + 1",
            vec![sql::text(name)],
        ))
        .await
        .map_err(|e| e.into_storage(TABLE))?;
        Ok(())
    }
}
