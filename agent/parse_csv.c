/* parse_csv: fixed-buffer line reader with its text encoding, and the
 * in-place RFC 4180 field splitter; see parse_csv.h.  Owns the reader's
 * FILE, its iconv descriptor and its two line buffers (the line as in the
 * file, and as UTF-8 when it had to be converted).
 *
 * Why not libcsv (Debian's libcsv-dev 3.0.3): it is a streaming parser
 * that joins lines inside quotes and grows its field buffer with realloc,
 * where the agent wants a bounded line (memory must not depend on what a
 * store system writes) and refuses a quote that does not close on its
 * line; its strict mode reports only CSV_EPARSE, without the field or the
 * reason our messages give store IT ("field 5: a quote inside an unquoted
 * field"); and by default it trims blanks around unquoted fields, which
 * changes values.  The splitter below (bm_csv_split) is about 50 lines with
 * unit tests (test_parsers);
 * the ';' dialect is one parameter of it.  Where a library does the job
 * (text encodings), glibc's iconv does it. */
#include "parse_csv.h"

#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BM_ENCODING_MAX 48

struct bm_line_reader {
    FILE *fp;          /* the open file */
    char *path;        /* for messages */
    char *raw;         /* raw_cap + 1 bytes: the current line as in the file */
    size_t raw_cap;    /* longest raw line kept (longer ones are skipped) */
    char *utf8;        /* BM_LINE_MAX + 1 bytes: the line converted; NULL for UTF-8 */
    iconv_t cd;        /* file encoding -> UTF-8; (iconv_t)-1 for UTF-8 */
    int unit;          /* 1, or 2 for UTF-16: the line end is one 0x000A unit */
    int big_endian;    /* UTF-16BE */
    bool declared;     /* the encoding came from the source's config */
    bool bom_line;     /* a byte order mark was skipped: line 1 exists */
    unsigned char head[3];   /* the first bytes, read to look for a BOM */
    size_t head_len, head_pos;
    char encoding[BM_ENCODING_MAX];   /* as shown in messages */
    uint64_t lineno;   /* number of the last line returned */
};

static bool s_is_utf8_name(const char *e)
{
    return !e || !*e || strcasecmp(e, "UTF-8") == 0 || strcasecmp(e, "UTF8") == 0;
}

static int s_utf16_kind(const char *e)
{
    if (strcasecmp(e, "UTF-16LE") == 0)
        return 1;
    if (strcasecmp(e, "UTF-16BE") == 0)
        return 2;
    return 0;
}

int bm_encoding_check(const char *encoding, bm_err_t *err)
{
    if (s_is_utf8_name(encoding) || s_utf16_kind(encoding))
        return 0;
    if (strlen(encoding) >= BM_ENCODING_MAX || strchr(encoding, '/'))
        return bm_err_set(err, "\"%.60s\" is not an encoding name (no //IGNORE or //TRANSLIT: "
                          "a byte that is not in the encoding must be reported, not dropped)",
                          encoding);
    iconv_t in = iconv_open("UTF-8", encoding);
    if (in == (iconv_t)-1)
        return bm_err_set(err, "\"%s\" is not an encoding this system knows (see iconv -l)",
                          encoding);
    iconv_close(in);
    /* Line ends, quotes, separators and JSON punctuation must be the ASCII
     * bytes they look like, or lines cannot be found before converting. */
    static const char probe[] = "\t\r\n \"',;:{}[]0123456789_-.+AZaz";
    char outbuf[sizeof probe * 4];
    char *ip = (char *)probe, *op = outbuf;
    size_t il = sizeof probe - 1, ol = sizeof outbuf;
    iconv_t cd = iconv_open(encoding, "UTF-8");
    bool ascii = cd != (iconv_t)-1 && iconv(cd, &ip, &il, &op, &ol) != (size_t)-1 && il == 0 &&
                 (size_t)(op - outbuf) == sizeof probe - 1 &&
                 memcmp(outbuf, probe, sizeof probe - 1) == 0;
    if (cd != (iconv_t)-1)
        iconv_close(cd);
    if (!ascii)
        return bm_err_set(err, "\"%s\" is not supported: it does not write ASCII as ASCII "
                          "(UTF-16LE and UTF-16BE are the exceptions read)", encoding);
    return 0;
}

/* Picks the encoding: a byte order mark first, then the declared one. */
static int s_sniff(bm_line_reader_t *r, const char *declared, bm_err_t *err)
{
    r->head_len = fread(r->head, 1, sizeof r->head, r->fp);
    const unsigned char *h = r->head;
    const char *enc = s_is_utf8_name(declared) ? "UTF-8" : declared;
    r->declared = !s_is_utf8_name(declared);
    if (r->head_len == 3 && h[0] == 0xEF && h[1] == 0xBB && h[2] == 0xBF) {
        enc = "UTF-8", r->head_pos = 3;
    } else if (r->head_len >= 2 && h[0] == 0xFF && h[1] == 0xFE) {
        enc = "UTF-16LE", r->head_pos = 2;
    } else if (r->head_len >= 2 && h[0] == 0xFE && h[1] == 0xFF) {
        enc = "UTF-16BE", r->head_pos = 2;
    }
    if (r->head_pos > 0) {
        r->declared = false;   /* a BOM says more than the config */
        r->bom_line = true;
    }
    if (bm_encoding_check(enc, err) < 0)
        return -1;
    snprintf(r->encoding, sizeof r->encoding, "%s", enc);
    r->unit = s_utf16_kind(enc) ? 2 : 1;
    r->big_endian = s_utf16_kind(enc) == 2;
    /* Room for a CR (one unit) after the longest line; UTF-16 needs up to
     * two bytes where UTF-8 has one. */
    r->raw_cap = (size_t)r->unit * (BM_LINE_MAX + 1);
    if (strcmp(enc, "UTF-8") != 0) {
        r->cd = iconv_open("UTF-8", enc);
        if (r->cd == (iconv_t)-1)
            return bm_err_set(err, "\"%s\": cannot read encoding %s: %s", r->path, enc,
                              strerror(errno));
        if (!(r->utf8 = malloc(BM_LINE_MAX + 1)))
            return bm_err_set(err, "out of memory");
    }
    if (!(r->raw = malloc(r->raw_cap + 1)))
        return bm_err_set(err, "out of memory");
    return 0;
}

bm_line_reader_t *bm_line_reader_new(const char *path, const char *encoding, bm_err_t *err)
{
    bm_line_reader_t *r = calloc(1, sizeof *r);
    if (!r) {
        bm_err_set(err, "out of memory");
        return NULL;
    }
    r->cd = (iconv_t)-1;
    if (!(r->path = strdup(path))) {
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
    if (s_sniff(r, encoding, err) < 0) {
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
    if (r->cd != (iconv_t)-1)
        iconv_close(r->cd);
    free(r->raw);
    free(r->utf8);
    free(r->path);
    free(r);
    *r_p = NULL;
}

const char *bm_line_reader_encoding(const bm_line_reader_t *r)
{
    return r->encoding;
}

bool bm_line_reader_declared(const bm_line_reader_t *r)
{
    return r->declared;
}

bool bm_line_reader_ascii_based(const bm_line_reader_t *r)
{
    return r->unit == 1;
}

static int s_getc(bm_line_reader_t *r)
{
    if (r->head_pos < r->head_len)
        return r->head[r->head_pos++];
    return getc_unlocked(r->fp);
}

/* Reads raw bytes up to the next line end (one unit 0x000A) into r->raw.
 * Returns the number of bytes of the line (without the LF, with a CR), or
 * SIZE_MAX at end of file; *too_long when bytes past raw_cap were dropped. */
static size_t s_read_raw(bm_line_reader_t *r, bool *too_long)
{
    size_t n = 0;
    bool any = r->bom_line;
    int c;
    r->bom_line = false;
    *too_long = false;
    while ((c = s_getc(r)) != EOF) {
        any = true;
        int c2 = 0;
        if (r->unit == 2 && (c2 = s_getc(r)) == EOF) {
            c2 = -1;   /* an odd last byte: kept, and refused by iconv */
        }
        unsigned u = r->unit == 1 ? (unsigned)c
                     : r->big_endian ? ((unsigned)c << 8 | (unsigned)c2)
                                     : ((unsigned)c2 << 8 | (unsigned)c);
        if (c2 >= 0 && u == '\n')
            break;
        if (n + (size_t)(c2 >= 0 ? r->unit : 1) <= r->raw_cap) {
            r->raw[n++] = (char)c;
            if (r->unit == 2 && c2 >= 0)
                r->raw[n++] = (char)c2;
        } else {
            *too_long = true;
        }
        if (c2 < 0)
            break;
    }
    return any ? n : SIZE_MAX;
}

/* Converts r->raw[0..n) to UTF-8 in r->utf8.  Returns BM_LINE_OK,
 * BM_LINE_TOO_LONG or BM_LINE_BAD_TEXT (with out->bad_at). */
static int s_convert(bm_line_reader_t *r, size_t n, bm_line_t *out)
{
    char *in = r->raw, *op = r->utf8;
    size_t il = n, ol = BM_LINE_MAX;
    iconv(r->cd, NULL, NULL, NULL, NULL);   /* a fresh state for each line */
    if (iconv(r->cd, &in, &il, &op, &ol) == (size_t)-1 ||
        iconv(r->cd, NULL, NULL, &op, &ol) == (size_t)-1) {
        if (errno == E2BIG)
            return BM_LINE_TOO_LONG;
        out->text = r->raw;
        out->len = n;
        out->bad_at = (size_t)(in - r->raw) + 1;
        return BM_LINE_BAD_TEXT;
    }
    *op = '\0';
    out->text = r->utf8;
    out->len = (size_t)(op - r->utf8);
    return BM_LINE_OK;
}

int bm_line_reader_next(bm_line_reader_t *r, bm_line_t *out, bm_err_t *err)
{
    bool too_long;
    size_t n = s_read_raw(r, &too_long);
    if (ferror(r->fp))
        return bm_err_set(err, "could not read \"%s\": %s", r->path, strerror(errno));
    if (n == SIZE_MAX)
        return BM_LINE_EOF;
    out->lineno = ++r->lineno;
    out->bad_at = 0;
    if (r->unit == 1 && n > 0 && r->raw[n - 1] == '\r')
        n--;
    else if (r->unit == 2 && n >= 2 && (r->big_endian ? r->raw[n - 2] == 0 && r->raw[n - 1] == '\r'
                                                      : r->raw[n - 2] == '\r' && r->raw[n - 1] == 0))
        n -= 2;
    if (too_long || n > (size_t)r->unit * BM_LINE_MAX)
        return BM_LINE_TOO_LONG;
    r->raw[n] = '\0';
    if (r->cd != (iconv_t)-1)
        return s_convert(r, n, out);
    out->text = r->raw;
    out->len = n;
    return BM_LINE_OK;
}

size_t bm_csv_field_at(const char *line, size_t len, char sep, size_t at)
{
    size_t field = 0;
    bool quoted = false, start = true;
    for (size_t i = 0; i < len && i < at; i++) {
        char c = line[i];
        if (quoted) {
            if (c == '"' && i + 1 < len && line[i + 1] == '"')
                i++;
            else if (c == '"')
                quoted = false;
        } else if (c == sep) {
            field++;
            start = true;
            continue;
        } else if (c == '"' && start) {
            quoted = true;
        }
        start = false;
    }
    return field;
}

int bm_csv_split(char *line, size_t len, char sep, char **fields, size_t max_fields,
                 bm_err_t *err)
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
            if (p < end && *p != sep)
                return bm_err_set(err, "field %zu: text after the closing quote", nf + 1);
        } else {
            while (p < end && *p != sep) {
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
        /* p is at a separator; ending the field overwrites it (out <= p). */
        *out = '\0';
        p++;
    }
}
