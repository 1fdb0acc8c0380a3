/* bm-storegroup: checks the store's group commit against a real database.
 *
 *   bm-storegroup --db CONNINFO
 *
 * The database must be migrated and hold at least two branches
 * (tests/integration/test_group_commit.sh sets it up).  Calls
 * bm_store_group directly, so the groups are exactly the ones written here
 * (through the collector a group is whatever happens to be waiting):
 *  1. one group of three batches: the same source id in two batches of one
 *     branch is stored once (the second batch acks it as a duplicate), the
 *     same source id of another branch is a record of its own;
 *  2. the same three batches again: each is answered from the ledger as a
 *     resend, nothing new is stored;
 *  3. a group with a record the database refuses and a batch whose ledger
 *     row the database refuses: the group falls back to one transaction per
 *     batch; the good batch is stored, the bad record alone is refused, the
 *     bad batch alone fails;
 *  4. a sequence reused with other content is flagged as a replay;
 *  5. a group whose records are partly in the database already counts stored
 *     and duplicates per batch;
 *  6. the batched last_seen refresh touches the agents still bound as cached
 *     and reports the others;
 *  7. (run before 6) corrections: two versions of a receipt in one group end
 *     with the later one, an older version (by Record.version) arriving
 *     late is kept in record_history only, the first version sent again is
 *     a duplicate, a newer version whose time moves it to another partition
 *     replaces the stored row; rollups equal a full recomputation.
 * Prints what it checked; exit status 0 when everything held, 1 otherwise.
 * Owns: one store (connection) and an empty reference cache. */
#include "bm_test.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm_time.h"
#include "refcache.h"
#include "store.h"

#define S_MAX_RECS 4

typedef struct {
    Branchmark__V1__Record rec[S_MAX_RECS];
    Branchmark__V1__Receipt receipt[S_MAX_RECS];
    bm_record_t *ptrs[S_MAX_RECS];
    bool accepted[S_MAX_RECS];
    bm_store_batch_t b;
} s_batch_t;

static int64_t s_now;

/* A batch of receipts with the given source ids (currency "EUR" unless
 * one is given for the last record). */
static void s_make(s_batch_t *t, const char *stream, uint64_t seq, int32_t branch,
                   const char *digest, const char *last_currency, size_t n, const char **ids)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < n && i < S_MAX_RECS; i++) {
        branchmark__v1__record__init(&t->rec[i]);
        branchmark__v1__receipt__init(&t->receipt[i]);
        /* The time follows the source id: a record sent again is the same
         * record whatever the dedup key (006 adds the time to it). */
        int64_t h = 0;
        for (const char *c = ids[i]; *c; c++)
            h = h * 31 + *c;
        t->receipt[i].at_ms = s_now - 3600000 + (h % 3600) * 1000;
        /* So is the amount: the same source id with other content would be
         * a correction (the corrections are bm_storegroup's part 7). */
        t->receipt[i].amount_minor = 1000 + h % 1000;
        t->receipt[i].currency = (char *)(i + 1 == n && last_currency ? last_currency : "EUR");
        t->rec[i].source_id = (char *)ids[i];
        t->rec[i].kind_case = BRANCHMARK__V1__RECORD__KIND_RECEIPT;
        t->rec[i].receipt = &t->receipt[i];
        t->ptrs[i] = &t->rec[i];
        t->accepted[i] = true;
    }
    t->b = (bm_store_batch_t){.stream_id = stream, .sequence = seq, .agent_id = "agent-group",
                              .branch_id = branch, .sent_at_ms = s_now, .records = t->ptrs,
                              .n_records = n, .accepted = t->accepted, .rejected = 0,
                              .digest_hex = digest};
}

static long s_count(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    long v = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
                 ? atol(PQgetvalue(res, 0, 0)) : -1;
    PQclear(res);
    return v;
}

/* Whether the rollups equal their full recomputation; prints the ones that
 * do not. */
static bool s_rollups_ok(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT rollup, only_incremental, only_full "
                                 "FROM bm_rollups_check() "
                                 "WHERE only_incremental <> 0 OR only_full <> 0");
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 0;
    for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++)
        printf("  %s: %s only incremental, %s only full\n", PQgetvalue(res, i, 0),
               PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
    PQclear(res);
    return ok;
}

static size_t s_refused_n;
static size_t s_refused_batch, s_refused_index;

static void s_refused(void *ctx, size_t batch, size_t index, const char *reason)
{
    (void)ctx;
    s_refused_n++;
    s_refused_batch = batch;
    s_refused_index = index;
    printf("  refused: batch %zu record %zu: %s\n", batch, index, reason);
}

static unsigned s_gone_mask;

static void s_gone(void *ctx, size_t i)
{
    (void)ctx;
    s_gone_mask |= 1u << i;
}

#define D1 "1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "3333333333333333333333333333333333333333333333333333333333333333"
#define D9 "9999999999999999999999999999999999999999999999999999999999999999"
#define SA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SB "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define SC "cccccccccccccccccccccccccccccccc"
#define SD "dddddddddddddddddddddddddddddddd"
#define SE "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
#define SF "ffffffffffffffffffffffffffffffff"

int main(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "--db") != 0) {
        fprintf(stderr, "usage: bm-storegroup --db CONNINFO\n");
        return 2;
    }
    s_now = bm_now_ms();
    bm_err_t err;
    bm_store_t *store = bm_store_new(argv[2]);
    bm_refcache_t *cache = bm_refcache_new();
    CHECK_OR_GOTO(store && cache, out);
    CHECK_OR_GOTO(bm_store_reserve(store, 8, 100, &err) == 0, out);
    if (bm_store_connect(store, &err) < 0) {
        fprintf(stderr, "bm-storegroup: %s\n", err.msg);
        CHECK_OR_GOTO(false, out);
    }
    PGconn *conn = bm_store_conn(store);
    int32_t b1 = (int32_t)s_count(conn, "SELECT min(id) FROM branches");
    int32_t b2 = (int32_t)s_count(conn, "SELECT min(id) FROM branches WHERE id > "
                                        "(SELECT min(id) FROM branches)");
    CHECK_OR_GOTO(b1 > 0 && b2 > 0, out);

    static s_batch_t a, b, c, d, e, f, g;
    const char *ids_a[] = {"G-1", "G-2"};
    const char *ids_b[] = {"G-2", "G-3"};
    const char *ids_c[] = {"G-1"};
    s_make(&a, SA, 1, b1, D1, NULL, 2, ids_a);
    s_make(&b, SB, 1, b1, D2, NULL, 2, ids_b);
    s_make(&c, SC, 1, b2, D3, NULL, 1, ids_c);
    const bm_store_batch_t *grp[] = {&a.b, &b.b, &c.b};
    bm_store_result_t res[3];
    bm_store_status_t st[3];
    bm_err_t errs[3];

    printf("1. one group: G-2 in two batches of branch %d, G-1 in two branches\n", b1);
    CHECK_OR_GOTO(bm_store_group(store, grp, 3, cache, s_refused, NULL, res, st, errs, &err) ==
                      BM_STORE_OK, out);
    for (int i = 0; i < 3; i++)
        CHECK(st[i] == BM_STORE_OK && !res[i].batch_was_duplicate && !res[i].replayed);
    CHECK(res[0].stored == 2 && res[0].duplicates == 0);
    CHECK(res[1].stored == 1 && res[1].duplicates == 1);
    CHECK(res[2].stored == 1 && res[2].duplicates == 0);
    CHECK(s_count(conn, "SELECT count(*) FROM receipts WHERE source_id LIKE 'G-%'") == 4);
    CHECK(s_count(conn, "SELECT count(*) FROM receipts WHERE source_id = 'G-2'") == 1);
    CHECK(s_count(conn, "SELECT count(*) FROM ingest_batches WHERE stream_id = '" SB
                        "' AND stored = 1 AND duplicates = 1 AND content_sha256 = "
                        "decode('" D2 "', 'hex')") == 1);
    CHECK(s_count(conn, "SELECT count(*) FROM rollup_sales WHERE period_kind = 'day' "
                        "AND receipts > 0") >= 2);

    printf("2. the same group again: three resends, nothing new\n");
    CHECK_OR_GOTO(bm_store_group(store, grp, 3, cache, s_refused, NULL, res, st, errs, &err) ==
                      BM_STORE_OK, out);
    for (int i = 0; i < 3; i++)
        CHECK(st[i] == BM_STORE_OK && res[i].batch_was_duplicate && !res[i].replayed);
    CHECK(res[1].stored == 1 && res[1].duplicates == 1);
    CHECK(s_count(conn, "SELECT count(*) FROM receipts WHERE source_id LIKE 'G-%'") == 4);

    printf("3. a refused record and a refused batch do not hurt the good batch\n");
    const char *ids_d[] = {"G-10", "G-11"};
    const char *ids_e[] = {"G-20"};
    const char *ids_f[] = {"G-30", "G-2"};
    s_make(&d, SA, 2, b1, NULL, "euro", 2, ids_d);   /* G-11: currency CHECK */
    s_make(&e, "not-a-stream-id", 1, b1, NULL, NULL, 1, ids_e); /* ledger CHECK */
    s_make(&f, SC, 2, b2, NULL, NULL, 2, ids_f);
    const bm_store_batch_t *grp2[] = {&d.b, &e.b, &f.b};
    s_refused_n = 0;
    CHECK_OR_GOTO(bm_store_group(store, grp2, 3, cache, s_refused, NULL, res, st, errs, &err) ==
                      BM_STORE_OK, out);
    CHECK(st[0] == BM_STORE_OK && res[0].stored == 1 && res[0].refused == 1);
    CHECK(s_refused_n == 1 && s_refused_batch == 0 && s_refused_index == 1);
    CHECK(st[1] == BM_STORE_FAILED);
    if (st[1] == BM_STORE_FAILED)
        printf("  batch 1 failed alone: %s\n", errs[1].msg);
    CHECK(st[2] == BM_STORE_OK && res[2].stored == 2 && res[2].duplicates == 0);
    CHECK(s_count(conn, "SELECT count(*) FROM receipts WHERE source_id IN "
                        "('G-10', 'G-30')") == 2);
    CHECK(s_count(conn, "SELECT count(*) FROM receipts WHERE source_id IN "
                        "('G-11', 'G-20')") == 0);
    CHECK(s_count(conn, "SELECT rejected FROM ingest_batches WHERE stream_id = '" SA
                        "' AND sequence = 2") == 1);

    printf("4. a sequence reused for other content is a replay\n");
    const char *ids_g[] = {"G-99"};
    s_make(&g, SA, 1, b1, D9, NULL, 1, ids_g);
    const bm_store_batch_t *grp3[] = {&g.b, &c.b};
    CHECK_OR_GOTO(bm_store_group(store, grp3, 2, cache, s_refused, NULL, res, st, errs, &err) ==
                      BM_STORE_OK, out);
    CHECK(st[0] == BM_STORE_OK && res[0].replayed);
    CHECK(st[1] == BM_STORE_OK && res[1].batch_was_duplicate && !res[1].replayed);
    CHECK(s_count(conn, "SELECT count(*) FROM receipts WHERE source_id = 'G-99'") == 0);

    printf("5. a group whose records are partly stored already counts them per batch\n");
    static s_batch_t h, i2;
    const char *ids_h[] = {"G-1", "G-40"};   /* G-1 of branch b1: stored in 1. */
    const char *ids_i[] = {"G-41", "G-1"};   /* G-1 of branch b2: stored in 1. */
    s_make(&h, SD, 1, b1, NULL, NULL, 2, ids_h);
    s_make(&i2, SE, 1, b2, NULL, NULL, 2, ids_i);
    const bm_store_batch_t *grp4[] = {&h.b, &i2.b};
    CHECK_OR_GOTO(bm_store_group(store, grp4, 2, cache, s_refused, NULL, res, st, errs, &err) ==
                      BM_STORE_OK, out);
    printf("  stored/duplicates: %u/%u and %u/%u\n", res[0].stored, res[0].duplicates,
           res[1].stored, res[1].duplicates);
    CHECK(st[0] == BM_STORE_OK && res[0].stored == 1 && res[0].duplicates == 1);
    CHECK(st[1] == BM_STORE_OK && res[1].stored == 1 && res[1].duplicates == 1);
    CHECK(s_count(conn, "SELECT count(*) FROM receipts WHERE source_id IN "
                        "('G-40', 'G-41')") == 2);
    CHECK(s_count(conn, "SELECT count(*) FROM ingest_batches WHERE stream_id IN ('" SD "', '"
                        SE "') AND stored = 1 AND duplicates = 1") == 2);

    CHECK(s_rollups_ok(conn));

    printf("7. corrections: versions in one group, a late older version, a resend of an "
           "old version, a new time in another partition\n");
    static s_batch_t x1, x2, x3, x4;
    const char *ids_x1[] = {"G-50"};
    const char *ids_x2[] = {"G-50", "G-51"};
    const char *ids_x3[] = {"G-51"};
    const char *ids_x4[] = {"G-50", "G-51"};
    s_make(&x1, SF, 1, b1, NULL, NULL, 1, ids_x1);
    s_make(&x2, SF, 2, b1, NULL, NULL, 2, ids_x2);
    s_make(&x3, SF, 3, b1, NULL, NULL, 1, ids_x3);
    x1.receipt[0].amount_minor = 100;
    x2.receipt[0].amount_minor = 200;             /* G-50: unversioned, by arrival */
    x2.receipt[1].amount_minor = 300;
    x2.rec[1].version = 5;
    x3.receipt[0].amount_minor = 999;             /* G-51 version 3: older, late */
    x3.rec[0].version = 3;
    const bm_store_batch_t *grp5[] = {&x1.b, &x2.b, &x3.b};
    CHECK_OR_GOTO(bm_store_group(store, grp5, 3, cache, s_refused, NULL, res, st, errs, &err) ==
                      BM_STORE_OK, out);
    CHECK(st[0] == BM_STORE_OK && res[0].stored == 1 && res[0].corrected == 0);
    CHECK(st[1] == BM_STORE_OK && res[1].stored == 1 && res[1].corrected == 1);
    CHECK(st[2] == BM_STORE_OK && res[2].stored == 0 && res[2].corrected == 1 &&
          res[2].duplicates == 0);
    CHECK(s_count(conn, "SELECT amount_minor FROM receipts WHERE source_id = 'G-50'") == 200);
    CHECK(s_count(conn, "SELECT amount_minor FROM receipts WHERE source_id = 'G-51'") == 300);
    CHECK(s_count(conn, "SELECT count(*) FROM record_history WHERE source_id = 'G-50' AND "
                        "status = 'superseded' AND by_stream = '" SF "' AND by_sequence = 2 "
                        "AND (content->>'amount_minor')::int = 100") == 1);
    CHECK(s_count(conn, "SELECT count(*) FROM record_history WHERE source_id = 'G-51' AND "
                        "status = 'late' AND src_version = 3 AND by_sequence = 3") == 1);
    CHECK(s_count(conn, "SELECT corrected FROM ingest_batches WHERE stream_id = '" SF
                        "' AND sequence = 3") == 1);
    s_make(&x4, SF, 4, b1, NULL, NULL, 2, ids_x4);
    x4.receipt[0].amount_minor = 100;             /* G-50's first content again */
    x4.receipt[1].amount_minor = 400;
    x4.receipt[1].at_ms += 40LL * 86400000;       /* next month: another partition */
    x4.rec[1].version = 7;
    const bm_store_batch_t *grp6[] = {&x4.b};
    CHECK_OR_GOTO(bm_store_group(store, grp6, 1, cache, s_refused, NULL, res, st, errs, &err) ==
                      BM_STORE_OK, out);
    CHECK(st[0] == BM_STORE_OK && res[0].duplicates == 1 && res[0].corrected == 1 &&
          res[0].stored == 0);
    CHECK(s_count(conn, "SELECT count(*) FROM receipts WHERE source_id = 'G-51'") == 1);
    CHECK(s_count(conn, "SELECT amount_minor FROM receipts WHERE source_id = 'G-51' AND "
                        "src_version = 7") == 400);
    CHECK(s_count(conn, "SELECT amount_minor FROM receipts WHERE source_id = 'G-50'") == 200);
    CHECK(s_rollups_ok(conn));
    /* A resent batch is answered with its corrected count. */
    CHECK_OR_GOTO(bm_store_group(store, grp6, 1, cache, s_refused, NULL, res, st, errs, &err) ==
                      BM_STORE_OK, out);
    CHECK(st[0] == BM_STORE_OK && res[0].batch_was_duplicate && res[0].corrected == 1);

    printf("6. one last_seen refresh for several agents reports changed bindings\n");
    int32_t bound = 0;
    CHECK(bm_store_bind_agent(store, "agent-x", b1, &bound, &err) == BM_STORE_OK &&
          bound == b1);
    CHECK(bm_store_bind_agent(store, "agent-y", b2, &bound, &err) == BM_STORE_OK &&
          bound == b2);
    PQclear(PQexec(conn, "UPDATE agents SET last_seen = now() - interval '1 hour'"));
    const char *agents[] = {"agent-x", "agent-y", "agent-z"};
    const int32_t branches[] = {b1, b1, b1};
    s_gone_mask = 0;
    CHECK(bm_store_touch_agents(store, agents, branches, 3, s_gone, NULL, &err) ==
          BM_STORE_OK);
    CHECK(s_gone_mask == 6);    /* agent-y is bound elsewhere, agent-z unknown */
    CHECK(s_count(conn, "SELECT count(*) FROM agents WHERE agent_id = 'agent-x' "
                        "AND last_seen > now() - interval '1 minute'") == 1);
    CHECK(s_count(conn, "SELECT count(*) FROM agents WHERE agent_id <> 'agent-x' "
                        "AND last_seen > now() - interval '1 minute'") == 0);
out:
    bm_store_destroy(&store);
    bm_refcache_destroy(&cache);
    return bm_test_result("bm-storegroup");
}
