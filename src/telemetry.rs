//! Logs and traces: the `tracing` subscriber (text or JSON lines on stderr,
//! filtered by `RUST_LOG`) and, with the `otel` feature, export of wenda's
//! spans over OTLP/gRPC to a collector (`--otlp-endpoint`).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// `RUST_LOG` when it is unset.
/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

const DEFAULT_FILTER: &str = "info,h2=warn,tower=warn,hyper=warn,ort=warn";

/// Keeps the span exporter running. [`Telemetry::shutdown`] (or dropping it)
/// flushes the spans still waiting in the batch.
#[must_use = "dropping it stops the span export"]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    otel: Option<otel::Exporter>,
}

/// Installs the global subscriber; with `otlp_endpoint`, also the OTLP
/// exporter (an error without the `otel` feature).
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    check_otel_support(otlp_endpoint)?;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(fmt);

    #[cfg(feature = "otel")]
    {
        let exporter = otlp_endpoint.map(otel::Exporter::start).transpose()?;
        let layer = exporter.as_ref().map(|e| {
            // Only wenda's own spans: the exporter's gRPC client (h2, tonic,
            // hyper) must not trace its own exports back into the batch.
            tracing_opentelemetry::layer()
                .with_tracer(e.tracer())
                .with_filter(
                    tracing_subscriber::filter::Targets::new()
                        .with_target("wenda", tracing::Level::TRACE),
                )
        });
        registry.with(layer).try_init()?;
        if let Some(endpoint) = otlp_endpoint {
            tracing::info!(endpoint, "exporting traces over OTLP/gRPC");
        }
        Ok(Telemetry { otel: exporter })
    }
    #[cfg(not(feature = "otel"))]
    {
        registry.try_init()?;
        Ok(Telemetry {})
    }
}

/// Refuses `--otlp-endpoint` in a binary built without the exporter, rather
/// than ignoring it and leaving the operator wondering where the traces are.
fn check_otel_support(otlp_endpoint: Option<&str>) -> anyhow::Result<()> {
    if cfg!(feature = "otel") {
        return Ok(());
    }
    match otlp_endpoint {
        Some(endpoint) => anyhow::bail!(
            "--otlp-endpoint {endpoint}: this wenda was built without the `otel` feature \
             (build it with `cargo build --release --features otel`)"
        ),
        None => Ok(()),
    }
}

impl Telemetry {
    /// Flushes and stops the span export (waits up to a few seconds for the
    /// collector).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(exporter) = self.otel.take() {
            exporter.shutdown();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(feature = "otel")]
mod otel {
    use std::time::Duration;

    use anyhow::Context;
    use opentelemetry::KeyValue;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};

    /// How long shutdown waits for the last batch to reach the collector.
    const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

    /// The batch span processor and the runtime its gRPC channel lives on.
    pub(super) struct Exporter {
        provider: SdkTracerProvider,
        runtime: tokio::runtime::Runtime,
    }

    impl Exporter {
        pub(super) fn start(endpoint: &str) -> anyhow::Result<Self> {
            // The SDK's batch processor exports from its own thread, but the
            // tonic channel needs a Tokio runtime for its connection task. A
            // one-thread runtime of its own serves every command (`embed` has
            // no runtime) and stays up until the final flush, after the
            // command's runtime has gone.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("otlp-export")
                .enable_all()
                .build()
                .context("starting the OTLP export runtime")?;
            let exporter = {
                let _entered = runtime.enter();
                opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint)
                    .build()
                    .with_context(|| format!("--otlp-endpoint {endpoint}"))?
            };
            let mut resource = Resource::builder();
            // OTEL_SERVICE_NAME, when set, names the service (the SDK reads it).
            if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
                resource = resource.with_service_name("wenda");
            }
            let resource = resource
                .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                .build();
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource)
                .build();
            Ok(Self { provider, runtime })
        }

        pub(super) fn tracer(&self) -> Tracer {
            self.provider.tracer("wenda")
        }

        pub(super) fn shutdown(self) {
            if let Err(err) = self.provider.shutdown_with_timeout(FLUSH_TIMEOUT) {
                // The subscriber may be gone by now: stderr directly.
                eprintln!("wenda: flushing traces: {err}");
            }
            self.runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// Lets a repeated log line through at most once per period, counting the
/// ones it held back, so a flood (refused connections, undecodable
/// requests) cannot flood the log as well.
#[derive(Debug)]
pub struct Throttle {
    period: std::time::Duration,
    /// When a line last went through, and how many were held back since.
    state: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

impl Throttle {
    pub const fn new(period: std::time::Duration) -> Self {
        Self {
            period,
            state: std::sync::Mutex::new((None, 0)),
        }
    }

    /// `Some(held back since the last line)` when a line may go out now.
    pub fn ready(&self) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < self.period => {
                state.1 += 1;
                None
            }
            _ => {
                let held = std::mem::take(&mut state.1);
                state.0 = Some(now);
                Some(held)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_flag_needs_the_otel_feature() {
        assert!(check_otel_support(None).is_ok());
        let result = check_otel_support(Some("http://127.0.0.1:4317"));
        if cfg!(feature = "otel") {
            assert!(result.is_ok());
        } else {
            let message = result.unwrap_err().to_string();
            assert!(
                message.contains("--otlp-endpoint") && message.contains("`otel` feature"),
                "{message}"
            );
        }
    }
}
