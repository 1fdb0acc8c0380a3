/* cli_action: `branchmark action open|list|update|close|show` (docs/actions.md).
 *
 * open, update and close turn argv into report/actions.h's typed changes
 * and run them as the caller's own role (migration 013's functions check
 * scope and transitions and write the trail); list and show are the report
 * kinds "actions" and "followup", through the same request and renderer as
 * GET /api/actions and /api/followup, so CLI and API print the same bytes.
 * Exit codes as in cli.h: 0 ok, 1 run-time failure or permission denied,
 * 2 usage error or a request the rules refuse. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "actions.h"
#include "cli.h"
#include "cli_common.h"
#include "db.h"
#include "output.h"
#include "render.h"
#include "reports.h"

static const char s_usage[] =
    "usage: branchmark action open --branch B --metric M --what TEXT --owner branch|regional\n"
    "                              --due YYYY-MM-DD [--target TEXT] [--section S]\n"
    "                              [--contact-point P] [--category C] [--period week|month|quarter]\n"
    "                              [--source alert|scorecard|competitor_gap|manual]\n"
    "                              [--source-ref TEXT] [--comment TEXT]\n"
    "       branchmark action list [--status active|open|in_progress|done|dropped|all]\n"
    "                              [--region R] [--branch B] [--overdue] [--limit N]\n"
    "       branchmark action update ID [--status open|in_progress|done|dropped]\n"
    "                              [--comment TEXT] [--due D] [--target T] [--owner O]\n"
    "                              [--effective YYYY-MM-DD]\n"
    "       branchmark action close ID --done|--dropped [--comment TEXT] [--effective D]\n"
    "       branchmark action show ID [--versus region|chain] [--periods K] [--min-n N]\n"
    "  (all take --db CONNINFO and --format table|csv|json)\n\n"
    "An action plan for one branch and metric: HQ or the branch's regional manager\n"
    "opens it (from an alert, a scorecard row or a competitor gap), the branch or the\n"
    "manager moves it open -> in_progress -> done, or drops it; every change is in\n"
    "its trail with who, when and the comment.  list: overdue ones first.  show: the\n"
    "action, its trail and, once done, its follow-up: the metric in the K periods\n"
    "(default 3) before and after the effective date against the same change of the\n"
    "region's other branches (difference in differences), with a 95% interval.\n";

/* Every option of the verbs: into the action text, the report text, or
 * the CLI's own (db, format, flags). */
typedef struct {
    const char *db, *format;
    int done, dropped;
    bm_action_text_t act;
    bm_request_text_t rq;
    const char *id;             /* the positional ID */
} s_args_t;

static const struct {
    const char *name;
    size_t off;                 /* into s_args_t */
    int flag;
    const char *verbs;          /* " open list ... " that take it */
} s_opts[] = {
#define A(f) offsetof(s_args_t, act) + offsetof(bm_action_text_t, f)
#define R(f) offsetof(s_args_t, rq) + offsetof(bm_request_text_t, f)
    {"db", offsetof(s_args_t, db), 0, " open list update close show "},
    {"format", offsetof(s_args_t, format), 0, " open list update close show "},
    {"branch", A(branch), 0, " open "},
    {"metric", A(metric), 0, " open "},
    {"section", A(section), 0, " open "},
    {"contact-point", A(contact_point), 0, " open "},
    {"category", A(category), 0, " open "},
    {"source", A(source), 0, " open "},
    {"source-ref", A(source_ref), 0, " open "},
    {"what", A(what), 0, " open "},
    {"owner", A(owner), 0, " open update "},
    {"due", A(due), 0, " open update "},
    {"target", A(target), 0, " open update "},
    {"period", A(period), 0, " open "},
    {"comment", A(comment), 0, " open update close "},
    {"status", A(status), 0, " update "},
    {"effective", A(effective), 0, " update close "},
    {"done", offsetof(s_args_t, done), 1, " close "},
    {"dropped", offsetof(s_args_t, dropped), 1, " close "},
    {"status", R(status), 0, " list "},
    {"region", R(region), 0, " list "},
    {"branch", R(branch), 0, " list "},
    {"overdue", R(overdue), 1, " list "},
    {"limit", R(limit), 0, " list "},
    {"versus", R(versus), 0, " show "},
    {"periods", R(periods), 0, " show "},
    {"min-n", R(min_n), 0, " show "},
#undef A
#undef R
};
#define S_NOPTS (sizeof s_opts / sizeof s_opts[0])

/* The option `name` of verb, or -1. */
static int s_find(const char *verb, const char *name)
{
    char key[24];
    snprintf(key, sizeof key, " %s ", verb);
    for (size_t i = 0; i < S_NOPTS; i++)
        if (!strcmp(s_opts[i].name, name) && strstr(s_opts[i].verbs, key))
            return (int)i;
    return -1;
}

/* argv[2..] of verb into *a.  -1 when parsed, else an exit code after
 * printing why (0 after --help). */
static int s_parse(const char *verb, int argc, char **argv, s_args_t *a)
{
    int positional = !strcmp(verb, "update") || !strcmp(verb, "close") || !strcmp(verb, "show");
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(s_usage, stdout);
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0) {
            if (!positional || a->id) {
                fprintf(stderr, "branchmark action %s: unexpected argument \"%s\"\n", verb, arg);
                return 2;
            }
            a->id = arg;
            continue;
        }
        char name[32];
        const char *eq = strchr(arg, '=');
        snprintf(name, sizeof name, "%.*s", (int)(eq ? (size_t)(eq - arg - 2) : strlen(arg + 2)),
                 arg + 2);
        int k = s_find(verb, name);
        if (k < 0) {
            fprintf(stderr, "branchmark action %s: unknown option \"--%s\"\n%s", verb, name, s_usage);
            return 2;
        }
        char *field = (char *)a + s_opts[k].off;
        if (s_opts[k].flag) {
            if (eq) {
                fprintf(stderr, "branchmark action %s: option --%s takes no value\n", verb, name);
                return 2;
            }
            *(int *)field = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value) {
            fprintf(stderr, "branchmark action %s: option --%s needs a value\n", verb, name);
            return 2;
        }
        *(const char **)field = value;
    }
    if (positional && !a->id) {
        fprintf(stderr, "branchmark action %s: an action ID is required\n", verb);
        return 2;
    }
    return -1;
}

static int s_exit(int rc)
{
    return rc == BM_REPORT_OK ? 0 : rc == BM_REPORT_FAILED || rc == BM_REPORT_FORBIDDEN ? 1 : 2;
}

/* The id (open) or the new state (update, close) as a one-row table. */
static int s_print_done(const char *verb, bm_format_t fmt, long long id, const char *status)
{
    static const char *const cols[] = {"id", "status"};
    bm_report_t *rep = bm_report_new();
    bm_table_t *t = bm_table_new("action", 2, cols);
    if (!rep || !t) {
        bm_table_destroy(&t);
        bm_report_destroy(&rep);
        fprintf(stderr, "branchmark action %s: out of memory\n", verb);
        return 1;
    }
    bm_table_add_row(t);
    bm_table_set_int(t, 0, id);
    bm_table_set_text(t, 1, status);
    bm_report_add(rep, &t);
    int rc = bm_report_print(rep, fmt, stdout) < 0 || fflush(stdout) != 0 ? 1 : 0;
    bm_report_destroy(&rep);
    return rc;
}

/* open, update, close: check, connect, change, print. */
static int s_change(const char *verb, s_args_t *a, bm_format_t fmt)
{
    bm_err_t err;
    bm_err_clear(&err);
    bm_action_open_t o;
    bm_action_update_t u;
    int is_open = !strcmp(verb, "open");
    if (!strcmp(verb, "close")) {
        if (a->done == a->dropped) {
            fprintf(stderr, "branchmark action close: give exactly one of --done and --dropped\n");
            return 2;
        }
        a->act.status = a->done ? "done" : "dropped";
    }
    a->act.id = a->id;
    int rc = is_open ? bm_action_open_parse(&a->act, &o, &err)
                     : bm_action_update_parse(&a->act, &u, &err);
    if (rc != BM_REPORT_OK) {
        fprintf(stderr, "branchmark action %s: %s\n", verb, err.msg);
        return 2;
    }
    char cmd[32];
    snprintf(cmd, sizeof cmd, "action %s", verb);
    PGconn *conn = bm_cli_connect(a->db, cmd);
    if (!conn)
        return 1;
    int64_t id = is_open ? 0 : u.id;
    rc = is_open ? bm_action_open(conn, &o, &id, &err) : bm_action_update(conn, &u, &err);
    bm_db_close(&conn);
    if (rc != BM_REPORT_OK) {
        fprintf(stderr, "branchmark action %s: %s\n", verb, err.msg);
        return s_exit(rc);
    }
    return s_print_done(verb, fmt, (long long)id,
                        is_open ? "open" : u.status ? u.status : "unchanged");
}

/* list, show: the report kinds "actions" and "followup". */
static int s_report(const char *verb, s_args_t *a, bm_format_t fmt)
{
    bm_report_kind_t kind = !strcmp(verb, "list") ? BM_REPORT_ACTIONS : BM_REPORT_FOLLOWUP;
    bm_err_t err;
    bm_err_clear(&err);
    bm_request_t rq;
    a->rq.action = a->id;
    int rc = bm_request_parse(kind, &a->rq, &rq, &err);
    if (rc != BM_REPORT_OK) {
        fprintf(stderr, "branchmark action %s: %s\n", verb, err.msg);
        return 2;
    }
    char cmd[32];
    snprintf(cmd, sizeof cmd, "action %s", verb);
    PGconn *conn = bm_cli_connect(a->db, cmd);
    if (!conn)
        return 1;
    rc = bm_render_report(conn, &rq, fmt, stdout, &err);
    bm_db_close(&conn);
    if (rc != BM_REPORT_OK)
        fprintf(stderr, "branchmark action %s: %s\n", verb, err.msg);
    return s_exit(rc);
}

int bm_cmd_action(int argc, char **argv)
{
    static const char *const verbs[] = {"open", "list", "update", "close", "show", NULL};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(s_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *verb = argv[1];
    int known = 0;
    for (int i = 0; verbs[i]; i++)
        known |= !strcmp(verbs[i], verb);
    if (!known) {
        fprintf(stderr, "branchmark action: unknown subcommand \"%s\" (open, list, update, "
                        "close, show)\n", verb);
        return 2;
    }
    s_args_t a;
    memset(&a, 0, sizeof a);
    int rc = s_parse(verb, argc, argv, &a);
    if (rc >= 0)
        return rc;
    bm_format_t fmt;
    bm_err_t err;
    if (bm_format_parse(a.format ? a.format : "table", &fmt, &err) < 0) {
        fprintf(stderr, "branchmark action %s: %s\n", verb, err.msg);
        return 2;
    }
    if (!strcmp(verb, "list") || !strcmp(verb, "show"))
        return s_report(verb, &a, fmt);
    return s_change(verb, &a, fmt);
}
