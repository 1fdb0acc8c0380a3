/* render_summary: the layouts of the summary and of the metrics catalogue. */
#include "render_int.h"

int bm_render_summary(const bm_summary_result_t *r, bm_report_t *rep)
{
    static const char *const cols[] = {"branch", "region", "people_counts", "receipts",
                                       "queue_tickets", "phone_calls", "complaints", "surveys",
                                       "customer_changes", "evaluations", "ms_score",
                                       "ms_score_low_n", "nps", "nps_n", "nps_low_n"};
    bm_table_t *t = bm_table_new("summary", 15, cols);
    if (!t)
        return -1;
    for (size_t i = 0; i < r->nrows; i++) {
        const bm_summary_row_t *row = &r->rows[i];
        const bm_q_outlet_t *br = &r->ref->branches[row->branch];
        bm_table_add_row(t);
        bm_table_set_text(t, 0, br->code);
        bm_table_set_text(t, 1, bm_report_region_code(r->ref, br->region));
        for (int k = 0; k < BM_SUMMARY_KINDS; k++)
            bm_table_set_int(t, k + 2, row->records[k]);
        bm_table_set_int(t, 9, (long long)row->evaluations);
        if (row->ms_score.has_value)
            bm_table_set_num(t, 10, row->ms_score.value, 1);
        bm_table_set_bool(t, 11, row->ms_score_low_n);
        if (row->nps.has_value)
            bm_table_set_num(t, 12, row->nps.value, 1);
        bm_table_set_int(t, 13, (long long)row->nps_n);
        bm_table_set_bool(t, 14, row->nps_low_n);
    }
    bm_report_add(rep, &t);
    bm_report_note(rep, "all periods, from the rollups; ms_score = mean of the scored "
                        "evaluations (low_n below 3), nps low_n below 30 answers");
    if (r->has_pending)
        bm_report_note(rep, "pending review: %lld evaluations (received or on hold, not counted; "
                            "branchmark review list)", r->pending);
    return 0;
}

int bm_render_metrics(bm_report_t *rep)
{
    static const char *const cols[] = {"metric", "unit", "better", "interval", "n_counts",
                                       "min_n", "definition"};
    bm_table_t *t = bm_table_new("metrics", 7, cols);
    if (!t)
        return -1;
    for (const bm_metric_t *m = bm_metrics; m->name; m++) {
        bm_table_add_row(t);
        bm_table_set_text(t, 0, m->name);
        bm_table_set_text(t, 1, m->unit);
        bm_table_set_text(t, 2, m->higher_better ? "higher" : "lower");
        bm_table_set_text(t, 3, bm_metric_interval_name(m->family));
        bm_table_set_text(t, 4, m->sample);
        bm_table_set_int(t, 5, (long long)m->default_min_n);
        bm_table_set_text(t, 6, m->description);
    }
    bm_report_add(rep, &t);
    return 0;
}
