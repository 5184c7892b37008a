//! API keys and the authentication middleware.
//!
//! # Keys
//!
//! A key reads `prm_<prefix>_<secret>`: `prefix` is 8 random characters of
//! `[a-z0-9]` (public: it names the key in `keys list`, logs and rate
//! limits, and is the lookup index), `secret` is 32 random bytes (256 bits)
//! in unpadded base64url (43 characters). Both come from the thread-local
//! CSPRNG of `rand` (ChaCha, seeded from the operating system).
//!
//! The database keeps only `sha256_hex(whole key)`, the prefix, the scope
//! (org, optional workspace), the role and timestamps. A fast hash is right
//! here: slow password hashes (argon2, bcrypt) exist to make guessing
//! *low-entropy* secrets expensive, and a 256-bit random secret cannot be
//! guessed whatever the hash speed; a slow hash would only add latency to
//! every request. The stored hash is compared with the computed one in
//! constant time (`subtle`).
//!
//! # Middleware
//!
//! [`authenticate`] runs on every request. The open routes (access `Open` in
//! the route table, plus `/metrics` unless `--metrics-auth`) pass untouched. With auth
//! required, everything else needs `Authorization: Bearer <key>`: no or a bad
//! key is 401 `UNAUTHORIZED`; a good key becomes a [`Caller`] (the key's
//! tenant scope and role) in the request extensions, after one token of the
//! key's rate-limit bucket (429 `RATE_LIMITED` with `Retry-After`). Handlers
//! then check the role (403) and run every query in the caller's scope, so
//! another tenant's rows are 404.
//!
//! Lookups are cached per prefix for `--auth-cache-ttl-ms` (default 5 s).
//! Every instance also polls the database's `api_keys` generation (bumped by
//! a trigger on any key change, `prompter keys revoke` included) every
//! `--cluster-poll-ms` and drops the whole cache when it moved
//! (`generation_watch`), so a key created or revoked anywhere is honoured
//! everywhere within about that period; the TTL stays the fallback when the
//! poll fails. Unknown prefixes are cached too (negative entries), and the
//! cache is bounded.
//!
//! The key itself never reaches a log line, an error message or a metric
//! label; only its public prefix does.

use crate::caller::{Caller, Role};
use crate::error::{ApiError, Code};
use crate::middleware::RoutePattern;
use crate::ratelimit::RateLimiter;
use crate::routes::table::{self, Access};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, ResponseError};
use base64::Engine as _;
use prompter_storage::{ApiKeyRecord, NewApiKey, StorageError, Store};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Every key starts with this tag.
pub const KEY_TAG: &str = "prm_";
/// Length of the public prefix.
pub const PREFIX_LEN: usize = 8;
/// Random bytes of the secret part (256 bits).
pub const SECRET_BYTES: usize = 32;
/// Length of the secret part in unpadded base64url.
pub const SECRET_CHARS: usize = 43;
const PREFIX_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Entries of the lookup cache before expired ones are swept.
const CACHE_CAP: usize = 10_000;

/// A freshly generated key: show `key` once, store the rest.
#[derive(Clone)]
pub struct GeneratedKey {
    /// The whole key (`prm_<prefix>_<secret>`): shown once, never stored.
    pub key: String,
    /// The public prefix.
    pub prefix: String,
    /// `sha256_hex(key)`.
    pub key_hash: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A new random key.
pub fn generate_key() -> GeneratedKey {
    let mut rng = rand::rng();
    let prefix: String = (0..PREFIX_LEN)
        .map(|_| PREFIX_ALPHABET[rng.random_range(0..PREFIX_ALPHABET.len())] as char)
        .collect();
    let mut secret = [0u8; SECRET_BYTES];
    rng.fill(&mut secret[..]);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let key = format!("{KEY_TAG}{prefix}_{secret}");
    let key_hash = hash_key(&key);
    GeneratedKey {
        key,
        prefix,
        key_hash,
    }
}

/// Lower-case hex SHA-256 of the whole key (what the database stores).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The public prefix of a well-formed key, or `None`.
pub fn key_prefix(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_TAG)?;
    if rest.len() != PREFIX_LEN + 1 + SECRET_CHARS || !rest.is_ascii() {
        return None;
    }
    let (prefix, tail) = rest.split_at(PREFIX_LEN);
    let secret = tail.strip_prefix('_')?;
    let prefix_ok = prefix.bytes().all(|b| PREFIX_ALPHABET.contains(&b));
    let secret_ok = secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (prefix_ok && secret_ok).then_some(prefix)
}

/// Whether `key` hashes to `stored_hash`, compared in constant time.
pub fn verify_key(key: &str, stored_hash: &str) -> bool {
    let computed = hash_key(key);
    computed
        .as_bytes()
        .ct_eq(stored_hash.to_ascii_lowercase().as_bytes())
        .into()
}

/// What a new key is for: its scope, role, and optional name and expiry.
#[derive(Debug, Clone)]
pub struct KeySpec<'a> {
    /// The org the key is scoped to.
    pub org_id: &'a str,
    /// The one workspace it is restricted to, if any.
    pub workspace_id: Option<&'a str>,
    /// What it may do.
    pub role: Role,
    /// A human name (`keys list` shows it).
    pub name: Option<&'a str>,
    /// When it stops authenticating (401 `API_KEY_EXPIRED` after).
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Generates and stores a key (retrying the rare prefix collision); returns
/// the whole key, to be shown once, and the stored record.
pub async fn create_key(
    store: &Store,
    spec: KeySpec<'_>,
) -> Result<(GeneratedKey, ApiKeyRecord), StorageError> {
    let mut attempts = 0;
    loop {
        let generated = generate_key();
        let new = NewApiKey {
            prefix: generated.prefix.clone(),
            key_hash: generated.key_hash.clone(),
            org_id: spec.org_id.to_owned(),
            workspace_id: spec.workspace_id.map(str::to_owned),
            role: spec.role.as_str().to_owned(),
            name: spec.name.map(str::to_owned),
            expires_at: spec.expires_at,
        };
        match store.insert_api_key(new).await {
            Ok(rec) => return Ok((generated, rec)),
            Err(StorageError::Conflict { .. }) if attempts < 5 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

#[derive(Debug, Clone)]
struct CacheEntry {
    record: Option<Arc<ApiKeyRecord>>,
    fetched: Instant,
}

/// Resolves bearer keys to callers, with a short-lived cache per prefix.
#[derive(Debug)]
pub struct KeyResolver {
    store: Store,
    ttl: Duration,
    cache: Mutex<HashMap<String, CacheEntry>>,
    /// Bumped by [`KeyResolver::clear`]: a lookup that read the database
    /// before a clear does not cache its (maybe stale) answer.
    epoch: AtomicU64,
}

/// The 401 message without a key: how to send one and how one is made.
const NO_KEY: &str = "an API key is required: send Authorization: Bearer <key>; \
    an operator creates keys with `prompter keys create --org <org> --role <read|write|admin>` \
    (against the server's database)";

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(Code::Unauthorized, message)
}

impl KeyResolver {
    /// A resolver over `store` caching lookups for `ttl`.
    pub fn new(store: Store, ttl: Duration) -> Self {
        KeyResolver {
            store,
            ttl,
            cache: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
        }
    }

    fn cached(&self, prefix: &str, now: Instant) -> Option<Option<Arc<ApiKeyRecord>>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(prefix)
            .filter(|e| now.saturating_duration_since(e.fetched) < self.ttl)
            .map(|e| e.record.clone())
    }

    fn remember(&self, prefix: &str, record: Option<Arc<ApiKeyRecord>>, now: Instant, epoch: u64) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        if cache.len() >= CACHE_CAP && !cache.contains_key(prefix) {
            let ttl = self.ttl;
            cache.retain(|_, e| now.saturating_duration_since(e.fetched) < ttl);
            if cache.len() >= CACHE_CAP {
                cache.clear();
            }
        }
        cache.insert(
            prefix.to_owned(),
            CacheEntry {
                record,
                fetched: now,
            },
        );
    }

    async fn lookup(&self, prefix: &str) -> Result<Option<Arc<ApiKeyRecord>>, ApiError> {
        let now = Instant::now();
        if let Some(hit) = self.cached(prefix, now) {
            return Ok(hit);
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let record = self
            .store
            .find_api_key_by_prefix(prefix)
            .await?
            .map(Arc::new);
        self.remember(prefix, record.clone(), now, epoch);
        if let Some(rec) = record.as_ref().filter(|r| r.revoked_at.is_none()) {
            // Best effort, at most once per cache period per key.
            let store = self.store.clone();
            let id = rec.id;
            tokio::spawn(async move {
                let _ = store.touch_api_key(id, chrono::Utc::now()).await;
            });
        }
        Ok(record)
    }

    /// The caller a bearer key stands for: 401 for a malformed, unknown,
    /// wrong, revoked or expired key; 503 when the key store is unreachable.
    pub async fn resolve(&self, key: &str) -> Result<Caller, ApiError> {
        let Some(prefix) = key_prefix(key) else {
            return Err(unauthorized("the API key is not valid"));
        };
        let Some(rec) = self.lookup(prefix).await? else {
            // Hash anyway so unknown and wrong keys take the same time.
            let _ = verify_key(key, "");
            return Err(unauthorized("the API key is not valid"));
        };
        if !verify_key(key, &rec.key_hash) {
            tracing::info!(key_prefix = %prefix, "API key with a known prefix but a wrong secret");
            return Err(unauthorized("the API key is not valid"));
        }
        if rec.revoked_at.is_some() {
            tracing::info!(key_prefix = %prefix, "revoked API key used");
            return Err(unauthorized("the API key was revoked"));
        }
        if let Some(expired) = rec
            .expires_at
            .filter(|_| rec.is_expired(chrono::Utc::now()))
        {
            tracing::info!(key_prefix = %prefix, "expired API key used");
            return Err(ApiError::new(
                Code::ApiKeyExpired,
                format!(
                    "the API key expired at {}; create a new one with `prompter keys create`",
                    crate::dto::ts(expired)
                ),
            ));
        }
        let role: Role = rec.role.parse().map_err(|_| {
            tracing::warn!(key_prefix = %prefix, role = %rec.role, "API key with an unknown role");
            unauthorized("the API key is not valid")
        })?;
        Ok(Caller {
            scope: rec.scope(),
            role,
            key_prefix: Some(rec.prefix.clone()),
        })
    }

    /// The caller of a request's `Authorization: Bearer <key>` header; 401
    /// naming how to get a key when there is none.
    pub async fn resolve_header(&self, headers: &header::HeaderMap) -> Result<Caller, ApiError> {
        match bearer(headers) {
            None => Err(unauthorized(NO_KEY)),
            Some(key) => self.resolve(key).await,
        }
    }

    /// Forgets every cached lookup (and keeps lookups already in flight
    /// from caching what they read).
    pub fn clear(&self) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::SeqCst);
        cache.clear();
    }
}

/// What the middleware needs (app data).
#[derive(Debug)]
pub struct AuthLayer {
    /// Key resolution; `None` when auth is off.
    pub resolver: Option<KeyResolver>,
    /// Whether `/metrics` needs an admin key.
    pub metrics_auth: bool,
    /// Per-key (and optionally anonymous) token buckets.
    pub limiter: RateLimiter,
    /// Whether anonymous callers (auth off) are rate-limited by IP.
    pub limit_anonymous: bool,
}

impl AuthLayer {
    /// Whether requests need a key.
    pub fn required(&self) -> bool {
        self.resolver.is_some()
    }

    /// Whether a route with this access passes without a key.
    /// The caller of a request to an open route that offers more to
    /// admins (`/readyz?detail=1`): with auth off, the unrestricted caller
    /// (auth off is only allowed on loopback); with auth on, the bearer
    /// key's caller, 401 without a valid key.
    pub async fn caller_of(&self, req: &actix_web::HttpRequest) -> Result<Caller, ApiError> {
        match &self.resolver {
            None => Ok(Caller::unrestricted()),
            Some(resolver) => resolver.resolve_header(req.headers()).await,
        }
    }

    fn is_open(&self, access: Access) -> bool {
        match access {
            Access::Open => true,
            Access::Metrics => !self.metrics_auth,
            Access::Keyed => false,
        }
    }
}

/// The key of an `Authorization: Bearer <key>` header (scheme case-insensitive).
pub fn bearer(headers: &header::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, key) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim())
        .filter(|k| !k.is_empty())
}

fn reject(req: ServiceRequest, err: ApiError) -> ServiceResponse<BoxBody> {
    let mut res = err.error_response();
    if err.code().status() == actix_web::http::StatusCode::UNAUTHORIZED {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    req.into_response(res)
}

fn rate_limited(wait: Duration) -> ApiError {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    ApiError::new(
        Code::RateLimited,
        format!("too many requests for this API key; retry in {secs} s"),
    )
    .retry_after(Duration::from_secs(secs))
}

/// The authentication middleware (see the module docs).
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(layer) = req.app_data::<web::Data<AuthLayer>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let access = match req.extensions().get::<RoutePattern>() {
        Some(p) => table::access(Some(&p.0)),
        None => table::access(req.match_pattern().as_deref()),
    };
    let open = layer.is_open(access);
    let Some(resolver) = layer.resolver.as_ref() else {
        if layer.limit_anonymous && !open {
            let ip = req
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_else(|| "unknown".into());
            // Boxed: this middleware's future lives as long as the request,
            // and an inlined Redis/database call would make it several KiB.
            if let Err(wait) = Box::pin(layer.limiter.check(&format!("anon:{ip}"))).await {
                return Ok(reject(req, rate_limited(wait)));
            }
        }
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    if open {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let caller = Box::pin(resolver.resolve_header(req.headers())).await;
    let caller = match caller {
        Ok(c) => c,
        Err(e) => return Ok(reject(req, e)),
    };
    if access == Access::Metrics {
        if let Err(e) = caller.require(Role::Admin) {
            return Ok(reject(req, e));
        }
    }
    let bucket = caller.key_prefix.clone().unwrap_or_default();
    if let Err(wait) = Box::pin(layer.limiter.check(&bucket)).await {
        return Ok(reject(req, rate_limited(wait)));
    }
    req.extensions_mut().insert(caller);
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_verify() {
        let k = generate_key();
        assert!(k.key.starts_with("prm_"));
        assert_eq!(k.key.len(), KEY_TAG.len() + PREFIX_LEN + 1 + SECRET_CHARS);
        assert_eq!(key_prefix(&k.key), Some(k.prefix.as_str()));
        assert!(verify_key(&k.key, &k.key_hash));
        assert_eq!(k.key_hash.len(), 64);
        let other = generate_key();
        assert_ne!(k.key, other.key);
        assert!(!verify_key(&other.key, &k.key_hash));
        // Debug never shows the secret.
        assert!(!format!("{k:?}").contains(&k.key));
    }

    #[test]
    fn malformed_keys_have_no_prefix() {
        let k = generate_key().key;
        for bad in [
            "",
            "prm_",
            "Bearer x",
            &k[..k.len() - 1],
            &format!("{k}x"),
            &k.replacen("prm_", "prx_", 1),
            &k.replacen('_', "-", 2),
            &format!("prm_ABCDEFGH_{}", &k[13..]),
            &format!("{}é", &k[..k.len() - 2]),
        ] {
            assert_eq!(key_prefix(bad), None, "{bad}");
        }
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(verify_key(
            "abc",
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
        ));
        assert!(!verify_key("abc", ""));
    }
}
