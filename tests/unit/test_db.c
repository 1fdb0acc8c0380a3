/* test_db: bm_db_cause, the operator's account of a database failure,
 * from the texts libpq 15 and the server really produce (as bm_db_connect
 * and bm_db_result_err leave them: one line).  No database needed. */
#include "bm_test.h"

#include "db.h"

static void s_case(const char *msg, int want_rc, const char *want)
{
    char out[BM_ERR_MSG_MAX];
    int rc = bm_db_cause(msg, out, sizeof out);
    CHECK(rc == want_rc);
    CHECK_STR(out, want);
}

/* Seen when PostgreSQL is stopped: -m immediate (lost), -m fast (the server
 * says why first), and reconnect attempts while it is down. */
static void test_restart(void)
{
    s_case("agent_keys: server closed the connection unexpectedly This probably means the "
           "server terminated abnormally before or while processing the request.",
           1, "connection to the database lost (the server closed it)");
    s_case("agent_keys: FATAL:  terminating connection due to administrator command server "
           "closed the connection unexpectedly This probably means the server terminated "
           "abnormally before or while processing the request.",
           1, "database shutting down (it ended the connection)");
    s_case("could not connect to database \"branchmark\" on \"/tmp/t/pg/sock\": connection to "
           "server on socket \"/tmp/t/pg/sock/.s.PGSQL.31443\" failed: No such file or "
           "directory Is the server running locally and accepting connections on that socket?",
           1, "database unreachable (no server at /tmp/t/pg/sock:31443)");
    s_case("could not connect to database \"branchmark\" on \"/tmp/t/pg/sock\": connection to "
           "server on socket \"/tmp/t/pg/sock/.s.PGSQL.5432\" failed: FATAL:  the database "
           "system is starting up",
           1, "database starting up");
    s_case("could not connect to database \"b\" on \"/s\": connection to server on socket "
           "\"/s/.s.PGSQL.5432\" failed: FATAL:  the database system is shutting down",
           1, "database shutting down");
    s_case("ingest_batches: no connection to the server", 1, "connection to the database lost");
    s_case("not connected to the database", 1, "not connected to the database");
}

/* TCP: refused, timed out, several hosts, unknown names. */
static void test_tcp(void)
{
    s_case("could not connect to database \"b\" on \"10.0.0.5\": connection to server at "
           "\"10.0.0.5\", port 5432 failed: Connection refused Is the server running on that "
           "host and accepting TCP/IP connections?",
           1, "database unreachable (connection refused at 10.0.0.5:5432)");
    s_case("could not connect to database \"b\" on \"db.example\": connection to server at "
           "\"db.example\" (10.0.0.5), port 6432 failed: timeout expired",
           1, "database unreachable (no answer in time from db.example:6432)");
    s_case("could not connect to database \"b\" on \"a\": connection to server at \"a\" "
           "(10.0.0.1), port 5432 failed: Connection refused Is the server running on that "
           "host and accepting TCP/IP connections? connection to server at \"b\" (10.0.0.2), "
           "port 5432 failed: Connection refused Is the server running on that host and "
           "accepting TCP/IP connections?",
           1, "database unreachable (connection refused at a:5432 and 1 other address)");
    s_case("could not connect to database \"b\" on \"nohost\": could not translate host name "
           "\"nohost\" to address: Name or service not known",
           1, "database unreachable (could not translate host name \"nohost\" to address)");
}

/* Logins the server refuses name the object in its own words. */
static void test_login(void)
{
    s_case("could not connect to database \"b\" on \"h\": connection to server at \"h\" "
           "(10.0.0.5), port 5432 failed: FATAL:  password authentication failed for user "
           "\"collector\"",
           1, "database refused the login (password authentication failed for user "
              "\"collector\")");
    s_case("could not connect to database \"nodb\" on \"/s\": connection to server on socket "
           "\"/s/.s.PGSQL.5432\" failed: FATAL:  database \"nodb\" does not exist",
           1, "database refused the login (database \"nodb\" does not exist)");
    s_case("could not connect to database \"b\" on \"/s\": connection to server on socket "
           "\"/s/.s.PGSQL.5432\" failed: FATAL:  sorry, too many clients already",
           1, "database has no free connection (max_connections)");
}

/* Anything else is left as it is, and small buffers are not overrun. */
static void test_other(void)
{
    s_case("receipts: deadlock detected (40P01): Process 1 waits for ShareLock", 0,
           "receipts: deadlock detected (40P01): Process 1 waits for ShareLock");
    s_case(NULL, 0, "");
    char small[12];
    CHECK(bm_db_cause("agent_keys: server closed the connection unexpectedly", small,
                      sizeof small) == 1);
    CHECK_STR(small, "connection ");
}

int main(void)
{
    test_restart();
    test_tcp();
    test_login();
    test_other();
    return bm_test_result("test_db");
}
