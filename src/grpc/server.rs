//! The gRPC server: the Retrieval service, standard health checking, server
//! reflection (v1 and v1alpha), message limits, and graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tracing::info;

use super::admission::{Admission, MAX_INGEST_MESSAGE_BYTES};
use super::connections::{ConnectionLimits, Incoming};
use super::service::RetrievalService;
use crate::auth::Tokens;
use crate::engine::Engine;
use crate::proto;
use crate::proto::retrieval_server::RetrievalServer;

/// The service name health checks and reflection report.
pub const SERVICE_NAME: &str = "wenda.v1.Retrieval";

/// Largest response message (a page of documents, a whole document).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Calls open at once on one connection (HTTP/2 streams). Every call may
/// hold a response its client is not reading: this, the connection cap
/// and the idle timeout bound that memory.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 64;
/// Largest header block a client may send.
pub const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// How long shutdown waits for requests in flight and open connections.
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// TLS for the listener: PEM certificate chain and key, and optionally the
/// CA that client certificates must chain to (mutual TLS).
#[derive(Clone)]
pub struct TlsOptions {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never reaches a log.
        f.debug_struct("TlsOptions")
            .field("client_ca", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// Access control, transport security and connection limits.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub tokens: Tokens,
    pub tls: Option<TlsOptions>,
    pub limits: ConnectionLimits,
}

/// Serves `listener` until `shutdown` completes. Starts answering at once:
/// health is NOT_SERVING and Retrieval calls get UNAVAILABLE until `engine`
/// resolves (model and index loaded), then SERVING. On shutdown, or when the
/// engine fails to load, reports NOT_SERVING and drains requests in flight.
/// The caller binds the listener, so tests serve on port 0.
pub async fn run(
    listener: TcpListener,
    engine: impl Future<Output = anyhow::Result<Arc<Engine>>>,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, ServingStatus::NotServing).await;

    // Both reflection versions: grpcurl before 1.9 and Python's
    // grpcio-reflection speak only v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let (engine_tx, engine_rx) = watch::channel::<Option<Arc<Engine>>>(None);
    // The per-method bounds (smaller for reads) are admission's, checked
    // before the decoder reserves room for a message.
    let retrieval = Admission::new(
        RetrievalServer::new(RetrievalService::loading(engine_rx))
            .max_decoding_message_size(MAX_INGEST_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_RESPONSE_BYTES),
        Arc::new(options.tokens),
    );

    let addr = listener.local_addr()?;
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let mut builder = Server::builder();
    if let Some(tls) = options.tls {
        let mut config =
            ServerTlsConfig::new().identity(Identity::from_pem(tls.cert_pem, tls.key_pem));
        if let Some(ca) = tls.client_ca_pem {
            config = config.client_ca_root(Certificate::from_pem(ca));
        }
        builder = builder.tls_config(config)?;
    }
    let server = builder
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        // HTTP/2's own default (16 KiB), stated: the largest frame a peer
        // may send. Flow-control windows stay at their fixed defaults
        // rather than adaptive ones, so what a client can make the server
        // buffer does not grow with the link.
        .max_frame_size(16 * 1024)
        // Rapid reset (CVE-2023-44487): streams reset before they are served.
        .http2_max_pending_accept_reset_streams(Some(32))
        .trace_fn(|req| {
            // A caller's x-request-id is kept so logs join across services.
            let request_id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .unwrap_or_else(|| format!("{:016x}", next_request_id()));
            tracing::info_span!("rpc", path = %req.uri().path(), request_id = %request_id)
        })
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(retrieval)
        .serve_with_incoming_shutdown(Incoming::new(listener, options.limits), async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        });
    info!(%addr, "listening");

    let lifecycle = async move {
        let loaded = async {
            tokio::pin!(shutdown);
            tokio::select! {
                loaded = engine => {
                    engine_tx.send_replace(Some(loaded?));
                    set_health(&health, ServingStatus::Serving).await;
                    info!("serving");
                    shutdown.await;
                }
                _ = &mut shutdown => {}
            }
            anyhow::Ok(())
        }
        .await;
        // Tell load balancers first, then stop accepting and drain. An engine
        // that failed to load stops the server the same way.
        set_health(&health, ServingStatus::NotServing).await;
        info!("shutting down: draining requests in flight");
        let _ = stop_tx.send(true);
        loaded
    };
    tokio::pin!(server);
    let loaded = tokio::select! {
        served = &mut server => {
            // The server ended on its own (transport error): nothing to drain.
            served?;
            return Ok(());
        }
        loaded = lifecycle => loaded,
    };
    // Drain, but a client that keeps an idle connection open (ignoring
    // GOAWAY) must not hold the process forever.
    match tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await {
        Ok(served) => served?,
        Err(_) => tracing::warn!(
            seconds = DRAIN_TIMEOUT.as_secs(),
            "drain timed out; closing remaining connections"
        ),
    }
    loaded
}

/// Sets the status of both names probes ask for: "" and the service.
async fn set_health(health: &tonic_health::server::HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    health.set_service_status(SERVICE_NAME, status).await;
}

/// A process-unique request number, for requests without an x-request-id.
fn next_request_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Mixed with the start time so ids differ across restarts.
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
    });
    start.rotate_left(20) ^ n
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    info!("shutdown signal received");
}
