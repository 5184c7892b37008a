//! The server subprocess: `prompter serve` on a free loopback port with the
//! scenario's stub latency, its log appended to `target/bench/`, stopped
//! with SIGTERM (graceful shutdown) so each scenario's peak RSS is its own.

use super::{Plan, Res};
use crate::client::request;
use crate::support::free_port;
use hyper::body::Bytes;
use hyper::Method;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
/// What a server of this backend is started with.
pub(in crate::bench) struct ServerCfg {
    pub(in crate::bench) db_url: String,
    pub(in crate::bench) redis: Option<String>,
    /// Names the log file (`target/bench/server-<label>.log`).
    pub(in crate::bench) label: String,
    /// More `serve` arguments (after the plan's).
    pub(in crate::bench) extra_args: Vec<String>,
}

/// A running server subprocess (killed if dropped without [`Server::stop`]).
#[derive(Debug)]
pub(in crate::bench) struct Server {
    child: tokio::process::Child,
    pub(in crate::bench) addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    /// Starts `prompter serve` on a free port and waits for `/healthz`.
    pub(in crate::bench) async fn start(
        plan: &Plan,
        cfg: &ServerCfg,
        stub_latency_ms: u64,
    ) -> Res<Server> {
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = plan
            .logs
            .join(format!("server-{}.log", cfg.label.replace('+', "-")));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut cmd = match plan.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = tokio::process::Command::new(first);
                c.args(rest).arg(&plan.bin);
                c
            }
            None => tokio::process::Command::new(&plan.bin),
        };
        cmd.arg("serve")
            .arg("--bind")
            .arg(addr.to_string())
            .arg("--database-url")
            .arg(&cfg.db_url)
            .arg("--migrate")
            .arg("--stub-latency-ms")
            .arg(stub_latency_ms.to_string())
            .arg("--shutdown-timeout-secs")
            .arg("5")
            .args(&plan.server_args)
            .args(&cfg.extra_args)
            // Logging at `info` writes a line per request; the bench measures the
            // service, so only warnings reach the (file) log.
            .env("RUST_LOG", "warn")
            .env_remove("PROMPTER_REDIS_URL")
            .env_remove("PROMPTER_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true);
        if let Some(r) = &cfg.redis {
            cmd.arg("--redis-url").arg(r);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", plan.bin.display()))?;
        let deadline =
            Instant::now() + Duration::from_secs(if plan.wrapper.is_empty() { 60 } else { 300 });
        loop {
            if let Some(status) = child.try_wait()? {
                return Err(format!(
                    "the server exited during start-up ({status}); see {}",
                    log.display()
                )
                .into());
            }
            if let Ok((200, _)) = request(addr, Method::GET, "/healthz", Bytes::new()).await {
                break;
            }
            if Instant::now() > deadline {
                return Err(
                    format!("the server did not become healthy; see {}", log.display()).into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Server { child, addr, log })
    }

    /// Peak resident set size so far (VmHWM), MiB.
    pub(in crate::bench) fn peak_rss_mib(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// `kill -9` (no graceful shutdown), then reap.
    pub(in crate::bench) async fn kill9(mut self) -> Res<()> {
        self.child.kill().await?; // SIGKILL
        Ok(())
    }

    /// SIGTERM, then wait (graceful shutdown); SIGKILL after a timeout.
    pub(in crate::bench) async fn stop(mut self) {
        if let Some(pid) = self
            .child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(Ok(status)) if !status.success() => {
                eprintln!(
                    "   warning: the server exited with {status}; see {}",
                    self.log.display()
                )
            }
            Ok(_) => {}
            Err(_) => {
                eprintln!("   warning: the server did not stop in time; killed");
                let _ = self.child.kill().await;
            }
        }
    }
}
