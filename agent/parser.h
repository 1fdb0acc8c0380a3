/* parser: the inbox export formats, one parser per store-system source.
 *
 * Store systems drop export files into the agent's inbox; the file name says
 * what it holds (docs/formats.md):
 *   people_count*.csv   receipts*.csv     queue*.csv        calls*.csv
 *   complaints*.csv     customers*.csv    surveys*.jsonl    evaluations*.jsonl
 * Each format is a plugin: a name, a file-name prefix and extension, and a
 * function that turns one line into one record (Fluent Bit's input plugins).
 *
 * A parser validates each record completely (bm_record_validate with the
 * agent's clock window) before handing it over, so the spool only ever holds
 * records the collector should accept.  A bad line never stops a file: it is
 * reported through on_error with its line number, and parsing continues. */
#ifndef BM_PARSER_H
#define BM_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"
#include "bm_record.h"

typedef struct bm_parser bm_parser_t;   /* opaque: one registered format */

/* The format a file name belongs to (prefix + extension, the base name only),
 * or NULL if the agent does not know it (the file is then left alone). */
const bm_parser_t *bm_parser_for_file(const char *basename);

/* The format's name ("people_count", ...). */
const char *bm_parser_name(const bm_parser_t *p);

/* Called for each good record.  Takes ownership of *rec (sets it to NULL or
 * frees it).  Returns 0 to go on, -1 to stop parsing (e.g. a spool error);
 * bm_parse_file then returns -1 with err left as the callback set it. */
typedef int (*bm_record_sink_fn)(void *ctx, bm_record_t **rec, bm_err_t *err);

/* Called for each bad line: line number (1-based, counting the header) and
 * why, e.g. "line 7: nps: 11 is out of range 0..10". */
typedef void (*bm_line_error_fn)(void *ctx, uint64_t lineno, const char *why);

typedef struct {
    uint64_t lines;        /* data lines read (header and blank lines excluded) */
    uint64_t good;         /* records handed to the sink */
    uint64_t bad;          /* lines reported to on_error */
} bm_parse_stats_t;

/* Parses the whole file at path with format p.  Lines longer than 64 KiB,
 * invalid UTF-8, a wrong header row or a missing file are errors with a clear
 * message.  A wrong header makes every line bad (the file is rejected whole).
 * Returns 0 when the file was read to the end (even if some lines were bad),
 * -1 with err when it could not be read or the sink stopped.  Memory use does
 * not depend on the file's size. */
int bm_parse_file(const bm_parser_t *p, const char *path,
                  const bm_time_window_t *window, bm_record_sink_fn sink,
                  bm_line_error_fn on_error, void *ctx, bm_parse_stats_t *stats,
                  bm_err_t *err);

#endif
