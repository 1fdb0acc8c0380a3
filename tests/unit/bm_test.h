/* bm_test: the few helpers every unit test uses, written once.
 *
 * A failed check prints file:line and the expression and counts a failure;
 * the test goes on (CHECK), leaves the current function (CHECK_OR_RETURN) or
 * jumps to its clean-up label (CHECK_OR_GOTO), so one failure does not hide
 * the others and resources are still released.  main() ends with
 * `return bm_test_result("test_x");`. */
#ifndef BM_TEST_H
#define BM_TEST_H

#define _XOPEN_SOURCE 700 /* nftw */

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int bm_test_failures;

static inline bool bm_test_check(bool ok, const char *expr, const char *file, int line)
{
    if (!ok) {
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
        bm_test_failures++;
    }
    return ok;
}

#define CHECK(expr) ((void)bm_test_check(!!(expr), #expr, __FILE__, __LINE__))

#define CHECK_OR_RETURN(expr)                                       \
    do {                                                            \
        if (!bm_test_check(!!(expr), #expr, __FILE__, __LINE__))    \
            return;                                                 \
    } while (0)

#define CHECK_OR_GOTO(expr, label)                                  \
    do {                                                            \
        if (!bm_test_check(!!(expr), #expr, __FILE__, __LINE__))    \
            goto label;                                             \
    } while (0)

/* got equals want (got may be NULL, which fails). */
#define CHECK_STR(got, want)                                                       \
    do {                                                                           \
        const char *g_ = (got), *w_ = (want);                                      \
        if (!g_ || strcmp(g_, w_) != 0) {                                          \
            fprintf(stderr, "%s:%d: got \"%s\", wanted \"%s\"\n", __FILE__, __LINE__, \
                    g_ ? g_ : "(null)", w_);                                       \
            bm_test_failures++;                                                    \
        }                                                                          \
    } while (0)

/* A bm_err_t's message contains needle. */
#define CHECK_ERR(err, needle)                                                     \
    do {                                                                           \
        if (!strstr((err).msg, (needle))) {                                        \
            fprintf(stderr, "%s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, \
                    (err).msg, (needle));                                          \
            bm_test_failures++;                                                    \
        }                                                                          \
    } while (0)

static inline int bm_test_rm_one(const char *path, const struct stat *st, int flag,
                                 struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* rm -rf path (a test's scratch directory). */
static inline void bm_test_rmrf(const char *path)
{
    nftw(path, bm_test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Prints the verdict; returns main's exit code. */
static inline int bm_test_result(const char *name)
{
    if (bm_test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, bm_test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
