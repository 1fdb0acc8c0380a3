/* bm_record: validation of one record, shared by agent and collector; see
 * bm_record.h.  The limits mirror the CHECK constraints of
 * collector/schema/migrations/001_core.sql, so that a record this module accepts
 * never fails a constraint in the database.  Owns nothing. */
#include "bm_record.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm_time.h"

#define BM_AMOUNT_MAX 1000000000000LL   /* 10^12 minor units */
#define BM_TEXT_SHORT 64                /* category, reason, segment, ... */
#define BM_TEXT_LONG 4000               /* why, comment */
#define BM_CSI_ITEMS_MAX 50
#define BM_ANSWERS_MAX 500
#define BM_DAY_SECONDS 86400

/* Times must at least be inside years 0001..9999 (also without a window):
 * the collector formats them for PostgreSQL, and bm_time_format is only
 * defined there. */
#define BM_TIME_MIN_MS (-62135596800000LL)  /* 0001-01-01T00:00:00Z */
#define BM_TIME_MAX_MS (253402300799999LL)  /* 9999-12-31T23:59:59.999Z */

typedef Branchmark__V1__Record__KindCase bm_case_t;

bm_kind_t bm_record_kind(const bm_record_t *r)
{
    if (!r)
        return BM_KIND_NONE;
    switch (r->kind_case) {
    case BRANCHMARK__V1__RECORD__KIND_PEOPLE_COUNT:
        return r->people_count ? BM_KIND_PEOPLE_COUNT : BM_KIND_NONE;
    case BRANCHMARK__V1__RECORD__KIND_RECEIPT:
        return r->receipt ? BM_KIND_RECEIPT : BM_KIND_NONE;
    case BRANCHMARK__V1__RECORD__KIND_QUEUE_TICKET:
        return r->queue_ticket ? BM_KIND_QUEUE_TICKET : BM_KIND_NONE;
    case BRANCHMARK__V1__RECORD__KIND_PHONE_CALL:
        return r->phone_call ? BM_KIND_PHONE_CALL : BM_KIND_NONE;
    case BRANCHMARK__V1__RECORD__KIND_COMPLAINT:
        return r->complaint ? BM_KIND_COMPLAINT : BM_KIND_NONE;
    case BRANCHMARK__V1__RECORD__KIND_SURVEY:
        return r->survey ? BM_KIND_SURVEY : BM_KIND_NONE;
    case BRANCHMARK__V1__RECORD__KIND_CUSTOMER_CHANGE:
        return r->customer_change ? BM_KIND_CUSTOMER_CHANGE : BM_KIND_NONE;
    case BRANCHMARK__V1__RECORD__KIND_EVALUATION:
        return r->evaluation ? BM_KIND_EVALUATION : BM_KIND_NONE;
    default:
        return BM_KIND_NONE;
    }
}

const char *bm_kind_name(bm_kind_t kind)
{
    static const char *const names[BM_KIND_COUNT] = {
        "none", "people_count", "receipt", "queue_ticket", "phone_call",
        "complaint", "survey", "customer_change", "evaluation",
    };
    return (unsigned)kind < BM_KIND_COUNT ? names[kind] : "none";
}

/* Strict UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).  Counts
 * code points into *chars, because PostgreSQL's length() counts characters.
 * With no_controls, C0, DEL and C1 control characters are refused too. */
static bool s_utf8(const char *str, size_t *chars, bool no_controls)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = 0;
    while (*s) {
        unsigned c = *s;
        uint32_t cp;
        int extra;
        if (c < 0x80) {
            if (no_controls && (c < 0x20 || c == 0x7f))
                return false;
            s++;
            n++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            cp = c & 0x1f, extra = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            cp = c & 0x0f, extra = 2;
        } else if (c >= 0xf0 && c <= 0xf4) {
            cp = c & 0x07, extra = 3;
        } else {
            return false;
        }
        for (int i = 1; i <= extra; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        if (no_controls && cp >= 0x80 && cp <= 0x9f)
            return false;
        s += extra + 1;
        n++;
    }
    *chars = n;
    return true;
}

/* Checks one text field: valid UTF-8 of min..max characters. */
static int s_text(const char *kind, const char *field, const char *s, size_t min, size_t max,
                  bm_err_t *err)
{
    size_t n;
    if (!s)
        s = "";
    if (!s_utf8(s, &n, false))
        return bm_err_set(err, "%s: %s: is not valid UTF-8", kind, field);
    if (n < min)
        return min == 1 ? bm_err_set(err, "%s: %s: must not be empty", kind, field)
                        : bm_err_set(err, "%s: %s: is shorter than %zu characters", kind,
                                     field, min);
    if (n > max)
        return bm_err_set(err, "%s: %s: %zu characters exceed the limit of %zu", kind, field,
                          n, max);
    return 0;
}

static int s_code(const char *kind, const char *field, const char *s, size_t max,
                  bm_err_t *err)
{
    if (!bm_code_valid(s, max)) {
        size_t n;
        if (!s || !*s)
            return bm_err_set(err, "%s: %s: must not be empty", kind, field);
        if (!s_utf8(s, &n, true) || strlen(s) > 64)
            return bm_err_set(err, "%s: %s: is not a valid code (1..%zu of [A-Za-z0-9_.-])",
                              kind, field, max);
        return bm_err_set(err, "%s: %s: \"%s\" is not a valid code (1..%zu of [A-Za-z0-9_.-])",
                          kind, field, s, max);
    }
    return 0;
}

/* "400 days", "2 hours", ...: the largest unit that divides d exactly. */
static void s_duration_text(int64_t d, char *buf, size_t size)
{
    static const struct { int64_t ms; const char *name; } units[] = {
        {86400000, "day"}, {3600000, "hour"}, {60000, "minute"}, {1000, "second"}, {1, "millisecond"},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (d % units[i].ms == 0) {
            int64_t n = d / units[i].ms;
            snprintf(buf, size, "%" PRId64 " %s%s", n, units[i].name, n == 1 ? "" : "s");
            return;
        }
    }
    snprintf(buf, size, "%" PRId64 " ms", d);
}

static int s_time(const char *kind, const char *field, int64_t t,
                  const bm_time_window_t *w, bm_err_t *err)
{
    if (t < BM_TIME_MIN_MS || t > BM_TIME_MAX_MS)
        return bm_err_set(err, "%s: %s: %" PRId64 " ms is outside the years 0001..9999", kind,
                          field, t);
    if (!w)
        return 0;
    char when[40], span[40];
    /* Saturating: a window of "any age" may be given as INT64_MAX. */
    int64_t lo = w->max_age_ms > w->now_ms - BM_TIME_MIN_MS ? BM_TIME_MIN_MS
                                                            : w->now_ms - w->max_age_ms;
    int64_t hi = w->max_future_ms > BM_TIME_MAX_MS - w->now_ms ? BM_TIME_MAX_MS
                                                               : w->now_ms + w->max_future_ms;
    if (t < lo) {
        s_duration_text(w->max_age_ms, span, sizeof span);
        return bm_err_set(err, "%s: %s: %s is outside the accepted window (more than %s in the past)",
                          kind, field, bm_time_format(t, when, sizeof when), span);
    }
    if (t > hi) {
        s_duration_text(w->max_future_ms, span, sizeof span);
        return bm_err_set(err, "%s: %s: %s is outside the accepted window (more than %s in the future)",
                          kind, field, bm_time_format(t, when, sizeof when), span);
    }
    return 0;
}

static int s_order(const char *kind, const char *later, int64_t t_later, const char *earlier,
                   int64_t t_earlier, bm_err_t *err)
{
    if (t_later < t_earlier) {
        char a[40], b[40];
        return bm_err_set(err, "%s: %s: %s is before %s %s", kind, later,
                          bm_time_format(t_later, a, sizeof a), earlier,
                          bm_time_format(t_earlier, b, sizeof b));
    }
    return 0;
}

/* Counts are int columns in the database. */
static int s_count(const char *kind, const char *field, uint32_t v, uint32_t min, uint32_t max,
                   bm_err_t *err)
{
    if (v < min || v > max)
        return bm_err_set(err, "%s: %s: %" PRIu32 " is out of range %" PRIu32 "..%" PRIu32, kind,
                          field, v, min, max);
    return 0;
}

static int s_people_count(const char *k, const Branchmark__V1__PeopleCount *p,
                          const bm_time_window_t *w, bm_err_t *err)
{
    if (s_time(k, "interval_start", p->interval_start_ms, w, err) < 0 ||
        s_count(k, "interval_seconds", p->interval_seconds, 1, BM_DAY_SECONDS, err) < 0 ||
        s_count(k, "passers_by", p->passers_by, 0, INT32_MAX, err) < 0 ||
        s_count(k, "entrants", p->entrants, 0, INT32_MAX, err) < 0)
        return -1;
    return 0;
}

static int s_receipt(const char *k, const Branchmark__V1__Receipt *p, const bm_time_window_t *w,
                     bm_err_t *err)
{
    if (s_time(k, "at", p->at_ms, w, err) < 0)
        return -1;
    const char *c = p->currency ? p->currency : "";
    bool ok = strlen(c) == 3;
    for (int i = 0; ok && i < 3; i++)
        ok = c[i] >= 'A' && c[i] <= 'Z';
    if (!ok) {
        size_t n;
        if (s_utf8(c, &n, true) && n <= 16)
            return bm_err_set(err, "%s: currency: \"%s\" is not an ISO 4217 code (three upper-case letters)",
                              k, c);
        return bm_err_set(err, "%s: currency: is not an ISO 4217 code (three upper-case letters)", k);
    }
    if (p->amount_minor > BM_AMOUNT_MAX || p->amount_minor < -BM_AMOUNT_MAX)
        return bm_err_set(err, "%s: amount: %" PRId64 " minor units is out of range -%lld..%lld", k,
                          p->amount_minor, BM_AMOUNT_MAX, BM_AMOUNT_MAX);
    return 0;
}

static int s_queue_ticket(const char *k, const Branchmark__V1__QueueTicket *p,
                          const bm_time_window_t *w, bm_err_t *err)
{
    bool called = p->called_case == BRANCHMARK__V1__QUEUE_TICKET__CALLED_CALLED_AT_MS;
    bool served = p->served_case == BRANCHMARK__V1__QUEUE_TICKET__SERVED_SERVED_AT_MS;
    if (s_time(k, "issued_at", p->issued_at_ms, w, err) < 0 ||
        (called && s_time(k, "called_at", p->called_at_ms, w, err) < 0) ||
        (served && s_time(k, "served_at", p->served_at_ms, w, err) < 0))
        return -1;
    if (served && !called)
        return bm_err_set(err, "%s: served_at: a ticket cannot be served without being called", k);
    if ((called && s_order(k, "called_at", p->called_at_ms, "issued_at", p->issued_at_ms, err) < 0) ||
        (served && s_order(k, "served_at", p->served_at_ms, "called_at", p->called_at_ms, err) < 0))
        return -1;
    return s_text(k, "service_point", p->service_point, 0, BM_TEXT_SHORT, err);
}

static int s_phone_call(const char *k, const Branchmark__V1__PhoneCall *p,
                        const bm_time_window_t *w, bm_err_t *err)
{
    if (s_time(k, "ring_start", p->ring_start_ms, w, err) < 0)
        return -1;
    return s_count(k, "wait_seconds", p->wait_seconds, 0, BM_DAY_SECONDS, err);
}

static int s_complaint(const char *k, const Branchmark__V1__Complaint *p,
                       const bm_time_window_t *w, bm_err_t *err)
{
    bool resolved = p->resolved_case == BRANCHMARK__V1__COMPLAINT__RESOLVED_RESOLVED_AT_MS;
    if (s_time(k, "received_at", p->received_at_ms, w, err) < 0 ||
        (resolved && s_time(k, "resolved_at", p->resolved_at_ms, w, err) < 0) ||
        (resolved &&
         s_order(k, "resolved_at", p->resolved_at_ms, "received_at", p->received_at_ms, err) < 0))
        return -1;
    if (s_text(k, "category", p->category, 1, BM_TEXT_SHORT, err) < 0 ||
        s_text(k, "contact_point", p->contact_point, 1, BM_TEXT_SHORT, err) < 0 ||
        s_text(k, "channel", p->channel, 1, 32, err) < 0)
        return -1;
    return 0;
}

static int s_survey(const char *k, const Branchmark__V1__SurveyResponse *p,
                    const bm_time_window_t *w, bm_err_t *err)
{
    bool has_nps = p->nps_answer_case == BRANCHMARK__V1__SURVEY_RESPONSE__NPS_ANSWER_NPS;
    if (s_time(k, "responded_at", p->responded_at_ms, w, err) < 0)
        return -1;
    if (has_nps && p->nps > 10)
        return bm_err_set(err, "%s: nps: %" PRIu32 " is out of range 0..10", k, p->nps);
    if (!has_nps && p->n_csi == 0)
        return bm_err_set(err, "%s: has neither nps nor csi", k);
    if (p->n_csi > BM_CSI_ITEMS_MAX)
        return bm_err_set(err, "%s: csi: %zu items exceed the limit of %d", k, p->n_csi,
                          BM_CSI_ITEMS_MAX);
    for (size_t i = 0; i < p->n_csi; i++) {
        const Branchmark__V1__CsiScore *c = p->csi[i];
        if (!c)
            return bm_err_set(err, "%s: csi: item %zu is missing", k, i);
        if (s_text(k, "csi: item", c->item, 1, BM_TEXT_SHORT, err) < 0)
            return -1;
        if (c->scale_max < 2 || c->scale_max > 10)
            return bm_err_set(err, "%s: csi: %s: scale_max %" PRIu32 " is out of range 2..10", k,
                              c->item, c->scale_max);
        if (c->score < 1 || c->score > c->scale_max)
            return bm_err_set(err, "%s: csi: %s: score %" PRIu32 " is out of range 1..%" PRIu32, k,
                              c->item, c->score, c->scale_max);
        for (size_t j = 0; j < i; j++)
            if (p->csi[j] && strcmp(p->csi[j]->item, c->item) == 0)
                return bm_err_set(err, "%s: csi: item \"%s\" appears twice", k, c->item);
    }
    if (s_text(k, "why", p->why, 0, BM_TEXT_LONG, err) < 0 ||
        s_text(k, "segment", p->segment, 0, BM_TEXT_SHORT, err) < 0 ||
        s_text(k, "channel", p->survey_channel, 0, 32, err) < 0)
        return -1;
    return 0;
}

static int s_customer_change(const char *k, const Branchmark__V1__CustomerChange *p,
                             const bm_time_window_t *w, bm_err_t *err)
{
    if (s_time(k, "at", p->at_ms, w, err) < 0)
        return -1;
    if (p->kind == BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_LOST) {
        if (s_text(k, "reason", p->reason, 1, BM_TEXT_SHORT, err) < 0)
            return bm_err_set(err, "%s: reason: is required for a lost customer (1..64 characters)",
                              k);
    } else if (p->kind == BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_GAINED) {
        if (s_text(k, "reason", p->reason, 0, BM_TEXT_SHORT, err) < 0)
            return -1;
    } else {
        return bm_err_set(err, "%s: kind: must be gained or lost", k);
    }
    return s_text(k, "segment", p->segment, 0, BM_TEXT_SHORT, err);
}

static int s_evaluation(const char *k, const Branchmark__V1__ShopperEvaluation *p,
                        const bm_time_window_t *w, bm_err_t *err)
{
    if (s_code(k, "questionnaire", p->questionnaire_code, BM_CODE_MAX, err) < 0)
        return -1;
    if (p->questionnaire_version < 1 || p->questionnaire_version > INT32_MAX)
        return bm_err_set(err, "%s: version: %" PRIu32 " is out of range 1..%d", k,
                          p->questionnaire_version, INT32_MAX);
    if (p->channel != BRANCHMARK__V1__CHANNEL__CHANNEL_VISIT &&
        p->channel != BRANCHMARK__V1__CHANNEL__CHANNEL_CALL &&
        p->channel != BRANCHMARK__V1__CHANNEL__CHANNEL_ONLINE)
        return bm_err_set(err, "%s: channel: must be visit, call or online", k);
    if (p->outlet_kind != BRANCHMARK__V1__OUTLET_KIND__OUTLET_KIND_BRANCH &&
        p->outlet_kind != BRANCHMARK__V1__OUTLET_KIND__OUTLET_KIND_COMPETITOR)
        return bm_err_set(err, "%s: outlet: must be a branch or a competitor", k);
    if (s_code(k, "outlet", p->outlet_code, BM_CODE_MAX, err) < 0)
        return -1;
    if (s_time(k, "visited_at", p->visited_at_ms, w, err) < 0)
        return -1;
    if (p->submitted_at_ms != 0 &&
        (s_time(k, "submitted_at", p->submitted_at_ms, w, err) < 0 ||
         s_order(k, "submitted_at", p->submitted_at_ms, "visited_at", p->visited_at_ms, err) < 0))
        return -1;
    if (s_text(k, "scenario", p->scenario, 0, BM_TEXT_SHORT, err) < 0 ||
        s_text(k, "shopper_segment", p->shopper_segment, 0, BM_TEXT_SHORT, err) < 0 ||
        s_text(k, "shopper", p->shopper_ref, 0, BM_TEXT_SHORT, err) < 0)
        return -1;
    if (p->n_answers < 1)
        return bm_err_set(err, "%s: answers: must have at least one answer", k);
    if (p->n_answers > BM_ANSWERS_MAX)
        return bm_err_set(err, "%s: answers: %zu answers exceed the limit of %d", k,
                          p->n_answers, BM_ANSWERS_MAX);
    for (size_t i = 0; i < p->n_answers; i++) {
        const Branchmark__V1__Answer *a = p->answers[i];
        if (!a)
            return bm_err_set(err, "%s: answers: answer %zu is missing", k, i + 1);
        if (!bm_code_valid(a->item_code, BM_CODE_MAX)) {
            size_t n;
            if (!a->item_code || !*a->item_code)
                return bm_err_set(err, "%s: answers: answer %zu: item: must not be empty", k,
                                  i + 1);
            if (s_utf8(a->item_code, &n, true) && n <= 64)
                return bm_err_set(err, "%s: answers: answer %zu: item: \"%s\" is not a valid code",
                                  k, i + 1, a->item_code);
            return bm_err_set(err, "%s: answers: answer %zu: item: is not a valid code", k, i + 1);
        }
        switch (a->value_case) {
        case BRANCHMARK__V1__ANSWER__VALUE_POINTS:
            if (!isfinite(a->points) || a->points < 0)
                return bm_err_set(err, "%s: answers: %s: points: %g must be a finite number >= 0",
                                  k, a->item_code, a->points);
            break;
        case BRANCHMARK__V1__ANSWER__VALUE_NOT_APPLICABLE:
            if (!a->not_applicable)
                return bm_err_set(err, "%s: answers: %s: na: must be true when given", k,
                                  a->item_code);
            break;
        default:
            return bm_err_set(err, "%s: answers: %s: has neither points nor na", k, a->item_code);
        }
        size_t n;
        if (!s_utf8(a->comment ? a->comment : "", &n, false))
            return bm_err_set(err, "%s: answers: %s: comment: is not valid UTF-8", k,
                              a->item_code);
        if (n > BM_TEXT_LONG)
            return bm_err_set(err, "%s: answers: %s: comment: %zu characters exceed the limit of %d",
                              k, a->item_code, n, BM_TEXT_LONG);
        for (size_t j = 0; j < i; j++)
            if (p->answers[j] && strcmp(p->answers[j]->item_code, a->item_code) == 0)
                return bm_err_set(err, "%s: answers: item \"%s\" is answered twice", k,
                                  a->item_code);
    }
    return 0;
}

/* A record without a kind this side knows: a newer client's kind arrives
 * as an unknown field (protobuf keeps it), which is named. */
static int s_no_kind(const bm_record_t *r, bm_err_t *err)
{
    for (unsigned i = 0; r && i < r->base.n_unknown_fields; i++) {
        uint32_t tag = r->base.unknown_fields[i].tag;
        if (tag >= 10)
            return bm_err_set(err, "record: kind: field %" PRIu32 " is not a record kind of "
                              "protocol version %d (those are fields 10..17); this record "
                              "is refused, the others of the batch are not affected", tag,
                              BM_PROTOCOL_VERSION);
    }
    return bm_err_set(err, "record: has no kind");
}

int bm_record_validate(const bm_record_t *r, const bm_time_window_t *window, bm_err_t *err)
{
    bm_kind_t kind = bm_record_kind(r);
    if (kind == BM_KIND_NONE)
        return s_no_kind(r, err);
    const char *k = bm_kind_name(kind);

    const char *sid = r->source_id ? r->source_id : "";
    size_t sid_len = strlen(sid), chars;
    if (sid_len == 0)
        return bm_err_set(err, "%s: source_id: must not be empty", k);
    if (sid_len > BM_SOURCE_ID_MAX)
        return bm_err_set(err, "%s: source_id: %zu bytes exceed the limit of %d", k, sid_len,
                          BM_SOURCE_ID_MAX);
    if (!s_utf8(sid, &chars, true))
        return bm_err_set(err, "%s: source_id: is not valid UTF-8 or contains control characters",
                          k);
    /* 0 = no version given; the collector compares versions as numbers. */
    if (r->version < 0)
        return bm_err_set(err, "%s: version: %" PRId64 " is negative", k, r->version);

    switch (kind) {
    case BM_KIND_PEOPLE_COUNT:
        return s_people_count(k, r->people_count, window, err);
    case BM_KIND_RECEIPT:
        return s_receipt(k, r->receipt, window, err);
    case BM_KIND_QUEUE_TICKET:
        return s_queue_ticket(k, r->queue_ticket, window, err);
    case BM_KIND_PHONE_CALL:
        return s_phone_call(k, r->phone_call, window, err);
    case BM_KIND_COMPLAINT:
        return s_complaint(k, r->complaint, window, err);
    case BM_KIND_SURVEY:
        return s_survey(k, r->survey, window, err);
    case BM_KIND_CUSTOMER_CHANGE:
        return s_customer_change(k, r->customer_change, window, err);
    case BM_KIND_EVALUATION:
        return s_evaluation(k, r->evaluation, window, err);
    default:
        return bm_err_set(err, "record: has no kind");
    }
}

int64_t bm_record_time_ms(const bm_record_t *r)
{
    switch (bm_record_kind(r)) {
    case BM_KIND_PEOPLE_COUNT:
        return r->people_count->interval_start_ms;
    case BM_KIND_RECEIPT:
        return r->receipt->at_ms;
    case BM_KIND_QUEUE_TICKET:
        return r->queue_ticket->issued_at_ms;
    case BM_KIND_PHONE_CALL:
        return r->phone_call->ring_start_ms;
    case BM_KIND_COMPLAINT:
        return r->complaint->received_at_ms;
    case BM_KIND_SURVEY:
        return r->survey->responded_at_ms;
    case BM_KIND_CUSTOMER_CHANGE:
        return r->customer_change->at_ms;
    case BM_KIND_EVALUATION:
        return r->evaluation->visited_at_ms;
    default:
        return 0;
    }
}

/* Records built by the parsers use the generated __INIT values, strdup'ed
 * strings and malloc'ed submessages and arrays, exactly the layout
 * protobuf_c_message_unpack produces with the default allocator, so the
 * library's own deep free applies (it skips the shared empty-string default). */
void bm_record_free(bm_record_t **r_p)
{
    if (r_p && *r_p) {
        protobuf_c_message_free_unpacked(&(*r_p)->base, NULL);
        *r_p = NULL;
    }
}
