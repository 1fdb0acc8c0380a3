/* parser: picks the format of an inbox file by its name and runs it over the
 * file line by line; see parser.h.  The formats themselves live in
 * parse_formats.c, the line reader and CSV splitter in parse_csv.c.  Owns
 * one line reader while a file is parsed; nothing between calls. */
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

/* The header a format expects, "source_id,at,amount,currency". */
static void s_header_text(const bm_parser_t *p, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->ncolumns && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? "," : "",
                                 p->columns[i].name);
}

/* Compares a header line with the format's column names, field by field (so
 * quoted column names are accepted too, but a quoted "source_id,at" is one
 * field and not two columns). */
static bool s_header_ok(const bm_parser_t *p, char *line, size_t len)
{
    char *fields[16];
    int n = bm_csv_split(line, len, fields, 16, NULL);
    if (n < 0 || (size_t)n != p->ncolumns)
        return false;
    for (size_t i = 0; i < p->ncolumns; i++)
        if (strcmp(fields[i], p->columns[i].name) != 0)
            return false;
    return true;
}

static void s_emit(bm_line_error_fn on_error, void *ctx, uint64_t lineno, const char *why)
{
    char msg[BM_ERR_MSG_MAX + 32];
    snprintf(msg, sizeof msg, "line %llu: %s", (unsigned long long)lineno, why);
    if (on_error)
        on_error(ctx, lineno, msg);
}

static void s_report(bm_line_error_fn on_error, void *ctx, bm_parse_stats_t *st,
                     uint64_t lineno, const char *why)
{
    st->bad++;
    s_emit(on_error, ctx, lineno, why);
}

int bm_parse_file(const bm_parser_t *p, const char *path, const bm_time_window_t *window,
                  bm_record_sink_fn sink, bm_line_error_fn on_error, void *ctx,
                  bm_parse_stats_t *stats, bm_err_t *err)
{
    bm_parse_stats_t local = {0, 0, 0};
    bm_parse_stats_t *st = stats ? stats : &local;
    *st = local;
    if (!p)
        return bm_err_set(err, "\"%s\": no parser for this file", path);

    bm_line_reader_t *rd = bm_line_reader_new(path, err);
    if (!rd)
        return -1;

    bool is_csv = p->columns != NULL, header_seen = !is_csv, header_bad = false;
    int rc = 0;
    for (;;) {
        char *line;
        size_t len;
        uint64_t lineno;
        bm_err_t why;
        int status = bm_line_reader_next(rd, &line, &len, &lineno, err);
        if (status < 0) {
            rc = -1;
            break;
        }
        if (status == BM_LINE_EOF)
            break;

        if (!header_seen) {
            /* The header is the first line, always: a store system that
             * leaves it out (or writes another layout) gets its whole file
             * rejected rather than its columns guessed. */
            header_seen = true;
            if (status != BM_LINE_OK || !s_header_ok(p, line, len)) {
                header_bad = true;
                char expected[BM_ERR_MSG_MAX / 2], msg[BM_ERR_MSG_MAX];
                s_header_text(p, expected, sizeof expected);
                snprintf(msg, sizeof msg, "header: expected \"%s\"", expected);
                s_emit(on_error, ctx, lineno, msg);
            }
            continue;
        }
        if (status == BM_LINE_OK && s_blank(line, len))
            continue;
        st->lines++;
        if (header_bad) {
            st->bad++;
            continue;
        }
        if (status == BM_LINE_TOO_LONG) {
            bm_err_set(&why, "line is longer than %d bytes", BM_LINE_MAX);
            s_report(on_error, ctx, st, lineno, why.msg);
            continue;
        }
        size_t bad_at;
        if (!s_utf8_line(line, len, &bad_at)) {
            if (line[bad_at - 1] == '\0')
                bm_err_set(&why, "a NUL byte at byte %zu", bad_at);
            else
                bm_err_set(&why, "invalid UTF-8 at byte %zu", bad_at);
            s_report(on_error, ctx, st, lineno, why.msg);
            continue;
        }
        bm_record_t *rec = NULL;
        if (p->parse_line(p, line, len, &rec, &why) < 0) {
            s_report(on_error, ctx, st, lineno, why.msg);
            continue;
        }
        if (bm_record_validate(rec, window, &why) < 0) {
            bm_record_free(&rec);
            s_report(on_error, ctx, st, lineno, why.msg);
            continue;
        }
        st->good++;
        if (sink) {
            if (sink(ctx, &rec, err) < 0) {
                rc = -1;
                break;
            }
        } else {
            bm_record_free(&rec);
        }
    }
    /* A wrong header with no data lines still leaves one bad line behind,
     * so that the caller rejects the file. */
    if (header_bad && st->bad == 0)
        st->bad = 1;
    bm_line_reader_destroy(&rd);
    return rc;
}
