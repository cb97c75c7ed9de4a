//! What a Retrieval call must pass before its body is read: the bearer
//! token for its method, a per-method bound on the message it announces,
//! and a server-wide budget of request bytes being received. Without it a
//! client with no token could make the server reserve 60 MiB per stream by
//! announcing a message and sending 70 bytes. Also marks the call in
//! flight on its connection (the idle timer waits for it) and logs calls
//! the client gave up on.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::transport::server::TlsConnectInfo;
use tower::Service;

use super::connections::{CallGuard, ConnectionInfo};
use crate::auth::{Role, Tokens};
use crate::telemetry::Throttle;

/// Largest Ingest message: room for a batch of large documents.
pub const MAX_INGEST_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Largest message of every other call: 64 texts of 8,192 characters for
/// Embed, or 1,000 document ids for Search, fit with room to spare.
pub const MAX_READ_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Request bytes announced and not yet handled, over all calls: what
/// clients can make the server hold for bodies still arriving.
pub const REQUEST_BYTES_BUDGET: usize = 256 * 1024 * 1024;

/// The role and message bound of a Retrieval method (its path's last part).
fn rules(method: &str) -> (Role, usize) {
    match method {
        "Ingest" => (Role::Admin, MAX_INGEST_MESSAGE_BYTES),
        "Delete" => (Role::Admin, MAX_READ_MESSAGE_BYTES),
        _ => (Role::Read, MAX_READ_MESSAGE_BYTES),
    }
}

/// Wraps the Retrieval service (see the module docs).
#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    tokens: Arc<Tokens>,
    budget: Arc<Semaphore>,
}

impl<S> Admission<S> {
    pub fn new(inner: S, tokens: Arc<Tokens>) -> Self {
        Self {
            inner,
            tokens,
            budget: Arc::new(Semaphore::new(REQUEST_BYTES_BUDGET)),
        }
    }
}

impl<S: NamedService> NamedService for Admission<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Admission<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let (role, limit) = rules(&method);
        let mut request = request;
        match self.tokens.authorize(request.headers(), role) {
            // The service reads the token's scope from the request.
            Ok(scope) => {
                request.extensions_mut().insert(scope);
            }
            Err(err) => {
                let status: tonic::Status = err.into();
                return Box::pin(async move { Ok(status.into_http()) });
            }
        }
        let connection = request
            .extensions()
            .get::<ConnectionInfo>()
            .or_else(|| {
                request
                    .extensions()
                    .get::<TlsConnectInfo<ConnectionInfo>>()
                    .map(TlsConnectInfo::get_ref)
            })
            .cloned();
        let in_flight = connection.as_ref().map(ConnectionInfo::call);
        let request = request.map(|body| {
            Body::new(Bounded {
                inner: body,
                method: method.clone(),
                limit,
                budget: self.budget.clone(),
                held: None,
                header: Vec::with_capacity(5),
                remaining: 0,
            })
        });
        // The clone that was made ready serves this call (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let call = Call {
            method,
            remote: connection.and_then(|c| c.remote),
            _in_flight: in_flight,
            done: false,
        };
        Box::pin(async move {
            let mut call = call;
            let response = inner.call(request).await;
            call.done = true;
            response
        })
    }
}

/// A call in flight: logs it if the client gives up first.
struct Call {
    method: String,
    remote: Option<std::net::SocketAddr>,
    _in_flight: Option<CallGuard>,
    done: bool,
}

impl Drop for Call {
    fn drop(&mut self) {
        static CANCELLED: Throttle = Throttle::new(Duration::from_secs(1));
        if !self.done
            && let Some(also) = CANCELLED.ready()
        {
            tracing::info!(
                method = %self.method,
                remote = ?self.remote,
                cancelled_since_last_line = also,
                "call cancelled by the client (deadline or disconnect)"
            );
        }
    }
}

/// A request body that refuses a gRPC message larger than its method's
/// bound, and holds budget for each message announced until the body is
/// dropped, before the decoder reserves room for it.
struct Bounded {
    inner: Body,
    method: String,
    limit: usize,
    budget: Arc<Semaphore>,
    held: Option<OwnedSemaphorePermit>,
    /// The bytes of a message header (flag and length) read so far.
    header: Vec<u8>,
    /// Bytes of the current message still to come.
    remaining: usize,
}

impl Bounded {
    /// Follows the message framing through `data`, checking each header.
    fn check(&mut self, mut data: &[u8]) -> Result<(), tonic::Status> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.header.len() < 5 {
                break;
            }
            let announced = (&self.header[1..5]).get_u32() as usize;
            self.header.clear();
            self.remaining = announced;
            self.admit(announced)?;
        }
        Ok(())
    }

    fn admit(&mut self, announced: usize) -> Result<(), tonic::Status> {
        if announced > self.limit {
            return Err(tonic::Status::resource_exhausted(format!(
                "a {} message may be at most {} bytes; this one announces {announced}",
                self.method, self.limit
            )));
        }
        let permits = u32::try_from(announced).unwrap_or(u32::MAX);
        let permit = self
            .budget
            .clone()
            .try_acquire_many_owned(permits)
            .map_err(|_| {
                tonic::Status::resource_exhausted(
                    "the server is receiving too many large requests; retry later",
                )
            })?;
        match self.held.as_mut() {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        Ok(())
    }
}

impl HttpBody for Bounded {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let frame = match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            None => return Poll::Ready(None),
            Some(Err(err)) => return Poll::Ready(Some(Err(err))),
            Some(Ok(frame)) => frame,
        };
        if let Some(data) = frame.data_ref()
            && let Err(status) = self.check(data)
        {
            return Poll::Ready(Some(Err(status)));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounded(limit: usize, budget: usize) -> Bounded {
        Bounded {
            inner: Body::empty(),
            method: "Search".into(),
            limit,
            budget: Arc::new(Semaphore::new(budget)),
            held: None,
            header: Vec::new(),
            remaining: 0,
        }
    }

    fn message(len: u32) -> Vec<u8> {
        let mut m = vec![0u8];
        m.extend_from_slice(&len.to_be_bytes());
        m.extend(std::iter::repeat_n(7u8, len as usize));
        m
    }

    #[test]
    fn messages_are_followed_across_chunk_boundaries() {
        let mut body = bounded(100, 1000);
        let mut stream = message(10);
        stream.extend(message(100));
        stream.extend(message(3));
        // Every split of the stream into two chunks, headers cut anywhere.
        for cut in 0..stream.len() {
            let mut b = bounded(100, 1000);
            b.check(&stream[..cut]).unwrap();
            b.check(&stream[cut..]).unwrap();
            assert_eq!((b.remaining, b.header.len()), (0, 0));
            assert_eq!(b.held.as_ref().map(|p| p.num_permits()), Some(113));
        }
        let err = body.check(&message(101)).unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(err.message().contains("at most 100 bytes"), "{err:?}");
    }

    #[test]
    fn announced_bytes_are_held_against_the_budget_until_dropped() {
        let budget = Arc::new(Semaphore::new(150));
        let take = |len: u32| {
            let mut b = bounded(100, 0);
            b.budget = budget.clone();
            b.check(&message(len)[..5]).map(|()| b)
        };
        let first = take(100).unwrap();
        let err = take(60).err().unwrap();
        assert!(err.message().contains("too many large requests"), "{err:?}");
        drop(first);
        assert!(take(60).is_ok());
    }

    #[test]
    fn writes_need_the_admin_role_and_ingest_gets_the_large_bound() {
        assert_eq!(rules("Ingest"), (Role::Admin, MAX_INGEST_MESSAGE_BYTES));
        assert_eq!(rules("Delete").0, Role::Admin);
        for read in ["Search", "Embed", "ListDocuments", "GetDocument", "Info"] {
            assert_eq!(rules(read), (Role::Read, MAX_READ_MESSAGE_BYTES));
        }
    }
}
