//! The web page in a real headless browser: Debian's Chromium driven by
//! `playwright-core` (tests/browser/page.test.mjs, both installed by
//! `make setup`) against the real HTTP server on port 0, with tokens on so
//! the page's token prompt is exercised too. Screenshots are kept in
//! `target/test-artifacts/browser/`.

use std::path::PathBuf;
use std::sync::Arc;

use wenda::auth::Tokens;

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_answers_and_opens_the_cited_span_in_a_real_browser() {
    let engine = common::corpus_engine();
    let token = "page-read-token-0123456789";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_engine_tx, engine_rx) = tokio::sync::watch::channel(Some(engine));
    let state = wenda::http::AppState {
        engine: engine_rx,
        tokens: Arc::new(Tokens::parse(&format!("read {token}\n")).unwrap()),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(wenda::http::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shots = repo.join("target/test-artifacts/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let script = repo.join("tests/browser/page.test.mjs");
    assert!(
        repo.join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core is missing: run `make setup` (npm ci in tests/browser)"
    );
    let url = format!("http://{addr}");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .args(["--url", &url, "--token", token, "--screenshot-dir"])
            .arg(&shots)
            .output()
    })
    .await
    .unwrap()
    .expect("node from the machine (make setup uses it for playwright-core)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("PASS"), "{stdout}");
    for shot in ["results.png", "document.png", "phone.png"] {
        let path = repo.join("target/test-artifacts/browser").join(shot);
        assert!(
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 10_000),
            "{} was not written",
            path.display()
        );
    }
    let _ = stop.send(());
}
