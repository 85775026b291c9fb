#!/usr/bin/env bash
# Benchmark (not a test): how many TLS connections one mqload holds against a
# local mosquitto, and what each costs. Runs scripts/bench-local.sh (its own
# broker, fresh CA, /usr/bin/time -v) with --connect-only and Locust CSVs, then
# reads from them and from the JSON report: connect failures, connect p50/p99,
# time until every user was connected (the report's per-second connected count;
# the history CSV's "User Count" is users spawned, as in Locust), and which
# source addresses the broker saw (its log).
#
# usage: scripts/bench-connections.sh [MQLOAD OPTIONS...]
# Defaults (each replaced when you pass the same option):
#   -u 18000 -r 2000 -t 100s --connect-only
# Environment: as bench-local.sh (PKI_ALGO=rsa|ecdsa, MQLOAD_BIN, BENCH_TIMEOUT).
# Example, 18,000 connections from 5 source addresses, ECDSA certificates:
#   PKI_ALGO=ecdsa scripts/bench-connections.sh --bind 127.0.0.2-127.0.0.6
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mktemp -d "${TMPDIR:-/tmp}/mqload-conns.XXXXXX")"
trap 'rm -rf "$out"' EXIT

args=("$@")
has() { local a; for a in "${args[@]}"; do [[ "$a" == "$1" || "$a" == "$2" || "$a" == "$1="* ]] && return 0; done; return 1; }
has --users -u || args+=(-u 18000)
has --spawn-rate -r || args+=(-r 2000)
has --run-time -t || args+=(-t 100s)
has --connect-only --connect-only || args+=(--connect-only)
users=18000
for (( i = 0; i < ${#args[@]}; i++ )); do
    case "${args[i]}" in
        -u|--users) users="${args[i + 1]}" ;;
        --users=*) users="${args[i]#*=}" ;;
    esac
done

set +e
KEEP=1 BENCH_TIMEOUT="${BENCH_TIMEOUT:-180}" bash "$root/scripts/bench-local.sh" \
    "${args[@]}" --csv "$out/run" --report-json "$out/run.json" 2> >(tee "$out/stderr.txt" >&2) | tee "$out/stdout.txt"
rc="${PIPESTATUS[0]}"
set -e
sleep 0.2   # let the stderr tee finish
kept="$(sed -n 's/^kept: //p' "$out/stderr.txt" | tail -1)"

echo
echo "==> bench-connections results ($users users)"
awk -F, -v users="$users" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $2 == "connect" {
        printf "connect requests / failures      %s / %s\n", $col["Request Count"], $col["Failure Count"]
        printf "connect p50 / p99 / max          %s / %s / %s ms\n", $col["50%"], $col["99%"], $col["Max Response Time"]
    }' "$out/run_stats.csv"
python3 - "$out/run.json" "$users" <<'PY'
import json, sys
report, users = json.load(open(sys.argv[1])), int(sys.argv[2])
series = report["series"]["points"]
peak = max((p["users"] for p in series), default=0)
done = next((p["t"] for p in series if p["users"] >= users), None)
print(f"peak users connected             {peak}")
if done is not None:
    print(f"time until all connected         {done} s after the first stats point")
else:
    print(f"time until all connected         never (peak {peak} of {users})")
PY
grep -h -e "TLS handshakes" -e "Connect queue" "$out/stdout.txt" || true
if [[ -n "$kept" && -f "$kept/mosquitto.log" ]]; then
    echo "connections per source address (broker log):"
    sed -n 's/.*New client connected from \([^:]*\):.*/\1/p' "$kept/mosquitto.log" | sort | uniq -c
    rm -rf "$kept"
fi
exit "$rc"
