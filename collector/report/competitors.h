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

/* The channels of mystery shopping (evaluations.channel, 001_core.sql), in
 * the order gap rows list them; bit c of a row's `channels` is
 * bm_gap_channels[c]. */
#define BM_GAP_CHANNELS 3
extern const char *const bm_gap_channels[BM_GAP_CHANNELS];

typedef struct {
    bm_gap_scope_t scope;
    int index;                  /* branch or region index in the ref; -1 chain */
    bm_gap_versus_t versus;
    int versus_region;          /* BM_GAP_VS_REGION: region index */
    double radius_km;           /* BM_GAP_VS_RADIUS */
    int outlets;                /* competitor outlets compared with */
    char section[65];           /* "" = overall */
    unsigned channels;          /* one bit: that channel alone; two or more:
                                 * the channels both sides have, competitors
                                 * weighted to the own side's channel mix */
    bm_estimate_t own, comp;    /* means in %, intervals clamped to 0..100;
                                 * comp's se is outlet-clustered, df G - 1 */
    int comp_outlets;           /* G: competitor outlets with evaluations */
    int has_gap;
    double gap;
    int has_ci;                 /* own n >= 2 and G >= 2: Welch interval */
    double gap_lo, gap_hi;
    bm_verdict_t significant;   /* Welch test of the gap, untested when
                                 * either side is low-n or has no interval;
                                 * BH-adjusted over the table (arrow +1 /
                                 * -1 / 0) */
    int low_n;                  /* either side below the minimum */
} bm_gap_row_t;

/* One competitor outlet's evaluations in one channel: a cell of the
 * clustered estimate (cells of one outlet must be adjacent). */
typedef struct {
    int outlet;                 /* the cluster */
    int channel;                /* 0..BM_GAP_CHANNELS-1 */
    double n, sum, sumsq;
} bm_gap_cell_t;

/* The competitors' mean over channels: sum over c of w[c] * (mean of
 * channel c), where the w[c] > 0 sum to 1 and each such channel has
 * evaluations (w = {1, 0, 0}: visits alone).  Outlets are the clusters
 * (docs/metrics.md, "Competitor gaps"): the variance is the larger of the
 * cluster-robust one, G/(G-1) * sum over outlets of psi_g^2 with
 * psi_g = sum_c w[c] (sum_gc - n_gc mean_c) / N_c, and the one of
 * independent visits, sum_c w[c]^2 s_c^2 / N_c; df = G - 1.  No interval
 * (se 0) with fewer than 2 outlets.  *clusters gets G. */
bm_estimate_t bm_gap_comp_estimate(const bm_gap_cell_t *cells, size_t ncells,
                                   const double w[BM_GAP_CHANNELS], int *clusters);

/* The gap rows of one section (or the overall score) of one scope: out[0]
 * over the channels both sides have, when there are two or more (own: the
 * mean of those channels' evaluations; competitors: their channel means
 * weighted by the own side's evaluations per channel, so a different
 * channel mix does not show as a gap), out[1 + c] channel c alone, when
 * either side has evaluations in it.  own[c]: the scope's sums in channel
 * c; cells: the competitor outlets' cells of every channel, grouped by
 * outlet; scratch: room for ncells cells.  Fills only the figures (own,
 * comp, channels, comp_outlets, gap, interval, test, low_n) and returns
 * the bit mask of the entries filled (bit 0: out[0]). */
unsigned bm_gap_key_rows(const bm_q_agg_t own[BM_GAP_CHANNELS], const bm_gap_cell_t *cells,
                         size_t ncells, double min_n, bm_gap_cell_t *scratch,
                         bm_gap_row_t out[BM_GAP_CHANNELS + 1]);

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
