/* bm_prom: the Prometheus text-format writer; see bm_prom.h.
 * Owns: the page buffer (grown by doubling up to its cap). */
#include "bm_prom.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_INITIAL 4096

struct bm_prom {
    char *buf;              /* NUL-terminated page so far */
    size_t len, cap;        /* cap: allocated bytes */
    size_t max;             /* the page's hard cap */
    bool overflow;          /* a write went past max, or memory ran out */
};

void bm_prom_hist_init(bm_prom_hist_t *h, const double *bounds, size_t n)
{
    assert(n <= BM_PROM_HIST_MAX);
    memset(h, 0, sizeof *h);
    for (size_t i = 0; i < n; i++) {
        assert(i == 0 || bounds[i] > bounds[i - 1]);
        h->bounds[i] = bounds[i];
    }
    h->n_bounds = n;
}

void bm_prom_hist_observe(bm_prom_hist_t *h, double v)
{
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
}

uint64_t bm_prom_hist_count(const bm_prom_hist_t *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= h->n_bounds; i++)
        n += h->counts[i];
    return n;
}

bm_prom_t *bm_prom_new(size_t max_bytes)
{
    bm_prom_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->max = max_bytes;
    self->cap = max_bytes < S_INITIAL ? max_bytes + 1 : S_INITIAL;
    self->buf = malloc(self->cap);
    if (!self->buf) {
        free(self);
        return NULL;
    }
    self->buf[0] = '\0';
    return self;
}

void bm_prom_destroy(bm_prom_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->buf);
    free(*self_p);
    *self_p = NULL;
}

bool bm_prom_overflow(const bm_prom_t *self)
{
    return self->overflow;
}

/* Appends s[0..n); past the cap (or out of memory) sets overflow instead. */
static void s_put(bm_prom_t *self, const char *s, size_t n)
{
    if (self->overflow)
        return;
    if (self->len + n > self->max) {
        self->overflow = true;
        return;
    }
    if (self->len + n + 1 > self->cap) {
        size_t cap = self->cap;
        while (self->len + n + 1 > cap)
            cap *= 2;
        if (cap > self->max + 1)
            cap = self->max + 1;
        char *nb = realloc(self->buf, cap);
        if (!nb) {
            self->overflow = true;
            return;
        }
        self->buf = nb;
        self->cap = cap;
    }
    memcpy(self->buf + self->len, s, n);
    self->len += n;
    self->buf[self->len] = '\0';
}

static void s_puts(bm_prom_t *self, const char *s)
{
    s_put(self, s, strlen(s));
}

/* Writes s escaped: `\` and newline always, `"` too in label values. */
static void s_escaped(bm_prom_t *self, const char *s, bool label)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n"
                          : (label && *s == '"') ? "\\\"" : NULL;
        if (!rep)
            continue;
        s_put(self, run, (size_t)(s - run));
        s_puts(self, rep);
        run = s + 1;
    }
    s_put(self, run, (size_t)(s - run));
}

__attribute__((unused)) static bool s_name_ok(const char *s, bool metric)
{
    if (!s || !*s || (!metric && s[0] == '_' && s[1] == '_'))
        return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                     (metric && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

void bm_prom_format_value(double v, char *buf, size_t size)
{
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* The shortest of %.15g and %.17g that reads back as v. */
    snprintf(buf, size, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, size, "%.17g", v);
}

void bm_prom_family(bm_prom_t *self, const char *name, bm_prom_type_t type, const char *help)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    assert(s_name_ok(name, true));
    assert((unsigned)type <= BM_PROM_HISTOGRAM);
    s_puts(self, "# HELP ");
    s_puts(self, name);
    s_puts(self, " ");
    s_escaped(self, help ? help : "", false);
    s_puts(self, "\n# TYPE ");
    s_puts(self, name);
    s_puts(self, " ");
    s_puts(self, types[type]);
    s_puts(self, "\n");
}

/* `name{labels[,extra]} value\n`; ap holds (name, value) pairs, NULL. */
static void s_line(bm_prom_t *self, const char *name, const char *suffix, va_list ap,
                   const char *extra_name, const char *extra_value, double value)
{
    assert(s_name_ok(name, true));
    s_puts(self, name);
    s_puts(self, suffix);
    bool any = false;
    for (;;) {
        const char *ln = va_arg(ap, const char *);
        if (!ln)
            break;
        const char *lv = va_arg(ap, const char *);
        assert(s_name_ok(ln, false) && strcmp(ln, "le") != 0);
        s_puts(self, any ? "," : "{");
        s_puts(self, ln);
        s_puts(self, "=\"");
        s_escaped(self, lv ? lv : "", true);
        s_puts(self, "\"");
        any = true;
    }
    if (extra_name) {
        s_puts(self, any ? "," : "{");
        s_puts(self, extra_name);
        s_puts(self, "=\"");
        s_puts(self, extra_value);
        s_puts(self, "\"");
        any = true;
    }
    if (any)
        s_puts(self, "}");
    char num[40];
    bm_prom_format_value(value, num, sizeof num);
    s_puts(self, " ");
    s_puts(self, num);
    s_puts(self, "\n");
}

void bm_prom_sample(bm_prom_t *self, const char *name, double value, ...)
{
    va_list ap;
    va_start(ap, value);
    s_line(self, name, "", ap, NULL, NULL, value);
    va_end(ap);
}

void bm_prom_hist(bm_prom_t *self, const char *name, const bm_prom_hist_t *h, ...)
{
    uint64_t cum = 0;
    char le[40];
    va_list ap;
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cum += h->counts[i];
        if (i < h->n_bounds)
            bm_prom_format_value(h->bounds[i], le, sizeof le);
        else
            snprintf(le, sizeof le, "+Inf");
        va_start(ap, h);
        s_line(self, name, "_bucket", ap, "le", le, (double)cum);
        va_end(ap);
    }
    va_start(ap, h);
    s_line(self, name, "_sum", ap, NULL, NULL, h->sum);
    va_end(ap);
    va_start(ap, h);
    s_line(self, name, "_count", ap, NULL, NULL, (double)cum);
    va_end(ap);
}

char *bm_prom_take(bm_prom_t *self, size_t *len, bm_err_t *err)
{
    char *out = NULL;
    if (self->overflow)
        bm_err_set(err, "metrics page larger than %zu bytes", self->max);
    else if (!(out = strdup(self->buf)))
        bm_err_set(err, "out of memory");
    if (out && len)
        *len = self->len;
    self->len = 0;
    self->buf[0] = '\0';
    self->overflow = false;
    return out;
}
