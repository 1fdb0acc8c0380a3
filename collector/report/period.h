/* period: the period calendar shared by every report.
 *
 * Dates are days since 1970-01-01; a period is identified by its kind and
 * the day it starts on (weeks start on Monday, ISO week labels). */
#ifndef BM_PERIOD_H
#define BM_PERIOD_H

#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"

typedef enum { BM_PERIOD_DAY = 0, BM_PERIOD_WEEK, BM_PERIOD_MONTH, BM_PERIOD_QUARTER } bm_period_kind_t;

/* "day", "week", "month", "quarter".  -1 with err for anything else. */
int bm_period_parse(const char *name, bm_period_kind_t *out, bm_err_t *err);
const char *bm_period_name(bm_period_kind_t kind);

/* Dates are days since 1970-01-01.  "YYYY-MM-DD" (a real calendar date);
 * -1 with err otherwise. */
int bm_date_parse(const char *s, int64_t *days, bm_err_t *err);
/* Formats as YYYY-MM-DD into buf (>= 11 bytes); returns buf. */
char *bm_date_format(int64_t days, char *buf, size_t size);
/* The first day of the period of `kind` that contains `days` (weeks start
 * on Monday). */
int64_t bm_period_start(bm_period_kind_t kind, int64_t days);
/* The start of the period k periods after (k < 0: before) `start`. */
int64_t bm_period_add(bm_period_kind_t kind, int64_t start, int k);
/* The index 0..nper-1 of the period of `kind` starting on the date
 * "YYYY-MM-DD" among the nper periods from `first`, or -1 (not a date, or
 * not one of them). */
int bm_period_index(bm_period_kind_t kind, int64_t first, int nper, const char *date);
/* "2026-11", "2026-Q4", "2026-W45" or the date for days. */
char *bm_period_label(bm_period_kind_t kind, int64_t start, char *buf, size_t size);

#endif
