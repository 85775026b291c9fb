#!/usr/bin/env bash
# Benchmark (not a test): one release `mqload --worker` under a real Locust master
# (target/locust-venv, see scripts/test.sh) against a local TLS mosquitto, so its cost per
# message can be compared with a standalone run of scripts/bench-local.sh with the same load.
# The broker counts the messages ($SYS/broker/publish/messages/received); CPU and peak RSS of
# the worker come from /usr/bin/time -v.
#
# usage: scripts/bench-locust.sh [USERS [MSG_PER_S_PER_USER [RUN_TIME]]]   (1000 10 30s)
# Environment: MQLOAD_BIN (default target/release/mqload, built when missing), KEEP=1.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
users="${1:-1000}" rate="${2:-10}" run_time="${3:-30s}"
locust="$root/target/locust-venv/bin/locust"
[[ -x "$locust" ]] || { echo "bench-locust.sh: no $locust; run scripts/test.sh first" >&2; exit 1; }
bin="${MQLOAD_BIN:-$root/target/release/mqload}"
[[ -x "$bin" ]] || cargo build --release --quiet --bin mqload
mosquitto_bin="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
work="$(mktemp -d "${TMPDIR:-/tmp}/mqload-bench-locust.XXXXXX")"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    if [[ "${KEEP:-0}" == 1 ]]; then echo "kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bash pki/local-ca.sh "$work/pki" --ecdsa >/dev/null
port=$(( 20000 + RANDOM % 20000 )); plain=$(( port + 1 )); master_port=$(( port + 2 ))
bash scripts/mosquitto-conf.sh "$work/pki" "$port" "$plain" "$work/mosquitto.log" > "$work/mosquitto.conf"
"$mosquitto_bin" -c "$work/mosquitto.conf" > "$work/mosquitto.out" 2>&1 &
pids+=($!)
# shellcheck disable=SC2016  # '$SYS' is a topic
sys_received() { mosquitto_sub -h 127.0.0.1 -p "$plain" -C 1 -W 3 -t '$SYS/broker/publish/messages/received'; }
before=""
for _ in $(seq 50); do   # wait for the broker's listeners
    before="$(sys_received 2>/dev/null)" && break
    sleep 0.2
done
[[ -n "$before" ]] || { echo "bench-locust.sh: mosquitto did not start: $(cat "$work/mosquitto.log")" >&2; exit 1; }
(cd "$work" && timeout 300 "$locust" -f "$root/deploy/locustfile.py" --master \
    --master-bind-host 127.0.0.1 --master-bind-port "$master_port" --headless \
    --expect-workers 1 -u "$users" -r "$users" -t "$run_time" --csv run --only-summary \
    --mqtt-qos 1 --mqtt-throughput "$rate" --mqtt-payload-bytes 100 --mqtt-payload-format raw \
    > master.log 2>&1) &
master=$!
timeout 300 /usr/bin/time -v "$bin" --worker --master-port "$master_port" \
    --host 127.0.0.1 --port "$port" --cafile "$work/pki/root_ca.pem" \
    --cert "$work/pki/certificate.pem.crt" --key "$work/pki/private.pem.key" \
    > "$work/worker.out" 2> "$work/worker.err"
wait "$master"
sleep 2
after="$(sys_received)"
received=$(( after - before ))
field() { grep -F "$1" "$work/worker.err" | awk -F': ' '{print $2}'; }
cpu=$(awk -v u="$(field 'User time')" -v s="$(field 'System time')" 'BEGIN { print u + s }')
rss_kb="$(field 'Maximum resident set size')"
csv_publishes="$(awk -F, '$2 ~ /^publish:/ { print $3 }' "$work/run_stats.csv")"
echo "worker: $users users x $rate msg/s, QoS 1, 100 B, TLS (ECDSA), $run_time under a Locust master"
echo "broker received: $received; master CSV publishes: $csv_publishes"
echo "worker CPU: ${cpu} s = $(awk -v c="$cpu" -v n="$received" 'BEGIN { printf "%.2f", c / n * 100000 }') CPU-s per 100k messages; peak RSS $(( rss_kb / 1024 )) MiB"
