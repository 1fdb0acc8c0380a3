/* cli_workflow: the evaluation workflow commands of `branchmark`:
 *   review list|show|approve|hold|reject|correct   (reviewers, HQ)
 *   appeal file|list|answer                        (branch managers file, HQ answers)
 *   retention run                                  (HQ; on a schedule)
 *   readiness                                      (the 13-question self-test, no database)
 * State changes are made by the SECURITY DEFINER functions of migration
 * 004_workflow, which check the rules; who may call them is decided by
 * PostgreSQL grants, since every command runs as the caller's own role.
 * Exit codes as in cli.h: 0 ok, 1 run-time failure (database, permission),
 * 2 usage error or a request the rules refuse (bad id, closed window). */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "db.h"
#include "output.h"
#include "readiness.h"

#define S_MAX_IDS 1000
#define S_MAX_LIST 100000
#define S_ARRAY_MAX 4096

/* Options shared by the workflow commands.  Strings are borrowed from argv. */
typedef struct {
    const char *cmd;            /* "review approve", for messages */
    const char *db;
    const char *format;
    const char *status;
    const char *branch;
    const char *comment;
    const char *item;
    const char *points;
    const char *reason;
    const char *items;
    const char *answers;
    const char *limit;
    const char *corrections[64];
    int ncorrections;
    bool na, unflagged, uphold, dismiss, void_it, help;
    const char *pos[S_MAX_IDS]; /* positional arguments */
    int npos;
    const char *target;         /* the verb's s_verb_t.target */
    bm_format_t fmt;            /* --format, for verbs that take it */
    char array[S_ARRAY_MAX];    /* an array literal the verb's check built */
} s_args_t;

/* Parses argv from index `from`; `allowed` lists the accepted options
 * (" --name "), value options take the next argument or =value.  Returns
 * -1 when parsed, else an exit code after printing the error. */
static int s_parse(int argc, char **argv, int from, const char *allowed, s_args_t *a,
                   const char *usage)
{
    static const struct {
        const char *name;
        size_t off;             /* offset of a const char * field, or 0 for flags */
        size_t flag;            /* offset of a bool field */
    } opts[] = {
        {"--db", offsetof(s_args_t, db), 0},
        {"--format", offsetof(s_args_t, format), 0},
        {"--status", offsetof(s_args_t, status), 0},
        {"--branch", offsetof(s_args_t, branch), 0},
        {"--comment", offsetof(s_args_t, comment), 0},
        {"--item", offsetof(s_args_t, item), 0},
        {"--points", offsetof(s_args_t, points), 0},
        {"--reason", offsetof(s_args_t, reason), 0},
        {"--items", offsetof(s_args_t, items), 0},
        {"--answers", offsetof(s_args_t, answers), 0},
        {"--limit", offsetof(s_args_t, limit), 0},
        {"--correct", 1, 0},
        {"--na", 0, offsetof(s_args_t, na)},
        {"--unflagged", 0, offsetof(s_args_t, unflagged)},
        {"--uphold", 0, offsetof(s_args_t, uphold)},
        {"--dismiss", 0, offsetof(s_args_t, dismiss)},
        {"--void", 0, offsetof(s_args_t, void_it)},
        {NULL, 0, 0},
    };
    for (int i = from; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0) {
            if (a->npos >= S_MAX_IDS) {
                fprintf(stderr, "branchmark %s: more than %d arguments\n", a->cmd, S_MAX_IDS);
                return 2;
            }
            a->pos[a->npos++] = arg;
            continue;
        }
        char name[32];
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof name)
            len = sizeof name - 1;
        memcpy(name, arg, len);
        name[len] = '\0';
        char key[40];
        snprintf(key, sizeof key, " %s ", name);
        int k;
        for (k = 0; opts[k].name; k++)
            if (!strcmp(opts[k].name, name))
                break;
        if (!opts[k].name || !strstr(allowed, key)) {
            fprintf(stderr, "branchmark %s: unknown option \"%s\"\n%s", a->cmd, name, usage);
            return 2;
        }
        if (opts[k].flag) {
            if (eq) {
                fprintf(stderr, "branchmark %s: option %s takes no value\n", a->cmd, name);
                return 2;
            }
            *(bool *)((char *)a + opts[k].flag) = true;
            continue;
        }
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value) {
            fprintf(stderr, "branchmark %s: option %s needs a value\n", a->cmd, name);
            return 2;
        }
        if (opts[k].off == 1) {
            if (a->ncorrections >= (int)(sizeof a->corrections / sizeof a->corrections[0])) {
                fprintf(stderr, "branchmark %s: too many --correct options\n", a->cmd);
                return 2;
            }
            a->corrections[a->ncorrections++] = value;
            continue;
        }
        *(const char **)((char *)a + opts[k].off) = value;
    }
    return -1;
}

/* Runs a parameterised statement.  On failure prints the server's message
 * (the rules' own messages are made to be read as they are) and returns
 * NULL with *rc set: 2 when the request was refused by a rule, 1 otherwise. */
static PGresult *s_exec(PGconn *conn, const s_args_t *a, const char *sql, int nparams,
                        const char *const *params, int *rc)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (msg) {
        fprintf(stderr, "branchmark %s: %s", a->cmd, msg);
        if (state && !strcmp(state, "42501") && strstr(msg, "permission denied"))
            fprintf(stderr, " (this needs another role; see docs/workflow.md)");
        fputc('\n', stderr);
    } else {
        bm_err_t err;
        bm_db_result_err(res, conn, a->cmd, &err);
        fprintf(stderr, "branchmark %s\n", err.msg);
    }
    *rc = state && (!strncmp(state, "22", 2) || !strncmp(state, "23", 2)) ? 2 : 1;
    PQclear(res);
    return NULL;
}

/* A positive decimal id.  Returns 0 or -1. */
static int s_parse_id(const char *s)
{
    if (!*s || strlen(s) > 18)
        return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    return atoll(s) > 0 ? 0 : -1;
}

/* A questionnaire item code as the schema allows it. */
static bool s_is_code(const char *s, size_t len)
{
    if (len < 1 || len > 32)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
            return false;
    return true;
}

/* Builds a PostgreSQL array literal from comma-separated codes ("A,B" ->
 * "{A,B}"); codes are validated, so nothing needs quoting.  Returns 0, or
 * -1 after printing which code is wrong. */
static int s_codes_array(const s_args_t *a, const char *list, char *out, size_t size)
{
    size_t o = 0;
    out[o++] = '{';
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        if (!s_is_code(p, len)) {
            fprintf(stderr, "branchmark %s: \"%.*s\" is not an item code\n", a->cmd,
                    (int)(len > 40 ? 40 : len), p);
            return -1;
        }
        if (o + len + 2 >= size) {
            fprintf(stderr, "branchmark %s: the list of items is too long\n", a->cmd);
            return -1;
        }
        if (o > 1)
            out[o++] = ',';
        memcpy(out + o, p, len);
        o += len;
        if (!p[len])
            break;
        p += len + 1;
    }
    out[o++] = '}';
    out[o] = '\0';
    return 0;
}

static int s_format(const s_args_t *a, bm_format_t *fmt)
{
    bm_err_t err;
    if (bm_format_parse(a->format ? a->format : "table", fmt, &err) < 0) {
        fprintf(stderr, "branchmark %s: %s\n", a->cmd, err.msg);
        return -1;
    }
    return 0;
}

/* A table from every column of res (NULL -> empty cell). */
static bm_table_t *s_table_of(const char *name, const PGresult *res)
{
    int nc = PQnfields(res);
    const char *cols[BM_TABLE_MAX_COLS];
    if (nc > BM_TABLE_MAX_COLS)
        nc = BM_TABLE_MAX_COLS;
    for (int c = 0; c < nc; c++)
        cols[c] = PQfname(res, c);
    bm_table_t *t = bm_table_new(name, nc, cols);
    for (int r = 0; t && r < PQntuples(res); r++) {
        if (bm_table_add_row(t) < 0)
            break;
        for (int c = 0; c < nc; c++)
            if (!PQgetisnull(res, r, c))
                bm_table_set_text(t, c, PQgetvalue(res, r, c));
    }
    return t;
}

static int s_print_report(const s_args_t *a, bm_report_t **rep, bm_format_t fmt)
{
    int rc = 0;
    if (bm_report_print(*rep, fmt, stdout) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "branchmark %s: could not write the output\n", a->cmd);
        rc = 1;
    }
    bm_report_destroy(rep);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Verbs: one table per command, one runner for all                    */
/* ------------------------------------------------------------------ */

/* A verb is what every workflow command does, in this order: parse its
 * options, refuse stray arguments, check the request (exit 2, before any
 * connection), parse --format, connect, run its statements and report,
 * close.  The runner does all but check and run. */
typedef struct {
    const char *name;           /* "list"; NULL ends a table */
    const char *allowed;        /* its options, as s_parse takes them */
    bool positional;            /* takes arguments (ids); else they are refused */
    bool format;                /* parse --format into a->fmt before connecting */
    bool db;                    /* connects; run gets the connection (else NULL) */
    /* Validates the request: 0, or an exit code after printing why. */
    int (*check)(s_args_t *a);
    /* Does the work; returns the exit code.  The runner closes conn. */
    int (*run)(s_args_t *a, PGconn *conn);
    const char *target;         /* a datum for run (the status a decision sets) */
} s_verb_t;

/* A command of verbs ("review list", "review show", ...). */
typedef struct {
    const char *name;           /* "review" */
    const char *usage;
    const s_verb_t *verbs;
    const char *verb_names;     /* an unknown verb is answered with these, or
                                   when NULL with the usage */
} s_command_t;

/* Runs verb v as command cmd ("review list") on argv[from..argc). */
static int s_run_verb(const s_verb_t *v, const char *cmd, int argc, char **argv, int from,
                      const char *usage)
{
    s_args_t a;
    memset(&a, 0, sizeof a);
    a.cmd = cmd;
    a.target = v->target;
    int rc = s_parse(argc, argv, from, v->allowed, &a, usage);
    if (rc >= 0)
        return rc;
    if (!v->positional && a.npos) {
        fprintf(stderr, "branchmark %s: unexpected argument \"%s\"\n", cmd, a.pos[0]);
        return 2;
    }
    if (v->check && (rc = v->check(&a)) != 0)
        return rc;
    if (v->format && s_format(&a, &a.fmt) < 0)
        return 2;
    if (!v->db)
        return v->run(&a, NULL);
    PGconn *conn = bm_cli_connect(a.db, cmd);
    if (!conn)
        return 1;
    rc = v->run(&a, conn);
    bm_db_close(&conn);   /* an open transaction is rolled back */
    return rc;
}

/* Runs the verb argv[1] of command c. */
static int s_dispatch(const s_command_t *c, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(c->usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const s_verb_t *v = c->verbs;
    while (v->name && strcmp(v->name, argv[1]) != 0)
        v++;
    if (!v->name) {
        if (c->verb_names)
            fprintf(stderr, "branchmark %s: unknown subcommand \"%s\" (%s)\n", c->name, argv[1],
                    c->verb_names);
        else
            fprintf(stderr, "branchmark %s: unknown subcommand \"%s\"\n%s", c->name, argv[1],
                    c->usage);
        return 2;
    }
    char cmd[48];
    snprintf(cmd, sizeof cmd, "%s %.32s", c->name, argv[1]);
    return s_run_verb(v, cmd, argc, argv, 2, c->usage);
}

/* ------------------------------------------------------------------ */
/* review                                                              */
/* ------------------------------------------------------------------ */

static const char s_review_usage[] =
    "usage: branchmark review list [--status pending|received|on_hold|approved|rejected|voided|all]\n"
    "                              [--branch B] [--limit N] [--format table|csv|json]\n"
    "       branchmark review show EVAL [--format table|csv|json]\n"
    "       branchmark review approve|hold|reject EVAL... [--comment TEXT]\n"
    "       branchmark review approve --unflagged [--comment TEXT]\n"
    "       branchmark review correct EVAL --item CODE (--points P | --na) --reason TEXT\n"
    "  (all take --db CONNINFO)\n\n"
    "Shopper evaluations arrive 'received' and count in no score until approved.\n"
    "list: evaluations in a state (default pending = received and on_hold) with\n"
    "      their fraud and quality flags, computed when listed.\n"
    "show: one evaluation: answers (with the original where corrected), review log,\n"
    "      answer changes, appeals and flags.\n"
    "approve/hold/reject: decide received or on-hold evaluations; --unflagged\n"
    "      approves every received evaluation without a flag.\n"
    "correct: change one answer (the original is kept in the change log) and\n"
    "      re-score.  Needs the branchmark_reviewer or branchmark_hq role.\n";

static const char s_list_sql[] =
    "WITH sel AS ("
    "  SELECT e.id FROM evaluations e"
    "   LEFT JOIN branches b ON b.id = e.outlet_branch_id"
    "  WHERE CASE $1 WHEN 'pending' THEN e.review_status IN ('received', 'on_hold')"
    "               WHEN 'all' THEN true ELSE e.review_status = $1 END"
    "    AND ($2 = '' OR b.code = $2)"
    "  ORDER BY e.id LIMIT $3::int),"
    " fl AS (SELECT f.evaluation_id, string_agg(f.flag || ': ' || f.reason, '; ' ORDER BY f.flag) AS flags"
    "   FROM bm_evaluation_flags(ARRAY(SELECT id FROM sel)) f GROUP BY 1)"
    " SELECT e.id AS evaluation, e.review_status AS status,"
    "  coalesce(b.code, 'competitor ' || c.code) AS outlet, e.channel,"
    "  to_char(e.visited_at AT TIME ZONE bm_chain_timezone(), 'YYYY-MM-DD HH24:MI') AS visited,"
    "  round(s.overall, 1) AS score, coalesce(fl.flags, '') AS flags"
    " FROM sel JOIN evaluations e ON e.id = sel.id"
    " LEFT JOIN branches b ON b.id = e.outlet_branch_id"
    " LEFT JOIN competitor_outlets c ON c.id = e.competitor_outlet_id"
    " LEFT JOIN evaluation_scores s ON s.evaluation_id = e.id"
    " LEFT JOIN fl ON fl.evaluation_id = e.id ORDER BY e.id";

static int s_review_list_check(s_args_t *a)
{
    static const char *const states[] = {"pending", "received", "on_hold", "approved",
                                         "rejected", "voided", "all", NULL};
    const char *status = a->status ? a->status : "pending";
    int ok = 0;
    for (int i = 0; states[i]; i++)
        ok |= !strcmp(states[i], status);
    if (!ok) {
        fprintf(stderr, "branchmark %s: unknown status \"%s\" (try: pending, received, on_hold, "
                        "approved, rejected, voided, all)\n", a->cmd, status);
        return 2;
    }
    if (a->limit && (s_parse_id(a->limit) < 0 || atoll(a->limit) > S_MAX_LIST)) {
        fprintf(stderr, "branchmark %s: --limit: \"%s\" is not a number 1..%d\n", a->cmd,
                a->limit, S_MAX_LIST);
        return 2;
    }
    return 0;
}

static int s_review_list(s_args_t *a, PGconn *conn)
{
    int rc = 1;
    if (a->branch) {
        const char *p[1] = {a->branch};
        PGresult *res = s_exec(conn, a, "SELECT 1 FROM branches WHERE code = $1", 1, p, &rc);
        if (!res)
            return rc;
        int found = PQntuples(res);
        PQclear(res);
        if (!found) {
            fprintf(stderr, "branchmark %s: unknown branch \"%s\"\n", a->cmd, a->branch);
            return 2;
        }
    }
    const char *params[3] = {a->status ? a->status : "pending", a->branch ? a->branch : "",
                             a->limit ? a->limit : "200"};
    PGresult *res = s_exec(conn, a, s_list_sql, 3, params, &rc);
    if (!res)
        return rc;
    bm_table_t *t = s_table_of("evaluations", res);
    PQclear(res);
    res = s_exec(conn, a,
                 "SELECT count(*) FILTER (WHERE review_status = 'received'),"
                 " count(*) FILTER (WHERE review_status = 'on_hold') FROM evaluations",
                 0, NULL, &rc);
    bm_report_t *rep = bm_report_new();
    if (!res || !t || !rep) {
        if (res)
            fprintf(stderr, "branchmark %s: out of memory\n", a->cmd);
        PQclear(res);
        bm_table_destroy(&t);
        bm_report_destroy(&rep);
        return 1;
    }
    bm_report_add(rep, &t);
    bm_report_note(rep, "pending review: %lld (received %s, on hold %s); pending evaluations "
                        "count in no score", atoll(PQgetvalue(res, 0, 0)) + atoll(PQgetvalue(res, 0, 1)),
                   PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    PQclear(res);
    return s_print_report(a, &rep, a->fmt);
}

/* For show and correct. */
static int s_one_evaluation_check(s_args_t *a)
{
    if (a->npos != 1 || s_parse_id(a->pos[0]) < 0) {
        fprintf(stderr, "branchmark %s: one evaluation id is required\n%s", a->cmd, s_review_usage);
        return 2;
    }
    return 0;
}

static int s_review_show(s_args_t *a, PGconn *conn)
{
    static const struct {
        const char *name;
        const char *sql;
    } parts[] = {
        {"evaluation",
         "SELECT e.id AS evaluation, e.source_id, e.review_status AS status,"
         " coalesce(b.code, 'competitor ' || c.code) AS outlet, q.code || ' v' || q.version AS questionnaire,"
         " e.channel, e.scenario,"
         " to_char(e.visited_at AT TIME ZONE bm_chain_timezone(), 'YYYY-MM-DD HH24:MI') AS visited,"
         " to_char(e.submitted_at AT TIME ZONE bm_chain_timezone(), 'YYYY-MM-DD HH24:MI') AS submitted,"
         " round(s.overall, 1) AS score"
         " FROM evaluations e JOIN questionnaires q ON q.id = e.questionnaire_id"
         " LEFT JOIN branches b ON b.id = e.outlet_branch_id"
         " LEFT JOIN competitor_outlets c ON c.id = e.competitor_outlet_id"
         " LEFT JOIN evaluation_scores s ON s.evaluation_id = e.id WHERE e.id = $1::bigint"},
        {"sections",
         "SELECT section_code AS section, round(score, 1) AS score, earned, possible,"
         " critical_failed FROM evaluation_section_scores WHERE evaluation_id = $1::bigint"
         " ORDER BY section_code"},
        {"answers",
         "SELECT i.code AS item, coalesce(a.points::text, 'n/a') AS points, i.max_points AS max,"
         " (SELECT coalesce(c.old_points::text, 'n/a') FROM evaluation_answer_changes c"
         "   WHERE c.evaluation_id = e.id AND c.item_code = i.code ORDER BY c.id LIMIT 1) AS original,"
         " coalesce(a.comment, '') AS comment"
         " FROM evaluations e JOIN questionnaire_items i ON i.questionnaire_id = e.questionnaire_id"
         " LEFT JOIN evaluation_answers a ON a.evaluation_id = e.id AND a.item_code = i.code"
         " WHERE e.id = $1::bigint ORDER BY i.position, i.code"},
        {"reviews",
         "SELECT to_char(at, 'YYYY-MM-DD HH24:MI') AS at, reviewer, old_status || ' -> ' || new_status"
         " AS change, comment FROM evaluation_reviews WHERE evaluation_id = $1::bigint ORDER BY id"},
        {"answer_changes",
         "SELECT to_char(at, 'YYYY-MM-DD HH24:MI') AS at, changed_by, item_code AS item,"
         " coalesce(old_points::text, 'n/a') AS old, coalesce(new_points::text, 'n/a') AS new,"
         " appeal_id AS appeal, reason FROM evaluation_answer_changes"
         " WHERE evaluation_id = $1::bigint ORDER BY id"},
        {"appeals",
         "SELECT id AS appeal, status, coalesce(outcome, '') AS outcome,"
         " array_to_string(items, ',') AS items, filed_by,"
         " to_char(filed_at, 'YYYY-MM-DD') AS filed, reason, coalesce(answered_by::text, '') AS answered_by,"
         " answer_comment FROM appeals WHERE evaluation_id = $1::bigint ORDER BY id"},
        {"flags", "SELECT flag, reason FROM bm_evaluation_flags(ARRAY[$1::bigint]) ORDER BY flag"},
    };
    const char *p[1] = {a->pos[0]};
    bm_report_t *rep = bm_report_new();
    int rc = 1;
    size_t n = sizeof parts / sizeof parts[0], i;
    for (i = 0; rep && i < n; i++) {
        PGresult *res = s_exec(conn, a, parts[i].sql, 1, p, &rc);
        if (!res) {
            /* Roles without the right to see flags still see the rest. */
            if (!strcmp(parts[i].name, "flags")) {
                rc = 1;
                continue;
            }
            break;
        }
        if (i == 0 && PQntuples(res) == 0) {
            fprintf(stderr, "branchmark %s: evaluation %s does not exist\n", a->cmd, a->pos[0]);
            PQclear(res);
            rc = 2;
            break;
        }
        bm_table_t *t = s_table_of(parts[i].name, res);
        PQclear(res);
        if (!t || bm_report_add(rep, &t) < 0) {
            bm_table_destroy(&t);
            break;
        }
    }
    if (!rep || i < n) {
        bm_report_destroy(&rep);
        return rc;
    }
    return s_print_report(a, &rep, a->fmt);
}

/* approve, hold and reject: a->target is the status they set. */
static int s_review_decide_check(s_args_t *a)
{
    if (a->unflagged) {
        if (strcmp(a->target, "approved") || a->npos) {
            fprintf(stderr, "branchmark %s: --unflagged goes with approve and no ids\n", a->cmd);
            return 2;
        }
    } else if (a->npos == 0) {
        fprintf(stderr, "branchmark %s: at least one evaluation id is required\n%s", a->cmd,
                s_review_usage);
        return 2;
    }
    for (int i = 0; i < a->npos; i++)
        if (s_parse_id(a->pos[i]) < 0) {
            fprintf(stderr, "branchmark %s: \"%s\" is not an evaluation id\n", a->cmd, a->pos[i]);
            return 2;
        }
    if (a->comment && strlen(a->comment) > 2000) {
        fprintf(stderr, "branchmark %s: --comment is longer than 2000 characters\n", a->cmd);
        return 2;
    }
    return 0;
}

static int s_review_decide(s_args_t *a, PGconn *conn)
{
    const char *status = a->target;
    int rc = 0;
    const char *note = a->comment ? a->comment : "";
    if (a->unflagged) {
        const char *p[1] = {note};
        PGresult *res = s_exec(conn, a, "SELECT bm_review_approve_unflagged($1)", 1, p, &rc);
        if (res) {
            printf("approved %s received evaluation(s) without flags\n", PQgetvalue(res, 0, 0));
            PQclear(res);
        }
        return rc;
    }
    /* All or none: one transaction. */
    bm_err_t err;
    if (bm_db_exec(conn, "BEGIN", &err) < 0) {
        fprintf(stderr, "branchmark %s: %s\n", a->cmd, err.msg);
        return 1;
    }
    for (int i = 0; i < a->npos && rc == 0; i++) {
        const char *p[3] = {a->pos[i], status, note};
        PGresult *res = s_exec(conn, a, "SELECT bm_review_set($1::bigint, $2, $3)", 3, p, &rc);
        if (res) {
            printf("evaluation %s: %s -> %s\n", a->pos[i], PQgetvalue(res, 0, 0), status);
            PQclear(res);
        }
    }
    if (rc == 0 && bm_db_exec(conn, "COMMIT", &err) < 0) {
        fprintf(stderr, "branchmark %s: %s\n", a->cmd, err.msg);
        rc = 1;
    }
    return rc;   /* the runner's close rolls back an open transaction */
}

static int s_review_correct_check(s_args_t *a)
{
    if (s_one_evaluation_check(a) != 0)
        return 2;
    if (!a->item || !s_is_code(a->item, strlen(a->item))) {
        fprintf(stderr, "branchmark %s: --item CODE is required\n", a->cmd);
        return 2;
    }
    if ((a->points != NULL) == a->na) {
        fprintf(stderr, "branchmark %s: give either --points P or --na\n", a->cmd);
        return 2;
    }
    if (a->points) {
        char *end;
        double v = strtod(a->points, &end);
        if (end == a->points || *end || !(v >= 0 && v <= 1e6)) {
            fprintf(stderr, "branchmark %s: --points: \"%s\" is not a number of points\n", a->cmd,
                    a->points);
            return 2;
        }
    }
    if (!a->reason || !*a->reason || strlen(a->reason) > 2000) {
        fprintf(stderr, "branchmark %s: --reason TEXT (1..2000 characters) is required\n", a->cmd);
        return 2;
    }
    return 0;
}

static int s_review_correct(s_args_t *a, PGconn *conn)
{
    int rc = 0;
    const char *p[4] = {a->pos[0], a->item, a->points, a->reason};
    PGresult *res = s_exec(conn, a, "SELECT bm_review_correct($1::bigint, $2, $3::float8, $4)",
                           4, p, &rc);
    PQclear(res);
    /* A later statement: its snapshot sees the new score. */
    if (res)
        res = s_exec(conn, a, "SELECT (SELECT round(overall, 1) FROM evaluation_scores"
                              " WHERE evaluation_id = $1::bigint)", 1, p, &rc);
    if (res) {
        printf("evaluation %s: item %s set to %s; score now %s\n", a->pos[0], a->item,
               a->points ? a->points : "n/a", PQgetisnull(res, 0, 0) ? "-" : PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    return rc;
}

static const s_verb_t s_review_verbs[] = {
    {"list", " --db --format --status --branch --limit ", false, true, true, s_review_list_check,
     s_review_list, NULL},
    {"show", " --db --format ", true, true, true, s_one_evaluation_check, s_review_show, NULL},
    {"approve", " --db --comment --unflagged ", true, false, true, s_review_decide_check,
     s_review_decide, "approved"},
    {"hold", " --db --comment ", true, false, true, s_review_decide_check, s_review_decide,
     "on_hold"},
    {"reject", " --db --comment ", true, false, true, s_review_decide_check, s_review_decide,
     "rejected"},
    {"correct", " --db --item --points --na --reason ", true, false, true, s_review_correct_check,
     s_review_correct, NULL},
    {NULL, NULL, false, false, false, NULL, NULL, NULL},
};

int bm_cmd_review(int argc, char **argv)
{
    static const s_command_t review = {"review", s_review_usage, s_review_verbs, NULL};
    return s_dispatch(&review, argc, argv);
}

/* ------------------------------------------------------------------ */
/* appeal                                                              */
/* ------------------------------------------------------------------ */

static const char s_appeal_usage[] =
    "usage: branchmark appeal file EVAL --items A,B --reason TEXT\n"
    "       branchmark appeal answer APPEAL --uphold (--correct ITEM=POINTS|ITEM=na ... | --void)\n"
    "                                       --comment TEXT\n"
    "       branchmark appeal answer APPEAL --dismiss --comment TEXT\n"
    "       branchmark appeal list [--status open|upheld|dismissed|all] [--format table|csv|json]\n"
    "  (all take --db CONNINFO)\n\n"
    "file: a branch manager (branchmark_branch role, own branch only) queries an\n"
    "      approved evaluation within the programme's appeal window (default 14\n"
    "      days after approval).\n"
    "answer: HQ (branchmark_hq) upholds, correcting answers or voiding the\n"
    "      evaluation (it stops counting), or dismisses.  Scores follow at once.\n";

/* Builds the --items array in a->array. */
static int s_appeal_file_check(s_args_t *a)
{
    if (a->npos != 1 || s_parse_id(a->pos[0]) < 0) {
        fprintf(stderr, "branchmark %s: one evaluation id is required\n%s", a->cmd, s_appeal_usage);
        return 2;
    }
    if (!a->items) {
        fprintf(stderr, "branchmark %s: --items A,B is required\n", a->cmd);
        return 2;
    }
    if (s_codes_array(a, a->items, a->array, sizeof a->array) < 0)
        return 2;
    if (!a->reason || !*a->reason || strlen(a->reason) > 4000) {
        fprintf(stderr, "branchmark %s: --reason TEXT (1..4000 characters) is required\n", a->cmd);
        return 2;
    }
    return 0;
}

static int s_appeal_file(s_args_t *a, PGconn *conn)
{
    int rc = 0;
    const char *p[3] = {a->pos[0], a->array, a->reason};
    PGresult *res = s_exec(conn, a, "SELECT bm_appeal_file($1::bigint, $2::text[], $3)", 3, p, &rc);
    if (res) {
        printf("appeal %s filed on evaluation %s\n", PQgetvalue(res, 0, 0), a->pos[0]);
        PQclear(res);
    }
    return rc;
}

/* Builds the --correct array in a->array. */
static int s_appeal_answer_check(s_args_t *a)
{
    if (a->npos != 1 || s_parse_id(a->pos[0]) < 0) {
        fprintf(stderr, "branchmark %s: one appeal id is required\n%s", a->cmd, s_appeal_usage);
        return 2;
    }
    if (a->uphold == a->dismiss) {
        fprintf(stderr, "branchmark %s: give either --uphold or --dismiss\n", a->cmd);
        return 2;
    }
    if (a->uphold && (a->void_it == (a->ncorrections > 0))) {
        fprintf(stderr, "branchmark %s: --uphold needs either --correct ITEM=POINTS or --void\n",
                a->cmd);
        return 2;
    }
    if (a->dismiss && (a->void_it || a->ncorrections)) {
        fprintf(stderr, "branchmark %s: --dismiss takes no --correct or --void\n", a->cmd);
        return 2;
    }
    if (!a->comment || !*a->comment || strlen(a->comment) > 4000) {
        fprintf(stderr, "branchmark %s: --comment TEXT (1..4000 characters) is required\n", a->cmd);
        return 2;
    }
    /* "{G1=2,K1=na}": each ITEM=VALUE checked here so the literal needs no quoting. */
    char *arr = a->array;
    size_t o = 0;
    arr[o++] = '{';
    for (int i = 0; i < a->ncorrections; i++) {
        const char *c = a->corrections[i];
        const char *eq = strchr(c, '=');
        size_t len = strlen(c);
        bool ok = eq && s_is_code(c, (size_t)(eq - c)) && eq[1];
        for (const char *p = eq ? eq + 1 : c; ok && *p; p++)
            ok = isdigit((unsigned char)*p) || *p == '.' || *p == 'n' || *p == 'a' ||
                 *p == 'N' || *p == 'A';
        if (!ok) {
            fprintf(stderr, "branchmark %s: --correct \"%s\" is not ITEM=POINTS or ITEM=na\n",
                    a->cmd, c);
            return 2;
        }
        if (o + len + 3 >= sizeof a->array) {
            fprintf(stderr, "branchmark %s: too many corrections\n", a->cmd);
            return 2;
        }
        if (i)
            arr[o++] = ',';
        memcpy(arr + o, c, len);
        o += len;
    }
    arr[o++] = '}';
    arr[o] = '\0';
    return 0;
}

static int s_appeal_answer(s_args_t *a, PGconn *conn)
{
    int rc = 0;
    const char *p[5] = {a->pos[0], a->uphold ? "true" : "false", a->void_it ? "true" : "false",
                        a->array, a->comment};
    PGresult *res = s_exec(conn, a,
                           "SELECT bm_appeal_answer($1::bigint, $2::boolean, $3::boolean, $4::text[], $5)",
                           5, p, &rc);
    PQclear(res);
    if (res)
        res = s_exec(conn, a,
                     "SELECT status || coalesce(' (' || outcome || ')', '') || ', evaluation '"
                     " || evaluation_id FROM appeals WHERE id = $1::bigint", 1, p, &rc);
    if (res && PQntuples(res) == 1) {
        printf("appeal %s: %s\n", a->pos[0], PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    return rc;
}

static int s_appeal_list_check(s_args_t *a)
{
    const char *status = a->status ? a->status : "open";
    if (strcmp(status, "open") && strcmp(status, "upheld") && strcmp(status, "dismissed") &&
        strcmp(status, "all")) {
        fprintf(stderr, "branchmark %s: unknown status \"%s\" (try: open, upheld, dismissed, all)\n",
                a->cmd, status);
        return 2;
    }
    return 0;
}

static int s_appeal_list(s_args_t *a, PGconn *conn)
{
    int rc = 1;
    const char *p[1] = {a->status ? a->status : "open"};
    PGresult *res = s_exec(conn, a,
                           "SELECT a.id AS appeal, a.evaluation_id AS evaluation, b.code AS branch,"
                           " a.status, coalesce(a.outcome, '') AS outcome,"
                           " array_to_string(a.items, ',') AS items, a.filed_by,"
                           " to_char(a.filed_at, 'YYYY-MM-DD') AS filed, a.reason, a.answer_comment"
                           " FROM appeals a JOIN evaluations e ON e.id = a.evaluation_id"
                           " JOIN branches b ON b.id = e.outlet_branch_id"
                           " WHERE $1 = 'all' OR a.status = $1 ORDER BY a.id",
                           1, p, &rc);
    if (res) {
        bm_table_t *t = s_table_of("appeals", res);
        PQclear(res);
        bm_report_t *rep = bm_report_new();
        if (t && rep && bm_report_add(rep, &t) == 0) {
            rc = s_print_report(a, &rep, a->fmt);
        } else {
            fprintf(stderr, "branchmark %s: out of memory\n", a->cmd);
            rc = 1;
        }
        bm_table_destroy(&t);
        bm_report_destroy(&rep);
    }
    return rc;
}

static const s_verb_t s_appeal_verbs[] = {
    {"file", " --db --items --reason ", true, false, true, s_appeal_file_check, s_appeal_file,
     NULL},
    {"answer", " --db --uphold --dismiss --correct --void --comment ", true, false, true,
     s_appeal_answer_check, s_appeal_answer, NULL},
    {"list", " --db --status --format ", false, true, true, s_appeal_list_check, s_appeal_list,
     NULL},
    {NULL, NULL, false, false, false, NULL, NULL, NULL},
};

int bm_cmd_appeal(int argc, char **argv)
{
    static const s_command_t appeal = {"appeal", s_appeal_usage, s_appeal_verbs, NULL};
    return s_dispatch(&appeal, argc, argv);
}

/* ------------------------------------------------------------------ */
/* retention                                                           */
/* ------------------------------------------------------------------ */

static const char s_retention_usage[] =
    "usage: branchmark retention run [--db CONNINFO]\n\n"
    "Deletes open text and raw evidence older than each programme's retention_days\n"
    "(programme_settings): answer comments, evidence rows and staff references of\n"
    "evaluations visited before the cut-off, survey 'why' texts and past visit plans.\n"
    "Scores, points and rollups stay.  Needs the branchmark_hq role.  Meant to run\n"
    "daily (systemd timer or cron; see docs/workflow.md).\n";

static int s_retention_run(s_args_t *a, PGconn *conn)
{
    int rc = 0;
    PGresult *res = s_exec(conn, a, "SELECT what, n_rows FROM bm_retention_run()", 0, NULL, &rc);
    if (res) {
        printf("retention run: cleared or deleted\n");
        for (int i = 0; i < PQntuples(res); i++)
            printf("  %-28s %s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
        PQclear(res);
    }
    return rc;
}

static const s_verb_t s_retention_verbs[] = {
    {"run", " --db ", false, false, true, NULL, s_retention_run, NULL},
    {NULL, NULL, false, false, false, NULL, NULL, NULL},
};

int bm_cmd_retention(int argc, char **argv)
{
    static const s_command_t retention = {"retention", s_retention_usage, s_retention_verbs,
                                          "run"};
    return s_dispatch(&retention, argc, argv);
}

/* ------------------------------------------------------------------ */
/* readiness                                                           */
/* ------------------------------------------------------------------ */

static const char s_readiness_usage[] =
    "usage: branchmark readiness [--answers YN13] [--format table|json]\n\n"
    "The mystery-shopping readiness self-test: 13 yes/no questions, 1 point per yes.\n"
    "10-13: ready now; 5-9: set standards and training first; under 5: not yet.\n"
    "Without --answers the questions are asked on stdin (y/n per line);\n"
    "--answers yynnyyyynnyyy answers them all at once.  Needs no database.\n";

static void s_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", (unsigned char)*s);
        else
            putchar(*s);
    }
    putchar('"');
}

/* The self-test needs no database (conn is NULL). */
static int s_readiness(s_args_t *a, PGconn *conn)
{
    (void)conn;
    bool json = false;
    if (a->format) {
        if (!strcmp(a->format, "json"))
            json = true;
        else if (strcmp(a->format, "table")) {
            fprintf(stderr, "branchmark readiness: unknown format \"%s\" (try: table, json)\n",
                    a->format);
            return 2;
        }
    }
    bool yes[BM_READINESS_QUESTIONS];
    bm_err_t err;
    if (a->answers) {
        if (bm_readiness_parse(a->answers, yes, &err) < 0) {
            fprintf(stderr, "branchmark readiness: --answers: %s\n", err.msg);
            return 2;
        }
    } else {
        /* Prompts go to stderr so that stdout holds only the result. */
        for (int i = 0; i < BM_READINESS_QUESTIONS; i++) {
            char line[128];
            for (;;) {
                fprintf(stderr, "%2d. %s [y/n] ", i + 1, bm_readiness_questions[i]);
                fflush(stderr);
                if (!fgets(line, sizeof line, stdin)) {
                    fprintf(stderr, "\nbranchmark readiness: input ended after %d of %d answers\n",
                            i, BM_READINESS_QUESTIONS);
                    return 2;
                }
                if (!strchr(line, '\n') && !feof(stdin)) {
                    int c;
                    while ((c = getchar()) != EOF && c != '\n')
                        ;
                    fprintf(stderr, "please answer y or n\n");
                    continue;
                }
                if (bm_readiness_reply(line, &yes[i]) == 0)
                    break;
                fprintf(stderr, "please answer y or n\n");
            }
        }
    }
    bm_readiness_t r = bm_readiness_score(yes);
    if (json) {
        printf("{\"score\": %d, \"max\": %d, \"band\": \"%s\", \"advice\": ", r.score,
               BM_READINESS_QUESTIONS, bm_readiness_band_key(r.band));
        s_json_string(bm_readiness_advice(r.band));
        printf(", \"answers\": [");
        for (int i = 0; i < BM_READINESS_QUESTIONS; i++) {
            printf("%s{\"question\": ", i ? ", " : "");
            s_json_string(bm_readiness_questions[i]);
            printf(", \"yes\": %s}", yes[i] ? "true" : "false");
        }
        printf("]}\n");
    } else {
        static const char *const band_text[] = {"under 5: not yet",
                                                "5-9: set standards and training first",
                                                "10-13: ready now"};
        printf("readiness score: %d of %d (%s)\n%s\n", r.score, BM_READINESS_QUESTIONS,
               band_text[r.band], bm_readiness_advice(r.band));
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "branchmark readiness: could not write the output\n");
        return 1;
    }
    return 0;
}

int bm_cmd_readiness(int argc, char **argv)
{
    /* A command without verbs: the one verb runs on argv[1..]. */
    static const s_verb_t readiness = {"readiness", " --answers --format --db ", false, false,
                                       false, NULL, s_readiness, NULL};
    return s_run_verb(&readiness, "readiness", argc, argv, 1, s_readiness_usage);
}
