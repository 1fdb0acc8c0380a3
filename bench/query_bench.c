/* bm-querybench: times a query command on one long-lived connection.
 *
 *   bm-querybench --db CONNINFO [--runs N] -- rank --metric nps [...]
 *
 * Runs the command (argv after "--", as `branchmark` takes it) N + 1 times
 * through bm_cli_report_run (cli_report.h: the CLI's argv -> request ->
 * report -> renderer, the report and renderer branchmark-web runs too) on
 * ONE connection, output thrown away, and prints
 *   first_ms=F p50_ms=X p95_ms=Y max_ms=Z runs=N
 * where first is the first run (a fresh backend) and p50/p95/max are over
 * the N runs after it (nearest rank).  This is what a caller with a
 * persistent or pooled connection sees (branchmark-web, or the CLI behind
 * pgbouncer): no process start, no connection set-up, and a backend that has
 * already mapped the shared buffers it reads.  bench/perf.sh prints it next
 * to the whole-command times.  Exit status 0, 1 on a failed run, 2 on a usage
 * error.  Owns one connection and a /dev/null stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bm_err.h"
#include "db.h"
#include "cli_report.h"

#define S_MAX_RUNS 10000

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n-1]. */
static double s_pct(const double *v, int n, double p)
{
    int i = (int)(p * n + 0.999999) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

int main(int argc, char **argv)
{
    const char *db = NULL;
    long runs = 30;
    int cmd = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            cmd = i + 1;
            break;
        }
        if (!strcmp(argv[i], "--db") && i + 1 < argc) {
            db = argv[++i];
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            char *end;
            runs = strtol(argv[++i], &end, 10);
            if (*end || runs < 1 || runs > S_MAX_RUNS) {
                fprintf(stderr, "bm-querybench: --runs: \"%s\" is not 1..%d\n", argv[i],
                        S_MAX_RUNS);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: bm-querybench --db CONNINFO [--runs N] -- COMMAND [ARGS]\n");
            return 2;
        }
    }
    if (cmd < 0 || cmd >= argc) {
        fprintf(stderr, "usage: bm-querybench --db CONNINFO [--runs N] -- COMMAND [ARGS]\n");
        return 2;
    }
    bm_err_t err;
    PGconn *conn = bm_db_connect(db, "bm-querybench", &err);
    if (!conn) {
        fprintf(stderr, "bm-querybench: %s\n", err.msg);
        return 1;
    }
    FILE *null = fopen("/dev/null", "w");
    double *t = malloc(sizeof *t * (size_t)(runs + 1));
    if (!null || !t) {
        fprintf(stderr, "bm-querybench: cannot open /dev/null or out of memory\n");
        if (null)
            fclose(null);
        free(t);
        bm_db_close(&conn);
        return 1;
    }
    int rc = 0;
    for (long r = 0; r <= runs; r++) {
        double a = s_now_ms();
        int st = bm_cli_report_run(conn, argc - cmd, argv + cmd, null, &err);
        t[r] = s_now_ms() - a;
        if (st != 0) {
            fprintf(stderr, "bm-querybench: %s: %s\n", argv[cmd], err.msg);
            rc = 1;
            break;
        }
    }
    if (rc == 0) {
        qsort(t + 1, (size_t)runs, sizeof *t, s_cmp);
        printf("first_ms=%.1f p50_ms=%.1f p95_ms=%.1f max_ms=%.1f runs=%ld\n", t[0],
               s_pct(t + 1, (int)runs, 0.50), s_pct(t + 1, (int)runs, 0.95), t[runs], runs);
    }
    fclose(null);
    free(t);
    bm_db_close(&conn);
    return rc;
}
