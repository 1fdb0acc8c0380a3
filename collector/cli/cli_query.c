/* cli_query: the query commands of `branchmark` (summary, rank, scorecard,
 * competitors, alerts, metrics), the one implementation shared by the CLI
 * (bm_cmd_*) and branchmark-web (bm_query_run, query_cmd.h).  Parses and
 * validates arguments, reads rollups through query.c, computes statistics
 * with stats.c and prints through output.c into the caller's FILE.  Owns
 * nothing beyond one command's run (and the connection it opens itself when
 * the caller gives none).
 * Exit codes: 0 ok, 1 database or run-time failure, 2 bad argument,
 * 3 (BM_QUERY_USAGE) wrong argument shape; the CLI exits 2 for both. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm_time.h"
#include "cli.h"
#include "db.h"
#include "output.h"
#include "query.h"
#include "query_cmd.h"
#include "stats.h"

#define S_BASELINE_PERIODS 6
#define S_MAX_CAUSES 3

typedef struct {
    const char *cmd;
    const char *db;
    const char *format;
    const char *period;
    const char *at;
    int last;
    const char *region;
    const char *branch;
    const char *channel;
    const char *segment;
    const char *section;
    const char *metric;
    const char *min_n;
    const char *periods;
    const char *radius_km;
    const char *target_s;
    const char *positional;
    int help;
} s_opts_t;

/* What a command has once its arguments are checked. */
typedef struct {
    s_opts_t o;
    bm_format_t fmt;
    bm_period_kind_t kind;
    int has_at;
    int64_t at;
    int region;             /* -1: all */
    int branch;             /* -1: none */
    int scope_limited;      /* the role sees part of the chain only (RLS) */
    int periods;
    double radius_km;       /* 0: none */
    int target_s;
    double min_n;           /* < 0: metric default */
    PGconn *conn;
    PGconn *given_conn;     /* the caller's (not closed here); NULL: connect */
    FILE *out;              /* where the report goes */
    bm_err_t *err;          /* where the failure's message goes */
    bm_q_ref_t *ref;
} s_ctx_t;

static void s_ctx_init(s_ctx_t *c, PGconn *conn, FILE *out, bm_err_t *err)
{
    memset(c, 0, sizeof *c);
    c->given_conn = conn;
    c->out = out;
    c->err = err;
}

static const struct {
    const char *name;
    size_t offset;
    int flag;
} s_options[] = {
    {"db", offsetof(s_opts_t, db), 0},
    {"format", offsetof(s_opts_t, format), 0},
    {"period", offsetof(s_opts_t, period), 0},
    {"at", offsetof(s_opts_t, at), 0},
    {"last", offsetof(s_opts_t, last), 1},
    {"region", offsetof(s_opts_t, region), 0},
    {"branch", offsetof(s_opts_t, branch), 0},
    {"channel", offsetof(s_opts_t, channel), 0},
    {"segment", offsetof(s_opts_t, segment), 0},
    {"section", offsetof(s_opts_t, section), 0},
    {"metric", offsetof(s_opts_t, metric), 0},
    {"min-n", offsetof(s_opts_t, min_n), 0},
    {"periods", offsetof(s_opts_t, periods), 0},
    {"radius-km", offsetof(s_opts_t, radius_km), 0},
    {"target-s", offsetof(s_opts_t, target_s), 0},
    {"help", offsetof(s_opts_t, help), 1},
    {NULL, 0, 0},
};

/* Parses argv into c->o, accepting only the options named in `allowed`
 * (" name name ").  Returns -1 to go on, 0 after --help (usage written), or
 * 2/BM_QUERY_USAGE with c->err set. */
static int s_parse(s_ctx_t *c, int argc, char **argv, const char *allowed, int positional,
                   const char *usage)
{
    s_opts_t *o = &c->o;
    memset(o, 0, sizeof *o);
    o->cmd = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (positional && !o->positional) {
                o->positional = a;
                continue;
            }
            bm_err_set(c->err, "unexpected argument \"%s\"", a);
            return BM_QUERY_USAGE;
        }
        char name[32];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len >= sizeof name)
            len = sizeof name - 1;
        memcpy(name, a + 2, len);
        name[len] = '\0';
        int k;
        for (k = 0; s_options[k].name; k++)
            if (!strcmp(s_options[k].name, name))
                break;
        char key[40];
        snprintf(key, sizeof key, " %s ", name);
        if (!s_options[k].name || (!strstr(allowed, key) && strcmp(name, "help"))) {
            bm_err_set(c->err, "unknown option \"--%s\"", name);
            return BM_QUERY_USAGE;
        }
        char *field = (char *)o + s_options[k].offset;
        if (s_options[k].flag) {
            if (eq) {
                bm_err_set(c->err, "option --%s takes no value", name);
                return 2;
            }
            *(int *)field = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value) {
            bm_err_set(c->err, "option --%s needs a value", name);
            return 2;
        }
        *(const char **)field = value;
    }
    if (o->help) {
        fputs(usage, c->out);
        return 0;
    }
    return -1;
}

static int s_bad(const s_ctx_t *c, const char *fmt, const char *arg)
{
    bm_err_set(c->err, fmt, arg);
    return 2;
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

/* Validates the arguments that need no database.  Returns -1 when all is
 * well, else the exit code (2) after printing the error. */
static int s_check_args(s_ctx_t *c, const char *default_period)
{
    bm_err_t err;
    c->region = c->branch = -1;
    c->min_n = -1;
    c->periods = 6;
    c->target_s = 20;
    if (bm_format_parse(c->o.format ? c->o.format : "table", &c->fmt, &err) < 0)
        return s_bad(c, "%s", err.msg);
    if (bm_period_parse(c->o.period ? c->o.period : default_period, &c->kind, &err) < 0)
        return s_bad(c, "%s", err.msg);
    if (c->o.at && c->o.last)
        return s_bad(c, "%s", "--at and --last cannot be used together");
    if (c->o.at) {
        if (bm_date_parse(c->o.at, &c->at, &err) < 0)
            return s_bad(c, "--at: %s", err.msg);
        c->has_at = 1;
    }
    if (c->o.channel && strcmp(c->o.channel, "visit") && strcmp(c->o.channel, "call") &&
        strcmp(c->o.channel, "online"))
        return s_bad(c, "unknown channel \"%s\" (try: visit, call, online)", c->o.channel);
    if (c->o.segment && strlen(c->o.segment) > 64)
        return s_bad(c, "%s", "--segment: longer than 64 characters");
    if (c->o.section && (strlen(c->o.section) < 1 || strlen(c->o.section) > 32))
        return s_bad(c, "%s", "--section: must be 1..32 characters");
    double v;
    if (c->o.min_n) {
        if (s_parse_number(c->o.min_n, 1, 1e9, &v) < 0)
            return s_bad(c, "--min-n: \"%s\" is not a number from 1", c->o.min_n);
        c->min_n = v;
    }
    if (c->o.periods) {
        if (s_parse_number(c->o.periods, 2, 24, &v) < 0 || v != floor(v))
            return s_bad(c, "--periods: \"%s\" is not a whole number 2..24", c->o.periods);
        c->periods = (int)v;
    }
    if (c->o.radius_km) {
        if (s_parse_number(c->o.radius_km, 0.001, 20000, &v) < 0)
            return s_bad(c, "--radius-km: \"%s\" is not a distance in km (0..20000)",
                         c->o.radius_km);
        c->radius_km = v;
    }
    if (c->o.target_s) {
        if (s_parse_number(c->o.target_s, 0, 599, &v) < 0 || v != floor(v))
            return s_bad(c, "--target-s: \"%s\" is not a whole number of seconds 0..599",
                         c->o.target_s);
        c->target_s = (int)v;
    }
    return -1;
}

/* What every command does first: reads its options (only those in
 * `allowed`, a positional argument when `positional`) and checks their
 * values, the period defaulting to default_period.  Returns -1 to go on,
 * else the exit code (0 after --help). */
static int s_start(s_ctx_t *c, PGconn *conn, FILE *out, bm_err_t *err_out, int argc, char **argv,
                   const char *allowed, int positional, const char *usage,
                   const char *default_period)
{
    s_ctx_init(c, conn, out, err_out);
    int rc = s_parse(c, argc, argv, allowed, positional, usage);
    if (rc >= 0)
        return rc;
    return s_check_args(c, default_period);
}

/* s_open without the clean-up of a failure. */
static int s_open_ref(s_ctx_t *c)
{
    c->conn = c->given_conn ? c->given_conn : bm_db_connect(c->o.db, "branchmark", c->err);
    if (!c->conn)
        return 1;
    /* A region's rank needs only that region's branches (the chain line
     * comes from the server's totals, bm_q_total). */
    c->ref = c->o.region && !strcmp(c->o.cmd, "rank")
                 ? bm_q_ref_load_region(c->conn, c->o.region, c->err)
                 : bm_q_ref_load(c->conn, c->err);
    if (!c->ref)
        return 1;
    if (c->o.region && (c->region = bm_q_ref_region(c->ref, c->o.region)) < 0)
        return s_bad(c, "unknown region \"%s\"", c->o.region);
    const char *b = c->o.branch ? c->o.branch : c->o.positional;
    if (b && (c->branch = bm_q_ref_branch(c->ref, b)) < 0)
        return s_bad(c, "unknown branch \"%s\"", b);
    PGresult *res = PQexec(c->conn, "SELECT bm_scope_limited(current_user)");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        bm_db_result_err(res, c->conn, "reading the access scope", c->err);
        PQclear(res);
        return 1;
    }
    c->scope_limited = !strcmp(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    return -1;
}

static void s_close(s_ctx_t *c)
{
    bm_q_ref_destroy(&c->ref);
    if (c->given_conn)
        c->conn = NULL;
    else
        bm_db_close(&c->conn);
}

/* Connects and loads reference data; checks --region and --branch.
 * Returns -1 when ready (the caller then calls s_close), else the exit code
 * with everything closed again. */
static int s_open(s_ctx_t *c)
{
    int rc = s_open_ref(c);
    if (rc >= 0)
        s_close(c);
    return rc;
}

static int s_print(s_ctx_t *c, bm_report_t **rep)
{
    int rc = 0;
    /* Row-level security filters the rollups before any total is formed. */
    if (c->scope_limited)
        bm_report_note(*rep, "your access is limited to part of the chain: \"chain\" figures "
                              "and rankings cover only the branches you may see");
    if (bm_report_print(*rep, c->fmt, c->out) < 0 || fflush(c->out) != 0) {
        bm_err_set(c->err, "could not write the output");
        rc = 1;
    }
    bm_report_destroy(rep);
    return rc;
}

static int s_fail(s_ctx_t *c, const bm_err_t *err)
{
    bm_err_set(c->err, "%s", err->msg);
    return 1;
}

/* The current period: --at's, else the latest with data for the metrics
 * given (NULL = every metric), else today's (in UTC). */
static int s_current_period(s_ctx_t *c, const bm_metric_t *only, int64_t *cur, bm_err_t *err)
{
    if (c->has_at) {
        *cur = bm_period_start(c->kind, c->at);
        return 0;
    }
    int found = 0;
    for (const bm_metric_t *m = only ? only : bm_metrics; m->name; m++) {
        int64_t s;
        int rc = bm_q_latest(c->conn, m, c->kind, &s, err);
        if (rc < 0)
            return -1;
        if (rc == 1 && (!found || s > *cur)) {
            *cur = s;
            found = 1;
        }
        if (only)
            break;
    }
    if (!found)
        *cur = bm_period_start(c->kind, bm_now_ms() / 86400000);
    return 0;
}

static double s_min_n(const s_ctx_t *c, const bm_metric_t *m)
{
    return c->min_n > 0 ? c->min_n : m->default_min_n;
}

static int s_in_scope(const s_ctx_t *c, int b)
{
    return c->region < 0 || c->ref->branches[b].region == c->region;
}

static const char *s_region_code(const bm_q_ref_t *ref, int region)
{
    return region >= 0 ? ref->regions[region].code : "";
}

/* Sets value, n, interval and low-sample cells from column `col` on. */
static void s_put_estimate(bm_table_t *t, int col, const bm_metric_t *m,
                           const bm_estimate_t *e, double min_n)
{
    if (!e->has_value) {
        bm_table_set_int(t, col + 1, 0);
        bm_table_set_bool(t, col + 4, 1);
        return;
    }
    bm_table_set_num(t, col, e->value, m->decimals);
    bm_table_set_int(t, col + 1, (long long)llround(e->n));
    if (e->has_ci) {
        bm_table_set_num(t, col + 2, e->lo, m->decimals);
        bm_table_set_num(t, col + 3, e->hi, m->decimals);
    }
    bm_table_set_bool(t, col + 4, bm_low_sample(e->n, min_n));
}

static bm_q_filter_t s_filter(const s_ctx_t *c, int competitors)
{
    bm_q_filter_t f;
    memset(&f, 0, sizeof f);
    f.channel = c->o.channel ? c->o.channel : "";
    f.segment = c->o.segment ? c->o.segment : "";
    f.section = c->o.section ? c->o.section : "";
    f.answer_target_s = c->target_s;
    f.competitors = competitors;
    return f;
}

/* Checks that the filters apply to metric m.  Returns -1 if so. */
static int s_check_filters(const s_ctx_t *c, const bm_metric_t *m)
{
    int scores = !strcmp(m->name, "ms_score");
    int surveys = !strcmp(m->name, "nps") || !strcmp(m->name, "csi");
    if ((c->o.channel || c->o.section) && !scores)
        return s_bad(c, "--channel and --section apply to ms_score only, not to %s", m->name);
    if (c->o.segment && !scores && !surveys)
        return s_bad(c, "--segment applies to ms_score, nps and csi only, not to %s", m->name);
    if (c->o.target_s && strcmp(m->name, "calls_answered_share"))
        return s_bad(c, "--target-s applies to calls_answered_share only, not to %s", m->name);
    return -1;
}

static const bm_metric_t *s_metric(const s_ctx_t *c, const char *name)
{
    const bm_metric_t *m = bm_metric_find(name);
    if (!m)
        s_bad(c, "unknown metric \"%s\" (try: branchmark metrics)", name);
    return m;
}

/* ---- rank --------------------------------------------------------------- */

static const char s_rank_usage[] =
    "usage: branchmark rank --metric M [--region R] [--period day|week|month|quarter]\n"
    "                       [--at YYYY-MM-DD | --last] [--channel visit|call|online]\n"
    "                       [--segment S] [--section S] [--min-n N] [--target-s S]\n"
    "                       [--format table|csv|json] [--db CONNINFO]\n"
    "Ranks branches (chain-wide or within a region) on one metric for one period\n"
    "(default: the latest month with data), with n, the 95% interval, tie groups\n"
    "(rank ranges such as 2-4) and the change since the previous period; the arrow\n"
    "shows only when the change is significant at 95%.  Branches with n below the\n"
    "minimum are listed, flagged low_n, and not ranked.\n";
static const char s_rank_options[] = " db format period at last region channel segment section"
                                     " metric min-n target-s ";

static void s_rank_scope_row(bm_table_t *t, const bm_metric_t *m, const char *scope,
                             const char *code, const bm_estimate_t *cur,
                             const bm_estimate_t *prev, int change, double min_n)
{
    bm_table_add_row(t);
    bm_table_set_text(t, 0, scope);
    bm_table_set_text(t, 1, code);
    s_put_estimate(t, 2, m, cur, min_n);
    if (prev->has_value)
        bm_table_set_num(t, 7, prev->value, m->decimals);
    if (cur->has_value && prev->has_value)
        bm_table_set_num(t, 8, cur->value - prev->value, m->decimals);
    bm_table_set_arrow(t, 9, change);
}

static int s_rank(PGconn *conn, int argc, char **argv, FILE *out, bm_err_t *err_out)
{
    s_ctx_t c;
    int rc = s_start(&c, conn, out, err_out, argc, argv, s_rank_options, 0, s_rank_usage,
                     "month");
    if (rc >= 0)
        return rc;
    if (!c.o.metric)
        return s_bad(&c, "%s", "--metric is required (try: branchmark metrics)");
    const bm_metric_t *m = s_metric(&c, c.o.metric);
    if (!m)
        return 2;
    if ((rc = s_check_filters(&c, m)) >= 0)
        return rc;
    if ((rc = s_open(&c)) >= 0)
        return rc;
    bm_err_t err;
    int64_t cur;
    bm_q_filter_t f = s_filter(&c, 0);
    f.region = c.o.region;      /* read only the region's rows (and chain totals) */
    bm_q_grid_t *g = NULL;
    bm_report_t *rep = NULL;
    bm_rank_entry_t *entries = NULL;
    rc = 1;
    if (s_current_period(&c, m, &cur, &err) < 0)
        goto db_fail;
    int64_t prev = bm_period_add(c.kind, cur, -1);
    g = bm_q_fetch(c.conn, c.ref, m, c.kind, prev, 2, &f, &err);
    if (!g)
        goto db_fail;
    size_t nb = bm_q_hist_buckets(g);
    double min_n = s_min_n(&c, m);

    int nb_branches = c.ref->nbranches;
    entries = calloc((size_t)(nb_branches ? nb_branches : 1), sizeof *entries);
    bm_estimate_t *prev_est = calloc((size_t)(nb_branches ? nb_branches : 1), sizeof *prev_est);
    int *changes = calloc((size_t)(nb_branches ? nb_branches : 1), sizeof *changes);
    if (!entries || !prev_est || !changes) {
        free(prev_est);
        free(changes);
        bm_err_set(&err, "out of memory");
        goto db_fail;
    }
    size_t ranked = 0, unranked = 0;
    /* Ranked entries fill the front, unranked (no data or low n) the back. */
    for (int b = 0; b < nb_branches; b++) {
        if (!s_in_scope(&c, b))
            continue;
        bm_estimate_t e;
        if (bm_q_estimate(m, bm_q_cell(g, b, 1), nb, &e, &err) < 0 ||
            bm_q_estimate(m, bm_q_cell(g, b, 0), nb, &prev_est[b], &err) < 0) {
            free(prev_est);
            free(changes);
            goto db_fail;
        }
        changes[b] = bm_q_change_est(m, bm_q_cell(g, b, 1), bm_q_cell(g, b, 0), &e, &prev_est[b]);
        bm_rank_entry_t *slot = (e.has_value && !bm_low_sample(e.n, min_n))
                                    ? &entries[ranked++]
                                    : &entries[nb_branches - 1 - unranked++];
        slot->est = e;
        slot->key = (size_t)b;
    }
    bm_rank_entries(entries, ranked, m->higher_better);
    /* Unranked: those with data first, in input order. */
    bm_rank_entry_t *tail = entries + nb_branches - unranked;
    for (size_t i = 0; i < unranked / 2; i++) {
        bm_rank_entry_t tmp = tail[i];
        tail[i] = tail[unranked - 1 - i];
        tail[unranked - 1 - i] = tmp;
    }

    static const char *const cols[] = {"rank", "group", "branch", "name", "region", "value", "n",
                                       "ci_low", "ci_high", "low_n", "previous", "change",
                                       "arrow"};
    bm_table_t *t = bm_table_new("ranking", 13, cols);
    static const char *const acols[] = {"scope", "code", "value", "n", "ci_low", "ci_high",
                                        "low_n", "previous", "change", "arrow"};
    bm_table_t *agg = bm_table_new("aggregates", 10, acols);
    rep = bm_report_new();
    if (!t || !agg || !rep) {
        bm_table_destroy(&t);
        bm_table_destroy(&agg);
        free(prev_est);
        free(changes);
        bm_err_set(&err, "out of memory");
        goto db_fail;
    }
    for (size_t i = 0; i < ranked + unranked; i++) {
        bm_rank_entry_t *en = i < ranked ? &entries[i] : &tail[i - ranked];
        int b = (int)en->key;
        const bm_q_outlet_t *br = &c.ref->branches[b];
        bm_table_add_row(t);
        if (i < ranked) {
            char rk[32];
            if (en->rank_lo == en->rank_hi)
                snprintf(rk, sizeof rk, "%d", en->rank_lo);
            else
                snprintf(rk, sizeof rk, "%d-%d", en->rank_lo, en->rank_hi);
            bm_table_set_text(t, 0, rk);
            bm_table_set_int(t, 1, en->group);
        }
        bm_table_set_text(t, 2, br->code);
        bm_table_set_text(t, 3, br->name);
        bm_table_set_text(t, 4, s_region_code(c.ref, br->region));
        s_put_estimate(t, 5, m, &en->est, min_n);
        if (prev_est[b].has_value)
            bm_table_set_num(t, 10, prev_est[b].value, m->decimals);
        if (en->est.has_value && prev_est[b].has_value)
            bm_table_set_num(t, 11, en->est.value - prev_est[b].value, m->decimals);
        bm_table_set_arrow(t, 12, changes[b]);
    }
    free(prev_est);
    free(changes);

    /* Region(s) and chain: sums of the branch aggregates. */
    for (int r = -1; r < c.ref->nregions; r++) {
        if (r >= 0 && c.region >= 0 && r != c.region)
            continue;
        bm_q_agg_t a[2];
        uint32_t *h = nb ? calloc(2 * nb, sizeof *h) : NULL;
        memset(a, 0, sizeof a);
        if (h) {
            a[0].hist = h;
            a[1].hist = h + nb;
        }
        for (int b = 0; r >= 0 && b < nb_branches; b++)
            if (c.ref->branches[b].region == r)
                for (int p = 0; p < 2; p++)
                    bm_q_agg_add(&a[p], bm_q_cell(g, b, p), nb);
        for (int p = 0; r < 0 && p < 2; p++)
            bm_q_agg_add(&a[p], bm_q_total(g, p), nb);
        bm_estimate_t ec, ep;
        int ok = bm_q_estimate(m, &a[1], nb, &ec, &err) == 0 &&
                 bm_q_estimate(m, &a[0], nb, &ep, &err) == 0;
        if (ok)
            s_rank_scope_row(agg, m, r < 0 ? "chain" : "region",
                             r < 0 ? c.ref->chain_code : c.ref->regions[r].code, &ec, &ep,
                             bm_q_change_est(m, &a[1], &a[0], &ec, &ep), min_n);
        free(h);
        if (!ok) {
            bm_table_destroy(&t);
            bm_table_destroy(&agg);
            goto db_fail;
        }
    }
    bm_report_add(rep, &t);
    bm_report_add(rep, &agg);
    char label[32], plabel[32];
    bm_report_note(rep, "metric %s (%s, %s is better): %s", m->name, m->unit,
                   m->higher_better ? "higher" : "lower", m->description);
    bm_report_note(rep, "period %s %s, previous %s; region %s%s%s%s%s",
                   bm_period_name(c.kind), bm_period_label(c.kind, cur, label, sizeof label),
                   bm_period_label(c.kind, prev, plabel, sizeof plabel),
                   c.region >= 0 ? c.ref->regions[c.region].code : "all",
                   c.o.channel ? "; channel " : "", c.o.channel ? c.o.channel : "",
                   c.o.segment ? "; segment " : "", c.o.segment ? c.o.segment : "");
    bm_report_note(rep, "ranks: branches whose 95%% intervals overlap their group's leader share "
                        "a rank range; low_n = n below %g %s (listed, not ranked); arrows only "
                        "for changes significant at 95%%", min_n, m->sample);
    free(entries);
    bm_q_grid_destroy(&g);
    rc = s_print(&c, &rep);
    s_close(&c);
    return rc;
db_fail:
    s_fail(&c, &err);
    free(entries);
    bm_q_grid_destroy(&g);
    bm_report_destroy(&rep);
    s_close(&c);
    return rc;
}

/* ---- scorecard ---------------------------------------------------------- */

static const char s_scorecard_usage[] =
    "usage: branchmark scorecard BRANCH|--branch BRANCH [--period day|week|month|quarter]\n"
    "                            [--periods N]\n"
    "                            [--at YYYY-MM-DD | --last] [--min-n N] [--radius-km K]\n"
    "                            [--format table|csv|json] [--db CONNINFO]\n"
    "Every metric of one branch for the current period (default: the latest month with\n"
    "data) with n and 95% intervals, the trend over the last N periods (default 6;\n"
    "also as numbers per period in the table \"trend\"), the chain's figure, section\n"
    "scores, competitor gaps and complaint and lost-customer breakdowns.\n";
static const char s_scorecard_options[] = " db format period periods at last min-n radius-km"
                                          " branch ";

static int s_gap_table(s_ctx_t *c, bm_table_t *t, int64_t cur, int only_branch, bm_err_t *err);

/* Sum of a breakdown's rows for entity e (or all entities in region r when
 * e < 0; r < 0: all) and period p (or -1: all), key `key`. */
static void s_bd_sum(const bm_q_bd_row_t *rows, int nrows, const bm_q_ref_t *ref, int e, int r,
                     int competitors, int p, const char *key, bm_q_agg_t *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < nrows; i++) {
        const bm_q_bd_row_t *row = &rows[i];
        if (strcmp(row->key, key) || (p >= 0 && row->period != p))
            continue;
        if (e >= 0 && row->entity != e)
            continue;
        if (e < 0 && r >= 0) {
            int reg = competitors ? ref->competitors[row->entity].region
                                  : ref->branches[row->entity].region;
            if (reg != r)
                continue;
        }
        out->n += row->n;
        out->x += row->x;
        out->sum += row->sum;
        out->sumsq += row->sumsq;
    }
}

/* Distinct keys of the rows (at most cap), in first-seen order. */
static int s_bd_keys(const bm_q_bd_row_t *rows, int nrows, const char **keys, int cap)
{
    int n = 0;
    for (int i = 0; i < nrows; i++) {
        int seen = 0;
        for (int k = 0; k < n && !seen; k++)
            seen = !strcmp(keys[k], rows[i].key);
        if (!seen && n < cap)
            keys[n++] = rows[i].key;
    }
    return n;
}

static int s_key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define S_MAX_KEYS 256

/* A table of a count breakdown (complaint causes, lost reasons) for branch
 * b: current and previous period counts. */
static int s_count_table(s_ctx_t *c, bm_report_t *rep, const char *name, const char *keycol,
                         bm_breakdown_t what, int b, int64_t prev, bm_err_t *err)
{
    bm_q_bd_row_t *rows;
    bm_q_filter_t f = s_filter(c, 0);
    int n = bm_q_breakdown(c->conn, c->ref, what, c->kind, prev, 2, &f, &rows, err);
    if (n < 0)
        return -1;
    const char *cols[] = {keycol, "count", "previous", "change"};
    bm_table_t *t = bm_table_new(name, 4, cols);
    const char *keys[S_MAX_KEYS];
    int nk = s_bd_keys(rows, n, keys, S_MAX_KEYS);
    qsort(keys, (size_t)nk, sizeof *keys, s_key_cmp);
    for (int k = 0; t && k < nk; k++) {
        bm_q_agg_t a1, a0;
        s_bd_sum(rows, n, c->ref, b, -1, 0, 1, keys[k], &a1);
        s_bd_sum(rows, n, c->ref, b, -1, 0, 0, keys[k], &a0);
        if (a1.x == 0 && a0.x == 0)
            continue;
        bm_table_add_row(t);
        bm_table_set_text(t, 0, keys[k]);
        bm_table_set_int(t, 1, (long long)a1.x);
        bm_table_set_int(t, 2, (long long)a0.x);
        bm_table_set_int(t, 3, (long long)(a1.x - a0.x));
    }
    free(rows);
    if (!t)
        return bm_err_set(err, "out of memory");
    bm_report_add(rep, &t);
    return 0;
}

static int s_scorecard(PGconn *conn, int argc, char **argv, FILE *out, bm_err_t *err_out)
{
    s_ctx_t c;
    int rc = s_start(&c, conn, out, err_out, argc, argv, s_scorecard_options, 1, s_scorecard_usage,
                     "month");
    if (rc >= 0)
        return rc;
    if (!c.o.positional && !c.o.branch) {
        bm_err_set(c.err, "a branch code is required");
        return BM_QUERY_USAGE;
    }
    if (c.o.positional && c.o.branch && strcmp(c.o.positional, c.o.branch))
        return s_bad(&c, "%s", "two different branches given (BRANCH and --branch)");
    if ((rc = s_open(&c)) >= 0)
        return rc;
    bm_err_t err;
    int64_t cur;
    bm_report_t *rep = bm_report_new();
    bm_q_bd_row_t *rows = NULL;
    rc = 1;
    if (!rep) {
        bm_err_set(&err, "out of memory");
        goto fail;
    }
    if (s_current_period(&c, NULL, &cur, &err) < 0)
        goto fail;
    int b = c.branch, np = c.periods;
    int64_t first = bm_period_add(c.kind, cur, -(np - 1));
    const bm_q_outlet_t *br = &c.ref->branches[b];

    static const char *const cols[] = {"metric", "unit", "value", "n", "ci_low", "ci_high",
                                       "low_n", "previous", "arrow", "chain", "trend"};
    bm_table_t *t = bm_table_new("metrics", 11, cols);
    /* The trend as numbers, one row per metric and period (for charts). */
    static const char *const tcols[] = {"metric", "period", "value", "n", "ci_low", "ci_high"};
    bm_table_t *tt = bm_table_new("trend", 6, tcols);
    if (!tt)
        bm_table_destroy(&t);
    for (const bm_metric_t *m = bm_metrics; t && m->name; m++) {
        bm_q_filter_t f = s_filter(&c, 0);
        bm_q_grid_t *g = bm_q_fetch(c.conn, c.ref, m, c.kind, first, np, &f, &err);
        if (!g) {
            bm_table_destroy(&t);
            bm_table_destroy(&tt);
            goto fail;
        }
        size_t nb = bm_q_hist_buckets(g);
        double min_n = s_min_n(&c, m);
        bm_estimate_t e, ep;
        bm_table_add_row(t);
        bm_table_set_text(t, 0, m->name);
        bm_table_set_text(t, 1, m->unit);
        if (bm_q_estimate(m, bm_q_cell(g, b, np - 1), nb, &e, &err) < 0 ||
            bm_q_estimate(m, bm_q_cell(g, b, np - 2), nb, &ep, &err) < 0) {
            /* avg_check over several currencies: say so in the row. */
            bm_table_set_text(t, 10, err.msg);
            bm_q_grid_destroy(&g);
            continue;
        }
        s_put_estimate(t, 2, m, &e, min_n);
        if (ep.has_value)
            bm_table_set_num(t, 7, ep.value, m->decimals);
        bm_table_set_arrow(t, 8, bm_q_change_est(m, bm_q_cell(g, b, np - 1),
                                                 bm_q_cell(g, b, np - 2), &e, &ep));
        bm_q_agg_t chain;
        uint32_t *h = nb ? calloc(nb, sizeof *h) : NULL;
        memset(&chain, 0, sizeof chain);
        chain.hist = h;
        for (int x = 0; x < c.ref->nbranches; x++)
            bm_q_agg_add(&chain, bm_q_cell(g, x, np - 1), nb);
        bm_estimate_t ec;
        if (bm_q_estimate(m, &chain, nb, &ec, NULL) == 0 && ec.has_value)
            bm_table_set_num(t, 9, ec.value, m->decimals);
        free(h);
        char trend[24 * 16] = "", v[32];
        for (int p = 0; p < np; p++) {
            bm_estimate_t ex;
            int ok = bm_q_estimate(m, bm_q_cell(g, b, p), nb, &ex, NULL) == 0;
            if (ok && ex.has_value)
                snprintf(v, sizeof v, "%.*f", m->decimals, ex.value);
            else
                snprintf(v, sizeof v, "-");
            char plabel[32];
            bm_table_add_row(tt);
            bm_table_set_text(tt, 0, m->name);
            bm_table_set_text(tt, 1, bm_period_label(c.kind, bm_period_add(c.kind, first, p),
                                                     plabel, sizeof plabel));
            if (ok && ex.has_value) {
                bm_table_set_num(tt, 2, ex.value, m->decimals);
                bm_table_set_int(tt, 3, (long long)llround(ex.n));
                if (ex.has_ci) {
                    bm_table_set_num(tt, 4, ex.lo, m->decimals);
                    bm_table_set_num(tt, 5, ex.hi, m->decimals);
                }
            } else {
                bm_table_set_int(tt, 3, 0);
            }
            size_t len = strlen(trend);
            snprintf(trend + len, sizeof trend - len, "%s%s", p ? " " : "", v);
        }
        bm_table_set_text(t, 10, trend);
        bm_q_grid_destroy(&g);
    }
    if (!t) {
        bm_table_destroy(&tt);
        bm_err_set(&err, "out of memory");
        goto fail;
    }
    bm_report_add(rep, &t);

    /* Section scores, current vs previous period. */
    bm_q_filter_t f = s_filter(&c, 0);
    int64_t prev = bm_period_add(c.kind, cur, -1);
    int n = bm_q_breakdown(c.conn, c.ref, BM_BD_SECTIONS, c.kind, prev, 2, &f, &rows, &err);
    if (n < 0) {
        bm_table_destroy(&tt);
        goto fail;
    }
    static const char *const scols[] = {"section", "score", "n", "ci_low", "ci_high", "low_n",
                                        "previous", "arrow"};
    const bm_metric_t *ms = bm_metric_find("ms_score");
    double ms_min = s_min_n(&c, ms);
    bm_table_t *st = bm_table_new("sections", 8, scols);
    const char *keys[S_MAX_KEYS];
    int nk = s_bd_keys(rows, n, keys, S_MAX_KEYS);
    qsort(keys, (size_t)nk, sizeof *keys, s_key_cmp);
    for (int k = 0; st && k < nk; k++) {
        bm_q_agg_t a1, a0;
        s_bd_sum(rows, n, c.ref, b, -1, 0, 1, keys[k], &a1);
        s_bd_sum(rows, n, c.ref, b, -1, 0, 0, keys[k], &a0);
        if (a1.n == 0 && a0.n == 0)
            continue;
        bm_estimate_t e1 = bm_est_mean(a1.n, a1.sum, a1.sumsq);
        bm_estimate_t e0 = bm_est_mean(a0.n, a0.sum, a0.sumsq);
        bm_est_clamp(&e1, 0, 100);
        bm_est_clamp(&e0, 0, 100);
        bm_table_add_row(st);
        bm_table_set_text(st, 0, keys[k]);
        s_put_estimate(st, 1, ms, &e1, ms_min);
        if (e0.has_value)
            bm_table_set_num(st, 6, e0.value, 1);
        bm_table_set_arrow(st, 7, bm_change_welch(&e1, &e0));
    }
    free(rows);
    rows = NULL;
    if (!st) {
        bm_table_destroy(&tt);
        bm_err_set(&err, "out of memory");
        goto fail;
    }
    bm_report_add(rep, &st);

    static const char *const gcols[] = {"scope", "versus", "section", "own", "own_n",
                                        "competitors", "competitors_n", "gap", "gap_low",
                                        "gap_high", "significant", "low_n"};
    bm_table_t *gt = bm_table_new("competitor_gaps", 12, gcols);
    if (!gt || s_gap_table(&c, gt, cur, b, &err) < 0) {
        bm_table_destroy(&gt);
        bm_table_destroy(&tt);
        goto fail;
    }
    bm_report_add(rep, &gt);
    if (s_count_table(&c, rep, "complaint_categories", "category", BM_BD_COMPLAINT_CATEGORY, b,
                      prev, &err) < 0 ||
        s_count_table(&c, rep, "complaint_contact_points", "contact_point", BM_BD_CONTACT_POINT,
                      b, prev, &err) < 0 ||
        s_count_table(&c, rep, "lost_reasons", "reason", BM_BD_LOST_REASON, b, prev, &err) < 0) {
        bm_table_destroy(&tt);
        goto fail;
    }
    /* Last, so the tables before it keep their order in text and CSV. */
    bm_report_add(rep, &tt);

    char label[32];
    bm_report_note(rep, "branch %s (%s), region %s; %s %s; trend = the last %d periods, oldest "
                        "first (- = no data)", br->code, br->name,
                   s_region_code(c.ref, br->region), bm_period_name(c.kind),
                   bm_period_label(c.kind, cur, label, sizeof label), np);
    bm_report_note(rep, "low_n = n below the metric's minimum (see branchmark metrics); arrows "
                        "only for changes significant at 95%%");
    rc = s_print(&c, &rep);
    s_close(&c);
    return rc;
fail:
    s_fail(&c, &err);
    free(rows);
    bm_report_destroy(&rep);
    s_close(&c);
    return 1;
}

/* ---- competitors -------------------------------------------------------- */

static const char s_competitors_usage[] =
    "usage: branchmark competitors [--region R] [--branch B] [--radius-km K]\n"
    "                              [--period day|week|month|quarter] [--at YYYY-MM-DD | --last]\n"
    "                              [--channel visit|call|online] [--min-n N]\n"
    "                              [--format table|csv|json] [--db CONNINFO]\n"
    "Per questionnaire section: own score, competitors' score, the gap and its 95%\n"
    "interval (Welch), for each branch against the competitor outlets of its region\n"
    "(or within --radius-km where both have coordinates), each region against its\n"
    "competitors, and the chain against all competitors.  Default period: the latest\n"
    "quarter with data.\n";
static const char s_competitors_options[] = " db format period at last region branch radius-km"
                                            " channel min-n ";

/* Gap rows of own vs competitor aggregates for one scope. */
static void s_gap_rows(bm_table_t *t, const char *scope, const char *versus,
                       const char *const *keys, int nk, const bm_q_agg_t *own,
                       const bm_q_agg_t *comp, double min_n)
{
    for (int k = 0; k < nk; k++) {
        if (own[k].n == 0 && comp[k].n == 0)
            continue;
        bm_estimate_t a = bm_est_mean(own[k].n, own[k].sum, own[k].sumsq);
        bm_estimate_t b = bm_est_mean(comp[k].n, comp[k].sum, comp[k].sumsq);
        bm_est_clamp(&a, 0, 100);
        bm_est_clamp(&b, 0, 100);
        bm_table_add_row(t);
        bm_table_set_text(t, 0, scope);
        bm_table_set_text(t, 1, versus);
        bm_table_set_text(t, 2, keys[k][0] ? keys[k] : "(overall)");
        if (a.has_value)
            bm_table_set_num(t, 3, a.value, 1);
        bm_table_set_int(t, 4, (long long)a.n);
        if (b.has_value)
            bm_table_set_num(t, 5, b.value, 1);
        bm_table_set_int(t, 6, (long long)b.n);
        if (a.has_value && b.has_value) {
            double gap = a.value - b.value;
            bm_table_set_num(t, 7, gap, 1);
            if (a.n >= 2 && b.n >= 2) {
                double v1 = a.se * a.se, v0 = b.se * b.se;
                double se = sqrt(v1 + v0);
                double df = se > 0 ? (v1 + v0) * (v1 + v0) /
                                         (v1 * v1 / (a.n - 1) + v0 * v0 / (b.n - 1))
                                   : 1e9;
                double tq = bm_t95(df);
                /* Scores are percentages: a gap cannot pass +-100. */
                bm_table_set_num(t, 8, fmax(gap - tq * se, -100), 1);
                bm_table_set_num(t, 9, fmin(gap + tq * se, 100), 1);
                bm_table_set_arrow(t, 10, bm_change_welch(&a, &b));
            }
        }
        bm_table_set_bool(t, 11, a.n < min_n || b.n < min_n);
    }
}

/* Fills t with gap rows.  only_branch >= 0: that branch only (scorecard);
 * else the branches, regions and chain in c's scope. */
static int s_gap_table(s_ctx_t *c, bm_table_t *t, int64_t cur, int only_branch, bm_err_t *err)
{
    bm_q_bd_row_t *own = NULL, *comp = NULL;
    bm_q_filter_t fo = s_filter(c, 0), fc = s_filter(c, 1);
    fo.section = fc.section = "";
    const bm_metric_t *ms = bm_metric_find("ms_score");
    double min_n = s_min_n(c, ms);
    int no = bm_q_breakdown(c->conn, c->ref, BM_BD_SECTIONS, c->kind, cur, 1, &fo, &own, err);
    if (no < 0)
        return -1;
    int nc = bm_q_breakdown(c->conn, c->ref, BM_BD_SECTIONS, c->kind, cur, 1, &fc, &comp, err);
    bm_q_grid_t *go = NULL, *gc = NULL;
    if (nc < 0 || !(go = bm_q_fetch(c->conn, c->ref, ms, c->kind, cur, 1, &fo, err)) ||
        !(gc = bm_q_fetch(c->conn, c->ref, ms, c->kind, cur, 1, &fc, err))) {
        free(own);
        free(comp);
        bm_q_grid_destroy(&go);
        return -1;
    }
    const char *keys[S_MAX_KEYS + 1];
    keys[0] = "";
    const char *k1[S_MAX_KEYS], *k2[S_MAX_KEYS];
    int n1 = s_bd_keys(own, no, k1, S_MAX_KEYS), n2 = s_bd_keys(comp, nc, k2, S_MAX_KEYS);
    int nk = 1;
    for (int i = 0; i < n1 + n2 && nk <= S_MAX_KEYS; i++) {
        const char *k = i < n1 ? k1[i] : k2[i - n1];
        int seen = 0;
        for (int j = 1; j < nk && !seen; j++)
            seen = !strcmp(keys[j], k);
        if (!seen)
            keys[nk++] = k;
    }
    qsort(keys + 1, (size_t)(nk - 1), sizeof *keys, s_key_cmp);
    bm_q_agg_t *ao = calloc((size_t)nk, sizeof *ao), *ac = calloc((size_t)nk, sizeof *ac);
    if (!ao || !ac) {
        free(ao);
        free(ac);
        free(own);
        free(comp);
        bm_q_grid_destroy(&go);
        bm_q_grid_destroy(&gc);
        return bm_err_set(err, "out of memory");
    }
    char scope[64], versus[96];
    /* Branches. */
    for (int b = 0; b < c->ref->nbranches; b++) {
        if (only_branch >= 0 ? b != only_branch
                             : (!s_in_scope(c, b) || (c->branch >= 0 && b != c->branch)))
            continue;
        const bm_q_outlet_t *br = &c->ref->branches[b];
        memset(ao, 0, (size_t)nk * sizeof *ao);
        memset(ac, 0, (size_t)nk * sizeof *ac);
        int outlets = 0;
        int by_radius = c->radius_km > 0 && br->has_geo;
        for (int x = 0; x < c->ref->ncompetitors; x++) {
            const bm_q_outlet_t *co = &c->ref->competitors[x];
            int in = by_radius ? co->has_geo && bm_haversine_km(br->lat, br->lon, co->lat,
                                                                co->lon) <= c->radius_km
                               : co->region == br->region;
            if (!in)
                continue;
            outlets++;
            bm_q_agg_add(&ac[0], bm_q_cell(gc, x, 0), 0);
            for (int k = 1; k < nk; k++) {
                bm_q_agg_t s;
                s_bd_sum(comp, nc, c->ref, x, -1, 1, 0, keys[k], &s);
                bm_q_agg_add(&ac[k], &s, 0);
            }
        }
        bm_q_agg_add(&ao[0], bm_q_cell(go, b, 0), 0);
        for (int k = 1; k < nk; k++)
            s_bd_sum(own, no, c->ref, b, -1, 0, 0, keys[k], &ao[k]);
        snprintf(scope, sizeof scope, "branch %s", br->code);
        if (by_radius)
            snprintf(versus, sizeof versus, "within %g km (%d outlet%s)", c->radius_km, outlets,
                     outlets == 1 ? "" : "s");
        else
            snprintf(versus, sizeof versus, "region %s (%d outlet%s)",
                     s_region_code(c->ref, br->region), outlets, outlets == 1 ? "" : "s");
        s_gap_rows(t, scope, versus, keys, nk, ao, ac, min_n);
    }
    /* Regions and the chain. */
    for (int i = 0; only_branch < 0 && c->branch < 0 && i <= c->ref->nregions; i++) {
        int r = i < c->ref->nregions ? i : -1;     /* the chain comes last */
        if (r >= 0 && c->region >= 0 && r != c->region)
            continue;
        memset(ao, 0, (size_t)nk * sizeof *ao);
        memset(ac, 0, (size_t)nk * sizeof *ac);
        int outlets = 0;
        for (int x = 0; x < c->ref->ncompetitors; x++)
            if (r < 0 || c->ref->competitors[x].region == r) {
                outlets++;
                bm_q_agg_add(&ac[0], bm_q_cell(gc, x, 0), 0);
            }
        for (int b = 0; b < c->ref->nbranches; b++)
            if (r < 0 || c->ref->branches[b].region == r)
                bm_q_agg_add(&ao[0], bm_q_cell(go, b, 0), 0);
        for (int k = 1; k < nk; k++) {
            s_bd_sum(own, no, c->ref, -1, r, 0, 0, keys[k], &ao[k]);
            s_bd_sum(comp, nc, c->ref, -1, r, 1, 0, keys[k], &ac[k]);
        }
        if (r < 0) {
            snprintf(scope, sizeof scope, "chain %s", c->ref->chain_code);
            snprintf(versus, sizeof versus, "all competitors (%d outlet%s)", outlets,
                     outlets == 1 ? "" : "s");
        } else {
            snprintf(scope, sizeof scope, "region %s", c->ref->regions[r].code);
            snprintf(versus, sizeof versus, "region %s (%d outlet%s)", c->ref->regions[r].code,
                     outlets, outlets == 1 ? "" : "s");
        }
        s_gap_rows(t, scope, versus, keys, nk, ao, ac, min_n);
    }
    free(ao);
    free(ac);
    free(own);
    free(comp);
    bm_q_grid_destroy(&go);
    bm_q_grid_destroy(&gc);
    return 0;
}

static int s_competitors(PGconn *conn, int argc, char **argv, FILE *out, bm_err_t *err_out)
{
    s_ctx_t c;
    int rc = s_start(&c, conn, out, err_out, argc, argv, s_competitors_options, 0, s_competitors_usage,
                     "quarter");
    if (rc >= 0)
        return rc;
    if ((rc = s_open(&c)) >= 0)
        return rc;
    bm_err_t err;
    int64_t cur;
    if (s_current_period(&c, bm_metric_find("ms_score"), &cur, &err) < 0) {
        s_fail(&c, &err);
        s_close(&c);
        return 1;
    }
    static const char *const gcols[] = {"scope", "versus", "section", "own", "own_n",
                                        "competitors", "competitors_n", "gap", "gap_low",
                                        "gap_high", "significant", "low_n"};
    bm_table_t *t = bm_table_new("competitor_gaps", 12, gcols);
    bm_report_t *rep = bm_report_new();
    if (!t || !rep || s_gap_table(&c, t, cur, -1, &err) < 0) {
        if (!t || !rep)
            bm_err_set(&err, "out of memory");
        bm_table_destroy(&t);
        bm_report_destroy(&rep);
        s_fail(&c, &err);
        s_close(&c);
        return 1;
    }
    bm_report_add(rep, &t);
    char label[32];
    bm_report_note(rep, "%s %s; scores in %% (mystery-shopping score, same questionnaires); "
                        "gap = own - competitors with a 95%% Welch interval; low_n = fewer than "
                        "%g evaluations on a side", bm_period_name(c.kind),
                   bm_period_label(c.kind, cur, label, sizeof label),
                   s_min_n(&c, bm_metric_find("ms_score")));
    rc = s_print(&c, &rep);
    s_close(&c);
    return rc;
}

/* ---- alerts ------------------------------------------------------------- */

static const char s_alerts_usage[] =
    "usage: branchmark alerts [--period day|week|month|quarter] [--at YYYY-MM-DD | --last]\n"
    "                         [--region R] [--min-n N] [--format table|csv|json] [--db CONNINFO]\n"
    "Early warnings: branches whose metric in the current period (default: the latest\n"
    "month with data) is worse than their own baseline (the previous 6 periods pooled)\n"
    "by more than 3 standard errors, with the sections, complaint categories and\n"
    "contact points that moved most.\n";
static const char s_alerts_options[] = " db format period at last region min-n ";

/* Appends "label: k1 d1, k2 d2" of the largest moves (worst first) to buf. */
static void s_causes(const bm_q_bd_row_t *rows, int n, const bm_q_ref_t *ref, int b,
                     int scores, const char *label, char *buf, size_t size)
{
    const char *keys[S_MAX_KEYS];
    double delta[S_MAX_KEYS];
    int nk = s_bd_keys(rows, n, keys, S_MAX_KEYS);
    int used = 0;
    for (int k = 0; k < nk; k++) {
        bm_q_agg_t cur, base;
        s_bd_sum(rows, n, ref, b, -1, 0, S_BASELINE_PERIODS, keys[k], &cur);
        memset(&base, 0, sizeof base);
        for (int p = 0; p < S_BASELINE_PERIODS; p++) {
            bm_q_agg_t a;
            s_bd_sum(rows, n, ref, b, -1, 0, p, keys[k], &a);
            bm_q_agg_add(&base, &a, 0);
        }
        if (scores) {
            /* Score drop (negative is worse). */
            delta[k] = cur.n > 0 && base.n > 0 ? cur.sum / cur.n - base.sum / base.n : 0;
        } else {
            /* Count increase per period (negated: negative is worse). */
            delta[k] = -(cur.x - base.x / S_BASELINE_PERIODS);
        }
    }
    for (int pick = 0; pick < S_MAX_CAUSES; pick++) {
        int best = -1;
        for (int k = 0; k < nk; k++)
            if (delta[k] < -1e-9 && (best < 0 || delta[k] < delta[best]))
                best = k;
        if (best < 0)
            break;
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s%s %+.1f", used ? ", " : (len ? "; " : ""),
                 used ? "" : label, keys[best], scores ? delta[best] : -delta[best]);
        used = 1;
        delta[best] = 0;
    }
}

static int s_alerts(PGconn *conn, int argc, char **argv, FILE *out, bm_err_t *err_out)
{
    s_ctx_t c;
    int rc = s_start(&c, conn, out, err_out, argc, argv, s_alerts_options, 0, s_alerts_usage,
                     "month");
    if (rc >= 0)
        return rc;
    if ((rc = s_open(&c)) >= 0)
        return rc;
    bm_err_t err;
    int64_t cur;
    bm_report_t *rep = bm_report_new();
    bm_q_bd_row_t *sec = NULL, *cat = NULL, *cp = NULL;
    int nsec = 0, ncat = 0, ncp = 0;
    static const char *const cols[] = {"branch", "region", "metric", "current", "n", "baseline",
                                       "baseline_n", "sigmas", "likely_causes"};
    bm_table_t *t = bm_table_new("alerts", 9, cols);
    if (!rep || !t) {
        bm_err_set(&err, "out of memory");
        goto fail;
    }
    if (s_current_period(&c, NULL, &cur, &err) < 0)
        goto fail;
    const int np = S_BASELINE_PERIODS + 1;
    int64_t first = bm_period_add(c.kind, cur, -S_BASELINE_PERIODS);
    bm_q_filter_t f = s_filter(&c, 0);
    if ((nsec = bm_q_breakdown(c.conn, c.ref, BM_BD_SECTIONS, c.kind, first, np, &f, &sec,
                               &err)) < 0 ||
        (ncat = bm_q_breakdown(c.conn, c.ref, BM_BD_COMPLAINT_CATEGORY, c.kind, first, np, &f,
                               &cat, &err)) < 0 ||
        (ncp = bm_q_breakdown(c.conn, c.ref, BM_BD_CONTACT_POINT, c.kind, first, np, &f, &cp,
                              &err)) < 0)
        goto fail;
    for (const bm_metric_t *m = bm_metrics; m->name; m++) {
        if (m->family == BM_FAM_QUANTILE || m->family == BM_FAM_COUNT)
            continue;   /* no standard error: no control limit */
        bm_q_grid_t *g = bm_q_fetch(c.conn, c.ref, m, c.kind, first, np, &f, &err);
        if (!g)
            goto fail;
        double min_n = s_min_n(&c, m);
        for (int b = 0; b < c.ref->nbranches; b++) {
            if (!s_in_scope(&c, b))
                continue;
            bm_q_agg_t base;
            memset(&base, 0, sizeof base);
            for (int p = 0; p < S_BASELINE_PERIODS; p++)
                bm_q_agg_add(&base, bm_q_cell(g, b, p), 0);
            bm_estimate_t ec, eb;
            if (bm_q_estimate(m, bm_q_cell(g, b, S_BASELINE_PERIODS), 0, &ec, NULL) < 0 ||
                bm_q_estimate(m, &base, 0, &eb, NULL) < 0)
                continue;   /* mixed currencies: avg_check has no single value */
            if (!ec.has_value || !eb.has_value || ec.n < min_n || eb.n < min_n)
                continue;
            double z;
            if (!bm_control_alert(ec.value, ec.n, eb.value, eb.sd, m->higher_better, &z))
                continue;
            const bm_q_outlet_t *br = &c.ref->branches[b];
            char causes[512] = "";
            s_causes(sec, nsec, c.ref, b, 1, "sections: ", causes, sizeof causes);
            s_causes(cat, ncat, c.ref, b, 0, "complaint categories: ", causes, sizeof causes);
            s_causes(cp, ncp, c.ref, b, 0, "contact points: ", causes, sizeof causes);
            bm_table_add_row(t);
            bm_table_set_text(t, 0, br->code);
            bm_table_set_text(t, 1, s_region_code(c.ref, br->region));
            bm_table_set_text(t, 2, m->name);
            bm_table_set_num(t, 3, ec.value, m->decimals);
            bm_table_set_int(t, 4, (long long)ec.n);
            bm_table_set_num(t, 5, eb.value, m->decimals);
            bm_table_set_int(t, 6, (long long)eb.n);
            bm_table_set_num(t, 7, z, 1);
            bm_table_set_text(t, 8, causes);
        }
        bm_q_grid_destroy(&g);
    }
    bm_report_add(rep, &t);
    char label[32];
    bm_report_note(rep, "%s %s against the previous %d periods pooled; flagged when worse by "
                        "more than 3 standard errors (sigmas < -3) with n at or above the "
                        "metric's minimum", bm_period_name(c.kind),
                   bm_period_label(c.kind, cur, label, sizeof label), S_BASELINE_PERIODS);
    free(sec);
    free(cat);
    free(cp);
    rc = s_print(&c, &rep);
    s_close(&c);
    return rc;
fail:
    s_fail(&c, &err);
    bm_table_destroy(&t);
    free(sec);
    free(cat);
    free(cp);
    bm_report_destroy(&rep);
    s_close(&c);
    return 1;
}

/* ---- summary ------------------------------------------------------------ */

static const char s_summary_usage[] =
    "usage: branchmark summary [--region R] [--format table|csv|json] [--db CONNINFO]\n"
    "Per branch: record counts per kind, the mystery-shopping score and NPS over all\n"
    "periods, read from the rollups (evaluations = scored evaluations of the branch).\n";
static const char s_summary_options[] = " db format region ";

/* Quarter rows cover every record exactly once, and are the fewest. */
static const char s_summary_sql[] =
    "WITH q AS (SELECT 'quarter'::text AS k)"
    " SELECT b.id,"
    "  (SELECT coalesce(sum(intervals), 0) FROM rollup_traffic r, q WHERE r.branch_id = b.id AND r.period_kind = q.k),"
    "  (SELECT coalesce(sum(receipts), 0) FROM rollup_sales r, q WHERE r.branch_id = b.id AND r.period_kind = q.k),"
    "  (SELECT coalesce(sum(tickets), 0) FROM rollup_queue r, q WHERE r.branch_id = b.id AND r.period_kind = q.k),"
    "  (SELECT coalesce(sum(calls), 0) FROM rollup_calls r, q WHERE r.branch_id = b.id AND r.period_kind = q.k),"
    "  (SELECT coalesce(sum(complaints), 0) FROM rollup_complaints r, q WHERE r.branch_id = b.id AND r.period_kind = q.k),"
    "  (SELECT coalesce(sum(responses), 0) FROM rollup_surveys r, q WHERE r.branch_id = b.id AND r.period_kind = q.k),"
    "  (SELECT coalesce(sum(gained + lost), 0) FROM rollup_customers r, q WHERE r.branch_id = b.id AND r.period_kind = q.k),"
    "  s.n, s.sum, s.sumsq, v.n, v.p, v.d"
    " FROM branches b"
    " LEFT JOIN (SELECT outlet_id, sum(n) AS n, sum(score_sum) AS sum, sum(score_sumsq) AS sumsq"
    "   FROM rollup_scores WHERE outlet_kind = 'branch' AND period_kind = 'quarter' AND section = ''"
    "   GROUP BY 1) s ON s.outlet_id = b.id"
    " LEFT JOIN (SELECT branch_id, sum(nps_n) AS n, sum(promoters) AS p, sum(detractors) AS d"
    "   FROM rollup_surveys WHERE period_kind = 'quarter' GROUP BY 1) v ON v.branch_id = b.id"
    " WHERE b.active ORDER BY b.code";

static int s_summary(PGconn *conn, int argc, char **argv, FILE *out, bm_err_t *err_out)
{
    s_ctx_t c;
    int rc = s_start(&c, conn, out, err_out, argc, argv, s_summary_options, 0, s_summary_usage,
                     "month");
    if (rc >= 0)
        return rc;
    if ((rc = s_open(&c)) >= 0)
        return rc;
    bm_err_t err;
    PGresult *res = PQexec(c.conn, s_summary_sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, c.conn, "reading the summary", &err);
        PQclear(res);
        s_fail(&c, &err);
        s_close(&c);
        return 1;
    }
    static const char *const cols[] = {"branch", "region", "people_counts", "receipts",
                                       "queue_tickets", "phone_calls", "complaints", "surveys",
                                       "customer_changes", "evaluations", "ms_score",
                                       "ms_score_low_n", "nps", "nps_n", "nps_low_n"};
    bm_table_t *t = bm_table_new("summary", 15, cols);
    bm_report_t *rep = bm_report_new();
    for (int r = 0; t && rep && r < PQntuples(res); r++) {
        int id = atoi(PQgetvalue(res, r, 0)), b = -1;
        for (int x = 0; x < c.ref->nbranches && b < 0; x++)
            if (c.ref->branches[x].id == id)
                b = x;
        if (b < 0 || !s_in_scope(&c, b))
            continue;
        bm_table_add_row(t);
        bm_table_set_text(t, 0, c.ref->branches[b].code);
        bm_table_set_text(t, 1, s_region_code(c.ref, c.ref->branches[b].region));
        for (int k = 1; k <= 7; k++)
            bm_table_set_int(t, k + 1, atoll(PQgetvalue(res, r, k)));
        double sn = strtod(PQgetvalue(res, r, 8), NULL);
        bm_table_set_int(t, 9, (long long)sn);
        bm_estimate_t ms = bm_est_mean(sn, strtod(PQgetvalue(res, r, 9), NULL),
                                       strtod(PQgetvalue(res, r, 10), NULL));
        if (ms.has_value)
            bm_table_set_num(t, 10, ms.value, 1);
        bm_table_set_bool(t, 11, sn < 3);
        double vn = strtod(PQgetvalue(res, r, 11), NULL);
        bm_estimate_t nps = bm_est_nps(strtod(PQgetvalue(res, r, 12), NULL),
                                       strtod(PQgetvalue(res, r, 13), NULL), vn);
        if (nps.has_value)
            bm_table_set_num(t, 12, nps.value, 1);
        bm_table_set_int(t, 13, (long long)vn);
        bm_table_set_bool(t, 14, vn < 30);
    }
    PQclear(res);
    if (!t || !rep) {
        bm_table_destroy(&t);
        bm_report_destroy(&rep);
        bm_err_set(&err, "out of memory");
        s_fail(&c, &err);
        s_close(&c);
        return 1;
    }
    bm_report_add(rep, &t);
    bm_report_note(rep, "all periods, from the rollups; ms_score = mean of the scored "
                        "evaluations (low_n below 3), nps low_n below 30 answers");
    /* Shopper evaluations count only once approved (docs/workflow.md). */
    PGresult *pend = PQexec(c.conn, "SELECT count(*) FROM evaluations "
                                    "WHERE review_status IN ('received', 'on_hold')");
    if (PQresultStatus(pend) == PGRES_TUPLES_OK && PQntuples(pend) == 1)
        bm_report_note(rep, "pending review: %s evaluations (received or on hold, not counted; "
                            "branchmark review list)", PQgetvalue(pend, 0, 0));
    PQclear(pend);
    rc = s_print(&c, &rep);
    s_close(&c);
    return rc;
}

/* ---- metrics ------------------------------------------------------------ */

static const char *s_interval_name(bm_family_t f)
{
    switch (f) {
    case BM_FAM_PROPORTION:
    case BM_FAM_RATE1000:
        return "Wilson";
    case BM_FAM_NPS:
        return "normal, Var = pP + pD - (pP - pD)^2";
    case BM_FAM_MEAN:
        return "Student t";
    case BM_FAM_QUANTILE:
        return "order statistics";
    case BM_FAM_COUNT:
    default:
        return "none";
    }
}

static const char s_metrics_usage[] =
    "usage: branchmark metrics [--format table|csv|json]\n"
    "Lists the metrics (names for --metric) and their definitions; see docs/metrics.md.\n";
static const char s_metrics_options[] = " format ";

static int s_metrics(PGconn *conn, int argc, char **argv, FILE *out, bm_err_t *err_out)
{
    s_ctx_t c;
    int rc = s_start(&c, conn, out, err_out, argc, argv, s_metrics_options, 0, s_metrics_usage,
                     "month");
    if (rc >= 0)
        return rc;
    static const char *const cols[] = {"metric", "unit", "better", "interval", "n_counts",
                                       "min_n", "definition"};
    bm_table_t *t = bm_table_new("metrics", 7, cols);
    bm_report_t *rep = bm_report_new();
    if (!t || !rep) {
        bm_table_destroy(&t);
        bm_report_destroy(&rep);
        bm_err_set(c.err, "out of memory");
        return 1;
    }
    for (const bm_metric_t *m = bm_metrics; m->name; m++) {
        bm_table_add_row(t);
        bm_table_set_text(t, 0, m->name);
        bm_table_set_text(t, 1, m->unit);
        bm_table_set_text(t, 2, m->higher_better ? "higher" : "lower");
        bm_table_set_text(t, 3, s_interval_name(m->family));
        bm_table_set_text(t, 4, m->sample);
        bm_table_set_int(t, 5, (long long)m->default_min_n);
        bm_table_set_text(t, 6, m->description);
    }
    bm_report_add(rep, &t);
    rc = 0;
    return s_print(&c, &rep);
}

/* ---- the command table (query_cmd.h) and the CLI's wrappers --------------- */

static const struct {
    const char *name;
    int (*run)(PGconn *conn, int argc, char **argv, FILE *out, bm_err_t *err);
    const char *options;
    const char *usage;
} s_commands[] = {
    {"rank", s_rank, s_rank_options, s_rank_usage},
    {"scorecard", s_scorecard, s_scorecard_options, s_scorecard_usage},
    {"competitors", s_competitors, s_competitors_options, s_competitors_usage},
    {"alerts", s_alerts, s_alerts_options, s_alerts_usage},
    {"summary", s_summary, s_summary_options, s_summary_usage},
    {"metrics", s_metrics, s_metrics_options, s_metrics_usage},
    {NULL, NULL, NULL, NULL},
};

static int s_command(const char *name)
{
    for (int i = 0; name && s_commands[i].name; i++)
        if (!strcmp(s_commands[i].name, name))
            return i;
    return -1;
}

int bm_query_run(PGconn *conn, int argc, char **argv, FILE *out, bm_err_t *err)
{
    int k = argc > 0 ? s_command(argv[0]) : -1;
    if (k < 0) {
        bm_err_set(err, "unknown query command \"%s\"", argc > 0 ? argv[0] : "");
        return BM_QUERY_USAGE;
    }
    return s_commands[k].run(conn, argc, argv, out, err);
}

int bm_query_option_allowed(const char *cmd, const char *name)
{
    int k = s_command(cmd);
    if (k < 0 || !name || !strcmp(name, "db") || !strcmp(name, "help"))
        return 0;
    char key[40];
    int n = snprintf(key, sizeof key, " %s ", name);
    return n > 0 && (size_t)n < sizeof key && strstr(s_commands[k].options, key) != NULL;
}

int bm_query_option_is_flag(const char *name)
{
    for (int k = 0; s_options[k].name; k++)
        if (!strcmp(s_options[k].name, name))
            return s_options[k].flag;
    return 0;
}

const char *bm_query_options(const char *cmd)
{
    int k = s_command(cmd);
    return k < 0 ? NULL : s_commands[k].options;
}

/* The CLI of every query command (argv[0] names it): stdout, errors on
 * stderr as "branchmark CMD: message", the usage after an argument of the
 * wrong shape. */
int bm_cmd_query(int argc, char **argv)
{
    bm_err_t err;
    bm_err_clear(&err);
    int rc = bm_query_run(NULL, argc, argv, stdout, &err);
    if (rc != 0) {
        fprintf(stderr, "branchmark %s: %s\n", argv[0], err.msg);
        if (rc == BM_QUERY_USAGE) {
            int k = s_command(argv[0]);
            if (k >= 0)
                fputs(s_commands[k].usage, stderr);
            rc = 2;
        }
    }
    return rc;
}
