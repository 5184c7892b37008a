//! The load: what each connection sends ([`Gen`]), opening connections,
//! the closed loop with its warm-up and measured window, one scenario's
//! numbers ([`ScenarioResult`]) and the probe burst.

use super::server::{Server, ServerCfg};
use super::{Plan, Res, ORG};
use crate::client::{connect, request, send, Req, Sender};
use hdrhistogram::Histogram;
use hyper::body::Bytes;
use hyper::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What each connection sends.
#[derive(Debug, Clone)]
pub(in crate::bench) enum Gen {
    /// The same request every time.
    Fixed {
        method: Method,
        path: String,
        body: Bytes,
        /// Extra request headers (e.g. `If-None-Match`).
        headers: Vec<(String, String)>,
    },
    /// A create in a new org (and workspace) every time.
    CreateUnique { tag: String },
}

impl Gen {
    /// The same GET every time.
    pub(super) fn get(path: &str) -> Gen {
        Gen::get_with(path, &[])
    }

    /// The same GET with extra headers every time.
    pub(super) fn get_with(path: &str, headers: &[(&str, &str)]) -> Gen {
        Gen::Fixed {
            method: Method::GET,
            path: path.to_owned(),
            body: Bytes::new(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// The same POST every time.
    pub(in crate::bench) fn post(path: &str, body: Bytes) -> Gen {
        Gen::Fixed {
            method: Method::POST,
            path: path.to_owned(),
            body,
            headers: Vec::new(),
        }
    }

    fn make(&self, conn: usize, seq: u64) -> (Method, &str, Bytes, &[(String, String)]) {
        match self {
            Gen::Fixed {
                method,
                path,
                body,
                headers,
            } => (method.clone(), path, body.clone(), headers),
            Gen::CreateUnique { tag } => (
                Method::POST,
                "/api/prompt-templates",
                create_body(&format!("org-{tag}-{conn}-{seq}"), "ws", "bench"),
                &[],
            ),
        }
    }
}

/// A create body (the same config for every org/workspace/name).
pub(in crate::bench) fn create_body(org: &str, ws: &str, name: &str) -> Bytes {
    Bytes::from(
        json!({
            "org_id": org,
            "workspace_id": ws,
            "name": name,
            "model_id": "gpt-4o",
            "system_instructions": "You are a helpful assistant.",
            "user_prompt_template": "Tell me about {{brand}} in {{country}}.",
            "country_set": ["DE", "GB", "US"],
            "inference_params": {"temperature": 0.7, "max_tokens": 256},
        })
        .to_string(),
    )
}

/// Statistics of one connection (merged afterwards).
#[derive(Debug)]
struct ConnStats {
    hist: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
}

impl ConnStats {
    fn new() -> ConnStats {
        ConnStats {
            hist: Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds"),
            statuses: BTreeMap::new(),
            errors: 0,
        }
    }

    fn merge(&mut self, o: ConnStats) {
        let _ = self.hist.add(&o.hist);
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        self.errors += o.errors;
    }
}

/// Opens `n` connections (32 at a time, so the accept queue never overflows).
pub(in crate::bench) async fn open_connections(addr: SocketAddr, n: usize) -> Res<Vec<Sender>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let batch = (n - out.len()).min(32);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..batch {
            set.spawn(connect(addr));
        }
        while let Some(r) = set.join_next().await {
            out.push(r??);
        }
    }
    Ok(out)
}

/// Closed loop on every connection: warm-up, then `seconds` measured
/// (a request counts when it completes inside the window).
async fn drive(
    addr: SocketAddr,
    senders: Vec<Sender>,
    gen: Arc<Gen>,
    warmup: f64,
    seconds: f64,
) -> ConnStats {
    let start = Instant::now();
    let window_start = start + Duration::from_secs_f64(warmup);
    let window_end = window_start + Duration::from_secs_f64(seconds);
    let mut set = tokio::task::JoinSet::new();
    for (conn, mut sender) in senders.into_iter().enumerate() {
        let gen = gen.clone();
        set.spawn(async move {
            let mut st = ConnStats::new();
            let mut seq = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= window_end {
                    break;
                }
                let (method, path, body, headers) = gen.make(conn, seq);
                seq += 1;
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let mut req = Req::json(&method, path);
                req.headers = &headers;
                let r = send(&mut sender, req, body).await;
                let t1 = Instant::now();
                let counted = t1 >= window_start && t1 <= window_end;
                match r {
                    Ok((status, _)) => {
                        if counted {
                            let us = (t1 - t0).as_micros().max(1) as u64;
                            st.hist.saturating_record(us);
                            *st.statuses.entry(status).or_default() += 1;
                        }
                    }
                    Err(_) => {
                        if counted {
                            st.errors += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        match connect(addr).await {
                            Ok(s) => sender = s,
                            Err(_) => continue,
                        }
                    }
                }
            }
            st
        });
    }
    let mut total = ConnStats::new();
    while let Some(r) = set.join_next().await {
        if let Ok(st) = r {
            total.merge(st);
        }
    }
    total
}

/// One scenario's numbers.
#[derive(Debug, Clone)]
pub(in crate::bench) struct ScenarioResult {
    pub(in crate::bench) name: String,
    pub(in crate::bench) connections: usize,
    pub(in crate::bench) stub_latency_ms: u64,
    pub(in crate::bench) seconds: f64,
    pub(in crate::bench) expect: u16,
    /// Answers with the expected status.
    pub(in crate::bench) requests: u64,
    /// Answers with another status, plus transport errors.
    pub(in crate::bench) unexpected: u64,
    pub(in crate::bench) non2xx: u64,
    pub(in crate::bench) conflicts: u64,
    pub(in crate::bench) errors: u64,
    pub(in crate::bench) statuses: BTreeMap<u16, u64>,
    pub(in crate::bench) rps: f64,
    pub(in crate::bench) p50_ms: f64,
    pub(in crate::bench) p99_ms: f64,
    pub(in crate::bench) max_ms: f64,
    pub(in crate::bench) mean_ms: f64,
    pub(in crate::bench) peak_rss_mib: Option<f64>,
    /// Latencies, µs (kept to merge rounds).
    hist: Histogram<u64>,
}

/// One scenario on a fresh server: open the connections, drive, stop.
pub(super) async fn scenario(
    plan: &Plan,
    cfg: &ServerCfg,
    name: &str,
    gen: Gen,
    connections: usize,
    stub_latency_ms: u64,
    expect: u16,
) -> Res<ScenarioResult> {
    let srv = Server::start(plan, cfg, stub_latency_ms).await?;
    let r = measure(
        plan,
        srv.addr,
        name,
        gen,
        connections,
        stub_latency_ms,
        expect,
    )
    .await;
    let rss = srv.peak_rss_mib();
    srv.stop().await;
    let mut r = r?;
    r.peak_rss_mib = rss;
    r.print();
    Ok(r)
}

/// One scenario against a running address (a server or a balancer): open
/// the connections, drive; `peak_rss_mib` is left for the caller.
pub(in crate::bench) async fn measure(
    plan: &Plan,
    addr: SocketAddr,
    name: &str,
    gen: Gen,
    connections: usize,
    stub_latency_ms: u64,
    expect: u16,
) -> Res<ScenarioResult> {
    let senders = open_connections(addr, connections).await?;
    let st = drive(addr, senders, Arc::new(gen), plan.warmup, plan.seconds).await;
    let total: u64 = st.statuses.values().sum();
    let expected = st.statuses.get(&expect).copied().unwrap_or(0);
    let ms = |q: f64| st.hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(ScenarioResult {
        name: name.to_owned(),
        connections,
        stub_latency_ms,
        seconds: plan.seconds,
        expect,
        requests: expected,
        unexpected: total - expected + st.errors,
        non2xx: st
            .statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(_, n)| n)
            .sum(),
        conflicts: st.statuses.get(&409).copied().unwrap_or(0),
        errors: st.errors,
        rps: total as f64 / plan.seconds,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        max_ms: st.hist.max() as f64 / 1000.0,
        mean_ms: st.hist.mean() / 1000.0,
        peak_rss_mib: None,
        statuses: st.statuses,
        hist: st.hist,
    })
}

impl ScenarioResult {
    /// The one progress line of a scenario.
    pub(in crate::bench) fn print(&self) {
        let r = self;
        println!(
            "   {:<14} {:>5} conns {:>9.0} req/s  p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  non-2xx {:>6}  409 {:>6}  errors {:>4}  rss {:>6.1} MiB",
            r.name,
            r.connections,
            r.rps,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.non2xx,
            r.conflicts,
            r.errors,
            r.peak_rss_mib.unwrap_or(f64::NAN)
        );
    }

    /// Adds another round of the same scenario.
    pub(super) fn merge(&mut self, o: ScenarioResult) {
        let _ = self.hist.add(&o.hist);
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        self.seconds += o.seconds;
        self.requests += o.requests;
        self.unexpected += o.unexpected;
        self.non2xx += o.non2xx;
        self.conflicts += o.conflicts;
        self.errors += o.errors;
        self.rps = self.statuses.values().sum::<u64>() as f64 / self.seconds;
        let ms = |q: f64| self.hist.value_at_quantile(q) as f64 / 1000.0;
        (self.p50_ms, self.p99_ms) = (ms(0.5), ms(0.99));
        self.max_ms = self.hist.max() as f64 / 1000.0;
        self.mean_ms = self.hist.mean() / 1000.0;
        self.peak_rss_mib = match (self.peak_rss_mib, o.peak_rss_mib) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// `plan.burst` concurrent ensure-version calls on a template no one probed
/// yet, on a fresh server; returns `prompter_probe_attempts_total` afterwards.
pub(super) async fn probe_burst(plan: &Plan, cfg: &ServerCfg) -> Res<u64> {
    let srv = Server::start(plan, cfg, 20).await?;
    let ws = format!("burst-{}", Uuid::new_v4().simple());
    let (status, body) = request(
        srv.addr,
        Method::POST,
        "/api/prompt-templates",
        create_body(ORG, &ws, "burst"),
    )
    .await?;
    if status != 201 {
        srv.stop().await;
        return Err(format!(
            "burst template: {status} {}",
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    let id = serde_json::from_slice::<Value>(&body)?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/api/prompt-templates/{id}/ensure-version");
    let ensure = Bytes::from(json!({"workspace_id": ws, "org_id": ORG}).to_string());
    let burst = ensure_burst(&[srv.addr], plan.burst, &path, ensure).await;
    if let Err(e) = burst {
        srv.stop().await;
        return Err(e);
    }
    let (_, metrics) = request(srv.addr, Method::GET, "/metrics", Bytes::new()).await?;
    srv.stop().await;
    Ok(metric_sum(
        &String::from_utf8_lossy(&metrics),
        "prompter_probe_attempts_total",
    ) as u64)
}

/// `n` concurrent `POST path` (ensure-version) on connections spread
/// round-robin over `addrs`, released together by a barrier; an error unless
/// every one answered 200.
pub(in crate::bench) async fn ensure_burst(
    addrs: &[SocketAddr],
    n: usize,
    path: &str,
    body: Bytes,
) -> Res<()> {
    let mut senders = Vec::with_capacity(n);
    for i in 0..n {
        senders.push(connect(addrs[i % addrs.len()]).await?);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let ok = Arc::new(AtomicU64::new(0));
    let mut set = tokio::task::JoinSet::new();
    for mut s in senders {
        let (barrier, path, body, ok) =
            (barrier.clone(), path.to_owned(), body.clone(), ok.clone());
        set.spawn(async move {
            barrier.wait().await;
            if let Ok((200, _)) = send(&mut s, Req::json(&Method::POST, &path), body).await {
                ok.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while set.join_next().await.is_some() {}
    let ok = ok.load(Ordering::Relaxed);
    if ok != n as u64 {
        return Err(
            format!("probe burst: only {ok} of {n} ensure-version calls answered 200").into(),
        );
    }
    Ok(())
}

/// Sum of every sample of a Prometheus metric.
pub(in crate::bench) fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sum_adds_every_labelled_sample() {
        let text = "# TYPE prompter_probe_attempts_total counter\n\
            prompter_probe_attempts_total{provider=\"openai\",model=\"gpt-4o\"} 1\n\
            prompter_probe_attempts_total{provider=\"anthropic\",model=\"c\"} 2\n\
            prompter_probe_attempts_total_other 7\n";
        assert_eq!(metric_sum(text, "prompter_probe_attempts_total"), 3.0);
    }
}
