/* bm_wire: the envelope codec, the encoding scan and the header rules of the
 * wire contract (docs/protocol.md); see bm_wire.h.  Owns nothing beyond the
 * objects it returns: decoded envelopes and replies are protobuf-c heap
 * trees (system allocator) freed with bm_envelope_free / bm_reply_free. */
#include "bm_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include <sys/random.h>

typedef Branchmark__V1__ErrorCode bm_code_t;

/* Times as bm_record.c bounds them: years 0001..9999. */
#define S_TIME_MIN_MS (-62135596800000LL)
#define S_TIME_MAX_MS (253402300799999LL)

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

bool bm_stream_id_valid(const char *s)
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
    if (!bm_stream_id_valid(env->stream_id))
        return s_fail(code, invalid, err, "%s: \"%s\" is not 32 lower-case hex characters",
                      "stream_id", s_printable(env->stream_id ? env->stream_id : "", buf, sizeof buf));

    if (env->sequence > BM_SEQUENCE_MAX) {
        if (code)
            *code = invalid;
        return bm_err_set(err, "sequence: %llu exceeds the largest allowed, %lld (2^63 - 1)",
                          (unsigned long long)env->sequence, (long long)INT64_MAX);
    }
    if (env->sent_at_ms < S_TIME_MIN_MS || env->sent_at_ms > S_TIME_MAX_MS) {
        if (code)
            *code = invalid;
        return bm_err_set(err, "sent_at: %lld ms is outside the years 0001..9999",
                          (long long)env->sent_at_ms);
    }

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
            /* A record of a kind this side does not know carries it as an
             * unknown field: that record alone is refused (bm_record_validate). */
            if (!r || (r->kind_case == BRANCHMARK__V1__RECORD__KIND__NOT_SET &&
                       r->base.n_unknown_fields == 0)) {
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

/* ------------------------------------------------------------------ */
/* UTF-8                                                               */
/* ------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes
 * there are not one (overlong, surrogate, above U+10FFFF, cut off). */
static size_t s_utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t extra;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf)
        cp = c & 0x1f, extra = 1;
    else if (c >= 0xe0 && c <= 0xef)
        cp = c & 0x0f, extra = 2;
    else if (c >= 0xf0 && c <= 0xf4)
        cp = c & 0x07, extra = 3;
    else
        return 0;
    for (size_t i = 1; i <= extra; i++) {
        if ((s[i] & 0xc0) != 0x80)   /* also stops at the terminating NUL */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return extra + 1;
}

bool bm_utf8_valid(const char *str)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    while (*s) {
        size_t n = s_utf8_seq(s);
        if (n == 0)
            return false;
        s += n;
    }
    return true;
}

char *bm_utf8_escape(const char *str, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    size_t o = 0;
    while (*s) {
        size_t n = s_utf8_seq(s);
        bool esc = n == 0 || (n == 1 && (*s < 0x20 || *s == 0x7f)) ||
                   (n == 2 && s[0] == 0xc2 && s[1] < 0xa0);   /* C1 controls */
        size_t need = esc ? 4 : n;
        if (o + need + 4 > size) {   /* room for "..." and the NUL */
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (esc) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[*s >> 4];
            out[o++] = hex[*s & 15];
            s++;
        } else {
            memcpy(out + o, s, n);
            o += n;
            s += n;
        }
    }
    out[o] = '\0';
    return out;
}

/* ------------------------------------------------------------------ */
/* Encoding scan                                                       */
/* ------------------------------------------------------------------ */

#define S_SCAN_DEPTH 8        /* the schema nests 5 deep */
#define S_SCAN_FIELDS 64      /* fields tracked per message (the schema has at most 11) */
#define S_SCAN_ONEOFS 8       /* oneofs per message (Record has 1, QueueTicket 2) */

/* Batch.records of the envelope being scanned: recorded, not entered. */
typedef struct {
    bm_span_t *spans;
    size_t cap, n;
} s_scan_t;

/* Reads a varint at *p (at most 10 bytes).  Returns 0, or -1 when it is cut
 * off or longer. */
static int s_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* The wire type a field of type t is declared with (0 varint, 1 64-bit,
 * 2 length-delimited, 5 32-bit). */
static unsigned s_wire_type(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_BYTES: case PROTOBUF_C_TYPE_MESSAGE:
        return 2;
    default:
        return 0;
    }
}

/* A varint value that a 32-bit field cannot hold (protobuf-c would cut it). */
static bool s_out_of_range(ProtobufCType t, uint64_t v)
{
    switch (t) {
    case PROTOBUF_C_TYPE_UINT32:
        return v > UINT32_MAX;
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_ENUM:
        return (int64_t)v < INT32_MIN || (int64_t)v > INT32_MAX;
    case PROTOBUF_C_TYPE_SINT32:
        return (v >> 1) > UINT32_MAX / 2;
    default:
        return false;
    }
}

/* The path of a field for messages: "batch", "answers[2].comment". */
static void s_path(char *out, size_t size, const char *parent, const char *name, bool repeated,
                   uint32_t index)
{
    if (repeated)
        snprintf(out, size, "%s%s%s[%u]", parent, *parent ? "." : "", name, index);
    else
        snprintf(out, size, "%s%s%s", parent, *parent ? "." : "", name);
}

static int s_walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                  const char *path, int depth, s_scan_t *sc, bm_err_t *err);

/* Skips one field's value of wire type wt at *p; sets *val (varint) and
 * *data and *n (its bytes, for length-delimited).  Returns 0, or -1 with err. */
static int s_value(const uint8_t **p, const uint8_t *end, unsigned wt, uint64_t *val,
                   const uint8_t **data, size_t *n, const char *where, bm_err_t *err)
{
    switch (wt) {
    case 0:
        if (s_varint(p, end, val) < 0)
            return bm_err_set(err, "%s: a number is cut off or longer than 10 bytes", where);
        return 0;
    case 1: case 5: {
        size_t w = wt == 1 ? 8 : 4;
        if ((size_t)(end - *p) < w)
            return bm_err_set(err, "%s: a %zu-byte value is cut off", where, w);
        *data = *p, *n = w, *p += w;
        return 0;
    }
    case 2: {
        uint64_t l;
        if (s_varint(p, end, &l) < 0 || l > (uint64_t)(end - *p))
            return bm_err_set(err, "%s: its length runs past the end of the message", where);
        *data = *p, *n = (size_t)l, *p += l;
        return 0;
    }
    default:
        return bm_err_set(err, "%s: wire type %u (protobuf groups or no type at all) is not "
                          "used by this protocol", where, wt);
    }
}

/* Checks one known field's value: its wire type, singular fields given
 * once, one field per oneof, NUL bytes, 32-bit ranges, and what is inside
 * a message. */
static int s_field(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                   unsigned wt, uint64_t val, const uint8_t *data, size_t n, const char *fpath,
                   int depth, s_scan_t *sc, bm_err_t *err)
{
    bool repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
    unsigned want = s_wire_type(f->type);
    if (wt != want && !(repeated && wt == 2 && want != 2))
        return bm_err_set(err, "%s: sent with wire type %u, but it is declared with wire type %u",
                          fpath, wt, want);
    if (repeated && wt == 2 && want != 2)
        return 0;   /* a packed repeated number (the schema has none) */
    if (want == 0 && s_out_of_range(f->type, val))
        return bm_err_set(err, "%s: %llu does not fit its 32-bit field", fpath,
                          (unsigned long long)val);
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const uint8_t *nul = memchr(data, 0, n);
        if (nul)
            return bm_err_set(err, "%s: contains a NUL byte (byte %zu of %zu); text fields must "
                              "not contain NUL", fpath, (size_t)(nul - data) + 1, n);
    }
    if (f->type != PROTOBUF_C_TYPE_MESSAGE)
        return 0;
    if (sc && d == &branchmark__v1__batch__descriptor && f->id == 1) {
        if (sc->n < sc->cap)
            sc->spans[sc->n] = (bm_span_t){data, n};
        sc->n++;
        return 0;
    }
    return s_walk(f->descriptor, data, n, fpath, depth + 1, sc, err);
}

/* Walks the fields of one message of type d in p[0..len). */
static int s_walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                  const char *path, int depth, s_scan_t *sc, bm_err_t *err)
{
    const uint8_t *end = p + len;
    const char *where = *path ? path : "message";
    uint64_t seen = 0;
    uint32_t count[S_SCAN_FIELDS] = {0};
    const ProtobufCFieldDescriptor *oneof[S_SCAN_ONEOFS];
    size_t n_oneof = 0;
    if (depth > S_SCAN_DEPTH)
        return bm_err_set(err, "%s: nested deeper than the protocol's messages", where);
    while (p < end) {
        uint64_t tag, val = 0;
        const uint8_t *data = NULL;
        size_t n = 0;
        if (s_varint(&p, end, &tag) < 0)
            return bm_err_set(err, "%s: a field tag is cut off", where);
        if ((tag >> 3) == 0 || (tag >> 3) > 536870911)
            return bm_err_set(err, "%s: field number %llu does not exist in protobuf", where,
                              (unsigned long long)(tag >> 3));
        unsigned wt = (unsigned)(tag & 7);
        if (s_value(&p, end, wt, &val, &data, &n, where, err) < 0)
            return -1;
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3));
        if (!f)
            continue;   /* unknown: kept by protobuf-c, judged by the caller */
        size_t fi = (size_t)(f - d->fields);
        bool repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
        char fpath[160];
        s_path(fpath, sizeof fpath, path, f->name, repeated, fi < S_SCAN_FIELDS ? count[fi] : 0);
        if (fi < S_SCAN_FIELDS) {
            if (!repeated && (seen >> fi & 1))
                return bm_err_set(err, "%s: appears twice; a field may be given once (a "
                                  "batch must not be split into two chunks)", fpath);
            seen |= 1ULL << fi;
            count[fi]++;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            for (size_t i = 0; i < n_oneof; i++)
                if (oneof[i]->quantifier_offset == f->quantifier_offset && oneof[i] != f)
                    return bm_err_set(err, "%s%s%s and %s: both are given, but only one of "
                                      "them may be", path, *path ? ": " : "", oneof[i]->name,
                                      f->name);
            if (n_oneof < S_SCAN_ONEOFS)
                oneof[n_oneof++] = f;
        }
        if (s_field(d, f, wt, val, data, n, fpath, depth, sc, err) < 0)
            return -1;
    }
    return 0;
}

int bm_envelope_scan(const void *data, size_t len, bm_span_t *spans, size_t cap,
                     size_t *n_records, bm_err_t *err)
{
    s_scan_t sc = {spans, cap, 0};
    static const uint8_t empty[1] = {0};
    int rc = s_walk(&branchmark__v1__envelope__descriptor, data ? data : empty, data ? len : 0,
                    "", 0, &sc, err);
    if (n_records)
        *n_records = sc.n;
    return rc;
}

int bm_record_check_encoding(const bm_span_t *span, bm_err_t *err)
{
    static const uint8_t empty[1] = {0};
    return s_walk(&branchmark__v1__record__descriptor, span->data ? span->data : empty,
                  span->data ? span->len : 0, "", 0, NULL, err);
}
