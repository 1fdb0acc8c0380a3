/* collector_config: the collector's config map and checks; see
 * collector_config.h. */
#include "collector_config.h"

#include <stddef.h>
#include <string.h>

#include "bm_log.h"
#include "bm_wire.h"
#include "metrics_http.h"

#define S_DAY_MS (24LL * 3600 * 1000)

const bm_cfg_entry_t bm_collector_config_map[] = {
    {"database", BM_CFG_STR, "", false, offsetof(bm_collector_config_t, database), 0, 0,
     "libpq connection string (empty: the PG* environment variables); never logged"},
    {"listen", BM_CFG_STRLIST, "tcp://*:5555", false, offsetof(bm_collector_config_t, listen),
     0, 0, "ZeroMQ endpoint to bind the ROUTER socket to (repeat the key for several)"},
    {"max_frame_bytes", BM_CFG_SIZE, "8M", false,
     offsetof(bm_collector_config_t, max_frame_bytes), 1024, 256LL * 1024 * 1024,
     "largest message accepted (ZMQ_MAXMSGSIZE); larger ones drop the connection"},
    {"clock_max_age", BM_CFG_DURATION, "9600h", false,
     offsetof(bm_collector_config_t, clock_max_age_ms), 60000, 3650 * S_DAY_MS,
     "records older than this are rejected (a box that lost its clock; 9600h = 400 days)"},
    {"clock_max_future", BM_CFG_DURATION, "1h", false,
     offsetof(bm_collector_config_t, clock_max_future_ms), 0, 30 * S_DAY_MS,
     "records further than this in the future are rejected"},
    {"heartbeat_interval", BM_CFG_DURATION, "10s", false,
     offsetof(bm_collector_config_t, heartbeat_interval_ms), 100, 3600000,
     "ZMTP heartbeat interval; a peer silent for 3 intervals is dropped"},
    {"stats_interval", BM_CFG_DURATION, "60s", false,
     offsetof(bm_collector_config_t, stats_interval_ms), 1000, 24 * 3600000LL,
     "how often the counters are logged and the status file is written"},
    {"status_file", BM_CFG_STR, "", false, offsetof(bm_collector_config_t, status_file), 0, 0,
     "JSON file with the health counters, replaced atomically (empty: none)"},
    {"migrate_on_start", BM_CFG_BOOL, "true", false,
     offsetof(bm_collector_config_t, migrate_on_start), 0, 0,
     "apply pending schema migrations when the collector starts"},
    {"log_level", BM_CFG_STR, "info", false, offsetof(bm_collector_config_t, log_level), 0, 0,
     "debug, info, warn or error (re-read on SIGHUP)"},
    {"curve_secret_key_file", BM_CFG_STR, "", false,
     offsetof(bm_collector_config_t, curve_secret_key_file), 0, 0,
     "the collector's CURVE secret key (branchmark keygen; mode 0600): agents must connect "
     "with CURVE and an enrolled key (docs/security.md)"},
    {"allow_plaintext", BM_CFG_BOOL, "false", false,
     offsetof(bm_collector_config_t, allow_plaintext), 0, 0,
     "without curve_secret_key_file, accept unauthenticated plaintext peers (loopback "
     "development and benchmarks only)"},
    {"group_max_batches", BM_CFG_INT, "256", false,
     offsetof(bm_collector_config_t, group_max_batches), 1, 4096,
     "group commit: at most this many waiting batches are stored in one transaction "
     "(1 = one transaction per batch)"},
    {"group_max_records", BM_CFG_INT, "20000", false,
     offsetof(bm_collector_config_t, group_max_records), 1, 1000000,
     "group commit: at most this many records per transaction (a larger batch goes alone)"},
    {"max_agents", BM_CFG_INT, "10000", false, offsetof(bm_collector_config_t, max_agents), 1,
     1000000, "agents connected at once this collector is sized for (agent binding cache, "
     "open-file limit check)"},
    {"listen_backlog", BM_CFG_INT, "4096", false,
     offsetof(bm_collector_config_t, listen_backlog), 1, 65535,
     "TCP listen backlog of the ROUTER sockets (ZMQ_BACKLOG; the kernel caps it at "
     "net.core.somaxconn): a whole chain reconnecting at once must not overflow it"},
    {"max_queued_per_agent", BM_CFG_INT, "32", false,
     offsetof(bm_collector_config_t, max_queued_per_agent), 1, 1000,
     "batches one agent may have waiting inside the collector (ZMQ_RCVHWM); beyond it the "
     "collector stops reading that agent's connection until it catches up (TCP backpressure, "
     "nothing is dropped).  Bounds memory when agents send with large windows"},
    {"metrics_listen", BM_CFG_STR, "", false, offsetof(bm_collector_config_t, metrics_listen), 0,
     0, "ADDRESS:PORT (numeric, e.g. 127.0.0.1:9469 or [::1]:9469) of an HTTP listener for "
     "Prometheus (GET /metrics, no authentication: loopback or an admin network only); empty: "
     "off"},
    {NULL, 0, NULL, false, 0, 0, 0, NULL},
};

void bm_collector_config_defaults(bm_collector_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    bm_config_defaults(bm_collector_config_map, cfg);
}

int bm_collector_config_load(const char *path, bm_collector_config_t *cfg, bm_err_t *err)
{
    memset(cfg, 0, sizeof *cfg);
    if (bm_config_load(path, bm_collector_config_map, cfg, err) < 0)
        return -1;
    bm_log_level_t level;
    if (bm_log_level_parse(cfg->log_level, &level) < 0)
        return bm_err_set(err, "%s: log_level: \"%s\" is not one of debug, info, warn, error",
                          path, cfg->log_level);
    if (!*cfg->curve_secret_key_file && !cfg->allow_plaintext)
        return bm_err_set(err, "%s: curve_secret_key_file is not set; agents must be "
                          "authenticated (or set allow_plaintext = true for loopback "
                          "development)", path);
    if (cfg->listen.count == 0)
        return bm_err_set(err, "%s: listen: at least one endpoint is required", path);
    for (size_t i = 0; i < cfg->listen.count; i++) {
        const char *e = cfg->listen.items[i];
        if (strncmp(e, "tcp://", 6) != 0 && strncmp(e, "ipc://", 6) != 0 &&
            strncmp(e, "inproc://", 9) != 0)
            return bm_err_set(err, "%s: listen: \"%s\" is not a tcp://, ipc:// or inproc:// "
                              "endpoint", path, e);
    }
    if (*cfg->metrics_listen) {
        struct sockaddr_storage ss;
        int loopback;
        bm_err_t aerr;
        if (bm_metrics_http_addr(cfg->metrics_listen, &ss, &loopback, &aerr) < 0)
            return bm_err_set(err, "%s: metrics_listen: %s", path, aerr.msg);
    }
    return 0;
}

void bm_collector_config_free(bm_collector_config_t *cfg)
{
    bm_config_free(bm_collector_config_map, cfg);
}
