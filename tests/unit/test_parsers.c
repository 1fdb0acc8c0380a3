/* test_parsers: the inbox formats (agent/parser.c, parse_csv.c,
 * parse_formats.c) against the sample files in tests/data/inbox: exact field
 * values of every good sample, the exact message and line of every bad line,
 * good lines after bad ones, wrong headers, CRLF, quoting, the clock window,
 * over-long lines and the file-name rules; the ';' dialect with decimal
 * commas, UTF-16 and declared legacy encodings (tests/data/encodings/make.sh
 * says how those samples were made). */
#include "bm_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bm_time.h"
#include "parse_csv.h"
#include "parser.h"
#include "parser_int.h"

/* 2026-11-15T00:00:00Z, 400 days back, 1 day ahead: the samples are of
 * early November 2026. */
static const bm_time_window_t WINDOW = {1794700800000LL, 400LL * 86400000, 86400000LL};

#define MAX_RECS 64
#define MAX_ERRS 64

typedef struct {
    bm_record_t *recs[MAX_RECS];
    size_t nrecs;
    char errs[MAX_ERRS][600];
    uint64_t err_lines[MAX_ERRS];
    size_t nerrs;
    int stop_after;           /* sink fails after this many records (0: never) */
    bm_parse_stats_t stats;
    int rc;
    bm_err_t err;
} result_t;

static int s_sink(void *ctx, bm_record_t **rec, bm_err_t *err)
{
    result_t *r = ctx;
    if (r->stop_after && (int)r->nrecs >= r->stop_after) {
        bm_record_free(rec);
        return bm_err_set(err, "spool is full");
    }
    if (r->nrecs < MAX_RECS)
        r->recs[r->nrecs++] = *rec;
    else
        bm_record_free(rec);
    *rec = NULL;
    return 0;
}

static void s_on_error(void *ctx, uint64_t lineno, const char *why)
{
    result_t *r = ctx;
    if (r->nerrs < MAX_ERRS) {
        snprintf(r->errs[r->nerrs], sizeof r->errs[0], "%s", why);
        r->err_lines[r->nerrs++] = lineno;
    }
}

static void s_release(result_t *r)
{
    for (size_t i = 0; i < r->nrecs; i++)
        bm_record_free(&r->recs[i]);
    r->nrecs = 0;
}

static const char *s_data_dir(void)
{
    const char *d = getenv("BM_TEST_DATA");
    return d ? d : "tests/data";
}

/* Parses tests/data/inbox/<name> with the format its name selects, in
 * encoding (NULL: none declared, as bm_parse_file does). */
static void s_parse_enc(const char *name, const char *encoding, result_t *r)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/inbox/%s", s_data_dir(), name);
    int stop = r->stop_after;
    memset(r, 0, sizeof *r);
    r->stop_after = stop;
    const bm_parser_t *p = bm_parser_for_file(name);
    CHECK(p != NULL);
    if (encoding)
        r->rc = bm_parse_file_encoded(p, path, encoding, &WINDOW, s_sink, s_on_error, r,
                                      &r->stats, &r->err);
    else
        r->rc = bm_parse_file(p, path, &WINDOW, s_sink, s_on_error, r, &r->stats, &r->err);
    if (getenv("BM_TEST_VERBOSE"))
        for (size_t i = 0; i < r->nerrs; i++)
            fprintf(stderr, "%s: %s\n", name, r->errs[i]);
}

static void s_parse(const char *name, result_t *r)
{
    s_parse_enc(name, NULL, r);
}

static int64_t s_t(const char *iso)
{
    int64_t ms = 0;
    bm_err_t err;
    if (bm_time_parse(iso, &ms, &err) < 0) {
        fprintf(stderr, "bad test time %s: %s\n", iso, err.msg);
        bm_test_failures++;
    }
    return ms;
}

/* Checks that the file gave exactly these errors (in order), and counts. */
static void s_expect_errors(const result_t *r, const char *const *want, size_t n, int line)
{
    if (r->nerrs != n) {
        fprintf(stderr, "%s:%d: %zu errors, wanted %zu\n", __FILE__, line, r->nerrs, n);
        bm_test_failures++;
    }
    for (size_t i = 0; i < n && i < r->nerrs; i++) {
        if (strcmp(r->errs[i], want[i]) != 0) {
            fprintf(stderr, "%s:%d: error %zu is \"%s\", wanted \"%s\"\n", __FILE__, line, i,
                    r->errs[i], want[i]);
            bm_test_failures++;
        }
        unsigned long long ln = 0;
        sscanf(want[i], "line %llu:", &ln);
        if (r->err_lines[i] != ln) {
            fprintf(stderr, "%s:%d: error %zu reported for line %llu\n", __FILE__, line, i,
                    (unsigned long long)r->err_lines[i]);
            bm_test_failures++;
        }
    }
}

#define EXPECT_ERRORS(r, ...)                                                     \
    do {                                                                          \
        static const char *const w_[] = {__VA_ARGS__};                            \
        s_expect_errors((r), w_, sizeof w_ / sizeof w_[0], __LINE__);             \
    } while (0)

/* ---- good samples: exact values ---------------------------------------- */

static void test_people_count(void)
{
    result_t r = {0};
    s_parse("people_count_good.csv", &r);
    CHECK(r.rc == 0 && r.nerrs == 0 && r.nrecs == 3);
    CHECK(r.stats.lines == 3 && r.stats.good == 3 && r.stats.bad == 0);
    if (r.nrecs == 3) {
        Branchmark__V1__PeopleCount *p = r.recs[0]->people_count;
        CHECK(bm_record_kind(r.recs[0]) == BM_KIND_PEOPLE_COUNT);
        CHECK_STR(r.recs[0]->source_id, "PC-1");
        CHECK(p->interval_start_ms == s_t("2026-11-02T07:00:00Z"));
        CHECK(p->interval_seconds == 900 && p->passers_by == 120 && p->entrants == 14);
        p = r.recs[1]->people_count;
        CHECK(p->passers_by == 0 && p->entrants == 0);
        p = r.recs[2]->people_count;
        CHECK(p->interval_start_ms == s_t("2026-11-02T11:00:00.250Z"));
        CHECK(p->interval_seconds == 86400 && p->passers_by == 2147483647u && p->entrants == 3);
    }
    s_release(&r);

    s_parse("people_count_bad.csv", &r);
    CHECK(r.rc == 0);
    EXPECT_ERRORS(&r,
        "line 2: people_count: interval_seconds: 0 is out of range 1..86400",
        "line 3: people_count: passers_by: \"-3\" is not a whole number >= 0",
        "line 4: people_count: entrants: 99999999999 is too large",
        "line 6: people_count: source_id: must not be empty",
        "line 7: people_count: entrants: is required",
        "line 8: people_count: expected 5 fields, found 6",
        "line 9: people_count: passers_by: 3000000000 is out of range 0..2147483647");
    CHECK(r.nrecs == 1 && r.nrecs && strcmp(r.recs[0]->source_id, "PC-13") == 0);
    CHECK(r.stats.lines == 8 && r.stats.good == 1 && r.stats.bad == 7);
    s_release(&r);
}

static void test_wrong_header(void)
{
    result_t r = {0};
    s_parse("people_count_badheader.csv", &r);
    CHECK(r.rc == 0);
    EXPECT_ERRORS(&r, "line 1: header: found \"source_id,start,seconds,passers_by,entrants\"; "
                      "expected \"source_id,interval_start,interval_seconds,passers_by,entrants\"");
    CHECK(r.nrecs == 0);
    /* every data line counts as bad (the blank line is not a data line) */
    CHECK(r.stats.lines == 3 && r.stats.good == 0 && r.stats.bad == 3);
    s_release(&r);
}

static void test_receipts(void)
{
    result_t r = {0};
    s_parse("receipts_good.csv", &r);
    CHECK(r.rc == 0 && r.nerrs == 0 && r.nrecs == 9);
    static const struct { const char *id; int64_t minor; const char *cur; } want[] = {
        {"R-1", 1234, "EUR"}, {"R-2", -500, "EUR"}, {"R-3", 1500, "JPY"},
        {"R-4", 150, "BGN"}, {"R-5", 125, "KWD"}, {"R,6", 700, "USD"},
        {"R-7", -1, "EUR"}, {"R \"8\"", 1000000000000LL, "EUR"}, {"R-9", -1500, "KRW"},
    };
    for (size_t i = 0; i < r.nrecs && i < 9; i++) {
        CHECK(bm_record_kind(r.recs[i]) == BM_KIND_RECEIPT);
        CHECK_STR(r.recs[i]->source_id, want[i].id);
        CHECK(r.recs[i]->receipt->amount_minor == want[i].minor);
        CHECK_STR(r.recs[i]->receipt->currency, want[i].cur);
    }
    if (r.nrecs == 9) {
        CHECK(r.recs[0]->receipt->at_ms == s_t("2026-11-02T08:00:00Z"));
        CHECK(r.recs[1]->receipt->at_ms == s_t("2026-11-02T10:05:00Z"));
    }
    s_release(&r);

    s_parse("receipts_bad.csv", &r);
    CHECK(r.rc == 0);
    EXPECT_ERRORS(&r,
        "line 2: receipt: amount: \"1.234\" has more than 2 decimal places for EUR",
        "line 4: receipt: at: 1970-01-01T00:00:00.000Z is outside the accepted window "
        "(more than 400 days in the past)",
        "line 5: receipt: amount: \"12.5\" must be a whole number for JPY",
        "line 6: receipt: at: \"2026-11-02T10:00:00\" has no UTC offset (add Z or +HH:MM)",
        "line 7: receipt: amount: \"1e3\" is not a decimal number like -12.34",
        "line 8: receipt: currency: \"eur\" is not an ISO 4217 code (three upper-case letters)",
        "line 9: receipt: expected 4 fields, found 3",
        "line 10: receipt: at: \"2026-02-30T10:00:00Z\" is not a valid date and time",
        "line 12: receipt: amount: \"1.\" is not a decimal number like -12.34",
        "line 13: receipt: amount: \"1,000.00\" is not a decimal number like -12.34",
        "line 14: receipt: amount: 1000000000001 minor units is out of range "
        "-1000000000000..1000000000000",
        "line 15: receipt: amount: \"0.1234\" has more than 3 decimal places for KWD");
    CHECK(r.nrecs == 2);
    if (r.nrecs == 2) {
        CHECK_STR(r.recs[0]->source_id, "R-11");
        CHECK(r.recs[0]->receipt->amount_minor == 1000);
        CHECK_STR(r.recs[1]->source_id, "R-19");
        CHECK(r.recs[1]->receipt->amount_minor == 100);
    }
    CHECK(r.stats.lines == 14 && r.stats.good == 2 && r.stats.bad == 12);
    s_release(&r);

    /* CRLF line ends, a byte order mark, quoted fields, no final line end */
    s_parse("receipts_crlf.csv", &r);
    CHECK(r.rc == 0 && r.nerrs == 0 && r.nrecs == 3);
    if (r.nrecs == 3) {
        CHECK_STR(r.recs[0]->source_id, "R-30");
        CHECK(r.recs[0]->receipt->amount_minor == 350);
        CHECK_STR(r.recs[0]->receipt->currency, "EUR");
        CHECK_STR(r.recs[1]->source_id, "R-31");
        CHECK(r.recs[1]->receipt->amount_minor == -350);
        CHECK_STR(r.recs[2]->source_id, "R-32");
        CHECK(r.recs[2]->receipt->amount_minor == 400);
    }
    s_release(&r);
}

static void test_queue(void)
{
    result_t r = {0};
    s_parse("queue_good.csv", &r);
    CHECK(r.rc == 0 && r.nerrs == 0 && r.nrecs == 3);
    if (r.nrecs == 3) {
        Branchmark__V1__QueueTicket *q = r.recs[0]->queue_ticket;
        CHECK(q->issued_at_ms == s_t("2026-11-02T09:00:00Z"));
        CHECK(q->called_case == BRANCHMARK__V1__QUEUE_TICKET__CALLED_CALLED_AT_MS &&
              q->called_at_ms == s_t("2026-11-02T09:05:00Z"));
        CHECK(q->served_case == BRANCHMARK__V1__QUEUE_TICKET__SERVED_SERVED_AT_MS &&
              q->served_at_ms == s_t("2026-11-02T09:12:30Z"));
        CHECK_STR(q->service_point, "desk 1");
        q = r.recs[1]->queue_ticket;   /* empty optional fields = absent */
        CHECK(q->called_case == BRANCHMARK__V1__QUEUE_TICKET__CALLED__NOT_SET);
        CHECK(q->served_case == BRANCHMARK__V1__QUEUE_TICKET__SERVED__NOT_SET);
        CHECK_STR(q->service_point, "");
        q = r.recs[2]->queue_ticket;
        CHECK(q->called_case == BRANCHMARK__V1__QUEUE_TICKET__CALLED_CALLED_AT_MS);
        CHECK(q->served_case == BRANCHMARK__V1__QUEUE_TICKET__SERVED__NOT_SET);
        CHECK_STR(q->service_point, "counter \"A\", left");
    }
    s_release(&r);

    s_parse("queue_bad.csv", &r);
    CHECK(r.rc == 0);
    EXPECT_ERRORS(&r,
        "line 2: queue_ticket: served_at: a ticket cannot be served without being called",
        "line 3: queue_ticket: called_at: 2026-11-02T08:59:00.000Z is before issued_at "
        "2026-11-02T09:00:00.000Z",
        "line 4: queue_ticket: served_at: 2026-11-02T09:04:00.000Z is before called_at "
        "2026-11-02T09:05:00.000Z",
        "line 5: queue_ticket: field 5: a quote inside an unquoted field (quote the whole "
        "field and double the quote)",
        "line 6: queue_ticket: field 5: unterminated quoted field (a field may not span lines)",
        "line 7: queue_ticket: field 1: a quote inside an unquoted field (quote the whole "
        "field and double the quote)",
        "line 9: queue_ticket: field 5: text after the closing quote");
    CHECK(r.nrecs == 1 && r.nrecs && strcmp(r.recs[0]->source_id, "Q-15") == 0);
    s_release(&r);
}

static void test_calls(void)
{
    result_t r = {0};
    s_parse("calls_good.csv", &r);
    CHECK(r.rc == 0 && r.nerrs == 0 && r.nrecs == 4);
    static const int answered[] = {1, 0, 1, 0};
    static const unsigned wait[] = {12, 45, 0, 30};
    for (size_t i = 0; i < r.nrecs && i < 4; i++) {
        CHECK(bm_record_kind(r.recs[i]) == BM_KIND_PHONE_CALL);
        CHECK(!!r.recs[i]->phone_call->answered == answered[i]);
        CHECK(r.recs[i]->phone_call->wait_seconds == wait[i]);
    }
    if (r.nrecs == 4)
        CHECK(r.recs[3]->phone_call->ring_start_ms == s_t("2026-11-02T09:03:00Z"));
    s_release(&r);

    s_parse("calls_bad.csv", &r);
    EXPECT_ERRORS(&r,
        "line 2: phone_call: answered: \"maybe\" is not yes, no, true, false, 1 or 0",
        "line 3: phone_call: wait_seconds: 86401 is out of range 0..86400",
        "line 4: phone_call: wait_seconds: \"-1\" is not a whole number >= 0",
        "line 6: phone_call: answered: is required");
    CHECK(r.nrecs == 1 && r.nrecs && strcmp(r.recs[0]->source_id, "C-13") == 0);
    s_release(&r);
}

static void test_complaints(void)
{
    result_t r = {0};
    s_parse("complaints_good.csv", &r);
    CHECK(r.rc == 0 && r.nerrs == 0 && r.nrecs == 2);
    if (r.nrecs == 2) {
        Branchmark__V1__Complaint *c = r.recs[0]->complaint;
        CHECK(c->received_at_ms == s_t("2026-11-02T09:00:00Z"));
        CHECK_STR(c->category, "waiting");
        CHECK_STR(c->contact_point, "checkout");
        CHECK_STR(c->channel, "in_person");
        CHECK(c->resolved_case == BRANCHMARK__V1__COMPLAINT__RESOLVED_RESOLVED_AT_MS &&
              c->resolved_at_ms == s_t("2026-11-03T11:00:00Z"));
        c = r.recs[1]->complaint;
        CHECK(c->resolved_case == BRANCHMARK__V1__COMPLAINT__RESOLVED__NOT_SET);
        CHECK_STR(c->category, "staff_attitude");
    }
    s_release(&r);

    s_parse("complaints_bad.csv", &r);
    EXPECT_ERRORS(&r,
        "line 2: complaint: resolved_at: 2026-11-01T12:00:00.000Z is before received_at "
        "2026-11-02T09:00:00.000Z",
        "line 3: complaint: category: is required",
        "line 5: complaint: channel: 35 characters exceed the limit of 32");
    CHECK(r.nrecs == 1 && r.nrecs && strcmp(r.recs[0]->source_id, "K-12") == 0);
    s_release(&r);

    s_parse("complaints_utf8.csv", &r);
    EXPECT_ERRORS(&r,
        "line 2, field \"category\": not UTF-8; set encoding = complaints:windows-1252 for "
        "this source?",
        "line 3, field \"category\": a NUL byte at byte 31");
    CHECK(r.nrecs == 1 && r.nrecs && strcmp(r.recs[0]->complaint->category, "caf\xc3\xa9") == 0);
    s_release(&r);
}

static void test_customers(void)
{
    result_t r = {0};
    s_parse("customers_good.csv", &r);
    CHECK(r.rc == 0 && r.nerrs == 0 && r.nrecs == 2);
    if (r.nrecs == 2) {
        Branchmark__V1__CustomerChange *c = r.recs[0]->customer_change;
        CHECK(c->kind == BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_GAINED);
        CHECK_STR(c->reason, "");
        CHECK_STR(c->segment, "family");
        c = r.recs[1]->customer_change;
        CHECK(c->kind == BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_LOST);
        CHECK_STR(c->reason, "moved_away");
        CHECK_STR(c->segment, "");
        CHECK(c->at_ms == s_t("2026-11-02T09:30:00Z"));
    }
    s_release(&r);

    s_parse("customers_bad.csv", &r);
    EXPECT_ERRORS(&r,
        "line 2: customer_change: reason: is required for a lost customer (1..64 characters)",
        "line 3: customer_change: kind: \"churned\" is not gained or lost");
    CHECK(r.nrecs == 1);
    s_release(&r);
}

static void test_surveys(void)
{
    result_t r = {0};
    s_parse("surveys_good.jsonl", &r);
    CHECK(r.rc == 0 && r.nerrs == 0 && r.nrecs == 4);
    CHECK(r.stats.lines == 4);   /* the blank line is skipped, not counted */
    if (r.nrecs == 4) {
        Branchmark__V1__SurveyResponse *s = r.recs[0]->survey;
        CHECK_STR(r.recs[0]->source_id, "S-1");
        CHECK(s->responded_at_ms == s_t("2026-11-02T10:00:00Z"));
        CHECK(s->nps_answer_case == BRANCHMARK__V1__SURVEY_RESPONSE__NPS_ANSWER_NPS && s->nps == 9);
        CHECK(s->n_csi == 2);
        if (s->n_csi == 2) {
            CHECK_STR(s->csi[0]->item, "friendliness");
            CHECK(s->csi[0]->score == 5 && s->csi[0]->scale_max == 5);
            CHECK_STR(s->csi[1]->item, "speed");
            CHECK(s->csi[1]->score == 4 && s->csi[1]->scale_max == 5);
        }
        CHECK_STR(s->why, "quick and kind");
        CHECK_STR(s->segment, "family");
        CHECK_STR(s->survey_channel, "kiosk");

        s = r.recs[1]->survey;
        CHECK(s->nps_answer_case == BRANCHMARK__V1__SURVEY_RESPONSE__NPS_ANSWER_NPS && s->nps == 0);
        CHECK(s->n_csi == 0 && s->responded_at_ms == s_t("2026-11-02T08:05:00Z"));

        s = r.recs[2]->survey;   /* nps null = not asked; scale 10 */
        CHECK(s->nps_answer_case == BRANCHMARK__V1__SURVEY_RESPONSE__NPS_ANSWER__NOT_SET);
        CHECK(s->n_csi == 1 && s->csi[0]->score == 10 && s->csi[0]->scale_max == 10);
        CHECK_STR(s->why, "sch\xc3\xb6n \"sauber\"");

        s = r.recs[3]->survey;   /* default scale 5 */
        CHECK(s->n_csi == 1 && s->csi[0]->score == 1 && s->csi[0]->scale_max == 5);
    }
    s_release(&r);

    s_parse("surveys_bad.jsonl", &r);
    CHECK(r.rc == 0);
    EXPECT_ERRORS(&r,
        "line 1: survey: nps: 11 is out of range 0..10",
        "line 2: survey: invalid JSON at column 71: duplicate object key near '\"nps\"'",
        "line 3: survey: unknown key \"npss\"",
        "line 4: survey: invalid JSON at column 65: '}' expected near end of file",
        "line 5: survey: has neither nps nor csi",
        "line 6: survey: csi: speed: score 6 is out of range 1..5",
        "line 7: survey: responded_at: 1970-01-01T00:00:00.000Z is outside the accepted "
        "window (more than 400 days in the past)",
        "line 9: survey: nps: must be a whole number",
        "line 10: survey: expected a JSON object",
        "line 11: survey: nps: must be a whole number",
        "line 12: survey: csi_scale: 11 is out of range 2..10",
        "line 13: survey: source_id: is required");
    CHECK(r.nrecs == 1 && r.nrecs && strcmp(r.recs[0]->source_id, "S-17") == 0);
    CHECK(r.stats.lines == 13 && r.stats.good == 1 && r.stats.bad == 12);
    s_release(&r);
}

static void test_evaluations(void)
{
    result_t r = {0};
    s_parse("evaluations_good.jsonl", &r);
    CHECK(r.rc == 0 && r.nerrs == 0 && r.nrecs == 2);
    if (r.nrecs == 2) {
        Branchmark__V1__ShopperEvaluation *e = r.recs[0]->evaluation;
        CHECK_STR(r.recs[0]->source_id, "E-1");
        CHECK_STR(e->questionnaire_code, "STORE");
        CHECK(e->questionnaire_version == 1);
        CHECK(e->channel == BRANCHMARK__V1__CHANNEL__CHANNEL_VISIT);
        CHECK_STR(e->scenario, "first_purchase");
        CHECK_STR(e->shopper_segment, "young_family");
        CHECK(e->outlet_kind == BRANCHMARK__V1__OUTLET_KIND__OUTLET_KIND_BRANCH);
        CHECK_STR(e->outlet_code, "B001");
        CHECK(e->visited_at_ms == s_t("2026-11-02T11:00:00Z"));
        CHECK(e->submitted_at_ms == s_t("2026-11-02T15:00:00Z"));
        CHECK_STR(e->shopper_ref, "SH042");
        CHECK(e->n_answers == 3);
        if (e->n_answers == 3) {
            CHECK_STR(e->answers[0]->item_code, "G1");
            CHECK(e->answers[0]->value_case == BRANCHMARK__V1__ANSWER__VALUE_POINTS &&
                  e->answers[0]->points == 1.0);
            CHECK_STR(e->answers[1]->item_code, "G2");
            CHECK(e->answers[1]->value_case == BRANCHMARK__V1__ANSWER__VALUE_NOT_APPLICABLE &&
                  e->answers[1]->not_applicable);
            CHECK(e->answers[2]->value_case == BRANCHMARK__V1__ANSWER__VALUE_POINTS &&
                  e->answers[2]->points == 0.0);
            CHECK_STR(e->answers[2]->comment, "did not know the warranty terms");
        }
        e = r.recs[1]->evaluation;
        CHECK(e->channel == BRANCHMARK__V1__CHANNEL__CHANNEL_CALL && e->questionnaire_version == 3);
        CHECK(e->outlet_kind == BRANCHMARK__V1__OUTLET_KIND__OUTLET_KIND_COMPETITOR);
        CHECK_STR(e->outlet_code, "C001");
        CHECK(e->submitted_at_ms == 0);
        CHECK(e->visited_at_ms == s_t("2026-11-03T08:00:00Z"));
        CHECK(e->n_answers == 1 && e->answers[0]->points == 2.5);
        CHECK_STR(e->scenario, "");
    }
    s_release(&r);

    s_parse("evaluations_bad.jsonl", &r);
    CHECK(r.rc == 0);
    EXPECT_ERRORS(&r,
        "line 1: evaluation: outlet: must have exactly one of \"branch\" or \"competitor\"",
        "line 2: evaluation: answers: must have at least one answer",
        "line 3: evaluation: answers: G1: has both points and na",
        "line 4: evaluation: answers: G1: na: must be true when given",
        "line 5: evaluation: answers: item \"G1\" is answered twice",
        "line 6: evaluation: answers: answer 1: unknown key \"note\"",
        "line 7: evaluation: channel: \"mail\" is not visit, call or online",
        "line 8: evaluation: answers: G1: points: -1 must be a finite number >= 0",
        "line 9: evaluation: submitted_at: 2026-11-02T10:00:00.000Z is before visited_at "
        "2026-11-02T11:00:00.000Z",
        "line 10: evaluation: version: 0 is out of range 1..2147483647",
        "line 12: evaluation: outlet: must have exactly one of \"branch\" or \"competitor\"",
        "line 13: evaluation: answers: answer 1: item: is required");
    CHECK(r.nrecs == 1 && r.nrecs && strcmp(r.recs[0]->source_id, "E-20") == 0);
    s_release(&r);
}

/* ---- generated files ----------------------------------------------------- */

static char s_tmpdir[256];

static void s_write(const char *name, const char *text, size_t len, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", s_tmpdir, name);
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (fp) {
        fwrite(text, 1, len, fp);
        fclose(fp);
    }
}

static void test_long_lines_and_edges(void)
{
    char path[512];
    result_t r = {0};
    bm_err_t err;

    /* A line over 64 KiB is reported and skipped; the next line is fine. */
    size_t big = BM_LINE_MAX + 100;
    char *text = malloc(big + 300);
    size_t n = (size_t)sprintf(text, "source_id,at,amount,currency\nR-1,");
    memset(text + n, 'x', big);
    n += big;
    n += (size_t)sprintf(text + n, "\nR-2,2026-11-02T10:00:00Z,1.00,EUR\n");
    s_write("receipts_long.csv", text, n, path, sizeof path);
    const bm_parser_t *p = bm_parser_for_file("receipts_long.csv");
    r.rc = bm_parse_file(p, path, &WINDOW, s_sink, s_on_error, &r, &r.stats, &r.err);
    CHECK(r.rc == 0);
    EXPECT_ERRORS(&r, "line 2: line is longer than 65536 bytes");
    CHECK(r.nrecs == 1 && r.nrecs && strcmp(r.recs[0]->source_id, "R-2") == 0);
    s_release(&r);

    /* Exactly 64 KiB is still a line (it then fails as a record). */
    memset(&r, 0, sizeof r);
    n = (size_t)sprintf(text, "{\"source_id\":\"");
    size_t fill = BM_LINE_MAX - n - 2;
    memset(text + n, 'y', fill);
    n += fill;
    n += (size_t)sprintf(text + n, "\"}\r\n");
    s_write("surveys_edge.jsonl", text, n, path, sizeof path);
    r.rc = bm_parse_file(bm_parser_for_file("surveys_edge.jsonl"), path, &WINDOW, s_sink,
                         s_on_error, &r, &r.stats, &r.err);
    CHECK(r.rc == 0 && r.nerrs == 1 && strcmp(r.errs[0], "line 1: survey: responded_at: is required") == 0);
    free(text);

    /* Empty file: nothing, no error.  Header only: nothing, no error. */
    memset(&r, 0, sizeof r);
    s_write("calls_empty.csv", "", 0, path, sizeof path);
    CHECK(bm_parse_file(bm_parser_for_file("calls_empty.csv"), path, &WINDOW, s_sink,
                        s_on_error, &r, &r.stats, &err) == 0);
    CHECK(r.nerrs == 0 && r.stats.lines == 0 && r.stats.bad == 0);
    static const char header_only[] = "source_id,ring_start,answered,wait_seconds\n";
    s_write("calls_header.csv", header_only, strlen(header_only), path, sizeof path);
    CHECK(bm_parse_file(bm_parser_for_file("calls_header.csv"), path, &WINDOW, s_sink,
                        s_on_error, &r, &r.stats, &err) == 0);
    CHECK(r.nerrs == 0 && r.stats.lines == 0 && r.stats.bad == 0);

    /* A wrong header without data still leaves the file bad. */
    static const char wrong_only[] = "id,ring_start,answered,wait_seconds\n";
    s_write("calls_wrong.csv", wrong_only, strlen(wrong_only), path, sizeof path);
    CHECK(bm_parse_file(bm_parser_for_file("calls_wrong.csv"), path, &WINDOW, s_sink,
                        s_on_error, &r, &r.stats, &err) == 0);
    CHECK(r.nerrs == 1 && r.stats.bad == 1 && r.stats.good == 0);
    s_release(&r);

    /* A quoted field holding a comma is one column, not two: this header
     * has "source_id,at" and an empty fourth column, so it is wrong. */
    memset(&r, 0, sizeof r);
    static const char quoted_hdr[] = "\"source_id,at\",amount,currency,\n"
                                     "R-1,2026-11-02T10:00:00Z,1.00,EUR\n";
    s_write("receipts_qhdr.csv", quoted_hdr, strlen(quoted_hdr), path, sizeof path);
    CHECK(bm_parse_file(bm_parser_for_file("receipts_qhdr.csv"), path, &WINDOW, s_sink,
                        s_on_error, &r, &r.stats, &err) == 0);
    EXPECT_ERRORS(&r, "line 1: header: found \"\"source_id,at\",amount,currency,\"; "
                      "expected \"source_id,at,amount,currency\"");
    CHECK(r.nrecs == 0 && r.stats.bad == 1);
    s_release(&r);
    static const char quoted_ok[] = "\"source_id\",at,\"amount\",currency\n"
                                    "R-1,2026-11-02T10:00:00Z,1.00,EUR\n";
    memset(&r, 0, sizeof r);
    s_write("receipts_qhdr.csv", quoted_ok, strlen(quoted_ok), path, sizeof path);
    CHECK(bm_parse_file(bm_parser_for_file("receipts_qhdr.csv"), path, &WINDOW, s_sink,
                        s_on_error, &r, &r.stats, &err) == 0);
    CHECK(r.nerrs == 0 && r.nrecs == 1);
    s_release(&r);

    /* The sink stopping parsing stops it, with the sink's message. */
    memset(&r, 0, sizeof r);
    r.stop_after = 2;
    s_parse("receipts_good.csv", &r);
    CHECK(r.rc == -1 && strcmp(r.err.msg, "spool is full") == 0 && r.nrecs == 2);
    s_release(&r);

    /* A missing file is an error that names it. */
    CHECK(bm_parse_file(bm_parser_for_file("calls_missing.csv"), "/nonexistent/calls_x.csv",
                        &WINDOW, s_sink, s_on_error, &r, NULL, &err) == -1);
    CHECK(strstr(err.msg, "could not open \"/nonexistent/calls_x.csv\"") != NULL);

    /* Without a window, 1970 passes (the collector's window still applies). */
    memset(&r, 0, sizeof r);
    char p2[1024];
    snprintf(p2, sizeof p2, "%s/inbox/receipts_bad.csv", s_data_dir());
    CHECK(bm_parse_file(bm_parser_for_file("receipts_bad.csv"), p2, NULL, s_sink, s_on_error,
                        &r, &r.stats, &err) == 0);
    CHECK(r.stats.good == 3);
    s_release(&r);

    /* A larger file: memory is per line, and the counts add up. */
    memset(&r, 0, sizeof r);
    snprintf(path, sizeof path, "%s/people_count_big.csv", s_tmpdir);
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (fp) {
        fprintf(fp, "source_id,interval_start,interval_seconds,passers_by,entrants\n");
        for (int i = 0; i < 20000; i++)
            fprintf(fp, "P-%d,2026-11-02T09:00:00Z,900,%d,%d\n", i, i, i % 7 == 0 ? -1 : i);
        fclose(fp);
    }
    CHECK(bm_parse_file(bm_parser_for_file("people_count_big.csv"), path, &WINDOW, s_sink,
                        NULL, &r, &r.stats, &err) == 0);
    CHECK(r.stats.lines == 20000 && r.stats.bad == 2858 && r.stats.good == 17142);
    s_release(&r);
}

static void test_csv_split(void)
{
    char *f[8];
    bm_err_t err;
    char a[] = "a,\"b,c\",\"d \"\"e\"\"\",,f";
    CHECK(bm_csv_split(a, strlen(a), ',', f, 8, &err) == 5);
    CHECK_STR(f[0], "a");
    CHECK_STR(f[1], "b,c");
    CHECK_STR(f[2], "d \"e\"");
    CHECK_STR(f[3], "");
    CHECK_STR(f[4], "f");
    char b[] = "";
    CHECK(bm_csv_split(b, 0, ',', f, 8, &err) == 1 && f[0][0] == '\0');
    char c[] = "x,";
    CHECK(bm_csv_split(c, 2, ',', f, 8, &err) == 2 && f[1][0] == '\0');
    char d[] = "1,2,3";
    CHECK(bm_csv_split(d, strlen(d), ',', f, 2, &err) == -1);
    CHECK_STR(err.msg, "more than 2 fields");
    char e[] = "\"\"";
    CHECK(bm_csv_split(e, 2, ',', f, 8, &err) == 1 && f[0][0] == '\0');
}

/* ---- dialects and encodings (docs/formats.md) ---------------------------- */

static void test_excel_semicolons(void)
{
    result_t r = {0};
    /* Excel "CSV UTF-8" in a Bulgarian locale: BOM, CRLF, ';', decimal commas */
    s_parse("receipts_excel_bg.csv", &r);
    CHECK(r.rc == 0);
    EXPECT_ERRORS(&r,
        "line 6: receipt: amount: \"12.34\" has a decimal point; in a file separated by \";\" "
        "decimals are written with a comma, like -12,34",
        "line 7: receipt: amount: \"1 234,56\" is not a decimal number like -12,34");
    static const struct { const char *id; int64_t minor; const char *cur; } want[] = {
        {"R-501", 1234, "BGN"}, {"R-502", -500, "BGN"}, {"R-503;A", 150000, "BGN"},
        {"R-504", 50, "RUB"}, {"R-507", 1500, "JPY"},
    };
    CHECK(r.nrecs == 5);
    for (size_t i = 0; i < r.nrecs && i < 5; i++) {
        CHECK_STR(r.recs[i]->source_id, want[i].id);
        CHECK(r.recs[i]->receipt->amount_minor == want[i].minor);
        CHECK_STR(r.recs[i]->receipt->currency, want[i].cur);
    }
    if (r.nrecs == 5)
        CHECK(r.recs[0]->receipt->at_ms == s_t("2026-11-02T08:00:00Z"));
    CHECK(r.stats.lines == 7 && r.stats.good == 5 && r.stats.bad == 2);
    s_release(&r);
}

static void test_utf16(void)
{
    result_t r = {0};
    /* UTF-16LE with a byte order mark, CRLF; a character outside the BMP */
    s_parse("queue_utf16le.csv", &r);
    CHECK(r.rc == 0 && r.nerrs == 0 && r.nrecs == 3);
    if (r.nrecs == 3) {
        Branchmark__V1__QueueTicket *q = r.recs[0]->queue_ticket;
        CHECK_STR(r.recs[0]->source_id, "Q-601");
        CHECK(q->issued_at_ms == s_t("2026-11-02T07:00:00Z"));
        CHECK(q->served_case == BRANCHMARK__V1__QUEUE_TICKET__SERVED_SERVED_AT_MS &&
              q->served_at_ms == s_t("2026-11-02T07:12:30Z"));
        CHECK_STR(q->service_point, "Каса 2");
        CHECK(r.recs[1]->queue_ticket->called_case ==
              BRANCHMARK__V1__QUEUE_TICKET__CALLED__NOT_SET);
        CHECK_STR(r.recs[1]->queue_ticket->service_point, "");
        CHECK_STR(r.recs[2]->queue_ticket->service_point, "guichet \"é\", 🙂");
    }
    s_release(&r);
}

static void test_cp1251(void)
{
    result_t r = {0};
    /* Excel "CSV" in a Russian locale: Windows-1251 and ';', declared */
    s_parse_enc("complaints_cp1251.csv", "windows-1251", &r);
    CHECK(r.rc == 0);
    EXPECT_ERRORS(&r, "line 6, field \"category\": byte 0x98 is not windows-1251 text");
    CHECK(r.nrecs == 4);
    if (r.nrecs == 4) {
        Branchmark__V1__Complaint *c = r.recs[0]->complaint;
        CHECK_STR(r.recs[0]->source_id, "K-70");
        CHECK_STR(c->category, "ожидание");
        CHECK_STR(c->contact_point, "касса");
        CHECK_STR(c->channel, "в магазине");
        CHECK(c->received_at_ms == s_t("2026-11-02T06:00:00Z"));
        CHECK(c->resolved_case == BRANCHMARK__V1__COMPLAINT__RESOLVED_RESOLVED_AT_MS &&
              c->resolved_at_ms == s_t("2026-11-02T08:30:00Z"));
        c = r.recs[1]->complaint;
        CHECK_STR(c->category, "отношение персонала");
        CHECK_STR(c->contact_point, "торговый зал");
        CHECK_STR(c->channel, "телефон");
        CHECK(c->resolved_case == BRANCHMARK__V1__COMPLAINT__RESOLVED__NOT_SET);
        CHECK_STR(r.recs[2]->complaint->category, "waiting");
        CHECK_STR(r.recs[3]->source_id, "K-73;Ё");
        CHECK_STR(r.recs[3]->complaint->category, "товар \"Эконом\"");
    }
    s_release(&r);

    /* The same file without the declaration: refused line by line, saying
     * which field and what to set; the ASCII line still goes through. */
    s_parse("complaints_cp1251.csv", &r);
    CHECK(r.rc == 0);
    EXPECT_ERRORS(&r,
        "line 2, field \"category\": not UTF-8; set encoding = complaints:windows-1251 "
        "for this source?",
        "line 3, field \"category\": not UTF-8; set encoding = complaints:windows-1251 "
        "for this source?",
        "line 5, field \"source_id\": not UTF-8; set encoding = complaints:windows-1251 "
        "for this source?",
        "line 6, field \"category\": not UTF-8; set encoding = complaints:windows-1252 "
        "for this source?");
    CHECK(r.nrecs == 1 && r.nrecs && strcmp(r.recs[0]->source_id, "K-72") == 0);
    s_release(&r);
}

/* Writes len bytes as <tmpdir>/name and parses them in encoding. */
static void s_parse_bytes(const char *name, const char *bytes, size_t len, const char *encoding,
                          result_t *r)
{
    char path[512];
    s_write(name, bytes, len, path, sizeof path);
    memset(r, 0, sizeof *r);
    r->rc = bm_parse_file_encoded(bm_parser_for_file(name), path, encoding, &WINDOW, s_sink,
                                  s_on_error, r, &r->stats, &r->err);
    unlink(path);
}

static void test_encoding_edges(void)
{
    result_t r = {0};
    /* UTF-16 without a byte order mark: the header says what to do */
    static const char le[] = "c\0a\0l\0l\0s\0\n\0";
    s_parse_bytes("calls_nobom.csv", le, sizeof le - 1, NULL, &r);
    EXPECT_ERRORS(&r, "line 1: header: found UTF-16 text without a byte order mark; save the "
                      "file as UTF-8, or set encoding = calls:UTF-16LE for this source; expected "
                      "\"source_id,ring_start,answered,wait_seconds\"");
    s_release(&r);

    /* ... and with it declared, it is read; UTF-16BE with a BOM too. */
    static const char hdr[] = "source_id,ring_start,answered,wait_seconds\n"
                              "C-1,2026-11-02T09:00:00Z,yes,12\n";
    char le16[256], be16[256];
    size_t n = sizeof hdr - 1;
    be16[0] = (char)0xFE, be16[1] = (char)0xFF;
    for (size_t i = 0; i < n; i++) {
        le16[2 * i] = hdr[i], le16[2 * i + 1] = 0;
        be16[2 + 2 * i] = 0, be16[3 + 2 * i] = hdr[i];
    }
    s_parse_bytes("calls_le.csv", le16, 2 * n, "UTF-16LE", &r);
    CHECK(r.nerrs == 0 && r.nrecs == 1 && r.nrecs && r.recs[0]->phone_call->wait_seconds == 12);
    s_release(&r);
    s_parse_bytes("calls_be.csv", be16, 2 * n + 2, "windows-1251", &r);   /* the BOM wins */
    CHECK(r.nerrs == 0 && r.nrecs == 1);
    s_release(&r);
    /* an unpaired surrogate and an odd last byte */
    memcpy(le16 + 2 * n, "\x00\xD8" "A\0\n\0" "x", 7);
    s_parse_bytes("calls_le.csv", le16, 2 * n + 7, "UTF-16LE", &r);
    EXPECT_ERRORS(&r, "line 3: not UTF-16LE text at byte 1", "line 4: not UTF-16LE text at byte 1");
    s_release(&r);

    /* A header in another dialect says what it found. */
    static const char tabs[] = "source_id\tat\tamount\tcurrency\nR-1\t2026-11-02T10:00:00Z\t1\tEUR\n";
    s_parse_bytes("receipts_tabs.csv", tabs, sizeof tabs - 1, NULL, &r);
    EXPECT_ERRORS(&r, "line 1: header: found \"source_id\\tat\\tamount\\tcurrency\"; expected "
                      "\"source_id,at,amount,currency\"");
    CHECK(r.stats.bad == 1);
    s_release(&r);
    /* a decimal comma where ',' separates fields is still refused */
    static const char comma[] = "source_id,at,amount,currency\nR-1,2026-11-02T10:00:00Z,\"1,5\",EUR\n";
    s_parse_bytes("receipts_dc.csv", comma, sizeof comma - 1, NULL, &r);
    EXPECT_ERRORS(&r, "line 2: receipt: amount: \"1,5\" is not a decimal number like -12.34");
    s_release(&r);

    /* Encoding names the reader takes, and those it does not. */
    bm_err_t err;
    CHECK(bm_parser_encoding_check("windows-1251", &err) == 0);
    CHECK(bm_parser_encoding_check("CP1256", &err) == 0);
    CHECK(bm_parser_encoding_check("UTF-16LE", &err) == 0);
    CHECK(bm_parser_encoding_check("utf-8", &err) == 0);
    CHECK(bm_parser_encoding_check("klingon-1", &err) == -1);
    CHECK_STR(err.msg, "\"klingon-1\" is not an encoding this system knows (see iconv -l)");
    CHECK(bm_parser_encoding_check("UTF-16", &err) == -1);
    CHECK_STR(err.msg, "\"UTF-16\" is not supported: it does not write ASCII as ASCII "
                       "(UTF-16LE and UTF-16BE are the exceptions read)");
    CHECK(bm_parser_encoding_check("windows-1251//IGNORE", &err) == -1);
    CHECK(bm_parser_for_source("receipts_pos2") != NULL && bm_parser_for_source("pos") == NULL);
}

/* Every column table fits the protobuf messages it fills. */
static void test_tables(void)
{
    bm_err_t err = {{0}};
    int rc = bm_parser_table_check(&err);
    if (rc < 0)
        fprintf(stderr, "parser table: %s\n", err.msg);
    CHECK(rc == 0);
}

static void test_file_names(void)
{
    static const struct { const char *name, *format; } cases[] = {
        {"people_count.csv", "people_count"},
        {"people_count_2026-11-02.csv", "people_count"},
        {"receipts_pos1.csv", "receipt"},
        {"queue.csv", "queue_ticket"},
        {"calls-0001.csv", "phone_call"},
        {"complaints.csv", "complaint"},
        {"customers_nov.csv", "customer_change"},
        {"surveys_kiosk.jsonl", "survey"},
        {"evaluations.jsonl", "evaluation"},
        {"receipts.csv.tmp", NULL},
        {"receipts.tmp", NULL},
        {"receipts_1.csv.part", NULL},
        {".receipts.csv", NULL},
        {".surveys.jsonl.swp", NULL},
        {"receipts.jsonl", NULL},
        {"surveys.csv", NULL},
        {"Receipts.csv", NULL},
        {"receipts.CSV", NULL},
        {"receipt.csv", NULL},
        {"notes.txt", NULL},
        {"csv", NULL},
        {"", NULL},
        {"dir/receipts.csv", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bm_parser_t *p = bm_parser_for_file(cases[i].name);
        if (cases[i].format) {
            CHECK(p != NULL);
            if (p)
                CHECK_STR(bm_parser_name(p), cases[i].format);
        } else if (p) {
            fprintf(stderr, "%s:%d: \"%s\" was taken as %s\n", __FILE__, __LINE__,
                    cases[i].name, bm_parser_name(p));
            bm_test_failures++;
        }
    }
    CHECK(bm_parser_for_file(NULL) == NULL);
}

/* The optional version column (CSV) and keys (JSON lines). */
static void test_versions(void)
{
    static const char complaints[] =
        "source_id,received_at,category,contact_point,channel,resolved_at,updated_at\n"
        "K-1,2026-11-02T09:00:00Z,waiting,checkout,in_person,,2026-11-02T09:05:00Z\n"
        "K-1,2026-11-02T09:00:00Z,waiting,checkout,in_person,2026-11-03T10:00:00Z,"
        "2026-11-03T10:00:00.250Z\n"
        "K-2,2026-11-02T10:00:00Z,product,checkout,phone,,\n"
        "K-3,2026-11-02T10:00:00Z,product,checkout,phone,,yesterday\n";
    result_t r;
    s_parse_bytes("complaints_v.csv", complaints, sizeof complaints - 1, NULL, &r);
    CHECK(r.rc == 0 && r.nrecs == 3 && r.nerrs == 1);
    if (r.nrecs == 3) {
        CHECK(r.recs[0]->version == s_t("2026-11-02T09:05:00Z"));
        CHECK(r.recs[1]->version == s_t("2026-11-03T10:00:00Z") + 250);
        CHECK(r.recs[1]->complaint->resolved_case ==
              BRANCHMARK__V1__COMPLAINT__RESOLVED_RESOLVED_AT_MS);
        CHECK(r.recs[2]->version == 0);   /* empty: not given */
    }
    CHECK(r.nerrs == 1 && r.err_lines[0] == 5 && strstr(r.errs[0], "updated_at") != NULL);
    s_release(&r);

    static const char tickets[] =
        "source_id;issued_at;called_at;served_at;service_point;revision\n"
        "Q-1;2026-11-02T09:00:00Z;;;desk 1;1\n"
        "Q-1;2026-11-02T09:00:00Z;2026-11-02T09:05:00Z;2026-11-02T09:12:00Z;desk 1;2\n"
        "Q-2;2026-11-02T09:00:00Z;;;desk 1;0\n"
        "Q-3;2026-11-02T09:00:00Z;;;desk 1;-4\n";
    s_parse_bytes("queue_v.csv", tickets, sizeof tickets - 1, NULL, &r);
    CHECK(r.rc == 0 && r.nrecs == 2 && r.nerrs == 2);
    if (r.nrecs == 2)
        CHECK(r.recs[0]->version == 1 && r.recs[1]->version == 2);
    CHECK(r.nerrs == 2 && strstr(r.errs[0], "revision: 0 is not a revision") != NULL);
    CHECK(r.nerrs == 2 && strstr(r.errs[1], "is not a whole number") != NULL);
    s_release(&r);

    /* Another name in the last place is still a wrong header. */
    static const char wrong[] = "source_id,at,amount,currency,version\nR-1,2026-11-02T09:00:00Z,"
                                "1.00,EUR,3\n";
    s_parse_bytes("receipts_v.csv", wrong, sizeof wrong - 1, NULL, &r);
    CHECK(r.nrecs == 0 && r.nerrs >= 1 && strstr(r.errs[0], "header") != NULL);
    s_release(&r);

    static const char surveys[] =
        "{\"source_id\":\"S-1\",\"responded_at\":\"2026-11-02T09:00:00Z\",\"nps\":9,"
        "\"revision\":3}\n"
        "{\"source_id\":\"S-2\",\"responded_at\":\"2026-11-02T09:00:00Z\",\"nps\":9,"
        "\"revision\":3,\"updated_at\":\"2026-11-02T09:00:00Z\"}\n";
    s_parse_bytes("surveys_v.jsonl", surveys, sizeof surveys - 1, NULL, &r);
    CHECK(r.nrecs == 1 && r.nrecs && r.recs[0]->version == 3);
    CHECK(r.nerrs == 1 && strstr(r.errs[0], "not both") != NULL);
    s_release(&r);
}

int main(void)
{
    snprintf(s_tmpdir, sizeof s_tmpdir, "%s/bm_test_parsers.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(s_tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_tables();
    test_file_names();
    test_csv_split();
    test_people_count();
    test_wrong_header();
    test_receipts();
    test_queue();
    test_calls();
    test_complaints();
    test_customers();
    test_surveys();
    test_evaluations();
    test_long_lines_and_edges();
    test_excel_semicolons();
    test_utf16();
    test_cp1251();
    test_encoding_edges();
    test_versions();

    static const char *const tmp_files[] = {"receipts_long.csv", "surveys_edge.jsonl",
        "calls_empty.csv", "calls_header.csv", "calls_wrong.csv", "people_count_big.csv",
        "receipts_qhdr.csv"};
    char path[512];
    for (size_t i = 0; i < sizeof tmp_files / sizeof tmp_files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", s_tmpdir, tmp_files[i]);
        unlink(path);
    }
    rmdir(s_tmpdir);

    if (bm_test_failures) {
        fprintf(stderr, "test_parsers: %d failure(s)\n", bm_test_failures);
        return 1;
    }
    printf("test_parsers: ok\n");
    return 0;
}
