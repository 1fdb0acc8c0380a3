/* notify: branchmark-notify, the signed-webhook sender (docs/actions.md).
 *
 * Two halves on one database connection, run by notify_main.c's loop:
 * - producing (notify_produce.c): new early warnings, overdue actions and
 *   actions whose follow-up is in become rows of the outbox
 *   (`notifications`, once per key, with one delivery per matching
 *   endpoint: migration 013's bm_notification_add);
 * - delivering (notify_send.c): each due delivery is claimed, its attempt
 *   is COMMITTED to the delivery log, and only then the request is sent
 *   (HTTP POST of the stored body, HMAC-SHA256 of the body with the
 *   endpoint's secret, an Idempotency-Key); a 2xx marks it delivered, else
 *   it is retried with exponential backoff up to max_attempts.  So a sender
 *   killed anywhere loses nothing and, since a receiver may see a request
 *   twice (sent, then killed before recording), receivers deduplicate by
 *   the key.
 * Owns: the config struct's strings (notify_config_free). */
#ifndef BM_NOTIFY_H
#define BM_NOTIFY_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "bm_config.h"
#include "bm_err.h"

typedef struct {
    char *database;             /* libpq conninfo of the notifier's login */
    char *log_level;
    int64_t poll_ms;            /* how often alerts, overdue actions, follow-ups are looked for */
    int64_t tick_ms;            /* how often due deliveries are looked for */
    int64_t retry_initial_ms;   /* backoff after the first failed attempt, doubling */
    int64_t retry_max_ms;
    int64_t max_attempts;       /* then the delivery is 'failed' */
    int64_t request_timeout_ms; /* connect, send and answer, each */
    bool alerts;                /* produce notifications of new early warnings */
    char *alert_period;         /* week, month, quarter */
} bm_notify_config_t;

extern const bm_cfg_entry_t bm_notify_config_map[];
int bm_notify_config_load(const char *path, bm_notify_config_t *cfg, bm_err_t *err);
void bm_notify_config_free(bm_notify_config_t *cfg);

/* One round of producing.  Returns the notifications created, -1 with err
 * on a database failure (the caller reconnects and tries again). */
int bm_notify_produce(PGconn *conn, const bm_notify_config_t *cfg, bm_err_t *err);

/* Delivers due deliveries until none is due or *stop is set.  Returns the
 * number attempted, -1 with err on a database failure. */
int bm_notify_deliver(PGconn *conn, const bm_notify_config_t *cfg, volatile int *stop,
                      bm_err_t *err);

/* HMAC-SHA256 of body with secret as 64 lower-case hex digits into hex
 * (>= 65 bytes).  0, or -1 when libcrypto fails. */
int bm_notify_sign(const char *secret, const char *body, size_t len, char *hex);

#endif
