#!/usr/bin/env bash
# Benchmark (not a test): how fast the built-in broker (`mqload broker`) takes messages,
# side by side with mosquitto on this machine, both loaded by the same release mqload
# command over TLS with mutual authentication (the same local CA and broker certificate).
#
# Each broker counts what it received in its own $SYS/broker/publish/messages/received
# (mosquitto with sys_interval 1, read on a plain loopback port; `mqload broker` publishes
# it every second, read over its TLS port), re-read until it stops rising after the load
# ends, so a backlog still in socket buffers is counted. Broker CPU comes from
# /proc/PID/stat over the same span. The brokers run one after
# the other, ROUNDS times, alternating, so that a neighbour's load on this shared machine
# hits both alike; compare the ratio within one run of this script.
#
# usage: scripts/bench-broker.sh [MQLOAD OPTIONS...]
#   default options (replaced as a whole when you give any):
#   -u 200 -r 200 -t 15s --qos 0 --throughput 10000 --payload-format raw --payload-bytes 100
# Environment:
#   ROUNDS=n           rounds of (mosquitto, mqload broker); default 1
#   BROKER_THREADS=n   threads of `mqload broker`; default 1 (mosquitto has one)
#   MQLOAD_BIN=path    use this binary instead of building target/release/mqload
#   KEEP=1             keep the temp dir (logs, outputs)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() { echo "bench-broker.sh: $*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
for tool in mosquitto mosquitto_sub openssl; do
    have "$tool" || die "$tool is missing; install it with: sudo apt-get install -y mosquitto mosquitto-clients openssl"
done
mosquitto_bin="$(command -v mosquitto || echo /usr/sbin/mosquitto)"

if (( $# > 0 )); then
    load_args=("$@")
else
    load_args=(-u 200 -r 200 -t 15s --qos 0 --throughput 10000 --payload-format raw
               --payload-bytes 100)
fi
rounds="${ROUNDS:-1}"
broker_threads="${BROKER_THREADS:-1}"

work="$(mktemp -d "${TMPDIR:-/tmp}/mqload-bench-broker.XXXXXX")"
broker_pid=""
# shellcheck disable=SC2317  # reached through the trap
cleanup() {
    if [[ -n "$broker_pid" ]]; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    if [[ "${KEEP:-0}" == 1 ]]; then echo "kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

bash "$root/pki/local-ca.sh" "$work/pki" --ecdsa >/dev/null
release_mqload
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_ports() {
    while :; do
        # Below the ephemeral range, where the load's own client sockets linger.
        port=$(( 20000 + RANDOM % 12000 ))
        plain_port=$(( port + 1 ))
        port_is_free "$port" && port_is_free "$plain_port" && return
    done
}
# Succeeds once the broker listens on $1; fails when it exited (a port taken meanwhile).
wait_listening() {
    for _ in $(seq 500); do
        kill -0 "$broker_pid" 2>/dev/null || { wait "$broker_pid" 2>/dev/null || true; return 1; }
        ! port_is_free "$1" && return 0
        sleep 0.01
    done
    die "the broker did not listen on $1"
}
cpu_ticks() { local s; s="$(< "/proc/$1/stat")"; s="${s##*) }"; awk '{ print $12 + $13 }' <<< "$s"; }
clk_tck="$(getconf CLK_TCK)"
# The broker's count; args: port, then any TLS options.
# shellcheck disable=SC2016  # '$SYS' is a topic, not a variable
sys_received() {
    mosquitto_sub -h 127.0.0.1 -p "$@" -C 1 -W 3 -t '$SYS/broker/publish/messages/received' \
        || die "could not read \$SYS from the broker on port $1"
}
tls_sub=(--cafile "$work/pki/root_ca.pem" --cert "$work/pki/certificate.pem.crt"
         --key "$work/pki/private.pem.key")
# After the load: re-read the count every 2 s until two reads agree (at most 30 s).
settled_count() {
    local last now
    sleep 2
    last="$(sys_received "$@")"
    for _ in $(seq 15); do
        sleep 2
        now="$(sys_received "$@")"
        [[ "$now" == "$last" ]] && break
        last="$now"
    done
    echo "$last"
}

# Runs the load against 127.0.0.1:$port; sets load_wall (seconds).
run_load() {
    local started ended
    started="$(date +%s.%N)"
    "$bin" --host 127.0.0.1 --port "$port" --cafile "$work/pki/root_ca.pem" \
        --cert "$work/pki/certificate.pem.crt" --key "$work/pki/private.pem.key" \
        --only-summary "${load_args[@]}" > "$work/mqload-$1.out" 2>&1 || true
    ended="$(date +%s.%N)"
    load_wall="$(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.2f", b - a }')"
}

results=()
report() { # name messages cpu_ticks wall
    local line
    line="$(awk -v n="$1" -v m="$2" -v t="$3" -v tck="$clk_tck" -v w="$4" 'BEGIN {
        cpu = t / tck
        printf "%-14s %10d msgs  %9.0f msg/s  broker CPU %6.2f s  %6.2f CPU-us/msg", n, m, m / w, cpu, (m > 0 ? cpu * 1e6 / m : 0)
    }')"
    echo "$line" >&2
    results+=("$line")
}

for (( round = 1; round <= rounds; round++ )); do
    # --- mosquitto ---------------------------------------------------------
    for attempt in 1 2 3 4 5; do
        pick_ports
        bash "$root/scripts/mosquitto-conf.sh" "$work/pki" "$port" "$plain_port" \
            "$work/mosquitto.log" > "$work/mosquitto.conf"
        "$mosquitto_bin" -c "$work/mosquitto.conf" > "$work/mosquitto.out" 2>&1 &
        broker_pid=$!
        wait_listening "$plain_port" && break
        (( attempt < 5 )) || die "mosquitto did not start: $(tail -3 "$work/mosquitto.log")"
    done
    before="$(sys_received "$plain_port")"
    ticks0="$(cpu_ticks "$broker_pid")"
    run_load "mosquitto-$round"
    after="$(settled_count "$plain_port")"
    ticks1="$(cpu_ticks "$broker_pid")"
    kill "$broker_pid"; wait "$broker_pid" 2>/dev/null || true; broker_pid=""
    report "mosquitto" $(( after - before )) $(( ticks1 - ticks0 )) "$load_wall"

    # --- mqload broker -------------------------------------------------------
    for attempt in 1 2 3 4 5; do
        pick_ports
        "$bin" broker --port "$port" --threads "$broker_threads" --run-time 10m \
            --tls-cert "$work/pki/broker.crt" --tls-key "$work/pki/broker.key" \
            --cafile "$work/pki/root_ca.pem" > "$work/mqload-broker.out" 2>&1 &
        broker_pid=$!
        wait_listening "$port" && break
        (( attempt < 5 )) || die "mqload broker did not start: $(cat "$work/mqload-broker.out")"
    done
    sleep 1.2   # the first $SYS update
    before="$(sys_received "$port" "${tls_sub[@]}")"
    ticks0="$(cpu_ticks "$broker_pid")"
    run_load "ours-$round"
    after="$(settled_count "$port" "${tls_sub[@]}")"
    ticks1="$(cpu_ticks "$broker_pid")"
    kill -TERM "$broker_pid"; wait "$broker_pid" 2>/dev/null || true; broker_pid=""
    report "mqload broker" $(( after - before )) $(( ticks1 - ticks0 )) "$load_wall"
done

echo
echo "==> bench-broker results (load: ${load_args[*]}; mqload broker threads: $broker_threads)"
printf '%s\n' "${results[@]}"
