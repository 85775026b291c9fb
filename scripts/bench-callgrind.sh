#!/usr/bin/env bash
# Benchmark (not a test): instructions per message, counted by valgrind's callgrind, so the
# figure does not depend on what else this shared machine runs. The release mqload runs
# under callgrind with `--processes 1`, CLIENTS clients x RATE msg/s QoS 1 over TLS against
# a `mqload broker` in its own process (not under callgrind), once for LONG and once for
# SHORT; instructions per message = (Ir(LONG) - Ir(SHORT)) / (acked(LONG) - acked(SHORT)),
# so the connects, handshakes and start-up cancel out. "acked" is the publish row's request
# count in mqload's JSON (QoS 1: a request is a PUBACKed publish). It also prints the engine's
# own share the same way: the self cost of `mqload::engine::*` functions plus
# `Transport::read` (callgrind_annotate, inlined code counted where it was inlined).
#
# usage: scripts/bench-callgrind.sh [BIN...]   (default: build target/release/mqload)
# Environment: CLIENTS (100), RATE (20), LONG (16s), SHORT (6s).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "bench-callgrind.sh: $*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
have valgrind || install_missing valgrind
have python3 || install_missing python3

clients="${CLIENTS:-100}"
rate="${RATE:-20}"
long="${LONG:-16s}"
short="${SHORT:-6s}"
bins=("$@")
if (( ${#bins[@]} == 0 )); then
    release_mqload
    bins=("$bin")
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/mqload-callgrind.XXXXXX")"
broker_pid=""
# shellcheck disable=SC2317  # reached through the trap
cleanup() {
    if [[ -n "$broker_pid" ]]; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# mqload's own JSON report is --report-json since --json took Locust's meaning; the
# previous release (28d35e8) still calls it --json.
report_json_flag() { if "$1" --help 2>/dev/null | grep -q -- '--report-json'; then echo --report-json; else echo --json; fi; }

# Self cost of the engine's functions in one callgrind output.
engine_self() {
    callgrind_annotate --auto=no --threshold=100 "$1" 2>/dev/null | awk '
        /:mqload::engine::/ || /:mqload::net::transport::Transport::read( |$)/ {
            gsub(",", "", $1); sum += $1 }
        END { printf "%d\n", sum }'
}

# One run under callgrind; prints "instructions acked engine-instructions".
measure() {
    local bin="$1" run_time="$2" tag="$3" port="$4"
    local out="$work/$tag.callgrind" json="$work/$tag.json"
    timeout --signal=INT --kill-after=30 600 valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$bin" --host 127.0.0.1 --port "$port" --cafile "$work/pki/ca.pem" \
        --cert "$work/pki/client.pem" --key "$work/pki/client.key" \
        -u "$clients" -r "$clients" --throughput "$rate" --qos 1 -t "$run_time" \
        --payload-format raw --payload-bytes 100 --processes 1 --headless --only-summary \
        "$(report_json_flag "$bin")" "$json" > "$work/$tag.log" 2>&1 || die "$tag: mqload failed: $(grep -v "^==" "$work/$tag.log" | tail -5)"
    local ir acked
    ir="$(awk '/^summary:/ { print $2 }' "$out")"
    acked="$(python3 -c 'import json, sys
rows = json.load(open(sys.argv[1]))["stats"]["rows"]
print(sum(r["num_requests"] - r["num_failures"] for r in rows if r["name"].startswith("publish")))' "$json")"
    echo "$ir $acked $(engine_self "$out")"
}

for bin in "${bins[@]}"; do
    [[ -x "$bin" ]] || die "no binary at $bin"
    rm -rf "$work/pki"
    mkdir -p "$work/pki"
    "$bin" broker --port 0 --pki-out "$work/pki" -t 900s > "$work/broker.out" 2>&1 &
    broker_pid=$!
    port=""
    for _ in $(seq 100); do
        port="$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/broker.out")"
        [[ -n "$port" ]] && break
        sleep 0.1
    done
    [[ -n "$port" ]] || die "mqload broker did not start: $(cat "$work/broker.out")"
    # A failed run (its `die` ends only the subshell) stops the benchmark here.
    long_out="$(measure "$bin" "$long" long "$port")" || exit 1
    short_out="$(measure "$bin" "$short" short "$port")" || exit 1
    read -r ir_long acked_long engine_long <<< "$long_out"
    read -r ir_short acked_short engine_short <<< "$short_out"
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=""
    awk -v b="$bin" -v il="$ir_long" -v is="$ir_short" -v al="$acked_long" -v as="$acked_short" \
        -v l="$long" -v s="$short" -v el="$engine_long" -v es="$engine_short" 'BEGIN {
        printf "%s: %s run %d instructions, %d acked; %s run %d, %d acked; ", b, l, il, al, s, is, as
        if (al > as) printf "%.0f instructions per message (engine'"'"'s own %.0f)\n", (il - is) / (al - as), (el - es) / (al - as)
        else print "no difference in messages"
    }'
done
