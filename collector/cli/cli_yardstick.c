/* cli_yardstick: `branchmark yardstick refresh`, the chain-wide rank
 * positions that regional managers and branches see of their own branches
 * (migration 011_yardstick.sql, docs/security.md).
 *
 * The rank ranges come from the report's own code (report/rank.c,
 * bm_rank_entries in stats.c): this command runs the chain-wide ranking of
 * every metric as the caller, which must see the whole chain (an HQ login or
 * the admin), and stores each ranked branch's range in yardstick_positions,
 * one transaction per ranking.  Scoped logins read only their own branches'
 * rows, through bm_yardstick_positions().  Run it after data arrive (e.g.
 * hourly from a timer); a report marks a position whose chain figures have
 * changed since as not current.  Owns nothing beyond one run.  Exit codes as
 * in cli.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "db.h"
#include "reports.h"

static const char s_usage[] =
    "usage: branchmark yardstick refresh [--period day|week|month|quarter] [--at YYYY-MM-DD]\n"
    "                                    [--metric M] [--db CONNINFO]\n"
    "Ranks the whole chain on every metric (or M) for the current and the previous\n"
    "period of each kind (week, month and quarter, or --period; --at: the period\n"
    "holding that day and the one before), with the report's own rule, and stores\n"
    "each branch's rank range for the regional and branch logins' chain_positions.\n"
    "Needs a login that sees the whole chain (HQ or the admin).\n";

/* Stores one ranking (one transaction; *nranked gets the branches ranked).
 * 0, or -1 with err and nothing stored. */
static int s_store(PGconn *conn, const bm_rank_result_t *r, int *nranked, bm_err_t *err)
{
    size_t cap = r->nrows * 12 + 3;
    char *ids = malloc(cap), *lo = malloc(cap), *hi = malloc(cap);
    if (!ids || !lo || !hi) {
        free(ids);
        free(lo);
        free(hi);
        return bm_err_set(err, "out of memory");
    }
    size_t a = 0, b = 0, c = 0;
    int ranked = 0;
    ids[a++] = lo[b++] = hi[c++] = '{';
    for (size_t i = 0; i < r->nrows; i++) {
        const bm_rank_row_t *row = &r->rows[i];
        if (!row->ranked)
            continue;
        const char *sep = ranked++ ? "," : "";
        a += (size_t)snprintf(ids + a, cap - a, "%s%d", sep, r->ref->branches[row->branch].id);
        b += (size_t)snprintf(lo + b, cap - b, "%s%d", sep, row->rank_lo);
        c += (size_t)snprintf(hi + c, cap - c, "%s%d", sep, row->rank_hi);
    }
    snprintf(ids + a, cap - a, "}");
    snprintf(lo + b, cap - b, "}");
    snprintf(hi + c, cap - c, "}");
    char start[16], min_n[32], chain_n[32], nrk[16];
    bm_date_format(r->cur, start, sizeof start);
    snprintf(min_n, sizeof min_n, "%.17g", r->min_n);
    snprintf(chain_n, sizeof chain_n, "%.0f", r->nscopes ? r->scopes[0].cur.est.n : 0.0);
    snprintf(nrk, sizeof nrk, "%d", ranked);
    const char *v[9] = {r->metric->name, bm_period_name(r->kind), start, min_n, chain_n,
                        nrk, ids, lo, hi};
    int rc = bm_db_exec(conn, "BEGIN", err);
    PGresult *res = NULL;
    if (rc == 0) {
        /* The run's positions go with it (ON DELETE CASCADE). */
        res = PQexecParams(conn,
                           "DELETE FROM yardstick_runs WHERE metric = $1 AND period_kind = $2"
                           " AND period_start = $3::date", 3, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = bm_db_result_err(res, conn, "replacing a chain-wide ranking", err);
        PQclear(res);
    }
    if (rc == 0) {
        res = PQexecParams(conn,
                           "INSERT INTO yardstick_runs (metric, period_kind, period_start, min_n,"
                           " chain_n, ranked) VALUES ($1, $2, $3::date, $4::numeric,"
                           " $5::numeric, $6::int)", 6, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = bm_db_result_err(res, conn, "storing a chain-wide ranking", err);
        PQclear(res);
    }
    if (rc == 0) {
        /* A second statement: the run's row must exist for the foreign key. */
        const char *w[6] = {v[0], v[1], v[2], v[6], v[7], v[8]};
        res = PQexecParams(conn,
                           "INSERT INTO yardstick_positions (metric, period_kind, period_start,"
                           " branch_id, rank_lo, rank_hi) SELECT $1, $2, $3::date, u.id, u.lo,"
                           " u.hi FROM unnest($4::int[], $5::int[], $6::int[]) u(id, lo, hi)",
                           6, NULL, w, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = bm_db_result_err(res, conn, "storing chain-wide positions", err);
        PQclear(res);
    }
    if (rc == 0)
        rc = bm_db_exec(conn, "COMMIT", err);
    else
        PQclear(PQexec(conn, "ROLLBACK"));
    free(ids);
    free(lo);
    free(hi);
    *nranked = ranked;
    return rc;
}

/* Ranks (metric, kind) at `at` (NULL: the report's current period) and
 * stores it; *prev_day gets a day of the previous period.  0 or -1. */
static int s_refresh_one(PGconn *conn, const char *metric, const char *kind, const char *at,
                         char prev_day[16], bm_err_t *err)
{
    bm_request_text_t text;
    memset(&text, 0, sizeof text);
    text.metric = metric;
    text.period = kind;
    text.at = at;
    bm_request_t rq;
    bm_result_t *res = NULL;
    if (bm_request_parse(BM_REPORT_RANK, &text, &rq, err) != BM_REPORT_OK ||
        bm_reports_run(conn, &rq, &res, err) != BM_REPORT_OK)
        return -1;
    int rc = 0, nranked = 0;
    if (res->scope_limited)
        rc = bm_err_set(err, "this login sees only part of the chain; run it as HQ or the admin");
    else
        rc = s_store(conn, res->u.rank, &nranked, err);
    if (rc == 0) {
        const bm_rank_result_t *r = res->u.rank;
        char label[32];
        bm_date_format(r->prev, prev_day, 16);
        printf("%s %s %s: %d of %zu branches ranked\n", metric, kind,
               bm_period_label(r->kind, r->cur, label, sizeof label), nranked, r->nrows);
    }
    bm_result_destroy(&res);
    return rc;
}

int bm_cmd_yardstick(int argc, char **argv)
{
    const char *db = NULL, *period = NULL, *at = NULL, *metric = NULL;
    if (argc < 2 || strcmp(argv[1], "refresh")) {
        fputs(s_usage, argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
        return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    for (int i = 2; i < argc; i++) {
        const char **slot = !strcmp(argv[i], "--period") ? &period
                            : !strcmp(argv[i], "--at")   ? &at
                            : !strcmp(argv[i], "--metric") ? &metric
                                                           : NULL;
        if (bm_cli_db_option(argc, argv, &i, &db))
            continue;
        if (!strcmp(argv[i], "--help")) {
            fputs(s_usage, stdout);
            return 0;
        }
        if (!slot || i + 1 >= argc) {
            fprintf(stderr, "branchmark yardstick: %s \"%s\"\n%s",
                    slot ? "missing value of" : "unknown option", argv[i], s_usage);
            return 2;
        }
        *slot = argv[++i];
    }
    PGconn *conn = bm_cli_connect(db, "yardstick");
    if (!conn)
        return 1;
    static const char *const kinds[] = {"week", "month", "quarter", NULL};
    const char *one[] = {period, NULL};
    int rc = 0;
    for (const bm_metric_t *m = bm_metrics; rc == 0 && m->name; m++) {
        if (metric && strcmp(metric, m->name))
            continue;
        for (const char *const *k = period ? one : kinds; rc == 0 && *k; k++) {
            bm_err_t err = {0};
            char prev[16];
            if (s_refresh_one(conn, m->name, *k, at, prev, &err) < 0 ||
                s_refresh_one(conn, m->name, *k, prev, prev, &err) < 0) {
                fprintf(stderr, "branchmark yardstick: %s %s: %s\n", m->name, *k, err.msg);
                rc = strstr(err.msg, "unknown") || strstr(err.msg, "--") ? 2 : 1;
            }
        }
    }
    if (rc == 0 && metric && !bm_metric_find(metric)) {
        fprintf(stderr, "branchmark yardstick: unknown metric \"%s\"\n", metric);
        rc = 2;
    }
    bm_db_close(&conn);
    return rc;
}
