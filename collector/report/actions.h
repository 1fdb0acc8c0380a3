/* actions: action plans opened from an alert, a scorecard row or a
 * competitor gap (docs/actions.md): the list (a report kind, branchmark
 * action list, GET /api/actions), one action with its trail, and the two
 * changes (open, update) as typed requests.
 *
 * Every change goes through migration 013's SECURITY DEFINER functions
 * (bm_action_open, bm_action_set) on the caller's own connection: they
 * check the caller's scope and the transitions and write the trail, so the
 * CLI and the web cannot differ on who may do what.  Row-level security
 * decides which actions a list shows.  Values are checked here first, so a
 * bad value gets the same message from both front ends before any SQL. */
#ifndef BM_ACTIONS_H
#define BM_ACTIONS_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "report_ctx.h"

/* A change the database refused for the caller's role (the CLI exits 1,
 * the web answers 403). */
#define BM_REPORT_FORBIDDEN 4

#define BM_ACTION_WHAT_MAX 2000
#define BM_ACTION_LIST_MAX 10000

typedef struct {
    int64_t id;
    char branch[33], region[33];
    char metric[33], section[33], contact_point[65], category[65];
    char source[16], source_ref[201];
    char what[BM_ACTION_WHAT_MAX + 1];
    char owner[16];             /* branch, regional */
    int64_t due;                /* days since 1970-01-01 */
    char target[201];
    char period[8];             /* week, month, quarter: the follow-up's periods */
    char status[16];            /* open, in_progress, done, dropped */
    char opened_by[64], opened_at[20];  /* chain time, YYYY-MM-DD HH:MM */
    int has_effective;
    int64_t effective;          /* done: the day it took effect */
    int overdue_days;           /* > 0: open or in progress past its due date */
} bm_action_t;

typedef struct {
    char old_status[16];        /* "" for the opening */
    char new_status[16];
    char actor[64];
    char at[24];                /* chain time, YYYY-MM-DD HH:MM:SS */
    char change[BM_ACTION_WHAT_MAX + 1];
    char comment[BM_ACTION_WHAT_MAX + 1];
} bm_action_event_t;

/* The list of a request (kind BM_REPORT_ACTIONS): overdue ones first (most
 * days overdue first), then by due date. */
typedef struct {
    bm_q_ref_t *ref;            /* owned */
    const char *status;         /* the request's filter (static string) */
    int overdue_only;
    int64_t today;              /* in the chain's time zone */
    bm_action_t *rows;
    size_t nrows;
    int truncated;              /* more rows than the limit */
} bm_actions_result_t;

int bm_actions_compute(bm_report_ctx_t *ctx, bm_actions_result_t **out, bm_err_t *err);
void bm_actions_result_destroy(bm_actions_result_t **res_p);

/* One action and its trail, oldest first.  BM_REPORT_OK; BM_REPORT_BAD_ARG
 * ("action N does not exist": also when row-level security hides it) or
 * BM_REPORT_FAILED with err.  *events is malloc'd (caller frees). */
int bm_action_load(PGconn *conn, int64_t id, bm_action_t *out, bm_action_event_t **events,
                   size_t *nevents, bm_err_t *err);

/* ---- changes ---------------------------------------------------------- */

/* The options of open and update as received (NULL: not given); borrowed. */
typedef struct {
    const char *branch, *metric, *section, *contact_point, *category, *source, *source_ref;
    const char *what, *owner, *due, *target, *period, *comment;
    const char *id, *status, *effective;   /* update */
} bm_action_text_t;

typedef struct {
    const char *branch;
    const bm_metric_t *metric;
    const char *section, *contact_point, *category;     /* NULL: none */
    const char *source, *source_ref, *what, *owner, *target, *comment;
    int64_t due;
    bm_period_kind_t period;
} bm_action_open_t;

typedef struct {
    int64_t id;
    const char *status;         /* NULL: unchanged */
    const char *comment, *target, *owner;   /* NULL: unchanged / none */
    int has_due, has_effective;
    int64_t due, effective;
} bm_action_update_t;

/* Checks the text of an open (branch, metric, what, owner and due are
 * required) or of an update (id required; close = status done|dropped).
 * BM_REPORT_OK, or BM_REPORT_BAD_ARG / BM_REPORT_USAGE with err naming the
 * option. */
int bm_action_open_parse(const bm_action_text_t *t, bm_action_open_t *out, bm_err_t *err);
int bm_action_update_parse(const bm_action_text_t *t, bm_action_update_t *out, bm_err_t *err);

/* Runs the change as the connection's role.  BM_REPORT_OK (open: *id set);
 * BM_REPORT_BAD_ARG when a rule refused it (unknown branch or action, a
 * final state), BM_REPORT_FORBIDDEN when the role may not, BM_REPORT_FAILED
 * on a database failure; err holds the server's message. */
int bm_action_open(PGconn *conn, const bm_action_open_t *rq, int64_t *id, bm_err_t *err);
int bm_action_update(PGconn *conn, const bm_action_update_t *rq, bm_err_t *err);

#endif
