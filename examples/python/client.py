#!/usr/bin/env python3
"""A Python grpcio client for wenda: asks a question, prints cited passages.

Stubs are generated from proto/wenda/v1/wenda.proto with grpcio-tools at
start-up (into a temporary folder), so they always match the server.

    .venv/bin/python examples/python/client.py --server 127.0.0.1:50051 "Who started OpenStack?"
"""
import argparse
import importlib
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.join(HERE, "..", "..", "proto")


def load_stubs():
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="wenda-stubs-")
    rc = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"--python_out={out}", f"--grpc_python_out={out}", "wenda/v1/wenda.proto"])
    if rc != 0:
        sys.exit(f"client: protoc failed with {rc}")
    sys.path.insert(0, out)
    return importlib.import_module("wenda.v1.wenda_pb2"), importlib.import_module("wenda.v1.wenda_pb2_grpc")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question")
    parser.add_argument("--server", default="127.0.0.1:50051", help="host:port or http(s)://host:port")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--token", default=os.environ.get("WENDA_TOKEN"), help="bearer token (or WENDA_TOKEN)")
    parser.add_argument("--language", action="append", default=[], help="only passages in this language")
    parser.add_argument("--explain", action="store_true", help="print each passage's component scores")
    parser.add_argument("--filter", action="append", default=[], metavar="KEY=VALUES",
                        help="only documents whose metadata KEY holds one of the comma-separated values (repeatable)")
    args = parser.parse_args()

    import grpc
    from connect import channel

    pb, pb_grpc = load_stubs()
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else None
    request = pb.SearchRequest(query=args.question, top_k=args.top_k, languages=args.language, explain=args.explain)
    for flag in args.filter:
        key, sep, values = flag.partition("=")
        if not sep:
            sys.exit(f"client: --filter {flag!r}: expected KEY=VALUE[,VALUE...]")
        request.filter.must.add(key=key.strip(), any_of=pb.StringList(values=[v.strip() for v in values.split(",")]))
    with channel(args.server) as ch:
        stub = pb_grpc.RetrievalStub(ch)
        try:
            response = stub.Search(request, timeout=30, metadata=metadata)
        except grpc.RpcError as err:
            sys.exit(f"client: {err.code().name}: {err.details()}")
    print(f"Q: {args.question} [{response.query_language}]")
    for p in response.passages:
        c = p.citation
        print(f"[{p.rank}] {p.score:.4f} {c.title} — {c.source} ({c.language}) chars {c.char_start}..{c.char_end}")
        if c.url:
            print(f"    {c.url}")
        print("    " + p.text.replace("\n", " ")[:300])
        if args.explain:
            e = p.explanation
            print(f"    dense {e.dense_score:.4f} (#{e.dense_rank}), lexical {e.lexical_score:.4f} (#{e.lexical_rank})")


if __name__ == "__main__":
    main()
