//! Where log lines and spans go: stderr as text or JSON lines, filtered by `RUST_LOG`, and,
//! when `[tracing] otlp_endpoint` is set, an OpenTelemetry collector over OTLP/HTTP.
//!
//! Spans carry statement fingerprints, never SQL literals, so exporting them is as safe as
//! logging them. Crates that log the SQL they parse or plan never log below INFO, whatever
//! `RUST_LOG` asks, and none of their spans are exported.

use crate::config::{LogFormat, RawTracing};
use crate::error::{Error, Result};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{filter, fmt, EnvFilter, Layer, Registry};

/// Crates whose DEBUG and TRACE events quote the statement text.
const QUIET: [&str; 4] = ["sqlparser=info", "datafusion=info", "arrow=info", "pgwire=info"];

/// Keeps the span exporter running; dropping it sends the spans still batched, so drop it
/// after the runtime has stopped (the export runs on its own thread, not on the runtime).
#[must_use = "spans are exported only while the guard lives"]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                tracing::warn!(error = %e, "could not send the last spans to the OTLP endpoint");
            }
        }
    }
}

/// Installs the process's subscriber. `default_filter` applies when `RUST_LOG` is unset;
/// `export` turns on OTLP when it names an endpoint. Call it outside the async runtime: the
/// exporter's HTTP client is a blocking one.
pub fn init(format: LogFormat, default_filter: &str, export: Option<&RawTracing>) -> Result<Guard> {
    let provider = match export {
        Some(tracing) => otlp_provider(tracing)?,
        None => None,
    };
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer("cloudpg")).with_filter(
            filter::Targets::new()
                .with_target("cloudpg", tracing::Level::DEBUG)
                // The embedded emulator stands for AWS; its spans are not ours.
                .with_target("cloudpg_emulator", filter::LevelFilter::OFF),
        )
    });
    Registry::default()
        .with(stderr_layer(format).with_filter(env_filter(default_filter)))
        .with(otel)
        .try_init()
        .map_err(|e| Error::internal(format!("installing the log subscriber: {e}")))?;
    Ok(Guard { provider })
}

fn env_filter(default: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    for quiet in QUIET {
        if let Ok(directive) = quiet.parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

fn stderr_layer(format: LogFormat) -> Box<dyn Layer<Registry> + Send + Sync> {
    use std::io::IsTerminal;
    let layer = fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => layer.with_ansi(std::io::stderr().is_terminal()).boxed(),
        // One object per line: the event's fields at the top level, with the spans it ran in
        // (the statement's fingerprint lives on its span).
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    }
}

/// The batching span pipeline to the configured endpoint; `None` when none is configured.
fn otlp_provider(tracing: &RawTracing) -> Result<Option<SdkTracerProvider>> {
    let Some(endpoint) = &tracing.otlp_endpoint else {
        return Ok(None);
    };
    let headers = tracing.otlp_headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint.clone())
        .with_headers(headers)
        .with_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| Error::Config(format!("tracing.otlp_endpoint = {endpoint:?}: {e}")))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(tracing.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    ))
}
