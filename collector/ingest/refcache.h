/* refcache: the reference data the collector needs on its hot path, in
 * memory: branch code -> id, competitor code -> id, questionnaire (code,
 * version) -> id and its items (code -> max_points).
 *
 * Sorted arrays searched with bsearch; codes are stored inline (at most
 * BM_CODE_MAX bytes), so a lookup allocates nothing.  A load builds new
 * arrays and swaps them in only when complete, so a failed reload keeps the
 * previous contents.  Reloads triggered by a lookup miss are rate-limited
 * (bm_refcache_may_reload) so that a flood of unknown codes cannot hammer
 * the database. */
#ifndef BM_REFCACHE_H
#define BM_REFCACHE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"

/* Miss-triggered reloads happen at most this often. */
#define BM_REFCACHE_MISS_RELOAD_MS 5000

typedef struct bm_refcache bm_refcache_t;

/* A questionnaire version as the cache knows it. */
typedef struct bm_refcache_questionnaire bm_refcache_questionnaire_t;

/* Returns an empty cache, or NULL when out of memory. */
bm_refcache_t *bm_refcache_new(void);
void bm_refcache_destroy(bm_refcache_t **cache_p);

/* Loads everything from the database (one repeatable-read snapshot).
 * Returns 0, or -1 with err and the previous contents kept. */
int bm_refcache_load(bm_refcache_t *cache, PGconn *conn, bm_err_t *err);

/* True once a load has succeeded. */
bool bm_refcache_loaded(const bm_refcache_t *cache);

/* True when a miss may trigger a reload now (then the attempt is recorded,
 * so the next one is allowed BM_REFCACHE_MISS_RELOAD_MS later).  now_ms is a
 * monotonic clock. */
bool bm_refcache_may_reload(bm_refcache_t *cache, int64_t now_ms);

/* Lookups: the database id, or 0 when the code is unknown. */
int32_t bm_refcache_branch(const bm_refcache_t *cache, const char *code);
int32_t bm_refcache_competitor(const bm_refcache_t *cache, const char *code);

/* The questionnaire version, or NULL when unknown.  The pointer is valid
 * until the next load. */
const bm_refcache_questionnaire_t *bm_refcache_questionnaire(const bm_refcache_t *cache,
                                                             const char *code,
                                                             uint32_t version);
int32_t bm_refcache_questionnaire_id(const bm_refcache_questionnaire_t *q);

/* Sets *max_points of item code in q and returns true, or returns false
 * when q has no such item. */
bool bm_refcache_item(const bm_refcache_questionnaire_t *q, const char *code,
                      double *max_points);

/* Numbers of entries, for logs. */
void bm_refcache_counts(const bm_refcache_t *cache, size_t *branches, size_t *competitors,
                        size_t *questionnaires);

#endif
