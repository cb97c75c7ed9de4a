"""Where the model's time goes, and two ways of running it measured side by
side (issue: performance). Three measurements, all with onnxruntime from
Python on the shipped `model_int8.onnx`, one text per run as wenda runs int8:

1. threads: one session on every core (spinning or not) against one
   single-threaded session, alone and two side by side (what wenda's
   embedder does: one session per core);
2. operators (after the batches): ONNX Runtime's own profiler, the share of kernel time per
   operator type over the dev questions;
3. batches: passages one per run against length-sorted padded batches of 8;
4. fused attention: every layer's attention (Reshape, Transpose, MatMul,
   Softmax, ... 13 nodes) replaced by one `com.microsoft:MultiHeadAttention`,
   timed against the shipped graph, with the cosine between their vectors.

  python bench/model_profile.py [--rounds 5]
Needs onnxruntime, onnx, numpy (models/requirements.txt) and tokenizers
(models/requirements-dev.txt).
"""
import argparse, collections, glob, json, os, tempfile, threading, time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "multilingual-e5-small")
CORPUS = os.environ.get("WENDA_CORPUS_DIR", os.path.join(ROOT, "..", "shared", "corpus"))
DEV = os.path.join(ROOT, "..", "shared", "eval", "dev_qa.jsonl")
INT8 = os.path.join(MODEL, "model_int8.onnx")
ATTENTION = ["q_reshape", "q_heads", "k_reshape", "k_heads_t", "v_reshape", "v_heads", "scores",
             "scores_scaled", "scores_masked", "probs", "context", "context_t", "context_merge"]


def texts():
    tok = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
    questions = ["query: " + json.loads(l)["question"] for l in open(DEV, encoding="utf-8") if l.strip()]
    pieces = []
    for f in sorted(glob.glob(os.path.join(CORPUS, "*"))):
        text = open(f, encoding="utf-8").read()
        pieces += ["passage: " + text[i:i + 300] for i in range(0, len(text), 300)]

    def feeds(text):
        ids = np.array([tok.encode(text).ids[:512]], dtype=np.int64)
        return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    ids = [tok.encode(p).ids[:512] for p in pieces[:60]]
    start = time.perf_counter()
    for _ in range(10):
        for q in questions:
            tok.encode(q)
    tokenize_us = (time.perf_counter() - start) / (10 * len(questions)) * 1e6
    return [feeds(q) for q in questions], [feeds(p) for p in pieces[:60]], tokenize_us, ids


def batches(ids, size):
    """The passages sorted by length and cut into padded batches of `size`
    (`<pad>` = 1, masked), as a length-bucketing embedder would run them."""
    ordered = sorted(ids, key=len)
    out = []
    for i in range(0, len(ordered), size):
        group = ordered[i:i + size]
        width = max(map(len, group))
        input_ids = np.array([g + [1] * (width - len(g)) for g in group], dtype=np.int64)
        mask = np.array([[1] * len(g) + [0] * (width - len(g)) for g in group], dtype=np.int64)
        out.append({"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(mask)})
    return out


def session(path, threads=1, spin=False, profile=None):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if profile:
        o.enable_profiling = True
        o.profile_file_prefix = profile
    o.log_severity_level = 3
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def ms_per_text(sessions, feeds, rounds):
    """Best of `rounds`: the texts shared out over the sessions, each on its own thread."""
    best = float("inf")
    for _ in range(rounds):
        shares = [feeds[i::len(sessions)] for i in range(len(sessions))]
        threads = [threading.Thread(target=lambda s, f: [s.run(None, x) for x in f], args=(s, f))
                   for s, f in zip(sessions, shares)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        best = min(best, (time.perf_counter() - start) / len(feeds))
    return best * 1000


def fused_attention(src, dst):
    """The shipped graph with each layer's attention as one MultiHeadAttention node."""
    m = onnx.load(src)
    g = m.graph
    by_name = {n.name: n for n in g.node}
    layers = sorted({n.name.split("/")[0] for n in g.node if n.name.endswith("/q_reshape")})
    drop = {f"{p}/{s}" for p in layers for s in ATTENTION}
    fused = [helper.make_node("Cast", ["attention_mask"], ["mask_i32"], name="mask/i32", to=TensorProto.INT32)]
    for p in layers:
        q, k, v = (by_name[f"{p}/{x}_reshape"].input[0] for x in "qkv")
        fused.append(helper.make_node("MultiHeadAttention", [q, k, v, "", "mask_i32"], [f"{p}/context_merge"],
                                      name=f"{p}/mha", domain="com.microsoft", num_heads=12))
    pending = [n for n in g.node if n.name not in drop] + fused
    known = {i.name for i in g.input} | {i.name for i in g.initializer} | {""}
    ordered = []
    while pending:
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            raise SystemExit("fused_attention: the graph has a cycle")
        for n in ready:
            ordered.append(n)
            known.update(n.output)
        pending = [n for n in pending if n not in ready]
    del g.node[:]
    g.node.extend(ordered)
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(m, dst)
    return len(layers)


def vector(s, feeds):
    h = s.run(None, feeds)[0][0].mean(0)
    return h / np.linalg.norm(h)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    questions, passages, tokenize_us, passage_ids = texts()
    print(f"{os.cpu_count()} CPUs; onnxruntime {ort.__version__}; {len(questions)} questions, "
          f"{len(passages)} 300-character corpus pieces; best of {args.rounds} rounds\n")
    print(f"tokenizing a question (Hugging Face tokenizers, XLM-R's 250,000 pieces): {tokenize_us:.0f} µs\n")

    print("| how the int8 model runs | ms per question | ms per passage |\n|---|---:|---:|")
    cores = os.cpu_count() or 1
    one = [session(INT8), session(INT8)]
    for label, sessions in [(f"one session, {cores} threads, spinning", [session(INT8, cores, True)]),
                            (f"one session, {cores} threads, not spinning", [session(INT8, cores)]),
                            ("one single-threaded session", one[:1]),
                            (f"{cores} single-threaded sessions side by side (wenda)",
                             [session(INT8) for _ in range(cores)])]:
        ms_per_text(sessions, questions[:3], 1)
        print(f"| {label} | {ms_per_text(sessions, questions, args.rounds):.2f} | "
              f"{ms_per_text(sessions, passages, args.rounds):.2f} |")

    print(f"\nPassages one per run against length-sorted batches, {cores} single-threaded sessions side by side"
          " (int8 in batches depends on its batch mates: an upper bound of what batching could give it):\n")
    print("| model | one text per run: ms per passage | sorted batches of 8: ms per passage |\n|---|---:|---:|")
    for label, path in [("int8", INT8), ("fp32", os.path.join(MODEL, "model.onnx"))]:
        sessions = [session(path) for _ in range(cores)]
        grouped = batches(passage_ids, 8)
        ms_per_text(sessions, passages[:4], 1)
        single = ms_per_text(sessions, passages, args.rounds)
        batched = ms_per_text(sessions, grouped, args.rounds) * len(grouped) / len(passages)
        print(f"| {label} | {single:.2f} | {batched:.2f} |")

    with tempfile.TemporaryDirectory() as tmp:
        prof = session(INT8, profile=os.path.join(tmp, "profile"))
        for _ in range(3):
            for f in questions:
                prof.run(None, f)
        events = json.load(open(prof.end_profiling()))
        per_op, runs = collections.Counter(), 0
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                per_op[e["args"]["op_name"]] += e["dur"]
            runs += e.get("cat") == "Session" and e["name"] == "model_run"
        total = sum(per_op.values())
        print(f"\nOperators, single-threaded, dev questions ({runs} runs, profiler on):\n")
        print("| operator | share of kernel time | µs per run |\n|---|---:|---:|")
        for op, us in per_op.most_common(10):
            print(f"| {op} | {us / total:.1%} | {us / runs:.0f} |")

        fused_path = os.path.join(tmp, "fused.onnx")
        layers = fused_attention(INT8, fused_path)
        fused = session(fused_path)
        base = one[0]
        ms_per_text([fused], questions[:3], 1)
        cos = [float(vector(base, f) @ vector(fused, f)) for f in questions + passages]
        print(f"\nFused attention ({layers} MultiHeadAttention nodes), single-threaded:\n")
        print("| graph | ms per question | ms per passage |\n|---|---:|---:|")
        for label, s in [("shipped", base), ("fused attention", fused)]:
            print(f"| {label} | {ms_per_text([s], questions, args.rounds):.3f} | "
                  f"{ms_per_text([s], passages, args.rounds):.3f} |")
        print(f"\ncosine between the two graphs' vectors: min {min(cos):.6f}, mean {np.mean(cos):.6f}")


if __name__ == "__main__":
    main()
