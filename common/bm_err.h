/* bm_err: an error message that travels back to the caller.
 *
 * Functions that can fail take a `bm_err_t *err` (may be NULL) and, on
 * failure, return -1 (or NULL) and leave a one-line message in it that names
 * what is wrong and where, in PostgreSQL's message style: lower-case start,
 * no final period ("line 12: nps: 11 is out of range 0..10"). */
#ifndef BM_ERR_H
#define BM_ERR_H

#include <stddef.h>

#define BM_ERR_MSG_MAX 512

typedef struct {
    char msg[BM_ERR_MSG_MAX];
} bm_err_t;

/* Sets the message (printf-style).  Safe with err == NULL.  Always returns
 * -1 so that `return bm_err_set(err, ...)` reads naturally. */
int bm_err_set(bm_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to the message already in err (for context such as a
 * file name or a line number).  Returns -1. */
int bm_err_prefix(bm_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void bm_err_clear(bm_err_t *err);

#endif
