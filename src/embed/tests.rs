use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::onnx::{TokenizerFiles, embedding_tokenizer, ort_environment};
use super::*;

#[tokio::test]
async fn concurrent_jobs_each_get_their_own_vectors() {
    let embedder = testing::embedder();
    let a = embedder.embed(vec!["hello world".into()], EmbedKind::Query);
    let b = embedder.embed(
        vec!["你好世界".into(), "xin chào".into()],
        EmbedKind::Passage,
    );
    let (a, b) = tokio::join!(a, b);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len(), 1);
    assert_eq!(b.len(), 2);
    assert_eq!(a[0].vector, testing::bigram_vector("hello world"));
    assert_eq!(b[1].vector, testing::bigram_vector("xin chào"));
    assert!(!a[0].truncated);
}

/// A backend that records every model run and takes `delay` per run.
struct Recording {
    runs: Arc<std::sync::Mutex<Vec<Vec<String>>>>,
    delay: std::time::Duration,
}

impl EmbedBackend for Recording {
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        std::thread::sleep(self.delay);
        self.runs.lock().unwrap().push(texts.to_vec());
        testing::BigramBackend.embed(texts)
    }
    fn count_tokens(&self, text: &str) -> usize {
        testing::BigramBackend.count_tokens(text)
    }
}

fn recording(delay_ms: u64) -> (Embedder, Arc<std::sync::Mutex<Vec<Vec<String>>>>) {
    let runs = Arc::new(std::sync::Mutex::new(Vec::new()));
    let backend = Recording {
        runs: runs.clone(),
        delay: std::time::Duration::from_millis(delay_ms),
    };
    (
        Embedder::with_backend(backend, testing::manifest(), 8),
        runs,
    )
}

fn texts(n: usize, word: &str) -> Vec<String> {
    (0..n).map(|i| format!("{word} {i}")).collect()
}

/// A 64-text request is split into runs of the batch size, and a question
/// that arrives meanwhile goes in the next run instead of waiting for all
/// of it; every text still gets its own vector, in order.
#[tokio::test]
async fn a_large_request_is_split_and_a_question_overtakes_it() {
    let (embedder, runs) = recording(50);
    let big = embedder.embed(texts(64, "long"), EmbedKind::Passage);
    let question = async {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        embedder.embed(vec!["short".into()], EmbedKind::Query).await
    };
    let (big, question) = tokio::join!(big, question);
    let (big, question) = (big.unwrap(), question.unwrap());
    assert_eq!(big.len(), 64);
    assert_eq!(big[63].vector, testing::bigram_vector("long 63"));
    assert_eq!(question[0].vector, testing::bigram_vector("short"));
    let runs = runs.lock().unwrap();
    assert!(runs.iter().all(|r| r.len() <= 8), "{runs:?}");
    let with_question = runs
        .iter()
        .position(|r| r.iter().any(|t| t == "query: short"))
        .unwrap();
    assert!(
        with_question < runs.len() - 1,
        "the question waited for the whole request"
    );
}

/// A request whose caller gives up stops costing model time at the next
/// run: before, all 64 texts were embedded for nobody.
#[tokio::test]
async fn an_abandoned_request_stops_at_the_next_run() {
    let (embedder, runs) = recording(100);
    let request = embedder.embed(texts(64, "long"), EmbedKind::Passage);
    let first_run = async {
        while runs.lock().unwrap().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        _ = request => panic!("64 texts in one run"),
        () = first_run => {}
    }
    // The request's future is dropped here: its caller gave up.
    // The next request is served right after the run in progress.
    let next = embedder
        .embed(vec!["next".into()], EmbedKind::Query)
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    let embedded: usize = runs
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.iter().filter(|t| t.starts_with("passage: long")).count())
        .sum();
    // The run in progress and at most a couple more (a loaded machine may
    // be slow to drop the request); before, all 64.
    assert!(
        embedded <= 32,
        "{embedded} of 64 abandoned texts were embedded"
    );
}

#[test]
fn missing_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = EmbedderConfig::new(dir.path())
        .verified_manifest()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("multilingual-e5-small.toml")
            && err.contains("make setup")
            && err.contains("--models"),
        "{err}"
    );
}

/// A model folder `m` with a manifest listing both ONNX files and
/// holding only `present` of them (contents = their names).
fn two_precision_model(present: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("m")).unwrap();
    let sha = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
    for f in present {
        std::fs::write(dir.path().join("m").join(f), f).unwrap();
    }
    std::fs::write(dir.path().join("m/tokenizer.json"), "tokenizer.json").unwrap();
    std::fs::write(
        dir.path().join("m.toml"),
        format!(
            "name='m'\ndimension=4\nmax_tokens=8\nquery_prefix='q: '\npassage_prefix='p: '\n\
             [onnx]\nfile='model.onnx'\nint8_file='model_int8.onnx'\n\
             [files]\n'model.onnx'='{}'\n'model_int8.onnx'='{}'\n'tokenizer.json'='{}'\n",
            sha("model.onnx"),
            sha("model_int8.onnx"),
            sha("tokenizer.json")
        ),
    )
    .unwrap();
    dir
}

fn config(dir: &Path, precision: Precision) -> EmbedderConfig {
    let mut config = EmbedderConfig::new(dir);
    config.model = "m".into();
    config.precision = precision;
    config
}

#[test]
fn each_precision_needs_only_its_own_onnx_file() {
    let dir = two_precision_model(&["model.onnx"]);
    let fp32 = config(dir.path(), Precision::Fp32)
        .verified_manifest()
        .unwrap();
    assert_eq!(fp32.onnx_file(), "model.onnx");
    assert_eq!(
        fp32.files.keys().collect::<Vec<_>>(),
        ["model.onnx", "tokenizer.json"]
    );
    let err = config(dir.path(), Precision::Int8)
        .verified_manifest()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model_int8.onnx") && err.contains("make setup") && !err.contains('\n'),
        "{err}"
    );

    let dir = two_precision_model(&["model_int8.onnx"]);
    let int8 = config(dir.path(), Precision::Int8)
        .verified_manifest()
        .unwrap();
    assert_eq!(int8.onnx_file(), "model_int8.onnx");
    assert!(!int8.files.contains_key("model.onnx"));
    assert!(
        config(dir.path(), Precision::Fp32)
            .verified_manifest()
            .is_err()
    );
}

#[test]
fn fingerprint_differs_between_precisions_and_fp32_keeps_its_old_one() {
    let dir = two_precision_model(&["model.onnx", "model_int8.onnx"]);
    let fp32 = config(dir.path(), Precision::Fp32)
        .verified_manifest()
        .unwrap();
    let int8 = config(dir.path(), Precision::Int8)
        .verified_manifest()
        .unwrap();
    assert_ne!(fp32.fingerprint(), int8.fingerprint());
    // The manifest as it was before int8 existed gave fp32's id.
    let text = std::fs::read_to_string(dir.path().join("m.toml")).unwrap();
    let before: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("'model_int8.onnx'"))
        .collect();
    let before: ModelManifest = toml::from_str(&before.join("\n")).unwrap();
    assert_eq!(before.fingerprint(), fp32.fingerprint());
}

#[test]
fn a_manifest_without_an_onnx_table_uses_the_standard_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.toml"),
        "name='m'\ndimension=4\nmax_tokens=8\nquery_prefix='q: '\npassage_prefix='p: '\n[files]\n'model.onnx'='00'\n",
    )
    .unwrap();
    let err = config(dir.path(), Precision::Int8)
        .verified_manifest()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no sha256 for model_int8.onnx") && err.contains("make setup"),
        "{err}"
    );
}

#[test]
fn corrupt_model_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("m")).unwrap();
    std::fs::write(dir.path().join("m/model.onnx"), b"garbage").unwrap();
    std::fs::write(
        dir.path().join("m.toml"),
        "name='m'\ndimension=4\nmax_tokens=8\nquery_prefix='q: '\npassage_prefix='p: '\n[files]\n'model.onnx'='00'\n",
    )
    .unwrap();
    let mut config = EmbedderConfig::new(dir.path());
    config.model = "m".into();
    config.precision = Precision::Fp32;
    let err = config.verified_manifest().unwrap_err().to_string();
    assert!(
        err.contains("model.onnx") && err.contains("corrupt") && err.contains("make setup"),
        "{err}"
    );
}

fn provisioned_models() -> PathBuf {
    std::env::var_os("WENDA_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
}

/// fastembed's model on the provisioned files, one text per run.
fn fastembeds_own(dir: &Path, onnx: &str) -> fastembed::TextEmbedding {
    let read =
        |name: &str| std::fs::read(dir.join(name)).expect("`make setup` provisions the model");
    let files = fastembed::TokenizerFiles {
        tokenizer_file: read("tokenizer.json"),
        config_file: read("config.json"),
        special_tokens_map_file: read("special_tokens_map.json"),
        tokenizer_config_file: read("tokenizer_config.json"),
    };
    let lib = dir.parent().unwrap().join("onnxruntime/libonnxruntime.so");
    let model = fastembed::UserDefinedEmbeddingModel::new(read(onnx), files)
        .with_pooling(fastembed::Pooling::Mean);
    let options = fastembed::InitOptionsUserDefined::new()
        .with_environment(ort_environment(&lib).unwrap())
        .with_max_length(512)
        .with_intra_threads(1);
    fastembed::TextEmbedding::try_new_from_user_defined(model, options).unwrap()
}

/// wenda runs the model itself (one session per worker, one shared
/// tokenizer), as fastembed did before: on the same files, each text's
/// vector is fastembed's, and so is every count of tokens, at both
/// precisions.
#[test]
fn the_model_run_gives_fastembeds_vectors() {
    let models = provisioned_models();
    let dir = models.join("multilingual-e5-small");
    let texts: Vec<String> = [
        "query: OpenInfra 社区有多少名成员？",
        "passage: Linux Foundation đang chủ trì những dự án nào? <mask> </s>",
        "query: ",
        "passage: Which projects is the OpenInfra Foundation best known for?",
    ]
    .into_iter()
    .map(String::from)
    .chain([format!("passage: {}", "OpenStack 云计算 ".repeat(400))])
    .collect();
    for precision in [Precision::Int8, Precision::Fp32] {
        let mut config = EmbedderConfig::new(&models);
        config.precision = precision;
        let manifest = config.verified_manifest().unwrap();
        let (mut ours, tokenizer) = onnx::load(&config, &manifest).unwrap();
        let mut theirs = fastembeds_own(&dir, manifest.onnx_file());
        let expected = theirs.embed(&texts, Some(1)).unwrap();
        let got: Vec<Vec<f32>> = texts
            .iter()
            .flat_map(|t| ours.embed(std::slice::from_ref(t)).unwrap())
            .collect();
        assert_eq!(got.len(), texts.len());
        for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
            let diff = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(diff < 1e-6, "{precision}: text {i} differs by {diff}");
        }
        // The long text alone: its count adds up what truncation cut off.
        let long = &texts[4];
        let plain = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
        let untruncated = plain.encode(long.as_str(), false).unwrap().len();
        assert!(untruncated > 1000);
        assert_eq!(
            crate::ingest::TokenCounter::count(&TokenizerCounter::shared(tokenizer.clone()), long),
            untruncated
        );
        assert_eq!(ours.count_tokens(long), untruncated + 2);
        assert_eq!(
            ours.count_tokens(&texts[0]),
            theirs
                .tokenizer
                .encode(texts[0].as_str(), true)
                .unwrap()
                .len()
        );
    }
}

/// wenda's tokenizer is configured as the one fastembed builds from the
/// same files, and encodes as it does (ids, masks, padding of a batch,
/// truncation at the limit).
#[test]
fn the_tokenizer_encodes_as_fastembeds_own() {
    let dir = provisioned_models().join("multilingual-e5-small");
    let read =
        |name: &str| std::fs::read(dir.join(name)).expect("`make setup` provisions the model");
    let files = || fastembed::TokenizerFiles {
        tokenizer_file: read("tokenizer.json"),
        config_file: read("config.json"),
        special_tokens_map_file: read("special_tokens_map.json"),
        tokenizer_config_file: read("tokenizer_config.json"),
    };
    let plain = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let ours = embedding_tokenizer(
        plain,
        &TokenizerFiles::read(&dir).unwrap(),
        512,
        &dir.join("tokenizer.json"),
    )
    .unwrap();
    let lib = dir.parent().unwrap().join("onnxruntime/libonnxruntime.so");
    let model = fastembed::UserDefinedEmbeddingModel::new(read("model_int8.onnx"), files());
    let options = fastembed::InitOptionsUserDefined::new()
        .with_environment(ort_environment(&lib).unwrap())
        .with_max_length(512)
        .with_intra_threads(1);
    let theirs = fastembed::TextEmbedding::try_new_from_user_defined(model, options)
        .unwrap()
        .tokenizer;

    assert_eq!(
        format!("{:?}", ours.get_padding()),
        format!("{:?}", theirs.get_padding())
    );
    assert_eq!(
        format!("{:?}", ours.get_truncation()),
        format!("{:?}", theirs.get_truncation())
    );
    let texts = vec![
        "query: OpenInfra 社区有多少名成员？".to_string(),
        "passage: Linux Foundation đang chủ trì những dự án nào? <mask> </s>".to_string(),
        "passage: Which projects is the OpenInfra Foundation best known for?".to_string(),
        format!("passage: {}", "OpenStack 云计算 ".repeat(400)),
    ];
    let columns = |encodings: Vec<tokenizers::Encoding>| {
        encodings
            .into_iter()
            .map(|e| {
                (
                    e.get_ids().to_vec(),
                    e.get_attention_mask().to_vec(),
                    e.get_type_ids().to_vec(),
                )
            })
            .collect::<Vec<_>>()
    };
    // What the model runs: the configured tokenizer taken over by
    // `ModelTokenizer`, which truncates and pads by itself.
    let ours = super::onnx::ModelTokenizer::new(ours).unwrap();
    let a = columns(ours.encode_batch(&texts).unwrap());
    let b = columns(theirs.encode_batch(texts.clone(), true).unwrap());
    assert_eq!(a, b);
    assert_eq!(a[3].0.len(), 512, "the long text is truncated at the limit");
    assert!(a[0].1.contains(&0), "short texts are padded to the longest");
}

/// Two workers share one queue: a large request is spread over both, a
/// question still overtakes it, and every text gets its own vector, in
/// order, whichever worker ran it.
#[tokio::test]
async fn workers_share_the_queue_and_answers_keep_their_order() {
    let runs = Arc::new(std::sync::Mutex::new(Vec::new()));
    let threads = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    struct OnThread {
        inner: Recording,
        threads: Arc<std::sync::Mutex<std::collections::HashSet<std::thread::ThreadId>>>,
    }
    impl EmbedBackend for OnThread {
        fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
            self.threads
                .lock()
                .unwrap()
                .insert(std::thread::current().id());
            self.inner.embed(texts)
        }
        fn count_tokens(&self, text: &str) -> usize {
            self.inner.count_tokens(text)
        }
        fn texts_per_run(&self) -> Option<usize> {
            Some(2)
        }
    }
    let backends = (0..2)
        .map(|_| OnThread {
            inner: Recording {
                runs: runs.clone(),
                delay: std::time::Duration::from_millis(20),
            },
            threads: threads.clone(),
        })
        .collect();
    let embedder = Embedder::with_backends(backends, testing::manifest(), 8);
    assert_eq!(embedder.workers(), 2);
    let big = embedder.embed(texts(40, "long"), EmbedKind::Passage);
    let question = async {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        embedder.embed(vec!["short".into()], EmbedKind::Query).await
    };
    let (big, question) = tokio::join!(big, question);
    let (big, question) = (big.unwrap(), question.unwrap());
    let expected: Vec<_> = texts(40, "long")
        .iter()
        .map(|t| testing::bigram_vector(t))
        .collect();
    assert_eq!(
        big.iter().map(|e| e.vector.clone()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(question[0].vector, testing::bigram_vector("short"));
    let runs = runs.lock().unwrap();
    // The backend's own run size, not max_batch.
    assert!(runs.iter().all(|r| r.len() <= 2), "{runs:?}");
    assert_eq!(
        threads.lock().unwrap().len(),
        2,
        "one worker did everything"
    );
    let with_question = runs
        .iter()
        .position(|r| r.iter().any(|t| t == "query: short"))
        .unwrap();
    assert!(with_question < runs.len() - 2, "the question waited");
    drop(runs);
    // The workers stop once the last handle is gone.
    let queue = embedder.queue.clone();
    drop(embedder);
    for _ in 0..200 {
        if queue.workers() == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{} workers still running", queue.workers());
}

/// A backend that answers with the wrong number of vectors fails its
/// jobs with a clear error instead of handing out empty vectors.
#[tokio::test]
async fn a_short_answer_from_the_model_is_an_error() {
    struct Short;
    impl EmbedBackend for Short {
        fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
            Ok(vec![vec![0.0; 4]; texts.len().saturating_sub(1)])
        }
        fn count_tokens(&self, _: &str) -> usize {
            1
        }
    }
    let embedder = Embedder::with_backend(Short, testing::manifest(), 8);
    let err = embedder
        .embed(texts(3, "x"), EmbedKind::Passage)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("2 vectors for 3 texts"), "{err}");
    // An empty request is answered at once.
    assert!(
        embedder
            .embed(Vec::new(), EmbedKind::Query)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The queue refuses work beyond its capacity (the caller is told to back
/// off) and after it closes, and a closed queue still hands out what it
/// holds before telling its workers to stop.
#[test]
fn a_full_or_closed_queue_refuses_and_a_closed_one_drains() {
    let queue = queue::Queue::new(2);
    let manifest = testing::manifest();
    let job = |text: &str| {
        let (reply, rx) = oneshot::channel();
        (
            queue::Job {
                texts: vec![text.to_string()],
                kind: EmbedKind::Query,
                span: Span::none(),
                reply,
            },
            rx,
        )
    };
    let (a, mut a_rx) = job("a");
    let (b, _b_rx) = job("b");
    let (c, _c_rx) = job("c");
    queue.push(a).unwrap();
    queue.push(b).unwrap();
    let err = queue.push(c).unwrap_err();
    assert!(matches!(err, Error::Overloaded(_)), "{err}");
    queue.close();
    let (d, _d_rx) = job("d");
    assert!(matches!(queue.push(d).unwrap_err(), Error::Unavailable(_)));
    let run = queue
        .take(8, &manifest)
        .expect("the queued jobs are still handed out");
    assert_eq!(run.prefixed, ["query: a", "query: b"]);
    let vectors = run
        .prefixed
        .iter()
        .map(|t| EmbeddedText {
            vector: testing::bigram_vector(t),
            tokens: 1,
            truncated: false,
        })
        .collect();
    queue.finish(run, Ok(vectors));
    assert_eq!(a_rx.try_recv().unwrap().unwrap().len(), 1);
    assert!(queue.take(8, &manifest).is_none(), "closed and empty");
}
