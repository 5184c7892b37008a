//! `prompt_results`: one run, with the full request and response.

use sea_orm::entity::prelude::*;

/// One result row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "prompt_results")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: String,
    pub workspace_id: String,
    pub template_id: Uuid,
    pub version_id: Option<Uuid>,
    pub provider_version_key: String,
    pub system_fingerprint: Option<String>,
    pub country: Option<String>,
    pub request: Option<Json>,
    pub response: Option<Json>,
    pub analysis_config: Option<Json>,
    pub created_at: DateTimeUtc,
    /// Revision of the template run (release runs and new runs).
    pub revision: Option<i32>,
    /// Label the run went through (run by label).
    pub label: Option<String>,
    /// The model's text.
    pub output: Option<String>,
    /// Token counts and cost (issue 17); NULL when not reported / unpriced.
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cached_input_tokens: Option<i64>,
    pub cache_write_input_tokens: Option<i64>,
    pub cost_micros: Option<i64>,
    /// The provider that served the run.
    pub provider: Option<String>,
    /// The batch that produced it (issue 18).
    pub batch_id: Option<Uuid>,
    /// Its repeat index within the batch.
    pub batch_repeat: Option<i32>,
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
    /// The version row the run was recorded against.
    #[sea_orm(
        belongs_to = "super::prompt_versions::Entity",
        from = "Column::VersionId",
        to = "super::prompt_versions::Column::Id"
    )]
    Version,
}

impl Related<super::prompt_templates::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Template.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
