"""MMR over a running server's results, with text overlap as the similarity.

Measures whether demoting passages that repeat text already ranked above
them (chunks overlap by 40 tokens, so neighbours share text) helps the dev
set; docs/retrieval.md has the figures. Needs `wenda serve` on ADDRESS:

    .venv/bin/python bench/mmr_overlap.py ../shared/eval/dev_qa.jsonl [ADDRESS]

For each question the server's first 50 hybrid passages are re-ranked
greedily by lambda * score - (1 - lambda) * max overlap with those already
chosen (overlap: shared characters of two passages of one document over the
shorter's length) and scored by the issue's rule (hit@1, hit@5, MRR@10).
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GRPCURL = os.path.join(HERE, "..", ".venv", "bin", "grpcurl")


def search(address, question):
    request = json.dumps({"query": question, "top_k": 50})
    out = subprocess.run([GRPCURL, "-plaintext", "-d", request, address, "wenda.v1.Retrieval/Search"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["passages"]


def is_hit(question, passage):
    return any(passage["citation"]["source"] == gold["doc"]
               and any(s in passage["text"] for s in gold["contains"])
               for gold in question["gold"])


def span(passage):
    c = passage["citation"]  # proto3 JSON: uint64 as strings, zero omitted
    return c["source"], int(c.get("charStart", 0)), int(c["charEnd"])


def overlap(a, b):
    (doc_a, start_a, end_a), (doc_b, start_b, end_b) = span(a), span(b)
    if doc_a != doc_b:
        return 0.0
    shared = max(0, min(end_a, end_b) - max(start_a, start_b))
    return shared / max(1, min(end_a - start_a, end_b - start_b))


def mmr(passages, lam, k=10):
    rest, chosen = list(passages), []
    while rest and len(chosen) < k:
        best = max(rest, key=lambda p: lam * p["score"]
                   - (1 - lam) * max([overlap(p, c) for c in chosen], default=0.0))
        chosen.append(best)
        rest.remove(best)
    return chosen


def main():
    questions = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    address = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1:50051"
    results = [(q, search(address, q["question"])) for q in questions]
    for lam in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5):
        hit1 = hit5 = mrr_sum = 0.0
        for question, passages in results:
            ranked = mmr(passages, lam)
            rank = next((i + 1 for i, p in enumerate(ranked) if is_hit(question, p)), None)
            hit1 += rank == 1
            hit5 += rank is not None and rank <= 5
            mrr_sum += 1 / rank if rank else 0.0
        n = len(results)
        print(f"lambda {lam}: hit@1 {hit1 / n:.2f}  hit@5 {hit5 / n:.2f}  MRR@10 {mrr_sum / n:.3f}")


if __name__ == "__main__":
    main()
