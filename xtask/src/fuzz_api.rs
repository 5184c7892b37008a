//! `cargo xtask fuzz-api`: schemathesis against a live server.
//!
//! Steps: install schemathesis 4 with pip when `python3 -m schemathesis.cli`
//! is missing (`--skip-install` refuses instead); build `prompter`
//! (`cargo build -p prompter-api`, unless `--bin`); start `prompter serve`
//! on a free loopback port with SQLite in a temp dir and the stub provider;
//! run `schemathesis run http://127.0.0.1:<port>/openapi.json` with a bounded
//! number of examples per operation and the checks `not_a_server_error`,
//! `status_code_conformance` and `response_schema_conformance`; stop the
//! server (a guard's `Drop`, on every path out). The exit code is non-zero
//! when schemathesis reports a failure or an error.
//!
//! The seed is fixed by default so a CI failure reproduces locally with the
//! same command; `--seed` explores further. Arguments after `--` go to
//! `schemathesis run` unchanged.

use crate::support::{free_port, tail, target_dir, workspace_root, TempDir};
use crate::TaskResult;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Schemathesis major version the flags below are written for.
const SCHEMATHESIS: &str = "schemathesis>=4,<5";
/// The checks that must pass.
const CHECKS: &str = "not_a_server_error,status_code_conformance,response_schema_conformance";

/// `cargo xtask fuzz-api` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Test cases per operation (and per phase).
    #[arg(long, default_value_t = 20)]
    max_examples: u32,
    /// Random seed (fixed by default: runs are reproducible).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Concurrent schemathesis workers.
    #[arg(long, default_value_t = 2)]
    workers: u32,
    /// Fail instead of pip-installing schemathesis when it is missing.
    #[arg(long)]
    skip_install: bool,
    /// Keep the temp dir (database, server log, reports).
    #[arg(long)]
    keep: bool,
    /// Use this `prompter` binary instead of building one.
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Passed to `schemathesis run` unchanged (after `--`).
    #[arg(last = true)]
    extra: Vec<String>,
}

/// Runs the task.
pub fn run(args: Args) -> TaskResult {
    let root = workspace_root();
    ensure_schemathesis(args.skip_install)?;
    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => {
            run_checked(
                Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                    .args(["build", "-p", "prompter-api"])
                    .current_dir(&root),
                "cargo build -p prompter-api",
            )?;
            target_dir().join("debug/prompter")
        }
    };
    if !bin.exists() {
        return Err(format!("{} not found", bin.display()).into());
    }
    let tmp = TempDir::new("prompter-fuzz-api", args.keep)?;
    println!("== temp dir: {}", tmp.path.display());
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let db = format!("sqlite://{}/s.db?mode=rwc", tmp.path.display());
    let log = tmp.path.join("prompter.log");
    let mut server = Server::spawn(
        Command::new(&bin)
            .arg("serve")
            .args(["--bind", &addr])
            .args(["--database-url", &db])
            .args(["--provider", "stub"])
            .args(["--metrics-env", "fuzz"])
            .env_remove("PROMPTER_REDIS_URL")
            .env_remove("PROMPTER_AUTH")
            .env_remove("PROMPTER_METRICS_AUTH")
            .env_remove("PROMPTER_WEBHOOK_URL")
            .env_remove("PROMPTER_PROBE_DISABLED")
            .env_remove("PROMPTER_VALIDATION")
            .env_remove("PROMPTER_RATE_LIMIT_ANONYMOUS")
            .env("RUST_LOG", "warn"),
        &log,
    )?;
    server.wait_ready(&addr, Duration::from_secs(90))?;
    println!("== prompter serving on {addr} (pid {})", server.child.id());

    let report_dir = tmp.path.join("report");
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "schemathesis.cli", "run"])
        .arg(format!("http://{addr}/openapi.json"))
        .args(["--checks", CHECKS])
        .args(["--max-examples", &args.max_examples.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .args(["--workers", &args.workers.to_string()])
        .args(["--request-timeout", "30"])
        .args(["--suppress-health-check", "all"])
        .arg("--no-color")
        .args(["--report", "junit"])
        .arg("--report-dir")
        .arg(&report_dir)
        .args(&args.extra)
        .current_dir(&tmp.path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let started = Instant::now();
    println!(
        "== schemathesis (checks {CHECKS}; {} examples per operation)",
        args.max_examples
    );
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting schemathesis: {e}"))?;
    // Echo the output, keeping the line after "Test cases:" (e.g.
    // "1043 generated, 1043 passed" or "731 generated, 14 found 14 unique failures").
    let mut summary = String::new();
    if let Some(out) = child.stdout.take() {
        let mut next_is_summary = false;
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            println!("{line}");
            if next_is_summary && !line.trim().is_empty() {
                summary = line.trim().to_owned();
                next_is_summary = false;
            }
            if line.trim() == "Test cases:" {
                next_is_summary = true;
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for schemathesis: {e}"))?;
    println!(
        "== schemathesis finished in {:.0?}: {summary}",
        started.elapsed()
    );
    let (generated, failed) = counts(&summary);
    let failed = if status.success() {
        failed
    } else {
        failed.max(1)
    };
    println!(
        "fuzz-api: {} passed, {failed} failed",
        generated.saturating_sub(failed)
    );
    let alive = server.child.try_wait().ok().flatten().is_none();
    drop(server);
    if !alive {
        return Err(format!(
            "the server died during the run; last log lines:\n{}",
            tail(&log, 40)
        )
        .into());
    }
    if !status.success() {
        println!("server log tail:\n{}", tail(&log, 40));
        return Err(format!(
            "schemathesis found problems ({status}); rerun with --keep for the report \
             and the server log"
        )
        .into());
    }
    Ok(())
}

fn ensure_schemathesis(skip_install: bool) -> TaskResult {
    let present = Command::new("python3")
        .args(["-m", "schemathesis.cli", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    if skip_install {
        return Err("schemathesis is not installed (pip install 'schemathesis>=4,<5')".into());
    }
    run_checked(
        Command::new("python3").args(["-m", "pip", "install", "--quiet", SCHEMATHESIS]),
        &format!("python3 -m pip install {SCHEMATHESIS}"),
    )
}

/// `(generated, failures)` of schemathesis' "Test cases:" line.
fn counts(summary: &str) -> (u64, u64) {
    let numbers: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let generated = numbers.first().copied().unwrap_or(0);
    let failed = if summary.contains("failure") {
        numbers.last().copied().unwrap_or(0)
    } else {
        0
    };
    (generated, failed)
}

/// The server process, killed and reaped on drop.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn spawn(cmd: &mut Command, log: &Path) -> Result<Server, String> {
        let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting prompter: {e}"))?;
        Ok(Server {
            child,
            log: log.to_path_buf(),
        })
    }

    /// Polls `/readyz` until it answers 200.
    fn wait_ready(&mut self, addr: &str, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "prompter exited early ({status}); last log lines:\n{}",
                    tail(&self.log, 30)
                ));
            }
            if get_status(addr, "/readyz").is_ok_and(|s| s == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "prompter was not ready within {within:?}; last log lines:\n{}",
                    tail(&self.log, 30)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        println!("== stopped prompter (pid {})", self.child.id());
    }
}

/// Status code of a `GET` over a plain loopback TCP connection.
fn get_status(addr: &str, path: &str) -> Result<u16, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("unexpected answer {line:?}"))
}

fn run_checked(cmd: &mut Command, what: &str) -> TaskResult {
    println!("== $ {what}");
    let status = cmd.status().map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})").into())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn summary_counts() {
        assert_eq!(super::counts("1043 generated, 1043 passed"), (1043, 0));
        assert_eq!(
            super::counts("731 generated, 14 found 14 unique failures"),
            (731, 14)
        );
        assert_eq!(super::counts(""), (0, 0));
    }
}
