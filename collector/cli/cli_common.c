/* cli_common: the --db option and the connection of the `branchmark`
 * commands; see cli_common.h. */
#include "cli_common.h"

#include <stdio.h>
#include <string.h>

#include "db.h"

bool bm_cli_db_option(int argc, char **argv, int *i, const char **db)
{
    if (!strcmp(argv[*i], "--db") && *i + 1 < argc) {
        *db = argv[++*i];
        return true;
    }
    if (!strncmp(argv[*i], "--db=", 5)) {
        *db = argv[*i] + 5;
        return true;
    }
    return false;
}

PGconn *bm_cli_connect(const char *db, const char *cmd)
{
    bm_err_t err;
    PGconn *conn = bm_db_connect(db, "branchmark", &err);
    if (!conn)
        fprintf(stderr, "branchmark%s%s: %s\n", cmd ? " " : "", cmd ? cmd : "", err.msg);
    return conn;
}
