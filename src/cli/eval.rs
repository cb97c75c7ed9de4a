//! Retrieval evaluation: hit@1, hit@5 and MRR@10 over a question file,
//! overall, per question language and per question→answer language pair.
//!
//! Scoring rule: a passage is a hit for a question when its citation source
//! is one of the question's gold documents and its text contains one of
//! that gold entry's strings.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::types::{SearchMode, SearchQuery};

#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    pub id: String,
    pub lang: String,
    pub question: String,
    pub gold: Vec<Gold>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Gold {
    pub doc: String,
    pub contains: Vec<String>,
}

/// Reads a JSON-lines question file.
pub fn load_questions(path: &Path) -> Result<Vec<Question>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::Io(format!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Scores of a group of questions.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Scores {
    pub questions: usize,
    pub hit_at_1: f32,
    pub hit_at_5: f32,
    pub mrr_at_10: f32,
}

/// A question whose answer was not ranked first.
#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    pub id: String,
    pub question: String,
    /// 1-based rank of the first hit within the top 10, if any.
    pub rank: Option<usize>,
    /// The top passage's source and opening.
    pub top: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub overall: Scores,
    pub per_language: BTreeMap<String, Scores>,
    /// "en→zh" and so on; the answer language is the first gold document's.
    pub per_pair: BTreeMap<String, Scores>,
    pub misses: Vec<Miss>,
    /// Questions whose detected query language is their labelled one.
    pub language_right: usize,
    /// The others: (id, labelled, detected).
    pub language_wrong: Vec<(String, String, String)>,
    /// Questions answered `answerable` with a hit in the first 5.
    pub answered_with_hit: usize,
    /// Questions answered `answerable` (with a hit or not).
    pub answered: usize,
}

/// How a set of questions the documents do not answer fared.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Refusals {
    pub questions: usize,
    /// Answered not `answerable`.
    pub refused: usize,
    /// The others: (id, question, first passage's relevance).
    pub answered: Vec<(String, String, f32)>,
}

/// One (question, passage) pair with the evidence relevance is computed
/// from and whether the passage is a hit: the rows `bench/fit_relevance.py`
/// fits the relevance model on.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceRow {
    pub id: String,
    pub lang: String,
    pub answerable: bool,
    pub rank: u32,
    pub hit: bool,
    pub cosine: f32,
    pub concepts: f32,
    pub both_lists: bool,
    pub lacks_asked_number: bool,
    pub relevance: f32,
    /// The passage's id, the question and the passage's text, for reading
    /// the rows.
    pub passage: u64,
    pub question: String,
    pub text: String,
}

fn is_hit(q: &Question, h: &crate::types::SearchHit) -> bool {
    q.gold.iter().any(|g| {
        h.source == g.doc
            && g.contains
                .iter()
                .any(|c| h.passage.text.contains(c.as_str()))
    })
}

async fn search(
    engine: &Engine,
    q: &Question,
    mode: SearchMode,
    query_language: &str,
) -> Result<crate::types::SearchResults> {
    engine
        .search(SearchQuery {
            query: q.question.clone(),
            top_k: 10,
            mode,
            query_language: query_language.to_string(),
            ..Default::default()
        })
        .await
}

/// Runs questions the documents do not answer and counts the refusals.
pub async fn refusals(
    engine: &Engine,
    questions: &[Question],
    mode: SearchMode,
) -> Result<Refusals> {
    let mut out = Refusals {
        questions: questions.len(),
        ..Default::default()
    };
    for q in questions {
        let results = search(engine, q, mode, "").await?;
        if results.answerable {
            let relevance = results.hits.first().map_or(0.0, |h| h.relevance);
            out.answered
                .push((q.id.clone(), q.question.clone(), relevance));
        } else {
            out.refused += 1;
        }
    }
    Ok(out)
}

/// The evidence rows of the first 10 passages of every question.
pub async fn evidence_rows(
    engine: &Engine,
    questions: &[Question],
    answerable: bool,
) -> Result<Vec<EvidenceRow>> {
    let mut rows = Vec::new();
    for q in questions {
        for h in search(engine, q, SearchMode::Hybrid, "").await?.hits {
            rows.push(EvidenceRow {
                id: q.id.clone(),
                lang: q.lang.clone(),
                answerable,
                rank: h.rank,
                hit: answerable && is_hit(q, &h),
                cosine: h.evidence.cosine,
                concepts: h.evidence.concepts,
                both_lists: h.evidence.both_lists,
                lacks_asked_number: h.evidence.lacks_asked_number,
                relevance: h.relevance,
                passage: h.passage.id,
                question: q.question.clone(),
                text: h.passage.text.clone(),
            });
        }
    }
    Ok(rows)
}

#[derive(Default)]
struct Tally {
    n: usize,
    h1: usize,
    h5: usize,
    rr: f32,
}

impl Tally {
    fn add(&mut self, rank: Option<usize>) {
        self.n += 1;
        if let Some(r) = rank {
            self.h1 += usize::from(r == 1);
            self.h5 += usize::from(r <= 5);
            self.rr += 1.0 / r as f32;
        }
    }

    fn scores(&self) -> Scores {
        let n = self.n.max(1) as f32;
        Scores {
            questions: self.n,
            hit_at_1: self.h1 as f32 / n,
            hit_at_5: self.h5 as f32 / n,
            mrr_at_10: self.rr / n,
        }
    }
}

/// Runs every question through the engine and scores the rankings.
/// `query_language` is stated on every search when not empty.
pub async fn evaluate(
    engine: &Engine,
    questions: &[Question],
    mode: SearchMode,
    query_language: &str,
) -> Result<Report> {
    let mut overall = Tally::default();
    let mut per_language: BTreeMap<String, Tally> = BTreeMap::new();
    let mut per_pair: BTreeMap<String, Tally> = BTreeMap::new();
    let mut misses = Vec::new();
    let (mut language_right, mut language_wrong) = (0, Vec::new());
    let (mut answered, mut answered_with_hit) = (0, 0);
    for q in questions {
        let results = search(engine, q, mode, query_language).await?;
        let rank = results
            .hits
            .iter()
            .position(|h| is_hit(q, h))
            .map(|p| p + 1);
        if results.answerable {
            answered += 1;
            answered_with_hit += usize::from(rank.is_some_and(|r| r <= 5));
        }
        if results.query_language == q.lang {
            language_right += 1;
        } else {
            language_wrong.push((q.id.clone(), q.lang.clone(), results.query_language.clone()));
        }
        overall.add(rank);
        per_language.entry(q.lang.clone()).or_default().add(rank);
        let answer_lang = q
            .gold
            .first()
            .and_then(|g| engine.get_document(&g.doc).ok())
            .map_or_else(|| "?".to_string(), |d| d.summary.language);
        per_pair
            .entry(format!("{}→{}", q.lang, answer_lang))
            .or_default()
            .add(rank);
        if rank != Some(1) {
            misses.push(Miss {
                id: q.id.clone(),
                question: q.question.clone(),
                rank,
                top: results
                    .hits
                    .first()
                    .map(|h| {
                        format!(
                            "{}: {}",
                            h.source,
                            h.passage.text.chars().take(60).collect::<String>()
                        )
                    })
                    .unwrap_or_default(),
            });
        }
    }
    Ok(Report {
        overall: overall.scores(),
        per_language: per_language
            .into_iter()
            .map(|(k, t)| (k, t.scores()))
            .collect(),
        per_pair: per_pair.into_iter().map(|(k, t)| (k, t.scores())).collect(),
        misses,
        language_right,
        language_wrong,
        answered,
        answered_with_hit,
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let row = |f: &mut std::fmt::Formatter<'_>, name: &str, s: &Scores| {
            writeln!(
                f,
                "{name:<12} {:>3}  hit@1 {:.2}  hit@5 {:.2}  MRR@10 {:.2}",
                s.questions, s.hit_at_1, s.hit_at_5, s.mrr_at_10
            )
        };
        row(f, "overall", &self.overall)?;
        for (k, s) in &self.per_language {
            row(f, &format!("lang {k}"), s)?;
        }
        for (k, s) in &self.per_pair {
            row(f, k, s)?;
        }
        writeln!(
            f,
            "answerable with a hit in the first 5: {}/{} (answerable at all: {})",
            self.answered_with_hit, self.overall.questions, self.answered
        )?;
        writeln!(
            f,
            "query language right: {}/{}",
            self.language_right, self.overall.questions
        )?;
        for (id, labelled, detected) in &self.language_wrong {
            writeln!(f, "  {id}: labelled {labelled}, detected {detected}")?;
        }
        if !self.misses.is_empty() {
            writeln!(f, "misses (not ranked first):")?;
            for m in &self.misses {
                let rank = m.rank.map_or("-".to_string(), |r| r.to_string());
                writeln!(
                    f,
                    "  {} rank {rank}: {}  [top: {}]",
                    m.id, m.question, m.top
                )?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for Refusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "unanswerable refused: {}/{}",
            self.refused, self.questions
        )?;
        for (id, question, relevance) in &self.answered {
            writeln!(f, "  {id} answered (relevance {relevance:.2}): {question}")?;
        }
        Ok(())
    }
}
