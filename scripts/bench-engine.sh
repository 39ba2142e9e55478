#!/usr/bin/env bash
# Measures the app (engine, vault, Arti) beside raw Arti streams on a local
# Tor network and prints JSON (see benches/engine_tor.rs). Builds in release
# first, then runs inside a loopback-only network namespace, like the test
# suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/allium/target}"

cargo fetch --locked
# Also builds the `allium` binary, whose headless RSS the bench reads.
cargo bench -p allium --bench engine_tor --locked --offline --no-run

isolate() {
    local flags=(-n)
    [ "$(id -u)" -eq 0 ] || flags=(-r -n)
    unshare "${flags[@]}" -- sh -c 'ip link set lo up && exec "$@"' isolate "$@"
}
# The bench starts (and stops) its own network; cargo only runs the binary.
isolate cargo bench -p allium --bench engine_tor --locked --offline -- "$@"
