/* alerts: early warnings.  A branch's metric in the current period worse
 * than its own baseline (the previous BM_ALERT_BASELINE_PERIODS periods
 * pooled) by more than 3 standard errors, with the sections, complaint
 * categories and contact points that moved most (branchmark alerts,
 * /api/alerts). */
#ifndef BM_ALERTS_H
#define BM_ALERTS_H

#include <stddef.h>
#include <stdint.h>

#include "report_ctx.h"

#define BM_ALERT_BASELINE_PERIODS 6
#define BM_ALERT_MAX_CAUSES 3       /* per kind of cause */

typedef enum { BM_CAUSE_SECTION = 0, BM_CAUSE_COMPLAINT_CATEGORY, BM_CAUSE_CONTACT_POINT } bm_cause_kind_t;

/* A likely cause: a key that moved the wrong way, by `delta` (score
 * points for sections, added complaints per period otherwise). */
typedef struct {
    bm_cause_kind_t kind;
    char key[65];
    double delta;
} bm_alert_cause_t;

typedef struct {
    int branch;                 /* index into the result's ref->branches */
    const bm_metric_t *metric;
    bm_estimate_t cur, base;
    double sigmas;              /* signed distance in standard errors */
    bm_alert_cause_t causes[3 * BM_ALERT_MAX_CAUSES];
    int ncauses;                /* grouped by kind, in kind order */
} bm_alert_t;

typedef struct {
    bm_q_ref_t *ref;            /* owned */
    bm_period_kind_t kind;
    int64_t cur;
    bm_alert_t *alerts;
    size_t nalerts, cap;
} bm_alerts_result_t;

int bm_alerts_compute(bm_report_ctx_t *ctx, bm_alerts_result_t **out, bm_err_t *err);
void bm_alerts_result_destroy(bm_alerts_result_t **res_p);

#endif
