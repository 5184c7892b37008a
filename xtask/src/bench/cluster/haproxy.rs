//! The load balancer: Debian's `haproxy` (installed with apt-get when
//! missing and running as root), its configuration generated into a temp
//! directory, run in the foreground as a child, and its per-server
//! counters read from the CSV stats page.

use super::Res;
use crate::support::{free_port, TempDir};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The `haproxy` binary, installing the Debian package when it is missing.
pub(super) fn ensure_installed() -> Res<PathBuf> {
    if let Some(p) = which("haproxy") {
        return Ok(p);
    }
    if !rustix::process::geteuid().is_root() {
        return Err("haproxy is missing and this is not root: `apt-get install -y haproxy`".into());
    }
    println!("haproxy missing: apt-get install -y haproxy");
    let install = || {
        std::process::Command::new("apt-get")
            .args(["install", "-y", "-qq", "haproxy"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    if !install()?.success() {
        std::process::Command::new("apt-get")
            .args(["update", "-qq"])
            .status()?;
        if !install()?.success() {
            return Err("apt-get install haproxy failed".into());
        }
    }
    which("haproxy").ok_or_else(|| "haproxy still missing after apt-get".into())
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The configuration: round robin over `servers`, health check on
/// `/readyz`, retries of connection failures only, redispatch to another
/// server on retry, and a CSV stats page.
pub(super) fn config(front: SocketAddr, stats: SocketAddr, servers: &[SocketAddr]) -> String {
    let mut c = format!(
        "global\n\
        \x20   maxconn 9000\n\
        defaults\n\
        \x20   mode http\n\
        \x20   timeout connect 2s\n\
        \x20   timeout client 60s\n\
        \x20   timeout server 60s\n\
        \x20   timeout http-keep-alive 60s\n\
        \x20   timeout check 3s\n\
        \x20   retries 3\n\
        \x20   retry-on conn-failure\n\
        \x20   option redispatch 1\n\
        frontend fe\n\
        \x20   bind {front}\n\
        \x20   maxconn 9000\n\
        \x20   default_backend prompter\n\
        backend prompter\n\
        \x20   balance roundrobin\n\
        \x20   option httpchk GET /readyz\n\
        \x20   http-check expect status 200\n\
        \x20   default-server check inter 500ms fall 3 rise 1 maxconn 5000\n"
    );
    for (i, s) in servers.iter().enumerate() {
        c.push_str(&format!("    server i{i} {s}\n"));
    }
    c.push_str(&format!(
        "listen stats\n    bind {stats}\n    stats enable\n    stats uri /stats\n"
    ));
    c
}

/// One server line of the stats page.
#[derive(Debug, Clone, Default)]
pub(super) struct ServerStats {
    pub(super) name: String,
    pub(super) status: String,
    /// Connection retries (`wretr`).
    pub(super) retries: u64,
    /// Redispatches to another server (`wredis`).
    pub(super) redispatches: u64,
    /// 5xx answers by this server or by haproxy for it (`hrsp_5xx`).
    pub(super) http_5xx: u64,
}

/// A running haproxy (killed when dropped).
pub(super) struct Haproxy {
    child: tokio::process::Child,
    /// The frontend.
    pub(super) addr: SocketAddr,
    stats: SocketAddr,
    _dir: TempDir,
}

impl Haproxy {
    /// Writes the configuration, checks it (`haproxy -c`), starts haproxy
    /// in the foreground and waits until every server is UP.
    pub(super) async fn start(bin: &PathBuf, servers: &[SocketAddr]) -> Res<Haproxy> {
        let dir = TempDir::new("bench-haproxy", false)?;
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let stats: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let cfg = dir.path.join("haproxy.cfg");
        std::fs::write(&cfg, config(addr, stats, servers))?;
        let check = tokio::process::Command::new(bin)
            .arg("-c")
            .arg("-q")
            .arg("-f")
            .arg(&cfg)
            .status()
            .await?;
        if !check.success() {
            return Err(format!("haproxy -c rejected {}", cfg.display()).into());
        }
        let log = dir.path.join("haproxy.log");
        let out = std::fs::File::create(&log)?;
        let child = tokio::process::Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting haproxy: {e}"))?;
        let mut h = Haproxy {
            child,
            addr,
            stats,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = h.child.try_wait()? {
                return Err(
                    format!("haproxy exited ({s}): {}", crate::support::tail(&log, 20)).into(),
                );
            }
            if let Ok(st) = h.stats().await {
                if st.len() == servers.len() && st.iter().all(|s| s.status == "UP") {
                    return Ok(h);
                }
            }
            if Instant::now() > deadline {
                return Err("haproxy: not every server UP within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server lines of the stats page.
    pub(super) async fn stats(&self) -> Res<Vec<ServerStats>> {
        let (status, body) = crate::client::request(
            self.stats,
            hyper::Method::GET,
            "/stats;csv",
            hyper::body::Bytes::new(),
        )
        .await?;
        if status != 200 {
            return Err(format!("haproxy stats: {status}").into());
        }
        Ok(parse_stats(&String::from_utf8_lossy(&body)))
    }

    /// Stops haproxy.
    pub(super) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The backend's server lines of haproxy's CSV stats.
fn parse_stats(csv: &str) -> Vec<ServerStats> {
    let mut lines = csv.lines();
    let Some(head) = lines.next() else {
        return Vec::new();
    };
    let cols: Vec<&str> = head.trim_start_matches("# ").split(',').collect();
    let idx = |n: &str| cols.iter().position(|c| *c == n);
    let (Some(px), Some(sv), Some(st), Some(re), Some(rd), Some(h5)) = (
        idx("pxname"),
        idx("svname"),
        idx("status"),
        idx("wretr"),
        idx("wredis"),
        idx("hrsp_5xx"),
    ) else {
        return Vec::new();
    };
    let num = |f: &[&str], i: usize| f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| {
            f.get(px) == Some(&"prompter") && !matches!(f.get(sv), Some(&"BACKEND" | &"FRONTEND"))
        })
        .map(|f| ServerStats {
            name: f[sv].to_owned(),
            status: f.get(st).copied().unwrap_or_default().to_owned(),
            retries: num(&f, re),
            redispatches: num(&f, rd),
            http_5xx: num(&f, h5),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_balances_round_robin_with_checks_and_conn_failure_retries() {
        let a = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let c = config(a(1), a(2), &[a(10), a(11), a(12)]);
        for want in [
            "balance roundrobin",
            "retry-on conn-failure",
            "option redispatch",
            "option httpchk GET /readyz",
            "server i0 127.0.0.1:10\n",
            "server i2 127.0.0.1:12\n",
            "bind 127.0.0.1:1\n",
        ] {
            assert!(c.contains(want), "{want:?} missing in\n{c}");
        }
    }

    #[test]
    fn stats_csv_yields_the_backend_servers() {
        let csv = "# pxname,svname,qcur,wretr,wredis,status,hrsp_5xx,\n\
            fe,FRONTEND,0,,,OPEN,3,\n\
            prompter,i0,0,2,1,UP,0,\n\
            prompter,i1,0,0,0,DOWN,4,\n\
            prompter,BACKEND,0,2,1,UP,4,\n";
        let s = parse_stats(csv);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].name.as_str(), s[0].retries, s[0].redispatches),
            ("i0", 2, 1)
        );
        assert_eq!((s[1].status.as_str(), s[1].http_5xx), ("DOWN", 4));
    }
}
