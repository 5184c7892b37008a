//! `cargo xtask faults`: runs the fault tests of the HTTP suite
//! (`crates/prompter-api/tests/api/faults.rs`, `#[ignore]`d in the plain
//! `cargo test` run) one at a time, echoes their output, and ends with the
//! table of figures each scenario printed: requests sent, 5xx answers,
//! results lost.
//!
//! Scenarios: Redis stopped under load (a private `redis-server` on a free
//! port), PostgreSQL sessions of the test's own database terminated under
//! load, provider 5xx / timeout / 429 / 529 from a mock, `kill -9` of a real
//! `prompter` process during a run load, SIGTERM during load. The PostgreSQL
//! variants run when `PROMPTER_TEST_POSTGRES_URL` is set (`.ci/run` sets it).
//!
//! Options: `--filter <substring>` to run some scenarios only.

use crate::TaskResult;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

/// `cargo xtask faults` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the fault tests whose name contains this.
    #[arg(long, default_value = "faults::fault_")]
    filter: String,
}

/// One `FAULT …` line.
#[derive(Debug, Default)]
struct Row {
    scenario: String,
    sent: String,
    five_xx: String,
    lost: String,
}

fn parse(line: &str) -> Option<Row> {
    // With --nocapture the line may start with libtest's `test name ... `.
    let rest = &line[line.find("FAULT ")? + "FAULT ".len()..];
    let (head, tail) = rest.split_once(": ").unwrap_or((rest, ""));
    let mut row = Row {
        scenario: head.trim().to_owned(),
        ..Row::default()
    };
    for word in tail.split_whitespace() {
        if let Some((k, v)) = word.split_once('=') {
            match k {
                "sent" => row.sent = v.to_owned(),
                "5xx" => row.five_xx = v.to_owned(),
                "lost" => row.lost = v.to_owned(),
                _ => {}
            }
        }
    }
    Some(row)
}

/// What the 5xx column means for a scenario.
fn note(scenario: &str) -> &'static str {
    if scenario.starts_with("provider_") {
        "every answer is the provider fault mapped to 502/503/504 with its code; nothing written"
    } else if scenario.starts_with("postgres_") {
        "5xx = 503 DATABASE_UNAVAILABLE/RESULT_NOT_STORED + Retry-After while sessions die; all ok after"
    } else if scenario.starts_with("kill_9") {
        "in-flight requests at the kill get no answer (not acknowledged, not counted lost)"
    } else {
        "must be 0 5xx"
    }
}

/// Runs the fault tests and prints the figures.
pub fn run(args: Args) -> TaskResult {
    if std::env::var("PROMPTER_TEST_POSTGRES_URL").is_err() {
        eprintln!(
            "note: PROMPTER_TEST_POSTGRES_URL is not set: the PostgreSQL scenarios are skipped"
        );
    }
    let mut child = crate::support::cargo()
        .args(["test", "-p", "prompter-api", "--test", "api", "--"])
        .arg(&args.filter)
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut rows = Vec::new();
    let mut summary = None;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            if let Some(row) = parse(&line) {
                rows.push(row);
            }
            if line.starts_with("test result:") {
                summary = Some(line.clone());
            }
        }
    }
    let status = child.wait()?;
    println!();
    println!("== fault figures");
    println!(
        "{:<40} {:>7} {:>6} {:>6}  note",
        "scenario", "sent", "5xx", "lost"
    );
    for r in &rows {
        println!(
            "{:<40} {:>7} {:>6} {:>6}  {}",
            r.scenario,
            r.sent,
            r.five_xx,
            r.lost,
            note(&r.scenario)
        );
    }
    if let Some(s) = summary {
        println!("{s}");
    }
    if !status.success() {
        return Err(format!("fault tests failed ({status})").into());
    }
    if rows.is_empty() {
        return Err("no fault scenario reported figures (filter matched nothing?)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fault_lines() {
        let r = parse("FAULT kill_9_during_run_load [Postgres]: sent=812 5xx=0 lost=0 ok=790 x=y")
            .unwrap();
        assert_eq!(r.scenario, "kill_9_during_run_load [Postgres]");
        assert_eq!(
            (r.sent.as_str(), r.five_xx.as_str(), r.lost.as_str()),
            ("812", "0", "0")
        );
        assert!(parse("test foo ... ok").is_none());
        let r =
            parse("test faults::x ... FAULT sigterm_during_load [Sqlite]: sent=24 5xx=0 lost=0")
                .unwrap();
        assert_eq!(r.scenario, "sigterm_during_load [Sqlite]");
        assert_eq!(r.sent, "24");
    }
}
