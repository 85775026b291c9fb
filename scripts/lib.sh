# shellcheck shell=bash disable=SC2034,SC2154
# Helpers shared by the benchmark scripts; source it after setting `root` (the
# repository root) and defining `die MESSAGE` (each script names itself and
# picks its exit code there).

# True if the program is on PATH or in /usr/sbin (where mosquitto lives).
have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]]; }

# Installs the named Debian packages when run as root; otherwise stops with the
# command to run. Does nothing without arguments.
install_missing() {
    (( $# > 0 )) || return 0
    if [[ "$(id -u)" == 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
    else
        die "missing packages; install them with: sudo apt-get install -y $*"
    fi
}

# Sets `bin` to $MQLOAD_BIN, or builds the release mqload and uses that.
release_mqload() {
    if [[ -n "${MQLOAD_BIN:-}" ]]; then
        bin="$MQLOAD_BIN"
    else
        echo "building release mqload..." >&2
        (cd "$root" && cargo build --release --quiet --bin mqload)
        bin="$root/target/release/mqload"
    fi
}
