/* fuzz_envelope: a libFuzzer harness over the collector's decode-and-validate
 * path for untrusted frames (issue: security).
 *
 * Every input is one ZeroMQ message as a peer could send it: it goes
 * through bm_envelope_decode (with the default frame cap), bm_envelope_check
 * and, for a batch, bm_record_validate of every record, the code that runs
 * before anything touches the database.  The reference-data checks of the
 * receiver (questionnaire items, competitor codes, repeated items) need a
 * loaded cache and are not covered here.  Any crash, leak or sanitizer
 * report is a finding.
 *
 * Build: cmake -DBM_FUZZ=ON with clang (scripts/test.sh does it in
 * build-fuzz/); run: build-fuzz/tests/fuzz_envelope tests/fuzz/corpus.
 * Seeds: tests/fuzz/corpus/ (made by bm-fuzz-seeds and bm-sendraw --dump; see
 * tests/fuzz/make_corpus.sh).  Owns nothing between calls. */
#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"
#include "bm_record.h"
#include "bm_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bm_err_t err;
    bm_envelope_t *env = bm_envelope_decode(data, size, BM_MAX_FRAME_DEFAULT, &err);
    if (!env)
        return 0;
    Branchmark__V1__ErrorCode code = BRANCHMARK__V1__ERROR_CODE__ERROR_UNSPECIFIED;
    if (bm_envelope_check(env, &code, &err) == 0 &&
        env->body_case == BRANCHMARK__V1__ENVELOPE__BODY_BATCH && env->batch) {
        /* A fixed "now", so a finding replays the same way. */
        bm_time_window_t window = {1795000000000LL, 400LL * 24 * 3600 * 1000, 3600 * 1000};
        for (size_t i = 0; i < env->batch->n_records; i++) {
            (void)bm_record_validate(env->batch->records[i], &window, &err);
            (void)bm_record_time_ms(env->batch->records[i]);
        }
    }
    bm_envelope_free(&env);
    return 0;
}
