/* bm_record: validation of one record's own fields, shared by the agent
 * (before a record is spooled) and the collector (before it is stored), so
 * both refuse exactly the same things with exactly the same words.
 *
 * What is checked here: required fields, ranges (NPS 0..10, CSI score within
 * its scale, no negative counts), string lengths, UTF-8, the order of times
 * (served after called after issued) and the clock window.  What is NOT
 * checked here, because it needs the reference data the collector holds:
 * that a questionnaire version, an item or a competitor outlet exists and that
 * points do not exceed an item's maximum. */
#ifndef BM_RECORD_H
#define BM_RECORD_H

#include <stdint.h>

#include "bm_wire.h"

/* Records whose times fall outside [now - max_age, now + max_future] are
 * refused: a store box that lost its clock sends 1970 or 2100 otherwise. */
typedef struct {
    int64_t now_ms;
    int64_t max_age_ms;
    int64_t max_future_ms;
} bm_time_window_t;

typedef enum {
    BM_KIND_NONE = 0,
    BM_KIND_PEOPLE_COUNT,
    BM_KIND_RECEIPT,
    BM_KIND_QUEUE_TICKET,
    BM_KIND_PHONE_CALL,
    BM_KIND_COMPLAINT,
    BM_KIND_SURVEY,
    BM_KIND_CUSTOMER_CHANGE,
    BM_KIND_EVALUATION,
    BM_KIND_COUNT
} bm_kind_t;

/* The record's kind, from its oneof. */
bm_kind_t bm_record_kind(const bm_record_t *r);

/* Stable lower-case name of a kind ("people_count", "receipt",
 * "queue_ticket", "phone_call", "complaint", "survey", "customer_change",
 * "evaluation"); "none" for BM_KIND_NONE.  Used in logs, errors, docs and
 * the database. */
const char *bm_kind_name(bm_kind_t kind);

/* Validates r.  `window` may be NULL to skip the clock check.  Returns 0, or
 * -1 with err naming the field and the problem, e.g.
 * "survey: nps: 11 is out of range 0..10". */
int bm_record_validate(const bm_record_t *r, const bm_time_window_t *window,
                       bm_err_t *err);

/* The record's main time (interval start, receipt time, issue time, ...). */
int64_t bm_record_time_ms(const bm_record_t *r);

/* Frees a record deeply.  Parsers build records with the same memory layout
 * as protobuf-c's own decoder (malloc'd strings, submessages and arrays), so
 * protobuf_c_message_free_unpacked(&r->base, NULL) frees them equally well. */
void bm_record_free(bm_record_t **r_p);

#endif
