//! What a client without a token, or with a read token, can make the real
//! server do: bounded messages checked (and tokens) before a body is read,
//! undecodable requests answered INVALID_ARGUMENT, a connection cap and an
//! idle timeout that keep descriptors for the clients that use them.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tonic::Code;
use tonic::codegen::http;
use wenda::auth::Tokens;
use wenda::grpc::ServeOptions;
use wenda::grpc::connections::ConnectionLimits;
use wenda::proto;
use wenda::proto::retrieval_client::RetrievalClient;

use crate::common;
use crate::security::start;

/// Sends a call's headers and a message header announcing `announced`
/// bytes, then 70 bytes of it and no more, the way a client that wants
/// the server to hold memory would; returns the grpc-status the server
/// answers with, within 10 s.
async fn announce(addr: SocketAddr, path: &str, token: Option<&str>, announced: u32) -> String {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let mut request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let (response, mut body) = client
        .send_request(request.body(()).unwrap(), false)
        .unwrap();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&announced.to_be_bytes());
    frame.extend(std::iter::repeat_n(b'x', 70));
    body.send_data(Bytes::from(frame), false).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("the server answers without waiting for the rest of the body")
        .unwrap();
    let status = response.headers().get("grpc-status").cloned();
    let status = match status {
        Some(s) => s,
        None => {
            let mut body = response.into_body();
            while body.data().await.is_some() {}
            body.trailers().await.unwrap().unwrap()["grpc-status"].clone()
        }
    };
    status.to_str().unwrap().to_string()
}

const SEARCH: &str = "/wenda.v1.Retrieval/Search";
const INGEST: &str = "/wenda.v1.Retrieval/Ingest";

/// A call without a valid token is refused from its headers: before, the
/// server waited for (and reserved room for) the whole announced message
/// before it looked at the token.
#[tokio::test]
async fn a_call_without_a_token_is_refused_before_its_body_is_read() {
    let tokens = Tokens::parse("read reader-0123456789abcdef\n").unwrap();
    let (addr, _stop) = start(
        common::corpus_engine(),
        ServeOptions {
            tokens,
            ..Default::default()
        },
    )
    .await;
    let unauthenticated = (Code::Unauthenticated as i32).to_string();
    let denied = (Code::PermissionDenied as i32).to_string();
    assert_eq!(
        announce(addr, SEARCH, None, 60 << 20).await,
        unauthenticated
    );
    assert_eq!(
        announce(addr, SEARCH, Some("wrong-0123456789abcdef"), 1 << 20).await,
        unauthenticated
    );
    assert_eq!(
        announce(addr, INGEST, Some("reader-0123456789abcdef"), 1 << 20).await,
        denied
    );
}

/// Messages larger than their method allows are refused from the message
/// header, reads at 4 MiB and Ingest at 64 MiB; before, any method took
/// 64 MiB and the server reserved it for a body that never came.
#[tokio::test]
async fn oversized_messages_are_refused_from_their_header() {
    let (addr, _stop) = start(common::corpus_engine(), ServeOptions::default()).await;
    let exhausted = (Code::ResourceExhausted as i32).to_string();
    assert_eq!(announce(addr, SEARCH, None, 60 << 20).await, exhausted);
    assert_eq!(announce(addr, INGEST, None, 65 << 20).await, exhausted);

    // Through a real client: a 5 MiB Embed is refused by its bound, while
    // an Ingest of the same size is read (and then judged by its content).
    let mut client = RetrievalClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .max_encoding_message_size(usize::MAX);
    let big = "词".repeat((5 << 20) / 3);
    let err = client
        .embed(proto::EmbedRequest {
            texts: vec![big.clone()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("Embed message may be at most"),
        "{err:?}"
    );
    let err = client
        .ingest(proto::IngestRequest {
            documents: vec![proto::Document {
                id: String::new(),
                text: big,
                ..Default::default()
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
}

/// Bytes that do not decode as the method's request are the client's
/// fault: INVALID_ARGUMENT naming the message (tonic said INTERNAL).
#[tokio::test]
async fn undecodable_requests_are_invalid_argument() {
    #[derive(Clone, PartialEq, prost::Message)]
    struct NotASearch {
        /// Field 1 of SearchRequest is a string; a varint there does not decode.
        #[prost(uint64, tag = "1")]
        query: u64,
    }
    let (addr, _stop) = start(common::corpus_engine(), ServeOptions::default()).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let err = grpc
        .unary::<_, proto::SearchResponse, _>(
            tonic::Request::new(NotASearch { query: 7 }),
            http::uri::PathAndQuery::from_static(SEARCH),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("not a valid SearchRequest"),
        "{err:?}"
    );
}

/// Whether the server closed `stream` within `within` (reading past its
/// HTTP/2 preface, which it sends first).
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    let closed = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(within, closed).await.is_ok()
}

async fn health(addr: SocketAddr) -> Result<(), tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .map(|_| ())
}

/// Connections beyond the cap are closed as they arrive, and a freed slot
/// takes the next; before, idle connections piled up to the fd limit and
/// then health probes and every client failed.
#[tokio::test]
async fn connections_beyond_the_cap_are_closed_and_slots_free_up() {
    let (addr, _stop) = start(
        common::corpus_engine(),
        ServeOptions {
            limits: ConnectionLimits {
                max_connections: 3,
                idle_timeout: Duration::from_secs(300),
            },
            ..Default::default()
        },
    )
    .await;
    health(addr).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // Let the server accept them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut extra, Duration::from_secs(5)).await);
    assert!(
        health(addr).await.is_err(),
        "a fourth connection was served"
    );
    for stream in &mut held {
        assert!(!closed_within(stream, Duration::from_millis(50)).await);
    }
    held.pop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    health(addr)
        .await
        .expect("a freed slot serves the next client");
}

/// A connection with nothing on it is closed after the idle timeout, but
/// a call that runs longer than the timeout is not cut short.
#[tokio::test]
async fn idle_connections_are_closed_but_long_calls_finish() {
    let data = tempfile::tempdir().unwrap();
    let engine = common::engine(data.path(), None).await;
    let (addr, _stop) = start(
        engine,
        ServeOptions {
            limits: ConnectionLimits {
                max_connections: 64,
                idle_timeout: Duration::from_millis(300),
            },
            ..Default::default()
        },
    )
    .await;
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);

    // Long enough for the model to take well over the timeout on any CPU
    // (about 200 passages).
    let text: String = (0..2000)
        .map(|n| format!("Paragraph {n} tells how the harbour crane lifted container {n}. "))
        .collect();
    let mut client = RetrievalClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    client
        .ingest(proto::IngestRequest {
            documents: vec![proto::Document {
                id: "long".into(),
                text,
                ..Default::default()
            }],
        })
        .await
        .expect("a call longer than the idle timeout completes");
    let took = started.elapsed();
    assert!(
        took > Duration::from_millis(300),
        "the call took only {took:?}: not a test of the timer"
    );
}
