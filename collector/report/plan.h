/* plan: visit planning (issue 15, "Visit planning, so verdicts become
 * possible"): how many evaluations each branch needs in a period so that
 * its mystery-shopping interval reaches a target half-width, and a plan of
 * visits that honours the programme's rules.  docs/metrics.md "Visit
 * planning" gives the formula, docs/workflow.md the rules.
 *
 * The sizing and the allocation are pure functions (unit-tested without a
 * database); bm_plan_compute reads what they need with parameterised SQL
 * as the caller's role and, when asked, writes the visits into visit_plans
 * in one transaction.  visit_plans is not readable by branch and regional
 * roles (004), so for them bm_plan_compute fails with the server's
 * "permission denied". */
#ifndef BM_PLAN_H
#define BM_PLAN_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"
#include "period.h"
#include "rollup.h"

/* ---- sizing ---------------------------------------------------------- */

/* One branch for the sizing. */
typedef struct {
    double ss, df;      /* in: within-(branch, period) squares and degrees of
                         * freedom over the basis periods */
    double done;        /* in: approved evaluations in the target period */
    double planned;     /* in: visits already planned in the target period */
    double sd;          /* out: the SD planned with, max(own, pooled) */
    int needed;         /* out: evaluations the period needs in all */
    int to_plan;        /* out: needed - done - planned, at least 0 */
    int capped;         /* out: needed was cut at BM_PLAN_MAX_N */
} bm_plan_branch_t;

#define BM_PLAN_MAX_N 500

typedef struct {
    double half_width;  /* target half-width of the 95% interval, points */
    double min_n;       /* the metric's minimum sample (3 for ms_score) */
    double prior_sd;    /* SD to plan with when no branch has 2 visits */
} bm_plan_target_t;

/* Sizes every branch with the interval the ranking uses (docs/metrics.md,
 * pooled within-branch SD as a floor): half-width = t(0.975, df) *
 * max(s_i, s_p) / sqrt(n), solved for n: n_i = max(min_n, ceil((t *
 * max(s_i, s_p) / h)^2)).  df is the smaller of the basis pool's and the
 * one the planned period will have, sum(n_i - 1), found by fixed-point
 * iteration, so a small plan is not sized with a t it will not have.
 * *pool_sd and *df_used (may be NULL) get s_p and df (0: normal, from
 * prior_sd).  half_width must be > 0. */
void bm_plan_size(bm_plan_branch_t *b, size_t n, const bm_plan_target_t *tg, double *pool_sd,
                  double *df_used);

/* ---- allocation ------------------------------------------------------- */

typedef enum { BM_BAND_ANY = 0, BM_BAND_MORNING, BM_BAND_MIDDAY, BM_BAND_EVENING } bm_band_t;
const char *bm_band_name(bm_band_t band);

/* A visit, planned or done: outlet (competitor 0/1 and index), day (days
 * since 1970-01-01), window (days after `day` a surprise visit may take
 * place), shopper index (-1: nobody free under the lock-out). */
typedef struct {
    int competitor;
    int outlet;
    int64_t day;
    int window;
    bm_band_t band;
    int surprise;
    int shopper;
} bm_plan_visit_t;

typedef struct {
    int64_t first_day;          /* the target period */
    int days;
    int64_t from_day;           /* nothing before (today) */
    int lockout_days;           /* programme_settings.lockout_days */
    double surprise_share;      /* 0..1 of the visits */
    int surprise_window;        /* days, >= 0 */
    double competitor_share;    /* 0..<1 of all visits planned */
    int ncompetitors;
    int nshoppers;
} bm_plan_rules_t;

/* Plans to_plan[b] visits for each of nbranches branches and the
 * competitor share over the competitor outlets, in the days from
 * max(first_day, from_day) to the period's end: per outlet spread evenly
 * over weekdays and weekends (about 2 in 7 on Saturday or Sunday, at least
 * one once an outlet has 3 or more visits and the period has a weekend
 * day left) and rotated over the time bands; every k-th visit a surprise
 * (window surprise_window days, cut at the period's end); each visit gets
 * the least-loaded shopper who has no visit (in `seen`: past evaluations
 * and plans, and the visits planned here) at that outlet within
 * lockout_days, or -1.  *out is malloc'd (caller frees), *nout visits.
 * Returns 0, -1 when memory runs out or there is no day left. */
int bm_plan_allocate(const int *to_plan, int nbranches, const bm_plan_rules_t *rules,
                     const bm_plan_visit_t *seen, size_t nseen, bm_plan_visit_t **out,
                     size_t *nout, bm_err_t *err);

/* ---- the command --------------------------------------------------------- */

typedef struct {
    bm_period_kind_t kind;      /* default month */
    int64_t at;                 /* a day in the target period (-1: today) */
    double half_width;          /* default BM_PLAN_HALF_WIDTH */
    int basis_periods;          /* periods before the target for the SDs, default 3 */
    double competitor_share;    /* default 0.2 */
    double surprise_share;      /* default 0.25 */
    int surprise_window;        /* default 7 */
    const char *const *shoppers;    /* NULL: every shopper_ref seen in 365 days */
    int nshoppers;
    int write;                  /* insert the new visits into visit_plans */
} bm_plan_request_t;

#define BM_PLAN_HALF_WIDTH 5.0

/* The defaults above. */
void bm_plan_request_init(bm_plan_request_t *rq);

typedef struct {
    bm_plan_branch_t size;
    double basis_n;             /* evaluations in the basis periods */
    int planned_now;            /* visits this run adds */
    int unstaffed;              /* of them, without a free shopper */
} bm_plan_row_t;

typedef struct {
    bm_q_ref_t *ref;            /* owned */
    bm_period_kind_t kind;
    int64_t start;              /* target period */
    int64_t basis_first;
    int basis_periods;
    double half_width, pool_sd, df;
    int lockout_days;
    bm_plan_row_t *rows;        /* one per ref->branches */
    bm_plan_visit_t *visits;    /* the visits this run adds */
    size_t nvisits;
    char **shoppers;            /* names of the shopper indexes */
    int nshoppers;
    int written;                /* 1 when inserted into visit_plans */
    char run_id[40];
} bm_plan_result_t;

/* Reads the basis, sizes, allocates and (rq->write) writes.  Returns 0,
 * or -1 with err (database error, permission denied, no shoppers); on
 * error nothing is written. */
int bm_plan_compute(PGconn *conn, const bm_plan_request_t *rq, bm_plan_result_t **out,
                    bm_err_t *err);
void bm_plan_result_destroy(bm_plan_result_t **res_p);

#endif
