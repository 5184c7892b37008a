//! Drift webhook delivery from the durable outbox.
//!
//! Drift events and their outbox rows are written in the same transaction as
//! the version row that revealed them (see `prompter-storage`), so the run
//! that found a drift never waits for delivery and a restart loses nothing.
//! This dispatcher claims due rows with a lease (one claimant per row however
//! many instances poll the same database, see `Store::claim_outbox`), POSTs
//! each payload signed, and marks it delivered on a 2xx, or releases it with a
//! retry time (exponential backoff). A row claimed by an instance that dies
//! is claimed by another once the lease ends, with the same `event_id`; a
//! graceful stop releases its claims at once ([`release_claims`]).
//! Delivery is at least once (a crash between the receiver's 2xx and the
//! mark repeats that event): receivers deduplicate by `event_id`.
//!
//! Two signatures go with each delivery: `X-Prompter-Signature:
//! sha256=<hex HMAC-SHA256 of the body>` (the original one), and
//! `X-Prompter-Timestamp: <unix seconds>` with `X-Prompter-Signature-Timestamped:
//! sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, which lets a receiver
//! refuse a captured delivery replayed later ([`verify_timestamped`]).

use chrono::Utc;
use hmac::{Hmac, Mac};
use prompter_storage::Store;
use sha2::Sha256;
use std::time::Duration;

/// Header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Prompter-Signature";
/// Header carrying the delivery time (Unix seconds) covered by
/// [`TIMESTAMPED_SIGNATURE_HEADER`].
pub const TIMESTAMP_HEADER: &str = "X-Prompter-Timestamp";
/// Header carrying the signature of `"<timestamp>.<body>"`.
pub const TIMESTAMPED_SIGNATURE_HEADER: &str = "X-Prompter-Signature-Timestamped";
/// How far a timestamp may be from the receiver's clock by default (5 min).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Where and how to deliver.
#[derive(Clone)]
pub struct WebhookConfig {
    /// Receiver URL.
    pub url: String,
    /// HMAC secret (never logged).
    pub secret: String,
    /// How often due rows are polled.
    pub poll_every: Duration,
    /// Per-delivery timeout.
    pub timeout: Duration,
    /// How long a claim holds; another instance may deliver a row after
    /// it. Kept above `timeout` (see [`WebhookConfig::effective_lease`]).
    pub lease: Duration,
    /// This instance's name in `webhook_outbox.claimed_by`.
    pub instance_id: String,
}

/// Rows claimed per poll; they are delivered concurrently.
pub const CLAIM_BATCH: u64 = 16;

/// Default claim lease.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

impl WebhookConfig {
    /// The lease actually taken: at least the delivery timeout plus one
    /// second, so a live instance never loses a row while still waiting on
    /// the receiver (a batch is delivered concurrently, so one timeout
    /// bounds it).
    pub fn effective_lease(&self) -> Duration {
        self.lease.max(self.timeout + Duration::from_secs(1))
    }
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &prompter_storage::redact_url(&self.url))
            .field("secret", &"***")
            .field("lease", &self.lease)
            .field("instance_id", &self.instance_id)
            .finish()
    }
}

/// `sha256=<hex>` signature of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn mac(secret: &str) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length")
}

/// `sha256=<hex>` signature of `"<timestamp>.<body>"` under `secret`.
pub fn sign_timestamped(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a delivery was refused by [`verify_timestamped`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The timestamp header is not an integer.
    #[error("malformed timestamp")]
    BadTimestamp,
    /// The signature header is not `sha256=<64 hex digits>`.
    #[error("malformed signature")]
    BadSignature,
    /// The signature does not match this secret, timestamp and body.
    #[error("signature mismatch")]
    Mismatch,
    /// The timestamp is further than the tolerance from `now`.
    #[error("timestamp outside the tolerance")]
    Stale,
}

/// Checks a delivery as a receiver should: the HMAC of
/// `"<timestamp>.<body>"` compared in constant time, and the timestamp
/// within `tolerance` of `now` (Unix seconds), so a replay is refused.
pub fn verify_timestamped(
    secret: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let sig = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .filter(|b| b.len() == 32)
        .ok_or(VerifyError::BadSignature)?;
    let mut mac = mac(secret);
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| VerifyError::Mismatch)?;
    if now.abs_diff(ts) > tolerance.as_secs() {
        return Err(VerifyError::Stale);
    }
    Ok(())
}

/// Retry delay after `attempts` failures: 1 s doubling, capped at 10 min.
pub fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(0, 10) as u32;
    Duration::from_secs((1u64 << exp).min(600))
}

/// Claims due outbox rows once and delivers them; returns how many were
/// delivered.
pub async fn deliver_due(store: &Store, client: &reqwest::Client, cfg: &WebhookConfig) -> usize {
    let claimed = match store
        .claim_outbox(
            &cfg.instance_id,
            Utc::now(),
            cfg.effective_lease(),
            CLAIM_BATCH,
        )
        .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "webhook outbox unreadable");
            return 0;
        }
    };
    let cfg = std::sync::Arc::new(cfg.clone());
    let mut deliveries = tokio::task::JoinSet::new();
    for row in claimed {
        let (store, client, cfg) = (store.clone(), client.clone(), cfg.clone());
        deliveries.spawn(async move { deliver_one(&store, &client, &cfg, row).await });
    }
    deliveries
        .join_all()
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count()
}

async fn deliver_one(
    store: &Store,
    client: &reqwest::Client,
    cfg: &WebhookConfig,
    row: prompter_storage::OutboxRecord,
) -> bool {
    let body = row.payload.as_bytes();
    let now = Utc::now().timestamp();
    let res = client
        .post(&cfg.url)
        .timeout(cfg.timeout)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, sign(&cfg.secret, body))
        .header(TIMESTAMP_HEADER, now.to_string())
        .header(
            TIMESTAMPED_SIGNATURE_HEADER,
            sign_timestamped(&cfg.secret, now, body),
        )
        .header("X-Prompter-Event-Id", row.event_id.to_string())
        .body(row.payload.clone())
        .send()
        .await;
    let failure = match res {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => Some(format!("receiver answered {}", r.status())),
        // Without the URL: it may hold credentials or a token.
        Err(e) => Some(format!("delivery failed: {}", e.without_url())),
    };
    match failure {
        None => store.mark_outbox_delivered(row.id).await.is_ok(),
        Some(err) => {
            let next =
                Utc::now() + chrono::Duration::from_std(backoff(row.attempts)).unwrap_or_default();
            tracing::warn!(event_id = %row.event_id, attempts = row.attempts + 1, %err, "webhook delivery failed; will retry");
            let _ = store
                .mark_outbox_failed(row.id, &cfg.instance_id, next, &err)
                .await;
            false
        }
    }
}

/// Gives back this instance's undelivered claims (graceful shutdown).
pub async fn release_claims(store: &Store, instance_id: &str) {
    match store.release_outbox_claims(instance_id).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(released = n, "webhook outbox claims released"),
        Err(e) => {
            tracing::warn!(error = %e, "webhook outbox claims not released; they expire with their lease")
        }
    }
}

/// Spawns the dispatcher loop: it claims due rows whenever fewer than
/// [`CLAIM_BATCH`] deliveries are in flight, so one slow receiver call never
/// holds back the rows behind it.
pub fn spawn_dispatcher(store: Store, cfg: WebhookConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let cfg = std::sync::Arc::new(cfg);
        // Each delivery is its own task (a future left unpolled while this
        // loop awaits a claim could hold SQLite's write gate: deadlock);
        // dropping the set (the dispatcher aborted) aborts them.
        let mut in_flight = tokio::task::JoinSet::new();
        let mut failing = false;
        loop {
            let room = CLAIM_BATCH as usize - in_flight.len();
            let mut full = false;
            if room > 0 {
                match store
                    .claim_outbox(
                        &cfg.instance_id,
                        Utc::now(),
                        cfg.effective_lease(),
                        room as u64,
                    )
                    .await
                {
                    Ok(rows) => {
                        failing = false;
                        full = rows.len() == room;
                        for row in rows {
                            let (store, client, cfg) = (store.clone(), client.clone(), cfg.clone());
                            in_flight.spawn(async move {
                                deliver_one(&store, &client, &cfg, row).await
                            });
                        }
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, "webhook outbox unreadable");
                            failing = true;
                        }
                    }
                }
            }
            if full {
                // More may be due: claim again once a delivery finishes.
                if in_flight.join_next().await.is_some() {
                    continue;
                }
            }
            tokio::select! {
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = tokio::time::sleep(cfg.poll_every) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn timestamped_signature_verifies_and_refuses_tampering_and_replays() {
        let body = br#"{"event_id":"e1"}"#;
        let sig = sign_timestamped("s3cret", 1_700_000_000, body);
        let ok = |ts: &str, sig: &str, body: &[u8], now: i64| {
            verify_timestamped("s3cret", ts, sig, body, now, DEFAULT_TOLERANCE)
        };
        assert_eq!(ok("1700000000", &sig, body, 1_700_000_100), Ok(()));
        // another body, timestamp or secret
        assert_eq!(
            ok("1700000000", &sig, b"{}", 1_700_000_000),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            ok("1700000001", &sig, body, 1_700_000_000),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_timestamped(
                "other",
                "1700000000",
                &sig,
                body,
                1_700_000_000,
                DEFAULT_TOLERANCE
            ),
            Err(VerifyError::Mismatch)
        );
        // the same delivery replayed an hour later
        assert_eq!(
            ok("1700000000", &sig, body, 1_700_003_600),
            Err(VerifyError::Stale)
        );
        assert_eq!(ok("soon", &sig, body, 0), Err(VerifyError::BadTimestamp));
        assert_eq!(
            ok("1700000000", "sha256=zz", body, 1_700_000_000),
            Err(VerifyError::BadSignature)
        );
        // the body-only signature differs (no timestamp inside)
        assert_ne!(sign("s3cret", body), sig);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(50), Duration::from_secs(600));
    }
}
