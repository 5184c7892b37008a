//! The shared harness for what the suite runs beside the in-process server
//! (`helpers::spawn*`): free ports, polling waits, a private `redis-server`
//! (never the machine's shared one) and `prompter serve` as a child process.
//!
//! `TEST_LOG=1` shows the servers' logs on stderr: the in-process servers
//! install the binary's own log subscriber ([`init_test_log`], called by
//! `helpers::spawn_on`), and child processes inherit stderr instead of
//! writing to their log file.

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `TEST_LOG` asks for server logs (set, and neither empty nor `0`).
pub fn test_log() -> bool {
    std::env::var_os("TEST_LOG").is_some_and(|v| !v.is_empty() && v != "0")
}

/// With `TEST_LOG=1`: the `prompter` log subscriber (pretty, `RUST_LOG` or
/// `info`), installed once for the test binary.
pub fn init_test_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if test_log() {
        ONCE.call_once(|| {
            prompter_api::telemetry::init_logging(prompter_api::config::LogFormat::Pretty)
        });
    }
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` every 50 ms until it holds; panics naming `what` after
/// `within`. Returns how long it took.
pub async fn wait_for<F, Fut>(what: &str, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// Waits until something accepts connections on the loopback `port`.
pub async fn wait_port(port: u16) {
    wait_for(
        &format!("a listener on port {port}"),
        Duration::from_secs(10),
        || async move { std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() },
    )
    .await;
}

/// A private `redis-server` on a free loopback port, without persistence;
/// killed when dropped. [`PrivateRedis::stop`] and [`PrivateRedis::restart`]
/// make outages on the same port.
pub struct PrivateRedis {
    /// Its port.
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one and waits until it accepts connections; `None` (with a
    /// skip line) when `redis-server` is not installed.
    pub async fn start() -> Option<PrivateRedis> {
        let port = free_port();
        let child = spawn_redis(port)
            .map_err(|e| {
                crate::helpers::skip(&format!(
                    "redis-server not available ({e}): private-Redis test skipped"
                ))
            })
            .ok()?;
        wait_port(port).await;
        Some(PrivateRedis {
            port,
            child: Some(child),
        })
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (an outage); the port stays reserved for [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and waits until it accepts connections.
    pub async fn restart(&mut self) {
        self.stop();
        self.child = Some(spawn_redis(self.port).expect("restart redis-server"));
        wait_port(self.port).await;
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_redis(port: u16) -> std::io::Result<Child> {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(if test_log() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
}

/// `prompter serve` as a child process of the binary under test, on a free
/// port with `--migrate` and two workers; killed when dropped. Its log goes
/// to a temp file (stderr with `TEST_LOG=1`), shown when it fails to start.
pub struct ServerProcess {
    /// The process (for `kill -9` and SIGTERM scenarios).
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts it on `db_url` with `extra` flags; waits for `/readyz` 200.
    pub async fn start(db_url: &str, extra: &[&str]) -> ServerProcess {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let stderr = if test_log() {
            Stdio::inherit()
        } else {
            Stdio::from(std::fs::File::create(&log).unwrap())
        };
        let child = Command::new(env!("CARGO_BIN_EXE_prompter"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .args(["--database-url", db_url, "--migrate", "--workers", "2"])
            .args(extra)
            .env_remove("PROMPTER_AUTH")
            .env("RUST_LOG", if test_log() { "info" } else { "warn" })
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn prompter");
        let server = ServerProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", server.base)).send().await {
                if r.status().is_success() {
                    return server;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "prompter did not become ready: {}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
