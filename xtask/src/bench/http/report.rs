//! The report: targets as same-run ratios, the table on stdout,
//! `target/bench/http.json` and the generated section of `docs/benchmarks.md`.

use super::backend::BackendReport;
use super::{
    Plan, Res, TARGET_CREATE_VS_RAW, TARGET_LLM_MANY_RSS_MIB, TARGET_LLM_RSS_MIB,
    TARGET_LLM_THROUGHPUT, TARGET_READ_GROWTH,
};
use crate::support::workspace_root;
use chrono::Utc;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug)]
struct Target {
    backend: String,
    name: &'static str,
    measured: String,
    limit: String,
    ratio: f64,
    pass: bool,
}

/// Every backend's numbers and the targets computed from them.
#[derive(Debug)]
pub(super) struct Report {
    plan: Plan,
    backends: Vec<BackendReport>,
    targets: Vec<Target>,
    git: String,
    when: String,
}

impl Report {
    /// Computes the targets.
    pub(super) fn new(plan: &Plan, backends: Vec<BackendReport>) -> Report {
        let mut targets = Vec::new();
        for b in &backends {
            let find = |n: &str| b.scenarios.iter().find(|s| s.name == n);
            let llm = [
                (
                    "run_llm",
                    TARGET_LLM_RSS_MIB,
                    [
                        "run_llm throughput / (connections / latency)",
                        "run_llm errors (non-2xx + transport)",
                        "run_llm server peak RSS / 100 MiB",
                    ],
                ),
                (
                    "run_llm_3k",
                    TARGET_LLM_MANY_RSS_MIB,
                    [
                        "run_llm_3k throughput / (connections / latency)",
                        "run_llm_3k errors (non-2xx + transport)",
                        "run_llm_3k server peak RSS / 128 MiB",
                    ],
                ),
            ];
            for (scenario, rss_limit, [tp_name, err_name, rss_name]) in llm {
                let Some(s) = find(scenario) else { continue };
                let limit = s.connections as f64 / (s.stub_latency_ms as f64 / 1000.0);
                let ratio = s.rps / limit;
                targets.push(Target {
                    backend: b.backend.clone(),
                    name: tp_name,
                    measured: format!("{:.0} runs/s", s.rps),
                    limit: format!(">= {:.0}% of {limit:.0}/s", TARGET_LLM_THROUGHPUT * 100.0),
                    ratio,
                    pass: ratio >= TARGET_LLM_THROUGHPUT,
                });
                let errs = s.non2xx + s.errors;
                targets.push(Target {
                    backend: b.backend.clone(),
                    name: err_name,
                    measured: errs.to_string(),
                    limit: "0".into(),
                    ratio: errs as f64,
                    pass: errs == 0,
                });
                let rss = s.peak_rss_mib.unwrap_or(f64::NAN);
                targets.push(Target {
                    backend: b.backend.clone(),
                    name: rss_name,
                    measured: format!("{rss:.1} MiB"),
                    limit: "<= 1.00".into(),
                    ratio: rss / rss_limit,
                    pass: rss <= rss_limit,
                });
            }
            if let (Some(s), Some(raw)) = (find("create_unique"), &b.raw_create) {
                let ratio = s.requests as f64 / s.seconds / raw.rps();
                targets.push(Target {
                    backend: b.backend.clone(),
                    name: "create_unique / raw sqlx inserts",
                    measured: format!(
                        "{:.0} vs {:.0} /s",
                        s.requests as f64 / s.seconds,
                        raw.rps()
                    ),
                    limit: format!(">= {TARGET_CREATE_VS_RAW:.2}"),
                    ratio,
                    pass: ratio >= TARGET_CREATE_VS_RAW,
                });
            }
            let small = format!("{}k", plan.small_rows / 1000);
            let large = format!("{}k", plan.large_rows / 1000);
            for (what, small_name, large_name) in [
                ("list", format!("list_{small}"), format!("list_{large}")),
                ("results", format!("results_{small}"), "results".to_owned()),
            ] {
                if let (Some(a), Some(z)) = (find(&small_name), find(&large_name)) {
                    let ratio = z.p50_ms / a.p50_ms;
                    targets.push(Target {
                        backend: b.backend.clone(),
                        name: if what == "list" {
                            "list first page p50: large / small"
                        } else {
                            "results first page p50: large / small"
                        },
                        measured: format!(
                            "{:.2} ms @{large} vs {:.2} ms @{small}",
                            z.p50_ms, a.p50_ms
                        ),
                        limit: format!("<= {TARGET_READ_GROWTH:.1}"),
                        ratio,
                        pass: ratio <= TARGET_READ_GROWTH,
                    });
                }
            }
            if let (Some(a), Some(z)) = (find(&format!("usage_{small}")), find("usage")) {
                let ratio = z.p50_ms / a.p50_ms;
                let n = plan.usage_rows;
                let many = if n >= 1_000_000 && n % 1_000_000 == 0 {
                    format!("{}M", n / 1_000_000)
                } else {
                    format!("{}k", n / 1000)
                };
                targets.push(Target {
                    backend: b.backend.clone(),
                    name: "usage p50: results large / small",
                    measured: format!("{:.2} ms @{many} vs {:.2} ms @{small}", z.p50_ms, a.p50_ms),
                    limit: format!("<= {TARGET_READ_GROWTH:.1}"),
                    ratio,
                    pass: ratio <= TARGET_READ_GROWTH,
                });
            }
            // Fetch by label (and its 304) at least as fast as check-duplicate.
            if let Some(dup) = find("check_dup") {
                for (name, what) in [
                    ("fetch_label", "fetch_label rps / check_dup rps"),
                    ("fetch_label_304", "fetch_label_304 rps / check_dup rps"),
                ] {
                    if let Some(f) = find(name) {
                        let ratio = f.rps / dup.rps;
                        targets.push(Target {
                            backend: b.backend.clone(),
                            name: what,
                            measured: format!("{:.0} vs {:.0} /s", f.rps, dup.rps),
                            limit: ">= 1.00".into(),
                            ratio,
                            pass: ratio >= 1.0,
                        });
                    }
                }
            }
            if let Some(n) = b.probe_burst {
                targets.push(Target {
                    backend: b.backend.clone(),
                    name: "probes for a 50-way ensure burst",
                    measured: n.to_string(),
                    limit: "1".into(),
                    ratio: n as f64,
                    pass: n == 1,
                });
            }
        }
        let git = git_describe();
        Report {
            plan: plan.clone(),
            backends,
            targets,
            git,
            when: Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }

    fn scenario_rows(&self) -> Vec<[String; 11]> {
        let mut rows = Vec::new();
        for b in &self.backends {
            for s in &b.scenarios {
                rows.push([
                    b.backend.clone(),
                    s.name.clone(),
                    s.connections.to_string(),
                    format!("{:.0}", s.rps),
                    format!("{:.2}", s.p50_ms),
                    format!("{:.2}", s.p99_ms),
                    format!("{:.1}", s.max_ms),
                    s.non2xx.to_string(),
                    s.conflicts.to_string(),
                    s.errors.to_string(),
                    s.peak_rss_mib
                        .map(|m| format!("{m:.1}"))
                        .unwrap_or_else(|| "?".into()),
                ]);
            }
            if let Some(raw) = &b.raw_create {
                rows.push([
                    b.backend.clone(),
                    "(raw sqlx insert)".into(),
                    self.plan.connections.to_string(),
                    format!("{:.0}", raw.rps()),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    raw.errors.to_string(),
                    "".into(),
                ]);
            }
        }
        rows
    }

    const HEADERS: [&'static str; 11] = [
        "backend", "scenario", "conns", "req/s", "p50 ms", "p99 ms", "max ms", "non-2xx", "409",
        "errors", "RSS MiB",
    ];

    pub(super) fn table(&self) -> String {
        let rows = self.scenario_rows();
        let mut w: Vec<usize> = Self::HEADERS.iter().map(|h| h.len()).collect();
        for r in &rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.len());
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            for (i, c) in cells.iter().enumerate() {
                if i < 2 {
                    let _ = write!(out, "{:<width$}  ", c, width = w[i]);
                } else {
                    let _ = write!(out, "{:>width$}  ", c, width = w[i]);
                }
            }
            out.push('\n');
        };
        line(&Self::HEADERS.map(String::from), &mut out);
        for r in &rows {
            line(r, &mut out);
        }
        out.push_str("\ntargets (ratios from this run):\n");
        for t in &self.targets {
            let _ = writeln!(
                out,
                "  {:<4}  {:<15} {:<42} ratio {:>7.3}  ({}; want {})",
                if t.pass { "PASS" } else { "FAIL" },
                t.backend,
                t.name,
                t.ratio,
                t.measured,
                t.limit
            );
        }
        out
    }

    pub(super) fn markdown(&self) -> String {
        let mut md = String::new();
        let p = &self.plan;
        let _ = writeln!(
            md,
            "Generated by `cargo xtask bench http` at {} on `{}` ({} cores, shared; {}s per scenario after {}s warm-up; \
             {} connections, run_llm {} at {} ms stub latency). Absolute numbers are noisy; the targets are ratios from this one run.\n",
            self.when,
            self.git,
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            p.seconds,
            p.warmup,
            p.connections,
            p.llm_connections,
            p.llm_latency_ms
        );
        let _ = writeln!(md, "| {} |", Self::HEADERS.join(" | "));
        let _ = writeln!(md, "|{}", "---|".repeat(Self::HEADERS.len()));
        for r in self.scenario_rows() {
            let _ = writeln!(md, "| {} |", r.join(" | "));
        }
        let _ = writeln!(
            md,
            "\n| target | backend | measured | want | ratio | |\n|---|---|---|---|---|---|"
        );
        for t in &self.targets {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.3} | {} |",
                t.name,
                t.backend,
                t.measured,
                t.limit,
                t.ratio,
                if t.pass { "PASS" } else { "FAIL" }
            );
        }
        md
    }

    pub(super) fn json(&self) -> Value {
        let p = &self.plan;
        json!({
            "generated_at": self.when,
            "git": self.git,
            "quick": p.quick,
            "seconds": p.seconds,
            "warmup": p.warmup,
            "connections": p.connections,
            "llm_connections": p.llm_connections,
            "llm_latency_ms": p.llm_latency_ms,
            "rows": {"small": p.small_rows, "mid": p.mid_rows, "large": p.large_rows, "usage_results": p.usage_rows},
            "backends": self.backends.iter().map(|b| json!({
                "backend": b.backend,
                "seed_seconds": b.seed_seconds,
                "usage_plan": b.usage_plan,
                "probe_burst_probes": b.probe_burst,
                "raw_create": b.raw_create.as_ref().map(|r| json!({
                    "ops": r.ops, "seconds": r.seconds, "per_second": r.rps(), "errors": r.errors,
                })),
                "scenarios": b.scenarios.iter().map(|s| json!({
                    "name": s.name,
                    "connections": s.connections,
                    "stub_latency_ms": s.stub_latency_ms,
                    "seconds": s.seconds,
                    "expected_status": s.expect,
                    "expected_answers": s.requests,
                    "requests_per_second": s.rps,
                    "p50_ms": s.p50_ms,
                    "p99_ms": s.p99_ms,
                    "max_ms": s.max_ms,
                    "mean_ms": s.mean_ms,
                    "non_2xx": s.non2xx,
                    "conflicts_409": s.conflicts,
                    "transport_errors": s.errors,
                    "statuses": s.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                    "server_peak_rss_mib": s.peak_rss_mib,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "targets": self.targets.iter().map(|t| json!({
                "backend": t.backend, "target": t.name, "measured": t.measured,
                "want": t.limit, "ratio": t.ratio, "pass": t.pass,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Replaces the generated section of `path` (creating the file if needed),
/// keeping everything else.
pub(super) fn write_docs(path: &Path, section: &str) -> Res<()> {
    replace_section(path, "cargo xtask bench http", section)
}

/// Replaces the text between `<!-- BEGIN generated by `<command>` -->` and its
/// END marker in `path` (appended under a `## `<command>`` heading when absent).
pub(in crate::bench) fn replace_section(path: &Path, command: &str, section: &str) -> Res<()> {
    let begin = format!("<!-- BEGIN generated by `{command}` -->");
    let end = format!("<!-- END generated by `{command}` -->");
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(a), Some(z)) if a < z => format!("{}{begin}\n{section}{}", &old[..a], &old[z..]),
        _ => format!("{old}\n## `{command}`\n\n{begin}\n{section}{end}\n"),
    };
    std::fs::write(path, new)?;
    Ok(())
}

/// `git describe --always --dirty` of the workspace (empty when unknown).
pub(in crate::bench) fn git_describe() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(workspace_root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_section_is_replaced_and_the_rest_kept() {
        let dir = std::env::temp_dir().join(format!("bench-docs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("b.md");
        let (begin, end) = (
            "<!-- BEGIN generated by `cargo xtask bench http` -->",
            "<!-- END generated by `cargo xtask bench http` -->",
        );
        std::fs::write(&p, format!("head\n{begin}\nold\n{end}\ntail\n")).unwrap();
        write_docs(&p, "new\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("head\n{begin}\nnew\n{end}\ntail\n")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
