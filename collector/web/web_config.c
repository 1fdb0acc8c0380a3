/* web_config: branchmark-web's config map and checks; see web_config.h. */
#include "web_config.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <string.h>

#include "bm_log.h"

const bm_cfg_entry_t bm_web_config_map[] = {
    {"database", BM_CFG_STR, "", false, offsetof(bm_web_config_t, database), 0, 0,
     "libpq connection string WITHOUT user and password (host, port, dbname, sslmode ...; "
     "empty: the PG* environment); each session connects as the user who logged in"},
    {"listen_address", BM_CFG_STR, "127.0.0.1", false,
     offsetof(bm_web_config_t, listen_address), 0, 0,
     "numeric IPv4 or IPv6 address to listen on (put a TLS proxy in front for other hosts)"},
    {"port", BM_CFG_INT, "8480", false, offsetof(bm_web_config_t, port), 1, 65535,
     "TCP port"},
    {"static_dir", BM_CFG_STR, "/usr/local/share/branchmark/web", false,
     offsetof(bm_web_config_t, static_dir), 0, 0, "directory of the web page's files"},
    {"max_sessions", BM_CFG_INT, "48", false, offsetof(bm_web_config_t, max_sessions), 1,
     100000, "most sessions; each holds one PostgreSQL connection, so keep it well below the "
     "server's max_connections minus what the collectors and tools need (docs/dashboard.md); "
     "logins beyond get 503"},
    {"max_sessions_per_user", BM_CFG_INT, "4", false,
     offsetof(bm_web_config_t, max_sessions_per_user), 1, 100000,
     "sessions one person may hold; a login beyond closes that person's oldest session"},
    {"session_idle_timeout", BM_CFG_DURATION, "30m", false,
     offsetof(bm_web_config_t, session_idle_ms), 1000, 24 * 3600000LL,
     "a session not used for this long is closed"},
    {"session_max_age", BM_CFG_DURATION, "12h", false,
     offsetof(bm_web_config_t, session_max_age_ms), 1000, 7 * 24 * 3600000LL,
     "any session is closed this long after its login"},
    {"max_connections", BM_CFG_INT, "256", false, offsetof(bm_web_config_t, max_connections),
     1, 10000, "concurrent HTTP connections (one thread each)"},
    {"max_connections_per_ip", BM_CFG_INT, "16", false,
     offsetof(bm_web_config_t, max_connections_per_ip), 1, 10000,
     "concurrent HTTP connections of one client address (a TLS proxy in front counts as one "
     "address: raise it there)"},
    {"request_timeout", BM_CFG_DURATION, "30s", false,
     offsetof(bm_web_config_t, request_timeout_ms), 1000, 3600000,
     "an HTTP connection idle for this long is closed"},
    {"request_deadline", BM_CFG_DURATION, "10s", false,
     offsetof(bm_web_config_t, request_deadline_ms), 1000, 3600000,
     "a request must arrive whole (headers and body) within this of its first byte, or its "
     "connection is closed (slow or stalled clients)"},
    {"statement_timeout", BM_CFG_DURATION, "30s", false,
     offsetof(bm_web_config_t, statement_timeout_ms), 100, 3600000,
     "PostgreSQL statement_timeout of each session's connection"},
    {"max_body", BM_CFG_SIZE, "4K", false, offsetof(bm_web_config_t, max_body), 256, 65536,
     "largest request body accepted (the login); larger ones get 413"},
    {"max_response", BM_CFG_SIZE, "32M", false, offsetof(bm_web_config_t, max_response),
     65536, 1024LL * 1024 * 1024, "largest response body; a larger report gets 500"},
    {"require_db_password", BM_CFG_BOOL, "true", false,
     offsetof(bm_web_config_t, require_db_password), 0, 0,
     "refuse logins when PostgreSQL did not ask for the password (trust authentication "
     "would let anyone in as anyone); false only for a local demo"},
    {"cookie_secure", BM_CFG_BOOL, "false", false, offsetof(bm_web_config_t, cookie_secure),
     0, 0, "mark the session cookie Secure (set it when a TLS proxy is in front)"},
    {"max_failed_logins", BM_CFG_INT, "10", false,
     offsetof(bm_web_config_t, max_failed_logins), 1, 100000,
     "failed logins per minute for one client address, and for one account; attempts are "
     "counted before they reach the database, and further ones get 429"},
    {"login_lockout", BM_CFG_DURATION, "60s", false,
     offsetof(bm_web_config_t, login_lockout_ms), 1000, 3600000,
     "how long an address or account is locked after max_failed_logins; each further "
     "lock-out within the hour doubles it (up to an hour)"},
    {"log_level", BM_CFG_STR, "info", false, offsetof(bm_web_config_t, log_level), 0, 0,
     "debug, info, warn or error (re-read on SIGHUP)"},
    {NULL, 0, NULL, false, 0, 0, 0, NULL},
};

/* Fails if conninfo sets user or password: a shared login would make every
 * person the same role and defeat row-level security. */
static int s_check_conninfo(const char *path, const char *conninfo, bm_err_t *err)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        bm_err_set(err, "%s: database: not a valid connection string: %s", path,
                   perr ? perr : "out of memory");
        PQfreemem(perr);
        return -1;
    }
    int rc = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if ((!strcmp(o->keyword, "user") || !strcmp(o->keyword, "password")) && o->val &&
            *o->val) {
            rc = bm_err_set(err, "%s: database: must not name a %s; each session connects "
                            "as the user who logged in", path, o->keyword);
            break;
        }
    PQconninfoFree(opts);
    return rc;
}

int bm_web_config_load(const char *path, bm_web_config_t *cfg, bm_err_t *err)
{
    memset(cfg, 0, sizeof *cfg);
    if (bm_config_load(path, bm_web_config_map, cfg, err) < 0)
        return -1;
    bm_log_level_t level;
    if (bm_log_level_parse(cfg->log_level, &level) < 0)
        return bm_err_set(err, "%s: log_level: \"%s\" is not one of debug, info, warn, error",
                          path, cfg->log_level);
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, cfg->listen_address, addr) != 1 &&
        inet_pton(AF_INET6, cfg->listen_address, addr) != 1)
        return bm_err_set(err, "%s: listen_address: \"%s\" is not a numeric IPv4 or IPv6 "
                          "address", path, cfg->listen_address);
    if (!*cfg->static_dir)
        return bm_err_set(err, "%s: static_dir: must not be empty", path);
    return s_check_conninfo(path, cfg->database, err);
}

void bm_web_config_free(bm_web_config_t *cfg)
{
    bm_config_free(bm_web_config_map, cfg);
}
