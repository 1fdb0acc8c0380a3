/* web_api: routing, authentication and handlers of branchmark-web; see
 * web_api.h and docs/api.md.  GET /metrics (anonymous, like /api/health;
 * docs/operations.md says why and how to keep it off the public proxy) is
 * the counters in the Prometheus text format: requests per endpoint and
 * status, logins per result, lock-outs and sessions. */
#include "web_api.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bm_log.h"
#include "actions.h"
#include "bm_prom.h"
#include "bm_time.h"
#include "db.h"
#include "output.h"
#include "render.h"
#include "reports.h"
#include "web_guard.h"
#include "web_session.h"

#define S_VALUE_MAX 256         /* longest query parameter value */
#define S_PATH_MAX 512          /* longest static file path */
#define S_HEALTH_CACHE_MS 2000  /* how long a database ping result is reused */
#define S_ROUTES 15             /* entries of s_routes */
/* Endpoints counted for /metrics: the routes, then these (fixed labels, so
 * a scan of random paths cannot grow the page). */
#define S_EP_STATIC S_ROUTES    /* a file of static_dir (or a 404 outside /api/) */
#define S_EP_UNKNOWN (S_ROUTES + 1)   /* an unknown /api/ path */
#define S_EP_METRICS (S_ROUTES + 2)
#define S_ENDPOINTS (S_ROUTES + 3)
#define S_STATUSES 14           /* s_statuses, the last one "other" */
#define S_PAGE_MAX (256 * 1024)

struct bm_web_api {
    const bm_web_config_t *cfg;         /* borrowed */
    bm_web_sessions_t *sessions;
    int64_t started_ms;                 /* monotonic */
    atomic_ullong requests, errors_4xx, errors_5xx, logins, logins_failed, logins_throttled;
    atomic_ullong logins_denied, logins_unavailable;
    atomic_ullong by_route[S_ENDPOINTS][S_STATUSES]; /* requests per endpoint and status */
    int64_t started_wall_ms;
    pthread_mutex_t health_lock;        /* guards the two below */
    int64_t health_checked_ms;
    bool health_db_ok;
    bm_web_guard_t *guard;              /* login throttling */
};

bm_web_api_t *bm_web_api_new(const bm_web_config_t *cfg, bm_err_t *err)
{
    bm_web_api_t *self = calloc(1, sizeof *self);
    if (!self) {
        bm_err_set(err, "out of memory");
        return NULL;
    }
    self->cfg = cfg;
    bm_web_sessions_opts_t so = {
        .conninfo = cfg->database,
        .max_sessions = (size_t)cfg->max_sessions,
        .max_sessions_per_user = (size_t)cfg->max_sessions_per_user,
        .idle_ms = cfg->session_idle_ms,
        .max_age_ms = cfg->session_max_age_ms,
        .statement_timeout_ms = cfg->statement_timeout_ms,
        .require_db_password = cfg->require_db_password,
    };
    self->sessions = bm_web_sessions_new(&so, err);
    self->guard = self->sessions ? bm_web_guard_new((int)cfg->max_failed_logins,
                                                    cfg->login_lockout_ms, err)
                                 : NULL;
    if (!self->guard) {
        bm_web_sessions_destroy(&self->sessions);
        free(self);
        return NULL;
    }
    self->started_ms = bm_mono_ms();
    self->started_wall_ms = bm_now_ms();
    pthread_mutex_init(&self->health_lock, NULL);
    return self;
}

void bm_web_api_destroy(bm_web_api_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bm_web_api_t *self = *self_p;
    bm_web_sessions_destroy(&self->sessions);
    bm_web_guard_destroy(&self->guard);
    pthread_mutex_destroy(&self->health_lock);
    free(self);
    *self_p = NULL;
}

void bm_web_api_tick(bm_web_api_t *self)
{
    bm_web_sessions_expire(self->sessions);
}

void bm_web_api_report(bm_web_api_t *self)
{
    bm_info("api", "requests %llu, 4xx %llu, 5xx %llu, logins %llu, failed logins %llu, "
                   "sessions %zu", (unsigned long long)self->requests,
            (unsigned long long)self->errors_4xx, (unsigned long long)self->errors_5xx,
            (unsigned long long)self->logins, (unsigned long long)self->logins_failed,
            bm_web_sessions_count(self->sessions));
}

/* ---- responses ----------------------------------------------------------- */

/* Sends v (consumed) as the JSON body. */
static void s_json(bm_web_resp_t *resp, int status, json_t *v)
{
    char *text = v ? json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(v);
    resp->status = status;
    resp->content_type = "application/json";
    if (!text) {
        resp->status = 500;
        resp->body = strdup("{\"error\": \"out of memory\"}\n");
        resp->body_len = resp->body ? strlen(resp->body) : 0;
        return;
    }
    size_t n = strlen(text);
    resp->body = malloc(n + 2);
    if (resp->body) {
        memcpy(resp->body, text, n);
        resp->body[n] = '\n';
        resp->body[n + 1] = '\0';
        resp->body_len = n + 1;
    }
    free(text);
}

static void s_error(bm_web_resp_t *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_error(bm_web_resp_t *resp, int status, const char *fmt, ...)
{
    char msg[BM_ERR_MSG_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *v = json_object();
    json_object_set_new(v, "error", json_string(msg));
    s_json(resp, status, v);
}

/* ---- authentication ------------------------------------------------------- */

/* The token of the request: the bm_session cookie, else "Bearer <token>". */
static const char *s_token(const bm_web_req_t *req)
{
    if (req->session_cookie && *req->session_cookie)
        return req->session_cookie;
    const char *a = req->authorization;
    if (a && !strncasecmp(a, "Bearer ", 7))
        return a + 7;
    return NULL;
}

/* The request's session, locked; or NULL after a 401 was set in resp. */
static bm_web_session_t *s_auth(bm_web_api_t *self, const bm_web_req_t *req,
                                bm_web_resp_t *resp)
{
    bm_web_session_t *s = bm_web_sessions_acquire(self->sessions, s_token(req));
    if (!s) {
        s_error(resp, 401, s_token(req) ? "session expired or unknown; log in again"
                                        : "not logged in (POST /api/login)");
        return NULL;
    }
    snprintf(resp->user, sizeof resp->user, "%s", bm_web_session_user(s));
    return s;
}

/* Decodes application/x-www-form-urlencoded field `key` of body into out.
 * Returns 0, or -1 if absent or longer than size - 1. */
static int s_form_value(const char *body, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    for (const char *p = body; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, key, klen) || p[klen] != '=')
            continue;
        size_t n = 0;
        for (const char *q = p + klen + 1; *q && *q != '&'; q++) {
            int c = (unsigned char)*q;
            if (c == '+') {
                c = ' ';
            } else if (c == '%' && q[1] && q[2]) {
                char hex[3] = {q[1], q[2], 0};
                char *end;
                long v = strtol(hex, &end, 16);
                if (*end || v <= 0)
                    return -1;
                c = (int)v;
                q += 2;
            }
            if (n + 1 >= size)
                return -1;
            out[n++] = (char)c;
        }
        out[n] = '\0';
        return 0;
    }
    return -1;
}

static void s_login(bm_web_api_t *self, const bm_web_req_t *req, bm_web_resp_t *resp)
{
    char user[BM_WEB_USER_MAX + 2] = "", password[BM_WEB_PASSWORD_MAX + 2] = "";
    if (req->body_too_large) {
        s_error(resp, 413, "login: request body larger than %lld bytes",
                (long long)self->cfg->max_body);
        return;
    }
    const char *ct = req->content_type ? req->content_type : "";
    int ok = 0;
    if (!strncasecmp(ct, "application/json", 16)) {
        json_error_t jerr;
        json_t *v = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
        const char *u = json_string_value(json_object_get(v, "user"));
        const char *pw = json_string_value(json_object_get(v, "password"));
        if (u && pw && strlen(u) < sizeof user && strlen(pw) < sizeof password) {
            snprintf(user, sizeof user, "%s", u);
            snprintf(password, sizeof password, "%s", pw);
            ok = 1;
        }
        if (pw)     /* jansson's copy of the password */
            explicit_bzero((char *)pw, strlen(pw));
        json_decref(v);
    } else if (!strncasecmp(ct, "application/x-www-form-urlencoded", 33)) {
        ok = s_form_value(req->body, "user", user, sizeof user) == 0 &&
             s_form_value(req->body, "password", password, sizeof password) == 0;
    } else {
        s_error(resp, 415, "login: send JSON {\"user\": ..., \"password\": ...} or a form "
                           "(application/x-www-form-urlencoded)");
        return;
    }
    if (!ok || !user[0] || !password[0]) {
        explicit_bzero(password, sizeof password);
        s_error(resp, 400, "login: \"user\" and \"password\" are required (strings)");
        return;
    }
    /* Counted before PostgreSQL sees it (web_guard.h). */
    const char *which;
    int64_t wait = bm_web_guard_begin(self->guard, req->peer, user, &which);
    if (wait > 0) {
        explicit_bzero(password, sizeof password);
        self->logins_failed++;
        self->logins_throttled++;
        bm_debug("api", "login of \"%s\" from %s refused: the %s is locked for %lld s", user,
                 req->peer, which, (long long)wait);
        snprintf(resp->retry_after, sizeof resp->retry_after, "%lld", (long long)wait);
        s_error(resp, 429, "too many failed logins for this %s; try again in %lld s", which,
                (long long)wait);
        return;
    }
    char token[BM_WEB_TOKEN_HEX + 1];
    bm_err_t err;
    bm_web_login_t rc = bm_web_sessions_login(self->sessions, user, password, token, &err);
    explicit_bzero(password, sizeof password);
    bm_web_guard_end(self->guard, req->peer, user, rc == BM_WEB_LOGIN_DENIED,
                     rc == BM_WEB_LOGIN_OK);
    if (rc != BM_WEB_LOGIN_OK) {
        self->logins_failed++;
        if (rc == BM_WEB_LOGIN_DENIED)
            self->logins_denied++;
        else
            self->logins_unavailable++;
        if (rc == BM_WEB_LOGIN_DENIED) {
            bm_warn("api", "login of \"%s\" from %s refused: %s", user, req->peer, err.msg);
            s_error(resp, 401, "login failed: wrong user or password, or not allowed here");
        } else {
            bm_error("api", "login of \"%s\" from %s failed: %s", user, req->peer, err.msg);
            s_error(resp, 503, "login not possible now: %s", err.msg);
        }
        return;
    }
    self->logins++;
    bm_info("api", "login of \"%s\" from %s", user, req->peer);
    snprintf(resp->user, sizeof resp->user, "%s", user);
    snprintf(resp->set_cookie, sizeof resp->set_cookie,
             "bm_session=%s; HttpOnly; SameSite=Strict; Path=/%s", token,
             self->cfg->cookie_secure ? "; Secure" : "");
    json_t *v = json_object();
    json_object_set_new(v, "user", json_string(user));
    json_object_set_new(v, "token", json_string(token));
    json_object_set_new(v, "expires_in", json_integer(self->cfg->session_idle_ms / 1000));
    s_json(resp, 200, v);
    explicit_bzero(token, sizeof token);
}

static void s_logout(bm_web_api_t *self, const bm_web_req_t *req, bm_web_resp_t *resp)
{
    bm_web_sessions_logout(self->sessions, s_token(req));
    resp->status = 204;
    snprintf(resp->set_cookie, sizeof resp->set_cookie,
             "bm_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
}

/* ---- health --------------------------------------------------------------- */

static bool s_db_reachable(bm_web_api_t *self)
{
    pthread_mutex_lock(&self->health_lock);
    int64_t now = bm_mono_ms();
    if (self->health_checked_ms == 0 || now - self->health_checked_ms >= S_HEALTH_CACHE_MS) {
        const char *keys[] = {"dbname", "connect_timeout", NULL};
        const char *vals[] = {self->cfg->database, "3", NULL};
        self->health_db_ok = PQpingParams(keys, vals, 1) == PQPING_OK;
        self->health_checked_ms = bm_mono_ms();
    }
    bool ok = self->health_db_ok;
    pthread_mutex_unlock(&self->health_lock);
    return ok;
}

/* Health for monitors: up or degraded, and the database.  The counters of
 * use (requests, sessions) only for a logged-in caller. */
static void s_health(bm_web_api_t *self, const bm_web_req_t *req, bm_web_resp_t *resp)
{
    bool db = s_db_reachable(self);
    bm_web_session_t *s = bm_web_sessions_acquire(self->sessions, s_token(req));
    json_t *v = json_object();
    json_object_set_new(v, "status", json_string(db ? "ok" : "degraded"));
    json_object_set_new(v, "uptime_s", json_integer((bm_mono_ms() - self->started_ms) / 1000));
    if (s) {
        bm_web_sessions_release(self->sessions, &s);
        json_object_set_new(v, "requests", json_integer((json_int_t)self->requests));
        json_object_set_new(v, "errors_4xx", json_integer((json_int_t)self->errors_4xx));
        json_object_set_new(v, "errors_5xx", json_integer((json_int_t)self->errors_5xx));
        json_object_set_new(v, "sessions",
                            json_integer((json_int_t)bm_web_sessions_count(self->sessions)));
        json_object_set_new(v, "logins_throttled",
                            json_integer((json_int_t)self->logins_throttled));
        json_object_set_new(v, "lockouts",
                            json_integer((json_int_t)bm_web_guard_lockouts(self->guard)));
    }
    json_object_set_new(v, "db", json_string(db ? "ok" : "unreachable"));
    s_json(resp, 200, v);
}

/* ---- pickers and /api/me --------------------------------------------------- */

/* Runs sql on the session's connection; 500/503 in resp on failure. */
static PGresult *s_select(bm_web_session_t *s, const char *what, const char *sql, int n,
                          const char *const *params, bm_web_resp_t *resp)
{
    bm_err_t err;
    PGconn *conn = bm_web_session_conn(s, &err);
    if (!conn) {
        s_error(resp, 503, "%s", err.msg);
        return NULL;
    }
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, what, &err);
        PQclear(res);
        bm_error("api", "%s", err.msg);
        s_error(resp, PQstatus(conn) == CONNECTION_OK ? 500 : 503, "%s", err.msg);
        return NULL;
    }
    return res;
}

/* Regions with at least one branch the role can see (row-level security);
 * the column names are the JSON keys of /api/regions. */
static const char s_regions_sql[] =
    "SELECT r.code, r.name FROM regions r"
    " WHERE EXISTS (SELECT 1 FROM branches b WHERE b.region_id = r.id AND b.active)"
    " ORDER BY r.code";

/* Fails (400) on any parameter not named in `allowed` (" a b "). */
static int s_only_params(const bm_web_req_t *req, const char *allowed, bm_web_resp_t *resp)
{
    if (req->too_many_params) {
        s_error(resp, 400, "more than %d parameters", BM_WEB_MAX_PARAMS);
        return -1;
    }
    for (int i = 0; i < req->nparams; i++) {
        char key[S_VALUE_MAX + 3];
        snprintf(key, sizeof key, " %s ", req->params[i].name);
        if (!strstr(allowed, key)) {
            char list[64];
            size_t al = strlen(allowed);
            snprintf(list, sizeof list, "%.*s", al > 2 ? (int)(al - 2) : 0, allowed + 1);
            s_error(resp, 400, "unknown parameter \"%s\" (this endpoint takes %s)",
                    req->params[i].name, list[0] ? list : "none");
            return -1;
        }
    }
    return 0;
}

/* The rows of res (consumed) as an array of objects keyed by column name. */
static json_t *s_rows_json(PGresult *res)
{
    json_t *v = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *row = json_object();
        for (int k = 0; k < PQnfields(res); k++)
            json_object_set_new(row, PQfname(res, k), json_string(PQgetvalue(res, i, k)));
        json_array_append_new(v, row);
    }
    PQclear(res);
    return v;
}

static void s_me(bm_web_session_t *s, const bm_web_req_t *req, bm_web_resp_t *resp)
{
    if (s_only_params(req, " ", resp) < 0)
        return;
    PGresult *res = s_select(s, "reading regions", s_regions_sql, 0, NULL, resp);
    if (!res)
        return;
    json_t *v = json_object(), *regions = json_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(regions, json_string(PQgetvalue(res, i, 0)));
    PQclear(res);
    json_object_set_new(v, "user", json_string(bm_web_session_user(s)));
    json_object_set_new(v, "regions", regions);
    s_json(resp, 200, v);
}

static void s_regions(bm_web_session_t *s, const bm_web_req_t *req, bm_web_resp_t *resp)
{
    if (s_only_params(req, " ", resp) < 0)
        return;
    PGresult *res = s_select(s, "reading regions", s_regions_sql, 0, NULL, resp);
    if (!res)
        return;
    s_json(resp, 200, s_rows_json(res));
}

static void s_branches(bm_web_session_t *s, const bm_web_req_t *req, bm_web_resp_t *resp)
{
    if (s_only_params(req, " region ", resp) < 0)
        return;
    const char *region = req->nparams ? req->params[0].value : NULL;
    if (req->nparams > 1) {
        s_error(resp, 400, "parameter \"region\" given more than once");
        return;
    }
    if (req->nparams && (!region || !*region || strlen(region) > S_VALUE_MAX)) {
        s_error(resp, 400, "parameter \"region\": a region code is required");
        return;
    }
    if (region) {
        const char *p[] = {region};
        PGresult *res = s_select(s, "reading regions", "SELECT 1 FROM regions WHERE code = $1",
                                 1, p, resp);
        if (!res)
            return;
        int known = PQntuples(res) > 0;
        PQclear(res);
        if (!known) {
            s_error(resp, 400, "unknown region \"%s\"", region);
            return;
        }
    }
    const char *p[] = {region};
    PGresult *res = s_select(s, "reading branches",
                             "SELECT b.code, b.name, r.code AS region FROM branches b"
                             " JOIN regions r ON r.id = b.region_id"
                             " WHERE b.active AND ($1::text IS NULL OR r.code = $1)"
                             " ORDER BY b.code", 1, p, resp);
    if (!res)
        return;
    s_json(resp, 200, s_rows_json(res));
}

/* ---- the query commands ------------------------------------------------------ */

/* "format, metric, region, ..." of the parameters report `kind` takes,
 * for messages. */
static void s_option_list(bm_report_kind_t kind, char *buf, size_t size)
{
    const char *opts = bm_request_option_names(kind);
    size_t n = (size_t)snprintf(buf, size, "format");
    for (const char *p = opts; *p;) {
        p += strspn(p, " ");
        size_t len = strcspn(p, " ");
        if (!len)
            break;
        n += (size_t)snprintf(buf + n, n < size ? size - n : 0, ", %.*s", (int)len, p);
        p += len;
    }
}

/* One parameter into the request's text (or the format).  0, or -1 after
 * answering 400. */
static int s_param(bm_report_kind_t kind, const bm_web_req_t *req, int i,
                   bm_request_text_t *text, const char **format, bm_web_resp_t *resp)
{
    const char *name = req->params[i].name, *value = req->params[i].value;
    int is_format = !strcmp(name, "format");
    bm_err_t err;
    if (!is_format && !bm_request_takes(kind, name)) {
        char list[512];
        s_option_list(kind, list, sizeof list);
        s_error(resp, 400, "unknown parameter \"%s\" (%s takes: %s)", name,
                bm_report_kind_name(kind), list);
        return -1;
    }
    for (int j = 0; j < i; j++)
        if (!strcmp(req->params[j].name, name)) {
            s_error(resp, 400, "parameter \"%s\" given more than once", name);
            return -1;
        }
    if (value && strlen(value) > S_VALUE_MAX) {
        s_error(resp, 400, "parameter \"%s\": longer than %d characters", name, S_VALUE_MAX);
        return -1;
    }
    if (bm_request_is_flag(name)) {
        if (!value || !*value || !strcmp(value, "1") || !strcmp(value, "true"))
            return bm_request_text_set(text, kind, name, NULL, &err) == BM_REPORT_OK ? 0 : -1;
        if (strcmp(value, "0") && strcmp(value, "false")) {
            s_error(resp, 400, "parameter \"%s\": \"%s\" is not true or false", name, value);
            return -1;
        }
        return 0;
    }
    if (!value) {
        s_error(resp, 400, "parameter \"%s\" needs a value", name);
        return -1;
    }
    if (is_format)
        *format = value;
    else
        bm_request_text_set(text, kind, name, value, &err);
    return 0;
}

/* The query parameters as a typed request (the CLI's argv take the same
 * path through report/request.h).  0, or -1 after answering 400. */
static int s_request(bm_report_kind_t kind, const bm_web_req_t *req, bm_request_t *rq,
                     bm_format_t *fmt, const char **format, bm_web_resp_t *resp)
{
    bm_request_text_t text;
    memset(&text, 0, sizeof text);
    *format = "json";
    if (req->too_many_params) {
        s_error(resp, 400, "more than %d parameters", BM_WEB_MAX_PARAMS);
        return -1;
    }
    for (int i = 0; i < req->nparams; i++)
        if (s_param(kind, req, i, &text, format, resp) < 0)
            return -1;
    bm_err_t err;
    bm_err_clear(&err);
    if (bm_format_parse(*format, fmt, &err) < 0 ||
        bm_request_parse(kind, &text, rq, &err) != BM_REPORT_OK) {
        s_error(resp, 400, "%s", err.msg);
        return -1;
    }
    return 0;
}

/* The report written in fmt into a buffer (*buf, malloc'd).  A BM_REPORT_*
 * class with err. */
static int s_report_body(PGconn *conn, const bm_request_t *rq, bm_format_t fmt, char **buf,
                         size_t *len, bm_err_t *err)
{
    FILE *out = open_memstream(buf, len);
    if (!out) {
        bm_err_set(err, "out of memory");
        return BM_REPORT_FAILED;
    }
    int rc = bm_render_report(conn, rq, fmt, out, err);
    if (fclose(out) != 0 && rc == BM_REPORT_OK) {
        rc = BM_REPORT_FAILED;
        bm_err_set(err, "could not write the output");
    }
    return rc;
}

static void s_query(bm_web_api_t *self, bm_web_session_t *s, const char *cmd,
                    const bm_web_req_t *req, bm_web_resp_t *resp)
{
    bm_report_kind_t kind = (bm_report_kind_t)bm_report_kind_find(cmd);
    bm_request_t rq;
    bm_format_t fmt;
    const char *format;
    if (s_request(kind, req, &rq, &fmt, &format, resp) < 0)
        return;
    bm_err_t err;
    bm_err_clear(&err);
    PGconn *conn = bm_web_session_conn(s, &err);
    if (!conn) {
        s_error(resp, 503, "%s", err.msg);
        return;
    }
    char *buf = NULL;
    size_t len = 0;
    int rc = s_report_body(conn, &rq, fmt, &buf, &len, &err);
    if (rc == BM_REPORT_OK && len > (size_t)self->cfg->max_response) {
        rc = BM_REPORT_FAILED;
        bm_err_set(&err, "%s: the report is larger than max_response (%lld bytes)", cmd,
                   (long long)self->cfg->max_response);
    }
    if (rc != BM_REPORT_OK) {
        free(buf);
        if (rc == BM_REPORT_BAD_ARG || rc == BM_REPORT_USAGE) {
            s_error(resp, 400, "%s", err.msg);
        } else {
            bm_error("api", "%s as \"%s\": %s", cmd, bm_web_session_user(s), err.msg);
            s_error(resp, PQstatus(conn) == CONNECTION_OK ? 500 : 503, "%s", err.msg);
        }
        return;
    }
    resp->status = 200;
    resp->body = buf;
    resp->body_len = len;
    if (fmt == BM_FMT_CSV) {
        resp->content_type = "text/csv; charset=utf-8";
        snprintf(resp->disposition, sizeof resp->disposition,
                 "attachment; filename=\"%s.csv\"", cmd);
    } else if (fmt == BM_FMT_TABLE) {
        resp->content_type = "text/plain; charset=utf-8";
    } else {
        resp->content_type = "application/json";
    }
}

/* ---- static files ------------------------------------------------------------ */

static const struct {
    const char *ext;
    const char *type;
} s_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {NULL, NULL},
};

static const char *s_content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    for (int i = 0; dot && s_types[i].ext; i++)
        if (!strcmp(dot, s_types[i].ext))
            return s_types[i].type;
    return "application/octet-stream";
}

/* Only segments of [A-Za-z0-9._-] that do not start with a dot: no "..",
 * no hidden files, no encoded separators (the path is already decoded). */
static bool s_safe_path(const char *rel)
{
    if (!*rel || strlen(rel) > S_PATH_MAX)
        return false;
    for (const char *seg = rel; *seg;) {
        size_t len = strcspn(seg, "/");
        if (len == 0 || seg[0] == '.')
            return false;
        if (strspn(seg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") <
            len)
            return false;
        seg += len;
        if (*seg == '/')
            seg++;
    }
    return rel[strlen(rel) - 1] != '/';
}

static void s_static(bm_web_api_t *self, const bm_web_req_t *req, bm_web_resp_t *resp)
{
    const char *rel = !strcmp(req->path, "/") ? "index.html" : req->path + 1;
    if (!s_safe_path(rel)) {
        s_error(resp, 404, "not found");
        return;
    }
    char full[S_PATH_MAX + 4096];
    int n = snprintf(full, sizeof full, "%s/%s", self->cfg->static_dir, rel);
    if (n < 0 || (size_t)n >= sizeof full) {
        s_error(resp, 404, "not found");
        return;
    }
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        else if (errno != ENOENT && errno != ENOTDIR)
            bm_warn("api", "could not open \"%s\": %s", full, strerror(errno));
        s_error(resp, 404, "not found");
        return;
    }
    resp->status = 200;
    resp->fd = fd;
    resp->fd_size = (uint64_t)st.st_size;
    resp->content_type = s_content_type(rel);
    resp->cache_control = "no-cache";
}

/* ---- action changes (docs/actions.md) --------------------------------------------- */

/* The JSON body's string members into the action text; a member that is
 * not a string (or unknown) is a 400.  Strings point into v. */
static int s_action_text(json_t *v, bm_action_text_t *t, bm_web_resp_t *resp)
{
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
        {"branch", offsetof(bm_action_text_t, branch)},
        {"metric", offsetof(bm_action_text_t, metric)},
        {"section", offsetof(bm_action_text_t, section)},
        {"contact_point", offsetof(bm_action_text_t, contact_point)},
        {"category", offsetof(bm_action_text_t, category)},
        {"source", offsetof(bm_action_text_t, source)},
        {"source_ref", offsetof(bm_action_text_t, source_ref)},
        {"what", offsetof(bm_action_text_t, what)},
        {"owner", offsetof(bm_action_text_t, owner)},
        {"due", offsetof(bm_action_text_t, due)},
        {"target", offsetof(bm_action_text_t, target)},
        {"period", offsetof(bm_action_text_t, period)},
        {"comment", offsetof(bm_action_text_t, comment)},
        {"id", offsetof(bm_action_text_t, id)},
        {"status", offsetof(bm_action_text_t, status)},
        {"effective", offsetof(bm_action_text_t, effective)},
    };
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        size_t k = 0;
        while (k < sizeof keys / sizeof keys[0] && strcmp(keys[k].key, key))
            k++;
        if (k == sizeof keys / sizeof keys[0]) {
            s_error(resp, 400, "unknown field \"%.64s\"", key);
            return -1;
        }
        if (!json_is_string(val) && !(json_is_integer(val) && !strcmp(key, "id"))) {
            s_error(resp, 400, "field \"%s\" must be a string", key);
            return -1;
        }
        *(const char **)((char *)t + keys[k].off) = json_string_value(val);
    }
    return 0;
}

/* POST /api/action/open and /api/action/update: a JSON object of the same
 * fields as the CLI's options, checked by report/actions.c and run as the
 * session's role (migration 013's functions decide who may). */
static void s_action_change(bm_web_session_t *s, const bm_web_req_t *req, bm_web_resp_t *resp)
{
    int is_open = !strcmp(req->path, "/api/action/open");
    const char *ct = req->content_type ? req->content_type : "";
    if (strncasecmp(ct, "application/json", 16)) {
        s_error(resp, 415, "send a JSON object (application/json)");
        return;
    }
    json_error_t jerr;
    json_t *v = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(v)) {
        json_decref(v);
        s_error(resp, 400, "the body is not a JSON object");
        return;
    }
    bm_action_text_t t;
    memset(&t, 0, sizeof t);
    char id[24] = "";
    json_t *jid = json_object_get(v, "id");
    if (json_is_integer(jid))   /* {"id": 7} as well as {"id": "7"} */
        snprintf(id, sizeof id, "%lld", (long long)json_integer_value(jid));
    bm_action_open_t o;
    bm_action_update_t u;
    bm_err_t err;
    bm_err_clear(&err);
    int rc = BM_REPORT_BAD_ARG;
    if (s_action_text(v, &t, resp) == 0) {
        if (id[0])
            t.id = id;
        rc = is_open ? bm_action_open_parse(&t, &o, &err) : bm_action_update_parse(&t, &u, &err);
        if (rc != BM_REPORT_OK)
            s_error(resp, 400, "%s", err.msg);
    }
    PGconn *conn = rc == BM_REPORT_OK ? bm_web_session_conn(s, &err) : NULL;
    if (rc == BM_REPORT_OK && !conn) {
        s_error(resp, 503, "%s", err.msg);
        rc = BM_REPORT_FAILED;
    }
    int64_t new_id = is_open ? 0 : u.id;
    if (rc == BM_REPORT_OK) {
        rc = is_open ? bm_action_open(conn, &o, &new_id, &err) : bm_action_update(conn, &u, &err);
        if (rc != BM_REPORT_OK)
            s_error(resp, rc == BM_REPORT_FORBIDDEN ? 403 : rc == BM_REPORT_BAD_ARG ? 400 : 500,
                    "%s", err.msg);
    }
    if (rc == BM_REPORT_OK) {
        json_t *out = json_object();
        json_object_set_new(out, "id", json_integer((json_int_t)new_id));
        json_object_set_new(out, "status", json_string(is_open ? "open"
                                                       : u.status ? u.status : "unchanged"));
        s_json(resp, 200, out);
    }
    json_decref(v);
}

/* ---- routing ------------------------------------------------------------------- */

typedef enum { S_ANON, S_SESSION } s_auth_t;

static const struct {
    const char *path;
    const char *method;     /* GET also answers HEAD */
    s_auth_t auth;
    const char *query;      /* a query command, or NULL */
} s_routes[] = {
    {"/api/health", "GET", S_ANON, NULL},
    {"/api/login", "POST", S_ANON, NULL},
    {"/api/logout", "POST", S_ANON, NULL},
    {"/api/me", "GET", S_SESSION, NULL},
    {"/api/regions", "GET", S_SESSION, NULL},
    {"/api/branches", "GET", S_SESSION, NULL},
    {"/api/metrics", "GET", S_SESSION, "metrics"},
    {"/api/rank", "GET", S_SESSION, "rank"},
    {"/api/scorecard", "GET", S_SESSION, "scorecard"},
    {"/api/competitors", "GET", S_SESSION, "competitors"},
    {"/api/alerts", "GET", S_SESSION, "alerts"},
    {"/api/actions", "GET", S_SESSION, "actions"},
    {"/api/followup", "GET", S_SESSION, "followup"},
    {"/api/action/open", "POST", S_SESSION, NULL},
    {"/api/action/update", "POST", S_SESSION, NULL},
    {NULL, NULL, S_ANON, NULL},
};
_Static_assert(sizeof s_routes / sizeof s_routes[0] == S_ROUTES + 1, "S_ROUTES");

/* ---- /metrics ------------------------------------------------------------------ */

static const int s_statuses[S_STATUSES - 1] = {200, 204, 400, 401, 403, 404, 405,
                                               413, 415, 429, 500, 503, 504};

static size_t s_status_index(int status)
{
    for (size_t i = 0; i < S_STATUSES - 1; i++)
        if (s_statuses[i] == status)
            return i;
    return S_STATUSES - 1;
}

static size_t s_endpoint(const char *path)
{
    if (!strcmp(path, "/metrics"))
        return S_EP_METRICS;
    if (strncmp(path, "/api/", 5) != 0 && strcmp(path, "/api"))
        return S_EP_STATIC;
    for (size_t r = 0; r < S_ROUTES; r++)
        if (!strcmp(s_routes[r].path, path))
            return r;
    return S_EP_UNKNOWN;
}

static const char *s_endpoint_label(size_t e)
{
    return e < S_ROUTES ? s_routes[e].path : e == S_EP_STATIC ? "static"
                                           : e == S_EP_METRICS ? "/metrics" : "unknown";
}

/* Requests per endpoint and status: only the pairs seen, so the page
 * stays small (an endpoint appears with its first request). */
static void s_prom_requests(bm_web_api_t *self, bm_prom_t *p)
{
    const char *n = "branchmark_web_requests_total";
    bm_prom_family(p, n, BM_PROM_COUNTER, "HTTP requests answered, by endpoint (static = "
                   "the page's files, unknown = an unknown /api/ path) and status");
    for (size_t e = 0; e < S_ENDPOINTS; e++)
        for (size_t k = 0; k < S_STATUSES; k++) {
            unsigned long long v = self->by_route[e][k];
            if (!v)
                continue;
            char code[16];
            if (k < S_STATUSES - 1)
                snprintf(code, sizeof code, "%d", s_statuses[k]);
            else
                snprintf(code, sizeof code, "other");
            bm_prom_sample(p, n, (double)v, "endpoint", s_endpoint_label(e), "status", code,
                           NULL);
        }
}

static void s_prom(bm_web_api_t *self, bm_web_resp_t *resp)
{
    bm_prom_t *p = bm_prom_new(S_PAGE_MAX);
    if (!p) {
        s_error(resp, 500, "out of memory");
        return;
    }
    s_prom_requests(self, p);
    const char *ln = "branchmark_web_logins_total";
    bm_prom_family(p, ln, BM_PROM_COUNTER, "login attempts by result: ok, denied (wrong user "
                   "or password, or a refused role), throttled (429 from the lock-out), "
                   "unavailable (the database could not be asked)");
    bm_prom_sample(p, ln, (double)self->logins, "result", "ok", NULL);
    bm_prom_sample(p, ln, (double)self->logins_denied, "result", "denied", NULL);
    bm_prom_sample(p, ln, (double)self->logins_throttled, "result", "throttled", NULL);
    bm_prom_sample(p, ln, (double)self->logins_unavailable, "result", "unavailable", NULL);
    bm_prom_family(p, "branchmark_web_login_lockouts_total", BM_PROM_COUNTER,
                   "lock-outs of a client address or an account after too many failed logins");
    bm_prom_sample(p, "branchmark_web_login_lockouts_total",
                   (double)bm_web_guard_lockouts(self->guard), NULL);
    bm_prom_family(p, "branchmark_web_sessions", BM_PROM_GAUGE, "login sessions open (each "
                   "holds one PostgreSQL connection)");
    bm_prom_sample(p, "branchmark_web_sessions",
                   (double)bm_web_sessions_count(self->sessions), NULL);
    bm_prom_family(p, "branchmark_web_sessions_max", BM_PROM_GAUGE, "max_sessions");
    bm_prom_sample(p, "branchmark_web_sessions_max", (double)self->cfg->max_sessions, NULL);
    bm_prom_family(p, "branchmark_web_database_up", BM_PROM_GAUGE,
                   "1 when PostgreSQL answers a ping (cached for 2 s, as /api/health)");
    bm_prom_sample(p, "branchmark_web_database_up", s_db_reachable(self) ? 1 : 0, NULL);
    bm_prom_family(p, "branchmark_web_start_time_seconds", BM_PROM_GAUGE,
                   "when the server started, seconds since the Unix epoch");
    bm_prom_sample(p, "branchmark_web_start_time_seconds",
                   (double)self->started_wall_ms / 1000.0, NULL);
    bm_err_t err;
    resp->body = bm_prom_take(p, &resp->body_len, &err);
    bm_prom_destroy(&p);
    if (!resp->body) {
        s_error(resp, 500, "%s", err.msg);
        return;
    }
    resp->status = 200;
    resp->content_type = BM_PROM_CONTENT_TYPE;
}

/* logfmt value: quoted, with \ and " escaped and control characters dropped. */
static void s_logfmt(const char *in, char *out, size_t size)
{
    size_t n = 0;
    if (size < 3)
        return;
    out[n++] = '"';
    for (const char *p = in; *p && n + 3 < size; p++) {
        if (*p == '"' || *p == '\\')
            out[n++] = '\\';
        if ((unsigned char)*p >= 0x20)
            out[n++] = *p;
    }
    out[n++] = '"';
    out[n] = '\0';
}

/* Login CSRF and its kin: a state-changing request that a browser sends
 * from another site carries that site in Origin (or, from older browsers,
 * Referer).  It must name this server (scheme://Host); a request with
 * neither (curl, scripts) cannot come from a page and is let through. */
static bool s_same_origin(const bm_web_req_t *req)
{
    const char *o = req->origin ? req->origin : req->referer;
    if (!o)
        return true;
    if (!req->host || !*req->host || !strcmp(o, "null"))
        return false;
    const char *p = !strncmp(o, "http://", 7) ? o + 7 : !strncmp(o, "https://", 8) ? o + 8 : NULL;
    size_t hl = strlen(req->host);
    return p && !strncmp(p, req->host, hl) && (p[hl] == '\0' || p[hl] == '/');
}

static void s_route(bm_web_api_t *self, const bm_web_req_t *req, bm_web_resp_t *resp)
{
    bool get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    if (!strcmp(req->path, "/metrics")) {
        if (!get) {
            resp->allow = "GET, HEAD";
            s_error(resp, 405, "method %s not allowed on /metrics (use GET)", req->method);
            return;
        }
        s_prom(self, resp);
        return;
    }
    if (strncmp(req->path, "/api/", 5) != 0 && strcmp(req->path, "/api")) {
        if (!get) {
            resp->allow = "GET, HEAD";
            s_error(resp, 405, "method %s not allowed here", req->method);
            return;
        }
        s_static(self, req, resp);
        return;
    }
    int r;
    for (r = 0; s_routes[r].path; r++)
        if (!strcmp(s_routes[r].path, req->path))
            break;
    if (!s_routes[r].path) {
        s_error(resp, 404, "unknown endpoint \"%s\" (see docs/api.md)", req->path);
        return;
    }
    bool want_get = !strcmp(s_routes[r].method, "GET");
    if (want_get ? !get : strcmp(req->method, s_routes[r].method)) {
        resp->allow = want_get ? "GET, HEAD" : s_routes[r].method;
        s_error(resp, 405, "method %s not allowed on %s (use %s)", req->method, req->path,
                s_routes[r].method);
        return;
    }
    if (req->body_too_large) {
        s_error(resp, 413, "request body larger than %lld bytes",
                (long long)self->cfg->max_body);
        return;
    }
    if (!want_get && !s_same_origin(req)) {
        bm_warn("api", "%s %s from %s refused: Origin/Referer \"%s\" is not this site (%s)",
                req->method, req->path, req->peer,
                req->origin ? req->origin : req->referer ? req->referer : "",
                req->host ? req->host : "no Host");
        s_error(resp, 403, "cross-site request refused: %s may only be sent from this site's "
                           "own page", req->path);
        return;
    }
    if (s_routes[r].auth == S_ANON) {
        if (!strcmp(req->path, "/api/health"))
            s_health(self, req, resp);
        else if (!strcmp(req->path, "/api/login"))
            s_login(self, req, resp);
        else
            s_logout(self, req, resp);
        return;
    }
    bm_web_session_t *s = s_auth(self, req, resp);
    if (!s)
        return;
    if (s_routes[r].query)
        s_query(self, s, s_routes[r].query, req, resp);
    else if (!strcmp(req->path, "/api/me"))
        s_me(s, req, resp);
    else if (!strcmp(req->path, "/api/regions"))
        s_regions(s, req, resp);
    else if (!strncmp(req->path, "/api/action/", 12))
        s_action_change(s, req, resp);
    else
        s_branches(s, req, resp);
    bm_web_sessions_release(self->sessions, &s);
}

void bm_web_api_handle(void *arg, const bm_web_req_t *req, bm_web_resp_t *resp)
{
    bm_web_api_t *self = arg;
    int64_t t0 = bm_mono_ms();
    s_route(self, req, resp);
    self->by_route[s_endpoint(req->path)][s_status_index(resp->status)]++;
    self->requests++;
    if (resp->status >= 500)
        self->errors_5xx++;
    else if (resp->status >= 400)
        self->errors_4xx++;
    if (bm_log_threshold <= BM_LOG_INFO) {
        char path[300], fields[512];
        s_logfmt(req->path, path, sizeof path);
        snprintf(fields, sizeof fields, "method=%s path=%s status=%d user=%s ms=%lld bytes=%llu "
                 "peer=%s", req->method, path, resp->status, resp->user[0] ? resp->user : "-",
                 (long long)(bm_mono_ms() - t0),
                 (unsigned long long)(resp->fd >= 0 ? resp->fd_size : resp->body_len),
                 req->peer);
        bm_log_write(BM_LOG_INFO, "http", fields, "request");
    }
}
