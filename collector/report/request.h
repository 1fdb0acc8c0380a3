/* request: what a front end asks of a report, as text and then typed.
 *
 * Both front ends receive options by name: the CLI as --name value, the web
 * as ?name=value.  Each collects the text into a bm_request_text_t through
 * bm_request_text_set (which knows which report takes which option), then
 * bm_request_parse checks every value in one fixed order and gives the
 * typed bm_request_t the report modules take.  So a value is validated
 * once, with the same message, whichever front end it came through.
 *
 * The output format, the CLI's --db and --help are the front ends' own
 * business (render/output.h parses the format): they are not options of a
 * report. */
#ifndef BM_REQUEST_H
#define BM_REQUEST_H

#include <stdint.h>

#include "bm_err.h"
#include "metric.h"
#include "period.h"

/* Result classes of parsing and running a report (the CLI exits 2 for both
 * BM_REPORT_BAD_ARG and BM_REPORT_USAGE, the web answers 400). */
#define BM_REPORT_OK 0
#define BM_REPORT_FAILED 1     /* database or other run-time failure */
#define BM_REPORT_BAD_ARG 2    /* a bad value: unknown metric, branch, period ... */
#define BM_REPORT_USAGE 3      /* wrong shape: unknown option, missing argument */

typedef enum {
    BM_REPORT_RANK = 0,
    BM_REPORT_SCORECARD,
    BM_REPORT_COMPETITORS,
    BM_REPORT_ALERTS,
    BM_REPORT_SUMMARY,
    BM_REPORT_METRICS,
    BM_REPORT_ACTIONS,          /* action plans (actions.h) */
    BM_REPORT_FOLLOWUP,         /* one action, its trail and follow-up (followup.h) */
} bm_report_kind_t;

/* "rank", "scorecard", ... to the kind; -1 for anything else. */
int bm_report_kind_find(const char *name);
const char *bm_report_kind_name(bm_report_kind_t kind);

/* The options as received (NULL: not given).  Strings are borrowed from the
 * caller and must outlive the parsed request. */
typedef struct {
    const char *period, *at, *region, *branch, *channel, *segment, *section;
    const char *metric, *min_n, *periods, *radius_km, *target_s;
    int last;
    const char *status, *action, *versus, *limit;     /* actions, followup */
    int overdue;
} bm_request_text_t;

/* 1 if report `kind` takes option `name` (without "--"), else 0. */
int bm_request_takes(bm_report_kind_t kind, const char *name);
/* 1 if option `name` is a flag (no value: --last). */
int bm_request_is_flag(const char *name);
/* The options of `kind` in their documented order, " name name " (no
 * "format", "db" or "help"). */
const char *bm_request_option_names(bm_report_kind_t kind);

/* Stores value (NULL for a flag) under name.  BM_REPORT_USAGE with err
 * ("unknown option \"--x\"") when the report does not take it. */
int bm_request_text_set(bm_request_text_t *text, bm_report_kind_t kind, const char *name,
                        const char *value, bm_err_t *err);

typedef struct {
    bm_report_kind_t kind;
    bm_period_kind_t period;
    int has_at;
    int64_t at;                 /* a day in the period to report (has_at) */
    const char *region;         /* region code, NULL: the whole chain */
    const char *branch;         /* branch code, NULL: none */
    const char *channel;        /* NULL: any */
    const char *segment;        /* NULL: any */
    const char *section;        /* NULL: overall */
    const bm_metric_t *metric;  /* rank only */
    double min_n;               /* < 0: each metric's default */
    int periods;                /* scorecard trend length */
    double radius_km;           /* 0: competitors of the region */
    int target_s;               /* calls_answered_share's answer target */
    const char *status;         /* actions: open, in_progress, done, dropped,
                                 * active (open + in_progress, the default), all */
    int overdue;                /* actions: overdue ones only */
    int limit;                  /* actions: most rows (default 1000) */
    int64_t action;             /* followup: the action's id */
    int versus_chain;           /* followup: compare with the chain, not the region */
} bm_request_t;

/* Checks the text of a request for report `kind` and fills *out.  Returns
 * BM_REPORT_OK, or BM_REPORT_BAD_ARG / BM_REPORT_USAGE with err naming the
 * option and the value. */
int bm_request_parse(bm_report_kind_t kind, const bm_request_text_t *text, bm_request_t *out,
                     bm_err_t *err);

#endif
