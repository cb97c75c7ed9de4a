//! `wenda backup` and `wenda restore`, and the backup socket a serving
//! wenda listens on in its data directory (`backup.sock`, owner-only).
//!
//! redb lets one process hold a database, so while wenda serves, `wenda
//! backup --data-dir DIR` asks the server through the socket: the server
//! copies the database as of one commit (`RedbStore::backup_to`, writes go on
//! meanwhile) and streams the copy back. Without a server it opens the
//! database itself. The socket is guarded by file permissions, as Docker's
//! is: whoever may read the data directory may read its data anyway.
//!
//! Protocol: the client writes `backup\n`; the server answers
//! `ok BYTES\n` and the file's bytes, or `error MESSAGE\n`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::args::{BackupArgs, RestoreArgs};
use crate::engine::Engine;
use crate::store::{self, Copied, RedbStore, Store};

/// The socket's file name inside the data directory.
pub const SOCKET: &str = "backup.sock";

/// Listens on `path` in the background; a failure to bind is logged, not
/// fatal (a read-only data directory, say): serving goes on without it.
pub fn serve_socket(path: PathBuf, engine: Arc<Engine>) {
    // A socket file left by a process that is gone refuses connections.
    if std::os::unix::net::UnixStream::connect(&path).is_err() {
        let _ = std::fs::remove_file(&path);
    }
    let listener = match tokio::net::UnixListener::bind(&path) {
        Ok(listener) => listener,
        Err(err) => {
            tracing::warn!(path = %path.display(), %err, "no backup socket: `wenda backup` needs the server stopped");
            return;
        }
    };
    use std::os::unix::fs::PermissionsExt;
    if let Err(err) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(path = %path.display(), %err, "could not make the backup socket owner-only; closing it");
        return;
    }
    tracing::info!(path = %path.display(), "backup socket listening");
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    tokio::spawn(async move {
        let mut served = 0u64;
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::warn!(%err, "backup socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            served += 1;
            let copy = dir.join(format!(".backup-{}-{served}.redb", std::process::id()));
            tokio::spawn(answer(stream, engine.clone(), copy));
        }
    });
}

/// One request on the socket.
async fn answer(stream: tokio::net::UnixStream, engine: Arc<Engine>, copy: PathBuf) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let asked = BufReader::new(read.take(64)).read_line(&mut line).await;
    let result = match asked {
        Ok(_) if line.trim() == "backup" => send_copy(&mut write, &engine, &copy).await,
        Ok(_) => Err(anyhow::anyhow!("unknown request {:?}", line.trim())),
        Err(err) => Err(err.into()),
    };
    let _ = tokio::fs::remove_file(&copy).await;
    match result {
        Ok(copied) => tracing::info!(
            documents = copied.documents,
            passages = copied.passages,
            generation = copied.generation,
            bytes = copied.bytes,
            "backup sent"
        ),
        Err(err) => {
            tracing::warn!(%err, "backup failed");
            let message = format!("error {}\n", err.to_string().replace('\n', " "));
            let _ = write.write_all(message.as_bytes()).await;
        }
    }
}

async fn send_copy(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    engine: &Engine,
    copy: &Path,
) -> anyhow::Result<Copied> {
    let copied = engine.backup_to(copy.to_path_buf()).await?;
    let mut file = tokio::fs::File::open(copy).await?;
    write
        .write_all(format!("ok {}\n", copied.bytes).as_bytes())
        .await?;
    tokio::io::copy(&mut file, write).await?;
    write.shutdown().await?;
    Ok(copied)
}

/// `wenda backup`: from the serving process when there is one, else
/// straight from the database.
pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let db = args.data_dir.join(store::FILE_NAME);
    if !db.exists() {
        bail!("{}: no database to back up", db.display());
    }
    let started = std::time::Instant::now();
    let (copied, how) = if RedbStore::check_not_in_use(&db).is_ok() {
        match RedbStore::open(&db) {
            Ok(store) => (store.backup_to(&args.to)?, "from the database"),
            // A server took the database in between: ask it.
            Err(_) => (
                fetch(&args.data_dir, &args.to).await?,
                "from the serving wenda",
            ),
        }
    } else {
        (
            fetch(&args.data_dir, &args.to).await?,
            "from the serving wenda",
        )
    };
    println!(
        "backed up {} documents, {} passages (generation {}) to {} ({} bytes, {how}, {:.1} s)",
        copied.documents,
        copied.passages,
        copied.generation,
        args.to.display(),
        copied.bytes,
        started.elapsed().as_secs_f32()
    );
    Ok(())
}

/// Asks the server on `data_dir`'s socket for a copy and writes it to `to`.
async fn fetch(data_dir: &Path, to: &Path) -> anyhow::Result<Copied> {
    let socket = data_dir.join(SOCKET);
    let stream = tokio::net::UnixStream::connect(&socket)
        .await
        .with_context(|| {
            format!(
                "{} is in use and its backup socket {} does not answer",
                data_dir.display(),
                socket.display()
            )
        })?;
    let (read, mut write) = stream.into_split();
    write.write_all(b"backup\n").await?;
    let mut read = BufReader::new(read);
    let mut header = String::new();
    read.read_line(&mut header).await?;
    let bytes: u64 = match header.trim().split_once(' ') {
        Some(("ok", n)) => n.parse().context("a malformed backup header")?,
        Some(("error", message)) => bail!("the server could not back up: {message}"),
        _ => bail!("the backup socket answered {:?}", header.trim()),
    };
    let partial = to.with_file_name(format!(
        ".{}.partial",
        to.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| partial.display().to_string())?;
    let got = tokio::io::copy(&mut read, &mut file).await?;
    if got != bytes {
        let _ = tokio::fs::remove_file(&partial).await;
        bail!("the backup stream ended after {got} of {bytes} bytes");
    }
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&partial, to).await?;
    // What was written is read back and checked, as a restore would.
    let to = to.to_path_buf();
    tokio::task::spawn_blocking(move || verify(&to)).await?
}

/// Opens a backup and checks every record: they decode, each document's
/// text matches its content hash, and each document's passages are there.
fn verify(path: &Path) -> anyhow::Result<Copied> {
    let (snapshot, generation) = store::read_backup(path)
        .with_context(|| format!("{} is not a wenda backup", path.display()))?;
    let altered = crate::engine::persist::altered_documents(&snapshot);
    if let Some(first) = altered.first() {
        bail!(
            "{}: {} documents do not match their content hash (the first: {first})",
            path.display(),
            altered.len()
        );
    }
    let passages: std::collections::HashSet<u64> =
        snapshot.passages.iter().map(|(p, _)| p.id).collect();
    if let Some(doc) = snapshot
        .documents
        .iter()
        .find(|d| d.passage_ids.iter().any(|id| !passages.contains(id)))
    {
        bail!("{}: document {} misses passages", path.display(), doc.id);
    }
    Ok(Copied {
        documents: snapshot.documents.len() as u64,
        passages: snapshot.passages.len() as u64,
        generation,
        bytes: std::fs::metadata(path)?.len(),
    })
}

/// `wenda restore`: checks the backup, then puts it in place as the data
/// directory's database. The manifest (the graph dump's description) is
/// removed, so the next start builds the graph from the restored store.
pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let copied = verify(&args.from)?;
    std::fs::create_dir_all(&args.data_dir).with_context(|| args.data_dir.display().to_string())?;
    let db = args.data_dir.join(store::FILE_NAME);
    RedbStore::check_not_in_use(&db)?;
    if db.exists() && !args.force {
        bail!(
            "{} already holds a database; --force replaces it",
            args.data_dir.display()
        );
    }
    let partial = args
        .data_dir
        .join(format!(".{}.restoring", store::FILE_NAME));
    std::fs::copy(&args.from, &partial).with_context(|| partial.display().to_string())?;
    std::fs::File::open(&partial)?.sync_all()?;
    let manifest = args.data_dir.join(crate::engine::persist::FILE_NAME);
    if manifest.exists() {
        std::fs::remove_file(&manifest).with_context(|| manifest.display().to_string())?;
    }
    std::fs::rename(&partial, &db)?;
    std::fs::File::open(&args.data_dir)?.sync_all()?;
    println!(
        "restored {} documents, {} passages (generation {}) into {}",
        copied.documents,
        copied.passages,
        copied.generation,
        args.data_dir.display()
    );
    Ok(())
}
