/* bm_config: config files described by a config map; see bm_config.h. */
#include "bm_config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BM_CFG_LINE_MAX 4096

static void *s_field(void *target, const bm_cfg_entry_t *e)
{
    return (char *)target + e->offset;
}

static void s_strlist_clear(bm_strlist_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

static int s_parse_int_suffix(const char *v, int64_t *out, int kind, bm_err_t *err)
{
    /* kind 0: plain integer, 1: size, 2: duration */
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (end == v || errno == ERANGE)
        return bm_err_set(err, "\"%s\" is not a number", v);
    while (*end == ' ')
        end++;
    int64_t mult = 1;
    if (kind == 1) {
        if (*end == 'K' || *end == 'k')
            mult = 1024, end++;
        else if (*end == 'M' || *end == 'm')
            mult = 1024 * 1024, end++;
        else if (*end == 'G' || *end == 'g')
            mult = 1024LL * 1024 * 1024, end++;
        if (*end == 'B' || *end == 'b' || *end == 'i')
            end += (*end == 'i' && (end[1] == 'B' || end[1] == 'b')) ? 2 : 1;
    } else if (kind == 2) {
        if (strcmp(end, "ms") == 0)
            end += 2;
        else if (strcmp(end, "s") == 0)
            mult = 1000, end += 1;
        else if (strcmp(end, "m") == 0)
            mult = 60000, end += 1;
        else if (strcmp(end, "h") == 0)
            mult = 3600000, end += 1;
    }
    if (*end != '\0')
        return bm_err_set(err, "\"%s\" has an unknown unit \"%s\"", v, end);
    if (n < 0 && kind != 0)
        return bm_err_set(err, "\"%s\" must not be negative", v);
    if (n != 0 && (n > INT64_MAX / mult || n < INT64_MIN / mult))
        return bm_err_set(err, "\"%s\" is too large", v);
    *out = (int64_t)n * mult;
    return 0;
}

int bm_config_set(const bm_cfg_entry_t *map, void *target, const char *key,
                  const char *value, bm_err_t *err)
{
    const bm_cfg_entry_t *e = map;
    while (e->key && strcmp(e->key, key) != 0)
        e++;
    if (!e->key)
        return bm_err_set(err, "unknown key \"%s\"", key);

    void *f = s_field(target, e);
    switch (e->type) {
    case BM_CFG_STR: {
        char *copy = strdup(value);
        if (!copy)
            return bm_err_set(err, "out of memory");
        free(*(char **)f);
        *(char **)f = copy;
        return 0;
    }
    case BM_CFG_STRLIST: {
        bm_strlist_t *l = f;
        char **items = realloc(l->items, (l->count + 1) * sizeof *items);
        if (!items)
            return bm_err_set(err, "out of memory");
        l->items = items;
        if (!(l->items[l->count] = strdup(value)))
            return bm_err_set(err, "out of memory");
        l->count++;
        return 0;
    }
    case BM_CFG_BOOL: {
        bool b;
        if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") ||
            !strcasecmp(value, "on") || !strcmp(value, "1"))
            b = true;
        else if (!strcasecmp(value, "false") || !strcasecmp(value, "no") ||
                 !strcasecmp(value, "off") || !strcmp(value, "0"))
            b = false;
        else
            return bm_err_set(err, "%s: \"%s\" is not a boolean (use true or false)",
                              key, value);
        *(bool *)f = b;
        return 0;
    }
    case BM_CFG_INT:
    case BM_CFG_SIZE:
    case BM_CFG_DURATION: {
        int64_t n = 0;
        int kind = e->type == BM_CFG_INT ? 0 : e->type == BM_CFG_SIZE ? 1 : 2;
        if (s_parse_int_suffix(value, &n, kind, err) < 0)
            return bm_err_prefix(err, "%s", key);
        if (n < e->min || n > e->max)
            return bm_err_set(err, "%s: %" PRId64 " is out of range %" PRId64 "..%" PRId64,
                              key, n, e->min, e->max);
        *(int64_t *)f = n;
        return 0;
    }
    }
    return bm_err_set(err, "%s: bad config map entry", key);
}

void bm_config_defaults(const bm_cfg_entry_t *map, void *target)
{
    for (const bm_cfg_entry_t *e = map; e->key; e++) {
        if (e->type == BM_CFG_STRLIST)
            s_strlist_clear(s_field(target, e));
        if (e->default_value) {
            int rc = bm_config_set(map, target, e->key, e->default_value, NULL);
            (void)rc; /* defaults are part of the program; a bad one is a bug */
        }
    }
}

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int bm_config_load(const char *path, const bm_cfg_entry_t *map, void *target,
                   bm_err_t *err)
{
    bm_config_defaults(map, target);

    FILE *fp = fopen(path, "r");
    if (!fp)
        return bm_err_set(err, "could not open config file \"%s\": %s", path,
                          strerror(errno));

    /* Remember which keys the file set, to check required ones and to let a
     * STRLIST in the file replace its default instead of adding to it. */
    size_t nkeys = 0;
    while (map[nkeys].key)
        nkeys++;
    bool *seen = calloc(nkeys + 1, sizeof *seen);
    if (!seen) {
        fclose(fp);
        return bm_err_set(err, "out of memory");
    }

    char line[BM_CFG_LINE_MAX + 2];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(fp)) {
            rc = bm_err_set(err, "%s:%d: line is longer than %d bytes", path,
                            lineno, BM_CFG_LINE_MAX);
            break;
        }
        char *s = s_trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = bm_err_set(err, "%s:%d: expected \"key = value\"", path, lineno);
            break;
        }
        *eq = '\0';
        char *key = s_trim(s), *value = s_trim(eq + 1);
        size_t vl = strlen(value);
        if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
            value[vl - 1] = '\0';
            value++;
        }
        size_t idx = 0;
        while (map[idx].key && strcmp(map[idx].key, key) != 0)
            idx++;
        if (!map[idx].key) {
            rc = bm_err_set(err, "%s:%d: unknown key \"%s\"", path, lineno, key);
            break;
        }
        if (seen[idx] && map[idx].type != BM_CFG_STRLIST) {
            rc = bm_err_set(err, "%s:%d: key \"%s\" is set twice", path, lineno, key);
            break;
        }
        if (!seen[idx] && map[idx].type == BM_CFG_STRLIST)
            s_strlist_clear(s_field(target, &map[idx]));
        seen[idx] = true;
        if (bm_config_set(map, target, key, value, err) < 0) {
            rc = bm_err_prefix(err, "%s:%d", path, lineno);
            break;
        }
    }
    if (rc == 0 && ferror(fp))
        rc = bm_err_set(err, "could not read config file \"%s\": %s", path, strerror(errno));
    fclose(fp);

    for (size_t i = 0; rc == 0 && i < nkeys; i++)
        if (map[i].required && !seen[i])
            rc = bm_err_set(err, "%s: required key \"%s\" is missing", path, map[i].key);
    free(seen);
    return rc;
}

void bm_config_free(const bm_cfg_entry_t *map, void *target)
{
    for (const bm_cfg_entry_t *e = map; e->key; e++) {
        void *f = s_field(target, e);
        if (e->type == BM_CFG_STR) {
            free(*(char **)f);
            *(char **)f = NULL;
        } else if (e->type == BM_CFG_STRLIST) {
            s_strlist_clear(f);
        }
    }
}

void bm_config_print_help(FILE *out, const bm_cfg_entry_t *map)
{
    static const char *const type_names[] = {"string", "integer", "boolean",
                                             "size", "duration", "list"};
    for (const bm_cfg_entry_t *e = map; e->key; e++) {
        fprintf(out, "  %-22s %-8s %s", e->key, type_names[e->type], e->help);
        if (e->required)
            fprintf(out, " (required)");
        else if (e->default_value)
            fprintf(out, " (default: %s)", e->default_value);
        fputc('\n', out);
    }
}
