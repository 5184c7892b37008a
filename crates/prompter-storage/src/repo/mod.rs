//! Repository methods of [`crate::Store`], one module per table.

mod api_keys;
mod budgets;
mod drift;
mod generations;
mod idempotency;
mod outbox;
mod prompts;
mod results;
mod templates;
pub(crate) mod usage;
mod versions;
mod workspaces;

pub use budgets::BudgetRecord;
pub use generations::API_KEYS_GENERATION;
pub use idempotency::IDEMPOTENCY_IN_FLIGHT_LEASE;
pub use prompts::{LabelEvent, LabelMove, LabelRecord, PromptKey, PromptSummary, RevisionSummary};
pub use results::RESULT_INSERT;
pub use templates::TEMPLATE_INSERT;
pub use usage::{UsageKey, UsageQuery, UsageRow};
pub use workspaces::WorkspaceSummary;
