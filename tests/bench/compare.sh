#!/usr/bin/env bash
# Before/after: two release builds of weir, benchmarked interleaved in one script so the machine's
# drift hits both alike. For each round: `weir bench` (datagen -> log -> blackhole, WASM and
# native, 100 B and 1 KiB) and the CDC benchmark (tests/bench/cdc.sh, one run each) with the old
# binary, then with the new one. Prints every figure and, per figure, the medians and new/old.
#
#   bash tests/bench/compare.sh OLD_WEIR NEW_WEIR [ROUNDS]
#
# Build the two binaries in separate target directories (CARGO_TARGET_DIR). Cargo names the
# artifacts of workspace crates by their path inside the workspace, so a second worktree built in
# the same target directory reuses every artifact whose sources are older than it: an "old"
# binary built after the new one in one target directory comes out part new.
set -euo pipefail

old="$1"
new="$2"
rounds="${3:-5}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$(mktemp -d /tmp/weir-compare.XXXXXX)"
echo "results in $out (the runs' stderr in $out/stderr)"

for round in $(seq 1 "$rounds"); do
    for side in old new; do
        bin="$old"
        [ "$side" = new ] && bin="$new"
        # mode, value size, records/s, and the wasm/native ratio on wasm lines.
        # Wall-clock rates swing with whatever else the machine runs; CPU time (user + system)
        # for the same work swings much less, so both are reported: records (changes) per CPU
        # second beside records (changes) per second.
        /usr/bin/time -f "%U %S" -o "$out/time" "$bin" bench --runs 1 --records 500000 2>>"$out/stderr" \
            | awk -v side="$side" '$1 == "wasm" || $1 == "native" { print side, "bench-" $1 "-" $2, $3; if ($1 == "wasm") print side, "ratio-" $2, $5 }' \
            >> "$out/figures"
        # 500,000 records in each of the four runs (wasm and native, 100 B and 1 KiB).
        awk -v side="$side" '{ print side, "bench-records-per-cpu-s", 2000000 / ($1 + $2) }' "$out/time" >> "$out/figures"
        # That CPU time includes what each run's worker spends before its first record (compiling
        # every built-in component, ~3 CPU-s): the same four runs of 1,000 records measure it, and
        # the difference is the data path's own CPU for 4 x 499,000 records.
        /usr/bin/time -f "%U %S" -o "$out/time-fixed" "$bin" bench --runs 1 --records 1000 >/dev/null 2>&1
        paste -d' ' "$out/time" "$out/time-fixed" \
            | awk -v side="$side" '{ print side, "bench-records-per-net-cpu-s", 1996000 / ($1 + $2 - $3 - $4) }' >> "$out/figures"
        WEIR_BIN="$bin" bash "$root/tests/bench/cdc.sh" --runs 1 --rows 500000 --latency-seconds 5 2>>"$out/stderr" \
            | awk -v side="$side" '
                /^1M|^[0-9]+ inserts|one transaction/ { print side, "cdc-inserts", $(NF-2); workload = "inserts" }
                /pgbench/ { print side, "cdc-pgbench", $(NF-2); workload = "pgbench" }
                /CPU per change/ { print side, "cdc-" workload "-changes-per-cpu-s", 1000000 / $(NF-4) }
                /^snapshot:/ { print side, "cdc-snapshot", $4 }' \
            >> "$out/figures"
        echo "round $round $side done" >&2
    done
done

python3 - "$out/figures" <<'PY'
import statistics, sys
figures = {}
for line in open(sys.argv[1]):
    side, name, value = line.split()
    figures.setdefault(name, {}).setdefault(side, []).append(float(value))
print(f"{'figure':<22} {'old median':>12} {'new median':>12} {'new/old':>8}   runs old | new")
for name in sorted(figures):
    old, new = figures[name].get("old", []), figures[name].get("new", [])
    if not old or not new:
        continue
    mo, mn = statistics.median(old), statistics.median(new)
    print(f"{name:<22} {mo:>12.3f} {mn:>12.3f} {mn / mo:>8.3f}   {' '.join(f'{v:.0f}' for v in old)} | {' '.join(f'{v:.0f}' for v in new)}")
PY
