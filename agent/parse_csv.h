/* parse_csv: the line reader and the RFC 4180 field splitter under the inbox
 * parsers (agent/parser.c).
 *
 * The reader hands out one line at a time from fixed buffers, so memory does
 * not depend on the file's size; a longer line is skipped to its end and
 * reported, never buffered.  It also owns the file's text encoding: by
 * default UTF-8 (a byte order mark is skipped) or UTF-16LE/BE when the file
 * starts with their byte order mark; otherwise the encoding declared for the
 * source (windows-1251, ...).  Anything not UTF-8 is converted to UTF-8 with
 * iconv (glibc), line by line, so a byte that is not valid in the file's
 * encoding costs that line only and is reported with its place.
 *
 * The splitter cuts one line into fields in place, with ',' or ';' between
 * them.  A quoted field must close on its own line: export files with line
 * breaks inside fields are refused, line by line, with a clear message
 * instead of being half understood. */
#ifndef BM_PARSE_CSV_H
#define BM_PARSE_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"

#define BM_LINE_MAX (64 * 1024)   /* bytes of one line as UTF-8, without its line end */

typedef struct bm_line_reader bm_line_reader_t;

typedef enum {
    BM_LINE_EOF = 0,        /* no more lines */
    BM_LINE_OK = 1,         /* the line is in out->text */
    BM_LINE_TOO_LONG = 2,   /* the line was longer than BM_LINE_MAX and skipped */
    BM_LINE_BAD_TEXT = 3,   /* a byte is not valid in the file's encoding */
} bm_line_status_t;

typedef struct {
    char *text;        /* the reader's buffer: valid until the next call,
                          writable, NUL-terminated; for BM_LINE_BAD_TEXT the
                          line's bytes as they are in the file */
    size_t len;        /* bytes in text, without the line end */
    uint64_t lineno;   /* 1-based line number */
    size_t bad_at;     /* BM_LINE_BAD_TEXT: 1-based offset in text of the
                          first byte that is not valid in the encoding */
} bm_line_t;

/* Checks that an encoding name is one the reader can read: known to iconv,
 * and either UTF-16LE/UTF-16BE or one that writes ASCII as ASCII (so that
 * line ends, quotes and separators are the bytes they look like).  Returns
 * 0, or -1 with err saying why. */
int bm_encoding_check(const char *encoding, bm_err_t *err);

/* Opens path for reading, in encoding (NULL, "" or "UTF-8": UTF-8).  A byte
 * order mark at the start overrides the encoding (it cannot begin a line in
 * any other encoding, and Windows writes one for UTF-16).  Returns NULL with
 * err if the file cannot be opened or the encoding is unknown. */
bm_line_reader_t *bm_line_reader_new(const char *path, const char *encoding, bm_err_t *err);
void bm_line_reader_destroy(bm_line_reader_t **r_p);

/* The encoding the file is read in: "UTF-8", "UTF-16LE", "windows-1251"... */
const char *bm_line_reader_encoding(const bm_line_reader_t *r);

/* True if the file's encoding is declared (not UTF-8 by default or by BOM). */
bool bm_line_reader_declared(const bm_line_reader_t *r);

/* True if the raw bytes of a line keep ASCII as ASCII (not UTF-16), so that
 * a separator found in them is a separator. */
bool bm_line_reader_ascii_based(const bm_line_reader_t *r);

/* Reads the next line, converted to UTF-8, without the line end (LF or
 * CRLF) and without a byte order mark.  The text may still contain NUL
 * bytes or, when read as UTF-8, invalid UTF-8, which the caller must refuse.
 * Returns a bm_line_status_t, or -1 with err on a read error. */
int bm_line_reader_next(bm_line_reader_t *r, bm_line_t *out, bm_err_t *err);

/* Splits line (len bytes) into at most max_fields fields separated by sep,
 * in place: quotes are removed and "" becomes ".  fields[i] point into line.
 * Returns the number of fields, or -1 with err ("field 3: unterminated
 * quoted field ...", "more than 5 fields"). */
int bm_csv_split(char *line, size_t len, char sep, char **fields, size_t max_fields,
                 bm_err_t *err);

/* The 0-based index of the field that byte offset `at` (0-based) of line
 * falls in, reading quotes as bm_csv_split does; does not change line. */
size_t bm_csv_field_at(const char *line, size_t len, char sep, size_t at);

#endif
