#!/usr/bin/env bash
# The project's test command (what the README tells you to run, and what CI
# runs through .ci/run): installs the broker tools when it can, then format
# check, clippy with warnings as errors, no import cycle, and every test target.
#
# The integration tests start their own mosquitto on free loopback ports; the
# system mosquitto service is never needed (if the Debian package started one
# on 1883, it is harmless and left alone).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

section() { printf '\n==> %s\n' "$*"; }

# mosquitto lives in /usr/sbin on Debian, which a non-root PATH may lack.
have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" ]]; }

section "system tools: mosquitto, openssl, chromium, prometheus, python3-venv"
# What the tests run, each as "tool:Debian package":
#   mosquitto and its clients: the broker every integration test starts and the
#     independent client that checks counts; openssl: test certificates;
#   chromium: the HTML report test renders the page headless;
#   prometheus/promtool: the live-metrics test scrapes with a real Prometheus;
#   python3-venv: the pinned Locust and botocore venvs below.
# A fresh machine gets them in one apt-get update + install.
tools=(mosquitto:mosquitto mosquitto_sub:mosquitto-clients mosquitto_pub:mosquitto-clients
       openssl:openssl chromium:chromium prometheus:prometheus promtool:prometheus)
missing=()
for entry in "${tools[@]}"; do
    have "${entry%%:*}" || missing+=("${entry#*:}")
done
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if (( ${#missing[@]} > 0 )); then
    packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
    echo "missing packages: $packages"
    if [[ "$(id -u)" == 0 ]]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        # shellcheck disable=SC2086
        apt-get install -y $packages
    else
        echo "scripts/test.sh: the tests need real third-party tools. Install them with:" >&2
        echo "  sudo apt-get install -y $packages" >&2
        exit 1
    fi
fi
for entry in "${tools[@]}"; do
    have "${entry%%:*}" || { echo "scripts/test.sh: ${entry%%:*} is still missing after installing" >&2; exit 1; }
done
echo "mosquitto: $( (mosquitto -h 2>/dev/null || /usr/sbin/mosquitto -h 2>/dev/null || true) | head -1)"
echo "openssl: $(openssl version)"
echo "chromium: $(chromium --version 2>/dev/null | head -1)"
echo "prometheus: $(prometheus --version 2>&1 | head -1)"

section "Locust master for the worker tests (pinned, in target/locust-venv)"
# tests/locust.rs runs a real, unmodified Locust master against mqload workers.
# Installed with pip from the Python package index once; later runs reuse it.
LOCUST_VERSION=2.47.0
venv=target/locust-venv
if ! "$venv/bin/locust" --version 2>/dev/null | grep -q "^locust $LOCUST_VERSION "; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "locust==$LOCUST_VERSION"
fi
"$venv/bin/locust" --version

section "botocore for the SigV4 cross-check (pinned, in target/aws-venv)"
# tests/aws_sigv4.rs compares mqload's presigned AWS IoT URLs with botocore's.
BOTOCORE_VERSION=1.44.18
aws_venv=target/aws-venv
if ! "$aws_venv/bin/python" -c "import botocore, sys; sys.exit(botocore.__version__ != '$BOTOCORE_VERSION')" 2>/dev/null; then
    rm -rf "$aws_venv"
    python3 -m venv "$aws_venv"
    "$aws_venv/bin/pip" install --quiet --disable-pip-version-check "botocore==$BOTOCORE_VERSION"
fi
"$aws_venv/bin/python" -c "import botocore; print('botocore', botocore.__version__)"

section "no import cycle between modules (scripts/module-cycles.sh)"
bash scripts/module-cycles.sh

section "cargo fmt --all -- --check"
cargo fmt --all -- --check

section "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

# Every broker-backed test starts its own mosquitto on its own ports, so tests
# may run in parallel; but each load test wants the CPU (mqload and the broker
# both), and on a small machine (CI has 2 cores) full parallelism would turn
# timing assertions into a lottery. Two at a time, unless the caller chose.
# RUST_TEST_THREADS rather than `-- --test-threads`: criterion bench binaries
# also run under --all-targets and do not accept libtest's flags.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"
section "cargo test --all-targets (RUST_TEST_THREADS=$RUST_TEST_THREADS${CI:+, CI=$CI})"
cargo test --all-targets

section "all checks passed"
