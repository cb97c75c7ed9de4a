//! Prometheus metrics: recorded with the `metrics` facade throughout the
//! crate, rendered by `metrics-exporter-prometheus`, and served on their own
//! HTTP listener (`--metrics-listen`) so scrapes never compete with gRPC.
//!
//! Names:
//! - `wenda_requests_total{method, code}` and `wenda_request_duration_seconds{method, code}` (gRPC)
//! - `wenda_http_requests_total{route, status}` and `wenda_http_request_duration_seconds{route, status}`
//! - `wenda_embed_batch_size` (texts per model run), `wenda_embed_duration_seconds`
//! - `wenda_documents{language}`, `wenda_passages{language}`
//! - `wenda_store_applied_sequence` (the store generation in memory)
//! - `wenda_query_cache_hits_total`, `wenda_query_cache_misses_total`
//! - `wenda_build_info{version}` (always 1)
//!
//! Every name is described in [`install`], so each has a `# HELP` line.

use std::net::SocketAddr;
use std::time::Instant;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tracing::{info, warn};

/// Installs the global recorder; returns the handle that renders the text format.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])?
        // A count of texts, not seconds: powers of two up to the largest
        // batch a model run takes.
        .set_buckets_for_metric(
            Matcher::Full("wenda_embed_batch_size".into()),
            &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
        )?
        .install_recorder()?;
    describe();
    metrics::gauge!("wenda_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

/// The `# HELP` text and unit of every metric.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "wenda_requests_total",
        "gRPC calls finished, by method and status code"
    );
    describe_histogram!(
        "wenda_request_duration_seconds",
        Unit::Seconds,
        "gRPC call duration, by method and status code"
    );
    describe_counter!(
        "wenda_http_requests_total",
        "HTTP API requests finished, by route and HTTP status"
    );
    describe_histogram!(
        "wenda_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP API request duration, by route and HTTP status"
    );
    describe_histogram!(
        "wenda_embed_batch_size",
        Unit::Count,
        "Texts embedded per model run"
    );
    describe_histogram!(
        "wenda_embed_duration_seconds",
        Unit::Seconds,
        "Duration of one model run"
    );
    describe_gauge!("wenda_documents", "Documents indexed, by language");
    describe_gauge!(
        "wenda_store_applied_sequence",
        "The store's change-log sequence this replica has applied"
    );
    describe_gauge!("wenda_passages", "Passages indexed, by language");
    describe_counter!(
        "wenda_query_cache_hits_total",
        "Searches whose query vector came from the cache"
    );
    describe_counter!(
        "wenda_query_cache_misses_total",
        "Searches whose query was embedded"
    );
    describe_gauge!(
        "wenda_build_info",
        "Always 1; the version label names the running build"
    );
}

/// Serves `GET /metrics` (any path, in fact) on `listener` until the process ends.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle) {
    info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "metrics listening");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                warn!(%err, "metrics accept failed");
                continue;
            }
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_request| {
                let body = handle.render();
                async move {
                    hyper::Response::builder()
                        .header("content-type", "text/plain; version=0.0.4")
                        .body(Full::new(Bytes::from(body)))
                }
            });
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                warn!(%err, "metrics connection failed");
            }
        });
    }
}

/// Binds the metrics listener and serves it in the background.
pub async fn start(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let handle = install()?;
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(serve(listener, handle));
    Ok(bound)
}

/// Records one HTTP request: its count and duration, by route (the method
/// and the matched path template, so the label set stays bounded) and status.
pub fn record_http(route: String, status: u16, started: Instant) {
    let status = status.to_string();
    metrics::counter!("wenda_http_requests_total", "route" => route.clone(), "status" => status.clone())
        .increment(1);
    metrics::histogram!("wenda_http_request_duration_seconds", "route" => route, "status" => status)
        .record(started.elapsed().as_secs_f64());
}

/// Records one RPC: its count and duration, by method and status code.
pub fn record_rpc(method: &'static str, code: tonic::Code, started: Instant) {
    let code = format!("{code:?}");
    metrics::counter!("wenda_requests_total", "method" => method, "code" => code.clone())
        .increment(1);
    metrics::histogram!("wenda_request_duration_seconds", "method" => method, "code" => code)
        .record(started.elapsed().as_secs_f64());
}
