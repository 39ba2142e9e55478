#!/usr/bin/env bash
# Measures Arti (through allium-onion) beside C tor on a local Tor network and
# prints JSON (see onion/benches/network.rs). Builds in release first, then
# runs inside a loopback-only network namespace, like the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/allium/target}"

cargo fetch --locked
cargo bench -p allium-onion --bench network --locked --offline --no-run

isolate() {
    local flags=(-n)
    [ "$(id -u)" -eq 0 ] || flags=(-r -n)
    unshare "${flags[@]}" -- sh -c 'ip link set lo up && exec "$@"' isolate "$@"
}
# The bench starts (and stops) its own network; cargo only runs the binary.
isolate cargo bench -p allium-onion --bench network --locked --offline -- "$@"
