//! `run_idempotency`: Idempotency-Key claims of runs, per template.

use sea_orm::entity::prelude::*;

/// One claim.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "run_idempotency")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub template_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub idempotency_key: String,
    pub org_id: String,
    pub request_hash: String,
    pub result_id: Option<Uuid>,
    /// `in_flight` or `completed`.
    pub state: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
