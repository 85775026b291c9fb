#!/usr/bin/env bash
# Benchmark (not a test): the release mqload against a local TLS mosquitto,
# reporting what it costs per message. The broker counts the messages (its
# $SYS/broker/publish/messages/received), so mqload's own claims are not
# trusted; CPU comes from /usr/bin/time -v (mqload) and /proc (mosquitto).
#
# usage: scripts/bench-local.sh [MQLOAD OPTIONS...]
# Defaults, each replaced when you pass the same option (long or short form:
# -u/-r/-t replace --users/--spawn-rate/--run-time):
#   --users 1000 --spawn-rate 1000 --run-time 20s --qos 1 --payload-format raw
#   --payload-bytes 100 --throughput 10 --headless --only-summary
# --host/--port/--cafile/--cert/--key point at the benchmark's own broker and
# fresh local CA. Environment:
#   MQLOAD_BIN=path   use this binary instead of building target/release/mqload
#   KEEP=1            keep the temp dir (broker log, config, mqload output)
#   BENCH_TIMEOUT=d   stop mqload (SIGINT, then SIGKILL 20 s later) after this
#                     `timeout` duration (default 180, i.e. seconds)
#   PKI_ALGO=rsa|ecdsa  key type of the local CA and certificates (default rsa)
#
# Note: both mqload and mosquitto run on this machine and compete for its
# CPUs; mosquitto is single-threaded, so at high rates it is usually the
# ceiling, and "broker-counted messages/s" is then the broker's limit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() { echo "bench-local.sh: $*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

# --- tools -------------------------------------------------------------------
need_apt=()
have mosquitto || need_apt+=(mosquitto)
have mosquitto_sub || need_apt+=(mosquitto-clients)
have openssl || need_apt+=(openssl)
[[ -x /usr/bin/time ]] || need_apt+=(time)
install_missing "${need_apt[@]}"
mosquitto_bin="$(command -v mosquitto || echo /usr/sbin/mosquitto)"

# --- arguments: defaults, minus every option the caller gives ------------------
declare -A defaults=(
    [--users]=1000 [--spawn-rate]=1000 [--run-time]=20s [--qos]=1
    [--payload-format]=raw [--payload-bytes]=100 [--throughput]=10
)
default_flags=(--headless --only-summary)
# mqload's short options, as the long options they stand for: `-u 50` must
# replace the default --users, or mqload sees both and refuses (exit 2).
declare -A short_options=([-u]=--users [-r]=--spawn-rate [-t]=--run-time)
user_args=("$@")

# Split one argument into the long option it names and any value written into
# it: --users=5, -u5 and -u=5 all give opt_name=--users opt_value=5 opt_inline=1;
# --users and -u give opt_inline=0 (the value is the next argument); anything
# else gives opt_name="".
split_option() {
    local arg="$1"
    opt_name="" opt_value="" opt_inline=0
    case "$arg" in
        --*=*) opt_name="${arg%%=*}" opt_value="${arg#*=}" opt_inline=1 ;;
        --?*) opt_name="$arg" ;;
        -[[:alpha:]]*)
            opt_name="${short_options[${arg:0:2}]:-${arg:0:2}}"
            if (( ${#arg} > 2 )); then
                opt_value="${arg:2}" opt_value="${opt_value#=}" opt_inline=1
            fi ;;
    esac
}
for arg in "${user_args[@]}"; do
    split_option "$arg"
    [[ -n "$opt_name" ]] && unset "defaults[$opt_name]"
done
# Find an option's value in the caller's arguments, else in the defaults.
option_value() {
    local name="$1" i
    for (( i = 0; i < ${#user_args[@]}; i++ )); do
        split_option "${user_args[i]}"
        [[ "$opt_name" == "$name" ]] || continue
        if (( opt_inline )); then echo "$opt_value"; else echo "${user_args[i + 1]:-}"; fi
        return
    done
    echo "${defaults[$name]:-}"
}

# --- workspace, PKI, binary --------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/mqload-bench.XXXXXX")"
broker_pid=""
sampler_pid=""
cpu_sampler_pid=""
# Each stop is guarded so that a failing kill/wait (a process already gone, a
# SIGTERM exit status) cannot trip set -e inside the trap and replace the
# script's exit status (mqload's).
# shellcheck disable=SC2317  # reached through the trap
cleanup() {
    local pid
    for pid in "$cpu_sampler_pid" "$sampler_pid" "$broker_pid"; do
        [[ -n "$pid" ]] || continue
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${KEEP:-0}" == 1 ]]; then echo "kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

pki_algo="${PKI_ALGO:-rsa}"
case "$pki_algo" in
    rsa|ecdsa) ;;
    *) die "PKI_ALGO must be rsa or ecdsa, not '$pki_algo'" ;;
esac
bash "$root/pki/local-ca.sh" "$work/pki" "--$pki_algo" >/dev/null

release_mqload
[[ -x "$bin" ]] || die "no mqload binary at $bin"

# Thousands of simulated devices means thousands of sockets on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- broker -------------------------------------------------------------------
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$(( 20000 + RANDOM % 30000 ))
    plain_port=$(( port + 1 ))
    if ! port_is_free "$port" || ! port_is_free "$plain_port"; then continue; fi
    bash "$root/scripts/mosquitto-conf.sh" "$work/pki" "$port" "$plain_port" "$work/mosquitto.log" \
        > "$work/mosquitto.conf"
    "$mosquitto_bin" -c "$work/mosquitto.conf" > "$work/mosquitto.out" 2>&1 &
    broker_pid=$!
    for _ in $(seq 500); do
        kill -0 "$broker_pid" 2>/dev/null || break
        ! port_is_free "$plain_port" && break
        sleep 0.01
    done
    if kill -0 "$broker_pid" 2>/dev/null && ! port_is_free "$plain_port"; then
        break
    fi
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=""
    (( attempt < 10 )) || die "mosquitto did not start: $(cat "$work/mosquitto.log" "$work/mosquitto.out" 2>/dev/null)"
done

# shellcheck disable=SC2016  # '$SYS' is a topic, not a variable
sys_received() {
    mosquitto_sub -h 127.0.0.1 -p "$plain_port" -C 1 -W 3 -t '$SYS/broker/publish/messages/received' \
        || die "could not read \$SYS from the broker"
}
# After a run: mosquitto 2.0.11 sometimes stops offering the retained counter after
# thousands of clients came and went (seen after 18,000 connect-only clients), so fall
# back to the last value the sampler saw, then to the starting count.
sys_received_after() {
    local value
    if value="$(mosquitto_sub -h 127.0.0.1 -p "$plain_port" -C 1 -W 3 \
            -t '$SYS/broker/publish/messages/received' 2>/dev/null)"; then
        echo "$value"
        return
    fi
    value="$(awk 'END { print $2 }' "$work/sys-samples.txt" 2>/dev/null)"
    echo "bench-local.sh: \$SYS counter not offered after the run; using the sampler's last value" >&2
    echo "${value:-$received_start}"
}
# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat,
# counted after the ')' that closes the command name).
cpu_ticks() { local s; s="$(< "/proc/$1/stat")" || return; s="${s##*) }"; awk '{ print $12 + $13 }' <<< "$s"; }
clk_tck="$(getconf CLK_TCK)"

# A $SYS sampler for the per-second rate during the run: one line per update,
# "unix-seconds count" (mosquitto republishes the counter every sys_interval = 1 s).
# shellcheck disable=SC2016  # '$SYS' is a topic, not a variable
mosquitto_sub -h 127.0.0.1 -p "$plain_port" -t '$SYS/broker/publish/messages/received' -F '%U %p' \
    > "$work/sys-samples.txt" 2>/dev/null &
sampler_pid=$!

# A broker CPU sampler: "unix-seconds ticks" about once a second, from the run's
# start until the broker's count has settled after it (so the drain of a
# backlog shows too). Stops by itself if the broker goes away.
(
    while ticks="$(cpu_ticks "$broker_pid" 2>/dev/null)"; do
        echo "${EPOCHREALTIME/,/.} $ticks"   # some locales write a decimal comma
        sleep 1
    done
) > "$work/broker-cpu.txt" &
cpu_sampler_pid=$!

received_start="$(sys_received)"
broker_ticks_start="$(cpu_ticks "$broker_pid")"

# --- run ----------------------------------------------------------------------
args=(--host 127.0.0.1 --port "$port" --cafile "$work/pki/root_ca.pem"
      --cert "$work/pki/certificate.pem.crt" --key "$work/pki/private.pem.key")
for name in "${!defaults[@]}"; do args+=("$name" "${defaults[$name]}"); done
for flag in "${default_flags[@]}"; do
    [[ " ${user_args[*]} " == *" $flag "* ]] || args+=("$flag")
done
args+=("${user_args[@]}")

echo "broker: mosquitto (pid $broker_pid) TLS 127.0.0.1:$port" >&2
echo "run: $bin ${args[*]}" >&2
# A bench always ends by itself: after BENCH_TIMEOUT mqload gets SIGINT (it
# stops and prints its summary), and SIGKILL 20 s later if still running; the
# exit code is then 124 (137 if killed). timeout sits between /usr/bin/time and
# mqload so that it signals mqload itself (/usr/bin/time ignores SIGINT), and
# --foreground keeps mqload in the terminal's process group, so Ctrl-C still
# reaches it.
bench_timeout="${BENCH_TIMEOUT:-180}"
set +e
/usr/bin/time -v -o "$work/time.txt" \
    timeout --foreground --signal=INT --kill-after=20 "$bench_timeout" "$bin" "${args[@]}" 2>&1 \
    | tee "$work/mqload.out"
mqload_rc="${PIPESTATUS[0]}"
set -e
case "$mqload_rc" in
    124) echo "bench-local.sh: mqload still running after BENCH_TIMEOUT=$bench_timeout; stopped it (SIGINT)" >&2 ;;
    137) echo "bench-local.sh: mqload ignored SIGINT after BENCH_TIMEOUT=$bench_timeout; killed it" >&2 ;;
esac

# A backlogged broker keeps counting after mqload exits. Let the last messages
# land and the counter refresh (sys_interval is 1 s), then re-read it every 2 s,
# for at most 30 s, until two reads agree.
sleep 2
received_at_exit="$(sys_received_after)"
received_end="$received_at_exit"
settle_s=2
settled=0
while (( settle_s < 32 )); do
    sleep 2
    settle_s=$(( settle_s + 2 ))
    received_now="$(sys_received_after)"
    if [[ "$received_now" == "$received_end" ]]; then settled=1; break; fi
    received_end="$received_now"
done
(( settled )) || echo "bench-local.sh: the broker was still counting $settle_s s after mqload exited; its count is a lower bound" >&2

broker_ticks_end="$(cpu_ticks "$broker_pid")"
broker_hwm_kb="$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$broker_pid/status")"
for pid in "$sampler_pid" "$cpu_sampler_pid"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
sampler_pid="" cpu_sampler_pid=""
# Per-second broker CPU %, from consecutive samples (100 = one whole core).
broker_cpu_pct="$(awk -v tck="$clk_tck" '
    NR > 1 && $1 > t { printf "%s%.0f", (n++ ? " " : ""), ($2 - c) / tck / ($1 - t) * 100 }
    { t = $1; c = $2 }' "$work/broker-cpu.txt")"

# --- report -------------------------------------------------------------------
time_field() { awk -F': ' -v k="$1" '$1 ~ k { print $2 }' "$work/time.txt" | tail -1; }
user_s="$(time_field 'User time')"
sys_s="$(time_field 'System time')"
wall="$(time_field 'Elapsed \\(wall clock\\)')"
rss_kb="$(time_field 'Maximum resident set size')"
# "h:mm:ss" or "m:ss.ss" to seconds
wall_s="$(awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }' <<< "${wall:-0}")"
users="$(option_value --users)"
throughput="$(option_value --throughput)"
messages=$(( received_end - received_start ))

awk -v msgs="$messages" -v wall="$wall_s" -v u="${user_s:-0}" -v s="${sys_s:-0}" \
    -v bt0="$broker_ticks_start" -v bt1="$broker_ticks_end" -v tck="$clk_tck" \
    -v rss="${rss_kb:-0}" -v users="${users:-0}" -v tput="${throughput:-0}" \
    -v rc="$mqload_rc" -v samples="$work/sys-samples.txt" \
    -v late="$(( received_end - received_at_exit ))" -v settle="$settle_s" -v settled="$settled" \
    -v bhwm="${broker_hwm_kb:-0}" -v bpct="$broker_cpu_pct" '
function per100k(cpu) { return msgs > 0 ? sprintf("%.3f s", cpu * 100000 / msgs) : "n/a (no messages)" }
BEGIN {
    # Steady rate: the median of the per-second increments the sampler saw,
    # counting only seconds in which messages arrived.
    n = 0; prev_t = ""; 
    while ((getline line < samples) > 0) {
        split(line, f, " ")
        if (prev_t != "" && f[1] > prev_t && f[2] > prev_c) rates[++n] = (f[2] - prev_c) / (f[1] - prev_t)
        prev_t = f[1]; prev_c = f[2]
    }
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (rates[j] < rates[i]) { t = rates[i]; rates[i] = rates[j]; rates[j] = t }
    median = n > 0 ? rates[int((n + 1) / 2)] : 0
    peak = n > 0 ? rates[n] : 0
    mq_cpu = u + s
    broker_cpu = (bt1 - bt0) / tck
    print ""
    print "==> bench-local results"
    printf "mqload exit code                 %d\n", rc
    printf "broker-counted messages          %d   (target rate %s msg/s = %s users x %s/s)\n", msgs, users * tput, users, tput
    printf "broker-counted messages/s        %.0f over mqload wall time %.2f s\n", (wall > 0 ? msgs / wall : 0), wall
    printf "  counted 2+ s after mqload exit %d   (count %s %d s after exit)\n", late, (settled ? "stable" : "STILL RISING"), settle
    printf "  steady (median 1 s window)     %.0f msg/s   (peak %.0f, %d windows)\n", median, peak, n
    printf "mqload CPU (user+sys)            %.2f s  (user %.2f, sys %.2f)\n", mq_cpu, u, s
    printf "mqload CPU per 100k messages     %s\n", per100k(mq_cpu)
    printf "broker CPU                       %.2f s\n", broker_cpu
    printf "broker CPU per 100k messages     %s\n", per100k(broker_cpu)
    printf "broker CPU %% per second          %s\n", (bpct != "" ? bpct : "n/a")
    printf "broker peak RSS (VmHWM)          %.1f MiB\n", bhwm / 1024
    printf "mqload peak RSS                  %.1f MiB", rss / 1024
    if (users > 0) printf "  (%.1f KiB per user)", rss / users
    print ""
}'
exit "$mqload_rc"
