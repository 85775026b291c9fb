#!/usr/bin/env bash
# Finds a broker's knee: runs mqload once per point of a grid (users x payload
# bytes x QoS), keeps each run's --report-json report, and writes one CSV row per run
# plus an HTML page with SVG charts of throughput and p99 by load.
#
# usage: scripts/sweep.sh [SWEEP OPTIONS] [-- MQLOAD OPTIONS...]
#   --users LIST       comma-separated user counts        (default 10,100)
#   --payload LIST     comma-separated payload bytes      (default 100)
#   --qos LIST         comma-separated QoS levels         (default 1)
#   --run-time D       each run's -t                      (default 10s)
#   --throughput R     messages/s per user                (default 10)
#   --out DIR          output directory                   (default target/sweep-<UTC time>)
#   --host, --port, --cafile, --cert, --key, --server-name, --alpn, --no-tls
#                      passed to mqload: the broker to sweep
# After `--`, more options passed to every mqload run unchanged. With --host
# given, the runs go to that broker (give --port/--cafile/--cert/--key too);
# without it, the sweep starts its own TLS mosquitto on a free loopback port
# with a throw-away CA (as scripts/bench-local.sh does) and stops it at the end.
# Each user count spawns in one second (-r = users) unless -r/--spawn-rate is
# passed after `--`.
#
# Output in DIR: run-u<U>-p<P>-q<Q>.json and .out (mqload's console), sweep.csv
# (users,payload_bytes,qos,msgs_per_s,steady_msgs_per_s,p50_ms,p99_ms,failures,
# send_lag_p99_ms,verdict,exit_code: msgs_per_s over the whole run, steady the
# median of its per-second publish rates), sweep.html (self-contained, no network).
#
# Cost: against a remote broker every grid point is first checked with `mqload --dry-run`
# (nothing connects); for AWS IoT Core endpoints (or `-- --aws`) the estimates are added up,
# and a sweep whose total passes --max-cost (after --; default $10) stops before the first
# run unless --yes is given after --.
#
# Bounded in time: every run is stopped (SIGINT, then SIGKILL 20 s later) at
# its run time plus 60 s, so the whole sweep lasts at most
# runs x (run time + 80 s). Environment: MQLOAD_BIN=path uses that binary
# instead of building target/release/mqload.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "sweep.sh: $*" >&2; exit 2; }
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

users_list="10,100" payload_list="100" qos_list="1" run_time="10s" throughput="10"
out="$root/target/sweep-$(date -u +%Y%m%dT%H%M%SZ)"
passthrough=()
while (( $# > 0 )); do
    case "$1" in
        --users) users_list="${2:?--users needs a list}"; shift 2 ;;
        --payload) payload_list="${2:?--payload needs a list}"; shift 2 ;;
        --qos) qos_list="${2:?--qos needs a list}"; shift 2 ;;
        --run-time) run_time="${2:?--run-time needs a duration}"; shift 2 ;;
        --throughput) throughput="${2:?--throughput needs a rate}"; shift 2 ;;
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --host|--port|--cafile|--cert|--key|--server-name|--alpn)
            passthrough+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
        --no-tls) passthrough+=("$1"); shift ;;
        --) shift; break ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) die "unknown option $1 (mqload options go after --)" ;;
    esac
done
passthrough+=("$@")

IFS=, read -r -a users_arr <<< "$users_list"
IFS=, read -r -a payload_arr <<< "$payload_list"
IFS=, read -r -a qos_arr <<< "$qos_list"
for u in "${users_arr[@]}"; do [[ "$u" =~ ^[1-9][0-9]*$ ]] || die "--users: '$u' is not a positive whole number"; done
for p in "${payload_arr[@]}"; do [[ "$p" =~ ^[0-9]+$ ]] || die "--payload: '$p' is not a byte count"; done
for q in "${qos_arr[@]}"; do [[ "$q" =~ ^[012]$ ]] || die "--qos: '$q' is not 0, 1 or 2"; done
# Seconds of the run time, for the per-run time limit (mqload validates the format itself).
run_s="$(awk -v d="$run_time" 'BEGIN {
    s = 0; n = ""; ok = length(d) > 0
    for (i = 1; i <= length(d); i++) {
        c = substr(d, i, 1)
        if (c ~ /[0-9]/) n = n c
        else if (c == "h" && n != "") { s += n * 3600; n = "" }
        else if (c == "m" && n != "") { s += n * 60; n = "" }
        else if (c == "s" && n != "") { s += n; n = "" }
        else ok = 0
    }
    if (n != "") s += n
    print (ok && s > 0) ? s : -1 }')"
(( run_s > 0 )) || die "--run-time: '$run_time' is not a duration like 30s, 2m, 1h"

need_apt=()
have jq || need_apt+=(jq)
local_broker=1
for a in "${passthrough[@]}"; do [[ "$a" == --host || "$a" == --host=* ]] && local_broker=0; done
if (( local_broker )); then
    have mosquitto || need_apt+=(mosquitto)
    have openssl || need_apt+=(openssl)
fi
install_missing "${need_apt[@]}"

mkdir -p "$out" || die "cannot create $out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/mqload-sweep.XXXXXX")"
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

release_mqload
[[ -x "$bin" ]] || die "no mqload binary at $bin"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

target=()
if (( local_broker )); then
    bash "$root/pki/local-ca.sh" "$work/pki" >/dev/null
    mosquitto_bin="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
    port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        port=$(( 20000 + RANDOM % 30000 ))
        port_is_free "$port" || continue
        bash "$root/scripts/mosquitto-conf.sh" "$work/pki" "$port" "" "$work/mosquitto.log" > "$work/mosquitto.conf"
        "$mosquitto_bin" -c "$work/mosquitto.conf" > "$work/mosquitto.out" 2>&1 &
        broker_pid=$!
        for _ in $(seq 300); do
            kill -0 "$broker_pid" 2>/dev/null || break
            port_is_free "$port" || break
            sleep 0.01
        done
        if kill -0 "$broker_pid" 2>/dev/null && ! port_is_free "$port"; then break; fi
        wait "$broker_pid" 2>/dev/null || true
        broker_pid=""
        (( attempt < 10 )) || die "mosquitto did not start: $(cat "$work/mosquitto.log" "$work/mosquitto.out" 2>/dev/null)"
    done
    target=(--host 127.0.0.1 --port "$port" --cafile "$work/pki/root_ca.pem"
            --cert "$work/pki/certificate.pem.crt" --key "$work/pki/private.pem.key")
    echo "broker: local mosquitto (pid $broker_pid), TLS 127.0.0.1:$port" >&2
fi
spawn_given=0
for a in "${passthrough[@]}"; do
    case "$a" in -r|-r*|--spawn-rate|--spawn-rate=*) spawn_given=1 ;; esac
done

# Against a remote broker, add up the grid's AWS IoT Core estimates before anything connects
# (each run's own --max-cost check sees one point only). mqload --dry-run prints the estimate
# only for AWS endpoints (or --aws); other brokers print none and the sweep goes on.
grid_args() { # users payload qos -> the mqload arguments of that grid point
    local a=("${target[@]}" --users "$1" --run-time "$run_time" --qos "$3" --throughput "$throughput"
             --payload-format raw --payload-bytes "$2" --only-summary)
    (( spawn_given )) || a+=(--spawn-rate "$1")
    printf '%s\0' "${a[@]}" "${passthrough[@]}"
}
if (( ! local_broker )); then
    total=0 estimated=0 max_cost=10 confirmed=0
    for ((i = 0; i < ${#passthrough[@]}; i++)); do
        case "${passthrough[i]}" in
            --max-cost) max_cost="${passthrough[i + 1]:-10}" ;;
            --max-cost=*) max_cost="${passthrough[i]#--max-cost=}" ;;
            --yes) confirmed=1 ;;
        esac
    done
    for q in "${qos_arr[@]}"; do for p in "${payload_arr[@]}"; do for u in "${users_arr[@]}"; do
        mapfile -d '' -t dry < <(grid_args "$u" "$p" "$q")
        line="$("$bin" "${dry[@]}" --dry-run --yes 2>&1 | grep 'AWS IoT Core estimate:' || true)"
        [[ -n "$line" ]] || continue
        dollars="$(sed -nE 's/.* = \$([0-9,.]+) \(.*/\1/p' <<< "$line" | tr -d ,)"
        [[ -n "$dollars" ]] || die "users $u, payload $p, QoS $q: no bounded cost estimate ($line)"
        total="$(awk -v a="$total" -v b="$dollars" 'BEGIN { printf "%.2f", a + b }')"
        estimated=$(( estimated + 1 ))
    done; done; done
    if (( estimated > 0 )); then
        echo "sweep: AWS IoT Core estimate for all $estimated runs: \$$total (--max-cost \$$max_cost for the whole sweep)" >&2
        if awk -v t="$total" -v m="$max_cost" 'BEGIN { exit !(t > m) }' && (( ! confirmed )); then
            die "the sweep would cost about \$$total on AWS IoT Core, over --max-cost \$$max_cost: shrink the grid or --run-time, raise --max-cost after --, or pass --yes after --"
        fi
    fi
fi

csv="$out/sweep.csv"
echo "users,payload_bytes,qos,msgs_per_s,steady_msgs_per_s,p50_ms,p99_ms,failures,send_lag_p99_ms,verdict,exit_code" > "$csv"
limit=$(( run_s + 60 ))
runs=$(( ${#users_arr[@]} * ${#payload_arr[@]} * ${#qos_arr[@]} ))
n=0
for q in "${qos_arr[@]}"; do
for p in "${payload_arr[@]}"; do
for u in "${users_arr[@]}"; do
    n=$(( n + 1 ))
    name="run-u$u-p$p-q$q"
    mapfile -d '' -t args < <(grid_args "$u" "$p" "$q")
    args+=(--report-json "$out/$name.json")
    echo "[$n/$runs] users $u, payload $p B, QoS $q for $run_time" >&2
    set +e
    timeout --signal=INT --kill-after=20 "$limit" "$bin" "${args[@]}" > "$out/$name.out" 2>&1
    rc=$?
    set -e
    if [[ ! -s "$out/$name.json" ]]; then
        echo "  no report (exit $rc); see $out/$name.out" >&2
        echo "$u,$p,$q,,,,,,,no_report,$rc" >> "$csv"
        continue
    fi
    # Publish rows only: connects are not messages. With one publish name (the usual case)
    # its percentiles; otherwise the largest p50/p99 of the publish rows.
    jq -r --arg u "$u" --arg p "$p" --arg q "$q" --arg rc "$rc" '
        [.stats.rows[] | select(.name | startswith("publish"))] as $pub
        | [$u, $p, $q,
           (($pub | map(.total_rps) | add // 0) * 100 | round / 100),
           ([.series.names | to_entries[] | select(.value | startswith("publish")) | .key] as $ix
            | [.series.points[] | . as $pt | ($ix | map($pt.requests[.]) | add // 0) / $pt.seconds
               | select(. > 0)] | sort
            | if length == 0 then 0 else .[(length / 2 | floor)] end * 100 | round / 100),
           (($pub | map(.percentiles_us["50%"]) | max // 0) / 1000),
           (($pub | map(.percentiles_us["99%"]) | max // 0) / 1000),
           .stats.aggregated.num_failures,
           (.send_lag.p99_us / 1000),
           .verdict.kind, $rc] | @csv' "$out/$name.json" | tr -d '"' >> "$csv"
    tail -n 1 "$csv" | awk -F, '{ printf "  %s msg/s (steady %s), p50 %s ms, p99 %s ms, %s failures, send-lag p99 %s ms: %s\n", $4, $5, $6, $7, $8, $9, $10 }' >&2
done
done
done

# The chart: x = users (evenly spaced, in the order given), one line per payload/QoS pair.
awk -F, -v ulist="$users_list" -v title="mqload sweep $(date -u +%Y-%m-%dT%H:%MZ)" '
function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); return s }
function chart(col, label, unit,    W, H, L, R, T, B, ymax, i, k, x, y, pts, step, v, out, c) {
    W = 640; H = 300; L = 64; R = 150; T = 16; B = 40; ymax = 0
    for (k in val) { split(k, f, SUBSEP); if (f[2] == col && val[k] > ymax) ymax = val[k] }
    if (ymax <= 0) ymax = 1
    step = 10 ^ int(log(ymax / 5) / log(10) - (ymax < 5 ? 1 : 0)); while (ymax / step > 6) step *= 2
    ytop = step * (int(ymax * 1.05 / step) + 1)
    out = sprintf("<svg viewBox=\"0 0 %d %d\" data-series=\"%d\"><title>%s</title>", W, H, nser, label)
    for (v = 0; v <= ytop + step / 2; v += step) {
        y = T + (H - T - B) * (1 - v / ytop)
        out = out sprintf("<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e6e9ef\"/><text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>", L, W - R, y, y, L - 6, y + 4, v)
    }
    for (i = 1; i <= nu; i++) {
        x = L + (W - L - R) * (nu == 1 ? 0.5 : (i - 1) / (nu - 1))
        out = out sprintf("<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>", x, H - B + 16, users[i])
    }
    out = out sprintf("<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">users</text>", L + (W - L - R) / 2, H - 6)
    out = out sprintf("<text x=\"14\" y=\"%d\" transform=\"rotate(-90 14 %d)\" text-anchor=\"middle\">%s</text>", (H - B) / 2, (H - B) / 2, unit)
    out = out sprintf("<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#9aa3b0\"/>", L, W - R, H - B, H - B)
    for (s = 1; s <= nser; s++) {
        c = colors[(s - 1) % 6 + 1]; pts = ""
        for (i = 1; i <= nu; i++) {
            k = ser[s] SUBSEP col SUBSEP users[i]
            if (!(k in cell)) continue
            x = L + (W - L - R) * (nu == 1 ? 0.5 : (i - 1) / (nu - 1)); y = T + (H - T - B) * (1 - cell[k] / ytop)
            pts = pts sprintf("%.1f,%.1f ", x, y)
            out = out sprintf("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>%s users: %s %s</title></circle>", x, y, c, users[i], cell[k], unit)
        }
        out = out sprintf("<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>", pts, c)
        out = out sprintf("<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"3\" fill=\"%s\"/><text x=\"%d\" y=\"%d\" style=\"fill:#1d2330\">%s</text>", W - R + 12, T + 8 + 18 * (s - 1), c, W - R + 32, T + 12 + 18 * (s - 1), esc(ser[s]))
    }
    return "<div class=\"chart\"><h2>" label "</h2>" out "</svg></div>"
}
BEGIN { nu = split(ulist, users, ","); split("#2d6cdf,#d93b30,#1b9e77,#e6a100,#7b4fd6,#0f8b8d", colors, ",") }
NR == 1 { next }
{
    key = $2 " B, QoS " $3
    if (!(key in seen)) { seen[key] = 1; ser[++nser] = key }
    if ($5 != "") { cell[key SUBSEP "tput" SUBSEP $1] = $5; val[key SUBSEP "tput" SUBSEP $1] = $5 + 0 }
    if ($7 != "") { cell[key SUBSEP "p99" SUBSEP $1] = $7; val[key SUBSEP "p99" SUBSEP $1] = $7 + 0 }
    rows = rows sprintf("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>", $1, $2, $3, $4, $5, $6, $7, $8, $9, esc($10), $11)
}
END {
    print "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" title "</title><style>"
    print "body{font:14px/1.45 -apple-system,\"Segoe UI\",Roboto,Arial,sans-serif;color:#1d2330;background:#f5f7fa;margin:0}"
    print "main{max-width:1200px;margin:0 auto;padding:24px}h1{font-size:22px}h2{font-size:15px;margin:0 0 6px}"
    print ".charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}"
    print ".chart,table{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:12px}svg{width:100%;height:auto}"
    print "svg text{font-size:11px;fill:#5f6b7a}table{border-collapse:collapse;margin-top:16px;width:100%}"
    print "th,td{padding:5px 9px;border-bottom:1px solid #dde2ea;text-align:right}th{background:#eef1f6}</style></head><body><main>"
    print "<h1>" title "</h1><p>One mqload run per point; each run'"'"'s JSON report is beside this file. Throughput (chart) is the steady rate: the median of the run'"'"'s per-second publish rates; the table also gives the whole-run rate (ramp-up and drain included). p99 is the publish response time.</p>"
    print "<div class=\"charts\">" chart("tput", "Throughput (messages/s) by load", "msg/s") chart("p99", "p99 response time (ms) by load", "ms") "</div>"
    print "<table><thead><tr><th>users</th><th>payload B</th><th>QoS</th><th>msg/s (run)</th><th>msg/s (steady)</th><th>p50 ms</th><th>p99 ms</th><th>failures</th><th>send-lag p99 ms</th><th>verdict</th><th>exit</th></tr></thead><tbody>" rows "</tbody></table>"
    print "</main></body></html>"
}' "$csv" > "$out/sweep.html"

echo "sweep: $runs runs -> $csv and $out/sweep.html" >&2
column -t -s, "$csv" >&2 || cat "$csv" >&2
