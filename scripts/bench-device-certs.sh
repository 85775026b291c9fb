#!/usr/bin/env bash
# Benchmark (not a test): mqload's peak RSS holding USERS TLS connections when each device
# presents its own certificate (--cert/--key templates, files read at each handshake) and
# when all share one, alternated twice, against the built-in broker run alone
# (`mqload broker`, client certificates required from the devices' CA).
#
# usage: scripts/bench-device-certs.sh [USERS]   (default 10000; the open-file limit must allow it)
# Environment: MQLOAD_BIN=path (default target/release/mqload, built if missing);
# CONNECT_ONLY=1 holds the connections with keep-alive pings only (no publishes).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
users="${1:-10000}"
bin="${MQLOAD_BIN:-target/release/mqload}"
[[ -x "$bin" ]] || cargo build --release --bin mqload
dir="$(mktemp -d)"
broker_pid=""
cleanup() { [[ -n "$broker_pid" ]] && kill "$broker_pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

"$bin" pki devices "$users" --out "$dir/fleet" >/dev/null
# The broker's certificate, signed by the devices' CA (which then serves as --cafile too).
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/server.key" -out "$dir/server.csr" -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n' >"$dir/ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/fleet/device_ca.pem" \
    -CAkey "$dir/fleet/device_ca.key" -CAcreateserial -days 1 -extfile "$dir/ext" \
    -out "$dir/server.crt" 2>/dev/null
"$bin" broker --port 0 --tls-cert "$dir/server.crt" --tls-key "$dir/server.key" \
    --cafile "$dir/fleet/device_ca.pem" --run-time 30m >"$dir/broker.out" 2>&1 &
broker_pid=$!
for _ in $(seq 100); do grep -qs "listening on" "$dir/broker.out" && break; sleep 0.1; done
port="$(grep -o 'listening on [^ ]*' "$dir/broker.out" | head -1 | sed 's/.*://')"
[[ -n "$port" ]] || { cat "$dir/broker.out"; exit 1; }

run() {
    local mode="$1" cert key
    if [[ "$mode" == per-device ]]; then
        cert="$dir/fleet/device-{i}.pem.crt" key="$dir/fleet/device-{i}.pem.key"
    else
        cert="$dir/fleet/device-0.pem.crt" key="$dir/fleet/device-0.pem.key"
    fi
    local load=(--throughput 1 --qos 1 --payload-format raw --payload-bytes 100)
    [[ -n "${CONNECT_ONLY:-}" ]] && load=(--connect-only)
    /usr/bin/time -v "$bin" --host 127.0.0.1 --port "$port" --cafile "$dir/fleet/device_ca.pem" \
        --cert "$cert" --key "$key" -u "$users" -r 1000 -t 30s "${load[@]}" \
        --headless --only-summary \
        >"$dir/$mode.out" 2>"$dir/$mode.err" || true
    local rss fails
    rss="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/$mode.err")"
    fails="$(grep -E '^ *Aggregated' "$dir/$mode.out" | awk '{print $3}' | head -1)"
    awk -v m="$mode" -v r="$rss" -v u="$users" -v f="${fails:-?}" \
        'BEGIN { printf "%-10s peak RSS %.1f MiB = %.2f KiB per connection, failures %s\n", m, r / 1024, r / u, f }'
    grep -E '^Connections:' "$dir/$mode.out" || true
    awk '/^Error report/ { on = 1 } on && /^[0-9]/ { print "  " $0 }' "$dir/$mode.out" | head -3
}
for _ in 1 2; do run per-device; run shared; done
