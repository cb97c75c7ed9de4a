//! Accepted connections: a cap on how many are open at once, an idle
//! timeout, TCP keepalive, a pause instead of a busy loop when `accept`
//! fails (out of file descriptors), and the file-descriptor headroom check
//! at start-up. Without them idle clients could hold every descriptor, after
//! which health probes and every client failed with nothing logged.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

use crate::telemetry::Throttle;

/// Connections open at once by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// A connection with no bytes in either direction and no call in flight
/// for this long is closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Descriptors kept for everything besides connections: the database,
/// the model, graph dumps, the metrics listener, logs.
pub const FD_RESERVE: u64 = 256;
/// Kernel keepalive probes find peers that vanished without a FIN; they
/// are invisible to the idle timer, unlike HTTP/2 pings.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// How long accepting pauses after an error such as EMFILE.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl ConnectionLimits {
    /// Raises the soft limit on open files to the hard one, and checks that
    /// the connection cap leaves [`FD_RESERVE`] descriptors for the rest:
    /// a cap the limit cannot hold is lowered, with a warning.
    pub fn fit_to_fd_limit(mut self) -> anyhow::Result<Self> {
        let limit = raise_fd_limit()?;
        let room = limit.saturating_sub(FD_RESERVE);
        anyhow::ensure!(
            room >= 16,
            "the open-file limit ({limit}) leaves no room for connections; raise `ulimit -n`"
        );
        if self.max_connections as u64 > room {
            tracing::warn!(
                limit,
                requested = self.max_connections,
                max_connections = room,
                "the open-file limit cannot hold --max-connections; lowering it"
            );
            self.max_connections = room as usize;
        }
        Ok(self)
    }
}

/// The soft `RLIMIT_NOFILE` after raising it to the hard limit.
fn raise_fd_limit() -> anyhow::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        anyhow::ensure!(
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0,
            "getrlimit: {}",
            io::Error::last_os_error()
        );
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Ok(limit.rlim_cur)
}

/// What a request knows about its connection (a request extension): the
/// peer, and the count of calls in flight that keeps the idle timer off.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub remote: Option<SocketAddr>,
    calls: Arc<AtomicUsize>,
}

impl ConnectionInfo {
    /// Marks a call in flight on this connection until the guard drops.
    pub fn call(&self) -> CallGuard {
        self.calls.fetch_add(1, Ordering::Relaxed);
        CallGuard(self.calls.clone())
    }
}

pub struct CallGuard(Arc<AtomicUsize>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The listener's connections, as the server's incoming stream.
pub struct Incoming {
    listener: TcpListener,
    limits: ConnectionLimits,
    open: Arc<AtomicUsize>,
    backoff: Option<Pin<Box<Sleep>>>,
    refused: Throttle,
    failed: Throttle,
}

impl Incoming {
    pub fn new(listener: TcpListener, limits: ConnectionLimits) -> Self {
        Self {
            listener,
            limits,
            open: Arc::new(AtomicUsize::new(0)),
            backoff: None,
            refused: Throttle::new(Duration::from_secs(10)),
            failed: Throttle::new(Duration::from_secs(10)),
        }
    }
}

impl futures_core::Stream for Incoming {
    type Item = io::Result<Connection>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(backoff) = this.backoff.as_mut() {
                ready!(backoff.as_mut().poll(cx));
                this.backoff = None;
            }
            match ready!(this.listener.poll_accept(cx)) {
                Ok((stream, remote)) => {
                    if this.open.load(Ordering::Relaxed) >= this.limits.max_connections {
                        // Closed at once: the client sees a reset and can
                        // retry elsewhere; the descriptor is free again.
                        drop(stream);
                        if let Some(also) = this.refused.ready() {
                            tracing::warn!(
                                max_connections = this.limits.max_connections,
                                refused_since_last_line = also,
                                "connection cap reached; refusing new connections"
                            );
                        }
                        continue;
                    }
                    return Poll::Ready(Some(Ok(Connection::new(
                        stream,
                        Some(remote),
                        this.open.clone(),
                        this.limits.idle_timeout,
                    ))));
                }
                // A connection that died before it was accepted.
                Err(err) if err.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(err) => {
                    // EMFILE and ENFILE stay until a descriptor is freed:
                    // retrying at once would spin a core.
                    if let Some(also) = this.failed.ready() {
                        tracing::error!(%err, failures_since_last_line = also, "accept failed; pausing");
                    }
                    this.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                }
            }
        }
    }
}

/// One accepted connection: counts itself open while it lives and ends
/// itself when idle.
pub struct Connection {
    stream: TcpStream,
    info: ConnectionInfo,
    open: Arc<AtomicUsize>,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
}

impl Connection {
    fn new(
        stream: TcpStream,
        remote: Option<SocketAddr>,
        open: Arc<AtomicUsize>,
        idle_timeout: Duration,
    ) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        // TCP_NODELAY: a small reply otherwise waits for the client's
        // delayed ACK (Nagle) on every unary call (BENCHMARKS.md, "Figures
        // behind the code").
        let _ = stream.set_nodelay(true);
        let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        Self {
            stream,
            info: ConnectionInfo {
                remote,
                calls: Arc::new(AtomicUsize::new(0)),
            },
            open,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
        }
    }

    fn touch(&mut self) {
        self.idle.as_mut().reset(Instant::now() + self.idle_timeout);
    }

    /// Whether the idle timer ran out with no call in flight. A call in
    /// flight (a long ingest, say) restarts the timer instead.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> bool {
        if self.idle.as_mut().poll(cx).is_pending() {
            return false;
        }
        if self.info.calls.load(Ordering::Relaxed) > 0 {
            self.touch();
            let _ = self.idle.as_mut().poll(cx);
            return false;
        }
        true
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        self.info.clone()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            // The server polls reads for as long as the connection lives,
            // so this is where an idle connection is ended.
            Poll::Pending if self.poll_idle(cx) => {
                tracing::debug!(remote = ?self.info.remote, "closing an idle connection");
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.stream).poll_write(cx, buf));
        if matches!(written, Ok(n) if n > 0) {
            self.touch();
        }
        Poll::Ready(written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.stream).poll_write_vectored(cx, bufs));
        if matches!(written, Ok(n) if n > 0) {
            self.touch();
        }
        Poll::Ready(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
