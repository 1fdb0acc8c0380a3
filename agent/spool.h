/* spool: the agent's durable, append-only, checksummed store-and-forward log.
 *
 * Records accepted from the inbox are appended here, in batches, before the
 * inbox file is considered taken; the sender reads them back, and they stay
 * until the collector has acknowledged them.  Owns the spool directory:
 *   <dir>/seg-<first-seq, 20 digits>.log   append-only segment files
 *   <dir>/state                            stream id, next sequence, acked
 *                                          position (CRC-checked, replaced
 *                                          atomically by rename)
 * Entry on disk: magic, payload length, sequence, append time, CRC-32C of
 * header and payload, then the payload.  On open, the last segment is scanned
 * and a torn or corrupt tail (power loss mid-write) is cut off and reported;
 * entries before it are kept.
 *
 * Sequence numbers start at 1, increase by one per entry and never go back,
 * across restarts (the state file records the next one before any segment is
 * deleted).  Acknowledgements may arrive out of order; the spool keeps the
 * cumulative position (every entry <= acked_seq is acknowledged) plus the
 * acked entries above it, and deletes a segment once all of its entries are
 * acknowledged.
 *
 * Durability policy (docs/spool.md): bm_spool_append writes, bm_spool_sync
 * fsyncs the segment (and the directory when a segment was created); the
 * agent syncs once per inbox file, before it moves the file out of the inbox.
 * The cursor syncs by itself before it hands out an entry that is not yet
 * durable, so a sequence the collector may have seen is never reused.
 * The state file is fsynced before segments are deleted, and otherwise
 * written lazily (at most about once a second or every 1000 acks, and on
 * close); an ack lost on power failure only causes a resend that the
 * collector recognises and acknowledges again.
 *
 * Memory does not grow with the spool: an index of segment files (one entry
 * per segment) and a bitmap of out-of-order acks covering the 65536
 * sequences above acked_seq (an ack further ahead is ignored: the entry is
 * sent again later and acknowledged as a duplicate).
 *
 * Not thread-safe: one thread (or external locking) per spool.  The spool
 * directory is locked (flock) so a second process cannot open it. */
#ifndef BM_SPOOL_H
#define BM_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"

typedef struct bm_spool bm_spool_t;

/* Largest payload of one entry; bm_spool_append refuses more. */
#define BM_SPOOL_MAX_PAYLOAD (64u * 1024 * 1024)

typedef struct {
    uint64_t entries;           /* entries not yet acknowledged */
    uint64_t bytes;             /* bytes of all segment files on disk */
    uint64_t next_seq;          /* sequence the next append gets */
    uint64_t acked_seq;         /* every entry <= this is acknowledged */
    int64_t oldest_unacked_ms;  /* append time of the oldest unacked entry, 0 if none */
    uint64_t torn_bytes_cut;    /* bytes cut off at open (torn tail), 0 normally */
} bm_spool_stats_t;

/* Opens or creates the spool in dir (created if missing, mode 0700).
 * segment_bytes: a new segment is started once the current one reaches it
 * (0 means 64 MiB).  Cuts a torn tail off the last segment (logged, counted
 * in torn_bytes_cut).  Returns NULL with err if the directory cannot be used
 * or is locked by another process, the state file is corrupt, or the state
 * file is missing while segments exist (never guessed around: the message
 * names the file). */
bm_spool_t *bm_spool_open(const char *dir, uint64_t segment_bytes, bm_err_t *err);

/* Closes the spool, syncing state.  Safe with *spool_p == NULL. */
void bm_spool_close(bm_spool_t **spool_p);

/* The stream id of this spool: 32 lower-case hex characters, created with
 * the spool and kept for its life. */
const char *bm_spool_stream_id(const bm_spool_t *spool);

/* Appends one entry; *seq_out gets its sequence.  Not durable until
 * bm_spool_sync.  Returns 0, or -1 with err (disk full, I/O error); after an
 * error the partial entry is truncated away and the spool remains usable. */
int bm_spool_append(bm_spool_t *spool, const void *payload, size_t len,
                    uint64_t *seq_out, bm_err_t *err);

/* fsyncs what was appended.  Returns 0 or -1 with err. */
int bm_spool_sync(bm_spool_t *spool, bm_err_t *err);

/* A cursor reads unacknowledged entries in sequence order without loading
 * the spool into memory. */
typedef struct bm_spool_cursor bm_spool_cursor_t;

/* A new cursor at the first unacknowledged entry.  NULL with err on failure. */
bm_spool_cursor_t *bm_spool_cursor_new(bm_spool_t *spool, bm_err_t *err);
void bm_spool_cursor_destroy(bm_spool_cursor_t **cur_p);

/* Positions the cursor so that the next read returns the first unacked entry
 * with sequence >= seq (entries below seq are skipped by their headers,
 * without checking their payload).  Returns 0. */
int bm_spool_cursor_seek(bm_spool_cursor_t *cur, uint64_t seq, bm_err_t *err);

/* Reads the next unacknowledged entry.  Returns 1 with *seq, *payload (heap,
 * caller frees), *len and *appended_ms (may be NULL) set; 0 at the end of the
 * spool (call again after more appends); -1 with err when an entry fails its
 * checksum or the segment chain is broken (data corruption, reported, never
 * skipped silently; the cursor stays there, a seek past it moves on). */
int bm_spool_cursor_next(bm_spool_cursor_t *cur, uint64_t *seq, uint8_t **payload,
                         size_t *len, int64_t *appended_ms, bm_err_t *err);

/* Marks seq acknowledged.  Idempotent; unknown or already acked sequences
 * are ignored, so are acks more than 65536 above acked_seq.  May delete fully
 * acknowledged segments (after persisting the state).  Returns 0 or -1 with
 * err (the ack itself is kept in memory even then). */
int bm_spool_ack(bm_spool_t *spool, uint64_t seq, bm_err_t *err);

void bm_spool_stats(const bm_spool_t *spool, bm_spool_stats_t *out);

#endif
