/* bm_prom: a small writer of the Prometheus text exposition format
 * (version 0.0.4), shared by the collector's and the web server's /metrics
 * and the agent's node_exporter textfile.
 *
 * A page is written family by family: bm_prom_family writes the `# HELP`
 * and `# TYPE` lines, then bm_prom_sample (counters, gauges) or
 * bm_prom_hist (histograms: cumulative `_bucket{le=...}` lines ending in
 * le="+Inf", then `_sum` and `_count`) write its samples, each with label
 * pairs given as NULL-terminated (name, value) arguments.  Escaping follows
 * the format: in HELP text `\` and newline become `\\` and `\n`; in label
 * values `\`, `"` and newline become `\\`, `\"` and `\n`.  Values are
 * written as the shortest decimal that reads back as the same double, and
 * as +Inf, -Inf, NaN.  Metric and label names must match
 * [a-zA-Z_:][a-zA-Z0-9_:]* and [a-zA-Z_][a-zA-Z0-9_]* (labels starting with
 * "__" are reserved): a bad name is a programming error and asserts.
 *
 * Histograms are kept by their owner in a bm_prom_hist_t (fixed size, so it
 * can be copied into a snapshot under a lock) and rendered from there.
 *
 * Owns: the page buffer, which has a hard cap set at creation; writing past
 * it sets the overflow flag, and bm_prom_take then fails. */
#ifndef BM_PROM_H
#define BM_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"

/* The Content-Type of a page. */
#define BM_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef enum { BM_PROM_COUNTER, BM_PROM_GAUGE, BM_PROM_HISTOGRAM } bm_prom_type_t;

#define BM_PROM_HIST_MAX 16             /* upper bounds of one histogram, at most */

typedef struct {
    size_t n_bounds;                        /* finite upper bounds, ascending */
    double bounds[BM_PROM_HIST_MAX];
    uint64_t counts[BM_PROM_HIST_MAX + 1];  /* per bucket, not cumulative; the last
                                               one counts values above every bound */
    double sum;
} bm_prom_hist_t;

/* Sets h to empty with bounds[0..n) (ascending, n <= BM_PROM_HIST_MAX). */
void bm_prom_hist_init(bm_prom_hist_t *h, const double *bounds, size_t n);
/* Counts one value v (a bucket's bound is inclusive: le = "less or equal"). */
void bm_prom_hist_observe(bm_prom_hist_t *h, double v);
/* Number of values counted. */
uint64_t bm_prom_hist_count(const bm_prom_hist_t *h);

typedef struct bm_prom bm_prom_t;

/* A page of at most max_bytes.  Returns NULL when out of memory. */
bm_prom_t *bm_prom_new(size_t max_bytes);
void bm_prom_destroy(bm_prom_t **self_p);

/* Starts the family `name` (for counters the name ends in _total, which
 * the samples repeat) with its help text (any UTF-8). */
void bm_prom_family(bm_prom_t *self, const char *name, bm_prom_type_t type, const char *help);

/* One sample line `name{l1="v1",...} value`; the variable arguments are
 * label name and value pairs (const char *), then NULL. */
void bm_prom_sample(bm_prom_t *self, const char *name, double value, ...)
    __attribute__((sentinel));

/* The lines of histogram h under `name` (the family's name), with the
 * labels that follow (pairs, then NULL) on each line. */
void bm_prom_hist(bm_prom_t *self, const char *name, const bm_prom_hist_t *h, ...)
    __attribute__((sentinel));

/* True once a write went past max_bytes (later writes are dropped). */
bool bm_prom_overflow(const bm_prom_t *self);

/* Hands the page over: a NUL-terminated heap string (caller frees) of *len
 * bytes, and the writer is empty again.  Returns NULL with err when the cap
 * was passed or memory ran out (the writer is then empty too). */
char *bm_prom_take(bm_prom_t *self, size_t *len, bm_err_t *err);

/* Writes value as the format does into buf (at least 32 bytes). */
void bm_prom_format_value(double value, char *buf, size_t size);

#endif
