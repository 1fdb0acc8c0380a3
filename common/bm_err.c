/* bm_err: error messages for callers; see bm_err.h. */
#include "bm_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int bm_err_set(bm_err_t *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int bm_err_prefix(bm_err_t *err, const char *fmt, ...)
{
    if (err) {
        char prefix[BM_ERR_MSG_MAX], old[BM_ERR_MSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, err->msg, sizeof old);
        /* Truncation is acceptable (the message is cut, never overrun);
         * assembled by hand because gcc warns about snprintf truncation. */
        size_t n = strnlen(prefix, sizeof err->msg - 3);
        memcpy(err->msg, prefix, n);
        err->msg[n++] = ':';
        err->msg[n++] = ' ';
        size_t rest = strnlen(old, sizeof err->msg - 1 - n);
        memcpy(err->msg + n, old, rest);
        err->msg[n + rest] = '\0';
    }
    return -1;
}

void bm_err_clear(bm_err_t *err)
{
    if (err)
        err->msg[0] = '\0';
}
