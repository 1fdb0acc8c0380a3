/* render_scorecard: the scorecard's layout: "metrics" (one row per metric
 * with its trend as text), "sections", "competitor_gaps", the three count
 * breakdowns, and last "trend" (the trend as numbers, for charts). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "render_int.h"

static void s_metric_row(bm_table_t *t, const bm_scorecard_result_t *r,
                         const bm_scorecard_metric_t *row)
{
    const bm_metric_t *m = row->metric;
    bm_table_add_row(t);
    bm_table_set_text(t, 0, m->name);
    bm_table_set_text(t, 1, m->unit);
    if (row->failed) {
        bm_table_set_text(t, 10, row->error);
        return;
    }
    bm_render_figure(t, 2, m->decimals, &row->cur);
    if (row->prev.has_value)
        bm_table_set_num(t, 7, row->prev.value, m->decimals);
    bm_table_set_arrow(t, 8, row->change.arrow);
    bm_render_q(t, 11, &row->change);
    if (row->has_chain)
        bm_table_set_num(t, 9, row->chain, m->decimals);
    char trend[24 * 16] = "", v[32];
    for (int p = 0; p < r->periods; p++) {
        const bm_estimate_t *ex = &row->trend[p];
        if (ex->has_value)
            bm_format_fixed(ex->value, m->decimals, v, sizeof v);
        else
            snprintf(v, sizeof v, "-");
        size_t len = strlen(trend);
        snprintf(trend + len, sizeof trend - len, "%s%s", p ? " " : "", v);
    }
    bm_table_set_text(t, 10, trend);
}

static void s_trend_rows(bm_table_t *tt, const bm_scorecard_result_t *r,
                         const bm_scorecard_metric_t *row)
{
    const bm_metric_t *m = row->metric;
    for (int p = 0; !row->failed && p < r->periods; p++) {
        const bm_estimate_t *ex = &row->trend[p];
        char plabel[32];
        bm_table_add_row(tt);
        bm_table_set_text(tt, 0, m->name);
        bm_table_set_text(tt, 1, bm_period_label(r->kind, bm_period_add(r->kind, r->first, p),
                                                 plabel, sizeof plabel));
        if (!ex->has_value) {
            bm_table_set_int(tt, 3, 0);
            continue;
        }
        bm_table_set_num(tt, 2, ex->value, m->decimals);
        bm_table_set_int(tt, 3, (long long)llround(ex->n));
        if (ex->has_ci) {
            bm_table_set_num(tt, 4, ex->lo, m->decimals);
            bm_table_set_num(tt, 5, ex->hi, m->decimals);
        }
    }
}

static bm_table_t *s_section_table(const bm_scorecard_result_t *r)
{
    static const char *const cols[] = {"section", "score", "n", "ci_low", "ci_high", "low_n",
                                       "previous", "arrow", "change_q"};
    bm_table_t *t = bm_table_new("sections", 9, cols);
    for (size_t i = 0; t && i < r->nsections; i++) {
        const bm_scorecard_section_t *s = &r->sections[i];
        bm_table_add_row(t);
        bm_table_set_text(t, 0, s->section);
        bm_render_figure(t, 1, 1, &s->cur);
        if (s->prev.has_value)
            bm_table_set_num(t, 6, s->prev.value, 1);
        bm_table_set_arrow(t, 7, s->change.arrow);
        bm_render_q(t, 8, &s->change);
    }
    return t;
}

static bm_table_t *s_count_table(const bm_scorecard_result_t *r, bm_scorecard_counts_t which)
{
    static const char *const names[BM_SC_NCOUNTS][2] = {
        [BM_SC_COMPLAINT_CATEGORIES] = {"complaint_categories", "category"},
        [BM_SC_CONTACT_POINTS] = {"complaint_contact_points", "contact_point"},
        [BM_SC_LOST_REASONS] = {"lost_reasons", "reason"},
    };
    const char *cols[] = {names[which][1], "count", "previous", "change"};
    bm_table_t *t = bm_table_new(names[which][0], 4, cols);
    for (size_t i = 0; t && i < r->ncounts[which]; i++) {
        const bm_scorecard_count_t *c = &r->counts[which][i];
        bm_table_add_row(t);
        bm_table_set_text(t, 0, c->key);
        bm_table_set_int(t, 1, c->count);
        bm_table_set_int(t, 2, c->previous);
        bm_table_set_int(t, 3, c->count - c->previous);
    }
    return t;
}

/* Adds *t to rep; -1 if it is NULL (out of memory). */
static int s_add(bm_report_t *rep, bm_table_t *t)
{
    if (!t)
        return -1;
    bm_report_add(rep, &t);
    return 0;
}

static void s_notes(const bm_scorecard_result_t *r, bm_report_t *rep)
{
    const bm_q_outlet_t *br = &r->ref->branches[r->branch];
    char label[32];
    bm_report_note(rep, "branch %s (%s), region %s; %s %s; trend = the last %d periods, oldest "
                        "first (- = no data)", br->code, br->name,
                   bm_report_region_code(r->ref, br->region), bm_period_name(r->kind),
                   bm_period_label(r->kind, r->cur, label, sizeof label), r->periods);
    bm_report_note(rep, "low_n = n below the metric's minimum (see branchmark metrics)");
    bm_render_tests_note(rep, r->ntests, &r->status, "changes");
}

int bm_render_scorecard(const bm_scorecard_result_t *r, bm_report_t *rep)
{
    static const char *const cols[] = {"metric", "unit", "value", "n", "ci_low", "ci_high",
                                       "low_n", "previous", "arrow", "chain", "trend",
                                       "change_q"};
    static const char *const tcols[] = {"metric", "period", "value", "n", "ci_low", "ci_high"};
    bm_table_t *t = bm_table_new("metrics", 12, cols);
    bm_table_t *tt = bm_table_new("trend", 6, tcols);
    if (!t || !tt) {
        bm_table_destroy(&t);
        bm_table_destroy(&tt);
        return -1;
    }
    for (size_t i = 0; i < r->nmetrics; i++) {
        s_metric_row(t, r, &r->metrics[i]);
        s_trend_rows(tt, r, &r->metrics[i]);
    }
    bm_report_add(rep, &t);
    int rc = s_add(rep, s_section_table(r)) | s_add(rep, bm_render_gap_table(&r->gaps, r->ref));
    for (int k = 0; k < BM_SC_NCOUNTS; k++)
        rc |= s_add(rep, s_count_table(r, (bm_scorecard_counts_t)k));
    /* Last, so the tables before it keep their order in text and CSV. */
    bm_report_add(rep, &tt);
    rc |= s_add(rep, bm_render_period_table(r->kind, r->cur, &r->status));
    s_notes(r, rep);
    return rc;
}
