/* sender: delivers the spool to a collector over ZeroMQ and applies replies.
 *
 * One DEALER socket, connected to one collector endpoint at a time (the
 * configured order; the next one after a failure).  Up to send_window
 * batches are in flight, read from a spool cursor and wrapped in Envelopes;
 * replies may come in any order and are matched by (stream_id, sequence).
 * An Ack writes the refused records to the dead-letter folder and then marks
 * the entry acknowledged in the spool.  Anything that goes wrong (no reply
 * within ack_timeout, a lost connection, an error reply) ends in the same
 * place: wait (exponential backoff with full jitter), then resend every
 * unacknowledged entry from the spool; the collector's dedup by (stream,
 * sequence) makes resending safe.  Nothing is ever dropped.
 *
 * Single-threaded: the caller's loop calls bm_sender_wait (which polls the
 * sockets) and bm_sender_process.  Owns: the ZeroMQ context, the DEALER and
 * its monitor socket, a spool cursor, and the in-flight table (bounded by
 * send_window <= 1024). */
#ifndef BM_SENDER_H
#define BM_SENDER_H

#include <stdbool.h>
#include <stdint.h>

#include "agent_config.h"
#include "bm_err.h"
#include "deadletter.h"
#include "spool.h"

typedef struct bm_sender bm_sender_t;

typedef struct {
    const char *state;          /* connecting, connected, disconnected, refused */
    const char *endpoint;       /* the endpoint in use */
    uint64_t in_flight;         /* batches sent, not yet answered */
    int64_t last_ack_ms;        /* wall clock, 0: none since start */
    uint64_t records_sent;      /* records in first sends of a batch */
    uint64_t records_acked;
    uint64_t records_rejected;  /* refused by the collector */
    uint64_t records_deadlettered;
    bool clock_skew_known;
    int64_t clock_skew_ms;      /* local - collector */
    const char *last_error;     /* "" when none */
    int64_t last_error_ms;
} bm_sender_info_t;

/* cfg, spool and dl are borrowed and must outlive the sender; cfg may be
 * changed in place (then call bm_sender_reconfigure).  Does not connect yet.
 * Returns NULL with err. */
bm_sender_t *bm_sender_new(const bm_agent_config_t *cfg, bm_spool_t *spool,
                           bm_deadletter_t *dl, bm_err_t *err);

/* Closes the sockets (unsent data stays in the spool).  Safe twice. */
void bm_sender_destroy(bm_sender_t **sender_p);

/* Milliseconds until the sender next needs bm_sender_process for a timer
 * (0: now); never more than max_ms. */
int bm_sender_timeout_ms(const bm_sender_t *sender, int max_ms);

/* Waits up to timeout_ms for socket activity (or just sleeps when no socket
 * is open).  A signal ends the wait early. */
void bm_sender_wait(bm_sender_t *sender, int timeout_ms);

/* Reads replies and monitor events, handles timers (ack timeout, failover,
 * backoff, heartbeat) and fills the send window.  Errors are logged and
 * recorded in the status, never returned: the sender always retries. */
void bm_sender_process(bm_sender_t *sender);

/* Applies a changed configuration: a different endpoint list reconnects to
 * its first endpoint; intervals and the window take effect at once. */
void bm_sender_reconfigure(bm_sender_t *sender);

void bm_sender_info(const bm_sender_t *sender, bm_sender_info_t *out);

/* Called for each record the collector refused, after it is in the
 * dead-letter folder and before its batch is marked acknowledged:
 * origin_file is the spool entry's file name (U), "" when unknown. */
typedef void (*bm_sender_refused_fn)(void *ctx, const char *origin_file,
                                     const char *source_id, const char *reason);

/* Sets the refusal callback (NULL: none).  ctx is borrowed. */
void bm_sender_on_refused(bm_sender_t *sender, bm_sender_refused_fn fn, void *ctx);

#endif
