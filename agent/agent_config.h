/* agent_config: the branch agent's configuration (keys, defaults, checks).
 *
 * Declares the config map of branchmark-agent (bm_config.h) and the rules a
 * map cannot express: identifier syntax, endpoint syntax, the log level name,
 * backoff_min <= backoff_max, the derived default of inbox_dir, and that each
 * declared source encoding names a known format and an encoding iconv reads.
 * Owns: the strings and lists inside bm_agent_config_t (released with
 * bm_agent_config_free). */
#ifndef BM_AGENT_CONFIG_H
#define BM_AGENT_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "bm_config.h"
#include "bm_err.h"
#include "bm_log.h"

typedef struct {
    char *agent_id;               /* this agent's name, sent in every envelope */
    char *branch;                 /* branch code the agent belongs to */
    bm_strlist_t collector;       /* endpoints, tried in this order */
    char *data_dir;               /* inbox/, sending/, done/, rejected/, ... */
    char *inbox_dir;              /* "" in the file: <data_dir>/inbox */
    int64_t batch_records;        /* records per spooled batch */
    int64_t spool_max_bytes;      /* intake pauses at this spool size */
    int64_t segment_bytes;        /* spool segment size */
    int64_t send_window;          /* batches in flight */
    int64_t ack_timeout_ms;
    int64_t heartbeat_interval_ms;
    int64_t backoff_min_ms;
    int64_t backoff_max_ms;
    int64_t scan_interval_ms;
    int64_t inbox_settle_ms;      /* files younger than this are left alone */
    int64_t clock_max_age_ms;     /* records older than now - this are refused */
    int64_t clock_max_future_ms;
    int64_t max_reply_bytes;
    char *log_level;
    bm_log_level_t log_level_value;   /* parsed log_level */
    char *curve_secret_key_file;  /* "" = plaintext (collector must allow it) */
    char *collector_public_key;   /* Z85 key or a file holding it */
    bm_strlist_t encoding;        /* "[SOURCE:]ENCODING" of sources not in UTF-8 */
} bm_agent_config_t;

/* The config map (terminated by a NULL key), for --help. */
extern const bm_cfg_entry_t bm_agent_config_map[];

/* Loads and checks path into cfg (which must be zeroed or freed before).
 * Returns 0, or -1 with err naming the file and the key; cfg must be freed
 * with bm_agent_config_free in both cases. */
int bm_agent_config_load(const char *path, bm_agent_config_t *cfg, bm_err_t *err);

/* Checks the cross-key rules and fills derived values (inbox_dir,
 * log_level_value).  Used by load; public for tests and overrides.
 * Returns 0 or -1 with err. */
int bm_agent_config_check(bm_agent_config_t *cfg, bm_err_t *err);

/* The encoding declared for an inbox file (its base name): the `encoding`
 * entry whose SOURCE is the longest prefix of the name, else the entry
 * without a SOURCE, else NULL (UTF-8, or UTF-16 with a byte order mark).
 * Borrowed from cfg ("windows-1251"); pass it to bm_parse_file_encoded. */
const char *bm_agent_config_encoding(const bm_agent_config_t *cfg, const char *file_name);

/* Frees the strings and lists.  Safe to call twice. */
void bm_agent_config_free(bm_agent_config_t *cfg);

/* Prints every key with its type, default and help. */
void bm_agent_config_print_help(FILE *out);

#endif
