//! Building and running the HTTP server.
//!
//! [`Application::build`] binds the listener first (a taken port fails
//! before anything else happens), then does all start-up work (database,
//! migrations, hash algorithm pin, providers, Redis, metrics) and spawns the
//! background tasks last, so tests can start a real server on port 0 and
//! read the port back.

use crate::auth::{AuthLayer, KeyResolver};
use crate::body::BodyConfig;
use crate::config::{ProviderMode, ServeArgs, StubFailureArg};
use crate::ratelimit::RateLimiter;
use crate::security::RequestTimeout;
use crate::state::AppState;
use crate::{auth, console, middleware, provider_status, routes, security, site_guard, telemetry};
use actix_web::{dev::Server, web, App, HttpServer};
use prompter_domain::{HashAlgorithm, ValidationMode};
use prompter_providers::{HttpConfig, ProviderRegistry, StubConfig, StubFailure, StubProvider};
use prompter_service::batch_worker::{self, BatchWorkerConfig};
use prompter_service::metrics_catalog::REDIS_CONFIGURED;
use prompter_service::webhook::{self, WebhookConfig};
use prompter_service::{PriceTable, Prompter, RedisGuard, ServiceConfig};
use prompter_storage::{Backend, PoolConfig, StorageError, Store};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// Why the server refused to start. Each variant keeps its cause
/// ([`std::error::Error::source`]) and names it in its message.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened, read or migrated.
    #[error("database: {0}")]
    Database(#[source] StorageError),
    /// PostgreSQL has pending migrations and `--migrate` was not given;
    /// the last field is the advice (a command that works for this caller).
    #[error("the database has {0} pending migration(s): {1}; {2}")]
    PendingMigrations(usize, String, String),
    /// The requested hash algorithm differs from the pinned one.
    #[error("{0}")]
    HashAlgorithm(#[source] StorageError),
    /// The pinned hash algorithm is not one this build knows.
    #[error("the database is pinned to the unknown hash algorithm {0}")]
    UnknownHashAlgorithm(String),
    /// A setting is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// A bound, configured server that has not started serving yet.
pub struct Application {
    port: u16,
    server: Server,
    prompter: Prompter,
    stub: Option<Arc<StubProvider>>,
    background: Vec<tokio::task::JoinHandle<()>>,
    instance_id: String,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// `--provider-max-inflight openai=64,…` as a map (each cap at least 1).
pub fn provider_caps(
    pairs: &[String],
) -> Result<std::collections::HashMap<String, usize>, StartupError> {
    let mut caps = std::collections::HashMap::new();
    for pair in pairs.iter().filter(|p| !p.trim().is_empty()) {
        let parsed = pair.split_once('=').and_then(|(p, n)| {
            let p = p.trim();
            let known = prompter_providers::PROVIDER_NAMES.contains(&p);
            let n = n.trim().parse::<usize>().ok().filter(|n| *n > 0);
            known.then_some(()).and(n).map(|n| (p.to_string(), n))
        });
        match parsed {
            Some((p, n)) => {
                caps.insert(p, n);
            }
            None => {
                return Err(StartupError::Config(format!(
                    "--provider-max-inflight: `{pair}` is not provider=N (N ≥ 1; providers: {})",
                    prompter_providers::PROVIDER_NAMES.join(", ")
                )))
            }
        }
    }
    Ok(caps)
}

/// The price table in effect: `--price-table FILE` or the built-in one, plus
/// `--azure-deployment-model` mappings.
pub fn price_table(args: &ServeArgs) -> Result<PriceTable, StartupError> {
    let table = match args.price_table.as_deref().filter(|p| !p.is_empty()) {
        None => PriceTable::builtin(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| StartupError::Config(format!("--price-table {path}: {e}")))?;
            PriceTable::parse(&text)
                .map_err(|e| StartupError::Config(format!("--price-table {path}: {e}")))?
        }
    };
    let mut map = Vec::new();
    for pair in args.azure_deployment_model.iter().filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((d, m)) if !d.trim().is_empty() && !m.trim().is_empty() => {
                map.push((d.trim().to_string(), m.trim().to_string()))
            }
            _ => {
                return Err(StartupError::Config(format!(
                    "--azure-deployment-model: `{pair}` is not deployment=model"
                )))
            }
        }
    }
    Ok(table.with_azure_deployments(map))
}

/// Who opens the database: the server (may create a SQLite file, has
/// `--migrate`) or a CLI command (neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// `prompter serve`.
    Serve,
    /// Another command, by name (for messages).
    Cli(&'static str),
}

/// Opens the store for `serve` (see [`open_store_for`]).
pub async fn open_store(args: &ServeArgs) -> Result<(Store, HashAlgorithm), StartupError> {
    open_store_for(args, Opener::Serve).await
}

/// Checks the database read-only first (a missing SQLite file is refused
/// unless the server opens it; an un-adopted V7 database always), opens the
/// store, applies or checks migrations, and pins the hash algorithm.
pub async fn open_store_for(
    args: &ServeArgs,
    opener: Opener,
) -> Result<(Store, HashAlgorithm), StartupError> {
    let url = args.database_url();
    prompter_storage::adopt::check_openable(&url, opener == Opener::Serve)
        .await
        .map_err(StartupError::Database)?;
    match opener {
        Opener::Serve => tracing::info!(
            database = %prompter_storage::redact_url(&url),
            "opening the database"
        ),
        Opener::Cli(command) => crate::cli::db::announce(command, &url),
    }
    let mut pool = PoolConfig::default();
    if let Some(n) = args.db_max_connections {
        pool.max_connections = n;
    }
    let store = Store::connect(&url, &pool)
        .await
        .map_err(StartupError::Database)?;
    let pending = store
        .pending_migrations()
        .await
        .map_err(StartupError::Database)?;
    if !pending.is_empty() {
        if store.backend() == Backend::Postgres && !args.migrate {
            let hint = crate::cli::db::migrate_up_hint(&url);
            let advice = match opener {
                Opener::Serve => format!("run `{hint}` (or start with --migrate)"),
                Opener::Cli(_) => format!("run `{hint}` first"),
            };
            return Err(StartupError::PendingMigrations(
                pending.len(),
                pending.join(", "),
                advice,
            ));
        }
        let applied = store.migrate_up().await.map_err(StartupError::Database)?;
        tracing::info!(?applied, "applied migrations");
    }
    let pinned = store
        .pin_hash_algorithm(args.hash_algorithm.as_deref())
        .await
        .map_err(StartupError::HashAlgorithm)?;
    let alg: HashAlgorithm = pinned
        .parse()
        .map_err(|_| StartupError::UnknownHashAlgorithm(pinned.clone()))?;
    Ok((store, alg))
}

fn providers(args: &ServeArgs) -> (ProviderRegistry, Option<Arc<StubProvider>>) {
    match args.provider {
        ProviderMode::Stub => {
            let cfg = StubConfig {
                latency: Duration::from_millis(args.stub_latency_ms),
                jitter: Duration::from_millis(args.stub_jitter_ms),
                failure_rate: args.stub_failure_rate.clamp(0.0, 1.0),
                failure_kind: match args.stub_failure_kind {
                    StubFailureArg::Timeout => StubFailure::Timeout,
                    StubFailureArg::RateLimited => StubFailure::RateLimited,
                    StubFailureArg::Upstream => StubFailure::Upstream5xx,
                },
                build_tag: args.stub_build.clone().filter(|t| !t.is_empty()),
            };
            let (registry, stub) = ProviderRegistry::stub(cfg);
            (registry, Some(stub))
        }
        ProviderMode::Live => (ProviderRegistry::live_from_env(HttpConfig::default()), None),
    }
}

/// With auth required and no usable key in the database, every keyed
/// route answers 401: say so once, with the command that makes a key.
async fn warn_without_keys(store: &Store) {
    match store.has_usable_api_key(chrono::Utc::now()).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            "auth is required but the database has no usable API key: every request but the \
             operational routes will answer 401 until one is created with \
             `prompter keys create --org <org> --role <read|write|admin>` (same --database-url)"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot count the API keys"),
    }
}

impl Application {
    /// Does all start-up work and binds the listener (not yet serving).
    pub async fn build(args: ServeArgs) -> Result<Self, StartupError> {
        Self::build_inner(args, None).await
    }

    /// [`Self::build`] with these model clients instead of the ones
    /// `--provider` selects (tests point real clients at a mock server).
    pub async fn build_with_providers(
        args: ServeArgs,
        registry: ProviderRegistry,
    ) -> Result<Self, StartupError> {
        Self::build_inner(args, Some(registry)).await
    }

    async fn build_inner(
        args: ServeArgs,
        registry: Option<ProviderRegistry>,
    ) -> Result<Self, StartupError> {
        let auth_required = args
            .security
            .auth_required(args.bind)
            .map_err(StartupError::Config)?;
        let validation: ValidationMode = args.validation.parse().map_err(|_| {
            StartupError::Config(format!("unknown validation mode {}", args.validation))
        })?;
        // Bind first: a taken port refuses to start before anything is
        // opened, migrated or spawned.
        let listener = TcpListener::bind(args.bind).map_err(|source| StartupError::Bind {
            addr: args.bind.to_string(),
            source,
        })?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let handle = telemetry::install_metrics(&args.metrics_service, &args.metrics_env);
        let (store, hash_algorithm) = open_store(&args).await?;
        let store_backend = store.backend();
        let fold_uuid_ids = store
            .adoption()
            .await
            .map_err(StartupError::Database)?
            .is_some_and(|a| a.uuid_ids_case_insensitive);
        if fold_uuid_ids {
            tracing::info!("adopted from V7 on PostgreSQL: UUID-shaped org/workspace ids are matched case-insensitively");
        }
        let redis = match &args.redis_url {
            Some(url) if !url.is_empty() => {
                let r = RedisGuard::connect(url).map_err(StartupError::Config)?;
                // Logs "connected" or "down" (once) itself.
                r.ping().await;
                Some(r)
            }
            _ => None,
        };
        metrics::gauge!(REDIS_CONFIGURED).set(if redis.is_some() { 1.0 } else { 0.0 });
        let (registry, stub) = match registry {
            Some(r) => (r, None),
            None => providers(&args),
        };
        let provider_statuses =
            provider_status::statuses(&registry, stub.is_some(), |k| std::env::var(k).ok());
        provider_status::log(&provider_statuses);
        if auth_required {
            warn_without_keys(&store).await;
        }
        let cfg = ServiceConfig {
            hash_algorithm,
            validation,
            probe_ttl: Duration::from_secs(args.probe_ttl_secs.max(1)),
            probe_disabled: args.probe_disabled,
            limits: args.security.parser_limits(),
            webhook_enabled: args.webhook_url.as_deref().is_some_and(|u| !u.is_empty()),
            prices: Arc::new(price_table(&args)?),
            provider_max_inflight: provider_caps(&args.provider_max_inflight)?,
            provider_queue_timeout: Duration::from_millis(args.provider_queue_timeout_ms),
            breaker: prompter_service::breaker::BreakerConfig {
                failures: args.provider_breaker_failures,
                cooldown: Duration::from_millis(args.provider_breaker_cooldown_ms.max(1)),
            },
            batch_cap_share: args.batch_cap_share,
            batch_max_items: args.batch_max_items.max(1),
            template_cache_entries: args.template_cache_entries,
            ..ServiceConfig::default()
        };
        let body = BodyConfig {
            max_bytes: args.max_body_bytes,
            limits: cfg.limits,
            fields: crate::security::FieldLimits {
                reject_nul: store_backend == Backend::Postgres,
                ..args.security.field_limits()
            },
        };
        let instance_id = args.instance_id();
        let webhook = args
            .webhook_url
            .clone()
            .filter(|u| !u.is_empty())
            .map(|url| WebhookConfig {
                url,
                secret: args.webhook_secret.clone(),
                poll_every: Duration::from_millis(args.webhook_poll_ms.max(10)),
                timeout: Duration::from_millis(args.webhook_timeout_ms.max(1)),
                lease: Duration::from_millis(args.webhook_lease_ms),
                instance_id: instance_id.clone(),
            });
        let prompter = Prompter::new(store.clone(), registry, redis.clone(), cfg);
        let state = web::Data::new(AppState {
            prompter: prompter.clone(),
            body,
            metrics: handle.clone(),
            backend: store_backend.into(),
            providers: provider_statuses,
            releases: crate::state::ReleaseConfig {
                max_age_secs: args.prompt_max_age_secs,
                protected_labels: args.protected_labels.clone(),
            },
            fold_uuid_ids,
        });
        let auth = web::Data::new(AuthLayer {
            resolver: auth_required.then(|| {
                KeyResolver::new(
                    prompter.store().clone(),
                    Duration::from_millis(args.security.auth_cache_ttl_ms),
                )
            }),
            metrics_auth: args.security.metrics_auth,
            limiter: RateLimiter::clustered(args.security.rate_limit(), redis.clone()),
            limit_anonymous: args.security.rate_limit_anonymous,
        });
        let watched = auth.clone();
        let timeout = web::Data::new(RequestTimeout(args.security.request_timeout()));
        let site = web::Data::new(crate::site_guard::SiteGuard::new(
            args.bind,
            &args.security.allowed_hosts,
        ));
        let ui = args.ui;
        let max_body = args.max_body_bytes;
        let access_log = args.access_log;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(auth.clone())
                .app_data(timeout.clone())
                .app_data(site.clone())
                .app_data(web::Data::new(middleware::AccessLog(access_log)))
                .app_data(web::PayloadConfig::new(max_body))
                .app_data(web::JsonConfig::default().limit(max_body))
                .wrap(actix_web::middleware::from_fn(auth::authenticate))
                .wrap(actix_web::middleware::from_fn(security::request_timeout))
                .wrap(actix_web::middleware::from_fn(site_guard::guard))
                .wrap(actix_web::middleware::from_fn(middleware::observe))
                .configure(routes::configure)
                .configure(|cfg| {
                    if ui {
                        console::configure(cfg)
                    }
                })
        })
        .shutdown_timeout(args.shutdown_timeout_secs)
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: args.bind.to_string(),
            source,
        })?;
        if let Some(w) = args.workers {
            server = server.workers(w.max(1));
        }
        // Background work starts only once the server exists.
        let mut background = Vec::new();
        if let Some(w) = webhook {
            background.push(webhook::spawn_dispatcher(store.clone(), w));
        }
        background.push(crate::generation_watch::spawn(
            watched,
            prompter.clone(),
            Duration::from_millis(args.cluster_poll_ms.max(10)),
        ));
        if let Some(r) = &redis {
            background.push(r.spawn_pinger(Duration::from_secs(1)));
        }
        if args.batch_worker {
            background.extend(batch_worker::spawn(
                prompter.clone(),
                BatchWorkerConfig {
                    instance_id: instance_id.clone(),
                    lease: Duration::from_millis(args.batch_lease_ms.max(100)),
                    poll_every: Duration::from_millis(args.batch_poll_ms.max(10)),
                    concurrency: args.batch_concurrency.max(1),
                    max_attempts: i64::from(args.batch_max_attempts.max(1)),
                    retry_base: Duration::from_millis(args.batch_retry_base_ms),
                    describe: crate::error::describe,
                },
            ));
            background.push(prompter_service::schedules::spawn(
                prompter.clone(),
                Duration::from_millis(args.schedule_poll_ms.max(10)),
                crate::error::describe,
            ));
        }
        background.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                handle.run_upkeep();
            }
        }));
        tracing::info!(
            port,
            instance_id = %instance_id,
            auth = if auth_required { "required" } else { "off" },
            config = %args.redacted_summary(),
            "prompter listening"
        );
        Ok(Application {
            port,
            server: server.run(),
            prompter,
            stub,
            background,
            instance_id,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The use cases (for tests and embedding).
    pub fn prompter(&self) -> &Prompter {
        &self.prompter
    }

    /// The stub provider, when the server runs on it (tests read its probe counter).
    pub fn stub(&self) -> Option<Arc<StubProvider>> {
        self.stub.clone()
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// This instance's id (webhook outbox claims, logs).
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Serves until SIGTERM/SIGINT (or a handle's stop), finishing in-flight
    /// requests, then stops the background tasks, gives back this instance's
    /// outbox claims (others need not wait for the leases) and closes the
    /// pools.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let res = self.server.await;
        for task in self.background {
            task.abort();
        }
        webhook::release_claims(self.prompter.store(), &self.instance_id).await;
        batch_worker::release_claims(&self.prompter, &self.instance_id).await;
        self.prompter.store().close().await;
        tracing::info!("prompter stopped");
        res
    }
}
