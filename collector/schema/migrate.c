/* migrate: applies the embedded schema migrations; see migrate.h.
 *
 * Owns the table schema_migrations (version, name, checksum, applied_at).
 * The whole run holds a session advisory lock, so collectors and admins
 * starting at the same time apply each migration exactly once; each
 * migration and its schema_migrations row commit together. */
#include "migrate.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm_log.h"
#include "db.h"

/* "brmk" + "migr": any constant works as long as nothing else uses it. */
#define S_MIGRATE_LOCK_KEY "7165071575254231410"

/* Hex SHA-256 of text into out (65 bytes).  Returns 0, or -1 with err. */
static int s_sha256_hex(const char *text, char out[65], bm_err_t *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return bm_err_set(err, "could not compute SHA-256");
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static int s_unlock(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT pg_advisory_unlock(" S_MIGRATE_LOCK_KEY ")");
    PQclear(res);
    return 0;
}

/* Applies one migration in its own transaction.  Returns 0 or -1 with err. */
static int s_apply(PGconn *conn, const bm_migration_t *m, const char *sum,
                   bm_err_t *err)
{
    if (bm_db_exec(conn, "BEGIN", err) < 0)
        return -1;
    /* A multi-statement string in one PQexec runs inside the open
     * transaction, so a failure anywhere leaves nothing behind. */
    PGresult *res = PQexec(conn, m->sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, m->name, err);
        PQclear(res);
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    PQclear(res);

    char version[16];
    snprintf(version, sizeof version, "%d", m->version);
    const char *params[] = {version, m->name, sum};
    res = PQexecParams(conn,
                       "INSERT INTO schema_migrations (version, name, checksum) "
                       "VALUES ($1, $2, $3)", 3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        bm_db_result_err(res, conn, m->name, err);
        PQclear(res);
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    PQclear(res);
    if (bm_db_exec(conn, "COMMIT", err) < 0)
        return bm_err_prefix(err, "%s", m->name);
    return 0;
}

int bm_migrate(PGconn *conn, int *applied, bm_err_t *err)
{
    if (applied)
        *applied = 0;
    if (bm_db_exec(conn, "SELECT pg_advisory_lock(" S_MIGRATE_LOCK_KEY ")", err) < 0)
        return bm_err_prefix(err, "could not lock the schema for migration");

    int rc = -1;
    PGresult *res = NULL;
    if (bm_db_exec(conn,
                   "CREATE TABLE IF NOT EXISTS schema_migrations ("
                   " version int PRIMARY KEY,"
                   " name text NOT NULL,"
                   " checksum text NOT NULL,"
                   " applied_at timestamptz NOT NULL DEFAULT now())", err) < 0)
        goto out;

    res = PQexec(conn, "SELECT version, name, checksum FROM schema_migrations ORDER BY version");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, "could not read schema_migrations", err);
        goto out;
    }

    int known_max = 0;
    for (const bm_migration_t *m = bm_migrations; m->name; m++) {
        char sum[65];
        if (s_sha256_hex(m->sql, sum, err) < 0)
            goto out;
        if (m->version > known_max)
            known_max = m->version;
        int row = -1;
        for (int i = 0; i < PQntuples(res); i++)
            if (atoi(PQgetvalue(res, i, 0)) == m->version)
                row = i;
        if (row >= 0) {
            if (strcmp(PQgetvalue(res, row, 2), sum) != 0) {
                bm_err_set(err, "migration %s was applied with checksum %.12s but the "
                           "program carries %.12s: an applied migration must never "
                           "change; add a new migration instead",
                           m->name, PQgetvalue(res, row, 2), sum);
                goto out;
            }
            continue;
        }
        if (s_apply(conn, m, sum, err) < 0)
            goto out;
        bm_info("migrate", "applied migration %s", m->name);
        if (applied)
            (*applied)++;
    }
    for (int i = 0; i < PQntuples(res); i++)
        if (atoi(PQgetvalue(res, i, 0)) > known_max)
            bm_warn("migrate", "database has migration %s that this program does not "
                    "know; it may be older than the schema", PQgetvalue(res, i, 1));
    rc = 0;
out:
    PQclear(res);
    s_unlock(conn);
    return rc;
}

int bm_migrate_current(PGconn *conn, bm_err_t *err)
{
    /* Two steps: a query naming a missing table fails at parse time. */
    PGresult *res = PQexec(conn, "SELECT to_regclass('schema_migrations') IS NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, "could not read the schema version", err);
        PQclear(res);
        return -1;
    }
    bool missing = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (missing)
        return 0;
    res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, "could not read the schema version", err);
        PQclear(res);
        return -1;
    }
    int v = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}
