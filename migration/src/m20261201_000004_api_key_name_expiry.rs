//! API keys get an optional human name and an optional expiry
//! (`prompter keys create --name … --expires-in 90d`).

use crate::types::{run_all, ColumnTypes};
use sea_orm_migration::prelude::*;

/// `m20261201_000004_api_key_name_expiry`.
#[derive(Debug)]
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000004_api_key_name_expiry"
    }
}

fn up_sql(t: ColumnTypes) -> Vec<String> {
    let ts = t.ts;
    vec![
        "ALTER TABLE api_keys ADD COLUMN name TEXT NULL".into(),
        format!("ALTER TABLE api_keys ADD COLUMN expires_at {ts} NULL"),
    ]
}

const DOWN_SQL: &[&str] = &[
    "ALTER TABLE api_keys DROP COLUMN expires_at",
    "ALTER TABLE api_keys DROP COLUMN name",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let types = ColumnTypes::for_backend(manager.get_database_backend())?;
        run_all(manager, &up_sql(types)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql: Vec<String> = DOWN_SQL.iter().map(|s| (*s).to_owned()).collect();
        run_all(manager, &sql).await
    }
}
