/* render: dispatch of a result to its layout, and the printing (render.h).
 * Owns nothing beyond one call. */
#include "render.h"

#include <math.h>

#include "render_int.h"

void bm_render_figure(bm_table_t *t, int col, int decimals, const bm_figure_t *f)
{
    const bm_estimate_t *e = &f->est;
    if (!e->has_value) {
        bm_table_set_int(t, col + 1, 0);
        bm_table_set_bool(t, col + 4, 1);
        return;
    }
    bm_table_set_num(t, col, e->value, decimals);
    bm_table_set_int(t, col + 1, (long long)llround(e->n));
    if (e->has_ci) {
        bm_table_set_num(t, col + 2, e->lo, decimals);
        bm_table_set_num(t, col + 3, e->hi, decimals);
    }
    bm_table_set_bool(t, col + 4, f->low_n);
}

static int s_layout(const bm_result_t *res, bm_report_t *rep)
{
    switch (res->kind) {
    case BM_REPORT_RANK:
        return bm_render_rank(res->u.rank, rep);
    case BM_REPORT_SCORECARD:
        return bm_render_scorecard(res->u.scorecard, rep);
    case BM_REPORT_COMPETITORS:
        return bm_render_competitors(res->u.competitors, rep);
    case BM_REPORT_ALERTS:
        return bm_render_alerts(res->u.alerts, rep);
    case BM_REPORT_SUMMARY:
        return bm_render_summary(res->u.summary, rep);
    case BM_REPORT_ACTIONS:
        return bm_render_actions(res->u.actions, rep);
    case BM_REPORT_FOLLOWUP:
        return bm_render_followup(res->u.followup, rep);
    case BM_REPORT_METRICS:
    default:
        return bm_render_metrics(rep);
    }
}

bm_report_t *bm_render_build(const bm_result_t *res, bm_err_t *err)
{
    bm_report_t *rep = bm_report_new();
    if (!rep || s_layout(res, rep) < 0) {
        bm_report_destroy(&rep);
        bm_err_set(err, "out of memory");
        return NULL;
    }
    /* Row-level security filters the rollups before any total is formed;
     * a report whose chain lines come from the yardstick says so itself. */
    if (res->scope_limited && !res->chain_whole)
        bm_report_note(rep, "your access is limited to part of the chain: \"chain\" figures "
                            "and rankings cover only the branches you may see");
    else if (res->scope_limited && res->kind != BM_REPORT_RANK)
        bm_report_note(rep, "your access is limited to part of the chain: the chain's figures "
                            "are the whole chain's (aggregates only), every other row covers "
                            "the branches you may see");
    return rep;
}

int bm_render_result(const bm_result_t *res, bm_format_t fmt, FILE *out, bm_err_t *err)
{
    bm_report_t *rep = bm_render_build(res, err);
    if (!rep)
        return -1;
    int rc = 0;
    if (bm_report_print(rep, fmt, out) < 0 || fflush(out) != 0)
        rc = bm_err_set(err, "could not write the output");
    bm_report_destroy(&rep);
    return rc;
}

int bm_render_report(PGconn *conn, const bm_request_t *rq, bm_format_t fmt, FILE *out,
                     bm_err_t *err)
{
    bm_result_t *res = NULL;
    int rc = bm_reports_run(conn, rq, &res, err);
    if (rc == BM_REPORT_OK && bm_render_result(res, fmt, out, err) < 0)
        rc = BM_REPORT_FAILED;
    bm_result_destroy(&res);
    return rc;
}

bm_table_t *bm_render_period_table(bm_period_kind_t kind, int64_t start,
                                   const bm_period_status_t *st)
{
    static const char *const cols[] = {"period", "label", "start", "days", "days_covered",
                                       "partial"};
    bm_table_t *t = bm_table_new("period", 6, cols);
    if (!t)
        return NULL;
    char label[32], day[16];
    bm_table_add_row(t);
    bm_table_set_text(t, 0, bm_period_name(kind));
    bm_table_set_text(t, 1, bm_period_label(kind, start, label, sizeof label));
    bm_table_set_text(t, 2, bm_date_format(start, day, sizeof day));
    bm_table_set_int(t, 3, st->days);
    bm_table_set_int(t, 4, st->covered);
    bm_table_set_bool(t, 5, st->partial);
    return t;
}

void bm_render_tests_note(bm_report_t *rep, int ntests, const bm_period_status_t *st,
                          const char *what)
{
    if (st->partial)
        bm_report_note(rep, "partial period: %d of %d days; its %s are not tested against "
                            "full periods (no arrows)", st->covered, st->days, what);
    bm_report_note(rep, "arrows: %d test%s shown together, Benjamini-Hochberg adjusted (false "
                        "discovery rate 5%%, change_q = adjusted p); none where either side "
                        "is low_n", ntests, ntests == 1 ? "" : "s");
}

void bm_render_q(bm_table_t *t, int col, const bm_verdict_t *v)
{
    if (v->test.tested)
        bm_table_set_num(t, col, v->q, 4);
}
