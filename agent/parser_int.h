/* parser_int: the registration table of the inbox formats, private to
 * agent/parser.c and agent/parse_formats.c (SQLite's *Int.h habit).
 *
 * A format is a name, the file-name prefix and extension that select it, and
 * either a column table (CSV) or a function that turns one JSON line into one
 * record.  A CSV format is data only, the way Fluent Bit describes a plugin's
 * config keys with a config map: each column names its header text, how its
 * text is read, the field of the record's submessage it fills and whether it
 * may be empty.  One generic reader (bm_csv_record in parse_formats.c) runs
 * every table, so adding a CSV format means adding a table and a row in
 * bm_parser_table, not a function.
 *
 * Ranges and rules between fields (1..86400 seconds, served after called)
 * are not in the tables on purpose: they are bm_record_validate's, shared
 * with the collector so that both refuse a record in the same words. */
#ifndef BM_PARSER_INT_H
#define BM_PARSER_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "parser.h"

/* How a column's text becomes a value. */
typedef enum {
    BM_COL_SOURCE_ID,   /* the record's source_id (any text; validate checks it) */
    BM_COL_TIME,        /* int64 ms from ISO 8601 with a UTC offset */
    BM_COL_UINT,        /* uint32 from plain decimal digits */
    BM_COL_BOOL,        /* yes/no/true/false/1/0, any case */
    BM_COL_TEXT,        /* string; empty keeps the shared empty default */
    BM_COL_CHOICE,      /* enum: one of a list of words */
    BM_COL_AMOUNT,      /* int64 minor units of the currency in another column */
} bm_col_type_t;

/* One word of a BM_COL_CHOICE column and the enum value it stands for. */
typedef struct {
    const char *word;
    int value;
} bm_col_choice_t;

typedef struct {
    const char *name;       /* column name: in the header and in messages */
    bm_col_type_t type;
    /* The submessage's field (its proto name) that the column fills; NULL
     * for BM_COL_SOURCE_ID.  Looked up in the protobuf-c descriptor, so the
     * table carries no offsets to get wrong: the field's type must fit the
     * column's (bm_parser_table_check), and a field inside a oneof gets its
     * case set when the column is not empty. */
    const char *field;
    /* Empty text is refused with "is required".  An optional empty column
     * leaves the field at its default (and its oneof unset). */
    bool required;
    const bm_col_choice_t *choices;   /* BM_COL_CHOICE: {NULL}-terminated */
    const char *currency;             /* BM_COL_AMOUNT: the currency column */
} bm_csv_column_t;

/* The optional last column of every CSV format (and key of the JSON lines
 * formats): the store system's version of the record, so that a record
 * exported again after a change supersedes the stored one in the right
 * order (docs/formats.md, "Versions and corrections"). */
typedef enum {
    BM_VERSION_NONE = 0,
    BM_VERSION_UPDATED_AT,  /* "updated_at": a time; the version is its epoch ms */
    BM_VERSION_REVISION,    /* "revision": a whole number 1 .. 2^53 */
} bm_version_col_t;

/* The version column a header field names, or BM_VERSION_NONE. */
bm_version_col_t bm_version_col(const char *name);

/* A CSV file's dialect, read from its header: ',' with decimal points, or
 * ';' with decimal commas (what Excel writes in locales whose decimal
 * separator is a comma); and whether the header ends with a version column. */
typedef struct {
    char sep;       /* between fields */
    char decimal;   /* in decimal numbers */
    bm_version_col_t version;   /* the column after the format's own, if any */
} bm_csv_dialect_t;

/* Turns one data line (len bytes, NUL-terminated, writable, valid UTF-8
 * without NUL bytes) of format p, in dialect d (CSV only), into a newly
 * allocated record.  The record need not be valid yet: bm_parse_file runs
 * bm_record_validate on it.  Returns 0, or -1 with err saying what is wrong
 * (without the line number) and *out untouched. */
typedef int (*bm_line_fn)(const struct bm_parser *p, const bm_csv_dialect_t *d, char *line,
                          size_t len, bm_record_t **out, bm_err_t *err);

struct bm_parser {
    const char *name;      /* "people_count", ...: the record kind's name, and
                              the name of the Record field (oneof kind) it fills */
    const char *prefix;    /* file base name starts with this ... */
    const char *ext;       /* ... and ends with this (".csv", ".jsonl") */
    const bm_csv_column_t *columns;   /* CSV: in header order, {NULL}-terminated;
                                         NULL: JSON lines */
    size_t ncolumns;       /* CSV: entries in columns before the terminator */
    bm_line_fn parse_line; /* bm_csv_record for every CSV format */
};

/* The table of formats, in parse_formats.c. */
extern const struct bm_parser bm_parser_table[];
extern const size_t bm_parser_table_count;

/* The generic CSV line reader: splits the line, checks the field count and
 * fills a record of p's kind column by column from p->columns. */
int bm_csv_record(const struct bm_parser *p, const bm_csv_dialect_t *d, char *line, size_t len,
                  bm_record_t **out, bm_err_t *err);

/* Checks every table against the protobuf descriptors (each field exists in
 * the format's submessage with a type that fits its column, the currency
 * column exists, the column count is right).  A mismatch is a programming
 * error; the unit test runs this.  Returns 0 or -1 with err naming it. */
int bm_parser_table_check(bm_err_t *err);

#endif
