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

/* The format a source belongs to: source is a file-name prefix that starts
 * with a format's prefix ("receipts", "receipts_pos2"), as in the agent's
 * `encoding = SOURCE:ENCODING` key.  NULL if it starts with none. */
const bm_parser_t *bm_parser_for_source(const char *source);

/* Checks that the inbox can read files in encoding (known to iconv; ASCII
 * bytes stay ASCII, or UTF-16LE/BE).  Returns 0 or -1 with err saying why. */
int bm_parser_encoding_check(const char *encoding, bm_err_t *err);

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
 * text that is not valid in the file's encoding, a wrong header row or a
 * missing file are errors with a clear message.  A wrong header makes every
 * line bad (the file is rejected whole).  A CSV header with ';' between its
 * columns makes the file ';'-separated with decimal commas (docs/formats.md,
 * "Dialects").  Returns 0 when the file was read to the end (even if some
 * lines were bad), -1 with err when it could not be read or the sink
 * stopped.  Memory use does not depend on the file's size.
 *
 * The file is read as UTF-8, or as UTF-16LE/BE when it starts with their
 * byte order mark, or in encoding when that is given (NULL or "": none;
 * "windows-1251", ...: the source's declared encoding, checked with
 * bm_parser_encoding_check; a byte order mark still wins). */
int bm_parse_file_encoded(const bm_parser_t *p, const char *path, const char *encoding,
                          const bm_time_window_t *window, bm_record_sink_fn sink,
                          bm_line_error_fn on_error, void *ctx, bm_parse_stats_t *stats,
                          bm_err_t *err);

/* bm_parse_file_encoded without a declared encoding. */
int bm_parse_file(const bm_parser_t *p, const char *path,
                  const bm_time_window_t *window, bm_record_sink_fn sink,
                  bm_line_error_fn on_error, void *ctx, bm_parse_stats_t *stats,
                  bm_err_t *err);

#endif
