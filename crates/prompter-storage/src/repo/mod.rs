//! Repository methods of [`crate::Store`], one module per table.

mod api_keys;
mod batches;
mod budgets;
mod drift;
mod generations;
mod idempotency;
mod lease;
mod outbox;
mod prompts;
mod results;
mod schedules;
mod templates;
pub(crate) mod usage;
mod versions;
mod workspaces;

pub use batches::{
    item_status, BatchCreated, BatchItemRecord, BatchRecord, FinishEvent, NewBatch, NewBatchItem,
    TickClaim,
};
pub use budgets::BudgetRecord;
pub use generations::{API_KEYS_GENERATION, PROMPTS_GENERATION};
pub use idempotency::IDEMPOTENCY_IN_FLIGHT_LEASE;
pub use prompts::{
    LabelEvent, LabelMove, LabelRecord, LabelledRevision, PromptKey, PromptSummary, RevisionRef,
    RevisionSummary, RevisionTag,
};
pub use results::RESULT_INSERT;
pub use schedules::{NewSchedule, ScheduleRecord};
pub use templates::{TemplateDelete, TEMPLATE_INSERT};
pub use usage::{UsageKey, UsageQuery, UsageRow};
pub use workspaces::WorkspaceSummary;
