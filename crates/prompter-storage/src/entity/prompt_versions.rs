//! `prompt_versions`: provider builds seen for a template, one row per
//! provider version key.

use sea_orm::entity::prelude::*;

/// One version row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "prompt_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: String,
    pub workspace_id: String,
    pub template_id: Uuid,
    pub provider: String,
    pub provider_version_key: String,
    pub model_id: String,
    pub fingerprint_captured_at: Option<DateTimeUtc>,
    pub first_seen_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The template.
    #[sea_orm(
        belongs_to = "super::prompt_templates::Entity",
        from = "Column::TemplateId",
        to = "super::prompt_templates::Column::Id"
    )]
    Template,
}

impl Related<super::prompt_templates::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Template.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
