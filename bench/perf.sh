#!/usr/bin/env bash
# Where a question's CPU time goes, by `perf`: the real server over the
# default corpus (persisted in a temporary data directory, query cache off),
# one client sending the dev questions over gRPC, sampled with `perf record`
# for 8 s; the shares by library (ONNX Runtime, wenda's own code, kernel,
# libc), by thread (embedder workers, tokio's), and wenda's hottest
# functions. Needs Linux `perf` and perf_event_paranoid ≤ 1 (or root).
#   bash bench/perf.sh [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=8
[ "${1:-}" = --seconds ] && seconds=$2
command -v perf >/dev/null || { echo "perf is not installed (Debian: linux-perf)"; exit 1; }
cargo build --release --locked --bin wenda --example load
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
corpus=${WENDA_CORPUS_DIR:-../shared/corpus}
target/release/wenda serve --corpus "$corpus" --data-dir "$work/data" --listen "127.0.0.1:$port" \
  --query-cache 0 >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
until grep -q '"serving"\|serving' "$work/server.log"; do
  kill -0 $server 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done
load=(target/release/examples/load --server "http://127.0.0.1:$port" --concurrency 1)
"${load[@]}" --duration-secs 2 >/dev/null   # warm-up
perf record -F 999 -g -p $server -o "$work/perf.data" -- sleep "$seconds" >/dev/null 2>&1 &
recorder=$!
sleep 0.3
"${load[@]}" --duration-secs $((seconds - 1)) | tail -2
wait $recorder
report() { perf report -i "$work/perf.data" --no-children --stdio -g none "$@" 2>/dev/null | grep -v '^#' | grep -v '^$'; }
echo; echo "by library:"; report --sort dso | head -6
echo; echo "by thread:"; report --sort comm | head -4
echo; echo "wenda's own code, hottest functions:"; report --sort dso,sym | grep ' wenda ' | head -12
