//! Retrieval quality on the dev questions, with the default configuration:
//! a floor, so a change that hurts ranking across languages fails here.
//! The figures and how they were reached are in docs/retrieval.md.

use std::path::{Path, PathBuf};

use wenda::cli::eval;
use wenda::types::{SearchMode, SearchQuery};

use crate::common;

/// The dev questions with their gold answers (`../shared/eval`).
fn dev_qa() -> PathBuf {
    common::corpus_dir().join("../eval/dev_qa.jsonl")
}

/// A question file of ours in `bench/` (robustness, unanswerable, probes).
fn bench_qa(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench")
        .join(file)
}

/// The hybrid scores of a question file, printed.
async fn hybrid_report(engine: &wenda::engine::Engine, file: &Path) -> eval::Report {
    let questions = eval::load_questions(file).expect("questions");
    let report = eval::evaluate(engine, &questions, SearchMode::Hybrid, "")
        .await
        .unwrap();
    eprintln!("{}:\n{report}", file.display());
    report
}

/// The refusals of an unanswerable file in `bench/`, printed with the
/// questions answered.
async fn refusals(engine: &wenda::engine::Engine, file: &str) -> eval::Refusals {
    let questions = eval::load_questions(&bench_qa(file)).expect("questions");
    let refusals = eval::refusals(engine, &questions, SearchMode::Hybrid)
        .await
        .unwrap();
    eprintln!("{file}: {refusals}");
    refusals
}

#[tokio::test]
async fn dev_set_scores_stay_above_the_floor() {
    let questions = eval::load_questions(&dev_qa()).expect("dev questions");
    assert_eq!(questions.len(), 20);
    let engine = common::corpus_engine();
    let hybrid = eval::evaluate(&engine, &questions, SearchMode::Hybrid, "")
        .await
        .unwrap();
    eprintln!("hybrid:\n{hybrid}");
    assert!(
        hybrid.overall.hit_at_5 >= 0.90,
        "hit@5 {}",
        hybrid.overall.hit_at_5
    );
    assert!(
        hybrid.overall.mrr_at_10 >= 0.80,
        "MRR@10 {}",
        hybrid.overall.mrr_at_10
    );
    assert!(
        hybrid.overall.hit_at_1 >= 0.75,
        "hit@1 {}",
        hybrid.overall.hit_at_1
    );
    // The answerable verdict: most dev questions come back answerable with
    // a hit in the first 5, most unanswerable ones are refused
    // (docs/retrieval.md has the fit; floors below the measured 18/20 and
    // 21/27).
    assert!(hybrid.answered_with_hit >= 16, "{hybrid}");
    let refused = refusals(&engine, "unanswerable_qa.jsonl").await;
    assert!(refused.refused >= 19, "{refused}");
    // Vietnamese questions answered by Chinese passages, whose cosines and
    // shares of bridged words run low (4/10 measured; int8 results move a
    // little from one CPU to another).
    let probe = hybrid_report(&engine, &bench_qa("vi_probe_qa.jsonl")).await;
    assert!(probe.answered_with_hit >= 3, "{probe}");
    // The fresh sets, written after the features were chosen: 0.77 / 0.97
    // / 0.86 (0.90 at hit@5 before English words were stemmed), 24/30
    // kept with a hit, 15/21 refused.
    let fresh = hybrid_report(&engine, &bench_qa("fresh_qa.jsonl")).await;
    assert!(fresh.overall.hit_at_5 >= 0.93, "{fresh}");
    assert!(fresh.answered_with_hit >= 21, "{fresh}");
    let refused = refusals(&engine, "fresh_unanswerable_qa.jsonl").await;
    assert!(refused.refused >= 12, "{refused}");
    // Fusion must beat each of its parts.
    let dense = eval::evaluate(&engine, &questions, SearchMode::Dense, "")
        .await
        .unwrap();
    let lexical = eval::evaluate(&engine, &questions, SearchMode::Lexical, "")
        .await
        .unwrap();
    assert!(
        hybrid.overall.hit_at_5 > dense.overall.hit_at_5
            && hybrid.overall.hit_at_5 > lexical.overall.hit_at_5
    );
    // Every question language is served.
    for lang in ["en", "zh", "vi"] {
        assert!(
            hybrid.per_language[lang].hit_at_5 >= 0.66,
            "{lang}: {:?}",
            hybrid.per_language[lang]
        );
    }
}

/// The query language is the one a person would name, ISO 639-1, for the
/// dev questions and for the robustness and unanswerable sets in `bench/`
/// (mixed scripts, Vietnamese without diacritics, keywords, typos, lower
/// case, off-topic one-worders).
#[tokio::test]
async fn every_question_gets_its_language() {
    let engine = common::corpus_engine();
    for file in [
        dev_qa(),
        bench_qa("robustness_qa.jsonl"),
        bench_qa("unanswerable_qa.jsonl"),
        bench_qa("fresh_qa.jsonl"),
        bench_qa("fresh_unanswerable_qa.jsonl"),
    ] {
        let questions = eval::load_questions(&file).expect("questions");
        assert!(questions.len() >= 20, "{}", file.display());
        let report = eval::evaluate(&engine, &questions, SearchMode::Lexical, "")
            .await
            .unwrap();
        assert_eq!(
            report.language_right,
            questions.len(),
            "{}: {:?}",
            file.display(),
            report.language_wrong
        );
    }
}

/// No response holds two passages that share text, and every highlight of
/// the corpus's plain-text articles quotes exactly the characters its span
/// covers, for the dev and robustness questions at `top_k` 20.
#[tokio::test]
async fn responses_hold_no_overlapping_passages_and_exact_highlights() {
    let engine = common::corpus_engine();
    let mut questions = eval::load_questions(&dev_qa()).unwrap();
    questions.extend(eval::load_questions(&bench_qa("robustness_qa.jsonl")).unwrap());
    let (mut passages, mut highlights, mut exact) = (0, 0, 0);
    for q in &questions {
        let hits = engine
            .search(SearchQuery {
                query: q.question.clone(),
                top_k: 20,
                ..Default::default()
            })
            .await
            .unwrap()
            .hits;
        assert_eq!(hits.len(), 20, "{}", q.id);
        for (i, a) in hits.iter().enumerate() {
            assert_eq!(a.rank as usize, i + 1);
            for b in &hits[i + 1..] {
                let (a, b) = (&a.passage, &b.passage);
                assert!(
                    a.doc_id != b.doc_id
                        || a.char_end <= b.char_start
                        || b.char_end <= a.char_start,
                    "{}: {}..{} and {}..{} of {} overlap",
                    q.id,
                    a.char_start,
                    a.char_end,
                    b.char_start,
                    b.char_end,
                    a.doc_id
                );
            }
            let original = engine.get_document(&a.passage.doc_id).unwrap().text;
            // Where the passage is plain text (its span is its text), a
            // highlight is exactly its span; inside markdown its visible
            // characters are the span's, in order.
            let plain = common::char_slice(&original, a.passage.char_start, a.passage.char_end)
                == a.passage.text;
            for h in &a.highlights {
                let span = common::char_slice(&original, h.char_start, h.char_end);
                assert!(
                    if plain {
                        span == h.text
                    } else {
                        common::is_subsequence_ignoring_whitespace(&h.text, &span)
                    },
                    "{}: highlight {:?} of {} does not quote its span {span:?}",
                    q.id,
                    h.text,
                    a.passage.doc_id
                );
                highlights += 1;
                exact += usize::from(plain);
            }
            passages += 1;
        }
    }
    eprintln!("{passages} passages and {highlights} highlights checked, {exact} of them exactly");
    assert!(highlights > 100 && exact > 10);
}

/// A client asking for 50 passages gets the same first 10, in the same
/// order with the same scores, as one asking for 10: the candidate pool
/// grows with `top_k`, the fused scores must not.
#[tokio::test]
async fn the_first_results_do_not_depend_on_how_many_are_asked_for() {
    let questions = eval::load_questions(&dev_qa()).expect("dev questions");
    let engine = common::corpus_engine();
    let top = |top_k: usize, query: String| {
        let engine = engine.clone();
        async move {
            let results = engine
                .search(SearchQuery {
                    query,
                    top_k,
                    ..Default::default()
                })
                .await
                .unwrap();
            results
                .hits
                .iter()
                .map(|h| (h.passage.id, h.score))
                .collect::<Vec<_>>()
        }
    };
    for q in &questions {
        let ten = top(10, q.question.clone()).await;
        assert_eq!(ten.len(), 10);
        for more in [50, 100] {
            let longer = top(more, q.question.clone()).await;
            assert!(longer.len() > ten.len(), "{}: {more}", q.id);
            assert_eq!(ten, longer[..10], "{} at top_k {more}", q.id);
        }
    }
}

/// Vietnamese has no dictionary here; its Sino-Vietnamese words are read
/// into Chinese ones ("Bắc Kinh" is 北京, "thành viên" 成员). Lexically, with
/// only Chinese passages allowed, this question shares no word with any of
/// them unless that reading works, and then it finds the Beijing passages.
#[tokio::test]
async fn a_vietnamese_question_finds_chinese_passages_by_sino_vietnamese_words() {
    assert!(
        common::lexicon().has_readings(),
        "make setup provisions models/lexicon/sino-vietnamese.json"
    );
    let engine = common::corpus_engine();
    let results = engine
        .search(SearchQuery {
            query: "buổi họp báo tại Bắc Kinh".into(),
            top_k: 3,
            languages: vec!["zh".into()],
            mode: SearchMode::Lexical,
            ..Default::default()
        })
        .await
        .unwrap();
    let first = results.hits.first().expect("a lexical hit");
    assert!(
        first.passage.text.contains("北京"),
        "{}",
        first.passage.text
    );
    assert!(
        first.highlights.iter().any(|h| h.text.contains("北京")),
        "the Chinese sentence naming Beijing is the evidence: {:?}",
        first.highlights
    );
}

/// A Vietnamese question typed without marks ("co bao nhieu thanh vien") is
/// embedded with them put back by pyvi's CRF (`lexical::diacritics`): the
/// dev set's Vietnamese questions and the Vietnamese probe, every mark
/// removed, still find their answers (measured: hit@5 1.00, MRR@10 0.83
/// with the marks restored; 0.85 and 0.40 without).
#[tokio::test]
async fn vietnamese_typed_without_marks_finds_what_it_finds_with_them() {
    let lexicon = common::lexicon();
    assert_eq!(
        lexicon
            .restore_marks("OpenStack Foundation duoc thanh lap vao nam nao?")
            .as_deref(),
        Some("OpenStack Foundation được thành lập vào năm nào?"),
        "make setup provisions models/lexicon/vi-diacritics.tsv"
    );
    assert_eq!(
        lexicon.restore_marks("Thành viên"),
        None,
        "marked: as typed"
    );
    let mut questions: Vec<eval::Question> = eval::load_questions(&dev_qa())
        .unwrap()
        .into_iter()
        .filter(|q| q.lang == "vi")
        .chain(eval::load_questions(&bench_qa("vi_probe_qa.jsonl")).unwrap())
        .collect();
    for q in &mut questions {
        q.question = wenda::lexical::fold(&q.question);
        assert!(q.question.is_ascii(), "{}", q.question);
    }
    assert_eq!(questions.len(), 13);
    let engine = common::corpus_engine();
    let scores = eval::evaluate(&engine, &questions, SearchMode::Hybrid, "")
        .await
        .unwrap();
    eprintln!("{scores}");
    assert!(scores.overall.hit_at_5 >= 0.9, "{scores}");
    assert!(scores.overall.mrr_at_10 >= 0.7, "{scores}");
}

/// A misspelt English word is read as the dictionary word it clearly
/// misspells before it is translated (`lexical::spelling`): "cheif
/// architcet" finds 首席架构师 in a Chinese passage, lexically alone.
#[tokio::test]
async fn a_misspelt_english_word_is_translated_as_the_word_it_misspells() {
    let lexicon = common::lexicon();
    assert_eq!(lexicon.correct("architcet"), Some("architect"));
    assert_eq!(lexicon.correct("architect"), None, "known words stay");
    assert_eq!(lexicon.correct("projects"), None, "known by their stem");
    let engine = common::corpus_engine();
    let results = engine
        .search(SearchQuery {
            query: "Who is FiberHome's cheif architcet?".into(),
            top_k: 5,
            mode: SearchMode::Lexical,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        results
            .hits
            .iter()
            .any(|h| h.passage.text.contains("首席架构师陈刚")),
        "{:?}",
        results
            .hits
            .iter()
            .map(|h| &h.passage.text)
            .collect::<Vec<_>>()
    );
}

/// The marks model takes any text a query may be: empty, punctuation,
/// digits, a long run of syllables (bounded, not a panic or a stall).
#[test]
fn the_marks_model_takes_any_text() {
    let lexicon = common::lexicon();
    for text in ["", " ", "?!.", "2024 4G 100%", "\t\n", "OpenStack"] {
        assert_eq!(lexicon.restore_marks(text), None, "{text:?}");
    }
    let long = "thanh vien ".repeat(400);
    let restored = lexicon.restore_marks(&long).expect("restored");
    assert_eq!(restored.chars().count(), long.chars().count());
    assert_eq!(wenda::lexical::fold(&restored), long);
}
