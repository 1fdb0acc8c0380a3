/* store: exactly-once batch writes to PostgreSQL; see store.h.
 *
 * Owns the collector's connection, its TEMP staging tables (created once
 * per connection, ON COMMIT DELETE ROWS), its prepared statements and a
 * fixed COPY buffer.  Per-batch work arrays are allocated once at their
 * hard cap (BM_MAX_RECORDS_PER_BATCH), so storing a batch allocates
 * nothing per record. */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

typedef struct {
    bm_kind_t kind;
    const char *stage;          /* staging table */
    const char *columns;        /* its column definitions */
    const char *insert;         /* INSERT ... SELECT from the staging table */
    const char *child_stage;    /* NULL, or the child staging table */
    const char *child_columns;
    const char *dedup;          /* drops staged parents already stored */
    const char *child_insert;   /* children of newly stored parents */
} s_kind_sql_t;

#define S_CONFLICT " ON CONFLICT (branch_id, source_id) DO NOTHING"

static const s_kind_sql_t s_kinds[] = {
    {BM_KIND_PEOPLE_COUNT, "stg_people_counts",
     "idx int, source_id text, interval_start timestamptz, interval_seconds bigint, "
     "passers_by bigint, entrants bigint",
     "INSERT INTO people_counts (branch_id, source_id, interval_start, interval_seconds, "
     "passers_by, entrants) SELECT $1, source_id, interval_start, interval_seconds, "
     "passers_by, entrants FROM stg_people_counts ORDER BY idx" S_CONFLICT,
     NULL, NULL, NULL, NULL},
    {BM_KIND_RECEIPT, "stg_receipts",
     "idx int, source_id text, at timestamptz, amount_minor bigint, currency text",
     "INSERT INTO receipts (branch_id, source_id, at, amount_minor, currency) "
     "SELECT $1, source_id, at, amount_minor, currency FROM stg_receipts ORDER BY idx" S_CONFLICT,
     NULL, NULL, NULL, NULL},
    {BM_KIND_QUEUE_TICKET, "stg_queue_tickets",
     "idx int, source_id text, issued_at timestamptz, called_at timestamptz, "
     "served_at timestamptz, service_point text",
     "INSERT INTO queue_tickets (branch_id, source_id, issued_at, called_at, served_at, "
     "service_point) SELECT $1, source_id, issued_at, called_at, served_at, service_point "
     "FROM stg_queue_tickets ORDER BY idx" S_CONFLICT,
     NULL, NULL, NULL, NULL},
    {BM_KIND_PHONE_CALL, "stg_phone_calls",
     "idx int, source_id text, ring_start timestamptz, answered boolean, wait_seconds bigint",
     "INSERT INTO phone_calls (branch_id, source_id, ring_start, answered, wait_seconds) "
     "SELECT $1, source_id, ring_start, answered, wait_seconds FROM stg_phone_calls "
     "ORDER BY idx" S_CONFLICT,
     NULL, NULL, NULL, NULL},
    {BM_KIND_COMPLAINT, "stg_complaints",
     "idx int, source_id text, received_at_src timestamptz, category text, "
     "contact_point text, channel text, resolved_at timestamptz",
     "INSERT INTO complaints (branch_id, source_id, received_at_src, category, contact_point, "
     "channel, resolved_at) SELECT $1, source_id, received_at_src, category, contact_point, "
     "channel, resolved_at FROM stg_complaints ORDER BY idx" S_CONFLICT,
     NULL, NULL, NULL, NULL},
    {BM_KIND_SURVEY, "stg_survey_responses",
     "idx int, source_id text, responded_at timestamptz, nps smallint, csi float8, "
     "why text, segment text, survey_channel text",
     "INSERT INTO survey_responses (branch_id, source_id, responded_at, nps, csi, why, "
     "segment, survey_channel) SELECT $1, source_id, responded_at, nps, csi, why, segment, "
     "survey_channel FROM stg_survey_responses ORDER BY idx" S_CONFLICT,
     "stg_survey_csi", "source_id text, item text, score smallint, scale_max smallint",
     "DELETE FROM stg_survey_responses s USING survey_responses r "
     "WHERE r.branch_id = $1 AND r.source_id = s.source_id",
     "INSERT INTO survey_csi_scores (response_id, item, score, scale_max) "
     "SELECT r.id, c.item, c.score, c.scale_max FROM stg_survey_csi c "
     "JOIN stg_survey_responses s ON s.source_id = c.source_id "
     "JOIN survey_responses r ON r.branch_id = $1 AND r.source_id = s.source_id"},
    {BM_KIND_CUSTOMER_CHANGE, "stg_customer_changes",
     "idx int, source_id text, at timestamptz, kind text, reason text, segment text",
     "INSERT INTO customer_changes (branch_id, source_id, at, kind, reason, segment) "
     "SELECT $1, source_id, at, kind, reason, segment FROM stg_customer_changes "
     "ORDER BY idx" S_CONFLICT,
     NULL, NULL, NULL, NULL},
    {BM_KIND_EVALUATION, "stg_evaluations",
     "idx int, source_id text, questionnaire_id int, channel text, scenario text, "
     "shopper_segment text, outlet_branch_id int, competitor_outlet_id int, "
     "visited_at timestamptz, submitted_at timestamptz, shopper_ref text",
     "INSERT INTO evaluations (branch_id, source_id, questionnaire_id, channel, scenario, "
     "shopper_segment, outlet_branch_id, competitor_outlet_id, visited_at, submitted_at, "
     "shopper_ref) SELECT $1, source_id, questionnaire_id, channel, scenario, "
     "shopper_segment, outlet_branch_id, competitor_outlet_id, visited_at, submitted_at, "
     "shopper_ref FROM stg_evaluations ORDER BY idx" S_CONFLICT,
     "stg_evaluation_answers", "source_id text, item_code text, points float8, comment text",
     "DELETE FROM stg_evaluations s USING evaluations e "
     "WHERE e.branch_id = $1 AND e.source_id = s.source_id",
     "INSERT INTO evaluation_answers (evaluation_id, questionnaire_id, item_code, points, "
     "comment) SELECT e.id, e.questionnaire_id, a.item_code, a.points, a.comment "
     "FROM stg_evaluation_answers a JOIN stg_evaluations s ON s.source_id = a.source_id "
     "JOIN evaluations e ON e.branch_id = $1 AND e.source_id = s.source_id"},
};
#define S_NKINDS (sizeof s_kinds / sizeof s_kinds[0])

static const struct {
    const char *name, *sql;
} s_statements[] = {
    {"bm_lock", "SELECT pg_advisory_xact_lock(" S_BRANCH_LOCK_NS ", $1::int)"},
    {"bm_ledger_ins",
     "INSERT INTO ingest_batches (stream_id, sequence, agent_id, branch_id, sent_at, records, "
     "stored, duplicates, rejected) VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7) "
     "ON CONFLICT (stream_id, sequence) DO NOTHING"},
    {"bm_ledger_get",
     "SELECT stored, duplicates, rejected FROM ingest_batches "
     "WHERE stream_id = $1 AND sequence = $2"},
    {"bm_ledger_upd",
     "UPDATE ingest_batches SET stored = $3, duplicates = $4, rejected = $5 "
     "WHERE stream_id = $1 AND sequence = $2"},
    {"bm_agent",
     "INSERT INTO agents (agent_id, branch_id) VALUES ($1, $2) "
     "ON CONFLICT (agent_id) DO UPDATE SET last_seen = now() "
     "WHERE agents.branch_id = EXCLUDED.branch_id RETURNING branch_id"},
    {"bm_agent_get", "SELECT branch_id FROM agents WHERE agent_id = $1"},
};

typedef struct {
    uint8_t kind;
    uint32_t index;
    const char *source_id;
} s_order_t;

struct bm_store {
    char *conninfo;
    PGconn *conn;
    char copy_buf[S_COPY_BUF];
    size_t copy_len;
    s_order_t *sorted;          /* BM_MAX_RECORDS_PER_BATCH: in-batch duplicate check */
    uint32_t *order;            /* BM_MAX_RECORDS_PER_BATCH: indices to store */
    size_t n_order;
    uint32_t in_batch_dups;
};

bm_store_t *bm_store_new(const char *conninfo)
{
    bm_store_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->conninfo = strdup(conninfo ? conninfo : "");
    s->sorted = calloc(BM_MAX_RECORDS_PER_BATCH, sizeof *s->sorted);
    s->order = calloc(BM_MAX_RECORDS_PER_BATCH, sizeof *s->order);
    if (!s->conninfo || !s->sorted || !s->order)
        bm_store_destroy(&s);
    return s;
}

void bm_store_destroy(bm_store_t **store_p)
{
    if (!store_p || !*store_p)
        return;
    bm_store_t *s = *store_p;
    bm_db_close(&s->conn);
    free(s->conninfo);
    free(s->sorted);
    free(s->order);
    free(s);
    *store_p = NULL;
}

int bm_store_connect(bm_store_t *s, bm_err_t *err)
{
    bm_db_close(&s->conn);
    s->conn = bm_db_connect(s->conninfo, "branchmark-collector", err);
    if (!s->conn)
        return -1;
    for (size_t k = 0; k < S_NKINDS; k++) {
        char sql[512];
        snprintf(sql, sizeof sql, "CREATE TEMP TABLE %s (%s) ON COMMIT DELETE ROWS",
                 s_kinds[k].stage, s_kinds[k].columns);
        if (bm_db_exec(s->conn, sql, err) < 0)
            goto fail;
        if (s_kinds[k].child_stage) {
            snprintf(sql, sizeof sql, "CREATE TEMP TABLE %s (%s) ON COMMIT DELETE ROWS",
                     s_kinds[k].child_stage, s_kinds[k].child_columns);
            if (bm_db_exec(s->conn, sql, err) < 0)
                goto fail;
        }
    }
    for (size_t i = 0; i < sizeof s_statements / sizeof s_statements[0]; i++) {
        PGresult *res = PQprepare(s->conn, s_statements[i].name, s_statements[i].sql, 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            bm_db_result_err(res, s->conn, s_statements[i].name, err);
            PQclear(res);
            goto fail;
        }
        PQclear(res);
    }
    for (size_t k = 0; k < S_NKINDS; k++) {
        const char *sqls[3] = {s_kinds[k].insert, s_kinds[k].dedup, s_kinds[k].child_insert};
        for (int j = 0; j < 3; j++) {
            if (!sqls[j])
                continue;
            char name[48];
            snprintf(name, sizeof name, "bm_k%zu_%d", k, j);
            PGresult *res = PQprepare(s->conn, name, sqls[j], 0, NULL);
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                bm_db_result_err(res, s->conn, s_kinds[k].stage, err);
                PQclear(res);
                goto fail;
            }
            PQclear(res);
        }
    }
    return 0;
fail:
    bm_db_close(&s->conn);
    return -1;
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

/* Runs a prepared statement; returns S_OK with *res_out (caller clears, may
 * be NULL to discard) or another status with err. */
static int s_run(bm_store_t *s, const char *name, int n, const char *const *params,
                 const char *what, PGresult **res_out, bm_err_t *err)
{
    PGresult *res = PQexecPrepared(s->conn, name, n, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        bm_db_result_err(res, s->conn, what, err);
        int rc = s_classify(s, res);
        PQclear(res);
        return rc;
    }
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
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        bm_db_result_err(res, s->conn, sql, err);
        int rc = s_classify(s, res);
        PQclear(res);
        return rc;
    }
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

static void s_sep(bm_store_t *s)
{
    s_put(s, "\t", 1);
}

static void s_eol(bm_store_t *s)
{
    s_put(s, "\n", 1);
}

static void s_null(bm_store_t *s)
{
    s_put(s, "\\N", 2);
}

/* A text value: backslash, tab, newline and carriage return are escaped as
 * COPY's text format requires; everything else passes as is. */
static void s_text(bm_store_t *s, const char *v)
{
    if (!v)
        v = "";
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

static void s_int(bm_store_t *s, int64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%" PRId64, v);
    s_put(s, buf, (size_t)n);
}

static void s_double(bm_store_t *s, double v)
{
    char buf[40];
    int n = snprintf(buf, sizeof buf, "%.17g", v);
    s_put(s, buf, (size_t)n);
}

static void s_time(bm_store_t *s, int64_t ms)
{
    char buf[40];
    bm_time_format(ms, buf, sizeof buf);
    s_put(s, buf, strlen(buf));
}

static void s_bool(bm_store_t *s, bool v)
{
    s_put(s, v ? "t" : "f", 1);
}

static const char *s_channel_name(Branchmark__V1__Channel c)
{
    switch (c) {
    case BRANCHMARK__V1__CHANNEL__CHANNEL_VISIT: return "visit";
    case BRANCHMARK__V1__CHANNEL__CHANNEL_CALL: return "call";
    case BRANCHMARK__V1__CHANNEL__CHANNEL_ONLINE: return "online";
    default: return NULL;
    }
}

/* Writes the staging row of record r (index idx). */
static void s_row(bm_store_t *s, const bm_store_batch_t *b, const bm_refcache_t *cache,
                  const bm_record_t *r, uint32_t idx)
{
    s_int(s, idx);
    s_sep(s);
    s_text(s, r->source_id);
    s_sep(s);
    switch (r->kind_case) {
    case BRANCHMARK__V1__RECORD__KIND_PEOPLE_COUNT: {
        const Branchmark__V1__PeopleCount *p = r->people_count;
        s_time(s, p->interval_start_ms), s_sep(s);
        s_int(s, p->interval_seconds), s_sep(s);
        s_int(s, p->passers_by), s_sep(s);
        s_int(s, p->entrants);
        break;
    }
    case BRANCHMARK__V1__RECORD__KIND_RECEIPT: {
        const Branchmark__V1__Receipt *p = r->receipt;
        s_time(s, p->at_ms), s_sep(s);
        s_int(s, p->amount_minor), s_sep(s);
        s_text(s, p->currency);
        break;
    }
    case BRANCHMARK__V1__RECORD__KIND_QUEUE_TICKET: {
        const Branchmark__V1__QueueTicket *p = r->queue_ticket;
        s_time(s, p->issued_at_ms), s_sep(s);
        if (p->called_case == BRANCHMARK__V1__QUEUE_TICKET__CALLED_CALLED_AT_MS)
            s_time(s, p->called_at_ms);
        else
            s_null(s);
        s_sep(s);
        if (p->served_case == BRANCHMARK__V1__QUEUE_TICKET__SERVED_SERVED_AT_MS)
            s_time(s, p->served_at_ms);
        else
            s_null(s);
        s_sep(s);
        s_text(s, p->service_point);
        break;
    }
    case BRANCHMARK__V1__RECORD__KIND_PHONE_CALL: {
        const Branchmark__V1__PhoneCall *p = r->phone_call;
        s_time(s, p->ring_start_ms), s_sep(s);
        s_bool(s, p->answered), s_sep(s);
        s_int(s, p->wait_seconds);
        break;
    }
    case BRANCHMARK__V1__RECORD__KIND_COMPLAINT: {
        const Branchmark__V1__Complaint *p = r->complaint;
        s_time(s, p->received_at_ms), s_sep(s);
        s_text(s, p->category), s_sep(s);
        s_text(s, p->contact_point), s_sep(s);
        s_text(s, p->channel), s_sep(s);
        if (p->resolved_case == BRANCHMARK__V1__COMPLAINT__RESOLVED_RESOLVED_AT_MS)
            s_time(s, p->resolved_at_ms);
        else
            s_null(s);
        break;
    }
    case BRANCHMARK__V1__RECORD__KIND_SURVEY: {
        const Branchmark__V1__SurveyResponse *p = r->survey;
        s_time(s, p->responded_at_ms), s_sep(s);
        if (p->nps_answer_case == BRANCHMARK__V1__SURVEY_RESPONSE__NPS_ANSWER_NPS)
            s_int(s, p->nps);
        else
            s_null(s);
        s_sep(s);
        /* CSI index = mean over items of (score-1)/(scale_max-1)*100. */
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
        s_sep(s);
        s_text(s, p->why), s_sep(s);
        s_text(s, p->segment), s_sep(s);
        s_text(s, p->survey_channel);
        break;
    }
    case BRANCHMARK__V1__RECORD__KIND_CUSTOMER_CHANGE: {
        const Branchmark__V1__CustomerChange *p = r->customer_change;
        s_time(s, p->at_ms), s_sep(s);
        if (p->kind == BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_GAINED)
            s_text(s, "gained");
        else if (p->kind == BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_LOST)
            s_text(s, "lost");
        else
            s_null(s);
        s_sep(s);
        s_text(s, p->reason), s_sep(s);
        s_text(s, p->segment);
        break;
    }
    case BRANCHMARK__V1__RECORD__KIND_EVALUATION: {
        const Branchmark__V1__ShopperEvaluation *p = r->evaluation;
        const bm_refcache_questionnaire_t *q =
            bm_refcache_questionnaire(cache, p->questionnaire_code, p->questionnaire_version);
        /* A missing id becomes NULL, which the NOT NULL constraint refuses
         * (the receiver has checked, so this does not happen). */
        if (q)
            s_int(s, bm_refcache_questionnaire_id(q));
        else
            s_null(s);
        s_sep(s);
        const char *ch = s_channel_name(p->channel);
        if (ch)
            s_text(s, ch);
        else
            s_null(s);
        s_sep(s);
        s_text(s, p->scenario), s_sep(s);
        s_text(s, p->shopper_segment), s_sep(s);
        if (p->outlet_kind == BRANCHMARK__V1__OUTLET_KIND__OUTLET_KIND_BRANCH) {
            s_int(s, b->branch_id), s_sep(s);
            s_null(s);
        } else {
            int32_t cid = bm_refcache_competitor(cache, p->outlet_code);
            s_null(s), s_sep(s);
            if (cid)
                s_int(s, cid);
            else
                s_null(s);
        }
        s_sep(s);
        s_time(s, p->visited_at_ms), s_sep(s);
        if (p->submitted_at_ms != 0)
            s_time(s, p->submitted_at_ms);
        else
            s_null(s);
        s_sep(s);
        s_text(s, p->shopper_ref);
        break;
    }
    default:
        break;
    }
    s_eol(s);
}

/* Writes the child staging rows of record r. */
static void s_child_rows(bm_store_t *s, const bm_record_t *r)
{
    if (r->kind_case == BRANCHMARK__V1__RECORD__KIND_SURVEY) {
        for (size_t i = 0; i < r->survey->n_csi; i++) {
            const Branchmark__V1__CsiScore *c = r->survey->csi[i];
            s_text(s, r->source_id), s_sep(s);
            s_text(s, c->item), s_sep(s);
            s_int(s, c->score), s_sep(s);
            s_int(s, c->scale_max), s_eol(s);
        }
    } else if (r->kind_case == BRANCHMARK__V1__RECORD__KIND_EVALUATION) {
        for (size_t i = 0; i < r->evaluation->n_answers; i++) {
            const Branchmark__V1__Answer *a = r->evaluation->answers[i];
            s_text(s, r->source_id), s_sep(s);
            s_text(s, a->item_code), s_sep(s);
            if (a->value_case == BRANCHMARK__V1__ANSWER__VALUE_POINTS)
                s_double(s, a->points);
            else
                s_null(s);
            s_sep(s);
            s_text(s, a->comment), s_eol(s);
        }
    }
}

/* COPYs the records of kind k among idx[0..n) into its staging table
 * (child == false) or their children into the child table. */
static int s_copy(bm_store_t *s, const bm_store_batch_t *b, const bm_refcache_t *cache,
                  size_t k, bool child, const uint32_t *idx, size_t n, bm_err_t *err)
{
    char sql[96];
    snprintf(sql, sizeof sql, "COPY %s FROM STDIN",
             child ? s_kinds[k].child_stage : s_kinds[k].stage);
    PGresult *res = PQexec(s->conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        bm_db_result_err(res, s->conn, sql, err);
        int rc = s_classify(s, res);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    s->copy_len = 0;
    for (size_t i = 0; i < n; i++) {
        const bm_record_t *r = b->records[idx[i]];
        if (bm_record_kind(r) != s_kinds[k].kind)
            continue;
        if (child)
            s_child_rows(s, r);
        else
            s_row(s, b, cache, r, idx[i]);
    }
    s_flush(s);
    PQputCopyEnd(s->conn, NULL);
    int rc = S_OK;
    while ((res = PQgetResult(s->conn)) != NULL) {
        if (rc == S_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
            bm_db_result_err(res, s->conn, sql, err);
            rc = s_classify(s, res);
        }
        PQclear(res);
    }
    return rc;
}

/* Stages and inserts the records idx[0..n), adding to *stored and
 * *duplicates.  With clear, the staging tables are emptied afterwards (the
 * record-by-record pass stages one record at a time in one transaction). */
static int s_stage_insert(bm_store_t *s, const bm_store_batch_t *b, const bm_refcache_t *cache,
                          const uint32_t *idx, size_t n, bool clear, uint32_t *stored,
                          uint32_t *duplicates, bm_err_t *err)
{
    size_t count[BM_KIND_COUNT] = {0};
    for (size_t i = 0; i < n; i++)
        count[bm_record_kind(b->records[idx[i]])]++;
    char branch[16];
    snprintf(branch, sizeof branch, "%" PRId32, b->branch_id);
    const char *params[] = {branch};

    for (size_t k = 0; k < S_NKINDS; k++) {
        const s_kind_sql_t *ks = &s_kinds[k];
        size_t nk = count[ks->kind];
        if (nk == 0)
            continue;
        int rc = s_copy(s, b, cache, k, false, idx, n, err);
        if (rc == S_OK && ks->child_stage)
            rc = s_copy(s, b, cache, k, true, idx, n, err);
        char name[48];
        if (rc == S_OK && ks->dedup) {
            snprintf(name, sizeof name, "bm_k%zu_1", k);
            rc = s_run(s, name, 1, params, ks->stage, NULL, err);
        }
        PGresult *res = NULL;
        if (rc == S_OK) {
            snprintf(name, sizeof name, "bm_k%zu_0", k);
            rc = s_run(s, name, 1, params, bm_kind_name(ks->kind), &res, err);
        }
        if (rc != S_OK)
            return rc;
        uint32_t ins = (uint32_t)strtoul(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        if (ks->child_insert) {
            snprintf(name, sizeof name, "bm_k%zu_2", k);
            rc = s_run(s, name, 1, params, ks->child_stage, NULL, err);
            if (rc != S_OK)
                return rc;
        }
        *stored += ins;
        *duplicates += (uint32_t)nk - ins;
        if (clear) {
            char sql[96];
            snprintf(sql, sizeof sql, "DELETE FROM %s", ks->stage);
            if ((rc = s_cmd(s, sql, err)) != S_OK)
                return rc;
            if (ks->child_stage) {
                snprintf(sql, sizeof sql, "DELETE FROM %s", ks->child_stage);
                if ((rc = s_cmd(s, sql, err)) != S_OK)
                    return rc;
            }
        }
    }
    return S_OK;
}

static int s_index_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int s_order_cmp(const void *a, const void *b)
{
    const s_order_t *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    int c = strcmp(x->source_id, y->source_id);
    if (c)
        return c;
    return (x->index > y->index) - (x->index < y->index);
}

/* Fills s->order with the accepted records to store, dropping later
 * records of the same kind and source_id as the first (they are duplicates
 * by definition, and storing both parents would mix their children). */
static void s_plan(bm_store_t *s, const bm_store_batch_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n_records && i < BM_MAX_RECORDS_PER_BATCH; i++)
        if (b->accepted[i])
            s->sorted[n++] = (s_order_t){(uint8_t)bm_record_kind(b->records[i]), (uint32_t)i,
                                         b->records[i]->source_id ? b->records[i]->source_id : ""};
    qsort(s->sorted, n, sizeof *s->sorted, s_order_cmp);
    /* Keep the first index of each (kind, source_id) group. */
    size_t m = 0;
    s->in_batch_dups = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && s->sorted[i].kind == s->sorted[i - 1].kind &&
            strcmp(s->sorted[i].source_id, s->sorted[i - 1].source_id) == 0)
            s->in_batch_dups++;
        else
            s->order[m++] = s->sorted[i].index;
    }
    /* Batch order keeps ids in the order the agent sent the records. */
    qsort(s->order, m, sizeof *s->order, s_index_cmp);
    s->n_order = m;
}

static int s_write(bm_store_t *s, const bm_store_batch_t *b, const bm_refcache_t *cache,
                   bool per_record, bm_store_refused_fn refused, void *ctx,
                   bm_store_result_t *result, bm_err_t *err)
{
    memset(result, 0, sizeof *result);
    char branch[16], seq[24], sent[40], nrec[16], nrej[16];
    snprintf(branch, sizeof branch, "%" PRId32, b->branch_id);
    snprintf(seq, sizeof seq, "%" PRIu64, b->sequence);
    bm_time_format(b->sent_at_ms, sent, sizeof sent);
    snprintf(nrec, sizeof nrec, "%zu", b->n_records);
    snprintf(nrej, sizeof nrej, "%" PRIu32, b->rejected);

    int rc = s_cmd(s, "BEGIN", err);
    if (rc != S_OK)
        return rc;
    const char *lock[] = {branch};
    const char *ledger[] = {b->stream_id, seq, b->agent_id, branch, sent, nrec, nrej};
    PGresult *res = NULL;
    if ((rc = s_run(s, "bm_lock", 1, lock, "branch lock", NULL, err)) != S_OK ||
        (rc = s_run(s, "bm_ledger_ins", 7, ledger, "ingest_batches", &res, err)) != S_OK)
        goto fail;
    bool fresh = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    res = NULL;
    if (!fresh) {
        /* A resend: answer with what the original stored. */
        if ((rc = s_cmd(s, "ROLLBACK", err)) != S_OK)
            return rc;
        if ((rc = s_run(s, "bm_ledger_get", 2, ledger, "ingest_batches", &res, err)) != S_OK)
            return rc;
        if (PQntuples(res) == 1) {
            result->stored = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
            result->duplicates = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
        }
        result->batch_was_duplicate = true;
        PQclear(res);
        return S_OK;
    }

    uint32_t stored = 0, dups = s->in_batch_dups, refused_n = 0;
    if (!per_record) {
        rc = s_stage_insert(s, b, cache, s->order, s->n_order, false, &stored, &dups, err);
        if (rc != S_OK)
            goto fail;
    } else {
        for (size_t i = 0; i < s->n_order; i++) {
            if ((rc = s_cmd(s, "SAVEPOINT bm_record", err)) != S_OK)
                goto fail;
            uint32_t st1 = 0, du1 = 0;
            rc = s_stage_insert(s, b, cache, &s->order[i], 1, true, &st1, &du1, err);
            if (rc == S_DATA) {
                if ((rc = s_cmd(s, "ROLLBACK TO SAVEPOINT bm_record", err)) != S_OK)
                    goto fail;
                refused_n++;
                if (refused)
                    refused(ctx, s->order[i], err->msg);
                continue;
            }
            if (rc != S_OK || (rc = s_cmd(s, "RELEASE SAVEPOINT bm_record", err)) != S_OK)
                goto fail;
            stored += st1;
            dups += du1;
        }
    }
    char nst[16], ndu[16];
    snprintf(nst, sizeof nst, "%" PRIu32, stored);
    snprintf(ndu, sizeof ndu, "%" PRIu32, dups);
    snprintf(nrej, sizeof nrej, "%" PRIu32, b->rejected + refused_n);
    const char *upd[] = {b->stream_id, seq, nst, ndu, nrej};
    if ((rc = s_run(s, "bm_ledger_upd", 5, upd, "ingest_batches", NULL, err)) != S_OK ||
        (rc = s_cmd(s, "COMMIT", err)) != S_OK)
        goto fail;
    result->stored = stored;
    result->duplicates = dups;
    result->refused = refused_n;
    return S_OK;
fail:
    PQclear(res);
    if (PQstatus(s->conn) == CONNECTION_OK)
        PQclear(PQexec(s->conn, "ROLLBACK"));
    return rc;
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

bm_store_status_t bm_store_batch(bm_store_t *s, const bm_store_batch_t *b,
                                 const bm_refcache_t *cache, bm_store_refused_fn refused,
                                 void *ctx, bm_store_result_t *result, bm_err_t *err)
{
    if (!bm_store_connected(s)) {
        bm_err_set(err, "not connected to the database");
        bm_db_close(&s->conn);
        return BM_STORE_RETRY;
    }
    s_plan(s, b);
    int rc = s_write(s, b, cache, false, refused, ctx, result, err);
    if (rc == S_DATA) {
        bm_warn("store", "database refused batch %s/%" PRIu64 " (%s); storing it record by record",
                b->stream_id, b->sequence, err->msg);
        rc = s_write(s, b, cache, true, refused, ctx, result, err);
        if (rc == S_DATA)
            rc = S_FAILED;
    }
    return s_public(s, rc);
}

bm_store_status_t bm_store_bind_agent(bm_store_t *s, const char *agent_id, int32_t branch_id,
                                      int32_t *bound_branch_id, bm_err_t *err)
{
    if (!bm_store_connected(s)) {
        bm_err_set(err, "not connected to the database");
        bm_db_close(&s->conn);
        return BM_STORE_RETRY;
    }
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
