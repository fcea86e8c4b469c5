//! Logs to stderr, and for `serve`, traces exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is
//! set: one trace per request (the `request` span), its generation (`stream_id`), the five workflow steps
//! and each provider call under them. Unset, no exporter exists and spans go to the log filter only.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// How `serve` logs and traces (README "Deploying").
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetrySettings {
    /// What is logged: `info`, `warn`, or per target (`info,tripstream_server=debug`).
    #[arg(long, env = "RUST_LOG", default_value = "info,tower_http=info")]
    pub log_filter: String,
    /// `text` for people, `json` for one JSON object per line.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"], ignore_case = true)]
    pub log_format: String,
    /// An OpenTelemetry collector to send traces to over OTLP/HTTP (protobuf), such as
    /// `http://otel-collector:4318`; traces go to `{endpoint}/v1/traces` (or to
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). Unset: no traces are exported. `OTEL_EXPORTER_OTLP_HEADERS`,
    /// `OTEL_EXPORTER_OTLP_TIMEOUT` and `OTEL_BSP_*` are read as the OpenTelemetry specification says.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// The `service.name` of the exported traces.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "tripstream")]
    pub otel_service_name: String,
}

/// What must outlive the server: the trace exporter, flushed by [`Telemetry::shutdown`].
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still queued and stops the exporter; waits at most `limit`.
    pub async fn shutdown(self, limit: Duration) {
        let Some(provider) = self.provider else { return };
        // The exporter's batch thread makes blocking HTTP calls: wait for it off the async workers.
        let flush = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(limit));
        match tokio::time::timeout(limit + Duration::from_secs(1), flush).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => eprintln!("warning: traces not all exported at shutdown: {e}"),
            Ok(Err(_)) | Err(_) => eprintln!("warning: traces not all exported at shutdown: the exporter did not stop"),
        }
    }
}

/// Logging for `serve`, and the OTLP exporter when one is configured.
pub fn init(settings: &TelemetrySettings) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_new(&settings.log_filter).context("RUST_LOG")?;
    let json = settings.log_format.eq_ignore_ascii_case("json");
    let endpoint = settings.otel_exporter_otlp_endpoint.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let Some(endpoint) = endpoint else {
        // No exporter: the log's filter is the only one, as global as it was before traces existed.
        tracing_subscriber::registry().with(filter).with(log_layer(json)).try_init()?;
        return Ok(Telemetry { provider: None });
    };
    let provider = provider(endpoint, &settings.otel_service_name)?;
    // Each layer its own filter: the log as RUST_LOG says, the traces the project's spans at info.
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("tripstream"))
        .with_filter(Targets::new().with_target("tripstream", Level::INFO));
    tracing_subscriber::registry().with(log_layer(json).with_filter(filter)).with(traces).try_init()?;
    tracing::info!(endpoint = without_credentials(endpoint), "exporting traces over OTLP/HTTP");
    Ok(Telemetry { provider: Some(provider) })
}

/// Logging for the other commands: `RUST_LOG` filters (default `default_filter`), `LOG_FORMAT=json`.
pub fn init_logging(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = tracing_subscriber::registry().with(filter).with(log_layer(json)).try_init();
}

fn log_layer<S>(json: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    // Colours only on a terminal (and not under `NO_COLOR`): a log read from a file, `docker logs` or
    // journald would otherwise carry the escape codes into every grep.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(colour);
    if json { layer.json().boxed() } else { layer.boxed() }
}

/// The endpoint as it may be logged: no `user:password@`.
fn without_credentials(endpoint: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let host = rest[..authority_end].rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}{}", &rest[authority_end..])
        }
        None => endpoint.rsplit('@').next().unwrap_or_default().to_owned(),
    }
}

/// A tracer provider exporting in batches (a background thread, `OTEL_BSP_*`) over OTLP/HTTP protobuf.
fn provider(endpoint: &str, service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    // The exporter's HTTP client is reqwest built with rustls and no default crypto provider.
    tripstream_adapters::http::install_crypto_provider();
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(Protocol::HttpBinary);
    // The signal's own variable, when set, is the whole URL and wins; the exporter reads it itself.
    if std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none() {
        exporter = exporter.with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')));
    }
    // The exporter's own error repeats the URL, credentials and all: say which setting instead.
    let exporter = exporter.build().map_err(|e| {
        let reason = match e {
            opentelemetry_otlp::ExporterBuildError::InvalidConfiguration(_) => {
                "not a valid URL, or another OTEL_EXPORTER_OTLP_* setting is invalid"
            }
            _ => "the exporter cannot be built",
        };
        anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT ({}): {reason}", without_credentials(endpoint))
    })?;
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_logged_endpoint_has_no_credentials() {
        assert_eq!(super::without_credentials("https://u:p@collector:4318/x"), "https://collector:4318/x");
        assert_eq!(super::without_credentials("http://collector:4318"), "http://collector:4318");
        assert_eq!(super::without_credentials("u:p@collector"), "collector");
    }
}
