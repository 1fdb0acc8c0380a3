/* output: tables of results printed as an aligned text table, CSV
 * (RFC 4180) or JSON, so every query command has the same three formats.
 *
 * A table has named columns and typed cells (text, number with a number of
 * decimals, integer, change arrow, empty).  Text output aligns columns by
 * characters (UTF-8 aware) and right-aligns numbers; CSV writes one header
 * line and quotes only where needed; JSON writes an array of objects with
 * real numbers and null for empty cells.  Text cells hold data from store
 * systems, so no format prints them raw: CSV neutralises a text that a
 * spreadsheet would run as a formula (leading ' in a quoted field), the
 * text table shows control and bidi characters escaped (\x1b), JSON
 * writes them as \uXXXX (docs/security.md, "Store data in exports").  Several tables make one report:
 * in JSON an object with one key per table, in text and CSV the tables one
 * after another, separated by a blank line. */
#ifndef BM_OUTPUT_H
#define BM_OUTPUT_H

#include <stdio.h>

#include "bm_err.h"

typedef enum { BM_FMT_TABLE = 0, BM_FMT_CSV, BM_FMT_JSON } bm_format_t;

/* "table", "csv" or "json".  Returns 0, or -1 with err
 * ("unknown format \"x\" (try: table, csv, json)"). */
int bm_format_parse(const char *name, bm_format_t *out, bm_err_t *err);

/* The one rounding rule of every format (docs/metrics.md, "Rounding"):
 * value with `decimals` (clamped to 0..9) decimals, rounded half away from
 * zero on the decimal value the double stands for (a double within about
 * 8 units in the last place of a half counts as the half, so -5.55 gives
 * "-5.6" and 2.675 "2.68", where printf gives -5.5 and 2.67), never "-0.0";
 * a non-finite value gives "".  Writes at most size bytes (always
 * NUL-terminated when size > 0) and returns the length of the whole
 * result, like snprintf; BM_FIXED_MAX bytes hold any finite double, 32 any
 * value below 1e20.  Table, CSV, JSON and every text that embeds a number
 * (the scorecard's trend) use it, so a string and its value never differ. */
#define BM_FIXED_MAX 330
int bm_format_fixed(double value, int decimals, char *buf, size_t size);

#define BM_TABLE_MAX_COLS 40
#define BM_TABLE_MAX_ROWS 200000

typedef struct bm_table bm_table_t;

/* A table named `name` (JSON key, text title) with ncols columns.  Returns
 * NULL if ncols is out of range or memory runs out. */
bm_table_t *bm_table_new(const char *name, int ncols, const char *const *columns);
void bm_table_destroy(bm_table_t **table_p);

/* Starts a new row (cells empty).  Returns 0, or -1 when the table is full
 * (BM_TABLE_MAX_ROWS) or memory runs out. */
int bm_table_add_row(bm_table_t *t);

/* Set cells of the current row; col out of range is ignored. */
void bm_table_set_text(bm_table_t *t, int col, const char *text);
void bm_table_set_num(bm_table_t *t, int col, double value, int decimals);
void bm_table_set_int(bm_table_t *t, int col, long long value);
/* -1 down, +1 up, 0 empty.  Text: "↑"/"↓", CSV: "+"/"-", JSON: "up"/"down". */
void bm_table_set_arrow(bm_table_t *t, int col, int direction);
void bm_table_set_bool(bm_table_t *t, int col, int value);

int bm_table_rows(const bm_table_t *t);

/* A report: up to BM_REPORT_MAX_TABLES tables printed together.  The
 * report takes ownership of each table added. */
#define BM_REPORT_MAX_TABLES 16
typedef struct bm_report bm_report_t;

bm_report_t *bm_report_new(void);
void bm_report_destroy(bm_report_t **report_p);
/* Hands *table_p over (NULLs it).  Returns -1 when the report is full. */
int bm_report_add(bm_report_t *r, bm_table_t **table_p);
/* Optional notes printed under the tables in text format (and as a
 * "notes" array in JSON, "# " comment-free: omitted in CSV). */
int bm_report_note(bm_report_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints the report.  Returns 0, or -1 on a write error. */
int bm_report_print(const bm_report_t *r, bm_format_t fmt, FILE *out);

#endif
