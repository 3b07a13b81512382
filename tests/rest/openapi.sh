#!/usr/bin/env bash
# The OpenAPI document tells the truth: schemathesis (PyPI) generates requests from weir's own
# /openapi.json, valid and invalid, sends them to a running `weir run`, and checks every answer
# against the document (status codes, bodies, content types, headers, what is accepted and what
# refused). Bounded: a fixed number of examples per operation.
#
# Usage: tests/rest/openapi.sh [WEIR_BINARY] [MAX_EXAMPLES]
set -euo pipefail
cd "$(dirname "$0")/../.."

weir="${1:-target/debug/weir}"
examples="${2:-${WEIR_OPENAPI_EXAMPLES:-30}}"
if ! python3 -c 'import schemathesis' >/dev/null 2>&1; then
    python3 -m pip install -q schemathesis==4.32.5
fi

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$weir" run --data-dir "$work/data" --rest-listen "127.0.0.1:$port" --progress-interval 0 >"$work/weir.log" 2>&1 &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "openapi.sh: weir exited before serving:" >&2
        cat "$work/weir.log" >&2
        exit 1
    fi
    sleep 0.1
done

# A connector for the read-only operations to find (tests/rest/schemathesis.toml names it): a
# PAUSED datagen has a task, a config and offsets, and writes nothing while the run lasts.
curl -fsS -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$port/connectors" -d '{
    "name": "seeded",
    "config": {"connector.class": "datagen", "topic": "seeded", "iterations": "0", "max.interval": "20"},
    "initial_state": "PAUSED"
}' >/dev/null

status=0
schemathesis --config-file tests/rest/schemathesis.toml run "http://127.0.0.1:$port/openapi.json" \
    --checks all --max-examples "$examples" --seed "${WEIR_OPENAPI_SEED:-1}" --no-color || status=$?
if [ "$status" -ne 0 ]; then
    echo "openapi.sh: schemathesis found failures (weir's log: last 40 lines)" >&2
    tail -n 40 "$work/weir.log" >&2
fi
exit "$status"
