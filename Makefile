# wenda: `make run` sets up, builds and serves the default corpus;
# `make test` sets up, builds and runs every test.

PYTHON  ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
CORPUS  ?= ../shared/corpus
DATA    ?= data
LISTEN  ?= 127.0.0.1:50051
HTTP_LISTEN ?= 127.0.0.1:8080
CARGO   ?= cargo
# One profile for everything: tests need the optimised tokenizer and model.
PROFILE := --release
STAMP   := $(VENV)/.installed-$(shell cat models/requirements.txt tests/requirements.txt | sha256sum | cut -c1-16)
# playwright-core for the browser test, from the npm registry by its lock file.
BROWSER_STAMP := tests/browser/node_modules/.installed-$(shell sha256sum tests/browser/package-lock.json | cut -c1-16)

.PHONY: setup run test build bench bench-store bench-perf bench-criterion soak eval clean fmt lint fuzz

setup: $(STAMP) $(BROWSER_STAMP)
	@$(VPY) models/provision.py
	@bash tests/browser/install-chromium.sh

$(STAMP): models/requirements.txt tests/requirements.txt
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@$(VPY) -m pip install --disable-pip-version-check -q -r tests/requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

$(BROWSER_STAMP): tests/browser/package-lock.json
	@cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build:
	$(CARGO) build $(PROFILE) --locked

run: setup build
	./target/release/wenda serve --corpus $(CORPUS) --data-dir $(DATA) --listen $(LISTEN) --http-listen $(HTTP_LISTEN)

# The default build (no features) is compiled too; the tests run with `otel`
# so the OTLP export test (tests/integration/otel.rs) runs. Then every fuzz
# target runs for 10 s from its saved seeds (`make fuzz` runs longer).
test: setup
	$(CARGO) build $(PROFILE) --locked
	WENDA_MODELS=$(CURDIR)/models WENDA_PYTHON=$(CURDIR)/$(VPY) WENDA_CORPUS_DIR=$(abspath $(CORPUS)) \
		$(CARGO) test $(PROFILE) --locked --features otel -- --test-threads=4
	$(MAKE) fuzz FUZZ_SECONDS=10 FUZZ_NICE=

eval: setup build
	./target/release/wenda eval --qa ../shared/eval/dev_qa.jsonl --corpus $(CORPUS) --data-dir $(DATA)-eval

bench: setup
	$(CARGO) build $(PROFILE) --locked --bin wenda --example embed_bench --example load
	$(VPY) bench/run.py $(BENCH_ARGS)

# The stores side by side: redb against PostgreSQL (a throwaway server),
# write throughput and write-to-visible latency (BENCHMARKS.md).
bench-store:
	bash bench/store.sh $(STORE_BENCH_ARGS)

# Where a question's CPU time goes, sampled by `perf` on the real server at
# one client: by library, by thread, wenda's hottest functions.
bench-perf:
	bash bench/perf.sh

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
	$(CARGO) build $(PROFILE) --locked --bin wenda --example load --example abuse
	bash bench/soak.sh

# Coverage-guided fuzzing (fuzz/, cargo-fuzz and libFuzzer; `make test` runs
# it for 10 s a target): each target in turn for FUZZ_SECONDS, from its saved seeds
# (fuzz/seeds/<target>, committed) copied into a scratch corpus
# (fuzz/corpus/<target>, ignored by git, grown by every run). Prints each
# target's executions, exec/s and coverage; a crash stops it, with the input
# saved in fuzz/artifacts/<target>/. On the stable toolchain: RUSTC_BOOTSTRAP
# lets cargo-fuzz pass rustc its -Z flags. One target: FUZZ_TARGETS=parse;
# more libFuzzer flags: FUZZ_ARGS=-jobs=2; only replay the corpus:
# FUZZ_ARGS=-runs=0. The first build takes about 8 minutes on 2 cores.
FUZZ_SECONDS   ?= 60
FUZZ_TARGETS   ?= parse chunk lexical validate lang
FUZZ_SANITIZER ?= none
FUZZ_ARGS      ?=
FUZZ_NICE      ?= nice -n 19
FUZZ_CARGO      = RUSTC_BOOTSTRAP=1 $(FUZZ_NICE) $(CARGO) fuzz
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	$(FUZZ_CARGO) build --sanitizer $(FUZZ_SANITIZER)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$t && cp -n fuzz/seeds/$$t/* fuzz/corpus/$$t/ 2>/dev/null; \
		echo "== $$t: $(FUZZ_SECONDS) s (log: fuzz/corpus/$$t.log)"; \
		if $(FUZZ_CARGO) run --sanitizer $(FUZZ_SANITIZER) $$t fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=25 -print_final_stats=1 $(FUZZ_ARGS) \
			> fuzz/corpus/$$t.log 2>&1; then \
			grep -E '^#[0-9]+\s+(INITED|DONE)|^Done [0-9]+ runs|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|slowest_unit_time_sec)' fuzz/corpus/$$t.log; \
		else \
			tail -n 60 fuzz/corpus/$$t.log; echo "fuzz target $$t failed; input in fuzz/artifacts/$$t/"; exit 1; \
		fi; \
	done
