//! The two stores measured in one run: write throughput of redb against
//! PostgreSQL, and on PostgreSQL the time from a write's start to a second
//! replica's store having read it (commit, NOTIFY, and the change-log read
//! a follower makes). Synthetic documents of `--passages` passages with
//! random 384-dimensional vectors: the model is left out, so this is the
//! store's own cost (an ingest adds the embedding, which dominates it).
//!
//! `cargo run --release --example store_bench -- --postgres URL [--writes N] [--passages P]`
//! (`make bench-store` runs it against a throwaway PostgreSQL: bench/store.sh.)

use std::time::{Duration, Instant};

use anyhow::Context;
use wenda::store::postgres::PgStore;
use wenda::store::{Changes, Origin, RedbStore, Store, StoredDocument, StoredPassage, WriteBatch};

const DIMENSION: usize = 384;

struct Args {
    postgres: String,
    writes: usize,
    passages: usize,
}

fn parse() -> anyhow::Result<Args> {
    let mut args = Args {
        postgres: String::new(),
        writes: 200,
        passages: 8,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--postgres" => args.postgres = value,
            "--writes" => args.writes = value.parse()?,
            "--passages" => args.passages = value.parse()?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    anyhow::ensure!(!args.postgres.is_empty(), "--postgres URL is required");
    Ok(args)
}

/// Document `n` with `passages` passages of about 60 words each.
fn document(n: usize, passages: usize, seed: &mut u64) -> WriteBatch {
    let mut rows = Vec::with_capacity(passages);
    let mut text = String::new();
    for i in 0..passages {
        let start = text.chars().count();
        let body = format!("Passage {i} of document {n}. ").repeat(10);
        text.push_str(&body);
        let end = text.chars().count();
        let vector = (0..DIMENSION)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                (*seed % 2000) as f32 / 1000.0 - 1.0
            })
            .collect();
        rows.push((
            StoredPassage {
                id: 0,
                doc_id: String::new(),
                chunk_index: i as u32,
                text: body,
                char_start: start,
                char_end: end,
                language: "en".into(),
                tokens: 60,
                sentences: vec![(start, end)],
                clean_start: start,
                clean_sentences: vec![(start, end)],
            },
            vector,
        ));
    }
    WriteBatch {
        put: vec![(
            StoredDocument {
                id: format!("bench/{n}"),
                source: format!("bench/{n}"),
                title: format!("Document {n}"),
                language: "en".into(),
                published: None,
                url: None,
                metadata: Default::default(),
                content_hash: format!("{n:x}"),
                text,
                origin: Origin::Api,
                passage_ids: Vec::new(),
            },
            rows,
        )],
        ..Default::default()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(name: &str, latencies: &mut [Duration], total: Duration, passages: usize) {
    latencies.sort();
    let writes = latencies.len() as f64;
    println!(
        "{name:<28} {:>8.1} writes/s {:>9.0} passages/s   p50 {:>6.2} ms   p95 {:>6.2} ms",
        writes / total.as_secs_f64(),
        writes * passages as f64 / total.as_secs_f64(),
        percentile(latencies, 0.5),
        percentile(latencies, 0.95),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = parse()?;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    println!(
        "{} writes of one document with {} passages ({DIMENSION}-dimensional vectors) each",
        args.writes, args.passages
    );

    // redb: a write is visible to its process once committed.
    let dir = tempfile::tempdir()?;
    let redb: std::sync::Arc<dyn Store> =
        std::sync::Arc::new(RedbStore::open(&dir.path().join(wenda::store::FILE_NAME))?);
    let mut latencies = Vec::with_capacity(args.writes);
    let started = Instant::now();
    for n in 0..args.writes {
        let mut batch = document(n, args.passages, &mut seed);
        let store = redb.clone();
        let t = Instant::now();
        tokio::task::spawn_blocking(move || store.write(&mut batch)).await??;
        latencies.push(t.elapsed());
    }
    report(
        "redb commit",
        &mut latencies,
        started.elapsed(),
        args.passages,
    );

    // PostgreSQL: one replica writes, another follows.
    let writer: std::sync::Arc<dyn Store> =
        std::sync::Arc::new(PgStore::connect(&args.postgres).await?);
    let follower: std::sync::Arc<dyn Store> =
        std::sync::Arc::new(PgStore::connect(&args.postgres).await?);
    let mut seen = follower.follow().context("a PostgreSQL store follows")?;
    let mut applied = {
        let f = follower.clone();
        tokio::task::spawn_blocking(move || f.generation()).await??
    };
    let (mut commits, mut visible) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for n in 0..args.writes {
        let mut batch = document(n, args.passages, &mut seed);
        let store = writer.clone();
        let t = Instant::now();
        let committed = tokio::task::spawn_blocking(move || store.write(&mut batch)).await??;
        commits.push(t.elapsed());
        while *seen.borrow_and_update() < committed.generation {
            seen.changed().await?;
        }
        let f = follower.clone();
        let from = applied;
        let changes = tokio::task::spawn_blocking(move || f.changes_since(from)).await??;
        match changes {
            Changes::Batch { generation, .. } => applied = generation,
            other => anyhow::bail!("unexpected {other:?}"),
        }
        visible.push(t.elapsed());
    }
    let total = started.elapsed();
    report("postgres commit", &mut commits, total, args.passages);
    report(
        "postgres write-to-visible",
        &mut visible,
        total,
        args.passages,
    );
    Ok(())
}
