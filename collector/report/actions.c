/* actions: the action list, one action with its trail, and the checks and
 * calls of open and update (actions.h).  Owns the results it returns. */
#include "actions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm_wire.h"
#include "db.h"

/* The columns every action query returns, in the order s_row reads them.
 * today = the current day in the chain's time zone, as the reports use. */
#define S_ACTION_COLUMNS                                                                      \
    "a.id, b.code, r.code, a.metric, coalesce(a.section, ''), coalesce(a.contact_point, ''), " \
    "coalesce(a.complaint_category, ''), a.source, a.source_ref, a.what, a.owner_role, "     \
    "a.due_date, a.target, a.period_kind, a.status, a.opened_by, "                            \
    "to_char(a.opened_at AT TIME ZONE bm_chain_timezone(), 'YYYY-MM-DD HH24:MI'), "           \
    "coalesce(a.effective_date::text, ''), "                                                  \
    "CASE WHEN a.status IN ('open', 'in_progress') AND a.due_date < d.today "                 \
    "     THEN d.today - a.due_date ELSE 0 END AS overdue_days, d.today"

#define S_ACTION_FROM                                                                         \
    " FROM actions a JOIN branches b ON b.id = a.branch_id JOIN regions r ON r.id = b.region_id" \
    " CROSS JOIN (SELECT (now() AT TIME ZONE bm_chain_timezone())::date AS today) d"

static const char s_list_sql[] =
    "SELECT " S_ACTION_COLUMNS S_ACTION_FROM
    " WHERE CASE $1 WHEN 'all' THEN true"
    "               WHEN 'active' THEN a.status IN ('open', 'in_progress')"
    "               ELSE a.status = $1 END"
    "   AND ($2 = '' OR b.code = $2) AND ($3 = '' OR r.code = $3)"
    "   AND (NOT $4::boolean OR (a.status IN ('open', 'in_progress') AND a.due_date < d.today))"
    " ORDER BY overdue_days DESC, a.due_date, a.id LIMIT $5::int";

static const char s_one_sql[] = "SELECT " S_ACTION_COLUMNS S_ACTION_FROM " WHERE a.id = $1";

static const char s_events_sql[] =
    "SELECT coalesce(old_status, ''), new_status, actor,"
    " to_char(at AT TIME ZONE bm_chain_timezone(), 'YYYY-MM-DD HH24:MI:SS'), change, comment"
    " FROM action_events WHERE action_id = $1 ORDER BY id";

static void s_copy(char *dst, size_t size, const PGresult *res, int r, int c)
{
    snprintf(dst, size, "%s", PQgetvalue(res, r, c));
}

/* Row r of one of the queries above into *a.  -1 when a date does not
 * parse (cannot happen with the schema's types). */
static int s_row(const PGresult *res, int r, bm_action_t *a, int64_t *today)
{
    bm_err_t e;
    memset(a, 0, sizeof *a);
    a->id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
    s_copy(a->branch, sizeof a->branch, res, r, 1);
    s_copy(a->region, sizeof a->region, res, r, 2);
    s_copy(a->metric, sizeof a->metric, res, r, 3);
    s_copy(a->section, sizeof a->section, res, r, 4);
    s_copy(a->contact_point, sizeof a->contact_point, res, r, 5);
    s_copy(a->category, sizeof a->category, res, r, 6);
    s_copy(a->source, sizeof a->source, res, r, 7);
    s_copy(a->source_ref, sizeof a->source_ref, res, r, 8);
    s_copy(a->what, sizeof a->what, res, r, 9);
    s_copy(a->owner, sizeof a->owner, res, r, 10);
    if (bm_date_parse(PQgetvalue(res, r, 11), &a->due, &e) < 0)
        return -1;
    s_copy(a->target, sizeof a->target, res, r, 12);
    s_copy(a->period, sizeof a->period, res, r, 13);
    s_copy(a->status, sizeof a->status, res, r, 14);
    s_copy(a->opened_by, sizeof a->opened_by, res, r, 15);
    s_copy(a->opened_at, sizeof a->opened_at, res, r, 16);
    if (*PQgetvalue(res, r, 17)) {
        if (bm_date_parse(PQgetvalue(res, r, 17), &a->effective, &e) < 0)
            return -1;
        a->has_effective = 1;
    }
    a->overdue_days = atoi(PQgetvalue(res, r, 18));
    return today ? bm_date_parse(PQgetvalue(res, r, 19), today, &e) : 0;
}

static PGresult *s_query(PGconn *conn, const char *sql, int n, const char *const *params,
                         const char *what, bm_err_t *err)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, what, err);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Today in the chain's time zone (for an empty list's notes). */
static int s_today(PGconn *conn, int64_t *today, bm_err_t *err)
{
    PGresult *res = s_query(conn, "SELECT (now() AT TIME ZONE bm_chain_timezone())::date", 0,
                            NULL, "reading today's date", err);
    if (!res)
        return -1;
    int rc = bm_date_parse(PQgetvalue(res, 0, 0), today, err);
    PQclear(res);
    return rc;
}

int bm_actions_compute(bm_report_ctx_t *ctx, bm_actions_result_t **out, bm_err_t *err)
{
    const bm_request_t *rq = ctx->rq;
    char limit[16];
    snprintf(limit, sizeof limit, "%d", rq->limit + 1);     /* one more: truncated? */
    const char *p[5] = {rq->status, rq->branch ? rq->branch : "",
                        rq->region ? rq->region : "", rq->overdue ? "true" : "false", limit};
    bm_actions_result_t *res = calloc(1, sizeof *res);
    if (!res) {
        bm_err_set(err, "out of memory");
        return BM_REPORT_FAILED;
    }
    res->status = rq->status;
    res->overdue_only = rq->overdue;
    PGresult *pg = s_query(ctx->conn, s_list_sql, 5, p, "reading actions", err);
    int ok = pg != NULL && s_today(ctx->conn, &res->today, err) == 0;
    int n = ok ? PQntuples(pg) : 0;
    if (n > rq->limit) {
        res->truncated = 1;
        n = rq->limit;
    }
    if (ok && n > 0 && !(res->rows = calloc((size_t)n, sizeof *res->rows)))
        ok = bm_err_set(err, "out of memory") == 0;
    for (int i = 0; ok && i < n; i++)
        if (s_row(pg, i, &res->rows[res->nrows++], NULL) < 0)
            ok = bm_err_set(err, "reading actions: a date did not parse") == 0;
    PQclear(pg);
    if (!ok) {
        bm_actions_result_destroy(&res);
        return BM_REPORT_FAILED;
    }
    res->ref = bm_report_ctx_take_ref(ctx);
    *out = res;
    return BM_REPORT_OK;
}

void bm_actions_result_destroy(bm_actions_result_t **res_p)
{
    bm_actions_result_t *res = *res_p;
    if (!res)
        return;
    bm_q_ref_destroy(&res->ref);
    free(res->rows);
    free(res);
    *res_p = NULL;
}

static int s_load_events(PGconn *conn, const char *id, bm_action_event_t **events,
                         size_t *nevents, bm_err_t *err)
{
    const char *p[1] = {id};
    PGresult *res = s_query(conn, s_events_sql, 1, p, "reading the action's trail", err);
    if (!res)
        return BM_REPORT_FAILED;
    int n = PQntuples(res);
    *events = calloc(n > 0 ? (size_t)n : 1, sizeof **events);
    if (!*events) {
        PQclear(res);
        bm_err_set(err, "out of memory");
        return BM_REPORT_FAILED;
    }
    for (int i = 0; i < n; i++) {
        bm_action_event_t *ev = &(*events)[i];
        s_copy(ev->old_status, sizeof ev->old_status, res, i, 0);
        s_copy(ev->new_status, sizeof ev->new_status, res, i, 1);
        s_copy(ev->actor, sizeof ev->actor, res, i, 2);
        s_copy(ev->at, sizeof ev->at, res, i, 3);
        s_copy(ev->change, sizeof ev->change, res, i, 4);
        s_copy(ev->comment, sizeof ev->comment, res, i, 5);
    }
    *nevents = (size_t)n;
    PQclear(res);
    return BM_REPORT_OK;
}

int bm_action_load(PGconn *conn, int64_t id, bm_action_t *out, bm_action_event_t **events,
                   size_t *nevents, bm_err_t *err)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    const char *p[1] = {ids};
    *events = NULL;
    *nevents = 0;
    PGresult *res = s_query(conn, s_one_sql, 1, p, "reading the action", err);
    if (!res)
        return BM_REPORT_FAILED;
    if (PQntuples(res) != 1) {
        PQclear(res);
        bm_err_set(err, "action %lld does not exist", (long long)id);
        return BM_REPORT_BAD_ARG;
    }
    int rc = s_row(res, 0, out, NULL) == 0 ? BM_REPORT_OK : BM_REPORT_FAILED;
    PQclear(res);
    if (rc != BM_REPORT_OK) {
        bm_err_set(err, "reading the action: a date did not parse");
        return rc;
    }
    return s_load_events(conn, ids, events, nevents, err);
}

/* ---- checks ----------------------------------------------------------- */

static int s_bad(bm_err_t *err, const char *fmt, const char *arg)
{
    bm_err_set(err, fmt, arg);
    return BM_REPORT_BAD_ARG;
}

/* Text a person typed: valid UTF-8, no control characters but tab, at most
 * max bytes (min 1 when required). */
static int s_text_ok(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    if (n < min || n > max || !bm_utf8_valid(s))
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return 0;
    return 1;
}

static int s_code_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 32 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* The optional free-text fields of an open. */
static int s_check_texts(const bm_action_text_t *t, bm_err_t *err)
{
    static const struct {
        size_t off;
        const char *name;
        size_t max;
    } fields[] = {
        {offsetof(bm_action_text_t, contact_point), "--contact-point", 64},
        {offsetof(bm_action_text_t, category), "--category", 64},
        {offsetof(bm_action_text_t, source_ref), "--source-ref", 200},
        {offsetof(bm_action_text_t, target), "--target", 200},
        {offsetof(bm_action_text_t, comment), "--comment", BM_ACTION_WHAT_MAX},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *v = *(const char *const *)((const char *)t + fields[i].off);
        if (v && !s_text_ok(v, 1, fields[i].max)) {
            bm_err_set(err, "%s: must be 1..%zu characters of text (UTF-8, no control "
                            "characters)", fields[i].name, fields[i].max);
            return BM_REPORT_BAD_ARG;
        }
    }
    return BM_REPORT_OK;
}

/* The metric and what it is about (section, contact point, category). */
static int s_check_metric(const bm_action_text_t *t, bm_action_open_t *o, bm_err_t *err)
{
    if (!t->metric)
        return s_bad(err, "%s", "--metric is required (try: branchmark metrics)");
    if (!(o->metric = bm_metric_find(t->metric)))
        return s_bad(err, "unknown metric \"%s\" (try: branchmark metrics)", t->metric);
    if (t->section && !s_code_ok(t->section))
        return s_bad(err, "--section: \"%s\" is not a section code", t->section);
    if (t->section && strcmp(o->metric->name, "ms_score"))
        return s_bad(err, "--section applies to ms_score only, not to %s", o->metric->name);
    if ((t->contact_point || t->category) && strncmp(o->metric->name, "complaint", 9))
        return s_bad(err, "--contact-point and --category apply to the complaint metrics, "
                          "not to %s", o->metric->name);
    o->section = t->section;
    o->contact_point = t->contact_point;
    o->category = t->category;
    return BM_REPORT_OK;
}

int bm_action_open_parse(const bm_action_text_t *t, bm_action_open_t *o, bm_err_t *err)
{
    static const char *const sources[] = {"alert", "scorecard", "competitor_gap", "manual", NULL};
    bm_err_t e;
    memset(o, 0, sizeof *o);
    if (!t->branch || !s_code_ok(t->branch))
        return s_bad(err, "%s", t->branch ? "--branch: not a branch code" : "--branch is required");
    o->branch = t->branch;
    int rc = s_check_metric(t, o, err);
    if (rc != BM_REPORT_OK)
        return rc;
    if (!t->what || !s_text_ok(t->what, 1, BM_ACTION_WHAT_MAX))
        return s_bad(err, "--what: what is to be done is required (1..%s characters of text)",
                     "2000");
    if (!t->owner || (strcmp(t->owner, "branch") && strcmp(t->owner, "regional")))
        return s_bad(err, "--owner: \"%s\" is not branch or regional", t->owner ? t->owner : "");
    if (!t->due)
        return s_bad(err, "%s", "--due YYYY-MM-DD is required");
    if (bm_date_parse(t->due, &o->due, &e) < 0)
        return s_bad(err, "--due: %s", e.msg);
    o->source = t->source ? t->source : "manual";
    int known = 0;
    for (int i = 0; sources[i]; i++)
        known |= !strcmp(sources[i], o->source);
    if (!known)
        return s_bad(err, "--source: \"%s\" is not alert, scorecard, competitor_gap or manual",
                     o->source);
    if (bm_period_parse(t->period ? t->period : "month", &o->period, &e) < 0 ||
        o->period == BM_PERIOD_DAY)
        return s_bad(err, "--period: \"%s\" is not week, month or quarter", t->period);
    if ((rc = s_check_texts(t, err)) != BM_REPORT_OK)
        return rc;
    o->what = t->what;
    o->owner = t->owner;
    o->source_ref = t->source_ref;
    o->target = t->target;
    o->comment = t->comment;
    return BM_REPORT_OK;
}

int bm_action_update_parse(const bm_action_text_t *t, bm_action_update_t *u, bm_err_t *err)
{
    static const char *const states[] = {"open", "in_progress", "done", "dropped", NULL};
    bm_err_t e;
    memset(u, 0, sizeof *u);
    if (!t->id) {
        bm_err_set(err, "an action id is required");
        return BM_REPORT_USAGE;
    }
    char *end;
    long long id = strtoll(t->id, &end, 10);
    if (!*t->id || *end || id < 1 || strlen(t->id) > 18 || strspn(t->id, "0123456789") != strlen(t->id))
        return s_bad(err, "\"%s\" is not an action id (a whole number from 1)", t->id);
    u->id = id;
    if (t->status) {
        int known = 0;
        for (int i = 0; states[i]; i++)
            known |= !strcmp(states[i], t->status);
        if (!known)
            return s_bad(err, "--status: \"%s\" is not open, in_progress, done or dropped",
                         t->status);
        u->status = t->status;
    }
    if (t->owner && strcmp(t->owner, "branch") && strcmp(t->owner, "regional"))
        return s_bad(err, "--owner: \"%s\" is not branch or regional", t->owner);
    if (t->due && bm_date_parse(t->due, &u->due, &e) < 0)
        return s_bad(err, "--due: %s", e.msg);
    if (t->effective && bm_date_parse(t->effective, &u->effective, &e) < 0)
        return s_bad(err, "--effective: %s", e.msg);
    u->has_due = t->due != NULL;
    u->has_effective = t->effective != NULL;
    if (t->comment && !s_text_ok(t->comment, 1, BM_ACTION_WHAT_MAX))
        return s_bad(err, "--comment: must be 1..%s characters of text", "2000");
    if (t->target && !s_text_ok(t->target, 0, 200))
        return s_bad(err, "--target: must be at most %s characters of text", "200");
    u->comment = t->comment;
    u->target = t->target;
    u->owner = t->owner;
    return BM_REPORT_OK;
}

/* ---- the changes ------------------------------------------------------ */

/* Runs a change; the rules' messages are made to be read as they are. */
static PGresult *s_change(PGconn *conn, const char *sql, int n, const char *const *params,
                          int *rc, bm_err_t *err)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        *rc = BM_REPORT_OK;
        return res;
    }
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (state && msg && !strcmp(state, "42501")) {
        *rc = BM_REPORT_FORBIDDEN;
        bm_err_set(err, "%s", msg);
    } else if (state && msg && (!strncmp(state, "22", 2) || !strncmp(state, "23", 2))) {
        *rc = BM_REPORT_BAD_ARG;
        bm_err_set(err, "%s", msg);
    } else {
        *rc = BM_REPORT_FAILED;
        bm_db_result_err(res, conn, "changing the action", err);
    }
    PQclear(res);
    return NULL;
}

int bm_action_open(PGconn *conn, const bm_action_open_t *o, int64_t *id, bm_err_t *err)
{
    char due[16];
    bm_date_format(o->due, due, sizeof due);
    const char *p[13] = {o->branch, o->metric->name, o->section, o->contact_point, o->category,
                         o->source, o->source_ref, o->what, o->owner, due, o->target,
                         bm_period_name(o->period), o->comment};
    int rc;
    PGresult *res = s_change(conn,
                             "SELECT bm_action_open($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                             " $10::date, $11, $12, $13)", 13, p, &rc, err);
    if (res) {
        *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
    }
    return rc;
}

int bm_action_update(PGconn *conn, const bm_action_update_t *u, bm_err_t *err)
{
    char id[24], due[16], eff[16];
    snprintf(id, sizeof id, "%lld", (long long)u->id);
    if (u->has_due)
        bm_date_format(u->due, due, sizeof due);
    if (u->has_effective)
        bm_date_format(u->effective, eff, sizeof eff);
    const char *p[7] = {id, u->status, u->comment, u->has_due ? due : NULL, u->target, u->owner,
                        u->has_effective ? eff : NULL};
    int rc;
    PGresult *res = s_change(conn,
                             "SELECT bm_action_set($1::bigint, $2, $3, $4::date, $5, $6, $7::date)",
                             7, p, &rc, err);
    PQclear(res);
    return rc;
}
