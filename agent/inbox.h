/* inbox: takes export files from the inbox into the spool, and moves each
 * file on once the collector has acknowledged all of its records.
 *
 * A file's way (docs/agent.md):
 *   inbox/F  --parse, spool, fsync-->  sending/U  --all batches acked-->  done/U
 *                                                                   or  rejected/U + U.errors
 * where U = "<spool next sequence, 20 digits>_F" keeps names unique when a
 * store system reuses a file name.  Files whose lines are all bad go straight
 * to rejected/; files with no data lines to done/; 0-byte files to rejected/
 * as empty exports.  Records are spooled and synced before the file leaves
 * the inbox, so a crash at any point either re-reads the file (the
 * collector's dedup by source id absorbs the resend) or finds its records in
 * the spool (bm_inbox_recover).
 *
 * A file written in place may be taken only once it is finished: its state
 * (inode, size, mtime, ctime) held for inbox_settle across scans, and while
 * it is young (bm_inbox_young_ms) it is not empty, ends in a line end and is
 * not open for writing (bm_inbox_judge).  The judged bytes are copied to
 * sending/.U.snap and the copy is parsed, so a writer going on cannot hand
 * the parser a cut line; a file taken young stays in sending/ until it is old
 * and goes back to the inbox if it was written to meanwhile.  Records the
 * collector refuses are added to U.errors (bm_inbox_note_refused), so such a
 * file ends in rejected/.  Files that can never be taken are "stuck": logged
 * once, listed by bm_inbox_stuck. 
 *
 * Owns: the inbox, sending/, done/ and rejected/ directories, the in-memory
 * table of files waiting for acknowledgement (bounded: one row per file that
 * has batches in the spool), the list of inbox files waiting to be taken
 * (bounded by BM_INBOX_QUEUE_MAX per scan), the states of inbox files seen
 * by the last scan (at most 2048) and the stuck files (BM_INBOX_STUCK_MAX). */
#ifndef BM_INBOX_H
#define BM_INBOX_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "agent_config.h"
#include "bm_err.h"
#include "spool.h"

#define BM_INBOX_QUEUE_MAX 1024       /* files listed per scan, oldest first */
#define BM_INBOX_PENDING_MAX 100000   /* files in sending/ before intake pauses */
#define BM_INBOX_ERRORS_MAX 10000     /* "line N: why" lines kept per file */
#define BM_INBOX_BATCH_BYTES_MAX (4u * 1024 * 1024)  /* encoded batch size cap */
#define BM_INBOX_STUCK_MAX 64         /* stuck inbox files named (all are counted) */
#define BM_INBOX_STUCK_WHY_MAX 240    /* bytes of one stuck file's reason */
/* A file is "young" while its last change is less than this many times
 * inbox_settle ago: then a final line without a line end, an empty file or
 * a file still open for writing means its writer has only paused. */
#define BM_INBOX_YOUNG_FACTOR 10

typedef struct bm_inbox bm_inbox_t;

typedef struct {
    uint64_t files_pending;     /* in sending/, waiting for acknowledgement */
    uint64_t files_done;        /* since start */
    uint64_t files_rejected;    /* since start */
    uint64_t files_queued;      /* listed by the last scan, not yet taken */
    uint64_t lines_bad;         /* since start */
    uint64_t records_spooled;   /* since start */
    uint64_t files_waiting;     /* known names in the inbox, not settled yet */
    uint64_t files_stuck;       /* in the inbox and cannot be taken (see bm_inbox_stuck) */
    bool spool_full;            /* intake paused by spool_max_bytes */
} bm_inbox_info_t;

/* One state of a file: a writer that appends, truncates, replaces (rename)
 * or rewrites it changes at least one of these. */
typedef struct {
    uint64_t dev, ino;
    int64_t size;
    int64_t mtime_ns, ctime_ns;
} bm_file_state_t;

/* What the intake makes of a file that is listed in the inbox. */
typedef enum {
    BM_INTAKE_TAKE = 0,     /* finished: take it */
    BM_INTAKE_WAIT = 1,     /* may still be written: look again at a later scan */
    BM_INTAKE_EMPTY = 2,    /* 0 bytes and no longer young: a failed export, rejected */
} bm_intake_t;

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

/* The i-th stuck inbox file (i < min(files_stuck, BM_INBOX_STUCK_MAX)) and
 * why it cannot be taken, in words for store IT.  Returns false past the
 * end.  The strings are borrowed until the next scan. */
bool bm_inbox_stuck(const bm_inbox_t *inbox, size_t i, const char **name, const char **why);

/* A collector refused record source_id of a batch of file uname (the
 * spool entry's origin_file) for reason.  Appends the refusal to the
 * file's .errors list in sending/ (fsynced before it returns), so that the
 * file ends in rejected/ with the reason.  Called before the batch is
 * marked acknowledged.  Problems are logged; the dead-letter folder keeps
 * the record either way. */
void bm_inbox_note_refused(bm_inbox_t *inbox, const char *uname, const char *source_id,
                           const char *reason);

/* ---- the intake rules, pure functions (unit-tested on their own) ---- */

void bm_file_state_of(const struct stat *st, bm_file_state_t *out);
bool bm_file_state_same(const bm_file_state_t *a, const bm_file_state_t *b);

/* The young bound for inbox_settle: BM_INBOX_YOUNG_FACTOR x settle_ms. */
int64_t bm_inbox_young_ms(int64_t settle_ms);

/* Settled: the file was seen in state `seen` since seen_mono (monotonic ms)
 * and is in the same state `now` at now_mono, for at least settle_ms, and
 * its mtime is at least settle_ms old (mtime_age_ms; a modification time
 * more than a minute in the future is a clock problem that cannot be judged
 * by age, so only the observation counts then). */
bool bm_inbox_settled(const bm_file_state_t *seen, int64_t seen_mono,
                      const bm_file_state_t *now, int64_t now_mono, int64_t mtime_age_ms,
                      int64_t settle_ms);

/* The rule for a settled file: size in bytes, its last byte (-1 when
 * empty), whether another program still has it open for writing (false
 * when that cannot be known) and the age of its last change.  While young
 * (bm_inbox_young_ms), an empty file, a last line without a line end or an
 * open writer mean WAIT; once old, an empty file is EMPTY and the rest is
 * TAKE (a last line without a line end is then an ordinary last line). */
bm_intake_t bm_inbox_judge(int64_t size, int last_byte, bool open_for_writing,
                           int64_t mtime_age_ms, int64_t settle_ms);

#endif
