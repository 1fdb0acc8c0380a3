/* collector_config: the collector's configuration file (bm_config map).
 *
 * Keys (branchmark-collector --help prints them with defaults): database,
 * listen, max_frame_bytes, clock_max_age, clock_max_future,
 * heartbeat_interval, stats_interval, status_file, migrate_on_start,
 * log_level, curve_secret_key_file, allow_plaintext (docs/security.md),
 * group_max_batches, group_max_records, max_agents, listen_backlog,
 * max_queued_per_agent
 * (docs/performance.md), metrics_listen (docs/operations.md).
 * Owns the strings and lists in bm_collector_config_t;
 * bm_collector_config_free releases them. */
#ifndef BM_COLLECTOR_CONFIG_H
#define BM_COLLECTOR_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "bm_config.h"
#include "bm_err.h"

typedef struct {
    char *database;             /* libpq conninfo; "" = PG* environment */
    bm_strlist_t listen;        /* ZeroMQ endpoints the ROUTER binds */
    int64_t max_frame_bytes;
    int64_t clock_max_age_ms;
    int64_t clock_max_future_ms;
    int64_t heartbeat_interval_ms;
    int64_t stats_interval_ms;
    char *status_file;          /* "" = none */
    bool migrate_on_start;
    char *log_level;
    char *curve_secret_key_file; /* "" = no CURVE (needs allow_plaintext) */
    bool allow_plaintext;       /* accept unauthenticated peers (loopback tests) */
    int64_t group_max_batches;  /* batches stored in one transaction, at most */
    int64_t group_max_records;  /* records of one group, at most (plus one batch) */
    int64_t max_agents;         /* agents expected at once: binding cache, file limit */
    int64_t listen_backlog;     /* ZMQ_BACKLOG of the ROUTER sockets */
    int64_t max_queued_per_agent; /* ZMQ_RCVHWM of the ROUTER sockets (per peer) */
    char *metrics_listen;       /* "ADDRESS:PORT" of GET /metrics; "" = off */
} bm_collector_config_t;

extern const bm_cfg_entry_t bm_collector_config_map[];

/* Loads path (defaults for keys not in it) and checks what the map cannot:
 * the log level name, the listen endpoints and metrics_listen.  Returns 0, or -1 with err;
 * cfg must be freed either way. */
int bm_collector_config_load(const char *path, bm_collector_config_t *cfg, bm_err_t *err);

/* Sets the defaults only (for --help and tests). */
void bm_collector_config_defaults(bm_collector_config_t *cfg);

void bm_collector_config_free(bm_collector_config_t *cfg);

#endif
