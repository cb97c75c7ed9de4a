//! Ingest over the real corpus and a real data directory: clean chunks,
//! exact offsets, persistence, incremental syncs and bad files.

use std::path::Path;

use wenda::ingest::{self, DocumentInput, corpus};
use wenda::types::{SearchMode, SearchQuery};

use crate::common;

fn copy_corpus(to: &Path) {
    for entry in std::fs::read_dir(common::corpus_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn corpus_chunks_hold_no_markup_front_matter_or_boilerplate() {
    let scan = corpus::scan(&common::corpus_dir(), 10 << 20).unwrap();
    assert_eq!(scan.files.len(), 5);
    let counter = common::counter();
    let forbidden = [
        "<p",
        "</",
        "<span",
        "<a ",
        "<div",
        "&nbsp;",
        "&amp;",
        "![",
        "](http",
        "title:",
        "headimg:",
        "comments: false",
        "---",
        "Featued image",
        "订阅我们的 YouTube",
        "YOUTUBE.COM",
        "0 Comments",
        "Was this worth your time?",
        "Signed-in readers",
        "Thoughtful readers leave",
        "How this landed",
        "republished for learning",
    ];
    let mut languages = std::collections::BTreeSet::new();
    for file in scan.files {
        let original = file.text.clone();
        let doc = ingest::prepare(
            DocumentInput {
                id: file.id.clone(),
                text: file.text,
                ..Default::default()
            },
            counter.as_ref(),
            Default::default(),
        );
        assert!(!doc.title.is_empty(), "{}", file.id);
        languages.insert(doc.language.clone());
        for c in &doc.chunks {
            for f in forbidden {
                assert!(
                    !c.chunk.text.contains(f),
                    "{} chunk {} contains {f:?}: {}",
                    file.id,
                    c.chunk.index,
                    c.chunk.text
                );
            }
            assert!(
                c.chunk.tokens <= ingest::ChunkConfig::default().max_tokens,
                "chunk over the token budget"
            );
            let slice = common::char_slice(&original, c.chunk.char_start, c.chunk.char_end);
            assert!(common::is_subsequence_ignoring_whitespace(
                &c.chunk.text,
                &slice
            ));
            for r in &c.chunk.sentences {
                assert!(
                    r.start >= c.chunk.char_start && r.end <= c.chunk.char_end && r.start < r.end
                );
            }
        }
        if file.id == "001_d0ac5381ba732dd4.txt" {
            assert_eq!(doc.title, "OpenInfra基金会：展望开源基础设施的下一个十年");
            assert_eq!(
                doc.published.as_deref(),
                Some("Tue, 15 Jun 2021 06:50:00 GMT")
            );
        }
    }
    assert_eq!(
        languages.into_iter().collect::<Vec<_>>(),
        ["en", "vi", "zh"]
    );
}

#[test]
fn plain_text_chunks_equal_their_cited_slice() {
    // 002 to 004 hold no markup: every chunk is the original text exactly.
    let counter = common::counter();
    for name in [
        "002_c765242a16c13cf0.txt",
        "003_2d3723fee4e68220.txt",
        "004_7b28db1d481a9f7a.txt",
    ] {
        let original = std::fs::read_to_string(common::corpus_dir().join(name)).unwrap();
        let doc = ingest::prepare(
            DocumentInput {
                id: name.into(),
                text: original.clone(),
                ..Default::default()
            },
            counter.as_ref(),
            Default::default(),
        );
        assert!(doc.chunks.len() > 1);
        for c in &doc.chunks {
            // The footer of 002 is dropped; what is left is cited exactly.
            assert_eq!(
                common::char_slice(&original, c.chunk.char_start, c.chunk.char_end),
                c.chunk.text
            );
        }
    }
}

async fn top_ids(engine: &wenda::engine::Engine) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for q in [
        "Who started OpenStack?",
        "华为 FusionSphere",
        "Linux Foundation chủ trì dự án nào?",
    ] {
        for mode in [SearchMode::Dense, SearchMode::Hybrid] {
            let r = engine
                .search(SearchQuery {
                    query: q.into(),
                    top_k: 5,
                    mode,
                    ..Default::default()
                })
                .await
                .unwrap();
            out.extend(
                r.hits
                    .iter()
                    .map(|h| (h.passage.id, format!("{:.5}", h.score))),
            );
        }
    }
    out
}

#[tokio::test]
async fn persisted_index_reloads_with_identical_results_and_syncs_incrementally() {
    let corpus = tempfile::tempdir().unwrap();
    copy_corpus(corpus.path());
    let data = tempfile::tempdir().unwrap();
    let before = {
        let engine = common::engine(data.path(), Some(corpus.path())).await;
        top_ids(&engine).await
    };
    let engine = common::engine(data.path(), None).await;
    assert_eq!(top_ids(&engine).await, before);

    // Unchanged corpus: nothing to do.
    let report = engine.sync_corpus(corpus.path(), &|_, _| {}).await.unwrap();
    assert_eq!(
        (
            report.added,
            report.updated,
            report.removed,
            report.unchanged
        ),
        (0, 0, 0, 5)
    );
    let build = engine.info().index_build_id;

    // One changed, one removed, one added.
    std::fs::write(
        corpus.path().join("003_2d3723fee4e68220.txt"),
        "OpenStack ra đời năm 2010. Nó là phần mềm mã nguồn mở.",
    )
    .unwrap();
    std::fs::remove_file(corpus.path().join("002_c765242a16c13cf0.txt")).unwrap();
    std::fs::write(
        corpus.path().join("new.md"),
        "# Mekong\n\nThe Mekong flows through six countries.",
    )
    .unwrap();
    let report = engine.sync_corpus(corpus.path(), &|_, _| {}).await.unwrap();
    assert_eq!(
        (
            report.added,
            report.updated,
            report.removed,
            report.unchanged
        ),
        (1, 1, 1, 3)
    );
    let info = engine.info();
    assert_eq!(info.documents, 5);
    assert_ne!(info.index_build_id, build);
    assert!(engine.get_document("002_c765242a16c13cf0.txt").is_err());
    let hits = engine
        .search(SearchQuery {
            query: "Which countries does the Mekong cross?".into(),
            top_k: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(hits.hits[0].passage.doc_id, "new.md");
    assert_eq!(
        engine.get_document("new.md").unwrap().summary.title,
        "Mekong"
    );
}

#[tokio::test]
async fn an_hnsw_index_is_dumped_beside_the_database_and_reloaded() {
    let data = tempfile::tempdir().unwrap();
    let config = || {
        let mut c = common::default_config(data.path());
        c.index.kind = wenda::index::IndexKind::Hnsw;
        c
    };
    let before = {
        let engine = common::engine_with(config(), Some(&common::corpus_dir())).await;
        assert_eq!(engine.info().index_kind, "hnsw");
        top_ids(&engine).await
    };
    let manifest = wenda::engine::persist::Manifest::read(data.path()).expect("manifest written");
    let dump = manifest.hnsw.clone().expect("hnsw dump named");
    assert!(
        data.path()
            .join(&dump.dir)
            .join(format!("{}.usearch", dump.basename))
            .exists()
    );
    assert_eq!(
        (manifest.documents, manifest.index_kind.as_str()),
        (5, "hnsw")
    );
    assert_eq!(manifest.corpus_fingerprint.len(), 64);

    // Reloaded from the dump: same answers, and the manifest is left as it was.
    let engine = common::engine_with(config(), None).await;
    assert_eq!(top_ids(&engine).await, before);
    drop(engine);
    assert_eq!(
        wenda::engine::persist::Manifest::read(data.path()).unwrap(),
        manifest
    );

    // A graph file that passes the manifest's checks and still does not
    // open (garbage, with its length and CRC written into the manifest):
    // the engine reads the store again, rebuilds the graph and writes a
    // new dump, which the next start loads.
    let graph_file = data.path().join(&dump.dir).join(&dump.files[0].name);
    let garbage = vec![7u8; 4096];
    std::fs::write(&graph_file, &garbage).unwrap();
    let mut forged = manifest.clone();
    let recorded = &mut forged.hnsw.as_mut().unwrap().files[0];
    (recorded.bytes, recorded.crc32) = (garbage.len() as u64, crc32fast::hash(&garbage));
    forged.write(data.path()).unwrap();
    let engine = common::engine_with(config(), None).await;
    assert_eq!(top_ids(&engine).await, before);
    drop(engine);
    let rewritten = wenda::engine::persist::Manifest::read(data.path()).unwrap();
    let written = std::fs::read(&graph_file).unwrap();
    assert_ne!(written, garbage);
    assert_eq!(
        rewritten.hnsw.as_ref().unwrap().files[0].crc32,
        crc32fast::hash(&written)
    );

    // Without the dump the graph is rebuilt from the stored vectors.
    std::fs::remove_dir_all(data.path().join(&dump.dir)).unwrap();
    let engine = common::engine_with(config(), None).await;
    assert_eq!(top_ids(&engine).await, before);
}

/// `--index hnsw_rs`: the design's first graph, selectable beside USearch.
/// It answers as the exact scan does on this small corpus, dumps its own
/// files, reloads them, and a data directory switched between the two
/// graphs rebuilds rather than loading the other's dump.
#[tokio::test]
async fn the_hnsw_rs_graph_is_selectable_dumped_and_reloaded() {
    let data = tempfile::tempdir().unwrap();
    let with = |kind| {
        let mut c = common::default_config(data.path());
        c.index.kind = kind;
        c
    };
    let exact = {
        let dir = tempfile::tempdir().unwrap();
        let mut c = common::default_config(dir.path());
        c.index.kind = wenda::index::IndexKind::Exact;
        top_ids(&*common::engine_with(c, Some(&common::corpus_dir())).await).await
    };
    let built = common::engine_with(
        with(wenda::index::IndexKind::HnswRs),
        Some(&common::corpus_dir()),
    )
    .await;
    assert_eq!(built.info().index_kind, "hnsw_rs");
    assert_eq!(top_ids(&built).await, exact);
    drop(built);
    let manifest = wenda::engine::persist::Manifest::read(data.path()).expect("manifest written");
    let dump = manifest.hnsw.clone().expect("hnsw_rs dump named");
    for suffix in ["hnsw.graph", "hnsw.data"] {
        let file = data
            .path()
            .join(&dump.dir)
            .join(format!("{}.{suffix}", dump.basename));
        assert!(file.exists(), "{} missing", file.display());
    }
    let reloaded = common::engine_with(with(wenda::index::IndexKind::HnswRs), None).await;
    assert_eq!(reloaded.info().index_kind, "hnsw_rs");
    assert_eq!(top_ids(&reloaded).await, exact);
    drop(reloaded);
    let switched = common::engine_with(with(wenda::index::IndexKind::Hnsw), None).await;
    assert_eq!(switched.info().index_kind, "hnsw");
    // USearch holds half-precision vectors: the same passages, scores equal
    // to about 1e-4.
    let ids = |hits: Vec<(u64, String)>| hits.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    assert_eq!(ids(top_ids(&switched).await), ids(exact));
}

#[tokio::test]
async fn bad_files_are_skipped_by_name_and_the_rest_is_indexed() {
    let corpus = tempfile::tempdir().unwrap();
    copy_corpus(corpus.path());
    let c = corpus.path();
    std::fs::write(c.join("binary.txt"), [0u8, 159, 146, 150, 0, 1, 2]).unwrap();
    std::fs::write(c.join("latin1.txt"), b"caf\xe9 cr\xe8me").unwrap();
    std::fs::write(c.join("empty.md"), "").unwrap();
    let big = std::fs::File::create(c.join("huge.txt")).unwrap();
    big.set_len(50 * 1024 * 1024).unwrap();
    std::os::unix::fs::symlink(c.join("does-not-exist.txt"), c.join("dangling.txt")).unwrap();
    std::fs::create_dir(c.join("nested")).unwrap();
    std::os::unix::fs::symlink(c, c.join("nested/loop")).unwrap();

    let data = tempfile::tempdir().unwrap();
    let engine = common::engine(data.path(), None).await;
    let report = engine.sync_corpus(c, &|_, _| {}).await.unwrap();
    assert_eq!(report.added, 5);
    let mut skipped: Vec<String> = report
        .skipped
        .iter()
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            "binary.txt",
            "dangling.txt",
            "empty.md",
            "huge.txt",
            "latin1.txt",
            "loop"
        ]
    );
    assert!(report.skipped.iter().all(|s| !s.reason.is_empty()));
}

#[tokio::test]
async fn a_changed_chunker_configuration_rebuilds_the_stored_passages() {
    let data = tempfile::tempdir().unwrap();
    let small = {
        let mut c = common::default_config(data.path());
        c.chunk = ingest::ChunkConfig {
            max_tokens: 48,
            overlap_tokens: 0,
        };
        let engine = common::engine_with(c, Some(&common::corpus_dir())).await;
        engine.info().passages
    };
    // Reopened with the default chunking and no corpus sync: the stored
    // documents are re-chunked and re-embedded from their stored text.
    let engine = common::engine(data.path(), None).await;
    let info = engine.info();
    assert_eq!(info.documents, 5);
    assert!(
        info.passages < small,
        "{} passages after rebuild, {small} before",
        info.passages
    );
    let doc = engine.get_document("003_2d3723fee4e68220.txt").unwrap();
    assert!(
        doc.passages
            .iter()
            .all(|p| p.tokens as usize <= ingest::ChunkConfig::default().max_tokens)
    );
    let hits = engine
        .search(SearchQuery {
            query: "Rackspace NASA 2010".into(),
            top_k: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(hits.hits[0].passage.doc_id, "003_2d3723fee4e68220.txt");
}
