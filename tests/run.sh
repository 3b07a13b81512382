#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need, builds the
# connector components (wasm32-wasip2) and the host, and runs the unit and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# The guest target: the runtime's build script compiles the connector components with it.
rustup target add wasm32-wasip2 >/dev/null

# Two cores: one test thread per core keeps the end-to-end tests (which start real processes)
# from starving each other.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"
cargo test --workspace --locked "$@"
