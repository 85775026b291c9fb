#!/usr/bin/env bash
# Runs a local mosquitto in the foreground that behaves like AWS IoT Core as
# far as mqload can tell: MQTT over TLS on 127.0.0.1, client certificates
# required. Certificates come from pki/ (made with pki/local-ca.sh when
# missing; it refuses to overwrite AWS IoT certificates found there, in which
# case point MQLOAD_PKI at another folder). Ctrl-C stops it.
#
# usage: scripts/local-broker.sh [PORT]      (default 8883)
# Environment:
#   MQLOAD_PKI=DIR              certificates folder (default: pki/)
#   MQLOAD_PLAIN_PORT=1883      also open a plain-TCP listener (for mosquitto_sub
#                               without certificates, e.g. to watch $SYS)
#   MQLOAD_BROKER_IDENTITY=1    use_identity_as_username true
#
# Then, in another shell:
#   mqload --host localhost --port 8883 --cafile pki/root_ca.pem \
#          --cert pki/certificate.pem.crt --key pki/private.pem.key --users 10 ...
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${1:-8883}"
plain_port="${MQLOAD_PLAIN_PORT:-}"
pki="${MQLOAD_PKI:-$root/pki}"

command -v mosquitto >/dev/null || { echo "local-broker.sh: mosquitto not found (apt-get install mosquitto mosquitto-clients)" >&2; exit 1; }
if [[ ! -r "$pki/root_ca.pem" || ! -r "$pki/broker.crt" || ! -r "$pki/broker.key" \
      || ! -r "$pki/certificate.pem.crt" || ! -r "$pki/private.pem.key" ]]; then
    echo "local-broker.sh: no local certificates in $pki, making them" >&2
    bash "$root/pki/local-ca.sh" "$pki" >&2
fi

conf_dir="$(mktemp -d "${TMPDIR:-/tmp}/mqload-broker.XXXXXX")"
# The directory is left behind on purpose: exec replaces this shell, so no trap
# could remove it; it holds only the config.
bash "$root/scripts/mosquitto-conf.sh" "$pki" "$port" "$plain_port" > "$conf_dir/mosquitto.conf"

# Many simulated devices means many sockets: raise the soft fd limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "local-broker.sh: mosquitto on 127.0.0.1:$port (TLS, client certificate required)${plain_port:+, plain TCP on 127.0.0.1:$plain_port}" >&2
echo "  config: $conf_dir/mosquitto.conf    certificates: $pki" >&2
echo "  client: --host localhost --port $port --cafile $pki/root_ca.pem --cert $pki/certificate.pem.crt --key $pki/private.pem.key" >&2
exec mosquitto -c "$conf_dir/mosquitto.conf"
