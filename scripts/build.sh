#!/bin/sh
# build.sh: configures and builds Branchmark with CMake.
#
#   build.sh [--asan] BUILD_DIR
#
# Default: RelWithDebInfo.  --asan: Debug with AddressSanitizer and
# UndefinedBehaviorSanitizer (-DBM_SANITIZE=ON).  Run from anywhere; the
# source tree is the one this script lives in.
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd -P)
asan=0
if [ "${1:-}" = "--asan" ]; then
    asan=1
    shift
fi
[ $# -eq 1 ] || { echo "usage: build.sh [--asan] BUILD_DIR" >&2; exit 2; }
BUILD=$1

if [ $asan -eq 1 ]; then
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DBM_SANITIZE=ON >/dev/null
else
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBM_SANITIZE=OFF >/dev/null
fi
cmake --build "$BUILD" -j"$(nproc)"
