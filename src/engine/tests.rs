use super::*;
use std::path::Path;

use crate::embed::testing;
use crate::ingest::DocumentInput;
use crate::ingest::testing::ApproxCounter;
use crate::types::{SearchMode, SearchQuery};

async fn engine(dir: &Path) -> Engine {
    Engine::open(
        EngineConfig::new(dir),
        testing::embedder(),
        Arc::new(ApproxCounter),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn ingest_search_replace_delete_with_a_small_embedder() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let doc = |id: &str, text: &str| DocumentInput {
        id: id.into(),
        text: text.into(),
        ..Default::default()
    };
    let out = engine
        .ingest(vec![
            doc("a", "Mekong river flows south."),
            doc("b", "湄公河流经六个国家。"),
        ])
        .await
        .unwrap();
    assert!(
        out.iter()
            .all(|o| o.chunks == 1 && !o.replaced && !o.unchanged)
    );
    let hits = engine
        .search(SearchQuery {
            query: "Mekong river".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(hits.hits[0].passage.doc_id, "a");
    // Same id twice in one call: the last copy wins.
    let out = engine
        .ingest(vec![doc("a", "first"), doc("a", "Second version of a.")])
        .await
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(
        engine.get_document("a").unwrap().text,
        "Second version of a."
    );
    assert_eq!(
        engine
            .delete(vec!["a".into(), "a".into(), "zzz".into()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(engine.info().documents, 1);
    assert!(matches!(engine.get_document("a"), Err(Error::NotFound(_))));
}

async fn top(engine: &Engine, query: &str, mode: SearchMode) -> Vec<String> {
    let query = SearchQuery {
        query: query.into(),
        mode,
        top_k: 3,
        ..Default::default()
    };
    let hits = engine.search(query).await.unwrap().hits;
    hits.into_iter().map(|h| h.passage.doc_id).collect()
}

/// Small writes update the index in place; the result is the one a
/// restart (a full load of the store) gives.
#[tokio::test]
async fn small_writes_update_in_place_and_match_a_fresh_load() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let doc = |i: usize| DocumentInput {
        id: format!("d{i:02}"),
        text: format!("Document {i} talks about topic{i} and shared words."),
        ..Default::default()
    };
    engine.ingest((0..40).map(doc).collect()).await.unwrap();
    let rebuilds = engine.read_state().rebuilds;

    engine.ingest(vec![doc(40)]).await.unwrap();
    engine.delete(vec!["d03".into()]).await.unwrap();
    let replacement = DocumentInput {
        text: "Document five now talks about the Mekong.".into(),
        ..doc(5)
    };
    engine.ingest(vec![replacement]).await.unwrap();
    assert_eq!(
        engine.read_state().rebuilds,
        rebuilds,
        "small writes must not rebuild the whole index"
    );

    assert_eq!(top(&engine, "topic40", SearchMode::Lexical).await[0], "d40");
    assert_eq!(top(&engine, "Mekong", SearchMode::Lexical).await[0], "d05");
    assert!(
        !top(&engine, "topic3", SearchMode::Lexical)
            .await
            .contains(&"d03".to_string())
    );
    assert!(engine.get_document("d03").is_err());

    let queries = ["Document 40 topic40", "Mekong", "topic17 shared"];
    let mut before = Vec::new();
    for q in queries {
        before.push(top(&engine, q, SearchMode::Dense).await[0].clone());
    }
    let info = engine.info();
    drop(engine);
    let reopened = self::engine(dir.path()).await;
    assert_eq!(reopened.info().passages, info.passages);
    for (q, expected) in queries.iter().zip(before) {
        assert_eq!(
            top(&reopened, q, SearchMode::Dense).await[0],
            expected,
            "{q}"
        );
    }
}

#[tokio::test]
async fn repeated_queries_reuse_the_cached_vector() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine
        .ingest(vec![DocumentInput {
            id: "a".into(),
            text: "Mekong river flows south.".into(),
            ..Default::default()
        }])
        .await
        .unwrap();
    let cache = engine.query_cache.as_ref().unwrap();
    let first = top(&engine, "Mekong", SearchMode::Dense).await;
    assert_eq!(cache.len(), 1);
    let cached = cache.get("Mekong").unwrap();
    let again = top(&engine, "Mekong", SearchMode::Dense).await;
    assert_eq!(first, again);
    assert!(Arc::ptr_eq(&cached, &cache.get("Mekong").unwrap()));
    top(&engine, "Mekong", SearchMode::Lexical).await;
    top(&engine, "river", SearchMode::Hybrid).await;
    assert_eq!(cache.len(), 2, "lexical searches embed nothing");

    let mut config = EngineConfig::new(dir.path().join("nocache"));
    config.query_cache = 0;
    let uncached = Engine::open(config, testing::embedder(), Arc::new(ApproxCounter))
        .await
        .unwrap();
    assert!(uncached.query_cache.is_none());
}

/// Writes that change a large share of the index re-estimate everything.
#[tokio::test]
async fn large_writes_rebuild_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let doc = |i: usize| DocumentInput {
        id: format!("d{i}"),
        text: format!("Document {i} about topic{i}."),
        ..Default::default()
    };
    engine.ingest((0..4).map(doc).collect()).await.unwrap();
    let rebuilds = engine.read_state().rebuilds;
    engine.ingest((4..8).map(doc).collect()).await.unwrap();
    assert_eq!(engine.read_state().rebuilds, rebuilds + 1);
    assert_eq!(engine.read_state().estimated_from, 8);
}

#[tokio::test]
async fn overload_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EngineConfig::new(dir.path());
    config.max_in_flight = 1;
    let engine = Engine::open(config, testing::embedder(), Arc::new(ApproxCounter))
        .await
        .unwrap();
    let _held = engine.permit().unwrap();
    let err = engine
        .search(SearchQuery {
            query: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Overloaded(_)));
}
