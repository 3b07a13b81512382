#!/usr/bin/env bash
# The Postgres sink benchmark: N JSON records written through `postgres-sink` into a table, next
# to psql `COPY` of the same rows into an identical table, on one throwaway Postgres 15 (fsync
# off, synchronous_commit on, as the tests run it). Prints records/s, MB/s and the ratio.
#
#   cargo build --release -p weir-runtime && bash tests/bench/pgsink.sh [records] [value bytes]
#
# The records are first put into the topic by `file-source` (a separate weir run, not timed);
# the timed run is the sink alone, from its start until the table holds N rows (the process
# start, ~0.1 s, is inside the timing). It also times the two statement forms the sink could use,
# with psql: multi-row INSERT ... ON CONFLICT vs COPY into a staging table + INSERT ... SELECT
# ON CONFLICT, both on the same rows.
#
# PGSINK_CONFIG adds sink config lines, e.g. PGSINK_CONFIG=$'  insert.mode: upsert\n  pk.mode: record_value\n  pk.fields: id\n'
# (default: plain inserts, as COPY does). WEIR_BIN picks another weir binary.
#
# initdb and postgres refuse to run as root: as root they run as the `postgres` user.
set -euo pipefail

records="${1:-200000}"
value_bytes="${2:-100}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
weir="${WEIR_BIN:-$root/target/release/weir}"
bindir="$(pg_config --bindir 2>/dev/null || true)"
[ -x "$bindir/initdb" ] || bindir=/usr/lib/postgresql/15/bin
[ -x "$weir" ] || { echo "build first: cargo build --release -p weir-runtime" >&2; exit 1; }

dir="$(mktemp -d /tmp/weir-bench-pgsink.XXXXXX)"
chmod 755 "$dir"
as_pg=()
if [ "$(id -u)" = 0 ]; then
    mkdir "$dir/pg"
    chown postgres:postgres "$dir/pg"
    as_pg=(runuser -u postgres --)
else
    mkdir "$dir/pg"
fi
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
weir_pid=""

stop() {
    [ -n "$weir_pid" ] && kill "$weir_pid" 2>/dev/null || true
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT

"${as_pg[@]}" "$bindir/initdb" -D "$dir/pg/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
"${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/postgres.log" -w -t 60 start -o \
    "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir/pg -c fsync=off \
     -c synchronous_commit=on -c shared_buffers=256MB -c max_wal_size=4GB" >/dev/null
psql=(psql -h 127.0.0.1 -p "$port" -U postgres -X -q -A -t -v ON_ERROR_STOP=1)
"${psql[@]}" -c "CREATE DATABASE target"
columns="id bigint PRIMARY KEY, customer bigint, amount double precision, status text, note text"
"${psql[@]}" -d target -c "CREATE TABLE sunk ($columns); CREATE TABLE copied ($columns); \
    CREATE TABLE inserted ($columns); CREATE TABLE staged_into ($columns)"

# The same rows as JSON lines (for the sink) and CSV (for COPY).
mkdir -p "$dir/in"
python3 - "$records" "$value_bytes" "$dir/in/records.jsonl" "$dir/rows.csv" <<'EOF'
import csv, json, sys
records, value_bytes, jsonl, rows = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
with open(jsonl, "w") as out_json, open(rows, "w", newline="") as out_csv:
    writer = csv.writer(out_csv)
    for n in range(records):
        row = {"id": n, "customer": n % 997, "amount": n * 0.25, "status": ["new", "paid", "sent"][n % 3], "note": ""}
        pad = max(0, value_bytes - len(json.dumps(row, separators=(",", ":"))))
        row["note"] = "x" * pad
        out_json.write(json.dumps(row, separators=(",", ":")) + "\n")
        writer.writerow([row["id"], row["customer"], row["amount"], row["status"], row["note"]])
EOF
bytes="$(stat -c %s "$dir/in/records.jsonl")"

grant="grants:\n  postgres:\n    - host: 127.0.0.1\n      port: $port\n      database: target\n"
printf "name: load\nconnector.class: file-source\ntopic.creation.default.partitions: 1\nconfig:\n  topic: records\n  file: ./in/records.jsonl\ngrants:\n  filesystem:\n    - path: ./in\n      access: read-only\n" > "$dir/load.yaml"
printf "name: bench-sink\nconnector.class: postgres-sink\nconfig:\n  topics: records\n  database.hostname: 127.0.0.1\n  database.port: $port\n  database.user: postgres\n  database.dbname: target\n  table.name.format: sunk\n${PGSINK_CONFIG:-}$grant" > "$dir/sink.yaml"

wait_for() { # description, command printing a number, target
    local deadline=$((SECONDS + 600))
    until [ "$(eval "$2")" -ge "$3" ]; do
        [ $SECONDS -lt $deadline ] || { echo "timed out waiting for $1" >&2; exit 1; }
        kill -0 "$weir_pid" 2>/dev/null || { echo "weir exited while waiting for $1:" >&2; tail -5 "$dir"/*.err >&2; exit 1; }
        sleep 0.05
    done
}

# Load the topic (untimed): until file-source's records are all in the log.
(cd "$dir" && exec "$weir" run load.yaml --data-dir data --progress-interval 1 > load.out 2> load.err) &
weir_pid=$!
wait_for "the topic to be loaded" "(grep -o 'load in [0-9]*' '$dir/load.out' || echo 'load in 0') | tail -1 | awk '{print \$3}'" "$records"
# SIGTERM: a clean stop, the appended records durable.
kill "$weir_pid"; wait "$weir_pid" 2>/dev/null || true; weir_pid=""

count() { "${psql[@]}" -d target -c "SELECT count(*) FROM $1"; }
start=$(date +%s.%N)
(cd "$dir" && exec "$weir" run sink.yaml --data-dir data --progress-interval 0 > sink.out 2> sink.err) &
weir_pid=$!
wait_for "the sink to write every row" "count sunk" "$records"
sink_seconds=$(echo "$(date +%s.%N) - $start" | bc -l)
# CPU seconds weir spent (user + system), to tell its share from the server's.
weir_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$weir_pid/stat")
kill "$weir_pid"; wait "$weir_pid" 2>/dev/null || true; weir_pid=""

start=$(date +%s.%N)
"${psql[@]}" -d target -c "\\copy copied FROM '$dir/rows.csv' WITH (FORMAT csv)"
copy_seconds=$(echo "$(date +%s.%N) - $start" | bc -l)

# The two statement forms, 3000 rows each, as the sink would batch them.
python3 - "$dir/rows.csv" "$dir/inserts.sql" "$dir/staged.sql" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
def lit(text): return "'" + text.replace("'", "''") + "'"
with open(sys.argv[2], "w") as inserts, open(sys.argv[3], "w") as staged:
    staged.write("CREATE TEMP TABLE stage (LIKE staged_into);\n")
    for start in range(0, len(rows), 3000):
        chunk = rows[start:start + 3000]
        values = ",".join("(" + ",".join(lit(value) for value in row) + ")" for row in chunk)
        inserts.write("BEGIN; INSERT INTO inserted VALUES " + values +
                      " ON CONFLICT (id) DO UPDATE SET customer = EXCLUDED.customer, amount = EXCLUDED.amount, "
                      "status = EXCLUDED.status, note = EXCLUDED.note; COMMIT;\n")
        staged.write("BEGIN; COPY stage FROM STDIN WITH (FORMAT csv);\n")
        writer = csv.writer(staged, lineterminator="\n")
        writer.writerows(chunk)
        staged.write("\\.\nINSERT INTO staged_into SELECT * FROM stage ON CONFLICT (id) DO UPDATE SET "
                     "customer = EXCLUDED.customer, amount = EXCLUDED.amount, status = EXCLUDED.status, "
                     "note = EXCLUDED.note; TRUNCATE stage; COMMIT;\n")
EOF
start=$(date +%s.%N)
"${psql[@]}" -d target -f "$dir/inserts.sql" > /dev/null
insert_seconds=$(echo "$(date +%s.%N) - $start" | bc -l)
start=$(date +%s.%N)
"${psql[@]}" -d target -f "$dir/staged.sql" > /dev/null
staged_seconds=$(echo "$(date +%s.%N) - $start" | bc -l)

for table in sunk copied inserted staged_into; do
    [ "$(count $table)" = "$records" ] || { echo "$table holds $(count $table) rows, not $records" >&2; exit 1; }
done
echo "Postgres $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port; $(nproc) cores; $records records of ~$value_bytes B ($bytes B of JSON)"
python3 - "$records" "$bytes" "$sink_seconds" "$copy_seconds" "$insert_seconds" "$staged_seconds" "$weir_cpu" <<'EOF'
import sys
records, size = int(sys.argv[1]), int(sys.argv[2])
sink, copy, insert, staged, weir_cpu = map(float, sys.argv[3:8])
def line(name, seconds):
    print(f"{name:<58} {seconds:7.2f} s {records / seconds:10.0f} records/s {size / seconds / 1e6:7.1f} MB/s")
line("postgres-sink (weir run, topic -> table)", sink)
line("psql \\copy (CSV, one COPY)", copy)
line("psql multi-row INSERT ... ON CONFLICT, 3000 rows/txn", insert)
line("psql COPY into staging + INSERT ... SELECT ON CONFLICT", staged)
print(f"ratio postgres-sink / psql COPY: {copy / sink:.2f} (target >= 0.8); weir used {weir_cpu:.2f} CPU s of the sink's {sink:.2f} s")
print(f"ratio multi-row INSERT / staged COPY (statement forms): {staged / insert:.2f}")
EOF
