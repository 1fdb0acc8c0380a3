/* yardstick: the whole chain's figures for a login that sees only part of
 * it (migration 011_yardstick.sql).
 *
 * Row-level security hides every branch row outside a regional manager's or
 * a branch's scope, so the sums a report forms itself cover only that
 * scope.  The database offers such logins aggregates instead: the chain's
 * and each region's sums per period (a region with fewer than three
 * branches the caller cannot see is suppressed, and so is what would let
 * it be derived), and the stored chain-wide rank range of the caller's own
 * branches.  This module reads them into the same additive aggregates the
 * report layer estimates (metric.h), so the estimates, intervals and tests
 * are the report's own. */
#ifndef BM_YARDSTICK_H
#define BM_YARDSTICK_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"
#include "rollup.h"

typedef struct {
    int nper, nregions;
    size_t nb;                  /* histogram buckets per cell, 0 if none */
    int chain_suppressed;
    int *region_suppressed;     /* per region index of the ref */
    bm_q_agg_t *chain;          /* nper */
    bm_q_agg_t *regions;        /* nregions x nper */
    uint32_t *hist_pool;
} bm_yard_t;

/* Reads the chain's and the regions' sums of metric m for periods
 * first..first+nper-1 with the filter's channel, segment, section and
 * answer target.  NULL with err on a database error (a role without
 * EXECUTE gets PostgreSQL's "permission denied"). */
bm_yard_t *bm_yard_fetch(PGconn *conn, const bm_q_ref_t *ref, const bm_metric_t *m,
                         bm_period_kind_t kind, int64_t first, int nper,
                         const bm_q_filter_t *filter, bm_err_t *err);
void bm_yard_destroy(bm_yard_t **yard_p);
/* The chain's (r < 0) or region r's sums in period p; never NULL (empty
 * when suppressed or without data). */
const bm_q_agg_t *bm_yard_cell(const bm_yard_t *y, int r, int p);
/* 1 when the chain (r < 0) or region r is suppressed for the caller. */
int bm_yard_suppressed(const bm_yard_t *y, int r);

/* One own branch's stored chain-wide position. */
typedef struct {
    int branch;                 /* index into the ref's branches, -1 unknown */
    int ranked;                 /* 0: not ranked in that run (low n, no data) */
    int rank_lo, rank_hi;
} bm_yard_pos_t;

typedef struct {
    int found;                  /* 0: no run stored for the period */
    int ranked;                 /* branches ranked chain-wide */
    double min_n, chain_n;      /* of the run */
    char computed_at[40];       /* "YYYY-MM-DD HH:MM:SSZ" */
    bm_yard_pos_t *rows;        /* the caller's own active branches */
    int nrows;
} bm_yard_positions_t;

/* Reads the stored positions of the caller's own branches for (m, kind,
 * start) into *out (free with bm_yard_positions_free).  0, or -1 with
 * err. */
int bm_yard_positions(PGconn *conn, const bm_q_ref_t *ref, const bm_metric_t *m,
                      bm_period_kind_t kind, int64_t start, bm_yard_positions_t *out,
                      bm_err_t *err);
void bm_yard_positions_free(bm_yard_positions_t *p);

#endif
