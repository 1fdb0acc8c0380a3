/* web_server: libmicrohttpd plumbing of branchmark-web; see web_server.h. */
#include "web_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bm_log.h"
#include "bm_time.h"

/* A connection the watchdog looks after. */
typedef struct {
    struct MHD_Connection *conn;    /* NULL = free slot */
    int fd;
    int64_t since_ms;               /* first byte of the current request */
    bool in_handler;
} s_watch_t;

struct bm_web_server {
    struct MHD_Daemon *daemon;
    bm_web_handler_fn handler;
    void *arg;
    size_t max_body;
    int64_t deadline_ms;
    pthread_mutex_t lock;           /* guards watch, stop */
    pthread_cond_t wake;
    s_watch_t *watch;
    size_t nwatch;
    bool stop, watchdog_started;
    pthread_t watchdog;
};

/* Per request, between libmicrohttpd's calls. */
typedef struct {
    char *body;                 /* max_body + 1 bytes once a body arrives */
    size_t len;
    bool too_large;
} s_conn_t;

static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    bm_warn("http", "%s", msg);
}

static enum MHD_Result s_param(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    bm_web_req_t *req = cls;
    if (req->nparams == BM_WEB_MAX_PARAMS) {
        req->too_many_params = true;
        return MHD_NO;
    }
    req->params[req->nparams].name = key;
    req->params[req->nparams].value = value;
    req->nparams++;
    return MHD_YES;
}

static void s_peer(struct MHD_Connection *conn, char *buf, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(buf, size, "?");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
                  (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                  (socklen_t)size);
}

static void s_header(struct MHD_Response *r, const char *name, const char *value)
{
    if (value && *value)
        MHD_add_response_header(r, name, value);
}

static enum MHD_Result s_respond(struct MHD_Connection *conn, bm_web_resp_t *resp)
{
    struct MHD_Response *r;
    if (resp->fd >= 0) {
        r = MHD_create_response_from_fd64(resp->fd_size, resp->fd);
        if (!r)
            close(resp->fd);
        resp->fd = -1;
    } else {
        r = MHD_create_response_from_buffer(resp->body_len, resp->body ? resp->body : "",
                                            resp->body ? MHD_RESPMEM_MUST_FREE
                                                       : MHD_RESPMEM_PERSISTENT);
        if (r)
            resp->body = NULL;
    }
    if (!r)
        return MHD_NO;
    s_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    s_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
             resp->cache_control ? resp->cache_control : "no-store");
    s_header(r, MHD_HTTP_HEADER_SET_COOKIE, resp->set_cookie);
    s_header(r, "Content-Disposition", resp->disposition);
    s_header(r, MHD_HTTP_HEADER_ALLOW, resp->allow);
    /* The page loads nothing but its own files and talks only to this
     * server: a policy that says so turns an injection bug into a blocked
     * request instead of a stolen session, and no other site may frame it. */
    s_header(r, "Content-Security-Policy",
             "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
             "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
             "frame-ancestors 'none'");
    s_header(r, "X-Content-Type-Options", "nosniff");
    s_header(r, "X-Frame-Options", "DENY");
    s_header(r, "Referrer-Policy", "no-referrer");
    s_header(r, MHD_HTTP_HEADER_RETRY_AFTER, resp->retry_after);
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---- the watchdog of slow requests ------------------------------------------ */

static s_watch_t *s_watch_find(bm_web_server_t *self, struct MHD_Connection *conn)
{
    for (size_t i = 0; i < self->nwatch; i++)
        if (self->watch[i].conn == conn)
            return &self->watch[i];
    return NULL;
}

/* in_handler: the request is complete and being answered (no deadline);
 * false: the next request starts now. */
static void s_watch_mark(bm_web_server_t *self, struct MHD_Connection *conn, bool in_handler)
{
    pthread_mutex_lock(&self->lock);
    s_watch_t *w = s_watch_find(self, conn);
    if (w) {
        w->in_handler = in_handler;
        w->since_ms = bm_mono_ms();
    }
    pthread_mutex_unlock(&self->lock);
}

static void s_notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                                enum MHD_ConnectionNotificationCode code)
{
    (void)socket_context;
    bm_web_server_t *self = cls;
    pthread_mutex_lock(&self->lock);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        s_watch_t *w = s_watch_find(self, NULL);
        if (w && ci) {
            w->conn = conn;
            w->fd = ci->connect_fd;
            w->since_ms = bm_mono_ms();
            w->in_handler = false;
        }
    } else {
        /* Removed before libmicrohttpd closes the socket, under the lock the
         * watchdog holds while it shuts one down: the fd is still ours. */
        s_watch_t *w = s_watch_find(self, conn);
        if (w)
            memset(w, 0, sizeof *w);
    }
    pthread_mutex_unlock(&self->lock);
}

/* Shuts down the connections whose request is overdue (lock held). */
static void s_watch_scan(bm_web_server_t *self, int64_t now)
{
    for (size_t i = 0; i < self->nwatch; i++) {
        s_watch_t *w = &self->watch[i];
        if (!w->conn || w->in_handler || now - w->since_ms <= self->deadline_ms)
            continue;
        bm_info("http", "closing a connection whose request took longer than %lld s to arrive "
                        "(a slow or stalled client)", (long long)(self->deadline_ms / 1000));
        shutdown(w->fd, SHUT_RDWR);
        w->since_ms = INT64_MAX / 2;    /* once */
    }
}

static void *s_watchdog(void *arg)
{
    bm_web_server_t *self = arg;
    pthread_mutex_lock(&self->lock);
    while (!self->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 500 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&self->wake, &self->lock, &ts);
        if (!self->stop)
            s_watch_scan(self, bm_mono_ms());
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version,
                                const char *upload_data, size_t *upload_data_size,
                                void **con_cls)
{
    (void)version;
    bm_web_server_t *self = cls;
    s_conn_t *st = *con_cls;
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st)
            return MHD_NO;
        *con_cls = st;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* Keep up to max_body bytes; beyond that only note it. */
        size_t n = *upload_data_size;
        if (!st->too_large && st->len + n <= self->max_body) {
            if (!st->body && !(st->body = malloc(self->max_body + 1)))
                return MHD_NO;
            memcpy(st->body + st->len, upload_data, n);
            st->len += n;
        } else {
            st->too_large = true;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    bm_web_req_t req;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.path = url;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, s_param, &req);
    req.session_cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "bm_session");
    req.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION);
    req.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_CONTENT_TYPE);
    req.origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN);
    req.referer = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_REFERER);
    req.host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (st->body)
        st->body[st->len] = '\0';
    req.body = st->body ? st->body : "";
    req.body_len = st->len;
    req.body_too_large = st->too_large;
    s_peer(conn, req.peer, sizeof req.peer);

    bm_web_resp_t resp;
    memset(&resp, 0, sizeof resp);
    resp.fd = -1;
    s_watch_mark(self, conn, true);
    self->handler(self->arg, &req, &resp);
    enum MHD_Result ok = s_respond(conn, &resp);
    free(resp.body);
    if (resp.fd >= 0)
        close(resp.fd);
    return ok;
}

/* The request is over: the body may hold a password, so it is wiped. */
static void s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    s_watch_mark(cls, conn, false);
    s_conn_t *st = *con_cls;
    if (!st)
        return;
    if (st->body) {
        explicit_bzero(st->body, st->len);
        free(st->body);
    }
    free(st);
    *con_cls = NULL;
}

bm_web_server_t *bm_web_server_new(const bm_web_server_opts_t *opts, bm_web_handler_fn handler,
                                   void *arg, bm_err_t *err)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    const struct sockaddr *sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    memset(&sin, 0, sizeof sin);
    memset(&sin6, 0, sizeof sin6);
    if (inet_pton(AF_INET, opts->address, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t)opts->port);
        sa = (const struct sockaddr *)&sin;
    } else if (inet_pton(AF_INET6, opts->address, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons((uint16_t)opts->port);
        sa = (const struct sockaddr *)&sin6;
        flags |= MHD_USE_IPv6;
    } else {
        bm_err_set(err, "listen address \"%s\" is not a numeric IPv4 or IPv6 address",
                   opts->address);
        return NULL;
    }
    bm_web_server_t *self = calloc(1, sizeof *self);
    if (!self || !(self->watch = calloc(opts->max_connections + 1, sizeof *self->watch))) {
        free(self);
        bm_err_set(err, "out of memory");
        return NULL;
    }
    self->nwatch = opts->max_connections + 1;
    self->handler = handler;
    self->arg = arg;
    self->max_body = opts->max_body;
    self->deadline_ms = (int64_t)opts->request_deadline_s * 1000;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    self->daemon = MHD_start_daemon(
        flags, (uint16_t)opts->port, NULL, NULL, s_access, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,    /* first, as MHD asks */
        MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_CONNECTION_LIMIT, opts->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, opts->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, opts->timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_NOTIFY_CONNECTION, s_notify_connection, self,
        MHD_OPTION_END);
    if (!self->daemon) {
        bm_err_set(err, "could not listen on %s port %d (address in use or not local?)",
                   opts->address, opts->port);
        bm_web_server_destroy(&self);
        return NULL;
    }
    if (pthread_create(&self->watchdog, NULL, s_watchdog, self) != 0) {
        bm_err_set(err, "could not start the watchdog thread");
        bm_web_server_destroy(&self);
        return NULL;
    }
    self->watchdog_started = true;
    return self;
}

void bm_web_server_destroy(bm_web_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bm_web_server_t *self = *self_p;
    if (self->watchdog_started) {
        pthread_mutex_lock(&self->lock);
        self->stop = true;
        pthread_cond_signal(&self->wake);
        pthread_mutex_unlock(&self->lock);
        pthread_join(self->watchdog, NULL);
    }
    if (self->daemon)
        MHD_stop_daemon(self->daemon);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    free(self->watch);
    free(self);
    *self_p = NULL;
}
