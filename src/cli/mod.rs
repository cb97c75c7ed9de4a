//! The commands of the `wenda` binary. Start-up code: errors are `anyhow`
//! with context, printed as one line by `main`.

use std::io::{BufRead, IsTerminal};
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

pub mod args;
pub mod backup;
pub mod config_file;
pub mod eval;

use args::{AskArgs, EmbedArgs, EngineArgs, EvalArgs, ServeArgs};

use crate::embed::Embedder;
use crate::engine::Engine;
use crate::proto;
use crate::types::{SyncReport, limits};

/// Loads the model, opens the data directory and syncs the corpus, if any.
pub async fn open_engine(args: &EngineArgs, show_progress: bool) -> anyhow::Result<Arc<Engine>> {
    args.validate()?;
    if args.store == crate::store::StoreLocation::Redb {
        crate::store::RedbStore::check_not_in_use(&args.data_dir.join(crate::store::FILE_NAME))?;
    }
    let embedder_config = args.model.embedder_config();
    // The model (with the chunker's tokenizer) and the dictionary load side
    // by side: start-up takes the longer of the two, not their sum.
    let model = tokio::task::spawn_blocking(move || Embedder::start_with_counter(embedder_config));
    let lexicon = args.lexicon_path().map(|path| {
        let explicit = args.lexicon.is_some();
        (
            explicit,
            tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                let lexicon = crate::lexical::Lexicon::load(&path);
                tracing::debug!(ms = started.elapsed().as_millis() as u64, "lexicon loaded");
                lexicon
            }),
        )
    });
    let (embedder, counter) = model.await??;
    let mut config = args.engine_config();
    if let Some((explicit, loading)) = lexicon {
        match loading.await? {
            Ok(lexicon) => config.lexicon = Some(Arc::new(lexicon)),
            Err(err) if explicit => return Err(err.into()),
            Err(err) => {
                tracing::warn!(%err, "no lexicon: lexical matching stays within each language")
            }
        }
    }
    let engine = Engine::open(config, embedder, Arc::new(counter))
        .await
        .with_context(|| {
            format!(
                "opening data directory {} (store {})",
                args.data_dir.display(),
                args.store
            )
        })?;
    if let Some(corpus) = &args.corpus {
        let report = sync_with_progress(&engine, corpus, show_progress).await?;
        info!(
            added = report.added,
            updated = report.updated,
            removed = report.removed,
            unchanged = report.unchanged,
            skipped = report.skipped.len(),
            seconds = report.seconds,
            "corpus synced"
        );
    }
    Ok(Arc::new(engine))
}

async fn sync_with_progress(
    engine: &Engine,
    corpus: &std::path::Path,
    show_progress: bool,
) -> anyhow::Result<SyncReport> {
    let bar = if show_progress && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} embedding passages {bar:40} {pos}/{len} ({per_sec}, {eta} left)",
            )
            .expect("valid template"),
        );
        Some(bar)
    } else {
        None
    };
    let last_logged = std::sync::atomic::AtomicUsize::new(0);
    let progress = |done: usize, total: usize| match &bar {
        Some(bar) => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
        None => {
            // Plain log lines when not on a terminal: every 10% or so.
            let step = (total / 10).max(1);
            let last = last_logged.load(std::sync::atomic::Ordering::Relaxed);
            if total > 0 && (done == total || done >= last + step) {
                last_logged.store(done, std::sync::atomic::Ordering::Relaxed);
                info!(done, total, "embedding passages");
            }
        }
    };
    let report = engine
        .sync_corpus(corpus, &progress)
        .await
        .with_context(|| format!("indexing corpus {}", corpus.display()))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(report)
}

/// `wenda serve`: answers health checks at once, serves once loaded.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    args.engine.validate()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let options = serve_options(&args)?;
    if let Some(addr) = args.metrics_listen {
        crate::metrics::start(addr)
            .await
            .with_context(|| format!("starting metrics on {addr}"))?;
    }
    if !options.tokens.is_enabled() && !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "no --tokens-file: every caller may ingest and delete");
    }
    let http = match args.http_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding --http-listen {addr}"))?,
        ),
        None => None,
    };
    // The engine loads once; gRPC serves it from its future, HTTP from this
    // channel. One signal stops both.
    let (engine_tx, engine_rx) = tokio::sync::watch::channel(None);
    let served = engine_rx.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let loading = open_engine(&args.engine, false);
    let socket = args.engine.data_dir.join(backup::SOCKET);
    let engine = async move {
        let engine = loading.await?;
        engine_tx.send_replace(Some(engine.clone()));
        backup::serve_socket(socket, engine.clone());
        Ok(engine)
    };
    if let Some(listener) = http {
        let state = crate::http::AppState {
            engine: engine_rx,
            tokens: Arc::new(options.tokens.clone()),
        };
        let mut stop = stop_rx.clone();
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::spawn(async move {
            if let Err(err) = crate::http::serve(listener, state, stopped).await {
                tracing::error!(%err, "the http listener failed");
            }
        });
    }
    let shutdown = async move {
        crate::grpc::server::shutdown_signal().await;
        let _ = stop_tx.send(true);
    };
    crate::grpc::run(listener, engine, shutdown, options).await?;
    let engine: Option<Arc<Engine>> = served.borrow().clone();
    if let Some(engine) = engine {
        engine.save_for_restart().await;
    }
    Ok(())
}

fn serve_options(args: &ServeArgs) -> anyhow::Result<crate::grpc::ServeOptions> {
    let read =
        |p: &std::path::Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let mut tokens = match &args.tokens_file {
        Some(path) => crate::auth::Tokens::load(path)?,
        None => crate::auth::Tokens::default(),
    };
    tokens.add_from_env()?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::grpc::TlsOptions {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
            client_ca_pem: args.tls_client_ca.as_deref().map(read).transpose()?,
        }),
        // Clap enforces the pairs on the command line, but not for values
        // from the config file: never fall back to plaintext silently.
        (Some(_), None) | (None, Some(_)) => {
            anyhow::bail!("--tls-cert and --tls-key must be given together")
        }
        (None, None) if args.tls_client_ca.is_some() => {
            anyhow::bail!("--tls-client-ca needs --tls-cert and --tls-key")
        }
        (None, None) => None,
    };
    anyhow::ensure!(
        args.max_connections > 0,
        "--max-connections must be at least 1"
    );
    anyhow::ensure!(
        args.idle_timeout > 0,
        "--idle-timeout must be at least 1 second"
    );
    let limits = crate::grpc::connections::ConnectionLimits {
        max_connections: args.max_connections,
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout),
    }
    .fit_to_fd_limit()?;
    Ok(crate::grpc::ServeOptions {
        tokens,
        tls,
        limits,
    })
}

/// `wenda index`: syncs the corpus into the data directory and prints a summary.
pub async fn index(args: EngineArgs) -> anyhow::Result<()> {
    let corpus = args
        .corpus
        .clone()
        .context("--corpus is required for `wenda index`")?;
    let mut without_corpus = args.clone();
    without_corpus.corpus = None;
    let engine = open_engine(&without_corpus, true).await?;
    let report = sync_with_progress(&engine, &corpus, true).await?;
    let info = engine.info();
    println!(
        "indexed {}: {} added, {} updated, {} removed, {} unchanged, {} skipped in {:.1} s",
        corpus.display(),
        report.added,
        report.updated,
        report.removed,
        report.unchanged,
        report.skipped.len(),
        report.seconds
    );
    for s in &report.skipped {
        println!("  skipped {}: {}", s.path.display(), s.reason);
    }
    let per_lang: Vec<String> = info
        .passages_per_language
        .iter()
        .map(|(l, n)| format!("{l} {n}"))
        .collect();
    println!(
        "index now: {} documents, {} passages ({}), {} new tokens embedded, index {}",
        info.documents,
        info.passages,
        per_lang.join(", "),
        report.tokens,
        info.index_kind
    );
    Ok(())
}

/// `wenda embed`: one JSON array (or object) per text, one per line.
pub fn embed(args: EmbedArgs) -> anyhow::Result<()> {
    let texts = if args.texts.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<Vec<_>, _>>()?
    } else {
        args.texts
    };
    anyhow::ensure!(!texts.is_empty(), "no text to embed");
    let embedder = Embedder::start(args.model.embedder_config())?;
    let mut out = std::io::stdout().lock();
    for chunk in texts.chunks(limits::MAX_EMBED_TEXTS) {
        for e in embedder.embed_blocking(chunk.to_vec(), args.kind)? {
            use std::io::Write;
            if args.with_tokens {
                let line = serde_json::json!({"vector": e.vector, "tokens": e.tokens, "truncated": e.truncated});
                writeln!(out, "{line}")?;
            } else {
                writeln!(out, "{}", serde_json::to_string(&e.vector)?)?;
            }
        }
    }
    Ok(())
}

/// `wenda ask`: queries a running server.
pub async fn ask(args: AskArgs) -> anyhow::Result<()> {
    let url = server_url(&args.server);
    let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
        .with_context(|| format!("--server {:?} is not a server address", args.server))?;
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("connecting to {url} (is `wenda serve` running?)"))?;
    let mut client = proto::retrieval_client::RetrievalClient::new(channel);
    let mode = crate::convert::mode_to_proto(args.mode);
    let mut request = tonic::Request::new(proto::SearchRequest {
        query: args.question.clone(),
        top_k: args.top_k,
        mode: mode as i32,
        languages: args.languages.clone(),
        explain: args.explain,
        filter: ask_filter(&args.filters, args.filter_json.as_deref())?,
        max_per_document: args.max_per_document,
        ..Default::default()
    });
    if let Some(token) = args.token.as_deref().filter(|t| !t.trim().is_empty()) {
        let value = format!("Bearer {}", token.trim())
            .parse()
            .context("the token is not a valid header value")?;
        request.metadata_mut().insert("authorization", value);
    }
    let response = client
        .search(request)
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?
        .into_inner();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&response)?);
        return Ok(());
    }
    println!("Q: {}  [{}]", args.question, response.query_language);
    if !response.answerable {
        println!("(not answerable from the documents: the closest passages follow)");
    }
    for p in &response.passages {
        let c = p.citation.clone().unwrap_or_default();
        println!(
            "\n[{}] {:.4} relevance {:.2}  {} — {} ({}) chars {}..{}",
            p.rank, p.score, p.relevance, c.title, c.source, c.language, c.char_start, c.char_end
        );
        if !c.url.is_empty() {
            println!("    {}", c.url);
        }
        println!("    {}", p.text.replace('\n', "\n    "));
        for h in &p.highlights {
            println!("    » {}", h.text);
        }
        if let Some(e) = &p.explanation {
            let part = |score: Option<f32>, rank: Option<u32>| match score.zip(rank) {
                Some((score, rank)) => format!("{score:.4} (#{rank})"),
                None => "-".to_string(),
            };
            println!(
                "    dense {}, lexical {}, fused {:.4}",
                part(e.dense_score, e.dense_rank),
                part(e.lexical_score, e.lexical_rank),
                e.fused_score
            );
        }
    }
    Ok(())
}

/// `host:port` and `http(s)://host:port` alike, as every client takes them.
pub fn server_url(server: &str) -> String {
    if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    }
}

/// The filter of a client's `--filter KEY=VALUES` flags (each: the key
/// holds one of the values) and `--filter-json`; `None` without either.
/// `wenda ask` and `examples/client.rs` share it.
pub fn ask_filter(flags: &[String], json: Option<&str>) -> anyhow::Result<Option<proto::Filter>> {
    let mut filter: proto::Filter = match json {
        Some(text) => serde_json::from_str(text).context("--filter-json is not a filter")?,
        None if flags.is_empty() => return Ok(None),
        None => proto::Filter::default(),
    };
    for flag in flags {
        let (key, values) = flag
            .split_once('=')
            .with_context(|| format!("--filter {flag:?}: expected KEY=VALUE[,VALUE...]"))?;
        filter.must.push(proto::Condition {
            key: key.trim().to_string(),
            test: Some(proto::condition::Test::AnyOf(proto::StringList {
                values: values.split(',').map(|v| v.trim().to_string()).collect(),
            })),
        });
    }
    Ok(Some(filter))
}

/// `wenda eval`: indexes the corpus and scores the questions.
pub async fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let questions = eval::load_questions(&args.qa)?;
    let engine = open_engine(&args.engine, true).await?;
    let report = eval::evaluate(
        &engine,
        &questions,
        args.mode,
        args.query_language.as_deref().unwrap_or_default(),
    )
    .await?;
    let unanswerable = match &args.unanswerable {
        Some(path) => eval::load_questions(path)?,
        None => Vec::new(),
    };
    let refusals = if args.unanswerable.is_some() {
        Some(eval::refusals(&engine, &unanswerable, args.mode).await?)
    } else {
        None
    };
    if let Some(path) = &args.evidence {
        let mut rows = eval::evidence_rows(&engine, &questions, true).await?;
        rows.extend(eval::evidence_rows(&engine, &unanswerable, false).await?);
        let mut out = String::new();
        for row in rows {
            out.push_str(&serde_json::to_string(&row)?);
            out.push('\n');
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        let value = serde_json::json!({"report": report, "unanswerable": refusals});
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{report}");
        if let Some(refusals) = refusals {
            print!("{refusals}");
        }
    }
    Ok(())
}
