/* rollup: reading rollups into per-entity, per-period aggregates (never
 * raw history), the reference data a report needs to name what it reads,
 * and keyed breakdowns (sections, complaint causes, lost reasons).  All SQL
 * is parameterised; row-level security of the caller's role decides what
 * is visible. */
#ifndef BM_ROLLUP_H
#define BM_ROLLUP_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"
#include "metric.h"
#include "period.h"

/* ---- reference data ----------------------------------------------------- */

typedef struct {
    int id;
    char code[33];
    char name[201];
} bm_q_region_t;

typedef struct {
    int id;
    char code[33];
    char name[201];
    char brand[201];        /* competitors only */
    int region;             /* index into regions */
    int has_geo;
    double lat, lon;
} bm_q_outlet_t;

/* Read-only after bm_q_ref_load. */
typedef struct {
    char chain_code[33];
    char timezone[65];
    bm_q_region_t *regions;
    int nregions;
    bm_q_outlet_t *branches;       /* sorted by code */
    int nbranches;
    bm_q_outlet_t *competitors;    /* sorted by code */
    int ncompetitors;
    int *branch_by_id;             /* indexes into branches, sorted by id */
    int *competitor_by_id;         /* indexes into competitors, sorted by id */
} bm_q_ref_t;

#define BM_Q_MAX_OUTLETS 20000
#define BM_Q_MAX_REGIONS 2000

/* Loads regions, active branches and competitor outlets.  NULL with err on a
 * database error or more than the caps. */
bm_q_ref_t *bm_q_ref_load(PGconn *conn, bm_err_t *err);
/* Like bm_q_ref_load, but only the branches and competitor outlets of the
 * region with code `region` (every region is loaded; an unknown code gives
 * no outlets).  For a command that looks at one region: 200 branches of a
 * 10,000-branch chain instead of all of them. */
bm_q_ref_t *bm_q_ref_load_region(PGconn *conn, const char *region, bm_err_t *err);
void bm_q_ref_destroy(bm_q_ref_t **ref_p);
/* Index by code, or -1. */
int bm_q_ref_branch(const bm_q_ref_t *ref, const char *code);
int bm_q_ref_region(const bm_q_ref_t *ref, const char *code);
int bm_q_ref_competitor(const bm_q_ref_t *ref, const char *code);

/* ---- grids of aggregates ------------------------------------------------ */

/* Filters applied when reading rollups. */
typedef struct {
    const char *channel;        /* "" any; ms_score only */
    const char *segment;        /* "" any; surveys and evaluations */
    const char *section;        /* "" overall; ms_score only */
    int answer_target_s;        /* calls_answered_share, default 20 */
    int competitors;            /* ms_score of competitor outlets instead */
    const char *region;         /* NULL or "": every outlet; else a region code:
                                 * bm_q_fetch reads only that region's rows
                                 * (filtered in SQL) plus the chain totals */
} bm_q_filter_t;

/* A grid of aggregates: entity (branch or competitor index in ref) x period. */
typedef struct bm_q_grid bm_q_grid_t;

/* Reads the rollups of `metric` for periods first..first+(nper-1) of kind.
 * NULL with err on a database error or if the grid would exceed its cap. */
bm_q_grid_t *bm_q_fetch(PGconn *conn, const bm_q_ref_t *ref, const bm_metric_t *m,
                        bm_period_kind_t kind, int64_t first, int nper,
                        const bm_q_filter_t *filter, bm_err_t *err);
void bm_q_grid_destroy(bm_q_grid_t **grid_p);
/* The aggregate of entity e in period p (never NULL; empty when no data).
 * With filter->region set, entities outside the region are empty. */
const bm_q_agg_t *bm_q_cell(const bm_q_grid_t *g, int e, int p);
/* The chain's total in period p: the sum over every active branch (or
 * competitor outlet), whatever filter->region was (then summed by the
 * server).  Never NULL. */
const bm_q_agg_t *bm_q_total(const bm_q_grid_t *g, int p);
size_t bm_q_hist_buckets(const bm_q_grid_t *g);

/* acc += a (for regions, the chain and pooled baselines).  acc->hist must
 * have the same bucket count (or be NULL when a has none). */
void bm_q_agg_add(bm_q_agg_t *acc, const bm_q_agg_t *a, size_t nb);

/* Adds one result row of a metric statement to a: n, x, y, sum, sumsq and
 * currency from column col on, or (nb > 0) the counts array in column col
 * into a->hist (nb buckets).  For readers of statements shaped like the
 * catalogue's (the yardstick, yardstick.h). */
void bm_q_agg_parse(bm_q_agg_t *a, PGresult *res, int r, int col, size_t nb);
/* The histogram buckets the counts arrays of column col need (1..721). */
size_t bm_q_hist_need(const PGresult *res, int col);

/* The latest period_start with data for the metric, in *start.  Returns 1
 * if found, 0 if there is no data at all, -1 with err. */
int bm_q_latest(PGconn *conn, const bm_metric_t *m, bm_period_kind_t kind,
                int64_t *start, bm_err_t *err);

/* ---- keyed breakdowns (sections, complaint causes, lost reasons) -------- */

typedef enum {
    BM_BD_SECTIONS,            /* key section code: n, sum, sumsq of scores */
    BM_BD_COMPLAINT_CATEGORY,  /* key category: x complaints */
    BM_BD_CONTACT_POINT,       /* key contact point: x complaints */
    BM_BD_LOST_REASON,         /* key reason: x lost customers */
    BM_BD_CHANNEL_SECTIONS,    /* key "channel|section" (section "" = the
                                * overall score): n, sum, sumsq of scores,
                                * per outlet and channel (competitor gaps) */
} bm_breakdown_t;

typedef struct {
    int entity;                /* branch (or competitor) index in ref */
    int period;                /* index 0..nper-1 */
    char key[65];
    double n, x, sum, sumsq;
} bm_q_bd_row_t;

#define BM_Q_MAX_BD_ROWS 500000

/* Reads a breakdown for periods first..first+nper-1.  *rows is malloc'd
 * (caller frees).  Returns the row count, or -1 with err. */
int bm_q_breakdown(PGconn *conn, const bm_q_ref_t *ref, bm_breakdown_t what,
                   bm_period_kind_t kind, int64_t first, int nper,
                   const bm_q_filter_t *filter, bm_q_bd_row_t **rows, bm_err_t *err);

/* The sum of a breakdown's rows for entity e (or, e < 0, every entity of
 * region r; r < 0: all), period p (-1: all) and key `key`. */
void bm_q_bd_sum(const bm_q_bd_row_t *rows, int nrows, const bm_q_ref_t *ref, int e, int r,
                 int competitors, int p, const char *key, bm_q_agg_t *out);
/* The distinct keys of the rows (at most cap), in first-seen order; the
 * pointers point into rows. */
int bm_q_bd_keys(const bm_q_bd_row_t *rows, int nrows, const char **keys, int cap);
/* Sorts keys by strcmp. */
void bm_q_keys_sort(const char **keys, int n);
#define BM_Q_MAX_KEYS 256

#endif
