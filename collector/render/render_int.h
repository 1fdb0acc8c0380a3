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
int bm_render_actions(const bm_actions_result_t *r, bm_report_t *rep);
int bm_render_followup(const bm_followup_result_t *r, bm_report_t *rep);

/* The competitor gap table (competitors and the scorecard), or NULL. */
bm_table_t *bm_render_gap_table(const bm_gaps_t *gaps, const bm_q_ref_t *ref);

/* The table "period": kind, label, first day, days, days covered and
 * whether the period is partial (still running), or NULL. */
bm_table_t *bm_render_period_table(bm_period_kind_t kind, int64_t start,
                                   const bm_period_status_t *st);
/* The note every report with tests carries: how many tests were adjusted
 * together, and why a partial period has no arrows. */
void bm_render_tests_note(bm_report_t *rep, int ntests, const bm_period_status_t *st,
                          const char *what);
/* A q-value cell (BH-adjusted p), empty when untested. */
void bm_render_q(bm_table_t *t, int col, const bm_verdict_t *v);

/* Value, n, interval and low-sample cells from column col on (value,
 * n, ci_low, ci_high, low_n). */
void bm_render_figure(bm_table_t *t, int col, int decimals, const bm_figure_t *f);

#endif
