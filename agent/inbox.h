/* inbox: takes export files from the inbox into the spool, and moves each
 * file on once the collector has acknowledged all of its records.
 *
 * A file's way (docs/agent.md):
 *   inbox/F  --parse, spool, fsync-->  sending/U  --all batches acked-->  done/U
 *                                                                   or  rejected/U + U.errors
 * where U = "<spool next sequence, 20 digits>_F" keeps names unique when a
 * store system reuses a file name.  Files whose lines are all bad go straight
 * to rejected/; files with no data lines to done/.  Records are spooled and
 * synced before the file leaves the inbox, so a crash at any point either
 * re-reads the file (the collector's dedup by source id absorbs the resend)
 * or finds its records in the spool (bm_inbox_recover).
 *
 * Owns: the inbox, sending/, done/ and rejected/ directories, the in-memory
 * table of files waiting for acknowledgement (bounded: one row per file that
 * has batches in the spool), and the list of inbox files waiting to be taken
 * (bounded by BM_INBOX_QUEUE_MAX per scan). */
#ifndef BM_INBOX_H
#define BM_INBOX_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent_config.h"
#include "bm_err.h"
#include "spool.h"

#define BM_INBOX_QUEUE_MAX 1024       /* files listed per scan, oldest first */
#define BM_INBOX_PENDING_MAX 100000   /* files in sending/ before intake pauses */
#define BM_INBOX_ERRORS_MAX 10000     /* "line N: why" lines kept per file */
#define BM_INBOX_BATCH_BYTES_MAX (4u * 1024 * 1024)  /* encoded batch size cap */

typedef struct bm_inbox bm_inbox_t;

typedef struct {
    uint64_t files_pending;     /* in sending/, waiting for acknowledgement */
    uint64_t files_done;        /* since start */
    uint64_t files_rejected;    /* since start */
    uint64_t files_queued;      /* listed by the last scan, not yet taken */
    uint64_t lines_bad;         /* since start */
    uint64_t records_spooled;   /* since start */
    bool spool_full;            /* intake paused by spool_max_bytes */
} bm_inbox_info_t;

/* Creates the inbox, sending/, done/ and rejected/ directories if missing
 * and checks that the inbox is on the same file system as data_dir (files
 * are moved by rename).  cfg and spool are borrowed and must outlive the
 * inbox; cfg may be changed in place between calls (SIGHUP).  stop is polled
 * at every record so that a shutdown does not wait for a large file.
 * Returns NULL with err. */
bm_inbox_t *bm_inbox_new(const bm_agent_config_t *cfg, bm_spool_t *spool,
                         const volatile sig_atomic_t *stop, bm_err_t *err);
void bm_inbox_destroy(bm_inbox_t **inbox_p);

/* Restart recovery: rebuilds the table of pending files from the spool's
 * unacknowledged entries, finalises sending/ files whose records are all
 * acknowledged, and moves inbox files whose records are completely in the
 * spool to sending/ without parsing them again.  Returns 0, or -1 with err
 * when the spool cannot be read. */
int bm_inbox_recover(bm_inbox_t *inbox, bm_err_t *err);

/* Lists the inbox: files of a known format that have settled, oldest first.
 * Returns 0, or -1 with err when the inbox cannot be read. */
int bm_inbox_scan(bm_inbox_t *inbox, bm_err_t *err);

/* Takes the next listed file, unless the spool is full.  Problems with one
 * file are logged and do not stop the agent.  Returns 1 when a file was
 * handled (there may be more), 0 when there is nothing to take now, -1 with
 * err on a spool failure that makes intake impossible (it is retried at the
 * next scan by the caller; the file stays in the inbox). */
int bm_inbox_take_next(bm_inbox_t *inbox, bm_err_t *err);

/* Moves files whose last batch is acknowledged to done/ or rejected/.
 * Cheap when nothing changed. */
void bm_inbox_finalize(bm_inbox_t *inbox);

void bm_inbox_info(const bm_inbox_t *inbox, bm_inbox_info_t *out);

#endif
