/* test_stats: the statistics behind the benchmarks (collector/report/stats.c),
 * the period calendar and metric estimates (collector/report/query.c) against
 * hand-computed values, and the CSV numbers of collector/render/output.c against
 * printf. */
#include "bm_test.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "output.h"
#include "rollup.h"
#include "stats.h"

#define NEAR(a, b, eps) (fabs((a) - (b)) <= (eps))

static void test_wilson(void)
{
    double lo, hi;
    CHECK(bm_wilson(8, 10, BM_Z95, &lo, &hi) == 0);
    CHECK(NEAR(lo, 0.490162, 1e-6));
    CHECK(NEAR(hi, 0.943318, 1e-6));
    CHECK(bm_wilson(0, 20, BM_Z95, &lo, &hi) == 0);
    CHECK(lo == 0);
    CHECK(NEAR(hi, 0.161125, 1e-6));
    CHECK(bm_wilson(45, 50, BM_Z95, &lo, &hi) == 0);
    CHECK(NEAR(lo, 0.786398, 1e-6) && NEAR(hi, 0.956524, 1e-6));
    CHECK(bm_wilson(11, 10, BM_Z95, &lo, &hi) == -1);
    CHECK(bm_wilson(1, 0, BM_Z95, &lo, &hi) == -1);

    bm_estimate_t e = bm_est_proportion(8, 10);
    CHECK(e.has_value && e.has_ci && NEAR(e.value, 0.8, 1e-12) && e.n == 10);
    e = bm_est_proportion(12, 10);     /* more purchases than entrants */
    CHECK(e.has_value && !e.has_ci);
    e = bm_est_proportion(0, 0);
    CHECK(!e.has_value);
}

static void test_nps(void)
{
    /* 50 promoters, 30 passives, 20 detractors: NPS 30,
     * Var = .5 + .2 - .3^2 = .61, CI = 30 +- 1.96 * sqrt(.61/100) * 100. */
    bm_estimate_t e = bm_est_nps(50, 20, 100);
    CHECK(e.has_value && e.has_ci);
    CHECK(NEAR(e.value, 30.0, 1e-9));
    CHECK(NEAR(e.lo, 14.692192, 1e-5));
    CHECK(NEAR(e.hi, 45.307808, 1e-5));
    /* All promoters: no spread, interval collapses, clamped to 100. */
    e = bm_est_nps(10, 0, 10);
    CHECK(NEAR(e.value, 100, 1e-9) && e.hi <= 100 && NEAR(e.lo, 100, 1e-9));
    e = bm_est_nps(5, 6, 10);          /* impossible counts */
    CHECK(!e.has_value);
}

static void test_mean(void)
{
    /* 70, 80, 90: mean 80, sd 10, se 10/sqrt(3), t(2) = 4.303. */
    bm_estimate_t e = bm_est_mean(3, 240, 70 * 70 + 80 * 80 + 90 * 90);
    CHECK(e.has_ci && NEAR(e.value, 80, 1e-9) && NEAR(e.sd, 10, 1e-9));
    CHECK(NEAR(e.lo, 80 - 4.303 * 10 / sqrt(3), 1e-6));
    CHECK(NEAR(e.hi, 80 + 4.303 * 10 / sqrt(3), 1e-6));
    e = bm_est_mean(1, 75, 75 * 75);   /* one visit: a value, no interval */
    CHECK(e.has_value && !e.has_ci);
    CHECK(bm_t95(1) == 12.706 && bm_t95(29) == 2.045 && NEAR(bm_t95(30), 1.96, 0.001));
    CHECK(bm_t95(2.7) == 4.303);
    CHECK(NEAR(bm_t95(1000), 1.96, 0.001));
}

static void test_hist(void)
{
    uint32_t h[5] = {10, 10, 0, 0, 0};  /* width 5, bucket 4 = overflow */
    bm_estimate_t e = bm_est_hist_quantile(h, 5, 4, 5, 0.5);
    CHECK(e.has_value && NEAR(e.value, 5.0, 1e-9) && e.n == 20);
    e = bm_est_hist_quantile(h, 5, 4, 5, 0.9);
    CHECK(NEAR(e.value, 9.0, 1e-9));
    CHECK(e.has_ci && e.lo <= e.value && e.hi >= e.value && e.hi <= 10.0);
    uint32_t o[3] = {1, 1, 8};          /* mostly overflow: reported as its floor */
    e = bm_est_hist_quantile(o, 3, 2, 60, 0.9);
    CHECK(NEAR(e.value, 120, 1e-9));
    uint32_t few[3] = {2, 1, 0};
    e = bm_est_hist_quantile(few, 3, 2, 1, 0.5);
    CHECK(e.has_value && !e.has_ci);    /* n < 10: no interval */
    uint32_t none[3] = {0, 0, 0};
    e = bm_est_hist_quantile(none, 3, 2, 1, 0.5);
    CHECK(!e.has_value);
    /* Stored up to the highest non-empty bucket: the last one given is an
     * ordinary bucket unless it is the overflow. */
    e = bm_est_hist_quantile(o, 3, 720, 60, 0.9);
    CHECK(NEAR(e.value, 120 + 60 * (0.9 * 10 - 2) / 8, 1e-9));
    e = bm_est_hist_quantile(o, 3, 720, 60, 1.0);
    CHECK(NEAR(e.value, 180, 1e-9));
}

static bm_estimate_t s_est(double v, double lo, double hi)
{
    bm_estimate_t e;
    memset(&e, 0, sizeof e);
    e.has_value = e.has_ci = 1;
    e.value = v;
    e.lo = lo;
    e.hi = hi;
    e.n = 10;
    return e;
}

static void test_ties(void)
{
    bm_rank_entry_t r[6];
    memset(r, 0, sizeof r);
    r[0].est = s_est(80, 78, 82);   /* C */
    r[1].est = s_est(90, 85, 95);   /* A */
    r[2].est = s_est(60, 59, 61);   /* E */
    r[3].est = s_est(88, 84, 92);   /* B */
    r[4].est = s_est(79, 70, 88);   /* D */
    /* F: no data */
    for (size_t i = 0; i < 6; i++)
        r[i].key = i;
    bm_rank_entries(r, 6, 1);
    CHECK(r[0].key == 1 && r[0].rank_lo == 1 && r[0].rank_hi == 2);
    CHECK(r[1].key == 3 && r[1].rank_lo == 1 && r[1].rank_hi == 2 && r[1].group == 1);
    CHECK(r[2].key == 0 && r[2].rank_lo == 3 && r[2].rank_hi == 4 && r[2].group == 2);
    CHECK(r[3].key == 4 && r[3].rank_lo == 3 && r[3].rank_hi == 4);
    CHECK(r[4].key == 2 && r[4].rank_lo == 5 && r[4].rank_hi == 5 && r[4].group == 3);
    CHECK(r[5].key == 5 && r[5].rank_lo == 0);

    /* Lower is better (waiting times): the smallest leads. */
    bm_rank_entry_t w[3];
    memset(w, 0, sizeof w);
    w[0].est = s_est(120, 100, 140);
    w[1].est = s_est(30, 25, 35);
    w[2].est = s_est(130, 125, 135);
    for (size_t i = 0; i < 3; i++)
        w[i].key = i;
    bm_rank_entries(w, 3, 0);
    CHECK(w[0].key == 1 && w[0].rank_lo == 1 && w[0].rank_hi == 1);
    CHECK(w[1].key == 0 && w[1].rank_lo == 2 && w[1].rank_hi == 3);
    CHECK(w[2].key == 2 && w[2].rank_lo == 2 && w[2].rank_hi == 3);

    /* Without intervals only equal values tie. */
    bm_rank_entry_t c[3];
    memset(c, 0, sizeof c);
    for (size_t i = 0; i < 3; i++) {
        c[i].est.has_value = 1;
        c[i].est.value = i == 2 ? 5 : 7;
        c[i].key = i;
    }
    bm_rank_entries(c, 3, 1);
    CHECK(c[0].rank_lo == 1 && c[0].rank_hi == 2 && c[1].rank_hi == 2 && c[2].rank_lo == 3);
}

static void test_changes(void)
{
    CHECK(bm_change_proportion(60, 100, 40, 100) == 1);
    CHECK(bm_change_proportion(40, 100, 60, 100) == -1);
    CHECK(bm_change_proportion(52, 100, 48, 100) == 0);
    CHECK(bm_change_proportion(1, 0, 1, 10) == 0);

    bm_estimate_t a = bm_est_nps(70, 10, 200), b = bm_est_nps(40, 30, 200);
    CHECK(bm_change_nps(&a, &b) == 1 && bm_change_nps(&b, &a) == -1);
    bm_estimate_t c = bm_est_nps(42, 30, 200);
    CHECK(bm_change_nps(&c, &b) == 0);

    /* Means 80 vs 70, sd 5, n 30: t = 10 / sqrt(25/30 * 2) = 7.7. */
    bm_estimate_t m1 = bm_est_mean(30, 80 * 30, 30 * (80 * 80 + 25 * 29.0 / 30));
    bm_estimate_t m0 = bm_est_mean(30, 70 * 30, 30 * (70 * 70 + 25 * 29.0 / 30));
    CHECK(NEAR(m1.sd, 5, 1e-6));
    CHECK(bm_change_welch(&m1, &m0) == 1 && bm_change_welch(&m0, &m1) == -1);
    /* Three visits each, 80 vs 75 with sd 10: not significant. */
    bm_estimate_t s1 = bm_est_mean(3, 240, 70 * 70 + 80 * 80 + 90 * 90);
    bm_estimate_t s0 = bm_est_mean(3, 225, 65 * 65 + 75 * 75 + 85 * 85);
    CHECK(bm_change_welch(&s1, &s0) == 0);

    bm_estimate_t d1 = s_est(50, 45, 55), d0 = s_est(30, 25, 35), d2 = s_est(40, 34, 46);
    CHECK(bm_change_disjoint(&d1, &d0) == 1 && bm_change_disjoint(&d0, &d1) == -1);
    CHECK(bm_change_disjoint(&d1, &d2) == 0);
}

static void test_low_sample_and_alerts(void)
{
    CHECK(bm_low_sample(2, 3) == 1);
    CHECK(bm_low_sample(3, 3) == 0);
    CHECK(bm_low_sample(29, 30) == 1);
    double z;
    /* Baseline 80 sd 10; 9 visits: se 3.33, limit 70. */
    CHECK(bm_control_alert(70, 9, 80, 10, 1, &z) == 0 && NEAR(z, -3, 1e-9));
    CHECK(bm_control_alert(69, 9, 80, 10, 1, &z) == 1 && z < -3);
    CHECK(bm_control_alert(91, 9, 80, 10, 1, &z) == 0 && z > 3);
    /* Lower is better: a rise is the bad news. */
    CHECK(bm_control_alert(91, 9, 80, 10, 0, &z) == 1);
    CHECK(bm_control_alert(50, 9, 80, 0, 1, &z) == 0);   /* no spread, no limit */
}

static void test_geo_and_periods(void)
{
    CHECK(NEAR(bm_haversine_km(42.6977, 23.3219, 42.1354, 24.7453), 132.522, 0.01));
    CHECK(bm_haversine_km(10, 10, 10, 10) == 0);

    int64_t d;
    char buf[32];
    CHECK(bm_date_parse("2026-11-18", &d, NULL) == 0);
    CHECK(!strcmp(bm_date_format(bm_period_start(BM_PERIOD_WEEK, d), buf, sizeof buf),
                  "2026-11-16"));
    CHECK(!strcmp(bm_date_format(bm_period_start(BM_PERIOD_MONTH, d), buf, sizeof buf),
                  "2026-11-01"));
    CHECK(!strcmp(bm_date_format(bm_period_start(BM_PERIOD_QUARTER, d), buf, sizeof buf),
                  "2026-10-01"));
    int64_t q = bm_period_start(BM_PERIOD_QUARTER, d);
    CHECK(!strcmp(bm_date_format(bm_period_add(BM_PERIOD_QUARTER, q, 1), buf, sizeof buf),
                  "2027-01-01"));
    CHECK(!strcmp(bm_date_format(bm_period_add(BM_PERIOD_MONTH, q, -10), buf, sizeof buf),
                  "2025-12-01"));
    CHECK(!strcmp(bm_period_label(BM_PERIOD_WEEK, bm_period_start(BM_PERIOD_WEEK, d), buf,
                                  sizeof buf), "2026-W47"));
    CHECK(!strcmp(bm_period_label(BM_PERIOD_QUARTER, q, buf, sizeof buf), "2026-Q4"));
    bm_err_t err;
    CHECK(bm_date_parse("2026-02-30", &d, &err) == -1 && strstr(err.msg, "no such day"));
    CHECK(bm_date_parse("2026-2-3", &d, &err) == -1);
    bm_period_kind_t k;
    CHECK(bm_period_parse("year", &k, &err) == -1 && strstr(err.msg, "unknown period \"year\""));
}

static void test_metric_estimates(void)
{
    bm_err_t err;
    CHECK(bm_metric_find("nope") == NULL);
    const bm_metric_t *m = bm_metric_find("capture_rate");
    CHECK(m && m->higher_better && m->family == BM_FAM_PROPORTION);
    bm_q_agg_t a;
    memset(&a, 0, sizeof a);
    a.n = 400;
    a.x = 100;
    bm_estimate_t e;
    CHECK(bm_q_estimate(m, &a, 0, &e, &err) == 0 && NEAR(e.value, 25, 1e-9) && e.has_ci);

    m = bm_metric_find("avg_check");
    memset(&a, 0, sizeof a);
    a.n = 2;
    a.sum = 3000;               /* 10.00 + 20.00 EUR */
    a.sumsq = 1000.0 * 1000 + 2000.0 * 2000;
    memcpy(a.currency, "EUR", 4);
    CHECK(bm_q_estimate(m, &a, 0, &e, &err) == 0 && NEAR(e.value, 15.0, 1e-9));
    bm_q_agg_t b;
    memset(&b, 0, sizeof b);
    b.n = 1;
    b.sum = 500;
    memcpy(b.currency, "USD", 4);
    bm_q_agg_add(&a, &b, 0);
    CHECK(bm_q_estimate(m, &a, 0, &e, &err) == -1 && strstr(err.msg, "more than one currency"));

    bm_format_t f;
    CHECK(bm_format_parse("xml", &f, &err) == -1 && strstr(err.msg, "unknown format \"xml\""));
}

/* CSV output: every number as printf's "%.*f" would write it (the fast
 * formatter must agree, ties included), never "-0.0", fields quoted. */
static void test_csv_output(void)
{
    static const char *const cols[] = {"v", "name"};
    double values[4000];
    int n = 0;
    uint64_t x = 88172645463325252ull;      /* xorshift: reproducible values */
    for (int i = 0; i < 3000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double mag = pow(10.0, (double)(x % 12) - 3.0);
        values[n++] = ((double)(x >> 11) / 9007199254740992.0 - 0.5) * 2 * mag;
    }
    const double special[] = {0.125, 0.375, -0.125, 2.5, -2.5, 0.005, 1.005, -0.0004, -0.04,
                              999999999.5, 1e9, 1e15, -1e15, 0, -0.0, 0.5, 1.5, 4.35, 17.125};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        values[n++] = special[i];
    for (int d = 0; d <= 6; d += 1) {
        bm_table_t *t = bm_table_new("t", 2, cols);
        CHECK(t != NULL);
        for (int i = 0; i < n; i++) {
            bm_table_add_row(t);
            bm_table_set_num(t, 0, values[i], d);
            bm_table_set_text(t, 1, i == 0 ? "a,\"b\"" : "plain");
        }
        bm_report_t *r = bm_report_new();
        CHECK(r && bm_report_add(r, &t) == 0);
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        CHECK(out && bm_report_print(r, BM_FMT_CSV, out) == 0);
        fclose(out);
        char *line = strtok(text, "\n");      /* header */
        CHECK(line && !strcmp(line, "v,name\r"));
        int bad = 0;
        for (int i = 0; i < n; i++) {
            line = strtok(NULL, "\n");
            char want[96];
            double v = values[i];
            if (round(v * pow(10.0, d)) == 0)
                v = 0;
            snprintf(want, sizeof want, "%.*f,%s\r", d, v, i == 0 ? "\"a,\"\"b\"\"\"" : "plain");
            if (!line || strcmp(line, want)) {
                if (bad++ < 3)
                    fprintf(stderr, "csv: %.17g with %d decimals: got \"%s\", want \"%s\"\n",
                            values[i], d, line ? line : "(none)", want);
            }
        }
        CHECK(bad == 0);
        free(text);
        bm_report_destroy(&r);
    }
}

/* JSON output: byte for byte what jansson's json_dumpf gave for the same
 * report (the writer replaced it; the API's format must not change). */
static json_t *s_ref_table(const char *const *cols, int ncols, int rows, const double *v)
{
    json_t *arr = json_array();
    for (int r = 0; r < rows; r++) {
        json_t *o = json_object();
        for (int c = 0; c < ncols; c++) {
            json_t *x;
            switch (c) {
            case 0: x = json_string(r % 3 ? "B\"1\\\x01\t\u00e9/" : "plain"); break;
            case 1: {
                double k = pow(10.0, r % 7);       /* 0..6 decimals */
                x = json_real(round(v[r] * k) / k);
                break;
            }
            case 2: x = json_integer((json_int_t)(v[r] * 1000)); break;
            case 3: x = r % 4 ? json_string(v[r] > 0 ? "up" : "down") : json_null(); break;
            case 4: x = json_boolean(r % 2); break;
            default: x = json_null(); break;
            }
            json_object_set_new(o, cols[c], x);
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

static bm_table_t *s_out_table(const char *name, const char *const *cols, int ncols, int rows,
                               const double *v)
{
    bm_table_t *t = bm_table_new(name, ncols, cols);
    for (int r = 0; t && r < rows; r++) {
        bm_table_add_row(t);
        bm_table_set_text(t, 0, r % 3 ? "B\"1\\\x01\t\u00e9/" : "plain");
        bm_table_set_num(t, 1, v[r], r % 7);
        bm_table_set_int(t, 2, (long long)(v[r] * 1000));
        if (r % 4)
            bm_table_set_arrow(t, 3, v[r] > 0 ? 1 : -1);
        bm_table_set_bool(t, 4, r % 2);
    }
    return t;
}

static char *s_render(const bm_report_t *r)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CHECK(out && bm_report_print(r, BM_FMT_JSON, out) == 0);
    fclose(out);
    return text;
}

static void test_json_output(void)
{
    static const char *const cols[] = {"name", "value", "n", "arrow", "low_n", "empty"};
    double v[301];                          /* 300 rows, and 300 from v + 1 */
    uint64_t x = 2463534242ull;
    for (int i = 0; i < 301; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[i] = ((double)(x >> 11) / 9007199254740992.0 - 0.5) * pow(10.0, (double)(x % 30) - 12);
    }
    v[0] = 1e20, v[1] = -3e-7, v[2] = 0, v[3] = 887, v[4] = 1e15 + 0.25, v[5] = 123456789012.5;
    v[6] = -0.004, v[7] = 0.0001, v[8] = 99999.99999, v[9] = 999999999.6, v[10] = -12.5;
    v[11] = 0.00049, v[12] = 123456.123456, v[13] = 45.25, v[14] = 100, v[15] = -1e-4;
    const int sizes[] = {0, 1, 300};
    for (int k = 0; k < 3; k++) {
        int rows = sizes[k];
        /* one table, no notes: a bare array */
        bm_report_t *r = bm_report_new();
        bm_table_t *t = s_out_table("ranking", cols, 6, rows, v);
        CHECK(r && t && bm_report_add(r, &t) == 0);
        char *got = s_render(r);
        json_t *ref = s_ref_table(cols, 6, rows, v);
        char *want = json_dumps(ref, JSON_INDENT(2) | JSON_REAL_PRECISION(12) | JSON_PRESERVE_ORDER);
        CHECK(got && want && !strncmp(got, want, strlen(want)) && !strcmp(got + strlen(want), "\n"));
        if (got && want && strncmp(got, want, strlen(want)))
            fprintf(stderr, "json, %d rows: got\n%.300s\nwant\n%.300s\n", rows, got, want);
        free(got);
        free(want);
        json_decref(ref);
        /* two tables and notes: an object */
        t = s_out_table("second", cols, 6, rows, v + 1);
        CHECK(t && bm_report_add(r, &t) == 0);
        bm_report_note(r, "note \"one\"\n");
        bm_report_note(r, "two");
        got = s_render(r);
        ref = json_object();
        json_object_set_new(ref, "ranking", s_ref_table(cols, 6, rows, v));
        json_object_set_new(ref, "second", s_ref_table(cols, 6, rows, v + 1));
        json_t *notes = json_array();
        json_array_append_new(notes, json_string("note \"one\"\n"));
        json_array_append_new(notes, json_string("two"));
        json_object_set_new(ref, "notes", notes);
        want = json_dumps(ref, JSON_INDENT(2) | JSON_REAL_PRECISION(12) | JSON_PRESERVE_ORDER);
        CHECK(got && want && !strncmp(got, want, strlen(want)) && !strcmp(got + strlen(want), "\n"));
        if (got && want && strncmp(got, want, strlen(want)))
            fprintf(stderr, "json report, %d rows: got\n%.400s\nwant\n%.400s\n", rows, got, want);
        free(got);
        free(want);
        json_decref(ref);
        bm_report_destroy(&r);
    }
}

int main(void)
{
    test_wilson();
    test_nps();
    test_mean();
    test_hist();
    test_ties();
    test_changes();
    test_low_sample_and_alerts();
    test_geo_and_periods();
    test_metric_estimates();
    test_csv_output();
    test_json_output();
    if (bm_test_failures) {
        fprintf(stderr, "test_stats: %d check(s) failed\n", bm_test_failures);
        return 1;
    }
    printf("test_stats: all checks passed\n");
    return 0;
}
