#!/usr/bin/env python3
"""Chatbot-backend example: turn wenda Search results into a context block
with numbered citations, ready to paste into an LLM prompt.

    .venv/bin/python examples/python/chatbot_context.py --server 127.0.0.1:50051 \
        "Who is the COO of the OpenInfra Foundation?"

Prints the prompt context, then the sources list. Each passage is quoted
with its best-supporting sentences when wenda found any, and every source
carries the document, title, language, exact character span and relevance,
so an answer can cite "[2]" and a reader can open the exact place. When
wenda judges that the documents do not answer the question (`answerable`
false), it says so instead of building a context from passages that would
only mislead the model.
"""
import argparse
import os
import sys

from client import load_stubs


def build_context(response, max_chars=1200):
    blocks, sources = [], []
    for n, p in enumerate(response.passages, start=1):
        c = p.citation
        quote = " ".join(h.text for h in p.highlights) or p.text
        quote = " ".join(quote.split())[:max_chars]
        blocks.append(f"[{n}] {quote}")
        sources.append(
            f"[{n}] {c.title} — {c.source} ({c.language}), chars {c.char_start}–{c.char_end}, "
            f"relevance {p.relevance:.2f}"
        )
    return "\n\n".join(blocks), sources


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("question")
    ap.add_argument("--server", default="127.0.0.1:50051", help="host:port or http(s)://host:port")
    ap.add_argument("--top-k", type=int, default=4)
    ap.add_argument("--token", default=os.environ.get("WENDA_TOKEN"), help="bearer token (or WENDA_TOKEN)")
    ap.add_argument("--language", action="append", default=[], help="only passages in this language")
    args = ap.parse_args()

    import grpc
    from connect import channel

    pb, pb_grpc = load_stubs()
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else None
    with channel(args.server) as ch:
        stub = pb_grpc.RetrievalStub(ch)
        try:
            request = pb.SearchRequest(query=args.question, top_k=args.top_k, languages=args.language)
            response = stub.Search(request, timeout=30, metadata=metadata)
        except grpc.RpcError as err:
            sys.exit(f"chatbot_context: {err.code().name}: {err.details()}")
    if not response.answerable:
        print(f"Question: {args.question}\n")
        print("Not in the documents: wenda found no passage likely to answer this question.")
        return
    context, sources = build_context(response)
    print("Answer the question using only the numbered context; cite sources as [n].")
    print(f"Question: {args.question}\n")
    print("Context:\n" + context + "\n")
    print("Sources:\n" + "\n".join(sources))


if __name__ == "__main__":
    main()
