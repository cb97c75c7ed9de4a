//! Load generator: N concurrent gRPC clients send Search requests to a real
//! wenda server for a fixed count or duration, then report QPS, latency
//! percentiles, errors by status code, and the server's RSS over time.
//!
//! cargo run --release --example load -- --server http://127.0.0.1:50051 \
//!     --concurrency 8 --duration-secs 30 [--server-pid PID] [--json]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use wenda::proto::{SearchRequest, retrieval_client::RetrievalClient};

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
    /// Server process to sample RSS from (/proc/PID/status).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
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

    // RSS sampled every half second while the load runs.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = args.server_pid.map(|pid| {
        let done = done.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) {
                samples.extend(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            samples
        })
    });

    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (server, questions, budget, next, top_k) = (
            args.server.clone(),
            questions.clone(),
            budget.clone(),
            next.clone(),
            args.top_k,
        );
        workers.push(tokio::spawn(async move {
            let mut client = RetrievalClient::connect(server).await?;
            let mut latencies = Vec::new();
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
                        ..Default::default()
                    })
                    .await
                {
                    Ok(_) => latencies.push(t.elapsed().as_secs_f64() * 1000.0),
                    Err(status) => *errors.entry(format!("{:?}", status.code())).or_default() += 1,
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut latencies = Vec::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for w in workers {
        let (l, e) = w.await??;
        latencies.extend(l);
        for (k, v) in e {
            *errors.entry(k).or_default() += v;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let rss: Vec<u64> = match sampler {
        Some(handle) => handle.await?,
        None => Vec::new(),
    };
    let mib = |k: Option<&u64>| k.map(|k| *k as f64 / 1024.0);
    // Growth: the last quarter's mean over the second quarter's (after warm-up).
    let quarter = |q: usize| -> Option<f64> {
        let n = rss.len() / 4;
        (n > 0).then(|| rss[q * n..(q + 1) * n].iter().sum::<u64>() as f64 / n as f64)
    };
    let rss_growth = quarter(1).zip(quarter(3)).map(|(a, b)| b / a);
    latencies.sort_by(f64::total_cmp);
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
    }
    Ok(())
}
