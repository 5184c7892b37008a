//! `cargo xtask bench batch`: items/s of one tracking batch (issue 18).
//!
//! Starts `prompter serve` (release build unless `--bin`) with the stub at
//! `--latency-ms` (default 500), a provider cap of `--cap` (default 200)
//! for the stub's `openai` provider, `--batch-cap-share 1` (the batch may use
//! the whole cap: nothing interactive runs) and `--batch-concurrency` equal
//! to the cap; creates one batch of `--items` (default 1000: 10 countries ×
//! 100 repeats), and reports items/s from the batch's `created_at` to its
//! `finished_at`. The ceiling is cap / latency (200 / 0.5 s = 400 items/s).

use crate::client::{call, get, Req};
use crate::support::{free_port, target_dir, Proc, TempDir};
use crate::TaskResult;
use hyper::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Options of `bench batch`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The `prompter` binary (default: build the release one).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Database URL (default: a fresh SQLite file).
    #[arg(long)]
    database_url: Option<String>,
    /// Items in the batch (10 countries × items/10 repeats).
    #[arg(long, default_value_t = 1000)]
    items: u64,
    /// Stub latency, milliseconds.
    #[arg(long, default_value_t = 500)]
    latency_ms: u64,
    /// Provider cap (`--provider-max-inflight openai=N`).
    #[arg(long, default_value_t = 200)]
    cap: u64,
}

/// Seconds since the epoch of an RFC 3339 timestamp.
fn epoch_secs(s: &str) -> Result<f64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_micros() as f64 / 1e6)
        .map_err(|e| format!("bad timestamp {s:?}: {e}"))
}

/// Runs the benchmark and prints its figure.
pub fn run(opts: Options) -> TaskResult {
    let bin = match &opts.bin {
        Some(b) => b.clone(),
        None => {
            crate::support::cargo_build(&["prompter-api"], true)?;
            target_dir().join("release/prompter")
        }
    };
    let dir = TempDir::new("bench-batch", false)?;
    let db = opts
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/bench.db?mode=rwc", dir.path.display()));
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(&bin);
    cmd.args(["serve", "--bind", &addr, "--database-url", &db, "--migrate"])
        .args(["--stub-latency-ms", &opts.latency_ms.to_string()])
        .args(["--provider-max-inflight", &format!("openai={}", opts.cap)])
        .args(["--batch-cap-share", "1"])
        .args(["--batch-concurrency", &opts.cap.to_string()])
        .args(["--batch-poll-ms", "50"])
        .env("RUST_LOG", "warn")
        .env_remove("PROMPTER_DATABASE_URL");
    let _server = Proc::spawn("prompter", &mut cmd, &dir.path.join("server.log"))?;
    let started = Instant::now();
    while get(&addr, "/healthz").map(|r| r.status) != Ok(200) {
        if started.elapsed() > Duration::from_secs(60) {
            return Err("the server did not become healthy".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let post = Method::POST;
    let tpl = json!({
        "org_id": "bench", "workspace_id": "ws", "name": "tracker", "model_id": "gpt-4o",
        "system_instructions": "s", "user_prompt_template": "Best shoes in {{country}} for {{brand}}?",
    });
    let r = call(
        &addr,
        Req::json(&post, "/api/prompt-templates"),
        tpl.to_string().as_bytes(),
    )?;
    if r.status != 201 {
        return Err(format!("create template: {} {}", r.status, r.body).into());
    }
    let countries: Vec<String> = (0..10).map(|i| format!("C{i}")).collect();
    let repeats = opts.items.div_ceil(10).max(1);
    let body = json!({"countries": countries, "repeats": repeats, "brand_name": "Acme"});
    let r = call(
        &addr,
        Req::json(
            &post,
            "/api/prompts/tracker/batches?org_id=bench&workspace_id=ws",
        ),
        body.to_string().as_bytes(),
    )?;
    if r.status != 202 {
        return Err(format!("create batch: {} {}", r.status, r.body).into());
    }
    let id = serde_json::from_str::<Value>(&r.body)?["batch_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let b: Value = loop {
        let r = get(&addr, &format!("/api/batches/{id}"))?;
        let b: Value = serde_json::from_str(&r.body)?;
        if !b["finished_at"].is_null() {
            break b;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err("the batch did not finish in 10 min".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let secs = epoch_secs(b["finished_at"].as_str().unwrap_or_default())?
        - epoch_secs(b["created_at"].as_str().unwrap_or_default())?;
    let done = b["done"].as_u64().unwrap_or(0);
    let ceiling = opts.cap as f64 / (opts.latency_ms as f64 / 1000.0);
    println!(
        "| items | latency ms | cap | done | failed | seconds | items/s | ceiling items/s |\n|---|---|---|---|---|---|---|---|\n| {} | {} | {} | {done} | {} | {secs:.2} | {:.0} | {ceiling:.0} |",
        b["total"],
        opts.latency_ms,
        opts.cap,
        b["failed"],
        done as f64 / secs.max(1e-9),
    );
    Ok(())
}
