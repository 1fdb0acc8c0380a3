/* receiver: the collector's ZeroMQ side — one ROUTER socket per configured
 * endpoint, one envelope in, one reply out.
 *
 * For each message [identity][payload]: decode and check the envelope,
 * resolve the branch (refcache), bind the agent to its branch (an agent
 * claiming another branch is refused with ERROR_FORBIDDEN), then answer a
 * heartbeat at once, or validate a batch's records (bm_record_validate and
 * the reference data), store the valid ones (store) and acknowledge after
 * COMMIT.  While the database is unavailable every batch is answered with
 * ERROR_UNAVAILABLE and nothing is acknowledged; the connection is retried
 * with exponential backoff.  Keeps the health counters, logs them every
 * stats_interval and writes them to the status file.
 *
 * Group commit: the batches read in one poll round (up to group_max_batches
 * / group_max_records) are stored in one transaction and each is
 * acknowledged after that COMMIT (store.h says how a failing group falls
 * back to one transaction per batch).
 *
 * Owns the ZeroMQ context and sockets, the store (database connection) and
 * the reference cache.  Single-threaded: a group is finished before the
 * next round of messages is read, so a stop request never leaves half a
 * batch. */
#ifndef BM_RECEIVER_H
#define BM_RECEIVER_H

#include <signal.h>

#include "bm_err.h"
#include "bm_record.h"
#include "bm_wire.h"
#include "collector_config.h"
#include "refcache.h"

typedef struct bm_receiver bm_receiver_t;

/* Binds the sockets of cfg->listen (cfg must outlive the receiver).  Does
 * not touch the database yet.  Returns NULL with err ("could not bind
 * \"tcp://0.0.0.0:5555\": Address already in use"). */
bm_receiver_t *bm_receiver_new(const bm_collector_config_t *cfg, bm_err_t *err);

/* Closes the sockets (linger 0), disconnects, writes the status file a last
 * time.  Safe with NULL. */
void bm_receiver_destroy(bm_receiver_t **recv_p);

/* Serves until *stop or *reload becomes non-zero (checked at least every
 * 250 ms), then returns 0.  Returns -1 with err on a fatal error (a
 * migration refused at start, a broken socket). */
int bm_receiver_run(bm_receiver_t *recv, volatile sig_atomic_t *stop,
                    volatile sig_atomic_t *reload, bm_err_t *err);

/* Reloads the reference cache and forgets the agent bindings it cached
 * (SIGHUP).  A failure is logged; the old cache stays. */
void bm_receiver_reload(bm_receiver_t *recv);

/* Logs the counters and writes the status file now. */
void bm_receiver_report(bm_receiver_t *recv);

/* The /metrics page (Prometheus text format, docs/operations.md) of the
 * counters as the receiver last published them (at the end of its latest
 * poll round).  Thread-safe: the metrics listener calls it from its own
 * thread while the receiver runs.  Returns a heap string of *len bytes
 * (caller frees), or NULL when out of memory. */
char *bm_receiver_metrics(bm_receiver_t *recv, size_t *len);

/* ---- One message's checks and replies, without sockets or a database ----
 *
 * The receiver runs these for every message, and tests/fuzz/fuzz_receiver.c
 * runs the same functions on hostile input with a fake store, so what is
 * fuzzed is what serves.  Between bm_receiver_check_message and the record
 * checks the receiver does what needs the database (the key's agent and
 * branch, the branch code, the agent's binding). */

/* Most answers and CSI items checked for repeats in one record. */
#define BM_RECEIVER_SORT_MAX 500

typedef struct {
    size_t max_frame_bytes;
    int64_t now_ms;               /* wall clock */
    int64_t clock_max_future_ms;  /* sent_at may be this far ahead */
} bm_msg_limits_t;

typedef struct {
    bm_envelope_t *env;               /* decoded (owned: bm_envelope_free), or NULL */
    Branchmark__V1__ErrorCode code;   /* ERROR_UNSPECIFIED: the message passed */
    bool future_dated;                /* refused because sent_at is too far ahead */
    size_t n_spans;                   /* records located in the frame */
    char msg[BM_ERR_MSG_MAX];         /* why it was refused */
} bm_msg_check_t;

/* Decodes data[0..len) and checks everything about it that needs no
 * database: the frame size, the encoding (bm_envelope_scan, which writes
 * the records' places to spans[0..cap)), the header (bm_envelope_check) and
 * sent_at against lim.  Returns 0 with out->code ERROR_UNSPECIFIED, or -1
 * with out->code and out->msg; out->env is set whenever the frame decoded
 * (also on -1, so the reply can echo stream and sequence). */
int bm_receiver_check_message(const void *data, size_t len, const bm_msg_limits_t *lim,
                              bm_span_t *spans, size_t cap, bm_msg_check_t *out);

/* Checks record i of a checked batch: its encoding (span; NULL skips it),
 * bm_record_validate against window, and the reference data in cache (an
 * evaluation's outlet, questionnaire and items; repeated CSI items).  On a
 * lookup miss miss(miss_ctx) is called once (it may reload cache; NULL: no
 * reload).  sort_buf holds BM_RECEIVER_SORT_MAX pointers.  Returns 0, or -1
 * with err saying what is wrong with the record, or -2 with err when its
 * encoding is (a NUL byte, a field twice): its decoded source_id is then
 * not what was sent and must not be echoed. */
int bm_receiver_check_record(const bm_envelope_t *env, size_t i, const bm_span_t *span,
                             const bm_time_window_t *window, const bm_refcache_t *cache,
                             void (*miss)(void *), void *miss_ctx, const char **sort_buf,
                             bm_err_t *err);

/* Fills a rejection of record index.  reason is copied into reason_buf
 * (BM_ERR_MSG_MAX bytes) as valid UTF-8 (bm_utf8_escape); source_id is
 * borrowed when it is valid UTF-8 of at most BM_SOURCE_ID_MAX bytes, else
 * (also NULL) the rejection carries "" (the index still names the record). */
void bm_receiver_rejection(Branchmark__V1__RecordRejection *j, char *reason_buf, size_t index,
                           const char *source_id, const char *reason);

/* Encode the replies to env (NULL when it did not decode), stamped with
 * now_ms.  The stream id is echoed only when it is a valid one, every text
 * is valid UTF-8.  Return a heap buffer of *len bytes (caller frees), or
 * NULL when out of memory. */
uint8_t *bm_receiver_encode_error(const bm_envelope_t *env, Branchmark__V1__ErrorCode code,
                                  const char *msg, int64_t now_ms, size_t *len);
uint8_t *bm_receiver_encode_ack(const bm_envelope_t *env, Branchmark__V1__Ack *ack,
                                int64_t now_ms, size_t *len);
uint8_t *bm_receiver_encode_heartbeat(const bm_envelope_t *env, int64_t now_ms, size_t *len);

#endif
