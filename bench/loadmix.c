/* loadmix: the synthetic record mix of the benchmarks; see loadmix.h.
 * Owns nothing. */
#include "loadmix.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define S_DAY_MS 86400000LL

static uint64_t s_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t s_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t s_next(bm_loadmix_rng_t *r)
{
    uint64_t *s = r->s;
    const uint64_t result = s_rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl(s[3], 45);
    return result;
}

/* Uniform integer in [0, n). */
static int64_t s_below(bm_loadmix_rng_t *r, int64_t n)
{
    return (int64_t)((s_next(r) >> 11) % (uint64_t)n);
}

void bm_loadmix_seed(bm_loadmix_rng_t *rng, uint64_t seed, uint64_t agent)
{
    uint64_t x = seed ^ (agent * 0xd1b54a32d192ed03ULL);
    for (int i = 0; i < 4; i++)
        rng->s[i] = s_splitmix64(&x);
}

void bm_loadmix_branch_code(const char *prefix, uint32_t agent, char *buf, size_t size)
{
    snprintf(buf, size, "%s%05" PRIu32, prefix, agent + 1);
}

static const char *const s_points[] = {"desk1", "desk2", "cash", "info"};
static const char *const s_categories[] = {"staff_attitude", "waiting", "product", "price"};
static const char *const s_contacts[] = {"checkout", "sales_floor", "phone"};
static const char *const s_segments[] = {"", "retail", "business", "student"};

void bm_loadmix_next(bm_loadmix_rng_t *rng, const char *prefix, uint32_t agent, uint64_t n,
                     int64_t now_ms, bm_loadmix_rec_t *out)
{
    bm_record_t *r = &out->rec;
    branchmark__v1__record__init(r);
    snprintf(out->source_id, sizeof out->source_id, "%s-%" PRIu32 "-%" PRIu64, prefix, agent, n);
    r->source_id = out->source_id;
    /* A whole second, as the store systems' exports have. */
    int64_t at = (now_ms - S_DAY_MS * 30 + s_below(rng, S_DAY_MS * 30 - 7200000)) / 1000 * 1000;
    int64_t pick = s_below(rng, 100);
    if (pick < 55) {
        branchmark__v1__receipt__init(&out->receipt);
        out->receipt.at_ms = at;
        out->receipt.amount_minor = s_below(rng, 20) == 0 ? -s_below(rng, 5000) - 1
                                                          : 100 + s_below(rng, 20000);
        out->receipt.currency = (char *)"EUR";
        r->kind_case = BRANCHMARK__V1__RECORD__KIND_RECEIPT;
        r->receipt = &out->receipt;
    } else if (pick < 70) {
        branchmark__v1__people_count__init(&out->pc);
        out->pc.interval_start_ms = at / 900000 * 900000;
        out->pc.interval_seconds = 900;
        out->pc.passers_by = (uint32_t)s_below(rng, 400);
        out->pc.entrants = (uint32_t)s_below(rng, 60);
        r->kind_case = BRANCHMARK__V1__RECORD__KIND_PEOPLE_COUNT;
        r->people_count = &out->pc;
    } else if (pick < 85) {
        branchmark__v1__queue_ticket__init(&out->ticket);
        out->ticket.issued_at_ms = at;
        out->ticket.service_point = (char *)s_points[s_below(rng, 4)];
        if (s_below(rng, 10) != 0) {
            out->ticket.called_case = BRANCHMARK__V1__QUEUE_TICKET__CALLED_CALLED_AT_MS;
            out->ticket.called_at_ms = at + 1000 * s_below(rng, 1800);
            out->ticket.served_case = BRANCHMARK__V1__QUEUE_TICKET__SERVED_SERVED_AT_MS;
            out->ticket.served_at_ms = out->ticket.called_at_ms + 1000 * (30 + s_below(rng, 900));
        }
        r->kind_case = BRANCHMARK__V1__RECORD__KIND_QUEUE_TICKET;
        r->queue_ticket = &out->ticket;
    } else if (pick < 95) {
        branchmark__v1__phone_call__init(&out->call);
        out->call.ring_start_ms = at;
        out->call.answered = s_below(rng, 5) != 0;
        out->call.wait_seconds = (uint32_t)s_below(rng, 240);
        r->kind_case = BRANCHMARK__V1__RECORD__KIND_PHONE_CALL;
        r->phone_call = &out->call;
    } else if (pick < 98) {
        branchmark__v1__survey_response__init(&out->survey);
        out->survey.responded_at_ms = at;
        out->survey.nps_answer_case = BRANCHMARK__V1__SURVEY_RESPONSE__NPS_ANSWER_NPS;
        out->survey.nps = (uint32_t)s_below(rng, 11);
        out->survey.why = (char *)(s_below(rng, 3) == 0 ? "friendly staff" : "");
        out->survey.segment = (char *)s_segments[s_below(rng, 4)];
        out->survey.survey_channel = (char *)"kiosk";
        r->kind_case = BRANCHMARK__V1__RECORD__KIND_SURVEY;
        r->survey = &out->survey;
    } else if (pick < 99) {
        branchmark__v1__complaint__init(&out->complaint);
        out->complaint.received_at_ms = at;
        out->complaint.category = (char *)s_categories[s_below(rng, 4)];
        out->complaint.contact_point = (char *)s_contacts[s_below(rng, 3)];
        out->complaint.channel = (char *)"in_person";
        if (s_below(rng, 3) != 0) {
            out->complaint.resolved_case = BRANCHMARK__V1__COMPLAINT__RESOLVED_RESOLVED_AT_MS;
            out->complaint.resolved_at_ms = at + 1000 * s_below(rng, 7200);
        }
        r->kind_case = BRANCHMARK__V1__RECORD__KIND_COMPLAINT;
        r->complaint = &out->complaint;
    } else {
        branchmark__v1__customer_change__init(&out->change);
        out->change.at_ms = at;
        bool lost = s_below(rng, 3) == 0;
        out->change.kind = lost ? BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_LOST
                                : BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_GAINED;
        out->change.reason = (char *)(lost ? "moved_away" : "");
        out->change.segment = (char *)s_segments[s_below(rng, 4)];
        r->kind_case = BRANCHMARK__V1__RECORD__KIND_CUSTOMER_CHANGE;
        r->customer_change = &out->change;
    }
}

int bm_loadmix_write_refdata(const char *path, const char *prefix, int branches, int regions,
                             bm_err_t *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return bm_err_set(err, "refdata: path is too long");
    FILE *f = fopen(tmp, "w");
    if (!f)
        return bm_err_set(err, "could not create \"%s\": %s", tmp, strerror(errno));
    fprintf(f, "{\"chain\": {\"code\": \"LOAD\", \"name\": \"Load test chain\", "
               "\"timezone\": \"UTC\"},\n \"regions\": [");
    for (int i = 0; i < regions; i++)
        fprintf(f, "%s\n  {\"code\": \"R%02d\", \"name\": \"Region %d\"}", i ? "," : "", i + 1,
                i + 1);
    fprintf(f, "],\n \"branches\": [");
    for (int i = 0; i < branches; i++) {
        char code[32];
        bm_loadmix_branch_code(prefix, (uint32_t)i, code, sizeof code);
        fprintf(f, "%s\n  {\"code\": \"%s\", \"name\": \"Branch %d\", \"region\": \"R%02d\"}",
                i ? "," : "", code, i + 1, i % regions + 1);
    }
    fprintf(f, "],\n \"competitors\": [],\n \"questionnaires\": [\n"
               "  {\"code\": \"STORE\", \"version\": 1, \"title\": \"Store visit\", "
               "\"sections\": [{\"code\": \"GREET\", \"title\": \"Greeting\", \"items\": "
               "[{\"code\": \"G1\", \"text\": \"Greeted within 30 s\", \"max_points\": 1}]}]}\n"
               " ]\n}\n");
    if (fflush(f) != 0 || ferror(f)) {
        fclose(f);
        return bm_err_set(err, "could not write \"%s\"", tmp);
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return bm_err_set(err, "could not write \"%s\": %s", path, strerror(errno));
    return 0;
}
