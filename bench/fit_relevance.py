"""Fits wenda's relevance model (`rank::RELEVANCE`) and its answer threshold.

Input: evidence rows written by `wenda eval --evidence FILE` (one JSON object
per (question, passage) pair among each question's first 10 passages: the
evidence features, whether the passage is a hit under the dev set's scoring
rule, and whether the question is answerable at all). Unanswerable
questions' passages are all negatives.

The model: P(hit) = sigmoid(bias + w . [cosine, concepts, both_lists,
lacks_asked_number]), fitted by Newton's method with a small L2 penalty, over all
pairs. The threshold: the relevance of a response's first passage at which
it is `answerable`, chosen to maximise the smaller of (answerable questions
kept with a hit in the first 5) and (unanswerable questions refused).

Honesty check: the whole procedure (fit, then threshold) is repeated with
each question left out, and the left-out question is judged by the model and
threshold fitted without it: those are the figures to expect on questions
the fit never saw.

    .venv/bin/python bench/fit_relevance.py /tmp/ev_dev.jsonl /tmp/ev_rob.jsonl \
        /tmp/ev_vi.jsonl /tmp/ev_fresh.jsonl [--write]

(the evidence of the dev set with `--unanswerable bench/unanswerable_qa.jsonl`,
of the robustness set, of the Vietnamese probe, and of `bench/fresh_qa.jsonl`
with `--unanswerable bench/fresh_unanswerable_qa.jsonl`: the shipped weights'
data).

`--write` prints the Rust constants to paste into `src/rank.rs`.
"""

import json
import sys
from collections import defaultdict

import numpy as np

FEATURES = ["cosine", "concepts", "both_lists", "lacks_asked_number"]
L2 = 0.01


def load(paths):
    """The rows of every file, each (question, rank) once: runs over two
    question files both carry the unanswerable questions."""
    rows, seen = [], set()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                row = json.loads(line)
                if (row["id"], row["rank"]) not in seen:
                    seen.add((row["id"], row["rank"]))
                    rows.append(row)
    return rows


def matrix(rows):
    x = np.array([[float(r[k]) for k in FEATURES] for r in rows], dtype=float)
    y = np.array([1.0 if r["hit"] else 0.0 for r in rows])
    return x, y


def fit(x, y):
    """Logistic regression by Newton's method; returns (bias, weights)."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    penalty = L2 * np.eye(len(w))
    penalty[0, 0] = 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-xb @ w))
        grad = xb.T @ (p - y) + penalty @ w
        hess = xb.T @ (xb * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[0], w[1:]


def relevance(bias, weights, row):
    z = bias + sum(weights[i] * float(row[k]) for i, k in enumerate(FEATURES))
    return 1.0 / (1.0 + np.exp(-z))


def by_question(rows):
    questions = defaultdict(list)
    for r in rows:
        questions[r["id"]].append(r)
    for q in questions.values():
        q.sort(key=lambda r: r["rank"])
    return questions


def outcome(question_rows, bias, weights, threshold):
    """(answerable question, judged answerable, hit in first 5)."""
    first = question_rows[0]
    answerable = relevance(bias, weights, first) >= threshold
    hit5 = any(r["hit"] for r in question_rows if r["rank"] <= 5)
    return first["answerable"], answerable, hit5


def choose_threshold(questions, bias, weights):
    firsts = sorted({round(relevance(bias, weights, q[0]), 6) for q in questions.values()})
    candidates = [0.0] + [(a + b) / 2 for a, b in zip(firsts, firsts[1:])] + [1.0]
    best = None
    for t in candidates:
        kept, refused = score(questions, bias, weights, t)
        key = (min(kept, refused), kept + refused)
        if best is None or key > best[0]:
            best = (key, t)
    return best[1]


def score(questions, bias, weights, threshold):
    kept = refused = answerable = unanswerable = 0
    for q in questions.values():
        is_answerable, judged, hit5 = outcome(q, bias, weights, threshold)
        if is_answerable:
            answerable += 1
            kept += judged and hit5
        else:
            unanswerable += 1
            refused += not judged
    return kept / max(answerable, 1), refused / max(unanswerable, 1)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rows = load(args)
    questions = by_question(rows)
    x, y = matrix(rows)
    bias, weights = fit(x, y)
    threshold = choose_threshold(questions, bias, weights)
    kept, refused = score(questions, bias, weights, threshold)
    n_answerable = sum(q[0]["answerable"] for q in questions.values())
    print(f"pairs {len(rows)} (hits {int(y.sum())}), questions {len(questions)} "
          f"({n_answerable} answerable, {len(questions) - n_answerable} not)")
    print("bias %.3f  " % bias + "  ".join(f"{k} {w:.3f}" for k, w in zip(FEATURES, weights)))
    print(f"threshold {threshold:.3f}: answerable kept with a hit in the first 5 {kept:.2f}, "
          f"unanswerable refused {refused:.2f} (fitted on all)")

    # Leave one question out: fit and threshold without it, judge it.
    judged = defaultdict(list)
    for qid, q in questions.items():
        rest = [r for r in rows if r["id"] != qid]
        rq = {k: v for k, v in questions.items() if k != qid}
        b, w = fit(*matrix(rest))
        t = choose_threshold(rq, b, w)
        is_answerable, answered, hit5 = outcome(q, b, w, t)
        judged[is_answerable].append(answered and hit5 if is_answerable else not answered)
    cv_kept = np.mean(judged[True]) if judged[True] else float("nan")
    cv_refused = np.mean(judged[False]) if judged[False] else float("nan")
    print(f"left-one-out: answerable kept with a hit in the first 5 {cv_kept:.2f}, "
          f"unanswerable refused {cv_refused:.2f}")

    if "--write" in sys.argv:
        print("pub const RELEVANCE: RelevanceModel = RelevanceModel {")
        print(f"    bias: {bias:.3f},")
        for k, w in zip(FEATURES, weights):
            print(f"    {k}: {w:.3f},")
        print("};")
        print(f"pub const DEFAULT_ANSWER_THRESHOLD: f32 = {threshold:.3f};")


if __name__ == "__main__":
    main()
