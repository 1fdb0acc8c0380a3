/* deadletter: records the collector refused, set aside for a person to read.
 *
 * A refused record is never retried (the collector would refuse it again),
 * and never dropped silently either: it is appended as one JSON line to
 *   <data_dir>/deadletter/deadletter-YYYY-MM-DD.jsonl   (UTC date)
 * with the time, stream, sequence, origin file, source_id, kind, reason and
 * the record's protobuf bytes in base64, so it can be inspected, fixed and
 * fed again.  Owns: the dead-letter directory and the open day file. */
#ifndef BM_DEADLETTER_H
#define BM_DEADLETTER_H

#include <stdint.h>

#include "bm_err.h"
#include "bm_record.h"

typedef struct bm_deadletter bm_deadletter_t;

/* Opens (creating if needed, mode 0750) the dead-letter directory dir.
 * Returns NULL with err when it cannot be created. */
bm_deadletter_t *bm_deadletter_open(const char *dir, bm_err_t *err);

void bm_deadletter_close(bm_deadletter_t **dl_p);

/* Appends one refused record (rec may be NULL when the record could not be
 * found any more; then source_id is taken as given and no bytes are kept).
 * Not durable until bm_deadletter_sync.  Returns 0 or -1 with err. */
int bm_deadletter_add(bm_deadletter_t *dl, const char *stream_id, uint64_t sequence,
                      const char *origin_file, const char *source_id,
                      const bm_record_t *rec, const char *reason, bm_err_t *err);

/* fsyncs the day file.  Returns 0 or -1 with err. */
int bm_deadletter_sync(bm_deadletter_t *dl, bm_err_t *err);

/* Records written since open. */
uint64_t bm_deadletter_count(const bm_deadletter_t *dl);

#endif
