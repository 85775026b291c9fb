#!/usr/bin/env bash
# Prints a mosquitto.conf for testing mqload: the one broker configuration
# shared by scripts/local-broker.sh, scripts/bench-local.sh and the Rust test
# harness (tests/common/mod.rs), so they all measure the same broker.
#
# usage: scripts/mosquitto-conf.sh PKI_DIR TLS_PORT [PLAIN_PORT] [LOG_FILE]
#   PKI_DIR     holds root_ca.pem, broker.crt, broker.key (pki/local-ca.sh makes them)
#   TLS_PORT    TLS listener on 127.0.0.1, client certificates required (as AWS IoT does)
#   PLAIN_PORT  optional plain-TCP listener on 127.0.0.1 for observers such as
#               mosquitto_sub reading $SYS or counting messages without certificates
#   LOG_FILE    optional; default: log to stderr
# Environment: MQLOAD_BROKER_IDENTITY=1 adds use_identity_as_username (the
# client certificate's CN becomes the username, as AWS IoT policies see it).
#
# Only loopback is ever bound. Why each setting is here:
#   allow_anonymous true        mosquitto 2 refuses clients without a username otherwise
#   user root                   when started as root, stay root: dropping to the
#                               'mosquitto' user would lose access to the 0700 temp dirs
#                               holding the keys and the log (no effect when not root)
#   persistence false           every run starts empty; nothing written to disk
#   sys_interval 1              $SYS counters refresh every second (default 10 s)
#   set_tcp_nodelay true        no Nagle delay on PUBACKs, so latency figures are the broker's
#   max_inflight_messages 0     no cap on QoS 1 messages in flight *to* subscribers
#                               (default 20; publishers' PUBACKs are never held back by it)
#   max_queued_messages 100000  a slow observer queues instead of dropping (default 1000)
#   max_connections -1          no connection cap (the fd limit is the real one)
#   log_type subscribe          tests/common's Subscriber waits for this log line
#                               ("<client id> <qos> <filter>") instead of sleeping
set -euo pipefail

[[ $# -ge 2 && $# -le 4 ]] || { echo "usage: $0 PKI_DIR TLS_PORT [PLAIN_PORT] [LOG_FILE]" >&2; exit 2; }
pki="$(cd "$1" && pwd)"
tls_port="$2"
plain_port="${3:-}"
log_file="${4:-}"
for f in root_ca.pem broker.crt broker.key; do
    [[ -r "$pki/$f" ]] || { echo "mosquitto-conf.sh: missing $pki/$f (run pki/local-ca.sh)" >&2; exit 1; }
done

cat <<CONF
# written by scripts/mosquitto-conf.sh
per_listener_settings false
allow_anonymous true
user root
persistence false
sys_interval 1
set_tcp_nodelay true
max_inflight_messages 0
max_queued_messages 100000
CONF
if [[ -n "$log_file" ]]; then
    echo "log_dest file $log_file"
else
    echo "log_dest stderr"
fi
cat <<CONF
log_type error
log_type warning
log_type notice
log_type information
log_type subscribe
log_timestamp_format %Y-%m-%dT%H:%M:%S

# TLS with mutual authentication, as AWS IoT Core requires
listener $tls_port 127.0.0.1
max_connections -1
cafile $pki/root_ca.pem
certfile $pki/broker.crt
keyfile $pki/broker.key
require_certificate true
CONF
if [[ "${MQLOAD_BROKER_IDENTITY:-0}" == 1 ]]; then
    echo "use_identity_as_username true"
fi
# The plain listener comes last: mosquitto opens listeners in file order before
# serving, so once this port accepts, the TLS one is listening too.
if [[ -n "$plain_port" ]]; then
    cat <<CONF

# plain TCP for test-side observers only (loopback)
listener $plain_port 127.0.0.1
max_connections -1
CONF
fi
