/* bm-copy-baseline: writes the rows bm-loadgen would send straight into
 * PostgreSQL with libpq COPY, to give the collector's ingest a ceiling.
 *
 *   bm-copy-baseline --db CONNINFO --truncate --mode binary|text|notrigger
 *                    [--agents N] [--branches B] [--records TOTAL] [--batch R]
 *                    [--txn-rows N] [--prefix P] [--branch-prefix L] [--seed S]
 *
 * The rows are those of `bm-loadgen` with the same --agents, --branches,
 * --records, --batch, --prefix and --seed (bench/loadmix.c), in the same
 * order.  Modes:
 *   binary     COPY (FORMAT binary) into the real raw tables: the rollup
 *              triggers fire, as they do for the collector ("the same rows");
 *   text       the same with COPY text format;
 *   notrigger  binary COPY into identical copies of the raw tables in schema
 *              bm_bench (CREATE TABLE ... (LIKE ... INCLUDING ALL) plus the
 *              branch foreign key): no rollup triggers, so the difference to
 *              `binary` is what the rollups cost.
 * One transaction per --txn-rows records (default 10000), each COPYing its
 * rows table by table.  All COPY data is built before the clock starts.
 * --truncate is required: the raw and rollup tables (or bm_bench's) are
 * emptied first, so never point this at a database whose data you want.
 * Prints one line:
 *   copy_baseline: mode=.. rows=.. txn_rows=.. elapsed_s=.. rows_per_s=.. verified=..
 *
 * Owns: one libpq connection and the COPY buffers of the run. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "bm_err.h"
#include "bm_time.h"
#include "bm_wire.h"
#include "loadmix.h"

#define S_NTAB 7
#define S_PG_EPOCH_MS 946684800000LL   /* 2000-01-01 in Unix ms */

static const struct {
    bm_kind_t kind;
    const char *table;
    const char *cols;
    int nfields;
} s_tabs[S_NTAB] = {
    {BM_KIND_PEOPLE_COUNT, "people_counts",
     "branch_id, source_id, interval_start, interval_seconds, passers_by, entrants", 6},
    {BM_KIND_RECEIPT, "receipts", "branch_id, source_id, at, amount_minor, currency", 5},
    {BM_KIND_QUEUE_TICKET, "queue_tickets",
     "branch_id, source_id, issued_at, called_at, served_at, service_point", 6},
    {BM_KIND_PHONE_CALL, "phone_calls", "branch_id, source_id, ring_start, answered, wait_seconds",
     5},
    {BM_KIND_COMPLAINT, "complaints",
     "branch_id, source_id, received_at_src, category, contact_point, channel, resolved_at", 7},
    {BM_KIND_SURVEY, "survey_responses",
     "branch_id, source_id, responded_at, nps, csi, why, segment, survey_channel", 8},
    {BM_KIND_CUSTOMER_CHANGE, "customer_changes",
     "branch_id, source_id, at, kind, reason, segment", 6},
};

typedef struct {
    char *p;
    size_t len, cap;
} s_buf_t;

typedef struct {
    s_buf_t tab[S_NTAB];
    uint64_t rows[S_NTAB];
} s_chunk_t;

static bool s_oom;

static void s_put(s_buf_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->len + n)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            s_oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* ---- binary fields ---- */
static void s_b_i16(s_buf_t *b, int16_t v)
{
    uint16_t x = htons((uint16_t)v);
    s_put(b, &x, 2);
}
static void s_b_i32raw(s_buf_t *b, int32_t v)
{
    uint32_t x = htonl((uint32_t)v);
    s_put(b, &x, 4);
}
static void s_b_i64raw(s_buf_t *b, int64_t v)
{
    uint32_t hi = htonl((uint32_t)((uint64_t)v >> 32)), lo = htonl((uint32_t)v);
    s_put(b, &hi, 4);
    s_put(b, &lo, 4);
}
static void s_b_null(s_buf_t *b) { s_b_i32raw(b, -1); }
static void s_b_int4(s_buf_t *b, int32_t v) { s_b_i32raw(b, 4), s_b_i32raw(b, v); }
static void s_b_int2(s_buf_t *b, int16_t v) { s_b_i32raw(b, 2), s_b_i16(b, v); }
static void s_b_int8(s_buf_t *b, int64_t v) { s_b_i32raw(b, 8), s_b_i64raw(b, v); }
static void s_b_ts(s_buf_t *b, int64_t ms) { s_b_int8(b, (ms - S_PG_EPOCH_MS) * 1000); }
static void s_b_bool(s_buf_t *b, bool v)
{
    s_b_i32raw(b, 1);
    uint8_t x = v;
    s_put(b, &x, 1);
}
static void s_b_text(s_buf_t *b, const char *s)
{
    size_t n = strlen(s);
    s_b_i32raw(b, (int32_t)n);
    s_put(b, s, n);
}

/* ---- text fields (the generated strings need no escaping) ---- */
static void s_t_sep(s_buf_t *b, bool last) { s_put(b, last ? "\n" : "\t", 1); }
static void s_t_int(s_buf_t *b, int64_t v, bool last)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    s_put(b, tmp, (size_t)n);
    s_t_sep(b, last);
}
static void s_t_null(s_buf_t *b, bool last) { s_put(b, "\\N", 2), s_t_sep(b, last); }
static void s_t_text(s_buf_t *b, const char *s, bool last)
{
    s_put(b, s, strlen(s));
    s_t_sep(b, last);
}
static void s_t_ts(s_buf_t *b, int64_t ms, bool last)
{
    char tmp[40];
    bm_time_format(ms, tmp, sizeof tmp);
    s_t_text(b, tmp, last);
}

/* One record as a row of its table. */
static void s_row(s_chunk_t *c, bool binary, int32_t branch_id, const bm_record_t *r)
{
    int t;
    for (t = 0; t < S_NTAB; t++)
        if (s_tabs[t].kind == bm_record_kind(r))
            break;
    if (t == S_NTAB)
        return;
    s_buf_t *b = &c->tab[t];
    c->rows[t]++;
    if (binary) {
        s_b_i16(b, (int16_t)s_tabs[t].nfields);
        s_b_int4(b, branch_id);
        s_b_text(b, r->source_id);
    } else {
        s_t_int(b, branch_id, false);
        s_t_text(b, r->source_id, false);
    }
    switch (r->kind_case) {
    case BRANCHMARK__V1__RECORD__KIND_PEOPLE_COUNT: {
        const Branchmark__V1__PeopleCount *p = r->people_count;
        if (binary) {
            s_b_ts(b, p->interval_start_ms), s_b_int4(b, (int32_t)p->interval_seconds);
            s_b_int4(b, (int32_t)p->passers_by), s_b_int4(b, (int32_t)p->entrants);
        } else {
            s_t_ts(b, p->interval_start_ms, false), s_t_int(b, p->interval_seconds, false);
            s_t_int(b, p->passers_by, false), s_t_int(b, p->entrants, true);
        }
        break;
    }
    case BRANCHMARK__V1__RECORD__KIND_RECEIPT: {
        const Branchmark__V1__Receipt *p = r->receipt;
        if (binary)
            s_b_ts(b, p->at_ms), s_b_int8(b, p->amount_minor), s_b_text(b, p->currency);
        else
            s_t_ts(b, p->at_ms, false), s_t_int(b, p->amount_minor, false),
                s_t_text(b, p->currency, true);
        break;
    }
    case BRANCHMARK__V1__RECORD__KIND_QUEUE_TICKET: {
        const Branchmark__V1__QueueTicket *p = r->queue_ticket;
        bool called = p->called_case == BRANCHMARK__V1__QUEUE_TICKET__CALLED_CALLED_AT_MS;
        bool served = p->served_case == BRANCHMARK__V1__QUEUE_TICKET__SERVED_SERVED_AT_MS;
        if (binary) {
            s_b_ts(b, p->issued_at_ms);
            called ? s_b_ts(b, p->called_at_ms) : s_b_null(b);
            served ? s_b_ts(b, p->served_at_ms) : s_b_null(b);
            s_b_text(b, p->service_point);
        } else {
            s_t_ts(b, p->issued_at_ms, false);
            called ? s_t_ts(b, p->called_at_ms, false) : s_t_null(b, false);
            served ? s_t_ts(b, p->served_at_ms, false) : s_t_null(b, false);
            s_t_text(b, p->service_point, true);
        }
        break;
    }
    case BRANCHMARK__V1__RECORD__KIND_PHONE_CALL: {
        const Branchmark__V1__PhoneCall *p = r->phone_call;
        if (binary)
            s_b_ts(b, p->ring_start_ms), s_b_bool(b, p->answered),
                s_b_int4(b, (int32_t)p->wait_seconds);
        else
            s_t_ts(b, p->ring_start_ms, false), s_t_text(b, p->answered ? "t" : "f", false),
                s_t_int(b, p->wait_seconds, true);
        break;
    }
    case BRANCHMARK__V1__RECORD__KIND_COMPLAINT: {
        const Branchmark__V1__Complaint *p = r->complaint;
        bool res = p->resolved_case == BRANCHMARK__V1__COMPLAINT__RESOLVED_RESOLVED_AT_MS;
        if (binary) {
            s_b_ts(b, p->received_at_ms), s_b_text(b, p->category);
            s_b_text(b, p->contact_point), s_b_text(b, p->channel);
            res ? s_b_ts(b, p->resolved_at_ms) : s_b_null(b);
        } else {
            s_t_ts(b, p->received_at_ms, false), s_t_text(b, p->category, false);
            s_t_text(b, p->contact_point, false), s_t_text(b, p->channel, false);
            res ? s_t_ts(b, p->resolved_at_ms, true) : s_t_null(b, true);
        }
        break;
    }
    case BRANCHMARK__V1__RECORD__KIND_SURVEY: {
        const Branchmark__V1__SurveyResponse *p = r->survey;
        bool has = p->nps_answer_case == BRANCHMARK__V1__SURVEY_RESPONSE__NPS_ANSWER_NPS;
        if (binary) {
            s_b_ts(b, p->responded_at_ms);
            has ? s_b_int2(b, (int16_t)p->nps) : s_b_null(b);
            s_b_null(b);   /* csi: the mix has no CSI items */
            s_b_text(b, p->why), s_b_text(b, p->segment), s_b_text(b, p->survey_channel);
        } else {
            s_t_ts(b, p->responded_at_ms, false);
            has ? s_t_int(b, p->nps, false) : s_t_null(b, false);
            s_t_null(b, false);
            s_t_text(b, p->why, false), s_t_text(b, p->segment, false);
            s_t_text(b, p->survey_channel, true);
        }
        break;
    }
    case BRANCHMARK__V1__RECORD__KIND_CUSTOMER_CHANGE: {
        const Branchmark__V1__CustomerChange *p = r->customer_change;
        const char *k =
            p->kind == BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_LOST ? "lost" : "gained";
        if (binary)
            s_b_ts(b, p->at_ms), s_b_text(b, k), s_b_text(b, p->reason), s_b_text(b, p->segment);
        else
            s_t_ts(b, p->at_ms, false), s_t_text(b, k, false), s_t_text(b, p->reason, false),
                s_t_text(b, p->segment, true);
        break;
    }
    default:
        break;
    }
}

static int s_exec(PGconn *c, const char *sql, bm_err_t *err)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        bm_err_set(err, "%s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

static int s_copy(PGconn *c, const char *schema, int t, bool binary, const s_buf_t *b,
                  bm_err_t *err)
{
    static const char hdr[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
    char sql[512];
    snprintf(sql, sizeof sql, "COPY %s.%s (%s) FROM STDIN%s", schema, s_tabs[t].table,
             s_tabs[t].cols, binary ? " (FORMAT binary)" : "");
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        bm_err_set(err, "%s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        return -1;
    }
    PQclear(r);
    int ok = 1;
    if (binary)
        ok = PQputCopyData(c, hdr, 19);
    /* In 1 MiB pieces: libpq copies each piece into its own buffer. */
    for (size_t off = 0; ok == 1 && off < b->len; off += 1 << 20) {
        size_t n = b->len - off < (1u << 20) ? b->len - off : (1u << 20);
        ok = PQputCopyData(c, b->p + off, (int)n);
    }
    if (ok == 1 && binary) {
        uint16_t trailer = 0xffff;
        ok = PQputCopyData(c, (const char *)&trailer, 2);
    }
    if (ok != 1 || PQputCopyEnd(c, NULL) != 1)
        return bm_err_set(err, "COPY %s: %s", s_tabs[t].table, PQerrorMessage(c));
    int rc = 0;
    while ((r = PQgetResult(c)) != NULL) {
        if (rc == 0 && PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = bm_err_set(err, "COPY %s: %s", s_tabs[t].table, PQerrorMessage(c));
        PQclear(r);
    }
    return rc;
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: bm-copy-baseline --db CONNINFO --truncate --mode binary|text|notrigger\n"
               "                        [--agents N] [--branches B] [--records TOTAL] [--batch R]\n"
               "                        [--txn-rows N] [--prefix P] [--branch-prefix L] [--seed S]\n");
}

static int s_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < lo || v > hi) {
        fprintf(stderr, "bm-copy-baseline: %s: \"%s\" is not an integer in %" PRIu64
                "..%" PRIu64 "\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *db = NULL, *mode = NULL, *prefix = "LG", *bprefix = "L";
    bool truncate = false;
    uint64_t agents = 10, branches = 0, records = 100000, batch = 1000, txn_rows = 10000,
             seed = 42;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) {
            s_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--truncate")) {
            truncate = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bm-copy-baseline: unknown option or missing value: \"%s\"\n", a);
            return 2;
        }
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "--db"))
            db = v;
        else if (!strcmp(a, "--mode"))
            mode = v;
        else if (!strcmp(a, "--prefix"))
            prefix = v;
        else if (!strcmp(a, "--branch-prefix"))
            bprefix = v;
        else if (!strcmp(a, "--agents"))
            rc = s_u64(a, v, 1, 20000, &agents);
        else if (!strcmp(a, "--branches"))
            rc = s_u64(a, v, 1, 99999, &branches);
        else if (!strcmp(a, "--records"))
            rc = s_u64(a, v, 1, 50000000, &records);
        else if (!strcmp(a, "--batch"))
            rc = s_u64(a, v, 1, BM_MAX_RECORDS_PER_BATCH, &batch);
        else if (!strcmp(a, "--txn-rows"))
            rc = s_u64(a, v, 1, 10000000, &txn_rows);
        else if (!strcmp(a, "--seed"))
            rc = s_u64(a, v, 0, UINT64_MAX, &seed);
        else {
            fprintf(stderr, "bm-copy-baseline: unknown option \"%s\"\n", a);
            return 2;
        }
        if (rc < 0)
            return 2;
    }
    if (!db || !mode || !truncate ||
        (strcmp(mode, "binary") && strcmp(mode, "text") && strcmp(mode, "notrigger"))) {
        fprintf(stderr, "bm-copy-baseline: --db, --mode binary|text|notrigger and --truncate "
                        "are required\n");
        s_usage(stderr);
        return 2;
    }
    if (!branches)
        branches = agents;
    bool binary = strcmp(mode, "text") != 0;
    const char *schema = strcmp(mode, "notrigger") ? "public" : "bm_bench";
    bm_err_t err;
    bm_err_clear(&err);

    PGconn *c = PQconnectdb(db);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bm-copy-baseline: could not connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return 1;
    }
    /* Branch ids of L00001 .. by number. */
    int32_t *bid = calloc(branches, sizeof *bid);
    PGresult *r = PQexec(c, "SELECT code, id FROM branches");
    if (!bid || PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "bm-copy-baseline: branches: %s", PQerrorMessage(c));
        return 1;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        const char *code = PQgetvalue(r, i, 0);
        size_t pl = strlen(bprefix);
        if (strncmp(code, bprefix, pl) == 0) {
            unsigned long n = strtoul(code + pl, NULL, 10);
            if (n >= 1 && n <= branches)
                bid[n - 1] = (int32_t)atol(PQgetvalue(r, i, 1));
        }
    }
    PQclear(r);
    for (uint64_t i = 0; i < branches; i++)
        if (!bid[i]) {
            fprintf(stderr, "bm-copy-baseline: branch %s%05" PRIu64 " is not in the database "
                            "(load the refdata of bm-loadgen --write-refdata)\n", bprefix, i + 1);
            return 1;
        }

    if (!strcmp(schema, "bm_bench")) {
        if (s_exec(c, "CREATE SCHEMA IF NOT EXISTS bm_bench", &err) < 0)
            goto fail;
        for (int t = 0; t < S_NTAB; t++) {
            char sql[512];
            snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS bm_bench.%s", s_tabs[t].table);
            if (s_exec(c, sql, &err) < 0)
                goto fail;
            snprintf(sql, sizeof sql,
                     "CREATE TABLE bm_bench.%s (LIKE public.%s INCLUDING ALL); "
                     "ALTER TABLE bm_bench.%s ADD FOREIGN KEY (branch_id) "
                     "REFERENCES public.branches(id)",
                     s_tabs[t].table, s_tabs[t].table, s_tabs[t].table);
            if (s_exec(c, sql, &err) < 0)
                goto fail;
        }
    } else if (s_exec(c, "TRUNCATE people_counts, receipts, queue_tickets, phone_calls, "
                         "complaints, survey_responses, customer_changes, rollup_traffic, "
                         "rollup_sales, rollup_queue, rollup_calls, rollup_complaints, "
                         "rollup_complaint_causes, rollup_surveys, rollup_customers, "
                         "rollup_lost_reasons, rollup_hist CASCADE", &err) < 0) {
        goto fail;
    }
    if (s_exec(c, "CHECKPOINT", &err) < 0)
        goto fail;

    /* Build every chunk's COPY data before the clock starts. */
    uint64_t n_batches = (records + batch - 1) / batch;
    uint64_t n_chunks = (records + txn_rows - 1) / txn_rows;
    s_chunk_t *chunks = calloc(n_chunks, sizeof *chunks);
    bm_loadmix_rng_t *rngs = calloc(agents, sizeof *rngs);
    uint64_t *counter = calloc(agents, sizeof *counter);
    bm_loadmix_rec_t *rec = calloc(1, sizeof *rec);
    if (!chunks || !rngs || !counter || !rec) {
        fprintf(stderr, "bm-copy-baseline: out of memory\n");
        return 1;
    }
    for (uint64_t a = 0; a < agents; a++)
        bm_loadmix_seed(&rngs[a], seed, a);
    int64_t now = bm_now_ms();
    uint64_t left = records, done = 0;
    for (uint64_t k = 0; k < n_batches; k++) {
        uint64_t a = k % agents;
        uint64_t nrec = left < batch ? left : batch;
        left -= nrec;
        for (uint64_t i = 0; i < nrec; i++, done++) {
            bm_loadmix_next(&rngs[a], prefix, (uint32_t)a, counter[a]++, now, rec);
            s_row(&chunks[done / txn_rows], binary, bid[a % branches], &rec->rec);
        }
    }
    if (s_oom) {
        fprintf(stderr, "bm-copy-baseline: out of memory building the COPY data\n");
        return 1;
    }
    double t0 = s_now();
    for (uint64_t ch = 0; ch < n_chunks; ch++) {
        if (s_exec(c, "BEGIN", &err) < 0)
            goto fail;
        for (int t = 0; t < S_NTAB; t++)
            if (chunks[ch].rows[t] && s_copy(c, schema, t, binary, &chunks[ch].tab[t], &err) < 0)
                goto fail;
        if (s_exec(c, "COMMIT", &err) < 0)
            goto fail;
    }
    double elapsed = s_now() - t0;
    /* Verify: the rows are all there. */
    uint64_t counted = 0;
    for (int t = 0; t < S_NTAB; t++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.%s", schema, s_tabs[t].table);
        r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            counted += strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    printf("copy_baseline: mode=%s rows=%" PRIu64 " txn_rows=%" PRIu64 " elapsed_s=%.3f "
           "rows_per_s=%.0f counted=%" PRIu64 " result=%s\n",
           mode, records, txn_rows, elapsed, (double)records / elapsed, counted,
           counted == records ? "PASS" : "FAIL");
    for (uint64_t ch = 0; ch < n_chunks; ch++)
        for (int t = 0; t < S_NTAB; t++)
            free(chunks[ch].tab[t].p);
    free(chunks);
    free(rngs);
    free(counter);
    free(rec);
    free(bid);
    PQfinish(c);
    return counted == records ? 0 : 1;
fail:
    fprintf(stderr, "bm-copy-baseline: %s\n", err.msg);
    PQfinish(c);
    return 1;
}
