#!/usr/bin/env bash
# The store benchmark (examples/store_bench.rs) against a throwaway
# PostgreSQL server with its default durability (fsync and synchronous
# commit on, as redb fsyncs each commit): initdb into a temporary
# directory, run, stop. As root, PostgreSQL runs as the postgres user.
#   bash bench/store.sh [--writes N] [--passages P]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)"; exit 1; }
work=$(mktemp -d)
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres "$work"; as_pg=(runuser -u postgres --); fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$bin/initdb" -D "$work/data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
"${as_pg[@]}" "$bin/pg_ctl" -D "$work/data" -l "$work/log" -w \
  -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work" start >/dev/null
trap '"${as_pg[@]}" "$bin/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null; rm -rf "$work"' EXIT
cargo build --release --locked --example store_bench
target/release/examples/store_bench --postgres "postgres://postgres@127.0.0.1:$port/postgres" "$@"
