#!/bin/sh
# make_corpus.sh: regenerates the committed seed corpus of fuzz_envelope
# (tests/fuzz/corpus/) from a build tree: one envelope per record kind, all
# kinds, a heartbeat (bm-fuzz-seeds) and bm-sendraw's hostile cases.
#
#   tests/fuzz/make_corpus.sh [BUILD_DIR]      (default: build)
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd -P)
BUILD=${1:-$SRC/build}
OUT=$SRC/tests/fuzz/corpus
mkdir -p "$OUT"
"$BUILD/tests/bm-fuzz-seeds" "$OUT"
for c in good truncated garbage unknown-branch nps11 bad-version bad-stream; do
    "$BUILD/tests/bm-sendraw" --case "$c" --dump "$OUT/sendraw_$c" \
        --stream 0123456789abcdef0123456789abcdef
done
echo "seed corpus in $OUT: $(ls "$OUT" | wc -l) files"
