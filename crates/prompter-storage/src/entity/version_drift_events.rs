//! `version_drift_events`: a template's (provider, model) moved to a new key.

use sea_orm::entity::prelude::*;

/// One drift event.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "version_drift_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: String,
    pub workspace_id: String,
    pub template_id: Uuid,
    pub provider: String,
    pub model_id: String,
    pub previous_key: String,
    pub new_key: String,
    pub detected_at: DateTimeUtc,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
