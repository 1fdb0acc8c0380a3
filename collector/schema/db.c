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

/* ------------------------------------------------------------------ */
/* Failures in an operator's words                                     */
/* ------------------------------------------------------------------ */

/* How bm_db_cause says the reason: a fixed phrase, or the server's own
 * sentence quoted from where the fragment starts (or from the start of
 * its sentence, after "FATAL:"), when the sentence names the object
 * ("password authentication failed for user \"x\"", "database \"x\" does
 * not exist"). */
static const char s_quote_marker[] = "(quote)";
#define S_QUOTE s_quote_marker

/* The failures bm_db_cause recognises: a fragment of libpq's or the
 * server's message (English: libpq's own texts, and the server's at the
 * default lc_messages), what it means, why (NULL: nothing to add) and how
 * the place libpq tried joins the reason (" at " + "dir:port"; NULL: the
 * place says nothing).  Order matters: a server's FATAL comes before
 * libpq's "server closed the connection" in one message, and names the
 * real reason. */
static const struct {
    const char *needle, *what, *why, *at;
} s_causes[] = {
    {"terminating connection due to administrator command", "database shutting down",
     "it ended the connection", NULL},
    {"the database system is shutting down", "database shutting down", NULL, NULL},
    {"the database system is starting up", "database starting up", NULL, NULL},
    {"the database system is not yet accepting connections", "database starting up", NULL, NULL},
    {"the database system is in recovery mode", "database recovering after a crash", NULL, NULL},
    {"because of crash of another server process", "database restarting after a crash", NULL,
     NULL},
    {"too many clients already", "database has no free connection", "max_connections", NULL},
    {"remaining connection slots are reserved", "database has no free connection",
     "max_connections", NULL},
    {"password authentication failed", "database refused the login", S_QUOTE, NULL},
    {"no pg_hba.conf entry", "database refused the login", "no pg_hba.conf entry", NULL},
    {"does not exist", "database refused the login", S_QUOTE, NULL},
    {"could not translate host name", "database unreachable", S_QUOTE, NULL},
    {"No such file or directory", "database unreachable", "no server", " at "},
    {"Connection refused", "database unreachable", "connection refused", " at "},
    {"timeout expired", "database unreachable", "no answer in time", " from "},
    {"Network is unreachable", "database unreachable", "network unreachable", " to "},
    {"No route to host", "database unreachable", "no route", " to "},
    {"server closed the connection unexpectedly", "connection to the database lost",
     "the server closed it", NULL},
    {"no connection to the server", "connection to the database lost", NULL, NULL},
    {"could not receive data from server", "connection to the database lost", S_QUOTE, NULL},
    {"could not send data to server", "connection to the database lost", S_QUOTE, NULL},
    {"SSL SYSCALL error", "connection to the database lost", S_QUOTE, NULL},
    {"not connected to the database", "not connected to the database", NULL, NULL},
};

/* The place of libpq's first connection attempt named in msg, "dir:port"
 * from 'on socket "dir/.s.PGSQL.port"' or "host:port" from 'at "host"
 * (addr), port port'; with " and N other addresses" when libpq tried more
 * (a multi-host conninfo).  "" when msg names none. */
static void s_where(const char *msg, char *out, size_t size)
{
    static const char sock[] = "connection to server on socket \"",
                      host[] = "connection to server at \"";
    const char *p, *end;
    out[0] = '\0';
    if ((p = strstr(msg, sock)) && (end = strchr(p + sizeof sock - 1, '"'))) {
        const char *name = p + sizeof sock - 1, *dot = strstr(name, "/.s.PGSQL.");
        if (dot && dot < end)
            snprintf(out, size, "%.*s:%.*s", (int)(dot - name), name,
                     (int)(end - dot - 10), dot + 10);
        else
            snprintf(out, size, "%.*s", (int)(end - name), name);
    } else if ((p = strstr(msg, host)) && (end = strchr(p + sizeof host - 1, '"'))) {
        const char *name = p + sizeof host - 1, *port = strstr(end, ", port ");
        size_t n = port ? strspn(port + 7, "0123456789") : 0;
        snprintf(out, size, "%.*s%s%.*s", (int)(end - name), name, n ? ":" : "", (int)n,
                 port ? port + 7 : "");
    } else {
        return;
    }
    int others = -1;
    for (p = msg; (p = strstr(p, "connection to server ")); p++)
        others++;
    if (others > 0) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, " and %d other address%s", others,
                 others == 1 ? "" : "es");
    }
}

/* The server's sentence around fragment at in msg: from its start (after
 * the last "FATAL:" or "ERROR:" before it, else from the fragment) to ": "
 * or the next libpq line, at most 160 bytes. */
static void s_quote(const char *msg, const char *at, char *out, size_t size)
{
    const char *start = at;
    for (const char *p = msg; p < at; p++)
        if (!strncmp(p, "FATAL:", 6) || !strncmp(p, "ERROR:", 6))
            start = p + 6;
    start += strspn(start, " ");
    const char *stop = strstr(at, ": ");
    const char *next = strstr(at, " connection to server ");
    if (!stop || (next && next < stop))
        stop = next;
    size_t n = stop ? (size_t)(stop - start) : strlen(start);
    snprintf(out, size, "%.*s", (int)(n > 160 ? 160 : n), start);
}

int bm_db_cause(const char *msg, char *out, size_t size)
{
    if (!msg)
        msg = "";
    for (size_t i = 0; i < sizeof s_causes / sizeof s_causes[0]; i++) {
        const char *at = strstr(msg, s_causes[i].needle);
        if (!at)
            continue;
        char why[192], where[BM_ERR_MSG_MAX / 2];
        why[0] = where[0] = '\0';
        if (s_causes[i].why == S_QUOTE)
            s_quote(msg, at, why, sizeof why);
        else if (s_causes[i].why)
            snprintf(why, sizeof why, "%s", s_causes[i].why);
        if (s_causes[i].at)
            s_where(msg, where, sizeof where);
        if (!why[0])
            snprintf(out, size, "%s", s_causes[i].what);
        else
            snprintf(out, size, "%s (%s%s%s)", s_causes[i].what, why,
                     where[0] ? s_causes[i].at : "", where);
        return 1;
    }
    snprintf(out, size, "%s", msg);
    return 0;
}
