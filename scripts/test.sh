#!/usr/bin/env bash
# The project's test command (what the README tells you to run, and what CI
# runs through .ci/run): installs the broker tools when it can, then format
# check, clippy with warnings as errors, and every test target.
#
# The integration tests start their own mosquitto on free loopback ports; the
# system mosquitto service is never needed (if the Debian package started one
# on 1883, it is harmless and left alone).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

section() { printf '\n==> %s\n' "$*"; }

# mosquitto lives in /usr/sbin on Debian, which a non-root PATH may lack.
have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" ]]; }

section "broker tools (mosquitto, mosquitto_sub, mosquitto_pub, openssl)"
missing=()
for tool in mosquitto mosquitto_sub mosquitto_pub openssl; do
    have "$tool" || missing+=("$tool")
done
if (( ${#missing[@]} > 0 )); then
    echo "missing: ${missing[*]}"
    if [[ "$(id -u)" == 0 ]]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y mosquitto mosquitto-clients openssl
    else
        echo "scripts/test.sh: the integration tests need a real MQTT broker. Install it with:" >&2
        echo "  sudo apt-get install -y mosquitto mosquitto-clients openssl" >&2
        exit 1
    fi
fi
for tool in mosquitto mosquitto_sub mosquitto_pub openssl; do
    have "$tool" || { echo "scripts/test.sh: $tool is still missing after installing" >&2; exit 1; }
done
echo "mosquitto: $( (mosquitto -h 2>/dev/null || /usr/sbin/mosquitto -h 2>/dev/null || true) | head -1)"
echo "openssl: $(openssl version)"

section "browser for the HTML report test (chromium)"
if ! have chromium; then
    if [[ "$(id -u)" == 0 ]]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y chromium
    else
        echo "scripts/test.sh: the HTML report test renders in headless Chromium. Install it with:" >&2
        echo "  sudo apt-get install -y chromium" >&2
        exit 1
    fi
fi
have chromium || { echo "scripts/test.sh: chromium is still missing after installing" >&2; exit 1; }
echo "chromium: $(chromium --version 2>/dev/null | head -1)"

section "Locust master for the worker tests (pinned, in target/locust-venv)"
# tests/locust.rs runs a real, unmodified Locust master against mqload workers.
# Installed with pip from the Python package index once; later runs reuse it.
LOCUST_VERSION=2.47.0
venv=target/locust-venv
if ! "$venv/bin/locust" --version 2>/dev/null | grep -q "^locust $LOCUST_VERSION "; then
    # Debian's python3 has the venv module but creates venvs only with python3-venv.
    if ! python3 -c 'import ensurepip' >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y python3 python3-venv
    fi
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
