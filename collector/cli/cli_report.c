/* cli_report: the report commands of `branchmark` (rank, scorecard,
 * competitors, alerts, summary, metrics): argv -> request (report/request.h)
 * -> bm_reports_run -> the renderer.  Holds what is the CLI's own: the
 * usage texts, the shape of argv (--name value, --name=value, scorecard's
 * positional BRANCH), --db, --help and --format.  Owns nothing beyond one
 * command's run and the connection it opens when the caller gives none. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_report.h"
#include "db.h"
#include "output.h"
#include "render.h"
#include "reports.h"

static const char *const s_usage[] = {
    [BM_REPORT_RANK] =
        "usage: branchmark rank --metric M [--region R] [--period day|week|month|quarter]\n"
        "                       [--at YYYY-MM-DD | --last] [--channel visit|call|online]\n"
        "                       [--segment S] [--section S] [--min-n N] [--target-s S]\n"
        "                       [--format table|csv|json] [--db CONNINFO]\n"
        "Ranks branches (chain-wide or within a region) on one metric for one period\n"
        "(default: the latest month with data), with n, the 95% interval, tie groups\n"
        "(rank ranges such as 2-4) and the change since the previous period; the arrow\n"
        "shows only when the change is significant at 95%.  Branches with n below the\n"
        "minimum are listed, flagged low_n, and not ranked.\n",
    [BM_REPORT_SCORECARD] =
        "usage: branchmark scorecard BRANCH|--branch BRANCH [--period day|week|month|quarter]\n"
        "                            [--periods N]\n"
        "                            [--at YYYY-MM-DD | --last] [--min-n N] [--radius-km K]\n"
        "                            [--format table|csv|json] [--db CONNINFO]\n"
        "Every metric of one branch for the current period (default: the latest month with\n"
        "data) with n and 95% intervals, the trend over the last N periods (default 6;\n"
        "also as numbers per period in the table \"trend\"), the chain's figure, section\n"
        "scores, competitor gaps and complaint and lost-customer breakdowns.\n",
    [BM_REPORT_COMPETITORS] =
        "usage: branchmark competitors [--region R] [--branch B] [--radius-km K]\n"
        "                              [--period day|week|month|quarter] [--at YYYY-MM-DD | --last]\n"
        "                              [--channel visit|call|online] [--min-n N]\n"
        "                              [--format table|csv|json] [--db CONNINFO]\n"
        "Per questionnaire section: own score, competitors' score, the gap and its 95%\n"
        "interval (Welch), for each branch against the competitor outlets of its region\n"
        "(or within --radius-km where both have coordinates), each region against its\n"
        "competitors, and the chain against all competitors.  Default period: the latest\n"
        "quarter with data.\n",
    [BM_REPORT_ALERTS] =
        "usage: branchmark alerts [--period day|week|month|quarter] [--at YYYY-MM-DD | --last]\n"
        "                         [--region R] [--min-n N] [--format table|csv|json] [--db CONNINFO]\n"
        "Early warnings: branches whose metric in the current period (default: the latest\n"
        "month with data) is worse than their own baseline (the previous 6 periods pooled)\n"
        "by more than 3 standard errors, with the sections, complaint categories and\n"
        "contact points that moved most.\n",
    [BM_REPORT_SUMMARY] =
        "usage: branchmark summary [--region R] [--format table|csv|json] [--db CONNINFO]\n"
        "Per branch: record counts per kind, the mystery-shopping score and NPS over all\n"
        "periods, read from the rollups (evaluations = scored evaluations of the branch).\n",
    [BM_REPORT_METRICS] =
        "usage: branchmark metrics [--format table|csv|json]\n"
        "Lists the metrics (names for --metric) and their definitions; see docs/metrics.md.\n",
};

/* What argv holds besides the report's own options. */
typedef struct {
    bm_report_kind_t kind;
    bm_request_text_t text;
    const char *db, *format, *positional;
    int help;
} s_args_t;

/* One --name[=value] at argv[*i].  BM_REPORT_OK to go on, else the class
 * with err set. */
static int s_option(s_args_t *a, int argc, char **argv, int *i, bm_err_t *err)
{
    const char *arg = argv[*i];
    char name[32];
    const char *eq = strchr(arg + 2, '=');
    size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (len >= sizeof name)
        len = sizeof name - 1;
    memcpy(name, arg + 2, len);
    name[len] = '\0';
    int is_db = !strcmp(name, "db") && a->kind != BM_REPORT_METRICS;
    int is_help = !strcmp(name, "help"), is_format = !strcmp(name, "format");
    if (!is_db && !is_help && !is_format && !bm_request_takes(a->kind, name)) {
        bm_err_set(err, "unknown option \"--%s\"", name);
        return BM_REPORT_USAGE;
    }
    if (is_help || bm_request_is_flag(name)) {
        if (eq) {
            bm_err_set(err, "option --%s takes no value", name);
            return BM_REPORT_BAD_ARG;
        }
        if (is_help)
            a->help = 1;
        return is_help ? BM_REPORT_OK : bm_request_text_set(&a->text, a->kind, name, NULL, err);
    }
    const char *value = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
    if (!value) {
        bm_err_set(err, "option --%s needs a value", name);
        return BM_REPORT_BAD_ARG;
    }
    if (is_db)
        a->db = value;
    else if (is_format)
        a->format = value;
    else
        return bm_request_text_set(&a->text, a->kind, name, value, err);
    return BM_REPORT_OK;
}

/* argv -> s_args_t: the shape only, no value is checked yet. */
static int s_parse_argv(s_args_t *a, int argc, char **argv, bm_err_t *err)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (a->kind == BM_REPORT_SCORECARD && !a->positional) {
                a->positional = arg;
                continue;
            }
            bm_err_set(err, "unexpected argument \"%s\"", arg);
            return BM_REPORT_USAGE;
        }
        int rc = s_option(a, argc, argv, &i, err);
        if (rc != BM_REPORT_OK)
            return rc;
    }
    return BM_REPORT_OK;
}

/* The format, then the request's values, in the order of the usage. */
static int s_make_request(s_args_t *a, bm_format_t *fmt, bm_request_t *rq, bm_err_t *err)
{
    bm_err_t e;
    if (bm_format_parse(a->format ? a->format : "table", fmt, &e) < 0) {
        bm_err_set(err, "%s", e.msg);
        return BM_REPORT_BAD_ARG;
    }
    const char *branch = a->text.branch;
    if (a->positional)
        a->text.branch = a->positional;
    int rc = bm_request_parse(a->kind, &a->text, rq, err);
    if (rc == BM_REPORT_OK && a->positional && branch && strcmp(a->positional, branch)) {
        bm_err_set(err, "two different branches given (BRANCH and --branch)");
        rc = BM_REPORT_BAD_ARG;
    }
    return rc;
}

/* Runs the request on conn (NULL: connect with db) and renders it. */
static int s_run(PGconn *conn, const char *db, const bm_request_t *rq, bm_format_t fmt,
                 FILE *out, bm_err_t *err)
{
    PGconn *own = NULL;
    if (!conn && rq->kind != BM_REPORT_METRICS &&
        !(conn = own = bm_db_connect(db, "branchmark", err)))
        return BM_REPORT_FAILED;
    int rc = bm_render_report(conn, rq, fmt, out, err);
    bm_db_close(&own);
    return rc;
}

int bm_cli_report_run(PGconn *conn, int argc, char **argv, FILE *out, bm_err_t *err)
{
    int kind = argc > 0 ? bm_report_kind_find(argv[0]) : -1;
    if (kind < 0) {
        bm_err_set(err, "unknown report \"%s\"", argc > 0 ? argv[0] : "");
        return BM_REPORT_USAGE;
    }
    s_args_t a;
    memset(&a, 0, sizeof a);
    a.kind = (bm_report_kind_t)kind;
    int rc = s_parse_argv(&a, argc, argv, err);
    if (rc != BM_REPORT_OK)
        return rc;
    if (a.help) {
        fputs(s_usage[a.kind], out);
        return BM_REPORT_OK;
    }
    bm_format_t fmt;
    bm_request_t rq;
    if ((rc = s_make_request(&a, &fmt, &rq, err)) != BM_REPORT_OK)
        return rc;
    return s_run(conn, a.db, &rq, fmt, out, err);
}

/* The CLI of every report command (argv[0] names it): stdout, errors on
 * stderr as "branchmark CMD: message", the usage after an argument of the
 * wrong shape. */
int bm_cmd_query(int argc, char **argv)
{
    bm_err_t err;
    bm_err_clear(&err);
    int rc = bm_cli_report_run(NULL, argc, argv, stdout, &err);
    if (rc != BM_REPORT_OK) {
        fprintf(stderr, "branchmark %s: %s\n", argv[0], err.msg);
        if (rc == BM_REPORT_USAGE) {
            int k = bm_report_kind_find(argv[0]);
            if (k >= 0)
                fputs(s_usage[k], stderr);
            rc = 2;
        }
    }
    return rc;
}
