# wenda: `make run` sets up, builds and serves the default corpus;
# `make test` sets up, builds and runs every test.

PYTHON  ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
CORPUS  ?= ../shared/corpus
DATA    ?= data
LISTEN  ?= 127.0.0.1:50051
CARGO   ?= cargo
# One profile for everything: tests need the optimised tokenizer and model.
PROFILE := --release
STAMP   := $(VENV)/.installed-$(shell cat models/requirements.txt tests/requirements.txt | sha256sum | cut -c1-16)

.PHONY: setup run test build bench bench-criterion soak eval clean fmt lint

setup: $(STAMP)
	@$(VPY) models/provision.py

$(STAMP): models/requirements.txt tests/requirements.txt
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@$(VPY) -m pip install --disable-pip-version-check -q -r tests/requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

build:
	$(CARGO) build $(PROFILE) --locked

run: setup build
	./target/release/wenda serve --corpus $(CORPUS) --data-dir $(DATA) --listen $(LISTEN)

# The default build (no features) is compiled too; the tests run with `otel`
# so the OTLP export test (tests/integration/otel.rs) runs.
test: setup
	$(CARGO) build $(PROFILE) --locked
	WENDA_MODELS=$(CURDIR)/models WENDA_PYTHON=$(CURDIR)/$(VPY) WENDA_CORPUS_DIR=$(abspath $(CORPUS)) \
		$(CARGO) test $(PROFILE) --locked --features otel -- --test-threads=4

eval: setup build
	./target/release/wenda eval --qa ../shared/eval/dev_qa.jsonl --corpus $(CORPUS) --data-dir $(DATA)-eval

bench: setup
	$(CARGO) build $(PROFILE) --locked --bin wenda --example embed_bench --example load
	$(VPY) bench/run.py $(BENCH_ARGS)

# Criterion micro-benchmarks (benches/; a few minutes on 2 cores; not part of
# `make test`). One bench: BENCHES="--bench index"; a filter or Criterion
# flags: CRITERION_ARGS="hnsw --save-baseline before".
BENCHES ?= --bench ingest --bench embed --bench index --bench lexical --bench rank --bench search
bench-criterion: setup
	WENDA_MODELS=$(CURDIR)/models WENDA_CORPUS_DIR=$(abspath $(CORPUS)) \
		$(CARGO) bench --locked $(BENCHES) -- $(CRITERION_ARGS)

# Formatting and clippy on every target and feature, warnings as errors
# (the [lints] table in Cargo.toml adds to clippy's defaults). CI runs it
# before the tests.
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy $(PROFILE) --locked --all-targets --all-features -- -D warnings

clean:
	rm -rf target $(DATA) $(DATA)-eval

# 5 minutes of 4x-cores concurrent Search against the real server (not in CI).
soak: setup
	$(CARGO) build $(PROFILE) --locked --bin wenda --example load
	bash bench/soak.sh
