"""Checks wenda's /openapi.json against the server that serves it.

Run by tests/integration/http.rs against a real server on port 0:

    python tests/http/check_openapi.py --url http://127.0.0.1:PORT \
        --read-token R --admin-token A

1. The document is valid OpenAPI 3.1 (openapi-spec-validator).
2. Every operation it lists is called with the document's own examples
   (writes first, deletes last) and answers 200 with a body that validates
   against the documented schema (JSON Schema 2020-12, jsonschema) or the
   documented media type.
3. Every operation that needs a token answers 401 without one, with a body
   that validates against the documented Error schema; so does a bad request.
4. A method a path does not list answers 405, and a path the document does
   not list answers 404: nothing is served that is not described.

Prints one line per check; exits 1 at the first failure.
"""

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

METHODS = ("get", "post", "put", "patch", "delete")


def fail(message):
    print(f"FAIL {message}")
    sys.exit(1)


def call(base, method, path, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method.upper())
    if data is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get("content-type", ""), response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("content-type", ""), err.read()


def check_body(spec, what, content, media, raw):
    declared = next(iter(content))
    if not media.startswith(declared.split(";")[0]):
        fail(f"{what}: content-type {media!r}, documented {declared!r}")
    if not declared.startswith("application/json"):
        return
    body = json.loads(raw)
    # The schema's $refs point into the document: validate against a root
    # that holds the components beside the schema itself.
    root = dict(content[declared]["schema"], components=spec["components"])
    errors = sorted(Draft202012Validator(root).iter_errors(body), key=str)
    if errors:
        fail(f"{what}: the body does not match its schema: {errors[0].message} "
             f"at {list(errors[0].absolute_path)}")


def operations(spec):
    ops = [(path, method, op) for path, item in spec["paths"].items()
           for method, op in item.items() if method in METHODS]
    # Ingest first so the example document exists; deletes last.
    order = {"post": 0, "get": 1, "delete": 2}
    return sorted(ops, key=lambda o: (order.get(o[1], 1), o[0]))


def fill(path, op):
    query = {}
    for param in op.get("parameters", []):
        value = str(param["example"])
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", urllib.parse.quote(value, safe=""))
        elif value:
            query[param["name"]] = value
    return path + ("?" + urllib.parse.urlencode(query) if query else "")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--read-token", required=True)
    parser.add_argument("--admin-token", required=True)
    args = parser.parse_args()
    base = args.url.rstrip("/")

    status, media, raw = call(base, "get", "/openapi.json")
    if status != 200 or not media.startswith("application/json"):
        fail(f"/openapi.json: {status} {media}")
    spec = json.loads(raw)
    validate(spec)
    print(f"ok   valid OpenAPI {spec['openapi']}: {len(spec['paths'])} paths")

    tokens = {"none": None, "read": args.read_token, "admin": args.admin_token}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, method, op in operations(spec):
        what = f"{method.upper()} {path}"
        target = fill(path, op)
        body = None
        if "requestBody" in op:
            body = op["requestBody"]["content"]["application/json"].get("example")
            if body is None:
                fail(f"{what}: the request body has no example")
        role = op.get("x-wenda-role")
        if role not in tokens:
            fail(f"{what}: x-wenda-role is {role!r}")
        status, media, raw = call(base, method, target, tokens[role], body)
        if status != 200:
            fail(f"{what}: {status} {raw[:300]!r}")
        check_body(spec, what, op["responses"]["200"]["content"], media, raw)
        print(f"ok   {what}: 200, matches its schema")
        if role != "none":
            status, media, raw = call(base, method, target, None, body)
            if status != 401:
                fail(f"{what} without a token: {status}, expected 401")
            check_body(spec, f"{what} without a token", error, media, raw)
            print(f"ok   {what} without a token: 401, an Error body")

    status, media, raw = call(base, "post", "/v1/search", args.read_token, {"topK": 3})
    if status != 400:
        fail(f"a search without a query: {status}, expected 400")
    check_body(spec, "a search without a query", error, media, raw)
    print("ok   a bad request: 400, an Error body")

    for path, item in spec["paths"].items():
        for method in ("put", "patch"):
            if method not in item:
                status, _, _ = call(base, method, fill(path, item.get("get", item.get("post", {}))))
                if status != 405:
                    fail(f"{method.upper()} {path}: {status}, expected 405")
    status, _, _ = call(base, "get", "/v1/not-described")
    if status != 404:
        fail(f"an undescribed path: {status}, expected 404")
    print("ok   undescribed methods answer 405 and undescribed paths 404")


if __name__ == "__main__":
    main()
