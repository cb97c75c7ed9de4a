//! The `wenda` binary: parse flags (and the config file), set up logging and
//! tracing, run the command, flush the traces.

use std::process::ExitCode;

use wenda::cli::args::Command;

/// mimalloc rather than the system allocator: start-up builds a 250,000-piece
/// tokenizer and a 120,000-entry dictionary out of small allocations, which
/// mimalloc makes much faster (BENCHMARKS.md, "Figures behind the code").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match wenda::cli::config_file::parse() {
        Ok(cli) => cli,
        Err(err) => return failure(&err),
    };
    let telemetry = match wenda::telemetry::init(cli.log_format, cli.otlp_endpoint.as_deref()) {
        Ok(telemetry) => telemetry,
        Err(err) => return failure(&err),
    };
    let result = run(cli.command);
    // After the command's runtime has stopped: every span has ended.
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => failure(&err),
    }
}

/// How long the runtime waits, once a command is done, for blocking work
/// still running (an abandoned ingest's chunking, say). A commit cut short
/// by the exit is safe: redb commits are atomic, as after a SIGKILL.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Embed(args) => wenda::cli::embed(args),
        command => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let result = runtime.block_on(async move {
                match command {
                    Command::Serve(args) => wenda::cli::serve(args).await,
                    Command::Index(args) => wenda::cli::index(args).await,
                    Command::Ask(args) => wenda::cli::ask(args).await,
                    Command::Eval(args) => wenda::cli::eval(args).await,
                    Command::Backup(args) => wenda::cli::backup::backup(args).await,
                    Command::Restore(args) => wenda::cli::backup::restore(args),
                    Command::Embed(_) => unreachable!("handled without a runtime"),
                }
            });
            runtime.shutdown_timeout(SHUTDOWN_GRACE);
            result
        }
    }
}

/// One line: the error and its causes.
fn failure(err: &anyhow::Error) -> ExitCode {
    eprintln!("wenda: {err:#}");
    ExitCode::FAILURE
}
