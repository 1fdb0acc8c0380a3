/* refcache: in-memory reference data for validation; see refcache.h.
 * Owns its sorted arrays; nothing in it points into a PGresult. */
#include "refcache.h"

#include <stdlib.h>
#include <string.h>

#include "bm_wire.h"
#include "db.h"

typedef struct {
    char code[BM_CODE_MAX + 1];
    int32_t id;
} s_code_id_t;

typedef struct {
    char code[BM_CODE_MAX + 1];
    double max_points;
} s_item_t;

struct bm_refcache_questionnaire {
    char code[BM_CODE_MAX + 1];
    uint32_t version;
    int32_t id;
    const s_item_t *items;      /* into the cache's item array, sorted by code */
    size_t n_items;
};

/* One complete generation of the cache; swapped as a whole. */
typedef struct {
    s_code_id_t *branches;
    size_t n_branches;
    s_code_id_t *competitors;
    size_t n_competitors;
    bm_refcache_questionnaire_t *questionnaires;   /* sorted by (code, version) */
    size_t n_questionnaires;
    s_item_t *items;
    size_t n_items;
} s_generation_t;

struct bm_refcache {
    s_generation_t gen;
    bool loaded;
    bool tried;                 /* a miss-triggered reload happened once */
    int64_t last_reload_ms;     /* monotonic time of that reload */
};

static void s_generation_free(s_generation_t *g)
{
    free(g->branches);
    free(g->competitors);
    free(g->questionnaires);
    free(g->items);
    memset(g, 0, sizeof *g);
}

bm_refcache_t *bm_refcache_new(void)
{
    return calloc(1, sizeof(bm_refcache_t));
}

void bm_refcache_destroy(bm_refcache_t **cache_p)
{
    if (!cache_p || !*cache_p)
        return;
    s_generation_free(&(*cache_p)->gen);
    free(*cache_p);
    *cache_p = NULL;
}

/* Copies a code column; the schema's CHECK guarantees the length, but a
 * longer value is cut rather than overrun. */
static void s_copy_code(char *dst, const char *src)
{
    size_t n = strnlen(src, BM_CODE_MAX);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static PGresult *s_query(PGconn *conn, const char *sql, bm_err_t *err)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, "could not load reference data", err);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Loads "SELECT code, id ... ORDER BY code COLLATE "C"" into a sorted array. */
static int s_load_codes(PGconn *conn, const char *sql, s_code_id_t **out, size_t *n,
                        bm_err_t *err)
{
    PGresult *res = s_query(conn, sql, err);
    if (!res)
        return -1;
    size_t rows = (size_t)PQntuples(res);
    *out = calloc(rows ? rows : 1, sizeof **out);
    if (!*out) {
        PQclear(res);
        return bm_err_set(err, "out of memory");
    }
    for (size_t i = 0; i < rows; i++) {
        s_copy_code((*out)[i].code, PQgetvalue(res, (int)i, 0));
        (*out)[i].id = (int32_t)atol(PQgetvalue(res, (int)i, 1));
    }
    *n = rows;
    PQclear(res);
    return 0;
}

int bm_refcache_load(bm_refcache_t *cache, PGconn *conn, bm_err_t *err)
{
    s_generation_t g = {0};
    PGresult *res = NULL;
    /* One snapshot, so items always match their questionnaires. */
    if (bm_db_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err) < 0)
        return -1;
    /* ORDER BY ... COLLATE "C" sorts bytewise, the order strcmp expects. */
    if (s_load_codes(conn, "SELECT code, id FROM branches ORDER BY code COLLATE \"C\"",
                     &g.branches, &g.n_branches, err) < 0 ||
        s_load_codes(conn, "SELECT code, id FROM competitor_outlets ORDER BY code COLLATE \"C\"",
                     &g.competitors, &g.n_competitors, err) < 0)
        goto fail;

    res = s_query(conn, "SELECT code, version, id FROM questionnaires "
                        "ORDER BY code COLLATE \"C\", version", err);
    if (!res)
        goto fail;
    g.n_questionnaires = (size_t)PQntuples(res);
    g.questionnaires = calloc(g.n_questionnaires ? g.n_questionnaires : 1,
                              sizeof *g.questionnaires);
    if (!g.questionnaires) {
        bm_err_set(err, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < g.n_questionnaires; i++) {
        bm_refcache_questionnaire_t *q = &g.questionnaires[i];
        s_copy_code(q->code, PQgetvalue(res, (int)i, 0));
        q->version = (uint32_t)strtoul(PQgetvalue(res, (int)i, 1), NULL, 10);
        q->id = (int32_t)atol(PQgetvalue(res, (int)i, 2));
    }
    PQclear(res);

    res = s_query(conn, "SELECT questionnaire_id, code, max_points FROM questionnaire_items "
                        "ORDER BY questionnaire_id, code COLLATE \"C\"", err);
    if (!res)
        goto fail;
    g.n_items = (size_t)PQntuples(res);
    g.items = calloc(g.n_items ? g.n_items : 1, sizeof *g.items);
    if (!g.items) {
        bm_err_set(err, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < g.n_items;) {
        int32_t qid = (int32_t)atol(PQgetvalue(res, (int)i, 0));
        size_t start = i;
        for (; i < g.n_items && (int32_t)atol(PQgetvalue(res, (int)i, 0)) == qid; i++) {
            s_copy_code(g.items[i].code, PQgetvalue(res, (int)i, 1));
            g.items[i].max_points = strtod(PQgetvalue(res, (int)i, 2), NULL);
        }
        /* Questionnaires are few: a linear scan per group is fine. */
        for (size_t k = 0; k < g.n_questionnaires; k++)
            if (g.questionnaires[k].id == qid) {
                g.questionnaires[k].items = &g.items[start];
                g.questionnaires[k].n_items = i - start;
            }
    }
    PQclear(res);
    res = NULL;
    if (bm_db_exec(conn, "COMMIT", err) < 0)
        goto fail;

    s_generation_free(&cache->gen);
    cache->gen = g;
    cache->loaded = true;
    return 0;
fail:
    PQclear(res);
    PQclear(PQexec(conn, "ROLLBACK"));
    s_generation_free(&g);
    return -1;
}

bool bm_refcache_loaded(const bm_refcache_t *cache)
{
    return cache->loaded;
}

bool bm_refcache_may_reload(bm_refcache_t *cache, int64_t now_ms)
{
    if (cache->tried && now_ms - cache->last_reload_ms < BM_REFCACHE_MISS_RELOAD_MS)
        return false;
    cache->tried = true;
    cache->last_reload_ms = now_ms;
    return true;
}

static int s_code_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const s_code_id_t *)elem)->code);
}

static int32_t s_lookup(const s_code_id_t *arr, size_t n, const char *code)
{
    if (!code || n == 0)
        return 0;
    const s_code_id_t *hit = bsearch(code, arr, n, sizeof *arr, s_code_cmp);
    return hit ? hit->id : 0;
}

int32_t bm_refcache_branch(const bm_refcache_t *cache, const char *code)
{
    return s_lookup(cache->gen.branches, cache->gen.n_branches, code);
}

int32_t bm_refcache_competitor(const bm_refcache_t *cache, const char *code)
{
    return s_lookup(cache->gen.competitors, cache->gen.n_competitors, code);
}

typedef struct {
    const char *code;
    uint32_t version;
} s_qkey_t;

static int s_q_cmp(const void *key, const void *elem)
{
    const s_qkey_t *k = key;
    const bm_refcache_questionnaire_t *q = elem;
    int c = strcmp(k->code, q->code);
    if (c)
        return c;
    return (k->version > q->version) - (k->version < q->version);
}

const bm_refcache_questionnaire_t *bm_refcache_questionnaire(const bm_refcache_t *cache,
                                                             const char *code,
                                                             uint32_t version)
{
    if (!code || cache->gen.n_questionnaires == 0)
        return NULL;
    s_qkey_t key = {code, version};
    return bsearch(&key, cache->gen.questionnaires, cache->gen.n_questionnaires,
                   sizeof *cache->gen.questionnaires, s_q_cmp);
}

int32_t bm_refcache_questionnaire_id(const bm_refcache_questionnaire_t *q)
{
    return q->id;
}

static int s_item_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const s_item_t *)elem)->code);
}

bool bm_refcache_item(const bm_refcache_questionnaire_t *q, const char *code,
                      double *max_points)
{
    if (!code || q->n_items == 0)
        return false;
    const s_item_t *hit = bsearch(code, q->items, q->n_items, sizeof *q->items, s_item_cmp);
    if (!hit)
        return false;
    *max_points = hit->max_points;
    return true;
}

void bm_refcache_counts(const bm_refcache_t *cache, size_t *branches, size_t *competitors,
                        size_t *questionnaires)
{
    *branches = cache->gen.n_branches;
    *competitors = cache->gen.n_competitors;
    *questionnaires = cache->gen.n_questionnaires;
}
