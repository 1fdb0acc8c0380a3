/* web_server: the HTTP plumbing of branchmark-web on libmicrohttpd.
 *
 * Listens on one address, reads each request (query parameters, the
 * session cookie, the Authorization header, a body up to a hard cap) into a
 * bm_web_req_t, calls the handler once per request on a connection thread,
 * and sends the bm_web_resp_t it fills (a body or an open file).  Knows
 * nothing about sessions or the API: web_api.c does.
 *
 * Slow clients: libmicrohttpd's own timeout counts idle time only, so a
 * client that trickles one header line every few seconds would hold its
 * connection (and its thread) for ever.  Each client address may hold at
 * most max_connections_per_ip connections, and a watchdog thread shuts down
 * any connection whose current request has not reached the handler within
 * request_deadline_s of its first byte (a request the handler is working
 * on is bounded by PostgreSQL's statement_timeout instead).
 * Owns: the libmicrohttpd daemon and its threads (one per connection, up to
 * max_connections) and the watchdog. */
#ifndef BM_WEB_SERVER_H
#define BM_WEB_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"

#define BM_WEB_MAX_PARAMS 16

typedef struct {
    const char *name;
    const char *value;          /* NULL for "?name" without "=" */
} bm_web_param_t;

/* One request; every pointer is valid during the handler call only. */
typedef struct {
    const char *method;
    const char *path;           /* decoded, without the query string */
    bm_web_param_t params[BM_WEB_MAX_PARAMS];
    int nparams;
    bool too_many_params;       /* more than BM_WEB_MAX_PARAMS were given */
    const char *session_cookie; /* value of cookie bm_session, or NULL */
    const char *authorization;  /* the Authorization header, or NULL */
    const char *content_type;   /* the Content-Type header, or NULL */
    const char *origin;         /* the Origin header, or NULL */
    const char *referer;        /* the Referer header, or NULL */
    const char *host;           /* the Host header, or NULL */
    const char *body;           /* NUL-terminated, body_len bytes */
    size_t body_len;
    bool body_too_large;        /* the body passed the cap (and was dropped) */
    char peer[64];              /* client address */
} bm_web_req_t;

/* What the handler answers.  Exactly one of body and fd (>= 0) is used. */
typedef struct {
    int status;
    const char *content_type;   /* static string */
    char *body;                 /* malloc'd; the server frees it */
    size_t body_len;
    int fd;                     /* a file to send (the server closes it), or -1 */
    uint64_t fd_size;
    char set_cookie[256];       /* "" = none */
    char disposition[128];      /* Content-Disposition, "" = none */
    const char *cache_control;  /* NULL = no-store */
    const char *allow;          /* Allow (405), NULL = none */
    char retry_after[24];       /* Retry-After seconds (429), "" = none */
    char user[72];              /* for the access log */
} bm_web_resp_t;

typedef void (*bm_web_handler_fn)(void *arg, const bm_web_req_t *req, bm_web_resp_t *resp);

typedef struct {
    const char *address;        /* numeric IPv4/IPv6 */
    int port;
    unsigned max_connections;
    unsigned max_connections_per_ip;
    unsigned timeout_s;         /* idle connection timeout */
    unsigned request_deadline_s; /* first byte to the handler, at most */
    size_t max_body;
} bm_web_server_opts_t;

typedef struct bm_web_server bm_web_server_t;

/* Binds and starts serving.  NULL with err when the address cannot be
 * bound or the daemon cannot start. */
bm_web_server_t *bm_web_server_new(const bm_web_server_opts_t *opts, bm_web_handler_fn handler,
                                   void *arg, bm_err_t *err);
/* Stops accepting, waits for running requests, frees.  Safe twice. */
void bm_web_server_destroy(bm_web_server_t **self_p);

#endif
