#!/usr/bin/env bash
# The README's first command: a real load test on a fresh machine, against a local mosquitto
# with TLS mutual auth and a throw-away CA, both made here. Installs mosquitto and openssl with
# apt-get when missing (as root), builds mqload in release mode, runs it with your options
# (defaults: 10 users, QoS 1, 100 msg/s each, 20 s), and stops the broker afterwards.
#
# usage: scripts/try-local.sh [MQLOAD OPTIONS...]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]]; }
missing=()
have mosquitto || missing+=(mosquitto)
have mosquitto_sub || missing+=(mosquitto-clients)
have openssl || missing+=(openssl)
if (( ${#missing[@]} > 0 )); then
    if [[ "$(id -u)" == 0 ]]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q "${missing[@]}"
    else
        echo "try-local.sh: install the local broker first: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi
mosquitto_bin="$(command -v mosquitto || echo /usr/sbin/mosquitto)"

cargo build --release --quiet

work="$(mktemp -d "${TMPDIR:-/tmp}/mqload-try.XXXXXX")"
broker_pid=""
# shellcheck disable=SC2317  # reached through the trap
cleanup() {
    [[ -n "$broker_pid" ]] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

bash pki/local-ca.sh "$work" >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tls_port="$(free_port)"
plain_port="$(free_port)"
bash scripts/mosquitto-conf.sh "$work" "$tls_port" "$plain_port" "$work/broker.log" >"$work/mosquitto.conf"
"$mosquitto_bin" -c "$work/mosquitto.conf" >/dev/null 2>&1 &
broker_pid=$!
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$plain_port") 2>/dev/null && break
    sleep 0.1
done
echo "try-local.sh: mosquitto (TLS mutual auth) on 127.0.0.1:$tls_port, certificates in $work" >&2

defaults=(--users 10 --spawn-rate 10 --run-time 20s --qos 1 --throughput 100)
(( $# > 0 )) && defaults=()
set +e
target/release/mqload --headless --host 127.0.0.1 --port "$tls_port" \
    --cafile "$work/root_ca.pem" --cert "$work/certificate.pem.crt" --key "$work/private.pem.key" \
    "${defaults[@]}" "$@"
status=$?
set -e
exit "$status"
