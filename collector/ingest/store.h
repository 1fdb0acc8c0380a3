/* store: writes validated batches to PostgreSQL, exactly once.
 *
 * Group commit: bm_store_group writes several batches (of any branches) in
 * ONE transaction and one WAL flush; bm_store_batch is a group of one.  The
 * ledger rows (ingest_batches, with the batch's content digest) come first
 * — a (stream_id, sequence) already there is a resend and is answered from
 * the original row, or flagged as a replay when its digest differs — then
 * the records of the new batches, COPYed into per-connection TEMP staging
 * tables and moved with one `INSERT INTO <raw> ... SELECT` per kind and
 * group (so statement-level triggers on the raw tables fire once per kind
 * and group).  Before the insert each staged record is classified against
 * the stored row of its (branch, source_id), whatever its time: the same
 * content (by a digest of what the agent sent, also of older versions) is
 * a duplicate of its batch; other content is a correction: a version at
 * least as new (by the store system's version, Record.version, else by
 * arrival) supersedes the stored one through bm_supersede (old row to
 * record_history and deleted, so the rollups subtract it; evaluations
 * updated in place and sent back to review), an older one is kept in
 * record_history only (010_corrections.sql).  Several versions of one
 * record in a group are stored in rounds, in the order sent, so a group
 * ends as separate transactions would.  If the group fails for a reason one batch may
 * cause (a constraint, any non-connection error), it is rolled back and
 * every batch is written again in a transaction of its own, so one bad
 * batch never holds back the others.
 * Survey CSI scores and evaluation answers go in only with a newly stored
 * parent.  Batches of one branch are serialised by a transaction-level
 * advisory lock, so two collectors cannot interleave them.
 *
 * If the database refuses the batch's data (a constraint the validation
 * missed), the batch is written again record by record under savepoints;
 * each refused record is reported through a callback and the others are
 * stored, so one bad record never holds back good ones.
 *
 * Owns the database connection of the collector (and its staging tables and
 * prepared statements).  Never logs the conninfo. */
#ifndef BM_STORE_H
#define BM_STORE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"
#include "bm_wire.h"
#include "refcache.h"

typedef enum {
    BM_STORE_OK = 0,
    BM_STORE_RETRY,      /* temporary (connection lost, ...): nothing committed;
                            the connection is closed, reconnect and retry later */
    BM_STORE_FAILED,     /* permanent for this input: nothing committed */
} bm_store_status_t;

typedef struct bm_store bm_store_t;

/* One batch, as checked by the receiver. */
typedef struct {
    const char *stream_id;
    uint64_t sequence;
    const char *agent_id;
    int32_t branch_id;
    int64_t sent_at_ms;
    bm_record_t *const *records;
    size_t n_records;
    const bool *accepted;      /* accepted[i]: record i passed validation */
    uint32_t rejected;         /* how many did not */
    const char *digest_hex;    /* SHA-256 of the encoded batch (64 hex), or NULL */
} bm_store_batch_t;

typedef struct {
    uint32_t stored;           /* records newly stored */
    uint32_t duplicates;       /* records stored before (or twice in the batch) with
                                  the same content */
    uint32_t corrected;        /* new versions (same key, other content) of records
                                  stored before: newer ones supersede the stored
                                  version, older ones go to record_history only */
    uint32_t refused;          /* records the database refused (reported by callback) */
    bool batch_was_duplicate;  /* the ledger already had the batch */
    bool replayed;             /* ... with a different content digest: a replay, not a
                                  resend (nothing was stored; refuse it) */
} bm_store_result_t;

/* Called for each record the database refused: index into the batch and
 * the database's reason. */
typedef void (*bm_store_refused_fn)(void *ctx, size_t index, const char *reason);

/* A store for conninfo (copied; NULL or "" = PG* environment).  Does not
 * connect.  Groups hold at most 1 batch until bm_store_reserve.  Returns
 * NULL when out of memory. */
bm_store_t *bm_store_new(const char *conninfo);
void bm_store_destroy(bm_store_t **store_p);

/* Sizes the work arrays for groups of at most max_batches batches and
 * max_records records in all (plus one largest batch); allocated once here,
 * never per group.  Returns 0, or -1 with err when out of memory (the old
 * sizes stay). */
int bm_store_reserve(bm_store_t *store, size_t max_batches, size_t max_records, bm_err_t *err);

/* (Re)connects, creates the staging tables and prepares the statements.
 * Returns 0, or -1 with err (and no connection). */
int bm_store_connect(bm_store_t *store, bm_err_t *err);
void bm_store_disconnect(bm_store_t *store);
bool bm_store_connected(const bm_store_t *store);

/* The live connection (for migrations and the reference cache), or NULL. */
PGconn *bm_store_conn(bm_store_t *store);

/* Binds agent_id to branch_id on first sight and updates last_seen.  Sets
 * *bound_branch_id to the branch the agent is bound to (different from
 * branch_id when the agent is bound elsewhere; the row is then left alone).
 * Returns OK, RETRY (connection lost) or FAILED, with err. */
bm_store_status_t bm_store_bind_agent(bm_store_t *store, const char *agent_id,
                                      int32_t branch_id, int32_t *bound_branch_id,
                                      bm_err_t *err);

/* Called for each record the database refused in a group: the batch's
 * position in the group, the record's index in it, the reason. */
typedef void (*bm_store_group_refused_fn)(void *ctx, size_t batch, size_t index,
                                          const char *reason);

/* Stores the accepted records of batches[0..n) (n at most the reserved
 * max_batches) in one transaction, ACK-able after it returns: statuses[i]
 * is OK with results[i] filled, or FAILED with errs[i] (nothing of batch i
 * committed; the others are unaffected).  Returns OK when every batch has
 * its status, or RETRY (connection lost, nothing committed, connection
 * closed) with err, statuses[] then all RETRY. */
bm_store_status_t bm_store_group(bm_store_t *store, const bm_store_batch_t *const *batches,
                                 size_t n, const bm_refcache_t *cache,
                                 bm_store_group_refused_fn refused, void *ctx,
                                 bm_store_result_t *results, bm_store_status_t *statuses,
                                 bm_err_t *errs, bm_err_t *err);

/* Refreshes agents.last_seen of agent_ids[0..n) in one statement and
 * reports agents whose binding is no longer branch_ids[i] (rebound or
 * deleted) through gone(ctx, i).  Returns OK, RETRY or FAILED with err. */
bm_store_status_t bm_store_touch_agents(bm_store_t *store, const char *const *agent_ids,
                                        const int32_t *branch_ids, size_t n,
                                        void (*gone)(void *ctx, size_t i), void *ctx,
                                        bm_err_t *err);

/* Stores the accepted records of batch in one transaction and fills
 * result.  cache resolves questionnaire and competitor ids (the receiver
 * has checked that they exist).  Returns OK after COMMIT (also for a
 * resent batch), RETRY or FAILED with err and nothing committed. */
bm_store_status_t bm_store_batch(bm_store_t *store, const bm_store_batch_t *batch,
                                 const bm_refcache_t *cache, bm_store_refused_fn refused,
                                 void *ctx, bm_store_result_t *result, bm_err_t *err);

#endif
