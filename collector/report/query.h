/* query: the metrics catalogue and reading rollups into per-branch,
 * per-period aggregates (never raw history), plus the period calendar.
 *
 * A metric's aggregate is additive (counts, sums, sums of squares,
 * histogram buckets), so a region or the chain is the sum of its branches.
 * bm_q_estimate turns an aggregate into a value with n and a 95% interval
 * in the metric's display unit (percent for shares).  Definitions:
 * docs/metrics.md.  All SQL is parameterised. */
#ifndef BM_QUERY_H
#define BM_QUERY_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"
#include "stats.h"

/* ---- periods ------------------------------------------------------------ */

typedef enum { BM_PERIOD_DAY = 0, BM_PERIOD_WEEK, BM_PERIOD_MONTH, BM_PERIOD_QUARTER } bm_period_kind_t;

/* "day", "week", "month", "quarter".  -1 with err for anything else. */
int bm_period_parse(const char *name, bm_period_kind_t *out, bm_err_t *err);
const char *bm_period_name(bm_period_kind_t kind);

/* Dates are days since 1970-01-01.  "YYYY-MM-DD" (a real calendar date);
 * -1 with err otherwise. */
int bm_date_parse(const char *s, int64_t *days, bm_err_t *err);
/* Formats as YYYY-MM-DD into buf (>= 11 bytes); returns buf. */
char *bm_date_format(int64_t days, char *buf, size_t size);
/* The first day of the period of `kind` that contains `days` (weeks start
 * on Monday). */
int64_t bm_period_start(bm_period_kind_t kind, int64_t days);
/* The start of the period k periods after (k < 0: before) `start`. */
int64_t bm_period_add(bm_period_kind_t kind, int64_t start, int k);
/* "2026-11", "2026-Q4", "2026-W45" or the date for days. */
char *bm_period_label(bm_period_kind_t kind, int64_t start, char *buf, size_t size);

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

/* ---- metrics ------------------------------------------------------------ */

typedef enum {
    BM_FAM_PROPORTION,   /* x / n, Wilson */
    BM_FAM_NPS,          /* x promoters, y detractors, n answers */
    BM_FAM_MEAN,         /* n, sum, sumsq, t-interval */
    BM_FAM_QUANTILE,     /* histogram */
    BM_FAM_COUNT,        /* x, no interval */
    BM_FAM_RATE1000,     /* 1000 * x / n, Wilson on x / n */
} bm_family_t;

typedef struct {
    const char *name;
    const char *unit;
    int higher_better;
    bm_family_t family;
    const char *sample;         /* what n counts */
    double default_min_n;
    int decimals;
    double quantile;            /* BM_FAM_QUANTILE */
    const char *measure;        /* histogram measure */
    double bucket_width;        /* in the display unit */
    const char *latest_sql;     /* max(period_start) with data, $1 = kind */
    const char *sql;            /* per (id, period_start) aggregates */
    const char *description;
    /* The chain totals per period of the active branches (id, ps, n, x, y,
     * sum, sumsq, currency without the id), for metrics whose `sql` groups
     * rows per branch: summing them directly skips a per-branch grouping
     * of the whole chain.  NULL: the totals are summed over `sql`. */
    const char *totals_sql;
} bm_metric_t;

/* The catalogue, terminated by name == NULL. */
extern const bm_metric_t bm_metrics[];
const bm_metric_t *bm_metric_find(const char *name);

/* The figures of one entity in one period. */
typedef struct {
    double n, x, y, sum, sumsq;
    uint32_t *hist;             /* nb buckets, BM_FAM_QUANTILE only */
    char currency[4];           /* avg_check: "" none yet */
    int mixed_currency;
} bm_q_agg_t;

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

/* Value, n and interval in the display unit.  -1 with err only for
 * avg_check over several currencies. */
int bm_q_estimate(const bm_metric_t *m, const bm_q_agg_t *a, size_t nb,
                  bm_estimate_t *out, bm_err_t *err);
/* +1/-1 when the change from prev to cur is significant at 95%, else 0,
 * given the two estimates bm_q_estimate made of them (every caller has
 * them already; a quantile estimate walks the whole histogram). */
int bm_q_change_est(const bm_metric_t *m, const bm_q_agg_t *cur, const bm_q_agg_t *prev,
                    const bm_estimate_t *cur_est, const bm_estimate_t *prev_est);
/* Divides minor units of the aggregate's currency for display (2 digits by
 * default; 0 JPY, KRW; 3 BHD, KWD, OMR, TND). */
int bm_currency_digits(const char *currency);

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

#endif
