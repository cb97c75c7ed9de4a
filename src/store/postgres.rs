//! The PostgreSQL store: documents, passages, vectors and a change log in
//! tables, shared by any number of wenda replicas. Every write is one
//! transaction (documents, passages, vectors and its change-log row),
//! acknowledged after commit; every replica applies the change log to its
//! own in-memory index, woken by `LISTEN/NOTIFY` and polling as a fallback.
//!
//! sqlx is the client: async on the tokio runtime wenda already runs, a
//! connection pool, `PgListener` (which reconnects and listens again by
//! itself), TLS by the URL's `sslmode` (rustls, the TLS stack tonic uses),
//! and a migrator that applies the schema under an advisory lock.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::watch;

use super::{
    Changes, Committed, Copied, META_GENERATION, Origin, PassageRow, Snapshot, Store,
    StoredDocument, StoredPassage, WriteBatch, bytes_to_vector, vector_to_bytes,
};
use crate::error::{Error, Result};

/// The channel a commit notifies, with its sequence as the payload.
const CHANNEL: &str = "wenda_changes";
/// The advisory lock every write holds until it commits, so change-log
/// sequences are given in commit order and without gaps: a replica that
/// has applied up to N never later sees an N-1 commit.
const WRITE_LOCK: i64 = 0x0077_656e_6461; // "wenda"
/// How often a replica asks for the newest sequence, in case a
/// notification was lost (a dropped listening connection).
const POLL: Duration = Duration::from_millis(500);
/// How long a call waits for a connection before it fails as UNAVAILABLE.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The schema's migrations, in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[(1, "tables", include_str!("postgres/0001_tables.sql"))];

pub struct PgStore {
    pool: PgPool,
    /// The runtime the pool lives on: the blocking calls of [`Store`] run
    /// their queries on it.
    runtime: tokio::runtime::Handle,
    seen: watch::Receiver<u64>,
    listener: tokio::task::JoinHandle<()>,
}

impl PgStore {
    /// Connects, applies any migration the schema lacks, and starts
    /// following the change log.
    pub async fn connect(url: &str) -> Result<Self> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| Error::Storage(format!("--store {}: {e}", redact(url))))?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options.application_name("wenda"))
            .await
            .map_err(|e| Error::Unavailable(format!("PostgreSQL at {}: {e}", redact(url))))?;
        Migrator::new(Schema)
            .await
            .map_err(|e| Error::Storage(format!("the schema: {e}")))?
            .run(&pool)
            .await
            .map_err(|e| Error::Storage(format!("migrating the schema: {e}")))?;
        let generation = current_generation(&pool).await.map_err(describe)?;
        let (tell, seen) = watch::channel(generation);
        let listener = tokio::spawn(listen(pool.clone(), tell));
        tracing::info!(store = %redact(url), generation, "PostgreSQL store open");
        Ok(Self {
            pool,
            runtime: tokio::runtime::Handle::current(),
            seen,
            listener,
        })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl Store for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn generation(&self) -> Result<u64> {
        self.runtime
            .block_on(current_generation(&self.pool))
            .map_err(describe)
    }

    fn snapshot(&self) -> Result<Snapshot> {
        self.runtime
            .block_on(async {
                let mut tx = read_transaction(&self.pool).await?;
                let generation = current_generation(&mut *tx).await?;
                let (documents, passages) = read_documents(&mut tx, None).await?;
                let mut meta: BTreeMap<String, String> =
                    sqlx::query("SELECT key, value FROM wenda_meta")
                        .fetch_all(&mut *tx)
                        .await?
                        .into_iter()
                        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                        .collect::<std::result::Result<_, sqlx::Error>>()?;
                meta.insert(META_GENERATION.into(), generation.to_string());
                tx.commit().await?;
                Ok::<_, Failure>(Snapshot {
                    documents,
                    passages,
                    meta,
                })
            })
            .map_err(Failure::into_error)
    }

    fn write(&self, batch: &mut WriteBatch) -> Result<Committed> {
        self.runtime
            .block_on(write_batch(&self.pool, batch))
            .map_err(Failure::into_error)
    }

    fn changes_since(&self, generation: u64) -> Result<Changes> {
        self.runtime
            .block_on(changes_since(&self.pool, generation))
            .map_err(Failure::into_error)
    }

    fn backup_to(&self, _to: &Path) -> Result<Copied> {
        Err(Error::invalid(
            "store",
            "a PostgreSQL store is backed up with pg_dump and restored with pg_restore \
             (deploy/README.md)",
        ))
    }

    fn shared(&self) -> bool {
        true
    }

    fn follow(&self) -> Option<watch::Receiver<u64>> {
        Some(self.seen.clone())
    }
}

/// Why a PostgreSQL call failed: the database, or a record of ours it
/// holds that does not decode.
enum Failure {
    Db(sqlx::Error),
    Corrupt(String),
    Refused(Error),
}

impl From<sqlx::Error> for Failure {
    fn from(err: sqlx::Error) -> Self {
        Self::Db(err)
    }
}

impl Failure {
    fn into_error(self) -> Error {
        match self {
            Self::Db(err) => describe(err),
            Self::Corrupt(what) => {
                Error::Storage(format!("PostgreSQL holds a corrupt record: {what}"))
            }
            Self::Refused(err) => err,
        }
    }
}

/// The crate error for a database failure: PostgreSQL out of reach is
/// UNAVAILABLE (a retry may succeed once it is back), a full disk
/// RESOURCE_EXHAUSTED, the rest a storage failure.
fn describe(err: sqlx::Error) -> Error {
    let message = format!("PostgreSQL: {err}");
    match &err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Error::Unavailable(message),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // disk_full, insufficient_resources, out_of_memory
            Some("53100" | "53000" | "53200") => Error::StorageFull(message),
            // admin_shutdown, crash_shutdown, cannot_connect_now: a server
            // stopping or starting.
            Some("57P01" | "57P02" | "57P03") => Error::Unavailable(message),
            // read_only_sql_transaction: a standby, as during a failover.
            Some("25006") => Error::Unavailable(message),
            _ => Error::Storage(message),
        },
        _ => Error::Storage(message),
    }
}

/// `url` without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{scheme}://{name}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The schema's migrations as sqlx's migrator takes them.
#[derive(Debug)]
struct Schema;

impl<'s> MigrationSource<'s> for Schema {
    fn resolve(
        self,
    ) -> BoxFuture<'s, std::result::Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, name, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(name),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// The sequence of the last committed write (0 for none).
async fn current_generation<'e>(
    db: impl sqlx::Executor<'e, Database = Postgres>,
) -> std::result::Result<u64, sqlx::Error> {
    let seq: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM wenda_changes")
        .fetch_one(db)
        .await?;
    Ok(seq as u64)
}

/// A read-only transaction that sees one commit throughout.
async fn read_transaction(
    pool: &PgPool,
) -> std::result::Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Reads documents with their passages and vectors: all of them, or those
/// of `only`.
async fn read_documents(
    tx: &mut Transaction<'static, Postgres>,
    only: Option<&[String]>,
) -> std::result::Result<(Vec<StoredDocument>, Vec<PassageRow>), Failure> {
    const DOCUMENTS: &str = "SELECT id, source, title, language, published, url, metadata::text, \
                             body, content_hash, origin FROM wenda_documents";
    const PASSAGES: &str = "SELECT id, doc_id, chunk_index, body, char_start, char_end, language, \
                            tokens, sentences::text, clean_start, clean_sentences::text, vector \
                            FROM wenda_passages";
    let (documents, passages) = match only {
        None => (
            sqlx::query(&format!("{DOCUMENTS} ORDER BY id"))
                .fetch_all(&mut **tx)
                .await?,
            sqlx::query(&format!("{PASSAGES} ORDER BY doc_id, chunk_index"))
                .fetch_all(&mut **tx)
                .await?,
        ),
        Some(ids) => (
            sqlx::query(&format!("{DOCUMENTS} WHERE id = ANY($1) ORDER BY id"))
                .bind(ids)
                .fetch_all(&mut **tx)
                .await?,
            sqlx::query(&format!(
                "{PASSAGES} WHERE doc_id = ANY($1) ORDER BY doc_id, chunk_index"
            ))
            .bind(ids)
            .fetch_all(&mut **tx)
            .await?,
        ),
    };
    let mut rows = Vec::with_capacity(passages.len());
    let mut ids_of: HashMap<String, Vec<u64>> = HashMap::new();
    for r in passages {
        let passage = StoredPassage {
            id: r.try_get::<i64, _>(0)? as u64,
            doc_id: r.try_get(1)?,
            chunk_index: r.try_get::<i32, _>(2)? as u32,
            text: r.try_get(3)?,
            char_start: r.try_get::<i64, _>(4)? as usize,
            char_end: r.try_get::<i64, _>(5)? as usize,
            language: r.try_get(6)?,
            tokens: r.try_get::<i32, _>(7)? as u32,
            sentences: json(r.try_get(8)?)?,
            clean_start: r.try_get::<i64, _>(9)? as usize,
            clean_sentences: json(r.try_get(10)?)?,
        };
        let vector = bytes_to_vector(r.try_get::<&[u8], _>(11)?);
        ids_of
            .entry(passage.doc_id.clone())
            .or_default()
            .push(passage.id);
        rows.push((passage, vector));
    }
    let mut out = Vec::with_capacity(documents.len());
    for r in documents {
        let id: String = r.try_get(0)?;
        let origin: String = r.try_get(9)?;
        out.push(StoredDocument {
            passage_ids: ids_of.remove(&id).unwrap_or_default(),
            id,
            source: r.try_get(1)?,
            title: r.try_get(2)?,
            language: r.try_get(3)?,
            published: r.try_get(4)?,
            url: r.try_get(5)?,
            metadata: json(r.try_get(6)?)?,
            text: r.try_get(7)?,
            content_hash: r.try_get(8)?,
            origin: match origin.as_str() {
                "corpus" => Origin::Corpus,
                "api" => Origin::Api,
                other => return Err(Failure::Corrupt(format!("origin `{other}`"))),
            },
        });
    }
    Ok((out, rows))
}

fn json<T: serde::de::DeserializeOwned>(text: String) -> std::result::Result<T, Failure> {
    serde_json::from_str(&text).map_err(|e| Failure::Corrupt(e.to_string()))
}

fn to_json<T: serde::Serialize>(value: &T) -> std::result::Result<String, Failure> {
    serde_json::to_string(value).map_err(|e| Failure::Corrupt(e.to_string()))
}

/// One write: documents, passages, vectors and the change-log row in one
/// transaction, under the write lock.
async fn write_batch(
    pool: &PgPool,
    batch: &mut WriteBatch,
) -> std::result::Result<Committed, Failure> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WRITE_LOCK)
        .execute(&mut *tx)
        .await?;
    let previous = current_generation(&mut *tx).await?;
    let generation = previous + 1;
    if !batch.expect.is_empty() {
        let ids: Vec<&str> = batch.expect.iter().map(|(id, _)| id.as_str()).collect();
        let committed: HashMap<String, String> =
            sqlx::query("SELECT id, content_hash FROM wenda_documents WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<std::result::Result<_, sqlx::Error>>()?;
        for (id, expected) in &batch.expect {
            if committed.get(id) != expected.as_ref() {
                return Err(Failure::Refused(super::conflict(id)));
            }
        }
    }

    let wanted: i64 = batch.put.iter().map(|(_, rows)| rows.len() as i64).sum();
    let mut ids: Vec<i64> =
        sqlx::query_scalar("SELECT nextval('wenda_passage_ids') FROM generate_series(1, $1)")
            .bind(wanted)
            .fetch_all(&mut *tx)
            .await?;
    ids.sort_unstable();
    let mut ids = ids.into_iter();
    for (doc, rows) in &mut batch.put {
        doc.passage_ids.clear();
        for (passage, _) in rows {
            let id = ids
                .next()
                .ok_or_else(|| Failure::Corrupt("fewer passage ids than passages".into()))?
                as u64;
            passage.id = id;
            passage.doc_id.clone_from(&doc.id);
            doc.passage_ids.push(id);
        }
    }

    // A rebuild's `clear_passages` deletes nothing more here: it puts every
    // document it knew, and their old passages go with them below, while a
    // document another replica added meanwhile keeps its passages (the
    // change row still tells followers to reload).
    let touched: Vec<String> = batch
        .delete
        .iter()
        .chain(batch.put.iter().map(|(d, _)| &d.id))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Their passages go with them (ON DELETE CASCADE).
    sqlx::query("DELETE FROM wenda_documents WHERE id = ANY($1)")
        .bind(&touched)
        .execute(&mut *tx)
        .await?;
    insert_documents(&mut tx, &batch.put).await?;
    for (key, value) in &batch.meta {
        sqlx::query(
            "INSERT INTO wenda_meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("INSERT INTO wenda_changes (seq, documents, cleared) VALUES ($1, $2, $3)")
        .bind(generation as i64)
        .bind(&touched)
        .bind(batch.clear_passages)
        .execute(&mut *tx)
        .await?;
    // Delivered to the listeners at commit, not before.
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(generation.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Committed {
        previous,
        generation,
    })
}

/// Inserts documents and their passages, each table in one statement
/// (columns sent as arrays and unnested).
async fn insert_documents(
    tx: &mut Transaction<'static, Postgres>,
    put: &[(StoredDocument, Vec<PassageRow>)],
) -> std::result::Result<(), Failure> {
    if put.is_empty() {
        return Ok(());
    }
    // Borrowed: a rebuild puts every document, and copying each text into
    // the columns would hold the corpus twice.
    let mut d = DocumentColumns::default();
    let mut p = PassageColumns::default();
    for (doc, rows) in put {
        d.id.push(&doc.id);
        d.source.push(&doc.source);
        d.title.push(&doc.title);
        d.language.push(&doc.language);
        d.published.push(doc.published.as_deref());
        d.url.push(doc.url.as_deref());
        d.metadata.push(to_json(&doc.metadata)?);
        d.body.push(&doc.text);
        d.content_hash.push(&doc.content_hash);
        d.origin.push(match doc.origin {
            Origin::Corpus => "corpus",
            Origin::Api => "api",
        });
        for (passage, vector) in rows {
            p.id.push(passage.id as i64);
            p.doc_id.push(&doc.id);
            p.chunk_index.push(passage.chunk_index as i32);
            p.body.push(&passage.text);
            p.char_start.push(passage.char_start as i64);
            p.char_end.push(passage.char_end as i64);
            p.language.push(&passage.language);
            p.tokens.push(passage.tokens as i32);
            p.sentences.push(to_json(&passage.sentences)?);
            p.clean_start.push(passage.clean_start as i64);
            p.clean_sentences.push(to_json(&passage.clean_sentences)?);
            p.vector.push(vector_to_bytes(vector));
        }
    }
    sqlx::query(
        "INSERT INTO wenda_documents (id, source, title, language, published, url, metadata, \
         body, content_hash, origin) \
         SELECT id, source, title, language, published, url, metadata::jsonb, body, \
         content_hash, origin FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
         $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) \
         AS t(id, source, title, language, published, url, metadata, body, content_hash, origin)",
    )
    .bind(&d.id)
    .bind(&d.source)
    .bind(&d.title)
    .bind(&d.language)
    .bind(&d.published)
    .bind(&d.url)
    .bind(&d.metadata)
    .bind(&d.body)
    .bind(&d.content_hash)
    .bind(&d.origin)
    .execute(&mut **tx)
    .await?;
    if !p.id.is_empty() {
        sqlx::query(
            "INSERT INTO wenda_passages (id, doc_id, chunk_index, body, char_start, char_end, \
             language, tokens, sentences, clean_start, clean_sentences, vector) \
             SELECT id, doc_id, chunk_index, body, char_start, char_end, language, tokens, \
             sentences::jsonb, clean_start, clean_sentences::jsonb, vector \
             FROM UNNEST($1::bigint[], $2::text[], $3::int[], $4::text[], $5::bigint[], \
             $6::bigint[], $7::text[], $8::int[], $9::text[], $10::bigint[], $11::text[], \
             $12::bytea[]) AS t(id, doc_id, chunk_index, body, char_start, char_end, language, \
             tokens, sentences, clean_start, clean_sentences, vector)",
        )
        .bind(&p.id)
        .bind(&p.doc_id)
        .bind(&p.chunk_index)
        .bind(&p.body)
        .bind(&p.char_start)
        .bind(&p.char_end)
        .bind(&p.language)
        .bind(&p.tokens)
        .bind(&p.sentences)
        .bind(&p.clean_start)
        .bind(&p.clean_sentences)
        .bind(&p.vector)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[derive(Default)]
struct DocumentColumns<'a> {
    id: Vec<&'a str>,
    source: Vec<&'a str>,
    title: Vec<&'a str>,
    language: Vec<&'a str>,
    published: Vec<Option<&'a str>>,
    url: Vec<Option<&'a str>>,
    metadata: Vec<String>,
    body: Vec<&'a str>,
    content_hash: Vec<&'a str>,
    origin: Vec<&'static str>,
}

#[derive(Default)]
struct PassageColumns<'a> {
    id: Vec<i64>,
    doc_id: Vec<&'a str>,
    chunk_index: Vec<i32>,
    body: Vec<&'a str>,
    char_start: Vec<i64>,
    char_end: Vec<i64>,
    language: Vec<&'a str>,
    tokens: Vec<i32>,
    sentences: Vec<String>,
    clean_start: Vec<i64>,
    clean_sentences: Vec<String>,
    vector: Vec<Vec<u8>>,
}

/// The documents the change log names after `generation`, as they are now,
/// read in one transaction with the sequence they reflect.
async fn changes_since(pool: &PgPool, generation: u64) -> std::result::Result<Changes, Failure> {
    let mut tx = read_transaction(pool).await?;
    let current = current_generation(&mut *tx).await?;
    if current == generation {
        return Ok(Changes::UpToDate);
    }
    if current < generation {
        // The database went back (restored from a dump): start over.
        return Ok(Changes::Reload);
    }
    let rows = sqlx::query(
        "SELECT seq, documents, cleared FROM wenda_changes WHERE seq > $1 ORDER BY seq",
    )
    .bind(generation as i64)
    .fetch_all(&mut *tx)
    .await?;
    let mut touched = BTreeSet::new();
    for (expected, r) in (generation as i64 + 1..).zip(&rows) {
        let seq: i64 = r.try_get(0)?;
        let cleared: bool = r.try_get(2)?;
        // A gap means rows were removed from the log: it can no longer say
        // what changed.
        if cleared || seq != expected {
            return Ok(Changes::Reload);
        }
        touched.extend(r.try_get::<Vec<String>, _>(1)?);
    }
    let touched: Vec<String> = touched.into_iter().collect();
    let (documents, mut passages) = read_documents(&mut tx, Some(&touched)).await?;
    tx.commit().await?;
    let present: BTreeSet<&str> = documents.iter().map(|d| d.id.as_str()).collect();
    let delete = touched
        .iter()
        .filter(|id| !present.contains(id.as_str()))
        .cloned()
        .collect();
    let mut put = Vec::with_capacity(documents.len());
    let mut by_doc: HashMap<String, Vec<PassageRow>> = HashMap::new();
    for row in passages.drain(..) {
        by_doc.entry(row.0.doc_id.clone()).or_default().push(row);
    }
    for doc in documents {
        let rows = by_doc.remove(&doc.id).unwrap_or_default();
        put.push((doc, rows));
    }
    Ok(Changes::Batch {
        batch: WriteBatch {
            delete,
            put,
            ..Default::default()
        },
        generation: current,
    })
}

/// Publishes the newest committed sequence into `tell`: from notifications
/// as commits happen, and from a poll every [`POLL`] in case one was lost.
/// Runs until the store is dropped.
async fn listen(pool: PgPool, tell: watch::Sender<u64>) {
    let mut listener: Option<PgListener> = None;
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reachable = true;
    loop {
        tokio::select! {
            received = async {
                match listener.as_mut() {
                    Some(l) => l.try_recv().await,
                    None => std::future::pending().await,
                }
            } => match received {
                Ok(Some(n)) => {
                    if let Ok(seq) = n.payload().parse::<u64>() {
                        tell.send_if_modified(|v| std::mem::replace(v, seq.max(*v)) != *v);
                    }
                }
                // The connection was lost; the next call reconnects and
                // listens again, and the poll covers what was missed.
                Ok(None) => {}
                Err(err) => {
                    tracing::debug!(%err, "the change listener lost PostgreSQL");
                    listener = None;
                }
            },
            _ = poll.tick() => {
                match current_generation(&pool).await {
                    Ok(seq) => {
                        if !reachable {
                            tracing::info!(generation = seq, "PostgreSQL is reachable again");
                            reachable = true;
                        }
                        tell.send_if_modified(|v| std::mem::replace(v, seq) != seq);
                    }
                    Err(err) => {
                        if reachable {
                            tracing::warn!(%err, "PostgreSQL is out of reach; reads go on from memory");
                            reachable = false;
                        }
                    }
                }
                if listener.is_none() && reachable {
                    listener = match PgListener::connect_with(&pool).await {
                        Ok(mut l) => match l.listen(CHANNEL).await {
                            Ok(()) => Some(l),
                            Err(_) => None,
                        },
                        Err(_) => None,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            redact("postgres://wenda:s3cret@db:5432/wenda?sslmode=require"),
            "postgres://wenda:***@db:5432/wenda?sslmode=require"
        );
        assert_eq!(redact("postgres://db/wenda"), "postgres://db/wenda");
        assert_eq!(
            redact("postgres://wenda@db/wenda"),
            "postgres://wenda@db/wenda"
        );
        assert_eq!(redact("postgres://a:b:c@db"), "postgres://a:***@db");
    }
}
