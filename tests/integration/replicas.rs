//! Replicas on one PostgreSQL store (`--store postgres://…`), as real
//! `wenda serve` processes on a throwaway PostgreSQL server: writes through
//! any replica reach every other; concurrent writers end in one state;
//! a replica killed mid-ingest loses nothing acknowledged; PostgreSQL
//! stopped under load fails writes clearly while reads go on; and a
//! `pg_dump` restored elsewhere serves the same documents and answers, and
//! restored over the live database takes its running replicas back with it.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wenda::proto::{self, retrieval_client::RetrievalClient};

use crate::common;
use crate::postgres_server::PgServer;
use crate::processes::{ServeProcess, terminate, wait_serving};

type Client = RetrievalClient<tonic::transport::Channel>;

/// A replica on `url`, with its own data directory under `work`.
async fn replica(work: &Path, name: &str, url: &str, corpus: bool) -> ServeProcess {
    let corpus = corpus.then(common::corpus_dir);
    let server =
        ServeProcess::start_with_args(&work.join(name), corpus.as_deref(), &["--store", url]);
    wait_serving(&server.url()).await;
    server
}

async fn client(server: &ServeProcess) -> Client {
    RetrievalClient::connect(server.url()).await.unwrap()
}

fn note(id: &str, round: usize) -> proto::Document {
    proto::Document {
        id: id.to_string(),
        text: format!(
            "Replica note {id}, round {round}. It is about lighthouses, ferries and \
             orchards.\n\nA second paragraph for a second passage: {}.",
            "the ferry leaves the harbour at dawn ".repeat(10)
        ),
        ..Default::default()
    }
}

async fn ingest(client: &mut Client, doc: proto::Document) -> Result<(), tonic::Status> {
    client
        .ingest(proto::IngestRequest {
            documents: vec![doc],
        })
        .await
        .map(|_| ())
}

async fn documents(client: &mut Client) -> BTreeSet<(String, String)> {
    common::all_documents(client).await
}

async fn applied(client: &mut Client) -> u64 {
    client
        .info(proto::InfoRequest {})
        .await
        .unwrap()
        .into_inner()
        .applied_sequence
}

/// The cited spans of the first passages for a few corpus questions.
async fn answers(client: &mut Client) -> Vec<Vec<(String, u64, u64)>> {
    let questions = [
        "Who founded OpenStack?",
        "OpenInfra 社区有多少名成员？",
        "Linux Foundation là gì?",
    ];
    common::cited_spans(client, &questions, 3).await
}

/// Waits until every replica has applied the same sequence and lists the
/// same documents; that list.
async fn converged(clients: &mut [Client]) -> BTreeSet<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut sequences = Vec::new();
        let mut lists = Vec::new();
        for c in clients.iter_mut() {
            sequences.push(applied(c).await);
            lists.push(documents(c).await);
        }
        if sequences.iter().all(|s| *s == sequences[0]) && lists.iter().all(|l| *l == lists[0]) {
            return lists.swap_remove(0);
        }
        assert!(
            Instant::now() < deadline,
            "replicas did not converge: sequences {sequences:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `check` until it holds; how long that took.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_postgres_follow_each_others_writes_and_converge() {
    let Some(pg) = PgServer::start() else { return };
    let work = tempfile::tempdir().unwrap();
    let url = pg.url("postgres");
    let a = replica(work.path(), "a", &url, true).await;
    let b = replica(work.path(), "b", &url, false).await;
    let c = replica(work.path(), "c", &url, false).await;
    let (mut ca, mut cb, cc) = (client(&a).await, client(&b).await, client(&c).await);
    let info = cb.info(proto::InfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.store, "postgres");
    assert!(info.documents >= 5, "B sees the corpus A synced: {info:?}");

    // Ingested through A, found by a search on B.
    ingest(&mut ca, note("notes/lighthouse", 0)).await.unwrap();
    let seen = within(Duration::from_secs(5), "A's ingest found on B", || {
        let mut cb = cb.clone();
        async move {
            cb.search(proto::SearchRequest {
                query: "Replica note lighthouses ferries orchards".into(),
                top_k: 3,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .passages
            .iter()
            .any(|p| p.citation.as_ref().unwrap().doc_id == "notes/lighthouse")
        }
    })
    .await;
    // Deleted through B, gone from A.
    let deleted = cb
        .delete(proto::DeleteRequest {
            ids: vec!["notes/lighthouse".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.deleted, 1);
    let gone = within(Duration::from_secs(5), "B's delete gone from A", || {
        let mut ca = ca.clone();
        async move {
            ca.get_document(proto::GetDocumentRequest {
                id: "notes/lighthouse".into(),
            })
            .await
            .is_err_and(|s| s.code() == tonic::Code::NotFound)
        }
    })
    .await;
    eprintln!(
        "replicas: ingest through A searchable on B after {seen:?}; delete through B gone from A after {gone:?}"
    );

    // Concurrent ingests and deletes through all three replicas.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for (w, client) in [ca.clone(), cb.clone(), cc.clone()].into_iter().enumerate() {
        let (stop, writes) = (stop.clone(), writes.clone());
        writers.push(tokio::spawn(async move {
            let mut client = client;
            let mut next = common::xorshift(w as u64 + 7);
            let mut round = 0;
            while !stop.load(Ordering::SeqCst) {
                // A few ids shared by every writer, so they collide.
                let id = format!("notes/shared-{}", next(12));
                if next(4) == 0 {
                    client
                        .delete(proto::DeleteRequest { ids: vec![id] })
                        .await
                        .unwrap();
                } else {
                    ingest(&mut client, note(&id, round)).await.unwrap();
                }
                round += 1;
                writes.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    let mut clients = [ca.clone(), cb.clone(), cc.clone()];
    let docs = converged(&mut clients).await;
    assert!(docs.iter().any(|(id, _)| id.starts_with("notes/shared-")));
    // Each replica applied the writes in its own groupings; once writes
    // pause they re-estimate from the same store and answer alike.
    within(
        Duration::from_secs(15),
        "the same answers on every replica",
        || {
            let mut clients = clients.clone();
            async move {
                let expected = answers(&mut clients[0]).await;
                answers(&mut clients[1]).await == expected
                    && answers(&mut clients[2]).await == expected
            }
        },
    )
    .await;
    // A replica of a shared store does not rewrite its manifest (and graph
    // dump) with every write; it writes them as it stops, at the sequence
    // it reached.
    let manifest = |dir: &str| -> u64 {
        let path = work
            .path()
            .join(dir)
            .join(wenda::engine::persist::FILE_NAME);
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        v["generation"].as_u64().unwrap()
    };
    let sequence = applied(&mut cb).await;
    assert!(manifest("b") < sequence, "written with every write");
    let mut b = b;
    let (_, status) = terminate(&mut b, Duration::from_secs(30));
    assert!(status.success());
    assert_eq!(manifest("b"), sequence);
    eprintln!(
        "replicas: {} writes through 3 replicas in 30 s; converged on {} documents at sequence {}",
        writes.load(Ordering::SeqCst),
        docs.len(),
        applied(&mut ca).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_during_ingests_loses_nothing_acknowledged() {
    let Some(pg) = PgServer::start() else { return };
    let work = tempfile::tempdir().unwrap();
    let url = pg.url("postgres");
    let b = replica(work.path(), "b", &url, false).await;
    let mut cb = client(&b).await;
    let mut acked = BTreeSet::new();
    for kill in 0..3 {
        let a = replica(work.path(), "a", &url, false).await;
        let ca = client(&a).await;
        let done: Arc<Mutex<Vec<String>>> = Arc::default();
        let writer = {
            let (done, mut ca) = (done.clone(), ca.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    let id = format!("notes/kill-{kill}-{n}");
                    // Ends with the first call the kill cuts.
                    if ingest(&mut ca, note(&id, n)).await.is_err() {
                        return;
                    }
                    done.lock().unwrap().push(id);
                }
            })
        };
        while done.lock().unwrap().len() < 3 + kill {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(a); // SIGKILL
        writer.await.unwrap();
        acked.extend(done.lock().unwrap().iter().cloned());
    }
    // B saw every acknowledged ingest.
    let mut listed: BTreeSet<String> = BTreeSet::new();
    within(
        Duration::from_secs(5),
        "B lists every acknowledged document",
        || {
            let mut cb = cb.clone();
            let acked = acked.clone();
            async move {
                let ids: BTreeSet<String> =
                    documents(&mut cb).await.into_iter().map(|d| d.0).collect();
                acked.is_subset(&ids)
            }
        },
    )
    .await;
    listed.extend(documents(&mut cb).await.into_iter().map(|d| d.0));
    // A restarted catches up: the same documents as B.
    let a = replica(work.path(), "a", &url, false).await;
    let mut clients = [client(&a).await, cb.clone()];
    let docs = converged(&mut clients).await;
    assert!(acked.iter().all(|id| docs.iter().any(|(d, _)| d == id)));
    eprintln!(
        "replicas: {} ingests acknowledged across 3 SIGKILLs, all on both replicas ({} listed)",
        acked.len(),
        listed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_fails_writes_and_reads_go_on() {
    let Some(pg) = PgServer::start() else { return };
    let work = tempfile::tempdir().unwrap();
    let url = pg.url("postgres");
    let a = replica(work.path(), "a", &url, true).await;
    let b = replica(work.path(), "b", &url, false).await;
    let (mut ca, mut cb) = (client(&a).await, client(&b).await);
    let mut acked = BTreeSet::new();
    for n in 0..3 {
        let id = format!("notes/before-{n}");
        ingest(&mut ca, note(&id, n)).await.unwrap();
        acked.insert(id);
    }
    converged(&mut [ca.clone(), cb.clone()]).await;

    // A stream of ingests through A all along: what it acknowledges must
    // survive, what fails must fail as UNAVAILABLE.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Arc<Mutex<(Vec<String>, Vec<tonic::Code>)>> = Arc::default();
    let writer = {
        let (stop, load, mut ca) = (stop.clone(), load.clone(), ca.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let id = format!("notes/load-{n}");
                match ingest(&mut ca, note(&id, n)).await {
                    Ok(()) => load.lock().unwrap().0.push(id),
                    Err(status) => load.lock().unwrap().1.push(status.code()),
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    pg.stop();
    let before = answers(&mut cb).await;
    assert!(before.iter().all(|a| !a.is_empty()));
    let err = ingest(&mut ca, note("notes/while-down", 0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    let err = cb
        .delete(proto::DeleteRequest {
            ids: vec!["notes/before-0".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    // Reads answer from memory, and nothing changes it while PostgreSQL
    // is down.
    assert_eq!(answers(&mut cb).await, before);
    assert_eq!(
        documents(&mut ca).await.len(),
        documents(&mut cb).await.len()
    );

    pg.start_again();
    // Writes succeed again once the pool reconnects.
    within(
        Duration::from_secs(20),
        "a write after PostgreSQL is back",
        || {
            let mut cb = cb.clone();
            async move { ingest(&mut cb, note("notes/after", 1)).await.is_ok() }
        },
    )
    .await;
    acked.insert("notes/after".to_string());
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let (loaded, failed) = std::mem::take(&mut *load.lock().unwrap());
    assert!(
        failed.iter().all(|c| *c == tonic::Code::Unavailable),
        "{failed:?}"
    );
    assert!(
        !failed.is_empty() && loaded.len() >= 2,
        "{loaded:?} {failed:?}"
    );
    eprintln!(
        "replicas: PostgreSQL stopped under load: {} ingests acknowledged, {} refused as UNAVAILABLE",
        loaded.len(),
        failed.len()
    );
    acked.extend(loaded);
    let docs = converged(&mut [ca.clone(), cb.clone()]).await;
    for id in &acked {
        assert!(docs.iter().any(|(d, _)| d == id), "{id} lost");
    }
    assert!(!docs.iter().any(|(d, _)| d == "notes/while-down"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_dump_restored_elsewhere_or_over_the_live_database_serves_the_dumped_state() {
    let Some(pg) = PgServer::start() else { return };
    let work = tempfile::tempdir().unwrap();
    pg.create_database("live");
    let live = replica(work.path(), "live", &pg.url("live"), true).await;
    let mut cl = client(&live).await;
    for n in 0..3 {
        ingest(&mut cl, note(&format!("notes/dump-{n}"), n))
            .await
            .unwrap();
    }
    let dump = pg.scratch().join("wenda.dump");
    let port = pg.port().to_string();
    let connect = ["-h", "127.0.0.1", "-p", port.as_str(), "-U", "postgres"];
    let out = pg.run(
        "pg_dump",
        &[
            &connect[..],
            &["-Fc", "-d", "live", "-f", dump.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pg.create_database("restored");
    let out = pg.run(
        "pg_restore",
        &[
            &connect[..],
            &["--no-owner", "-d", "restored", dump.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let restored = replica(work.path(), "restored", &pg.url("restored"), false).await;
    // A fresh replica of the live database loads it as the restored one
    // does: the same documents and exactly the same answers.
    let fresh = replica(work.path(), "fresh", &pg.url("live"), false).await;
    let (mut cr, mut cf) = (client(&restored).await, client(&fresh).await);
    let live_docs = documents(&mut cl).await;
    assert!(live_docs.len() >= 8, "{live_docs:?}");
    assert_eq!(documents(&mut cr).await, live_docs);
    assert_eq!(answers(&mut cr).await, answers(&mut cf).await);
    assert_eq!(applied(&mut cr).await, applied(&mut cl).await);
    // The restored database takes writes and numbers them on.
    let before = applied(&mut cr).await;
    ingest(&mut cr, note("notes/after-restore", 0))
        .await
        .unwrap();
    assert_eq!(applied(&mut cr).await, before + 1);

    // The dump restored over the live database while its replicas run:
    // the database went back, and the replicas follow it back.
    ingest(&mut cl, note("notes/after-dump", 0)).await.unwrap();
    let ahead = applied(&mut cl).await;
    let out = pg.run(
        "pg_restore",
        &[
            &connect[..],
            &[
                "--clean",
                "--if-exists",
                "--no-owner",
                "-d",
                "live",
                dump.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    within(Duration::from_secs(10), "the replicas back at the dump", || {
        let (mut cl, mut cf) = (cl.clone(), cf.clone());
        let live_docs = live_docs.clone();
        async move {
            documents(&mut cl).await == live_docs && documents(&mut cf).await == live_docs
        }
    })
    .await;
    assert!(applied(&mut cl).await < ahead);
    assert_eq!(applied(&mut cf).await, applied(&mut cl).await);
    // And a write after it lands, on both.
    ingest(&mut cf, note("notes/after-rollback", 0))
        .await
        .unwrap();
    within(
        Duration::from_secs(5),
        "a write after the rollback on both",
        || {
            let mut cl = cl.clone();
            async move {
                documents(&mut cl)
                    .await
                    .iter()
                    .any(|(id, _)| id == "notes/after-rollback")
            }
        },
    )
    .await;
}

/// A write decided on a document another replica changed before the write
/// committed (the check a tenant-scoped write makes) is refused as a
/// conflict, with nothing written: through two stores on one database, as
/// two replicas hold them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_decided_on_a_document_another_replica_changed_is_refused() {
    use wenda::store::{Origin, Store, StoredDocument, WriteBatch, postgres::PgStore};
    let Some(pg) = PgServer::start() else { return };
    let url = pg.url("postgres");
    let mine: Arc<dyn Store> = Arc::new(PgStore::connect(&url).await.unwrap());
    let theirs: Arc<dyn Store> = Arc::new(PgStore::connect(&url).await.unwrap());
    let put = |hash: &str, expect: Option<&str>| WriteBatch {
        put: vec![(
            StoredDocument {
                id: "shared".into(),
                source: "shared".into(),
                title: "t".into(),
                language: "en".into(),
                published: None,
                url: None,
                metadata: Default::default(),
                text: format!("text {hash}"),
                content_hash: hash.into(),
                origin: Origin::Api,
                passage_ids: Vec::new(),
            },
            Vec::new(),
        )],
        expect: vec![("shared".into(), expect.map(str::to_string))],
        ..Default::default()
    };
    let write = |store: &Arc<dyn Store>, mut batch: WriteBatch| {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.write(&mut batch))
    };
    // Both decided that `shared` does not exist; the other replica commits first.
    let blocking = |store: &Arc<dyn Store>| {
        let store = store.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                (store.generation().unwrap(), store.snapshot().unwrap())
            })
            .await
            .unwrap()
        }
    };
    write(&theirs, put("theirs", None)).await.unwrap().unwrap();
    let (before, _) = blocking(&theirs).await;
    let err = write(&mine, put("mine", None)).await.unwrap().unwrap_err();
    assert!(matches!(err, wenda::error::Error::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("`shared`"), "{err}");
    let (after, snapshot) = blocking(&mine).await;
    assert_eq!(after, before, "nothing was written");
    assert_eq!(snapshot.documents[0].content_hash, "theirs");
    // Decided again on what is committed, it goes through; so does a delete.
    write(&mine, put("mine", Some("theirs")))
        .await
        .unwrap()
        .unwrap();
    let stale_delete = WriteBatch {
        delete: vec!["shared".into()],
        expect: vec![("shared".into(), Some("theirs".into()))],
        ..Default::default()
    };
    let err = write(&theirs, stale_delete).await.unwrap().unwrap_err();
    assert!(matches!(err, wenda::error::Error::Conflict(_)), "{err:?}");
    assert_eq!(blocking(&mine).await.1.documents[0].content_hash, "mine");
}
