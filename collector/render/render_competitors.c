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

/* "visit", or "visit+call" for the channels both sides have. */
static void s_channel_text(unsigned channels, char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (int c = 0; c < BM_GAP_CHANNELS; c++)
        if (channels & (1u << c)) {
            int w = snprintf(out + len, size - len, "%s%s", len ? "+" : "", bm_gap_channels[c]);
            if (w < 0 || (size_t)w >= size - len)
                return;
            len += (size_t)w;
        }
}

static void s_gap_row(bm_table_t *t, const bm_gap_row_t *g, const bm_q_ref_t *ref)
{
    char scope[64], versus[96], channels[32];
    s_scope_text(g, ref, scope, sizeof scope, versus, sizeof versus);
    s_channel_text(g->channels, channels, sizeof channels);
    bm_table_add_row(t);
    bm_table_set_text(t, 0, scope);
    bm_table_set_text(t, 1, versus);
    bm_table_set_text(t, 2, g->section[0] ? g->section : "(overall)");
    bm_table_set_text(t, 3, channels);
    if (g->own.has_value)
        bm_table_set_num(t, 4, g->own.value, 1);
    bm_table_set_int(t, 5, (long long)g->own.n);
    if (g->comp.has_value)
        bm_table_set_num(t, 6, g->comp.value, 1);
    bm_table_set_int(t, 7, (long long)g->comp.n);
    bm_table_set_int(t, 8, g->comp_outlets);
    if (g->has_gap)
        bm_table_set_num(t, 9, g->gap, 1);
    if (g->has_ci) {
        bm_table_set_num(t, 10, g->gap_lo, 1);
        bm_table_set_num(t, 11, g->gap_hi, 1);
        bm_table_set_arrow(t, 12, g->significant.arrow);
    }
    bm_table_set_bool(t, 13, g->low_n);
    bm_render_q(t, 14, &g->significant);
}

bm_table_t *bm_render_gap_table(const bm_gaps_t *gaps, const bm_q_ref_t *ref)
{
    static const char *const cols[] = {"scope", "versus", "section", "channel", "own",
                                       "own_n", "competitors", "competitors_n",
                                       "competitors_outlets", "gap", "gap_low", "gap_high",
                                       "significant", "low_n", "q"};
    bm_table_t *t = bm_table_new("competitor_gaps", 15, cols);
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
                        "one row per channel, and one over the channels both sides have "
                        "(competitors weighted to the own channel mix); gap = own - "
                        "competitors with a 95%% Welch interval, competitor outlets as "
                        "clusters (no interval from fewer than 2); low_n = fewer than "
                        "%g evaluations on a side", bm_period_name(r->kind),
                   bm_period_label(r->kind, r->cur, label, sizeof label), r->min_n);
    bm_render_tests_note(rep, r->ntests, &r->status, "gaps");
    return 0;
}
