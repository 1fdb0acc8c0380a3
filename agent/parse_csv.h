/* parse_csv: the line reader and the RFC 4180 field splitter under the inbox
 * parsers (agent/parser.c).
 *
 * The reader hands out one line at a time from a fixed buffer of
 * BM_LINE_MAX bytes, so memory does not depend on the file's size; a longer
 * line is skipped to its end and reported, never buffered.  The splitter cuts
 * one line into fields in place.  A quoted field must close on its own line:
 * export files with line breaks inside fields are refused, line by line, with
 * a clear message instead of being half understood. */
#ifndef BM_PARSE_CSV_H
#define BM_PARSE_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"

#define BM_LINE_MAX (64 * 1024)   /* bytes of one line, without its line end */

typedef struct bm_line_reader bm_line_reader_t;

typedef enum {
    BM_LINE_EOF = 0,        /* no more lines */
    BM_LINE_OK = 1,         /* *line holds one line */
    BM_LINE_TOO_LONG = 2,   /* the line was longer than BM_LINE_MAX and skipped */
} bm_line_status_t;

/* Opens path for reading.  Returns NULL with err if it cannot be opened. */
bm_line_reader_t *bm_line_reader_new(const char *path, bm_err_t *err);
void bm_line_reader_destroy(bm_line_reader_t **r_p);

/* Reads the next line.  On BM_LINE_OK, *line points to the reader's buffer
 * (valid until the next call, writable, NUL-terminated) holding *len bytes
 * without the line end (LF or CRLF) and without a UTF-8 byte order mark at
 * the start of the file; the line may contain NUL bytes, which the caller
 * must refuse.  *lineno is the line's 1-based number.  Returns -1 with err on
 * a read error. */
int bm_line_reader_next(bm_line_reader_t *r, char **line, size_t *len, uint64_t *lineno,
                        bm_err_t *err);

/* Splits line (len bytes) into at most max_fields fields, in place: quotes
 * are removed and "" becomes ".  fields[i] point into line.  Returns the
 * number of fields, or -1 with err ("field 3: unterminated quoted field ...",
 * "more than 5 fields"). */
int bm_csv_split(char *line, size_t len, char **fields, size_t max_fields, bm_err_t *err);

#endif
