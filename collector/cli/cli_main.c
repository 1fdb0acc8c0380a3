/* branchmark: the admin and query tool for HQ, regional managers and
 * operators.  This file only dispatches; each command lives in cli_*.c. */
#include <stdio.h>
#include <string.h>

#include "bm_log.h"
#include "cli.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} s_command_t;

static const s_command_t s_commands[] = {
    {"migrate", bm_cmd_migrate, "create or upgrade the database schema"},
    {"refdata", bm_cmd_refdata, "load or show reference data (branches, competitors, questionnaires)"},
    {"summary", bm_cmd_query, "per-branch record counts, mystery-shopping score and NPS"},
    {"rank", bm_cmd_query, "rank branches chain-wide or within a region on a metric"},
    {"scorecard", bm_cmd_query, "all metrics of one branch, with trends and competitor gaps"},
    {"competitors", bm_cmd_query, "branches against the competitor outlets, per section"},
    {"alerts", bm_cmd_query, "branches whose metrics fell significantly below their own level"},
    {"metrics", bm_cmd_query, "list the metrics and their definitions"},
    {"keygen", bm_cmd_keygen, "create a CURVE key pair for an agent or a collector"},
    {"agent", bm_cmd_agent, "enroll, list or revoke agent keys"},
    {"user", bm_cmd_user, "add, list or remove database users and their region or branch"},
    {"review", bm_cmd_review, "list, approve, hold, reject or correct shopper evaluations"},
    {"appeal", bm_cmd_appeal, "file, list or answer a branch's appeal of an evaluation"},
    {"retention", bm_cmd_retention, "delete open text and evidence past each programme's retention"},
    {"readiness", bm_cmd_readiness, "the mystery-shopping readiness self-test (13 questions)"},
    {"plan", bm_cmd_plan, "size each branch's visits for a verdict and plan them (HQ)"},
    {"yardstick", bm_cmd_yardstick, "store the chain-wide rank positions scoped logins see"},
    {"partition", bm_cmd_partition, "list, create or detach the monthly partitions of raw tables"},
    {"action", bm_cmd_action, "open, list, update, close or show action plans and their follow-up"},
    {NULL, NULL, NULL},
};

static void s_usage(FILE *out)
{
    fprintf(out, "usage: branchmark COMMAND [options]   (branchmark COMMAND --help for more)\n\n"
                 "commands:\n");
    for (const s_command_t *c = s_commands; c->name; c++)
        fprintf(out, "  %-12s %s\n", c->name, c->summary);
    fprintf(out, "\nThe database is chosen with --db CONNINFO or the PG* environment variables;\n"
                 "every command runs with the caller's own PostgreSQL role.\n");
}

int main(int argc, char **argv)
{
    bm_log_init("branchmark", BM_LOG_WARN);
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        s_usage(stdout);
        return 0;
    }
    for (const s_command_t *c = s_commands; c->name; c++)
        if (!strcmp(argv[1], c->name))
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "branchmark: unknown command \"%s\"\n", argv[1]);
    s_usage(stderr);
    return 2;
}
