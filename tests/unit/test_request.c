/* test_request: the options of the reports and their checks
 * (collector/report/request.c), the one path both front ends take: which
 * report takes which option, the typed values, the defaults, the message
 * and class of every refusal, and that when two values are wrong the one
 * earlier in the fixed order is named (whatever order they came in). */
#include "bm_test.h"

#include <string.h>

#include "request.h"

/* A request of `kind` from name/value pairs (NULL-terminated). */
static int s_parse(bm_report_kind_t kind, const char *const *pairs, bm_request_t *rq,
                   bm_err_t *err)
{
    bm_request_text_t text;
    memset(&text, 0, sizeof text);
    bm_err_clear(err);
    for (int i = 0; pairs[i]; i += 2) {
        int rc = bm_request_text_set(&text, kind, pairs[i], pairs[i + 1], err);
        if (rc != BM_REPORT_OK)
            return rc;
    }
    return bm_request_parse(kind, &text, rq, err);
}

static void test_kinds_and_options(void)
{
    CHECK(bm_report_kind_find("rank") == BM_REPORT_RANK);
    CHECK(bm_report_kind_find("metrics") == BM_REPORT_METRICS);
    CHECK(bm_report_kind_find("ranks") < 0);
    CHECK(bm_report_kind_find(NULL) < 0);
    CHECK_STR(bm_report_kind_name(BM_REPORT_COMPETITORS), "competitors");
    CHECK(bm_request_takes(BM_REPORT_RANK, "metric"));
    CHECK(bm_request_takes(BM_REPORT_RANK, "target-s"));
    CHECK(!bm_request_takes(BM_REPORT_RANK, "periods"));
    CHECK(bm_request_takes(BM_REPORT_SCORECARD, "periods"));
    CHECK(!bm_request_takes(BM_REPORT_SUMMARY, "period"));
    /* The front ends' own options are not a report's. */
    CHECK(!bm_request_takes(BM_REPORT_RANK, "format"));
    CHECK(!bm_request_takes(BM_REPORT_RANK, "db"));
    CHECK(!bm_request_takes(BM_REPORT_RANK, "help"));
    CHECK(!bm_request_takes(BM_REPORT_METRICS, "region"));
    /* A substring of the option list is not an option. */
    CHECK(!bm_request_takes(BM_REPORT_RANK, "min"));
    CHECK(!bm_request_takes(BM_REPORT_RANK, "period at"));
    CHECK(bm_request_is_flag("last"));
    CHECK(!bm_request_is_flag("at"));
    CHECK_STR(bm_request_option_names(BM_REPORT_ALERTS), " period at last region min-n ");

    bm_request_text_t text;
    memset(&text, 0, sizeof text);
    bm_err_t err;
    CHECK(bm_request_text_set(&text, BM_REPORT_SUMMARY, "metric", "nps", &err) ==
          BM_REPORT_USAGE);
    CHECK_ERR(err, "unknown option \"--metric\"");
    CHECK(bm_request_text_set(&text, BM_REPORT_RANK, "last", NULL, &err) == BM_REPORT_OK);
    CHECK(text.last == 1);
}

static void test_values_and_defaults(void)
{
    bm_request_t rq;
    bm_err_t err;
    const char *const rank[] = {"metric", "nps", "region", "NORTH", "period", "week",
                                "at", "2026-11-04", "min-n", "7", NULL};
    CHECK_OR_RETURN(s_parse(BM_REPORT_RANK, rank, &rq, &err) == BM_REPORT_OK);
    CHECK(rq.kind == BM_REPORT_RANK);
    CHECK(rq.metric && !strcmp(rq.metric->name, "nps"));
    CHECK_STR(rq.region, "NORTH");
    CHECK(rq.period == BM_PERIOD_WEEK);
    CHECK(rq.has_at);
    int64_t want;
    CHECK(bm_date_parse("2026-11-04", &want, &err) == 0 && rq.at == want);
    CHECK(rq.min_n == 7);
    CHECK(rq.periods == 6 && rq.target_s == 20 && rq.radius_km == 0);
    CHECK(rq.channel == NULL && rq.segment == NULL && rq.branch == NULL);

    /* Defaults: a month, except competitors (a quarter). */
    const char *const none[] = {NULL};
    CHECK(s_parse(BM_REPORT_ALERTS, none, &rq, &err) == BM_REPORT_OK);
    CHECK(rq.period == BM_PERIOD_MONTH && !rq.has_at && rq.min_n < 0);
    CHECK(s_parse(BM_REPORT_COMPETITORS, none, &rq, &err) == BM_REPORT_OK);
    CHECK(rq.period == BM_PERIOD_QUARTER);

    const char *const sc[] = {"branch", "B001", "periods", "12", "radius-km", "2.5", NULL};
    CHECK(s_parse(BM_REPORT_SCORECARD, sc, &rq, &err) == BM_REPORT_OK);
    CHECK(rq.periods == 12 && rq.radius_km == 2.5);
    CHECK_STR(rq.branch, "B001");
    const char *const calls[] = {"metric", "calls_answered_share", "target-s", "30", NULL};
    CHECK(s_parse(BM_REPORT_RANK, calls, &rq, &err) == BM_REPORT_OK);
    CHECK(rq.target_s == 30);
}

/* name/value pairs, the class and the message they must give. */
static void s_refused(bm_report_kind_t kind, const char *const *pairs, int cls,
                      const char *message)
{
    bm_request_t rq;
    bm_err_t err;
    int rc = s_parse(kind, pairs, &rq, &err);
    CHECK(rc == cls);
    if (strcmp(err.msg, message))
        fprintf(stderr, "  got \"%s\"\n  want \"%s\"\n", err.msg, message);
    CHECK(!strcmp(err.msg, message));
}

static void test_refusals(void)
{
    s_refused(BM_REPORT_RANK, (const char *const[]){NULL}, BM_REPORT_BAD_ARG,
              "--metric is required (try: branchmark metrics)");
    s_refused(BM_REPORT_RANK, (const char *const[]){"metric", "nope", NULL}, BM_REPORT_BAD_ARG,
              "unknown metric \"nope\" (try: branchmark metrics)");
    s_refused(BM_REPORT_RANK, (const char *const[]){"metric", "nps", "period", "year", NULL},
              BM_REPORT_BAD_ARG, "unknown period \"year\" (try: day, week, month, quarter)");
    s_refused(BM_REPORT_RANK,
              (const char *const[]){"metric", "nps", "at", "2026-01-01", "last", NULL, NULL},
              BM_REPORT_BAD_ARG, "--at and --last cannot be used together");
    s_refused(BM_REPORT_RANK, (const char *const[]){"metric", "nps", "channel", "mail", NULL},
              BM_REPORT_BAD_ARG, "unknown channel \"mail\" (try: visit, call, online)");
    s_refused(BM_REPORT_RANK, (const char *const[]){"metric", "nps", "channel", "call", NULL},
              BM_REPORT_BAD_ARG, "--channel and --section apply to ms_score only, not to nps");
    s_refused(BM_REPORT_RANK,
              (const char *const[]){"metric", "conversion", "segment", "x", NULL},
              BM_REPORT_BAD_ARG,
              "--segment applies to ms_score, nps and csi only, not to conversion");
    s_refused(BM_REPORT_RANK, (const char *const[]){"metric", "nps", "target-s", "10", NULL},
              BM_REPORT_BAD_ARG,
              "--target-s applies to calls_answered_share only, not to nps");
    s_refused(BM_REPORT_RANK, (const char *const[]){"metric", "nps", "min-n", "0", NULL},
              BM_REPORT_BAD_ARG, "--min-n: \"0\" is not a number from 1");
    s_refused(BM_REPORT_RANK, (const char *const[]){"metric", "nps", "min-n", "nan", NULL},
              BM_REPORT_BAD_ARG, "--min-n: \"nan\" is not a number from 1");
    s_refused(BM_REPORT_SCORECARD, (const char *const[]){"branch", "B1", "periods", "2.5", NULL},
              BM_REPORT_BAD_ARG, "--periods: \"2.5\" is not a whole number 2..24");
    s_refused(BM_REPORT_COMPETITORS, (const char *const[]){"radius-km", "-1", NULL},
              BM_REPORT_BAD_ARG, "--radius-km: \"-1\" is not a distance in km (0..20000)");
    s_refused(BM_REPORT_SCORECARD, (const char *const[]){NULL}, BM_REPORT_USAGE,
              "a branch code is required");
    s_refused(BM_REPORT_RANK,
              (const char *const[]){"metric", "nps", "segment",
                                    "01234567890123456789012345678901234567890123456789"
                                    "0123456789012345",
                                    NULL},
              BM_REPORT_BAD_ARG, "--segment: longer than 64 characters");
    /* Two bad values: the period is checked before the minimum n, and the
     * values before the metric, whatever order they were given in. */
    s_refused(BM_REPORT_RANK,
              (const char *const[]){"min-n", "0", "metric", "nope", "period", "year", NULL},
              BM_REPORT_BAD_ARG, "unknown period \"year\" (try: day, week, month, quarter)");
    s_refused(BM_REPORT_RANK, (const char *const[]){"metric", "nope", "min-n", "0", NULL},
              BM_REPORT_BAD_ARG, "--min-n: \"0\" is not a number from 1");
}

int main(void)
{
    test_kinds_and_options();
    test_values_and_defaults();
    test_refusals();
    return bm_test_result("test_request");
}
