/* web_api: the JSON API and the static files of branchmark-web: routing,
 * authentication, parameter checks, errors as {"error": "..."}, health
 * counters and the access log.  The endpoints are documented in
 * docs/api.md; the data endpoints turn their parameters into the typed
 * request of report/request.h and run it through the same report and
 * renderer as the CLI (render.h: bm_render_report) on the session's
 * connection, so their bodies are byte for byte what `branchmark CMD
 * --format json` prints for the same role.
 * Owns: the session table and the counters. */
#ifndef BM_WEB_API_H
#define BM_WEB_API_H

#include "bm_err.h"
#include "web_config.h"
#include "web_server.h"

typedef struct bm_web_api bm_web_api_t;

/* Borrows cfg (it must outlive the API).  NULL with err on failure. */
bm_web_api_t *bm_web_api_new(const bm_web_config_t *cfg, bm_err_t *err);
/* Closes every session.  The server must be stopped first. */
void bm_web_api_destroy(bm_web_api_t **self_p);

/* The bm_web_handler_fn of web_server; arg is the bm_web_api_t. */
void bm_web_api_handle(void *arg, const bm_web_req_t *req, bm_web_resp_t *resp);

/* Housekeeping from the main loop: closes expired sessions. */
void bm_web_api_tick(bm_web_api_t *self);

/* Logs the counters (at shutdown). */
void bm_web_api_report(bm_web_api_t *self);

#endif
