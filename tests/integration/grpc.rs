//! The gRPC surface through a generated tonic client: health, reflection,
//! search with citations, ingest/delete round trips, and error codes.

use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;
use wenda::proto;

use crate::common::{self, TestServer};

#[tokio::test]
async fn health_is_serving_for_both_names_and_reflection_lists_the_service() {
    let server = TestServer::start(common::corpus_engine()).await;
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "wenda.v1.Retrieval"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service {service:?}");
    }

    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected {response:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"wenda.v1.Retrieval".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );

    // v1alpha too, for grpcurl before 1.9 and Python's grpcio-reflection.
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    let mut alpha = AlphaClient::new(server.channel().await);
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::FileContainingSymbol(
            "wenda.v1.Retrieval".into(),
        )),
    };
    let response = alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner()
        .next()
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        response.message_response,
        Some(AlphaResponse::FileDescriptorResponse(_))
    ));
}

#[tokio::test]
async fn search_citations_point_into_the_source_files() {
    let server = TestServer::start(common::corpus_engine()).await;
    let mut client = server.client().await;
    for query in [
        "Who started OpenStack?",
        "OpenInfra 社区有多少名成员？",
        "Vì sao OpenInfra gia nhập Linux Foundation?",
    ] {
        let response = client
            .search(proto::SearchRequest {
                query: query.into(),
                top_k: 5,
                explain: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.passages.len(), 5, "{query}");
        let timings = response.timings.expect("timings");
        assert!(timings.total_ms >= timings.embed_ms);
        for (i, p) in response.passages.iter().enumerate() {
            assert_eq!(p.rank as usize, i + 1);
            let c = p.citation.as_ref().expect("citation");
            assert_eq!(c.doc_id, c.source);
            assert!(!c.title.is_empty() && !c.language.is_empty());
            let original = std::fs::read_to_string(common::corpus_dir().join(&c.source))
                .expect("cited file exists");
            let slice = common::char_slice(&original, c.char_start as usize, c.char_end as usize);
            assert!(c.char_end > c.char_start && c.char_end as usize <= original.chars().count());
            // The clean text comes from the cited span: every visible char, in order.
            assert!(
                common::is_subsequence_ignoring_whitespace(&p.text, &slice),
                "passage not inside its citation: {c:?}"
            );
            // Where the span holds no markup, the text is the span exactly.
            if !slice.contains(['<', '&', '[', '*', '#']) {
                assert_eq!(p.text, slice);
            }
            for h in &p.highlights {
                assert!(h.char_start >= c.char_start && h.char_end <= c.char_end);
            }
            let e = p.explanation.as_ref().expect("explain requested");
            assert!(e.dense_rank.is_some() || e.lexical_rank.is_some());
        }
        assert!(
            response
                .passages
                .windows(2)
                .all(|w| w[0].score >= w[1].score),
            "scores not descending for {query}"
        );
    }
}

#[tokio::test]
async fn an_english_question_finds_the_answer_in_chinese_and_english_articles() {
    let server = TestServer::start(common::corpus_engine()).await;
    let mut client = server.client().await;
    let response = client
        .search(proto::SearchRequest {
            query: "Who is the executive director of the Linux Foundation?".into(),
            top_k: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.query_language, "en");
    assert!(
        response
            .passages
            .iter()
            .any(|p| p.text.contains("Jim Zemlin")),
        "{:#?}",
        response.passages
    );
}

/// `relevance` means the same across queries and `answerable` tells a
/// chatbot whether to answer: a question the articles answer is
/// answerable, off-topic ones are not, and `min_relevance` drops passages
/// below it; a query language can be stated.
#[tokio::test]
async fn relevance_and_answerable_tell_an_answer_from_none() {
    let server = TestServer::start(common::corpus_engine()).await;
    let mut client = server.client().await;
    let mut search = async |query: &str, min_relevance: f32| {
        client
            .search(proto::SearchRequest {
                query: query.into(),
                top_k: 10,
                min_relevance,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    };
    let answered = search(
        "Who is the executive director of the Linux Foundation?",
        0.0,
    )
    .await;
    assert!(answered.answerable);
    let first = answered.passages[0].relevance;
    assert!(
        answered
            .passages
            .iter()
            .all(|p| (0.0..=1.0).contains(&p.relevance)),
        "{:?}",
        answered.passages
    );
    for question in [
        "banana bread recipe",
        "What is the capital of France?",
        "珠穆朗玛峰有多高？",
        "Cách nấu phở bò ngon tại nhà?",
    ] {
        let off_topic = search(question, 0.0).await;
        assert!(!off_topic.answerable, "{question}");
        assert!(!off_topic.passages.is_empty(), "passages still come back");
        // Unlike the ranking score, relevance compares across queries.
        assert!(off_topic.passages[0].relevance < first, "{question}");
    }
    // min_relevance keeps only passages at or above it, ranked from 1.
    let cut = (first + answered.passages.last().unwrap().relevance) / 2.0;
    let kept = search(
        "Who is the executive director of the Linux Foundation?",
        cut,
    )
    .await;
    assert!(!kept.passages.is_empty() && kept.passages.len() < answered.passages.len());
    for (i, p) in kept.passages.iter().enumerate() {
        assert!(p.relevance >= cut && p.rank as usize == i + 1);
    }
    let none = search("banana bread recipe", 0.99).await;
    assert!(none.passages.is_empty());

    // A stated query language is the one reported; a bad one is refused.
    let stated = client
        .search(proto::SearchRequest {
            query: "OpenInfra".into(),
            query_language: "vi".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stated.query_language, "vi");
    for (field, request) in [
        (
            "query_language",
            proto::SearchRequest {
                query: "OpenInfra".into(),
                query_language: "vie".into(),
                ..Default::default()
            },
        ),
        (
            "min_relevance",
            proto::SearchRequest {
                query: "OpenInfra".into(),
                min_relevance: 1.5,
                ..Default::default()
            },
        ),
    ] {
        let status = client.search(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        assert_eq!(
            details.bad_request().unwrap().field_violations[0].field,
            field
        );
    }
}

#[tokio::test]
async fn filters_restrict_languages_and_documents() {
    let server = TestServer::start(common::corpus_engine()).await;
    let mut client = server.client().await;
    let zh = client
        .search(proto::SearchRequest {
            query: "OpenStack".into(),
            top_k: 10,
            languages: vec!["zh".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!zh.passages.is_empty());
    assert!(
        zh.passages
            .iter()
            .all(|p| p.citation.as_ref().unwrap().language == "zh")
    );
    let one = client
        .search(proto::SearchRequest {
            query: "OpenStack".into(),
            top_k: 10,
            doc_ids: vec!["003_2d3723fee4e68220.txt".into()],
            mode: proto::SearchMode::Dense as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!one.passages.is_empty());
    assert!(
        one.passages
            .iter()
            .all(|p| p.citation.as_ref().unwrap().doc_id == "003_2d3723fee4e68220.txt")
    );
    assert_eq!(one.mode, proto::SearchMode::Dense as i32);

    // min_score 0 keeps everything, negative cosines included: an
    // unrelated question over one document still returns all of it (its
    // overlapping passages merged).
    let doc = "003_2d3723fee4e68220.txt";
    let all = client
        .search(proto::SearchRequest {
            query: "banana bread recipe".into(),
            top_k: 100,
            doc_ids: vec![doc.into()],
            mode: proto::SearchMode::Dense as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        all.passages.iter().any(|p| p.score < 0.0),
        "no negative cosine: the check proves nothing"
    );
    let stored = client
        .get_document(proto::GetDocumentRequest { id: doc.into() })
        .await
        .unwrap()
        .into_inner();
    for p in &stored.passages {
        let c = p.citation.as_ref().unwrap();
        assert!(
            all.passages.iter().any(|r| {
                let r = r.citation.as_ref().unwrap();
                r.char_start <= c.char_start && c.char_end <= r.char_end
            }),
            "passage {}..{} of {doc} missing",
            c.char_start,
            c.char_end
        );
    }
}

#[tokio::test]
async fn ingest_then_search_then_delete() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(common::engine(dir.path(), None).await).await;
    let mut client = server.client().await;
    let text = "Lorem: the Mekong river flows through six countries.\n\nSông Mê Kông chảy qua sáu quốc gia. 湄公河流经六个国家。";
    let ack = client
        .ingest(proto::IngestRequest {
            documents: vec![proto::Document {
                id: "notes/mekong".into(),
                text: text.into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.results.len(), 1);
    assert!(ack.results[0].chunks >= 1 && !ack.results[0].replaced);

    let hits = client
        .search(proto::SearchRequest {
            query: "How many countries does the Mekong flow through?".into(),
            top_k: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let top = &hits.passages[0];
    let c = top.citation.as_ref().unwrap();
    assert_eq!(c.doc_id, "notes/mekong");
    assert_eq!(
        common::char_slice(text, c.char_start as usize, c.char_end as usize),
        top.text
    );

    // Same text again: acknowledged as unchanged.
    let again = client
        .ingest(proto::IngestRequest {
            documents: vec![proto::Document {
                id: "notes/mekong".into(),
                text: text.into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.results[0].unchanged);

    let doc = client
        .get_document(proto::GetDocumentRequest {
            id: "notes/mekong".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(doc.text, text);
    assert_eq!(doc.document.unwrap().chunks as usize, doc.passages.len());
    let list = client
        .list_documents(proto::ListDocumentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.documents.len(), 1);
    let info = client
        .info(proto::InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.dimension, 384);
    assert_eq!(info.documents, 1);

    let deleted = client
        .delete(proto::DeleteRequest {
            ids: vec!["notes/mekong".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.deleted, 1);
    let after = client
        .search(proto::SearchRequest {
            query: "Mekong".into(),
            top_k: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(after.passages.is_empty());
    let gone = client
        .get_document(proto::GetDocumentRequest {
            id: "notes/mekong".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn bad_requests_get_the_right_codes_and_the_server_stays_up() {
    let server = TestServer::start(common::corpus_engine()).await;
    let mut client = server.client().await;
    let search = |query: &str, top_k: u32| proto::SearchRequest {
        query: query.into(),
        top_k,
        ..Default::default()
    };

    let err = client.search(search("   ", 5)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let details = err.get_error_details();
    assert_eq!(
        details.bad_request().unwrap().field_violations[0].field,
        "query"
    );

    let err = client.search(search("OpenStack", 101)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "top_k"
    );

    let err = client
        .search(search(&"x".repeat(2049), 5))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let mut bad_lang = search("OpenStack", 5);
    bad_lang.languages = vec!["klingon".into()];
    assert_eq!(
        client.search(bad_lang).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    let mut bad_mode = search("OpenStack", 5);
    bad_mode.mode = 42;
    assert_eq!(
        client.search(bad_mode).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    let err = client
        .get_document(proto::GetDocumentRequest {
            id: "no/such/doc".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let err = client
        .embed(proto::EmbedRequest {
            texts: vec![],
            kind: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let err = client
        .ingest(proto::IngestRequest {
            documents: vec![proto::Document {
                id: "".into(),
                text: "".into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.get_error_details()
            .bad_request()
            .unwrap()
            .field_violations
            .len(),
        2
    );

    // Still serving.
    let ok = client
        .search(search("OpenStack", 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.passages.len(), 1);
}

#[tokio::test]
async fn embed_returns_normalised_vectors_and_flags_truncation() {
    let server = TestServer::start(common::corpus_engine()).await;
    let mut client = server.client().await;
    let long = "OpenStack ".repeat(600);
    let response = client
        .embed(proto::EmbedRequest {
            texts: vec!["你好".into(), long],
            kind: proto::EmbedKind::Passage as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.dimension, 384);
    assert_eq!(response.embeddings.len(), 2);
    for e in &response.embeddings {
        let norm: f32 = e.values.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3);
    }
    assert!(!response.embeddings[0].truncated);
    assert!(response.embeddings[1].truncated);
    assert_eq!(response.embeddings[1].tokens, 512);
}

#[tokio::test]
async fn health_follows_loading_and_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (give_engine, engine_ready) =
        tokio::sync::oneshot::channel::<std::sync::Arc<wenda::engine::Engine>>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(wenda::grpc::run(
        listener,
        async move { Ok(engine_ready.await?) },
        async move {
            let _ = stopped.await;
        },
        wenda::grpc::ServeOptions::default(),
    ));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let mut health = HealthClient::new(channel.clone());
    let status = |health: &mut HealthClient<tonic::transport::Channel>| {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest {
                    service: "wenda.v1.Retrieval".into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status
        }
    };
    // Loading: NOT_SERVING, and Retrieval calls are UNAVAILABLE.
    assert_eq!(status(&mut health).await, ServingStatus::NotServing as i32);
    let mut client = proto::retrieval_client::RetrievalClient::new(channel.clone());
    let err = client.info(proto::InfoRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);

    give_engine.send(common::corpus_engine()).ok().unwrap();
    let mut serving = false;
    for _ in 0..100 {
        if status(&mut health).await == ServingStatus::Serving as i32 {
            serving = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(serving, "never became SERVING");
    assert!(client.info(proto::InfoRequest {}).await.is_ok());

    // Shutdown: the server stops and its task ends cleanly.
    stop.send(()).unwrap();
    drop((client, health, channel));
    let result = tokio::time::timeout(std::time::Duration::from_secs(15), server)
        .await
        .expect("server stops")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}
