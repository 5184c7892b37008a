//! Small helpers shared by the subcommands that build and start things:
//! paths, free ports, temp directories, log tails, checked commands, the
//! cargo build step and the child-process guard.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A free loopback port (bound, then released).
pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("reading the free port: {e}"))
}

/// The workspace root (xtask's parent directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the root when
/// relative), else `<root>/target`.
pub fn target_dir() -> PathBuf {
    let root = workspace_root();
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

/// The last `n` lines of a text file (empty when unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A temp directory removed on drop unless `keep`.
pub struct TempDir {
    /// Its path.
    pub path: PathBuf,
    keep: bool,
}

impl TempDir {
    /// Creates `<tmp>/<prefix>-<pid>-<nanos>`.
    pub fn new(prefix: &str, keep: bool) -> Result<TempDir, String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TempDir { path, keep })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            println!("== kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Runs `cmd` (echoed as `$ what`); a non-zero exit is an error naming `what`.
pub fn run_checked(cmd: &mut Command, what: &str) -> Result<(), String> {
    println!("  $ {what}");
    let status = cmd.status().map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// The `cargo` that runs this xtask (`$CARGO`), else `cargo` from PATH.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// The build step: `cargo build [--release] -p <package>…` in the workspace root.
pub fn cargo_build(packages: &[&str], release: bool) -> Result<(), String> {
    let mut cmd = cargo();
    cmd.arg("build");
    if release {
        cmd.arg("--release");
    }
    for p in packages {
        cmd.args(["-p", p]);
    }
    let what = format!(
        "cargo build{} -p {}",
        if release { " --release" } else { "" },
        packages.join(" -p ")
    );
    run_checked(&mut cmd, &what)
}

/// `target/debug/prompter` after building it, or `bin` when given.
pub fn prompter_bin(bin: Option<&Path>) -> Result<PathBuf, String> {
    let bin = match bin {
        Some(b) => b.to_path_buf(),
        None => {
            cargo_build(&["prompter-api"], false)?;
            target_dir().join("debug/prompter")
        }
    };
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("{} not found", bin.display()))
    }
}

/// A child process with its output in a log file, killed and reaped when
/// dropped (every path out of a task, errors and panics included).
pub struct Proc {
    /// What it is, for messages.
    pub name: String,
    /// The process.
    pub child: Child,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdin closed and stdout/stderr to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<Proc, String> {
        let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        println!(
            "  started {name} (pid {}), log {}",
            child.id(),
            log.display()
        );
        Ok(Proc {
            name: name.to_owned(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// Errors (with the log's tail) if the process has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited early ({status}); last log lines:\n{}",
                self.name,
                tail(&self.log, 30)
            )),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }

    /// Polls `GET` on each of `paths` at `addr` until one answers 200.
    pub fn wait_http_ok(&mut self, addr: &str, paths: &[&str], secs: u64) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            self.check_alive()?;
            for path in paths {
                if crate::client::get(addr, path).is_ok_and(|r| r.status == 200) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not answer 200 on {paths:?} within {secs}s; last log lines:\n{}",
                    self.name,
                    tail(&self.log, 30)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        println!("  stopped {} (pid {})", self.name, self.child.id());
    }
}
