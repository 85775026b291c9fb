#!/usr/bin/env bash
# Benchmark (not a test): the previous release against this checkout, side by
# side in one script run, so both see the same machine load. Builds the previous
# release (a git worktree of PREV_REV, default 28d35e8, built with --release into
# /tmp) and the current tree, then through scripts/bench-local.sh (its own TLS
# mosquitto, fresh CA, broker-counted messages, /usr/bin/time -v):
#   1. PAIRS pairs of RUN_TIME runs (default 3 x 60 s), alternating prev/cur,
#      each reporting CPU-s per 100k acked messages (user+sys, handshakes
#      included) and send-lag p99 from mqload's JSON;
#   2. one STRACE_TIME run (default 20 s) of each under `strace -c -f`, reporting
#      recvmsg and socket writes (writev + sendto: the TLS client writes with sendto) per acked message.
# Load: 1,000 clients x 10 msg/s, QoS 1, 100-byte raw payloads over TLS (the
# bench-local.sh defaults); extra arguments go to every mqload run.
#
# usage: scripts/bench-release.sh [MQLOAD OPTIONS...]
# Environment: PREV_REV (default 28d35e8), PAIRS (3), RUN_TIME (60s),
#   STRACE_TIME (20s), PKI_ALGO (as bench-local.sh), KEEP_BINS=1 to reuse
#   binaries already built in /tmp.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "bench-release.sh: $*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

prev_rev="${PREV_REV:-28d35e8}"
pairs="${PAIRS:-3}"
run_time="${RUN_TIME:-60s}"
strace_time="${STRACE_TIME:-20s}"
have strace || install_missing strace
have python3 || install_missing python3

prev_src="/tmp/mqload-prev-src-$prev_rev"
prev_bin="/tmp/mqload-prev-$prev_rev"
cur_bin="/tmp/mqload-cur-$$"
out="$(mktemp -d "${TMPDIR:-/tmp}/mqload-release.XXXXXX")"
# shellcheck disable=SC2317  # reached through the trap
cleanup() {
    rm -rf "$out" "$cur_bin"
    if [[ -d "$prev_src" ]]; then
        git -C "$root" worktree remove --force "$prev_src" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# --- binaries: the same target dir, so registry crates build once -------------
# Both builds share mqload's own artifacts too: cargo hashes a path package the same
# wherever it lives and records its sources relative to it, so after the previous
# release's build this tree's older files look already built. Touching them after that
# build makes cargo compile this tree again.
if [[ "${KEEP_BINS:-0}" != 1 || ! -x "$prev_bin" ]]; then
    echo "building $prev_rev (release) in $prev_src..." >&2
    git -C "$root" worktree remove --force "$prev_src" 2>/dev/null || true
    git -C "$root" worktree add --detach --quiet "$prev_src" "$prev_rev"
    (cd "$prev_src" && CARGO_TARGET_DIR="$root/target" cargo build --release --quiet --bin mqload)
    cp "$root/target/release/mqload" "$prev_bin"
    git -C "$root" worktree remove --force "$prev_src"
fi
echo "building the current tree (release)..." >&2
find "$root/src" -name '*.rs' -exec touch {} +
(cd "$root" && cargo build --release --quiet --bin mqload)
cp "$root/target/release/mqload" "$cur_bin"
cmp -s "$prev_bin" "$cur_bin" && die "the two binaries are identical; is HEAD $prev_rev?"
cur_rev="$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src || echo +dirty)"

# mqload's own JSON report is --report-json since --json took Locust's meaning; the
# previous release (28d35e8) still calls it --json.
report_json_flag() { if "$1" --help 2>/dev/null | grep -q -- '--report-json'; then echo --report-json; else echo --json; fi; }

# --- one run: bench-local.sh, then its figures on one line --------------------
# Prints: messages cpu_per_100k send_lag_p99_ms rss_mib
bench_once() {
    local bin="$1" tag="$2"; shift 2
    local log="$out/$tag.log" json="$out/$tag.json"
    MQLOAD_BIN="$bin" bash "$root/scripts/bench-local.sh" -t "$run_time" "$(report_json_flag "$bin")" "$json" "$@" \
        > "$log" 2>&1 || echo "bench-release.sh: $tag: mqload exited non-zero (see below)" >&2
    local msgs cpu lag rss
    msgs="$(awk '/^broker-counted messages  / { print $3 }' "$log")"
    cpu="$(awk '/^mqload CPU per 100k messages/ { print $6 }' "$log")"
    rss="$(awk '/^mqload peak RSS/ { print $4 }' "$log")"
    lag="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["send_lag"]["p99_us"] / 1000)' "$json" 2>/dev/null || echo n/a)"
    echo "${msgs:-0} ${cpu:-n/a} $lag ${rss:-n/a}"
}

# --- syscalls: one run under strace -c -f -------------------------------------
# Prints: messages recvmsg recvmsg_errors writes(writev+sendto) epoll_wait
strace_once() {
    local bin="$1" tag="$2"; shift 2
    local wrapper="$out/$tag-strace.sh" counts="$out/$tag.strace" log="$out/$tag.log"
    printf '#!/bin/sh\nexec strace -c -f -o %q %q "$@"\n' "$counts" "$bin" > "$wrapper"
    chmod +x "$wrapper"
    MQLOAD_BIN="$wrapper" bash "$root/scripts/bench-local.sh" -t "$strace_time" "$@" \
        > "$log" 2>&1 || echo "bench-release.sh: $tag: mqload exited non-zero" >&2
    local msgs calls
    msgs="$(awk '/^broker-counted messages  / { print $3 }' "$log")"
    # strace -c columns: % time, seconds, usecs/call, calls, [errors,] syscall
    calls() { awk -v name="$1" '$NF == name { print $4; found = 1 } END { if (!found) print 0 }' "$counts"; }
    errors() { awk -v name="$1" '$NF == name && NF == 6 { print $5; found = 1 } END { if (!found) print 0 }' "$counts"; }
    echo "${msgs:-0} $(calls recvmsg) $(errors recvmsg) $(( $(calls writev) + $(calls sendto) )) $(calls epoll_wait)"
}

echo "previous: $prev_rev ($prev_bin); current: $cur_rev" >&2
echo "load: 1,000 x 10 msg/s QoS 1 TLS 100 B (bench-local.sh defaults) $*" >&2
declare -a prev_rows cur_rows
for (( i = 1; i <= pairs; i++ )); do
    echo "pair $i/$pairs: previous..." >&2
    prev_rows+=("$(bench_once "$prev_bin" "prev-$i" "$@")")
    echo "pair $i/$pairs: current..." >&2
    cur_rows+=("$(bench_once "$cur_bin" "cur-$i" "$@")")
done
echo "syscalls under strace -c -f ($strace_time each)..." >&2
prev_sys="$(strace_once "$prev_bin" prev-strace "$@")"
cur_sys="$(strace_once "$cur_bin" cur-strace "$@")"

echo
echo "==> bench-release results ($run_time runs, alternating; 'acked' = broker-counted QoS 1 messages)"
printf '%-6s %-10s %12s %16s %18s %14s\n' pair binary acked "CPU-s per 100k" "send-lag p99 ms" "peak RSS MiB"
for (( i = 0; i < pairs; i++ )); do
    read -r m c l r <<< "${prev_rows[i]}"
    printf '%-6s %-10s %12s %16s %18s %14s\n' "$((i + 1))" "$prev_rev" "$m" "$c" "$l" "$r"
    read -r m c l r <<< "${cur_rows[i]}"
    printf '%-6s %-10s %12s %16s %18s %14s\n' "$((i + 1))" "$cur_rev" "$m" "$c" "$l" "$r"
done
echo
printf '%-10s %10s %10s %14s %14s %10s %12s %12s\n' binary acked recvmsg "recvmsg EAGAIN" "writev+sendto" epoll_wait "recvmsg/msg" "writes/msg"
for row in "$prev_rev $prev_sys" "$cur_rev $cur_sys"; do
    read -r name m rv re wv ew <<< "$row"
    awk -v n="$name" -v m="$m" -v rv="${rv:-0}" -v re="${re:-0}" -v wv="${wv:-0}" -v ew="${ew:-0}" 'BEGIN {
        printf "%-10s %10d %10d %14d %14d %10d %12s %12s\n", n, m, rv, re, wv, ew,
            (m > 0 ? sprintf("%.3f", rv / m) : "n/a"), (m > 0 ? sprintf("%.3f", wv / m) : "n/a") }'
done
