/* branchmark-notify: the signed-webhook sender (notify.h, docs/actions.md).
 * This file owns the command line, the config map, the signals and the
 * loop; notify_produce.c fills the outbox, notify_send.c delivers it.
 *
 *   branchmark-notify -c FILE [--log-level L]
 *
 * SIGTERM/SIGINT: finish the delivery in hand (its result is recorded),
 * exit 0.  A database failure is logged and the connection reopened at the
 * next tick; nothing is lost, since the outbox lives in the database. */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bm_daemon.h"
#include "bm_log.h"
#include "bm_time.h"
#include "db.h"
#include "notify.h"

#ifndef BM_VERSION
#define BM_VERSION "0.1.0"
#endif

const bm_cfg_entry_t bm_notify_config_map[] = {
    {"database", BM_CFG_STR, "", false, offsetof(bm_notify_config_t, database), 0, 0,
     "libpq connection string of a login in branchmark_notifier (empty: the PG* environment)"},
    {"log_level", BM_CFG_STR, "info", false, offsetof(bm_notify_config_t, log_level), 0, 0,
     "debug, info, warn or error"},
    {"poll_interval", BM_CFG_DURATION, "60s", false, offsetof(bm_notify_config_t, poll_ms), 100,
     24 * 3600000LL, "how often new alerts, overdue actions and follow-ups are looked for"},
    {"tick", BM_CFG_DURATION, "1s", false, offsetof(bm_notify_config_t, tick_ms), 50, 60000,
     "how often due deliveries are looked for"},
    {"retry_initial", BM_CFG_DURATION, "10s", false,
     offsetof(bm_notify_config_t, retry_initial_ms), 10, 3600000,
     "wait after a failed attempt; doubles per attempt"},
    {"retry_max", BM_CFG_DURATION, "1h", false, offsetof(bm_notify_config_t, retry_max_ms), 10,
     24 * 3600000LL, "longest wait between attempts"},
    {"max_attempts", BM_CFG_INT, "20", false, offsetof(bm_notify_config_t, max_attempts), 1,
     1000, "attempts before a delivery is given up as 'failed' (visible in webhook_deliveries)"},
    {"request_timeout", BM_CFG_DURATION, "10s", false,
     offsetof(bm_notify_config_t, request_timeout_ms), 100, 300000,
     "time to connect, to send and to get the answer, each"},
    {"alerts", BM_CFG_BOOL, "true", false, offsetof(bm_notify_config_t, alerts), 0, 0,
     "notify new early warnings (branchmark alerts)"},
    {"alert_period", BM_CFG_STR, "month", false, offsetof(bm_notify_config_t, alert_period), 0,
     0, "period of the early warnings: week, month or quarter"},
    {NULL, 0, NULL, false, 0, 0, 0, NULL},
};

int bm_notify_config_load(const char *path, bm_notify_config_t *cfg, bm_err_t *err)
{
    memset(cfg, 0, sizeof *cfg);
    if (bm_config_load(path, bm_notify_config_map, cfg, err) < 0)
        return -1;
    if (strcmp(cfg->alert_period, "week") && strcmp(cfg->alert_period, "month") &&
        strcmp(cfg->alert_period, "quarter"))
        return bm_err_set(err, "%s: alert_period \"%s\" is not week, month or quarter", path,
                          cfg->alert_period);
    if (cfg->retry_max_ms < cfg->retry_initial_ms)
        return bm_err_set(err, "%s: retry_max is shorter than retry_initial", path);
    return 0;
}

void bm_notify_config_free(bm_notify_config_t *cfg)
{
    bm_config_free(bm_notify_config_map, cfg);
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: branchmark-notify -c FILE [--log-level LEVEL]\n"
            "       branchmark-notify --help | --version\n\n"
            "Sends signed webhooks (HTTP POST of JSON, HMAC-SHA256 of the body in\n"
            "X-Branchmark-Signature, an Idempotency-Key) for new early warnings, overdue\n"
            "actions and actions whose follow-up is in, to the endpoints configured per\n"
            "scope in webhook_endpoints (docs/actions.md).  Every attempt is recorded before\n"
            "it is sent; failures are retried with exponential backoff.\n"
            "SIGTERM/SIGINT stop it cleanly.\n\n"
            "config keys (FILE has one `key = value` per line):\n");
    bm_config_print_help(out, bm_notify_config_map);
}

static volatile int s_stop;

/* One tick: (re)connect, produce when due, deliver what is due.  A
 * database failure drops the connection (reopened next tick). */
static void s_tick(const bm_notify_config_t *cfg, PGconn **conn, int64_t *next_poll)
{
    bm_err_t err;
    if (!*conn) {
        *conn = bm_db_connect(cfg->database, "branchmark-notify", &err);
        if (!*conn) {
            bm_warn("main", "could not connect: %s", err.msg);
            return;
        }
    }
    int64_t now = bm_mono_ms();
    if (now >= *next_poll) {
        int n = bm_notify_produce(*conn, cfg, &err);
        if (n < 0) {
            bm_error("produce", "%s", err.msg);
            bm_db_close(conn);
            return;
        }
        if (n > 0)
            bm_info("produce", "%d new notification%s", n, n == 1 ? "" : "s");
        *next_poll = now + cfg->poll_ms;
    }
    if (bm_notify_deliver(*conn, cfg, &s_stop, &err) < 0) {
        bm_error("deliver", "%s", err.msg);
        bm_db_close(conn);
    }
}

int main(int argc, char **argv)
{
    bm_daemon_args_t args;
    bm_log_init("branchmark-notify", BM_LOG_INFO);
    int arc = bm_daemon_args("branchmark-notify", BM_VERSION, argc, argv, NULL, s_usage, &args);
    if (arc >= 0)
        return arc;
    bm_notify_config_t cfg;
    bm_err_t err;
    if (bm_notify_config_load(args.config_path, &cfg, &err) < 0) {
        fprintf(stderr, "branchmark-notify: %s\n", err.msg);
        bm_notify_config_free(&cfg);
        return 2;
    }
    bm_daemon_set_level(&args, cfg.log_level);
    /* Signals are taken synchronously between ticks, so a delivery in hand
     * is finished and recorded before the process exits. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    bm_info("main", "started (version %s, config %s)", BM_VERSION, args.config_path);
    PGconn *conn = NULL;
    int64_t next_poll = 0;
    while (!s_stop) {
        s_tick(&cfg, &conn, &next_poll);
        struct timespec t = {(time_t)(cfg.tick_ms / 1000), (long)(cfg.tick_ms % 1000) * 1000000L};
        int sig = sigtimedwait(&sigs, NULL, &t);
        if (sig == SIGTERM || sig == SIGINT) {
            bm_info("main", "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            s_stop = 1;
        }
    }
    bm_db_close(&conn);
    bm_notify_config_free(&cfg);
    bm_info("main", "stopped");
    return 0;
}
