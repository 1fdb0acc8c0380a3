/* output: renders result tables as aligned text, CSV (RFC 4180) or JSON.
 * Owns the tables' cells (copies of the text given) and the report's list
 * of tables and notes. */
#include "output.h"

#include <jansson.h>
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

/* The cell as text for the text and CSV formats. */
static const char *s_cell_str(const s_cell_t *c, bm_format_t fmt, char *buf, size_t size)
{
    switch (c->kind) {
    case S_TEXT:
        return c->text;
    case S_NUM: {
        double v = c->num;
        /* No "-0.0" for a value that rounds to zero. */
        double scale = pow(10.0, c->decimals);
        if (round(v * scale) == 0)
            v = 0;
        snprintf(buf, size, "%.*f", c->decimals, v);
        return buf;
    }
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

static int s_print_text(const bm_table_t *t, int with_title, FILE *out)
{
    size_t width[BM_TABLE_MAX_COLS];
    int right[BM_TABLE_MAX_COLS];
    char buf[64];
    for (int c = 0; c < t->ncols; c++) {
        width[c] = s_utf8_width(t->columns[c]);
        right[c] = 0;
    }
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < t->ncols; c++) {
            const s_cell_t *cell = &t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
            size_t w = s_utf8_width(s_cell_str(cell, BM_FMT_TABLE, buf, sizeof buf));
            if (w > width[c])
                width[c] = w;
            if (cell->kind == S_NUM || cell->kind == S_INT)
                right[c] = 1;
        }
    if (with_title)
        fprintf(out, "%s\n", t->name);
    for (int c = 0; c < t->ncols; c++) {
        size_t pad = width[c] - s_utf8_width(t->columns[c]);
        if (right[c])
            fprintf(out, "%*s%s", (int)pad, "", t->columns[c]);
        else if (c < t->ncols - 1)
            fprintf(out, "%s%*s", t->columns[c], (int)pad, "");
        else
            fputs(t->columns[c], out);
        fputs(c < t->ncols - 1 ? "  " : "\n", out);
    }
    for (int c = 0; c < t->ncols; c++) {
        for (size_t i = 0; i < width[c]; i++)
            fputc('-', out);
        fputs(c < t->ncols - 1 ? "  " : "\n", out);
    }
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < t->ncols; c++) {
            const s_cell_t *cell = &t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
            const char *s = s_cell_str(cell, BM_FMT_TABLE, buf, sizeof buf);
            size_t pad = width[c] - s_utf8_width(s);
            if (right[c])
                fprintf(out, "%*s%s", (int)pad, "", s);
            else if (c < t->ncols - 1)
                fprintf(out, "%s%*s", s, (int)pad, "");
            else
                fputs(s, out);
            fputs(c < t->ncols - 1 ? "  " : "\n", out);
        }
    if (t->rows == 0)
        fputs("(no rows)\n", out);
    return 0;
}

static void s_csv_field(const char *s, FILE *out)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static int s_print_csv(const bm_table_t *t, FILE *out)
{
    char buf[64];
    for (int c = 0; c < t->ncols; c++) {
        s_csv_field(t->columns[c], out);
        fputs(c < t->ncols - 1 ? "," : "\r\n", out);
    }
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < t->ncols; c++) {
            const s_cell_t *cell = &t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
            s_csv_field(s_cell_str(cell, BM_FMT_CSV, buf, sizeof buf), out);
            fputs(c < t->ncols - 1 ? "," : "\r\n", out);
        }
    return 0;
}

static json_t *s_table_json(const bm_table_t *t)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    for (int r = 0; r < t->rows; r++) {
        json_t *obj = json_object();
        if (!obj || json_array_append_new(arr, obj) < 0) {
            json_decref(arr);
            return NULL;
        }
        for (int c = 0; c < t->ncols; c++) {
            const s_cell_t *cell = &t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
            json_t *v;
            switch (cell->kind) {
            case S_TEXT:
                v = json_string(cell->text);
                break;
            case S_NUM: {
                double scale = pow(10.0, cell->decimals);
                v = json_real(round(cell->num * scale) / scale);
                break;
            }
            case S_INT:
                v = json_integer(cell->i);
                break;
            case S_ARROW:
                v = json_string(cell->i > 0 ? "up" : "down");
                break;
            case S_BOOL:
                v = json_boolean(cell->i);
                break;
            case S_EMPTY:
            default:
                v = json_null();
                break;
            }
            if (!v || json_object_set_new(obj, t->columns[c], v) < 0) {
                json_decref(arr);
                return NULL;
            }
        }
    }
    return arr;
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
    if (fmt == BM_FMT_JSON) {
        json_t *root;
        if (r->ntables == 1 && r->nnotes == 0) {
            root = s_table_json(r->tables[0]);
        } else {
            root = json_object();
            for (int i = 0; root && i < r->ntables; i++) {
                json_t *a = s_table_json(r->tables[i]);
                if (!a || json_object_set_new(root, r->tables[i]->name, a) < 0) {
                    json_decref(root);
                    root = NULL;
                }
            }
            if (root && r->nnotes) {
                json_t *notes = json_array();
                for (int i = 0; notes && i < r->nnotes; i++)
                    json_array_append_new(notes, json_string(r->notes[i]));
                json_object_set_new(root, "notes", notes);
            }
        }
        if (!root)
            return -1;
        int rc = json_dumpf(root, out, JSON_INDENT(2) | JSON_REAL_PRECISION(12) |
                                           JSON_PRESERVE_ORDER);
        json_decref(root);
        fputc('\n', out);
        return rc == 0 && !ferror(out) ? 0 : -1;
    }
    for (int i = 0; i < r->ntables; i++) {
        if (i > 0)
            fputs(fmt == BM_FMT_CSV ? "\r\n" : "\n", out);
        if (fmt == BM_FMT_CSV)
            s_print_csv(r->tables[i], out);
        else
            s_print_text(r->tables[i], r->ntables > 1, out);
    }
    if (fmt == BM_FMT_TABLE)
        for (int i = 0; i < r->nnotes; i++)
            fprintf(out, "%s%s\n", i == 0 ? "\n" : "", r->notes[i]);
    return ferror(out) ? -1 : 0;
}
