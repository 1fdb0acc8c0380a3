/* reports: the one entry point the front ends call.  A typed request in
 * (request.h), a typed result out: the report's own result struct, tagged
 * with its kind and with whether the caller's role sees only part of the
 * chain.  The CLI and branchmark-web both call bm_reports_run and hand the
 * result to the same renderer (render/render.h), so the two cannot
 * disagree on a number. */
#ifndef BM_REPORTS_H
#define BM_REPORTS_H

#include <libpq-fe.h>

#include "actions.h"
#include "alerts.h"
#include "competitors.h"
#include "followup.h"
#include "rank.h"
#include "request.h"
#include "scorecard.h"
#include "summary.h"

typedef struct {
    bm_report_kind_t kind;
    int scope_limited;          /* RLS: "chain" figures cover the visible part */
    int chain_whole;            /* ... unless the report took them from the
                                 * database's yardstick (and says so) */
    union {
        bm_rank_result_t *rank;
        bm_scorecard_result_t *scorecard;
        bm_competitors_result_t *competitors;
        bm_alerts_result_t *alerts;
        bm_summary_result_t *summary;
        bm_actions_result_t *actions;
        bm_followup_result_t *followup;
    } u;                        /* none for BM_REPORT_METRICS (the catalogue) */
} bm_result_t;

/* Runs request rq on conn (which may be NULL for BM_REPORT_METRICS).
 * Returns BM_REPORT_OK with *out (the caller destroys it), else
 * BM_REPORT_BAD_ARG (unknown region or branch) or BM_REPORT_FAILED with
 * err. */
int bm_reports_run(PGconn *conn, const bm_request_t *rq, bm_result_t **out, bm_err_t *err);
void bm_result_destroy(bm_result_t **res_p);

#endif
