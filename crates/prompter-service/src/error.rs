//! The service's error type: what a use case can fail with, in words the API
//! layer maps one-to-one onto stable codes and HTTP statuses.

use chrono::{DateTime, Utc};
use prompter_domain::DomainError;
use prompter_providers::ProviderError;
use prompter_storage::StorageError;
use std::time::Duration;
use uuid::Uuid;

/// What a use case can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request body broke a domain rule (type, limit, strict validation).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A required field is absent.
    #[error("field required: {field}")]
    MissingField {
        /// The field's name.
        field: &'static str,
    },
    /// An active template with the same config already exists in this org+workspace.
    #[error("an active template with the same config already exists")]
    TemplateExists {
        /// The active twin.
        template_id: Uuid,
        /// Its name, when it could be read.
        name: Option<String>,
        /// When it was created, when it could be read.
        created_at: Option<DateTime<Utc>>,
    },
    /// No such template (or not visible in the caller's scope).
    #[error("template not found")]
    TemplateNotFound,
    /// No such result (or not visible in the caller's scope).
    #[error("result not found")]
    ResultNotFound,
    /// The body's workspace/org does not match the addressed template.
    #[error("template not found in this workspace")]
    ScopeMismatch,
    /// The model provider failed.
    #[error("provider {provider} failed: {source}")]
    Provider {
        /// Provider name.
        provider: String,
        /// What went wrong.
        #[source]
        source: ProviderError,
    },
    /// No client for that provider in live mode.
    #[error("no client is configured for provider {provider}")]
    ProviderNotConfigured {
        /// Provider name.
        provider: String,
    },
    /// The org's or workspace's monthly budget is spent.
    #[error("the monthly budget of {org_id} is spent")]
    BudgetExceeded {
        /// Org of the budget.
        org_id: String,
        /// Its workspace (None: the whole org).
        workspace_id: Option<String>,
        /// `YYYY-MM` (UTC).
        month: String,
    },
    /// Every call slot of the provider stayed busy for the queue timeout.
    #[error("provider {provider} is at its concurrency cap; retry shortly")]
    ProviderSaturated {
        /// Provider name.
        provider: String,
        /// Suggested wait.
        retry_after: Duration,
    },
    /// The provider/model circuit is open (recent provider-fault failures).
    #[error("the circuit for {provider}/{model} is open after repeated provider failures")]
    CircuitOpen {
        /// Provider name.
        provider: String,
        /// Model.
        model: String,
        /// Until the next trial call.
        retry_after: Duration,
    },
    /// Probing is disabled and no version is known yet.
    #[error(
        "probing is disabled (PROMPTER_PROBE_DISABLED) and no version is known for this template"
    )]
    ProbeDisabledNoVersion,
    /// Another caller's probe for the same window did not finish in time.
    #[error("a probe for this template is still in flight; retry shortly")]
    ProbePending {
        /// Suggested wait.
        retry_after: Duration,
    },
    /// A run with the same idempotency key is still in flight after the wait.
    #[error("a run with this Idempotency-Key is still in flight; retry shortly")]
    RunInFlight {
        /// Suggested wait.
        retry_after: Duration,
    },
    /// The same idempotency key was used with a different body.
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyKeyReused,
    /// A result was produced but could not be stored; the caller must know.
    #[error("the provider answered but the result could not be stored: {source}")]
    ResultNotStored {
        /// The storage failure.
        #[source]
        source: StorageError,
    },
    /// No template has this prompt name (or not in the caller's scope).
    #[error("prompt not found")]
    PromptNotFound,
    /// The prompt has no such label.
    #[error("label not found")]
    LabelNotFound,
    /// The prompt has no such revision (or it is deleted, for a label move).
    #[error("revision not found")]
    RevisionNotFound,
    /// A label name that breaks `^[a-z0-9][a-z0-9_.-]{0,62}$`, or `latest`.
    #[error("invalid label name {label:?}")]
    InvalidLabel {
        /// The name given.
        label: String,
    },
    /// The label does not point where `expected_revision` said.
    #[error("the label points to another revision")]
    LabelConflict {
        /// Where it points now (None: absent).
        current: Option<i64>,
    },
    /// The target revision uses variables the current target does not.
    #[error("the target revision needs new variables: {}", added.join(", "))]
    VariableContractChanged {
        /// The new variables.
        added: Vec<String>,
    },
    /// Labels point to the template being deleted.
    #[error("labels point to this template: {}", labels.join(", "))]
    LabelInUse {
        /// Those labels.
        labels: Vec<String>,
    },
    /// Variables the prompt uses were not given.
    #[error("missing variables: {}", missing.join(", "))]
    MissingVariables {
        /// Their names.
        missing: Vec<String>,
    },
    /// Variables whose values are not strings, numbers or booleans (empty:
    /// the variables are not an object).
    #[error("variables must be an object of strings, numbers or booleans")]
    InvalidVariables {
        /// Their names.
        names: Vec<String>,
    },
    /// Storage failed.
    /// No such batch (or not in the caller's scope).
    #[error("batch not found")]
    BatchNotFound,
    /// No such schedule (or not in the caller's scope).
    #[error("schedule not found")]
    ScheduleNotFound,
    /// A batch body breaks a rule (`field` names it).
    #[error("{message}")]
    InvalidBatch {
        /// The body field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// More items (countries × repeats) than a batch may have.
    #[error("a batch may have at most {max} items ({items} requested)")]
    BatchTooLarge {
        /// Requested.
        items: usize,
        /// The limit.
        max: usize,
    },
    /// A schedule's cron expression does not parse.
    #[error("invalid cron expression: {message}")]
    InvalidCron {
        /// The parser's reason.
        message: String,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ServiceError {
    /// Builds a provider error, counting it by provider and kind.
    pub fn provider(provider: &str, source: ProviderError) -> Self {
        metrics::counter!(
            crate::metrics_catalog::PROVIDER_ERRORS_TOTAL,
            "provider" => provider.to_owned(),
            "kind" => source.kind()
        )
        .increment(1);
        ServiceError::Provider {
            provider: provider.to_owned(),
            source,
        }
    }
}

/// Result alias for the service.
pub type ServiceResult<T> = Result<T, ServiceError>;
