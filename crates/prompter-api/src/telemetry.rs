//! Logging (tracing), optional OTLP trace export (cargo feature `otlp`) and
//! the process-wide Prometheus recorder.

use crate::config::LogFormat;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

/// Latency buckets (seconds) for every `_seconds` histogram.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();
/// The recorder's global labels, for the series rendered beside it.
static GLOBAL_LABELS: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// Installs the global metrics recorder once per process (later calls reuse
/// it: the `service`/`env` labels of the first call win) and registers every
/// series at 0.
pub fn install_metrics(service: &str, env: &str) -> PrometheusHandle {
    RECORDER
        .get_or_init(|| {
            let _ = GLOBAL_LABELS.set(vec![
                ("service".to_owned(), service.to_owned()),
                ("env".to_owned(), env.to_owned()),
            ]);
            let recorder = PrometheusBuilder::new()
                .add_global_label("service", service)
                .add_global_label("env", env)
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .expect("buckets are non-empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may exist when embedded; then ours only renders its own.
            let _ = metrics::set_global_recorder(recorder);
            prompter_service::metrics_catalog::register_all();
            handle
        })
        .clone()
}

/// The `/metrics` text: the recorder's series, then the float counter
/// `prompter_cost_usd_total` (kept by `prompter_service::cost_counter`,
/// which the integer counters of the `metrics` facade cannot hold).
pub fn render_metrics(handle: &PrometheusHandle) -> String {
    let mut text = handle.render();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let global = GLOBAL_LABELS.get().map(Vec::as_slice).unwrap_or_default();
    text.push_str(&prompter_service::cost_counter::render(global));
    text
}

/// The log filter without `RUST_LOG`: `info`, except PostgreSQL notices
/// (sqlx logs them at INFO; `CREATE TABLE IF NOT EXISTS seaql_migrations`
/// raised "relation … already exists, skipping" on every start).
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx::postgres::notice=warn";

fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER))
}

/// Initialises logging once (`RUST_LOG` filters; default [`DEFAULT_LOG_FILTER`]).
pub fn init_logging(format: LogFormat) {
    let filter = env_filter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// What [`init_tracing`] installed; call [`TracingGuard::shutdown`] when the
/// server stops so that buffered spans are exported.
#[derive(Debug, Default)]
pub struct TracingGuard {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl TracingGuard {
    /// Whether spans are being exported over OTLP.
    #[cfg(feature = "otlp")]
    pub fn exports_spans(&self) -> bool {
        self.provider.is_some()
    }

    /// Whether spans are being exported over OTLP (never without `otlp`).
    #[cfg(not(feature = "otlp"))]
    pub fn exports_spans(&self) -> bool {
        false
    }

    /// Flushes buffered spans and stops the exporter (a no-op without one).
    /// Blocks until the export finished or timed out.
    pub fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                eprintln!("prompter: OTLP trace export shutdown: {e}");
            }
        }
    }
}

/// [`init_logging`], plus, when built with the `otlp` feature and
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, export of every span over
/// OTLP/HTTP (protobuf) with resource attributes `service.name` = `service`
/// and `deployment.environment` = `env` (`--metrics-service`,
/// `--metrics-env`). Without both, exactly [`init_logging`].
pub fn init_tracing(format: LogFormat, service: &str, env: &str) -> TracingGuard {
    #[cfg(feature = "otlp")]
    if otlp::configured() {
        return otlp::init(format, service, env);
    }
    let _ = (service, env);
    init_logging(format);
    TracingGuard::default()
}

#[cfg(feature = "otlp")]
mod otlp {
    use super::{init_logging, LogFormat, TracingGuard};
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry::{InstrumentationScope, KeyValue};
    use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::Resource;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;

    const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// Export is on only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (non-empty).
    pub(super) fn configured() -> bool {
        std::env::var_os(ENDPOINT_VAR).is_some_and(|v| !v.is_empty())
    }

    /// The tracer provider: batch span processor (own thread) and the
    /// OTLP/HTTP exporter, which reads the endpoint
    /// (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`), headers and timeout from
    /// the standard `OTEL_EXPORTER_OTLP_*` variables.
    fn provider(service: &str, env: &str) -> Result<SdkTracerProvider, String> {
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build()
            .map_err(|e| e.to_string())?;
        let resource = Resource::builder()
            .with_service_name(service.to_owned())
            .with_attribute(KeyValue::new("deployment.environment", env.to_owned()))
            .build();
        Ok(SdkTracerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(exporter)
            .build())
    }

    /// Installs the same filter and fmt layer as [`init_logging`] plus the
    /// OpenTelemetry layer (which takes the span name from `otel.name` when a
    /// span sets it, as `gen_ai.client` spans do).
    pub(super) fn init(format: LogFormat, service: &str, env: &str) -> TracingGuard {
        let provider = match provider(service, env) {
            Ok(provider) => provider,
            Err(e) => {
                init_logging(format);
                tracing::error!(error = %e, "OTLP trace export disabled: cannot build the exporter");
                return TracingGuard::default();
            }
        };
        let scope = InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer_with_scope(scope));
        let filter = super::env_filter();
        let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        let fmt = match format {
            LogFormat::Json => fmt
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .boxed(),
            LogFormat::Pretty => fmt.boxed(),
        };
        let installed = tracing_subscriber::registry()
            .with(filter)
            .with(fmt)
            .with(otel)
            .try_init()
            .is_ok();
        if !installed {
            // A subscriber was already installed: nothing would reach the exporter.
            let _ = provider.shutdown();
            return TracingGuard::default();
        }
        tracing::info!(service, env, "exporting spans over OTLP/HTTP");
        TracingGuard {
            provider: Some(provider),
        }
    }
}
