#!/usr/bin/env python3
"""Validates deploy/ without a cluster, kubectl or network.

    .venv/bin/python deploy/validate.py [--metrics counter:wenda_x,histogram:wenda_y,...]
                                        [--wenda target/release/wenda] [--print KUSTOMIZATION]

1. Renders deploy/k8s/base and every deploy/k8s/overlays/*/ with the small
   part of kustomize those kustomizations use (resources, configMapGenerator,
   patches as JSON 6902 operations or as a strategic-merge `$patch: delete`
   of a whole resource, labels, images); any other kustomization key, or an
   option of these it does not implement, is an error rather than something
   silently skipped.
2. Validates every rendered resource with kubernetes-validate (PyPI; it ships
   the Kubernetes OpenAPI schemas, so nothing is fetched) in strict mode,
   where an unknown field is an error, against the minimum Kubernetes version
   deploy/README.md states and against the newest version the package knows.
3. Checks what a schema cannot see, in every rendered kustomization: the
   ports wenda listens on, the probes, the Services and the scrape
   annotations agree; no gRPC probe once wenda serves TLS (the kubelet's
   gRPC probes speak plaintext); TLS files and tokens come from read-only
   Secret mounts; and, with --wenda, every value in the wenda-config
   ConfigMap equals the default `wenda serve --help` and `wenda index --help`
   list, except the deliberate overrides named in OVERRIDES.
4. Checks deploy/grafana/wenda-dashboard.json: valid JSON, one Prometheus
   datasource variable, and, with --metrics, every wenda_* name in its
   queries is a metric wenda records (histograms only through their
   _bucket/_sum/_count series, counters and gauges never through them).

Prints one line per check passed; exits 1 on the first kind of failure with
every failure listed. The Rust test `deploy::manifests_and_dashboard_validate`
runs it with the metric names recorded in src/ and the real binary.
"""

import argparse
import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml

DEPLOY = Path(__file__).resolve().parent
K8S = DEPLOY / "k8s"
DASHBOARD = DEPLOY / "grafana" / "wenda-dashboard.json"

# The oldest Kubernetes the manifests are meant for (deploy/README.md says
# why: the Job's podReplacementPolicy is beta, and on by default, from 1.29).
MIN_KUBERNETES = "1.29"

# wenda-config values that deliberately differ from the binary's defaults.
OVERRIDES = {
    "WENDA_MODELS": "the model folder of the image (deploy/Dockerfile)",
    "WENDA_LOG_FORMAT": "JSON lines for the cluster's log collector",
}

WORKLOAD_KINDS = {"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job", "ReplicationController"}

failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL {message}")


class Unsupported(Exception):
    """A kustomization uses something this renderer does not implement."""


# --------------------------------------------------------------------------
# The kustomize subset


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def only_keys(mapping, allowed, where):
    if not isinstance(mapping, dict):
        raise Unsupported(f"{where}: expected a mapping, got {mapping!r}")
    extra = set(mapping) - set(allowed)
    if extra:
        raise Unsupported(f"{where}: {', '.join(sorted(extra))} not implemented by deploy/validate.py")


def render(directory):
    """The resources `kustomize build directory` would print, in order."""
    path = directory / "kustomization.yaml"
    docs = load_yaml_docs(path)
    if len(docs) != 1:
        raise Unsupported(f"{path}: expected one document")
    k = docs[0]
    only_keys(k, {"apiVersion", "kind", "resources", "configMapGenerator", "patches", "labels", "images"}, str(path))
    if k.get("apiVersion") != "kustomize.config.k8s.io/v1beta1" or k.get("kind") != "Kustomization":
        raise Unsupported(f"{path}: not a kustomize.config.k8s.io/v1beta1 Kustomization")

    resources = []
    for entry in k.get("resources", []):
        if "://" in entry:
            raise Unsupported(f"{path}: remote resource {entry}")
        target = (directory / entry).resolve()
        if target.is_dir():
            resources.extend(render(target))
        elif target.is_file():
            resources.extend(load_yaml_docs(target))
        else:
            raise Unsupported(f"{path}: resource {entry} does not exist")

    for gen in k.get("configMapGenerator", []):
        where = f"{path}: configMapGenerator {gen.get('name')}"
        only_keys(gen, {"name", "options", "literals"}, where)
        only_keys(gen.get("options", {}), {"disableNameSuffixHash"}, where + " options")
        if gen.get("options", {}).get("disableNameSuffixHash") is not True:
            raise Unsupported(f"{where}: the name hash suffix is not implemented (set disableNameSuffixHash)")
        data = {}
        for literal in gen.get("literals", []):
            key, sep, value = literal.partition("=")
            if not sep or not key:
                raise Unsupported(f"{where}: literal {literal!r} is not KEY=value")
            if value[:1] in ("'", '"'):
                raise Unsupported(f"{where}: quoted literal {literal!r}")
            if key in data:
                raise Unsupported(f"{where}: {key} twice")
            data[key] = value
        resources.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data})

    # kustomize's order of built-in transformers: patches, labels, images.
    for n, patch in enumerate(k.get("patches", [])):
        where = f"{path}: patches[{n}]"
        only_keys(patch, {"target", "patch", "path"}, where)
        target = patch.get("target")
        only_keys(target, {"kind", "name"}, where + " target")
        if any(re.search(r"[\\^$.*+?()\[\]{}|]", str(v)) for v in target.values()):
            raise Unsupported(f"{where}: regular expressions in a target")
        if ("patch" in patch) == ("path" in patch):
            raise Unsupported(f"{where}: give exactly one of patch and path")
        ops = yaml.safe_load(patch["patch"] if "patch" in patch else (directory / patch["path"]).read_text())
        matched = [r for r in resources if all(meta(r, key) == value for key, value in target.items())]
        if not matched:
            raise Unsupported(f"{where}: the target {target} matches no resource")
        if isinstance(ops, dict) and ops.get("$patch") == "delete":
            # The one strategic-merge patch implemented: drop the targets whole.
            only_keys(ops, {"$patch", "apiVersion", "kind", "metadata"}, where)
            only_keys(ops.get("metadata", {}), {"name"}, where + " metadata")
            for key in ("kind", "name"):
                if meta(ops, key) is not None and target.get(key) != meta(ops, key):
                    raise Unsupported(f"{where}: the delete patch names {key} {meta(ops, key)}, the target {target.get(key)}")
            resources = [r for r in resources if not any(r is m for m in matched)]
            continue
        if not isinstance(ops, list):
            raise Unsupported(f"{where}: strategic-merge patches other than `$patch: delete` are not implemented")
        for r in matched:
            for op in ops:
                json_patch(r, op, where)

    for n, labels in enumerate(k.get("labels", [])):
        where = f"{path}: labels[{n}]"
        only_keys(labels, {"pairs", "includeSelectors", "includeTemplates"}, where)
        if labels.get("includeSelectors"):
            raise Unsupported(f"{where}: includeSelectors: true is not implemented")
        for r in resources:
            r.setdefault("metadata", {}).setdefault("labels", {}).update(labels["pairs"])
            if labels.get("includeTemplates"):
                if r["kind"] == "CronJob":
                    raise Unsupported(f"{where}: templates of a CronJob")
                if r["kind"] in WORKLOAD_KINDS:
                    tmeta = r["spec"]["template"].setdefault("metadata", {})
                    tmeta.setdefault("labels", {}).update(labels["pairs"])

    for n, image in enumerate(k.get("images", [])):
        where = f"{path}: images[{n}]"
        only_keys(image, {"name", "newName", "newTag"}, where)
        for r in resources:
            if r["kind"] == "CronJob":
                raise Unsupported(f"{where}: images in a CronJob")
            for c in all_containers(r):
                name, tag = split_image(c["image"])
                if name == image["name"]:
                    new_tag = image.get("newTag", tag)
                    c["image"] = image.get("newName", name) + (f":{new_tag}" if new_tag else "")

    seen = set()
    for r in resources:
        ident = (r.get("kind"), meta(r, "name"))
        if ident in seen:
            raise Unsupported(f"{path}: {ident[0]}/{ident[1]} twice")
        seen.add(ident)
    return resources


def meta(resource, key):
    return resource.get("kind") if key == "kind" else resource.get("metadata", {}).get(key)


def split_image(image):
    if "@" in image:
        raise Unsupported(f"image digest in {image}")
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    return name, tag


def json_patch(doc, op, where):
    only_keys(op, {"op", "path", "value"}, where)
    if op["op"] not in ("add", "replace", "remove", "test"):
        raise Unsupported(f"{where}: JSON patch op {op['op']}")
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    if not parts:
        raise Unsupported(f"{where}: patching the whole document")
    parent = doc
    for p in parts[:-1]:
        parent = parent[int(p)] if isinstance(parent, list) else parent[p]
    last = parts[-1]
    value = copy.deepcopy(op.get("value"))
    if op["op"] == "test":
        # kustomize fails the build when a test op does not hold, and so do we.
        found = parent[int(last)] if isinstance(parent, list) else parent[last]
        if found != value:
            raise ValueError(f"{where}: test {op['path']}: found {found!r}, not {value!r}")
        return
    if isinstance(parent, list):
        if op["op"] == "add":
            parent.insert(len(parent) if last == "-" else int(last), value)
        elif op["op"] == "replace":
            parent[int(last)] = value
        else:
            del parent[int(last)]
    else:
        if op["op"] != "add" and last not in parent:
            raise Unsupported(f"{where}: {op['op']} {op['path']}: no such field")
        if op["op"] == "remove":
            del parent[last]
        else:
            parent[last] = value


# --------------------------------------------------------------------------
# Checks on rendered resources


def pod_spec(r):
    if r["kind"] in WORKLOAD_KINDS:
        return r["spec"]["template"]["spec"]
    if r["kind"] == "Pod":
        return r["spec"]
    return None


def all_containers(r):
    spec = pod_spec(r)
    if spec is None:
        return []
    return spec.get("initContainers", []) + spec.get("containers", [])


def flag_value(args, flag):
    for n, a in enumerate(args):
        if a == flag and n + 1 < len(args):
            return args[n + 1]
        if a.startswith(flag + "="):
            return a[len(flag) + 1:]
    return None


def setting(c, flag, env, config):
    """A wenda setting of container c: its flag, else its env, else wenda-config."""
    value = flag_value(c.get("args", []), flag)
    if value is None:
        for e in c.get("env", []):
            if e["name"] == env:
                value = e.get("value")
    if value is None:
        value = config.get(env)
    return value


def check_rendered(name, resources):
    config = next((r.get("data", {}) for r in resources if r["kind"] == "ConfigMap" and meta(r, "name") == "wenda-config"), {})
    problems = []
    pods = []
    for r in resources:
        spec = pod_spec(r)
        if spec is None:
            continue
        what = f"{r['kind']}/{meta(r, 'name')}"
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec.get("containers", []):
            args = c.get("args", [])
            if "command" in c or not args or args[0] != "serve":
                continue
            cw = f"{what} container {c['name']}"
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            pods.append((r["spec"]["template"]["metadata"].get("labels", {}), ports))
            listen = {}
            for key, flag, env in (("grpc", "--listen", "WENDA_LISTEN"),
                                   ("http", "--http-listen", "WENDA_HTTP_LISTEN"),
                                   ("metrics", "--metrics-listen", "WENDA_METRICS_LISTEN")):
                value = setting(c, flag, env, config)
                if value is None:
                    continue
                host, _, port = value.rpartition(":")
                if host != "0.0.0.0":
                    problems.append(f"{cw}: {flag} {value} must listen on 0.0.0.0 in a pod")
                listen[key] = int(port)
                if int(port) not in ports.values():
                    problems.append(f"{cw}: {flag} port {port} is not a containerPort")
            for port_name, number in ports.items():
                if number not in listen.values():
                    problems.append(f"{cw}: containerPort {port_name}={number} is no port wenda listens on")
            tls = setting(c, "--tls-cert", "WENDA_TLS_CERT", config) is not None
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                p = c.get(probe)
                if p is None:
                    problems.append(f"{cw}: no {probe}")
                elif "grpc" in p:
                    if tls:
                        problems.append(f"{cw}: {probe} is a gRPC probe, but the kubelet's gRPC probes cannot speak TLS")
                    if p["grpc"]["port"] != listen.get("grpc"):
                        problems.append(f"{cw}: {probe} probes port {p['grpc']['port']}, not the --listen port")
                elif "httpGet" in p:
                    port = p["httpGet"]["port"]
                    number = ports.get(port) if isinstance(port, str) else port
                    # The metrics listener answers 200 on any path: a probe there proves nothing.
                    if number != listen.get("http"):
                        problems.append(f"{cw}: {probe} probes port {port}, not the --http-listen port")
                    if p["httpGet"]["path"] not in ("/healthz", "/readyz"):
                        problems.append(f"{cw}: {probe} probes {p['httpGet']['path']}")
                    if probe == "readinessProbe" and p["httpGet"]["path"] != "/readyz":
                        problems.append(f"{cw}: readiness must be /readyz (ready once model and index are loaded)")
                else:
                    problems.append(f"{cw}: {probe} is neither a gRPC nor an HTTP probe")
            for flag, env in (("--tls-cert", "WENDA_TLS_CERT"), ("--tls-key", "WENDA_TLS_KEY"),
                              ("--tls-client-ca", "WENDA_TLS_CLIENT_CA"), ("--tokens-file", "WENDA_TOKENS_FILE")):
                file = setting(c, flag, env, config)
                if file is None:
                    continue
                mounts = [m for m in c.get("volumeMounts", []) if file.startswith(m["mountPath"].rstrip("/") + "/")]
                if not mounts:
                    problems.append(f"{cw}: {env} {file} is on no mounted volume")
                    continue
                m = max(mounts, key=lambda m: len(m["mountPath"]))
                if not m.get("readOnly") or "secret" not in volumes.get(m["name"], {}):
                    problems.append(f"{cw}: {env} {file} must come from a read-only Secret mount")
            if (setting(c, "--tls-cert", "WENDA_TLS_CERT", config) is None) != (setting(c, "--tls-key", "WENDA_TLS_KEY", config) is None):
                problems.append(f"{cw}: a TLS certificate without its key, or the reverse")
            annotations = r["spec"]["template"]["metadata"].get("annotations", {})
            if annotations.get("prometheus.io/scrape") == "true":
                if annotations.get("prometheus.io/port") != str(listen.get("metrics")):
                    problems.append(f"{cw}: prometheus.io/port {annotations.get('prometheus.io/port')} is not the --metrics-listen port")
                if annotations.get("prometheus.io/path", "/metrics") != "/metrics":
                    problems.append(f"{cw}: prometheus.io/path must be /metrics")
            elif "metrics" in listen:
                problems.append(f"{cw}: metrics are served but the pod has no prometheus.io/scrape annotation")
    for r in resources:
        if r["kind"] != "Service":
            continue
        what = f"Service/{meta(r, 'name')}"
        selector = r["spec"].get("selector", {})
        selected = [ports for labels, ports in pods if selector and all(labels.get(k) == v for k, v in selector.items())]
        if not selected:
            problems.append(f"{what}: selects no wenda server pod")
        for ports in selected:
            for p in r["spec"]["ports"]:
                target = p.get("targetPort", p["port"])
                number = ports.get(target) if isinstance(target, str) else target
                if number is None or number not in ports.values():
                    problems.append(f"{what}: port {p.get('name')} targets {target}, which the pods do not declare")
                elif number != p["port"]:
                    problems.append(f"{what}: port {p.get('name')} is {p['port']} but reaches container port {number}")
            if ports.get("metrics") in [ports.get(p.get("targetPort")) or p.get("targetPort") for p in r["spec"]["ports"]]:
                problems.append(f"{what}: exposes the metrics port; Prometheus scrapes the pods")
    for p in problems:
        fail(f"{name}: {p}")
    if not problems:
        print(f"ok   {name}: ports, probes, Services, scrape annotations, TLS and Secret mounts agree")


def help_defaults(wenda, sub):
    """{variable: default or None} from `wenda <sub> --help`."""
    text = subprocess.run([wenda, sub, "--help"], check=True, capture_output=True, text=True).stdout
    out = {}
    for block in re.split(r"\n(?=\s*(?:-\w, )?--[a-z])", text):
        env = re.search(r"\[env: (WENDA_[A-Z_]+)=", block)
        if env:
            default = re.search(r"\[default: ([^\]]*)\]", block)
            out[env.group(1)] = default.group(1) if default else None
    if "WENDA_DATA_DIR" not in out:
        raise SystemExit(f"unexpected `{wenda} {sub} --help`:\n{text}")
    return out


def check_config_defaults(name, resources, wenda):
    config = next((r.get("data", {}) for r in resources if r["kind"] == "ConfigMap" and meta(r, "name") == "wenda-config"), None)
    if config is None:
        fail(f"{name}: no ConfigMap wenda-config")
        return
    defaults = {sub: help_defaults(wenda, sub) for sub in ("serve", "index")}
    problems = []
    for key, value in config.items():
        for sub, known in defaults.items():
            if key not in known:
                problems.append(f"{key} is not a variable of `wenda {sub}` (the ConfigMap feeds both)")
            elif key in OVERRIDES:
                pass
            elif known[key] is None:
                problems.append(f"{key}={value}: `wenda {sub}` has no fixed default for it, so pinning it changes behaviour; "
                                f"remove it, or name it in OVERRIDES in deploy/validate.py with the reason")
            elif known[key] != value:
                problems.append(f"{key}={value}, but `wenda {sub}` defaults to {known[key]}; "
                                f"pin the default, or name it in OVERRIDES in deploy/validate.py with the reason")
    for p in sorted(set(problems)):
        fail(f"{name}: wenda-config: {p}")
    if not problems:
        pinned = ", ".join(f"{k}={v}" for k, v in config.items() if k not in OVERRIDES)
        print(f"ok   {name}: wenda-config pins the binary's defaults ({pinned}); overrides: {', '.join(sorted(OVERRIDES))}")


# --------------------------------------------------------------------------
# The Grafana dashboard


def parse_metrics(spec):
    """`type:name` or `name`, comma separated, into {name: type or None}."""
    out = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        kind, _, name = item.rpartition(":")
        if kind not in ("", "counter", "gauge", "histogram"):
            raise SystemExit(f"--metrics: unknown type {kind!r} in {item!r}")
        out[name] = kind or None
    return out


def panels_of(panels):
    for p in panels:
        yield p
        yield from panels_of(p.get("panels", []))


def check_dashboard(metrics):
    try:
        dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        fail(f"{DASHBOARD.relative_to(DEPLOY)}: {e}")
        return
    where = DASHBOARD.relative_to(DEPLOY)
    problems = []
    variables = dash.get("templating", {}).get("list", [])
    ds = [v for v in variables if v.get("type") == "datasource"]
    if len(ds) != 1 or ds[0].get("query") != "prometheus":
        problems.append("needs exactly one datasource variable of type prometheus")
    ds_ref = "${%s}" % ds[0]["name"] if ds else None
    if not isinstance(dash.get("schemaVersion"), int) or not dash.get("uid") or not dash.get("title"):
        problems.append("needs title, uid and an integer schemaVersion")

    queries = []  # (where, PromQL)
    for v in variables:
        if v.get("type") == "query":
            q = v.get("query")
            queries.append((f"variable {v['name']}", q.get("query") if isinstance(q, dict) else q))
            if v.get("datasource", {}).get("uid") != ds_ref:
                problems.append(f"variable {v['name']}: datasource must be {ds_ref}")
    ids = set()
    panels = list(panels_of(dash.get("panels", [])))
    for p in panels:
        if p.get("id") in ids:
            problems.append(f"panel id {p.get('id')} twice")
        ids.add(p.get("id"))
        if p.get("type") == "row":
            continue
        title = p.get("title", "?")
        if p.get("datasource", {}).get("uid") != ds_ref:
            problems.append(f"panel {title!r}: datasource must be {ds_ref}")
        if not p.get("targets"):
            problems.append(f"panel {title!r}: no queries")
        for t in p.get("targets", []):
            if not t.get("expr", "").strip():
                problems.append(f"panel {title!r}: empty query")
            if t.get("datasource", {}).get("uid") != ds_ref:
                problems.append(f"panel {title!r}: query datasource must be {ds_ref}")
            queries.append((f"panel {title!r}", t.get("expr", "")))

    used = set()
    for q_where, expr in queries:
        if "histogram_quantile" in expr and not re.search(r"by\s*\([^)]*\ble\b", expr):
            problems.append(f"{q_where}: histogram_quantile without `by (le, ...)`: {expr}")
        for token in re.findall(r"\bwenda_[a-z0-9_]+", expr):
            if metrics is None:
                used.add(token)
                continue
            base, suffix = token, ""
            if token not in metrics:
                m = re.fullmatch(r"(.+)(_bucket|_sum|_count)", token)
                if m and m.group(1) in metrics:
                    base, suffix = m.group(1), m.group(2)
                else:
                    problems.append(f"{q_where}: {token} is no metric wenda records")
                    continue
            kind = metrics[base]
            if kind == "histogram" and not suffix:
                problems.append(f"{q_where}: {token} is a histogram: use its _bucket, _sum or _count series")
            if kind in ("counter", "gauge") and suffix:
                problems.append(f"{q_where}: {token}: a {kind} has no {suffix} series")
            used.add(base)
    for p in problems:
        fail(f"{where}: {p}")
    if not problems:
        checked = "checked against --metrics" if metrics is not None else "NOT checked (no --metrics)"
        print(f"ok   {where}: {len(panels)} panels, {len(queries)} queries; metric names {checked}: {', '.join(sorted(used))}")
        if metrics is not None:
            unused = sorted(set(metrics) - used)
            if unused:
                print(f"note {where}: no panel shows {', '.join(unused)}")


# --------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", help="metric names wenda records, comma separated, each optionally typed "
                        "(counter:, gauge:, histogram:); without it the dashboard's names are listed, not checked")
    parser.add_argument("--wenda", help="the wenda binary, to check wenda-config against its defaults")
    parser.add_argument("--kubernetes", default=MIN_KUBERNETES,
                        help=f"the oldest Kubernetes version to validate against (default {MIN_KUBERNETES})")
    parser.add_argument("--print", metavar="KUSTOMIZATION", dest="print_only",
                        help="only render this kustomization directory as YAML, like `kubectl kustomize`")
    args = parser.parse_args()

    if args.print_only:
        yaml.safe_dump_all(render(Path(args.print_only).resolve()), sys.stdout, sort_keys=False)
        return 0

    versions = [args.kubernetes, kubernetes_validate.utils.major_minor(kubernetes_validate.latest_version())]
    kustomizations = [K8S / "base"] + sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
    for directory in kustomizations:
        name = str(directory.relative_to(DEPLOY))
        try:
            resources = render(directory)
        except (Unsupported, KeyError, IndexError, ValueError, TypeError) as e:
            fail(f"{name}: cannot render: {type(e).__name__}: {e}")
            continue
        for r in resources:
            what = f"{r.get('kind')}/{meta(r, 'name')}"
            ok = True
            for version in versions:
                try:
                    kubernetes_validate.validate(r, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    path = ".".join(str(p) for p in e.path)
                    fail(f"{name}: {what}: Kubernetes {version} (strict): {path}: {e.message}")
                    ok = False
                except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.utils.VersionNotSupportedError) as e:
                    fail(f"{name}: {what}: Kubernetes {version}: {getattr(e, 'message', e)}")
                    ok = False
            if ok:
                print(f"ok   {name}: {what} valid for Kubernetes {', '.join(versions)} (strict)")
        check_rendered(name, resources)
        if args.wenda:
            check_config_defaults(name, resources, args.wenda)

    check_dashboard(parse_metrics(args.metrics) if args.metrics is not None else None)

    if failures:
        print(f"\n{len(failures)} problem(s) in deploy/", file=sys.stderr)
        return 1
    print(f"all of deploy/ valid ({len(kustomizations)} kustomizations, kubernetes-validate "
          f"{kubernetes_validate.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
