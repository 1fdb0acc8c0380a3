/* parser_int: the registration table of the inbox formats, private to
 * agent/parser.c and agent/parse_formats.c (SQLite's *Int.h habit).
 *
 * A format is a name, the file-name prefix and extension that select it, the
 * exact CSV header (NULL for JSON lines) and a function that turns one data
 * line into one record.  Adding a format = one function + one table row. */
#ifndef BM_PARSER_INT_H
#define BM_PARSER_INT_H

#include <stddef.h>

#include "parser.h"

/* Turns one data line (len bytes, NUL-terminated, writable, valid UTF-8
 * without NUL bytes) into a newly allocated record.  The record need not be
 * valid yet: bm_parse_file runs bm_record_validate on it.  Returns 0, or -1
 * with err saying what is wrong (without the line number) and *out NULL. */
typedef int (*bm_line_fn)(char *line, size_t len, bm_record_t **out, bm_err_t *err);

struct bm_parser {
    const char *name;      /* "people_count", ...: also the record kind's name */
    const char *prefix;    /* file base name starts with this ... */
    const char *ext;       /* ... and ends with this (".csv", ".jsonl") */
    const char *header;    /* CSV: the exact column list; NULL: JSON lines */
    size_t ncolumns;       /* CSV: number of columns in header */
    bm_line_fn parse_line;
};

/* The table of formats, in parse_formats.c. */
extern const struct bm_parser bm_parser_table[];
extern const size_t bm_parser_table_count;

#endif
