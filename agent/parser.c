/* parser: picks the format of an inbox file by its name and runs it over the
 * file line by line; see parser.h.  Here a CSV file's dialect is read from
 * its header (',' or ';' between fields) and text that is not clean is
 * reported in words store IT can act on (which field, which encoding to
 * declare).  The formats themselves live in parse_formats.c, the line
 * reader, encodings and CSV splitter in parse_csv.c.  Owns one line reader
 * while a file is parsed; nothing between calls. */
#include "parser.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "parse_csv.h"
#include "parser_int.h"

static bool s_ends_with(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

const bm_parser_t *bm_parser_for_file(const char *basename)
{
    if (!basename || basename[0] == '.' || strchr(basename, '/'))
        return NULL;
    size_t n = strlen(basename);
    /* Store systems write under a temporary name and rename into the inbox;
     * a half-written file must never be read. */
    if (s_ends_with(basename, n, ".tmp") || s_ends_with(basename, n, ".part"))
        return NULL;
    for (size_t i = 0; i < bm_parser_table_count; i++) {
        const bm_parser_t *p = &bm_parser_table[i];
        size_t pl = strlen(p->prefix), el = strlen(p->ext);
        if (n >= pl + el && strncmp(basename, p->prefix, pl) == 0 &&
            s_ends_with(basename, n, p->ext))
            return p;
    }
    return NULL;
}

const char *bm_parser_name(const bm_parser_t *p)
{
    return p ? p->name : "none";
}

const bm_parser_t *bm_parser_for_source(const char *source)
{
    if (!source)
        return NULL;
    for (size_t i = 0; i < bm_parser_table_count; i++) {
        const bm_parser_t *p = &bm_parser_table[i];
        if (strncmp(source, p->prefix, strlen(p->prefix)) == 0)
            return p;
    }
    return NULL;
}

int bm_parser_encoding_check(const char *encoding, bm_err_t *err)
{
    return bm_encoding_check(encoding, err);
}

/* Strict UTF-8 without NUL bytes; *bad_at is the 1-based byte offset of the
 * first bad byte. */
static bool s_utf8_line(const char *line, size_t len, size_t *bad_at)
{
    const unsigned char *s = (const unsigned char *)line;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        int extra;
        uint32_t cp;
        if (c == 0) {
            *bad_at = i + 1;
            return false;
        }
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            extra = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3, cp = c & 0x07;
        } else {
            *bad_at = i + 1;
            return false;
        }
        if (i + (size_t)extra >= len) {
            *bad_at = i + 1;
            return false;
        }
        for (int k = 1; k <= extra; k++) {
            if ((s[i + (size_t)k] & 0xc0) != 0x80) {
                *bad_at = i + 1;
                return false;
            }
            cp = (cp << 6) | (s[i + (size_t)k] & 0x3f);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            *bad_at = i + 1;
            return false;
        }
        i += (size_t)extra + 1;
    }
    return true;
}

static bool s_blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t')
            return false;
    return true;
}

/* ---- the header and the dialect ------------------------------------------ */

/* The header a format expects, with sep between the names. */
static void s_header_text(const bm_parser_t *p, char sep, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->ncolumns && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? (sep == ';' ? ";" : ",") : "",
                                 p->columns[i].name);
}

/* Whether line is the format's header with sep between the columns: each
 * field (quoted or not) equals its column's name, optionally followed by a
 * version column (*version says which).  Does not change line. */
static bool s_header_is(const bm_parser_t *p, const char *line, size_t len, char sep,
                        bm_version_col_t *version)
{
    char copy[1024], *fields[16];
    if (len >= sizeof copy)
        return false;   /* far longer than any column list */
    memcpy(copy, line, len);
    copy[len] = '\0';
    int n = bm_csv_split(copy, len, sep, fields, 16, NULL);
    *version = BM_VERSION_NONE;
    if (n > 0 && (size_t)n == p->ncolumns + 1 && (*version = bm_version_col(fields[n - 1])))
        n--;
    if (n < 0 || (size_t)n != p->ncolumns)
        return false;
    for (size_t i = 0; i < p->ncolumns; i++)
        if (strcmp(fields[i], p->columns[i].name) != 0)
            return false;
    return true;
}

/* Copies up to 100 bytes of line into buf for a message: printable text as
 * it is, control characters and bytes that are not UTF-8 as \t or \xNN. */
static void s_quote_found(const char *line, size_t len, char *buf, size_t size)
{
    size_t o = 0, i = 0, skip;
    for (; i < len && i < 100 && o + 8 < size; i++) {
        unsigned char c = (unsigned char)line[i];
        size_t rest = len - i;
        if (c >= 0x80 && s_utf8_line(line + i, rest < 4 ? rest : 4, &skip) == false && skip == 1) {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02X", c);
        } else if (c == '\t') {
            o += (size_t)snprintf(buf + o, size - o, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02X", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    snprintf(buf + o, size - o, "%s", i < len ? "..." : "");
}

/* A header written as UTF-16 without a byte order mark has a NUL byte in
 * every other place; 1 for little-endian, 2 for big-endian, 0 otherwise. */
static int s_looks_utf16(const char *line, size_t len)
{
    if (len < 4)
        return 0;
    int zero_odd = 0, zero_even = 0;
    for (size_t i = 0; i < len; i++)
        if (line[i] == '\0' && i % 2)
            zero_odd++;
        else if (line[i] == '\0')
            zero_even++;
    if (zero_odd * 2 >= (int)len / 2 && zero_even == 0)
        return 1;
    if (zero_even * 2 >= (int)len / 2 && zero_odd == 0)
        return 2;
    return 0;
}

/* Reads the first line of a CSV file: the header decides the dialect.  ','
 * between the columns: RFC 4180 with decimal points.  ';': what Excel
 * writes where the decimal separator is a comma (Bulgarian, Russian, most
 * of Europe), so decimals are written with a comma there and only there.
 * Returns true when the header is the format's; else fills why. */
static bool s_header(const bm_parser_t *p, int status, const bm_line_t *ln,
                     bm_csv_dialect_t *d, char *why, size_t size)
{
    char expected[BM_ERR_MSG_MAX / 2], found[160];
    s_header_text(p, ',', expected, sizeof expected);
    bm_version_col_t v;
    if (status == BM_LINE_OK && s_header_is(p, ln->text, ln->len, ',', &v)) {
        *d = (bm_csv_dialect_t){',', '.', v};
        return true;
    }
    if (status == BM_LINE_OK && s_header_is(p, ln->text, ln->len, ';', &v)) {
        *d = (bm_csv_dialect_t){';', ',', v};
        return true;
    }
    int utf16 = status == BM_LINE_OK ? s_looks_utf16(ln->text, ln->len) : 0;
    if (status == BM_LINE_TOO_LONG) {
        snprintf(why, size, "header: the line is longer than %d bytes; expected \"%s\"",
                 BM_LINE_MAX, expected);
    } else if (utf16) {
        snprintf(why, size, "header: found UTF-16 text without a byte order mark; save the file "
                 "as UTF-8, or set encoding = %s:UTF-16%s for this source; expected \"%s\"",
                 p->prefix, utf16 == 1 ? "LE" : "BE", expected);
    } else {
        s_quote_found(ln->text, ln->len, found, sizeof found);
        snprintf(why, size, "header: found \"%s\"; expected \"%s\"", found, expected);
    }
    return false;
}

/* ---- text that is not clean ---------------------------------------------- */

/* The legacy encoding text most likely is, for a hint.  Arabic in
 * windows-1256 has alef (0xC7) in most words, "al" (0xC7 0xE1) in many;
 * Cyrillic in windows-1251 has letters next to each other above 0xC0;
 * lone bytes above 0x7F between ASCII letters are Western accents. */
static const char *s_guess_encoding(const char *line, size_t len)
{
    size_t alef = 0, runs = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        unsigned char next = i + 1 < len ? (unsigned char)line[i + 1] : 0;
        if (c == 0xC7)
            alef += next == 0xE1 ? 2 : 1;
        if (c >= 0xC0 && next >= 0xC0)
            runs++;
    }
    if (alef >= 2)
        return "windows-1256";
    if (runs > 0)
        return "windows-1251";
    return "windows-1252";
}

/* Why a line's text cannot be read, or "" if it can.  field gets the name
 * of the CSV column the bad byte is in (NULL when it is not known). */
static void s_text_problem(const bm_parser_t *p, const bm_line_reader_t *rd,
                           const bm_csv_dialect_t *d, int status, const bm_line_t *ln,
                           const char **field, char *why, size_t size)
{
    size_t bad_at = ln->bad_at;
    const char *enc = bm_line_reader_encoding(rd);
    why[0] = '\0';
    *field = NULL;
    if (status == BM_LINE_TOO_LONG) {
        snprintf(why, size, "line is longer than %d bytes", BM_LINE_MAX);
        return;
    }
    if (status == BM_LINE_OK && s_utf8_line(ln->text, ln->len, &bad_at))
        return;
    bool located = p->columns && (status == BM_LINE_OK || bm_line_reader_ascii_based(rd));
    size_t col = located ? bm_csv_field_at(ln->text, ln->len, d->sep, bad_at - 1) : 0;
    if (located && col < p->ncolumns)
        *field = p->columns[col].name;
    unsigned char byte = (unsigned char)ln->text[bad_at - 1];
    if (status == BM_LINE_BAD_TEXT && *field)
        snprintf(why, size, "byte 0x%02X is not %s text", byte, enc);
    else if (status == BM_LINE_BAD_TEXT)
        snprintf(why, size, "not %s text at byte %zu", enc, bad_at);
    else if (byte == '\0')
        snprintf(why, size, "a NUL byte at byte %zu", bad_at);
    else if (bm_line_reader_declared(rd) || strcmp(enc, "UTF-8") != 0)
        snprintf(why, size, "invalid UTF-8 at byte %zu", bad_at);   /* iconv let it through */
    else if (*field)
        snprintf(why, size, "not UTF-8; set encoding = %s:%s for this source?", p->prefix,
                 s_guess_encoding(ln->text, ln->len));
    else
        snprintf(why, size, "not UTF-8 at byte %zu; set encoding = %s:%s for this source?",
                 bad_at, p->prefix, s_guess_encoding(ln->text, ln->len));
}

/* ---- the file ------------------------------------------------------------ */

/* One file being parsed. */
typedef struct {
    const bm_parser_t *p;
    bm_line_reader_t *rd;
    const bm_time_window_t *window;
    bm_record_sink_fn sink;
    bm_line_error_fn on_error;
    void *ctx;
    bm_parse_stats_t *st;
    bm_csv_dialect_t dialect;   /* from the header; ',' for JSON lines */
    bool header_seen, header_bad;
} s_file_t;

/* Reports line lineno ("line 7: why", or "line 7, field "x": why"). */
static void s_emit(s_file_t *f, uint64_t lineno, const char *field, const char *why)
{
    char msg[BM_ERR_MSG_MAX + 96];
    if (field)
        snprintf(msg, sizeof msg, "line %llu, field \"%s\": %s", (unsigned long long)lineno,
                 field, why);
    else
        snprintf(msg, sizeof msg, "line %llu: %s", (unsigned long long)lineno, why);
    if (f->on_error)
        f->on_error(f->ctx, lineno, msg);
}

static void s_report(s_file_t *f, uint64_t lineno, const char *field, const char *why)
{
    f->st->bad++;
    s_emit(f, lineno, field, why);
}

/* Handles one line after the header.  Returns 0, or -1 with err when the
 * sink stopped the file. */
static int s_data_line(s_file_t *f, int status, bm_line_t *ln, bm_err_t *err)
{
    char text_why[BM_ERR_MSG_MAX];
    const char *field;
    bm_err_t why;
    if (status == BM_LINE_OK && s_blank(ln->text, ln->len))
        return 0;
    f->st->lines++;
    if (f->header_bad) {
        f->st->bad++;
        return 0;
    }
    s_text_problem(f->p, f->rd, &f->dialect, status, ln, &field, text_why, sizeof text_why);
    if (text_why[0]) {
        s_report(f, ln->lineno, field, text_why);
        return 0;
    }
    bm_record_t *rec = NULL;
    if (f->p->parse_line(f->p, &f->dialect, ln->text, ln->len, &rec, &why) < 0) {
        s_report(f, ln->lineno, NULL, why.msg);
        return 0;
    }
    if (bm_record_validate(rec, f->window, &why) < 0) {
        bm_record_free(&rec);
        s_report(f, ln->lineno, NULL, why.msg);
        return 0;
    }
    f->st->good++;
    if (!f->sink) {
        bm_record_free(&rec);
        return 0;
    }
    return f->sink(f->ctx, &rec, err);
}

int bm_parse_file_encoded(const bm_parser_t *p, const char *path, const char *encoding,
                          const bm_time_window_t *window, bm_record_sink_fn sink,
                          bm_line_error_fn on_error, void *ctx, bm_parse_stats_t *stats,
                          bm_err_t *err)
{
    bm_parse_stats_t local = {0, 0, 0};
    s_file_t f = {p, NULL, window, sink, on_error, ctx, stats ? stats : &local,
                  {',', '.', BM_VERSION_NONE}, false, false};
    *f.st = local;
    if (!p)
        return bm_err_set(err, "\"%s\": no parser for this file", path);
    if (!(f.rd = bm_line_reader_new(path, encoding, err)))
        return -1;
    f.header_seen = p->columns == NULL;
    int rc = 0;
    for (;;) {
        bm_line_t ln;
        int status = bm_line_reader_next(f.rd, &ln, err);
        if (status <= BM_LINE_EOF) {
            rc = status;
            break;
        }
        if (!f.header_seen) {
            /* The header is the first line, always: a store system that
             * leaves it out (or writes another layout) gets its whole file
             * rejected rather than its columns guessed. */
            char why[BM_ERR_MSG_MAX];
            f.header_seen = true;
            if (!s_header(p, status, &ln, &f.dialect, why, sizeof why)) {
                f.header_bad = true;
                s_emit(&f, ln.lineno, NULL, why);
            }
            continue;
        }
        if ((rc = s_data_line(&f, status, &ln, err)) < 0)
            break;
    }
    /* A wrong header with no data lines still leaves one bad line behind,
     * so that the caller rejects the file. */
    if (f.header_bad && f.st->bad == 0)
        f.st->bad = 1;
    bm_line_reader_destroy(&f.rd);
    return rc;
}

int bm_parse_file(const bm_parser_t *p, const char *path, const bm_time_window_t *window,
                  bm_record_sink_fn sink, bm_line_error_fn on_error, void *ctx,
                  bm_parse_stats_t *stats, bm_err_t *err)
{
    return bm_parse_file_encoded(p, path, NULL, window, sink, on_error, ctx, stats, err);
}
