#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, and every test of every crate.
#
# Crates are fetched first (the only step that uses the network); the tests
# then run inside a network namespace that has nothing but a loopback
# interface, so no test can reach the public Tor network, or anything else,
# even by mistake. Inside it, a local Tor network (C tor authorities and
# relays on 127.0.0.1, see testnet/) runs for the whole `cargo test`, and
# ALLIUM_TEST_NETWORK names its network file.
set -euo pipefail
cd "$(dirname "$0")/.."

# A target directory outside the clone, so repeated runs (and CI) build
# incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/allium/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

cargo fetch --locked
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked --offline -- -D warnings
cargo build --workspace --all-targets --locked --offline

# Loopback only from here on. As root, a plain network namespace; otherwise a
# user namespace maps us to root inside it first. Everything inside runs in
# that one namespace.
isolate() {
    local flags=(-n)
    [ "$(id -u)" -eq 0 ] || flags=(-r -n)
    unshare "${flags[@]}" -- sh -c 'ip link set lo up && exec "$@"' isolate "$@"
}
isolate scripts/with-testnet.sh cargo test --workspace --locked --offline
