/* request: the options of every report and their validation (request.h).
 * Owns only constant tables. */
#include "request.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    const char *options;        /* " name name ", in the order of the usage */
    const char *default_period;
} s_kinds[] = {
    [BM_REPORT_RANK] = {"rank",
                        " period at last region channel segment section metric min-n target-s ",
                        "month"},
    [BM_REPORT_SCORECARD] = {"scorecard", " period periods at last min-n radius-km branch ",
                             "month"},
    [BM_REPORT_COMPETITORS] = {"competitors",
                               " period at last region branch radius-km channel min-n ",
                               "quarter"},
    [BM_REPORT_ALERTS] = {"alerts", " period at last region min-n ", "month"},
    [BM_REPORT_SUMMARY] = {"summary", " region ", "month"},
    [BM_REPORT_METRICS] = {"metrics", " ", "month"},
    [BM_REPORT_ACTIONS] = {"actions", " region branch status overdue limit ", "month"},
    [BM_REPORT_FOLLOWUP] = {"followup", " action versus periods min-n ", "month"},
};
#define S_NKINDS ((int)(sizeof s_kinds / sizeof s_kinds[0]))

static const struct {
    const char *name;
    size_t offset;
    int flag;
} s_options[] = {
    {"period", offsetof(bm_request_text_t, period), 0},
    {"at", offsetof(bm_request_text_t, at), 0},
    {"last", offsetof(bm_request_text_t, last), 1},
    {"region", offsetof(bm_request_text_t, region), 0},
    {"branch", offsetof(bm_request_text_t, branch), 0},
    {"channel", offsetof(bm_request_text_t, channel), 0},
    {"segment", offsetof(bm_request_text_t, segment), 0},
    {"section", offsetof(bm_request_text_t, section), 0},
    {"metric", offsetof(bm_request_text_t, metric), 0},
    {"min-n", offsetof(bm_request_text_t, min_n), 0},
    {"periods", offsetof(bm_request_text_t, periods), 0},
    {"radius-km", offsetof(bm_request_text_t, radius_km), 0},
    {"target-s", offsetof(bm_request_text_t, target_s), 0},
    {"status", offsetof(bm_request_text_t, status), 0},
    {"overdue", offsetof(bm_request_text_t, overdue), 1},
    {"limit", offsetof(bm_request_text_t, limit), 0},
    {"action", offsetof(bm_request_text_t, action), 0},
    {"versus", offsetof(bm_request_text_t, versus), 0},
    {NULL, 0, 0},
};

int bm_report_kind_find(const char *name)
{
    for (int k = 0; name && k < S_NKINDS; k++)
        if (!strcmp(s_kinds[k].name, name))
            return k;
    return -1;
}

const char *bm_report_kind_name(bm_report_kind_t kind)
{
    return (int)kind >= 0 && (int)kind < S_NKINDS ? s_kinds[kind].name : "?";
}

const char *bm_request_option_names(bm_report_kind_t kind)
{
    return (int)kind >= 0 && (int)kind < S_NKINDS ? s_kinds[kind].options : " ";
}

static int s_option(const char *name)
{
    for (int k = 0; name && s_options[k].name; k++)
        if (!strcmp(s_options[k].name, name))
            return k;
    return -1;
}

int bm_request_takes(bm_report_kind_t kind, const char *name)
{
    char key[40];
    int n = snprintf(key, sizeof key, " %s ", name ? name : "");
    return s_option(name) >= 0 && n > 0 && (size_t)n < sizeof key &&
           strstr(bm_request_option_names(kind), key) != NULL;
}

int bm_request_is_flag(const char *name)
{
    int k = s_option(name);
    return k >= 0 && s_options[k].flag;
}

int bm_request_text_set(bm_request_text_t *text, bm_report_kind_t kind, const char *name,
                        const char *value, bm_err_t *err)
{
    if (!bm_request_takes(kind, name)) {
        bm_err_set(err, "unknown option \"--%s\"", name);
        return BM_REPORT_USAGE;
    }
    char *field = (char *)text + s_options[s_option(name)].offset;
    if (bm_request_is_flag(name))
        *(int *)field = 1;
    else
        *(const char **)field = value;
    return BM_REPORT_OK;
}

static int s_bad(bm_err_t *err, const char *fmt, const char *arg)
{
    bm_err_set(err, fmt, arg);
    return BM_REPORT_BAD_ARG;
}

static int s_parse_number(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* The period, --at and the filters' text. */
static int s_parse_when_and_filters(const bm_request_text_t *t, bm_request_t *rq,
                                    const char *default_period, bm_err_t *err)
{
    bm_err_t e;
    if (bm_period_parse(t->period ? t->period : default_period, &rq->period, &e) < 0)
        return s_bad(err, "%s", e.msg);
    if (t->at && t->last)
        return s_bad(err, "%s", "--at and --last cannot be used together");
    if (t->at) {
        if (bm_date_parse(t->at, &rq->at, &e) < 0)
            return s_bad(err, "--at: %s", e.msg);
        rq->has_at = 1;
    }
    if (t->channel && strcmp(t->channel, "visit") && strcmp(t->channel, "call") &&
        strcmp(t->channel, "online"))
        return s_bad(err, "unknown channel \"%s\" (try: visit, call, online)", t->channel);
    if (t->segment && strlen(t->segment) > 64)
        return s_bad(err, "%s", "--segment: longer than 64 characters");
    if (t->section && (strlen(t->section) < 1 || strlen(t->section) > 32))
        return s_bad(err, "%s", "--section: must be 1..32 characters");
    return BM_REPORT_OK;
}

/* --min-n, --periods, --radius-km and --target-s. */
static int s_parse_numbers(const bm_request_text_t *t, bm_request_t *rq, bm_err_t *err)
{
    double v;
    if (t->min_n) {
        if (s_parse_number(t->min_n, 1, 1e9, &v) < 0)
            return s_bad(err, "--min-n: \"%s\" is not a number from 1", t->min_n);
        rq->min_n = v;
    }
    if (t->periods) {
        if (s_parse_number(t->periods, 2, 24, &v) < 0 || v != floor(v))
            return s_bad(err, "--periods: \"%s\" is not a whole number 2..24", t->periods);
        rq->periods = (int)v;
    }
    if (t->radius_km) {
        if (s_parse_number(t->radius_km, 0.001, 20000, &v) < 0)
            return s_bad(err, "--radius-km: \"%s\" is not a distance in km (0..20000)",
                         t->radius_km);
        rq->radius_km = v;
    }
    if (t->target_s) {
        if (s_parse_number(t->target_s, 0, 599, &v) < 0 || v != floor(v))
            return s_bad(err, "--target-s: \"%s\" is not a whole number of seconds 0..599",
                         t->target_s);
        rq->target_s = (int)v;
    }
    return BM_REPORT_OK;
}

/* A rank needs a known metric, and the filters must apply to it. */
static int s_parse_rank_metric(const bm_request_text_t *t, bm_request_t *rq, bm_err_t *err)
{
    if (!t->metric)
        return s_bad(err, "%s", "--metric is required (try: branchmark metrics)");
    const bm_metric_t *m = bm_metric_find(t->metric);
    if (!m)
        return s_bad(err, "unknown metric \"%s\" (try: branchmark metrics)", t->metric);
    int scores = !strcmp(m->name, "ms_score");
    int surveys = !strcmp(m->name, "nps") || !strcmp(m->name, "csi");
    if ((t->channel || t->section) && !scores)
        return s_bad(err, "--channel and --section apply to ms_score only, not to %s", m->name);
    if (t->segment && !scores && !surveys)
        return s_bad(err, "--segment applies to ms_score, nps and csi only, not to %s", m->name);
    if (t->target_s && strcmp(m->name, "calls_answered_share"))
        return s_bad(err, "--target-s applies to calls_answered_share only, not to %s", m->name);
    rq->metric = m;
    return BM_REPORT_OK;
}

/* The options of the action list and of a follow-up (actions.h,
 * followup.h). */
static int s_parse_actions(const bm_request_text_t *t, bm_request_t *rq, bm_err_t *err)
{
    static const char *const states[] = {"active", "open", "in_progress", "done", "dropped",
                                         "all", NULL};
    double v;
    rq->status = t->status ? t->status : "active";
    int known = 0;
    for (int i = 0; states[i]; i++)
        known |= !strcmp(states[i], rq->status);
    if (!known)
        return s_bad(err, "unknown action status \"%s\" (try: active, open, in_progress, "
                          "done, dropped, all)", rq->status);
    rq->overdue = t->overdue;
    rq->limit = 1000;
    if (t->limit) {
        if (s_parse_number(t->limit, 1, 10000, &v) < 0 || v != floor(v))
            return s_bad(err, "--limit: \"%s\" is not a whole number 1..10000", t->limit);
        rq->limit = (int)v;
    }
    return BM_REPORT_OK;
}

static int s_parse_followup(const bm_request_text_t *t, bm_request_t *rq, bm_err_t *err)
{
    double v;
    if (!t->action) {
        bm_err_set(err, "an action id is required");
        return BM_REPORT_USAGE;
    }
    if (strlen(t->action) > 18 || strspn(t->action, "0123456789") != strlen(t->action) ||
        s_parse_number(t->action, 1, 1e18, &v) < 0)
        return s_bad(err, "action: \"%s\" is not an action id (a whole number from 1)",
                     t->action);
    rq->action = strtoll(t->action, NULL, 10);
    if (t->versus && strcmp(t->versus, "region") && strcmp(t->versus, "chain"))
        return s_bad(err, "--versus: \"%s\" is not region or chain", t->versus);
    rq->versus_chain = t->versus && !strcmp(t->versus, "chain");
    if (!t->periods)
        rq->periods = 3;
    return BM_REPORT_OK;
}

int bm_request_parse(bm_report_kind_t kind, const bm_request_text_t *t, bm_request_t *rq,
                     bm_err_t *err)
{
    memset(rq, 0, sizeof *rq);
    rq->kind = kind;
    rq->min_n = -1;
    rq->periods = 6;
    rq->target_s = 20;
    rq->region = t->region;
    rq->branch = t->branch;
    rq->channel = t->channel;
    rq->segment = t->segment;
    rq->section = t->section;
    int rc = s_parse_when_and_filters(t, rq, s_kinds[kind].default_period, err);
    if (rc == BM_REPORT_OK)
        rc = s_parse_numbers(t, rq, err);
    if (rc == BM_REPORT_OK && kind == BM_REPORT_RANK)
        rc = s_parse_rank_metric(t, rq, err);
    if (rc == BM_REPORT_OK && kind == BM_REPORT_ACTIONS)
        rc = s_parse_actions(t, rq, err);
    if (rc == BM_REPORT_OK && kind == BM_REPORT_FOLLOWUP)
        rc = s_parse_followup(t, rq, err);
    if (rc == BM_REPORT_OK && kind == BM_REPORT_SCORECARD && !t->branch) {
        bm_err_set(err, "a branch code is required");
        rc = BM_REPORT_USAGE;
    }
    return rc;
}
