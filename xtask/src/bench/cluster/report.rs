//! The cluster report: the table on stdout, `target/bench/cluster.json`,
//! the generated section of `docs/benchmarks.md` and a one-line summary.

use super::{loadavg, Measured, TOPOLOGIES};
use crate::bench::http::report::git_describe;
use crate::bench::http::Plan;
use chrono::Utc;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// The numbers of one run with their context.
#[derive(Debug)]
pub(super) struct Report<'a> {
    plan: &'a Plan,
    m: &'a Measured,
    pool: u32,
    events: usize,
    git: String,
    when: String,
    load: String,
}

impl<'a> Report<'a> {
    pub(super) fn new(plan: &'a Plan, m: &'a Measured, pool: u32, events: usize) -> Report<'a> {
        Report {
            plan,
            m,
            pool,
            events,
            git: git_describe(),
            when: Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            load: loadavg(),
        }
    }

    /// req/s of `scenario` in topology `t`.
    fn rps(&self, i: usize, t: usize) -> f64 {
        self.m.throughput[i].runs.get(t).map_or(f64::NAN, |r| r.rps)
    }

    fn throughput_rows(&self) -> Vec<[String; 9]> {
        let mut rows = Vec::new();
        for (i, s) in self.m.throughput.iter().enumerate() {
            for (t, r) in s.runs.iter().enumerate() {
                let ratio = if t == 0 {
                    String::new()
                } else {
                    format!("{:.2}", self.rps(i, t) / self.rps(i, 0))
                };
                rows.push([
                    s.name.clone(),
                    TOPOLOGIES[t].to_owned(),
                    r.connections.to_string(),
                    format!("{:.0}", r.rps),
                    ratio,
                    format!("{:.2}", r.p50_ms),
                    format!("{:.2}", r.p99_ms),
                    (r.unexpected).to_string(),
                    r.peak_rss_mib.map_or("?".into(), |v| format!("{v:.1}")),
                ]);
            }
        }
        rows
    }

    fn checks(&self) -> Vec<[String; 3]> {
        let mut c = Vec::new();
        if let Some(p) = self.m.probes {
            c.push([
                format!(
                    "probes for a {}-way ensure burst over 3 instances",
                    self.plan.burst
                ),
                p.to_string(),
                "1".into(),
            ]);
        }
        if let Some((events, deliveries, twice, never)) = self.m.webhooks {
            c.push([
                format!("webhook deliveries per event ({events} drift events, 3 instances)"),
                format!(
                    "{:.2} ({deliveries} deliveries; {twice} twice, {never} never)",
                    deliveries as f64 / events.max(1) as f64
                ),
                "1".into(),
            ]);
        }
        if let Some(k) = &self.m.kill {
            c.push([
                format!(
                    "kill -9 of 1 of 3 under keyed `run` load ({} connections, killed after {:.1} s)",
                    k.connections, k.killed_after_s
                ),
                format!(
                    "runs {} · sent {} · 200 {} · 5xx {} {:?} · no answer {} · unresolved {} ({} held `in_flight`) · lost {} · duplicated {} · haproxy retries {} / redispatches {}",
                    k.keys, k.sent, k.acked, k.five_xx_total(), k.five_xx, k.transport_errors,
                    k.unresolved, k.unresolved_in_flight, k.lost, k.duplicated,
                    k.haproxy_retries, k.haproxy_redispatches
                ),
                "0 lost, 0 duplicated".into(),
            ]);
        }
        c
    }

    /// The table for stdout.
    pub(super) fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{:<14} {:<12} {:>6} {:>9} {:>7} {:>9} {:>9} {:>6} {:>9}",
            "scenario", "topology", "conns", "req/s", "÷ 1", "p50 ms", "p99 ms", "bad", "RSS MiB"
        );
        for r in self.throughput_rows() {
            let _ = writeln!(
                t,
                "{:<14} {:<12} {:>6} {:>9} {:>7} {:>9} {:>9} {:>6} {:>9}",
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]
            );
        }
        for c in self.checks() {
            let _ = writeln!(t, "{}: {} (want {})", c[0], c[1], c[2]);
        }
        let _ = writeln!(t, "load average at the end: {}", self.load);
        t
    }

    /// One line for a quick read of a run.
    pub(super) fn one_line(&self) -> String {
        let mut s = String::from("RESULT bench cluster:");
        for (i, t) in self.m.throughput.iter().enumerate() {
            let _ = write!(s, " {} 3/1 {:.2};", t.name, self.rps(i, 2) / self.rps(i, 0));
        }
        if let Some(p) = self.m.probes {
            let _ = write!(s, " probes {p};");
        }
        if let Some((e, d, _, _)) = self.m.webhooks {
            let _ = write!(s, " deliveries/event {:.2};", d as f64 / e.max(1) as f64);
        }
        if let Some(k) = &self.m.kill {
            let _ = write!(
                s,
                " kill -9: sent {} 5xx {} lost {} duplicated {};",
                k.sent,
                k.five_xx_total(),
                k.lost,
                k.duplicated
            );
        }
        let _ = write!(s, " loadavg {}", self.load);
        s
    }

    /// The generated section of docs/benchmarks.md.
    pub(super) fn markdown(&self) -> String {
        let p = self.plan;
        let mut md = format!(
            "Generated by `cargo xtask bench cluster` at {} on `{}` (2 cores shared with the load generator, haproxy, PostgreSQL and Redis; load average {} at the end; {}s per scenario after {}s warm-up; `--db-max-connections {}` per instance). `÷ 1` is req/s over the same scenario against one instance without the balancer.\n\n",
            self.when, self.git, self.load, p.seconds, p.warmup, self.pool
        );
        md.push_str("| scenario | topology | conns | req/s | ÷ 1 | p50 ms | p99 ms | bad answers | RSS MiB (sum) |\n|---|---|---|---|---|---|---|---|---|\n");
        for r in self.throughput_rows() {
            let _ = writeln!(md, "| {} |", r.join(" | "));
        }
        md.push_str("\n| check | measured | want |\n|---|---|---|\n");
        for c in self.checks() {
            let _ = writeln!(md, "| {} |", c.join(" | "));
        }
        let _ = writeln!(md, "\n({} drift events in the webhook phase.)", self.events);
        md
    }

    /// The JSON document.
    pub(super) fn json(&self) -> Value {
        let tp: Vec<Value> = self
            .m
            .throughput
            .iter()
            .map(|t| {
                json!({
                    "scenario": t.name,
                    "runs": t.runs.iter().enumerate().map(|(i, r)| json!({
                        "topology": TOPOLOGIES[i],
                        "connections": r.connections,
                        "stub_latency_ms": r.stub_latency_ms,
                        "rps": r.rps,
                        "p50_ms": r.p50_ms,
                        "p99_ms": r.p99_ms,
                        "unexpected": r.unexpected,
                        "statuses": r.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                        "peak_rss_mib_sum": r.peak_rss_mib,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let kill = self.m.kill.as_ref().map(|k| {
            json!({
                "connections": k.connections, "runs": k.keys, "sent": k.sent, "acked": k.acked,
                "five_xx": k.five_xx_total(), "transport_errors": k.transport_errors,
                "unresolved": k.unresolved, "unresolved_in_flight": k.unresolved_in_flight,
                "lost": k.lost, "duplicated": k.duplicated,
                "haproxy_retries": k.haproxy_retries, "haproxy_redispatches": k.haproxy_redispatches,
            })
        });
        json!({
            "git": self.git,
            "when": self.when,
            "loadavg": self.load,
            "quick": self.plan.quick,
            "throughput": tp,
            "probes": self.m.probes,
            "webhooks": self.m.webhooks.map(|(e, d, t, n)| json!({"events": e, "deliveries": d, "twice": t, "never": n})),
            "kill": kill,
        })
    }
}
