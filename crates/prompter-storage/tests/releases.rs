//! Prompt releases in storage: the migration numbers existing templates per
//! prompt by `created_at`, then id, and later creates continue the count.

mod common;

use prompter_migration::MigratorTrait;
use prompter_storage::migrate_cli::{run_with_output, MigrateCommand};
use prompter_storage::sea_orm::ConnectionTrait;
use prompter_storage::testing::TestDb;
use prompter_storage::{PageRequest, PromptKey};

on_all_backends!(migration_numbers_existing_templates);

async fn migration_numbers_existing_templates(db: TestDb) {
    // The schema before releases: the first two migrations.
    let store = db.connect().await;
    let pending = store.pending_migrations().await.unwrap();
    let releases = pending
        .iter()
        .position(|m| m == "m20261201_000003_prompt_releases")
        .expect("the releases migration");
    prompter_migration::Migrator::up(store.connection(), Some(releases as u32))
        .await
        .unwrap();
    // Same name in two orgs; equal created_at broken by id; inserted out of order.
    let rows = [
        (
            "00000000-0000-7000-8000-000000000003",
            "o1",
            "2026-01-02T00:00:00.000000Z",
        ),
        (
            "00000000-0000-7000-8000-000000000002",
            "o1",
            "2026-01-01T00:00:00.000000Z",
        ),
        (
            "00000000-0000-7000-8000-000000000001",
            "o1",
            "2026-01-01T00:00:00.000000Z",
        ),
        (
            "00000000-0000-7000-8000-000000000004",
            "o2",
            "2025-01-01T00:00:00.000000Z",
        ),
    ];
    for (i, (id, org, at)) in rows.iter().enumerate() {
        store
            .connection()
            .execute_unprepared(&format!(
                "INSERT INTO prompt_templates (id, org_id, workspace_id, name, \
                 system_instructions, user_prompt_template, model_id, config_hash, \
                 config_canonical_json, created_at) \
                 VALUES ('{id}', '{org}', 'w', 'p', '', 'u{i}', 'm', 'h{i}', '{{}}', '{at}')"
            ))
            .await
            .unwrap();
    }
    let mut out = Vec::new();
    run_with_output(db.url(), MigrateCommand::Up, None, &mut out)
        .await
        .unwrap();
    let key = |org: &str| PromptKey {
        org_id: org.into(),
        workspace_id: "w".into(),
        name: "p".into(),
    };
    let page = store
        .list_revisions(&key("o1"), &PageRequest::first(10))
        .await
        .unwrap();
    let got: Vec<(i64, String)> = page
        .items
        .iter()
        .map(|r| (r.revision, r.template_id.to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, rows[0].0.to_owned()),
            (2, rows[1].0.to_owned()),
            (1, rows[2].0.to_owned()),
        ]
    );
    // The counter continues after the numbered rows.
    let mut t = common::new_template("o1", "w", "h-new");
    t.name = "p".into();
    let created = store.insert_template(t).await.unwrap();
    assert_eq!(created.revision, 4);
    let o2 = store.latest_revision(&key("o2")).await.unwrap().unwrap();
    assert_eq!(o2.revision, 1);
}
