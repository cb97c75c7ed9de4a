"""int8 schemes whose vectors do not depend on their batch, measured against
the shipped one (issue: performance).

wenda's int8 model (`model_int8.onnx`, `quantize_dynamic`) takes each
activation's scale from the whole model run, so a text's vector moves with
its batch mates and wenda runs int8 one text at a time. Two schemes keep a
text's vector its own, and this script measures both beside it:

- static: `quantize_static` (QDQ, per-channel weights, MatMul only),
  activation ranges calibrated on half the corpus in 300-character pieces
  plus the dev questions;
- per-row: written here. Every weight MatMul gets int8 weights (symmetric,
  per output column) and its input quantized per row, that is per token, at
  run time (Abs, ReduceMax, Round, Cast, MatMulInteger, two Muls), shared by
  the MatMuls that read one input; the word-embedding table is int8 per row.

Held-out texts (the other half of the corpus, the robustness and
unanswerable questions) are embedded alone and in batches, mean-pooled and
normalised; cosine is against fp32.

  python bench/int8_schemes.py [--workdir DIR]
Needs onnxruntime, onnx, numpy (models/requirements.txt) and tokenizers
(models/requirements-dev.txt).
"""
import argparse, glob, json, os, sys, time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "multilingual-e5-small")
CORPUS = os.environ.get("WENDA_CORPUS_DIR", os.path.join(ROOT, "..", "shared", "corpus"))
DEV = os.path.join(ROOT, "..", "shared", "eval", "dev_qa.jsonl")


def corpus_pieces():
    out = []
    for f in sorted(glob.glob(os.path.join(CORPUS, "*"))):
        text = open(f, encoding="utf-8").read()
        out += ["passage: " + text[i:i + 300] for i in range(0, len(text), 300)]
    return out


def questions(path):
    return ["query: " + json.loads(l)["question"] for l in open(path, encoding="utf-8") if l.strip()]


def per_row(src, dst):
    """The per-row scheme: see the module's docstring."""
    m = onnx.load(src)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    nodes, extra = [], []

    def const(name, arr):
        extra.append(numpy_helper.from_array(arr, name))

    const("rq_127", np.array(127.0, np.float32))
    const("rq_eps", np.array(1e-12, np.float32))
    const("rq_128", np.array(128.0, np.float32))
    const("rq_zp", np.array(128, np.uint8))
    quantized = {}  # input -> (its uint8 tensor, its per-row scale)
    for n, node in enumerate(g.node):
        weight = inits.get(node.input[1]) if len(node.input) > 1 else None
        if node.op_type == "Gather" and node.input[0] in inits and inits[node.input[0]].dims[0] > 10000:
            table = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
            scale = np.maximum(np.abs(table).max(axis=1), 1e-12) / 127.0
            const("rqe_q", np.clip(np.round(table / scale[:, None]), -127, 127).astype(np.int8))
            const("rqe_s", scale.astype(np.float32)[:, None])
            ids = node.input[1]
            nodes += [helper.make_node("Gather", ["rqe_q", ids], ["rqe_g"]),
                      helper.make_node("Gather", ["rqe_s", ids], ["rqe_gs"]),
                      helper.make_node("Cast", ["rqe_g"], ["rqe_gf"], to=TensorProto.FLOAT),
                      helper.make_node("Mul", ["rqe_gf", "rqe_gs"], [node.output[0]])]
            continue
        if node.op_type != "MatMul" or weight is None or len(weight.dims) != 2:
            nodes.append(node)
            continue
        k = f"rq{n}"
        w = numpy_helper.to_array(weight).astype(np.float32)
        ws = np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0
        const(k + "_w", np.clip(np.round(w / ws), -127, 127).astype(np.int8))
        const(k + "_ws", ws.astype(np.float32))
        x = node.input[0]
        if x not in quantized:
            nodes += [helper.make_node("Abs", [x], [k + "_abs"]),
                      helper.make_node("ReduceMax", [k + "_abs"], [k + "_mx"], axes=[-1], keepdims=1),
                      helper.make_node("Max", [k + "_mx", "rq_eps"], [k + "_mxe"]),
                      helper.make_node("Div", ["rq_127", k + "_mxe"], [k + "_inv"]),
                      helper.make_node("Div", [k + "_mxe", "rq_127"], [k + "_s"]),
                      helper.make_node("Mul", [x, k + "_inv"], [k + "_xs"]),
                      helper.make_node("Round", [k + "_xs"], [k + "_xr"]),
                      helper.make_node("Add", [k + "_xr", "rq_128"], [k + "_xa"]),
                      helper.make_node("Cast", [k + "_xa"], [k + "_xq"], to=TensorProto.UINT8)]
            quantized[x] = (k + "_xq", k + "_s")
        xq, xs = quantized[x]
        nodes += [helper.make_node("MatMulInteger", [xq, k + "_w", "rq_zp"], [k + "_mi"]),
                  helper.make_node("Cast", [k + "_mi"], [k + "_mf"], to=TensorProto.FLOAT),
                  helper.make_node("Mul", [k + "_mf", k + "_ws"], [k + "_mw"]),
                  helper.make_node("Mul", [k + "_mw", xs], [node.output[0]])]
    used = {i for n in nodes for i in n.input}
    kept = [i for i in g.initializer if i.name in used]
    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend(kept + extra)
    onnx.save(m, dst)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=os.path.join(ROOT, "target", "int8-schemes"))
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    tok = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
    tok.enable_truncation(512)
    fp32 = os.path.join(MODEL, "model.onnx")
    names = [i.name for i in ort.InferenceSession(fp32, providers=["CPUExecutionProvider"]).get_inputs()]

    def feed(texts):
        enc = tok.encode_batch(texts)
        width = max(len(e.ids) for e in enc)
        ids = np.zeros((len(enc), width), np.int64)
        mask = np.zeros_like(ids)
        for i, e in enumerate(enc):
            ids[i, :len(e.ids)] = e.ids
            mask[i, :len(e.ids)] = 1
        d = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            d["token_type_ids"] = np.zeros_like(ids)
        return d, mask

    pieces = corpus_pieces()
    calibration = pieces[::2] + questions(DEV)
    held = pieces[1::2] + questions(os.path.join(ROOT, "bench", "robustness_qa.jsonl")) + \
        questions(os.path.join(ROOT, "bench", "unanswerable_qa.jsonl"))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calibration)

        def get_next(self):
            t = next(self.it, None)
            return None if t is None else feed([t])[0]

    static = os.path.join(args.workdir, "static.onnx")
    rows = os.path.join(args.workdir, "per_row.onnx")
    if not os.path.exists(static):
        quantize_static(fp32, static, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=["MatMul"],
                        extra_options={"ActivationSymmetric": True})
    if not os.path.exists(rows):
        per_row(fp32, rows)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    sessions = {name: ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                for name, path in [("fp32", fp32), ("dynamic (shipped)", os.path.join(MODEL, "model_int8.onnx")),
                                   ("static QDQ", static), ("per-row", rows)]}

    def embed(session, texts):
        d, mask = feed(texts)
        h = session.run(None, d)[0]
        m = mask[..., None].astype(np.float32)
        v = (h * m).sum(1) / m.sum(1)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    reference = np.concatenate([embed(sessions["fp32"], [t]) for t in held])
    queries = [t for t in held if t.startswith("query: ")][:48]
    passages = [t for t in held if t.startswith("passage: ")][:48]
    print(f"{len(held)} held-out texts; {ort.__version__}; {os.cpu_count()} CPUs")
    print("| scheme | cosine to fp32 min / mean | alone vs batch of 8: max abs diff | "
          "query ms alone | query ms in batches of 8 | passage ms alone | passage ms in batches of 16 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, session in sessions.items():
        vectors = np.concatenate([embed(session, [t]) for t in held])
        cos = (vectors * reference).sum(1)
        batch = embed(session, held[:8])
        diff = float(np.abs(batch - vectors[:8]).max())
        timing = []
        for texts, size in ((queries, 8), (passages, 16)):
            best_alone = best_batch = 1e9
            for _ in range(3):
                t = time.perf_counter()
                for x in texts:
                    embed(session, [x])
                best_alone = min(best_alone, (time.perf_counter() - t) / len(texts))
                t = time.perf_counter()
                for i in range(0, len(texts), size):
                    embed(session, texts[i:i + size])
                best_batch = min(best_batch, (time.perf_counter() - t) / len(texts))
            timing += [best_alone * 1000, best_batch * 1000]
        print(f"| {name} | {cos.min():.4f} / {cos.mean():.4f} | {diff:.2g} | "
              + " | ".join(f"{x:.2f}" for x in timing) + " |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
