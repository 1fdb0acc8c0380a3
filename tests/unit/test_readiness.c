/* test_readiness: the readiness self-test's parsing, scoring and bands
 * (collector/report/readiness.c), including every band boundary. */
#include "bm_test.h"

#include "readiness.h"

static void test_parse(void)
{
    bool yes[BM_READINESS_QUESTIONS];
    bm_err_t err;
    CHECK(bm_readiness_parse("yynnyyyynnyyy", yes, &err) == 0);
    CHECK(yes[0] && yes[1] && !yes[2] && !yes[3] && yes[4] && yes[12]);
    CHECK(bm_readiness_parse("Y,Y,N,N,Y,Y,Y,Y,N,N,Y,Y,Y", yes, &err) == 0);
    CHECK(bm_readiness_parse("y y n n y y y y n n y y y", yes, &err) == 0);
    CHECK(bm_readiness_parse("yynnyyyynnyy", yes, &err) == -1);
    CHECK(strstr(err.msg, "12 answers given, 13 needed") != NULL);
    CHECK(bm_readiness_parse("yynnyyyynnyyyy", yes, &err) == -1);
    CHECK(strstr(err.msg, "more than 13") != NULL);
    CHECK(bm_readiness_parse("yyyxyyyyyyyyy", yes, &err) == -1);
    CHECK(!strcmp(err.msg, "answer 4: \"x\" is not y or n"));
    CHECK(bm_readiness_parse("", yes, &err) == -1);
}

static void test_reply(void)
{
    bool y = false;
    CHECK(bm_readiness_reply("y\n", &y) == 0 && y);
    CHECK(bm_readiness_reply("  YES \r\n", &y) == 0 && y);
    CHECK(bm_readiness_reply("n", &y) == 0 && !y);
    CHECK(bm_readiness_reply("No\n", &y) == 0 && !y);
    CHECK(bm_readiness_reply("maybe\n", &y) == -1);
    CHECK(bm_readiness_reply("y n\n", &y) == -1);
    CHECK(bm_readiness_reply("\n", &y) == -1);
    CHECK(bm_readiness_reply("yess", &y) == -1);
}

/* k yes answers then no answers. */
static bm_readiness_t s_score_of(int k)
{
    bool yes[BM_READINESS_QUESTIONS];
    for (int i = 0; i < BM_READINESS_QUESTIONS; i++)
        yes[i] = i < k;
    return bm_readiness_score(yes);
}

static void test_bands(void)
{
    for (int k = 0; k <= BM_READINESS_QUESTIONS; k++) {
        bm_readiness_t r = s_score_of(k);
        CHECK(r.score == k);
        CHECK(r.band == (k >= 10 ? BM_READINESS_READY
                         : k >= 5 ? BM_READINESS_PREPARE : BM_READINESS_NOT_YET));
    }
    CHECK(s_score_of(4).band == BM_READINESS_NOT_YET);
    CHECK(s_score_of(5).band == BM_READINESS_PREPARE);
    CHECK(s_score_of(9).band == BM_READINESS_PREPARE);
    CHECK(s_score_of(10).band == BM_READINESS_READY);
    /* Position does not matter, only the count. */
    bool yes[BM_READINESS_QUESTIONS];
    bm_err_t err;
    CHECK(bm_readiness_parse("nnnyyyyyyyyyy", yes, &err) == 0);
    CHECK(bm_readiness_score(yes).score == 10);
    CHECK(!strcmp(bm_readiness_band_key(BM_READINESS_READY), "ready"));
    CHECK(!strcmp(bm_readiness_band_key(BM_READINESS_PREPARE), "prepare"));
    CHECK(!strcmp(bm_readiness_band_key(BM_READINESS_NOT_YET), "not_yet"));
    CHECK(strstr(bm_readiness_advice(BM_READINESS_PREPARE), "standards") != NULL);
    for (int i = 0; i < BM_READINESS_QUESTIONS; i++)
        CHECK(bm_readiness_questions[i] && bm_readiness_questions[i][0]);
}

int main(void)
{
    test_parse();
    test_reply();
    test_bands();
    return bm_test_result("test_readiness");
}
