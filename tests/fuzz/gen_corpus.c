/* bm-fuzz-seeds: writes the seed corpus of fuzz_envelope (issue: security).
 *
 *   bm-fuzz-seeds DIR
 *
 * One valid envelope per record kind (people count, receipt, queue ticket,
 * phone call, complaint, survey with CSI items, customer change, shopper
 * evaluation with answers), one batch with all eight, and a heartbeat, so
 * the fuzzer starts from every branch of the decoder and the validator.
 * Times are fixed (the harness's "now" is fixed too), so the corpus is
 * reproducible.  Owns nothing beyond one run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm_wire.h"

#define S_NOW 1795000000000LL

static int s_write(const char *dir, const char *name, const bm_envelope_t *env)
{
    size_t len = 0;
    uint8_t *buf = bm_message_encode(&env->base, &len);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = buf ? fopen(path, "wb") : NULL;
    int ok = fp && fwrite(buf, 1, len, fp) == len;
    if (fp && fclose(fp) != 0)
        ok = 0;
    free(buf);
    if (!ok)
        fprintf(stderr, "bm-fuzz-seeds: could not write \"%s\"\n", path);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bm-fuzz-seeds DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    int64_t t = S_NOW - 3600000;

    Branchmark__V1__PeopleCount pc = BRANCHMARK__V1__PEOPLE_COUNT__INIT;
    pc.interval_start_ms = t, pc.interval_seconds = 900, pc.passers_by = 120, pc.entrants = 14;
    Branchmark__V1__Receipt rc = BRANCHMARK__V1__RECEIPT__INIT;
    rc.at_ms = t, rc.amount_minor = -1250, rc.currency = "EUR";
    Branchmark__V1__QueueTicket qt = BRANCHMARK__V1__QUEUE_TICKET__INIT;
    qt.issued_at_ms = t, qt.service_point = "desk-1";
    qt.called_case = BRANCHMARK__V1__QUEUE_TICKET__CALLED_CALLED_AT_MS, qt.called_at_ms = t + 60000;
    qt.served_case = BRANCHMARK__V1__QUEUE_TICKET__SERVED_SERVED_AT_MS, qt.served_at_ms = t + 300000;
    Branchmark__V1__PhoneCall call = BRANCHMARK__V1__PHONE_CALL__INIT;
    call.ring_start_ms = t, call.answered = 1, call.wait_seconds = 12;
    Branchmark__V1__Complaint co = BRANCHMARK__V1__COMPLAINT__INIT;
    co.received_at_ms = t, co.category = "waiting", co.contact_point = "checkout";
    co.channel = "in_person";
    co.resolved_case = BRANCHMARK__V1__COMPLAINT__RESOLVED_RESOLVED_AT_MS;
    co.resolved_at_ms = t + 7200000;
    Branchmark__V1__CsiScore c1 = BRANCHMARK__V1__CSI_SCORE__INIT, c2 = c1;
    c1.item = "speed", c1.score = 4, c1.scale_max = 5;
    c2.item = "friendliness", c2.score = 5, c2.scale_max = 5;
    Branchmark__V1__CsiScore *csi[] = {&c1, &c2};
    Branchmark__V1__SurveyResponse sv = BRANCHMARK__V1__SURVEY_RESPONSE__INIT;
    sv.responded_at_ms = t, sv.nps_answer_case = BRANCHMARK__V1__SURVEY_RESPONSE__NPS_ANSWER_NPS;
    sv.nps = 9, sv.n_csi = 2, sv.csi = csi, sv.why = "quick", sv.segment = "student";
    sv.survey_channel = "kiosk";
    Branchmark__V1__CustomerChange cc = BRANCHMARK__V1__CUSTOMER_CHANGE__INIT;
    cc.at_ms = t, cc.kind = BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_LOST;
    cc.reason = "price", cc.segment = "business";
    Branchmark__V1__Answer a1 = BRANCHMARK__V1__ANSWER__INIT, a2 = a1;
    a1.item_code = "G1", a1.value_case = BRANCHMARK__V1__ANSWER__VALUE_POINTS, a1.points = 1;
    a2.item_code = "G3", a2.value_case = BRANCHMARK__V1__ANSWER__VALUE_NOT_APPLICABLE;
    a2.not_applicable = 1, a2.comment = "no coffee machine";
    Branchmark__V1__Answer *answers[] = {&a1, &a2};
    Branchmark__V1__ShopperEvaluation ev = BRANCHMARK__V1__SHOPPER_EVALUATION__INIT;
    ev.questionnaire_code = "STORE", ev.questionnaire_version = 1;
    ev.channel = BRANCHMARK__V1__CHANNEL__CHANNEL_VISIT, ev.scenario = "warranty";
    ev.outlet_kind = BRANCHMARK__V1__OUTLET_KIND__OUTLET_KIND_BRANCH, ev.outlet_code = "B001";
    ev.visited_at_ms = t, ev.shopper_ref = "S-17", ev.n_answers = 2, ev.answers = answers;
    ev.submitted_at_ms = t + 86400;

    Branchmark__V1__Record r[8];
    for (int i = 0; i < 8; i++)
        branchmark__v1__record__init(&r[i]);
    r[0].kind_case = BRANCHMARK__V1__RECORD__KIND_PEOPLE_COUNT, r[0].people_count = &pc;
    r[1].kind_case = BRANCHMARK__V1__RECORD__KIND_RECEIPT, r[1].receipt = &rc;
    r[2].kind_case = BRANCHMARK__V1__RECORD__KIND_QUEUE_TICKET, r[2].queue_ticket = &qt;
    r[3].kind_case = BRANCHMARK__V1__RECORD__KIND_PHONE_CALL, r[3].phone_call = &call;
    r[4].kind_case = BRANCHMARK__V1__RECORD__KIND_COMPLAINT, r[4].complaint = &co;
    r[5].kind_case = BRANCHMARK__V1__RECORD__KIND_SURVEY, r[5].survey = &sv;
    r[6].kind_case = BRANCHMARK__V1__RECORD__KIND_CUSTOMER_CHANGE, r[6].customer_change = &cc;
    r[7].kind_case = BRANCHMARK__V1__RECORD__KIND_EVALUATION, r[7].evaluation = &ev;
    static const char *const names[8] = {"people_count", "receipt", "queue_ticket", "phone_call",
                                         "complaint", "survey", "customer_change", "evaluation"};
    char ids[8][16];
    Branchmark__V1__Record *all[8];
    for (int i = 0; i < 8; i++) {
        snprintf(ids[i], sizeof ids[i], "SEED-%d", i + 1);
        r[i].source_id = ids[i];
        all[i] = &r[i];
    }

    bm_envelope_t env = BRANCHMARK__V1__ENVELOPE__INIT;
    env.protocol_version = BM_PROTOCOL_VERSION, env.agent_id = "agent-B001";
    env.branch_code = "B001", env.stream_id = "0123456789abcdef0123456789abcdef";
    env.sent_at_ms = S_NOW;
    Branchmark__V1__Batch batch = BRANCHMARK__V1__BATCH__INIT;
    env.body_case = BRANCHMARK__V1__ENVELOPE__BODY_BATCH, env.batch = &batch;
    int bad = 0;
    for (int i = 0; i < 8; i++) {
        char name[64];
        snprintf(name, sizeof name, "batch_%s", names[i]);
        batch.n_records = 1, batch.records = &all[i];
        env.sequence = (uint64_t)i + 1;
        bad |= s_write(dir, name, &env);
    }
    batch.n_records = 8, batch.records = all, env.sequence = 9;
    bad |= s_write(dir, "batch_all_kinds", &env);
    Branchmark__V1__Heartbeat hb = BRANCHMARK__V1__HEARTBEAT__INIT;
    hb.spool_depth = 3, hb.oldest_unsent_ms = t;
    env.body_case = BRANCHMARK__V1__ENVELOPE__BODY_HEARTBEAT, env.heartbeat = &hb;
    env.sequence = 0;
    bad |= s_write(dir, "heartbeat", &env);
    return bad ? 1 : 0;
}
