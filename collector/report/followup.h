/* followup: the measured follow-up of an action that is done (branchmark
 * action show, GET /api/followup; docs/actions.md).
 *
 * The action's metric (and section) at its branch in the K periods before
 * the period of its effective date against the complete periods after it
 * (at most K; the period of the effective date itself is a transition and
 * counts on neither side), and the same change of the comparison set, the
 * other branches of the branch's region (or of the chain) over the same
 * periods.  The effect is the difference in differences
 *     (after_b - before_b) - (after_c - before_c)
 * so that a chain-wide upswing is not credited to the action.  Its 95%
 * interval is a Welch interval over the four independent estimates (each
 * from report/metric.c, so with the metric's own interval method and
 * standard error).  Verdict: improved / worse when the interval excludes
 * 0 (by the metric's direction), no detectable change otherwise; too
 * little data when any of the four has n below the metric's minimum or no
 * standard error; waiting while no period after the action is complete. */
#ifndef BM_FOLLOWUP_H
#define BM_FOLLOWUP_H

#include <stddef.h>
#include <stdint.h>

#include "actions.h"
#include "report_ctx.h"

typedef enum {
    BM_FU_NOT_DONE = 0,         /* the action is not done (yet) */
    BM_FU_WAITING,              /* done, but no complete period after it yet */
    BM_FU_THIN,                 /* too little data for a verdict */
    BM_FU_UNTESTABLE,           /* a count metric: its change is not tested */
    BM_FU_IMPROVED,
    BM_FU_NO_CHANGE,
    BM_FU_WORSE,
} bm_fu_verdict_t;

/* "not_done", "waiting", "too_little_data", "not_testable", "improved",
 * "no_detectable_change", "worse". */
const char *bm_fu_verdict_name(bm_fu_verdict_t v);

/* One side: the branch or the comparison set, before and after. */
typedef struct {
    bm_figure_t before, after;
    int has_change;
    double change, lo, hi;      /* after - before with its 95% interval */
    double se, df;              /* of the change (df 0: normal) */
} bm_fu_side_t;

typedef struct {
    bm_q_ref_t *ref;            /* owned */
    bm_action_t action;
    bm_action_event_t *events;  /* the trail, oldest first */
    size_t nevents;
    const bm_metric_t *metric;
    bm_period_kind_t kind;
    int periods;                /* K wanted on each side */
    int64_t action_period;      /* start of the period of the effective date */
    int64_t before_first;       /* the K periods before: before_first .. action_period - 1 */
    int64_t after_first;        /* period after the action's */
    int nafter;                 /* complete periods after (0..K) */
    int versus_chain;           /* comparison: 0 the region, 1 the chain */
    int versus_branches;        /* branches in the comparison set */
    double min_n;
    bm_fu_side_t branch, versus;
    int has_effect;
    double effect, lo, hi, se, df;
    bm_fu_verdict_t verdict;
    char reason[240];           /* why there is no verdict ("" when there is one) */
} bm_followup_result_t;

/* The follow-up of ctx's request (rq->action, rq->periods, rq->versus_chain,
 * rq->min_n).  BM_REPORT_OK with *out; BM_REPORT_BAD_ARG when the action is
 * unknown (or hidden by row-level security); BM_REPORT_FAILED with err. */
int bm_followup_compute(bm_report_ctx_t *ctx, bm_followup_result_t **out, bm_err_t *err);
void bm_followup_result_destroy(bm_followup_result_t **res_p);

/* The difference in differences of the four estimates (branch after and
 * before, comparison after and before) into *res's branch, versus, effect
 * and verdict fields; pure, for the unit test.  higher_better from the
 * metric. */
void bm_followup_did(const bm_estimate_t *b_before, const bm_estimate_t *b_after,
                     const bm_estimate_t *c_before, const bm_estimate_t *c_after,
                     double min_n, int higher_better, bm_followup_result_t *res);

#endif
