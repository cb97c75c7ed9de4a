//! The store under faults from outside wenda: a full disk, a database file
//! lost, truncated, replaced by an older copy or edited while wenda was
//! stopped. Nothing acknowledged is lost silently: writes fail clearly and
//! resume by themselves, and a store that disagrees with what wenda last
//! wrote is refused at start-up unless `--recover` says to serve it as is.

use std::path::{Path, PathBuf};
use std::process::Command;

use wenda::engine::Engine;
use wenda::error::Error;
use wenda::ingest::DocumentInput;

use crate::common;

/// A tmpfs of `size` mounted on a fresh folder, unmounted when dropped
/// (tests run as root).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap().keep();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs failed ({status}); the test needs root, as CI runs it"
        );
        Self(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn document(n: usize) -> DocumentInput {
    DocumentInput {
        id: format!("doc-{n}"),
        text: format!(
            "Harbour report {n}. The crane numbered {n} moved containers all night. \
             The night shift logged every lift of crane {n} in the harbour book."
        ),
        ..Default::default()
    }
}

async fn stored_ids(engine: &Engine) -> Vec<String> {
    let (docs, next) = engine.list_documents(1000, "", "").unwrap();
    assert!(next.is_empty());
    let mut ids: Vec<String> = docs.into_iter().map(|d| d.id).collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// Fills the file system holding `dir` up to `leave` bytes.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0xA5u8; 1 << 16];
    let mut written = 0u64;
    while file.write_all(&block).is_ok() {
        written += block.len() as u64;
    }
    file.set_len(written.saturating_sub(leave)).unwrap();
    path
}

/// One I/O error used to close redb for good ("Previous I/O error
/// occurred"): every later write failed until a restart. Now a write on a
/// full disk fails as RESOURCE_EXHAUSTED with the cause, reads go on, and
/// writes resume by themselves once space is back, with nothing
/// acknowledged lost across a restart.
#[tokio::test]
async fn a_full_disk_fails_writes_clearly_and_they_resume_once_space_is_back() {
    let disk = Tmpfs::mount("20m");
    let data = disk.0.join("data");
    let engine = common::engine(&data, None).await;
    let mut acknowledged = Vec::new();
    for n in 0..3 {
        engine.ingest(vec![document(n)]).await.unwrap();
        acknowledged.push(format!("doc-{n}"));
    }

    let filler = fill(&disk.0, 16 * 1024);
    let mut failure = None;
    for n in 3..400 {
        match engine.ingest(vec![document(n)]).await {
            Ok(_) => acknowledged.push(format!("doc-{n}")),
            Err(err) => {
                failure = Some(err);
                break;
            }
        }
    }
    let failure = failure.expect("a write fails on a full disk");
    assert!(
        matches!(&failure, Error::StorageFull(m) if m.contains("No space left")),
        "{failure:?}"
    );
    assert_eq!(
        tonic::Status::from(failure).code(),
        tonic::Code::ResourceExhausted
    );
    // Still (nearly) full: each write is made or refused as a whole, and
    // what is stored is still served.
    for n in 400..405 {
        match engine.ingest(vec![document(n)]).await {
            Ok(_) => acknowledged.push(format!("doc-{n}")),
            Err(err) => assert!(matches!(err, Error::StorageFull(_)), "{err:?}"),
        }
    }
    assert_eq!(stored_ids(&engine).await, sorted(acknowledged.clone()));

    std::fs::remove_file(filler).unwrap();
    engine
        .ingest(vec![document(1001)])
        .await
        .expect("writes resume once the disk has space, without a restart");
    acknowledged.push("doc-1001".into());
    engine.delete(vec!["doc-0".into()]).await.unwrap();
    acknowledged.retain(|id| id != "doc-0");
    assert_eq!(stored_ids(&engine).await, sorted(acknowledged.clone()));
    drop(engine);

    let engine = common::engine(&data, None).await;
    assert_eq!(stored_ids(&engine).await, sorted(acknowledged));
    let doc = engine.get_document("doc-1001").unwrap();
    assert_eq!(doc.text, document(1001).text);
}

fn config(data: &Path, recover: bool) -> wenda::engine::EngineConfig {
    let mut config = common::default_config(data);
    config.recover = recover;
    config
}

async fn open_error(data: &Path) -> String {
    match Engine::open(config(data, false), common::embedder(), common::counter()).await {
        Ok(_) => panic!("a store that disagrees with its manifest was opened"),
        Err(err) => err.to_string(),
    }
}

/// A zero-length database beside a manifest used to be taken for a new
/// one (and the corpus indexed over it), and an older copy was served as
/// if nothing had happened: both are now refused with a message that says
/// what happened and what to do; `--recover` serves the store as it is.
#[tokio::test]
async fn a_lost_truncated_or_older_store_is_refused_not_silently_reset() {
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("wenda.redb");
    let old = data.path().join("old.redb");
    {
        let engine = common::engine(data.path(), None).await;
        engine.ingest(vec![document(1), document(2)]).await.unwrap();
    }
    std::fs::copy(&db, &old).unwrap();
    {
        let engine = common::engine(data.path(), None).await;
        engine.ingest(vec![document(3)]).await.unwrap();
    }

    std::fs::copy(&old, &db).unwrap();
    let message = open_error(data.path()).await;
    assert!(message.contains("behind the manifest"), "{message}");
    assert!(message.contains("3 documents"), "{message}");
    assert!(message.contains("--recover"), "{message}");

    std::fs::File::create(&db).unwrap();
    let message = open_error(data.path()).await;
    assert!(message.contains("empty (0 bytes)"), "{message}");

    // With --recover the store is served as it is (empty), the manifest is
    // rewritten to describe it, and a plain start accepts it again.
    {
        let engine = common::engine_with(config(data.path(), true), None).await;
        assert!(stored_ids(&engine).await.is_empty());
        engine.ingest(vec![document(4)]).await.unwrap();
    }
    let engine = common::engine(data.path(), None).await;
    assert_eq!(stored_ids(&engine).await, vec!["doc-4".to_string()]);
}

/// A document's text changed inside the closed database (its content hash
/// left as it was) used to be served as it stood. It is now caught at
/// start-up; `--recover` drops that document and keeps the rest.
#[tokio::test]
async fn a_document_changed_inside_the_database_is_refused_at_start_up() {
    use redb::{ReadableDatabase, TableDefinition};
    const DOCUMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("documents");

    let data = tempfile::tempdir().unwrap();
    {
        let engine = common::engine(data.path(), None).await;
        engine.ingest(vec![document(1), document(2)]).await.unwrap();
    }
    {
        let db = redb::Database::open(data.path().join("wenda.redb")).unwrap();
        let mut doc: wenda::store::StoredDocument = {
            let txn = db.begin_read().unwrap();
            let table = txn.open_table(DOCUMENTS).unwrap();
            serde_json::from_slice(table.get("doc-1").unwrap().unwrap().value()).unwrap()
        };
        doc.text = doc.text.replace("containers", "bananas");
        let txn = db.begin_write().unwrap();
        txn.open_table(DOCUMENTS)
            .unwrap()
            .insert("doc-1", serde_json::to_vec(&doc).unwrap().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }

    let message = open_error(data.path()).await;
    assert!(message.contains("content hash"), "{message}");
    assert!(message.contains("doc-1"), "{message}");
    assert!(!message.contains("doc-2"), "{message}");

    {
        let engine = common::engine_with(config(data.path(), true), None).await;
        assert_eq!(stored_ids(&engine).await, vec!["doc-2".to_string()]);
    }
    let engine = common::engine(data.path(), None).await;
    assert_eq!(stored_ids(&engine).await, vec!["doc-2".to_string()]);
}
