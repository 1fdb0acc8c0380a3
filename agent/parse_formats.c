/* parse_formats: the eight inbox export formats (docs/formats.md) and their
 * registration table.  The six CSV formats are column tables (parser_int.h)
 * run by one generic line reader, bm_csv_record; the two JSON lines formats
 * are a function each.  Every record is built the way protobuf-c's unpacker
 * would (generated __INIT values, strdup'ed strings, malloc'ed submessages
 * and arrays), so bm_record_free and protobuf_c_message_free_unpacked both
 * free it completely, also when a line fails half way.  Range and consistency rules are bm_record_validate's job;
 * this file only turns text into typed values, refusing what it cannot
 * represent.  Owns nothing between calls. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "bm_time.h"
#include "parse_csv.h"
#include "parser_int.h"

#define BM_CSV_MAX_FIELDS 8     /* more than any format has */
#define BM_JSON_CSI_MAX 50
#define BM_JSON_ANSWERS_MAX 500

/* ---- building records ---------------------------------------------------- */

static bm_record_t *s_record_new(const char *source_id, bm_err_t *err)
{
    bm_record_t *r = malloc(sizeof *r);
    if (!r) {
        bm_err_set(err, "out of memory");
        return NULL;
    }
    *r = (bm_record_t)BRANCHMARK__V1__RECORD__INIT;
    if (!(r->source_id = strdup(source_id))) {
        free(r);
        bm_err_set(err, "out of memory");
        return NULL;
    }
    return r;
}

/* Sets a string field: empty text keeps the shared empty default (which the
 * deep free skips), anything else is a heap copy. */
static int s_set_str(char **field, const char *text, bm_err_t *err)
{
    if (!text || !*text)
        return 0;
    char *copy = strdup(text);
    if (!copy)
        return bm_err_set(err, "out of memory");
    *field = copy;
    return 0;
}

/* Allocates a submessage initialised from init (size bytes). */
static void *s_msg_new(const void *init, size_t size, bm_err_t *err)
{
    void *m = malloc(size);
    if (!m) {
        bm_err_set(err, "out of memory");
        return NULL;
    }
    memcpy(m, init, size);
    return m;
}

/* Hands a half-built record back to the caller's error path. */
static int s_fail(bm_record_t **r_p)
{
    bm_record_free(r_p);
    return -1;
}

/* ---- typed fields from text ---------------------------------------------- */

static int s_req_time(const char *kind, const char *field, const char *text, int64_t *out,
                      bm_err_t *err)
{
    if (!*text)
        return bm_err_set(err, "%s: %s: is required", kind, field);
    if (bm_time_parse(text, out, err) < 0)
        return bm_err_prefix(err, "%s: %s", kind, field);
    return 0;
}

/* A whole number 0..UINT32_MAX in plain decimal digits. */
static int s_req_uint(const char *kind, const char *field, const char *text, uint32_t *out,
                      bm_err_t *err)
{
    if (!*text)
        return bm_err_set(err, "%s: %s: is required", kind, field);
    uint64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return bm_err_set(err, "%s: %s: \"%.40s\" is not a whole number >= 0", kind, field,
                              text);
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > UINT32_MAX)
            return bm_err_set(err, "%s: %s: %.40s is too large", kind, field, text);
    }
    *out = (uint32_t)v;
    return 0;
}

/* Fraction digits of a currency's minor unit (ISO 4217); 2 unless listed. */
static int s_currency_decimals(const char *cur)
{
    static const char *const zero[] = {"JPY", "KRW"};
    static const char *const three[] = {"BHD", "KWD", "OMR", "TND"};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        if (strcmp(cur, zero[i]) == 0)
            return 0;
    for (size_t i = 0; i < sizeof three / sizeof three[0]; i++)
        if (strcmp(cur, three[i]) == 0)
            return 3;
    return 2;
}

/* Parses "-12.34" exactly into minor units: optional '-', digits, optional
 * decimal mark (dec: '.', or ',' in a ';'-separated file) and at most
 * `decimals` digits.  No exponent, no grouping, no floating point on the
 * way: 0.1 + 0.2 must be 30 cents.  The other mark is refused, not guessed:
 * in a ';' file "1.500" may be a German 1500. */
static int s_amount(const char *k, char dec, const char *text, const char *cur, int64_t *out,
                    bm_err_t *err)
{
    int decimals = s_currency_decimals(cur);
    const char *p = text;
    bool neg = false;
    if (!*p)
        return bm_err_set(err, "%s: amount: is required", k);
    if (*p == '-') {
        neg = true;
        p++;
    }
    int64_t v = 0;
    int digits = 0, frac = 0;
    if (!isdigit((unsigned char)*p))
        goto not_decimal;
    while (isdigit((unsigned char)*p)) {
        if (++digits > 15)
            return bm_err_set(err, "%s: amount: %.40s is out of range", k, text);
        v = v * 10 + (*p++ - '0');
    }
    if (*p == dec) {
        p++;
        if (!isdigit((unsigned char)*p))
            goto not_decimal;
        while (isdigit((unsigned char)*p)) {
            if (++frac > decimals) {
                if (decimals == 0)
                    return bm_err_set(err, "%s: amount: \"%.40s\" must be a whole number for %s",
                                      k, text, cur);
                return bm_err_set(err, "%s: amount: \"%.40s\" has more than %d decimal places for %s",
                                  k, text, decimals, cur);
            }
            v = v * 10 + (*p++ - '0');
        }
    }
    if (*p == '.' && dec == ',')
        return bm_err_set(err, "%s: amount: \"%.40s\" has a decimal point; in a file separated "
                          "by \";\" decimals are written with a comma, like -12,34", k, text);
    if (*p)
        goto not_decimal;
    for (int i = frac; i < decimals; i++)
        v *= 10;
    *out = neg ? -v : v;
    return 0;
not_decimal:
    return bm_err_set(err, "%s: amount: \"%.40s\" is not a decimal number like -12%c34", k, text,
                      dec);
}

static int s_bool(const char *kind, const char *field, const char *text, bool *out,
                  bm_err_t *err)
{
    static const char *const yes[] = {"yes", "true", "1"}, *const no[] = {"no", "false", "0"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    if (!*text)
        return bm_err_set(err, "%s: %s: is required", kind, field);
    return bm_err_set(err, "%s: %s: \"%.40s\" is not yes, no, true, false, 1 or 0", kind, field,
                      text);
}

/* ---- versions ----------------------------------------------------------- */

bm_version_col_t bm_version_col(const char *name)
{
    if (strcmp(name, "updated_at") == 0)
        return BM_VERSION_UPDATED_AT;
    if (strcmp(name, "revision") == 0)
        return BM_VERSION_REVISION;
    return BM_VERSION_NONE;
}

/* Reads the version text of column v into *out: empty is 0 (none given);
 * updated_at a time after 1970; revision 1 .. 2^53 (what every JSON reader
 * keeps exactly).  Returns 0, or -1 with err naming the column. */
static int s_version(const char *kind, bm_version_col_t v, const char *text, int64_t *out,
                     bm_err_t *err)
{
    *out = 0;
    if (!*text || v == BM_VERSION_NONE)
        return 0;
    if (v == BM_VERSION_UPDATED_AT) {
        if (bm_time_parse(text, out, err) < 0)
            return bm_err_prefix(err, "%s: updated_at", kind);
        if (*out <= 0)
            return bm_err_set(err, "%s: updated_at: \"%.40s\" is not after 1970", kind, text);
        return 0;
    }
    uint64_t n = 0;
    for (const char *p = text; *p; p++) {
        if (!isdigit((unsigned char)*p) || (n = n * 10 + (uint64_t)(*p - '0')) > (1ULL << 53))
            return bm_err_set(err, "%s: revision: \"%.40s\" is not a whole number 1..%llu", kind,
                              text, 1ULL << 53);
    }
    if (n == 0)
        return bm_err_set(err, "%s: revision: 0 is not a revision (they start at 1)", kind);
    *out = (int64_t)n;
    return 0;
}

/* The version of a JSON line: key "updated_at" (a time) or "revision" (a
 * whole number), at most one of them; none is 0. */
static int s_json_version(const char *kind, json_t *obj, int64_t *out, bm_err_t *err)
{
    json_t *u = json_object_get(obj, "updated_at"), *rv = json_object_get(obj, "revision");
    *out = 0;
    if (u && !json_is_null(u) && rv && !json_is_null(rv))
        return bm_err_set(err, "%s: give updated_at or revision, not both", kind);
    if (u && !json_is_null(u)) {
        if (!json_is_string(u))
            return bm_err_set(err, "%s: updated_at: must be a string", kind);
        return s_version(kind, BM_VERSION_UPDATED_AT, json_string_value(u), out, err);
    }
    if (rv && !json_is_null(rv)) {
        if (!json_is_integer(rv) || json_integer_value(rv) < 1 ||
            json_integer_value(rv) > (json_int_t)(1LL << 53))
            return bm_err_set(err, "%s: revision: must be a whole number 1..%llu", kind,
                              1ULL << 53);
        *out = (int64_t)json_integer_value(rv);
    }
    return 0;
}

/* ---- CSV formats: one reader, one table per format ----------------------- */

/* The Record field (oneof kind) a format fills: it has the format's name. */
static const ProtobufCFieldDescriptor *s_kind_field(const bm_parser_t *p)
{
    return protobuf_c_message_descriptor_get_field_by_name(&branchmark__v1__record__descriptor,
                                                          p->name);
}

/* The submessage a format's records carry (PeopleCount, Receipt, ...). */
static const ProtobufCMessageDescriptor *s_kind_msg(const ProtobufCFieldDescriptor *kf)
{
    return kf->descriptor;
}

/* The protobuf type a column type writes. */
static ProtobufCType s_col_proto_type(bm_col_type_t t)
{
    switch (t) {
    case BM_COL_TIME:
    case BM_COL_AMOUNT:
        return PROTOBUF_C_TYPE_INT64;
    case BM_COL_UINT:
        return PROTOBUF_C_TYPE_UINT32;
    case BM_COL_BOOL:
        return PROTOBUF_C_TYPE_BOOL;
    case BM_COL_CHOICE:
        return PROTOBUF_C_TYPE_ENUM;
    case BM_COL_TEXT:
    case BM_COL_SOURCE_ID:
        break;
    }
    return PROTOBUF_C_TYPE_STRING;
}

/* The submessage field column c fills, or NULL if the table is wrong. */
static const ProtobufCFieldDescriptor *s_col_field(const ProtobufCMessageDescriptor *msg,
                                                   const bm_csv_column_t *c)
{
    const ProtobufCFieldDescriptor *f =
        c->field ? protobuf_c_message_descriptor_get_field_by_name(msg, c->field) : NULL;
    if (!f || f->label == PROTOBUF_C_LABEL_REPEATED || f->type != s_col_proto_type(c->type))
        return NULL;
    return f;
}

/* Index of the column called name, or ncolumns. */
static size_t s_col_index(const bm_parser_t *p, const char *name)
{
    size_t i = 0;
    while (i < p->ncolumns && strcmp(p->columns[i].name, name) != 0)
        i++;
    return i;
}

/* "gained or lost", "a, b or c": the words a choice column takes. */
static void s_choice_words(const bm_col_choice_t *ch, char *buf, size_t size)
{
    size_t n = 0, used = 0;
    while (ch[n].word)
        n++;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s",
                                 i == 0 ? "" : i + 1 == n ? " or " : ", ", ch[i].word);
}

static int s_choice(const char *kind, const bm_csv_column_t *c, const char *text, int *out,
                    bm_err_t *err)
{
    for (const bm_col_choice_t *ch = c->choices; ch->word; ch++) {
        if (strcmp(text, ch->word) == 0) {
            *out = ch->value;
            return 0;
        }
    }
    char words[128];
    s_choice_words(c->choices, words, sizeof words);
    if (!*text)
        return bm_err_set(err, "%s: %s: is required (%s)", kind, c->name, words);
    return bm_err_set(err, "%s: %s: \"%.40s\" is not %s", kind, c->name, text, words);
}

/* Reads column c's text into its field of msg (the record's submessage, of
 * type md).  f holds every field of the line, for an amount's currency.
 * Returns 0, or -1 with err naming the kind and the column; msg may then hold
 * strings set so far, which the record's deep free releases. */
static int s_col_set(const bm_parser_t *p, const bm_csv_dialect_t *d,
                     const ProtobufCMessageDescriptor *md, const bm_csv_column_t *c, char **f,
                     const char *text, void *msg, bm_err_t *err)
{
    const char *k = p->name;
    const ProtobufCFieldDescriptor *fd = s_col_field(md, c);
    if (!fd)
        return bm_err_set(err, "%s: %s: no field \"%s\" of this type (parser table)", k,
                          c->name, c->field ? c->field : "");
    void *member = (char *)msg + fd->offset;
    if (!*text && !c->required)
        return 0;   /* optional and not given: default value, oneof unset */
    switch (c->type) {
    case BM_COL_TIME:
        if (s_req_time(k, c->name, text, member, err) < 0)
            return -1;
        break;
    case BM_COL_UINT:
        if (s_req_uint(k, c->name, text, member, err) < 0)
            return -1;
        break;
    case BM_COL_BOOL: {
        bool b = false;
        if (s_bool(k, c->name, text, &b, err) < 0)
            return -1;
        *(protobuf_c_boolean *)member = b;
        break;
    }
    case BM_COL_CHOICE:
        if (s_choice(k, c, text, member, err) < 0)
            return -1;
        break;
    case BM_COL_AMOUNT:
        if (s_amount(k, d->decimal, text, f[s_col_index(p, c->currency)], member, err) < 0)
            return -1;
        break;
    case BM_COL_TEXT:
        if (!*text)
            return bm_err_set(err, "%s: %s: is required", k, c->name);
        if (s_set_str(member, text, err) < 0)
            return -1;
        break;
    case BM_COL_SOURCE_ID:
        break;
    }
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)((char *)msg + fd->quantifier_offset) = fd->id;
    return 0;
}

/* A new record of kind kf with an initialised submessage already attached,
 * so that bm_record_free releases whatever is filled in later.  Returns NULL
 * with err when out of memory. */
static bm_record_t *s_csv_record_new(const ProtobufCFieldDescriptor *kf, const char *source_id,
                                     void **msg_out, bm_err_t *err)
{
    const ProtobufCMessageDescriptor *md = s_kind_msg(kf);
    bm_record_t *r = s_record_new(source_id, err);
    if (!r)
        return NULL;
    void *msg = malloc(md->sizeof_message);
    if (!msg) {
        bm_err_set(err, "out of memory");
        bm_record_free(&r);
        return NULL;
    }
    md->message_init(msg);
    *(void **)((char *)r + kf->offset) = msg;
    *(uint32_t *)((char *)r + kf->quantifier_offset) = kf->id;
    *msg_out = msg;
    return r;
}

int bm_csv_record(const bm_parser_t *p, const bm_csv_dialect_t *d, char *line, size_t len,
                  bm_record_t **out, bm_err_t *err)
{
    char *f[BM_CSV_MAX_FIELDS];
    int got = bm_csv_split(line, len, d->sep, f, BM_CSV_MAX_FIELDS, err);
    if (got < 0)
        return bm_err_prefix(err, "%s", p->name);
    size_t want = p->ncolumns + (d->version != BM_VERSION_NONE);
    if ((size_t)got != want)
        return bm_err_set(err, "%s: expected %zu fields, found %d", p->name, want, got);
    const ProtobufCFieldDescriptor *kf = s_kind_field(p);
    size_t sid = s_col_index(p, "source_id");
    void *msg;
    bm_record_t *r = s_csv_record_new(kf, sid < p->ncolumns ? f[sid] : "", &msg, err);
    if (!r)
        return -1;
    /* Two passes, so that an amount is read after the currency it depends on
     * has been checked ("currency: is required" before any amount error). */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < p->ncolumns; i++) {
            const bm_csv_column_t *c = &p->columns[i];
            if ((c->type == BM_COL_AMOUNT) != (pass == 1) || c->type == BM_COL_SOURCE_ID)
                continue;
            if (s_col_set(p, d, s_kind_msg(kf), c, f, f[i], msg, err) < 0)
                return s_fail(&r);
        }
    }
    if (s_version(p->name, d->version, want > p->ncolumns ? f[p->ncolumns] : "", &r->version,
                  err) < 0)
        return s_fail(&r);
    *out = r;
    return 0;
}

int bm_parser_table_check(bm_err_t *err)
{
    for (size_t i = 0; i < bm_parser_table_count; i++) {
        const bm_parser_t *p = &bm_parser_table[i];
        const ProtobufCFieldDescriptor *kf = s_kind_field(p);
        if (!kf || kf->type != PROTOBUF_C_TYPE_MESSAGE ||
            !(kf->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            return bm_err_set(err, "%s: not a kind of Record", p->name);
        if (!p->columns)
            continue;
        size_t n = 0;
        while (p->columns[n].name)
            n++;
        if (n != p->ncolumns || n > BM_CSV_MAX_FIELDS || p->parse_line != bm_csv_record)
            return bm_err_set(err, "%s: ncolumns is %zu, the table has %zu", p->name,
                              p->ncolumns, n);
        for (size_t j = 0; j < n; j++) {
            const bm_csv_column_t *c = &p->columns[j];
            if (c->type == BM_COL_SOURCE_ID)
                continue;
            if (!s_col_field(s_kind_msg(kf), c))
                return bm_err_set(err, "%s: column %s: no field \"%s\" of a fitting type",
                                  p->name, c->name, c->field ? c->field : "(null)");
            if (c->type == BM_COL_CHOICE && (!c->choices || !c->choices[0].word))
                return bm_err_set(err, "%s: column %s: no choices", p->name, c->name);
            if (c->type == BM_COL_AMOUNT &&
                (!c->currency || s_col_index(p, c->currency) == p->ncolumns))
                return bm_err_set(err, "%s: column %s: no currency column", p->name, c->name);
        }
        if (s_col_index(p, "source_id") == p->ncolumns)
            return bm_err_set(err, "%s: no source_id column", p->name);
    }
    return 0;
}

/* ---- JSON lines ---------------------------------------------------------- */

/* Parses one line into an object, with jansson's own words on failure. */
static json_t *s_json_object(const char *kind, const char *line, size_t len, bm_err_t *err)
{
    json_error_t je;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        bm_err_set(err, "%s: invalid JSON at column %d: %s", kind, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        bm_err_set(err, "%s: expected a JSON object", kind);
        return NULL;
    }
    return root;
}

/* Refuses keys that are not in allowed (NULL-terminated): a typo such as
 * "npss" must not silently drop a value. */
static int s_json_keys(const char *kind, const char *where, json_t *obj,
                       const char *const *allowed, bm_err_t *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        (void)v;
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i])
            return bm_err_set(err, "%s: %sunknown key \"%.64s\"", kind, where, key);
    }
    return 0;
}

/* A string member: absent or null gives "" unless required. */
static int s_json_str(const char *kind, json_t *obj, const char *key, bool required,
                      const char **out, bm_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            return bm_err_set(err, "%s: %s: is required", kind, key);
        *out = "";
        return 0;
    }
    if (!json_is_string(v))
        return bm_err_set(err, "%s: %s: must be a string", kind, key);
    *out = json_string_value(v);
    return 0;
}

/* An integer member within [min, max]; absent or null gives *present false
 * (an error if required). */
static int s_json_int(const char *kind, json_t *obj, const char *key, bool required,
                      json_int_t min, json_int_t max, json_int_t *out, bool *present,
                      bm_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    *present = false;
    if (!v || json_is_null(v)) {
        if (required)
            return bm_err_set(err, "%s: %s: is required", kind, key);
        return 0;
    }
    if (!json_is_integer(v))
        return bm_err_set(err, "%s: %s: must be a whole number", kind, key);
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return bm_err_set(err, "%s: %s: %" JSON_INTEGER_FORMAT " is out of range %"
                          JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT, kind, key, n, min, max);
    *out = n;
    *present = true;
    return 0;
}

static int s_json_time(const char *kind, json_t *obj, const char *key, bool required,
                       int64_t *out, bool *present, bm_err_t *err)
{
    const char *s;
    *present = false;
    if (s_json_str(kind, obj, key, required, &s, err) < 0)
        return -1;
    if (!*s) {
        if (required)
            return bm_err_set(err, "%s: %s: is required", kind, key);
        return 0;
    }
    if (bm_time_parse(s, out, err) < 0)
        return bm_err_prefix(err, "%s: %s", kind, key);
    *present = true;
    return 0;
}

static int s_survey(const bm_parser_t *p, const bm_csv_dialect_t *d, char *line, size_t len,
                    bm_record_t **out, bm_err_t *err)
{
    (void)p, (void)d;
    static const char *const keys[] = {"source_id", "responded_at", "nps", "csi", "csi_scale",
                                       "why", "segment", "channel", "updated_at", "revision",
                                       NULL};
    const char *k = "survey";
    Branchmark__V1__SurveyResponse init = BRANCHMARK__V1__SURVEY_RESPONSE__INIT;
    const char *sid, *why, *segment, *channel;
    json_int_t nps = 0, scale = 5;
    bool has_nps, has_scale, has_time;
    bm_record_t *r = NULL;

    json_t *root = s_json_object(k, line, len, err);
    if (!root)
        return -1;
    json_t *csi = json_object_get(root, "csi");
    if (s_json_keys(k, "", root, keys, err) < 0 ||
        s_json_str(k, root, "source_id", true, &sid, err) < 0 ||
        s_json_time(k, root, "responded_at", true, &init.responded_at_ms, &has_time, err) < 0 ||
        s_json_int(k, root, "nps", false, 0, 10, &nps, &has_nps, err) < 0 ||
        s_json_int(k, root, "csi_scale", false, 2, 10, &scale, &has_scale, err) < 0 ||
        s_json_str(k, root, "why", false, &why, err) < 0 ||
        s_json_str(k, root, "segment", false, &segment, err) < 0 ||
        s_json_str(k, root, "channel", false, &channel, err) < 0)
        goto fail;
    if (csi && json_is_null(csi))
        csi = NULL;
    if (csi && !json_is_object(csi)) {
        bm_err_set(err, "%s: csi: must be an object of item names and scores", k);
        goto fail;
    }
    if (csi && json_object_size(csi) > BM_JSON_CSI_MAX) {
        bm_err_set(err, "%s: csi: %zu items exceed the limit of %d", k, json_object_size(csi),
                   BM_JSON_CSI_MAX);
        goto fail;
    }
    if (has_nps) {
        init.nps_answer_case = BRANCHMARK__V1__SURVEY_RESPONSE__NPS_ANSWER_NPS;
        init.nps = (uint32_t)nps;
    }
    int64_t ver;
    if (s_json_version(k, root, &ver, err) < 0 || !(r = s_record_new(sid, err)) ||
        !(r->survey = s_msg_new(&init, sizeof init, err)))
        goto fail;
    r->kind_case = BRANCHMARK__V1__RECORD__KIND_SURVEY;
    r->version = ver;
    Branchmark__V1__SurveyResponse *s = r->survey;
    if (s_set_str(&s->why, why, err) < 0 || s_set_str(&s->segment, segment, err) < 0 ||
        s_set_str(&s->survey_channel, channel, err) < 0)
        goto fail;
    if (csi && json_object_size(csi) > 0) {
        if (!(s->csi = calloc(json_object_size(csi), sizeof *s->csi))) {
            bm_err_set(err, "out of memory");
            goto fail;
        }
        const char *item;
        json_t *v;
        json_object_foreach(csi, item, v) {
            if (!json_is_integer(v)) {
                bm_err_set(err, "%s: csi: %.64s: must be a whole number", k, item);
                goto fail;
            }
            json_int_t score = json_integer_value(v);
            if (score < 1 || score > scale) {
                bm_err_set(err, "%s: csi: %.64s: score %" JSON_INTEGER_FORMAT
                           " is out of range 1..%" JSON_INTEGER_FORMAT, k, item, score, scale);
                goto fail;
            }
            Branchmark__V1__CsiScore ci = BRANCHMARK__V1__CSI_SCORE__INIT;
            ci.score = (uint32_t)score;
            ci.scale_max = (uint32_t)scale;
            Branchmark__V1__CsiScore *c = s_msg_new(&ci, sizeof ci, err);
            if (!c)
                goto fail;
            s->csi[s->n_csi++] = c;
            if (s_set_str(&c->item, item, err) < 0)
                goto fail;
        }
    }
    json_decref(root);
    *out = r;
    return 0;
fail:
    json_decref(root);
    bm_record_free(&r);
    return -1;
}

static int s_answer(const char *k, json_t *a, size_t idx, Branchmark__V1__Answer **out,
                    bm_err_t *err)
{
    static const char *const keys[] = {"item", "points", "na", "comment", NULL};
    char ak[64];
    snprintf(ak, sizeof ak, "%s: answers: answer %zu", k, idx + 1);
    if (!json_is_object(a))
        return bm_err_set(err, "%s: must be an object", ak);
    const char *item, *comment;
    if (s_json_keys(ak, "", a, keys, err) < 0 || s_json_str(ak, a, "item", true, &item, err) < 0 ||
        s_json_str(ak, a, "comment", false, &comment, err) < 0)
        return -1;
    json_t *points = json_object_get(a, "points"), *na = json_object_get(a, "na");
    if (points && json_is_null(points))
        points = NULL;
    if (na && json_is_null(na))
        na = NULL;
    Branchmark__V1__Answer init = BRANCHMARK__V1__ANSWER__INIT;
    if (points && na)
        return bm_err_set(err, "%s: answers: %.64s: has both points and na", k, item);
    if (points) {
        if (!json_is_number(points))
            return bm_err_set(err, "%s: answers: %.64s: points: must be a number", k, item);
        init.value_case = BRANCHMARK__V1__ANSWER__VALUE_POINTS;
        init.points = json_number_value(points);
    } else if (na) {
        if (!json_is_boolean(na))
            return bm_err_set(err, "%s: answers: %.64s: na: must be true", k, item);
        init.value_case = BRANCHMARK__V1__ANSWER__VALUE_NOT_APPLICABLE;
        init.not_applicable = json_is_true(na);
    }
    Branchmark__V1__Answer *ans = s_msg_new(&init, sizeof init, err);
    if (!ans)
        return -1;
    *out = ans;
    if (s_set_str(&ans->item_code, item, err) < 0 || s_set_str(&ans->comment, comment, err) < 0)
        return -1;
    return 0;
}

static int s_evaluation(const bm_parser_t *p, const bm_csv_dialect_t *d, char *line, size_t len,
                        bm_record_t **out, bm_err_t *err)
{
    (void)p, (void)d;
    static const char *const keys[] = {"source_id", "questionnaire", "version", "channel",
                                       "scenario", "shopper_segment", "outlet", "visited_at",
                                       "submitted_at", "shopper", "answers", "updated_at",
                                       "revision", NULL};
    static const char *const outlet_keys[] = {"branch", "competitor", NULL};
    const char *k = "evaluation";
    Branchmark__V1__ShopperEvaluation init = BRANCHMARK__V1__SHOPPER_EVALUATION__INIT;
    const char *sid, *questionnaire, *channel, *scenario, *segment, *shopper, *outlet_code;
    json_int_t version = 0;
    bool present;
    bm_record_t *r = NULL;

    json_t *root = s_json_object(k, line, len, err);
    if (!root)
        return -1;
    if (s_json_keys(k, "", root, keys, err) < 0 ||
        s_json_str(k, root, "source_id", true, &sid, err) < 0 ||
        s_json_str(k, root, "questionnaire", true, &questionnaire, err) < 0 ||
        s_json_int(k, root, "version", true, 1, INT32_MAX, &version, &present, err) < 0 ||
        s_json_str(k, root, "channel", true, &channel, err) < 0 ||
        s_json_str(k, root, "scenario", false, &scenario, err) < 0 ||
        s_json_str(k, root, "shopper_segment", false, &segment, err) < 0 ||
        s_json_str(k, root, "shopper", false, &shopper, err) < 0 ||
        s_json_time(k, root, "visited_at", true, &init.visited_at_ms, &present, err) < 0 ||
        s_json_time(k, root, "submitted_at", false, &init.submitted_at_ms, &present, err) < 0)
        goto fail;
    init.questionnaire_version = (uint32_t)version;

    if (strcmp(channel, "visit") == 0)
        init.channel = BRANCHMARK__V1__CHANNEL__CHANNEL_VISIT;
    else if (strcmp(channel, "call") == 0)
        init.channel = BRANCHMARK__V1__CHANNEL__CHANNEL_CALL;
    else if (strcmp(channel, "online") == 0)
        init.channel = BRANCHMARK__V1__CHANNEL__CHANNEL_ONLINE;
    else {
        bm_err_set(err, "%s: channel: \"%.40s\" is not visit, call or online", k, channel);
        goto fail;
    }

    json_t *outlet = json_object_get(root, "outlet");
    if (!outlet || !json_is_object(outlet)) {
        bm_err_set(err, "%s: outlet: is required, as {\"branch\": CODE} or {\"competitor\": CODE}",
                   k);
        goto fail;
    }
    if (s_json_keys(k, "outlet: ", outlet, outlet_keys, err) < 0)
        goto fail;
    bool is_branch = json_object_get(outlet, "branch") != NULL;
    if (json_object_size(outlet) != 1) {
        bm_err_set(err, "%s: outlet: must have exactly one of \"branch\" or \"competitor\"", k);
        goto fail;
    }
    if (s_json_str("evaluation: outlet", outlet, is_branch ? "branch" : "competitor", true,
                   &outlet_code, err) < 0)
        goto fail;
    init.outlet_kind = is_branch ? BRANCHMARK__V1__OUTLET_KIND__OUTLET_KIND_BRANCH
                                 : BRANCHMARK__V1__OUTLET_KIND__OUTLET_KIND_COMPETITOR;

    json_t *answers = json_object_get(root, "answers");
    if (!answers || !json_is_array(answers)) {
        bm_err_set(err, "%s: answers: is required, as an array", k);
        goto fail;
    }
    if (json_array_size(answers) > BM_JSON_ANSWERS_MAX) {
        bm_err_set(err, "%s: answers: %zu answers exceed the limit of %d", k,
                   json_array_size(answers), BM_JSON_ANSWERS_MAX);
        goto fail;
    }

    int64_t ver;
    if (s_json_version(k, root, &ver, err) < 0 || !(r = s_record_new(sid, err)) ||
        !(r->evaluation = s_msg_new(&init, sizeof init, err)))
        goto fail;
    r->kind_case = BRANCHMARK__V1__RECORD__KIND_EVALUATION;
    r->version = ver;
    Branchmark__V1__ShopperEvaluation *e = r->evaluation;
    if (s_set_str(&e->questionnaire_code, questionnaire, err) < 0 ||
        s_set_str(&e->scenario, scenario, err) < 0 ||
        s_set_str(&e->shopper_segment, segment, err) < 0 ||
        s_set_str(&e->shopper_ref, shopper, err) < 0 ||
        s_set_str(&e->outlet_code, outlet_code, err) < 0)
        goto fail;
    size_t n = json_array_size(answers);
    if (n > 0 && !(e->answers = calloc(n, sizeof *e->answers))) {
        bm_err_set(err, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        Branchmark__V1__Answer *a = NULL;
        int rc = s_answer(k, json_array_get(answers, i), i, &a, err);
        if (a)
            e->answers[e->n_answers++] = a;
        if (rc < 0)
            goto fail;
    }
    json_decref(root);
    *out = r;
    return 0;
fail:
    json_decref(root);
    bm_record_free(&r);
    return -1;
}

/* ---- the table ----------------------------------------------------------- */

#define COL_ID {"source_id", BM_COL_SOURCE_ID, NULL, true, NULL, NULL}
#define COL(name, type, field, required) {name, type, field, required, NULL, NULL}
#define COL_END {NULL, BM_COL_TEXT, NULL, false, NULL, NULL}

static const bm_csv_column_t s_people_count_cols[] = {
    COL_ID,
    COL("interval_start", BM_COL_TIME, "interval_start_ms", true),
    COL("interval_seconds", BM_COL_UINT, "interval_seconds", true),
    COL("passers_by", BM_COL_UINT, "passers_by", true),
    COL("entrants", BM_COL_UINT, "entrants", true),
    COL_END,
};

static const bm_csv_column_t s_receipt_cols[] = {
    COL_ID,
    COL("at", BM_COL_TIME, "at_ms", true),
    {"amount", BM_COL_AMOUNT, "amount_minor", true, NULL, "currency"},
    COL("currency", BM_COL_TEXT, "currency", true),
    COL_END,
};

static const bm_csv_column_t s_queue_ticket_cols[] = {
    COL_ID,
    COL("issued_at", BM_COL_TIME, "issued_at_ms", true),
    COL("called_at", BM_COL_TIME, "called_at_ms", false),
    COL("served_at", BM_COL_TIME, "served_at_ms", false),
    COL("service_point", BM_COL_TEXT, "service_point", false),
    COL_END,
};

static const bm_csv_column_t s_phone_call_cols[] = {
    COL_ID,
    COL("ring_start", BM_COL_TIME, "ring_start_ms", true),
    COL("answered", BM_COL_BOOL, "answered", true),
    COL("wait_seconds", BM_COL_UINT, "wait_seconds", true),
    COL_END,
};

static const bm_csv_column_t s_complaint_cols[] = {
    COL_ID,
    COL("received_at", BM_COL_TIME, "received_at_ms", true),
    COL("category", BM_COL_TEXT, "category", true),
    COL("contact_point", BM_COL_TEXT, "contact_point", true),
    COL("channel", BM_COL_TEXT, "channel", true),
    COL("resolved_at", BM_COL_TIME, "resolved_at_ms", false),
    COL_END,
};

static const bm_col_choice_t s_customer_kinds[] = {
    {"gained", BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_GAINED},
    {"lost", BRANCHMARK__V1__CUSTOMER_CHANGE_KIND__CUSTOMER_LOST},
    {NULL, 0},
};

static const bm_csv_column_t s_customer_change_cols[] = {
    COL_ID,
    COL("at", BM_COL_TIME, "at_ms", true),
    {"kind", BM_COL_CHOICE, "kind", true, s_customer_kinds, NULL},
    COL("reason", BM_COL_TEXT, "reason", false),
    COL("segment", BM_COL_TEXT, "segment", false),
    COL_END,
};

/* A CSV format: name (= kind = Record field), file-name prefix, columns. */
#define CSV(name, prefix, cols) \
    {name, prefix, ".csv", cols, sizeof cols / sizeof cols[0] - 1, bm_csv_record}

const struct bm_parser bm_parser_table[] = {
    CSV("people_count", "people_count", s_people_count_cols),
    CSV("receipt", "receipts", s_receipt_cols),
    CSV("queue_ticket", "queue", s_queue_ticket_cols),
    CSV("phone_call", "calls", s_phone_call_cols),
    CSV("complaint", "complaints", s_complaint_cols),
    CSV("customer_change", "customers", s_customer_change_cols),
    {"survey", "surveys", ".jsonl", NULL, 0, s_survey},
    {"evaluation", "evaluations", ".jsonl", NULL, 0, s_evaluation},
};

const size_t bm_parser_table_count = sizeof bm_parser_table / sizeof bm_parser_table[0];
