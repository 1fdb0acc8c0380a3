/* metrics_http: GET /metrics on libmicrohttpd; see metrics_http.h.
 * Owns: the daemon (one polling thread). */
#include "metrics_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm_log.h"
#include "bm_prom.h"

struct bm_metrics_http {
    struct MHD_Daemon *daemon;
    bm_metrics_render_fn render;
    void *arg;
};

int bm_metrics_http_addr(const char *text, struct sockaddr_storage *out, int *loopback,
                         bm_err_t *err)
{
    char host[64];
    const char *colon;
    memset(out, 0, sizeof *out);
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
            return bm_err_set(err, "\"%s\" is not [IPV6]:PORT", text);
        snprintf(host, sizeof host, "%.*s", (int)(close - text - 1), text + 1);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host)
            return bm_err_set(err, "\"%s\" is not ADDRESS:PORT", text);
        snprintf(host, sizeof host, "%.*s", (int)(colon - text), text);
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || port < 1 || port > 65535)
        return bm_err_set(err, "\"%s\": the port is not a number from 1 to 65535", text);
    struct sockaddr_in *sin = (struct sockaddr_in *)out;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
    if (text[0] != '[' && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    } else if (text[0] == '[' && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
    } else {
        return bm_err_set(err, "\"%s\": \"%s\" is not a numeric IPv4 address or a bracketed "
                          "IPv6 address", text, host);
    }
    return 0;
}

static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    bm_warn("metrics", "http: %s", msg);
}

static enum MHD_Result s_reply(struct MHD_Connection *conn, unsigned status, char *body,
                               size_t len, const char *type, const char *allow)
{
    struct MHD_Response *r = body
        ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
        : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static char *s_text(const char *s, size_t *len)
{
    char *t = strdup(s);
    *len = t ? strlen(t) : 0;
    return t;
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version,
                                const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    bm_metrics_http_t *self = cls;
    /* First call: headers only.  A body (any method but GET/HEAD) is not
     * read; the answer is queued at once and the connection closed. */
    if (!*con_cls) {
        *con_cls = self;
        if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
            return MHD_YES;
    }
    *upload_size = 0;
    size_t len = 0;
    const char *plain = "text/plain; charset=utf-8";
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return s_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                       s_text("only GET /metrics is served here\n", &len), len, plain,
                       "GET, HEAD");
    if (strcmp(url, "/metrics"))
        return s_reply(conn, MHD_HTTP_NOT_FOUND, s_text("not found (try /metrics)\n", &len),
                       len, plain, NULL);
    char *page = self->render(self->arg, &len);
    if (!page)
        return s_reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                       s_text("could not make the metrics page\n", &len), len, plain, NULL);
    return s_reply(conn, MHD_HTTP_OK, page, len, BM_PROM_CONTENT_TYPE, NULL);
}

bm_metrics_http_t *bm_metrics_http_start(const char *listen, bm_metrics_render_fn render,
                                         void *arg, bm_err_t *err)
{
    struct sockaddr_storage ss;
    int loopback = 0;
    if (bm_metrics_http_addr(listen, &ss, &loopback, err) < 0)
        return NULL;
    bm_metrics_http_t *self = calloc(1, sizeof *self);
    if (!self) {
        bm_err_set(err, "out of memory");
        return NULL;
    }
    self->render = render;
    self->arg = arg;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    uint16_t port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    self->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, s_access, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,    /* first, as MHD asks */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, 8u,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, 4u,
        MHD_OPTION_CONNECTION_TIMEOUT, 5u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024,
        MHD_OPTION_END);
    if (!self->daemon) {
        bm_err_set(err, "could not listen for metrics on %s (address in use or not local?)",
                   listen);
        free(self);
        return NULL;
    }
    if (!loopback)
        bm_warn("metrics", "metrics_listen %s is not a loopback address: anyone who can reach "
                "it can read the counters (no authentication); keep it on an admin network",
                listen);
    bm_info("metrics", "serving Prometheus metrics on http://%s/metrics", listen);
    return self;
}

void bm_metrics_http_stop(bm_metrics_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->daemon)
        MHD_stop_daemon((*self_p)->daemon);
    free(*self_p);
    *self_p = NULL;
}
