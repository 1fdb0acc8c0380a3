/* loadmix: the synthetic record mix shared by bm-loadgen (which sends it over
 * the wire) and bm-copy-baseline (which COPYs the same rows straight into
 * PostgreSQL), so that both benchmarks write exactly the same rows.
 *
 * Mix (per record, drawn from a seeded xoshiro256** stream per agent):
 * 55 % receipts, 15 % people counts, 15 % queue tickets, 10 % phone calls,
 * 3 % surveys (NPS, no CSI items), 1 % complaints, 1 % customer changes.
 * Evaluations are left out: they need questionnaires and score triggers and
 * are a few per branch per month in real life.
 *
 * Owns: nothing; a bm_loadmix_rec_t holds one record's storage so that
 * filling a record allocates nothing. */
#ifndef BM_LOADMIX_H
#define BM_LOADMIX_H

#include <stdint.h>

#include "bm_record.h"
#include "bm_wire.h"

typedef struct {
    uint64_t s[4];
} bm_loadmix_rng_t;

/* One record and every submessage it may point to. */
typedef struct {
    bm_record_t rec;
    char source_id[64];
    Branchmark__V1__PeopleCount pc;
    Branchmark__V1__Receipt receipt;
    Branchmark__V1__QueueTicket ticket;
    Branchmark__V1__PhoneCall call;
    Branchmark__V1__Complaint complaint;
    Branchmark__V1__SurveyResponse survey;
    Branchmark__V1__CustomerChange change;
} bm_loadmix_rec_t;

/* Seeds the stream of agent number `agent` (0-based). */
void bm_loadmix_seed(bm_loadmix_rng_t *rng, uint64_t seed, uint64_t agent);

/* Fills *out with the next record of the agent's stream.  source_id is
 * "<prefix>-<agent>-<n>"; times fall in the 30 days before now_ms. */
void bm_loadmix_next(bm_loadmix_rng_t *rng, const char *prefix, uint32_t agent, uint64_t n,
                     int64_t now_ms, bm_loadmix_rec_t *out);

/* Writes a reference data file with `branches` branches (codes
 * <prefix>00001 ...) spread over `regions` regions (R01 ...), chain time zone
 * UTC, and one small questionnaire.  Returns 0, or -1 with err. */
int bm_loadmix_write_refdata(const char *path, const char *prefix, int branches, int regions,
                             bm_err_t *err);

/* The branch code of agent number `agent` (0-based): <prefix>%05d. */
void bm_loadmix_branch_code(const char *prefix, uint32_t agent, char *buf, size_t size);

#endif
