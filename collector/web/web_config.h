/* web_config: branchmark-web's configuration file (bm_config map).
 *
 * Keys (branchmark-web --help prints them with defaults): database,
 * listen_address, port, static_dir, max_sessions, session_idle_timeout,
 * session_max_age, max_connections, request_timeout, statement_timeout,
 * max_body, max_response, require_db_password, cookie_secure,
 * max_failed_logins, log_level.
 * The database conninfo names no user and no password: every session
 * connects as the person who logged in (docs/api.md).
 * Owns the strings in bm_web_config_t; bm_web_config_free releases them. */
#ifndef BM_WEB_CONFIG_H
#define BM_WEB_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "bm_config.h"
#include "bm_err.h"

typedef struct {
    char *database;             /* libpq conninfo without user/password */
    char *listen_address;       /* numeric IPv4 or IPv6 address */
    int64_t port;
    char *static_dir;           /* the web page's files */
    int64_t max_sessions;       /* hard cap of the session table */
    int64_t max_sessions_per_user; /* a login beyond closes that person's oldest */
    int64_t session_idle_ms;    /* a session unused this long is closed */
    int64_t session_max_age_ms; /* and any session this old */
    int64_t max_connections;    /* concurrent HTTP connections (one thread each) */
    int64_t max_connections_per_ip; /* of one client address */
    int64_t request_timeout_ms; /* an idle HTTP connection is closed after this */
    int64_t request_deadline_ms; /* a request must arrive whole within this */
    int64_t statement_timeout_ms; /* PostgreSQL statement_timeout of each session */
    int64_t max_body;           /* request body cap (login) */
    int64_t max_response;       /* response body cap */
    bool require_db_password;   /* refuse logins PostgreSQL did not check */
    bool cookie_secure;         /* add "Secure" to the session cookie */
    int64_t max_failed_logins;  /* per client address or account and minute, then 429 */
    int64_t login_lockout_ms;   /* the first lock-out's length (doubling after) */
    char *log_level;
} bm_web_config_t;

extern const bm_cfg_entry_t bm_web_config_map[];

/* Loads path (defaults for keys not in it) and checks what the map cannot:
 * the log level, the address, and that database names no user or password.
 * Returns 0, or -1 with err; cfg must be freed either way. */
int bm_web_config_load(const char *path, bm_web_config_t *cfg, bm_err_t *err);

void bm_web_config_free(bm_web_config_t *cfg);

#endif
