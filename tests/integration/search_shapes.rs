//! The shapes a search answer can take, through the real gRPC server over
//! the corpus: pages that continue one ranking, answers grouped by
//! document, and several searches in one SearchBatch call.

use tonic::Code;
use wenda::proto;

use crate::common;

fn key(p: &proto::Passage) -> (String, u64, u64) {
    let c = p.citation.as_ref().unwrap();
    (c.doc_id.clone(), c.char_start, c.char_end)
}

fn request(query: &str, top_k: u32) -> proto::SearchRequest {
    proto::SearchRequest {
        query: query.into(),
        top_k,
        mode: proto::SearchMode::Dense as i32,
        ..Default::default()
    }
}

/// Pages of 7 read one after another give the same passages, in the same
/// order and with continuing ranks, as one request for 100.
#[tokio::test]
async fn pages_continue_one_ranking() {
    let server = common::TestServer::start(common::corpus_engine()).await;
    let mut client = server.client().await;
    let question = "OpenStack 社区";
    let whole = client
        .search(request(question, 100))
        .await
        .unwrap()
        .into_inner();
    let mut paged = Vec::new();
    let mut next = request(question, 7);
    loop {
        let page = client.search(next.clone()).await.unwrap().into_inner();
        for (i, p) in page.passages.iter().enumerate() {
            assert_eq!(p.rank as usize, paged.len() + i + 1);
        }
        assert_eq!(
            page.answerable, whole.answerable,
            "the verdict is the first result's on every page"
        );
        paged.extend(page.passages.iter().map(key));
        if page.next_page_token.is_empty() || paged.len() >= 100 {
            break;
        }
        next.page_token = page.next_page_token;
    }
    let whole: Vec<_> = whole.passages.iter().map(key).collect();
    assert!(whole.len() > 20, "the corpus has more than 20 passages");
    let n = whole.len().min(paged.len());
    assert_eq!(paged[..n], whole[..n]);

    // A token is for its own request.
    let first = client
        .search(request(question, 3))
        .await
        .unwrap()
        .into_inner();
    let mut other = request("Linux Foundation", 3);
    other.page_token = first.next_page_token;
    let err = client.search(other).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(common::violated_fields(&err), ["page_token"]);
}

/// A page token stops working once the index changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_token_is_refused_after_the_index_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::TestServer::start(common::engine(dir.path(), None).await).await;
    let mut client = server.client().await;
    let doc = |i: usize| proto::Document {
        id: format!("n{i}"),
        text: format!("Note {i} is about lakes, rivers and the fish that live in them."),
        ..Default::default()
    };
    client
        .ingest(proto::IngestRequest {
            documents: (0..4).map(doc).collect(),
        })
        .await
        .unwrap();
    let first = client
        .search(request("fish", 2))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    let mut second = request("fish", 2);
    second.page_token = first.next_page_token.clone();
    assert_eq!(
        client
            .search(second.clone())
            .await
            .unwrap()
            .into_inner()
            .passages[0]
            .rank,
        3
    );
    client
        .ingest(proto::IngestRequest {
            documents: vec![doc(9)],
        })
        .await
        .unwrap();
    let err = client.search(second).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("index changed"), "{}", err.message());
}

/// Grouped, documents come in the order of their best passage in the
/// ungrouped ranking, each with at most `max_per_document` of its own
/// passages, best first.
#[tokio::test]
async fn groups_rank_documents_by_their_best_passage() {
    let server = common::TestServer::start(common::corpus_engine()).await;
    let mut client = server.client().await;
    let question = "Why did OpenInfra join the Linux Foundation?";
    let flat = client
        .search(request(question, 100))
        .await
        .unwrap()
        .into_inner();
    let mut order: Vec<String> = Vec::new();
    for p in &flat.passages {
        let doc = &p.citation.as_ref().unwrap().doc_id;
        if !order.contains(doc) {
            order.push(doc.clone());
        }
    }
    for per_document in [0u32, 2] {
        let mut grouped = request(question, 3);
        grouped.group_by_document = true;
        grouped.max_per_document = per_document;
        let answer = client.search(grouped).await.unwrap().into_inner();
        assert!(answer.passages.is_empty());
        let docs: Vec<String> = answer.groups.iter().map(|g| g.doc_id.clone()).collect();
        assert_eq!(docs, order[..3.min(order.len())]);
        let cap = if per_document == 0 {
            3
        } else {
            per_document as usize
        };
        for g in &answer.groups {
            assert!(
                !g.passages.is_empty() && g.passages.len() <= cap,
                "{} passages",
                g.passages.len()
            );
            assert!(
                g.passages
                    .iter()
                    .all(|p| p.citation.as_ref().unwrap().doc_id == g.doc_id)
            );
            assert_eq!(g.score, g.passages[0].score);
            assert!(g.passages.windows(2).all(|w| w[0].score >= w[1].score));
        }
        // Grouped answers page by document too.
        let mut rest = request(question, 3);
        rest.group_by_document = true;
        rest.max_per_document = per_document;
        rest.page_token = answer.next_page_token.clone();
        if !rest.page_token.is_empty() {
            let more = client.search(rest).await.unwrap().into_inner();
            let more_docs: Vec<String> = more.groups.iter().map(|g| g.doc_id.clone()).collect();
            assert_eq!(more_docs, order[3..(6.min(order.len()))]);
        }
    }
}

/// SearchBatch answers each request as its own Search would, in order, and
/// a bad request fails alone.
#[tokio::test]
async fn a_batch_answers_each_search_in_order() {
    let server = common::TestServer::start(common::corpus_engine()).await;
    let mut client = server.client().await;
    let requests = vec![
        request("Who founded OpenStack?", 3),
        request("OpenInfra 社区有多少名成员？", 2),
        request("   ", 2),
        request("Ai là giám đốc điều hành của Linux Foundation?", 4),
    ];
    let batch = client
        .search_batch(proto::SearchBatchRequest {
            requests: requests.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.results.len(), 4);
    for (r, result) in requests.into_iter().zip(batch.results) {
        use proto::search_batch_result::Result as Answer;
        match (client.search(r).await, result.result.unwrap()) {
            (Ok(single), Answer::Response(batched)) => {
                let single: Vec<_> = single.into_inner().passages.iter().map(key).collect();
                let batched: Vec<_> = batched.passages.iter().map(key).collect();
                assert_eq!(single, batched);
            }
            (Err(status), Answer::Error(e)) => {
                assert_eq!(e.code, status.code() as i32);
                assert_eq!(e.code, Code::InvalidArgument as i32);
                assert_eq!(e.field_violations[0].field, "query");
            }
            (single, batched) => panic!("search gave {single:?}, the batch {batched:?}"),
        }
    }
    for n in [0, 33] {
        let err = client
            .search_batch(proto::SearchBatchRequest {
                requests: vec![request("OpenStack", 1); n],
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{n} searches");
    }
}
