//! The optional TOML config file (`--config FILE`, `WENDA_CONFIG`): its keys
//! are the long flags in snake_case (`data_dir = "/var/lib/wenda"`), and its
//! values become those flags' defaults before clap parses, so precedence is
//! command-line flag > `WENDA_*` variable > config file > built-in default.
//! Start-up code: errors are `anyhow`, one line each.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, CommandFactory, FromArgMatches};

use super::args::Cli;

/// The variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "WENDA_CONFIG";

/// Parses the command line and the environment like `Cli::parse`, with the
/// config file's values as defaults. `--help` and clap's own errors exit as
/// they always do; a config file that cannot be used is an error.
pub fn parse() -> anyhow::Result<Cli> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let command = command(&args, std::env::var_os(CONFIG_ENV))?;
    let matches = command.get_matches_from(args);
    Ok(Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit()))
}

/// The clap command, with the values of the config file that `args` (or
/// else `env_config`, the value of `WENDA_CONFIG`) names as defaults.
pub fn command(args: &[OsString], env_config: Option<OsString>) -> anyhow::Result<clap::Command> {
    let path = config_arg(args).or_else(|| env_config.filter(|v| !v.is_empty()).map(PathBuf::from));
    match path {
        Some(path) => apply(Cli::command(), &load(&path)?, &path),
        None => Ok(Cli::command()),
    }
}

/// The value of `--config` in `args`. Clap parses it too (for `--help` and
/// misuse), but the file has to be read before clap runs, since its values
/// are clap's defaults.
fn config_arg(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter().skip(1);
    let mut found = None;
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        } else if arg == "--config" {
            found = args.next().map(PathBuf::from);
        } else if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            found = Some(PathBuf::from(value));
        }
    }
    found
}

/// Reads and parses a config file.
pub fn load(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str::<toml::Table>(&text).map_err(|err| {
        // toml's Display draws the line with a caret, over several lines.
        let line = err
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let message = err.message().trim_end();
        match line {
            Some(line) => anyhow!("config file {} line {line}: {message}", path.display()),
            None => anyhow!("config file {}: {message}", path.display()),
        }
    })
}

/// Makes each key's value the default of the flag of that name, on the top
/// level and in every subcommand that has it (`serve`, `index` and `eval`
/// share most flags, so one file serves all three).
pub fn apply(
    mut command: clap::Command,
    table: &toml::Table,
    path: &Path,
) -> anyhow::Result<clap::Command> {
    let file = path.display();
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for (key, value) in table {
        let long = key.replace('_', "-");
        // Keys are snake_case only: `data-dir` and `data_dir` both set would
        // otherwise need a rule for which one wins.
        let usable = !key.contains('-') && key != "config";
        let mut found = false;
        for sub in std::iter::once(None).chain(subcommands.iter().map(Some)) {
            let level = match sub {
                Some(name) => command.find_subcommand(name).expect("listed subcommand"),
                None => &command,
            };
            let Some(arg) = level
                .get_arguments()
                .find(|a| a.get_long() == Some(long.as_str()))
            else {
                continue;
            };
            if !usable {
                break;
            }
            found = true;
            let id = arg.get_id().clone();
            let value = flag_value(level, arg, sub.map(String::as_str), value)
                .map_err(|why| anyhow!("config file {file}: `{key}`: {why}"))?;
            command = match sub {
                Some(name) => command
                    .mut_subcommand(name, |s| s.mut_arg(id, |a| a.default_value(value.clone()))),
                None => command.mut_arg(id, |a| a.default_value(value.clone())),
            };
        }
        if !found {
            let hint = if key.contains('-') && table_key_is_flag(&command, &long) {
                format!(" (keys are snake_case: `{}`)", key.replace('-', "_"))
            } else {
                " (keys are the long flags in snake_case, e.g. `data_dir`)".to_string()
            };
            bail!("config file {file}: unknown key `{key}`{hint}");
        }
    }
    Ok(command)
}

/// True when some level of `command` has the long flag `long`.
fn table_key_is_flag(command: &clap::Command, long: &str) -> bool {
    std::iter::once(command)
        .chain(command.get_subcommands())
        .any(|c| c.get_arguments().any(|a| a.get_long() == Some(long)))
}

/// The text clap would get on the command line for a TOML value, checked
/// with the flag's own parser so a bad value names the config key.
fn flag_value(
    level: &clap::Command,
    arg: &clap::Arg,
    sub: Option<&str>,
    value: &toml::Value,
) -> Result<String, String> {
    let long = arg.get_long().unwrap_or_default();
    let is_switch = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
    let text = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        _ => return Err("expected a string, a number or a boolean".into()),
    };
    if is_switch {
        // A switch (`--json`) takes no value on the command line.
        return match value {
            toml::Value::Boolean(_) => Ok(text),
            _ => Err(format!("expected true or false for --{long}")),
        };
    }
    // Parse just this flag: value errors come before any check of other,
    // missing flags, and only an error about this flag counts (a bad
    // WENDA_* variable is reported by the real parse, under its own name).
    let mut argv = vec!["wenda".to_string()];
    argv.extend(sub.map(str::to_string));
    argv.push(format!("--{long}={text}"));
    let probe = match sub {
        Some(_) => clap::Command::new("wenda").subcommand(level.clone()),
        None => level.clone(),
    };
    match probe.try_get_matches_from(&argv) {
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::InvalidValue | ErrorKind::ValueValidation | ErrorKind::InvalidUtf8
            ) && about_flag(&err, long) =>
        {
            let rendered = err.to_string();
            let first = rendered.lines().next().unwrap_or_default();
            Err(first.trim_start_matches("error: ").to_string())
        }
        _ => Ok(text),
    }
}

/// True when a clap error is about the flag `--long`.
fn about_flag(err: &clap::Error, long: &str) -> bool {
    match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => {
            arg == &format!("--{long}") || arg.starts_with(&format!("--{long} "))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{Command, ServeArgs};
    use crate::index::IndexKind;
    use crate::telemetry::LogFormat;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    fn parse_with(command: clap::Command, args: &[&str]) -> Cli {
        let matches = command.try_get_matches_from(args).unwrap();
        Cli::from_arg_matches(&matches).unwrap()
    }

    fn serve(cli: Cli) -> ServeArgs {
        match cli.command {
            Command::Serve(args) => args,
            other => panic!("expected serve, got {other:?}"),
        }
    }

    /// The command without its `WENDA_*` variables, so a variable set
    /// where the tests run cannot change what they see.
    fn without_env(command: clap::Command) -> clap::Command {
        command
            .mut_args(|a| a.env(None))
            .mut_subcommands(|s| s.mut_args(|a| a.env(None)))
    }

    fn applied(text: &str) -> anyhow::Result<clap::Command> {
        apply(
            without_env(Cli::command()),
            &table(text),
            Path::new("wenda.toml"),
        )
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_built_in_defaults() {
        let command = applied(
            "hnsw_m = 32\nchunk_tokens = 120\ncenter_languages = false\nlog_format = \"json\"\n\
             listen = \"0.0.0.0:6000\"\ncorpus = \"/srv/articles\"",
        )
        .unwrap();
        let cli = parse_with(command.clone(), &["wenda", "serve", "--hnsw-m", "48"]);
        assert_eq!(cli.log_format, LogFormat::Json);
        let args = serve(cli);
        assert_eq!(args.engine.hnsw_m, 48, "the flag wins");
        assert_eq!(args.engine.chunk_tokens, 120, "the file beats the default");
        assert!(!args.engine.center_languages);
        assert_eq!(args.listen.to_string(), "0.0.0.0:6000");
        assert_eq!(args.engine.corpus, Some(PathBuf::from("/srv/articles")));
        // Untouched keys keep the built-in defaults.
        assert_eq!(args.engine.index, IndexKind::Auto);
        assert_eq!(args.engine.data_dir, PathBuf::from("data"));
        // `index` shares the engine flags.
        match parse_with(command, &["wenda", "index"]).command {
            Command::Index(args) => assert_eq!(args.chunk_tokens, 120),
            other => panic!("expected index, got {other:?}"),
        }
    }

    #[test]
    fn variables_beat_the_file() {
        // Tests must not set variables (unsafe, and racy across threads), so
        // `--model` reads PATH here, a variable that is always set.
        let path = std::env::var("PATH").expect("PATH is set");
        let command = applied("model = \"from-the-file\"\nthreads = 3")
            .unwrap()
            .mut_subcommand("serve", |s| s.mut_arg("model", |a| a.env("PATH")));
        let args = serve(parse_with(command.clone(), &["wenda", "serve"]));
        assert_eq!(args.engine.model.model, path, "the variable beats the file");
        assert_eq!(args.engine.model.threads, 3);
        let args = serve(parse_with(command, &["wenda", "serve", "--model", "flag"]));
        assert_eq!(
            args.engine.model.model, "flag",
            "the flag beats the variable"
        );
    }

    #[test]
    fn switches_take_booleans() {
        let command = applied("json = true\ntop_k = 9").unwrap();
        match parse_with(command, &["wenda", "ask", "why?"]).command {
            Command::Ask(args) => assert!(args.json && args.top_k == 9),
            other => panic!("expected ask, got {other:?}"),
        }
        let err = applied("json = \"yes\"").unwrap_err().to_string();
        assert!(
            err.contains("`json`") && err.contains("true or false"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_one_line_errors_naming_the_key_and_the_file() {
        for (text, expected) in [
            ("hnsw_mm = 3", "unknown key `hnsw_mm`"),
            (
                "data-dir = \"x\"",
                "unknown key `data-dir` (keys are snake_case: `data_dir`)",
            ),
            ("config = \"other.toml\"", "unknown key `config`"),
            ("[serve]\nlisten = \"x\"", "unknown key `serve`"),
        ] {
            let err = format!("{:#}", applied(text).unwrap_err());
            assert!(
                err.starts_with("config file wenda.toml: ") && err.contains(expected),
                "{text}: {err}"
            );
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, expected) in [
            (
                "hnsw_m = \"many\"",
                "`hnsw_m`: invalid value 'many' for '--hnsw-m",
            ),
            (
                "index = \"btree\"",
                "`index`: invalid value 'btree' for '--index",
            ),
            (
                "listen = [1, 2]",
                "`listen`: expected a string, a number or a boolean",
            ),
        ] {
            let err = format!("{:#}", applied(text).unwrap_err());
            assert!(err.contains(expected), "{text}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\nthreads = = 2\n").unwrap();
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(err.contains("bad.toml line 2: "), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let err = format!("{:#}", load(&dir.path().join("missing.toml")).unwrap_err());
        assert!(err.starts_with("reading config file "), "{err}");
    }

    #[test]
    fn the_file_comes_from_the_flag_or_else_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("flag.toml");
        let env = dir.path().join("env.toml");
        std::fs::write(&flag, "threads = 5").unwrap();
        std::fs::write(&env, "threads = 6").unwrap();
        let threads = |args: &[OsString], env_config: Option<OsString>| {
            let command = without_env(command(args, env_config).unwrap());
            serve(Cli::from_arg_matches(&command.try_get_matches_from(args).unwrap()).unwrap())
                .engine
                .model
                .threads
        };
        let os = |s: &str| OsString::from(s);
        let with_flag = [
            os("wenda"),
            os("serve"),
            os("--config"),
            flag.clone().into(),
        ];
        assert_eq!(threads(&with_flag, Some(env.clone().into())), 5);
        let with_equals = [
            os("wenda"),
            os(&format!("--config={}", flag.display())),
            os("serve"),
        ];
        assert_eq!(threads(&with_equals, None), 5);
        assert_eq!(threads(&[os("wenda"), os("serve")], Some(env.into())), 6);
        assert_eq!(threads(&[os("wenda"), os("serve")], None), 0);
    }

    #[test]
    fn the_example_file_applies() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/wenda.example.toml");
        let command = apply(without_env(Cli::command()), &load(&path).unwrap(), &path).unwrap();
        let args = serve(parse_with(command, &["wenda", "serve"]));
        assert_eq!(args.listen.to_string(), "0.0.0.0:50051");
    }
}
