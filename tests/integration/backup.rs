//! `wenda backup` and `wenda restore` against a real `wenda serve`: a
//! backup taken while ingests go on holds one commit's state (everything
//! acknowledged before it started, nothing after it ended, every document
//! whole); one taken at rest, restored elsewhere, serves the same documents
//! and the same search results; restores that would clobber or load garbage
//! are refused.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use wenda::proto::{self, retrieval_client::RetrievalClient};

use crate::common;
use crate::processes::{ServeProcess, wait_serving};

fn wenda(args: &[&str]) -> std::process::Output {
    Command::new(common::wenda_bin())
        .args(args)
        .output()
        .unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

async fn client(server: &ServeProcess) -> RetrievalClient<tonic::transport::Channel> {
    RetrievalClient::connect(server.url()).await.unwrap()
}

/// Every document's id and content hash, all pages.
async fn documents(server: &ServeProcess) -> BTreeSet<(String, String)> {
    common::all_documents(&mut client(server).await).await
}

/// Each document has all its passages.
async fn assert_whole(server: &ServeProcess, ids: &BTreeSet<(String, String)>) {
    let mut client = client(server).await;
    for (id, _) in ids {
        let doc = client
            .get_document(proto::GetDocumentRequest { id: id.clone() })
            .await
            .unwrap()
            .into_inner();
        let chunks = doc.document.unwrap().chunks as usize;
        assert!(
            chunks >= 1 && doc.passages.len() == chunks,
            "{id}: {} of {chunks} passages",
            doc.passages.len()
        );
    }
}

async fn answers(server: &ServeProcess) -> Vec<Vec<(String, u64, u64)>> {
    let questions = [
        "Who founded OpenStack?",
        "OpenInfra 社区有多少名成员？",
        "backup note seven",
    ];
    common::cited_spans(&mut client(server).await, &questions, 8).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_backup_restores_to_one_commits_state_and_the_same_answers() {
    let work = tempfile::tempdir().unwrap();
    let live_dir = work.path().join("live");
    let live = ServeProcess::start_with_args(&live_dir, Some(&common::corpus_dir()), &[]);
    wait_serving(&live.url()).await;

    // Ingests, one after another, until told to stop.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop, mut client) = (acked.clone(), stop.clone(), client(&live).await);
        tokio::spawn(async move {
            let words = [
                "one", "two", "three", "four", "five", "six", "seven", "eight",
            ];
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let id = format!("notes/backup-{n}");
                let text = format!(
                    "Backup note {} of the test. It talks about rivers, trains and tea, and then about note {}.\n\nA second paragraph keeps the note long enough for two passages: {}.",
                    words[n % words.len()],
                    n,
                    "the quick brown fox jumps over the lazy dog ".repeat(12)
                );
                client
                    .ingest(proto::IngestRequest {
                        documents: vec![proto::Document {
                            id: id.clone(),
                            text,
                            ..Default::default()
                        }],
                    })
                    .await
                    .unwrap();
                acked.lock().unwrap().push(id);
                n += 1;
            }
        })
    };
    while acked.lock().unwrap().len() < 4 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before: BTreeSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let during = work.path().join("during.redb");
    let out = {
        let (dir, to) = (live_dir.clone(), during.clone());
        tokio::task::spawn_blocking(move || {
            wenda(&["backup", "--data-dir", path(&dir), "--to", path(&to)])
        })
        .await
        .unwrap()
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("from the serving wenda"));
    // The write in flight when the backup ended may or may not be in it.
    let after: BTreeSet<String> = {
        let acked = acked.lock().unwrap();
        acked
            .iter()
            .cloned()
            .chain([format!("notes/backup-{}", acked.len())])
            .collect()
    };
    while acked.lock().unwrap().len() < after.len() + 2 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();

    let rest = work.path().join("rest.redb");
    let out = wenda(&["backup", "--data-dir", path(&live_dir), "--to", path(&rest)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The backup at rest, restored elsewhere: the same documents, the same answers.
    let restored_dir = work.path().join("restored");
    let out = wenda(&[
        "restore",
        "--from",
        path(&rest),
        "--data-dir",
        path(&restored_dir),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = ServeProcess::start_with_args(&restored_dir, None, &[]);
    wait_serving(&restored.url()).await;
    let live_docs = documents(&live).await;
    assert_eq!(documents(&restored).await, live_docs);
    // The live process has applied its writes one by one (running sums of
    // language centroids and term statistics), the restored one loaded them
    // at once: equal up to float rounding, which may swap near-ties. The
    // live instance restarted on its own directory loads as the restored
    // one does, and must answer exactly alike.
    drop(live);
    let live = ServeProcess::start_with_args(&live_dir, None, &[]);
    wait_serving(&live.url()).await;
    assert_eq!(documents(&live).await, live_docs);
    assert_eq!(answers(&restored).await, answers(&live).await);

    // The backup taken during the ingests: one commit's state, whole.
    let during_dir = work.path().join("during");
    let out = wenda(&[
        "restore",
        "--from",
        path(&during),
        "--data-dir",
        path(&during_dir),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mid = ServeProcess::start_with_args(&during_dir, None, &[]);
    wait_serving(&mid.url()).await;
    let mid_docs = documents(&mid).await;
    let notes: BTreeSet<String> = mid_docs
        .iter()
        .map(|(id, _)| id.clone())
        .filter(|id| id.starts_with("notes/"))
        .collect();
    assert!(
        before.is_subset(&notes),
        "acknowledged before the backup but missing: {:?}",
        before.difference(&notes).collect::<Vec<_>>()
    );
    assert!(
        notes.is_subset(&after),
        "written after the backup ended: {:?}",
        notes.difference(&after).collect::<Vec<_>>()
    );
    assert!(mid_docs.is_subset(&live_docs));
    assert_whole(&mid, &mid_docs).await;
    eprintln!(
        "backup: {} notes acknowledged before the live backup, {} in it, {} at the end",
        before.len(),
        notes.len(),
        acked.lock().unwrap().len()
    );

    // Refused: a directory in use, one that holds a database, not a backup.
    let out = wenda(&[
        "restore",
        "--from",
        path(&rest),
        "--data-dir",
        path(&live_dir),
        "--force",
    ]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(mid);
    let out = wenda(&[
        "restore",
        "--from",
        path(&rest),
        "--data-dir",
        path(&during_dir),
    ]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--force"));
    let junk = work.path().join("junk.redb");
    std::fs::write(&junk, b"not a database").unwrap();
    let out = wenda(&[
        "restore",
        "--from",
        path(&junk),
        "--data-dir",
        path(&work.path().join("junk")),
    ]);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("not a wenda backup"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With --force over a stopped instance, and a backup without a server.
    let out = wenda(&[
        "restore",
        "--from",
        path(&rest),
        "--data-dir",
        path(&during_dir),
        "--force",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(restored);
    let offline = work.path().join("offline.redb");
    let out = wenda(&[
        "backup",
        "--data-dir",
        path(&restored_dir),
        "--to",
        path(&offline),
    ]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("from the database"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
