/* output: renders result tables as aligned text, CSV (RFC 4180) or JSON.
 * Owns the tables' cells (copies of the text given) and the report's list
 * of tables and notes. */
#include "output.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef enum { S_EMPTY = 0, S_TEXT, S_NUM, S_INT, S_ARROW, S_BOOL } s_cell_kind_t;

typedef struct {
    s_cell_kind_t kind;
    int decimals;
    double num;         /* S_NUM */
    long long i;        /* S_INT, S_ARROW, S_BOOL */
    char *text;         /* S_TEXT, owned */
} s_cell_t;

struct bm_table {
    char *name;
    int ncols;
    char *columns[BM_TABLE_MAX_COLS];
    s_cell_t *cells;    /* rows * ncols */
    int rows;
    int cap_rows;
};

#define S_MAX_NOTES 32
#define S_NOTE_MAX 400

struct bm_report {
    bm_table_t *tables[BM_REPORT_MAX_TABLES];
    int ntables;
    char *notes[S_MAX_NOTES];
    int nnotes;
};

int bm_format_parse(const char *name, bm_format_t *out, bm_err_t *err)
{
    if (!strcmp(name, "table"))
        *out = BM_FMT_TABLE;
    else if (!strcmp(name, "csv"))
        *out = BM_FMT_CSV;
    else if (!strcmp(name, "json"))
        *out = BM_FMT_JSON;
    else
        return bm_err_set(err, "unknown format \"%s\" (try: table, csv, json)", name);
    return 0;
}

bm_table_t *bm_table_new(const char *name, int ncols, const char *const *columns)
{
    if (ncols < 1 || ncols > BM_TABLE_MAX_COLS)
        return NULL;
    bm_table_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    t->name = strdup(name ? name : "");
    int ok = t->name != NULL;
    for (int c = 0; c < ncols && ok; c++) {
        t->columns[c] = strdup(columns[c]);
        ok = t->columns[c] != NULL;
    }
    if (!ok)
        bm_table_destroy(&t);
    return t;
}

static void s_cell_clear(s_cell_t *c)
{
    free(c->text);
    memset(c, 0, sizeof *c);
}

void bm_table_destroy(bm_table_t **table_p)
{
    if (!table_p || !*table_p)
        return;
    bm_table_t *t = *table_p;
    for (int i = 0; i < t->rows * t->ncols; i++)
        free(t->cells[i].text);
    free(t->cells);
    for (int c = 0; c < t->ncols; c++)
        free(t->columns[c]);
    free(t->name);
    free(t);
    *table_p = NULL;
}

int bm_table_add_row(bm_table_t *t)
{
    if (t->rows >= BM_TABLE_MAX_ROWS)
        return -1;
    if (t->rows == t->cap_rows) {
        int cap = t->cap_rows ? t->cap_rows * 2 : 16;
        if (cap > BM_TABLE_MAX_ROWS)
            cap = BM_TABLE_MAX_ROWS;
        s_cell_t *cells = realloc(t->cells, (size_t)cap * (size_t)t->ncols * sizeof *cells);
        if (!cells)
            return -1;
        t->cells = cells;
        t->cap_rows = cap;
    }
    memset(&t->cells[(size_t)t->rows * (size_t)t->ncols], 0,
           (size_t)t->ncols * sizeof *t->cells);
    t->rows++;
    return 0;
}

static s_cell_t *s_cur(bm_table_t *t, int col)
{
    if (t->rows == 0 || col < 0 || col >= t->ncols)
        return NULL;
    s_cell_t *c = &t->cells[(size_t)(t->rows - 1) * (size_t)t->ncols + (size_t)col];
    s_cell_clear(c);
    return c;
}

void bm_table_set_text(bm_table_t *t, int col, const char *text)
{
    s_cell_t *c = s_cur(t, col);
    if (!c || !text)
        return;
    c->text = strdup(text);
    if (c->text)
        c->kind = S_TEXT;
}

void bm_table_set_num(bm_table_t *t, int col, double value, int decimals)
{
    s_cell_t *c = s_cur(t, col);
    if (!c || !isfinite(value))
        return;
    c->kind = S_NUM;
    c->num = value;
    c->decimals = decimals < 0 ? 0 : (decimals > 9 ? 9 : decimals);
}

void bm_table_set_int(bm_table_t *t, int col, long long value)
{
    s_cell_t *c = s_cur(t, col);
    if (!c)
        return;
    c->kind = S_INT;
    c->i = value;
}

void bm_table_set_arrow(bm_table_t *t, int col, int direction)
{
    s_cell_t *c = s_cur(t, col);
    if (!c || direction == 0)
        return;
    c->kind = S_ARROW;
    c->i = direction > 0 ? 1 : -1;
}

void bm_table_set_bool(bm_table_t *t, int col, int value)
{
    s_cell_t *c = s_cur(t, col);
    if (!c)
        return;
    c->kind = S_BOOL;
    c->i = value != 0;
}

int bm_table_rows(const bm_table_t *t)
{
    return t->rows;
}

/* ---- the one rounding rule ---------------------------------------------
 * Every number of every format (table, CSV, JSON, the scorecard's trend
 * text) is rounded here: half away from zero, on the decimal value the
 * double stands for.  A double near a decimal tie is almost never the tie
 * itself (-5.55 is stored as -5.54999999999999982236...), so printf, which
 * rounds the exact binary value half to even, printed -5.5 where JSON's
 * round(x * 10) / 10 gave -5.6 (issue 15, finding 11).  Here a value whose
 * scaled form |x| * 10^d lies within S_TIE_REL (relative, about 8 units in
 * the last place of a double) of a half counts as the half: the error of
 * storing a decimal (1/2 ulp), of the scaling (1/2 ulp) and of the few
 * additions behind a mean stay far below it, and a value that is really
 * that close to a half cannot be told from one anyway.
 *
 * Below 2^44 the scaled value is rounded as an integer and printed digit by
 * digit (no printf: a chain-wide ranking prints 100,000 numbers); there
 * the tolerance is at most 1/32 of the last digit.  Above it (|x| >= 1.7e12
 * at 1 decimal) 8 ulps would reach the last digit itself, so the exact
 * binary value, written out by printf with enough digits to be exact, is
 * rounded as a decimal string, half away from zero on exact ties. */
#define S_TIE_REL 0x1p-49
#define S_FAST_MAX 0x1p44

static const double s_p10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

/* Writes k (an integer) with d decimals: "-" when negative, never "-0". */
static size_t s_put_scaled(unsigned long long k, int d, int negative, char *out)
{
    char digits[32];
    int n = 0;
    do {
        digits[n++] = (char)('0' + k % 10);
        k /= 10;
    } while (k || n <= d);
    char *p = out;
    if (negative)
        *p++ = '-';
    for (int i = n - 1; i >= 0; i--) {
        *p++ = digits[i];
        if (i == d && d > 0)
            *p++ = '.';
    }
    *p = '\0';
    return (size_t)(p - out);
}

/* |v| * 10^d >= S_FAST_MAX: the exact decimal expansion of v (a binary fraction
 * of at most ~3.4 d bits, so 40 digits are exact), rounded at d decimals
 * half away from zero. */
static size_t s_fixed_large(double v, int d, char *out)
{
    char exact[BM_FIXED_MAX + 48];
    int len = snprintf(exact, sizeof exact, "%.40f", fabs(v));
    char *dot = strchr(exact, '.');
    if (len <= 0 || !dot)
        return (size_t)snprintf(out, BM_FIXED_MAX, "%.*f", d, v);
    int up = dot[1 + d] >= '5';
    size_t keep = (size_t)(dot - exact) + (d ? (size_t)d + 1 : 0);
    exact[keep] = '\0';
    for (size_t i = keep; up && i-- > 0;) {
        if (exact[i] == '.')
            continue;
        if (exact[i] == '9') {
            exact[i] = '0';
        } else {
            exact[i]++;
            up = 0;
        }
    }
    return (size_t)snprintf(out, BM_FIXED_MAX, "%s%s%s", v < 0 ? "-" : "", up ? "1" : "", exact);
}

int bm_format_fixed(double value, int decimals, char *buf, size_t size)
{
    char tmp[BM_FIXED_MAX + 48];
    int d = decimals < 0 ? 0 : (decimals > 9 ? 9 : decimals);
    size_t n;
    if (!isfinite(value)) {
        tmp[0] = '\0';
        n = 0;
    } else {
        double ax = fabs(value) * s_p10[d];
        if (ax < S_FAST_MAX) {
            double f = floor(ax);
            unsigned long long k = (unsigned long long)f + (ax - f >= 0.5 - ax * S_TIE_REL);
            n = s_put_scaled(k, d, value < 0 && k != 0, tmp);
        } else {
            n = s_fixed_large(value, d, tmp);
        }
    }
    if (size > 0) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(buf, tmp, c);
        buf[c] = '\0';
    }
    return (int)n;
}

/* ---- text from store systems ---------------------------------------------
 * Branch names, complaint categories, lost reasons and comments come from
 * store systems and reach a terminal (table, and CSV or JSON printed by
 * the CLI) and spreadsheets (CSV).  A control character can move the
 * cursor, retitle the window or rewrite what was printed before (ESC [
 * ... , OSC 8 hyperlinks); a bidi override shows text in another order
 * than it is stored ("Trojan Source", CVE-2021-42574).  So no such
 * character is ever printed raw: docs/security.md, "Output". */

/* The length of the UTF-8 character at s (1..4) and its code point, or 0
 * when the byte at s does not start a well-formed character (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t s_utf8_char(const unsigned char *s, unsigned *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t n = s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
             : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    unsigned c = n == 2 ? s[0] & 0x1Fu : n == 3 ? s[0] & 0x0Fu : s[0] & 0x07u;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if (!n || (n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

/* Whether code point c must not reach a terminal raw: C0 controls (tab,
 * CR and LF too unless keep_ws), DEL, C1 controls (U+0080-009F: 8-bit CSI
 * is U+009B) and the bidi embeddings, overrides and isolates. */
static int s_unsafe_cp(unsigned c, int keep_ws)
{
    if (c < 0x20)
        return !(keep_ws && (c == '\t' || c == '\r' || c == '\n'));
    return c == 0x7F || (c >= 0x80 && c <= 0x9F) || (c >= 0x202A && c <= 0x202E) ||
           (c >= 0x2066 && c <= 0x2069) || c == 0x200E || c == 0x200F;
}

/* s with every unsafe character written visibly ("\x1b", "\u202e",
 * "\t"; a byte that is not UTF-8 as "\xff"), or NULL when s is safe as it
 * is (the usual case: no copy).  *failed is set when memory runs out (the
 * caller then prints a placeholder, never the raw text). */
static char *s_visible(const char *s, int keep_ws, int *failed)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, n;
    unsigned cp;
    while (u[i] && (n = s_utf8_char(u + i, &cp)) && !s_unsafe_cp(cp, keep_ws))
        i += n;
    if (!u[i])
        return NULL;
    size_t len = strlen(s);
    char *out = malloc(len * 6 + 1);        /* "\u202e" for 3 bytes, "\x1b" for 1 */
    if (!out) {
        *failed = 1;
        return NULL;
    }
    memcpy(out, s, i);
    char *p = out + i;
    while (u[i]) {
        n = s_utf8_char(u + i, &cp);
        if (n && !s_unsafe_cp(cp, keep_ws)) {
            memcpy(p, u + i, n);
            p += n;
        } else if (!n || cp < 0x80) {
            const char *named = !n ? NULL : cp == '\t' ? "\\t" : cp == '\r' ? "\\r"
                              : cp == '\n' ? "\\n" : NULL;
            p += named ? (size_t)sprintf(p, "%s", named) : (size_t)sprintf(p, "\\x%02x", u[i]);
            n = n ? n : 1;
        } else {
            p += sprintf(p, "\\u%04x", cp);
        }
        i += n;
    }
    *p = '\0';
    return out;
}

/* The text to print for s in a terminal-bound format: s itself, or its
 * visible form in *owned (the caller frees it). */
static const char *s_safe_text(const char *s, int keep_ws, char **owned)
{
    int failed = 0;
    *owned = s_visible(s, keep_ws, &failed);
    return failed ? "(unprintable)" : *owned ? *owned : s;
}

/* The cell as text for the text and CSV formats. */
static const char *s_cell_str(const s_cell_t *c, bm_format_t fmt, char *buf, size_t size)
{
    switch (c->kind) {
    case S_TEXT:
        return c->text;
    case S_NUM:
        bm_format_fixed(c->num, c->decimals, buf, size);
        return buf;
    case S_INT:
        snprintf(buf, size, "%lld", c->i);
        return buf;
    case S_ARROW:
        if (fmt == BM_FMT_CSV)
            return c->i > 0 ? "+" : "-";
        return c->i > 0 ? "\xe2\x86\x91" : "\xe2\x86\x93";
    case S_BOOL:
        if (fmt == BM_FMT_CSV)
            return c->i ? "true" : "false";
        return c->i ? "yes" : "";
    case S_EMPTY:
    default:
        return "";
    }
}

static size_t s_utf8_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

/* Cell (r, c) as the text table shows it: text from data in its visible
 * form (*owned, freed by the caller), numbers by the rounding rule. */
static const char *s_table_cell(const bm_table_t *t, int r, int c, char *buf, size_t size,
                                char **owned)
{
    const s_cell_t *cell = &t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
    *owned = NULL;
    if (cell->kind == S_TEXT)
        return s_safe_text(cell->text, 0, owned);
    return s_cell_str(cell, BM_FMT_TABLE, buf, size);
}

/* One padded field of the text table. */
static void s_text_field(FILE *out, const char *s, size_t width, int right, int last)
{
    size_t pad = width - s_utf8_width(s);
    if (right)
        fprintf(out, "%*s%s", (int)pad, "", s);
    else if (!last)
        fprintf(out, "%s%*s", s, (int)pad, "");
    else
        fputs(s, out);
    fputs(last ? "\n" : "  ", out);
}

static int s_print_text(const bm_table_t *t, int with_title, FILE *out)
{
    size_t width[BM_TABLE_MAX_COLS];
    int right[BM_TABLE_MAX_COLS];
    char buf[BM_FIXED_MAX], *owned;
    for (int c = 0; c < t->ncols; c++) {
        width[c] = s_utf8_width(s_safe_text(t->columns[c], 0, &owned));
        free(owned);
        right[c] = 0;
    }
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < t->ncols; c++) {
            size_t w = s_utf8_width(s_table_cell(t, r, c, buf, sizeof buf, &owned));
            free(owned);
            if (w > width[c])
                width[c] = w;
            s_cell_kind_t kind = t->cells[(size_t)r * (size_t)t->ncols + (size_t)c].kind;
            if (kind == S_NUM || kind == S_INT)
                right[c] = 1;
        }
    if (with_title) {
        fprintf(out, "%s\n", s_safe_text(t->name, 0, &owned));
        free(owned);
    }
    for (int c = 0; c < t->ncols; c++) {
        s_text_field(out, s_safe_text(t->columns[c], 0, &owned), width[c], right[c],
                     c == t->ncols - 1);
        free(owned);
    }
    for (int c = 0; c < t->ncols; c++) {
        for (size_t i = 0; i < width[c]; i++)
            fputc('-', out);
        fputs(c < t->ncols - 1 ? "  " : "\n", out);
    }
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < t->ncols; c++) {
            s_text_field(out, s_table_cell(t, r, c, buf, sizeof buf, &owned), width[c], right[c],
                         c == t->ncols - 1);
            free(owned);
        }
    if (t->rows == 0)
        fputs("(no rows)\n", out);
    return 0;
}

/* A growing line buffer: CSV rows are assembled and written with one
 * fwrite each (a stdio call per field and separator, each taking the
 * stream's lock, was a fifth of a chain-wide ranking's time). */
typedef struct {
    char *s;
    size_t len, cap;
} s_line_t;

static inline int s_line_put(s_line_t *l, const char *s, size_t n)
{
    if (l->len + n + 1 > l->cap) {
        size_t cap = l->cap ? l->cap : 256;
        while (cap < l->len + n + 1)
            cap *= 2;
        char *p = realloc(l->s, cap);
        if (!p)
            return -1;
        l->s = p;
        l->cap = cap;
    }
    memcpy(l->s + l->len, s, n);
    l->len += n;
    return 0;
}

/* Whether s is only numbers and "-" placeholders separated by single
 * spaces ("-5.5", "- 3.2 -0.4": a number written as text, the scorecard's
 * trend).  Such a cell cannot hold a function call, a reference or a DDE
 * command (they need letters, '(', '!' or '|'), so it stays as it is. */
static int s_number_list(const char *s)
{
    for (;;) {
        const char *tok = s;
        if (*s == '-')
            s++;
        size_t digits = strspn(s, "0123456789");
        s += digits;
        if (digits && *s == '.' && s[1] >= '0' && s[1] <= '9')
            s += 1 + strspn(s + 1, "0123456789");
        if (s == tok || (!digits && s - tok != 1))
            return 0;
        if (!*s)
            return 1;
        if (*s++ != ' ')
            return 0;
    }
}

/* A text cell a spreadsheet would run as a formula: one that starts with
 * '=', '+', '-', '@', tab or CR (OWASP, "CSV Injection"; LibreOffice and
 * Excel also start formulas with '+', '-' and '@', and tab/CR let a
 * formula hide behind a leading blank). */
static int s_csv_formula(const char *s)
{
    return s[0] && strchr("=+-@\t\r", s[0]) && !s_number_list(s);
}

/* One CSV field.  text: the cell holds text (from data); a formula-like
 * text is neutralised by a leading single quote inside a quoted field (OWASP)
 * and control characters other than tab, CR and LF are written visibly.
 * Numbers (text 0) are written as they are: -5.6 stays a number. */
static int s_csv_field(s_line_t *l, const char *s, int text)
{
    char *owned = NULL;
    if (text)
        s = s_safe_text(s, 1, &owned);
    int neutral = text && s_csv_formula(s);
    int rc;
    if (!neutral && !strpbrk(s, ",\"\r\n")) {
        rc = s_line_put(l, s, strlen(s));
    } else {
        rc = s_line_put(l, neutral ? "\"'" : "\"", neutral ? 2 : 1);
        for (; *s && rc == 0; s++)
            rc = *s == '"' ? s_line_put(l, "\"\"", 2) : s_line_put(l, s, 1);
        rc = rc < 0 ? -1 : s_line_put(l, "\"", 1);
    }
    free(owned);
    return rc;
}

static int s_print_csv(const bm_table_t *t, FILE *out)
{
    char buf[BM_FIXED_MAX];
    s_line_t l = {NULL, 0, 0};
    int rc = 0;
    for (int c = 0; c < t->ncols && rc == 0; c++)
        rc = s_csv_field(&l, t->columns[c], 1) < 0 ||
             s_line_put(&l, c < t->ncols - 1 ? "," : "\r\n", c < t->ncols - 1 ? 1 : 2) < 0;
    for (int r = 0; r < t->rows && rc == 0; r++) {
        if (fwrite(l.s, 1, l.len, out) != l.len)
            rc = -1;
        l.len = 0;
        for (int c = 0; c < t->ncols && rc == 0; c++) {
            const s_cell_t *cell = &t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
            rc = s_csv_field(&l, s_cell_str(cell, BM_FMT_CSV, buf, sizeof buf),
                             cell->kind == S_TEXT) < 0 ||
                 s_line_put(&l, c < t->ncols - 1 ? "," : "\r\n", c < t->ncols - 1 ? 1 : 2) < 0;
        }
    }
    if (rc == 0 && l.len && fwrite(l.s, 1, l.len, out) != l.len)
        rc = -1;
    free(l.s);
    return rc ? -1 : 0;
}

/* ---- JSON ----------------------------------------------------------------
 * Written directly, in the layout jansson's json_dumpf gives with
 * JSON_INDENT(2) | JSON_REAL_PRECISION(12) | JSON_PRESERVE_ORDER (the
 * format the API has always had; tests/unit/test_stats.c compares the two
 * byte for byte).  Building a jansson object per row and a value per cell
 * took 40 % of a chain-wide ranking (10,000 rows x 13 columns). */

/* A JSON string.  Besides what RFC 8259 requires ('"', '\\', U+0000-001F)
 * DEL, the C1 controls and the bidi controls are written as \uXXXX (the
 * same string to a parser, but harmless when the CLI prints JSON to a
 * terminal), and a byte that is not UTF-8 as U+FFFD (JSON must be UTF-8;
 * intake refuses such bytes, this is the last line). */
static int s_json_str(s_line_t *l, const char *s)
{
    int rc = s_line_put(l, "\"", 1);
    while (*s && rc == 0) {
        /* The run up to the next character that needs escaping (a loop,
         * not strcspn: glibc's generic strcspn for a 33-character set was
         * 8 % of a chain-wide ranking); bytes >= 0x80 are checked whole. */
        size_t run = 0;
        while (s[run] && (unsigned char)s[run] >= 0x20 && (unsigned char)s[run] < 0x7F &&
               s[run] != '"' && s[run] != '\\')
            run++;
        rc = s_line_put(l, s, run);
        s += run;
        if (!*s || rc)
            break;
        unsigned cp;
        size_t n = (unsigned char)*s >= 0x7F ? s_utf8_char((const unsigned char *)s, &cp) : 1;
        if (n > 0 && (unsigned char)*s >= 0x7F && !s_unsafe_cp(cp, 1)) {
            rc = s_line_put(l, s, n);
            s += n;
            continue;
        }
        char esc[8];
        switch (n ? *s : 0) {
        case '"': memcpy(esc, "\\\"", 3); break;
        case '\\': memcpy(esc, "\\\\", 3); break;
        case '\b': memcpy(esc, "\\b", 3); break;
        case '\f': memcpy(esc, "\\f", 3); break;
        case '\n': memcpy(esc, "\\n", 3); break;
        case '\r': memcpy(esc, "\\r", 3); break;
        case '\t': memcpy(esc, "\\t", 3); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04X",
                     !n ? 0xFFFDu : (unsigned char)*s < 0x7F ? (unsigned char)*s : cp);
            break;
        }
        rc = s_line_put(l, esc, strlen(esc));
        s += n ? n : 1;
    }
    return rc < 0 ? -1 : s_line_put(l, "\"", 1);
}

/* A number cell: the digits bm_format_fixed gives the table and CSV (the
 * one rounding rule), trailing zeros dropped and ".0" kept on integral
 * values, the layout jansson's "%.12g" reals had for the API's usual
 * numbers (12.5, 887.0, 0.0001).  Unlike "%.12g" it never cuts digits or
 * switches to an exponent, so a JSON value is always the CSV value. */
static int s_json_num(s_line_t *l, double v, int d)
{
    if (!isfinite(v))
        return s_line_put(l, "null", 4);
    char buf[BM_FIXED_MAX + 2];
    size_t n = (size_t)bm_format_fixed(v, d, buf, sizeof buf);
    if (strchr(buf, '.')) {
        while (buf[n - 1] == '0')
            n--;
        if (buf[n - 1] == '.')
            buf[n++] = '0';
    } else {
        memcpy(buf + n, ".0", 2);
        n += 2;
    }
    return s_line_put(l, buf, n);
}

static int s_json_indent(s_line_t *l, int depth)
{
    static const char spaces[] = "\n                ";
    return s_line_put(l, spaces, (size_t)(1 + 2 * depth));
}

/* The table as a JSON array of row objects at nesting depth `depth`,
 * flushed to out row by row. */
static int s_json_table(const bm_table_t *t, int depth, s_line_t *l, FILE *out)
{
    char buf[32];
    if (t->rows == 0)
        return s_line_put(l, "[]", 2);
    int rc = s_line_put(l, "[", 1);
    for (int r = 0; r < t->rows && rc == 0; r++) {
        rc |= r ? s_line_put(l, ",", 1) : 0;
        rc |= s_json_indent(l, depth + 1) | s_line_put(l, "{", 1);
        for (int c = 0; c < t->ncols && rc == 0; c++) {
            const s_cell_t *cell = &t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
            rc |= c ? s_line_put(l, ",", 1) : 0;
            rc |= s_json_indent(l, depth + 2) | s_json_str(l, t->columns[c]) |
                  s_line_put(l, ": ", 2);
            switch (cell->kind) {
            case S_TEXT:
                rc |= s_json_str(l, cell->text);
                break;
            case S_NUM:
                rc |= s_json_num(l, cell->num, cell->decimals);
                break;
            case S_INT:
                snprintf(buf, sizeof buf, "%lld", cell->i);
                rc |= s_line_put(l, buf, strlen(buf));
                break;
            case S_ARROW:
                rc |= s_json_str(l, cell->i > 0 ? "up" : "down");
                break;
            case S_BOOL:
                rc |= cell->i ? s_line_put(l, "true", 4) : s_line_put(l, "false", 5);
                break;
            case S_EMPTY:
            default:
                rc |= s_line_put(l, "null", 4);
                break;
            }
        }
        rc |= s_json_indent(l, depth + 1) | s_line_put(l, "}", 1);
        if (rc == 0 && l->len > 65536) {
            rc = fwrite(l->s, 1, l->len, out) == l->len ? 0 : -1;
            l->len = 0;
        }
    }
    return rc ? -1 : s_json_indent(l, depth) | s_line_put(l, "]", 1);
}

static int s_print_json(const bm_report_t *r, FILE *out)
{
    s_line_t l = {NULL, 0, 0};
    int rc;
    if (r->ntables == 1 && r->nnotes == 0) {
        rc = s_json_table(r->tables[0], 0, &l, out);
    } else {
        rc = r->ntables || r->nnotes ? s_line_put(&l, "{", 1) : s_line_put(&l, "{}", 2);
        for (int i = 0; i < r->ntables && rc == 0; i++)
            rc = (i ? s_line_put(&l, ",", 1) : 0) | s_json_indent(&l, 1) |
                 s_json_str(&l, r->tables[i]->name) | s_line_put(&l, ": ", 2) |
                 s_json_table(r->tables[i], 1, &l, out);
        if (rc == 0 && r->nnotes) {
            rc = (r->ntables ? s_line_put(&l, ",", 1) : 0) | s_json_indent(&l, 1) |
                 s_line_put(&l, "\"notes\": [", 10);
            for (int i = 0; i < r->nnotes && rc == 0; i++)
                rc = (i ? s_line_put(&l, ",", 1) : 0) | s_json_indent(&l, 2) |
                     s_json_str(&l, r->notes[i]);
            rc |= s_json_indent(&l, 1) | s_line_put(&l, "]", 1);
        }
        if (rc == 0 && (r->ntables || r->nnotes))
            rc = s_json_indent(&l, 0) | s_line_put(&l, "}", 1);
    }
    rc |= s_line_put(&l, "\n", 1);
    if (rc == 0 && fwrite(l.s, 1, l.len, out) != l.len)
        rc = -1;
    free(l.s);
    return rc ? -1 : 0;
}

bm_report_t *bm_report_new(void)
{
    return calloc(1, sizeof(bm_report_t));
}

void bm_report_destroy(bm_report_t **report_p)
{
    if (!report_p || !*report_p)
        return;
    bm_report_t *r = *report_p;
    for (int i = 0; i < r->ntables; i++)
        bm_table_destroy(&r->tables[i]);
    for (int i = 0; i < r->nnotes; i++)
        free(r->notes[i]);
    free(r);
    *report_p = NULL;
}

int bm_report_add(bm_report_t *r, bm_table_t **table_p)
{
    if (!table_p || !*table_p)
        return -1;
    if (r->ntables >= BM_REPORT_MAX_TABLES) {
        bm_table_destroy(table_p);
        return -1;
    }
    r->tables[r->ntables++] = *table_p;
    *table_p = NULL;
    return 0;
}

int bm_report_note(bm_report_t *r, const char *fmt, ...)
{
    if (r->nnotes >= S_MAX_NOTES)
        return -1;
    char *s = malloc(S_NOTE_MAX);
    if (!s)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, S_NOTE_MAX, fmt, ap);
    va_end(ap);
    r->notes[r->nnotes++] = s;
    return 0;
}

int bm_report_print(const bm_report_t *r, bm_format_t fmt, FILE *out)
{
    if (fmt == BM_FMT_JSON)
        return s_print_json(r, out) == 0 && !ferror(out) ? 0 : -1;
    for (int i = 0; i < r->ntables; i++) {
        if (i > 0)
            fputs(fmt == BM_FMT_CSV ? "\r\n" : "\n", out);
        if (fmt == BM_FMT_CSV) {
            if (s_print_csv(r->tables[i], out) < 0)
                return -1;
        } else
            s_print_text(r->tables[i], r->ntables > 1, out);
    }
    if (fmt == BM_FMT_TABLE)
        for (int i = 0; i < r->nnotes; i++) {
            /* Notes name branches (their names come from store systems). */
            char *owned;
            fprintf(out, "%s%s\n", i == 0 ? "\n" : "", s_safe_text(r->notes[i], 0, &owned));
            free(owned);
        }
    return ferror(out) ? -1 : 0;
}
