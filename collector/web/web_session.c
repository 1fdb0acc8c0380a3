/* web_session: the session table of branchmark-web; see web_session.h. */
#include "web_session.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "bm_log.h"
#include "bm_time.h"
#include "db.h"

struct bm_web_session {
    char token[BM_WEB_TOKEN_HEX + 1];
    char user[BM_WEB_USER_MAX + 1];
    PGconn *conn;               /* owned; used only with `lock` held */
    pthread_mutex_t lock;       /* held by the request using conn */
    int64_t created_ms;         /* monotonic */
    int64_t last_ms;            /* monotonic, last acquire */
    int refs;                   /* the table's (while listed) + requests'; under table lock */
    bool listed;                /* still in the table */
};

struct bm_web_sessions {
    bm_web_sessions_opts_t opts;
    char *conninfo;             /* copy of opts.conninfo */
    pthread_mutex_t lock;       /* guards slots and every session's refs/listed/last_ms */
    bm_web_session_t **slots;   /* max_sessions entries, NULL = free */
    size_t count;
};

static void s_session_free(bm_web_session_t *s)
{
    if (!s)
        return;
    bm_db_close(&s->conn);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

bm_web_sessions_t *bm_web_sessions_new(const bm_web_sessions_opts_t *opts, bm_err_t *err)
{
    bm_web_sessions_t *self = calloc(1, sizeof *self);
    if (!self) {
        bm_err_set(err, "out of memory");
        return NULL;
    }
    self->opts = *opts;
    self->conninfo = strdup(opts->conninfo ? opts->conninfo : "");
    self->slots = calloc(opts->max_sessions ? opts->max_sessions : 1, sizeof *self->slots);
    if (!self->conninfo || !self->slots) {
        free(self->conninfo);
        free(self->slots);
        free(self);
        bm_err_set(err, "out of memory");
        return NULL;
    }
    self->opts.conninfo = self->conninfo;
    pthread_mutex_init(&self->lock, NULL);
    return self;
}

void bm_web_sessions_destroy(bm_web_sessions_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bm_web_sessions_t *self = *self_p;
    for (size_t i = 0; i < self->opts.max_sessions; i++)
        s_session_free(self->slots[i]);
    pthread_mutex_destroy(&self->lock);
    free(self->slots);
    free(self->conninfo);
    free(self);
    *self_p = NULL;
}

/* Constant-time comparison, so response times do not leak a token's prefix. */
static bool s_token_eq(const char *a, const char *b)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < BM_WEB_TOKEN_HEX; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static bool s_token_valid(const char *t)
{
    if (!t)
        return false;
    size_t i;
    for (i = 0; i < BM_WEB_TOKEN_HEX; i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
            return false;
    return t[i] == '\0';
}

static int s_new_token(char token[BM_WEB_TOKEN_HEX + 1], bm_err_t *err)
{
    unsigned char raw[BM_WEB_TOKEN_HEX / 2];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0)
            return bm_err_set(err, "could not read random bytes for a session token");
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof raw; i++) {
        token[2 * i] = hex[raw[i] >> 4];
        token[2 * i + 1] = hex[raw[i] & 15];
    }
    token[BM_WEB_TOKEN_HEX] = '\0';
    return 0;
}

static bool s_expired(const bm_web_sessions_t *self, const bm_web_session_t *s, int64_t now)
{
    return now - s->last_ms >= self->opts.idle_ms || now - s->created_ms >= self->opts.max_age_ms;
}

/* Takes slot i out of the table (table lock held).  Returns the session if
 * the caller must free it (no request holds it), else NULL. */
static bm_web_session_t *s_unlist(bm_web_sessions_t *self, size_t i)
{
    bm_web_session_t *s = self->slots[i];
    self->slots[i] = NULL;
    self->count--;
    s->listed = false;
    return --s->refs == 0 ? s : NULL;
}

/* How many sessions user holds (lock held); *oldest (if not NULL) gets
 * the slot of the oldest of them. */
static size_t s_user_sessions(const bm_web_sessions_t *self, const char *user, size_t *oldest)
{
    size_t n = 0, old = 0;
    for (size_t i = 0; i < self->opts.max_sessions; i++) {
        const bm_web_session_t *s = self->slots[i];
        if (!s || strcmp(s->user, user))
            continue;
        if (!n || s->created_ms < self->slots[old]->created_ms)
            old = i;
        n++;
    }
    if (oldest)
        *oldest = old;
    return n;
}

/* Role checks after the connection is made: the password was checked and
 * the role is not a superuser (which row-level security does not bind). */
static bm_web_login_t s_check_role(bm_web_sessions_t *self, PGconn *conn, const char *user,
                                   bm_err_t *err)
{
    const char *su = PQparameterStatus(conn, "is_superuser");
    if (!su || strcmp(su, "off")) {
        bm_err_set(err, "user \"%s\" is a superuser; superusers may not log in to the web",
                   user);
        return BM_WEB_LOGIN_DENIED;
    }
    if (self->opts.require_db_password && !PQconnectionUsedPassword(conn)) {
        bm_err_set(err, "the database did not ask for the password of \"%s\" (trust "
                   "authentication?); logins refused while require_db_password is on", user);
        return BM_WEB_LOGIN_UNAVAILABLE;
    }
    char sql[96];
    snprintf(sql, sizeof sql, "SET statement_timeout = %lld",
             (long long)self->opts.statement_timeout_ms);
    if (bm_db_exec(conn, sql, err) < 0)
        return BM_WEB_LOGIN_UNAVAILABLE;
    return BM_WEB_LOGIN_OK;
}

bm_web_login_t bm_web_sessions_login(bm_web_sessions_t *self, const char *user,
                                     const char *password, char token[BM_WEB_TOKEN_HEX + 1],
                                     bm_err_t *err)
{
    size_t ulen = strlen(user);
    if (ulen == 0 || ulen > BM_WEB_USER_MAX ||
        strspn(user, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-") !=
            ulen) {
        bm_err_set(err, "user name is empty, longer than %d characters or has characters "
                   "other than letters, digits, _ . @ -", BM_WEB_USER_MAX);
        return BM_WEB_LOGIN_DENIED;
    }
    if (!*password || strlen(password) > BM_WEB_PASSWORD_MAX) {
        bm_err_set(err, "password is empty or longer than %d bytes", BM_WEB_PASSWORD_MAX);
        return BM_WEB_LOGIN_DENIED;
    }
    bm_web_sessions_expire(self);
    pthread_mutex_lock(&self->lock);
    /* A person at their own cap frees a slot by this login. */
    bool full = self->count >= self->opts.max_sessions &&
                s_user_sessions(self, user, NULL) < self->opts.max_sessions_per_user;
    pthread_mutex_unlock(&self->lock);
    if (full) {
        bm_err_set(err, "too many sessions (max_sessions = %zu)", self->opts.max_sessions);
        return BM_WEB_LOGIN_UNAVAILABLE;
    }
    bm_err_t cerr;
    PGconn *conn = bm_db_connect_as(self->conninfo, user, password, "branchmark-web", &cerr);
    if (!conn) {
        /* Tell a wrong password from a database that is down: the server
         * answers a ping without any credentials. */
        const char *keys[] = {"dbname", "connect_timeout", NULL};
        const char *vals[] = {self->conninfo, "5", NULL};
        if (PQpingParams(keys, vals, 1) == PQPING_OK) {
            bm_err_set(err, "%s", cerr.msg);
            return BM_WEB_LOGIN_DENIED;
        }
        bm_err_set(err, "%s", cerr.msg);
        return BM_WEB_LOGIN_UNAVAILABLE;
    }
    bm_web_login_t rc = s_check_role(self, conn, user, err);
    bm_web_session_t *s = rc == BM_WEB_LOGIN_OK ? calloc(1, sizeof *s) : NULL;
    if (rc == BM_WEB_LOGIN_OK && (!s || s_new_token(s->token, err) < 0)) {
        if (!s)
            bm_err_set(err, "out of memory");
        rc = BM_WEB_LOGIN_UNAVAILABLE;
    }
    if (rc != BM_WEB_LOGIN_OK) {
        free(s);
        bm_db_close(&conn);
        return rc;
    }
    snprintf(s->user, sizeof s->user, "%s", user);
    s->conn = conn;
    pthread_mutex_init(&s->lock, NULL);
    s->created_ms = s->last_ms = bm_mono_ms();
    s->refs = 1;
    s->listed = true;
    pthread_mutex_lock(&self->lock);
    size_t oldest, i;
    bm_web_session_t *evicted = NULL;
    bool evict = s_user_sessions(self, user, &oldest) >= self->opts.max_sessions_per_user;
    if (evict)
        evicted = s_unlist(self, oldest);
    for (i = 0; i < self->opts.max_sessions && self->slots[i]; i++)
        ;
    if (i < self->opts.max_sessions) {
        self->slots[i] = s;
        self->count++;
    }
    pthread_mutex_unlock(&self->lock);
    s_session_free(evicted);
    if (evict)
        bm_info("session", "\"%s\" has %zu sessions (max_sessions_per_user): closed the oldest",
                user, self->opts.max_sessions_per_user);
    if (i == self->opts.max_sessions) {
        /* Filled up by concurrent logins meanwhile. */
        s_session_free(s);
        bm_err_set(err, "too many sessions (max_sessions = %zu)", self->opts.max_sessions);
        return BM_WEB_LOGIN_UNAVAILABLE;
    }
    memcpy(token, s->token, BM_WEB_TOKEN_HEX + 1);
    return BM_WEB_LOGIN_OK;
}

bm_web_session_t *bm_web_sessions_acquire(bm_web_sessions_t *self, const char *token)
{
    if (!s_token_valid(token))
        return NULL;
    bm_web_session_t *found = NULL, *dead = NULL;
    int64_t now = bm_mono_ms();
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->opts.max_sessions; i++) {
        bm_web_session_t *s = self->slots[i];
        if (!s || !s_token_eq(s->token, token))
            continue;
        if (s_expired(self, s, now)) {
            dead = s_unlist(self, i);
        } else {
            s->refs++;
            s->last_ms = now;
            found = s;
        }
        break;
    }
    pthread_mutex_unlock(&self->lock);
    s_session_free(dead);
    if (found)
        pthread_mutex_lock(&found->lock);
    return found;
}

void bm_web_sessions_release(bm_web_sessions_t *self, bm_web_session_t **session_p)
{
    if (!session_p || !*session_p)
        return;
    bm_web_session_t *s = *session_p;
    *session_p = NULL;
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_lock(&self->lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&self->lock);
    if (last)
        s_session_free(s);
}

PGconn *bm_web_session_conn(bm_web_session_t *session, bm_err_t *err)
{
    if (PQstatus(session->conn) != CONNECTION_OK) {
        /* PQreset reconnects with the parameters libpq kept in the
         * connection object (the password included); we keep no copy. */
        bm_warn("session", "connection of \"%s\" lost; reconnecting", session->user);
        PQreset(session->conn);
        if (PQstatus(session->conn) != CONNECTION_OK) {
            bm_err_set(err, "database unreachable");
            return NULL;
        }
    }
    return session->conn;
}

const char *bm_web_session_user(const bm_web_session_t *session)
{
    return session->user;
}

int bm_web_sessions_logout(bm_web_sessions_t *self, const char *token)
{
    if (!s_token_valid(token))
        return 0;
    bm_web_session_t *dead = NULL;
    int found = 0;
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->opts.max_sessions; i++) {
        if (self->slots[i] && s_token_eq(self->slots[i]->token, token)) {
            dead = s_unlist(self, i);
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&self->lock);
    s_session_free(dead);
    return found;
}

size_t bm_web_sessions_expire(bm_web_sessions_t *self)
{
    /* Collected under the lock, closed after it (PQfinish talks to the server). */
    bm_web_session_t *dead[64];
    size_t ndead = 0, closed = 0;
    int64_t now = bm_mono_ms();
    bool more = true;
    while (more) {
        more = false;
        ndead = 0;
        pthread_mutex_lock(&self->lock);
        for (size_t i = 0; i < self->opts.max_sessions; i++) {
            bm_web_session_t *s = self->slots[i];
            if (!s || !s_expired(self, s, now))
                continue;
            if (ndead == sizeof dead / sizeof *dead) {
                more = true;
                break;
            }
            bm_info("session", "session of \"%s\" expired", s->user);
            bm_web_session_t *d = s_unlist(self, i);
            if (d)
                dead[ndead++] = d;
            closed++;
        }
        pthread_mutex_unlock(&self->lock);
        for (size_t k = 0; k < ndead; k++)
            s_session_free(dead[k]);
    }
    return closed;
}

size_t bm_web_sessions_count(bm_web_sessions_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t n = self->count;
    pthread_mutex_unlock(&self->lock);
    return n;
}
