//! Fuzzes the lexical query path (`wenda::lexical`): a small BM25 index over
//! fixed passages in Chinese, English and Vietnamese, with a tiny CC-CEDICT
//! lexicon and Sino-Vietnamese readings, queried with arbitrary text. It never
//! panics; hits are at most k, best first, of indexed ids, with finite
//! positive scores; concept coverage is finite and in 0..=1; translations
//! are sorted and unique (with the lexicon). When the first byte is odd the input is also
//! indexed as a passage and removed again, and searches must then rank
//! exactly as on an index that never held it.
#![no_main]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use wenda::lexical::{LexicalIndex, Lexicon, TermTokenizer, lexicon};

const PASSAGES: &[(u64, &str)] = &[
    (1, "Linux 基金会的执行董事 Jim Zemlin 发表了演讲。"),
    (
        2,
        "OpenStack 是一个云计算项目。从2018年开始，腾讯成为OpenStack白金会员。",
    ),
    (
        3,
        "Kata Containers và StarlingX là các dự án của OpenInfra.",
    ),
    (
        4,
        "The OpenInfra Foundation joined the Linux Foundation in 2025; 110,000 members.",
    ),
    (5, "在北京召开新闻发布会，很多人参加。"),
    (
        6,
        "Hợp tác giữa các dự án mã nguồn mở được khởi xướng bởi Rackspace và NASA.",
    ),
    (7, "白金会员 platinum member"),
];

const CEDICT: &str = "\
# a few CC-CEDICT lines
騰訊 腾讯 [Teng2 xun4] /Tencent, Chinese tech company/
白金 白金 [bai2 jin1] /platinum/
會員 会员 [hui4 yuan2] /member/
基金會 基金会 [ji1 jin1 hui4] /foundation/
底座 底座 [di3 zuo4] /base/foundation/
新聞發布會 新闻发布会 [xin1 wen2 fa1 bu4 hui4] /press conference/
北京人 北京人 [Bei3 jing1 ren2] /Beijing resident/
合作 合作 [he2 zuo4] /to cooperate/to collaborate/
項目 项目 [xiang4 mu4] /item/project/
";

const READINGS: &str = r#"{"白": "Bạch", "金": "Kim", "会": "Hội", "员": "Viên", "合": "Hợp", "作": "Tác", "项": "Hạng", "目": "Mục", "基": "Cơ"}"#;

fn lexicon() -> Arc<Lexicon> {
    static LEXICON: OnceLock<Arc<Lexicon>> = OnceLock::new();
    LEXICON
        .get_or_init(|| {
            let readings = lexicon::parse_readings(READINGS).expect("readings");
            Arc::new(Lexicon::parse_with_readings(CEDICT, Some(&readings)))
        })
        .clone()
}

fn fresh() -> LexicalIndex {
    LexicalIndex::build(PASSAGES.iter().copied(), Some(lexicon()))
}

fn index() -> &'static LexicalIndex {
    static INDEX: OnceLock<LexicalIndex> = OnceLock::new();
    INDEX.get_or_init(fresh)
}

fn plain() -> &'static LexicalIndex {
    static INDEX: OnceLock<LexicalIndex> = OnceLock::new();
    INDEX.get_or_init(|| LexicalIndex::build(PASSAGES.iter().copied(), None))
}

fn check(index: &LexicalIndex, query: &str, k: usize, ids: &HashSet<u64>, lexicon: bool) {
    let prepared = index.prepare(query);
    let translations = prepared.translations();
    // Sorted only where a lexicon is (without one, the marked forms of a
    // word typed without marks come in query order, repeats kept: the
    // search only puts them in a set).
    if lexicon {
        assert!(
            translations.windows(2).all(|w| w[0] < w[1]),
            "translations not sorted and unique: {translations:?}"
        );
    }
    let hits = index.search(&prepared, k, &|_| true);
    assert!(hits.len() <= k);
    let mut seen = HashSet::new();
    for (i, hit) in hits.iter().enumerate() {
        assert!(hit.score.is_finite() && hit.score > 0.0, "hit {hit:?}");
        assert!(ids.contains(&hit.id), "unknown id in {hit:?}");
        assert!(seen.insert(hit.id), "id twice in hits");
        if i > 0 {
            assert!(
                hits[i - 1].score >= hit.score,
                "hits not best first: {hits:?}"
            );
        }
    }
    // A filter only removes hits, and keeps the order of the rest.
    let odd = index.search(&prepared, k, &|id| id % 2 == 1);
    assert!(odd.iter().all(|h| h.id % 2 == 1));
    let unfiltered: Vec<_> = index
        .search(&prepared, usize::MAX, &|_| true)
        .into_iter()
        .filter(|h| h.id % 2 == 1)
        .take(k)
        .collect();
    assert_eq!(odd, unfiltered);
    for &id in ids.iter().chain([&0u64]) {
        let coverage = index.concept_coverage(&prepared, id);
        assert!(
            coverage.is_finite() && (0.0..=1.0).contains(&coverage),
            "coverage {coverage} of {id}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let query = common::text(rest);
    let k = 1 + usize::from(flags >> 1) % 10;
    let ids: HashSet<u64> = PASSAGES.iter().map(|p| p.0).collect();
    let _ = TermTokenizer.terms(&query);
    check(index(), &query, k, &ids, true);
    check(plain(), &query, k, &ids, false);
    if flags & 1 == 1 {
        let mut changed = fresh();
        changed.upsert(99, &query);
        let mut with = ids.clone();
        with.insert(99);
        check(&changed, &query, k, &with, true);
        changed.upsert(2, &query);
        changed.remove(99);
        changed.upsert(2, PASSAGES[1].1);
        let reference = index();
        for q in [
            &*query,
            "OpenStack platinum member",
            "hop tac du an",
            "基金会",
        ] {
            assert_eq!(
                changed.search(&changed.prepare(q), k, &|_| true),
                reference.search(&reference.prepare(q), k, &|_| true),
                "an upsert and remove left a trace for {q:?}"
            );
        }
    }
});
