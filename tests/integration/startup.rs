//! Start-up as people meet it: a data directory another wenda holds is
//! refused at once, before the model loads; the README's config-file line
//! starts a server from a checkout.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common;
use crate::processes::{ServeProcess, wait_serving};

/// A second `wenda serve` on a data directory a running one holds stops
/// with one line saying so, and without loading the model first (the
/// model's "model loaded" line never appears in its log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_in_use_is_refused_before_the_model_loads() {
    let data = tempfile::tempdir().unwrap();
    let first = ServeProcess::start_with_args(data.path(), None, &[]);
    wait_serving(&first.url()).await;

    let second = Command::new(common::wenda_bin())
        .args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--models",
        ])
        .arg(common::models_dir())
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{log}");
    assert!(
        log.contains("in use by another process") && log.contains("wenda.redb"),
        "{log}"
    );
    assert!(
        !log.contains("model loaded"),
        "the model loaded first:\n{log}"
    );
    drop(first);
}

/// The README's `wenda serve --config deploy/wenda.example.toml …` line,
/// as written (only its ports, corpus and data directory moved to
/// test-owned ones), reaches SERVING from the repository root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_config_file_line_serves_from_a_checkout() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("wenda serve --config deploy/wenda.example.toml"))
        .expect("the README shows the config-file line");
    let data = tempfile::tempdir().unwrap();
    let corpus = common::corpus_dir();
    let args: Vec<String> = line
        .split_whitespace()
        .skip(1)
        .map(|word| match word {
            "127.0.0.1:50051" => "127.0.0.1:0".to_string(),
            "../shared/corpus" => corpus.display().to_string(),
            "data" => data.path().display().to_string(),
            // `make setup` provisions the checkout's models/; tests may
            // point elsewhere.
            "models" => common::models_dir().display().to_string(),
            other => other.to_string(),
        })
        .collect();
    assert!(args.contains(&"--models".to_string()), "{line}");
    let mut child = Command::new(common::wenda_bin())
        .current_dir(repo)
        .args(&args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The example file asks for JSON logs: read the bound address there.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = Vec::new();
        for line in stderr.lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["fields"]["message"] == "listening"
            {
                let _ = tx.send(Ok(v["fields"]["addr"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()));
            }
            log.push(line);
        }
        let _ = tx.send(Err(log.join("\n")));
    });
    let addr = match rx.recv_timeout(Duration::from_secs(120)).unwrap() {
        Ok(addr) => addr,
        Err(log) => panic!("`{line}` exited before listening:\n{log}"),
    };
    wait_serving(&format!("http://{addr}")).await;
    let _ = child.kill();
    let _ = child.wait();
}
