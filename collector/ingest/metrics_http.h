/* metrics_http: the collector's small HTTP listener for Prometheus, on the
 * address of `metrics_listen` (docs/operations.md).
 *
 * Serves exactly GET (and HEAD) /metrics: the page a render callback
 * returns, as text/plain; version=0.0.4 (404 for any other path, 405 for
 * any other method).  One libmicrohttpd thread in poll mode serves every
 * connection (a scrape is a copy of counters under a lock and a few KiB of
 * text, so no thread per connection is needed); at most 8 connections, 4
 * per client address, 5 s idle timeout and 16 KiB of memory per connection,
 * so a stuck or hostile scraper cannot hold the collector's resources.
 * There is no authentication: bind it to loopback or an admin network only
 * (a non-loopback address is logged as a warning at start).
 *
 * Owns: the libmicrohttpd daemon and its thread. */
#ifndef BM_METRICS_HTTP_H
#define BM_METRICS_HTTP_H

#include <stddef.h>
#include <sys/socket.h>

#include "bm_err.h"

typedef struct bm_metrics_http bm_metrics_http_t;

/* Returns the page (heap, NUL-terminated, *len bytes; the listener frees
 * it), or NULL when it could not be made (answered 500).  Called on the
 * listener's thread: it must be thread-safe against the receiver. */
typedef char *(*bm_metrics_render_fn)(void *arg, size_t *len);

/* Parses "ADDRESS:PORT" ("127.0.0.1:9469", "[::1]:9469"; numeric addresses
 * only, port 1..65535) into *out.  Sets *loopback when the address is a
 * loopback one.  Returns 0, or -1 with err saying what is wrong. */
int bm_metrics_http_addr(const char *text, struct sockaddr_storage *out, int *loopback,
                         bm_err_t *err);

/* Binds `listen` (as above) and starts serving.  Returns NULL with err
 * when the address is bad or cannot be bound. */
bm_metrics_http_t *bm_metrics_http_start(const char *listen, bm_metrics_render_fn render,
                                         void *arg, bm_err_t *err);

/* Stops accepting, ends the thread (a scrape in progress finishes first),
 * frees.  Safe with NULL and twice. */
void bm_metrics_http_stop(bm_metrics_http_t **self_p);

#endif
