//! Drift webhook delivery from the durable outbox.
//!
//! Drift events and their outbox rows are written in the same transaction as
//! the version row that revealed them (see `prompter-storage`), so the run
//! that found a drift never waits for delivery and a restart loses nothing.
//! This dispatcher polls due rows, POSTs each payload with an
//! `X-Prompter-Signature: sha256=<hex HMAC-SHA256 of the body>` header and
//! marks it delivered on a 2xx, or schedules a retry with exponential
//! backoff. Delivery is at least once: receivers deduplicate by `event_id`.

use chrono::Utc;
use hmac::{Hmac, Mac};
use prompter_storage::Store;
use sha2::Sha256;
use std::time::Duration;

/// Header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Prompter-Signature";

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
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &"***")
            .finish()
    }
}

/// `sha256=<hex>` signature of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Retry delay after `attempts` failures: 1 s doubling, capped at 10 min.
pub fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(0, 10) as u32;
    Duration::from_secs((1u64 << exp).min(600))
}

/// Delivers due outbox rows once; returns how many were delivered.
pub async fn deliver_due(store: &Store, client: &reqwest::Client, cfg: &WebhookConfig) -> usize {
    let due = match store.due_outbox(Utc::now(), 32).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "webhook outbox unreadable");
            return 0;
        }
    };
    let mut delivered = 0;
    for row in due {
        let res = client
            .post(&cfg.url)
            .timeout(cfg.timeout)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, sign(&cfg.secret, row.payload.as_bytes()))
            .header("X-Prompter-Event-Id", row.event_id.to_string())
            .body(row.payload.clone())
            .send()
            .await;
        let failure = match res {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("receiver answered {}", r.status())),
            Err(e) => Some(format!("delivery failed: {e}")),
        };
        match failure {
            None => {
                if store.mark_outbox_delivered(row.id).await.is_ok() {
                    delivered += 1;
                }
            }
            Some(err) => {
                let next = Utc::now()
                    + chrono::Duration::from_std(backoff(row.attempts)).unwrap_or_default();
                tracing::warn!(event_id = %row.event_id, attempts = row.attempts + 1, %err, "webhook delivery failed; will retry");
                let _ = store.mark_outbox_failed(row.id, next, &err).await;
            }
        }
    }
    delivered
}

/// Spawns the dispatcher loop.
pub fn spawn_dispatcher(store: Store, cfg: WebhookConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        loop {
            deliver_due(&store, &client, &cfg).await;
            tokio::time::sleep(cfg.poll_every).await;
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
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(50), Duration::from_secs(600));
    }
}
