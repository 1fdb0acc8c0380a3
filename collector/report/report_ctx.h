/* report_ctx: what every report does first and needs throughout: the
 * reference data of what it may name, the region and branch of the request
 * resolved against it, whether the caller's role sees only part of the
 * chain, and the period to report.
 *
 * A context borrows the caller's connection (its PostgreSQL role decides
 * through row-level security what is visible) and owns the reference data;
 * a report's result takes the reference data over (bm_report_ctx_take_ref)
 * so that it can name its rows after the context is gone. */
#ifndef BM_REPORT_CTX_H
#define BM_REPORT_CTX_H

#include <libpq-fe.h>

#include "bm_err.h"
#include "request.h"
#include "rollup.h"

typedef struct {
    PGconn *conn;               /* borrowed */
    const bm_request_t *rq;     /* borrowed */
    bm_q_ref_t *ref;            /* owned */
    int region;                 /* index into ref->regions, -1: all */
    int branch;                 /* index into ref->branches, -1: none */
    int scope_limited;          /* the role sees part of the chain only (RLS) */
} bm_report_ctx_t;

/* Loads reference data (a region's rank: that region's branches only),
 * checks the request's region and branch and reads the access scope.
 * Returns BM_REPORT_OK, BM_REPORT_BAD_ARG ("unknown region \"X\"") or
 * BM_REPORT_FAILED, with err; on failure nothing is left to close. */
int bm_report_ctx_open(bm_report_ctx_t *ctx, PGconn *conn, const bm_request_t *rq,
                       bm_err_t *err);
void bm_report_ctx_close(bm_report_ctx_t *ctx);
/* Hands the reference data over to the caller (who destroys it). */
bm_q_ref_t *bm_report_ctx_take_ref(bm_report_ctx_t *ctx);

/* Whether a period is complete, and how much of it has begun. */
typedef struct {
    int partial;                /* 1: today falls inside it */
    int days;                   /* days in the period */
    int covered;                /* days of it begun by today (<= days) */
} bm_period_status_t;

/* The current period: --at's (complete or not), else the last complete
 * period with data for `only` (NULL: any metric): the latest with data, or
 * the one before it when the latest is still running (a partial month's
 * figures are not comparable with full ones); else today's.  *st (may be
 * NULL) gets its status against today in the chain's time zone.  -1 with
 * err on a database error. */
int bm_report_ctx_period(const bm_report_ctx_t *ctx, const bm_metric_t *only, int64_t *cur,
                         bm_err_t *err);
int bm_report_ctx_period_st(const bm_report_ctx_t *ctx, const bm_metric_t *only, int64_t *cur,
                            bm_period_status_t *st, bm_err_t *err);
/* The minimum n of metric m: the request's, else the metric's default. */
double bm_report_ctx_min_n(const bm_report_ctx_t *ctx, const bm_metric_t *m);
/* 1 if branch index b is in the request's region (or there is none). */
int bm_report_ctx_in_scope(const bm_report_ctx_t *ctx, int b);
/* The rollup filter of the request (competitors: read competitor outlets). */
bm_q_filter_t bm_report_ctx_filter(const bm_report_ctx_t *ctx, int competitors);
/* The code of region index r, "" for -1. */
const char *bm_report_region_code(const bm_q_ref_t *ref, int r);

#endif
