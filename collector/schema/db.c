/* db: PostgreSQL connections for the collector and the branchmark tool; see
 * db.h.  Owns nothing beyond the connections it hands out: the caller closes
 * them with bm_db_close. */
#include "db.h"

#include "bm_log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* libpq messages end with a newline and may span lines ("connection to
 * server ... failed: ...\n\tIs the server running ...").  Our messages are
 * one line, so the text is flattened and trimmed. */
static void s_one_line(const char *in, char *out, size_t size)
{
    size_t n = 0;
    bool space = false;
    for (const char *p = in ? in : ""; *p && n + 1 < size; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            space = n > 0;
            continue;
        }
        if (space) {
            out[n++] = ' ';
            space = false;
            if (n + 1 >= size)
                break;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
}

/* Server notices ("relation ... already exists, skipping") are not errors;
 * they go to the debug log instead of libpq's default, stderr. */
static void s_notice(void *arg, const char *message)
{
    (void)arg;
    char line[BM_ERR_MSG_MAX];
    s_one_line(message, line, sizeof line);
    bm_debug("db", "server notice: %s", line);
}

PGconn *bm_db_connect(const char *conninfo, const char *application_name,
                      bm_err_t *err)
{
    return bm_db_connect_as(conninfo, NULL, NULL, application_name, err);
}

PGconn *bm_db_connect_as(const char *conninfo, const char *user, const char *password,
                         const char *application_name, bm_err_t *err)
{
    /* connect_timeout comes first so that a value in conninfo wins; later
     * keywords override earlier ones, and dbname is expanded in place. */
    const char *keys[7] = {"connect_timeout", "dbname", "application_name",
                           "client_encoding", NULL};
    const char *vals[7] = {"10", conninfo ? conninfo : "",
                           application_name ? application_name : "branchmark",
                           "UTF8", NULL};
    int k = 4;
    if (user) {
        keys[k] = "user";
        vals[k++] = user;
    }
    if (password) {
        keys[k] = "password";
        vals[k++] = password;
    }
    keys[k] = vals[k] = NULL;
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (!conn) {
        bm_err_set(err, "could not connect to database: out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[BM_ERR_MSG_MAX];
        s_one_line(PQerrorMessage(conn), msg, sizeof msg);
        const char *db = PQdb(conn), *host = PQhost(conn);
        bm_err_set(err, "could not connect to database \"%s\" on \"%s\": %s",
                   db ? db : "", host ? host : "", msg);
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, s_notice, NULL);
    if (bm_db_exec(conn, "SET TimeZone TO 'UTC'", err) < 0) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

void bm_db_close(PGconn **conn_p)
{
    if (conn_p && *conn_p) {
        PQfinish(*conn_p);
        *conn_p = NULL;
    }
}

const char *bm_db_describe(PGconn *conn, char *buf, size_t size)
{
    if (!conn) {
        snprintf(buf, size, "(not connected)");
        return buf;
    }
    const char *user = PQuser(conn), *host = PQhost(conn), *port = PQport(conn),
               *db = PQdb(conn);
    snprintf(buf, size, "%s@%s:%s/%s", user ? user : "", host ? host : "",
             port ? port : "", db ? db : "");
    return buf;
}

int bm_db_exec(PGconn *conn, const char *sql, bm_err_t *err)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        /* Name the command by its first word only: the rest may be long. */
        char what[32];
        size_t n = strcspn(sql, " \n;");
        if (n >= sizeof what)
            n = sizeof what - 1;
        memcpy(what, sql, n);
        what[n] = '\0';
        bm_db_result_err(res, conn, what, err);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

int bm_db_result_err(const PGresult *res, PGconn *conn, const char *what,
                     bm_err_t *err)
{
    char primary[BM_ERR_MSG_MAX], detail[BM_ERR_MSG_MAX];
    const char *state = NULL;
    if (res && PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)) {
        s_one_line(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), primary,
                   sizeof primary);
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        s_one_line(PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL), detail,
                   sizeof detail);
    } else {
        s_one_line(conn ? PQerrorMessage(conn) : "no connection", primary,
                   sizeof primary);
        if (primary[0] == '\0' && res)
            snprintf(primary, sizeof primary, "unexpected result %s",
                     PQresStatus(PQresultStatus(res)));
        detail[0] = '\0';
    }
    if (detail[0])
        return bm_err_set(err, "%s: %s (%s): %s", what, primary,
                          state ? state : "no SQLSTATE", detail);
    if (state)
        return bm_err_set(err, "%s: %s (%s)", what, primary, state);
    return bm_err_set(err, "%s: %s", what, primary);
}
