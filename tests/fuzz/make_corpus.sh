#!/bin/sh
# make_corpus.sh: regenerates the committed seed corpus of fuzz_envelope
# (tests/fuzz/corpus/) from a build tree: one envelope per record kind, all
# kinds, a heartbeat (bm-fuzz-seeds), bm-sendraw's hostile cases and the
# foreign client's (tests/python/foreign_client.py --dump); fuzz_receiver
# shares it.
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
# The foreign client's hostile cases (issue 14 part 5), when Debian's Python
# with protobuf and protoc are there (scripts/deps.sh).
if command -v protoc >/dev/null 2>&1 && /usr/bin/python3 -c 'import google.protobuf, zmq' 2>/dev/null; then
    PYOUT=$(mktemp -d)
    protoc --python_out="$PYOUT" -I "$SRC/proto" "$SRC/proto/branchmark.proto"
    PYTHONPATH=$PYOUT /usr/bin/python3 "$SRC/tests/python/foreign_client.py" --dump "$OUT"
    rm -rf "$PYOUT"
fi
echo "seed corpus in $OUT (with the foreign client's cases): $(ls "$OUT" | wc -l) files"
