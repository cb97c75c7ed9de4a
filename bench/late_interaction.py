#!/usr/bin/env python3
"""Measures token-level late interaction (ColBERT-style MaxSim) as a reranker.

A question about the dev set: does matching the question's tokens one by one
against a passage's tokens, with e5's own contextual token vectors, rank the
answer first more often than the engine's hybrid fusion? The figures are in
docs/retrieval.md ("Measured and dropped"). Nothing here is used by wenda.

Usage (from the repository root, a server on the default corpus running):
    make build
    WENDA_MODELS=$PWD/models ./target/release/wenda serve --corpus ../shared/corpus \\
        --data-dir /tmp/li --listen 127.0.0.1:50077 &
    .venv/bin/pip install -r models/requirements-dev.txt     # tokenizers
    .venv/bin/python bench/late_interaction.py --addr 127.0.0.1:50077

1. Every passage (GetDocument) and each dev question's dense and lexical lists
   (Search, top_k 50: the engine's fusion depth) come from the
   server, so the passages are exactly wenda's.
2. The fp32 model (models/multilingual-e5-small/model.onnx) runs in
   onnxruntime with the last layer and layer 10 exposed; prefix, <s>, </s> and
   punctuation tokens are dropped.
3. MaxSim(q, p) = mean over question tokens of the best cosine with any
   passage token. It is scored alone and fused with the engine's two lists
   (min-max convex, as the engine does, and reciprocal rank fusion) at several
   weights; the scoring rule is the quality issue's.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import grpc
import numpy as np
import onnx
import onnxruntime as ort
from grpc_tools import protoc
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "multilingual-e5-small")
QA = os.path.join(ROOT, "..", "shared", "eval", "dev_qa.jsonl")
LAYERS = {"last": "last_hidden_state", "10": "encoder.layer.10/ffn_ln"}
PUNCTUATION = set("▁?？,，.。:：;；!！、\"'()（）")
LEXICAL_WEIGHT = 0.8  # the engine's default
FUSION_DEPTH = 50  # src/rank.rs


def stubs():
    out = tempfile.mkdtemp()
    protoc.main(["protoc", f"-I{ROOT}/proto", f"--python_out={out}", f"--grpc_python_out={out}",
                 "wenda/v1/wenda.proto"])
    sys.path.insert(0, out)
    from wenda.v1 import wenda_pb2, wenda_pb2_grpc
    return wenda_pb2, wenda_pb2_grpc


def fetch(addr, questions):
    pb, pbg = stubs()
    stub = pbg.RetrievalStub(grpc.insecure_channel(addr))
    passages = []
    for doc in stub.ListDocuments(pb.ListDocumentsRequest(page_size=100)).documents:
        for p in stub.GetDocument(pb.GetDocumentRequest(id=doc.id)).passages:
            passages.append({"doc": p.citation.source, "start": p.citation.char_start, "text": p.text})
    index = {(p["doc"], p["start"]): i for i, p in enumerate(passages)}
    lists = []
    for q in questions:
        per_mode = {}
        for mode in ("SEARCH_MODE_DENSE", "SEARCH_MODE_LEXICAL"):
            r = stub.Search(pb.SearchRequest(query=q["question"], top_k=FUSION_DEPTH,
                                             mode=pb.SearchMode.Value(mode)))
            per_mode[mode] = [(index[(h.citation.source, h.citation.char_start)], h.score)
                              for h in r.passages]
        lists.append(per_mode)
    return passages, lists


class TokenEncoder:
    def __init__(self):
        model = onnx.load(os.path.join(MODEL, "model.onnx"))
        for name in LAYERS.values():
            if name not in [o.name for o in model.graph.output]:
                model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        self.names = list(LAYERS.values())
        self.session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))

    def encode(self, text, prefix):
        ids = self.tokenizer.encode(prefix + text).ids[:512]
        n_prefix = len(self.tokenizer.encode(prefix.strip()).ids) - 1  # <s> and the prefix pieces
        feed = {"input_ids": np.array([ids], dtype=np.int64),
                "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
                "token_type_ids": np.zeros((1, len(ids)), dtype=np.int64)}
        outputs = self.session.run(self.names, feed)
        keep = [i for i in range(n_prefix, len(ids) - 1)
                if (t := self.tokenizer.id_to_token(ids[i])).strip("▁") and not set(t) <= PUNCTUATION]
        out = {}
        for layer, o in zip(LAYERS, outputs):
            v = o[0][keep]
            out[layer] = v / np.linalg.norm(v, axis=1, keepdims=True).clip(1e-9)
        return out


def hit(question, passage):
    return any(passage["doc"] == g["doc"] and any(c in passage["text"] for c in g["contains"])
               for g in question["gold"])


def score(questions, passages, orders):
    h1 = h5 = rr = 0.0
    for q, order in zip(questions, orders):
        rank = next((k + 1 for k, i in enumerate(order[:10]) if hit(q, passages[i])), None)
        if rank:
            h1 += rank == 1
            h5 += rank <= 5
            rr += 1 / rank
    n = len(questions)
    return f"{h1 / n:.2f} / {h5 / n:.2f} / {rr / n:.2f}"


def minmax(pairs):
    if not pairs:
        return {}
    values = [s for _, s in pairs]
    lo, hi = min(values), max(values)
    return {i: (s - lo) / (hi - lo) if hi > lo else 1.0 for i, s in pairs}


def fuse(dense, lexical, maxsim, weight, rrf):
    ids = {i for i, _ in dense} | {i for i, _ in lexical}
    if rrf:
        ranks = lambda order: {i: 1 / (60 + r + 1) for r, i in enumerate(order)}
        a, b = ranks([i for i, _ in dense]), ranks([i for i, _ in lexical])
        c = ranks(sorted(ids, key=lambda i: -maxsim[i]))
    else:
        a, b, c = minmax(dense), minmax(lexical), minmax([(i, maxsim[i]) for i in ids])
    fused = {i: a.get(i, 0) + LEXICAL_WEIGHT * b.get(i, 0) + weight * c.get(i, 0) for i in ids}
    return sorted(ids, key=lambda i: (-fused[i], i))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--addr", default="127.0.0.1:50051")
    args = ap.parse_args()
    questions = [json.loads(line) for line in open(QA) if line.strip()]
    passages, lists = fetch(args.addr, questions)
    encoder = TokenEncoder()
    started = time.perf_counter()
    passage_tokens = [encoder.encode(p["text"], "passage: ") for p in passages]
    per_passage_ms = (time.perf_counter() - started) * 1000 / len(passages)
    question_tokens = [encoder.encode(q["question"], "query: ") for q in questions]
    print(f"{len(passages)} passages, {len(questions)} questions; "
          f"{per_passage_ms:.0f} ms per passage to re-encode (fp32, onnxruntime, this machine)")
    print("hybrid (the engine's lists, convex 0.8):",
          score(questions, passages,
                [fuse(l["SEARCH_MODE_DENSE"], l["SEARCH_MODE_LEXICAL"], {i: 0 for i in range(len(passages))}, 0, False)
                 for l in lists]))
    for layer in LAYERS:
        maxsim = [[float((q[layer] @ p[layer].T).max(1).mean()) for p in passage_tokens] for q in question_tokens]
        alone = [sorted(range(len(passages)), key=lambda i: (-m[i], i)) for m in maxsim]
        print(f"layer {layer}: MaxSim alone {score(questions, passages, alone)}")
        for rrf in (False, True):
            row = []
            for weight in (0.3, 0.5, 0.8, 1.0, 1.5):
                orders = [fuse(l["SEARCH_MODE_DENSE"], l["SEARCH_MODE_LEXICAL"], m, weight, rrf)
                          for l, m in zip(lists, maxsim)]
                row.append(f"{weight}: {score(questions, passages, orders)}")
            print(f"  + {'RRF' if rrf else 'convex'} with the two lists  " + "   ".join(row))


if __name__ == "__main__":
    main()
