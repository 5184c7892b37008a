//! Many instances on one database: webhook outbox rows are claimed with a
//! lease (`claimed_by`, `lease_until`), and `cluster_generations` counts
//! changes that running instances must notice (a trigger on `api_keys` bumps
//! the `api_keys` generation on insert, delete and every change of what a
//! key grants, including `prompter keys revoke`, which talks to no instance).

use crate::types::{run_all, ColumnTypes};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// `m20261201_000006_cluster_coordination`.
#[derive(Debug)]
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000006_cluster_coordination"
    }
}

/// Columns whose change alters what a key grants (not `last_used_at`, which
/// every lookup touches).
const KEY_GRANT_COLUMNS: &str =
    "revoked_at, expires_at, role, org_id, workspace_id, key_hash, prefix";

fn up_sql(backend: DbBackend) -> Result<Vec<String>, DbErr> {
    let t = ColumnTypes::for_backend(backend)?;
    let ts = t.ts;
    let int = if backend == DbBackend::Postgres {
        "BIGINT"
    } else {
        "INTEGER"
    };
    let mut sql = vec![
        "ALTER TABLE webhook_outbox ADD COLUMN claimed_by TEXT NULL".to_owned(),
        format!("ALTER TABLE webhook_outbox ADD COLUMN lease_until {ts} NULL"),
        format!(
            "CREATE TABLE cluster_generations (
                name TEXT NOT NULL PRIMARY KEY,
                generation {int} NOT NULL
            ){}",
            t.table_suffix
        ),
        "INSERT INTO cluster_generations (name, generation) VALUES ('api_keys', 0)".to_owned(),
    ];
    match backend {
        DbBackend::Postgres => sql.extend([
            "CREATE OR REPLACE FUNCTION prompter_bump_generation() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 UPDATE cluster_generations SET generation = generation + 1 WHERE name = TG_ARGV[0];
                 RETURN NULL;
             END $$"
                .to_owned(),
            format!(
                "CREATE TRIGGER trg_api_keys_generation \
                 AFTER INSERT OR DELETE OR UPDATE OF {KEY_GRANT_COLUMNS} ON api_keys \
                 FOR EACH STATEMENT EXECUTE FUNCTION prompter_bump_generation('api_keys')"
            ),
        ]),
        _ => {
            let bump =
                "BEGIN UPDATE cluster_generations SET generation = generation + 1 WHERE name = 'api_keys'; END";
            sql.extend([
                format!("CREATE TRIGGER trg_api_keys_generation_ins AFTER INSERT ON api_keys {bump}"),
                format!("CREATE TRIGGER trg_api_keys_generation_del AFTER DELETE ON api_keys {bump}"),
                format!(
                    "CREATE TRIGGER trg_api_keys_generation_upd AFTER UPDATE OF {KEY_GRANT_COLUMNS} ON api_keys {bump}"
                ),
            ]);
        }
    }
    Ok(sql)
}

fn down_sql(backend: DbBackend) -> Vec<String> {
    let mut sql: Vec<String> = match backend {
        DbBackend::Postgres => vec![
            "DROP TRIGGER IF EXISTS trg_api_keys_generation ON api_keys".into(),
            "DROP FUNCTION IF EXISTS prompter_bump_generation()".into(),
        ],
        _ => vec![
            "DROP TRIGGER IF EXISTS trg_api_keys_generation_ins".into(),
            "DROP TRIGGER IF EXISTS trg_api_keys_generation_del".into(),
            "DROP TRIGGER IF EXISTS trg_api_keys_generation_upd".into(),
        ],
    };
    sql.extend([
        "DROP TABLE IF EXISTS cluster_generations".into(),
        "ALTER TABLE webhook_outbox DROP COLUMN lease_until".into(),
        "ALTER TABLE webhook_outbox DROP COLUMN claimed_by".into(),
    ]);
    sql
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_all(manager, &up_sql(manager.get_database_backend())?).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_all(manager, &down_sql(manager.get_database_backend())).await
    }
}
