#!/bin/sh
# deps.sh: installs the Debian 12 packages Branchmark needs to build, test and
# run (compiler, CMake, ZeroMQ, protobuf-c, libpq, OpenSSL, jansson,
# PostgreSQL 15, valgrind, clang and its libFuzzer runtime for tests/fuzz,
# libmicrohttpd for branchmark-web, curl for its API tests, Debian's Python
# with protobuf, protoc and pyzmq for the foreign-client test and
# prometheus-client (its text-format parser) for test_prom_metrics, Chromium for the
# browser tests; dpkg-dev, debhelper, help2man and lintian for the Debian
# packages (scripts/package.sh) and systemd for systemd-analyze verify of
# their units (tests/integration/test_packages.sh); Node.js and
# npm only when the machine has none).  Idempotent: checks with dpkg-query first and
# says nothing when everything is there.  Needs root only when something is
# missing.  Only Debian's own apt repositories are used.
set -eu

PACKAGES="build-essential cmake pkg-config libzmq3-dev libprotobuf-c-dev
protobuf-c-compiler libpq-dev libssl-dev postgresql-15 postgresql-client-15
libjansson-dev valgrind clang libclang-rt-14-dev libmicrohttpd-dev chromium curl
python3 python3-protobuf protobuf-compiler python3-zmq python3-prometheus-client dpkg-dev debhelper help2man lintian systemd"

missing=""
command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs npm"
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages:$missing" >&2
    echo "deps.sh: run as root (or: sudo apt-get install$missing)" >&2
    exit 1
fi

echo "deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing
echo "deps.sh: done"
