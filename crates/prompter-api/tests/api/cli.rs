//! The `prompter` binary's subcommands: hash, migrate, export/import.

use crate::helpers::*;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_prompter");

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("PROMPTER_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn hash_prints_v7_canonical_json_and_both_hashes() {
    let input = concat!(
        r#"{"workspace_id":"w","name":"n","user_prompt_template":"Hi  {{brand}}\r\n","model_id":"gpt-4o","country_set":["uk","de"],"inference_params":{"temperature":0.70001}}"#,
        "\n",
        "not json\n"
    );
    let (code, out, err) = run(&["hash"], input);
    // A failed line makes the exit code 1 (every line still gets its answer).
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("1 of 2 line(s) failed"), "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0]["canonical_json"],
        r#"{"system_instructions":"","user_prompt_template":"Hi {{brand}}","country_set":["DE","GB"],"model_id":"gpt-4o","inference_params":{"temperature":0.7},"tools_spec":[],"response_format":{},"grounding_profile_id":null,"grounding_snapshot_id":null,"retrieval_params":{},"preprocess_pipeline_id":null,"postprocess_pipeline_id":null}"#
    );
    assert_eq!(
        lines[0]["sha256"],
        "17330698efee5fa5ba6748539b2dcc2b73a60e4655a8ea8e7a98f85792ee559d"
    );
    assert_eq!(lines[0]["blake3"].as_str().unwrap().len(), 64);
    assert!(lines[1]["error"]["code"].is_string());
    let (code, out, _) = run(&["hash"], &format!("{}\n", input.lines().next().unwrap()));
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1);
}

#[tokio::test]
async fn migrate_status_and_unreachable_database() {
    let db = fresh_db(Db::Sqlite).await;
    // Only `migrate up` (and serve) create a missing SQLite file.
    let (code, _, err) = run(&["migrate", "status", "--database-url", db.url()], "");
    assert_ne!(code, 0);
    assert!(err.contains("no SQLite database at"), "{err}");
    let (code, out, err) = run(&["migrate", "up", "--database-url", db.url()], "");
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(&["migrate", "status", "--database-url", db.url()], "");
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = run(
        &[
            "migrate",
            "status",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ],
        "",
    );
    assert_ne!(code, 0);
    assert!(!err.is_empty(), "the reason is printed");
}

#[tokio::test]
async fn export_then_import_is_content_addressed() {
    let source = spawn(Db::Sqlite).await;
    let org = format!("org-{}", uuid::Uuid::new_v4());
    let mut hashes = Vec::new();
    for i in 0..3 {
        let mut b = template_body("gpt-4o");
        b["org_id"] = json!(org);
        b["user_prompt_template"] = json!(format!("p{i}"));
        let (s, v) = source.post("/api/prompt-templates", &b).await;
        assert_eq!(s, 201);
        hashes.push(v["config_hash"].as_str().unwrap().to_owned());
    }
    source.stop().await;
    let (code, exported, err) = run(
        &[
            "export",
            "--database-url",
            source.db.url(),
            "--workspace-id",
            "ws-1",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(exported.lines().count(), 3);

    let target = fresh_db(Db::Sqlite).await;
    target.store().await.close().await; // import does not create a database
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("templates.jsonl");
    std::fs::write(&file, &exported).unwrap();
    let f = file.to_str().unwrap();
    let (code, out, err) = run(&["import", f, "--database-url", target.url()], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("created 3 / already present 0 / rejected 0"),
        "{out}"
    );
    let (code, out, _) = run(&["import", f, "--database-url", target.url()], "");
    assert_eq!(code, 0);
    assert!(
        out.contains("created 0 / already present 3 / rejected 0"),
        "{out}"
    );

    // Same hashes in the new database.
    let app = spawn_on(target, |_| {}).await;
    let (_, list) = app
        .get(&format!("/api/prompt-templates?org_id={org}"))
        .await;
    let mut got: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["config_hash"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    hashes.sort();
    assert_eq!(got, hashes);
    app.stop().await;

    // A bad line is reported and makes the exit code non-zero.
    std::fs::write(&file, format!("{exported}{{\"org_id\": 5}}\n")).unwrap();
    let (code, out, err) = run(&["import", f, "--database-url", app.db.url()], "");
    assert_ne!(code, 0);
    assert!(out.contains("rejected 1"), "{out}");
    assert!(err.contains("line 4"), "{err}");
}

/// `prompter import` ends with `ANALYZE prompt_templates` on PostgreSQL, so
/// the planner knows the imported row count (`reltuples` is -1 before).
#[tokio::test]
async fn import_into_postgres_analyzes_the_template_table() {
    if !backends().contains(&Db::Postgres) {
        return;
    }
    let target = fresh_db(Db::Postgres).await;
    target.store().await; // migrated (PostgreSQL is never migrated implicitly)
    let lines: String = (0..3)
        .map(|i| {
            let mut b = template_body("gpt-4o");
            b["user_prompt_template"] = json!(format!("imported {i}"));
            format!("{b}\n")
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("templates.jsonl");
    std::fs::write(&file, lines).unwrap();
    let (code, out, err) = run(
        &[
            "import",
            file.to_str().unwrap(),
            "--database-url",
            target.url(),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created 3 /"), "{out}");
    assert_eq!(target.pg_reltuples("prompt_templates").await, 3.0);
}

#[test]
fn completions_are_printed_for_each_shell() {
    let (code, bash, err) = run(&["completions", "bash"], "");
    assert_eq!(code, 0, "{err}");
    assert!(bash.contains("_prompter()"), "{bash}");
    for sub in [
        "serve",
        "hash",
        "migrate",
        "keys",
        "export",
        "import",
        "completions",
    ] {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    let (code, zsh, _) = run(&["completions", "zsh"], "");
    assert_eq!(code, 0);
    assert!(zsh.starts_with("#compdef prompter"), "{zsh}");
    let (code, fish, _) = run(&["completions", "fish"], "");
    assert_eq!(code, 0);
    assert!(fish.contains("complete -c prompter"), "{fish}");
    let (code, _, err) = run(&["completions", "tcsh"], "");
    assert_eq!(code, 2, "an unknown shell is a usage error");
    assert!(err.contains("bash"), "the error lists the shells: {err}");
}

/// The commit of the checkout being tested, when it is one.
fn git_head() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[tokio::test]
async fn version_shows_the_git_commit_of_the_checkout() {
    let app = spawn(Db::Sqlite).await;
    let (status, v) = app.get("/version").await;
    assert_eq!(status, 200);
    match git_head() {
        // Built from this checkout by the build script: its HEAD.
        Some(head) if std::env::var_os("PROMPTER_GIT_SHA").is_none() => {
            assert_eq!(v["git_sha"], head.as_str(), "{v}")
        }
        // A tarball build (or a packager's PROMPTER_GIT_SHA): not a guess.
        _ => assert!(v["git_sha"].is_string(), "{v}"),
    }
    app.stop().await;
}
