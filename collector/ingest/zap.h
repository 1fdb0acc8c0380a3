/* zap: the collector's ZeroMQ authentication handler (ZAP, RFC 27) for CURVE
 * (issue: security).
 *
 * A thread with its own PostgreSQL connection serves
 * inproc://zeromq.zap.01 (REP) in the receiver's ZeroMQ context.  Each
 * CURVE handshake on a socket with ZMQ_ZAP_DOMAIN "branchmark" asks it
 * whether the client's public key may connect: the answer comes from the
 * allow-list table agent_keys (enrolled, not revoked), looked up at every
 * handshake (no cache, so a revoked key is refused at the next connection).
 * An accepted peer gets user id = its agent_id and the metadata properties
 * "X-Branch-Id" (the key's branch) and "X-Key" (its Z85 public key), which
 * the receiver reads with zmq_msg_gets.  While the database is unreachable
 * every handshake is refused with 300 (temporary) and retried by the peer.
 *
 * Owns the thread, its REP socket and its database connection. */
#ifndef BM_ZAP_H
#define BM_ZAP_H

#include <stdint.h>

#include "bm_err.h"

#define BM_ZAP_DOMAIN "branchmark"

typedef struct bm_zap bm_zap_t;

/* Binds the ZAP endpoint in ctx and starts the thread; it connects to
 * conninfo (copied) on first use.  Must be called before any CURVE server
 * socket of ctx accepts a peer.  Returns NULL with err. */
bm_zap_t *bm_zap_start(void *ctx, const char *conninfo, bm_err_t *err);

/* Stops the thread and closes its socket and connection.  Must be called
 * before zmq_ctx_term of the context.  Safe with NULL. */
void bm_zap_stop(bm_zap_t **zap_p);

/* Handshakes accepted and refused so far (thread-safe). */
void bm_zap_counts(bm_zap_t *zap, uint64_t *accepted, uint64_t *refused);

#endif
