/* cli: the subcommands of the `branchmark` admin and query tool.
 *
 * Each command takes its own argv (argv[0] is the command name), prints its
 * result on stdout and errors on stderr, and returns the process exit code:
 *   0 success, 1 a run-time failure (database unreachable, ...),
 *   2 a usage error or a bad argument (unknown branch, metric, period).
 * Every command connects with the conninfo from --db or the PG* environment
 * variables, i.e. with the caller's own PostgreSQL role. */
#ifndef BM_CLI_H
#define BM_CLI_H

/* cli_admin.c */
int bm_cmd_migrate(int argc, char **argv);     /* apply pending migrations */
int bm_cmd_refdata(int argc, char **argv);     /* refdata load FILE | refdata show */

/* cli_report.c: summary, rank, scorecard, competitors, alerts and metrics,
 * one entry point for all (argv[0] names the command): argv -> request ->
 * report -> renderer, the path branchmark-web takes from its parameters. */
int bm_cmd_query(int argc, char **argv);

/* cli_security.c: agent keys and database users (issue: security) */
int bm_cmd_keygen(int argc, char **argv);      /* keygen --out PREFIX: CURVE key pair files */
int bm_cmd_agent(int argc, char **argv);       /* agent enroll|list|revoke */
int bm_cmd_user(int argc, char **argv);        /* user add|list|remove: login roles and their scope */

/* cli_workflow.c: the evaluation workflow (issue: evaluation workflow) */
int bm_cmd_review(int argc, char **argv);      /* review list|show|approve|hold|reject|correct */
int bm_cmd_appeal(int argc, char **argv);      /* appeal file|list|answer */
int bm_cmd_retention(int argc, char **argv);   /* retention run: delete expired open text/evidence */
int bm_cmd_readiness(int argc, char **argv);   /* the 13-question readiness self-test */

/* cli_plan.c: visit planning (issue 15) */
int bm_cmd_plan(int argc, char **argv);        /* plan coverage|make */

/* cli_partition.c: monthly partitions of the raw record tables (issue 6) */
int bm_cmd_partition(int argc, char **argv);   /* partition list|create|detach */

/* cli_yardstick.c: the chain-wide rank positions of scoped logins (issue 16) */
int bm_cmd_yardstick(int argc, char **argv);   /* yardstick refresh */

/* cli_action.c: action plans and their follow-up (issue 17) */
int bm_cmd_action(int argc, char **argv);      /* action open|list|update|close|show */

#endif
