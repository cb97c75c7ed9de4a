//! Hostile clients for `make soak`: connections that never send a byte, and
//! slow readers that open every stream a connection allows with GetDocument
//! and never read the answers (HTTP/2 window 0). Runs beside `load` for the
//! soak's length and prints one JSON line of what it held.
//!
//! cargo run --release --example abuse -- --server 127.0.0.1:50051 \
//!     --idle-connections 2000 --slow-readers 20 --duration-secs 60

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use clap::Parser;
use prost::Message;
use wenda::proto::retrieval_client::RetrievalClient;
use wenda::proto::{GetDocumentRequest, ListDocumentsRequest};

#[derive(Parser, Debug)]
struct Args {
    /// Server address (host:port).
    #[arg(long, default_value = "127.0.0.1:50051")]
    server: SocketAddr,
    /// TCP connections opened and left idle.
    #[arg(long, default_value_t = 2000)]
    idle_connections: usize,
    /// HTTP/2 connections that open streams and never read.
    #[arg(long, default_value_t = 20)]
    slow_readers: usize,
    /// Streams each slow reader tries to open.
    #[arg(long, default_value_t = 2000)]
    streams: usize,
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
}

/// A gRPC-framed GetDocument request body.
fn get_document(id: &str) -> Bytes {
    let message = GetDocumentRequest { id: id.into() }.encode_to_vec();
    let mut body = BytesMut::with_capacity(message.len() + 5);
    body.put_u8(0);
    body.put_u32(message.len() as u32);
    body.put_slice(&message);
    body.freeze()
}

/// Sends `streams` GetDocument calls on one connection and holds them: the
/// responses are never read (window 0). The client queues the calls beyond
/// the server's stream limit, so the count sent back is what was asked,
/// not what the server took.
async fn slow_reader(
    addr: SocketAddr,
    id: String,
    streams: usize,
    opened_tx: tokio::sync::mpsc::UnboundedSender<usize>,
) -> anyhow::Result<()> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, Bytes>(tcp)
        .await?;
    tokio::spawn(connection);
    let mut opened = 0;
    let mut held = Vec::new();
    for _ in 0..streams {
        let mut client =
            match tokio::time::timeout(Duration::from_secs(2), client.clone().ready()).await {
                Ok(Ok(client)) => client,
                // The server's stream limit: no more streams on this connection.
                _ => break,
            };
        let request = tonic::codegen::http::Request::post(format!(
            "http://{addr}/wenda.v1.Retrieval/GetDocument"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())?;
        let Ok((response, mut body)) = client.send_request(request, false) else {
            break;
        };
        body.send_data(get_document(&id), true)?;
        held.push(response);
        opened += 1;
    }
    let _ = opened_tx.send(opened);
    // Hold the streams (and their unread responses) until the end.
    std::future::pending::<()>().await;
    drop(held);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut client = RetrievalClient::connect(format!("http://{}", args.server)).await?;
    let id = client
        .list_documents(ListDocumentsRequest::default())
        .await?
        .into_inner()
        .documents
        .first()
        .map(|d| d.id.clone())
        .ok_or_else(|| anyhow::anyhow!("the server holds no document"))?;
    drop(client);

    let started = Instant::now();
    let mut idle = Vec::new();
    let mut refused = 0usize;
    for _ in 0..args.idle_connections {
        match tokio::net::TcpStream::connect(args.server).await {
            Ok(stream) => idle.push(stream),
            Err(_) => refused += 1,
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..args.slow_readers {
        let (tx, id) = (tx.clone(), id.clone());
        let (addr, streams) = (args.server, args.streams);
        tokio::spawn(slow_reader(addr, id, streams, tx));
    }
    tokio::time::sleep(Duration::from_secs(args.duration_secs).saturating_sub(started.elapsed()))
        .await;
    drop(tx);
    // Count what the server kept open: past its preface, a closed socket
    // reads 0 (or fails), an open one would block.
    let mut still_open = 0usize;
    for stream in &idle {
        let mut buf = [0u8; 512];
        loop {
            match stream.try_read(&mut buf) {
                Ok(n) if n > 0 => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    still_open += 1;
                    break;
                }
                _ => break,
            }
        }
    }
    let mut streams_opened = 0;
    while let Ok(n) = rx.try_recv() {
        streams_opened += n;
    }
    println!(
        "{}",
        serde_json::json!({
            "idle_connections_opened": idle.len(),
            "idle_connections_refused_at_connect": refused,
            "idle_connections_still_open": still_open,
            "slow_reader_streams_requested": streams_opened,
        })
    );
    Ok(())
}
