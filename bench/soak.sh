#!/usr/bin/env bash
# make soak: the real server under 4x-cores concurrency for 5 minutes
# (SOAK_SECONDS, SOAK_CONCURRENCY to change), with hostile clients beside the
# load (examples/abuse.rs): 2,000 idle connections and 20 connections that
# open every stream they may with GetDocument and never read. Passes when the
# only errors are RESOURCE_EXHAUSTED (load shedding), the server's RSS does
# not keep growing (last quarter within 10% of the second quarter), and its
# open descriptors stay under the connection cap plus the reserve.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SOAK_SECONDS:-300}
concurrency=${SOAK_CONCURRENCY:-$(( $(nproc) * 4 ))}
port=${SOAK_PORT:-50071}
data=$(mktemp -d)
log=$(mktemp)
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT

max_connections=${SOAK_MAX_CONNECTIONS:-512}
./target/release/wenda --log-format json serve --listen "127.0.0.1:$port" \
    --corpus ../shared/corpus --data-dir "$data" \
    --max-connections "$max_connections" --idle-timeout 60 2>"$log" &
pid=$!
for _ in $(seq 1 120); do
    if .venv/bin/grpcurl -plaintext -d '{"service":"wenda.v1.Retrieval"}' "127.0.0.1:$port" \
        grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"'; then
        break
    fi
    sleep 1
done

echo "soak: $concurrency clients for $seconds s against pid $pid, beside idle and slow-reading ones"
abuse_out=$(mktemp)
./target/release/examples/abuse --server "127.0.0.1:$port" --duration-secs "$seconds" >"$abuse_out" &
abuse=$!
result=$(./target/release/examples/load --server "http://127.0.0.1:$port" --concurrency "$concurrency" \
    --duration-secs "$seconds" --server-pid "$pid" --json)
wait "$abuse"
echo "$result"
echo "abuse: $(cat "$abuse_out")"
kill -TERM "$pid"
wait "$pid"

.venv/bin/python - "$result" "$max_connections" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
fd_bound = int(sys.argv[2]) + 256  # the cap plus FD_RESERVE (src/grpc/connections.rs)
bad = {k: v for k, v in r["errors"].items() if k != "ResourceExhausted"}
growth = r.get("server_rss_growth") or 1.0
print(f"soak: {r['requests_ok']} ok, {r['qps']:.1f} QPS, p99 {r['p99_ms']:.1f} ms, "
      f"errors {r['errors']}, RSS max {r['server_rss_max_mib']:.0f} MiB, growth {growth:.3f}")
if bad:
    sys.exit(f"soak: FAILED: unexpected errors {bad}")
if growth > 1.10:
    sys.exit(f"soak: FAILED: RSS grew {growth:.2f}x")
fds = r.get("server_fds_max") or 0
print(f"soak: server descriptors at most {fds} (bound {fd_bound})")
if fds > fd_bound:
    sys.exit(f"soak: FAILED: {fds} open descriptors, over {fd_bound}")
print("soak: passed")
PY
