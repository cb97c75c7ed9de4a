//! Load generator: N concurrent gRPC clients send Search requests to a real
//! wenda server for a fixed count or duration, then report QPS, latency
//! percentiles, errors by status code, the server's RSS over time, and the
//! server's own stage timings (the `timings` of each Search reply) next to
//! the latency the client saw.
//!
//! cargo run --release --example load -- --server http://127.0.0.1:50051 \
//!     --concurrency 8 --duration-secs 30 [--mode hybrid] [--server-pid PID] [--json]
//!
//! `bench/run.py --only concurrency` runs it at several concurrencies;
//! `bench/soak.sh` for minutes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use wenda::proto::{SearchMode, SearchRequest, retrieval_client::RetrievalClient};

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Mode {
    /// The server's default (hybrid).
    Default,
    Dense,
    Lexical,
    Hybrid,
}

impl Mode {
    fn proto(self) -> SearchMode {
        match self {
            Mode::Default => SearchMode::Unspecified,
            Mode::Dense => SearchMode::Dense,
            Mode::Lexical => SearchMode::Lexical,
            Mode::Hybrid => SearchMode::Hybrid,
        }
    }
}

/// One successful request: the latency the client saw and the server's
/// stage timings from the reply (`embed`, `search`, `rank`, `total`), in ms.
#[derive(Clone, Copy)]
struct Sample {
    client_ms: f64,
    server: Option<[f64; 4]>,
}

#[derive(Parser, Debug)]
struct Args {
    /// Server URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Concurrent clients, each on its own connection.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Stop after this many seconds (default when --requests is not given).
    #[arg(long)]
    duration_secs: Option<u64>,
    /// Stop after this many requests in all.
    #[arg(long)]
    requests: Option<usize>,
    /// Questions (JSON lines with "question"), sent round-robin.
    #[arg(long, default_value = "../shared/eval/dev_qa.jsonl")]
    queries: std::path::PathBuf,
    /// Passages per request.
    #[arg(long, default_value_t = 5)]
    top_k: u32,
    /// Retrieval mode of every request.
    #[arg(long, value_enum, default_value_t = Mode::Default)]
    mode: Mode,
    /// Server process to sample RSS from (/proc/PID/status).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Open file descriptors of a process (/proc/PID/fd).
fn fd_count(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Percentiles and mean of each server timing over the requests that
/// carried timings, plus two derived per-request figures:
/// `overhead_vs_embed` = (client latency - embed_ms) / embed_ms, the share of
/// a request's time spent outside the model (transport, queueing, search,
/// ranking) relative to the embedding, and `client_minus_total_ms` = client
/// latency - total_ms, the time outside the engine (gRPC, network, tonic).
fn server_timings(samples: &[Sample]) -> serde_json::Value {
    let with: Vec<(f64, [f64; 4])> = samples
        .iter()
        .filter_map(|s| s.server.map(|t| (s.client_ms, t)))
        .collect();
    let summary = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        serde_json::json!({
            "p50": percentile(&v, 50.0),
            "p95": percentile(&v, 95.0),
            "p99": percentile(&v, 99.0),
            "mean": v.iter().sum::<f64>() / v.len().max(1) as f64,
        })
    };
    let column = |i: usize| with.iter().map(|(_, t)| t[i]).collect::<Vec<f64>>();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let client: Vec<f64> = with.iter().map(|(c, _)| *c).collect();
    let embed = column(0);
    serde_json::json!({
        "requests": with.len(),
        "embed_ms": summary(embed.clone()),
        "search_ms": summary(column(1)),
        "rank_ms": summary(column(2)),
        "total_ms": summary(column(3)),
        "overhead_vs_embed": summary(
            with.iter()
                .filter(|(_, t)| t[0] > 0.0)
                .map(|(c, t)| (c - t[0]) / t[0])
                .collect(),
        ),
        // The same ratio from the means: (mean client - mean embed) / mean embed.
        "overhead_vs_embed_of_means": (mean(&embed) > 0.0)
            .then(|| (mean(&client) - mean(&embed)) / mean(&embed)),
        "client_minus_total_ms": summary(with.iter().map(|(c, t)| c - t[3]).collect()),
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let questions: Vec<String> = std::fs::read_to_string(&args.queries)?
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<serde_json::Value>(l).ok()?["question"]
                .as_str()
                .map(String::from)
        })
        .collect();
    anyhow::ensure!(
        !questions.is_empty(),
        "no questions in {}",
        args.queries.display()
    );
    let questions = Arc::new(questions);
    let deadline = args
        .duration_secs
        .or(if args.requests.is_none() {
            Some(10)
        } else {
            None
        })
        .map(Duration::from_secs);
    let budget = Arc::new(AtomicUsize::new(args.requests.unwrap_or(usize::MAX)));
    let next = Arc::new(AtomicUsize::new(0));

    // RSS and open descriptors sampled every half second while the load runs.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = args.server_pid.map(|pid| {
        let done = done.clone();
        tokio::spawn(async move {
            let (mut samples, mut fds) = (Vec::new(), Vec::new());
            while !done.load(Ordering::Relaxed) {
                samples.extend(rss_kib(pid));
                fds.extend(fd_count(pid));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            (samples, fds)
        })
    });

    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (server, questions, budget, next, top_k, mode) = (
            args.server.clone(),
            questions.clone(),
            budget.clone(),
            next.clone(),
            args.top_k,
            args.mode.proto() as i32,
        );
        workers.push(tokio::spawn(async move {
            let mut client = RetrievalClient::connect(server).await?;
            let mut samples: Vec<Sample> = Vec::new();
            let mut errors: BTreeMap<String, usize> = BTreeMap::new();
            loop {
                if deadline.is_some_and(|d| started.elapsed() >= d) {
                    break;
                }
                if budget
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1))
                    .is_err()
                {
                    break;
                }
                let q = questions[next.fetch_add(1, Ordering::Relaxed) % questions.len()].clone();
                let t = Instant::now();
                match client
                    .search(SearchRequest {
                        query: q,
                        top_k,
                        mode,
                        ..Default::default()
                    })
                    .await
                {
                    Ok(reply) => {
                        let client_ms = t.elapsed().as_secs_f64() * 1000.0;
                        let server = reply.into_inner().timings.map(|t| {
                            [t.embed_ms, t.search_ms, t.rank_ms, t.total_ms].map(f64::from)
                        });
                        samples.push(Sample { client_ms, server });
                    }
                    Err(status) => *errors.entry(format!("{:?}", status.code())).or_default() += 1,
                }
            }
            anyhow::Ok((samples, errors))
        }));
    }
    let mut samples: Vec<Sample> = Vec::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for w in workers {
        let (s, e) = w.await??;
        samples.extend(s);
        for (k, v) in e {
            *errors.entry(k).or_default() += v;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let (rss, fds): (Vec<u64>, Vec<u64>) = match sampler {
        Some(handle) => handle.await?,
        None => Default::default(),
    };
    let mib = |k: Option<&u64>| k.map(|k| *k as f64 / 1024.0);
    // Growth: the last quarter's mean over the second quarter's (after warm-up).
    let quarter = |q: usize| -> Option<f64> {
        let n = rss.len() / 4;
        (n > 0).then(|| rss[q * n..(q + 1) * n].iter().sum::<u64>() as f64 / n as f64)
    };
    let rss_growth = quarter(1).zip(quarter(3)).map(|(a, b)| b / a);
    let mut latencies: Vec<f64> = samples.iter().map(|s| s.client_ms).collect();
    latencies.sort_by(f64::total_cmp);
    let server = server_timings(&samples);
    let report = serde_json::json!({
        "concurrency": args.concurrency,
        "requests_ok": latencies.len(),
        "errors": errors,
        "seconds": elapsed,
        "qps": latencies.len() as f64 / elapsed,
        "p50_ms": percentile(&latencies, 50.0),
        "p95_ms": percentile(&latencies, 95.0),
        "p99_ms": percentile(&latencies, 99.0),
        "mean_ms": latencies.iter().sum::<f64>() / latencies.len().max(1) as f64,
        "server_rss_first_mib": mib(rss.first()),
        "server_rss_last_mib": mib(rss.last()),
        "server_rss_max_mib": mib(rss.iter().max()),
        "server_rss_growth": rss_growth,
        "server_fds_max": fds.iter().max(),
        "server_fds_last": fds.last(),
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "server_timings": server,
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "concurrency {}: {} ok, errors {:?}, {:.1} QPS, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, server RSS {} -> {} MiB",
            args.concurrency,
            latencies.len(),
            errors,
            report["qps"].as_f64().unwrap_or(0.0),
            report["p50_ms"].as_f64().unwrap_or(0.0),
            report["p95_ms"].as_f64().unwrap_or(0.0),
            report["p99_ms"].as_f64().unwrap_or(0.0),
            report["server_rss_first_mib"],
            report["server_rss_last_mib"],
        );
        let stat = |k: &str, s: &str| report["server_timings"][k][s].as_f64().unwrap_or(f64::NAN);
        println!(
            "server timings p50: embed {:.1} ms, search {:.2} ms, rank {:.2} ms, total {:.1} ms; \
             client - embed = {:.1}% of embed (p50 per request), client - server total {:.2} ms (p50)",
            stat("embed_ms", "p50"),
            stat("search_ms", "p50"),
            stat("rank_ms", "p50"),
            stat("total_ms", "p50"),
            stat("overhead_vs_embed", "p50") * 100.0,
            stat("client_minus_total_ms", "p50"),
        );
    }
    Ok(())
}
