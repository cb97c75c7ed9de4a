//! Prometheus metrics: recorded with the `metrics` facade throughout the
//! crate, rendered by `metrics-exporter-prometheus`, and served on their own
//! HTTP listener (`--metrics-listen`) so scrapes never compete with gRPC.
//!
//! Names:
//! - `wenda_requests_total{method, code}` and `wenda_request_duration_seconds{method, code}`
//! - `wenda_embed_batch_size`, `wenda_embed_duration_seconds`
//! - `wenda_documents{language}`, `wenda_passages{language}`
//! - `wenda_build_info{version, model}` (always 1)

use std::net::SocketAddr;
use std::time::Instant;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tracing::{info, warn};

/// Installs the global recorder; returns the handle that renders the text format.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])?
        .install_recorder()?;
    metrics::gauge!("wenda_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
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

/// Records one RPC: its count and duration, by method and status code.
pub fn record_rpc(method: &'static str, code: tonic::Code, started: Instant) {
    let code = format!("{code:?}");
    metrics::counter!("wenda_requests_total", "method" => method, "code" => code.clone())
        .increment(1);
    metrics::histogram!("wenda_request_duration_seconds", "method" => method, "code" => code)
        .record(started.elapsed().as_secs_f64());
}
