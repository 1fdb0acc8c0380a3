/* test_prom: the Prometheus text-format writer (common/bm_prom.c): family
 * lines, label escaping, value formatting, histograms and the page cap. */
#include "bm_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bm_prom.h"

static void test_samples(void)
{
    bm_prom_t *p = bm_prom_new(1 << 16);
    CHECK_OR_RETURN(p);
    bm_prom_family(p, "bm_records_total", BM_PROM_COUNTER, "records \\ stored\nper kind");
    bm_prom_sample(p, "bm_records_total", 42, "kind", "receipt", "result", "stored", NULL);
    bm_prom_sample(p, "bm_records_total", 0, "kind", "a\"b\\c\nd", NULL);
    bm_prom_family(p, "bm_up", BM_PROM_GAUGE, "");
    bm_prom_sample(p, "bm_up", 1, NULL);
    bm_prom_sample(p, "bm_up", 0.1, "x", "", NULL);
    bm_prom_sample(p, "bm_up", INFINITY, NULL);
    bm_prom_sample(p, "bm_up", -INFINITY, NULL);
    bm_prom_sample(p, "bm_up", NAN, NULL);
    bm_prom_sample(p, "bm_up", 9007199254740993.0, NULL);
    size_t len = 0;
    bm_err_t err;
    char *text = bm_prom_take(p, &len, &err);
    CHECK_OR_GOTO(text, out);
    CHECK(len == strlen(text));
    CHECK_STR(text,
              "# HELP bm_records_total records \\\\ stored\\nper kind\n"
              "# TYPE bm_records_total counter\n"
              "bm_records_total{kind=\"receipt\",result=\"stored\"} 42\n"
              "bm_records_total{kind=\"a\\\"b\\\\c\\nd\"} 0\n"
              "# HELP bm_up \n"
              "# TYPE bm_up gauge\n"
              "bm_up 1\n"
              "bm_up{x=\"\"} 0.1\n"
              "bm_up +Inf\n"
              "bm_up -Inf\n"
              "bm_up NaN\n"
              "bm_up 9007199254740992\n");
    free(text);
    /* The writer is empty again after a take. */
    text = bm_prom_take(p, &len, &err);
    CHECK(text && len == 0 && text[0] == '\0');
    free(text);
out:
    bm_prom_destroy(&p);
    bm_prom_destroy(&p);
    CHECK(p == NULL);
}

static void test_hist(void)
{
    static const double bounds[] = {0.005, 0.1, 1};
    bm_prom_hist_t h;
    bm_prom_hist_init(&h, bounds, 3);
    bm_prom_hist_observe(&h, 0.001);
    bm_prom_hist_observe(&h, 0.1);      /* a bound is inclusive */
    bm_prom_hist_observe(&h, 0.5);
    bm_prom_hist_observe(&h, 7);
    CHECK(bm_prom_hist_count(&h) == 4);
    bm_prom_t *p = bm_prom_new(4096);
    CHECK_OR_RETURN(p);
    bm_prom_family(p, "bm_ack_seconds", BM_PROM_HISTOGRAM, "ack latency");
    bm_prom_hist(p, "bm_ack_seconds", &h, "socket", "0", NULL);
    bm_prom_hist_t empty;
    bm_prom_hist_init(&empty, bounds, 1);
    bm_prom_hist(p, "bm_ack_seconds", &empty, NULL);
    bm_err_t err;
    char *text = bm_prom_take(p, NULL, &err);
    CHECK_OR_GOTO(text, out);
    CHECK_STR(text,
              "# HELP bm_ack_seconds ack latency\n"
              "# TYPE bm_ack_seconds histogram\n"
              "bm_ack_seconds_bucket{socket=\"0\",le=\"0.005\"} 1\n"
              "bm_ack_seconds_bucket{socket=\"0\",le=\"0.1\"} 2\n"
              "bm_ack_seconds_bucket{socket=\"0\",le=\"1\"} 3\n"
              "bm_ack_seconds_bucket{socket=\"0\",le=\"+Inf\"} 4\n"
              "bm_ack_seconds_sum{socket=\"0\"} 7.601\n"
              "bm_ack_seconds_count{socket=\"0\"} 4\n"
              "bm_ack_seconds_bucket{le=\"0.005\"} 0\n"
              "bm_ack_seconds_bucket{le=\"+Inf\"} 0\n"
              "bm_ack_seconds_sum 0\n"
              "bm_ack_seconds_count 0\n");
    free(text);
out:
    bm_prom_destroy(&p);
}

static void test_cap(void)
{
    bm_prom_t *p = bm_prom_new(64);
    CHECK_OR_RETURN(p);
    bm_prom_family(p, "bm_a", BM_PROM_GAUGE, "short");
    CHECK(!bm_prom_overflow(p));
    for (int i = 0; i < 10; i++)
        bm_prom_sample(p, "bm_a", i, "label", "value", NULL);
    CHECK(bm_prom_overflow(p));
    bm_err_t err;
    size_t len = 99;
    CHECK(bm_prom_take(p, &len, &err) == NULL);
    CHECK(strstr(err.msg, "larger than 64 bytes") != NULL);
    CHECK(len == 99);
    /* Usable again after the failed take. */
    bm_prom_sample(p, "bm_a", 1, NULL);
    char *text = bm_prom_take(p, &len, &err);
    CHECK(text && strcmp(text, "bm_a 1\n") == 0);
    free(text);
    bm_prom_destroy(&p);

    char buf[40];
    bm_prom_format_value(1e300, buf, sizeof buf);
    CHECK(strtod(buf, NULL) == 1e300);
    bm_prom_format_value(-2.5, buf, sizeof buf);
    CHECK_STR(buf, "-2.5");
}

int main(void)
{
    test_samples();
    test_hist();
    test_cap();
    return bm_test_result("test_prom");
}
