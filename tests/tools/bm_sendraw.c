/* bm-sendraw: a raw DEALER client for hostile-input tests of the collector.
 *
 *   bm-sendraw --endpoint E --case CASE [--branch B] [--agent A]
 *              [--stream HEX32] [--seq N] [--source-id ID] [--bytes N]
 *              [--timeout-ms MS] [--curve-secret FILE --curve-server KEY|FILE]
 *              [--plain] [--dump FILE] [--sent-ahead-s S]
 *
 * CURVE (issue: security): --curve-secret/--curve-server, or else the
 * environment variables BM_SENDRAW_CURVE_SECRET and BM_SENDRAW_CURVE_SERVER
 * (tests/integration/lib.sh sets them), make the client a CURVE client;
 * --plain ignores them.  --dump FILE writes the frame to FILE and sends
 * nothing (the fuzzer's seed corpus is made this way).
 *
 * It sends crafted frames that a real agent never would and prints one line
 * per reply, so that a shell test can assert on the collector's answer:
 *   result=ack stored=N duplicates=N rejected=N batch_duplicate=0|1 reasons="..."
 *   result=error code=ERROR_... message="..."
 *   result=heartbeat_ok
 *   result=timeout
 * Exit status: 0 when every expected reply arrived, 1 on a timeout or a
 * local failure, 2 on a usage error.
 *
 * Cases: good, truncated, garbage, oversize, unknown-branch, nps11,
 * bad-version, bad-stream, resend (the same good batch twice: two replies).
 * Owns: one ZeroMQ context and socket for the run. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "bm_err.h"
#include "bm_keyfile.h"
#include "bm_time.h"
#include "bm_wire.h"

typedef struct {
    const char *endpoint;
    const char *kase;
    const char *branch;
    bool branch_set;    /* --branch given: unknown-branch sends it as is */
    const char *agent;
    const char *source_id;
    char stream[BM_STREAM_ID_LEN + 1];
    uint64_t seq;
    size_t bytes;
    int timeout_ms;
    const char *curve_secret, *curve_server, *dump;
    uint64_t ahead_s;   /* --sent-ahead-s: the envelope's sent_at lies this far ahead */
    bool plain;
} s_opts_t;

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: bm-sendraw --endpoint E --case CASE [--branch B] [--agent A]\n"
            "                  [--stream HEX32] [--seq N] [--source-id ID] [--bytes N]\n"
            "                  [--timeout-ms MS]\n"
            "cases: good truncated garbage oversize unknown-branch nps11 bad-version\n"
            "       bad-stream resend\n"
            "prints one line per reply: result=ack ... | result=error code=... | result=timeout\n");
}

/* Prints s in double quotes with quotes, backslashes and control characters
 * escaped, so one reply stays one line. */
static void s_print_quoted(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void s_print_reply(const bm_reply_t *r)
{
    switch (r->result_case) {
    case BRANCHMARK__V1__REPLY__RESULT_ACK: {
        const Branchmark__V1__Ack *a = r->ack;
        printf("result=ack stored=%u duplicates=%u rejected=%zu batch_duplicate=%d reasons=",
               a->stored, a->duplicates, a->n_rejected, a->batch_was_duplicate ? 1 : 0);
        char reasons[4096];
        size_t o = 0;
        reasons[0] = '\0';
        for (size_t i = 0; i < a->n_rejected && o < sizeof reasons; i++) {
            const Branchmark__V1__RecordRejection *rj = a->rejected[i];
            int n = snprintf(reasons + o, sizeof reasons - o, "%s%u:%s: %s", i ? "; " : "",
                             rj->index, rj->source_id ? rj->source_id : "",
                             rj->reason ? rj->reason : "");
            if (n < 0)
                break;
            o += (size_t)n;
        }
        s_print_quoted(reasons);
        putchar('\n');
        break;
    }
    case BRANCHMARK__V1__REPLY__RESULT_ERROR: {
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
            &branchmark__v1__error_code__descriptor, (int)r->error->code);
        printf("result=error code=%s message=", v ? v->name : "ERROR_UNKNOWN_VALUE");
        s_print_quoted(r->error->message);
        putchar('\n');
        break;
    }
    case BRANCHMARK__V1__REPLY__RESULT_HEARTBEAT_OK:
        printf("result=heartbeat_ok\n");
        break;
    default:
        printf("result=empty\n");
        break;
    }
    fflush(stdout);
}

/* Builds the envelope of a case into a heap buffer; *batch_len is the
 * encoded size of its batch (the envelope's last field).  Returns NULL when
 * out of memory. */
static uint8_t *s_build(const s_opts_t *o, size_t *len, size_t *batch_len)
{
    int64_t now = bm_now_ms();
    char sid_good[BM_SOURCE_ID_MAX + 1], sid_bad[BM_SOURCE_ID_MAX + 16];
    if (o->source_id)
        snprintf(sid_good, sizeof sid_good, "%s", o->source_id);
    else
        snprintf(sid_good, sizeof sid_good, "RAW-%.8s-%" PRIu64, o->stream, o->seq);
    snprintf(sid_bad, sizeof sid_bad, "%s-nps11", sid_good);

    Branchmark__V1__Receipt receipt = BRANCHMARK__V1__RECEIPT__INIT;
    receipt.at_ms = now - 3600 * 1000;
    receipt.amount_minor = 1234;
    receipt.currency = (char *)"EUR";
    Branchmark__V1__Record good = BRANCHMARK__V1__RECORD__INIT;
    good.source_id = sid_good;
    good.kind_case = BRANCHMARK__V1__RECORD__KIND_RECEIPT;
    good.receipt = &receipt;

    Branchmark__V1__SurveyResponse survey = BRANCHMARK__V1__SURVEY_RESPONSE__INIT;
    survey.responded_at_ms = now - 3600 * 1000;
    survey.nps_answer_case = BRANCHMARK__V1__SURVEY_RESPONSE__NPS_ANSWER_NPS;
    survey.nps = 11;
    survey.why = (char *)"";
    survey.segment = (char *)"";
    survey.survey_channel = (char *)"kiosk";
    Branchmark__V1__Record bad = BRANCHMARK__V1__RECORD__INIT;
    bad.source_id = sid_bad;
    bad.kind_case = BRANCHMARK__V1__RECORD__KIND_SURVEY;
    bad.survey = &survey;

    Branchmark__V1__Record *recs[2] = {&good, &bad};
    Branchmark__V1__Batch batch = BRANCHMARK__V1__BATCH__INIT;
    batch.records = recs;
    batch.n_records = strcmp(o->kase, "nps11") == 0 ? 2 : 1;

    Branchmark__V1__Envelope env = BRANCHMARK__V1__ENVELOPE__INIT;
    env.protocol_version = strcmp(o->kase, "bad-version") == 0 ? 2 : BM_PROTOCOL_VERSION;
    env.agent_id = (char *)o->agent;
    env.branch_code = (char *)(strcmp(o->kase, "unknown-branch") == 0 && !o->branch_set
                                   ? "NOSUCHBRANCH"
                                   : o->branch);
    env.stream_id = strcmp(o->kase, "bad-stream") == 0 ? (char *)"NOT-A-STREAM" : (char *)o->stream;
    env.sequence = o->seq;
    env.sent_at_ms = now + (int64_t)o->ahead_s * 1000;
    env.body_case = BRANCHMARK__V1__ENVELOPE__BODY_BATCH;
    env.batch = &batch;
    *batch_len = protobuf_c_message_get_packed_size(&batch.base);
    return bm_message_encode(&env.base, len);
}

/* splitmix64 for the garbage bytes: reproducible, no rand(). */
static uint64_t s_mix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The frame to send for the case (heap).  Returns NULL with err. */
static uint8_t *s_frame(const s_opts_t *o, size_t *len, bm_err_t *err)
{
    const char *k = o->kase;
    if (!strcmp(k, "garbage")) {
        *len = 256;
        uint8_t *buf = malloc(*len);
        if (!buf)
            goto oom;
        uint64_t x = 0x5eed;
        for (size_t i = 0; i < *len; i++)
            buf[i] = (uint8_t)s_mix(&x);
        /* Field 0 with wire type 7 does not exist: no protobuf decoder can
         * take this frame for a message, whatever follows. */
        buf[0] = 0x07;
        return buf;
    }
    size_t n = 0, batch_len = 0;
    uint8_t *env = s_build(o, &n, &batch_len);
    if (!env)
        goto oom;
    if (!strcmp(k, "truncated")) {
        /* Cut in the middle of the batch, which protobuf-c writes last (highest
         * field number): its length prefix promises more than follows, so the
         * frame cannot decode, whatever the header's size. */
        *len = n - batch_len / 2;
        return env;
    }
    if (!strcmp(k, "oversize")) {
        size_t want = o->bytes > n ? o->bytes : n;
        uint8_t *big = realloc(env, want);
        if (!big) {
            free(env);
            goto oom;
        }
        memset(big + n, 0, want - n);
        *len = want;
        return big;
    }
    *len = n;
    return env;
oom:
    bm_err_set(err, "out of memory building the frame");
    return NULL;
}

static int s_parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < lo || v > hi) {
        fprintf(stderr, "bm-sendraw: %s: \"%s\" is not an integer in %" PRIu64 "..%" PRIu64 "\n",
                opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const cases[] = {"good", "truncated", "garbage", "oversize",
                                        "unknown-branch", "nps11", "bad-version",
                                        "bad-stream", "resend", NULL};
    s_opts_t o;
    memset(&o, 0, sizeof o);
    o.branch = "B001";
    o.agent = "rawtest";
    o.seq = 1;
    o.bytes = BM_MAX_FRAME_DEFAULT + 1024;
    o.timeout_ms = 5000;
    bm_err_t err;
    bm_err_clear(&err);

    o.curve_secret = getenv("BM_SENDRAW_CURVE_SECRET");
    o.curve_server = getenv("BM_SENDRAW_CURVE_SERVER");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            s_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--plain")) {
            o.plain = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bm-sendraw: unknown option or missing value: \"%s\"\n", a);
            s_usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        uint64_t n;
        if (!strcmp(a, "--endpoint")) {
            o.endpoint = v;
        } else if (!strcmp(a, "--case")) {
            o.kase = v;
        } else if (!strcmp(a, "--branch")) {
            o.branch = v;
            o.branch_set = true;
        } else if (!strcmp(a, "--agent")) {
            o.agent = v;
        } else if (!strcmp(a, "--curve-secret")) {
            o.curve_secret = v;
        } else if (!strcmp(a, "--curve-server")) {
            o.curve_server = v;
        } else if (!strcmp(a, "--dump")) {
            o.dump = v;
        } else if (!strcmp(a, "--sent-ahead-s")) {
            if (s_parse_u64(a, v, 0, 365ULL * 86400, &o.ahead_s))
                return 2;
        } else if (!strcmp(a, "--source-id")) {
            o.source_id = v;
        } else if (!strcmp(a, "--stream")) {
            if (strlen(v) != BM_STREAM_ID_LEN) {
                fprintf(stderr, "bm-sendraw: --stream: \"%s\" is not %d hex characters\n", v,
                        BM_STREAM_ID_LEN);
                return 2;
            }
            memcpy(o.stream, v, BM_STREAM_ID_LEN + 1);
        } else if (!strcmp(a, "--seq")) {
            if (s_parse_u64(a, v, 0, UINT64_MAX, &o.seq))
                return 2;
        } else if (!strcmp(a, "--bytes")) {
            if (s_parse_u64(a, v, 1, 1ULL << 30, &n))
                return 2;
            o.bytes = (size_t)n;
        } else if (!strcmp(a, "--timeout-ms")) {
            if (s_parse_u64(a, v, 1, 600000, &n))
                return 2;
            o.timeout_ms = (int)n;
        } else {
            fprintf(stderr, "bm-sendraw: unknown option \"%s\"\n", a);
            s_usage(stderr);
            return 2;
        }
    }
    if ((!o.endpoint && !o.dump) || !o.kase) {
        fprintf(stderr, "bm-sendraw: --endpoint (or --dump) and --case are required\n");
        s_usage(stderr);
        return 2;
    }
    bool known = false;
    for (int i = 0; cases[i]; i++)
        known = known || !strcmp(o.kase, cases[i]);
    if (!known) {
        fprintf(stderr, "bm-sendraw: unknown case \"%s\"\n", o.kase);
        s_usage(stderr);
        return 2;
    }
    if (!o.stream[0] && bm_stream_id_new(o.stream, &err)) {
        fprintf(stderr, "bm-sendraw: %s\n", err.msg);
        return 1;
    }

    size_t len = 0;
    uint8_t *frame = s_frame(&o, &len, &err);
    if (!frame) {
        fprintf(stderr, "bm-sendraw: %s\n", err.msg);
        return 1;
    }
    if (o.dump) {
        FILE *fp = fopen(o.dump, "wb");
        bool ok = fp && fwrite(frame, 1, len, fp) == len;
        if (fp && fclose(fp) != 0)
            ok = false;
        free(frame);
        if (!ok) {
            fprintf(stderr, "bm-sendraw: could not write \"%s\": %s\n", o.dump, strerror(errno));
            return 1;
        }
        return 0;
    }
    char curve_sec[BM_Z85_KEY_LEN + 1] = "", curve_pub[BM_Z85_KEY_LEN + 1] = "",
         curve_srv[BM_Z85_KEY_LEN + 1] = "";
    bool curve = !o.plain && o.curve_secret && *o.curve_secret;
    if (curve && (bm_keyfile_read_secret(o.curve_secret, curve_sec, &err) < 0 ||
                  bm_keyfile_read_public(o.curve_server ? o.curve_server : "", curve_srv,
                                         &err) < 0 ||
                  zmq_curve_public(curve_pub, curve_sec) < 0)) {
        fprintf(stderr, "bm-sendraw: %s\n", err.msg[0] ? err.msg : "bad CURVE key");
        free(frame);
        return 1;
    }
    int expected = strcmp(o.kase, "resend") == 0 ? 2 : 1;
    int rc = 1, got = 0;
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    if (!sock) {
        fprintf(stderr, "bm-sendraw: could not create a ZeroMQ socket: %s\n", zmq_strerror(errno));
        goto done;
    }
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (curve && (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, curve_srv, BM_Z85_KEY_LEN) != 0 ||
                  zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, curve_pub, BM_Z85_KEY_LEN) != 0 ||
                  zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, curve_sec, BM_Z85_KEY_LEN) != 0)) {
        fprintf(stderr, "bm-sendraw: could not set the CURVE keys: %s\n", zmq_strerror(errno));
        goto done;
    }
    if (zmq_connect(sock, o.endpoint) != 0) {
        fprintf(stderr, "bm-sendraw: could not connect to \"%s\": %s\n", o.endpoint,
                zmq_strerror(errno));
        goto done;
    }
    for (int i = 0; i < expected; i++) {
        if (zmq_send(sock, frame, len, 0) < 0) {
            fprintf(stderr, "bm-sendraw: could not send to \"%s\": %s\n", o.endpoint,
                    zmq_strerror(errno));
            goto done;
        }
        /* resend: the second copy goes only after the first is answered, as
         * an agent that lost the first ack would do. */
        int64_t deadline = bm_mono_ms() + o.timeout_ms;
        for (;;) {
            int64_t left = deadline - bm_mono_ms();
            if (left <= 0) {
                printf("result=timeout\n");
                goto done;
            }
            zmq_pollitem_t pi = {sock, 0, ZMQ_POLLIN, 0};
            int n = zmq_poll(&pi, 1, (long)left);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                fprintf(stderr, "bm-sendraw: poll failed: %s\n", zmq_strerror(errno));
                goto done;
            }
            if (n == 0)
                continue;
            /* The reply is the last frame (a collector may put an empty
             * delimiter frame before it). */
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, sock, 0) < 0) {
                zmq_msg_close(&msg);
                continue;
            }
            while (zmq_msg_more(&msg)) {
                zmq_msg_close(&msg);
                zmq_msg_init(&msg);
                if (zmq_msg_recv(&msg, sock, 0) < 0)
                    break;
            }
            bm_reply_t *reply = bm_reply_decode(zmq_msg_data(&msg), zmq_msg_size(&msg),
                                                BM_MAX_FRAME_DEFAULT, &err);
            zmq_msg_close(&msg);
            if (!reply) {
                printf("result=undecodable message=");
                s_print_quoted(err.msg);
                putchar('\n');
                goto done;
            }
            s_print_reply(reply);
            bm_reply_free(&reply);
            got++;
            break;
        }
    }
    rc = got == expected ? 0 : 1;
done:
    fflush(stdout);
    free(frame);
    if (sock)
        zmq_close(sock);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}
