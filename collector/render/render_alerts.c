/* render_alerts: the early warnings' layout: the table "alerts", the
 * likely causes as one text per alert. */
#include <stdio.h>
#include <string.h>

#include "render_int.h"

/* "sections: A -3.2, B -1.0; complaint categories: X +2.0" */
static void s_causes_text(const bm_alert_t *a, char *buf, size_t size)
{
    static const char *const labels[] = {"sections: ", "complaint categories: ",
                                         "contact points: "};
    buf[0] = '\0';
    for (int i = 0; i < a->ncauses; i++) {
        const bm_alert_cause_t *c = &a->causes[i];
        int first_of_kind = i == 0 || a->causes[i - 1].kind != c->kind;
        char num[32];
        bm_format_fixed(c->delta, 1, num, sizeof num);    /* the one rounding rule */
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s%s %s%s",
                 !first_of_kind ? ", " : (len ? "; " : ""), first_of_kind ? labels[c->kind] : "",
                 c->key, num[0] == '-' ? "" : "+", num);
    }
}

int bm_render_alerts(const bm_alerts_result_t *r, bm_report_t *rep)
{
    static const char *const cols[] = {"branch", "region", "metric", "current", "n", "baseline",
                                       "baseline_n", "sigmas", "likely_causes"};
    bm_table_t *t = bm_table_new("alerts", 9, cols);
    if (!t)
        return -1;
    for (size_t i = 0; i < r->nalerts; i++) {
        const bm_alert_t *a = &r->alerts[i];
        const bm_q_outlet_t *br = &r->ref->branches[a->branch];
        const bm_metric_t *m = a->metric;
        char causes[512];
        s_causes_text(a, causes, sizeof causes);
        bm_table_add_row(t);
        bm_table_set_text(t, 0, br->code);
        bm_table_set_text(t, 1, bm_report_region_code(r->ref, br->region));
        bm_table_set_text(t, 2, m->name);
        bm_table_set_num(t, 3, a->cur.value, m->decimals);
        bm_table_set_int(t, 4, (long long)a->cur.n);
        bm_table_set_num(t, 5, a->base.value, m->decimals);
        bm_table_set_int(t, 6, (long long)a->base.n);
        bm_table_set_num(t, 7, a->sigmas, 1);
        bm_table_set_text(t, 8, causes);
    }
    bm_report_add(rep, &t);
    char label[32];
    bm_report_note(rep, "%s %s against the previous %d periods pooled; flagged when worse by "
                        "more than 3 standard errors (sigmas < -3) with n at or above the "
                        "metric's minimum", bm_period_name(r->kind),
                   bm_period_label(r->kind, r->cur, label, sizeof label),
                   BM_ALERT_BASELINE_PERIODS);
    return 0;
}
