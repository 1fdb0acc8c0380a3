/* scorecard: every metric of one branch for the current period with its
 * trend over the last N periods and the chain's figure, its section scores,
 * its competitor gaps and its complaint and lost-customer breakdowns
 * (branchmark scorecard, /api/scorecard). */
#ifndef BM_SCORECARD_H
#define BM_SCORECARD_H

#include <stddef.h>
#include <stdint.h>

#include "competitors.h"
#include "report_ctx.h"

typedef struct {
    const bm_metric_t *metric;
    int failed;                 /* no single value (avg_check over several
                                 * currencies): error holds why */
    char error[BM_ERR_MSG_MAX];
    bm_figure_t cur;
    bm_estimate_t prev;
    bm_verdict_t change;
    int has_chain;
    double chain;               /* the chain's value (visible branches) */
    bm_estimate_t *trend;       /* periods entries, oldest first */
} bm_scorecard_metric_t;

typedef struct {
    char section[65];
    bm_figure_t cur;            /* mean score in %, clamped to 0..100 */
    bm_estimate_t prev;
    bm_verdict_t change;
} bm_scorecard_section_t;

/* One key of a count breakdown: current and previous period. */
typedef struct {
    char key[65];
    long long count, previous;
} bm_scorecard_count_t;

typedef enum {
    BM_SC_COMPLAINT_CATEGORIES = 0,
    BM_SC_CONTACT_POINTS,
    BM_SC_LOST_REASONS,
    BM_SC_NCOUNTS
} bm_scorecard_counts_t;

typedef struct {
    bm_q_ref_t *ref;            /* owned */
    int branch;                 /* index into ref->branches */
    bm_period_kind_t kind;
    int64_t cur, first;         /* the current and the oldest trend period */
    bm_period_status_t status;  /* of the current period */
    int ntests;                 /* tests adjusted together (BH) */
    int periods;
    bm_scorecard_metric_t *metrics;     /* one per catalogue entry */
    size_t nmetrics;
    bm_scorecard_section_t *sections;
    size_t nsections;
    double section_min_n;
    bm_gaps_t gaps;
    bm_scorecard_count_t *counts[BM_SC_NCOUNTS];
    size_t ncounts[BM_SC_NCOUNTS];
} bm_scorecard_result_t;

int bm_scorecard_compute(bm_report_ctx_t *ctx, bm_scorecard_result_t **out, bm_err_t *err);
void bm_scorecard_result_destroy(bm_scorecard_result_t **res_p);

#endif
