//! `prompt_templates`: a prompt plus its generation config, deduplicated by
//! the partial unique index `ux_tpl_org_ws_confighash_active`.

use sea_orm::entity::prelude::*;

/// One template row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "prompt_templates")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: String,
    pub workspace_id: String,
    pub name: String,
    pub provider: Option<String>,
    pub system_instructions: String,
    pub user_prompt_template: String,
    pub country_set: Option<Json>,
    pub model_id: String,
    pub inference_params: Option<Json>,
    pub tools_spec: Option<Json>,
    pub response_format: Option<Json>,
    pub grounding_profile_id: Option<String>,
    pub grounding_snapshot_id: Option<String>,
    pub retrieval_params: Option<Json>,
    pub config_hash: String,
    /// Exact canonical text; TEXT on both backends.
    pub config_canonical_json: String,
    pub created_by: Option<String>,
    pub created_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
    /// Number within its prompt (org, workspace, name); see migration 000003.
    pub revision: Option<i32>,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Versions seen for this template.
    #[sea_orm(has_many = "super::prompt_versions::Entity")]
    Versions,
    /// Results of runs of this template.
    #[sea_orm(has_many = "super::prompt_results::Entity")]
    Results,
}

impl ActiveModelBehavior for ActiveModel {}
