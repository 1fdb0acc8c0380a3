/* web_guard: login throttling per address and per account (web_guard.h).
 * Owns its slot table. */
#include "web_guard.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm_log.h"
#include "bm_time.h"

#define S_SLOTS 1024
#define S_WINDOW_MS 60000           /* failures count within a minute */
#define S_MAX_LOCKOUT_MS 3600000    /* a lock-out lasts an hour at most */
#define S_FORGET_MS 3600000         /* an hour without failure forgets lock-outs */

typedef struct {
    char key[96];               /* "address 1.2.3.4" or "account anna"; "" = free */
    int failures;               /* in the current window */
    int inflight;               /* admitted attempts not yet ended */
    int lockouts;               /* so far (doubles the next one) */
    int64_t window_start, locked_until, last_failure, last_used;
} s_slot_t;

struct bm_web_guard {
    pthread_mutex_t lock;
    int limit;
    int64_t base_ms, offset_ms;
    uint64_t lockouts;
    s_slot_t slots[S_SLOTS];
};

bm_web_guard_t *bm_web_guard_new(int limit, int64_t base_lockout_ms, bm_err_t *err)
{
    bm_web_guard_t *self = calloc(1, sizeof *self);
    if (!self) {
        bm_err_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    self->limit = limit > 0 ? limit : 1;
    self->base_ms = base_lockout_ms > 0 ? base_lockout_ms : 1000;
    return self;
}

void bm_web_guard_destroy(bm_web_guard_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pthread_mutex_destroy(&(*self_p)->lock);
    free(*self_p);
    *self_p = NULL;
}

static int64_t s_now(const bm_web_guard_t *self)
{
    return bm_mono_ms() + self->offset_ms;
}

/* A slot that holds nothing worth keeping. */
static bool s_idle(const s_slot_t *s, int64_t now)
{
    return !s->key[0] || (s->inflight == 0 && s->locked_until <= now &&
                          (s->lockouts == 0 || now - s->last_failure >= S_FORGET_MS) &&
                          (s->failures == 0 || now - s->window_start >= S_WINDOW_MS));
}

/* Ages a slot: an ended window or lock-out forgets its failures, an hour of
 * quiet its lock-outs. */
static void s_refresh(s_slot_t *s, int64_t now)
{
    if (s->locked_until && s->locked_until <= now) {
        s->locked_until = 0;
        s->failures = 0;
    }
    if (!s->locked_until && s->failures && now - s->window_start >= S_WINDOW_MS)
        s->failures = 0;
    if (s->lockouts && now - s->last_failure >= S_FORGET_MS)
        s->lockouts = 0;
    s->last_used = now;
}

/* The slot of key (lock held): its own, else an idle one (least recently
 * used first), else NULL when every slot is busy. */
static s_slot_t *s_slot(bm_web_guard_t *self, const char *kind, const char *name, int64_t now)
{
    char key[sizeof self->slots[0].key];
    snprintf(key, sizeof key, "%s %s", kind, name);
    s_slot_t *pick = NULL;
    for (int i = 0; i < S_SLOTS; i++) {
        s_slot_t *s = &self->slots[i];
        if (s->key[0] && !strcmp(s->key, key)) {
            s_refresh(s, now);
            return s;
        }
        if (s_idle(s, now) && (!pick || s->last_used < pick->last_used))
            pick = s;
    }
    if (pick) {
        memset(pick, 0, sizeof *pick);
        snprintf(pick->key, sizeof pick->key, "%s", key);
        pick->last_used = now;
    }
    return pick;
}

/* Seconds until s admits an attempt, 0 now. */
static int64_t s_wait(const bm_web_guard_t *self, const s_slot_t *s, int64_t now)
{
    if (s->locked_until > now)
        return (s->locked_until - now + 999) / 1000;
    if (s->failures + s->inflight >= self->limit)
        return 1;   /* the limit is taken by attempts still in flight */
    return 0;
}

int64_t bm_web_guard_begin(bm_web_guard_t *self, const char *peer, const char *user,
                           const char **which)
{
    pthread_mutex_lock(&self->lock);
    int64_t now = s_now(self), wait;
    s_slot_t *a = s_slot(self, "address", peer, now);
    s_slot_t *u = a ? s_slot(self, "account", user, now) : NULL;
    if (!a || !u) {
        *which = "address";
        wait = 1;       /* every slot busy: a flood; refuse rather than forget */
    } else {
        int64_t wa = s_wait(self, a, now), wu = s_wait(self, u, now);
        *which = wa >= wu ? "address" : "account";
        wait = wa > wu ? wa : wu;
        if (!wait) {
            a->inflight++;
            u->inflight++;
        }
    }
    pthread_mutex_unlock(&self->lock);
    return wait;
}

/* One failure against s; a lock-out when it reaches the limit. */
static void s_fail(bm_web_guard_t *self, s_slot_t *s, int64_t now)
{
    if (!s->failures)
        s->window_start = now;
    s->failures++;
    s->last_failure = now;
    if (s->failures < self->limit || s->locked_until > now)
        return;
    int shift = s->lockouts < 12 ? s->lockouts : 12;
    int64_t len = self->base_ms << shift;
    if (len > S_MAX_LOCKOUT_MS)
        len = S_MAX_LOCKOUT_MS;
    s->locked_until = now + len;
    s->lockouts++;
    self->lockouts++;
    bm_warn("login", "%s locked out for %lld s after %d failed logins (lock-out %d in a row)",
            s->key, (long long)((len + 999) / 1000), s->failures, s->lockouts);
}

void bm_web_guard_end(bm_web_guard_t *self, const char *peer, const char *user, bool denied,
                      bool ok)
{
    pthread_mutex_lock(&self->lock);
    int64_t now = s_now(self);
    s_slot_t *a = s_slot(self, "address", peer, now);
    s_slot_t *u = s_slot(self, "account", user, now);
    if (a && a->inflight > 0)
        a->inflight--;
    if (u && u->inflight > 0)
        u->inflight--;
    if (denied) {
        if (a)
            s_fail(self, a, now);
        if (u)
            s_fail(self, u, now);
    } else if (ok && u && !u->locked_until) {
        u->failures = 0;    /* the account's own, never the address's */
    }
    pthread_mutex_unlock(&self->lock);
}

uint64_t bm_web_guard_lockouts(bm_web_guard_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t n = self->lockouts;
    pthread_mutex_unlock(&self->lock);
    return n;
}

void bm_web_guard_advance(bm_web_guard_t *self, int64_t ms)
{
    pthread_mutex_lock(&self->lock);
    self->offset_ms += ms;
    pthread_mutex_unlock(&self->lock);
}
