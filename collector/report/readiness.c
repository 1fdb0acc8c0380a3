/* readiness: the readiness self-test (see readiness.h).  Owns only constant
 * tables; no state, no allocation. */
#include "readiness.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

const char *const bm_readiness_questions[BM_READINESS_QUESTIONS] = {
    "Is there a risk that your customers will be won over by your competitors?",
    "Does your customers' satisfaction depend directly on the quality of your staff's work?",
    "Do you want to keep your current customers and make them loyal customers?",
    "Do you have sales staff who have worked in your company for at least 1 year?",
    "Do you have written standards for the work of your salespeople or service staff?",
    "Are your staff familiar with your company's service standards?",
    "Does your incentive scheme for salespeople or service staff depend on the level of "
    "service they provide?",
    "Do you hold regular training in sales techniques?",
    "Do your staff understand that they need to keep their selling style up to date?",
    "Do you have an employee on staff who is responsible for improving service quality?",
    "Do you periodically appraise your sales staff?",
    "Do you have a high visitor-to-buyer conversion rate?",
    "Do you consider quality service an additional competitive advantage?",
};

int bm_readiness_parse(const char *answers, bool yes[BM_READINESS_QUESTIONS], bm_err_t *err)
{
    int n = 0;
    for (const char *p = answers; *p; p++) {
        if (*p == ' ' || *p == ',')
            continue;
        char c = (char)tolower((unsigned char)*p);
        if (c != 'y' && c != 'n')
            return bm_err_set(err, "answer %d: \"%c\" is not y or n", n + 1,
                              isprint((unsigned char)*p) ? *p : '?');
        if (n == BM_READINESS_QUESTIONS)
            return bm_err_set(err, "more than %d answers", BM_READINESS_QUESTIONS);
        yes[n++] = c == 'y';
    }
    if (n != BM_READINESS_QUESTIONS)
        return bm_err_set(err, "%d answers given, %d needed (one y or n per question)", n,
                          BM_READINESS_QUESTIONS);
    return 0;
}

int bm_readiness_reply(const char *line, bool *yes)
{
    while (*line == ' ' || *line == '\t')
        line++;
    size_t len = strcspn(line, " \t\r\n");
    const char *rest = line + len;
    while (*rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n')
        rest++;
    if (*rest)
        return -1;
    if ((len == 1 && (*line == 'y' || *line == 'Y')) || (len == 3 && !strncasecmp(line, "yes", 3))) {
        *yes = true;
        return 0;
    }
    if ((len == 1 && (*line == 'n' || *line == 'N')) || (len == 2 && !strncasecmp(line, "no", 2))) {
        *yes = false;
        return 0;
    }
    return -1;
}

bm_readiness_t bm_readiness_score(const bool yes[BM_READINESS_QUESTIONS])
{
    bm_readiness_t r = {0, BM_READINESS_NOT_YET};
    for (int i = 0; i < BM_READINESS_QUESTIONS; i++)
        r.score += yes[i] ? 1 : 0;
    r.band = r.score >= 10 ? BM_READINESS_READY
           : r.score >= 5  ? BM_READINESS_PREPARE
                           : BM_READINESS_NOT_YET;
    return r;
}

const char *bm_readiness_band_key(bm_readiness_band_t band)
{
    switch (band) {
    case BM_READINESS_READY:
        return "ready";
    case BM_READINESS_PREPARE:
        return "prepare";
    default:
        return "not_yet";
    }
}

const char *bm_readiness_advice(bm_readiness_band_t band)
{
    switch (band) {
    case BM_READINESS_READY:
        return "Mystery shopping will be especially useful to you: you can start at once and "
               "effectively check the work of the staff who deal directly with customers. You "
               "have service standards your staff know, regular training and appraisal, so the "
               "results can feed straight into your staff motivation system.";
    case BM_READINESS_PREPARE:
        return "You see the need for the method, but you probably need to prepare first: "
               "develop service standards and train your staff in them, and set up suitable "
               "appraisal and motivation systems before the checks start.";
    default:
        return "You may not yet be able to use mystery shopping effectively: service quality "
               "may not directly affect your customers' satisfaction or your sales, or the "
               "mood inside the company would not yet let the checks work.";
    }
}
