#!/usr/bin/env bash
# The CDC benchmark: a throwaway Postgres 15 (wal_level=logical, fsync off, synchronous_commit
# on, as the tests run it), then `weir bench-cdc` against it (release build), then the server is
# removed. Extra arguments go to `weir bench-cdc` (e.g. `--runs 3 --rows 200000`).
#
#   cargo build --release -p weir-runtime && bash tests/bench/cdc.sh
#
# initdb and postgres refuse to run as root: as root they run as the `postgres` user.
# To profile: WEIR_PROFILE=perfmap WEIR_WRAP="perf record -F 499 -o /tmp/perf.data --" bash tests/bench/cdc.sh
# (WEIR_WRAP prefixes the weir command; perfmap lets perf name the JIT-compiled guest code).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
weir="${WEIR_BIN:-$root/target/release/weir}"
bindir="$(pg_config --bindir 2>/dev/null || true)"
[ -x "$bindir/initdb" ] || bindir=/usr/lib/postgresql/15/bin
[ -x "$weir" ] || { echo "build first: cargo build --release -p weir-runtime" >&2; exit 1; }

dir="$(mktemp -d /tmp/weir-bench-pg.XXXXXX)"
as_pg=()
if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$dir"
    as_pg=(runuser -u postgres --)
fi
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

stop() {
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT

"${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
"${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start -o \
    "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c wal_level=logical \
     -c max_wal_senders=10 -c max_replication_slots=10 -c fsync=off -c synchronous_commit=on \
     -c shared_buffers=256MB -c max_wal_size=4GB" >/dev/null

echo "Postgres $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port; $(nproc) cores"
${WEIR_WRAP:-} "$weir" bench-cdc --host 127.0.0.1 --port "$port" --bindir "$bindir" "$@"
