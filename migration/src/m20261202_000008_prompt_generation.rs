//! The `prompts` generation: bumped by triggers whenever what an instance's
//! template cache holds can change (a template deleted or restored, a label
//! created, moved or removed), by any process, so that every instance drops
//! its cached templates and label lookups within one poll period.
//!
//! Template texts and configs never change (a template is its config's
//! hash), and a new template does not change what a label or an existing
//! revision means, so inserts of templates do not bump it.

use crate::types::run_all;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// `m20261202_000008_prompt_generation`.
#[derive(Debug)]
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000008_prompt_generation"
    }
}

fn up_sql(backend: DbBackend) -> Vec<String> {
    let mut sql =
        vec!["INSERT INTO cluster_generations (name, generation) VALUES ('prompts', 0)".to_owned()];
    match backend {
        // `prompter_bump_generation(name)` is migration 000006's.
        DbBackend::Postgres => sql.extend([
            "CREATE TRIGGER trg_prompt_templates_generation \
             AFTER DELETE OR UPDATE OF deleted_at ON prompt_templates \
             FOR EACH STATEMENT EXECUTE FUNCTION prompter_bump_generation('prompts')"
                .to_owned(),
            "CREATE TRIGGER trg_prompt_labels_generation \
             AFTER INSERT OR UPDATE OR DELETE ON prompt_labels \
             FOR EACH STATEMENT EXECUTE FUNCTION prompter_bump_generation('prompts')"
                .to_owned(),
        ]),
        _ => {
            let bump = "BEGIN UPDATE cluster_generations SET generation = generation + 1 \
                        WHERE name = 'prompts'; END";
            sql.extend([
                format!("CREATE TRIGGER trg_prompt_templates_generation_del AFTER DELETE ON prompt_templates {bump}"),
                format!("CREATE TRIGGER trg_prompt_templates_generation_upd AFTER UPDATE OF deleted_at ON prompt_templates {bump}"),
                format!("CREATE TRIGGER trg_prompt_labels_generation_ins AFTER INSERT ON prompt_labels {bump}"),
                format!("CREATE TRIGGER trg_prompt_labels_generation_upd AFTER UPDATE ON prompt_labels {bump}"),
                format!("CREATE TRIGGER trg_prompt_labels_generation_del AFTER DELETE ON prompt_labels {bump}"),
            ]);
        }
    }
    sql
}

fn down_sql(backend: DbBackend) -> Vec<String> {
    let mut sql: Vec<String> = match backend {
        DbBackend::Postgres => vec![
            "DROP TRIGGER IF EXISTS trg_prompt_templates_generation ON prompt_templates".into(),
            "DROP TRIGGER IF EXISTS trg_prompt_labels_generation ON prompt_labels".into(),
        ],
        _ => [
            "trg_prompt_templates_generation_del",
            "trg_prompt_templates_generation_upd",
            "trg_prompt_labels_generation_ins",
            "trg_prompt_labels_generation_upd",
            "trg_prompt_labels_generation_del",
        ]
        .iter()
        .map(|t| format!("DROP TRIGGER IF EXISTS {t}"))
        .collect(),
    };
    sql.push("DELETE FROM cluster_generations WHERE name = 'prompts'".into());
    sql
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_all(manager, &up_sql(manager.get_database_backend())).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_all(manager, &down_sql(manager.get_database_backend())).await
    }
}
