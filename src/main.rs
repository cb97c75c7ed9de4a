//! The `wenda` binary: parse flags, set up logging, run the command.

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wenda::config::{Cli, Command, LogFormat};

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,h2=warn,tower=warn,hyper=warn,ort=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let result = match cli.command {
        Command::Embed(args) => wenda::cli::embed(args),
        command => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|rt| {
                rt.block_on(async move {
                    match command {
                        Command::Serve(args) => wenda::cli::serve(args).await,
                        Command::Index(args) => wenda::cli::index(args).await,
                        Command::Ask(args) => wenda::cli::ask(args).await,
                        Command::Eval(args) => wenda::cli::eval(args).await,
                        Command::Embed(_) => unreachable!("handled without a runtime"),
                    }
                })
            }),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // One line: the error and its causes.
            eprintln!("wenda: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
