//! The programs the check runs: Prometheus (installed from Debian's package
//! when missing, configured to scrape the instances) and `prompter migrate up`.

use super::section;
use crate::support::run_checked;
use std::path::Path;
use std::process::Command;

/// Applies the migrations to the temp database: `prompter migrate up` when
/// the binary has that subcommand (the server does not migrate by itself in
/// production mode).
pub(super) fn migrate(bin: &Path, db_url: &str, tmp: &Path) -> Result<(), String> {
    let log = tmp.join("migrate.log");
    let out = Command::new(bin)
        .args(["migrate", "up", "--database-url", db_url])
        .output()
        .map_err(|e| format!("prompter migrate up: {e}"))?;
    let _ = std::fs::write(&log, [&out.stdout[..], &out.stderr[..]].concat());
    if out.status.success() {
        println!("  migrated {db_url}");
        Ok(())
    } else {
        Err(format!(
            "prompter migrate up failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

pub(super) fn prometheus_config(targets: &[String], rules: &Path) -> String {
    let targets: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "# written by cargo xtask check-dashboards\n\
         global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules:?}\n\
         scrape_configs:\n  - job_name: prompter\n    metrics_path: /metrics\n    \
         static_configs:\n      - targets: [{targets}]\n",
        rules = rules.display().to_string(),
        targets = targets.join(", "),
    )
}

/// Makes sure `promtool` and `prometheus` are on PATH, installing Debian's
/// `prometheus` package if not. The package's own service is not started:
/// a temporary `policy-rc.d` (only if none exists) and `RUNLEVEL=1` keep
/// invoke-rc.d from starting it, so nothing scrapes anything but our own
/// Prometheus, and nothing already running is touched.
pub(super) fn ensure_prometheus(skip_install: bool) -> Result<(), String> {
    if on_path("promtool") && on_path("prometheus") {
        return Ok(());
    }
    if skip_install {
        return Err("promtool/prometheus not found (install Debian's `prometheus` package)".into());
    }
    section("install prometheus (Debian package)");
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if uid != "0" {
        return Err(
            "promtool/prometheus missing and not root: run `apt-get install prometheus`".into(),
        );
    }
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let created_policy = if policy.exists() {
        false
    } else {
        std::fs::write(
            policy,
            "#!/bin/sh\n# temporary, cargo xtask check-dashboards\nexit 101\n",
        )
        .map_err(|e| format!("writing {}: {e}", policy.display()))?;
        let _ = Command::new("chmod").arg("755").arg(policy).status();
        true
    };
    let result = (|| {
        run_checked(
            Command::new("apt-get").args(["update", "-qq"]),
            "apt-get update",
        )?;
        run_checked(
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "prometheus",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .env("RUNLEVEL", "1"),
            "apt-get install prometheus",
        )
    })();
    if created_policy {
        let _ = std::fs::remove_file(policy);
    }
    result?;
    if on_path("promtool") && on_path("prometheus") {
        Ok(())
    } else {
        Err("the prometheus package did not provide promtool and prometheus".into())
    }
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}
