#!/bin/bash
# test.sh: the whole test suite, the one command CI runs (.ci/run).
#
#   ./scripts/test.sh
#
# 1. installs missing packages (scripts/deps.sh);
# 2. builds build/ (RelWithDebInfo) and build-asan/ (ASan + UBSan);
# 3. runs every unit and integration test in both (ctest), except two in
#    build-asan/: the browser test drives the page (JavaScript) in
#    Chromium, and the C server it talks to is already exercised under the
#    sanitizers by test_web_api; the package test builds and installs its
#    own release packages, so a second run would test the same bytes;
# 4. runs the end-to-end test once more with agent and collector under
#    valgrind memcheck (BM_VALGRIND=1; any valgrind error fails it);
# 5. builds the libFuzzer harnesses with clang in build-fuzz/ (-DBM_FUZZ=ON)
#    and fuzzes from the seed corpus tests/fuzz/corpus/ for 60 s in all: the
#    envelope decoder and validator (fuzz_envelope, 30 s) and the receiver's
#    whole handling of one message with a fake store (fuzz_receiver, 30 s);
#    any crash, leak or sanitizer report fails;
# and prints a summary.  Exits non-zero if anything failed.  Build and test
# logs stay in build/ and build-asan/ (ctest's Testing/Temporary/).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"

START=$SECONDS
NAMES=()
RESULTS=()
TIMES=()
FAILED=0

# run_step NAME COMMAND...: runs COMMAND, records PASS/FAIL and its time.
run_step() {
    local name=$1 t0=$SECONDS rc=0
    shift
    printf '\n=== %s\n' "$name"
    "$@" || rc=$?
    NAMES+=("$name")
    TIMES+=($((SECONDS - t0)))
    if [ $rc -eq 0 ]; then
        RESULTS+=(PASS)
    else
        RESULTS+=("FAIL ($rc)")
        FAILED=1
    fi
    return $rc
}

skip_step() { # skip_step NAME WHY: records a step that could not run
    NAMES+=("$1")
    RESULTS+=("SKIPPED: $2")
    TIMES+=(0)
    FAILED=1
}

summary() {
    printf '\n=== summary (%d s in all)\n' $((SECONDS - START))
    local i
    for i in "${!NAMES[@]}"; do
        printf '  %-44s %4d s  %s\n' "${NAMES[$i]}" "${TIMES[$i]}" "${RESULTS[$i]}"
    done
    if [ $FAILED -eq 0 ]; then
        echo "ALL PASSED"
    else
        echo "FAILED"
    fi
}

build_logged() { # build_logged [--asan] DIR
    local dir=${*: -1}
    mkdir -p "$dir"
    if "$ROOT/scripts/build.sh" "$@" >"$dir/test-build.log" 2>&1; then
        echo "built $dir (log: $dir/test-build.log)"
    else
        tail -n 60 "$dir/test-build.log"
        echo "build of $dir failed (log: $dir/test-build.log)"
        return 1
    fi
}

JOBS=$(nproc)

run_step "install missing packages" "$ROOT/scripts/deps.sh" || { summary; exit 1; }
run_step "build build/" build_logged "$ROOT/build"
BUILD_OK=$?
run_step "build build-asan/ (ASan+UBSan)" build_logged --asan "$ROOT/build-asan"
ASAN_OK=$?

if [ $BUILD_OK -eq 0 ]; then
    run_step "tests in build/ (unit + integration)" \
        ctest --test-dir "$ROOT/build" --output-on-failure -j"$JOBS"
else
    skip_step "tests in build/ (unit + integration)" "build failed"
fi
if [ $ASAN_OK -eq 0 ]; then
    # halt_on_error: a sanitizer finding ends the program, so the test fails.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        run_step "tests in build-asan/ (unit + integration)" \
        ctest --test-dir "$ROOT/build-asan" --output-on-failure -j"$JOBS" \
            -E '^(test_web_browser|test_packages)$' 
else
    skip_step "tests in build-asan/ (unit + integration)" "build failed"
fi
if [ $BUILD_OK -eq 0 ]; then
    BM_VALGRIND=1 run_step "end-to-end test under valgrind" \
        ctest --test-dir "$ROOT/build" --output-on-failure -R '^test_e2e$'
else
    skip_step "end-to-end test under valgrind" "build failed"
fi

# fuzz_run HARNESS SECONDS: libFuzzer for SECONDS; new inputs go to
# build-fuzz/corpus-HARNESS, the committed seeds are read only.  Findings
# land in build-fuzz/.  The two harnesses share the 60 s budget.
fuzz_run() {
    local h=$1 secs=$2
    mkdir -p "$ROOT/build-fuzz/corpus-$h"
    (cd "$ROOT/build-fuzz" &&
        ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            "./tests/$h" "corpus-$h" "$ROOT/tests/fuzz/corpus" -max_total_time="$secs" \
            -rss_limit_mb=2048 -detect_leaks=1 -print_final_stats=1 >"$h.log" 2>&1) || {
        tail -n 40 "$ROOT/build-fuzz/$h.log"
        return 1
    }
    grep -aE '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$ROOT/build-fuzz/$h.log"
}
fuzz_build() {
    mkdir -p "$ROOT/build-fuzz"
    { cmake -S "$ROOT" -B "$ROOT/build-fuzz" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
        -DBM_FUZZ=ON && cmake --build "$ROOT/build-fuzz" --target fuzz_envelope fuzz_receiver -j"$JOBS"; } \
        >"$ROOT/build-fuzz/test-build.log" 2>&1 || {
        tail -n 40 "$ROOT/build-fuzz/test-build.log"
        return 1
    }
    echo "built build-fuzz/ (log: build-fuzz/test-build.log)"
}
if command -v clang >/dev/null 2>&1; then
    if run_step "build build-fuzz/ (clang, libFuzzer)" fuzz_build; then
        run_step "fuzz the envelope decoder and validator (30 s)" fuzz_run fuzz_envelope 30
        run_step "fuzz the receiver's handling of a message (30 s)" fuzz_run fuzz_receiver 30
    else
        skip_step "fuzz the envelope decoder and validator (30 s)" "build failed"
        skip_step "fuzz the receiver's handling of a message (30 s)" "build failed"
    fi
else
    skip_step "fuzz the envelope decoder and validator (30 s)" "clang is not installed"
    skip_step "fuzz the receiver's handling of a message (30 s)" "clang is not installed"
fi

summary
exit $FAILED
