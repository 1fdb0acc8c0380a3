/* cli_report: the report commands as the CLI takes them, for the CLI
 * itself (bm_cmd_query in cli.h) and for tools that time a command line on
 * a connection they hold (bench/query_bench.c). */
#ifndef BM_CLI_REPORT_H
#define BM_CLI_REPORT_H

#include <libpq-fe.h>
#include <stdio.h>

#include "bm_err.h"

/* Runs the command argv[0] ("rank", "scorecard", ...) as the CLI would, on
 * conn (NULL: connect with its --db option or the PG* environment), writing
 * the report to out.  --help writes the usage to out.  Returns a
 * BM_REPORT_* class (report/request.h); on failure err holds the message
 * and out may hold a partial report. */
int bm_cli_report_run(PGconn *conn, int argc, char **argv, FILE *out, bm_err_t *err);

#endif
