//! Tokens scoped to a tenant, through the real gRPC server: writes are
//! stamped with the tenant and may not claim another's documents, and over
//! a thousand random requests from two tenants' tokens no response holds a
//! passage or a document of the other tenant.

use std::collections::HashSet;

use tonic::Code;
use tonic::metadata::MetadataValue;
use wenda::auth::Tokens;
use wenda::proto::{self, metadata_value::Kind, retrieval_client::RetrievalClient};

use crate::common;

const TENANTS: [&str; 2] = ["acme", "globex"];

fn token(tenant: &str, role: &str) -> String {
    format!("{tenant}-{role}-token-0123456789")
}

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

const TOPICS: [&str; 6] = [
    "rivers and the fish in them",
    "cloud computing budgets",
    "mountain railways",
    "tea gardens in the hills",
    "open source foundations",
    "city bicycles",
];

fn document(id: String, n: usize) -> proto::Document {
    proto::Document {
        text: format!(
            "Note {id} is about {}. It also mentions {} and what changed in {} last year.",
            TOPICS[n % TOPICS.len()],
            TOPICS[(n + 1) % TOPICS.len()],
            TOPICS[(n + 3) % TOPICS.len()],
        ),
        id,
        ..Default::default()
    }
}

/// The tenant a document id belongs to (`acme-3` → acme); `None` for the
/// unscoped ones.
fn owner(id: &str) -> Option<&str> {
    TENANTS
        .into_iter()
        .find(|t| id.starts_with(&format!("{t}-")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_token_never_sees_or_touches_another_tenant() {
    let mut lines = String::from("admin global-admin-token-0123456789\n");
    for t in TENANTS {
        lines += &format!(
            "read {} tenant={t}\nadmin {} tenant={t}\n",
            token(t, "read"),
            token(t, "admin")
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let server = common::TestServer::start_with(
        common::engine(dir.path(), None).await,
        wenda::grpc::ServeOptions {
            tokens: Tokens::parse(&lines).unwrap(),
            ..Default::default()
        },
    )
    .await;
    let mut client: RetrievalClient<_> = server.client().await;

    // Each tenant writes its own documents; an unscoped admin writes two
    // that no tenant owns.
    let mut all_ids = Vec::new();
    for t in TENANTS {
        let documents: Vec<_> = (0..8).map(|n| document(format!("{t}-{n}"), n)).collect();
        all_ids.extend(documents.iter().map(|d| d.id.clone()));
        client
            .ingest(with_token(
                proto::IngestRequest { documents },
                &token(t, "admin"),
            ))
            .await
            .unwrap();
    }
    let shared: Vec<_> = (0..2).map(|n| document(format!("shared-{n}"), n)).collect();
    all_ids.extend(shared.iter().map(|d| d.id.clone()));
    client
        .ingest(with_token(
            proto::IngestRequest { documents: shared },
            "global-admin-token-0123456789",
        ))
        .await
        .unwrap();

    // Writes were stamped with the tenant.
    let acme_0 = client
        .get_document(with_token(
            proto::GetDocumentRequest {
                id: "acme-0".into(),
            },
            "global-admin-token-0123456789",
        ))
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap();
    assert_eq!(
        acme_0.metadata["tenant"].kind,
        Some(Kind::StringValue("acme".into()))
    );

    // A tenant cannot write as another or take another's id.
    let mut forged = document("acme-forged".into(), 0);
    forged.metadata.insert(
        "tenant".into(),
        proto::MetadataValue {
            kind: Some(Kind::StringValue("globex".into())),
        },
    );
    let err = client
        .ingest(with_token(
            proto::IngestRequest {
                documents: vec![forged],
            },
            &token("acme", "admin"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = client
        .ingest(with_token(
            proto::IngestRequest {
                documents: vec![document("globex-1".into(), 5)],
            },
            &token("acme", "admin"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Info counts what the token may see.
    let info = |token: String| {
        let mut client = client.clone();
        async move {
            client
                .info(with_token(proto::InfoRequest {}, &token))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let acme = info(token("acme", "read")).await;
    let everyone = info("global-admin-token-0123456789".into()).await;
    assert_eq!((acme.documents, everyone.documents), (8, 18));
    assert!(acme.passages >= 8 && acme.passages < everyone.passages);
    assert_eq!(
        acme.passages_per_language.values().sum::<u64>(),
        acme.passages
    );

    // A thousand random requests.
    let mut next = common::xorshift(0x9E3779B97F4A7C15);
    let questions = [
        "Which note is about fish?",
        "cloud budgets",
        "mountain railways",
        "tea",
        "open source",
        "bicycles in the city",
    ];
    let mut counts = [0usize; 6];
    let mut passages_seen = 0usize;
    for _ in 0..1000 {
        let me = TENANTS[next(2)];
        let role = if next(4) == 0 { "admin" } else { "read" };
        let tok = token(me, role);
        let allowed = |id: &str| owner(id) == Some(me);
        let search = |next: &mut dyn FnMut(usize) -> usize| {
            let mut filter = None;
            if next(3) == 0 {
                // Asking for the other tenant's documents outright.
                let other = TENANTS.into_iter().find(|t| *t != me).unwrap();
                filter = Some(proto::Filter {
                    must: vec![proto::Condition {
                        key: "tenant".into(),
                        test: Some(proto::condition::Test::Equals(proto::MetadataValue {
                            kind: Some(Kind::StringValue(other.into())),
                        })),
                    }],
                    ..Default::default()
                });
            }
            proto::SearchRequest {
                query: questions[next(questions.len())].into(),
                top_k: 1 + next(20) as u32,
                mode: [
                    proto::SearchMode::Dense,
                    proto::SearchMode::Hybrid,
                    proto::SearchMode::Lexical,
                ][next(3)] as i32,
                group_by_document: next(4) == 0,
                doc_ids: if next(5) == 0 {
                    vec![all_ids[next(all_ids.len())].clone()]
                } else {
                    Vec::new()
                },
                filter,
                ..Default::default()
            }
        };
        let kind = next(6);
        counts[kind] += 1;
        match kind {
            0 | 1 => {
                let r = client
                    .search(with_token(search(&mut next), &tok))
                    .await
                    .unwrap()
                    .into_inner();
                let ids = r
                    .passages
                    .iter()
                    .chain(r.groups.iter().flat_map(|g| g.passages.iter()))
                    .map(|p| p.citation.as_ref().unwrap().doc_id.clone());
                for id in ids {
                    passages_seen += 1;
                    assert!(allowed(&id), "{me} saw {id}");
                }
            }
            2 => {
                let requests = (0..1 + next(3)).map(|_| search(&mut next)).collect();
                let r = client
                    .search_batch(with_token(proto::SearchBatchRequest { requests }, &tok))
                    .await
                    .unwrap()
                    .into_inner();
                for result in r.results {
                    if let Some(proto::search_batch_result::Result::Response(r)) = result.result {
                        for p in r
                            .passages
                            .iter()
                            .chain(r.groups.iter().flat_map(|g| g.passages.iter()))
                        {
                            passages_seen += 1;
                            let id = &p.citation.as_ref().unwrap().doc_id;
                            assert!(allowed(id), "{me} saw {id} in a batch");
                        }
                    }
                }
            }
            3 => {
                let mut page_token = String::new();
                loop {
                    let r = client
                        .list_documents(with_token(
                            proto::ListDocumentsRequest {
                                page_size: 1 + next(5) as u32,
                                page_token,
                                ..Default::default()
                            },
                            &tok,
                        ))
                        .await
                        .unwrap()
                        .into_inner();
                    for d in &r.documents {
                        assert!(allowed(&d.id), "{me} listed {}", d.id);
                    }
                    if r.next_page_token.is_empty() {
                        break;
                    }
                    page_token = r.next_page_token;
                }
            }
            4 => {
                let id = all_ids[next(all_ids.len())].clone();
                match client
                    .get_document(with_token(
                        proto::GetDocumentRequest { id: id.clone() },
                        &tok,
                    ))
                    .await
                {
                    Ok(d) => assert!(
                        allowed(&d.into_inner().document.unwrap().id),
                        "{me} read {id}"
                    ),
                    Err(e) => {
                        assert_eq!(e.code(), Code::NotFound);
                        assert!(!allowed(&id), "{me} could not read its own {id}");
                    }
                }
            }
            _ => {
                // Deleting another tenant's (or an unowned) document deletes nothing.
                let id = all_ids[next(all_ids.len())].clone();
                if allowed(&id) {
                    continue;
                }
                match client
                    .delete(with_token(
                        proto::DeleteRequest {
                            ids: vec![id.clone()],
                        },
                        &tok,
                    ))
                    .await
                {
                    Ok(r) => assert_eq!(r.into_inner().deleted, 0, "{me} deleted {id}"),
                    Err(e) => assert_eq!(
                        e.code(),
                        Code::PermissionDenied,
                        "a read token deletes nothing"
                    ),
                }
            }
        }
    }
    eprintln!(
        "tenancy: 1000 requests (search {}, batch {}, list {}, get {}, delete {}), {passages_seen} passages checked",
        counts[0] + counts[1],
        counts[2],
        counts[3],
        counts[4],
        counts[5]
    );
    assert!(counts.iter().all(|&c| c > 100), "{counts:?}");
    assert!(
        passages_seen > 1000,
        "only {passages_seen} passages came back"
    );

    // Nothing was lost: every document is still there for an unscoped admin.
    let listed = client
        .list_documents(with_token(
            proto::ListDocumentsRequest {
                page_size: 100,
                ..Default::default()
            },
            "global-admin-token-0123456789",
        ))
        .await
        .unwrap()
        .into_inner();
    let listed: HashSet<String> = listed.documents.into_iter().map(|d| d.id).collect();
    assert_eq!(listed, all_ids.into_iter().collect::<HashSet<_>>());
}
