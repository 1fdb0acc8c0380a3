/* refdata: parse, validate and load the reference data file; see refdata.h.
 *
 * Owns the parsed model (arrays allocated here, strings borrowed from the
 * jansson document kept in priv) and, in the database, the rows of chain,
 * regions, branches, branch_versions, competitor_outlets, questionnaires,
 * questionnaire_sections and questionnaire_items. */
#include "refdata.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bm_wire.h"
#include "db.h"

/* "brmk" "refd": serialises concurrent loads of reference data. */
#define S_REFDATA_LOCK_KEY "7165071575254230372"

#define S_PATH_MAX 160

/* ------------------------------------------------------------------ */
/* JSON access with errors that name the path                          */
/* ------------------------------------------------------------------ */

static const char *s_json_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "something else";
}

static size_t s_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* Refuses keys not in allowed (NULL-terminated): a typo such as
 * "lattitude" must not silently drop a value. */
static int s_check_keys(const json_t *obj, const char *path,
                        const char *const *allowed, bm_err_t *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        const char *const *a = allowed;
        while (*a && strcmp(*a, key) != 0)
            a++;
        if (!*a)
            return bm_err_set(err, "%s%sunknown key \"%s\"", path, *path ? ": " : "", key);
    }
    return 0;
}

static int s_want_object(const json_t *v, const char *path, bm_err_t *err)
{
    if (!json_is_object(v))
        return bm_err_set(err, "%s: expected an object, got %s", path, s_json_type(v));
    return 0;
}

/* Returns the member or NULL; a missing required member is an error
 * (-1 through *rc). */
static json_t *s_member(const json_t *obj, const char *path, const char *key,
                        bool required, int *rc, bm_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v && required)
        *rc = bm_err_set(err, "%s%s%s: required field is missing", path, *path ? "." : "",
                         key);
    return v;
}

static int s_get_string(const json_t *obj, const char *path, const char *key,
                        bool required, size_t min_chars, size_t max_chars,
                        const char **out, bm_err_t *err)
{
    int rc = 0;
    json_t *v = s_member(obj, path, key, required, &rc, err);
    if (rc < 0)
        return -1;
    if (!v) {
        *out = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return bm_err_set(err, "%s.%s: expected a string, got %s", path, key, s_json_type(v));
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return bm_err_set(err, "%s.%s: contains a NUL character", path, key);
    size_t n = s_utf8_chars(s);
    if (n < min_chars || n > max_chars)
        return bm_err_set(err, "%s.%s: length %zu is out of range %zu..%zu", path, key,
                          n, min_chars, max_chars);
    *out = s;
    return 0;
}

static int s_get_code(const json_t *obj, const char *path, const char *key,
                      const char **out, bm_err_t *err)
{
    int rc = 0;
    json_t *v = s_member(obj, path, key, true, &rc, err);
    if (rc < 0)
        return -1;
    if (!json_is_string(v))
        return bm_err_set(err, "%s.%s: expected a string, got %s", path, key, s_json_type(v));
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || !bm_code_valid(s, BM_CODE_MAX))
        return bm_err_set(err, "%s.%s: \"%s\" is not a valid code (1..%d of A-Z a-z 0-9 _ . -)",
                          path, key, s, BM_CODE_MAX);
    *out = s;
    return 0;
}

/* *present (may be NULL when required) says whether the member was given. */
static int s_get_number(const json_t *obj, const char *path, const char *key,
                        bool required, double *out, bool *present, bm_err_t *err)
{
    int rc = 0;
    json_t *v = s_member(obj, path, key, required, &rc, err);
    if (rc < 0)
        return -1;
    if (present)
        *present = v != NULL;
    if (!v)
        return 0;
    if (!json_is_number(v))
        return bm_err_set(err, "%s.%s: expected a number, got %s", path, key, s_json_type(v));
    *out = json_number_value(v);
    if (!isfinite(*out))
        return bm_err_set(err, "%s.%s: is not a finite number", path, key);
    return 0;
}

static int s_get_bool(const json_t *obj, const char *path, const char *key,
                      bool dflt, bool *out, bm_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return bm_err_set(err, "%s.%s: expected a boolean, got %s", path, key, s_json_type(v));
    *out = json_is_true(v);
    return 0;
}

/* The array member key of obj with 0..max entries (min_entries..). */
static int s_get_array(const json_t *obj, const char *path, const char *key,
                       size_t min_entries, size_t max_entries, json_t **out,
                       bm_err_t *err)
{
    int rc = 0;
    json_t *v = s_member(obj, path, key, true, &rc, err);
    if (rc < 0)
        return -1;
    if (!json_is_array(v))
        return bm_err_set(err, "%s%s%s: expected an array, got %s", path, *path ? "." : "",
                          key, s_json_type(v));
    size_t n = json_array_size(v);
    if (n < min_entries || n > max_entries)
        return bm_err_set(err, "%s%s%s: %zu entries, expected %zu..%zu", path,
                          *path ? "." : "", key, n, min_entries, max_entries);
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Duplicate detection by sorting (code, index) pairs                  */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *code;
    size_t index;
} s_code_ref_t;

static int s_code_ref_cmp(const void *a, const void *b)
{
    const s_code_ref_t *x = a, *y = b;
    int c = strcmp(x->code, y->code);
    if (c)
        return c;
    return (x->index > y->index) - (x->index < y->index);
}

/* Sorts refs and reports the first duplicate as "<what>[j].code: duplicate
 * <noun> code "X" (also <what>[i])".  Returns 0 or -1 with err. */
static int s_check_unique(s_code_ref_t *refs, size_t n, const char *what,
                          const char *noun, bm_err_t *err)
{
    qsort(refs, n, sizeof *refs, s_code_ref_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(refs[i - 1].code, refs[i].code) == 0)
            return bm_err_set(err, "%s[%zu].code: duplicate %s code \"%s\" (also %s[%zu])",
                              what, refs[i].index, noun, refs[i].code, what,
                              refs[i - 1].index);
    return 0;
}

static const s_code_ref_t *s_find_code(const s_code_ref_t *refs, size_t n, const char *code)
{
    s_code_ref_t key = {code, 0};
    size_t lo = 0, hi = n;
    while (lo < hi) {   /* first entry >= code */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(refs[mid].code, key.code) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && strcmp(refs[lo].code, code) == 0 ? &refs[lo] : NULL;
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */
/* ------------------------------------------------------------------ */

static int s_parse_chain(const json_t *root, bm_refdata_t *rd, bm_err_t *err)
{
    static const char *const keys[] = {"code", "name", "timezone", NULL};
    int rc = 0;
    json_t *c = s_member(root, "", "chain", true, &rc, err);
    if (rc < 0)
        return -1;
    if (s_want_object(c, "chain", err) < 0 || s_check_keys(c, "chain", keys, err) < 0 ||
        s_get_code(c, "chain", "code", &rd->chain.code, err) < 0 ||
        s_get_string(c, "chain", "name", true, 1, BM_REFDATA_NAME_MAX, &rd->chain.name, err) < 0 ||
        s_get_string(c, "chain", "timezone", true, 1, 64, &rd->chain.timezone, err) < 0)
        return -1;
    /* Only the syntax here; the name itself is checked against the
     * server's pg_timezone_names at load time. */
    for (const char *p = rd->chain.timezone; *p; p++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_/+-", *p))
            return bm_err_set(err, "chain.timezone: \"%s\" is not a time zone name "
                              "(such as \"Europe/Sofia\")", rd->chain.timezone);
    return 0;
}

static int s_parse_regions(const json_t *root, bm_refdata_t *rd, s_code_ref_t **refs_out,
                           bm_err_t *err)
{
    static const char *const keys[] = {"code", "name", NULL};
    json_t *arr;
    if (s_get_array(root, "", "regions", 1, BM_REFDATA_REGIONS_MAX, &arr, err) < 0)
        return -1;
    size_t n = json_array_size(arr);
    rd->regions = calloc(n, sizeof *rd->regions);
    s_code_ref_t *refs = calloc(n, sizeof *refs);
    *refs_out = refs;
    if (!rd->regions || !refs)
        return bm_err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char path[S_PATH_MAX];
        snprintf(path, sizeof path, "regions[%zu]", i);
        json_t *o = json_array_get(arr, i);
        bm_ref_region_t *r = &rd->regions[i];
        if (s_want_object(o, path, err) < 0 || s_check_keys(o, path, keys, err) < 0 ||
            s_get_code(o, path, "code", &r->code, err) < 0 ||
            s_get_string(o, path, "name", true, 1, BM_REFDATA_NAME_MAX, &r->name, err) < 0)
            return -1;
        refs[i] = (s_code_ref_t){r->code, i};
        rd->n_regions++;
    }
    return s_check_unique(refs, n, "regions", "region", err);
}

/* Branches (competitor == false) or competitor outlets. */
static int s_parse_outlets(const json_t *root, bool competitor, const s_code_ref_t *regions,
                           size_t n_regions, bm_refdata_t *rd, bm_err_t *err)
{
    static const char *const branch_keys[] = {"code", "name", "region", "latitude",
                                              "longitude", "active", NULL};
    static const char *const comp_keys[] = {"code", "name", "brand", "region", "latitude",
                                            "longitude", "active", NULL};
    const char *what = competitor ? "competitors" : "branches";
    json_t *arr;
    /* A chain may have no competitors in the programme yet. */
    if (competitor && !json_object_get(root, what))
        return 0;
    if (s_get_array(root, "", what, competitor ? 0 : 1, BM_REFDATA_OUTLETS_MAX, &arr, err) < 0)
        return -1;
    size_t n = json_array_size(arr);
    bm_ref_outlet_t *outlets = calloc(n ? n : 1, sizeof *outlets);
    if (competitor)
        rd->competitors = outlets;
    else
        rd->branches = outlets;
    s_code_ref_t *refs = calloc(n ? n : 1, sizeof *refs);
    if (!outlets || !refs) {
        free(refs);
        return bm_err_set(err, "out of memory");
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[S_PATH_MAX];
        snprintf(path, sizeof path, "%s[%zu]", what, i);
        json_t *o = json_array_get(arr, i);
        bm_ref_outlet_t *b = &outlets[i];
        const char *region;
        bool has_lat, has_lon;
        if (s_want_object(o, path, err) < 0 ||
            s_check_keys(o, path, competitor ? comp_keys : branch_keys, err) < 0 ||
            s_get_code(o, path, "code", &b->code, err) < 0 ||
            s_get_string(o, path, "name", true, 1, BM_REFDATA_NAME_MAX, &b->name, err) < 0 ||
            (competitor &&
             s_get_string(o, path, "brand", true, 1, BM_REFDATA_NAME_MAX, &b->brand, err) < 0) ||
            s_get_code(o, path, "region", &region, err) < 0 ||
            s_get_number(o, path, "latitude", false, &b->latitude, &has_lat, err) < 0 ||
            s_get_number(o, path, "longitude", false, &b->longitude, &has_lon, err) < 0 ||
            s_get_bool(o, path, "active", true, &b->active, err) < 0) {
            rc = -1;
            break;
        }
        const s_code_ref_t *reg = s_find_code(regions, n_regions, region);
        if (!reg) {
            rc = bm_err_set(err, "%s.region: unknown region \"%s\"", path, region);
            break;
        }
        b->region = reg->index;
        if (has_lat != has_lon) {
            rc = bm_err_set(err, "%s: latitude and longitude must be given together (%s is missing)",
                            path, has_lat ? "longitude" : "latitude");
            break;
        }
        b->has_position = has_lat;
        if (has_lat && (b->latitude < -90 || b->latitude > 90))
            rc = bm_err_set(err, "%s.latitude: %g is out of range -90..90", path, b->latitude);
        else if (has_lat && (b->longitude < -180 || b->longitude > 180))
            rc = bm_err_set(err, "%s.longitude: %g is out of range -180..180", path, b->longitude);
        refs[i] = (s_code_ref_t){b->code, i};
        if (competitor)
            rd->n_competitors++;
        else
            rd->n_branches++;
    }
    if (rc == 0)
        rc = s_check_unique(refs, n, what, competitor ? "competitor" : "branch", err);
    free(refs);
    return rc;
}

static int s_parse_section(const json_t *o, const char *path, bm_ref_section_t *s,
                           bm_err_t *err)
{
    static const char *const keys[] = {"code", "title", "weight", "critical_rule",
                                       "cap_percent", "items", NULL};
    static const char *const item_keys[] = {"code", "text", "max_points", "weight",
                                            "critical", "bonus", NULL};
    const char *rule;
    bool has_weight, has_cap;
    json_t *items;
    if (s_want_object(o, path, err) < 0 || s_check_keys(o, path, keys, err) < 0 ||
        s_get_code(o, path, "code", &s->code, err) < 0 ||
        s_get_string(o, path, "title", true, 1, BM_REFDATA_NAME_MAX, &s->title, err) < 0 ||
        s_get_number(o, path, "weight", false, &s->weight, &has_weight, err) < 0 ||
        s_get_string(o, path, "critical_rule", false, 1, 32, &rule, err) < 0 ||
        s_get_number(o, path, "cap_percent", false, &s->cap_percent, &has_cap, err) < 0 ||
        s_get_array(o, path, "items", 1, BM_REFDATA_ITEMS_MAX, &items, err) < 0)
        return -1;
    if (!has_weight)
        s->weight = 1;
    else if (s->weight <= 0)
        return bm_err_set(err, "%s.weight: %g must be greater than 0", path, s->weight);
    if (!rule || strcmp(rule, "zero_section") == 0)
        s->critical_rule = BM_CRIT_ZERO_SECTION;
    else if (strcmp(rule, "zero_total") == 0)
        s->critical_rule = BM_CRIT_ZERO_TOTAL;
    else if (strcmp(rule, "cap") == 0)
        s->critical_rule = BM_CRIT_CAP;
    else
        return bm_err_set(err, "%s.critical_rule: \"%s\" is not one of zero_section, "
                          "zero_total, cap", path, rule);
    if (s->critical_rule == BM_CRIT_CAP && !has_cap)
        return bm_err_set(err, "%s.cap_percent: required field is missing "
                          "(critical_rule is \"cap\")", path);
    if (s->critical_rule != BM_CRIT_CAP && has_cap)
        return bm_err_set(err, "%s.cap_percent: only allowed with critical_rule \"cap\"", path);
    if (has_cap && (s->cap_percent < 0 || s->cap_percent > 100))
        return bm_err_set(err, "%s.cap_percent: %g is out of range 0..100", path, s->cap_percent);

    size_t n = json_array_size(items);
    s->items = calloc(n, sizeof *s->items);
    if (!s->items)
        return bm_err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char ipath[S_PATH_MAX];
        snprintf(ipath, sizeof ipath, "%s.items[%zu]", path, i);
        const json_t *io = json_array_get(items, i);
        bm_ref_item_t *it = &s->items[i];
        bool has_iw;
        if (s_want_object(io, ipath, err) < 0 || s_check_keys(io, ipath, item_keys, err) < 0 ||
            s_get_code(io, ipath, "code", &it->code, err) < 0 ||
            s_get_string(io, ipath, "text", true, 1, BM_REFDATA_TEXT_MAX, &it->text, err) < 0 ||
            s_get_number(io, ipath, "max_points", true, &it->max_points, NULL, err) < 0 ||
            s_get_number(io, ipath, "weight", false, &it->weight, &has_iw, err) < 0 ||
            s_get_bool(io, ipath, "critical", false, &it->critical, err) < 0 ||
            s_get_bool(io, ipath, "bonus", false, &it->bonus, err) < 0)
            return -1;
        if (it->max_points <= 0)
            return bm_err_set(err, "%s.max_points: %g must be greater than 0", ipath,
                              it->max_points);
        if (!has_iw)
            it->weight = 1;
        else if (it->weight <= 0)
            return bm_err_set(err, "%s.weight: %g must be greater than 0", ipath, it->weight);
        if (it->critical && it->bonus)
            return bm_err_set(err, "%s: an item cannot be both critical and bonus", ipath);
        s->n_items++;
    }
    return 0;
}

/* The canonical serialisation: every field with its default made explicit,
 * numbers as reals, keys sorted, no blanks.  Two files that define the same
 * questionnaire hash the same however they are formatted. */
static int s_questionnaire_hash(bm_ref_questionnaire_t *q, bm_err_t *err)
{
    json_t *sections = json_array();
    json_t *doc = json_pack("{s:s, s:i, s:s, s:o}", "code", q->code, "version", q->version,
                            "title", q->title, "sections", sections);
    if (!doc)
        return bm_err_set(err, "out of memory");
    for (size_t i = 0; i < q->n_sections; i++) {
        const bm_ref_section_t *s = &q->sections[i];
        json_t *items = json_array();
        json_t *so = json_pack("{s:s, s:s, s:f, s:s, s:o, s:o}", "code", s->code,
                               "title", s->title, "weight", s->weight,
                               "critical_rule", bm_critical_rule_name(s->critical_rule),
                               "cap_percent",
                               s->critical_rule == BM_CRIT_CAP ? json_real(s->cap_percent)
                                                               : json_null(),
                               "items", items);
        if (!so || json_array_append_new(sections, so) < 0) {
            json_decref(doc);
            return bm_err_set(err, "out of memory");
        }
        for (size_t j = 0; j < s->n_items; j++) {
            const bm_ref_item_t *it = &s->items[j];
            json_t *io = json_pack("{s:s, s:s, s:f, s:f, s:b, s:b}", "code", it->code,
                                   "text", it->text, "max_points", it->max_points,
                                   "weight", it->weight, "critical", it->critical,
                                   "bonus", it->bonus);
            if (!io || json_array_append_new(items, io) < 0) {
                json_decref(doc);
                return bm_err_set(err, "out of memory");
            }
        }
    }
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(doc);
    if (!text)
        return bm_err_set(err, "out of memory");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL);
    free(text);
    if (!ok || mdlen != 32)
        return bm_err_set(err, "could not compute SHA-256");
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(q->content_sha256 + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static int s_parse_questionnaires(const json_t *root, bm_refdata_t *rd, bm_err_t *err)
{
    static const char *const keys[] = {"code", "version", "title", "sections", NULL};
    json_t *arr;
    if (!json_object_get(root, "questionnaires"))
        return 0;
    if (s_get_array(root, "", "questionnaires", 0, BM_REFDATA_QUESTIONNAIRES_MAX, &arr, err) < 0)
        return -1;
    size_t n = json_array_size(arr);
    rd->questionnaires = calloc(n ? n : 1, sizeof *rd->questionnaires);
    if (!rd->questionnaires)
        return bm_err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof path, "questionnaires[%zu]", i);
        const json_t *o = json_array_get(arr, i);
        bm_ref_questionnaire_t *q = &rd->questionnaires[i];
        json_t *sections, *ver;
        int rc = 0;
        if (s_want_object(o, path, err) < 0 || s_check_keys(o, path, keys, err) < 0 ||
            s_get_code(o, path, "code", &q->code, err) < 0)
            return -1;
        ver = s_member(o, path, "version", true, &rc, err);
        if (rc < 0)
            return -1;
        if (!json_is_integer(ver))
            return bm_err_set(err, "%s.version: expected an integer, got %s", path,
                              json_is_real(ver) ? "a fraction" : s_json_type(ver));
        if (json_integer_value(ver) < 1 || json_integer_value(ver) > INT_MAX)
            return bm_err_set(err, "%s.version: %" JSON_INTEGER_FORMAT " must be at least 1",
                              path, json_integer_value(ver));
        q->version = (int)json_integer_value(ver);
        if (s_get_string(o, path, "title", true, 1, BM_REFDATA_NAME_MAX, &q->title, err) < 0 ||
            s_get_array(o, path, "sections", 1, BM_REFDATA_SECTIONS_MAX, &sections, err) < 0)
            return -1;
        rd->n_questionnaires++;
        size_t ns = json_array_size(sections);
        q->sections = calloc(ns, sizeof *q->sections);
        if (!q->sections)
            return bm_err_set(err, "out of memory");
        size_t total_items = 0;
        for (size_t j = 0; j < ns; j++) {
            char spath[128];
            snprintf(spath, sizeof spath, "%s.sections[%zu]", path, j);
            q->n_sections++;
            if (s_parse_section(json_array_get(sections, j), spath, &q->sections[j], err) < 0)
                return -1;
            total_items += q->sections[j].n_items;
        }
        if (total_items > BM_REFDATA_ITEMS_MAX)
            return bm_err_set(err, "%s: %zu items, at most %d are allowed", path, total_items,
                              BM_REFDATA_ITEMS_MAX);

        /* Section codes and item codes are unique within the version. */
        s_code_ref_t refs[BM_REFDATA_ITEMS_MAX];
        for (size_t j = 0; j < ns; j++)
            refs[j] = (s_code_ref_t){q->sections[j].code, j};
        qsort(refs, ns, sizeof refs[0], s_code_ref_cmp);
        for (size_t j = 1; j < ns; j++)
            if (strcmp(refs[j - 1].code, refs[j].code) == 0)
                return bm_err_set(err, "%s.sections[%zu].code: duplicate section code \"%s\" "
                                  "(also sections[%zu])", path, refs[j].index, refs[j].code,
                                  refs[j - 1].index);
        size_t k = 0;
        for (size_t j = 0; j < ns; j++)
            for (size_t m = 0; m < q->sections[j].n_items; m++)
                refs[k++] = (s_code_ref_t){q->sections[j].items[m].code, j * 1000 + m};
        qsort(refs, k, sizeof refs[0], s_code_ref_cmp);
        for (size_t j = 1; j < k; j++)
            if (strcmp(refs[j - 1].code, refs[j].code) == 0)
                return bm_err_set(err, "%s.sections[%zu].items[%zu].code: duplicate item code "
                                  "\"%s\" (also sections[%zu].items[%zu])", path,
                                  refs[j].index / 1000, refs[j].index % 1000, refs[j].code,
                                  refs[j - 1].index / 1000, refs[j - 1].index % 1000);
        if (s_questionnaire_hash(q, err) < 0)
            return -1;
    }
    /* (code, version) is unique in the file. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(rd->questionnaires[i].code, rd->questionnaires[j].code) == 0 &&
                rd->questionnaires[i].version == rd->questionnaires[j].version)
                return bm_err_set(err, "questionnaires[%zu]: duplicate questionnaire \"%s\" "
                                  "version %d (also questionnaires[%zu])", j,
                                  rd->questionnaires[j].code, rd->questionnaires[j].version, i);
    return 0;
}

bm_refdata_t *bm_refdata_parse(const char *text, size_t len, bm_err_t *err)
{
    static const char *const keys[] = {"chain", "regions", "branches", "competitors",
                                       "questionnaires", NULL};
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        bm_err_set(err, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    bm_refdata_t *rd = calloc(1, sizeof *rd);
    if (!rd) {
        json_decref(root);
        bm_err_set(err, "out of memory");
        return NULL;
    }
    rd->priv = root;
    s_code_ref_t *regions = NULL;
    if (!json_is_object(root)) {
        bm_err_set(err, "the document must be an object, not %s", s_json_type(root));
        goto fail;
    }
    if (s_check_keys(root, "", keys, err) < 0 || s_parse_chain(root, rd, err) < 0 ||
        s_parse_regions(root, rd, &regions, err) < 0 ||
        s_parse_outlets(root, false, regions, rd->n_regions, rd, err) < 0 ||
        s_parse_outlets(root, true, regions, rd->n_regions, rd, err) < 0 ||
        s_parse_questionnaires(root, rd, err) < 0)
        goto fail;
    free(regions);
    return rd;
fail:
    free(regions);
    bm_refdata_destroy(&rd);
    return NULL;
}

bm_refdata_t *bm_refdata_read_file(const char *path, bm_err_t *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        bm_err_set(err, "could not open \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) < 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        bm_err_set(err, "\"%s\" is not a regular file", path);
        return NULL;
    }
    if ((uint64_t)st.st_size > BM_REFDATA_FILE_MAX) {
        fclose(fp);
        bm_err_set(err, "\"%s\": %lld bytes exceed the limit of %u", path,
                   (long long)st.st_size, BM_REFDATA_FILE_MAX);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size ? size : 1);
    if (!buf) {
        fclose(fp);
        bm_err_set(err, "out of memory");
        return NULL;
    }
    size_t got = fread(buf, 1, size, fp);
    int bad = ferror(fp) || got != size;
    fclose(fp);
    if (bad) {
        free(buf);
        bm_err_set(err, "could not read \"%s\"", path);
        return NULL;
    }
    bm_refdata_t *rd = bm_refdata_parse(buf, size, err);
    free(buf);
    if (!rd)
        bm_err_prefix(err, "%s", path);
    return rd;
}

void bm_refdata_destroy(bm_refdata_t **rd_p)
{
    if (!rd_p || !*rd_p)
        return;
    bm_refdata_t *rd = *rd_p;
    for (size_t i = 0; i < rd->n_questionnaires; i++) {
        for (size_t j = 0; j < rd->questionnaires[i].n_sections; j++)
            free(rd->questionnaires[i].sections[j].items);
        free(rd->questionnaires[i].sections);
    }
    free(rd->questionnaires);
    free(rd->regions);
    free(rd->branches);
    free(rd->competitors);
    json_decref(rd->priv);
    free(rd);
    *rd_p = NULL;
}

const char *bm_critical_rule_name(bm_critical_rule_t rule)
{
    switch (rule) {
    case BM_CRIT_ZERO_SECTION: return "zero_section";
    case BM_CRIT_ZERO_TOTAL: return "zero_total";
    case BM_CRIT_CAP: return "cap";
    }
    return "zero_section";
}

/* ------------------------------------------------------------------ */
/* Loading into the database                                           */
/* ------------------------------------------------------------------ */

/* Runs a statement with text parameters; returns the result on the
 * expected status, else NULL with err (what names the object). */
static PGresult *s_exec(PGconn *conn, const char *sql, int n, const char *const *params,
                        const char *what, bm_err_t *err)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, what, err);
        PQclear(res);
        return NULL;
    }
    return res;
}

static int s_exec_ok(PGconn *conn, const char *sql, int n, const char *const *params,
                     const char *what, bm_err_t *err)
{
    PGresult *res = s_exec(conn, sql, n, params, what, err);
    PQclear(res);
    return res ? 0 : -1;
}

static void s_fmt_double(char *buf, size_t size, double v)
{
    snprintf(buf, size, "%.17g", v);
}

static bool s_same_position(const PGresult *res, int row, int lat_col,
                            const bm_ref_outlet_t *o)
{
    bool null_db = PQgetisnull(res, row, lat_col);
    if (null_db != !o->has_position)
        return false;
    if (null_db)
        return true;
    /* float8 output is shortest-exact since PostgreSQL 12, so strtod gives
     * back the very double that was stored. */
    return strtod(PQgetvalue(res, row, lat_col), NULL) == o->latitude &&
           strtod(PQgetvalue(res, row, lat_col + 1), NULL) == o->longitude;
}

static int s_apply_chain(PGconn *conn, const bm_refdata_t *rd, bm_refdata_report_t *rep,
                         bm_err_t *err)
{
    const char *p[] = {rd->chain.timezone};
    PGresult *res = s_exec(conn, "SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)",
                           1, p, "chain.timezone", err);
    if (!res)
        return -1;
    bool known = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!known)
        return bm_err_set(err, "chain.timezone: unknown time zone \"%s\"", rd->chain.timezone);

    res = s_exec(conn, "SELECT code, name, timezone FROM chain WHERE id = 1", 0, NULL, "chain", err);
    if (!res)
        return -1;
    const char *q[] = {rd->chain.code, rd->chain.name, rd->chain.timezone};
    if (PQntuples(res) == 0) {
        PQclear(res);
        rep->chain.added++;
        return s_exec_ok(conn, "INSERT INTO chain (id, code, name, timezone) VALUES (1, $1, $2, $3)",
                         3, q, "chain", err);
    }
    if (strcmp(PQgetvalue(res, 0, 0), rd->chain.code) != 0) {
        bm_err_set(err, "chain.code: the database belongs to chain \"%s\", not \"%s\"",
                   PQgetvalue(res, 0, 0), rd->chain.code);
        PQclear(res);
        return -1;
    }
    bool same = strcmp(PQgetvalue(res, 0, 1), rd->chain.name) == 0 &&
                strcmp(PQgetvalue(res, 0, 2), rd->chain.timezone) == 0;
    PQclear(res);
    if (same) {
        rep->chain.unchanged++;
        return 0;
    }
    rep->chain.changed++;
    return s_exec_ok(conn, "UPDATE chain SET name = $2, timezone = $3 WHERE id = 1 AND code = $1",
                     3, q, "chain", err);
}

static int s_apply_regions(PGconn *conn, const bm_refdata_t *rd, int *region_ids,
                           bm_refdata_report_t *rep, bm_err_t *err)
{
    for (size_t i = 0; i < rd->n_regions; i++) {
        const bm_ref_region_t *r = &rd->regions[i];
        char what[64];
        snprintf(what, sizeof what, "region %s", r->code);
        const char *p[] = {r->code, r->name};
        PGresult *res = s_exec(conn, "SELECT id, name FROM regions WHERE code = $1", 1, p, what, err);
        if (!res)
            return -1;
        if (PQntuples(res) == 1) {
            region_ids[i] = atoi(PQgetvalue(res, 0, 0));
            bool same = strcmp(PQgetvalue(res, 0, 1), r->name) == 0;
            PQclear(res);
            if (same) {
                rep->regions.unchanged++;
                continue;
            }
            rep->regions.changed++;
            if (s_exec_ok(conn, "UPDATE regions SET name = $2 WHERE code = $1", 2, p, what, err) < 0)
                return -1;
            continue;
        }
        PQclear(res);
        res = s_exec(conn, "INSERT INTO regions (code, name) VALUES ($1, $2) RETURNING id", 2, p,
                     what, err);
        if (!res)
            return -1;
        region_ids[i] = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
        rep->regions.added++;
    }
    return 0;
}

/* The parameters of an outlet (branch or competitor) as text. */
typedef struct {
    char what[64];              /* "branch B01", for messages */
    char region[16];
    char lat[32], lon[32];
    const char *lat_p, *lon_p;  /* lat and lon, or NULL without a position */
    const char *active;         /* "true" or "false" */
} s_outlet_params_t;

/* Fills o for outlet b (noun: "branch" or "competitor") and runs sql, the
 * select of its row by code ($1).  Returns the result (no rows: new) or
 * NULL with err. */
static PGresult *s_outlet_lookup(PGconn *conn, const char *sql, const char *noun,
                                 const bm_ref_outlet_t *b, int region_id, s_outlet_params_t *o,
                                 bm_err_t *err)
{
    snprintf(o->what, sizeof o->what, "%s %s", noun, b->code);
    snprintf(o->region, sizeof o->region, "%d", region_id);
    s_fmt_double(o->lat, sizeof o->lat, b->latitude);
    s_fmt_double(o->lon, sizeof o->lon, b->longitude);
    o->lat_p = b->has_position ? o->lat : NULL;
    o->lon_p = b->has_position ? o->lon : NULL;
    o->active = b->active ? "true" : "false";
    const char *sel[] = {b->code};
    return s_exec(conn, sql, 1, sel, o->what, err);
}

/* Whether row 0 of res (id, name, region_id, latitude, longitude, active,
 * ...) already holds what the file says of b. */
static bool s_same_outlet(const PGresult *res, const bm_ref_outlet_t *b, int region_id)
{
    return strcmp(PQgetvalue(res, 0, 1), b->name) == 0 &&
           atoi(PQgetvalue(res, 0, 2)) == region_id && s_same_position(res, 0, 3, b) &&
           (PQgetvalue(res, 0, 5)[0] == 't') == b->active;
}

/* Runs a statement that returns one value (an id, a version) and copies
 * it into buf.  Returns 0, or -1 with err. */
static int s_exec_value(PGconn *conn, const char *sql, int n, const char *const *params,
                        const char *what, char *buf, size_t size, bm_err_t *err)
{
    PGresult *res = s_exec(conn, sql, n, params, what, err);
    if (!res)
        return -1;
    snprintf(buf, size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

static int s_apply_branch(PGconn *conn, const bm_ref_outlet_t *b, int region_id,
                          bm_refdata_report_t *rep, bm_err_t *err)
{
    s_outlet_params_t o;
    PGresult *res = s_outlet_lookup(conn,
                                    "SELECT id, name, region_id, latitude, longitude, active "
                                    "FROM branches WHERE code = $1",
                                    "branch", b, region_id, &o, err);
    if (!res)
        return -1;
    char id[16];
    if (PQntuples(res) == 0) {
        PQclear(res);
        const char *p[] = {b->code, b->name, o.region, o.lat_p, o.lon_p, o.active};
        if (s_exec_value(conn,
                         "INSERT INTO branches (code, name, region_id, latitude, longitude, "
                         "active, version) VALUES ($1, $2, $3, $4, $5, $6, 1) RETURNING id",
                         6, p, o.what, id, sizeof id, err) < 0)
            return -1;
        const char *v[] = {id, b->name, o.region, o.lat_p, o.lon_p, o.active};
        rep->branches.added++;
        return s_exec_ok(conn,
                         "INSERT INTO branch_versions (branch_id, version, name, region_id, "
                         "latitude, longitude, active) VALUES ($1, 1, $2, $3, $4, $5, $6)",
                         6, v, o.what, err);
    }
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    bool same = s_same_outlet(res, b, region_id);
    PQclear(res);
    if (same) {
        rep->branches.unchanged++;
        return 0;
    }
    /* History is never overwritten: close the current version and add the
     * next one. */
    const char *p[] = {id, b->name, o.region, o.lat_p, o.lon_p, o.active};
    char version[16];
    if (s_exec_value(conn,
                     "UPDATE branches SET name = $2, region_id = $3, latitude = $4, "
                     "longitude = $5, active = $6, version = version + 1 WHERE id = $1 "
                     "RETURNING version", 6, p, o.what, version, sizeof version, err) < 0)
        return -1;
    const char *c[] = {id};
    if (s_exec_ok(conn, "UPDATE branch_versions SET valid_to = now() "
                        "WHERE branch_id = $1 AND valid_to IS NULL", 1, c, o.what, err) < 0)
        return -1;
    const char *v[] = {id, version, b->name, o.region, o.lat_p, o.lon_p, o.active};
    rep->branches.changed++;
    return s_exec_ok(conn,
                     "INSERT INTO branch_versions (branch_id, version, name, region_id, "
                     "latitude, longitude, active) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                     7, v, o.what, err);
}

static int s_apply_competitor(PGconn *conn, const bm_ref_outlet_t *b, int region_id,
                              bm_refdata_report_t *rep, bm_err_t *err)
{
    s_outlet_params_t o;
    PGresult *res = s_outlet_lookup(conn,
                                    "SELECT id, name, region_id, latitude, longitude, active, "
                                    "brand FROM competitor_outlets WHERE code = $1",
                                    "competitor", b, region_id, &o, err);
    if (!res)
        return -1;
    const char *p[] = {b->code, b->name, b->brand, o.region, o.lat_p, o.lon_p, o.active};
    if (PQntuples(res) == 0) {
        PQclear(res);
        rep->competitors.added++;
        return s_exec_ok(conn,
                         "INSERT INTO competitor_outlets (code, name, brand, region_id, latitude, "
                         "longitude, active) VALUES ($1, $2, $3, $4, $5, $6, $7)", 7, p, o.what,
                         err);
    }
    bool same = s_same_outlet(res, b, region_id) && strcmp(PQgetvalue(res, 0, 6), b->brand) == 0;
    PQclear(res);
    if (same) {
        rep->competitors.unchanged++;
        return 0;
    }
    rep->competitors.changed++;
    return s_exec_ok(conn,
                     "UPDATE competitor_outlets SET name = $2, brand = $3, region_id = $4, "
                     "latitude = $5, longitude = $6, active = $7 WHERE code = $1", 7, p, o.what,
                     err);
}

static int s_insert_questionnaire_body(PGconn *conn, const bm_ref_questionnaire_t *q,
                                       const char *qid, const char *what, bm_err_t *err)
{
    for (size_t i = 0; i < q->n_sections; i++) {
        const bm_ref_section_t *s = &q->sections[i];
        char pos[24], weight[32], cap[32];
        snprintf(pos, sizeof pos, "%zu", i + 1);
        s_fmt_double(weight, sizeof weight, s->weight);
        s_fmt_double(cap, sizeof cap, s->cap_percent);
        const char *p[] = {qid, s->code, s->title, pos, weight,
                           bm_critical_rule_name(s->critical_rule),
                           s->critical_rule == BM_CRIT_CAP ? cap : NULL};
        char sid[16];
        if (s_exec_value(conn,
                         "INSERT INTO questionnaire_sections (questionnaire_id, code, title, "
                         "position, weight, critical_rule, cap_percent) "
                         "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id", 7, p, what, sid,
                         sizeof sid, err) < 0)
            return -1;
        for (size_t j = 0; j < s->n_items; j++) {
            const bm_ref_item_t *it = &s->items[j];
            char ipos[24], iw[32], maxp[32];
            snprintf(ipos, sizeof ipos, "%zu", j + 1);
            s_fmt_double(iw, sizeof iw, it->weight);
            s_fmt_double(maxp, sizeof maxp, it->max_points);
            const char *ip[] = {qid, sid, it->code, it->text, ipos, iw, maxp,
                                it->critical ? "true" : "false", it->bonus ? "true" : "false"};
            if (s_exec_ok(conn,
                          "INSERT INTO questionnaire_items (questionnaire_id, section_id, code, "
                          "text, position, weight, max_points, critical, bonus) "
                          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9, ip, what, err) < 0)
                return -1;
        }
    }
    return 0;
}

static int s_apply_questionnaire(PGconn *conn, const bm_ref_questionnaire_t *q,
                                 bm_refdata_report_t *rep, bm_err_t *err)
{
    char what[96], version[16];
    snprintf(what, sizeof what, "questionnaire %s version %d", q->code, q->version);
    snprintf(version, sizeof version, "%d", q->version);
    const char *sel[] = {q->code, version};
    PGresult *res = s_exec(conn,
                           "SELECT id, content_sha256, (SELECT count(*) FROM evaluations e "
                           "WHERE e.questionnaire_id = q.id), "
                           "(SELECT max(version) + 1 FROM questionnaires WHERE code = $1) "
                           "FROM questionnaires q WHERE code = $1 AND version = $2",
                           2, sel, what, err);
    if (!res)
        return -1;
    char qid[16];
    if (PQntuples(res) == 0) {
        PQclear(res);
        const char *p[] = {q->code, version, q->title, q->content_sha256};
        if (s_exec_value(conn,
                         "INSERT INTO questionnaires (code, version, title, content_sha256) "
                         "VALUES ($1, $2, $3, $4) RETURNING id", 4, p, what, qid, sizeof qid,
                         err) < 0)
            return -1;
        rep->questionnaires.added++;
        return s_insert_questionnaire_body(conn, q, qid, what, err);
    }
    snprintf(qid, sizeof qid, "%s", PQgetvalue(res, 0, 0));
    bool same = strcmp(PQgetvalue(res, 0, 1), q->content_sha256) == 0;
    long long used = atoll(PQgetvalue(res, 0, 2));
    int next = atoi(PQgetvalue(res, 0, 3));
    PQclear(res);
    if (same) {
        rep->questionnaires.unchanged++;
        return 0;
    }
    /* Scores already computed from this version must stay explainable, so
     * a version in use is immutable. */
    if (used > 0)
        return bm_err_set(err, "questionnaire %s version %d is used by %lld evaluation%s; "
                          "publish the change as version %d", q->code, q->version, used,
                          used == 1 ? "" : "s", next);
    const char *d[] = {qid};
    const char *u[] = {qid, q->title, q->content_sha256};
    if (s_exec_ok(conn, "DELETE FROM questionnaire_items WHERE questionnaire_id = $1", 1, d, what, err) < 0 ||
        s_exec_ok(conn, "DELETE FROM questionnaire_sections WHERE questionnaire_id = $1", 1, d, what, err) < 0 ||
        s_exec_ok(conn, "UPDATE questionnaires SET title = $2, content_sha256 = $3, "
                        "published_at = now() WHERE id = $1", 3, u, what, err) < 0)
        return -1;
    rep->questionnaires.changed++;
    return s_insert_questionnaire_body(conn, q, qid, what, err);
}

/* Reports outlets in the database that the file does not list.  They are
 * kept: deleting a branch would orphan its history. */
static int s_report_kept(PGconn *conn, const char *table, const char *noun,
                         const bm_ref_outlet_t *outlets, size_t n, int *kept, FILE *notes,
                         bm_err_t *err)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT code FROM %s ORDER BY code", table);
    PGresult *res = s_exec(conn, sql, 0, NULL, table, err);
    if (!res)
        return -1;
    s_code_ref_t *refs = calloc(n ? n : 1, sizeof *refs);
    if (!refs) {
        PQclear(res);
        return bm_err_set(err, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        refs[i] = (s_code_ref_t){outlets[i].code, i};
    qsort(refs, n, sizeof *refs, s_code_ref_cmp);
    for (int i = 0; i < PQntuples(res); i++) {
        if (s_find_code(refs, n, PQgetvalue(res, i, 0)))
            continue;
        (*kept)++;
        if (notes)
            fprintf(notes, "%s %s: not in file, kept\n", noun, PQgetvalue(res, i, 0));
    }
    free(refs);
    PQclear(res);
    return 0;
}

int bm_refdata_apply(PGconn *conn, const bm_refdata_t *rd, bool dry_run,
                     bm_refdata_report_t *report, FILE *notes, bm_err_t *err)
{
    bm_refdata_report_t local;
    bm_refdata_report_t *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    int *region_ids = calloc(rd->n_regions ? rd->n_regions : 1, sizeof *region_ids);
    if (!region_ids)
        return bm_err_set(err, "out of memory");
    if (bm_db_exec(conn, "BEGIN", err) < 0) {
        free(region_ids);
        return -1;
    }
    int rc = -1;
    if (bm_db_exec(conn, "SELECT pg_advisory_xact_lock(" S_REFDATA_LOCK_KEY ")", err) < 0 ||
        s_apply_chain(conn, rd, rep, err) < 0 ||
        s_apply_regions(conn, rd, region_ids, rep, err) < 0)
        goto out;
    for (size_t i = 0; i < rd->n_branches; i++)
        if (s_apply_branch(conn, &rd->branches[i], region_ids[rd->branches[i].region], rep, err) < 0)
            goto out;
    for (size_t i = 0; i < rd->n_competitors; i++)
        if (s_apply_competitor(conn, &rd->competitors[i], region_ids[rd->competitors[i].region],
                               rep, err) < 0)
            goto out;
    for (size_t i = 0; i < rd->n_questionnaires; i++)
        if (s_apply_questionnaire(conn, &rd->questionnaires[i], rep, err) < 0)
            goto out;
    if (s_report_kept(conn, "branches", "branch", rd->branches, rd->n_branches,
                      &rep->branches_kept, notes, err) < 0 ||
        s_report_kept(conn, "competitor_outlets", "competitor", rd->competitors,
                      rd->n_competitors, &rep->competitors_kept, notes, err) < 0)
        goto out;
    rc = 0;
out:
    free(region_ids);
    if (rc == 0 && !dry_run)
        return bm_db_exec(conn, "COMMIT", err);
    PQclear(PQexec(conn, "ROLLBACK"));
    return rc;
}
