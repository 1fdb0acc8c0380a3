/* cli_security: the security commands of `branchmark` (issue: security).
 *
 *   keygen --out PREFIX        CURVE key pair: PREFIX.key (secret, 0600) and
 *                              PREFIX.pub (public); never overwrites a file
 *   agent enroll --agent ID --branch CODE --key FILE.pub|Z85
 *   agent list
 *   agent revoke --agent ID
 *   user add NAME --role hq|regional|branch|reviewer|collector
 *            [--region CODE] [--branch CODE]
 *   user list
 *   user remove NAME
 *
 * Every SQL statement is parameterised; role names are quoted by the
 * server-side functions of migration 003.  A user's password is read from
 * the environment variable BM_USER_PASSWORD or else from the first line of
 * stdin, never from argv, and only its SCRAM verifier (PQencryptPasswordConn)
 * is sent to the server; it is never printed or logged.  See cli.h for the
 * exit codes and docs/security.md for the operations. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "bm_keyfile.h"
#include "cli.h"
#include "cli_common.h"
#include "db.h"

#define S_PATH_MAX 4000
#define S_PASSWORD_MAX 1024

/* Runs a parameterised statement; prints the server's error.  Returns the
 * result (caller clears) or NULL. */
static PGresult *s_exec(PGconn *conn, const char *what, const char *sql, int n,
                        const char *const *params)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        bm_err_t err;
        bm_db_result_err(res, conn, what, &err);
        fprintf(stderr, "branchmark: %s\n", err.msg);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* ------------------------------------------------------------------ */
/* keygen                                                              */
/* ------------------------------------------------------------------ */

/* Writes line to path, which must not exist yet (O_EXCL).  Returns 0 or -1
 * (message printed). */
static int s_write_new(const char *path, const char *line, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        fprintf(stderr, "branchmark: could not create \"%s\": %s\n", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(line);
    /* fchmod: the umask must not loosen (or tighten) the mode asked for. */
    if (fchmod(fd, mode) < 0 || write(fd, line, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
        fsync(fd) < 0) {
        fprintf(stderr, "branchmark: could not write \"%s\": %s\n", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    if (close(fd) < 0) {
        fprintf(stderr, "branchmark: could not write \"%s\": %s\n", path, strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

int bm_cmd_keygen(int argc, char **argv)
{
    const char *prefix = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            prefix = argv[++i];
        } else if (!strcmp(argv[i], "--help")) {
            printf("usage: branchmark keygen --out PREFIX\n\n"
                   "Writes a new CURVE key pair: PREFIX.key (the secret key, mode 0600) and\n"
                   "PREFIX.pub (the public key, to enroll or to give to agents).  Existing\n"
                   "files are never overwritten.  Prints the public key.\n");
            return 0;
        } else {
            fprintf(stderr, "branchmark: keygen: unexpected argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (!prefix || !*prefix || strlen(prefix) > S_PATH_MAX) {
        fprintf(stderr, "branchmark: keygen: --out PREFIX is required\n");
        return 2;
    }
    char pub[BM_Z85_KEY_LEN + 1], sec[BM_Z85_KEY_LEN + 1];
    if (zmq_curve_keypair(pub, sec) != 0) {
        fprintf(stderr, "branchmark: keygen: could not create a key pair: %s\n",
                zmq_strerror(errno));
        return 1;
    }
    char path_key[S_PATH_MAX + 8], path_pub[S_PATH_MAX + 8];
    snprintf(path_key, sizeof path_key, "%s.key", prefix);
    snprintf(path_pub, sizeof path_pub, "%s.pub", prefix);
    int rc = 0;
    if (access(path_pub, F_OK) == 0) {
        fprintf(stderr, "branchmark: keygen: \"%s\" exists; not overwriting it\n", path_pub);
        rc = 1;
    } else if (s_write_new(path_key, sec, 0600) < 0) {
        rc = 1;
    } else if (s_write_new(path_pub, pub, 0644) < 0) {
        unlink(path_key);
        rc = 1;
    }
    memset(sec, 0, sizeof sec);
    if (rc == 0)
        printf("%s\n", pub);
    return rc;
}

/* ------------------------------------------------------------------ */
/* agent                                                               */
/* ------------------------------------------------------------------ */

static void s_agent_usage(FILE *out)
{
    fprintf(out, "usage: branchmark agent enroll --agent ID --branch CODE --key FILE.pub|Z85 "
                 "[--db CONNINFO]\n"
                 "       branchmark agent list [--db CONNINFO]\n"
                 "       branchmark agent revoke --agent ID [--db CONNINFO]\n\n"
                 "Manages the allow-list of agent CURVE keys the collector accepts.  An agent\n"
                 "has at most one live key; a revoked key is refused at its next handshake and\n"
                 "a connected agent using it is cut off within seconds (docs/security.md).\n");
}

int bm_cmd_agent(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        s_agent_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1], *db = NULL, *agent = NULL, *branch = NULL, *key = NULL;
    for (int i = 2; i < argc; i++) {
        if (bm_cli_db_option(argc, argv, &i, &db))
            continue;
        if (!strcmp(argv[i], "--agent") && i + 1 < argc)
            agent = argv[++i];
        else if (!strcmp(argv[i], "--branch") && i + 1 < argc)
            branch = argv[++i];
        else if (!strcmp(argv[i], "--key") && i + 1 < argc)
            key = argv[++i];
        else {
            fprintf(stderr, "branchmark: agent %s: unexpected argument \"%s\"\n", sub, argv[i]);
            return 2;
        }
    }
    bool enroll = !strcmp(sub, "enroll"), list = !strcmp(sub, "list"),
         revoke = !strcmp(sub, "revoke");
    if (!enroll && !list && !revoke) {
        fprintf(stderr, "branchmark: agent: unknown subcommand \"%s\"\n", sub);
        s_agent_usage(stderr);
        return 2;
    }
    char z85[BM_Z85_KEY_LEN + 1] = "";
    if (enroll) {
        if (!agent || !branch || !key) {
            fprintf(stderr, "branchmark: agent enroll: --agent, --branch and --key are required\n");
            return 2;
        }
        bm_err_t err;
        if (bm_keyfile_read_public(key, z85, &err) < 0) {
            fprintf(stderr, "branchmark: agent enroll: %s\n", err.msg);
            return 2;
        }
    } else if (revoke && !agent) {
        fprintf(stderr, "branchmark: agent revoke: --agent is required\n");
        return 2;
    }
    PGconn *conn = bm_cli_connect(db, NULL);
    if (!conn)
        return 1;
    int rc = 0;
    PGresult *res = NULL;
    if (enroll) {
        const char *p[] = {z85, agent, branch};
        res = s_exec(conn, "agent enroll",
                     "INSERT INTO agent_keys (public_key_z85, agent_id, branch_id) "
                     "SELECT $1, $2, id FROM branches WHERE code = $3", 3, p);
        if (!res) {
            rc = 1;
        } else if (strcmp(PQcmdTuples(res), "1") != 0) {
            fprintf(stderr, "branchmark: agent enroll: unknown branch \"%s\"\n", branch);
            rc = 2;
        } else {
            printf("enrolled agent %s for branch %s with key %s\n", agent, branch, z85);
        }
    } else if (revoke) {
        const char *p[] = {agent};
        res = s_exec(conn, "agent revoke",
                     "UPDATE agent_keys SET revoked_at = now() "
                     "WHERE agent_id = $1 AND revoked_at IS NULL", 1, p);
        if (!res) {
            rc = 1;
        } else if (strcmp(PQcmdTuples(res), "0") == 0) {
            fprintf(stderr, "branchmark: agent revoke: agent \"%s\" has no live key\n", agent);
            rc = 2;
        } else {
            printf("revoked the key of agent %s\n", agent);
        }
    } else {
        res = s_exec(conn, "agent list",
                     "SELECT k.agent_id, b.code, k.public_key_z85, "
                     "to_char(k.enrolled_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                     "coalesce(to_char(k.revoked_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-') "
                     "FROM agent_keys k JOIN branches b ON b.id = k.branch_id "
                     "ORDER BY k.agent_id, k.enrolled_at", 0, NULL);
        if (!res) {
            rc = 1;
        } else {
            printf("%-20s %-10s %-40s %-20s %s\n", "agent", "branch", "public key", "enrolled",
                   "revoked");
            for (int r = 0; r < PQntuples(res); r++)
                printf("%-20s %-10s %-40s %-20s %s\n", PQgetvalue(res, r, 0),
                       PQgetvalue(res, r, 1), PQgetvalue(res, r, 2), PQgetvalue(res, r, 3),
                       PQgetvalue(res, r, 4));
        }
    }
    PQclear(res);
    bm_db_close(&conn);
    return rc;
}

/* ------------------------------------------------------------------ */
/* user                                                                */
/* ------------------------------------------------------------------ */

static void s_user_usage(FILE *out)
{
    fprintf(out, "usage: branchmark user add NAME --role hq|regional|branch|reviewer|collector\n"
                 "                          [--region CODE] [--branch CODE] [--db CONNINFO]\n"
                 "       branchmark user list [--db CONNINFO]\n"
                 "       branchmark user remove NAME [--db CONNINFO]\n\n"
                 "Creates PostgreSQL login roles in a branchmark group role: hq reads all,\n"
                 "regional reads its region (--region), branch its branch (--branch), reviewer\n"
                 "reads all for the evaluation workflow, collector is the collector's ingest\n"
                 "login.  The password comes from $BM_USER_PASSWORD or the first line of stdin\n"
                 "(never from the command line); only its SCRAM verifier is sent.\n");
}

static bool s_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return !(s[0] >= '0' && s[0] <= '9') && strncmp(s, "pg_", 3) != 0 &&
           strncmp(s, "branchmark_", 11) != 0;
}

/* Reads the password into buf.  Returns 0 or -1 (message printed). */
static int s_read_password(char *buf, size_t size)
{
    const char *env = getenv("BM_USER_PASSWORD");
    if (env) {
        if (strlen(env) >= size) {
            fprintf(stderr, "branchmark: user add: BM_USER_PASSWORD is too long\n");
            return -1;
        }
        snprintf(buf, size, "%s", env);
    } else {
        if (isatty(STDIN_FILENO))
            fprintf(stderr, "password (one line): ");
        if (!fgets(buf, (int)size, stdin)) {
            fprintf(stderr, "branchmark: user add: no password in BM_USER_PASSWORD or on stdin\n");
            return -1;
        }
        buf[strcspn(buf, "\r\n")] = '\0';
    }
    if (strlen(buf) < 8) {
        fprintf(stderr, "branchmark: user add: the password must have at least 8 characters\n");
        return -1;
    }
    return 0;
}

static int s_user_add(PGconn *conn, const char *name, const char *role, const char *region,
                      const char *branch)
{
    static const char *const roles[] = {"hq", "regional", "branch", "reviewer", "collector"};
    bool known = false;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        known = known || !strcmp(role, roles[i]);
    if (!known) {
        fprintf(stderr, "branchmark: user add: --role \"%s\" is not one of hq, regional, branch, "
                "reviewer, collector\n", role);
        return 2;
    }
    if ((!strcmp(role, "regional")) != (region != NULL) ||
        (!strcmp(role, "branch")) != (branch != NULL)) {
        fprintf(stderr, "branchmark: user add: --region goes with (and only with) --role "
                "regional, --branch with --role branch\n");
        return 2;
    }
    char password[S_PASSWORD_MAX];
    if (s_read_password(password, sizeof password) < 0)
        return 2;
    char *verifier = PQencryptPasswordConn(conn, password, name, NULL);
    memset(password, 0, sizeof password);
    if (!verifier) {
        fprintf(stderr, "branchmark: user add: could not hash the password: %s",
                PQerrorMessage(conn));
        return 1;
    }
    char group[64];
    snprintf(group, sizeof group, "branchmark_%s", role);
    const char *p[] = {name, verifier, group, region, branch};
    PGresult *res = s_exec(conn, "user add", "SELECT bm_user_add($1, $2, $3, $4, $5)", 5, p);
    PQfreemem(verifier);
    if (!res)
        return 1;
    PQclear(res);
    printf("created login role %s in %s%s%s%s%s\n", name, group, region ? ", region " : "",
           region ? region : "", branch ? ", branch " : "", branch ? branch : "");
    return 0;
}

int bm_cmd_user(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        s_user_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1], *db = NULL, *name = NULL, *role = NULL, *region = NULL,
               *branch = NULL;
    for (int i = 2; i < argc; i++) {
        if (bm_cli_db_option(argc, argv, &i, &db))
            continue;
        if (!strcmp(argv[i], "--role") && i + 1 < argc)
            role = argv[++i];
        else if (!strcmp(argv[i], "--region") && i + 1 < argc)
            region = argv[++i];
        else if (!strcmp(argv[i], "--branch") && i + 1 < argc)
            branch = argv[++i];
        else if (argv[i][0] != '-' && !name)
            name = argv[i];
        else {
            fprintf(stderr, "branchmark: user %s: unexpected argument \"%s\"\n", sub, argv[i]);
            return 2;
        }
    }
    bool add = !strcmp(sub, "add"), list = !strcmp(sub, "list"), remove = !strcmp(sub, "remove");
    if (!add && !list && !remove) {
        fprintf(stderr, "branchmark: user: unknown subcommand \"%s\"\n", sub);
        s_user_usage(stderr);
        return 2;
    }
    if ((add || remove) && (!name || !s_valid_name(name))) {
        fprintf(stderr, "branchmark: user %s: NAME must be 1..63 of [a-z0-9_], not starting "
                "with a digit, pg_ or branchmark_\n", sub);
        return 2;
    }
    if (add && !role) {
        fprintf(stderr, "branchmark: user add: --role is required\n");
        return 2;
    }
    PGconn *conn = bm_cli_connect(db, NULL);
    if (!conn)
        return 1;
    int rc = 0;
    if (add) {
        rc = s_user_add(conn, name, role, region, branch);
    } else if (remove) {
        const char *p[] = {name};
        PGresult *res = s_exec(conn, "user remove", "SELECT bm_user_remove($1)", 1, p);
        if (!res) {
            rc = 1;
        } else {
            printf("removed login role %s\n", name);
            PQclear(res);
        }
    } else {
        PGresult *res = s_exec(
            conn, "user list",
            "SELECT u.rolname, substr(g.rolname, 12), coalesce(r.code, '-'), "
            "coalesce(b.code, '-') FROM pg_roles u "
            "JOIN pg_auth_members m ON m.member = u.oid "
            "JOIN pg_roles g ON g.oid = m.roleid AND g.rolname IN ('branchmark_collector', "
            "'branchmark_hq', 'branchmark_regional', 'branchmark_branch', 'branchmark_reviewer') "
            "LEFT JOIN access_scopes s ON s.role_name = u.rolname "
            "LEFT JOIN regions r ON r.id = s.region_id LEFT JOIN branches b ON b.id = s.branch_id "
            "WHERE u.rolcanlogin ORDER BY 1", 0, NULL);
        if (!res) {
            rc = 1;
        } else {
            printf("%-24s %-10s %-10s %s\n", "user", "role", "region", "branch");
            for (int r = 0; r < PQntuples(res); r++)
                printf("%-24s %-10s %-10s %s\n", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
                       PQgetvalue(res, r, 2), PQgetvalue(res, r, 3));
            PQclear(res);
        }
    }
    bm_db_close(&conn);
    return rc;
}
