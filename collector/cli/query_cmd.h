/* query_cmd: the query commands (rank, scorecard, competitors, alerts,
 * summary, metrics) as one implementation that both the `branchmark` CLI
 * and branchmark-web run, so the two cannot disagree on a number.
 *
 * A command is an argv exactly as the CLI takes it (argv[0] is the command
 * name: {"rank", "--metric", "nps", "--region=NORTH"}).  It runs on the
 * caller's connection (its PostgreSQL role decides through row-level
 * security what is visible), writes its report to `out` and, on failure, a
 * one-line message to err (without the "branchmark CMD: " prefix the CLI
 * adds).  Implemented in cli_query.c. */
#ifndef BM_QUERY_CMD_H
#define BM_QUERY_CMD_H

#include <libpq-fe.h>
#include <stdio.h>

#include "bm_err.h"

/* Exit classes (the CLI's exit codes; BM_QUERY_USAGE exits 2 there too). */
#define BM_QUERY_OK 0
#define BM_QUERY_FAILED 1     /* database or other run-time failure */
#define BM_QUERY_BAD_ARG 2    /* a bad value: unknown metric, branch, period ... */
#define BM_QUERY_USAGE 3      /* wrong shape: unknown option, missing argument */

/* Runs the command argv[0] on conn (NULL: connect with its --db option or
 * the PG* environment, and close again).  --help writes the usage to out
 * and returns BM_QUERY_OK.  Returns one of the classes above; on failure err
 * holds the message and out may hold a partial report (discard it). */
int bm_query_run(PGconn *conn, int argc, char **argv, FILE *out, bm_err_t *err);

/* 1 if the command accepts option `name` (without "--") from a remote
 * caller: never "db" nor "help".  0 for unknown commands or options. */
int bm_query_option_allowed(const char *cmd, const char *name);

/* 1 if option `name` takes no value (--last). */
int bm_query_option_is_flag(const char *name);

/* The command's options as " name name " (including db), or NULL. */
const char *bm_query_options(const char *cmd);

#endif
