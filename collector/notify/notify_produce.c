/* notify_produce: fills the outbox (notify.h).  Each notification has a key
 * that names what it is about, so producing the same thing again (every
 * poll, after a restart) adds nothing: bm_notification_add inserts a key
 * once.  Bodies are made once, here, and stored: the sender signs and
 * sends those exact bytes on every attempt. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bm_time.h"
#include "db.h"
#include "notify.h"
#include "reports.h"

/* Adds notification key of kind about branch with body data (consumed).
 * 1 when it is new, 0 when it existed, -1 with err. */
static int s_add(PGconn *conn, const char *kind, const char *key, const char *branch,
                 const char *region, json_t *data, bm_err_t *err)
{
    char ts[32];
    time_t now = (time_t)(bm_now_ms() / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *v = json_object();
    json_object_set_new(v, "key", json_string(key));
    json_object_set_new(v, "kind", json_string(kind));
    json_object_set_new(v, "created_at", json_string(ts));
    json_object_set_new(v, "branch", json_string(branch));
    json_object_set_new(v, "region", json_string(region));
    json_object_set_new(v, "data", data);
    char *body = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(v);
    if (!body)
        return bm_err_set(err, "out of memory");
    const char *p[4] = {kind, key, branch, body};
    PGresult *res = PQexecParams(conn, "SELECT bm_notification_add($1, $2, $3, $4)", 4, NULL, p,
                                 NULL, NULL, 0);
    free(body);
    int rc;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = bm_db_result_err(res, conn, "adding a notification", err);
    else
        rc = !PQgetisnull(res, 0, 0);
    PQclear(res);
    return rc;
}

/* New early warnings of the latest complete period: one notification per
 * (metric, branch, period). */
static int s_alerts(PGconn *conn, const bm_notify_config_t *cfg, bm_err_t *err)
{
    bm_request_text_t text;
    memset(&text, 0, sizeof text);
    text.period = cfg->alert_period;
    bm_request_t rq;
    if (bm_request_parse(BM_REPORT_ALERTS, &text, &rq, err) != BM_REPORT_OK)
        return -1;
    bm_result_t *res = NULL;
    if (bm_reports_run(conn, &rq, &res, err) != BM_REPORT_OK)
        return -1;
    const bm_alerts_result_t *a = res->u.alerts;
    int created = 0;
    for (size_t i = 0; created >= 0 && i < a->nalerts; i++) {
        const bm_alert_t *al = &a->alerts[i];
        const bm_q_outlet_t *br = &a->ref->branches[al->branch];
        char label[32], key[200];
        bm_period_label(a->kind, a->cur, label, sizeof label);
        snprintf(key, sizeof key, "alert:%s:%s:%s:%s", al->metric->name, br->code,
                 bm_period_name(a->kind), label);
        json_t *d = json_object();
        json_object_set_new(d, "metric", json_string(al->metric->name));
        json_object_set_new(d, "period", json_string(label));
        json_object_set_new(d, "current", json_real(al->cur.value));
        json_object_set_new(d, "n", json_integer((json_int_t)al->cur.n));
        json_object_set_new(d, "baseline", json_real(al->base.value));
        json_object_set_new(d, "sigmas", json_real(al->sigmas));
        int rc = s_add(conn, "alert", key, br->code, bm_report_region_code(a->ref, br->region),
                       d, err);
        created = rc < 0 ? -1 : created + rc;
    }
    bm_result_destroy(&res);
    return created;
}

/* Open or in-progress actions past their due date: once per (action, due
 * date), so a re-dated action that runs late again is notified again. */
static int s_overdue(PGconn *conn, bm_err_t *err)
{
    PGresult *res = PQexec(conn,
                           "SELECT a.id, b.code, r.code, a.metric, a.what, a.owner_role,"
                           " a.due_date, d.today - a.due_date, a.status"
                           " FROM actions a JOIN branches b ON b.id = a.branch_id"
                           " JOIN regions r ON r.id = b.region_id"
                           " CROSS JOIN (SELECT (now() AT TIME ZONE bm_chain_timezone())::date AS today) d"
                           " WHERE a.status IN ('open', 'in_progress') AND a.due_date < d.today"
                           "   AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.key ="
                           "       'action_overdue:' || a.id || ':' || a.due_date)"
                           " ORDER BY a.id");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, "reading overdue actions", err);
        PQclear(res);
        return -1;
    }
    int created = 0;
    for (int i = 0; created >= 0 && i < PQntuples(res); i++) {
        char key[200];
        snprintf(key, sizeof key, "action_overdue:%s:%s", PQgetvalue(res, i, 0),
                 PQgetvalue(res, i, 6));
        json_t *d = json_object();
        json_object_set_new(d, "action", json_integer(strtoll(PQgetvalue(res, i, 0), NULL, 10)));
        json_object_set_new(d, "metric", json_string(PQgetvalue(res, i, 3)));
        json_object_set_new(d, "what", json_string(PQgetvalue(res, i, 4)));
        json_object_set_new(d, "owner", json_string(PQgetvalue(res, i, 5)));
        json_object_set_new(d, "due", json_string(PQgetvalue(res, i, 6)));
        json_object_set_new(d, "days_overdue", json_integer(atoi(PQgetvalue(res, i, 7))));
        json_object_set_new(d, "status", json_string(PQgetvalue(res, i, 8)));
        int rc = s_add(conn, "action_overdue", key, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                       d, err);
        created = rc < 0 ? -1 : created + rc;
    }
    PQclear(res);
    return created;
}

/* The follow-up of one done action, notified once it is in: a verdict, or
 * too little data with every after-period complete (nothing more to wait
 * for).  0 when it is not in yet. */
static int s_followup_one(PGconn *conn, const char *id, bm_err_t *err)
{
    bm_request_text_t text;
    memset(&text, 0, sizeof text);
    text.action = id;
    bm_request_t rq;
    bm_result_t *res = NULL;
    if (bm_request_parse(BM_REPORT_FOLLOWUP, &text, &rq, err) != BM_REPORT_OK ||
        bm_reports_run(conn, &rq, &res, err) != BM_REPORT_OK)
        return -1;
    const bm_followup_result_t *f = res->u.followup;
    int in = f->verdict >= BM_FU_IMPROVED ||
             (f->verdict == BM_FU_THIN && f->nafter == f->periods) || f->verdict == BM_FU_UNTESTABLE;
    int rc = 0;
    if (in) {
        char key[200];
        snprintf(key, sizeof key, "action_followup:%s", id);
        json_t *d = json_object();
        json_object_set_new(d, "action", json_integer((json_int_t)f->action.id));
        json_object_set_new(d, "metric", json_string(f->metric->name));
        json_object_set_new(d, "verdict", json_string(bm_fu_verdict_name(f->verdict)));
        json_object_set_new(d, "effect", f->has_effect ? json_real(f->effect) : json_null());
        json_object_set_new(d, "effect_low", f->has_effect ? json_real(f->lo) : json_null());
        json_object_set_new(d, "effect_high", f->has_effect ? json_real(f->hi) : json_null());
        json_object_set_new(d, "n_before", json_integer((json_int_t)f->branch.before.est.n));
        json_object_set_new(d, "n_after", json_integer((json_int_t)f->branch.after.est.n));
        json_object_set_new(d, "reason", json_string(f->reason));
        rc = s_add(conn, "action_followup", key, f->action.branch, f->action.region, d, err);
    }
    bm_result_destroy(&res);
    return rc;
}

static int s_followups(PGconn *conn, bm_err_t *err)
{
    PGresult *res = PQexec(conn, "SELECT a.id FROM actions a WHERE a.status = 'done'"
                                 " AND NOT EXISTS (SELECT 1 FROM notifications n"
                                 "                  WHERE n.key = 'action_followup:' || a.id)"
                                 " ORDER BY a.id LIMIT 1000");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, "reading done actions", err);
        PQclear(res);
        return -1;
    }
    int created = 0;
    for (int i = 0; created >= 0 && i < PQntuples(res); i++) {
        int rc = s_followup_one(conn, PQgetvalue(res, i, 0), err);
        created = rc < 0 ? -1 : created + rc;
    }
    PQclear(res);
    return created;
}

int bm_notify_produce(PGconn *conn, const bm_notify_config_t *cfg, bm_err_t *err)
{
    int a = cfg->alerts ? s_alerts(conn, cfg, err) : 0;
    int o = a >= 0 ? s_overdue(conn, err) : -1;
    int f = o >= 0 ? s_followups(conn, err) : -1;
    return f < 0 ? -1 : a + o + f;
}
