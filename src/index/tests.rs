use std::collections::HashSet;

use super::kernels::*;
use super::*;

fn random_unit(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let v: Vec<f32> = (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 10_000) as f32 / 5_000.0 - 1.0
        })
        .collect();
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.into_iter().map(|a| a / n).collect()
}

fn items(n: u64, dim: usize) -> Vec<(u64, Vec<f32>)> {
    (0..n).map(|i| (i, random_unit(i + 1, dim))).collect()
}

#[test]
fn exact_finds_itself_and_respects_filter_and_removal() {
    let mut index = ExactIndex::new(8);
    for (id, v) in items(50, 8) {
        index.insert(id, v).unwrap();
    }
    let q = random_unit(8, 8);
    assert_eq!(index.search(&q, 1, &|_| true)[0].id, 7);
    assert!(
        index
            .search(&q, 5, &|id| id % 2 == 0)
            .iter()
            .all(|h| h.id % 2 == 0)
    );
    index.remove(7);
    index.remove(0);
    assert_eq!(index.len(), 48);
    assert!(
        index
            .search(&q, 50, &|_| true)
            .iter()
            .all(|h| h.id != 7 && h.id != 0)
    );
    assert!(index.insert(3, random_unit(1, 8)).is_err(), "duplicate id");
    assert!(index.insert(99, vec![0.0; 3]).is_err(), "wrong dimension");
}

fn agrees_with_exact_search<G: TestGraph>() {
    let data = items(2000, 32);
    let hnsw = G::build(HnswParams::default(), 32, data.clone()).unwrap();
    // A dumped and reloaded graph answers exactly as the original.
    let dir = tempfile::tempdir().unwrap();
    let dump = hnsw.dump(dir.path()).unwrap().unwrap();
    let reloaded = G::load(HnswParams::default(), 32, dir.path(), &dump, &data).unwrap();
    let q = random_unit(77, 32);
    assert_eq!(
        hnsw.search(&q, 10, &|_| true),
        reloaded.search(&q, 10, &|_| true)
    );
    assert!(G::load(HnswParams::default(), 32, dir.path(), &dump, &data[..10]).is_err());
    let mut exact = ExactIndex::new(32);
    for (id, v) in data {
        exact.insert(id, v).unwrap();
    }
    let mut found = 0;
    for q in 0..50 {
        let query = random_unit(10_000 + q, 32);
        let truth: HashSet<u64> = exact
            .search(&query, 10, &|_| true)
            .iter()
            .map(|h| h.id)
            .collect();
        found += hnsw
            .search(&query, 10, &|_| true)
            .iter()
            .filter(|h| truth.contains(&h.id))
            .count();
    }
    let recall = found as f32 / 500.0;
    assert!(recall >= 0.95, "recall@10 {recall}");
}

fn every_point_finds_itself_after_build_and_removals<G: TestGraph>() {
    let data = items(600, 16);
    let mut index = G::build(
        HnswParams {
            m: 4,
            ef_construction: 8,
            ef_search: Some(8),
        },
        16,
        data.clone(),
    )
    .unwrap();
    for id in (0..600).step_by(3) {
        index.remove(id);
    }
    for (id, v) in &data {
        let hits = index.search(v, 1, &|_| true);
        if id % 3 == 0 {
            assert!(hits.iter().all(|h| h.id != *id));
        } else {
            assert_eq!(hits[0].id, *id, "point {id} not found by its own vector");
        }
    }
}

/// Unit vectors in `clusters` groups (noise 0.5 of a centre's length).
fn clustered(n: u64, dim: usize, clusters: u64) -> Vec<(u64, Vec<f32>)> {
    (0..n)
        .map(|i| {
            let centre = random_unit(1_000_000 + i % clusters, dim);
            let noise = random_unit(7919 * (i + 1), dim);
            let v: Vec<f32> = centre
                .iter()
                .zip(&noise)
                .map(|(c, e)| c + 0.5 * e)
                .collect();
            (i, normalize(v))
        })
        .collect()
}

#[test]
fn dot_agrees_with_the_plain_sum() {
    for len in [0, 1, 7, 31, 32, 33, 384, 385] {
        let a = random_unit(len as u64 + 3, len.max(1));
        let b = random_unit(len as u64 + 4, len.max(1));
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-5, "len {len}");
        assert!((dot_lanes(&a, &b) - plain).abs() < 1e-5, "len {len}");
        // Half precision: the kernel the graph uses and the plain loop
        // agree on the same halves, and both are near the f32 product.
        let (mut ha, mut hb) = (Vec::new(), Vec::new());
        to_half(&a, 1.0, &mut ha);
        to_half(&b, 1.0, &mut hb);
        let half = dot_half_kernel()(&ha, &hb);
        assert!((half - dot_half_plain(&ha, &hb)).abs() < 1e-5, "len {len}");
        assert!(
            (half - plain).abs() < 2e-3,
            "len {len}: {half} against {plain}"
        );
    }
}

fn recall_on_clustered_data_at_default_parameters<G: TestGraph>() {
    let (dim, n) = (64, 4000);
    let data = clustered(n, dim, 40);
    let mut exact = ExactIndex::new(dim);
    for (id, v) in &data {
        exact.insert(*id, v.clone()).unwrap();
    }
    let hnsw = G::build(HnswParams::default(), dim, data).unwrap();
    assert_eq!(hnsw.len(), n as usize);
    let queries = clustered(200, dim, 40);
    let mut found = 0;
    for (_, q) in &queries {
        let truth: HashSet<u64> = exact
            .search(q, 10, &|_| true)
            .iter()
            .map(|h| h.id)
            .collect();
        found += hnsw
            .search(q, 10, &|_| true)
            .iter()
            .filter(|h| truth.contains(&h.id))
            .count();
    }
    let recall = found as f32 / (10 * queries.len()) as f32;
    assert!(recall >= 0.98, "recall@10 {recall}");
}

fn dump_and_load_round_trip_and_reject_other_vectors<G: TestGraph>() {
    let (dim, n) = (48, 3000);
    let data = clustered(n, dim, 30);
    let params = HnswParams::default();
    let hnsw = G::build(params, dim, data.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dump = hnsw.dump(dir.path()).unwrap().unwrap();
    let queries = clustered(100, dim, 30);
    let before: Vec<Vec<ScoredId>> = queries
        .iter()
        .map(|(_, q)| hnsw.search(q, 10, &|id| id % 3 != 0))
        .collect();

    // The vectors come back out of the graph (in half precision); the
    // graph loaded for the stored vectors, given in another order than
    // they were built in, answers the same.
    let mut items = hnsw.items();
    assert_eq!(items.len(), n as usize);
    items.sort_by_key(|(id, _)| *id);
    for ((id, held), (_, stored)) in items.iter().zip(&data) {
        let error = held
            .iter()
            .zip(stored)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(error < 1e-3, "point {id} held with error {error}");
    }
    let mut reordered = data.clone();
    reordered.reverse();
    let loaded = G::load(params, dim, dir.path(), &dump, &reordered).unwrap();
    assert_eq!(loaded.len(), n as usize);
    for ((_, q), b) in queries.iter().zip(&before) {
        assert_eq!(&loaded.search(q, 10, &|id| id % 3 != 0), b);
    }

    // Other vectors under the same ids (even one component changed by
    // a hundredth), another M, missing ids: refused.
    let mut other = data.clone();
    other[17].1 = random_unit(99, dim);
    assert!(G::load(params, dim, dir.path(), &dump, &other).is_err());
    let mut nudged = data.clone();
    nudged[2999].1[5] += 0.01;
    assert!(G::load(params, dim, dir.path(), &dump, &nudged).is_err());
    let m8 = HnswParams { m: 8, ..params };
    assert!(G::load(m8, dim, dir.path(), &dump, &data).is_err());
    assert!(G::load(params, dim, dir.path(), &dump, &data[1..]).is_err());
    let mut renamed = data.clone();
    renamed[0].0 = 10 * n;
    assert!(G::load(params, dim, dir.path(), &dump, &renamed).is_err());
    // A truncated or foreign file is an error (the engine rebuilds), not
    // a crash and not trusted.
    {
        let file = dir.path().join(&dump.files[0].name);
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        assert!(G::load(params, dim, dir.path(), &dump, &data).is_err());
        std::fs::write(&file, b"not a graph").unwrap();
        assert!(G::load(params, dim, dir.path(), &dump, &data).is_err());
        std::fs::write(&file, &bytes).unwrap();
    }
    assert!(G::load(params, dim, dir.path(), &dump, &data).is_ok());

    // The loaded graph takes new points, and they are found.
    let mut loaded = loaded;
    for k in 0..50 {
        let (id, v) = (n + 100 + k, random_unit(500_000 + k, dim));
        loaded.insert(id, v.clone()).unwrap();
        assert_eq!(loaded.search(&v, 1, &|_| true)[0].id, id);
    }
    assert_eq!(loaded.len(), n as usize + 50);
}

fn an_empty_graph_takes_points_and_finds_them<G: TestGraph>() {
    let mut hnsw = G::build(HnswParams::default(), 16, Vec::new()).unwrap();
    assert!(hnsw.is_empty() && hnsw.items().is_empty());
    assert!(hnsw.search(&random_unit(1, 16), 5, &|_| true).is_empty());
    assert!(
        hnsw.dump(tempfile::tempdir().unwrap().path())
            .unwrap()
            .is_none()
    );
    for (id, v) in items(40, 16) {
        hnsw.insert(id, v).unwrap();
    }
    assert_eq!(hnsw.len(), 40);
    for (id, v) in items(40, 16) {
        assert_eq!(hnsw.search(&v, 1, &|_| true)[0].id, id);
    }
}

#[test]
fn build_normalises_vectors_and_scores_are_cosines() {
    let data: Vec<(u64, Vec<f32>)> = items(300, 16)
        .into_iter()
        .map(|(id, v)| (id, v.into_iter().map(|x| 3.0 * x).collect()))
        .collect();
    let mut hnsw = HnswIndex::build(HnswParams::default(), 16, data.clone()).unwrap();
    // Unit length to half precision (a relative error of 2^-11 a
    // component).
    for (id, v) in hnsw.items() {
        assert!((dot(&v, &v) - 1.0).abs() < 2e-3, "point {id}");
    }
    // Scores are cosines whatever the query's length.
    let hit = hnsw.search(&data[5].1, 1, &|_| true)[0];
    assert_eq!(hit.id, 5);
    assert!((hit.score - 1.0).abs() < 2e-3);
    let other = hnsw.search(&data[9].1, 300, &|id| id == 6)[0];
    let cosine = dot(&normalize(data[9].1.clone()), &normalize(data[6].1.clone()));
    assert!(
        (other.score - cosine).abs() < 2e-3,
        "{} against {cosine}",
        other.score
    );
    assert!(hnsw.set_ef_search(Some(0)).is_err());
    hnsw.set_ef_search(Some(128)).unwrap();
    assert_eq!(hnsw.ef_search(), 128);
    hnsw.set_ef_search(None).unwrap();
    assert_eq!(hnsw.ef_search(), default_ef_search(300));
    assert_eq!(hnsw.search(&data[7].1, 1, &|_| true)[0].id, 7);
    // A duplicate id in a build is refused, not silently merged.
    let mut twice = data.clone();
    twice.push(data[0].clone());
    assert!(HnswIndex::build(HnswParams::default(), 16, twice).is_err());
}

#[test]
fn the_default_ef_is_64_up_to_100k_points_and_grows_beyond() {
    assert_eq!(default_ef_search(0), 64);
    assert_eq!(default_ef_search(100_000), 64);
    let at_a_million = default_ef_search(1_000_000);
    assert_eq!(at_a_million, (64.0 * EF_SEARCH_GROWTH).round() as usize);
    assert!(default_ef_search(300_000) > 64 && default_ef_search(300_000) < at_a_million);
    assert_eq!(default_ef_search(usize::MAX), 1024);
    let fixed = HnswParams {
        ef_search: Some(40),
        ..Default::default()
    };
    assert_eq!(fixed.ef_search_for(1_000_000), 40);
}

#[test]
fn params_are_validated_before_the_graph_sees_them() {
    assert!(
        HnswParams {
            m: 300,
            ..Default::default()
        }
        .validate()
        .is_err()
    );
    assert!(
        HnswParams {
            m: 16,
            ef_construction: 8,
            ef_search: Some(10)
        }
        .validate()
        .is_err()
    );
    assert!(
        HnswParams {
            ef_search: Some(0),
            ..Default::default()
        }
        .validate()
        .is_err()
    );
    assert!(HnswParams::default().validate().is_ok());
}

/// What the graph tests need of a graph: both USearch's (`HnswIndex`) and
/// hnsw_rs's (`HnswRsIndex`) keep the same contract.
trait TestGraph: VectorStore + Sized {
    fn build(params: HnswParams, dimension: usize, items: Vec<(u64, Vec<f32>)>) -> Result<Self>;
    fn load(
        params: HnswParams,
        dimension: usize,
        dir: &std::path::Path,
        dump: &HnswDump,
        items: &[(u64, Vec<f32>)],
    ) -> Result<Self>;
    fn items(&self) -> Vec<(u64, Vec<f32>)>;
}

impl TestGraph for HnswIndex {
    fn build(params: HnswParams, dimension: usize, items: Vec<(u64, Vec<f32>)>) -> Result<Self> {
        HnswIndex::build(params, dimension, items)
    }
    fn load(
        params: HnswParams,
        dimension: usize,
        dir: &std::path::Path,
        dump: &HnswDump,
        items: &[(u64, Vec<f32>)],
    ) -> Result<Self> {
        HnswIndex::load(params, dimension, dir, dump, items)
    }
    fn items(&self) -> Vec<(u64, Vec<f32>)> {
        HnswIndex::items(self)
    }
}

impl TestGraph for HnswRsIndex {
    fn build(params: HnswParams, dimension: usize, items: Vec<(u64, Vec<f32>)>) -> Result<Self> {
        HnswRsIndex::build(params, dimension, items)
    }
    fn load(
        params: HnswParams,
        dimension: usize,
        dir: &std::path::Path,
        dump: &HnswDump,
        items: &[(u64, Vec<f32>)],
    ) -> Result<Self> {
        HnswRsIndex::load(params, dimension, dir, dump, items)
    }
    fn items(&self) -> Vec<(u64, Vec<f32>)> {
        HnswRsIndex::items(self)
    }
}

/// A filter's few matches scored one by one (`search_among`) give the
/// exact answer over them: the same ids as a scan of the graph's own copies
/// of those vectors, removed ids left out.
fn search_among_is_exact_over_the_given_ids<G: TestGraph>() {
    let (dim, n) = (32, 3000);
    let mut graph = G::build(HnswParams::default(), dim, clustered(n, dim, 30)).unwrap();
    for id in (0..n).step_by(50) {
        graph.remove(id);
    }
    let held = graph.items();
    let mut agree = 0;
    for q in 0..40u64 {
        let query = random_unit(70_000 + q, dim);
        let ids: Vec<u64> = (0..n).filter(|id| (id * 7 + q) % 13 == 0).collect();
        let mut exact = ExactIndex::new(dim);
        for (id, v) in held.iter().filter(|(id, _)| ids.contains(id)) {
            exact.insert(*id, v.clone()).unwrap();
        }
        let want: Vec<u64> = exact
            .search(&query, 10, &|_| true)
            .iter()
            .map(|h| h.id)
            .collect();
        let got: Vec<u64> = graph
            .search_among(&query, 10, &ids)
            .iter()
            .map(|h| h.id)
            .collect();
        assert!(got.iter().all(|id| id % 50 != 0), "a removed id came back");
        assert_eq!(got.len(), 10);
        agree += got.iter().filter(|id| want.contains(id)).count();
    }
    // Half-precision queries (USearch) may swap exact near-ties.
    assert!(agree >= 395, "{agree} of 400 agree with the exact scan");
}

macro_rules! on_both_graphs {
    ($($test:ident),* $(,)?) => {
        mod usearch {
            $(#[test] fn $test() { super::$test::<super::HnswIndex>() })*
        }
        mod hnsw_rs {
            $(#[test] fn $test() { super::$test::<super::HnswRsIndex>() })*
        }
    };
}

on_both_graphs!(
    agrees_with_exact_search,
    every_point_finds_itself_after_build_and_removals,
    recall_on_clustered_data_at_default_parameters,
    dump_and_load_round_trip_and_reject_other_vectors,
    an_empty_graph_takes_points_and_finds_them,
    search_among_is_exact_over_the_given_ids,
);

#[test]
fn hnsw_rs_is_selected_by_name_and_reports_its_kind() {
    let config = IndexConfig {
        kind: IndexKind::HnswRs,
        ..Default::default()
    };
    // Whatever the size: the choice is the caller's.
    assert_eq!(config.kind_for(10), HnswRsIndex::KIND);
    let (index, loaded) = build(&config, 16, items(100, 16), None).unwrap();
    assert!(!loaded);
    assert_eq!(index.kind(), "hnsw_rs");
    // A dump of the other graph is not taken for its own: rebuilt.
    let usearch = HnswIndex::build(HnswParams::default(), 16, items(100, 16)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dump = usearch.dump(dir.path()).unwrap().unwrap();
    let (_, loaded) = build(&config, 16, items(100, 16), Some((dir.path(), &dump))).unwrap();
    assert!(!loaded);
    let rs = HnswRsIndex::build(HnswParams::default(), 16, items(100, 16)).unwrap();
    let rs_dir = tempfile::tempdir().unwrap();
    let rs_dump = rs.dump(rs_dir.path()).unwrap().unwrap();
    let (_, loaded) = build(&config, 16, items(100, 16), Some((rs_dir.path(), &rs_dump))).unwrap();
    assert!(loaded);
    let usearch_config = IndexConfig {
        kind: IndexKind::Hnsw,
        ..Default::default()
    };
    let (_, loaded) = build(
        &usearch_config,
        16,
        items(100, 16),
        Some((rs_dir.path(), &rs_dump)),
    )
    .unwrap();
    assert!(!loaded);
}
