/* rank: one metric for one period, every branch in scope ranked with its
 * rank range and tie group, plus the region(s) and the chain, each with the
 * change since the previous period (branchmark rank, /api/rank).
 *
 * The rank ranges come from Holm-adjusted pairwise tests in stats.c
 * (bm_rank_entries); which branches are ranked (value and n at or above
 * the minimum) and what is compared with what is decided here.  Branches
 * below the minimum are listed after the ranked ones, not ranked.  The
 * change arrows of one ranking (branches and aggregates) are adjusted
 * together (Benjamini-Hochberg); a partial period's changes are not
 * tested. */
#ifndef BM_RANK_H
#define BM_RANK_H

#include <stddef.h>
#include <stdint.h>

#include "report_ctx.h"
#include "yardstick.h"

typedef struct {
    int branch;                 /* index into the result's ref->branches */
    int ranked;                 /* 0: listed only (no value, or low n) */
    int rank_lo, rank_hi;       /* ranked only: rank range, 1-based */
    int group;                  /* ranked only: number of its rank range */
    int better, worse;          /* ranked only: branches significantly
                                 * better / worse (Holm) */
    bm_figure_t cur;
    bm_estimate_t prev;
    bm_verdict_t change;        /* change since the previous period */
} bm_rank_row_t;

/* The aggregate lines: a region or the chain. */
typedef struct {
    int is_chain;
    int suppressed;             /* yardstick only: too few branches behind it */
    const char *code;           /* region or chain code (in the result's ref) */
    bm_figure_t cur;
    bm_estimate_t prev;
    bm_verdict_t change;
} bm_rank_scope_t;

/* Whether a scoped login's ranking shows its branches' chain-wide ranks. */
typedef enum {
    BM_POS_NONE = 0,            /* not scoped: the ranking is chain-wide itself */
    BM_POS_OK,                  /* positions from the stored chain-wide run */
    BM_POS_NO_RUN,              /* no run stored for the period */
    BM_POS_FILTERED,            /* filters or --min-n: runs cover the default only */
} bm_rank_pos_state_t;

typedef struct {
    bm_q_ref_t *ref;            /* owned: names of the rows */
    const bm_metric_t *metric;
    bm_period_kind_t kind;
    int64_t cur, prev;          /* period starts */
    bm_period_status_t status;  /* of the current period */
    int ntests;                 /* change tests adjusted together */
    int region;                 /* index into ref->regions, -1: the chain */
    int has_channel, has_segment;
    char channel[16], segment[65];      /* the request's filters */
    double min_n;
    bm_rank_row_t *rows;        /* ranked first (best first), then the others */
    size_t nrows;
    bm_rank_scope_t *scopes;    /* the chain first, then regions */
    size_t nscopes;
    /* A scoped login (RLS): the chain and every region come from the
     * database's aggregates (yardstick.h), the ranking itself covers the
     * visible branches, positions give their chain-wide rank ranges. */
    int yardstick;
    bm_rank_pos_state_t pos_state;
    int pos_stale;              /* the chain's n changed since the run */
    bm_yard_positions_t positions;
} bm_rank_result_t;

/* Computes the ranking of ctx's request.  Returns BM_REPORT_OK with *out
 * (the caller destroys it), or BM_REPORT_FAILED with err. */
int bm_rank_compute(bm_report_ctx_t *ctx, bm_rank_result_t **out, bm_err_t *err);
void bm_rank_result_destroy(bm_rank_result_t **res_p);

#endif
