//! Access control and TLS on the real server: bearer tokens with read and
//! admin roles, health open without a token, and TLS-only serving.

use std::sync::Arc;

use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use wenda::auth::Tokens;
use wenda::grpc::{ServeOptions, TlsOptions};
use wenda::proto;

use crate::common;

const READ: &str = "read-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";

pub(crate) async fn start(
    engine: Arc<wenda::engine::Engine>,
    options: ServeOptions,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(wenda::grpc::run(
        listener,
        async move { Ok(engine) },
        async move {
            let _ = stopped.await;
        },
        options,
    ));
    (addr, stop)
}

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn search() -> proto::SearchRequest {
    proto::SearchRequest {
        query: "OpenStack".into(),
        top_k: 1,
        ..Default::default()
    }
}

#[tokio::test]
async fn tokens_gate_reads_and_writes_but_not_health() {
    let data = tempfile::tempdir().unwrap();
    let engine = common::engine(data.path(), None).await;
    let tokens = Tokens::parse(&format!("read {READ}\nadmin {ADMIN}\n")).unwrap();
    let (addr, _stop) = start(
        engine,
        ServeOptions {
            tokens,
            ..Default::default()
        },
    )
    .await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let mut client = proto::retrieval_client::RetrievalClient::new(channel.clone());

    assert_eq!(
        client.search(search()).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        client
            .search(with_token(search(), "wrong-token-0123456789"))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert!(client.search(with_token(search(), READ)).await.is_ok());
    assert!(
        client
            .info(with_token(proto::InfoRequest {}, READ))
            .await
            .is_ok()
    );

    let doc = || proto::IngestRequest {
        documents: vec![proto::Document {
            id: "a".into(),
            text: "Một câu ngắn.".into(),
            ..Default::default()
        }],
    };
    assert_eq!(
        client
            .ingest(with_token(doc(), READ))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert!(client.ingest(with_token(doc(), ADMIN)).await.is_ok());
    let delete = || proto::DeleteRequest {
        ids: vec!["a".into()],
    };
    assert_eq!(
        client
            .delete(with_token(delete(), READ))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        client
            .delete(with_token(delete(), ADMIN))
            .await
            .unwrap()
            .into_inner()
            .deleted,
        1
    );

    // Probes need no token.
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "wenda.v1.Retrieval".into(),
        })
        .await
        .unwrap();
    assert_eq!(status.into_inner().status, 1);
}

#[tokio::test]
async fn tls_serves_encrypted_clients_only() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let tls = TlsOptions {
        cert_pem: cert.cert.pem().into_bytes(),
        key_pem: cert.signing_key.serialize_pem().into_bytes(),
        client_ca_pem: None,
    };
    let (addr, _stop) = start(
        common::corpus_engine(),
        ServeOptions {
            tls: Some(tls),
            ..Default::default()
        },
    )
    .await;

    let tls_client = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(cert.cert.pem()))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls_client)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let response = proto::retrieval_client::RetrievalClient::new(channel)
        .search(search())
        .await
        .unwrap();
    assert_eq!(response.into_inner().passages.len(), 1);

    // A plaintext client gets nothing.
    let plain = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let err = proto::retrieval_client::RetrievalClient::new(plain)
        .search(search())
        .await
        .unwrap_err();
    assert_ne!(err.code(), Code::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_shed_at_once_and_deadlines_are_honoured() {
    let data = tempfile::tempdir().unwrap();
    let mut config = common::default_config(data.path());
    config.max_in_flight = 2;
    let engine = common::engine_with(config, Some(&common::corpus_dir())).await;
    let (addr, _stop) = start(engine, ServeOptions::default()).await;
    let url = format!("http://{addr}");

    // 24 concurrent searches against 2 slots: some are refused at once.
    let mut tasks = Vec::new();
    for i in 0..24 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = proto::retrieval_client::RetrievalClient::connect(url)
                .await
                .unwrap();
            let q = format!("OpenStack question number {i}");
            let started = std::time::Instant::now();
            let result = client
                .search(proto::SearchRequest {
                    query: q,
                    top_k: 3,
                    ..Default::default()
                })
                .await;
            (result.map(|_| ()).map_err(|s| s.code()), started.elapsed())
        }));
    }
    let mut ok = 0;
    let mut shed = 0;
    for t in tasks {
        match t.await.unwrap() {
            (Ok(()), _) => ok += 1,
            (Err(Code::ResourceExhausted), elapsed) => {
                shed += 1;
                assert!(
                    elapsed < std::time::Duration::from_secs(2),
                    "shedding took {elapsed:?}"
                );
            }
            (Err(code), _) => panic!("unexpected {code:?}"),
        }
    }
    assert!(ok >= 2 && shed >= 1, "ok {ok}, shed {shed}");

    // A deadline too short to embed a query: the call fails with a deadline
    // status and the server goes on serving. The model is kept busy with a
    // large Embed first, so the query waits for at least one model run of
    // long texts, whatever the scheduler does (a bare 200 µs deadline
    // could lose to a fast embedding on a loaded machine, where tonic
    // polls the call before its timer).
    let mut client = proto::retrieval_client::RetrievalClient::connect(url)
        .await
        .unwrap();
    let mut busy = client.clone();
    let long: Vec<String> = (0..64)
        .map(|i| format!("{i} ").repeat(2000).chars().take(8000).collect())
        .collect();
    let background = tokio::spawn(async move {
        busy.embed(proto::EmbedRequest {
            texts: long,
            ..Default::default()
        })
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut request = tonic::Request::new(proto::SearchRequest {
        query: "Who started OpenStack, and when?".into(),
        top_k: 3,
        ..Default::default()
    });
    request.set_timeout(std::time::Duration::from_millis(20));
    let err = client.search(request).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err:?}"
    );
    assert!(background.await.unwrap().is_ok());
    assert!(client.search(search()).await.is_ok());
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_configured_ca() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let issue = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = issue("localhost");
    let (client_cert, client_key) = issue("client");
    let tls = TlsOptions {
        cert_pem: server_cert.into_bytes(),
        key_pem: server_key.into_bytes(),
        client_ca_pem: Some(ca.pem().into_bytes()),
    };
    let (addr, _stop) = start(
        common::corpus_engine(),
        ServeOptions {
            tls: Some(tls),
            ..Default::default()
        },
    )
    .await;
    let url = format!("https://{addr}");
    let base = || {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca.pem()))
            .domain_name("localhost")
    };

    // With a certificate from the CA: served.
    let with_cert = base().identity(tonic::transport::Identity::from_pem(
        client_cert,
        client_key,
    ));
    let channel = Channel::from_shared(url.clone())
        .unwrap()
        .tls_config(with_cert)
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert!(
        proto::retrieval_client::RetrievalClient::new(channel)
            .search(search())
            .await
            .is_ok()
    );

    // Without one: refused during the handshake or the first call.
    let refused = match Channel::from_shared(url)
        .unwrap()
        .tls_config(base())
        .unwrap()
        .connect()
        .await
    {
        Err(_) => true,
        Ok(channel) => proto::retrieval_client::RetrievalClient::new(channel)
            .search(search())
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate was served");
}
