/* render_int: the per-report layouts behind render.h, private to render/.
 * Each fills rep with its tables and notes; 0, or -1 when memory runs out
 * (tables already added stay with rep). */
#ifndef BM_RENDER_INT_H
#define BM_RENDER_INT_H

#include "output.h"
#include "reports.h"

int bm_render_rank(const bm_rank_result_t *r, bm_report_t *rep);
int bm_render_scorecard(const bm_scorecard_result_t *r, bm_report_t *rep);
int bm_render_competitors(const bm_competitors_result_t *r, bm_report_t *rep);
int bm_render_alerts(const bm_alerts_result_t *r, bm_report_t *rep);
int bm_render_summary(const bm_summary_result_t *r, bm_report_t *rep);
int bm_render_metrics(bm_report_t *rep);

/* The competitor gap table (competitors and the scorecard), or NULL. */
bm_table_t *bm_render_gap_table(const bm_gaps_t *gaps, const bm_q_ref_t *ref);

/* Value, n, interval and low-sample cells from column col on (value,
 * n, ci_low, ci_high, low_n). */
void bm_render_figure(bm_table_t *t, int col, int decimals, const bm_figure_t *f);

#endif
