/* cli_plan: `branchmark plan coverage|make`, the visit plan of a period
 * (report/plan.h; docs/workflow.md "Visit planning").  coverage prints
 * what each branch needs, has and has planned, and the visits a plan would
 * add; make writes those visits into visit_plans.  Runs as the caller's
 * role: HQ writes plans, reviewers read them, branch and regional roles
 * get "permission denied" (visit_plans is hidden from them, 004).
 * Exit codes as in cli.h. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "db.h"
#include "output.h"
#include "plan.h"

#define S_MAX_SHOPPERS 10000

static const char s_usage[] =
    "usage: branchmark plan coverage|make [--db CONNINFO] [--period month|week|quarter]\n"
    "         [--at YYYY-MM-DD] [--half-width POINTS] [--basis PERIODS]\n"
    "         [--shoppers REF,REF,...] [--competitor-share F] [--surprise-share F]\n"
    "         [--surprise-window DAYS] [--visits] [--format table|csv|json]\n"
    "\n"
    "Sizes every branch's mystery-shopping evaluations for the period that holds --at\n"
    "(default today) so that its 95% interval half-width reaches --half-width (default\n"
    "5 points), from the pooled within-branch SD of the --basis (3) periods before it,\n"
    "and plans the missing visits: spread over weekdays and weekends and time bands,\n"
    "no shopper at an outlet twice within the programme's lock-out, a share of\n"
    "competitor visits (0.2) and of surprise visits (0.25, a window of 7 days).\n"
    "coverage prints the plan; make also writes it into visit_plans (HQ).\n";

typedef struct {
    const char *db, *format, *period, *at, *half_width, *basis, *shoppers, *comp, *surprise,
        *window;
    bool visits, help;
} s_opts_t;

/* Parses the options after the verb.  Returns -1 when parsed, else an exit code. */
static int s_parse(int argc, char **argv, s_opts_t *o)
{
    static const struct {
        const char *name;
        size_t off;
    } vals[] = {
        {"--format", offsetof(s_opts_t, format)},      {"--period", offsetof(s_opts_t, period)},
        {"--at", offsetof(s_opts_t, at)},              {"--half-width", offsetof(s_opts_t, half_width)},
        {"--basis", offsetof(s_opts_t, basis)},        {"--shoppers", offsetof(s_opts_t, shoppers)},
        {"--competitor-share", offsetof(s_opts_t, comp)},
        {"--surprise-share", offsetof(s_opts_t, surprise)},
        {"--surprise-window", offsetof(s_opts_t, window)},
    };
    for (int i = 2; i < argc; i++) {
        if (bm_cli_db_option(argc, argv, &i, &o->db))
            continue;
        if (!strcmp(argv[i], "--visits")) {
            o->visits = true;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            o->help = true;
            continue;
        }
        size_t k = 0, nv = sizeof vals / sizeof vals[0];
        for (; k < nv; k++) {
            size_t len = strlen(vals[k].name);
            const char **dst = (const char **)((char *)o + vals[k].off);
            if (!strcmp(argv[i], vals[k].name) && i + 1 < argc) {
                *dst = argv[++i];
                break;
            }
            if (!strncmp(argv[i], vals[k].name, len) && argv[i][len] == '=') {
                *dst = argv[i] + len + 1;
                break;
            }
        }
        if (k == nv) {
            fprintf(stderr, "branchmark plan: unknown option or missing value \"%s\"\n%s",
                    argv[i], s_usage);
            return 2;
        }
    }
    return -1;
}

/* A number in [lo, hi]; prints the error and returns -1 otherwise. */
static int s_number(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "branchmark plan: %s \"%s\" is not a number from %g to %g\n", opt, s,
                lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* Splits "A,B,C" in place into names (each 1..64 bytes). */
static int s_split_shoppers(char *list, const char **names, int cap, int *n)
{
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n >= cap || strlen(tok) > 64) {
            fprintf(stderr, "branchmark plan: --shoppers takes at most %d names of at most 64 "
                            "bytes\n", cap);
            return -1;
        }
        names[(*n)++] = tok;
    }
    if (*n == 0) {
        fprintf(stderr, "branchmark plan: --shoppers names no shopper\n");
        return -1;
    }
    return 0;
}

/* The request from the options; an exit code (2) on a bad value, else -1. */
static int s_request(const s_opts_t *o, bm_plan_request_t *rq, char *shop_buf,
                     const char **names, bm_format_t *fmt)
{
    bm_err_t err;
    double v;
    bm_plan_request_init(rq);
    if ((o->format && bm_format_parse(o->format, fmt, &err) < 0) ||
        (o->period && bm_period_parse(o->period, &rq->kind, &err) < 0) ||
        (o->at && bm_date_parse(o->at, &rq->at, &err) < 0)) {
        fprintf(stderr, "branchmark plan: %s\n", err.msg);
        return 2;
    }
    if (rq->kind == BM_PERIOD_DAY) {
        fprintf(stderr, "branchmark plan: --period day is too short to plan (week, month, quarter)\n");
        return 2;
    }
    if (o->half_width) {
        if (s_number("--half-width", o->half_width, 0.1, 100, &rq->half_width) < 0)
            return 2;
    }
    if (o->basis) {
        if (s_number("--basis", o->basis, 1, 24, &v) < 0 || v != floor(v))
            return 2;
        rq->basis_periods = (int)v;
    }
    if ((o->comp && s_number("--competitor-share", o->comp, 0, 0.9, &rq->competitor_share) < 0) ||
        (o->surprise && s_number("--surprise-share", o->surprise, 0, 1, &rq->surprise_share) < 0))
        return 2;
    if (o->window) {
        if (s_number("--surprise-window", o->window, 0, 31, &v) < 0 || v != floor(v))
            return 2;
        rq->surprise_window = (int)v;
    }
    if (o->shoppers) {
        snprintf(shop_buf, (size_t)S_MAX_SHOPPERS * 66, "%s", o->shoppers);
        if (s_split_shoppers(shop_buf, names, S_MAX_SHOPPERS, &rq->nshoppers) < 0)
            return 2;
        rq->shoppers = names;
    }
    return -1;
}

/* Coverage per branch. */
static bm_table_t *s_branch_table(const bm_plan_result_t *r)
{
    static const char *const cols[] = {"branch", "name", "region", "basis_n", "sd", "needed",
                                       "done", "planned", "new", "unstaffed", "short", "capped"};
    bm_table_t *t = bm_table_new("coverage", 12, cols);
    for (int b = 0; t && b < r->ref->nbranches; b++) {
        const bm_q_outlet_t *br = &r->ref->branches[b];
        const bm_plan_row_t *row = &r->rows[b];
        int staffed = row->planned_now - row->unstaffed;
        double shortfall = row->size.needed - row->size.done - row->size.planned - staffed;
        bm_table_add_row(t);
        bm_table_set_text(t, 0, br->code);
        bm_table_set_text(t, 1, br->name);
        bm_table_set_text(t, 2, br->region >= 0 ? r->ref->regions[br->region].code : "");
        bm_table_set_int(t, 3, llround(row->basis_n));
        bm_table_set_num(t, 4, row->size.sd, 1);
        bm_table_set_int(t, 5, row->size.needed);
        bm_table_set_int(t, 6, llround(row->size.done));
        bm_table_set_int(t, 7, llround(row->size.planned));
        bm_table_set_int(t, 8, staffed);
        bm_table_set_int(t, 9, row->unstaffed);
        bm_table_set_int(t, 10, shortfall > 0 ? llround(shortfall) : 0);
        bm_table_set_bool(t, 11, row->size.capped);
    }
    return t;
}

/* Coverage per region and for the chain (the last row). */
static bm_table_t *s_region_table(const bm_plan_result_t *r)
{
    static const char *const cols[] = {"region", "branches", "needed", "done", "planned", "new",
                                       "short"};
    bm_table_t *t = bm_table_new("regions", 7, cols);
    for (int g = 0; t && g <= r->ref->nregions; g++) {
        long long sum[6] = {0};
        for (int b = 0; b < r->ref->nbranches; b++) {
            const bm_plan_row_t *row = &r->rows[b];
            if (g < r->ref->nregions && r->ref->branches[b].region != g)
                continue;
            long long staffed = row->planned_now - row->unstaffed;
            long long left = row->size.needed - llround(row->size.done) -
                             llround(row->size.planned) - staffed;
            sum[0]++;
            sum[1] += row->size.needed;
            sum[2] += llround(row->size.done);
            sum[3] += llround(row->size.planned);
            sum[4] += staffed;
            sum[5] += left > 0 ? left : 0;
        }
        bm_table_add_row(t);
        bm_table_set_text(t, 0, g < r->ref->nregions ? r->ref->regions[g].code
                                                     : r->ref->chain_code);
        for (int k = 0; k < 6; k++)
            bm_table_set_int(t, 1 + k, sum[k]);
    }
    return t;
}

/* The visits this run adds (shopper identity: HQ's eyes only). */
static bm_table_t *s_visit_table(const bm_plan_result_t *r)
{
    static const char *const cols[] = {"outlet_kind", "outlet", "day", "weekday", "time_band",
                                       "kind", "window_days", "shopper"};
    static const char *const dow[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    bm_table_t *t = bm_table_new("visits", 8, cols);
    for (size_t i = 0; t && i < r->nvisits; i++) {
        const bm_plan_visit_t *v = &r->visits[i];
        char day[16];
        bm_table_add_row(t);
        bm_table_set_text(t, 0, v->competitor ? "competitor" : "branch");
        bm_table_set_text(t, 1, v->competitor ? r->ref->competitors[v->outlet].code
                                              : r->ref->branches[v->outlet].code);
        bm_table_set_text(t, 2, bm_date_format(v->day, day, sizeof day));
        bm_table_set_text(t, 3, dow[((v->day + 3) % 7 + 7) % 7]);
        bm_table_set_text(t, 4, bm_band_name(v->band));
        bm_table_set_text(t, 5, v->surprise ? "surprise" : "scheduled");
        bm_table_set_int(t, 6, v->window);
        if (v->shopper >= 0)
            bm_table_set_text(t, 7, r->shoppers[v->shopper]);
    }
    return t;
}

static int s_print(const bm_plan_result_t *r, bool visits, bm_format_t fmt)
{
    bm_report_t *rep = bm_report_new();
    bm_table_t *t[3] = {s_branch_table(r), s_region_table(r), visits ? s_visit_table(r) : NULL};
    int rc = rep && t[0] && t[1] && (!visits || t[2]) ? 0 : 1;
    for (int i = 0; i < 3; i++)
        if (rep && t[i])
            bm_report_add(rep, &t[i]);
        else
            bm_table_destroy(&t[i]);
    char p[32], b0[32];
    size_t comp = 0, unstaffed = 0;
    for (size_t i = 0; i < r->nvisits; i++) {
        comp += r->visits[i].competitor;
        unstaffed += r->visits[i].shopper < 0;
    }
    if (rep) {
        bm_report_note(rep, "plan for %s %s: 95%% half-width %.1f points of ms_score; sd = "
                            "max(own, pooled %.1f) over %d %s(s) from %s; t with %.0f df",
                       bm_period_name(r->kind), bm_period_label(r->kind, r->start, p, sizeof p),
                       r->half_width, r->pool_sd, r->basis_periods, bm_period_name(r->kind),
                       bm_period_label(r->kind, r->basis_first, b0, sizeof b0), r->df);
        bm_report_note(rep, "needed = evaluations for the half-width (at least 3); done = "
                            "approved; planned = earlier plans still to come; new = this plan");
        bm_report_note(rep, "%zu new visits (%zu at competitors), %zu without a free shopper "
                            "(lock-out %d days, %d shoppers)%s", r->nvisits, comp, unstaffed,
                       r->lockout_days, r->nshoppers,
                       r->written ? "; written to visit_plans as " : "; not written (plan make writes)");
        if (r->written)
            bm_report_note(rep, "plan run %s", r->run_id);
    }
    if (rc == 0 && (bm_report_print(rep, fmt, stdout) < 0 || fflush(stdout) != 0)) {
        fprintf(stderr, "branchmark plan: could not write the output\n");
        rc = 1;
    }
    bm_report_destroy(&rep);
    return rc;
}

int bm_cmd_plan(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "coverage") && strcmp(argv[1], "make"))) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            fputs(s_usage, stdout);
            return 0;
        }
        fputs(s_usage, stderr);
        return 2;
    }
    s_opts_t o;
    memset(&o, 0, sizeof o);
    int rc = s_parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.help) {
        fputs(s_usage, stdout);
        return 0;
    }
    bm_plan_request_t rq;
    bm_format_t fmt = BM_FMT_TABLE;
    char *shop_buf = malloc((size_t)S_MAX_SHOPPERS * 66);
    const char **names = calloc(S_MAX_SHOPPERS, sizeof *names);
    if (!shop_buf || !names) {
        free(shop_buf);
        free(names);
        fprintf(stderr, "branchmark plan: out of memory\n");
        return 1;
    }
    rc = s_request(&o, &rq, shop_buf, names, &fmt);
    rq.write = !strcmp(argv[1], "make");
    PGconn *conn = rc < 0 ? bm_cli_connect(o.db, "plan") : NULL;
    if (rc < 0 && conn) {
        bm_plan_result_t *r = NULL;
        bm_err_t err;
        if (bm_plan_compute(conn, &rq, &r, &err) < 0) {
            fprintf(stderr, "branchmark plan: %s\n", err.msg);
            rc = 1;
        } else {
            rc = s_print(r, o.visits || rq.write, fmt);
        }
        bm_plan_result_destroy(&r);
    } else if (rc < 0) {
        rc = 1;
    }
    bm_db_close(&conn);
    free(shop_buf);
    free(names);
    return rc;
}
