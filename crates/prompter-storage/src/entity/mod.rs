//! SeaORM entities: the typed schema the repositories build their SQL from.
//!
//! These are storage internals, never API DTOs: repositories return the plain
//! record structs of this crate instead. Column types are written for
//! PostgreSQL (UUID, JSONB, TIMESTAMPTZ); on SQLite the same columns are TEXT
//! and the repositories convert values per backend (see `crate::sql`).

pub mod api_keys;
pub mod prompt_results;
pub mod prompt_templates;
pub mod prompt_versions;
pub mod prompter_settings;
pub mod run_idempotency;
pub mod version_drift_events;
pub mod webhook_outbox;
