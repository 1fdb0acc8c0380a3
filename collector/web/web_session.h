/* web_session: the login sessions of branchmark-web.
 *
 * A session is created by a login: it opens one PostgreSQL connection with
 * the person's own user name and password (so PostgreSQL checks the
 * password and row-level security decides what the person sees) and is
 * known by a token of 32 random bytes (getrandom), 64 hex digits.  The table
 * has a hard cap, and one person at most max_sessions_per_user sessions (a
 * new login closes their oldest), so one login cannot hold every
 * PostgreSQL connection the table may open; a session unused for the idle timeout, or older than the
 * maximum age, is closed.  The password is never logged; the only copy kept
 * is inside libpq's connection object (for PQreset after a lost connection).
 *
 * Threads: the table has one mutex; each session has its own, held while a
 * request uses the session's connection (libpq connections are not shared
 * between threads).  A session removed while in use (logout, expiry) is
 * freed by the last request that releases it.
 * Owns: the sessions and their connections. */
#ifndef BM_WEB_SESSION_H
#define BM_WEB_SESSION_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"

#define BM_WEB_TOKEN_HEX 64
#define BM_WEB_USER_MAX 63
#define BM_WEB_PASSWORD_MAX 1024

typedef struct bm_web_sessions bm_web_sessions_t;
typedef struct bm_web_session bm_web_session_t;

typedef struct {
    const char *conninfo;         /* without user/password (web_config checks) */
    size_t max_sessions;
    size_t max_sessions_per_user; /* beyond: the person's oldest session is closed */
    int64_t idle_ms;
    int64_t max_age_ms;
    int64_t statement_timeout_ms;
    bool require_db_password;
} bm_web_sessions_opts_t;

/* Returns NULL with err when memory runs out. */
bm_web_sessions_t *bm_web_sessions_new(const bm_web_sessions_opts_t *opts, bm_err_t *err);
/* Closes every session.  No request may be running (the server is stopped). */
void bm_web_sessions_destroy(bm_web_sessions_t **self_p);

/* Outcomes of a login. */
typedef enum {
    BM_WEB_LOGIN_OK = 0,
    BM_WEB_LOGIN_DENIED,        /* wrong user or password, or a refused role: 401 */
    BM_WEB_LOGIN_UNAVAILABLE,   /* database down, table full, misconfigured: 503 */
} bm_web_login_t;

/* Connects as user/password and creates a session; writes its token (64 hex
 * digits and a NUL) into token.  On failure err says why, for the log and
 * (DENIED: generically) for the client; never with the password. */
bm_web_login_t bm_web_sessions_login(bm_web_sessions_t *self, const char *user,
                                     const char *password, char token[BM_WEB_TOKEN_HEX + 1],
                                     bm_err_t *err);

/* The live session of token, locked for the caller's use, or NULL (unknown,
 * malformed or expired token).  Release it with bm_web_sessions_release. */
bm_web_session_t *bm_web_sessions_acquire(bm_web_sessions_t *self, const char *token);
void bm_web_sessions_release(bm_web_sessions_t *self, bm_web_session_t **session_p);

/* The session's connection, reset first if it was lost (a PostgreSQL
 * restart).  NULL with err when the database cannot be reached. */
PGconn *bm_web_session_conn(bm_web_session_t *session, bm_err_t *err);
const char *bm_web_session_user(const bm_web_session_t *session);

/* Ends the session of token, if any.  Returns 1 if there was one. */
int bm_web_sessions_logout(bm_web_sessions_t *self, const char *token);

/* Closes the expired sessions; returns how many. */
size_t bm_web_sessions_expire(bm_web_sessions_t *self);
size_t bm_web_sessions_count(bm_web_sessions_t *self);

#endif
