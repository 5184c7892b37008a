//! `docs/prompts.md` runs as written: its `sh` blocks run in order in one
//! bash session against a live server (SQLite and PostgreSQL), and each
//! `<!-- expect: … -->` comment after a block must appear in that block's
//! output.

use crate::helpers::*;

/// The `sh` blocks of a markdown page, each with the expectations after it.
fn blocks(md: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut lines = md.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```sh" {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            out.push((body.join("\n"), Vec::new()));
        } else if let Some(rest) = line.trim().strip_prefix("<!-- expect: ") {
            let want = rest
                .strip_suffix(" -->")
                .expect("expect comment ends with -->");
            out.last_mut()
                .expect("an expectation follows a block")
                .1
                .push(want.to_owned());
        }
    }
    out
}

#[tokio::test]
async fn prompts_md_examples_run_as_written() {
    let md = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/prompts.md"
    ))
    .unwrap();
    let blocks = blocks(&md);
    assert!(blocks.len() >= 8, "the page has its examples");
    let mut script = String::from("set -eu\n");
    for (i, (code, _)) in blocks.iter().enumerate() {
        script.push_str(&format!("echo '@@block {i}'\n{code}\n"));
    }
    for db in backends() {
        let app = spawn(db).await;
        let base = app.base.clone();
        let script = script.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("bash")
                .arg("-c")
                .arg(&script)
                .env("PROMPTER", base)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{db:?}: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        let parts: Vec<&str> = stdout.split("@@block ").skip(1).collect();
        assert_eq!(parts.len(), blocks.len(), "{stdout}");
        for ((code, wants), part) in blocks.iter().zip(parts) {
            for want in wants {
                assert!(
                    part.contains(want.as_str()),
                    "{db:?}: expected {want:?} in the output of\n{code}\n---\n{part}"
                );
            }
        }
        app.stop().await;
    }
}
