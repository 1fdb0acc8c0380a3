/* db: PostgreSQL connections for the collector and the branchmark tool.
 *
 * Connection strings come from the config file or --db, else from the PG*
 * environment variables (libpq's own rules), so TLS (sslmode=verify-full,
 * sslrootcert=...) and passwords (PGPASSFILE) work as libpq documents them.
 * A conninfo is never logged as given: bm_db_describe prints host, port,
 * database and user only, never a password. */
#ifndef BM_DB_H
#define BM_DB_H

#include <libpq-fe.h>

#include "bm_err.h"

/* Connects; sets application_name, client_encoding UTF8, TimeZone UTC.
 * conninfo may be NULL or "" (then the PG* environment decides).  Returns
 * NULL with err ("could not connect to database \"x\" on \"host\": ...")
 * on failure. */
PGconn *bm_db_connect(const char *conninfo, const char *application_name,
                      bm_err_t *err);

/* Like bm_db_connect, as login `user` with `password` (either may be NULL):
 * they are passed to libpq as separate parameters, never pasted into a
 * conninfo, and override a user or password in conninfo.  For
 * branchmark-web, which connects as each person's own role.  Returns NULL
 * with err on failure (the message never contains the password). */
PGconn *bm_db_connect_as(const char *conninfo, const char *user, const char *password,
                         const char *application_name, bm_err_t *err);

/* Closes and NULLs *conn_p.  Safe with NULL. */
void bm_db_close(PGconn **conn_p);

/* "user@host:port/dbname" of a live connection, for logs (no password). */
const char *bm_db_describe(PGconn *conn, char *buf, size_t size);

/* Runs a parameterless command (BEGIN, COMMIT, ...).  Returns 0 or -1 with
 * err holding the server's message. */
int bm_db_exec(PGconn *conn, const char *sql, bm_err_t *err);

/* Sets err from a failed result: "<what>: <primary message> (SQLSTATE)"
 * with the detail if any.  Returns -1. */
int bm_db_result_err(const PGresult *res, PGconn *conn, const char *what,
                     bm_err_t *err);

/* What a failed connection or statement means, in words an operator acts
 * on: reads libpq's and the server's text in msg (as bm_db_connect and
 * bm_db_result_err leave it in an error) and writes one short phrase to
 * out, such as "database unreachable (connection refused at
 * 10.0.0.5:5432)", "database unreachable (no server at /run/postgresql:5432)",
 * "connection to the database lost (the server closed it)", "database
 * shutting down", "database starting up" or "database refused the login
 * (password authentication failed for user \"x\")".  Returns 1 when it
 * recognised the failure; 0 when not, and out then holds msg as it is.
 * The full text belongs in the debug log: the phrase leaves out libpq's
 * hints and FATAL/DETAIL prefixes. */
int bm_db_cause(const char *msg, char *out, size_t size);

#endif
