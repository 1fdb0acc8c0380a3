/* parse_csv: fixed-buffer line reader and in-place RFC 4180 field splitter;
 * see parse_csv.h.  Owns the reader's FILE and its one line buffer. */
#include "parse_csv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bm_line_reader {
    FILE *fp;          /* the open file */
    char *path;        /* for messages */
    char *buf;         /* BM_LINE_MAX + 1 bytes: the current line */
    uint64_t lineno;   /* number of the last line returned */
};

bm_line_reader_t *bm_line_reader_new(const char *path, bm_err_t *err)
{
    bm_line_reader_t *r = calloc(1, sizeof *r);
    if (!r) {
        bm_err_set(err, "out of memory");
        return NULL;
    }
    r->buf = malloc(BM_LINE_MAX + 1);
    r->path = strdup(path);
    if (!r->buf || !r->path) {
        bm_err_set(err, "out of memory");
        bm_line_reader_destroy(&r);
        return NULL;
    }
    r->fp = fopen(path, "rb");
    if (!r->fp) {
        bm_err_set(err, "could not open \"%s\": %s", path, strerror(errno));
        bm_line_reader_destroy(&r);
        return NULL;
    }
    return r;
}

void bm_line_reader_destroy(bm_line_reader_t **r_p)
{
    if (!r_p || !*r_p)
        return;
    bm_line_reader_t *r = *r_p;
    if (r->fp)
        fclose(r->fp);
    free(r->buf);
    free(r->path);
    free(r);
    *r_p = NULL;
}

int bm_line_reader_next(bm_line_reader_t *r, char **line, size_t *len, uint64_t *lineno,
                        bm_err_t *err)
{
    size_t n = 0;
    bool too_long = false, any = false;
    int c;
    while ((c = getc_unlocked(r->fp)) != EOF) {
        any = true;
        if (c == '\n')
            break;
        if (n < BM_LINE_MAX + 1)
            r->buf[n++] = (char)c;  /* one byte more than allowed: a CR may follow */
        else
            too_long = true;
    }
    if (ferror(r->fp))
        return bm_err_set(err, "could not read \"%s\": %s", r->path, strerror(errno));
    if (!any)
        return BM_LINE_EOF;
    r->lineno++;
    *lineno = r->lineno;
    if (n > 0 && r->buf[n - 1] == '\r')
        n--;
    if (too_long || n > BM_LINE_MAX)
        return BM_LINE_TOO_LONG;
    r->buf[n] = '\0';
    char *start = r->buf;
    /* Spreadsheet programs like to start UTF-8 files with a byte order mark. */
    if (r->lineno == 1 && n >= 3 && memcmp(start, "\xEF\xBB\xBF", 3) == 0) {
        start += 3;
        n -= 3;
    }
    *line = start;
    *len = n;
    return BM_LINE_OK;
}

int bm_csv_split(char *line, size_t len, char **fields, size_t max_fields, bm_err_t *err)
{
    size_t nf = 0;
    char *p = line, *end = line + len;
    for (;;) {
        if (nf >= max_fields)
            return bm_err_set(err, "more than %zu fields", max_fields);
        char *out = p;
        fields[nf] = out;
        if (p < end && *p == '"') {
            p++;
            for (;;) {
                if (p >= end)
                    return bm_err_set(err, "field %zu: unterminated quoted field (a field "
                                      "may not span lines)", nf + 1);
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') {
                        *out++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *out++ = *p++;
            }
            if (p < end && *p != ',')
                return bm_err_set(err, "field %zu: text after the closing quote", nf + 1);
        } else {
            while (p < end && *p != ',') {
                if (*p == '"')
                    return bm_err_set(err, "field %zu: a quote inside an unquoted field "
                                      "(quote the whole field and double the quote)", nf + 1);
                out++;
                p++;
            }
        }
        nf++;
        if (p >= end) {
            *out = '\0';
            return (int)nf;
        }
        /* p is at a comma; ending the field overwrites it (out <= p). */
        *out = '\0';
        p++;
    }
}
