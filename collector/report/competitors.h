/* competitors: the gap between own and competitor mystery-shopping scores,
 * overall and per questionnaire section, for each branch against the
 * competitor outlets of its region (or within a radius where both have
 * coordinates), each region against its competitors and the chain against
 * all of them (branchmark competitors, /api/competitors; the scorecard's
 * gap table is the same computation for one branch). */
#ifndef BM_COMPETITORS_H
#define BM_COMPETITORS_H

#include <stddef.h>
#include <stdint.h>

#include "report_ctx.h"

typedef enum { BM_GAP_BRANCH, BM_GAP_REGION, BM_GAP_CHAIN } bm_gap_scope_t;
typedef enum { BM_GAP_VS_REGION, BM_GAP_VS_RADIUS, BM_GAP_VS_ALL } bm_gap_versus_t;

typedef struct {
    bm_gap_scope_t scope;
    int index;                  /* branch or region index in the ref; -1 chain */
    bm_gap_versus_t versus;
    int versus_region;          /* BM_GAP_VS_REGION: region index */
    double radius_km;           /* BM_GAP_VS_RADIUS */
    int outlets;                /* competitor outlets compared with */
    char section[65];           /* "" = overall */
    bm_estimate_t own, comp;    /* means in %, intervals clamped to 0..100 */
    int has_gap;
    double gap;
    int has_ci;                 /* both sides n >= 2: Welch interval */
    double gap_lo, gap_hi;
    bm_verdict_t significant;   /* Welch test of the gap, untested when
                                 * either side is low-n; BH-adjusted over
                                 * the table (arrow +1 / -1 / 0) */
    int low_n;                  /* either side below the minimum */
} bm_gap_row_t;

typedef struct {
    bm_gap_row_t *rows;
    size_t nrows, cap;
} bm_gaps_t;

/* Appends the gap rows of period `cur` to gaps: only_branch >= 0 that
 * branch only (scorecard); else the branches, regions and chain of ctx's
 * request.  0, or -1 with err. */
int bm_gaps_compute(bm_report_ctx_t *ctx, int64_t cur, int only_branch, bm_gaps_t *gaps,
                    bm_err_t *err);
void bm_gaps_free(bm_gaps_t *gaps);

typedef struct {
    bm_q_ref_t *ref;            /* owned */
    bm_period_kind_t kind;
    int64_t cur;
    double min_n;
    bm_period_status_t status;  /* of the period */
    int ntests;                 /* gap tests adjusted together (BH) */
    bm_gaps_t gaps;
} bm_competitors_result_t;

int bm_competitors_compute(bm_report_ctx_t *ctx, bm_competitors_result_t **out, bm_err_t *err);
void bm_competitors_result_destroy(bm_competitors_result_t **res_p);

#endif
