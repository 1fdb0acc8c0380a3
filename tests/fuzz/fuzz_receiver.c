/* fuzz_receiver: a libFuzzer harness over the collector receiver's whole
 * handling of one message, with the database cut off at the store's
 * boundary (issue 14 part 5).
 *
 * Every input is one ZeroMQ message as a peer could send it.  It goes
 * through the functions receiver.c itself runs: bm_receiver_check_message
 * (decode, encoding scan, header rules, clock), then for a batch
 * bm_receiver_check_record of every record (encoding, validation, the
 * reference-data checks against an empty cache), then a fake store in
 * place of store.c (every accepted record is stored once per source_id,
 * later copies count as duplicates), and the reply is built with the
 * receiver's own encoders.  What the sockets, the ZAP handler and the
 * database would decide (key, branch, binding, the ledger) is not here.
 *
 * Findings besides crashes, leaks and sanitizer reports (abort()):
 *  - a refused message without an error code or message;
 *  - scanner and decoder disagree on the number of records;
 *  - stored + duplicates + rejected is not the number of records;
 *  - a reply that does not decode as a Reply, or carries a string that is
 *    not valid UTF-8, or a stream id that is neither "" nor a valid one.
 *
 * Build: cmake -DBM_FUZZ=ON with clang (scripts/test.sh, build-fuzz/); run:
 * build-fuzz/tests/fuzz_receiver DIR tests/fuzz/corpus.  Without BM_FUZZ
 * the same code is built as fuzz_receiver_replay (tests/fuzz/replay_main.c),
 * which runs the seed corpus as a unit test.  Owns, across calls, only its
 * static work arrays and an empty reference cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm_err.h"
#include "bm_record.h"
#include "bm_wire.h"
#include "receiver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_NOW_MS 1795000000000LL   /* fixed, so a finding replays the same way */

static void s_finding(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_receiver: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void s_check_text(const char *what, const char *s)
{
    if (!s || !bm_utf8_valid(s))
        s_finding("a reply string is not valid UTF-8", what);
}

/* The reply must decode and carry only valid UTF-8. */
static void s_check_reply(const uint8_t *buf, size_t len)
{
    bm_err_t err;
    if (!buf)
        s_finding("a reply could not be encoded", NULL);
    bm_reply_t *r = bm_reply_decode(buf, len, BM_MAX_FRAME_DEFAULT, &err);
    if (!r)
        s_finding("the reply does not decode", err.msg);
    s_check_text("stream_id", r->stream_id);
    if (*r->stream_id && !bm_stream_id_valid(r->stream_id))
        s_finding("the reply echoes an invalid stream id", NULL);
    if (r->result_case == BRANCHMARK__V1__REPLY__RESULT_ERROR) {
        s_check_text("error.message", r->error->message);
    } else if (r->result_case == BRANCHMARK__V1__REPLY__RESULT_ACK) {
        for (size_t i = 0; i < r->ack->n_rejected; i++) {
            s_check_text("rejected.source_id", r->ack->rejected[i]->source_id);
            s_check_text("rejected.reason", r->ack->rejected[i]->reason);
        }
    }
    bm_reply_free(&r);
}

static int s_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks every record and answers like the receiver after a COMMIT of a
 * store that stores each accepted source_id once. */
static uint8_t *s_batch(const bm_envelope_t *env, const bm_span_t *spans, size_t *len)
{
    static const char *sort_buf[BM_RECEIVER_SORT_MAX];
    static Branchmark__V1__RecordRejection rej[BM_MAX_RECORDS_PER_BATCH];
    static Branchmark__V1__RecordRejection *rej_p[BM_MAX_RECORDS_PER_BATCH];
    static char reasons[BM_MAX_RECORDS_PER_BATCH][BM_ERR_MSG_MAX];
    static const char *ids[BM_MAX_RECORDS_PER_BATCH];
    static bm_refcache_t *cache;
    if (!cache && !(cache = bm_refcache_new()))
        s_finding("out of memory", NULL);
    bm_time_window_t window = {S_NOW_MS, 400LL * 86400000, 86400000};
    size_t n = env->batch->n_records, n_rej = 0, n_ok = 0;
    for (size_t i = 0; i < n; i++) {
        bm_err_t err;
        const bm_record_t *rec = env->batch->records[i];
        int rc = bm_receiver_check_record(env, i, &spans[i], &window, cache, NULL, NULL,
                                          sort_buf, &err);
        if (rc < 0) {
            if (!err.msg[0])
                s_finding("a record was refused without a reason", NULL);
            bm_receiver_rejection(&rej[n_rej], reasons[n_rej], i,
                                  rc == -2 ? NULL : rec->source_id, err.msg);
            rej_p[n_rej] = &rej[n_rej];
            n_rej++;
        } else {
            ids[n_ok++] = rec->source_id;
        }
    }
    /* The fake store: one row per distinct source_id. */
    qsort(ids, n_ok, sizeof *ids, s_cmp);
    uint32_t stored = 0;
    for (size_t i = 0; i < n_ok; i++)
        stored += i == 0 || strcmp(ids[i - 1], ids[i]) != 0;
    Branchmark__V1__Ack ack = BRANCHMARK__V1__ACK__INIT;
    ack.stored = stored;
    ack.duplicates = (uint32_t)(n_ok - stored);
    ack.n_rejected = n_rej;
    ack.rejected = n_rej ? rej_p : NULL;
    if ((size_t)ack.stored + ack.duplicates + ack.n_rejected != n)
        s_finding("stored + duplicates + rejected is not the number of records", NULL);
    return bm_receiver_encode_ack(env, &ack, S_NOW_MS, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bm_span_t spans[BM_MAX_RECORDS_PER_BATCH];
    bm_msg_limits_t lim = {BM_MAX_FRAME_DEFAULT, S_NOW_MS, 300000};
    bm_msg_check_t chk;
    uint8_t *reply = NULL;
    size_t len = 0;
    if (bm_receiver_check_message(data, size, &lim, spans, BM_MAX_RECORDS_PER_BATCH, &chk) < 0) {
        if (chk.code == BRANCHMARK__V1__ERROR_CODE__ERROR_UNSPECIFIED || !chk.msg[0])
            s_finding("a message was refused without an error code and message", NULL);
        reply = bm_receiver_encode_error(chk.env, chk.code, chk.msg, S_NOW_MS, &len);
    } else if (chk.env->body_case == BRANCHMARK__V1__ENVELOPE__BODY_HEARTBEAT) {
        reply = bm_receiver_encode_heartbeat(chk.env, S_NOW_MS, &len);
    } else {
        if (chk.n_spans != chk.env->batch->n_records)
            s_finding("the scan and the decoder disagree on the number of records", NULL);
        reply = s_batch(chk.env, spans, &len);
    }
    s_check_reply(reply, len);
    free(reply);
    bm_envelope_free(&chk.env);
    return 0;
}
