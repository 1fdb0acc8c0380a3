/* agent_status: the agent's status file and the `status` subcommand.
 *
 * The running agent writes <data_dir>/status.json atomically (temporary file
 * + rename, so a reader never sees half a file) at most once per second when
 * something changed, and once more at exit with running = false.
 * `branchmark-agent status` reads it, checks whether the pid is still alive
 * and prints a summary.
 *
 * Next to it, <data_dir>/branchmark-agent.prom holds the same figures in
 * the Prometheus text format for node_exporter's textfile collector
 * (docs/operations.md), written the same way (temporary file + rename:
 * node_exporter never reads half a file), whenever status.json is and at
 * least every BM_STATUS_PROM_EVERY_MS, so that its ages stay fresh.
 * Owns: status.json, branchmark-agent.prom and their temporary files. */
#ifndef BM_AGENT_STATUS_H
#define BM_AGENT_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bm_err.h"

/* Exit codes of `branchmark-agent status`. */
#define BM_STATUS_EXIT_OK 0             /* running and healthy */
#define BM_STATUS_EXIT_NOT_RUNNING 1
#define BM_STATUS_EXIT_USAGE 2          /* bad config, unreadable status file */
#define BM_STATUS_EXIT_DEGRADED 3       /* running, but refused or spool full */
#define BM_STATUS_EXIT_STUCK 4          /* running, but files are stuck in the inbox */

#define BM_STATUS_STUCK_SHOWN 16        /* stuck files named in the status */
#define BM_STATUS_PROM_FILE "branchmark-agent.prom"
#define BM_STATUS_PROM_EVERY_MS 10000   /* the textfile's ages are at most this old */

typedef struct {
    int pid;
    bool running;
    int64_t started_ms;              /* wall clock */
    int64_t updated_ms;
    char agent_id[72];
    char branch[40];
    char stream_id[40];
    char state[16];                  /* connecting, connected, disconnected, refused */
    char endpoint[260];
    uint64_t spool_entries;          /* unacknowledged batches */
    uint64_t spool_bytes;
    uint64_t spool_max_bytes;
    bool spool_full;
    int64_t oldest_unsent_age_s;     /* 0 when nothing waits */
    int64_t last_ack_ms;             /* 0: none since start */
    uint64_t acked_seq;
    uint64_t next_seq;
    uint64_t files_pending;          /* in sending/, waiting for acks */
    uint64_t files_done;             /* since start */
    uint64_t files_rejected;         /* since start */
    uint64_t files_waiting;          /* in the inbox, not settled or not yet taken */
    uint64_t files_stuck;            /* in the inbox, cannot be taken */
    size_t n_stuck_shown;            /* <= BM_STATUS_STUCK_SHOWN of them named: */
    char stuck_name[BM_STATUS_STUCK_SHOWN][256];
    char stuck_why[BM_STATUS_STUCK_SHOWN][240];
    uint64_t lines_bad;              /* since start */
    uint64_t records_spooled;        /* since start */
    uint64_t records_sent;           /* first sends, since start */
    uint64_t records_acked;
    uint64_t records_rejected;       /* refused by the collector */
    uint64_t records_deadlettered;
    bool clock_skew_known;
    int64_t clock_skew_ms;           /* local - collector */
    char last_error[512];
    int64_t last_error_ms;           /* 0: none */
} bm_agent_status_t;

/* The status as a JSON document (heap, caller frees), or NULL when out of
 * memory. */
char *bm_agent_status_json(const bm_agent_status_t *st);

/* Writes json to <data_dir>/status.json atomically.  Returns 0 or -1 with
 * err. */
int bm_agent_status_write(const char *data_dir, const char *json, bm_err_t *err);

/* The status in the Prometheus text format as of now_ms (wall clock; the
 * ages are computed from it): heap, caller frees; NULL when out of memory.
 * No timestamps (node_exporter refuses them in textfiles). */
char *bm_agent_status_prom(const bm_agent_status_t *st, int64_t now_ms);

/* Writes text to <data_dir>/branchmark-agent.prom atomically.  Returns 0 or
 * -1 with err (the old file is left as it was). */
int bm_agent_status_write_prom(const char *data_dir, const char *text, bm_err_t *err);

/* The `status` subcommand: reads <data_dir>/status.json and prints either a
 * human summary or (as_json) the file itself, with "alive" added.  Problems
 * are printed to errout.  Returns one of the BM_STATUS_EXIT_* codes. */
int bm_agent_status_show(const char *data_dir, bool as_json, FILE *out, FILE *errout);

#endif
