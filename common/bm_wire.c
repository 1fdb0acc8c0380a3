/* bm_wire: the envelope codec and the header rules of the wire contract; see
 * bm_wire.h.  Owns nothing beyond the objects it returns: decoded envelopes
 * and replies are protobuf-c heap trees (system allocator) freed with
 * bm_envelope_free / bm_reply_free. */
#include "bm_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include <sys/random.h>

typedef Branchmark__V1__ErrorCode bm_code_t;

/* Copies at most 40 bytes of s into buf with anything outside printable
 * ASCII written as \xNN, so that a hostile identifier cannot put control
 * characters or megabytes into a log line. */
static const char *s_printable(const char *s, char *buf, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i = 0;
    for (; s[i] && i < 40 && o + 5 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    if (s[i] && o + 4 < size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static int s_fail(bm_code_t *code, bm_code_t value, bm_err_t *err, const char *fmt,
                  const char *field, const char *what)
{
    if (code)
        *code = value;
    return bm_err_set(err, fmt, field, what);
}

bool bm_code_valid(const char *s, size_t max)
{
    if (!s)
        return false;
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= max)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return n >= 1;
}

static bool s_stream_id_valid(const char *s)
{
    if (!s || strlen(s) != BM_STREAM_ID_LEN)
        return false;
    for (size_t i = 0; i < BM_STREAM_ID_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void *s_decode(const ProtobufCMessageDescriptor *desc, const char *what,
                      const void *data, size_t len, size_t max_len, bm_err_t *err)
{
    if (len > max_len) {
        bm_err_set(err, "frame of %zu bytes exceeds the limit of %zu", len, max_len);
        return NULL;
    }
    if (!data && len > 0) {
        bm_err_set(err, "truncated or malformed %s (%zu bytes)", what, len);
        return NULL;
    }
    static const uint8_t empty[1] = {0};
    ProtobufCMessage *m =
        protobuf_c_message_unpack(desc, NULL, len, data ? (const uint8_t *)data : empty);
    if (!m)
        bm_err_set(err, "truncated or malformed %s (%zu bytes)", what, len);
    return m;
}

bm_envelope_t *bm_envelope_decode(const void *data, size_t len, size_t max_len,
                                  bm_err_t *err)
{
    return s_decode(&branchmark__v1__envelope__descriptor, "envelope", data, len,
                    max_len, err);
}

void bm_envelope_free(bm_envelope_t **env_p)
{
    if (env_p && *env_p) {
        protobuf_c_message_free_unpacked(&(*env_p)->base, NULL);
        *env_p = NULL;
    }
}

bm_reply_t *bm_reply_decode(const void *data, size_t len, size_t max_len, bm_err_t *err)
{
    return s_decode(&branchmark__v1__reply__descriptor, "reply", data, len, max_len, err);
}

void bm_reply_free(bm_reply_t **reply_p)
{
    if (reply_p && *reply_p) {
        protobuf_c_message_free_unpacked(&(*reply_p)->base, NULL);
        *reply_p = NULL;
    }
}

int bm_envelope_check(const bm_envelope_t *env, Branchmark__V1__ErrorCode *code,
                      bm_err_t *err)
{
    const bm_code_t invalid = BRANCHMARK__V1__ERROR_CODE__ERROR_INVALID_ENVELOPE;
    char buf[200];

    if (code)
        *code = BRANCHMARK__V1__ERROR_CODE__ERROR_UNSPECIFIED;
    if (!env) {
        if (code)
            *code = BRANCHMARK__V1__ERROR_CODE__ERROR_MALFORMED;
        return bm_err_set(err, "no envelope");
    }
    if (env->protocol_version != BM_PROTOCOL_VERSION) {
        if (code)
            *code = BRANCHMARK__V1__ERROR_CODE__ERROR_UNSUPPORTED_VERSION;
        return bm_err_set(err, "protocol_version: %u is not supported (this side speaks %d)",
                          env->protocol_version, BM_PROTOCOL_VERSION);
    }
    if (!bm_code_valid(env->agent_id, BM_AGENT_ID_MAX))
        return s_fail(code, invalid, err,
                      "%s: \"%s\" is not a valid identifier (1..64 of [A-Za-z0-9_.-])",
                      "agent_id", s_printable(env->agent_id ? env->agent_id : "", buf, sizeof buf));
    if (!bm_code_valid(env->branch_code, BM_CODE_MAX))
        return s_fail(code, invalid, err,
                      "%s: \"%s\" is not a valid code (1..32 of [A-Za-z0-9_.-])",
                      "branch_code",
                      s_printable(env->branch_code ? env->branch_code : "", buf, sizeof buf));
    if (!s_stream_id_valid(env->stream_id))
        return s_fail(code, invalid, err, "%s: \"%s\" is not 32 lower-case hex characters",
                      "stream_id", s_printable(env->stream_id ? env->stream_id : "", buf, sizeof buf));

    switch (env->body_case) {
    case BRANCHMARK__V1__ENVELOPE__BODY_BATCH: {
        const bm_batch_t *b = env->batch;
        if (env->sequence < 1) {
            if (code)
                *code = invalid;
            return bm_err_set(err, "sequence: a batch must have a sequence of 1 or more");
        }
        if (!b || b->n_records == 0) {
            if (code)
                *code = invalid;
            return bm_err_set(err, "batch: has no records");
        }
        if (b->n_records > BM_MAX_RECORDS_PER_BATCH) {
            if (code)
                *code = invalid;
            return bm_err_set(err, "batch: %zu records exceed the limit of %d", b->n_records,
                              BM_MAX_RECORDS_PER_BATCH);
        }
        for (size_t i = 0; i < b->n_records; i++) {
            const bm_record_t *r = b->records[i];
            if (!r || r->kind_case == BRANCHMARK__V1__RECORD__KIND__NOT_SET) {
                if (code)
                    *code = invalid;
                return bm_err_set(err, "batch: record %zu has no kind", i);
            }
        }
        return 0;
    }
    case BRANCHMARK__V1__ENVELOPE__BODY_HEARTBEAT:
        if (env->sequence != 0) {
            if (code)
                *code = invalid;
            return bm_err_set(err, "sequence: a heartbeat must have sequence 0, not %llu",
                              (unsigned long long)env->sequence);
        }
        return 0;
    default:
        if (code)
            *code = invalid;
        return bm_err_set(err, "body: neither a batch nor a heartbeat");
    }
}

uint8_t *bm_message_encode(const ProtobufCMessage *msg, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    /* An all-default message packs to 0 bytes; malloc(0) may return NULL,
     * which would read as out of memory. */
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    size_t written = protobuf_c_message_pack(msg, buf);
    *len = written;
    return buf;
}

int bm_stream_id_new(char *out, bm_err_t *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[BM_STREAM_ID_LEN / 2];
    /* getrandom() rather than OpenSSL: the agent would otherwise map all of
     * libcrypto (about 3 MiB of resident pages) for these 16 bytes. */
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return bm_err_set(err, "could not get random bytes for a stream id: %s",
                              n < 0 ? strerror(errno) : "no data");
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[BM_STREAM_ID_LEN] = '\0';
    return 0;
}
