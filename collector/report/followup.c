/* followup: the measured follow-up of a done action (followup.h).  Owns
 * the result it returns. */
#include "followup.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

const char *bm_fu_verdict_name(bm_fu_verdict_t v)
{
    static const char *const names[] = {"not_done", "waiting", "too_little_data",
                                        "not_testable", "improved", "no_detectable_change",
                                        "worse"};
    return (int)v >= 0 && (size_t)v < sizeof names / sizeof names[0] ? names[v] : "?";
}

/* after - before of one side, with a Welch interval when both sides have
 * a standard error. */
static void s_side(const bm_estimate_t *before, const bm_estimate_t *after, double min_n,
                   bm_fu_side_t *s)
{
    s->before = bm_figure(before, min_n);
    s->after = bm_figure(after, min_n);
    if (!before->has_value || !after->has_value || before->se <= 0 || after->se <= 0)
        return;
    s->has_change = 1;
    s->change = after->value - before->value;
    s->se = sqrt(before->se * before->se + after->se * after->se);
    /* Welch-Satterthwaite when both have degrees of freedom, else normal. */
    s->df = before->df > 0 && after->df > 0
                ? pow(s->se, 4) / (pow(before->se, 4) / before->df + pow(after->se, 4) / after->df)
                : 0;
    double c = bm_t95(s->df);
    s->lo = s->change - c * s->se;
    s->hi = s->change + c * s->se;
}

void bm_followup_did(const bm_estimate_t *b_before, const bm_estimate_t *b_after,
                     const bm_estimate_t *c_before, const bm_estimate_t *c_after,
                     double min_n, int higher_better, bm_followup_result_t *res)
{
    s_side(b_before, b_after, min_n, &res->branch);
    s_side(c_before, c_after, min_n, &res->versus);
    const bm_fu_side_t *b = &res->branch, *c = &res->versus;
    const char *thin = b->before.low_n ? "the branch before the action"
                       : b->after.low_n ? "the branch after the action"
                       : c->before.low_n ? "the comparison branches before the action"
                       : c->after.low_n ? "the comparison branches after the action" : NULL;
    if (thin || !b->has_change || !c->has_change) {
        res->verdict = BM_FU_THIN;
        snprintf(res->reason, sizeof res->reason, "too little data: %s %s",
                 thin ? thin : "one of the four figures",
                 thin ? "has n below the metric's minimum" : "has no standard error");
        return;
    }
    res->has_effect = 1;
    res->effect = b->change - c->change;
    res->se = sqrt(b->se * b->se + c->se * c->se);
    /* The four estimates are independent samples (other periods or other
     * branches); Welch-Satterthwaite over the four when all have df. */
    double df = 0;
    if (b_before->df > 0 && b_after->df > 0 && c_before->df > 0 && c_after->df > 0) {
        const bm_estimate_t *e[4] = {b_before, b_after, c_before, c_after};
        double den = 0;
        for (int i = 0; i < 4; i++)
            den += pow(e[i]->se, 4) / e[i]->df;
        df = pow(res->se, 4) / den;
    }
    res->df = df;
    double crit = bm_t95(df);
    res->lo = res->effect - crit * res->se;
    res->hi = res->effect + crit * res->se;
    int dir = res->lo > 0 ? 1 : res->hi < 0 ? -1 : 0;
    res->verdict = dir == 0 ? BM_FU_NO_CHANGE
                   : (dir > 0) == (higher_better != 0) ? BM_FU_IMPROVED : BM_FU_WORSE;
    res->reason[0] = '\0';
}

/* Today in the chain's time zone. */
static int s_today(PGconn *conn, int64_t *today, bm_err_t *err)
{
    PGresult *res = PQexec(conn, "SELECT (now() AT TIME ZONE bm_chain_timezone())::date");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        bm_db_result_err(res, conn, "reading today's date", err);
        PQclear(res);
        return -1;
    }
    int rc = bm_date_parse(PQgetvalue(res, 0, 0), today, err);
    PQclear(res);
    return rc;
}

/* Sums of the branch (side 0) and the comparison set (side 1), before
 * (index 0) and after (index 1), and the pools of within-branch variance
 * of the comparison set (scores borrow them as a floor, as elsewhere). */
typedef struct {
    bm_q_agg_t agg[2][2];
    bm_pool_t pool[2];
    uint32_t *hist;             /* 4 x nb buckets, quantile metrics */
} s_sums_t;

static int s_sums_init(s_sums_t *s, size_t nb)
{
    memset(s, 0, sizeof *s);
    if (!nb)
        return 0;
    if (!(s->hist = calloc(4 * nb, sizeof *s->hist)))
        return -1;
    for (int i = 0; i < 4; i++)
        s->agg[i / 2][i % 2].hist = s->hist + (size_t)i * nb;
    return 0;
}

/* Fills the sums from the grid (period index 0 = res->before_first);
 * branches with skip[e] set are left out of the comparison. */
static void s_sum(const bm_q_grid_t *g, const bm_followup_result_t *res, int b,
                  const unsigned char *skip, s_sums_t *s)
{
    const bm_q_ref_t *ref = res->ref;
    size_t nb = bm_q_hist_buckets(g);
    int region = ref->branches[b].region, k = res->periods;
    for (int e = 0; e < ref->nbranches; e++) {
        int side = e == b ? 0 : 1;
        if (side == 1 && (skip[e] || (!res->versus_chain && ref->branches[e].region != region)))
            continue;
        for (int when = 0; when < 2; when++) {
            bm_q_agg_t one;
            memset(&one, 0, sizeof one);
            int from = when ? k + 1 : 0, to = when ? k + res->nafter : k - 1;
            for (int p = from; p <= to; p++) {
                bm_q_agg_add(&s->agg[side][when], bm_q_cell(g, e, p), nb);
                bm_q_agg_add(&one, bm_q_cell(g, e, p), 0);
            }
            bm_q_pool_add(res->metric, &s->pool[when], &one);
        }
    }
}

/* The comparison set's size: branches other than b (of its region, or
 * all) that are not skipped. */
static int s_versus_count(const bm_q_ref_t *ref, int b, int chain, const unsigned char *skip)
{
    int n = 0;
    for (int e = 0; e < ref->nbranches; e++)
        n += e != b && !(skip && skip[e]) &&
             (chain || ref->branches[e].region == ref->branches[b].region);
    return n;
}

/* Marks in skip the branches that had a done action of their own on the
 * same metric (and section) taking effect inside the window: their change
 * is not the "no action" change a comparison needs (in the test data, a
 * region's other branch with a step of its own made a drift-only branch
 * look worse).  The caller's row-level security decides which it sees. */
static int s_skip_treated(PGconn *conn, const bm_followup_result_t *res, unsigned char *skip,
                          bm_err_t *err)
{
    char first[16], last[16], id[24];
    bm_date_format(res->before_first, first, sizeof first);
    bm_date_format(bm_period_add(res->kind, res->action_period, res->periods + 1), last,
                   sizeof last);
    snprintf(id, sizeof id, "%lld", (long long)res->action.id);
    const char *p[5] = {id, res->action.metric, res->action.section, first, last};
    PGresult *pg = PQexecParams(conn,
                                "SELECT DISTINCT b.code FROM actions a"
                                " JOIN branches b ON b.id = a.branch_id"
                                " WHERE a.id <> $1::bigint AND a.status = 'done'"
                                "   AND a.metric = $2 AND coalesce(a.section, '') = $3"
                                "   AND a.effective_date >= $4::date AND a.effective_date < $5::date",
                                5, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(pg) != PGRES_TUPLES_OK) {
        bm_db_result_err(pg, conn, "reading the other actions", err);
        PQclear(pg);
        return -1;
    }
    for (int i = 0; i < PQntuples(pg); i++) {
        int e = bm_q_ref_branch(res->ref, PQgetvalue(pg, i, 0));
        if (e >= 0)
            skip[e] = 1;
    }
    PQclear(pg);
    return 0;
}

/* The measurement of a done action whose periods are known. */
static int s_measure(bm_report_ctx_t *ctx, bm_followup_result_t *res, int b,
                     const unsigned char *skip, bm_err_t *err)
{
    const bm_metric_t *m = res->metric;
    bm_q_filter_t f = bm_report_ctx_filter(ctx, 0);
    f.section = res->action.section;
    bm_q_grid_t *g = bm_q_fetch(ctx->conn, res->ref, m, res->kind, res->before_first,
                                2 * res->periods + 1, &f, err);
    if (!g)
        return -1;
    size_t nb = bm_q_hist_buckets(g);
    s_sums_t s;
    int rc = -1;
    bm_estimate_t e[2][2];
    if (s_sums_init(&s, nb) < 0) {
        bm_err_set(err, "out of memory");
    } else {
        s_sum(g, res, b, skip, &s);
        rc = 0;
        for (int side = 0; rc == 0 && side < 2; side++)
            for (int when = 0; rc == 0 && when < 2; when++)
                rc = bm_q_estimate_pooled(m, &s.agg[side][when], nb,
                                          side == 0 ? &s.pool[when] : NULL, &e[side][when], err);
    }
    if (rc == 0)
        bm_followup_did(&e[0][0], &e[0][1], &e[1][0], &e[1][1], res->min_n, m->higher_better,
                        res);
    free(s.hist);
    bm_q_grid_destroy(&g);
    return rc;
}

/* The periods of a done action, and whether it can be measured yet. */
static int s_periods(bm_report_ctx_t *ctx, bm_followup_result_t *res, bm_err_t *err)
{
    int64_t today;
    if (s_today(ctx->conn, &today, err) < 0)
        return -1;
    int k = res->periods;
    res->action_period = bm_period_start(res->kind, res->action.effective);
    res->before_first = bm_period_add(res->kind, res->action_period, -k);
    res->after_first = bm_period_add(res->kind, res->action_period, 1);
    for (int i = 1; i <= k; i++) {
        int64_t start = bm_period_add(res->kind, res->action_period, i);
        int days = (int)(bm_period_add(res->kind, start, 1) - start), covered;
        if (!bm_period_complete(start, days, today, &covered))
            break;
        res->nafter = i;
    }
    return 0;
}

/* The verdicts that need no data: not done, a count, no comparison,
 * waiting.  1 when one applies. */
static int s_no_measure(bm_followup_result_t *res)
{
    const bm_metric_t *m = res->metric;
    if (strcmp(res->action.status, "done") != 0) {
        res->verdict = BM_FU_NOT_DONE;
        snprintf(res->reason, sizeof res->reason, "the action is %s; its effect is measured "
                 "once it is done", res->action.status);
    } else if (m->family == BM_FAM_COUNT || m->family == BM_FAM_BALANCE) {
        res->verdict = BM_FU_UNTESTABLE;
        snprintf(res->reason, sizeof res->reason, "%s is a count that grows with the branch "
                 "and the number of periods; its change is not tested", m->name);
    } else if (res->versus_branches == 0) {
        res->verdict = BM_FU_THIN;
        snprintf(res->reason, sizeof res->reason, "too little data: no other branch to "
                 "compare with");
    } else if (res->nafter == 0) {
        res->verdict = BM_FU_WAITING;
        snprintf(res->reason, sizeof res->reason, "waiting: no complete %s after the action's "
                 "yet", bm_period_name(res->kind));
    } else {
        return 0;
    }
    return 1;
}

static int s_compute(bm_report_ctx_t *ctx, bm_followup_result_t *res, bm_err_t *err)
{
    int rc = bm_action_load(ctx->conn, ctx->rq->action, &res->action, &res->events,
                            &res->nevents, err);
    if (rc != BM_REPORT_OK)
        return rc;
    res->metric = bm_metric_find(res->action.metric);
    bm_err_t e;
    if (!res->metric || bm_period_parse(res->action.period, &res->kind, &e) < 0) {
        bm_err_set(err, "action %lld: unknown metric \"%s\" or period \"%s\"",
                   (long long)res->action.id, res->action.metric, res->action.period);
        return BM_REPORT_FAILED;
    }
    res->periods = ctx->rq->periods;
    res->min_n = bm_report_ctx_min_n(ctx, res->metric);
    res->ref = bm_report_ctx_take_ref(ctx);
    int b = bm_q_ref_branch(res->ref, res->action.branch);
    if (b < 0) {
        bm_err_set(err, "action %lld: branch \"%s\" is not active", (long long)res->action.id,
                   res->action.branch);
        return BM_REPORT_BAD_ARG;
    }
    unsigned char *skip = calloc((size_t)res->ref->nbranches + 1, 1);
    if (!skip) {
        bm_err_set(err, "out of memory");
        return BM_REPORT_FAILED;
    }
    int mrc = 0;
    if (res->action.has_effective)
        mrc = s_periods(ctx, res, err) == 0 && s_skip_treated(ctx->conn, res, skip, err) == 0
                  ? 0 : -1;
    int chain = ctx->rq->versus_chain;
    if (!chain && s_versus_count(res->ref, b, 0, skip) == 0)
        chain = 1;      /* no other branch in the region: compare with the chain */
    res->versus_chain = chain;
    res->versus_branches = s_versus_count(res->ref, b, chain, skip);
    if (mrc == 0 && !s_no_measure(res)) {
        /* The measurement reads the rollups through ctx, whose reference
         * data the result now holds: lend it back for the fetch. */
        ctx->ref = res->ref;
        mrc = s_measure(ctx, res, b, skip, err);
        ctx->ref = NULL;
    }
    free(skip);
    return mrc < 0 ? BM_REPORT_FAILED : BM_REPORT_OK;
}

int bm_followup_compute(bm_report_ctx_t *ctx, bm_followup_result_t **out, bm_err_t *err)
{
    bm_followup_result_t *res = calloc(1, sizeof *res);
    if (!res) {
        bm_err_set(err, "out of memory");
        return BM_REPORT_FAILED;
    }
    int rc = s_compute(ctx, res, err);
    if (rc != BM_REPORT_OK) {
        bm_followup_result_destroy(&res);
        return rc;
    }
    *out = res;
    return BM_REPORT_OK;
}

void bm_followup_result_destroy(bm_followup_result_t **res_p)
{
    bm_followup_result_t *res = *res_p;
    if (!res)
        return;
    bm_q_ref_destroy(&res->ref);
    free(res->events);
    free(res);
    *res_p = NULL;
}
