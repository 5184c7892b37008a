//! `kill -9` of one instance under `run` load through haproxy. Every run
//! carries its own `Idempotency-Key` (and the key in its prompt, so stored
//! results can be grouped by key); a failed attempt (transport error or
//! 5xx) is retried with the same key and body until a 200 or the deadline.
//! Afterwards the database is the judge: `lost` = keys acknowledged with a
//! 200 whose result id is not stored; `duplicated` = keys with more than
//! one stored result.

use super::fleet::Fleet;
use super::haproxy::Haproxy;
use super::Res;
use crate::client::{connect, send, Req};
use hyper::body::Bytes;
use hyper::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The figures of the kill scenario.
#[derive(Debug, Clone, Default)]
pub(super) struct KillReport {
    pub(super) connections: usize,
    /// Distinct keys (logical runs) started.
    pub(super) keys: u64,
    /// HTTP attempts sent (first tries and retries).
    pub(super) sent: u64,
    /// Keys answered 200.
    pub(super) acked: u64,
    /// 5xx answers seen by the client, by status and error code.
    pub(super) five_xx: BTreeMap<String, u64>,
    /// Answers neither 200 nor 5xx (a bench bug; fatal).
    pub(super) other: BTreeMap<u16, u64>,
    /// Attempts that got no answer (connection reset / refused).
    pub(super) transport_errors: u64,
    /// Keys never answered 200 before the deadline.
    pub(super) unresolved: u64,
    /// Unresolved keys the database holds as an `in_flight` claim.
    pub(super) unresolved_in_flight: u64,
    pub(super) lost: u64,
    pub(super) duplicated: u64,
    pub(super) haproxy_retries: u64,
    pub(super) haproxy_redispatches: u64,
    /// 5xx answers haproxy counted (its own 502/503 and the servers').
    pub(super) haproxy_5xx: u64,
    /// haproxy's view of the servers at the end (`i0 UP, i1 DOWN, …`).
    pub(super) servers: String,
    pub(super) killed_after_s: f64,
}

impl KillReport {
    pub(super) fn five_xx_total(&self) -> u64 {
        self.five_xx.values().sum()
    }
}

#[derive(Debug, Default)]
struct Tally {
    keys: u64,
    sent: u64,
    five_xx: BTreeMap<String, u64>,
    other: BTreeMap<u16, u64>,
    transport_errors: u64,
    /// key → result id of its 200.
    acked: BTreeMap<String, String>,
    unresolved: Vec<String>,
}

/// Drives `connections` closed loops of keyed runs through `lb` for
/// `before + after` seconds, kills instance `victim` after `before`, then
/// checks the database.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    fleet: &mut Fleet,
    lb: &Haproxy,
    db_url: &str,
    template_id: &str,
    connections: usize,
    before: f64,
    after: f64,
    retry_for: f64,
) -> Res<KillReport> {
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let t0 = Instant::now();
    let stop_new = t0 + Duration::from_secs_f64(before + after);
    let give_up = stop_new + Duration::from_secs_f64(retry_for);
    let path = format!("/api/prompt-templates/{template_id}/run");
    let mut set = tokio::task::JoinSet::new();
    for conn in 0..connections {
        let (tally, path, addr) = (tally.clone(), path.clone(), lb.addr);
        set.spawn(async move { client_loop(addr, conn, &path, stop_new, give_up, &tally).await });
    }
    tokio::time::sleep(Duration::from_secs_f64(before)).await;
    let victim = fleet.servers.remove(1.min(fleet.servers.len() - 1));
    let killed_after_s = t0.elapsed().as_secs_f64();
    victim.kill9().await?;
    println!("   kill -9 of instance 1 after {killed_after_s:.1}s of load");
    while set.join_next().await.is_some() {}
    let stats = lb.stats().await.unwrap_or_default();
    let t = std::mem::take(&mut *tally.lock().map_err(|_| "tally poisoned")?);

    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(db_url)
        .await?;
    let tpl = uuid::Uuid::parse_str(template_id)?;
    // The stored request holds the prompt (the key) as the user message.
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT request::text, id::text FROM prompt_results WHERE template_id = $1")
            .bind(tpl)
            .fetch_all(&pool)
            .await?;
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (request, id) in stored {
        if let Some(k) = key_in(&request) {
            by_key.entry(k).or_default().push(id);
        }
    }
    let lost = t
        .acked
        .iter()
        .filter(|(k, id)| !by_key.get(*k).is_some_and(|ids| ids.contains(id)))
        .count() as u64;
    let duplicated = by_key.values().filter(|ids| ids.len() > 1).count() as u64;
    let in_flight: Vec<(String,)> = sqlx::query_as(
        "SELECT idempotency_key FROM run_idempotency WHERE template_id = $1 AND state = 'in_flight'",
    )
    .bind(tpl)
    .fetch_all(&pool)
    .await?;
    let in_flight: std::collections::BTreeSet<String> =
        in_flight.into_iter().map(|(k,)| k).collect();
    pool.close().await;
    Ok(KillReport {
        connections,
        keys: t.keys,
        sent: t.sent,
        acked: t.acked.len() as u64,
        five_xx: t.five_xx,
        other: t.other,
        transport_errors: t.transport_errors,
        unresolved: t.unresolved.len() as u64,
        unresolved_in_flight: t
            .unresolved
            .iter()
            .filter(|k| in_flight.contains(*k))
            .count() as u64,
        lost,
        duplicated,
        haproxy_retries: stats.iter().map(|s| s.retries).sum(),
        haproxy_redispatches: stats.iter().map(|s| s.redispatches).sum(),
        haproxy_5xx: stats.iter().map(|s| s.http_5xx).sum(),
        servers: stats
            .iter()
            .map(|s| format!("{} {}", s.name, s.status))
            .collect::<Vec<_>>()
            .join(", "),
        killed_after_s,
    })
}

/// The first `kill-<conn>-<seq>` in `text`.
fn key_in(text: &str) -> Option<String> {
    let at = text.find("kill-")?;
    let rest = &text[at + "kill-".len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(rest.len());
    Some(format!("kill-{}", &rest[..end]))
}

/// One connection's closed loop of keyed runs.
async fn client_loop(
    addr: SocketAddr,
    conn: usize,
    path: &str,
    stop_new: Instant,
    give_up: Instant,
    tally: &Mutex<Tally>,
) {
    let mut sender = None;
    let mut seq = 0u64;
    while Instant::now() < stop_new {
        let key = format!("kill-{conn}-{seq}");
        seq += 1;
        let body = Bytes::from(json!({"rendered_prompt": key}).to_string());
        if let Ok(mut t) = tally.lock() {
            t.keys += 1;
        }
        loop {
            if Instant::now() > give_up {
                if let Ok(mut t) = tally.lock() {
                    t.unresolved.push(key);
                }
                return;
            }
            let s = match sender.as_mut() {
                Some(s) => s,
                None => match connect(addr).await {
                    Ok(s) => sender.insert(s),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let headers = [("idempotency-key", key.as_str())];
            let mut req = Req::json(&Method::POST, path);
            req.headers = &headers;
            let r = send(s, req, body.clone()).await;
            if let Ok(mut t) = tally.lock() {
                t.sent += 1;
            }
            match r {
                Ok((200, answer)) => {
                    let id = serde_json::from_slice::<Value>(&answer)
                        .ok()
                        .and_then(|v| v["result_id"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    if let Ok(mut t) = tally.lock() {
                        t.acked.insert(key, id);
                    }
                    break;
                }
                Ok((status, answer)) => {
                    if let Ok(mut t) = tally.lock() {
                        if status >= 500 {
                            let code = serde_json::from_slice::<Value>(&answer)
                                .ok()
                                .and_then(|v| v["detail"]["code"].as_str().map(str::to_owned))
                                .unwrap_or_else(|| "-".into());
                            *t.five_xx.entry(format!("{status} {code}")).or_default() += 1;
                        } else {
                            // Anything else is a bench bug: give the key up, visibly.
                            *t.other.entry(status).or_default() += 1;
                            t.unresolved.push(key);
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(_) => {
                    if let Ok(mut t) = tally.lock() {
                        t.transport_errors += 1;
                    }
                    sender = None;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_key_is_found_in_the_stored_request() {
        let req = r#"{"messages":[{"role":"system","content":"x"},{"role":"user","content":"kill-3-12"}]}"#;
        assert_eq!(super::key_in(req).as_deref(), Some("kill-3-12"));
        assert_eq!(super::key_in("{}"), None);
    }
}
