//! Durable storage of documents, passages and their vectors in `redb`, an
//! embedded ACID database: every change is one transaction, fsynced on
//! commit, so a crash leaves either the old state or the new one.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{
    Changes, Committed, Copied, META_GENERATION, Snapshot, Store, StoredDocument, StoredPassage,
    WriteBatch, bytes_to_vector, vector_to_bytes,
};
use crate::error::{Error, Result};

const DOCUMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("documents");
const PASSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("passages");
const VECTORS: TableDefinition<u64, &[u8]> = TableDefinition::new("vectors");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// Meta key of the next free passage id.
const META_NEXT_ID: &str = "next_passage_id";

pub struct RedbStore {
    path: PathBuf,
    /// `None` after an I/O error closed the database, until it reopens.
    /// redb refuses every transaction after one I/O error ("close and
    /// re-open"), so a full disk would otherwise stop all writes until a
    /// restart; reopening recovers to the last commit once the disk allows.
    db: Mutex<Option<Database>>,
}

/// The database's file name inside the data directory.
pub const FILE_NAME: &str = "wenda.redb";

impl RedbStore {
    /// Opens (or creates) the database file.
    pub fn open(path: &Path) -> Result<Self> {
        let db = open_database(path).map_err(|err| describe(err, path))?;
        Ok(Self {
            path: path.to_path_buf(),
            db: Mutex::new(Some(db)),
        })
    }

    /// Fails at once when another process has the database open, so that
    /// start-up says so before the model loads rather than after. Only the
    /// lock is checked: other faults are for [`RedbStore::open`] to report.
    pub fn check_not_in_use(path: &Path) -> Result<()> {
        if !path.exists() {
            return Ok(());
        }
        match Database::open(path) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                Err(describe(redb::Error::DatabaseAlreadyOpen, path))
            }
            _ => Ok(()),
        }
    }

    /// Runs `work` on the open database, reopening it first if an I/O error
    /// closed it. An I/O error in `work` closes the database (and tries to
    /// reopen it at once) and is logged with its cause.
    fn with_db<T>(&self, work: impl FnOnce(&Database) -> Result<T, Failure>) -> Result<T> {
        let mut db = self.lock();
        if db.is_none() {
            let reopened = open_database(&self.path).map_err(|err| describe(err, &self.path))?;
            tracing::info!(path = %self.path.display(), "the store is reopened");
            *db = Some(reopened);
        }
        let Some(open) = db.as_ref() else {
            unreachable!("opened above")
        };
        match work(open) {
            Ok(value) => Ok(value),
            Err(Failure::Refused(err)) => Err(err),
            Err(Failure::Db(err)) => {
                if matches!(err, redb::Error::Io(_) | redb::Error::PreviousIo) {
                    tracing::error!(path = %self.path.display(), %err, "the store failed to write; closing and reopening it");
                    *db = None;
                    match open_database(&self.path) {
                        Ok(reopened) => *db = Some(reopened),
                        Err(reopen) => {
                            tracing::error!(%reopen, "the store stays closed until a write can reopen it")
                        }
                    }
                }
                Err(describe(err, &self.path))
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Database>> {
        // The guarded value is only replaced whole, never left half-changed.
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for RedbStore {
    fn kind(&self) -> &'static str {
        "redb"
    }

    /// The store's generation, read from the database.
    fn generation(&self) -> Result<u64> {
        self.with_db(|db| {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            Ok(meta
                .get(META_GENERATION)?
                .and_then(|v| v.value().parse().ok())
                .unwrap_or(0))
        })
    }

    /// Reads everything.
    fn snapshot(&self) -> Result<Snapshot> {
        self.with_db(read_all)
    }

    /// Writes a copy of the database as of one commit to `to` (a new file,
    /// written beside it and renamed into place once complete and synced).
    /// The copy reads from one read transaction, taken without holding the
    /// store, so writes go on meanwhile and land after the copied state.
    fn backup_to(&self, to: &Path) -> Result<Copied> {
        let txn = self.with_db(|db| Ok(db.begin_read()?))?;
        copy_database(txn, to)
    }

    /// Applies a batch in one durable transaction and returns the new
    /// generation.
    ///
    /// Passage ids are allocated here, inside the transaction, from the
    /// committed store (past both its next-id counter and its largest
    /// passage id), and written into `batch`: ids never come from memory
    /// that could lag a commit, so a write can never reuse another
    /// document's passage ids. Overwriting a stored passage is refused, and
    /// the transaction with it.
    fn write(&self, batch: &mut WriteBatch) -> Result<Committed> {
        self.with_db(|db| write_batch(db, batch))
    }

    /// Never asked: one process writes a redb store, and its state follows
    /// each write it makes. A reload is the safe answer all the same.
    fn changes_since(&self, generation: u64) -> Result<Changes> {
        Ok(if self.generation()? == generation {
            Changes::UpToDate
        } else {
            Changes::Reload
        })
    }
}

/// Why a store operation failed: the database (which may need reopening),
/// or a refusal of ours.
enum Failure {
    Db(redb::Error),
    Refused(Error),
}

impl<E: Into<redb::Error>> From<E> for Failure {
    fn from(err: E) -> Self {
        Self::Db(err.into())
    }
}

/// Reads a backup file without writing to it (redb's read-only mode):
/// every record decoded, and the generation it was taken at.
pub fn read_backup(path: &Path) -> Result<(Snapshot, u64)> {
    let db = redb::ReadOnlyDatabase::open(path).map_err(|err| describe(err.into(), path))?;
    let snapshot = read_all(&db).map_err(|failure| match failure {
        Failure::Db(err) => describe(err, path),
        Failure::Refused(err) => err,
    })?;
    let generation = snapshot
        .meta
        .get(META_GENERATION)
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);
    Ok((snapshot, generation))
}

/// Copies every table of `txn` into a new database at `to`.
fn copy_database(txn: redb::ReadTransaction, to: &Path) -> Result<Copied> {
    let tmp = to.with_file_name(format!(
        ".{}.partial",
        to.file_name().unwrap_or_default().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&tmp);
    let copied = (|| -> Result<Copied, redb::Error> {
        let out = Database::create(&tmp)?;
        let write = out.begin_write()?;
        let mut copied = Copied {
            documents: 0,
            passages: 0,
            generation: 0,
            bytes: 0,
        };
        {
            let mut documents = write.open_table(DOCUMENTS)?;
            for row in txn.open_table(DOCUMENTS)?.iter()? {
                let (k, v) = row?;
                documents.insert(k.value(), v.value())?;
                copied.documents += 1;
            }
            let mut passages = write.open_table(PASSAGES)?;
            for row in txn.open_table(PASSAGES)?.iter()? {
                let (k, v) = row?;
                passages.insert(k.value(), v.value())?;
                copied.passages += 1;
            }
            let mut vectors = write.open_table(VECTORS)?;
            for row in txn.open_table(VECTORS)?.iter()? {
                let (k, v) = row?;
                vectors.insert(k.value(), v.value())?;
            }
            let mut meta = write.open_table(META)?;
            for row in txn.open_table(META)?.iter()? {
                let (k, v) = row?;
                if k.value() == META_GENERATION {
                    copied.generation = v.value().parse().unwrap_or(0);
                }
                meta.insert(k.value(), v.value())?;
            }
        }
        write.commit()?;
        Ok(copied)
    })()
    .map_err(|err| describe(err, &tmp))?;
    let io = |e: std::io::Error| Error::Io(format!("{}: {e}", to.display()));
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, to).map_err(io)?;
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    let bytes = std::fs::metadata(to).map_err(io)?.len();
    Ok(Copied { bytes, ..copied })
}

/// The crate error for a database failure: a full disk is
/// RESOURCE_EXHAUSTED and other I/O errors UNAVAILABLE (both worth a retry
/// once the operator has acted; nothing was written), the rest a storage
/// failure.
fn describe(err: redb::Error, path: &Path) -> Error {
    let message = format!("{}: {err}", path.display());
    match &err {
        redb::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) =>
        {
            Error::StorageFull(message)
        }
        redb::Error::Io(_) | redb::Error::PreviousIo => Error::Unavailable(message),
        redb::Error::DatabaseAlreadyOpen => Error::Storage(format!(
            "{}: in use by another process (another wenda on this --data-dir?); \
             stop it or choose another data directory",
            path.display()
        )),
        _ => Error::Storage(message),
    }
}

/// Opens (or creates) the database and its tables.
fn open_database(path: &Path) -> Result<Database, redb::Error> {
    let db = Database::create(path)?;
    let txn = db.begin_write()?;
    {
        txn.open_table(DOCUMENTS)?;
        txn.open_table(PASSAGES)?;
        txn.open_table(VECTORS)?;
        txn.open_table(META)?;
    }
    txn.commit()?;
    Ok(db)
}

fn read_all(db: &impl ReadableDatabase) -> Result<Snapshot, Failure> {
    let txn = db.begin_read()?;
    let mut snap = Snapshot::default();
    for row in txn.open_table(DOCUMENTS)?.iter()? {
        let (_, value) = row?;
        snap.documents
            .push(decode(value.value()).map_err(Failure::Refused)?);
    }
    let vectors = txn.open_table(VECTORS)?;
    for row in txn.open_table(PASSAGES)?.iter()? {
        let (key, value) = row?;
        let passage: StoredPassage = decode(value.value()).map_err(Failure::Refused)?;
        let vector = vectors
            .get(key.value())?
            .map(|v| bytes_to_vector(v.value()))
            .ok_or_else(|| {
                Failure::Refused(Error::Storage(format!(
                    "passage {} has no vector",
                    key.value()
                )))
            })?;
        snap.passages.push((passage, vector));
    }
    for row in txn.open_table(META)?.iter()? {
        let (k, v) = row?;
        snap.meta
            .insert(k.value().to_string(), v.value().to_string());
    }
    Ok(snap)
}

fn write_batch(db: &Database, batch: &mut WriteBatch) -> Result<Committed, Failure> {
    let txn = db.begin_write()?;
    let committed;
    {
        let mut documents = txn.open_table(DOCUMENTS)?;
        let mut passages = txn.open_table(PASSAGES)?;
        let mut vectors = txn.open_table(VECTORS)?;
        let mut meta = txn.open_table(META)?;
        let counter = |meta: &redb::Table<&str, &str>, key: &str| -> Result<Option<u64>, Failure> {
            Ok(meta.get(key)?.and_then(|v| v.value().parse().ok()))
        };
        let after_last = passages.last()?.map_or(1, |(k, _)| k.value() + 1);
        let mut next_id = counter(&meta, META_NEXT_ID)?.unwrap_or(1).max(after_last);
        let previous = counter(&meta, META_GENERATION)?.unwrap_or(0);
        committed = Committed {
            previous,
            generation: previous + 1,
        };
        for (doc, rows) in &mut batch.put {
            doc.passage_ids.clear();
            for (passage, _) in rows {
                passage.id = next_id;
                passage.doc_id.clone_from(&doc.id);
                doc.passage_ids.push(next_id);
                next_id += 1;
            }
        }
        for (id, expected) in &batch.expect {
            let committed = documents
                .get(id.as_str())?
                .map(|v| decode::<StoredDocument>(v.value()))
                .transpose()
                .map_err(Failure::Refused)?;
            if committed.map(|d| d.content_hash).as_ref() != expected.as_ref() {
                return Err(Failure::Refused(super::conflict(id)));
            }
        }
        if batch.clear_passages {
            passages.retain(|_, _| false)?;
            vectors.retain(|_, _| false)?;
        }
        let replaced = batch.put.iter().map(|(d, _)| d.id.clone());
        for id in batch.delete.iter().cloned().chain(replaced) {
            let old = documents
                .remove(id.as_str())?
                .map(|v| decode::<StoredDocument>(v.value()))
                .transpose()
                .map_err(Failure::Refused)?;
            for pid in old.map(|d| d.passage_ids).unwrap_or_default() {
                passages.remove(pid)?;
                vectors.remove(pid)?;
            }
        }
        for (doc, chunks) in &batch.put {
            documents.insert(
                doc.id.as_str(),
                encode(doc).map_err(Failure::Refused)?.as_slice(),
            )?;
            for (passage, vector) in chunks {
                // Dropping `txn` uncommitted aborts the whole write.
                if passages
                    .insert(
                        passage.id,
                        encode(passage).map_err(Failure::Refused)?.as_slice(),
                    )?
                    .is_some()
                {
                    return Err(Failure::Refused(Error::Storage(format!(
                        "passage id {} is already taken; the write was aborted",
                        passage.id
                    ))));
                }
                vectors.insert(passage.id, vector_to_bytes(vector).as_slice())?;
            }
        }
        for (k, v) in &batch.meta {
            meta.insert(k.as_str(), v.as_str())?;
        }
        meta.insert(META_NEXT_ID, next_id.to_string().as_str())?;
        meta.insert(META_GENERATION, committed.generation.to_string().as_str())?;
    }
    txn.commit()?;
    Ok(committed)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Storage(e.to_string()))
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Storage(format!("corrupt record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Origin;

    fn doc(id: &str, pids: &[u64]) -> StoredDocument {
        StoredDocument {
            id: id.into(),
            source: id.into(),
            title: "t".into(),
            language: "en".into(),
            published: None,
            url: None,
            metadata: Default::default(),
            text: "hello".into(),
            content_hash: "h".into(),
            origin: Origin::Api,
            passage_ids: pids.to_vec(),
        }
    }

    fn passage(id: u64, doc_id: &str) -> StoredPassage {
        StoredPassage {
            id,
            doc_id: doc_id.into(),
            chunk_index: 0,
            text: "hello".into(),
            char_start: 0,
            char_end: 5,
            language: "en".into(),
            tokens: 3,
            sentences: vec![(0, 5)],
            clean_start: 0,
            clean_sentences: vec![(0, 5)],
        }
    }

    #[test]
    fn write_replace_delete_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let store = RedbStore::open(&path).unwrap();
            store
                .write(&mut WriteBatch {
                    put: vec![
                        (
                            doc("a", &[1, 2]),
                            vec![
                                (passage(1, "a"), vec![0.5, -1.0]),
                                (passage(2, "a"), vec![1.0, 0.0]),
                            ],
                        ),
                        (doc("b", &[3]), vec![(passage(3, "b"), vec![0.0, 1.0])]),
                    ],
                    meta: vec![("build_id".into(), "1".into())],
                    ..Default::default()
                })
                .unwrap();
            // Replacing "a" drops its old passages; deleting "b" drops its one.
            store
                .write(&mut WriteBatch {
                    put: vec![(doc("a", &[4]), vec![(passage(4, "a"), vec![0.25, 0.75])])],
                    delete: vec!["b".into()],
                    ..Default::default()
                })
                .unwrap();
        }
        let snap = RedbStore::open(&path).unwrap().snapshot().unwrap();
        assert_eq!(snap.documents.len(), 1);
        assert_eq!(snap.documents[0].passage_ids, vec![4]);
        assert_eq!(snap.passages.len(), 1);
        assert_eq!(snap.passages[0].1, vec![0.25, 0.75]);
        assert_eq!(snap.meta["build_id"], "1");
    }

    fn one_passage(id: &str) -> WriteBatch {
        WriteBatch {
            // Whatever ids the caller holds are replaced by the store's.
            put: vec![(doc(id, &[1]), vec![(passage(1, "?"), vec![1.0, 0.0])])],
            ..Default::default()
        }
    }

    /// Passage ids come from the committed store, never from the caller:
    /// two writers holding the same stale id get different ones, and a lost
    /// counter is caught up from the largest stored passage.
    #[test]
    fn passage_ids_come_from_the_committed_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("db.redb")).unwrap();
        let mut a = one_passage("a");
        let mut b = one_passage("b");
        assert_eq!(store.write(&mut a).unwrap().generation, 1);
        assert_eq!(store.write(&mut b).unwrap().generation, 2);
        assert_eq!(a.put[0].0.passage_ids, vec![1]);
        assert_eq!(b.put[0].0.passage_ids, vec![2]);
        assert_eq!(b.put[0].1[0].0.id, 2);
        assert_eq!(b.put[0].1[0].0.doc_id, "b");

        // A counter that lags the passages (as one written by an older
        // wenda could) does not make the next write reuse an id.
        let db = store.lock();
        let txn = db.as_ref().unwrap().begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(META_NEXT_ID, "1")
            .unwrap();
        txn.commit().unwrap();
        drop(db);
        let mut c = one_passage("c");
        store.write(&mut c).unwrap();
        assert_eq!(c.put[0].0.passage_ids, vec![3]);

        let snap = store.snapshot().unwrap();
        for d in &snap.documents {
            for pid in &d.passage_ids {
                let (p, _) = snap.passages.iter().find(|(p, _)| p.id == *pid).unwrap();
                assert_eq!(p.doc_id, d.id, "{} holds a passage of {}", d.id, p.doc_id);
            }
        }
        assert_eq!(snap.passages.len(), 3);
    }
}
