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
    /* Row-level security filters the rollups before any total is formed. */
    if (res->scope_limited)
        bm_report_note(rep, "your access is limited to part of the chain: \"chain\" figures "
                            "and rankings cover only the branches you may see");
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
