/* readiness: the pure parts of the evaluation workflow, kept apart from the
 * database so that they can be unit-tested: the 13-question mystery-shopping
 * readiness self-test (questions, answer parsing, score and band).
 *
 * The questions are a faithful English translation of the Bulgarian
 * self-test "Готови ли сте за проверки от тайни клиенти?" (source article
 * 000 under /work/shared/domain): a "yes" scores 1 point, a "no" 0;
 * 10-13 points: ready now; 5-9: set standards and training first;
 * under 5: not yet. */
#ifndef BM_READINESS_H
#define BM_READINESS_H

#include <stdbool.h>

#include "bm_err.h"

#define BM_READINESS_QUESTIONS 13

extern const char *const bm_readiness_questions[BM_READINESS_QUESTIONS];

typedef enum {
    BM_READINESS_NOT_YET = 0,   /* 0..4 */
    BM_READINESS_PREPARE,       /* 5..9 */
    BM_READINESS_READY          /* 10..13 */
} bm_readiness_band_t;

typedef struct {
    int score;                  /* number of "yes" answers, 0..13 */
    bm_readiness_band_t band;
} bm_readiness_t;

/* Parses a whole answer string such as "yynnyyyynnyyy": exactly 13 of
 * y/Y/n/N (spaces and commas between them are ignored).  Returns 0, or -1
 * with err naming the position ("answer 4: \"x\" is not y or n"). */
int bm_readiness_parse(const char *answers, bool yes[BM_READINESS_QUESTIONS], bm_err_t *err);

/* Parses one interactive reply: y, yes, n, no (any case, surrounding
 * blanks ignored).  Returns 0 with *yes set, or -1 for anything else. */
int bm_readiness_reply(const char *line, bool *yes);

/* Scores the answers. */
bm_readiness_t bm_readiness_score(const bool yes[BM_READINESS_QUESTIONS]);

/* "ready", "prepare", "not_yet" (stable keys for JSON). */
const char *bm_readiness_band_key(bm_readiness_band_t band);
/* The source's advice for the band, one paragraph. */
const char *bm_readiness_advice(bm_readiness_band_t band);

#endif
