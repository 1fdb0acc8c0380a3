/* cli_common: what the database commands of `branchmark` do the same way:
 * read the --db option and connect with it, saying why when they cannot.
 * Owns nothing: strings are borrowed from argv, the connection belongs to
 * the caller (bm_db_close). */
#ifndef BM_CLI_COMMON_H
#define BM_CLI_COMMON_H

#include <libpq-fe.h>
#include <stdbool.h>

/* Takes "--db CONNINFO" or "--db=CONNINFO" at argv[*i] into *db (moving *i
 * past a separate value).  Returns true when argv[*i] was that option. */
bool bm_cli_db_option(int argc, char **argv, int *i, const char **db);

/* Connects with db (NULL: the PG* environment) as application "branchmark".
 * On failure prints "branchmark: <reason>" (or "branchmark CMD: <reason>"
 * when cmd is not NULL) on stderr and returns NULL. */
PGconn *bm_cli_connect(const char *db, const char *cmd);

#endif
