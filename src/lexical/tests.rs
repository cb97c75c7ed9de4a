use std::sync::Arc;

use unicode_normalization::UnicodeNormalization;

use super::*;

#[test]
fn chinese_is_segmented_and_latin_split() {
    let terms = TermTokenizer.terms("OpenInfra基金会执行董事Jonathan Bryce, 110,000 名成员");
    assert!(terms.contains(&"openinfra".to_string()), "{terms:?}");
    assert!(terms.contains(&"基金会".to_string()), "{terms:?}");
    assert!(terms.contains(&"bryce".to_string()));
    assert!(terms.contains(&"110".to_string()));
}

#[test]
fn decomposed_text_gives_the_terms_of_composed_text() {
    let composed = "Hợp tác giữa các dự án";
    let decomposed: String = composed.nfd().collect();
    assert_ne!(composed, decomposed);
    assert_eq!(
        TermTokenizer.terms(&decomposed),
        TermTokenizer.terms(composed)
    );
    assert_eq!(
        TermTokenizer.terms(composed),
        ["hợp", "tác", "giữa", "dự", "án"]
    );
}

#[test]
fn names_match_across_languages() {
    let index = LexicalIndex::build(
        [
            (1, "Linux 基金会的执行董事 Jim Zemlin 发表了演讲。"),
            (2, "OpenStack 是一个云计算项目。"),
            (3, "Kata Containers và StarlingX."),
        ]
        .into_iter(),
        None,
    );
    let hits = index.search(&index.prepare("Who is Jim Zemlin?"), 3, &|_| true);
    assert_eq!(hits[0].id, 1);
    assert!(
        index
            .search(&index.prepare("Jim Zemlin"), 3, &|id| id != 1)
            .is_empty()
    );
}

#[test]
fn translations_reach_passages_in_the_other_language() {
    let lexicon = Lexicon::parse(
        "騰訊 腾讯 [Teng2 xun4] /Tencent, Chinese tech company/\n白金 白金 [bai2 jin1] /platinum/\n",
    );
    let passages = [
        (1, "从2018年开始，腾讯成为OpenStack白金会员。"),
        (2, "华为是排名第一的电信厂商。"),
    ];
    let question = "Since when is Tencent a platinum member?";
    let plain = LexicalIndex::build(passages.into_iter(), None);
    assert!(
        plain
            .search(&plain.prepare(question), 2, &|_| true)
            .is_empty()
    );
    let bridged = LexicalIndex::build(passages.into_iter(), Some(Arc::new(lexicon)));
    let query = bridged.prepare(question);
    assert_eq!(query.translations(), ["白金", "腾讯"]);
    assert_eq!(bridged.search(&query, 2, &|_| true)[0].id, 1);
}

#[test]
fn a_word_and_its_translations_count_as_one_term() {
    // "foundation" has two translations, "platinum" one. Scored as
    // separate terms, passage 1 (both translations of "foundation")
    // would beat passage 2 (the only passage about platinum); as one
    // concept it counts once, rarer concepts weigh more.
    let lexicon = Lexicon::parse(
        "基金會 基金会 [ji1 jin1 hui4] /foundation/\n底座 底座 [di3 zuo4] /base/foundation/\n白金 白金 [bai2 jin1] /platinum/\n",
    );
    let index = LexicalIndex::build(
        [(1, "基金会 底座"), (2, "白金"), (3, "基金会 其他")].into_iter(),
        Some(Arc::new(lexicon)),
    );
    let query = index.prepare("foundation platinum");
    assert_eq!(query.translations(), ["基金会", "底座", "白金"]);
    let hits = index.search(&query, 3, &|_| true);
    let order: Vec<u64> = hits.iter().map(|h| h.id).collect();
    assert_eq!(order, [2, 1, 3], "{hits:?}");
}

/// The ids `index` finds for `query`, best first.
fn found(index: &LexicalIndex, query: &LexicalQuery) -> Vec<u64> {
    index
        .search(query, 10, &|_| true)
        .iter()
        .map(|h| h.id)
        .collect()
}

#[test]
fn a_phrase_translation_counts_for_each_word_of_the_phrase() {
    // Passage 1 has "conference" four times; passage 2 holds the
    // translation of the whole phrase "press conference" once, as an
    // English passage would hold both words: it is the better match
    // (scored as a concept of its own beside "press" and "conference",
    // the phrase's translation weighed as one word and lost).
    let lexicon =
        Lexicon::parse("新聞發布會 新闻发布会 [xin1 wen2 fa1 bu4 hui4] /press conference/\n");
    let index = LexicalIndex::build(
        [
            (1, "Conference: conference, conference, conference"),
            (2, "在北京召开新闻发布会"),
        ]
        .into_iter(),
        Some(Arc::new(lexicon)),
    );
    let query = index.prepare("press conference");
    assert_eq!(query.translations(), ["新闻发布会"]);
    assert_eq!(found(&index, &query), [2, 1]);
}

#[test]
fn a_translation_cut_by_the_segmenter_is_matched_by_its_longer_parts() {
    // CC-CEDICT offers 北京人 for "Beijing"; jieba cuts it into 北京 and
    // 人, and 人 alone would match every passage about people.
    let lexicon = Lexicon::parse("北京人 北京人 [Bei3 jing1 ren2] /Beijing resident/\n");
    assert!(
        !TermTokenizer
            .terms("北京人")
            .contains(&"北京人".to_string())
    );
    let index = LexicalIndex::build(
        [(1, "在北京召开"), (2, "很多人参加")].into_iter(),
        Some(Arc::new(lexicon)),
    );
    let query = index.prepare("Beijing");
    assert_eq!(query.translations(), ["北京人"]);
    assert_eq!(found(&index, &query), [1]);
}

#[test]
fn a_removed_passage_scores_as_if_never_indexed() {
    let texts = [
        (1, "OpenStack 是一个云计算项目。"),
        (2, "Kata Containers và StarlingX."),
        (3, "OpenStack and StarlingX are OpenInfra projects."),
    ];
    let mut index = LexicalIndex::build(texts.into_iter(), None);
    index.upsert(4, "StarlingX StarlingX StarlingX edge");
    index.remove(4);
    index.upsert(1, "OpenStack 是一个云计算项目。");
    let fresh = LexicalIndex::build(texts.into_iter(), None);
    for question in ["StarlingX", "OpenStack projects", "edge"] {
        assert_eq!(
            index.search(&index.prepare(question), 5, &|_| true),
            fresh.search(&fresh.prepare(question), 5, &|_| true),
            "{question}"
        );
    }
    assert!(!index.has_term("edge"));
}

#[test]
fn english_words_meet_their_inflections_and_vietnamese_syllables_stay_whole() {
    // A Chinese question's translation is a dictionary base form; the
    // English passage inflects it.
    let lexicon = Lexicon::parse(
        "許可證 许可证 [xu3 ke3 zheng4] /license/\n貢獻者 贡献者 [gong4 xian4 zhe3] /contributor/\n",
    );
    let index = LexicalIndex::build(
        [
            (
                1,
                "Contributors and licensing will continue as they do today.",
            ),
            (2, "The board keeps overseeing the budget."),
            (3, "Thành viên và các dự án."),
        ]
        .into_iter(),
        Some(Arc::new(lexicon)),
    );
    assert_eq!(found(&index, &index.prepare("许可证和贡献者会变吗？")), [1]);
    assert_eq!(found(&index, &index.prepare("who oversees budgets")), [2]);
    // "thanh vien" typed without marks still finds "thành viên": the
    // syllables are not cut as English words ("vien" is no stem of
    // anything).
    assert_eq!(found(&index, &index.prepare("thanh vien")), [3]);
}

#[test]
fn stopwords_typed_without_marks_are_stopwords_in_an_unmarked_vietnamese_question() {
    let index = LexicalIndex::build(
        [(1, "Ai là giám đốc của OpenInfra?"), (2, "LA co-founder")].into_iter(),
        None,
    );
    // "la" and "cua" are là and của, which the passage's terms leave out
    // as stopwords: the question's every concept is held.
    let query = index.prepare("ai la giam doc cua openinfra");
    assert_eq!(index.concept_coverage(&query, 1), 1.0);
    // In an English query they are words.
    let query = index.prepare("LA co-founder");
    assert_eq!(found(&index, &query), [2]);
    assert_eq!(index.concept_coverage(&query, 2), 1.0);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

    /// Any text tokenizes and searches without panicking, Vietnamese
    /// syllables read by their Sino-Vietnamese keys included.
    #[test]
    fn arbitrary_queries_are_safe(
        query in proptest::prop_oneof![
            proptest::string::string_regex(".{0,80}").expect("regex"),
            proptest::string::string_regex("((bạch|kim|hội|viên|ty|ý|[a-zđơưăâêôỳýỷỹỵ]{1,4}) ?){0,12}").expect("regex"),
        ]
    ) {
        let readings = lexicon::parse_readings(r#"{"白": "Bạch", "金": "Kim", "会": "Hội", "员": "Viên"}"#)
            .expect("readings");
        let lexicon = Lexicon::parse_with_readings(
            "白金 白金 [bai2 jin1] /platinum/\n會員 会员 [hui4 yuan2] /member/\n",
            Some(&readings),
        );
        let index = LexicalIndex::build([(1, "白金会员 platinum member")].into_iter(), Some(Arc::new(lexicon)));
        let _ = TermTokenizer.terms(&query);
        let _ = index.search(&index.prepare(&query), 5, &|_| true);
    }
}
