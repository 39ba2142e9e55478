#!/usr/bin/env bash
# Runs a command with a local Tor network up: starts `allium-testnet up`
# (the binary `cargo build` made), waits for its ready line, runs the command
# with ALLIUM_TEST_NETWORK set to the network file, and brings the network
# down afterwards: when the command ends, fails, or this script is
# interrupted.
#
# scripts/test.sh runs it inside the loopback-only namespace, so that the
# network and the tests share that namespace.
set -euo pipefail

bin="${CARGO_TARGET_DIR:-$HOME/.cache/allium/target}/debug/allium-testnet"
work=$(mktemp -d "${TMPDIR:-/tmp}/allium-testnet.XXXXXX")
up_pid=""

down() {
    local status=$?
    if [ -n "$up_pid" ]; then
        kill -TERM "$up_pid" 2>/dev/null || true
        wait "$up_pid" 2>/dev/null || true
    fi
    if [ "$status" -eq 0 ]; then
        rm -rf "$work"
    else
        echo "with-testnet: Tor logs kept in $work" >&2
    fi
    exit "$status"
}
trap down EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# `up` runs until the end of its stdin: we hold the other end of that pipe,
# so even if this script is killed outright, the network goes down with it.
coproc UP { exec "$bin" up --dir "$work/net" 2>"$work/up.log"; }
up_pid=$UP_PID

network=""
while IFS= read -r -t 300 line <&"${UP[0]}"; do
    case $line in
        "ready: "*) network=${line#ready: }; break ;;
    esac
done
if [ -z "$network" ]; then
    echo "with-testnet: the local Tor network did not start:" >&2
    tail -n 30 "$work/up.log" >&2
    exit 1
fi
echo "with-testnet: $(tail -n 1 "$work/up.log" | sed 's/^allium-testnet: //')" >&2

ALLIUM_TEST_NETWORK=$network ALLIUM_TEST_LOG_DIR=${ALLIUM_TEST_LOG_DIR:-$work/logs} "$@"
