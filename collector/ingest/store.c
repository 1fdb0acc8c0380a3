/* store: exactly-once batch writes to PostgreSQL; see store.h.
 *
 * Owns the collector's connection, its TEMP staging tables (created once
 * per connection, ON COMMIT DELETE ROWS; stg_batches describes the group in
 * hand, every record row carries its batch's position `bi` and branch),
 * its prepared statements and a fixed COPY buffer.  Each record kind is
 * described once, as a table of its staging columns (s_kinds); the staging
 * tables, the inserts and the COPY rows are all made from it.  The work
 * arrays of a group are allocated once at their caps (bm_store_reserve),
 * so storing a group allocates nothing per record. */
#include "store.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "bm_log.h"
#include "bm_record.h"
#include "bm_time.h"
#include "db.h"

#define S_COPY_BUF 65536
/* First key of the per-branch advisory lock ("brmk"); the second is the
 * branch id. */
#define S_BRANCH_LOCK_NS "1651665259"

/* Internal status: a data error means "this input violates a constraint",
 * which the record-by-record pass can narrow down to records. */
enum { S_OK = BM_STORE_OK, S_RETRY = BM_STORE_RETRY, S_FAILED = BM_STORE_FAILED, S_DATA };

/* What a staged record is next to the stored row of its (branch, source_id),
 * the staging column `oc` (010_corrections.sql, 014_corrections_fix.sql):
 * NULL new; a duplicate (the stored content, or a history version's with a
 * version not newer than the stored one); a version older than the stored
 * one (kept in the history only); a newer one (supersedes, also when its
 * content is an older version's); the stored content with a newer version
 * (a duplicate that raises the stored version, so that a version in
 * between arriving later stays late). */
enum { S_OC_DUP = 1, S_OC_LATE = 2, S_OC_NEWER = 3, S_OC_DUP_NEWER = 4 };

/* Every staging row starts with its batch's position in the group `bi`,
 * its index in the batch, the batch's branch and the record's source id;
 * a child row with its parent's bi and source id. */
#define S_STG_KEYS "bi int, idx int, branch_id int, source_id text"
#define S_STG_NKEYS 4
/* ... and ends with the record's version, its content digest and the two
 * columns the classification fills (never COPYed: written as NULL). */
#define S_STG_TRAILER "src_version bigint, content_digest bigint, oc smallint, cur_id bigint"
#define S_STG_NTRAILER 4
#define S_CHILD_KEYS "bi int, source_id text"
#define S_CHILD_NKEYS 2
#define S_CONFLICT " ON CONFLICT DO NOTHING" /* (branch_id, source_id[, time]): 006_scale */

/* Per-group statements.  stg_batches holds the group's batches (bi = the
 * batch's position in the group); everything else joins on it, so a group
 * costs the same number of round trips whatever its size. */
#define S_STG_BATCHES                                                                         \
    "bi int, stream_id text, sequence bigint, agent_id text, branch_id int, "                \
    "sent_at timestamptz, records int, rejected int, digest text"

static const struct {
    const char *name, *sql;
} s_statements[] = {
    /* Branch ids in ascending order, so two collectors locking overlapping
     * groups cannot deadlock. */
    {"bm_lock",
     "SELECT count(pg_advisory_xact_lock(" S_BRANCH_LOCK_NS ", b.branch_id)) "
     "FROM (SELECT DISTINCT branch_id FROM stg_batches ORDER BY 1) b"},
    {"bm_ledger_ins",
     "WITH ins AS (INSERT INTO ingest_batches (stream_id, sequence, agent_id, branch_id, "
     "sent_at, records, stored, duplicates, rejected, content_sha256) "
     "SELECT stream_id, sequence, agent_id, branch_id, sent_at, records, 0, 0, rejected, "
     "decode(nullif(digest, ''), 'hex') FROM stg_batches ORDER BY bi "
     "ON CONFLICT (stream_id, sequence) DO NOTHING RETURNING stream_id, sequence) "
     "SELECT s.bi FROM ins JOIN stg_batches s ON s.stream_id = ins.stream_id "
     "AND s.sequence = ins.sequence"},
    {"bm_ledger_get",
     "SELECT s.bi, b.stored, b.duplicates, coalesce(b.content_sha256 <> "
     "decode(nullif(s.digest, ''), 'hex'), false), b.corrected FROM stg_batches s "
     "JOIN ingest_batches b ON b.stream_id = s.stream_id AND b.sequence = s.sequence"},
    {"bm_ledger_upd",
     "UPDATE ingest_batches b SET stored = u.st, duplicates = u.du, rejected = u.rj, "
     "corrected = u.co FROM stg_batches s, "
     "unnest($1::int[], $2::int[], $3::int[], $4::int[], $5::int[]) AS u(bi, st, du, rj, co) "
     "WHERE s.bi = u.bi AND b.stream_id = s.stream_id AND b.sequence = s.sequence"},
    {"bm_agent",
     "INSERT INTO agents (agent_id, branch_id) VALUES ($1, $2) "
     "ON CONFLICT (agent_id) DO UPDATE SET last_seen = now() "
     "WHERE agents.branch_id = EXCLUDED.branch_id RETURNING branch_id"},
    {"bm_agent_get", "SELECT branch_id FROM agents WHERE agent_id = $1"},
    /* Returns the agents of $1 whose binding is not (any more) $2. */
    {"bm_agent_touch",
     "WITH u AS (SELECT * FROM unnest($1::text[], $2::int[]) WITH ORDINALITY AS u(a, b, i)), "
     "t AS (UPDATE agents g SET last_seen = now() FROM u "
     "WHERE g.agent_id = u.a AND g.branch_id = u.b RETURNING u.i) "
     "SELECT i FROM u WHERE i NOT IN (SELECT i FROM t)"},
};

/* One accepted record of a group. */
typedef struct {
    uint8_t kind;
    uint16_t bi;                /* batch position in the group */
    uint16_t round;             /* the key's round-th distinct content in the group */
    uint32_t index;             /* record index in the batch */
    int32_t branch_id;
    const char *source_id;
    uint64_t digest;            /* of its content (s_digest) */
    int64_t version;            /* the newest version sent with this content in the group */
} s_item_t;

/* What the store knows about one batch of the group in hand. */
typedef struct {
    bool fresh;                 /* its ledger row is new: store its records */
    uint32_t planned;           /* records staged (after the in-group dedupe) */
    uint32_t group_dups;        /* repeats in the group, dropped before staging */
    uint32_t stored;            /* new source ids */
    uint32_t dups;              /* the same content as stored (or in the history) */
    uint32_t corrected;         /* new versions of stored records, newer or older */
    uint32_t refused;
} s_bstate_t;

struct bm_store {
    char *conninfo;
    PGconn *conn;
    char copy_buf[S_COPY_BUF];
    size_t copy_len;
    bool binary;                /* the COPY in progress is in binary format */

    size_t max_batches, max_items;
    s_item_t *items;            /* max_items: the group's records to store */
    size_t n_items;
    s_bstate_t *st;             /* max_batches */
    char *arr_buf;              /* max_batches: the int arrays of bm_ledger_upd */
    size_t arr_cap;
    size_t n_rounds;            /* of the group in hand (s_plan) */
    EVP_MD_CTX *md;             /* for the content digests, reused per record */

    /* The group in hand (for the COPY writers and callbacks). */
    const bm_store_batch_t *const *g;
    size_t g_n;
};

static int s_alloc_group(bm_store_t *s, size_t max_batches, size_t max_records)
{
    size_t max_items = max_records + BM_MAX_RECORDS_PER_BATCH;
    size_t arr_cap = 5 * (max_batches * 12 + 4);
    s_item_t *items = calloc(max_items, sizeof *items);
    s_bstate_t *st = calloc(max_batches, sizeof *st);
    char *arr = malloc(arr_cap);
    if (!items || !st || !arr) {
        free(items);
        free(st);
        free(arr);
        return -1;
    }
    free(s->items);
    free(s->st);
    free(s->arr_buf);
    s->items = items;
    s->st = st;
    s->arr_buf = arr;
    s->max_batches = max_batches;
    s->max_items = max_items;
    s->arr_cap = arr_cap;
    return 0;
}

bm_store_t *bm_store_new(const char *conninfo)
{
    bm_store_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->conninfo = strdup(conninfo ? conninfo : "");
    s->md = EVP_MD_CTX_new();
    if (!s->conninfo || !s->md || s_alloc_group(s, 1, 0) < 0)
        bm_store_destroy(&s);
    return s;
}

int bm_store_reserve(bm_store_t *s, size_t max_batches, size_t max_records, bm_err_t *err)
{
    if (max_batches < 1)
        max_batches = 1;
    /* bi is a uint16_t. */
    if (max_batches > 65535)
        return bm_err_set(err, "a group of %zu batches is more than 65535", max_batches);
    if (s_alloc_group(s, max_batches, max_records) < 0)
        return bm_err_set(err, "out of memory for groups of %zu batches and %zu records",
                          max_batches, max_records);
    return 0;
}

void bm_store_destroy(bm_store_t **store_p)
{
    if (!store_p || !*store_p)
        return;
    bm_store_t *s = *store_p;
    bm_db_close(&s->conn);
    free(s->conninfo);
    free(s->items);
    free(s->st);
    free(s->arr_buf);
    EVP_MD_CTX_free(s->md);
    free(s);
    *store_p = NULL;
}

void bm_store_disconnect(bm_store_t *s)
{
    bm_db_close(&s->conn);
}

bool bm_store_connected(const bm_store_t *s)
{
    return s->conn && PQstatus(s->conn) == CONNECTION_OK;
}

PGconn *bm_store_conn(bm_store_t *s)
{
    return s->conn;
}
/* Decides what a failed result means for the caller. */
static int s_classify(bm_store_t *s, const PGresult *res)
{
    if (PQstatus(s->conn) != CONNECTION_OK)
        return S_RETRY;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state)
        return S_RETRY;
    /* 08 connection, 40 serialization/deadlock, 53 resources (disk full),
     * 57 operator intervention (shutdown), 58 system (I/O): all may pass. */
    if (!strncmp(state, "08", 2) || !strncmp(state, "40", 2) || !strncmp(state, "53", 2) ||
        !strncmp(state, "57", 2) || !strncmp(state, "58", 2))
        return S_RETRY;
    /* 22 data exception, 23 integrity constraint, P0 raised by a trigger. */
    if (!strncmp(state, "22", 2) || !strncmp(state, "23", 2) || !strncmp(state, "P0", 2))
        return S_DATA;
    return S_FAILED;
}

/* Sets err from the failed result *res_p (what names the statement's
 * object), clears it and returns what the failure means (s_classify). */
static int s_failed(bm_store_t *s, PGresult **res_p, const char *what, bm_err_t *err)
{
    bm_db_result_err(*res_p, s->conn, what, err);
    int rc = s_classify(s, *res_p);
    PQclear(*res_p);
    *res_p = NULL;
    return rc;
}

/* Runs a prepared statement; returns S_OK with *res_out (caller clears, may
 * be NULL to discard) or another status with err. */
static int s_run(bm_store_t *s, const char *name, int n, const char *const *params,
                 const char *what, PGresult **res_out, bm_err_t *err)
{
    PGresult *res = PQexecPrepared(s->conn, name, n, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return s_failed(s, &res, what, err);
    if (res_out)
        *res_out = res;
    else
        PQclear(res);
    return S_OK;
}

static int s_cmd(bm_store_t *s, const char *sql, bm_err_t *err)
{
    PGresult *res = PQexec(s->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return s_failed(s, &res, sql, err);
    PQclear(res);
    return S_OK;
}

/* ------------------------------------------------------------------ */
/* COPY text format                                                    */
/* ------------------------------------------------------------------ */

static int s_flush(bm_store_t *s)
{
    if (s->copy_len == 0)
        return 0;
    int rc = PQputCopyData(s->conn, s->copy_buf, (int)s->copy_len);
    s->copy_len = 0;
    return rc == 1 ? 0 : -1;
}

/* Any write error is seen at PQputCopyEnd/PQgetResult, so the writers do
 * not report it themselves. */
static void s_put(bm_store_t *s, const char *p, size_t n)
{
    if (s->copy_len + n > S_COPY_BUF)
        s_flush(s);
    if (n > S_COPY_BUF) {
        PQputCopyData(s->conn, p, (int)n);
        return;
    }
    memcpy(s->copy_buf + s->copy_len, p, n);
    s->copy_len += n;
}

/* The writers below produce COPY's text format, or its binary format when
 * s->binary (staging of records: the server then parses no timestamps or
 * numbers).  In binary a field is a 32-bit length and the value in network
 * order; separators and line ends are not written, a row starts with its
 * field count (s_fields). */
static void s_be(bm_store_t *s, uint64_t v, int bytes)
{
    char b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (char)(v >> (8 * (bytes - 1 - i)));
    s_put(s, b, (size_t)bytes);
}

static void s_fields(bm_store_t *s, int n)
{
    if (s->binary)
        s_be(s, (uint64_t)n, 2);
}

static void s_sep(bm_store_t *s)
{
    if (!s->binary)
        s_put(s, "\t", 1);
}

static void s_eol(bm_store_t *s)
{
    if (!s->binary)
        s_put(s, "\n", 1);
}

static void s_null(bm_store_t *s)
{
    if (s->binary)
        s_be(s, UINT32_MAX, 4);     /* length -1 */
    else
        s_put(s, "\\N", 2);
}

/* A text value: in text format backslash, tab, newline and carriage return
 * are escaped as COPY requires; everything else passes as is. */
static void s_text(bm_store_t *s, const char *v)
{
    if (!v)
        v = "";
    if (s->binary) {
        size_t n = strlen(v);
        s_be(s, n, 4);
        s_put(s, v, n);
        return;
    }
    const char *run = v;
    for (const char *p = v; *p; p++) {
        const char *esc = NULL;
        switch (*p) {
        case '\\': esc = "\\\\"; break;
        case '\t': esc = "\\t"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        default: continue;
        }
        s_put(s, run, (size_t)(p - run));
        s_put(s, esc, 2);
        run = p + 1;
    }
    s_put(s, run, strlen(run));
}

/* An integer of the column's width (2, 4 or 8 bytes: smallint, int,
 * bigint); the text format does not care. */
static void s_intw(bm_store_t *s, int64_t v, int bytes)
{
    if (s->binary) {
        s_be(s, (uint64_t)bytes, 4);
        s_be(s, (uint64_t)v, bytes);
        return;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%" PRId64, v);
    s_put(s, buf, (size_t)n);
}

static void s_i2(bm_store_t *s, int64_t v)
{
    s_intw(s, v, 2);
}

static void s_i4(bm_store_t *s, int64_t v)
{
    s_intw(s, v, 4);
}

static void s_int(bm_store_t *s, int64_t v)
{
    s_intw(s, v, 8);
}

static void s_double(bm_store_t *s, double v)
{
    if (s->binary) {
        uint64_t bits;
        memcpy(&bits, &v, sizeof bits);
        s_be(s, 8, 4);
        s_be(s, bits, 8);
        return;
    }
    char buf[40];
    int n = snprintf(buf, sizeof buf, "%.17g", v);
    s_put(s, buf, (size_t)n);
}

/* Microseconds since 2000-01-01 00:00 UTC in binary (timestamptz). */
#define S_PG_EPOCH_MS 946684800000LL

static void s_time(bm_store_t *s, int64_t ms)
{
    if (s->binary) {
        s_be(s, 8, 4);
        s_be(s, (uint64_t)((ms - S_PG_EPOCH_MS) * 1000), 8);
        return;
    }
    char buf[40];
    bm_time_format(ms, buf, sizeof buf);
    s_put(s, buf, strlen(buf));
}

static void s_bool(bm_store_t *s, bool v)
{
    if (s->binary) {
        s_be(s, 1, 4);
        s_put(s, v ? "\1" : "\0", 1);
        return;
    }
    s_put(s, v ? "t" : "f", 1);
}

/* ------------------------------------------------------------------ */
/* Record kinds: one table of staging columns per kind                 */
/* ------------------------------------------------------------------ */

/* Each kind is described once, as the list of its staging columns: a
 * column's name, SQL type and the message field it is read from.  From
 * that one list come the staging table's definition, the INSERT ... SELECT
 * into the raw table (same column names) and the COPY row, so that a
 * column cannot be added to one and forgotten in another, nor written in
 * another order than the table declares. */

/* The SQL type of a column; it decides how the value is written. */
typedef enum { S_TIMESTAMPTZ, S_BIGINT, S_INT, S_SMALLINT, S_TEXT, S_BOOLEAN, S_FLOAT8 } s_sqltype_t;

static const char *const s_sqltype_names[] = {"timestamptz", "bigint",  "int",   "smallint",
                                              "text",        "boolean", "float8"};

/* The C type of the message field a column reads, found by the compiler
 * (S_CTYPE), so that a table entry cannot read a field as the wrong type. */
typedef enum { S_C_I64, S_C_U32, S_C_STR, S_C_BOOL, S_C_DOUBLE } s_ctype_t;

#define S_CTYPE(M, f)                                                                         \
    _Generic(((M *)0)->f, int64_t: S_C_I64, uint32_t: S_C_U32, char *: S_C_STR,               \
             protobuf_c_boolean: S_C_BOOL, double: S_C_DOUBLE)

/* What a computed column needs besides the message. */
typedef struct {
    const bm_store_batch_t *b;
    const bm_refcache_t *cache;
} s_rowctx_t;

typedef void (*s_put_fn)(bm_store_t *s, const void *msg, const s_rowctx_t *ctx);

typedef struct {
    const char *name;           /* in the staging table and the raw table */
    s_sqltype_t type;
    s_put_fn put;               /* a computed value, or NULL: the field below */
    s_ctype_t ctype;
    size_t off;                 /* the field's offset in the message */
    size_t case_off;            /* a oneof field: offset of its case, else 0 */
    int case_value;             /* ... the field is set when the case is this */
} s_col_t;

#define S_MSG(M) Branchmark__V1__##M
/* A column that is the message field f. */
#define S_FIELD(name, type, M, f)                                                             \
    {name, type, NULL, S_CTYPE(S_MSG(M), f), offsetof(S_MSG(M), f), 0, 0}
/* A column that is the oneof field f, NULL unless its case c is v.  (protoc-c
 * makes every case enum the size of an int.) */
#define S_ONEOF(name, type, M, f, c, v)                                                       \
    {name, type, NULL, S_CTYPE(S_MSG(M), f), offsetof(S_MSG(M), f), offsetof(S_MSG(M), c), v}
/* A column that put computes from the message. */
#define S_COMPUTED(name, type, put) {name, type, put, S_C_I64, 0, 0, 0}
#define S_COLS(a) a, sizeof a / sizeof a[0]

/* Writes field value v (read as an integer) as a column of type t. */
static void s_put_int_as(bm_store_t *s, s_sqltype_t t, int64_t v)
{
    switch (t) {
    case S_TIMESTAMPTZ: s_time(s, v); break;
    case S_BIGINT: s_int(s, v); break;
    case S_INT: s_i4(s, v); break;
    case S_SMALLINT: s_i2(s, v); break;
    case S_BOOLEAN: s_bool(s, v != 0); break;
    case S_TEXT:
    case S_FLOAT8: assert(!"an integer field in a text or float8 column"); s_null(s); break;
    }
}

/* Writes column c of message msg. */
static void s_put_col(bm_store_t *s, const s_col_t *c, const void *msg, const s_rowctx_t *ctx)
{
    if (c->put) {
        c->put(s, msg, ctx);
        return;
    }
    const char *m = msg, *f = m + c->off;
    if (c->case_off && *(const int *)(const void *)(m + c->case_off) != c->case_value) {
        s_null(s);
        return;
    }
    switch (c->ctype) {
    case S_C_STR: s_text(s, *(char *const *)(const void *)f); break;
    case S_C_DOUBLE: s_double(s, *(const double *)(const void *)f); break;
    case S_C_I64: s_put_int_as(s, c->type, *(const int64_t *)(const void *)f); break;
    case S_C_U32: s_put_int_as(s, c->type, *(const uint32_t *)(const void *)f); break;
    case S_C_BOOL: s_put_int_as(s, c->type, *(const protobuf_c_boolean *)(const void *)f); break;
    }
}

/* The computed columns. */

/* CSI index = mean over items of (score-1)/(scale_max-1)*100; items with
 * a scale below 2 do not count, and no item is NULL. */
static void s_put_csi_index(bm_store_t *s, const void *msg, const s_rowctx_t *ctx)
{
    (void)ctx;
    const Branchmark__V1__SurveyResponse *p = msg;
    double sum = 0;
    size_t n = 0;
    for (size_t i = 0; i < p->n_csi; i++)
        if (p->csi[i]->scale_max >= 2) {
            sum += ((double)p->csi[i]->score - 1) / ((double)p->csi[i]->scale_max - 1) * 100;
            n++;
        }
    if (n)
        s_double(s, sum / (double)n);
    else
        s_null(s);
}

static void s_put_change_kind(bm_store_t *s, const void *msg, const s_rowctx_t *ctx)
{
    (void)ctx;
    const Branchmark__V1__CustomerChange *p = msg;
    if (p->kind == BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_GAINED)
        s_text(s, "gained");
    else if (p->kind == BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_LOST)
        s_text(s, "lost");
    else
        s_null(s);
}

/* A missing questionnaire or competitor id becomes NULL, which the NOT NULL
 * constraint refuses (the receiver has checked, so this does not happen). */
static void s_put_questionnaire_id(bm_store_t *s, const void *msg, const s_rowctx_t *ctx)
{
    const Branchmark__V1__ShopperEvaluation *p = msg;
    const bm_refcache_questionnaire_t *q =
        bm_refcache_questionnaire(ctx->cache, p->questionnaire_code, p->questionnaire_version);
    if (q)
        s_i4(s, bm_refcache_questionnaire_id(q));
    else
        s_null(s);
}

static void s_put_channel(bm_store_t *s, const void *msg, const s_rowctx_t *ctx)
{
    (void)ctx;
    const Branchmark__V1__ShopperEvaluation *p = msg;
    switch (p->channel) {
    case BRANCHMARK__V1__CHANNEL__CHANNEL_VISIT: s_text(s, "visit"); break;
    case BRANCHMARK__V1__CHANNEL__CHANNEL_CALL: s_text(s, "call"); break;
    case BRANCHMARK__V1__CHANNEL__CHANNEL_ONLINE: s_text(s, "online"); break;
    default: s_null(s); break;
    }
}

/* An evaluation is of the batch's own branch or of a competitor outlet:
 * exactly one of outlet_branch_id and competitor_outlet_id is set. */
static void s_put_outlet_branch(bm_store_t *s, const void *msg, const s_rowctx_t *ctx)
{
    const Branchmark__V1__ShopperEvaluation *p = msg;
    if (p->outlet_kind == BRANCHMARK__V1__OUTLET_KIND__OUTLET_KIND_BRANCH)
        s_i4(s, ctx->b->branch_id);
    else
        s_null(s);
}

static void s_put_competitor(bm_store_t *s, const void *msg, const s_rowctx_t *ctx)
{
    const Branchmark__V1__ShopperEvaluation *p = msg;
    int32_t cid = p->outlet_kind == BRANCHMARK__V1__OUTLET_KIND__OUTLET_KIND_BRANCH
                      ? 0
                      : bm_refcache_competitor(ctx->cache, p->outlet_code);
    if (cid)
        s_i4(s, cid);
    else
        s_null(s);
}

/* submitted_at_ms 0 means unknown. */
static void s_put_submitted_at(bm_store_t *s, const void *msg, const s_rowctx_t *ctx)
{
    (void)ctx;
    const Branchmark__V1__ShopperEvaluation *p = msg;
    if (p->submitted_at_ms != 0)
        s_time(s, p->submitted_at_ms);
    else
        s_null(s);
}

/* The columns of each kind, after the keys every staging row starts with
 * (S_STG_KEYS). */
static const s_col_t s_people_count_cols[] = {
    S_FIELD("interval_start", S_TIMESTAMPTZ, PeopleCount, interval_start_ms),
    S_FIELD("interval_seconds", S_BIGINT, PeopleCount, interval_seconds),
    S_FIELD("passers_by", S_BIGINT, PeopleCount, passers_by),
    S_FIELD("entrants", S_BIGINT, PeopleCount, entrants),
};

static const s_col_t s_receipt_cols[] = {
    S_FIELD("at", S_TIMESTAMPTZ, Receipt, at_ms),
    S_FIELD("amount_minor", S_BIGINT, Receipt, amount_minor),
    S_FIELD("currency", S_TEXT, Receipt, currency),
};

static const s_col_t s_queue_ticket_cols[] = {
    S_FIELD("issued_at", S_TIMESTAMPTZ, QueueTicket, issued_at_ms),
    S_ONEOF("called_at", S_TIMESTAMPTZ, QueueTicket, called_at_ms, called_case,
            BRANCHMARK__V1__QUEUE_TICKET__CALLED_CALLED_AT_MS),
    S_ONEOF("served_at", S_TIMESTAMPTZ, QueueTicket, served_at_ms, served_case,
            BRANCHMARK__V1__QUEUE_TICKET__SERVED_SERVED_AT_MS),
    S_FIELD("service_point", S_TEXT, QueueTicket, service_point),
};

static const s_col_t s_phone_call_cols[] = {
    S_FIELD("ring_start", S_TIMESTAMPTZ, PhoneCall, ring_start_ms),
    S_FIELD("answered", S_BOOLEAN, PhoneCall, answered),
    S_FIELD("wait_seconds", S_BIGINT, PhoneCall, wait_seconds),
};

static const s_col_t s_complaint_cols[] = {
    S_FIELD("received_at_src", S_TIMESTAMPTZ, Complaint, received_at_ms),
    S_FIELD("category", S_TEXT, Complaint, category),
    S_FIELD("contact_point", S_TEXT, Complaint, contact_point),
    S_FIELD("channel", S_TEXT, Complaint, channel),
    S_ONEOF("resolved_at", S_TIMESTAMPTZ, Complaint, resolved_at_ms, resolved_case,
            BRANCHMARK__V1__COMPLAINT__RESOLVED_RESOLVED_AT_MS),
};

static const s_col_t s_survey_cols[] = {
    S_FIELD("responded_at", S_TIMESTAMPTZ, SurveyResponse, responded_at_ms),
    S_ONEOF("nps", S_SMALLINT, SurveyResponse, nps, nps_answer_case,
            BRANCHMARK__V1__SURVEY_RESPONSE__NPS_ANSWER_NPS),
    S_COMPUTED("csi", S_FLOAT8, s_put_csi_index),
    S_FIELD("why", S_TEXT, SurveyResponse, why),
    S_FIELD("segment", S_TEXT, SurveyResponse, segment),
    S_FIELD("survey_channel", S_TEXT, SurveyResponse, survey_channel),
};

static const s_col_t s_customer_change_cols[] = {
    S_FIELD("at", S_TIMESTAMPTZ, CustomerChange, at_ms),
    S_COMPUTED("kind", S_TEXT, s_put_change_kind),
    S_FIELD("reason", S_TEXT, CustomerChange, reason),
    S_FIELD("segment", S_TEXT, CustomerChange, segment),
};

static const s_col_t s_evaluation_cols[] = {
    S_COMPUTED("questionnaire_id", S_INT, s_put_questionnaire_id),
    S_COMPUTED("channel", S_TEXT, s_put_channel),
    S_FIELD("scenario", S_TEXT, ShopperEvaluation, scenario),
    S_FIELD("shopper_segment", S_TEXT, ShopperEvaluation, shopper_segment),
    S_COMPUTED("outlet_branch_id", S_INT, s_put_outlet_branch),
    S_COMPUTED("competitor_outlet_id", S_INT, s_put_competitor),
    S_FIELD("visited_at", S_TIMESTAMPTZ, ShopperEvaluation, visited_at_ms),
    S_COMPUTED("submitted_at", S_TIMESTAMPTZ, s_put_submitted_at),
    S_FIELD("shopper_ref", S_TEXT, ShopperEvaluation, shopper_ref),
};

/* Child rows (CSI scores of a survey, answers of an evaluation) are
 * staged with their parent's batch position and source id, after the
 * parents, and inserted only for parents newly stored (insert). */
typedef struct {
    const char *stage;          /* child staging table */
    const s_col_t *cols;        /* after the keys "bi int, source_id text" */
    size_t n_cols;
    size_t n_off, arr_off;      /* offsets of n_<children> and <children> in the parent */
    const char *insert;         /* children of newly stored parents */
    const char *json_key;       /* their key in a version's record_history.content */
} s_child_t;

#define S_CHILDREN(M, f) offsetof(S_MSG(M), n_##f), offsetof(S_MSG(M), f)

static const s_col_t s_csi_cols[] = {
    S_FIELD("item", S_TEXT, CsiScore, item),
    S_FIELD("score", S_SMALLINT, CsiScore, score),
    S_FIELD("scale_max", S_SMALLINT, CsiScore, scale_max),
};

static const s_child_t s_survey_csi = {
    "stg_survey_csi", S_COLS(s_csi_cols), S_CHILDREN(SurveyResponse, csi),
    "INSERT INTO survey_csi_scores (response_id, item, score, scale_max) "
    "SELECT r.id, c.item, c.score, c.scale_max FROM stg_survey_csi c "
    "JOIN stg_survey_responses s ON s.bi = c.bi AND s.source_id = c.source_id "
    "JOIN survey_responses r ON r.branch_id = s.branch_id AND r.source_id = s.source_id",
    "csi_scores"};

static const s_col_t s_answer_cols[] = {
    S_FIELD("item_code", S_TEXT, Answer, item_code),
    S_ONEOF("points", S_FLOAT8, Answer, points, value_case, BRANCHMARK__V1__ANSWER__VALUE_POINTS),
    S_FIELD("comment", S_TEXT, Answer, comment),
};

static const s_child_t s_evaluation_answers = {
    "stg_evaluation_answers", S_COLS(s_answer_cols), S_CHILDREN(ShopperEvaluation, answers),
    "INSERT INTO evaluation_answers (evaluation_id, questionnaire_id, item_code, points, "
    "comment) SELECT e.id, e.questionnaire_id, a.item_code, a.points, a.comment "
    "FROM stg_evaluation_answers a "
    "JOIN stg_evaluations s ON s.bi = a.bi AND s.source_id = a.source_id "
    "JOIN evaluations e ON e.branch_id = s.branch_id AND e.source_id = s.source_id",
    "answers"};

typedef struct {
    bm_kind_t kind;
    const char *table;          /* raw table */
    const char *stage;          /* its staging table */
    size_t msg_off;             /* the kind's message in Record (a oneof member) */
    const s_col_t *cols;
    size_t n_cols;
    const s_child_t *child;     /* NULL, or the kind's children */
    /* A new version updates the stored row in place (its id is referenced
     * by the workflow's tables) instead of replacing it: evaluations. */
    bool in_place;
} s_kind_t;

#define S_KIND(kind, table, member, cols, child)                                             \
    {kind, table, "stg_" table, offsetof(Branchmark__V1__Record, member), S_COLS(cols), child, \
     false}

static const s_kind_t s_kinds[] = {
    S_KIND(BM_KIND_PEOPLE_COUNT, "people_counts", people_count, s_people_count_cols, NULL),
    S_KIND(BM_KIND_RECEIPT, "receipts", receipt, s_receipt_cols, NULL),
    S_KIND(BM_KIND_QUEUE_TICKET, "queue_tickets", queue_ticket, s_queue_ticket_cols, NULL),
    S_KIND(BM_KIND_PHONE_CALL, "phone_calls", phone_call, s_phone_call_cols, NULL),
    S_KIND(BM_KIND_COMPLAINT, "complaints", complaint, s_complaint_cols, NULL),
    S_KIND(BM_KIND_SURVEY, "survey_responses", survey, s_survey_cols, &s_survey_csi),
    S_KIND(BM_KIND_CUSTOMER_CHANGE, "customer_changes", customer_change, s_customer_change_cols,
           NULL),
    {BM_KIND_EVALUATION, "evaluations", "stg_evaluations",
     offsetof(Branchmark__V1__Record, evaluation), S_COLS(s_evaluation_cols),
     &s_evaluation_answers, true},
};
#define S_NKINDS (sizeof s_kinds / sizeof s_kinds[0])

static size_t s_kind_slot(uint8_t kind)
{
    for (size_t k = 0; k < S_NKINDS; k++)
        if (s_kinds[k].kind == kind)
            return k;
    return 0;
}

/* The pointer stored at base + off (a message or child array pointer of a
 * protobuf-c struct). */
static const void *s_ptr_at(const void *base, size_t off)
{
    const void *p;
    memcpy(&p, (const char *)base + off, sizeof p);
    return p;
}

/* Writes the staging row of item it (record r of kind k). */
static void s_row(bm_store_t *s, const s_kind_t *k, const s_rowctx_t *ctx, const s_item_t *it,
                  const bm_record_t *r)
{
    s_fields(s, S_STG_NKEYS + (int)k->n_cols + S_STG_NTRAILER);
    s_i4(s, it->bi), s_sep(s);
    s_i4(s, it->index), s_sep(s);
    s_i4(s, ctx->b->branch_id), s_sep(s);
    s_text(s, r->source_id);
    /* A record of another kind (validation lets none through) gets no
     * columns, which COPY refuses. */
    if (bm_record_kind(r) != k->kind) {
        s_eol(s);
        return;
    }
    const void *msg = s_ptr_at(r, k->msg_off);
    for (size_t c = 0; c < k->n_cols; c++) {
        s_sep(s);
        s_put_col(s, &k->cols[c], msg, ctx);
    }
    s_sep(s);
    if (it->version > 0)
        s_int(s, it->version);
    else
        s_null(s);
    s_sep(s);
    if (it->digest)
        s_int(s, (int64_t)it->digest);
    else
        s_null(s);
    s_sep(s);
    s_null(s);
    s_sep(s);
    s_null(s);
    s_eol(s);
}

/* A ProtobufCBuffer that hashes what is packed into it: the digest of a
 * message without a copy of its bytes. */
typedef struct {
    ProtobufCBuffer base;
    EVP_MD_CTX *md;
    bool ok;
} s_hashbuf_t;

static void s_hash_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    s_hashbuf_t *h = (s_hashbuf_t *)(void *)b;
    if (h->ok && EVP_DigestUpdate(h->md, data, len) != 1)
        h->ok = false;
}

/* The content digest of record r: the first 64 bits of SHA-256 of its kind
 * message as packed (protobuf-c packs fields in number order, so the same
 * content gives the same bytes).  The source id and the version are not
 * part of it: the key is compared anyway, and the same content with
 * another version is a resend, not a correction.  0 when r has no kind or
 * the digest failed (OpenSSL out of memory): the row is then compared as a
 * row stored before 010 is, column by column. */
static uint64_t s_digest(bm_store_t *s, const bm_record_t *r)
{
    size_t k = s_kind_slot((uint8_t)bm_record_kind(r));
    if (bm_record_kind(r) != s_kinds[k].kind)
        return 0;
    const ProtobufCMessage *msg = s_ptr_at(r, s_kinds[k].msg_off);
    s_hashbuf_t h = {{s_hash_append}, s->md, true};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1)
        return 0;
    protobuf_c_message_pack_to_buffer(msg, &h.base);
    if (!h.ok || EVP_DigestFinal_ex(s->md, md, &n) != 1 || n < 8)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | md[i];
    return v;
}

/* Writes the child staging rows of record r of kind k (which has children). */
static void s_child_rows(bm_store_t *s, const s_kind_t *k, const s_rowctx_t *ctx, uint32_t bi,
                         const bm_record_t *r)
{
    const s_child_t *ch = k->child;
    if (bm_record_kind(r) != k->kind)
        return;
    const char *msg = s_ptr_at(r, k->msg_off);
    size_t n = *(const size_t *)(const void *)(msg + ch->n_off);
    const void *kids = s_ptr_at(msg, ch->arr_off);
    for (size_t i = 0; i < n; i++) {
        const void *kid = s_ptr_at(kids, i * sizeof kid);
        s_fields(s, S_CHILD_NKEYS + (int)ch->n_cols);
        s_i4(s, bi), s_sep(s);
        s_text(s, r->source_id);
        for (size_t c = 0; c < ch->n_cols; c++) {
            s_sep(s);
            s_put_col(s, &ch->cols[c], kid, ctx);
        }
        s_eol(s);
    }
}

/* ------------------------------------------------------------------ */
/* Connecting: staging tables and statements from the kind tables     */
/* ------------------------------------------------------------------ */

/* A statement built from the tables.  full: it did not fit (a table entry
 * too long for S_SQL_MAX), and must not be sent. */
#define S_SQL_MAX 4096
typedef struct {
    char buf[S_SQL_MAX];
    size_t len;
    bool full;
} s_sql_t;

static void s_sql_add(s_sql_t *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_sql_add(s_sql_t *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(q->buf + q->len, sizeof q->buf - q->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof q->buf - q->len)
        q->full = true;
    else
        q->len += (size_t)n;
}

/* Appends ", name" (typed: ", name type") for each of cols[0..n). */
static void s_sql_cols(s_sql_t *q, const s_col_t *cols, size_t n, bool typed)
{
    for (size_t i = 0; i < n; i++)
        s_sql_add(q, ", %s%s%s", cols[i].name, typed ? " " : "",
                  typed ? s_sqltype_names[cols[i].type] : "");
}

static int s_sql_check(const s_sql_t *q, const char *what, bm_err_t *err)
{
    if (q->full)
        return bm_err_set(err, "%s: a statement is longer than %d bytes", what, S_SQL_MAX);
    return 0;
}

static int s_prepare(bm_store_t *s, const char *name, const char *sql, const char *what,
                     bm_err_t *err)
{
    PGresult *res = PQprepare(s->conn, name, sql, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        bm_db_result_err(res, s->conn, what, err);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

/* Creates the TEMP staging table stage: keys, cols[0..n), then trailer
 * (NULL: none). */
static int s_create_stage(bm_store_t *s, const char *stage, const char *keys, const s_col_t *cols,
                          size_t n, const char *trailer, bm_err_t *err)
{
    s_sql_t q = {.len = 0};
    s_sql_add(&q, "CREATE TEMP TABLE %s (%s", stage, keys);
    s_sql_cols(&q, cols, n, true);
    if (trailer)
        s_sql_add(&q, ", %s", trailer);
    s_sql_add(&q, ") ON COMMIT DELETE ROWS");
    if (s_sql_check(&q, stage, err) < 0)
        return -1;
    return bm_db_exec(s->conn, q.buf, err);
}

/* Prepares q as statement j of kind k ("bm_k<k>_<j>", see s_stage_insert). */
static int s_prepare_kind_sql(bm_store_t *s, size_t k, int j, const s_sql_t *q, bm_err_t *err)
{
    if (s_sql_check(q, s_kinds[k].stage, err) < 0)
        return -1;
    char name[48];
    snprintf(name, sizeof name, "bm_k%zu_%d", k, j);
    return s_prepare(s, name, q->buf, s_kinds[k].stage, err);
}

/* The statements of each kind, "bm_k<kind slot>_<S_Q_...>". */
enum { S_Q_INSERT, S_Q_CLASSIFY, S_Q_CHILDREN, S_Q_RESOLVE, S_Q_SUPERSEDE, S_Q_RAISE };

/* Appends ", p.name" for each of cols[0..n). */
static void s_sql_qcols(s_sql_t *q, const char *p, const s_col_t *cols, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s_sql_add(q, "%s%s.%s", i ? ", " : "", p, cols[i].name);
}

/* The classification of kind k's staged rows against the stored row of
 * their (branch, source_id), whatever its time (so also in another
 * partition), into oc and cur_id (see S_OC_...); returns (bi, oc, count) of
 * the rows that are not new.  The LATERAL ... LIMIT 1 makes it an index
 * probe per staged row.  Rows without a digest (stored before 010) compare
 * column by column.  The history's digests count only for versions not
 * newer than the stored one: a newer version that goes back to an older
 * content is a correction, not a resend (014_corrections_fix.sql). */
static void s_sql_classify(s_sql_t *q, const s_kind_t *ks)
{
    s_sql_add(q, "WITH c AS (SELECT s.bi, s.idx, r.id, CASE WHEN r.content_digest = "
                 "s.content_digest OR ((r.content_digest IS NULL OR s.content_digest IS NULL) "
                 "AND ROW(");
    s_sql_qcols(q, "r", ks->cols, ks->n_cols);
    s_sql_add(q, ") IS NOT DISTINCT FROM ROW(");
    s_sql_qcols(q, "s", ks->cols, ks->n_cols);
    s_sql_add(q, ")) THEN CASE WHEN coalesce(s.src_version, -1) > coalesce(r.src_version, -1) "
                 "THEN %d ELSE %d END "
                 "WHEN coalesce(s.src_version, -1) <= coalesce(r.src_version, -1) AND EXISTS "
                 "(SELECT 1 FROM record_history h WHERE h.kind = '%s' "
                 "AND h.branch_id = s.branch_id AND h.source_id = s.source_id "
                 "AND h.content_digest = s.content_digest) THEN %d "
                 "WHEN coalesce(s.src_version, -1) >= coalesce(r.src_version, -1) THEN %d "
                 "ELSE %d END AS oc FROM %s s CROSS JOIN LATERAL (SELECT * FROM %s r "
                 "WHERE r.branch_id = s.branch_id AND r.source_id = s.source_id LIMIT 1) r), "
                 "u AS (UPDATE %s s SET oc = c.oc, cur_id = c.id FROM c "
                 "WHERE s.bi = c.bi AND s.idx = c.idx RETURNING s.bi, s.oc) "
                 "SELECT bi, oc, count(*) FROM u GROUP BY 1, 2",
              S_OC_DUP_NEWER, S_OC_DUP, ks->table, S_OC_DUP, S_OC_NEWER, S_OC_LATE, ks->stage,
              ks->table, ks->stage);
}

/* Older versions into the history (with their children), then the staged
 * rows that are not to be inserted out of the staging table. */
static void s_sql_resolve(s_sql_t *q, const s_kind_t *ks)
{
    s_sql_add(q, "WITH h AS (INSERT INTO record_history (kind, branch_id, source_id, "
                 "src_version, content_digest, status, content, by_stream, by_sequence) "
                 "SELECT '%s', s.branch_id, s.source_id, s.src_version, s.content_digest, "
                 "'late', to_jsonb(s) - 'bi' - 'idx' - 'branch_id' - 'source_id' - "
                 "'src_version' - 'content_digest' - 'oc' - 'cur_id'",
              ks->table);
    if (ks->child)
        s_sql_add(q, " || jsonb_build_object('%s', (SELECT coalesce(jsonb_agg(to_jsonb(c) - "
                     "'bi' - 'source_id'), '[]') FROM %s c WHERE c.bi = s.bi "
                     "AND c.source_id = s.source_id))",
                  ks->child->json_key, ks->child->stage);
    s_sql_add(q, ", b.stream_id, b.sequence FROM %s s JOIN stg_batches b ON b.bi = s.bi "
                 "WHERE s.oc = %d) DELETE FROM %s WHERE oc IN (%d, %d, %d)",
              ks->stage, S_OC_LATE, ks->stage, S_OC_DUP, S_OC_LATE, S_OC_DUP_NEWER);
}

/* Prepares the statements of kind k (see S_Q_...): the insert from its
 * staging table, the classification, the insert of the children (kinds
 * with children only), the resolution, the call of bm_supersede
 * (010_corrections.sql) with the newer versions and their batches, and the
 * call of bm_version_raise (014_corrections_fix.sql) with the duplicates
 * that bring a newer version. */
static int s_prepare_kind(bm_store_t *s, size_t k, bm_err_t *err)
{
    const s_kind_t *ks = &s_kinds[k];
    s_sql_t q = {.len = 0};
    s_sql_add(&q, "INSERT INTO %s (branch_id, source_id", ks->table);
    s_sql_cols(&q, ks->cols, ks->n_cols, false);
    s_sql_add(&q, ", src_version, content_digest) SELECT branch_id, source_id");
    s_sql_cols(&q, ks->cols, ks->n_cols, false);
    s_sql_add(&q, ", src_version, content_digest FROM %s ORDER BY bi, idx" S_CONFLICT,
              ks->stage);
    if (s_prepare_kind_sql(s, k, S_Q_INSERT, &q, err) < 0)
        return -1;
    q = (s_sql_t){.len = 0};
    s_sql_classify(&q, ks);
    if (s_prepare_kind_sql(s, k, S_Q_CLASSIFY, &q, err) < 0)
        return -1;
    if (ks->child) {
        q = (s_sql_t){.len = 0};
        s_sql_add(&q, "%s", ks->child->insert);
        if (s_prepare_kind_sql(s, k, S_Q_CHILDREN, &q, err) < 0)
            return -1;
    }
    q = (s_sql_t){.len = 0};
    s_sql_resolve(&q, ks);
    if (s_prepare_kind_sql(s, k, S_Q_RESOLVE, &q, err) < 0)
        return -1;
    q = (s_sql_t){.len = 0};
    s_sql_add(&q, "SELECT bm_supersede('%s', jsonb_agg(to_jsonb(s) || jsonb_build_object("
                  "'by_stream', b.stream_id, 'by_sequence', b.sequence) ORDER BY s.bi, s.idx)) "
                  "FROM %s s JOIN stg_batches b ON b.bi = s.bi WHERE s.oc = %d",
              ks->table, ks->stage, S_OC_NEWER);
    if (s_prepare_kind_sql(s, k, S_Q_SUPERSEDE, &q, err) < 0)
        return -1;
    q = (s_sql_t){.len = 0};
    s_sql_add(&q, "SELECT bm_version_raise('%s', jsonb_agg(to_jsonb(s))) FROM %s s "
                  "WHERE s.oc = %d", ks->table, ks->stage, S_OC_DUP_NEWER);
    return s_prepare_kind_sql(s, k, S_Q_RAISE, &q, err);
}

int bm_store_connect(bm_store_t *s, bm_err_t *err)
{
    bm_db_close(&s->conn);
    s->conn = bm_db_connect(s->conninfo, "branchmark-collector", err);
    if (!s->conn)
        return -1;
    char sql[512];
    snprintf(sql, sizeof sql, "CREATE TEMP TABLE stg_batches (%s) ON COMMIT DELETE ROWS",
             S_STG_BATCHES);
    if (bm_db_exec(s->conn, sql, err) < 0)
        goto fail;
    for (size_t k = 0; k < S_NKINDS; k++) {
        const s_kind_t *ks = &s_kinds[k];
        if (s_create_stage(s, ks->stage, S_STG_KEYS, ks->cols, ks->n_cols, S_STG_TRAILER,
                           err) < 0 ||
            (ks->child && s_create_stage(s, ks->child->stage, S_CHILD_KEYS, ks->child->cols,
                                         ks->child->n_cols, NULL, err) < 0))
            goto fail;
    }
    for (size_t i = 0; i < sizeof s_statements / sizeof s_statements[0]; i++)
        if (s_prepare(s, s_statements[i].name, s_statements[i].sql, s_statements[i].name,
                      err) < 0)
            goto fail;
    for (size_t k = 0; k < S_NKINDS; k++)
        if (s_prepare_kind(s, k, err) < 0)
            goto fail;
    return 0;
fail:
    bm_db_close(&s->conn);
    return -1;
}

/* Starts COPY sql; returns S_OK or a status with err. */
static int s_copy_begin(bm_store_t *s, const char *sql, bm_err_t *err)
{
    PGresult *res = PQexec(s->conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN)
        return s_failed(s, &res, sql, err);
    PQclear(res);
    s->copy_len = 0;
    return S_OK;
}

static int s_copy_end(bm_store_t *s, const char *sql, bm_err_t *err)
{
    s_flush(s);
    PQputCopyEnd(s->conn, NULL);
    int rc = S_OK;
    PGresult *res;
    while ((res = PQgetResult(s->conn)) != NULL) {
        if (rc == S_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
            bm_db_result_err(res, s->conn, sql, err);
            rc = s_classify(s, res);
        }
        PQclear(res);
    }
    return rc;
}

/* COPYs items[from..to) (all of kind k) into the kind's staging table
 * (child == false) or their children into its child table. */
static int s_copy(bm_store_t *s, const bm_refcache_t *cache, size_t k, bool child, size_t from,
                  size_t to, bm_err_t *err)
{
    const s_kind_t *ks = &s_kinds[k];
    char sql[96];
    snprintf(sql, sizeof sql, "COPY %s FROM STDIN (FORMAT binary)",
             child ? ks->child->stage : ks->stage);
    int rc = s_copy_begin(s, sql, err);
    if (rc != S_OK)
        return rc;
    /* Signature, flags, header extension length. */
    s_put(s, "PGCOPY\n\377\r\n\0", 11);
    s_put(s, "\0\0\0\0\0\0\0\0", 8);
    s->binary = true;
    for (size_t i = from; i < to; i++) {
        const s_item_t *it = &s->items[i];
        const s_rowctx_t ctx = {s->g[it->bi], cache};
        const bm_record_t *r = ctx.b->records[it->index];
        if (child)
            s_child_rows(s, ks, &ctx, it->bi, r);
        else
            s_row(s, ks, &ctx, it, r);
    }
    s_be(s, UINT16_MAX, 2);     /* trailer: field count -1 */
    s->binary = false;
    return s_copy_end(s, sql, err);
}

/* COPYs the group's batches into stg_batches. */
static int s_copy_batches(bm_store_t *s, bm_err_t *err)
{
    const char *sql = "COPY stg_batches FROM STDIN";
    int rc = s_copy_begin(s, sql, err);
    if (rc != S_OK)
        return rc;
    for (size_t bi = 0; bi < s->g_n; bi++) {
        const bm_store_batch_t *b = s->g[bi];
        char seq[24];
        int n = snprintf(seq, sizeof seq, "%" PRIu64, b->sequence);
        s_int(s, (int64_t)bi), s_sep(s);
        s_text(s, b->stream_id), s_sep(s);
        s_put(s, seq, (size_t)n), s_sep(s);
        s_text(s, b->agent_id), s_sep(s);
        s_int(s, b->branch_id), s_sep(s);
        s_time(s, b->sent_at_ms), s_sep(s);
        s_int(s, (int64_t)b->n_records), s_sep(s);
        s_int(s, b->rejected), s_sep(s);
        s_text(s, b->digest_hex ? b->digest_hex : ""), s_eol(s);
    }
    return s_copy_end(s, sql, err);
}

/* Runs statement q (S_Q_...) of kind slot k. */
static int s_run_kind(bm_store_t *s, size_t k, int q, const char *what, PGresult **res,
                      bm_err_t *err)
{
    char name[48];
    snprintf(name, sizeof name, "bm_k%zu_%d", k, q);
    return s_run(s, name, 0, NULL, what, res, err);
}

/* Empties kind k's staging tables (the next round or record reuses them in
 * this transaction; COMMIT empties them anyway). */
static int s_clear_stage(bm_store_t *s, const s_kind_t *ks, bm_err_t *err)
{
    const char *stages[2] = {ks->stage, ks->child ? ks->child->stage : NULL};
    for (int t = 0; t < 2 && stages[t]; t++) {
        char sql[96];
        snprintf(sql, sizeof sql, "DELETE FROM %s", stages[t]);
        int rc = s_cmd(s, sql, err);
        if (rc != S_OK)
            return rc;
    }
    return S_OK;
}

/* Totals of the classification rows (bi, oc, count) by oc. */
static void s_class_totals(const PGresult *cls, unsigned long n[5])
{
    for (int row = 0; row < PQntuples(cls); row++) {
        int oc = atoi(PQgetvalue(cls, row, 1));
        if (oc >= S_OC_DUP && oc <= S_OC_DUP_NEWER)
            n[oc] += strtoul(PQgetvalue(cls, row, 2), NULL, 10);
    }
}

/* Adds a stored run's counts to its batches: every staged record is new,
 * but for those the classification found stored already. */
static void s_count_run(bm_store_t *s, size_t from, size_t to, const PGresult *cls)
{
    for (size_t m = from; m < to; m++)
        s->st[s->items[m].bi].stored++;
    for (int row = 0; row < PQntuples(cls); row++) {
        unsigned long bi = strtoul(PQgetvalue(cls, row, 0), NULL, 10);
        int oc = atoi(PQgetvalue(cls, row, 1));
        uint32_t n = (uint32_t)strtoul(PQgetvalue(cls, row, 2), NULL, 10);
        if (bi >= s->g_n || n > s->st[bi].stored)
            continue;
        s->st[bi].stored -= n;
        if (oc == S_OC_DUP || oc == S_OC_DUP_NEWER)
            s->st[bi].dups += n;
        else
            s->st[bi].corrected += n;
    }
}

/* Stages and stores items[from..to), all of one kind and round: COPY,
 * classification against the stored rows, stored versions raised by
 * duplicates that bring a newer one, older versions to the history, newer
 * ones superseding (bm_supersede), then the insert of the new rows and
 * their children.  Counts go to the batches only once the run has
 * succeeded (the record-by-record pass rolls a refused record back). */
static int s_store_run(bm_store_t *s, const bm_refcache_t *cache, size_t from, size_t to,
                       bool clear, bm_err_t *err)
{
    size_t k = s_kind_slot(s->items[from].kind);
    const s_kind_t *ks = &s_kinds[k];
    PGresult *cls = NULL, *res = NULL;
    unsigned long n[5] = {0, 0, 0, 0, 0};
    int rc = s_copy(s, cache, k, false, from, to, err);
    if (rc == S_OK && ks->child)
        rc = s_copy(s, cache, k, true, from, to, err);
    if (rc == S_OK && (rc = s_run_kind(s, k, S_Q_CLASSIFY, ks->stage, &cls, err)) == S_OK)
        s_class_totals(cls, n);
    if (rc == S_OK && n[S_OC_DUP_NEWER] > 0)
        rc = s_run_kind(s, k, S_Q_RAISE, "bm_version_raise", NULL, err);
    if (rc == S_OK && n[S_OC_DUP] + n[S_OC_LATE] + n[S_OC_DUP_NEWER] > 0)
        rc = s_run_kind(s, k, S_Q_RESOLVE, "record_history", NULL, err);
    if (rc == S_OK && n[S_OC_NEWER] > 0)
        rc = s_run_kind(s, k, S_Q_SUPERSEDE, "bm_supersede", NULL, err);
    if (rc == S_OK)
        rc = s_run_kind(s, k, S_Q_INSERT, bm_kind_name(ks->kind), &res, err);
    if (rc == S_OK) {
        /* Rows classified new cannot conflict (batches of a branch are
         * serialised by its advisory lock); a difference is a bug. */
        unsigned long want = (to - from) - n[S_OC_DUP] - n[S_OC_LATE] - n[S_OC_DUP_NEWER] -
                             (ks->in_place ? n[S_OC_NEWER] : 0);
        unsigned long got = strtoul(PQcmdTuples(res), NULL, 10);
        if (got != want) {
            bm_err_set(err, "%s: inserted %lu rows where %lu were new or newer versions",
                       ks->table, got, want);
            rc = S_FAILED;
        }
    }
    if (rc == S_OK && ks->child)
        rc = s_run_kind(s, k, S_Q_CHILDREN, ks->child->stage, NULL, err);
    if (rc == S_OK && clear)
        rc = s_clear_stage(s, ks, err);
    if (rc == S_OK)
        s_count_run(s, from, to, cls);
    PQclear(cls);
    PQclear(res);
    return rc;
}

/* Stores items[from..to) (sorted by round, then kind), one run per kind and
 * round.  With clear the staging tables are emptied after each run (when a
 * later round or record reuses them in this transaction). */
static int s_stage_insert(bm_store_t *s, const bm_refcache_t *cache, size_t from, size_t to,
                          bool clear, bm_err_t *err)
{
    size_t i = from;
    while (i < to) {
        size_t j = i;
        while (j < to && s->items[j].kind == s->items[i].kind &&
               s->items[j].round == s->items[i].round)
            j++;
        int rc = s_store_run(s, cache, i, j, clear, err);
        if (rc != S_OK)
            return rc;
        i = j;
    }
    return S_OK;
}

/* As sent: by batch position, then index in the batch. */
static int s_sent_cmp(const s_item_t *x, const s_item_t *y)
{
    if (x->bi != y->bi)
        return x->bi < y->bi ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Dedupe order: one (kind, branch, source_id) after another, first sent first. */
static int s_key_cmp(const void *a, const void *b)
{
    const s_item_t *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (x->branch_id != y->branch_id)
        return x->branch_id < y->branch_id ? -1 : 1;
    int c = strcmp(x->source_id, y->source_id);
    return c ? c : s_sent_cmp(x, y);
}

/* Staging order: by round, then kind (one COPY and insert each), then as
 * sent. */
static int s_send_cmp(const void *a, const void *b)
{
    const s_item_t *x = a, *y = b;
    if (x->round != y->round)
        return x->round < y->round ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return s_sent_cmp(x, y);
}

static bool s_same_key(const s_item_t *p, const s_item_t *q)
{
    return p->kind == q->kind && p->branch_id == q->branch_id &&
           strcmp(p->source_id, q->source_id) == 0;
}

/* Fills s->items with the accepted records of the group's fresh batches.
 * A (kind, branch, source_id) sent again in the group with the same content
 * counts as a duplicate of its own batch; each other content of it is a
 * version, staged in a round of its own in the order sent (the first
 * content in round 0, the next in round 1, ...), so that every round stages
 * a key at most once (children are joined to their parent by key) and a
 * later round finds the earlier one stored, as if it had come in a later
 * transaction: versions in one group end as they would in several.  A
 * repeat of a content keeps the newest version sent with it, as a later
 * transaction would have raised the stored version (014). */
static void s_plan(bm_store_t *s)
{
    size_t n = 0;
    for (size_t bi = 0; bi < s->g_n; bi++) {
        const bm_store_batch_t *b = s->g[bi];
        if (!s->st[bi].fresh)
            continue;
        for (size_t i = 0; i < b->n_records && i < BM_MAX_RECORDS_PER_BATCH; i++) {
            if (!b->accepted[i] || n >= s->max_items)
                continue;
            const bm_record_t *r = b->records[i];
            s->items[n++] = (s_item_t){.kind = (uint8_t)bm_record_kind(r), .bi = (uint16_t)bi,
                                       .index = (uint32_t)i, .branch_id = b->branch_id,
                                       .source_id = r->source_id ? r->source_id : "",
                                       .digest = s_digest(s, r), .version = r->version};
        }
    }
    qsort(s->items, n, sizeof *s->items, s_key_cmp);
    size_t m = 0, key_start = 0, rounds = 0;
    for (size_t i = 0; i < n; i++) {
        s_item_t p = s->items[i];
        if (m == 0 || !s_same_key(&p, &s->items[m - 1]))
            key_start = m;
        uint16_t round = 0;
        size_t q = key_start;
        while (q < m && s->items[q].digest != p.digest)
            q++, round++;
        if (q < m) {
            if (p.version > s->items[q].version)
                s->items[q].version = p.version;
            s->st[p.bi].group_dups++;
            continue;
        }
        p.round = round;
        if ((size_t)round + 1 > rounds)
            rounds = (size_t)round + 1;
        s->items[m++] = p;
    }
    qsort(s->items, m, sizeof *s->items, s_send_cmp);
    for (size_t i = 0; i < m; i++)
        s->st[s->items[i].bi].planned++;
    s->n_items = m;
    s->n_rounds = rounds;
}

/* Appends "{v0,v1,...}" of the fresh batches' values (0 batch position,
 * 1 stored, 2 duplicates, 3 rejected, 4 corrected) to the array buffer. */
static const char *s_int_array(bm_store_t *s, size_t *off, int which)
{
    char *start = s->arr_buf + *off;
    size_t cap = s->arr_cap - *off, len = 0;
    start[len++] = '{';
    for (size_t bi = 0; bi < s->g_n; bi++) {
        const s_bstate_t *t = &s->st[bi];
        if (!t->fresh)
            continue;
        uint32_t v = which == 0 ? (uint32_t)bi
                   : which == 1 ? t->stored
                   : which == 2 ? t->group_dups + t->dups
                   : which == 3 ? s->g[bi]->rejected + t->refused
                                : t->corrected;
        int n = snprintf(start + len, cap - len, "%s%" PRIu32, len > 1 ? "," : "", v);
        if (n > 0)
            len += (size_t)n;
    }
    snprintf(start + len, cap - len, "}");
    *off += len + 2;
    return start;
}

/* Says in the log which batches brought corrections (the agent's log says
 * it too, from the ack). */
static void s_log_corrections(const bm_store_t *s)
{
    for (size_t bi = 0; bi < s->g_n; bi++) {
        const s_bstate_t *t = &s->st[bi];
        if (t->fresh && t->corrected)
            bm_info("store", "batch %s/%" PRIu64 " of agent %s: %" PRIu32 " records were new "
                    "versions of records stored before (the older versions are in "
                    "record_history)", s->g[bi]->stream_id, s->g[bi]->sequence,
                    s->g[bi]->agent_id, t->corrected);
    }
}

/* One transaction for the group in s->g: ledger, records, ledger counts,
 * COMMIT.  per_record (groups of one batch only) stages each record under
 * a savepoint and reports the ones the database refuses. */
static int s_txn(bm_store_t *s, const bm_refcache_t *cache, bool per_record,
                 bm_store_group_refused_fn refused, void *ctx, size_t base,
                 bm_store_result_t *results, bm_err_t *err)
{
    for (size_t bi = 0; bi < s->g_n; bi++) {
        memset(&results[bi], 0, sizeof results[bi]);
        memset(&s->st[bi], 0, sizeof s->st[bi]);
    }
    PGresult *res = NULL;
    int rc = s_cmd(s, "BEGIN", err);
    if (rc != S_OK)
        return rc;
    if ((rc = s_copy_batches(s, err)) != S_OK ||
        (rc = s_run(s, "bm_lock", 0, NULL, "branch lock", NULL, err)) != S_OK ||
        (rc = s_run(s, "bm_ledger_ins", 0, NULL, "ingest_batches", &res, err)) != S_OK)
        goto fail;
    size_t fresh = 0;
    for (int row = 0; row < PQntuples(res); row++) {
        unsigned long bi = strtoul(PQgetvalue(res, row, 0), NULL, 10);
        if (bi < s->g_n && !s->st[bi].fresh) {
            s->st[bi].fresh = true;
            fresh++;
        }
    }
    PQclear(res);
    res = NULL;
    if (fresh < s->g_n) {
        /* Resends: answered with what the original stored. */
        if ((rc = s_run(s, "bm_ledger_get", 0, NULL, "ingest_batches", &res, err)) != S_OK)
            goto fail;
        for (int row = 0; row < PQntuples(res); row++) {
            unsigned long bi = strtoul(PQgetvalue(res, row, 0), NULL, 10);
            if (bi >= s->g_n || s->st[bi].fresh)
                continue;
            results[bi].stored = (uint32_t)strtoul(PQgetvalue(res, row, 1), NULL, 10);
            results[bi].duplicates = (uint32_t)strtoul(PQgetvalue(res, row, 2), NULL, 10);
            results[bi].replayed = PQgetvalue(res, row, 3)[0] == 't';
            results[bi].corrected = (uint32_t)strtoul(PQgetvalue(res, row, 4), NULL, 10);
            results[bi].batch_was_duplicate = true;
        }
        PQclear(res);
        res = NULL;
    }
    if (fresh == 0) {
        /* Nothing written: no commit (and no WAL flush) needed. */
        if ((rc = s_cmd(s, "ROLLBACK", err)) != S_OK)
            return rc;
        return S_OK;
    }
    s_plan(s);
    if (!per_record) {
        if ((rc = s_stage_insert(s, cache, 0, s->n_items, s->n_rounds > 1, err)) != S_OK)
            goto fail;
    } else {
        for (size_t i = 0; i < s->n_items; i++) {
            if ((rc = s_cmd(s, "SAVEPOINT bm_record", err)) != S_OK)
                goto fail;
            rc = s_stage_insert(s, cache, i, i + 1, true, err);
            if (rc == S_DATA) {
                if ((rc = s_cmd(s, "ROLLBACK TO SAVEPOINT bm_record", err)) != S_OK)
                    goto fail;
                s->st[s->items[i].bi].refused++;
                if (refused)
                    refused(ctx, base + s->items[i].bi, s->items[i].index, err->msg);
                continue;
            }
            if (rc != S_OK || (rc = s_cmd(s, "RELEASE SAVEPOINT bm_record", err)) != S_OK)
                goto fail;
        }
    }
    size_t off = 0;
    const char *bis = s_int_array(s, &off, 0);
    const char *sts = s_int_array(s, &off, 1);
    const char *dus = s_int_array(s, &off, 2);
    const char *rjs = s_int_array(s, &off, 3);
    const char *cos = s_int_array(s, &off, 4);
    const char *upd[] = {bis, sts, dus, rjs, cos};
    if ((rc = s_run(s, "bm_ledger_upd", 5, upd, "ingest_batches", NULL, err)) != S_OK ||
        (rc = s_cmd(s, "COMMIT", err)) != S_OK)
        goto fail;
    for (size_t bi = 0; bi < s->g_n; bi++) {
        const s_bstate_t *t = &s->st[bi];
        if (!t->fresh)
            continue;
        results[bi].stored = t->stored;
        results[bi].duplicates = t->group_dups + t->dups;
        results[bi].corrected = t->corrected;
        results[bi].refused = t->refused;
    }
    s_log_corrections(s);
    return S_OK;
fail:
    PQclear(res);
    if (PQstatus(s->conn) == CONNECTION_OK)
        PQclear(PQexec(s->conn, "ROLLBACK"));
    return rc;
}

/* What every entry point answers when the connection is gone: RETRY, with
 * the connection closed so that the owner reconnects. */
static bm_store_status_t s_not_connected(bm_store_t *s, bm_err_t *err)
{
    bm_err_set(err, "not connected to the database");
    bm_db_close(&s->conn);
    return BM_STORE_RETRY;
}

static bm_store_status_t s_public(bm_store_t *s, int rc)
{
    if (rc == S_RETRY) {
        /* Closed here so that the owner sees "not connected" and reconnects
         * with backoff rather than reusing a broken session. */
        bm_db_close(&s->conn);
        return BM_STORE_RETRY;
    }
    return rc == S_OK ? BM_STORE_OK : BM_STORE_FAILED;
}

/* Whether the group can go in one transaction: within the caps, and no
 * (stream, sequence) twice (the ledger could not tell the two apart). */
static bool s_groupable(const bm_store_t *s, const bm_store_batch_t *const *b, size_t n)
{
    if (n > s->max_batches)
        return false;
    size_t records = 0;
    for (size_t i = 0; i < n; i++) {
        records += b[i]->n_records;
        for (size_t j = 0; j < i; j++)
            if (b[i]->sequence == b[j]->sequence && strcmp(b[i]->stream_id, b[j]->stream_id) == 0)
                return false;
    }
    return records <= s->max_items;
}

bm_store_status_t bm_store_group(bm_store_t *s, const bm_store_batch_t *const *batches, size_t n,
                                 const bm_refcache_t *cache, bm_store_group_refused_fn refused,
                                 void *ctx, bm_store_result_t *results,
                                 bm_store_status_t *statuses, bm_err_t *errs, bm_err_t *err)
{
    for (size_t i = 0; i < n; i++)
        statuses[i] = BM_STORE_RETRY;
    if (!bm_store_connected(s))
        return s_not_connected(s, err);
    if (n == 0)
        return BM_STORE_OK;
    if (n > 1 && s_groupable(s, batches, n)) {
        s->g = batches;
        s->g_n = n;
        int rc = s_txn(s, cache, false, refused, ctx, 0, results, err);
        if (rc == S_OK) {
            for (size_t i = 0; i < n; i++)
                statuses[i] = BM_STORE_OK;
            return BM_STORE_OK;
        }
        if (rc == S_RETRY)
            return s_public(s, rc);
        bm_warn("store", "a group of %zu batches failed (%s); storing them one by one", n,
                err->msg);
    }
    /* One transaction per batch: a batch that fails fails alone. */
    for (size_t i = 0; i < n; i++) {
        const bm_store_batch_t *b = batches[i];
        s->g = &batches[i];
        s->g_n = 1;
        int rc = s_txn(s, cache, false, refused, ctx, i, &results[i], &errs[i]);
        if (rc == S_DATA) {
            bm_warn("store", "database refused batch %s/%" PRIu64 " (%s); storing it record "
                    "by record", b->stream_id, b->sequence, errs[i].msg);
            rc = s_txn(s, cache, true, refused, ctx, i, &results[i], &errs[i]);
            if (rc == S_DATA)
                rc = S_FAILED;
        }
        if (rc == S_RETRY) {
            /* Batches before i are committed (statuses OK); i and later are
             * RETRY. */
            *err = errs[i];
            return s_public(s, rc);
        }
        statuses[i] = rc == S_OK ? BM_STORE_OK : BM_STORE_FAILED;
    }
    return BM_STORE_OK;
}

typedef struct {
    bm_store_refused_fn fn;
    void *ctx;
} s_single_cb_t;

static void s_single_refused(void *ctx, size_t batch, size_t index, const char *reason)
{
    (void)batch;
    const s_single_cb_t *c = ctx;
    if (c->fn)
        c->fn(c->ctx, index, reason);
}

bm_store_status_t bm_store_batch(bm_store_t *s, const bm_store_batch_t *b,
                                 const bm_refcache_t *cache, bm_store_refused_fn refused,
                                 void *ctx, bm_store_result_t *result, bm_err_t *err)
{
    const bm_store_batch_t *g[1] = {b};
    s_single_cb_t cb = {refused, ctx};
    bm_store_status_t st = BM_STORE_RETRY;
    bm_err_t one = {{0}};
    if (bm_store_group(s, g, 1, cache, s_single_refused, &cb, result, &st, &one, err) ==
        BM_STORE_RETRY)
        return BM_STORE_RETRY;
    if (st != BM_STORE_OK)
        *err = one;
    return st;
}

bm_store_status_t bm_store_bind_agent(bm_store_t *s, const char *agent_id, int32_t branch_id,
                                      int32_t *bound_branch_id, bm_err_t *err)
{
    if (!bm_store_connected(s))
        return s_not_connected(s, err);
    char branch[16];
    snprintf(branch, sizeof branch, "%" PRId32, branch_id);
    const char *p[] = {agent_id, branch};
    PGresult *res = NULL;
    int rc = s_run(s, "bm_agent", 2, p, "agents", &res, err);
    if (rc != S_OK)
        return s_public(s, rc);
    if (PQntuples(res) == 1) {
        *bound_branch_id = (int32_t)atol(PQgetvalue(res, 0, 0));
        PQclear(res);
        return BM_STORE_OK;
    }
    PQclear(res);
    /* The conflict's WHERE did not match: bound to another branch. */
    rc = s_run(s, "bm_agent_get", 1, p, "agents", &res, err);
    if (rc != S_OK)
        return s_public(s, rc);
    *bound_branch_id = PQntuples(res) == 1 ? (int32_t)atol(PQgetvalue(res, 0, 0)) : 0;
    PQclear(res);
    return BM_STORE_OK;
}

/* Appends v to buf as a double-quoted array element (\ and " escaped). */
static size_t s_array_elem(char *buf, size_t len, const char *v)
{
    buf[len++] = '"';
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf[len++] = '\\';
        buf[len++] = *p;
    }
    buf[len++] = '"';
    return len;
}

bm_store_status_t bm_store_touch_agents(bm_store_t *s, const char *const *agent_ids,
                                        const int32_t *branch_ids, size_t n,
                                        void (*gone)(void *ctx, size_t i), void *ctx,
                                        bm_err_t *err)
{
    if (!bm_store_connected(s))
        return s_not_connected(s, err);
    if (n == 0)
        return BM_STORE_OK;
    /* Once a minute, not per record: one allocation per refresh is fine. */
    size_t text_cap = 3, int_cap = 3;
    for (size_t i = 0; i < n; i++) {
        text_cap += 2 * strlen(agent_ids[i]) + 3;
        int_cap += 12;
    }
    char *ids = malloc(text_cap), *branches = malloc(int_cap);
    if (!ids || !branches) {
        free(ids);
        free(branches);
        bm_err_set(err, "out of memory refreshing %zu agents", n);
        return BM_STORE_FAILED;
    }
    size_t tl = 0, il = 0;
    ids[tl++] = '{';
    branches[il++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) {
            ids[tl++] = ',';
            branches[il++] = ',';
        }
        tl = s_array_elem(ids, tl, agent_ids[i]);
        il += (size_t)snprintf(branches + il, int_cap - il, "%" PRId32, branch_ids[i]);
    }
    ids[tl++] = '}';
    ids[tl] = '\0';
    snprintf(branches + il, int_cap - il, "}");
    const char *p[] = {ids, branches};
    PGresult *res = NULL;
    int rc = s_run(s, "bm_agent_touch", 2, p, "agents", &res, err);
    free(ids);
    free(branches);
    if (rc != S_OK)
        return s_public(s, rc);
    for (int row = 0; row < PQntuples(res); row++) {
        unsigned long i = strtoul(PQgetvalue(res, row, 0), NULL, 10);
        if (i >= 1 && i <= n && gone)
            gone(ctx, i - 1);
    }
    PQclear(res);
    return BM_STORE_OK;
}
