/* render_competitors: the competitor gap table (also the scorecard's) and
 * the competitors report's layout. */
#include <stdio.h>

#include "render_int.h"

static void s_scope_text(const bm_gap_row_t *g, const bm_q_ref_t *ref, char *scope, size_t ss,
                         char *versus, size_t vs)
{
    const char *plural = g->outlets == 1 ? "" : "s";
    switch (g->scope) {
    case BM_GAP_BRANCH:
        snprintf(scope, ss, "branch %s", ref->branches[g->index].code);
        break;
    case BM_GAP_REGION:
        snprintf(scope, ss, "region %s", ref->regions[g->index].code);
        break;
    case BM_GAP_CHAIN:
    default:
        snprintf(scope, ss, "chain %s", ref->chain_code);
        break;
    }
    if (g->versus == BM_GAP_VS_RADIUS)
        snprintf(versus, vs, "within %g km (%d outlet%s)", g->radius_km, g->outlets, plural);
    else if (g->versus == BM_GAP_VS_REGION)
        snprintf(versus, vs, "region %s (%d outlet%s)",
                 bm_report_region_code(ref, g->versus_region), g->outlets, plural);
    else
        snprintf(versus, vs, "all competitors (%d outlet%s)", g->outlets, plural);
}

static void s_gap_row(bm_table_t *t, const bm_gap_row_t *g, const bm_q_ref_t *ref)
{
    char scope[64], versus[96];
    s_scope_text(g, ref, scope, sizeof scope, versus, sizeof versus);
    bm_table_add_row(t);
    bm_table_set_text(t, 0, scope);
    bm_table_set_text(t, 1, versus);
    bm_table_set_text(t, 2, g->section[0] ? g->section : "(overall)");
    if (g->own.has_value)
        bm_table_set_num(t, 3, g->own.value, 1);
    bm_table_set_int(t, 4, (long long)g->own.n);
    if (g->comp.has_value)
        bm_table_set_num(t, 5, g->comp.value, 1);
    bm_table_set_int(t, 6, (long long)g->comp.n);
    if (g->has_gap)
        bm_table_set_num(t, 7, g->gap, 1);
    if (g->has_ci) {
        bm_table_set_num(t, 8, g->gap_lo, 1);
        bm_table_set_num(t, 9, g->gap_hi, 1);
        bm_table_set_arrow(t, 10, g->significant.arrow);
    }
    bm_table_set_bool(t, 11, g->low_n);
    bm_render_q(t, 12, &g->significant);
}

bm_table_t *bm_render_gap_table(const bm_gaps_t *gaps, const bm_q_ref_t *ref)
{
    static const char *const cols[] = {"scope", "versus", "section", "own", "own_n",
                                       "competitors", "competitors_n", "gap", "gap_low",
                                       "gap_high", "significant", "low_n", "q"};
    bm_table_t *t = bm_table_new("competitor_gaps", 13, cols);
    for (size_t i = 0; t && i < gaps->nrows; i++)
        s_gap_row(t, &gaps->rows[i], ref);
    return t;
}

int bm_render_competitors(const bm_competitors_result_t *r, bm_report_t *rep)
{
    bm_table_t *t = bm_render_gap_table(&r->gaps, r->ref);
    bm_table_t *per = bm_render_period_table(r->kind, r->cur, &r->status);
    if (!t || !per) {
        bm_table_destroy(&t);
        bm_table_destroy(&per);
        return -1;
    }
    bm_report_add(rep, &t);
    bm_report_add(rep, &per);
    char label[32];
    bm_report_note(rep, "%s %s; scores in %% (mystery-shopping score, same questionnaires); "
                        "gap = own - competitors with a 95%% Welch interval; low_n = fewer than "
                        "%g evaluations on a side", bm_period_name(r->kind),
                   bm_period_label(r->kind, r->cur, label, sizeof label), r->min_n);
    bm_render_tests_note(rep, r->ntests, &r->status, "gaps");
    return 0;
}
