/* render_rank: the ranking's layout: the table "ranking" (one row per
 * branch, ranked ones first) and "aggregates" (the chain and regions). */
#include <stdio.h>

#include "render_int.h"

static void s_branch_row(bm_table_t *t, const bm_rank_result_t *r, const bm_rank_row_t *row)
{
    const bm_metric_t *m = r->metric;
    const bm_q_outlet_t *br = &r->ref->branches[row->branch];
    bm_table_add_row(t);
    if (row->ranked) {
        char rk[32];
        if (row->rank_lo == row->rank_hi)
            snprintf(rk, sizeof rk, "%d", row->rank_lo);
        else
            snprintf(rk, sizeof rk, "%d-%d", row->rank_lo, row->rank_hi);
        bm_table_set_text(t, 0, rk);
        bm_table_set_int(t, 1, row->group);
    }
    bm_table_set_text(t, 2, br->code);
    bm_table_set_text(t, 3, br->name);
    bm_table_set_text(t, 4, bm_report_region_code(r->ref, br->region));
    bm_render_figure(t, 5, m->decimals, &row->cur);
    if (row->prev.has_value)
        bm_table_set_num(t, 10, row->prev.value, m->decimals);
    if (row->cur.est.has_value && row->prev.has_value)
        bm_table_set_num(t, 11, row->cur.est.value - row->prev.value, m->decimals);
    bm_table_set_arrow(t, 12, row->change.arrow);
    bm_render_q(t, 13, &row->change);
}

static void s_scope_row(bm_table_t *t, const bm_metric_t *m, const bm_rank_scope_t *s)
{
    bm_table_add_row(t);
    bm_table_set_text(t, 0, s->is_chain ? "chain" : "region");
    bm_table_set_text(t, 1, s->code);
    if (s->suppressed)          /* no figure at all, not even n */
        return;
    bm_render_figure(t, 2, m->decimals, &s->cur);
    if (s->prev.has_value)
        bm_table_set_num(t, 7, s->prev.value, m->decimals);
    if (s->cur.est.has_value && s->prev.has_value)
        bm_table_set_num(t, 8, s->cur.est.value - s->prev.value, m->decimals);
    bm_table_set_arrow(t, 9, s->change.arrow);
    bm_render_q(t, 10, &s->change);
}

/* A scoped login's own branches with their chain-wide rank range:
 * "14-19" of 212 ranked, from the run computed at as_of; current = false
 * when the chain's figures changed since. */
static bm_table_t *s_positions_table(const bm_rank_result_t *r)
{
    static const char *const cols[] = {"branch", "name", "chain_rank", "of", "as_of", "current"};
    bm_table_t *t = bm_table_new("chain_positions", 6, cols);
    if (!t)
        return NULL;
    const bm_yard_positions_t *ps = &r->positions;
    for (int i = 0; r->pos_state == BM_POS_OK && i < ps->nrows; i++) {
        const bm_yard_pos_t *p = &ps->rows[i];
        if (p->branch < 0)
            continue;
        bm_table_add_row(t);
        bm_table_set_text(t, 0, r->ref->branches[p->branch].code);
        bm_table_set_text(t, 1, r->ref->branches[p->branch].name);
        if (p->ranked) {
            char rk[32];
            if (p->rank_lo == p->rank_hi)
                snprintf(rk, sizeof rk, "%d", p->rank_lo);
            else
                snprintf(rk, sizeof rk, "%d-%d", p->rank_lo, p->rank_hi);
            bm_table_set_text(t, 2, rk);
        }
        bm_table_set_int(t, 3, ps->ranked);
        bm_table_set_text(t, 4, ps->computed_at);
        bm_table_set_bool(t, 5, !r->pos_stale);
    }
    return t;
}

/* What a scoped login's chain lines and positions are. */
static void s_yard_notes(const bm_rank_result_t *r, bm_report_t *rep)
{
    bm_report_note(rep, "your access is limited to part of the chain: the ranking covers the "
                        "branches you may see; the chain and region lines are the whole "
                        "chain's (aggregates only; a region is suppressed, with no figures, "
                        "when fewer than 3 branches you cannot see stand behind it)");
    switch (r->pos_state) {
    case BM_POS_OK:
        bm_report_note(rep, "chain_positions: each of your branches' rank range among the %d "
                            "branches ranked chain-wide, computed %s%s", r->positions.ranked,
                       r->positions.computed_at,
                       r->pos_stale ? "; not current: the chain's figures changed since "
                                      "(an HQ login runs branchmark yardstick refresh)"
                                    : "");
        break;
    case BM_POS_NO_RUN:
        bm_report_note(rep, "chain_positions: not computed for this period yet (an HQ login "
                            "runs branchmark yardstick refresh)");
        break;
    case BM_POS_FILTERED:
        bm_report_note(rep, "chain_positions: computed for the unfiltered ranking with the "
                            "metric's default minimum n only");
        break;
    case BM_POS_NONE:
    default:
        break;
    }
}

static void s_notes(const bm_rank_result_t *r, bm_report_t *rep)
{
    const bm_metric_t *m = r->metric;
    char label[32], plabel[32];
    bm_report_note(rep, "metric %s (%s, %s is better): %s", m->name, m->unit,
                   m->higher_better ? "higher" : "lower", m->description);
    bm_report_note(rep, "period %s %s%s, previous %s; region %s%s%s%s%s", bm_period_name(r->kind),
                   bm_period_label(r->kind, r->cur, label, sizeof label),
                   r->status.partial ? " (partial)" : "",
                   bm_period_label(r->kind, r->prev, plabel, sizeof plabel),
                   r->region >= 0 ? r->ref->regions[r->region].code : "all",
                   r->has_channel ? "; channel " : "", r->has_channel ? r->channel : "",
                   r->has_segment ? "; segment " : "", r->has_segment ? r->segment : "");
    bm_report_note(rep, "ranks: a branch's range runs from 1 + the branches significantly "
                        "better to the count - those significantly worse (pairwise tests, "
                        "Holm-adjusted, 5%% familywise); low_n = n below %g %s (listed, not "
                        "ranked)", r->min_n, m->sample);
    bm_render_tests_note(rep, r->ntests, &r->status, "changes");
}

int bm_render_rank(const bm_rank_result_t *r, bm_report_t *rep)
{
    static const char *const cols[] = {"rank", "group", "branch", "name", "region", "value", "n",
                                       "ci_low", "ci_high", "low_n", "previous", "change",
                                       "arrow", "change_q"};
    static const char *const acols[] = {"scope", "code", "value", "n", "ci_low", "ci_high",
                                        "low_n", "previous", "change", "arrow", "change_q"};
    bm_table_t *t = bm_table_new("ranking", 14, cols);
    bm_table_t *agg = bm_table_new("aggregates", 11, acols);
    bm_table_t *per = bm_render_period_table(r->kind, r->cur, &r->status);
    if (!t || !agg || !per) {
        bm_table_destroy(&t);
        bm_table_destroy(&agg);
        bm_table_destroy(&per);
        return -1;
    }
    for (size_t i = 0; i < r->nrows; i++)
        s_branch_row(t, r, &r->rows[i]);
    for (size_t i = 0; i < r->nscopes; i++)
        s_scope_row(agg, r->metric, &r->scopes[i]);
    bm_report_add(rep, &t);
    bm_report_add(rep, &agg);
    if (r->yardstick) {
        bm_table_t *pos = s_positions_table(r);
        if (!pos) {
            bm_table_destroy(&per);
            return -1;
        }
        bm_report_add(rep, &pos);
    }
    bm_report_add(rep, &per);
    s_notes(r, rep);
    if (r->yardstick)
        s_yard_notes(r, rep);
    return 0;
}
