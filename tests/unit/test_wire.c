/* test_wire: the envelope codec (common/bm_wire.c) and the shared record
 * validation (common/bm_record.c).  Round trip of every record kind,
 * truncated and mutated frames, the size limit, each header rule and each
 * record rule, the encoding scan (NUL bytes, split batches, cut numbers),
 * unknown record kinds and the UTF-8 helpers replies are built with. */
#include "bm_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm_record.h"
#include "bm_time.h"
#include "bm_wire.h"

#define T0 1793952000000LL   /* 2026-11-06T08:00:00Z */

static const bm_time_window_t WINDOW = {T0 + 86400000LL, 400LL * 86400000, 86400000LL};

/* ---- a sample batch with every kind, built on the stack ---------------- */

typedef struct {
    Branchmark__V1__PeopleCount pc;
    Branchmark__V1__Receipt rc;
    Branchmark__V1__QueueTicket qt;
    Branchmark__V1__PhoneCall ph;
    Branchmark__V1__Complaint co;
    Branchmark__V1__CsiScore csi[2];
    Branchmark__V1__CsiScore *csi_p[2];
    Branchmark__V1__SurveyResponse sv;
    Branchmark__V1__CustomerChange cc;
    Branchmark__V1__Answer ans[2];
    Branchmark__V1__Answer *ans_p[2];
    Branchmark__V1__ShopperEvaluation ev;
    bm_record_t rec[8];
    bm_record_t *rec_p[8];
    bm_batch_t batch;
    bm_envelope_t env;
} sample_t;

static void s_sample(sample_t *s)
{
    memset(s, 0, sizeof *s);
    s->pc = (Branchmark__V1__PeopleCount)BRANCHMARK__V1__PEOPLE_COUNT__INIT;
    s->pc.interval_start_ms = T0;
    s->pc.interval_seconds = 900;
    s->pc.passers_by = 120;
    s->pc.entrants = 14;

    s->rc = (Branchmark__V1__Receipt)BRANCHMARK__V1__RECEIPT__INIT;
    s->rc.at_ms = T0 + 1;
    s->rc.amount_minor = -1234;
    s->rc.currency = "EUR";

    s->qt = (Branchmark__V1__QueueTicket)BRANCHMARK__V1__QUEUE_TICKET__INIT;
    s->qt.issued_at_ms = T0;
    s->qt.called_case = BRANCHMARK__V1__QUEUE_TICKET__CALLED_CALLED_AT_MS;
    s->qt.called_at_ms = T0 + 60000;
    s->qt.served_case = BRANCHMARK__V1__QUEUE_TICKET__SERVED_SERVED_AT_MS;
    s->qt.served_at_ms = T0 + 300000;
    s->qt.service_point = "desk 1";

    s->ph = (Branchmark__V1__PhoneCall)BRANCHMARK__V1__PHONE_CALL__INIT;
    s->ph.ring_start_ms = T0;
    s->ph.answered = 1;
    s->ph.wait_seconds = 12;

    s->co = (Branchmark__V1__Complaint)BRANCHMARK__V1__COMPLAINT__INIT;
    s->co.received_at_ms = T0;
    s->co.category = "waiting";
    s->co.contact_point = "checkout";
    s->co.channel = "in_person";
    s->co.resolved_case = BRANCHMARK__V1__COMPLAINT__RESOLVED_RESOLVED_AT_MS;
    s->co.resolved_at_ms = T0 + 3600000;

    for (int i = 0; i < 2; i++) {
        s->csi[i] = (Branchmark__V1__CsiScore)BRANCHMARK__V1__CSI_SCORE__INIT;
        s->csi[i].item = i ? "speed" : "friendliness";
        s->csi[i].score = (uint32_t)(5 - i);
        s->csi[i].scale_max = 5;
        s->csi_p[i] = &s->csi[i];
    }
    s->sv = (Branchmark__V1__SurveyResponse)BRANCHMARK__V1__SURVEY_RESPONSE__INIT;
    s->sv.responded_at_ms = T0;
    s->sv.nps_answer_case = BRANCHMARK__V1__SURVEY_RESPONSE__NPS_ANSWER_NPS;
    s->sv.nps = 9;
    s->sv.n_csi = 2;
    s->sv.csi = s->csi_p;
    s->sv.why = "quick and kind \xc3\xa9";
    s->sv.segment = "family";
    s->sv.survey_channel = "kiosk";

    s->cc = (Branchmark__V1__CustomerChange)BRANCHMARK__V1__CUSTOMER_CHANGE__INIT;
    s->cc.at_ms = T0;
    s->cc.kind = BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_LOST;
    s->cc.reason = "moved_away";

    for (int i = 0; i < 2; i++) {
        s->ans[i] = (Branchmark__V1__Answer)BRANCHMARK__V1__ANSWER__INIT;
        s->ans[i].item_code = i ? "G2" : "G1";
        s->ans_p[i] = &s->ans[i];
    }
    s->ans[0].value_case = BRANCHMARK__V1__ANSWER__VALUE_POINTS;
    s->ans[0].points = 0.5;
    s->ans[0].comment = "ok";
    s->ans[1].value_case = BRANCHMARK__V1__ANSWER__VALUE_NOT_APPLICABLE;
    s->ans[1].not_applicable = 1;
    s->ev = (Branchmark__V1__ShopperEvaluation)BRANCHMARK__V1__SHOPPER_EVALUATION__INIT;
    s->ev.questionnaire_code = "STORE";
    s->ev.questionnaire_version = 1;
    s->ev.channel = BRANCHMARK__V1__CHANNEL__CHANNEL_VISIT;
    s->ev.scenario = "first_purchase";
    s->ev.outlet_kind = BRANCHMARK__V1__OUTLET_KIND__OUTLET_KIND_COMPETITOR;
    s->ev.outlet_code = "C001";
    s->ev.visited_at_ms = T0;
    s->ev.submitted_at_ms = T0 + 4 * 3600000LL;
    s->ev.shopper_ref = "SH042";
    s->ev.n_answers = 2;
    s->ev.answers = s->ans_p;

    static const char *const ids[8] = {"P-1", "R-1", "Q-1", "C-1", "K-1", "S-1", "U-1", "E-1"};
    for (int i = 0; i < 8; i++) {
        s->rec[i] = (bm_record_t)BRANCHMARK__V1__RECORD__INIT;
        s->rec[i].source_id = (char *)ids[i];
        s->rec_p[i] = &s->rec[i];
    }
    s->rec[0].kind_case = BRANCHMARK__V1__RECORD__KIND_PEOPLE_COUNT, s->rec[0].people_count = &s->pc;
    s->rec[1].kind_case = BRANCHMARK__V1__RECORD__KIND_RECEIPT, s->rec[1].receipt = &s->rc;
    s->rec[2].kind_case = BRANCHMARK__V1__RECORD__KIND_QUEUE_TICKET, s->rec[2].queue_ticket = &s->qt;
    s->rec[3].kind_case = BRANCHMARK__V1__RECORD__KIND_PHONE_CALL, s->rec[3].phone_call = &s->ph;
    s->rec[4].kind_case = BRANCHMARK__V1__RECORD__KIND_COMPLAINT, s->rec[4].complaint = &s->co;
    s->rec[5].kind_case = BRANCHMARK__V1__RECORD__KIND_SURVEY, s->rec[5].survey = &s->sv;
    s->rec[6].kind_case = BRANCHMARK__V1__RECORD__KIND_CUSTOMER_CHANGE, s->rec[6].customer_change = &s->cc;
    s->rec[7].kind_case = BRANCHMARK__V1__RECORD__KIND_EVALUATION, s->rec[7].evaluation = &s->ev;

    s->batch = (bm_batch_t)BRANCHMARK__V1__BATCH__INIT;
    s->batch.n_records = 8;
    s->batch.records = s->rec_p;

    s->env = (bm_envelope_t)BRANCHMARK__V1__ENVELOPE__INIT;
    s->env.protocol_version = BM_PROTOCOL_VERSION;
    s->env.agent_id = "agent-b001";
    s->env.branch_code = "B001";
    s->env.stream_id = "0123456789abcdef0123456789abcdef";
    s->env.sequence = 7;
    s->env.sent_at_ms = T0 + 5;
    s->env.body_case = BRANCHMARK__V1__ENVELOPE__BODY_BATCH;
    s->env.batch = &s->batch;
}

static void test_round_trip(void)
{
    sample_t s;
    s_sample(&s);
    bm_err_t err;
    for (int i = 0; i < 8; i++) {
        int rc = bm_record_validate(&s.rec[i], &WINDOW, &err);
        if (rc != 0)
            fprintf(stderr, "record %d: %s\n", i, err.msg);
        CHECK(rc == 0);
    }
    CHECK(bm_envelope_check(&s.env, NULL, &err) == 0);

    size_t len = 0;
    uint8_t *buf = bm_message_encode(&s.env.base, &len);
    CHECK(buf != NULL && len > 0);
    bm_envelope_t *d = bm_envelope_decode(buf, len, BM_MAX_FRAME_DEFAULT, &err);
    CHECK(d != NULL);
    if (d) {
        Branchmark__V1__ErrorCode code = 99;
        CHECK(bm_envelope_check(d, &code, &err) == 0);
        CHECK(d->protocol_version == 1 && d->sequence == 7 && d->sent_at_ms == T0 + 5);
        CHECK(strcmp(d->agent_id, "agent-b001") == 0 && strcmp(d->branch_code, "B001") == 0);
        CHECK(strcmp(d->stream_id, s.env.stream_id) == 0);
        CHECK(d->body_case == BRANCHMARK__V1__ENVELOPE__BODY_BATCH && d->batch->n_records == 8);
        bm_record_t **r = d->batch->records;
        for (int i = 0; i < 8; i++) {
            CHECK(bm_record_kind(r[i]) == (bm_kind_t)(BM_KIND_PEOPLE_COUNT + i));
            CHECK(strcmp(r[i]->source_id, s.rec[i].source_id) == 0);
            CHECK(bm_record_validate(r[i], &WINDOW, &err) == 0);
            CHECK(bm_record_time_ms(r[i]) == bm_record_time_ms(&s.rec[i]));
        }
        CHECK(r[0]->people_count->interval_seconds == 900 && r[0]->people_count->entrants == 14 &&
              r[0]->people_count->passers_by == 120);
        CHECK(r[1]->receipt->amount_minor == -1234 && strcmp(r[1]->receipt->currency, "EUR") == 0);
        CHECK(r[2]->queue_ticket->called_case == BRANCHMARK__V1__QUEUE_TICKET__CALLED_CALLED_AT_MS);
        CHECK(r[2]->queue_ticket->served_at_ms == T0 + 300000);
        CHECK(strcmp(r[2]->queue_ticket->service_point, "desk 1") == 0);
        CHECK(r[3]->phone_call->answered && r[3]->phone_call->wait_seconds == 12);
        CHECK(r[4]->complaint->resolved_at_ms == T0 + 3600000 &&
              strcmp(r[4]->complaint->channel, "in_person") == 0);
        CHECK(r[5]->survey->nps_answer_case == BRANCHMARK__V1__SURVEY_RESPONSE__NPS_ANSWER_NPS &&
              r[5]->survey->nps == 9);
        CHECK(r[5]->survey->n_csi == 2 && strcmp(r[5]->survey->csi[1]->item, "speed") == 0 &&
              r[5]->survey->csi[1]->score == 4 && r[5]->survey->csi[1]->scale_max == 5);
        CHECK(strcmp(r[5]->survey->why, "quick and kind \xc3\xa9") == 0);
        CHECK(r[6]->customer_change->kind == BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_LOST &&
              strcmp(r[6]->customer_change->reason, "moved_away") == 0);
        Branchmark__V1__ShopperEvaluation *e = r[7]->evaluation;
        CHECK(e->n_answers == 2 && e->answers[0]->points == 0.5 &&
              e->answers[1]->value_case == BRANCHMARK__V1__ANSWER__VALUE_NOT_APPLICABLE);
        CHECK(e->outlet_kind == BRANCHMARK__V1__OUTLET_KIND__OUTLET_KIND_COMPETITOR &&
              strcmp(e->outlet_code, "C001") == 0 && e->submitted_at_ms == T0 + 4 * 3600000LL);
    }
    bm_envelope_free(&d);
    bm_envelope_free(&d);  /* safe twice */
    CHECK(d == NULL);

    /* Oversize: one byte over the limit is refused before decoding. */
    CHECK(bm_envelope_decode(buf, len, len - 1, &err) == NULL);
    char want[120];
    snprintf(want, sizeof want, "frame of %zu bytes exceeds the limit of %zu", len, len - 1);
    CHECK(strcmp(err.msg, want) == 0);
    d = bm_envelope_decode(buf, len, len, &err);
    CHECK(d != NULL);
    bm_envelope_free(&d);

    /* Every prefix either fails to decode or decodes to an envelope that the
     * header check refuses: a cut frame is never taken for a whole one. */
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1);   /* exact size: ASan sees over-reads */
        memcpy(copy, buf, n);
        bm_envelope_t *t = bm_envelope_decode(copy, n, BM_MAX_FRAME_DEFAULT, &err);
        if (t) {
            CHECK(bm_envelope_check(t, NULL, &err) < 0);
            bm_envelope_free(&t);
        } else {
            CHECK(strstr(err.msg, "truncated or malformed envelope") != NULL);
        }
        free(copy);
    }

    /* Mutated frames never crash, whatever they decode to. */
    unsigned seed = 12345;
    for (int iter = 0; iter < 3000; iter++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, buf, len);
        for (int k = 0; k < 1 + iter % 4; k++) {
            seed = seed * 1103515245u + 12345u;
            copy[(seed >> 8) % len] = (uint8_t)(seed >> 20);
        }
        bm_envelope_t *t = bm_envelope_decode(copy, len, BM_MAX_FRAME_DEFAULT, &err);
        if (t) {
            if (bm_envelope_check(t, NULL, &err) == 0)
                for (size_t i = 0; i < t->batch->n_records; i++) {
                    (void)bm_record_validate(t->batch->records[i], &WINDOW, &err);
                    (void)bm_record_validate(t->batch->records[i], NULL, &err);
                }
            bm_envelope_free(&t);
        }
        free(copy);
    }
    free(buf);

    /* Garbage is malformed. */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff};
    CHECK(bm_envelope_decode(junk, sizeof junk, 100, &err) == NULL);
    CHECK(strcmp(err.msg, "truncated or malformed envelope (5 bytes)") == 0);
}

static void test_reply(void)
{
    Branchmark__V1__RecordRejection rej = BRANCHMARK__V1__RECORD_REJECTION__INIT;
    Branchmark__V1__RecordRejection *rej_p = &rej;
    rej.index = 3;
    rej.source_id = "S-9";
    rej.reason = "survey: nps: 11 is out of range 0..10";
    Branchmark__V1__Ack ack = BRANCHMARK__V1__ACK__INIT;
    ack.stored = 5;
    ack.duplicates = 1;
    ack.n_rejected = 1;
    ack.rejected = &rej_p;
    bm_reply_t reply = BRANCHMARK__V1__REPLY__INIT;
    reply.stream_id = "0123456789abcdef0123456789abcdef";
    reply.sequence = 4;
    reply.collector_time_ms = T0;
    reply.result_case = BRANCHMARK__V1__REPLY__RESULT_ACK;
    reply.ack = &ack;
    size_t len;
    uint8_t *buf = bm_message_encode(&reply.base, &len);
    bm_err_t err;
    bm_reply_t *d = bm_reply_decode(buf, len, 1 << 20, &err);
    CHECK(d && d->result_case == BRANCHMARK__V1__REPLY__RESULT_ACK && d->ack->stored == 5 &&
          d->ack->n_rejected == 1 && d->ack->rejected[0]->index == 3 &&
          strcmp(d->ack->rejected[0]->reason, rej.reason) == 0);
    bm_reply_free(&d);
    CHECK(d == NULL);
    CHECK(bm_reply_decode(buf, len, 2, &err) == NULL);
    CHECK_ERR(err, "exceeds the limit of 2");
    free(buf);

    /* An all-default message encodes to zero bytes, not to NULL. */
    bm_reply_t empty = BRANCHMARK__V1__REPLY__INIT;
    buf = bm_message_encode(&empty.base, &len);
    CHECK(buf != NULL && len == 0);
    d = bm_reply_decode(buf, 0, 10, &err);
    CHECK(d != NULL);
    bm_reply_free(&d);
    free(buf);
}

static void test_header_rules(void)
{
    sample_t s;
    bm_err_t err;
    Branchmark__V1__ErrorCode code;
    const Branchmark__V1__ErrorCode INVALID = BRANCHMARK__V1__ERROR_CODE__ERROR_INVALID_ENVELOPE;

    s_sample(&s);
    s.env.protocol_version = 2;
    CHECK(bm_envelope_check(&s.env, &code, &err) < 0);
    CHECK(code == BRANCHMARK__V1__ERROR_CODE__ERROR_UNSUPPORTED_VERSION);
    CHECK_ERR(err, "protocol_version: 2");

    static const char *const bad_agents[] = {"", "agent b001", "agent/1", "a\x01", "\xc3\xa9t\xc3\xa9",
        "a12345678901234567890123456789012345678901234567890123456789012345"};
    for (size_t i = 0; i < sizeof bad_agents / sizeof bad_agents[0]; i++) {
        s_sample(&s);
        s.env.agent_id = (char *)bad_agents[i];
        code = 0;
        CHECK(bm_envelope_check(&s.env, &code, &err) < 0 && code == INVALID);
        CHECK_ERR(err, "agent_id");
        CHECK(strchr(err.msg, '\x01') == NULL);   /* never echoes control characters */
    }
    s_sample(&s);
    s.env.agent_id = "a123456789012345678901234567890123456789012345678901234567890123";  /* 64 */
    CHECK(bm_envelope_check(&s.env, &code, &err) == 0);

    s_sample(&s);
    s.env.branch_code = "B0012345678901234567890123456789X";  /* 33 */
    CHECK(bm_envelope_check(&s.env, &code, &err) < 0 && code == INVALID);
    CHECK_ERR(err, "branch_code");
    s.env.branch_code = "B0012345678901234567890123456789";   /* 32 */
    CHECK(bm_envelope_check(&s.env, &code, &err) == 0);

    static const char *const bad_streams[] = {"", "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0", "0123456789ABCDEF0123456789abcdef",
        "0123456789abcdef0123456789abcdeg"};
    for (size_t i = 0; i < sizeof bad_streams / sizeof bad_streams[0]; i++) {
        s_sample(&s);
        s.env.stream_id = (char *)bad_streams[i];
        CHECK(bm_envelope_check(&s.env, &code, &err) < 0 && code == INVALID);
        CHECK_ERR(err, "stream_id");
    }

    s_sample(&s);
    s.env.sequence = 0;
    CHECK(bm_envelope_check(&s.env, &code, &err) < 0 && code == INVALID);
    CHECK_ERR(err, "sequence");

    s_sample(&s);
    s.env.body_case = BRANCHMARK__V1__ENVELOPE__BODY__NOT_SET;
    CHECK(bm_envelope_check(&s.env, &code, &err) < 0 && code == INVALID);
    CHECK_ERR(err, "body");

    s_sample(&s);
    s.batch.n_records = 0;
    CHECK(bm_envelope_check(&s.env, &code, &err) < 0 && code == INVALID);
    CHECK_ERR(err, "no records");

    s_sample(&s);
    s.rec[3].kind_case = BRANCHMARK__V1__RECORD__KIND__NOT_SET;
    CHECK(bm_envelope_check(&s.env, &code, &err) < 0 && code == INVALID);
    CHECK_ERR(err, "record 3 has no kind");

    /* The record limit: BM_MAX_RECORDS_PER_BATCH is fine, one more is not. */
    s_sample(&s);
    bm_record_t **many = calloc(BM_MAX_RECORDS_PER_BATCH + 1, sizeof *many);
    for (size_t i = 0; i <= BM_MAX_RECORDS_PER_BATCH; i++)
        many[i] = &s.rec[i % 8];
    s.batch.records = many;
    s.batch.n_records = BM_MAX_RECORDS_PER_BATCH;
    CHECK(bm_envelope_check(&s.env, &code, &err) == 0);
    s.batch.n_records = BM_MAX_RECORDS_PER_BATCH + 1;
    CHECK(bm_envelope_check(&s.env, &code, &err) < 0 && code == INVALID);
    CHECK_ERR(err, "exceed the limit of 10000");
    free(many);

    /* Heartbeats: sequence 0 only. */
    Branchmark__V1__Heartbeat hb = BRANCHMARK__V1__HEARTBEAT__INIT;
    s_sample(&s);
    s.env.body_case = BRANCHMARK__V1__ENVELOPE__BODY_HEARTBEAT;
    s.env.heartbeat = &hb;
    s.env.sequence = 0;
    CHECK(bm_envelope_check(&s.env, &code, &err) == 0);
    s.env.sequence = 3;
    CHECK(bm_envelope_check(&s.env, &code, &err) < 0 && code == INVALID);
    CHECK_ERR(err, "heartbeat");
}

static void test_codes_and_ids(void)
{
    CHECK(bm_code_valid("B001", 32));
    CHECK(bm_code_valid("a.b-c_D9", 32));
    CHECK(!bm_code_valid("", 32));
    CHECK(!bm_code_valid(NULL, 32));
    CHECK(!bm_code_valid("ab", 1));
    CHECK(bm_code_valid("ab", 2));
    CHECK(!bm_code_valid("a b", 32));
    CHECK(!bm_code_valid("a\xc3\xa9", 32));

    char a[BM_STREAM_ID_LEN + 1], b[BM_STREAM_ID_LEN + 1];
    bm_err_t err;
    CHECK(bm_stream_id_new(a, &err) == 0);
    CHECK(bm_stream_id_new(b, &err) == 0);
    CHECK(strlen(a) == BM_STREAM_ID_LEN && strcmp(a, b) != 0);
    for (size_t i = 0; i < BM_STREAM_ID_LEN; i++)
        CHECK((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));
    sample_t s;
    s_sample(&s);
    s.env.stream_id = a;
    CHECK(bm_envelope_check(&s.env, NULL, &err) == 0);

    CHECK(strcmp(bm_kind_name(BM_KIND_QUEUE_TICKET), "queue_ticket") == 0);
    CHECK(strcmp(bm_kind_name(BM_KIND_NONE), "none") == 0);
    CHECK(strcmp(bm_kind_name((bm_kind_t)99), "none") == 0);
}

/* Runs validate on record i of a fresh sample after `mutate`, expecting the
 * exact message (or success when want is NULL). */
#define EXPECT(i, mutate, want)                                                      \
    do {                                                                             \
        sample_t s_;                                                                 \
        s_sample(&s_);                                                               \
        sample_t *s = &s_;                                                           \
        (void)s;                                                                     \
        mutate;                                                                      \
        bm_err_t e_;                                                                 \
        e_.msg[0] = '\0';                                                            \
        int rc_ = bm_record_validate(&s_.rec[i], &WINDOW, &e_);                      \
        const char *w_ = (want);                                                     \
        if (w_ ? (rc_ == 0 || strcmp(e_.msg, w_) != 0) : rc_ != 0) {                 \
            fprintf(stderr, "%s:%d: got rc %d \"%s\", wanted \"%s\"\n", __FILE__,    \
                    __LINE__, rc_, e_.msg, w_ ? w_ : "(ok)");                        \
            bm_test_failures++;                                                              \
        }                                                                            \
    } while (0)

static void test_record_rules(void)
{
    /* source_id */
    EXPECT(0, s->rec[0].source_id = "", "people_count: source_id: must not be empty");
    char long_id[130];
    memset(long_id, 'x', 129);
    long_id[129] = '\0';
    EXPECT(0, s->rec[0].source_id = long_id, "people_count: source_id: 129 bytes exceed the limit of 128");
    long_id[128] = '\0';
    EXPECT(0, s->rec[0].source_id = long_id, NULL);
    EXPECT(1, s->rec[1].source_id = "R\xff", "receipt: source_id: is not valid UTF-8 or contains control characters");
    EXPECT(1, s->rec[1].source_id = "R\n1", "receipt: source_id: is not valid UTF-8 or contains control characters");
    EXPECT(1, s->rec[1].source_id = "R\xc2\x85", "receipt: source_id: is not valid UTF-8 or contains control characters");
    EXPECT(1, s->rec[1].source_id = "\xc0\xaf", "receipt: source_id: is not valid UTF-8 or contains control characters");
    EXPECT(1, s->rec[1].source_id = "\xed\xa0\x80", "receipt: source_id: is not valid UTF-8 or contains control characters");
    EXPECT(1, s->rec[1].source_id = "R-\xe2\x82\xac", NULL);
    EXPECT(1, s->rec[1].kind_case = BRANCHMARK__V1__RECORD__KIND__NOT_SET, "record: has no kind");

    /* people_count */
    EXPECT(0, s->pc.interval_seconds = 0, "people_count: interval_seconds: 0 is out of range 1..86400");
    EXPECT(0, s->pc.interval_seconds = 86401, "people_count: interval_seconds: 86401 is out of range 1..86400");
    EXPECT(0, s->pc.interval_seconds = 86400, NULL);
    EXPECT(0, s->pc.entrants = 4294967295u, "people_count: entrants: 4294967295 is out of range 0..2147483647");
    EXPECT(0, s->pc.passers_by = 2147483648u, "people_count: passers_by: 2147483648 is out of range 0..2147483647");

    /* receipt */
    EXPECT(1, s->rc.currency = "eur", "receipt: currency: \"eur\" is not an ISO 4217 code (three upper-case letters)");
    EXPECT(1, s->rc.currency = "EURO", "receipt: currency: \"EURO\" is not an ISO 4217 code (three upper-case letters)");
    EXPECT(1, s->rc.currency = "", "receipt: currency: \"\" is not an ISO 4217 code (three upper-case letters)");
    EXPECT(1, s->rc.amount_minor = 1000000000000LL, NULL);
    EXPECT(1, s->rc.amount_minor = -1000000000000LL, NULL);
    EXPECT(1, s->rc.amount_minor = 1000000000001LL, "receipt: amount: 1000000000001 minor units is out of range -1000000000000..1000000000000");
    EXPECT(1, s->rc.amount_minor = INT64_MIN, "receipt: amount: -9223372036854775808 minor units is out of range -1000000000000..1000000000000");

    /* queue_ticket */
    EXPECT(2, s->qt.called_case = 0, "queue_ticket: served_at: a ticket cannot be served without being called");
    EXPECT(2, s->qt.called_at_ms = T0 - 1, "queue_ticket: called_at: 2026-11-06T07:59:59.999Z is before issued_at 2026-11-06T08:00:00.000Z");
    EXPECT(2, s->qt.served_at_ms = T0 + 59999, "queue_ticket: served_at: 2026-11-06T08:00:59.999Z is before called_at 2026-11-06T08:01:00.000Z");
    EXPECT(2, (s->qt.served_case = 0, s->qt.called_case = 0), NULL);   /* abandoned */
    EXPECT(2, s->qt.served_case = 0, NULL);                              /* called, left */
    char sp[70];
    memset(sp, 'd', 65);
    sp[65] = '\0';
    EXPECT(2, s->qt.service_point = sp, "queue_ticket: service_point: 65 characters exceed the limit of 64");

    /* phone_call */
    EXPECT(3, s->ph.wait_seconds = 86401, "phone_call: wait_seconds: 86401 is out of range 0..86400");
    EXPECT(3, s->ph.wait_seconds = 0, NULL);

    /* complaint */
    EXPECT(4, s->co.category = "", "complaint: category: must not be empty");
    EXPECT(4, s->co.contact_point = "", "complaint: contact_point: must not be empty");
    EXPECT(4, s->co.channel = "a123456789012345678901234567890123", "complaint: channel: 34 characters exceed the limit of 32");
    EXPECT(4, s->co.resolved_at_ms = T0 - 1000, "complaint: resolved_at: 2026-11-06T07:59:59.000Z is before received_at 2026-11-06T08:00:00.000Z");
    EXPECT(4, s->co.category = "\xe2\x82", "complaint: category: is not valid UTF-8");
    EXPECT(4, s->co.resolved_case = 0, NULL);
    /* 64 characters of two bytes each are 128 bytes and still allowed */
    char cat[200] = "";
    for (int i = 0; i < 64; i++)
        strcat(cat, "\xc3\xa9");
    EXPECT(4, s->co.category = cat, NULL);
    strcat(cat, "\xc3\xa9");
    EXPECT(4, s->co.category = cat, "complaint: category: 65 characters exceed the limit of 64");

    /* survey */
    EXPECT(5, s->sv.nps = 11, "survey: nps: 11 is out of range 0..10");
    EXPECT(5, s->sv.nps = 4294967295u, "survey: nps: 4294967295 is out of range 0..10");
    EXPECT(5, s->sv.nps = 0, NULL);
    EXPECT(5, (s->sv.nps_answer_case = 0, s->sv.n_csi = 0), "survey: has neither nps nor csi");
    EXPECT(5, s->sv.n_csi = 0, NULL);
    EXPECT(5, s->sv.nps_answer_case = 0, NULL);
    EXPECT(5, s->csi[1].score = 6, "survey: csi: speed: score 6 is out of range 1..5");
    EXPECT(5, s->csi[1].score = 0, "survey: csi: speed: score 0 is out of range 1..5");
    EXPECT(5, s->csi[0].scale_max = 11, "survey: csi: friendliness: scale_max 11 is out of range 2..10");
    EXPECT(5, s->csi[0].scale_max = 1, "survey: csi: friendliness: scale_max 1 is out of range 2..10");
    EXPECT(5, s->csi[1].item = "friendliness", "survey: csi: item \"friendliness\" appears twice");
    EXPECT(5, s->csi[1].item = "", "survey: csi: item: must not be empty");
    EXPECT(5, s->sv.why = "\xf5\x80\x80\x80", "survey: why: is not valid UTF-8");
    {
        char *why = malloc(4002);
        memset(why, 'w', 4001);
        why[4001] = '\0';
        EXPECT(5, s->sv.why = why, "survey: why: 4001 characters exceed the limit of 4000");
        why[4000] = '\0';
        EXPECT(5, s->sv.why = why, NULL);
        free(why);
    }
    {
        Branchmark__V1__CsiScore many[51], *many_p[51];
        char names[51][8];
        for (int i = 0; i < 51; i++) {
            many[i] = (Branchmark__V1__CsiScore)BRANCHMARK__V1__CSI_SCORE__INIT;
            snprintf(names[i], sizeof names[i], "i%d", i);
            many[i].item = names[i];
            many[i].score = 3;
            many[i].scale_max = 5;
            many_p[i] = &many[i];
        }
        EXPECT(5, (s->sv.csi = many_p, s->sv.n_csi = 50), NULL);
        EXPECT(5, (s->sv.csi = many_p, s->sv.n_csi = 51), "survey: csi: 51 items exceed the limit of 50");
    }

    /* customer_change */
    EXPECT(6, s->cc.reason = "", "customer_change: reason: is required for a lost customer (1..64 characters)");
    EXPECT(6, (s->cc.reason = "", s->cc.kind = BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_GAINED), NULL);
    EXPECT(6, s->cc.kind = 0, "customer_change: kind: must be gained or lost");
    EXPECT(6, s->cc.kind = 7, "customer_change: kind: must be gained or lost");

    /* evaluation */
    EXPECT(7, s->ev.questionnaire_code = "", "evaluation: questionnaire: must not be empty");
    EXPECT(7, s->ev.questionnaire_code = "ST ORE", "evaluation: questionnaire: \"ST ORE\" is not a valid code (1..32 of [A-Za-z0-9_.-])");
    EXPECT(7, s->ev.questionnaire_version = 0, "evaluation: version: 0 is out of range 1..2147483647");
    EXPECT(7, s->ev.channel = 0, "evaluation: channel: must be visit, call or online");
    EXPECT(7, s->ev.outlet_kind = 0, "evaluation: outlet: must be a branch or a competitor");
    EXPECT(7, s->ev.outlet_code = "", "evaluation: outlet: must not be empty");
    EXPECT(7, s->ev.submitted_at_ms = T0 - 1, "evaluation: submitted_at: 2026-11-06T07:59:59.999Z is before visited_at 2026-11-06T08:00:00.000Z");
    EXPECT(7, s->ev.submitted_at_ms = 0, NULL);   /* unknown */
    EXPECT(7, s->ev.n_answers = 0, "evaluation: answers: must have at least one answer");
    EXPECT(7, s->ans[1].item_code = "G1", "evaluation: answers: item \"G1\" is answered twice");
    EXPECT(7, s->ans[1].item_code = "", "evaluation: answers: answer 2: item: must not be empty");
    EXPECT(7, s->ans[1].item_code = "G 2", "evaluation: answers: answer 2: item: \"G 2\" is not a valid code");
    EXPECT(7, s->ans[1].value_case = 0, "evaluation: answers: G2: has neither points nor na");
    EXPECT(7, s->ans[1].not_applicable = 0, "evaluation: answers: G2: na: must be true when given");
    EXPECT(7, s->ans[0].points = -0.5, "evaluation: answers: G1: points: -0.5 must be a finite number >= 0");
    EXPECT(7, s->ans[0].points = NAN, "evaluation: answers: G1: points: nan must be a finite number >= 0");
    EXPECT(7, s->ans[0].points = INFINITY, "evaluation: answers: G1: points: inf must be a finite number >= 0");
    EXPECT(7, s->ans[0].points = 0, NULL);
    EXPECT(7, s->ev.shopper_ref = "\xff", "evaluation: shopper: is not valid UTF-8");
    {
        Branchmark__V1__Answer many[501], *many_p[501];
        char names[501][8];
        for (int i = 0; i < 501; i++) {
            many[i] = (Branchmark__V1__Answer)BRANCHMARK__V1__ANSWER__INIT;
            snprintf(names[i], sizeof names[i], "I%d", i);
            many[i].item_code = names[i];
            many[i].value_case = BRANCHMARK__V1__ANSWER__VALUE_POINTS;
            many[i].points = 1;
            many_p[i] = &many[i];
        }
        EXPECT(7, (s->ev.answers = many_p, s->ev.n_answers = 500), NULL);
        EXPECT(7, (s->ev.answers = many_p, s->ev.n_answers = 501), "evaluation: answers: 501 answers exceed the limit of 500");
    }
}

static void test_time_window(void)
{
    /* 1970 is what a store box with a flat clock battery sends. */
    EXPECT(1, s->rc.at_ms = 0, "receipt: at: 1970-01-01T00:00:00.000Z is outside the accepted window (more than 400 days in the past)");
    EXPECT(0, s->pc.interval_start_ms = T0 + 3 * 86400000LL, "people_count: interval_start: 2026-11-09T08:00:00.000Z is outside the accepted window (more than 1 day in the future)");
    /* every time field counts, not only the main one */
    EXPECT(2, s->qt.served_at_ms = T0 + 30LL * 86400000, "queue_ticket: served_at: 2026-12-06T08:00:00.000Z is outside the accepted window (more than 1 day in the future)");
    EXPECT(4, s->co.resolved_at_ms = T0 + 30LL * 86400000, "complaint: resolved_at: 2026-12-06T08:00:00.000Z is outside the accepted window (more than 1 day in the future)");
    EXPECT(7, s->ev.submitted_at_ms = T0 + 30LL * 86400000, "evaluation: submitted_at: 2026-12-06T08:00:00.000Z is outside the accepted window (more than 1 day in the future)");
    /* the edges are inside */
    EXPECT(3, s->ph.ring_start_ms = WINDOW.now_ms - WINDOW.max_age_ms, NULL);
    EXPECT(3, s->ph.ring_start_ms = WINDOW.now_ms + WINDOW.max_future_ms, NULL);
    EXPECT(3, s->ph.ring_start_ms = WINDOW.now_ms + WINDOW.max_future_ms + 1, "phone_call: ring_start: 2026-11-08T08:00:00.001Z is outside the accepted window (more than 1 day in the future)");

    /* Without a window, 1970 passes, but absurd times never do. */
    sample_t s;
    bm_err_t err;
    s_sample(&s);
    s.rc.at_ms = 0;
    CHECK(bm_record_validate(&s.rec[1], NULL, &err) == 0);
    s.rc.at_ms = INT64_MIN;
    CHECK(bm_record_validate(&s.rec[1], NULL, &err) < 0);
    CHECK_ERR(err, "outside the years 0001..9999");
    s.rc.at_ms = INT64_MAX;
    CHECK(bm_record_validate(&s.rec[1], &WINDOW, &err) < 0);
    CHECK_ERR(err, "receipt: at: 9223372036854775807 ms is outside the years 0001..9999");

    /* A window of "any age" does not overflow. */
    bm_time_window_t wide = {T0, INT64_MAX, INT64_MAX};
    s.rc.at_ms = -62135596800000LL;
    CHECK(bm_record_validate(&s.rec[1], &wide, &err) == 0);
    bm_time_window_t hours = {T0, 2 * 3600000LL, 90 * 60000LL};
    s.rc.at_ms = T0 + 91 * 60000LL;
    CHECK(bm_record_validate(&s.rec[1], &hours, &err) < 0);
    CHECK_ERR(err, "(more than 90 minutes in the future)");
    s.rc.at_ms = T0 - 3 * 3600000LL;
    CHECK(bm_record_validate(&s.rec[1], &hours, &err) < 0);
    CHECK_ERR(err, "(more than 2 hours in the past)");
}

/* ---- the encoding scan (issue 14 part 5: what a foreign client can send) -- */

/* Encodes s's envelope into buf (heap) and replaces the first occurrence of
 * `mark` (which must be unique) with a NUL byte. */
static uint8_t *s_encode_marked(sample_t *s, size_t *len, char mark)
{
    uint8_t *buf = bm_message_encode(&s->env.base, len);
    uint8_t *at = buf ? memchr(buf, mark, *len) : NULL;
    if (at)
        *at = 0;
    return buf;
}

/* buf + extra bytes appended (a field after the others). */
static uint8_t *s_append(uint8_t *buf, size_t *len, const uint8_t *extra, size_t n)
{
    uint8_t *out = realloc(buf, *len + n);
    if (!out) {
        free(buf);
        return NULL;
    }
    memcpy(out + *len, extra, n);
    *len += n;
    return out;
}

static void test_encoding_scan(void)
{
    sample_t s;
    bm_err_t err;
    size_t len, n = 0;
    bm_span_t spans[16];

    /* A normal envelope passes; each record's place is found and passes. */
    s_sample(&s);
    uint8_t *buf = bm_message_encode(&s.env.base, &len);
    CHECK(bm_envelope_scan(buf, len, spans, 16, &n, &err) == 0);
    CHECK(n == 8);
    for (size_t i = 0; i < n && i < 16; i++)
        CHECK(bm_record_check_encoding(&spans[i], &err) == 0);
    free(buf);

    /* NUL inside a header string: protobuf-c would hand on "agent-b0". */
    s_sample(&s);
    s.env.agent_id = "agent-b0#1";
    buf = s_encode_marked(&s, &len, '#');
    CHECK(bm_envelope_scan(buf, len, spans, 16, &n, &err) < 0);
    CHECK_ERR(err, "agent_id: contains a NUL byte (byte 9 of 10)");
    free(buf);

    /* NUL inside a source_id: the envelope passes, that record does not. */
    s_sample(&s);
    s.rec[1].source_id = "X#a";
    buf = s_encode_marked(&s, &len, '#');
    CHECK(bm_envelope_scan(buf, len, spans, 16, &n, &err) == 0 && n == 8);
    CHECK(bm_record_check_encoding(&spans[0], &err) == 0);
    CHECK(bm_record_check_encoding(&spans[1], &err) < 0);
    CHECK_ERR(err, "source_id: contains a NUL byte (byte 2 of 3)");
    free(buf);

    /* ... and deeper: an answer's comment of an evaluation. */
    s_sample(&s);
    s.ans[0].comment = "o#k";
    buf = s_encode_marked(&s, &len, '#');
    CHECK(bm_envelope_scan(buf, len, spans, 16, &n, &err) == 0 && n == 8);
    CHECK(bm_record_check_encoding(&spans[7], &err) < 0);
    CHECK_ERR(err, "evaluation.answers[0].comment: contains a NUL byte");
    free(buf);

    /* A batch split into two chunks (field 10 twice): refused, not merged. */
    s_sample(&s);
    buf = bm_message_encode(&s.env.base, &len);
    size_t blen = 0;
    s.batch.n_records = 1;
    uint8_t *bbuf = bm_message_encode(&s.batch.base, &blen);
    CHECK_OR_RETURN(blen < 128);
    uint8_t head[2] = {0x52, (uint8_t)blen};   /* field 10, length-delimited */
    buf = s_append(buf, &len, head, 2);
    buf = s_append(buf, &len, bbuf, blen);
    free(bbuf);
    CHECK(bm_envelope_scan(buf, len, spans, 16, &n, &err) < 0);
    CHECK_ERR(err, "batch: appears twice");
    free(buf);

    /* Two members of one oneof: a batch and a heartbeat. */
    s_sample(&s);
    buf = bm_message_encode(&s.env.base, &len);
    static const uint8_t hb[] = {0x5a, 0x00};   /* field 11, empty heartbeat */
    buf = s_append(buf, &len, hb, sizeof hb);
    CHECK(bm_envelope_scan(buf, len, spans, 16, &n, &err) < 0);
    CHECK_ERR(err, "batch and heartbeat: both are given");
    free(buf);

    /* A 32-bit field with a 33-bit value (protobuf-c would cut it to 1). */
    s_sample(&s);
    s.env.protocol_version = 0;
    buf = bm_message_encode(&s.env.base, &len);
    static const uint8_t big[] = {0x08, 0x81, 0x80, 0x80, 0x80, 0x10};   /* 2^32 + 1 */
    buf = s_append(buf, &len, big, sizeof big);
    CHECK(bm_envelope_scan(buf, len, spans, 16, &n, &err) < 0);
    CHECK_ERR(err, "protocol_version: 4294967297 does not fit its 32-bit field");
    free(buf);

    /* A field with the wrong wire type; a cut-off length; an unknown field. */
    s_sample(&s);
    s.env.sequence = 0;
    buf = bm_message_encode(&s.env.base, &len);
    static const uint8_t wt[] = {0x2a, 0x00};   /* field 5 (sequence) as bytes */
    uint8_t *b2 = s_append(bm_message_encode(&s.env.base, &len), &len, wt, sizeof wt);
    CHECK(bm_envelope_scan(b2, len, spans, 16, &n, &err) < 0);
    CHECK_ERR(err, "sequence: sent with wire type 2, but it is declared with wire type 0");
    free(b2);
    free(buf);
    s_sample(&s);
    buf = bm_message_encode(&s.env.base, &len);
    static const uint8_t unknown[] = {0xf8, 0x06, 0x05};   /* field 111 = 5 */
    buf = s_append(buf, &len, unknown, sizeof unknown);
    CHECK(bm_envelope_scan(buf, len, spans, 16, &n, &err) == 0);
    CHECK(bm_envelope_scan(buf, len - 1, spans, 16, &n, &err) < 0);
    CHECK_ERR(err, "cut off");
    free(buf);

    /* More records than spans: counted, the first cap written. */
    s_sample(&s);
    buf = bm_message_encode(&s.env.base, &len);
    CHECK(bm_envelope_scan(buf, len, spans, 3, &n, &err) == 0 && n == 8);
    free(buf);
}

static void test_unknown_kind_and_bounds(void)
{
    sample_t s;
    bm_err_t err;
    Branchmark__V1__ErrorCode code;
    const Branchmark__V1__ErrorCode INVALID = BRANCHMARK__V1__ERROR_CODE__ERROR_INVALID_ENVELOPE;

    /* A record of a kind from a newer protocol (field 18): the envelope
     * passes, the record alone is refused and the reason names the field. */
    Branchmark__V1__Record rec = BRANCHMARK__V1__RECORD__INIT;
    rec.source_id = "F-1";
    size_t rlen = 0;
    uint8_t *rbuf = bm_message_encode(&rec.base, &rlen);
    static const uint8_t kind18[] = {0x92, 0x01, 0x00};   /* field 18, empty */
    rbuf = s_append(rbuf, &rlen, kind18, sizeof kind18);
    bm_record_t *dec = (bm_record_t *)protobuf_c_message_unpack(
        &branchmark__v1__record__descriptor, NULL, rlen, rbuf);
    free(rbuf);
    CHECK_OR_RETURN(dec != NULL);
    s_sample(&s);
    s.rec_p[2] = dec;
    CHECK(bm_envelope_check(&s.env, &code, &err) == 0);
    CHECK(bm_record_validate(dec, &WINDOW, &err) < 0);
    CHECK_ERR(err, "record: kind: field 18 is not a record kind of protocol version 1");
    bm_record_free(&dec);

    /* sequence must fit a PostgreSQL bigint. */
    s_sample(&s);
    s.env.sequence = BM_SEQUENCE_MAX;
    CHECK(bm_envelope_check(&s.env, &code, &err) == 0);
    s.env.sequence = BM_SEQUENCE_MAX + 1;
    CHECK(bm_envelope_check(&s.env, &code, &err) < 0 && code == INVALID);
    CHECK_ERR(err, "sequence: 9223372036854775808 exceeds the largest allowed");
    s.env.sequence = UINT64_MAX;
    CHECK(bm_envelope_check(&s.env, &code, &err) < 0 && code == INVALID);

    /* sent_at: years 0001..9999, INT64_MIN and INT64_MAX refused. */
    s_sample(&s);
    s.env.sent_at_ms = INT64_MIN;
    CHECK(bm_envelope_check(&s.env, &code, &err) < 0 && code == INVALID);
    CHECK_ERR(err, "sent_at");
    s.env.sent_at_ms = INT64_MAX;
    CHECK(bm_envelope_check(&s.env, &code, &err) < 0 && code == INVALID);
    s.env.sent_at_ms = 0;
    CHECK(bm_envelope_check(&s.env, &code, &err) == 0);
}

static void test_utf8(void)
{
    char out[64];
    CHECK(bm_utf8_valid("caf\xc3\xa9"));
    CHECK(bm_utf8_valid(""));
    CHECK(!bm_utf8_valid("a\xff"));
    CHECK(!bm_utf8_valid("\xc0\xaf"));          /* overlong '/' */
    CHECK(!bm_utf8_valid("\xed\xa0\x80"));      /* a surrogate */
    CHECK(!bm_utf8_valid("\xc3"));              /* cut off */
    CHECK(strcmp(bm_utf8_escape("caf\xc3\xa9", out, sizeof out), "caf\xc3\xa9") == 0);
    CHECK(strcmp(bm_utf8_escape("a\xff" "b\x01", out, sizeof out), "a\\xffb\\x01") == 0);
    CHECK(strcmp(bm_utf8_escape("\xc3", out, sizeof out), "\\xc3") == 0);
    /* Cut at a character boundary, never inside one. */
    char small[10];
    bm_utf8_escape("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", small, sizeof small);
    CHECK(bm_utf8_valid(small) && strlen(small) < sizeof small);
    CHECK(strcmp(small, "\xc3\xa9\xc3\xa9\xc3\xa9...") == 0);
    CHECK(bm_stream_id_valid("0123456789abcdef0123456789abcdef"));
    CHECK(!bm_stream_id_valid("0123456789abcdef0123456789abcde\xff"));
    CHECK(!bm_stream_id_valid(NULL));
}

int main(void)
{
    test_round_trip();
    test_reply();
    test_header_rules();
    test_codes_and_ids();
    test_record_rules();
    test_time_window();
    test_encoding_scan();
    test_unknown_kind_and_bounds();
    test_utf8();
    if (bm_test_failures) {
        fprintf(stderr, "test_wire: %d failure(s)\n", bm_test_failures);
        return 1;
    }
    printf("test_wire: ok\n");
    return 0;
}
