/* web_server: libmicrohttpd plumbing of branchmark-web; see web_server.h. */
#include "web_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bm_log.h"

struct bm_web_server {
    struct MHD_Daemon *daemon;
    bm_web_handler_fn handler;
    void *arg;
    size_t max_body;
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
    s_header(r, "Referrer-Policy", "no-referrer");
    s_header(r, "X-Content-Type-Options", "nosniff");
    s_header(r, "X-Frame-Options", "DENY");
    s_header(r, "Referrer-Policy", "no-referrer");
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ok;
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
    if (st->body)
        st->body[st->len] = '\0';
    req.body = st->body ? st->body : "";
    req.body_len = st->len;
    req.body_too_large = st->too_large;
    s_peer(conn, req.peer, sizeof req.peer);

    bm_web_resp_t resp;
    memset(&resp, 0, sizeof resp);
    resp.fd = -1;
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
    (void)cls;
    (void)conn;
    (void)toe;
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
    if (!self) {
        bm_err_set(err, "out of memory");
        return NULL;
    }
    self->handler = handler;
    self->arg = arg;
    self->max_body = opts->max_body;
    self->daemon = MHD_start_daemon(
        flags, (uint16_t)opts->port, NULL, NULL, s_access, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,    /* first, as MHD asks */
        MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_CONNECTION_LIMIT, opts->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, opts->timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_END);
    if (!self->daemon) {
        bm_err_set(err, "could not listen on %s port %d (address in use or not local?)",
                   opts->address, opts->port);
        free(self);
        return NULL;
    }
    return self;
}

void bm_web_server_destroy(bm_web_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    MHD_stop_daemon((*self_p)->daemon);
    free(*self_p);
    *self_p = NULL;
}
