/* bm_time: clocks and ISO 8601 timestamps.
 *
 * All times in Branchmark are int64 Unix epoch milliseconds in UTC.  Store
 * systems export local times with an offset ("2026-11-02T09:15:00+02:00") or
 * UTC ("...Z"); a time without an offset is refused, because guessing the
 * zone of an unattended box is how hours of data get shifted silently. */
#ifndef BM_TIME_H
#define BM_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"

/* Wall clock (CLOCK_REALTIME) in ms. */
int64_t bm_now_ms(void);

/* Monotonic clock in ms, for timeouts and intervals. */
int64_t bm_mono_ms(void);

/* Parses "YYYY-MM-DDTHH:MM:SS[.fff]" followed by "Z" or "+HH:MM"/"-HH:MM"
 * (a space instead of 'T' is accepted).  Returns 0, or -1 with err saying
 * what is wrong. */
int bm_time_parse(const char *s, int64_t *out_ms, bm_err_t *err);

/* Formats ms as "YYYY-MM-DDTHH:MM:SS.fffZ" into buf (at least 25 bytes).
 * Returns buf. */
char *bm_time_format(int64_t ms, char *buf, size_t size);

/* Days from 1970-01-01 to the civil date (proleptic Gregorian). */
int64_t bm_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
