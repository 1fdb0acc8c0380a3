/* render_actions: the layouts of the action list (table "actions") and of
 * one action (tables "action", "trail", "followup", "effect").  The
 * figures come from report/actions.c and report/followup.c unchanged. */
#include <stdio.h>
#include <string.h>

#include "render_int.h"

#define S_NCOLS 19

static const char *const s_cols[S_NCOLS] = {
    "id", "branch", "region", "metric", "section", "contact_point", "complaint_category",
    "what", "owner", "due", "target", "status", "overdue", "days_overdue", "source",
    "source_ref", "opened_by", "opened", "effective"};

static void s_action_row(bm_table_t *t, const bm_action_t *a)
{
    char due[16], eff[16];
    bm_table_add_row(t);
    bm_table_set_int(t, 0, a->id);
    bm_table_set_text(t, 1, a->branch);
    bm_table_set_text(t, 2, a->region);
    bm_table_set_text(t, 3, a->metric);
    bm_table_set_text(t, 4, a->section);
    bm_table_set_text(t, 5, a->contact_point);
    bm_table_set_text(t, 6, a->category);
    bm_table_set_text(t, 7, a->what);
    bm_table_set_text(t, 8, a->owner);
    bm_table_set_text(t, 9, bm_date_format(a->due, due, sizeof due));
    bm_table_set_text(t, 10, a->target);
    bm_table_set_text(t, 11, a->status);
    bm_table_set_bool(t, 12, a->overdue_days > 0);
    bm_table_set_int(t, 13, a->overdue_days);
    bm_table_set_text(t, 14, a->source);
    bm_table_set_text(t, 15, a->source_ref);
    bm_table_set_text(t, 16, a->opened_by);
    bm_table_set_text(t, 17, a->opened_at);
    if (a->has_effective)
        bm_table_set_text(t, 18, bm_date_format(a->effective, eff, sizeof eff));
}

int bm_render_actions(const bm_actions_result_t *r, bm_report_t *rep)
{
    bm_table_t *t = bm_table_new("actions", S_NCOLS, s_cols);
    if (!t)
        return -1;
    int overdue = 0;
    for (size_t i = 0; i < r->nrows; i++) {
        s_action_row(t, &r->rows[i]);
        overdue += r->rows[i].overdue_days > 0;
    }
    bm_report_add(rep, &t);
    char today[16];
    bm_report_note(rep, "%zu action%s (status %s%s), %d overdue; overdue ones first (most days "
                        "overdue first), then by due date; today is %s", r->nrows,
                   r->nrows == 1 ? "" : "s", r->status, r->overdue_only ? ", overdue only" : "",
                   overdue, bm_date_format(r->today, today, sizeof today));
    if (r->truncated)
        bm_report_note(rep, "more actions than --limit: the list is cut");
    return 0;
}

static bm_table_t *s_trail(const bm_followup_result_t *r)
{
    static const char *const cols[] = {"at", "actor", "from", "to", "change", "comment"};
    bm_table_t *t = bm_table_new("trail", 6, cols);
    for (size_t i = 0; t && i < r->nevents; i++) {
        const bm_action_event_t *e = &r->events[i];
        bm_table_add_row(t);
        bm_table_set_text(t, 0, e->at);
        bm_table_set_text(t, 1, e->actor);
        bm_table_set_text(t, 2, e->old_status);
        bm_table_set_text(t, 3, e->new_status);
        bm_table_set_text(t, 4, e->change);
        bm_table_set_text(t, 5, e->comment);
    }
    return t;
}

/* One side of the follow-up: before and after with n and intervals, and
 * the change with its interval. */
static void s_side_row(bm_table_t *t, const char *scope, const bm_fu_side_t *s, int dec)
{
    bm_table_add_row(t);
    bm_table_set_text(t, 0, scope);
    bm_render_figure(t, 1, dec, &s->before);
    bm_render_figure(t, 6, dec, &s->after);
    if (s->has_change) {
        bm_table_set_num(t, 11, s->change, dec);
        bm_table_set_num(t, 12, s->lo, dec);
        bm_table_set_num(t, 13, s->hi, dec);
    }
}

static bm_table_t *s_sides(const bm_followup_result_t *r)
{
    static const char *const cols[] = {
        "scope", "before", "before_n", "before_low", "before_high", "before_low_n", "after",
        "after_n", "after_low", "after_high", "after_low_n", "change", "change_low",
        "change_high"};
    bm_table_t *t = bm_table_new("followup", 14, cols);
    if (!t)
        return NULL;
    char versus[96];
    if (r->versus_chain)
        snprintf(versus, sizeof versus, "chain without the branch (%d branches)",
                 r->versus_branches);
    else
        snprintf(versus, sizeof versus, "region %s without the branch (%d branches)",
                 r->action.region, r->versus_branches);
    char branch[48];
    snprintf(branch, sizeof branch, "branch %s", r->action.branch);
    s_side_row(t, branch, &r->branch, r->metric->decimals);
    s_side_row(t, versus, &r->versus, r->metric->decimals);
    return t;
}

static bm_table_t *s_effect(const bm_followup_result_t *r)
{
    static const char *const cols[] = {"metric", "section", "verdict", "effect", "effect_low",
                                       "effect_high", "se", "df", "periods_before",
                                       "periods_after", "before_from", "after_from", "reason"};
    bm_table_t *t = bm_table_new("effect", 13, cols);
    if (!t)
        return NULL;
    char a[32], b[32];
    bm_table_add_row(t);
    bm_table_set_text(t, 0, r->metric->name);
    bm_table_set_text(t, 1, r->action.section);
    bm_table_set_text(t, 2, bm_fu_verdict_name(r->verdict));
    if (r->has_effect) {
        bm_table_set_num(t, 3, r->effect, r->metric->decimals);
        bm_table_set_num(t, 4, r->lo, r->metric->decimals);
        bm_table_set_num(t, 5, r->hi, r->metric->decimals);
        bm_table_set_num(t, 6, r->se, r->metric->decimals + 1);
        if (r->df > 0)
            bm_table_set_num(t, 7, r->df, 1);
    }
    if (r->action.has_effective) {
        bm_table_set_int(t, 8, r->periods);
        bm_table_set_int(t, 9, r->nafter);
        bm_table_set_text(t, 10, bm_period_label(r->kind, r->before_first, a, sizeof a));
        bm_table_set_text(t, 11, bm_period_label(r->kind, r->after_first, b, sizeof b));
    }
    bm_table_set_text(t, 12, r->reason);
    return t;
}

int bm_render_followup(const bm_followup_result_t *r, bm_report_t *rep)
{
    bm_table_t *t = bm_table_new("action", S_NCOLS, s_cols);
    if (!t)
        return -1;
    s_action_row(t, &r->action);
    bm_report_add(rep, &t);
    if (!(t = s_trail(r)))
        return -1;
    bm_report_add(rep, &t);
    if (!(t = s_sides(r)))
        return -1;
    bm_report_add(rep, &t);
    if (!(t = s_effect(r)))
        return -1;
    bm_report_add(rep, &t);
    char p[32];
    if (r->action.has_effective)
        bm_report_note(rep, "follow-up: %s %s (%s) of the branch in the %d %ss before %s "
                            "against the %d complete one%s after it (the %s of the effective "
                            "date counts on neither side), minus the same change of the "
                            "comparison branches (difference in differences), so that a "
                            "change of the whole region or chain is not credited to the action",
                       r->metric->name, r->action.section[0] ? r->action.section : "",
                       r->metric->unit, r->periods, bm_period_name(r->kind),
                       bm_period_label(r->kind, r->action_period, p, sizeof p), r->nafter,
                       r->nafter == 1 ? "" : "s", bm_period_name(r->kind));
    bm_report_note(rep, "effect: 95%% Welch interval over the four independent estimates; "
                        "improved / worse only when it excludes 0 (by the metric's direction); "
                        "low_n = n below %g (the metric's minimum); an association in time, "
                        "not proof that the action caused it", r->min_n);
    return 0;
}
