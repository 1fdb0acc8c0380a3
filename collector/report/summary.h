/* summary: per branch, the record counts per kind, the mystery-shopping
 * score and NPS over all periods, read from the rollups, and how many
 * evaluations wait for review (branchmark summary). */
#ifndef BM_SUMMARY_H
#define BM_SUMMARY_H

#include <stddef.h>

#include "report_ctx.h"

#define BM_SUMMARY_KINDS 7      /* people counts .. customer changes */

typedef struct {
    int branch;                 /* index into the result's ref->branches */
    long long records[BM_SUMMARY_KINDS];
    double evaluations;         /* scored evaluations */
    bm_estimate_t ms_score;
    int ms_score_low_n;
    bm_estimate_t nps;
    double nps_n;
    int nps_low_n;
} bm_summary_row_t;

typedef struct {
    bm_q_ref_t *ref;            /* owned */
    bm_summary_row_t *rows;
    size_t nrows;
    int has_pending;
    long long pending;          /* evaluations received or on hold */
} bm_summary_result_t;

int bm_summary_compute(bm_report_ctx_t *ctx, bm_summary_result_t **out, bm_err_t *err);
void bm_summary_result_destroy(bm_summary_result_t **res_p);

#endif
