/* web_guard: the brakes on password guessing at /api/login.
 *
 * Every attempt is counted BEFORE it reaches PostgreSQL, against two keys:
 * the client address and the account name.  An attempt is admitted only
 * while failures plus attempts still in flight stay below the limit for
 * both keys, so 60 parallel wrong logins put at most `limit` guesses
 * through, not 53.  A failure counts against both keys; a success clears
 * only its own account's failures, never the address's (an attacker's own
 * good login must not buy more guesses) nor another account's.  Reaching
 * the limit locks the key out for base * 2^(lockouts so far) seconds, up to
 * an hour; lockouts are forgotten after an hour without a failure.  Every
 * lock-out is logged once, with the key.
 *
 * Threads: one mutex; the table has a fixed number of slots, and a flood of
 * keys forgets the least recently used idle one first (never one that is
 * locked out or has attempts in flight while a free slot exists).
 * Owns: its slots. */
#ifndef BM_WEB_GUARD_H
#define BM_WEB_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "bm_err.h"

typedef struct bm_web_guard bm_web_guard_t;

/* limit: failures (and attempts in flight) per key before a lock-out;
 * base_lockout_ms: the first lock-out's length (doubling after). */
bm_web_guard_t *bm_web_guard_new(int limit, int64_t base_lockout_ms, bm_err_t *err);
void bm_web_guard_destroy(bm_web_guard_t **self_p);

/* Asks to make one attempt for user from peer.  Returns 0 and counts the
 * attempt in flight (then call bm_web_guard_end exactly once), or the
 * seconds until a new attempt may be made (nothing counted); *which says
 * whether the "address" or the "account" is locked. */
int64_t bm_web_guard_begin(bm_web_guard_t *self, const char *peer, const char *user,
                           const char **which);

/* The outcome of an admitted attempt.  denied: a wrong password (counts as
 * a failure); ok: a success (clears the account's failures); neither:
 * the database could not be asked (nothing counted). */
void bm_web_guard_end(bm_web_guard_t *self, const char *peer, const char *user, bool denied,
                      bool ok);

/* Lock-outs since start (for /metrics and the health counters). */
uint64_t bm_web_guard_lockouts(bm_web_guard_t *self);

/* For tests: the guard's clock is bm_mono_ms() + offset. */
void bm_web_guard_advance(bm_web_guard_t *self, int64_t ms);

#endif
