//! A Rust client for wenda, as an application would write one: connects with
//! the client generated into the `wenda` library (`wenda::proto`), sends a
//! bearer token when there is one, runs `Search`, and prints the ranked
//! passages with their citations and highlights.
//!
//! cargo run --release --example client -- [--addr http://127.0.0.1:50051] \
//!     [--top-k 5] [--language en]... [--filter tags=cloud]... [--explain] \
//!     "Who started OpenStack?"
//!
//! The token comes from `--token` or `WENDA_TOKEN` (a read token is enough).

use std::time::Duration;

use clap::Parser;
use tonic::transport::Endpoint;
use wenda::proto::{SearchRequest, SearchResponse, retrieval_client::RetrievalClient};

#[derive(Parser, Debug)]
#[command(about = "Ask a wenda server a question; print ranked, cited passages")]
struct Args {
    /// The question.
    question: String,
    /// Server address: `host:port` or `http(s)://host:port`.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Bearer token (for a server with --tokens-file).
    #[arg(long, env = "WENDA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Passages to show (1-100).
    #[arg(long, default_value_t = 5)]
    top_k: u32,
    /// Only passages in these languages (ISO 639-1 codes, e.g. en, zh, vi).
    #[arg(long = "language")]
    languages: Vec<String>,
    /// Only documents whose metadata KEY holds one of the comma-separated
    /// values (repeat the flag: all must hold).
    #[arg(long = "filter", value_name = "KEY=VALUES")]
    filters: Vec<String>,
    /// Print each passage's component scores.
    #[arg(long)]
    explain: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("client: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let channel = Endpoint::from_shared(wenda::cli::server_url(&args.addr))
        .map_err(|e| format!("bad --addr {}: {e}", args.addr))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("connecting to {}: {e}", args.addr))?;
    let mut client = RetrievalClient::new(channel);

    let filter = wenda::cli::ask_filter(&args.filters, None).map_err(|e| e.to_string())?;
    let mut request = tonic::Request::new(SearchRequest {
        query: args.question.clone(),
        top_k: args.top_k,
        languages: args.languages,
        explain: args.explain,
        filter,
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(30));
    if let Some(token) = &args.token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| "the token is not a valid header value".to_string())?;
        request.metadata_mut().insert("authorization", value);
    }
    let response = client
        .search(request)
        .await
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?
        .into_inner();
    print!("{}", render(&args.question, &response));
    Ok(())
}

/// The answer as text: one block per passage, its citation (source, title,
/// language, character offsets into the original file), the passage and the
/// sentences that best support the question.
fn render(question: &str, response: &SearchResponse) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "Q: {question}  [{}]", response.query_language);
    if let Some(t) = &response.timings {
        let _ = writeln!(
            out,
            "   embed {:.1} ms, search {:.1} ms, rank {:.1} ms, total {:.1} ms",
            t.embed_ms, t.search_ms, t.rank_ms, t.total_ms
        );
    }
    if response.passages.is_empty() {
        let _ = writeln!(out, "\nno passages");
    } else if !response.answerable {
        let _ = writeln!(
            out,
            "   not answerable from the documents: the closest passages follow"
        );
    }
    for p in &response.passages {
        let c = p.citation.clone().unwrap_or_default();
        let _ = writeln!(out, "\n[{}] {:.4}  {}", p.rank, p.score, c.title);
        let _ = writeln!(
            out,
            "    source: {}  language: {}  chars {}..{}",
            c.source, c.language, c.char_start, c.char_end
        );
        if !c.url.is_empty() {
            let _ = writeln!(out, "    url: {}", c.url);
        }
        let _ = writeln!(out, "    {}", p.text.replace('\n', "\n    "));
        if let Some(e) = &p.explanation {
            let _ = writeln!(
                out,
                "    dense {:?} (#{:?}), lexical {:?} (#{:?}), fused {:.4}",
                e.dense_score, e.dense_rank, e.lexical_score, e.lexical_rank, e.fused_score
            );
        }
        for h in &p.highlights {
            let _ = writeln!(
                out,
                "    » {}  (chars {}..{})",
                h.text.replace('\n', " "),
                h.char_start,
                h.char_end
            );
        }
    }
    out
}
