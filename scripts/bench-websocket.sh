#!/usr/bin/env bash
# Benchmark (not a test): what MQTT over WebSocket costs against MQTT over TCP, against one
# mosquitto on loopback with a plain listener and a `protocol websockets` one, runs
# alternated so the machine's load falls on both alike:
# - memory: peak RSS (/usr/bin/time -v) of N idle connections (--connect-only, 8 s), over
#   TCP, over WebSocket, and over WebSocket with --aws-sigv4 (test keys in the environment);
# - instructions per message (valgrind's callgrind), 100 clients x 20 msg/s QoS 1 with
#   100-byte bodies, as scripts/bench-callgrind.sh counts them: (Ir(16s) - Ir(6s)) /
#   (acked(16s) - acked(6s)).
#
# usage: scripts/bench-websocket.sh [BIN]   (default: build target/release/mqload)
# Environment: N (900), ROUNDS (2).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "bench-websocket.sh: $*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
have mosquitto || install_missing mosquitto
have valgrind || install_missing valgrind
if [[ -n "${1:-}" ]]; then bin="$1"; else release_mqload; fi
n="${N:-900}"
rounds="${ROUNDS:-2}"
ulimit -n "$(ulimit -Hn)"

work="$(mktemp -d "${TMPDIR:-/tmp}/mqload-ws-bench.XXXXXX")"
ws_port=18951
tcp_port=18952
cat > "$work/mosquitto.conf" <<CONF
listener $ws_port 127.0.0.1
socket_domain ipv4
protocol websockets
listener $tcp_port 127.0.0.1
allow_anonymous true
max_connections -1
max_queued_messages 100000
set_tcp_nodelay true
CONF
"$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$work/mosquitto.conf" > "$work/mosquitto.out" 2>&1 &
mosquitto_pid=$!
trap 'kill "$mosquitto_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 0.5

export AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=example-secret AWS_REGION=eu-west-1
variants=("mqtt://127.0.0.1:$tcp_port" "ws://127.0.0.1:$ws_port/mqtt" "ws://127.0.0.1:$ws_port/mqtt --aws-sigv4")

echo "peak RSS of $n idle connections:"
for _ in $(seq "$rounds"); do
    for variant in "${variants[@]}"; do
        read -r url extra <<< "$variant"
        # shellcheck disable=SC2086  # $extra is zero or one flag
        /usr/bin/time -v "$bin" -H "$url" $extra -u "$n" -r 500 -t 8s --connect-only \
            --processes 1 --only-summary --client-id 'mem-{i}' \
            > "$work/out.txt" 2> "$work/err.txt" || true
        rss="$(awk '/Maximum resident/ { print $NF }' "$work/err.txt")"
        connected="$(grep -o 'Connections: [0-9]* connects[^,]*, [0-9]* failed' "$work/out.txt" || echo '?')"
        echo "  $variant: $rss KiB ($connected)"
    done
done

# One run under callgrind; prints "instructions acked".
measure() {
    local url="$1" run_time="$2"
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$bin" -H "$url" \
        -u 100 -r 100 --throughput 20 --qos 1 -t "$run_time" --payload-format raw \
        --payload-bytes 100 --processes 1 --only-summary --client-id 'cg-{i}' \
        --report-json "$work/cg.json" > "$work/cg.log" 2>&1 || true
    local ir acked
    ir="$(awk '/^summary:/ { print $2 }' "$work/cg.out")"
    acked="$(python3 -c 'import json, sys
rows = json.load(open(sys.argv[1]))["stats"]["rows"]
print(sum(r["num_requests"] - r["num_failures"] for r in rows if r["name"].startswith("publish")))' "$work/cg.json")"
    echo "$ir $acked"
}

echo "instructions per message:"
for _ in $(seq "$rounds"); do
    for url in "mqtt://127.0.0.1:$tcp_port" "ws://127.0.0.1:$ws_port/mqtt"; do
        read -r ir_long acked_long <<< "$(measure "$url" 16s)"
        read -r ir_short acked_short <<< "$(measure "$url" 6s)"
        awk -v u="$url" -v il="$ir_long" -v is="$ir_short" -v al="$acked_long" -v as="$acked_short" \
            'BEGIN { printf "  %s: %d acked (16 s), %d (6 s): %.0f instructions per message\n", u, al, as, (il - is) / (al - as) }'
    done
done
