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
#include "collector_config.h"

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

#endif
