/* bm-datagen: writes reference data and realistic store exports for the
 * demo, the integration tests and the benchmarks.
 *
 *   bm-datagen --out DIR [--branches 12] [--regions 3] [--competitors 6]
 *              [--days 30] [--end YYYY-MM-DD] [--seed 42] [--scale 1.0]
 *
 * Output (docs/formats.md and docs/refdata.md describe the formats):
 *   DIR/refdata.json          chain, regions, branches, competitor outlets and
 *                             the STORE and CALL questionnaires (version 1)
 *   DIR/<branch>/inbox/       the branch's exports: people_count, receipts,
 *                             queue and calls one file per day; complaints,
 *                             customers, surveys and evaluations one per week
 *   DIR/expected.tsv          branch, kind, count: exactly what was written
 *   DIR/truth.tsv             each outlet's hidden quality factor (0..1), so
 *                             that a benchmark can be checked against it
 *
 * Every branch and competitor outlet has a hidden quality factor; better
 * outlets have shorter waits, more promoters, higher shopper scores, fewer
 * complaints and higher capture and conversion, so rankings differ
 * meaningfully.  The output depends only on the arguments: each (branch, kind)
 * draws from its own xoshiro256** stream seeded through splitmix64, so the
 * data of B001 is the same whatever --branches says.
 *
 * Owns: nothing beyond one run; files are written to "<name>.tmp" and renamed
 * into place, as a store system should do. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

#include "bm_err.h"
#include "bm_time.h"

#define S_DAY_MS 86400000LL
#define S_HOUR_MS 3600000LL
#define S_MAX_BRANCHES 999
#define S_MAX_REGIONS 8
#define S_MAX_COMPETITORS 999
#define S_MAX_DAYS 731
#define S_PATH_MAX 4096

/* ---------------------------------------------------------------- PRNG */

typedef struct {
    uint64_t s[4];
} s_rng_t;

static uint64_t s_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A stream for (seed, outlet, purpose): independent of every other stream. */
static void s_rng_init(s_rng_t *r, uint64_t seed, uint64_t outlet, uint64_t purpose)
{
    uint64_t x = seed ^ (outlet * 0xd1b54a32d192ed03ULL) ^ (purpose * 0x8cb92ba72f3d8dd7ULL);
    for (int i = 0; i < 4; i++)
        r->s[i] = s_splitmix64(&x);
}

static uint64_t s_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t s_next(s_rng_t *r)
{
    uint64_t *s = r->s;
    const uint64_t result = s_rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static double s_unif(s_rng_t *r)
{
    return (double)(s_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [lo, hi]. */
static int64_t s_range(s_rng_t *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(s_unif(r) * (double)(hi - lo + 1));
}

static bool s_chance(s_rng_t *r, double p)
{
    return s_unif(r) < p;
}

static double s_normal(s_rng_t *r)
{
    double u1 = s_unif(r), u2 = s_unif(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double s_expo(s_rng_t *r, double mean)
{
    return -mean * log(1.0 - s_unif(r));
}

static int64_t s_poisson(s_rng_t *r, double lambda)
{
    if (lambda <= 0)
        return 0;
    if (lambda > 30) {
        double v = lambda + sqrt(lambda) * s_normal(r);
        return v < 0 ? 0 : (int64_t)llround(v);
    }
    double limit = exp(-lambda), p = 1.0;
    int64_t k = 0;
    do {
        k++;
        p *= s_unif(r);
    } while (p > limit);
    return k - 1;
}

static double s_clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

#define S_PICK(r, arr) ((arr)[s_range((r), 0, (int64_t)(sizeof(arr) / sizeof((arr)[0])) - 1)])

/* ------------------------------------------------------ reference data */

typedef struct {
    const char *code, *name;
    double lat, lon;
    const char *cities[7];
} s_region_def_t;

static const s_region_def_t s_region_defs[S_MAX_REGIONS] = {
    {"NORTH", "North", 43.60, 25.30,
     {"Ruse", "Pleven", "Veliko Tarnovo", "Vidin", "Gabrovo", "Lovech", "Vratsa"}},
    {"SOUTH", "South", 42.15, 24.75,
     {"Plovdiv", "Stara Zagora", "Haskovo", "Pazardzhik", "Kardzhali", "Smolyan", "Asenovgrad"}},
    {"WEST", "West", 42.70, 23.32,
     {"Sofia", "Pernik", "Blagoevgrad", "Kyustendil", "Montana", "Dupnitsa", "Botevgrad"}},
    {"EAST", "East", 43.20, 27.55,
     {"Varna", "Burgas", "Dobrich", "Shumen", "Sliven", "Yambol", "Targovishte"}},
    {"CENTRAL", "Central", 42.80, 25.00,
     {"Kazanlak", "Karlovo", "Troyan", "Sevlievo", "Gorna Oryahovitsa", "Lovech", "Pavlikeni"}},
    {"COAST", "Coast", 42.50, 27.45,
     {"Nesebar", "Pomorie", "Sozopol", "Balchik", "Kavarna", "Primorsko", "Obzor"}},
    {"CAPITAL", "Capital", 42.68, 23.36,
     {"Mladost", "Lyulin", "Nadezhda", "Studentski", "Vitosha", "Lozenets", "Druzhba"}},
    {"MOUNTAIN", "Mountain", 41.80, 23.80,
     {"Bansko", "Razlog", "Velingrad", "Samokov", "Chepelare", "Devin", "Gotse Delchev"}},
};

static const char *const s_branch_suffixes[] = {"Center", "Mall", "Station", "Park",
                                                "Plaza", "Market", "Square", "Gate"};
static const char *const s_brands[] = {"Rival", "Zenith", "MegaMart", "Orbit"};

typedef struct {
    const char *code, *text;
    double max_points, weight;
    bool critical, bonus;
    double difficulty;      /* lowers the chance of full points */
    double na_chance;       /* chance the item does not apply */
} s_item_def_t;

typedef struct {
    const char *code, *title;
    double weight;
    const char *rule;       /* zero_section | zero_total | cap */
    double cap_percent;
    s_item_def_t items[6];
} s_section_def_t;

typedef struct {
    const char *code, *title, *channel;
    s_section_def_t sections[6];
} s_questionnaire_def_t;

static const s_questionnaire_def_t s_store_q = {
    "STORE", "Store visit", "visit",
    {
        {"GREET", "Greeting", 1.0, "zero_section", 0,
         {{"G1", "Greeted within 30 s of entering", 1, 1, false, false, 0.05, 0},
          {"G2", "Eye contact and a smile", 1, 1, false, false, 0.10, 0},
          {"G3", "Name badge visible", 1, 0.5, false, false, 0.05, 0.05}}},
        {"NEEDS", "Identifying needs", 1.5, "zero_section", 0,
         {{"N1", "Asked open questions about the need", 2, 2, false, false, 0.20, 0},
          {"N2", "Listened without interrupting", 1, 1, false, false, 0.10, 0},
          {"N3", "Summarised the need back to the customer", 1, 1, false, false, 0.30, 0.05}}},
        {"PROD", "Product knowledge", 2.0, "cap", 50,
         {{"P1", "Knew the warranty terms", 1, 1, true, false, 0.0, 0},
          {"P2", "Explained benefits, not just features", 2, 2, false, false, 0.25, 0},
          {"P3", "Answered questions correctly", 2, 1.5, false, false, 0.15, 0},
          {"P4", "Knew stock availability", 1, 1, false, false, 0.10, 0.10}}},
        {"UPSELL", "Upselling and cross-selling", 1.0, "zero_section", 0,
         {{"U1", "Offered a complementary product", 1, 1, false, false, 0.30, 0.10},
          {"U2", "Offered the premium option", 1, 1, false, false, 0.35, 0.15},
          {"U3", "Mentioned the current promotion", 1, 0.5, false, false, 0.25, 0.20},
          {"U4", "Offered the loyalty card", 1, 1, false, true, 0.40, 0}}},
        {"CLOSE", "Closing", 1.0, "zero_section", 0,
         {{"C1", "Thanked and invited back", 1, 1, false, false, 0.10, 0},
          {"C2", "Correct change and receipt given", 2, 2, true, false, 0.0, 0},
          {"C3", "Farewell", 1, 1, false, false, 0.05, 0}}},
        {"CLEAN", "Cleanliness and visual standards", 1.0, "zero_section", 0,
         {{"K1", "Entrance clean", 1, 1, false, false, 0.05, 0},
          {"K2", "Shelves tidy and priced", 2, 1.5, false, false, 0.20, 0},
          {"K3", "Fitting rooms and counters clean", 1, 1, false, false, 0.15, 0.15}}},
    },
};

static const s_questionnaire_def_t s_call_q = {
    "CALL", "Mystery call", "call",
    {
        {"ANSWER", "Answering", 1.0, "zero_section", 0,
         {{"A1", "Answered within three rings", 1, 1, false, false, 0.20, 0},
          {"A2", "Introduced self and the store", 1, 1, true, false, 0.0, 0}}},
        {"HELP", "Helping", 2.0, "zero_total", 0,
         {{"H1", "Understood the request", 2, 1, false, false, 0.15, 0},
          {"H2", "Gave correct information", 2, 2, true, false, 0.0, 0},
          {"H3", "Offered to reserve the product", 1, 1, false, false, 0.30, 0.20}}},
        {"END", "Ending", 1.0, "zero_section", 0,
         {{"E1", "Summarised the next steps", 1, 1, false, false, 0.25, 0},
          {"E2", "Thanked the caller", 1, 1, false, false, 0.05, 0},
          {"E3", "Invited the caller to visit", 1, 1, false, true, 0.30, 0}}},
    },
};

/* ---------------------------------------------------------- the run */

enum { K_PEOPLE, K_RECEIPT, K_QUEUE, K_CALL, K_COMPLAINT, K_SURVEY, K_CUSTOMER, K_EVAL, K_N };

/* bm_kind_name() spelling, the names in expected.tsv and the database. */
static const char *const s_kind_names[K_N] = {
    "people_count", "receipt", "queue_ticket", "phone_call",
    "complaint", "survey", "customer_change", "evaluation",
};

typedef struct {
    char code[16];
    int region;
    double quality;       /* 0 (poor) .. 1 (excellent) */
    double size;          /* footfall multiplier */
} s_outlet_t;

typedef struct {
    int sender;           /* branch index that sends the evaluation */
    bool competitor;
    int outlet;           /* branch or competitor index */
    const s_questionnaire_def_t *q;
    int64_t visited_ms;
} s_eval_plan_t;

typedef struct {
    const char *out;
    int branches, regions, competitors, days;
    int64_t end_day;      /* days since 1970-01-01 of the last day */
    uint64_t seed;
    double scale;
    s_outlet_t *b;
    s_outlet_t *c;
    s_eval_plan_t *plan;
    size_t nplan;
    uint64_t (*counts)[K_N];
} s_gen_t;

/* ------------------------------------------------------------- helpers */

/* Formats ms as "YYYY-MM-DDTHH:MM:SSZ" (whole seconds). */
static const char *s_iso(int64_t ms, char *buf, size_t size)
{
    bm_time_format(ms - ms % 1000, buf, size);
    char *dot = strchr(buf, '.');
    if (dot) {
        dot[0] = 'Z';
        dot[1] = '\0';
    }
    return buf;
}

static void s_ymd(int64_t day, char *buf, size_t size)
{
    char t[32];
    bm_time_format(day * S_DAY_MS, t, sizeof t);
    snprintf(buf, size, "%.4s%.2s%.2s", t, t + 5, t + 8);
}

/* Europe/Sofia: UTC+2, +3 from the last Sunday of March 01:00 UTC to the
 * last Sunday of October 01:00 UTC (EU rule). */
static int64_t s_last_sunday_ms(int64_t year, unsigned month)
{
    unsigned last = month == 3 || month == 10 ? 31 : 30;
    int64_t day = bm_days_from_civil(year, month, last);
    int64_t wd = ((day % 7) + 11) % 7;   /* 0 = Sunday (1970-01-01 was a Thursday) */
    return (day - wd) * S_DAY_MS + S_HOUR_MS;
}

static int64_t s_sofia_offset_ms(int64_t day)
{
    char t[32];
    bm_time_format(day * S_DAY_MS, t, sizeof t);
    int64_t year = strtoll(t, NULL, 10);
    int64_t noon = day * S_DAY_MS + 12 * S_HOUR_MS;
    bool dst = noon >= s_last_sunday_ms(year, 3) && noon < s_last_sunday_ms(year, 10);
    return (dst ? 3 : 2) * S_HOUR_MS;
}

static int s_weekday(int64_t day)
{
    return (int)(((day % 7) + 11) % 7);   /* 0 = Sunday */
}

/* Local opening hours [open, close) of a day, as UTC ms. */
static void s_opening(int64_t day, int64_t *open_ms, int64_t *close_ms, int *hours)
{
    int wd = s_weekday(day);
    int oh = wd == 0 ? 10 : 9, ch = wd == 0 ? 18 : 20;
    int64_t base = day * S_DAY_MS - s_sofia_offset_ms(day);
    *open_ms = base + oh * S_HOUR_MS;
    *close_ms = base + ch * S_HOUR_MS;
    *hours = ch - oh;
}

static double s_day_factor(int64_t day)
{
    static const double f[7] = {0.8, 0.9, 0.95, 1.0, 1.05, 1.15, 1.3};
    return f[s_weekday(day)];
}

/* Share of the day's footfall in the given hour of opening (a midday and an
 * after-work peak). */
static double s_hour_shape(int h, int hours)
{
    double x = (h + 0.5) / hours;
    return 0.6 + 0.5 * exp(-pow((x - 0.40) / 0.15, 2)) + 0.7 * exp(-pow((x - 0.80) / 0.12, 2));
}

static int s_mkdirs(const char *path, bm_err_t *err)
{
    char tmp[S_PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof tmp)
        return bm_err_set(err, "path \"%s\" is too long", path);
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return bm_err_set(err, "could not create directory \"%s\": %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return bm_err_set(err, "could not create directory \"%s\": %s", tmp, strerror(errno));
    return 0;
}

/* Refuses an inbox that already holds files: expected.tsv would not describe
 * them.  Returns 0, or -1 with err. */
static int s_check_empty(const char *dir, bm_err_t *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return bm_err_set(err, "could not open directory \"%s\": %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            rc = bm_err_set(err, "directory \"%s\" is not empty (remove it first)", dir);
            break;
        }
    }
    closedir(d);
    return rc;
}

/* An output file written under "<path>.tmp" and renamed on close. */
typedef struct {
    FILE *f;
    char path[S_PATH_MAX];
    char tmp[S_PATH_MAX + 8];
    uint64_t records;
} s_out_t;

/* Opens path.tmp.  Returns 0, or -1 with err. */
static int s_out_open(s_out_t *o, const char *path, const char *header, bm_err_t *err)
{
    memset(o, 0, sizeof *o);
    if (snprintf(o->path, sizeof o->path, "%s", path) >= (int)sizeof o->path)
        return bm_err_set(err, "path \"%s\" is too long", path);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp", path);
    o->f = fopen(o->tmp, "w");
    if (!o->f)
        return bm_err_set(err, "could not create \"%s\": %s", o->tmp, strerror(errno));
    if (header)
        fputs(header, o->f);
    return 0;
}

/* Closes and renames into place; an empty data file is removed instead
 * (a store system exports nothing for a day without events).  Returns 0, or
 * -1 with err. */
static int s_out_close(s_out_t *o, bool keep_empty, bm_err_t *err)
{
    if (!o->f)
        return 0;
    bool bad = ferror(o->f) != 0;
    if (fclose(o->f) != 0)
        bad = true;
    o->f = NULL;
    if (bad)
        return bm_err_set(err, "could not write \"%s\": %s", o->tmp, strerror(errno));
    if (o->records == 0 && !keep_empty) {
        unlink(o->tmp);
        return 0;
    }
    if (rename(o->tmp, o->path) != 0)
        return bm_err_set(err, "could not rename \"%s\": %s", o->tmp, strerror(errno));
    return 0;
}

static void s_out_abort(s_out_t *o)
{
    if (o->f) {
        fclose(o->f);
        o->f = NULL;
        unlink(o->tmp);
    }
}

/* Writes a JSON object as one line.  Returns 0 or -1 with err (out of
 * memory). */
static int s_out_json(s_out_t *o, json_t *obj, bm_err_t *err)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (!s)
        return bm_err_set(err, "out of memory encoding JSON for \"%s\"", o->path);
    fputs(s, o->f);
    fputc('\n', o->f);
    free(s);
    o->records++;
    return 0;
}

static int s_branch_file(const s_gen_t *g, int b, const char *prefix, int64_t day,
                         const char *ext, char *path, size_t size, bm_err_t *err)
{
    char ymd[16];
    s_ymd(day, ymd, sizeof ymd);
    if (snprintf(path, size, "%s/%s/inbox/%s_%s.%s", g->out, g->b[b].code, prefix, ymd, ext) >=
        (int)size)
        return bm_err_set(err, "output path under \"%s\" is too long", g->out);
    return 0;
}

/* ----------------------------------------------------- daily exports */

/* Every branch has at least one record of every kind in the period, so that
 * a small test data set still covers each format: on the last day, a kind
 * that has none yet gets one. */
static int64_t s_at_least_one(const s_gen_t *g, int b, int kind, int64_t day, uint64_t so_far,
                              int64_t n)
{
    return n == 0 && day == g->end_day && g->counts[b][kind] + so_far == 0 ? 1 : n;
}


/* people_count, receipts, queue and calls of one branch and one day. */
static int s_write_day(s_gen_t *g, int b, int64_t day, bm_err_t *err)
{
    const s_outlet_t *br = &g->b[b];
    const double q = br->quality;
    char path[S_PATH_MAX], ymd[16], t1[32], t2[32], t3[32];
    s_ymd(day, ymd, sizeof ymd);
    int64_t open_ms, close_ms;
    int hours;
    s_opening(day, &open_ms, &close_ms, &hours);

    s_rng_t rp, rr, rq, rc;
    uint64_t dkey = (uint64_t)day * 64;
    s_rng_init(&rp, g->seed, (uint64_t)b + 1, dkey + K_PEOPLE);
    s_rng_init(&rr, g->seed, (uint64_t)b + 1, dkey + K_RECEIPT);
    s_rng_init(&rq, g->seed, (uint64_t)b + 1, dkey + K_QUEUE);
    s_rng_init(&rc, g->seed, (uint64_t)b + 1, dkey + K_CALL);

    s_out_t pc, rc_out, qt, cl;
    memset(&pc, 0, sizeof pc);
    memset(&rc_out, 0, sizeof rc_out);
    memset(&qt, 0, sizeof qt);
    memset(&cl, 0, sizeof cl);
    if (s_branch_file(g, b, "people_count", day, "csv", path, sizeof path, err) ||
        s_out_open(&pc, path, "source_id,interval_start,interval_seconds,passers_by,entrants\r\n", err))
        goto fail;
    if (s_branch_file(g, b, "receipts", day, "csv", path, sizeof path, err) ||
        s_out_open(&rc_out, path, "source_id,at,amount,currency\n", err))
        goto fail;
    if (s_branch_file(g, b, "queue", day, "csv", path, sizeof path, err) ||
        s_out_open(&qt, path, "source_id,issued_at,called_at,served_at,service_point\n", err))
        goto fail;
    if (s_branch_file(g, b, "calls", day, "csv", path, sizeof path, err) ||
        s_out_open(&cl, path, "source_id,ring_start,answered,wait_seconds\n", err))
        goto fail;

    /* Footfall: passers-by per hour; capture and conversion follow quality. */
    const double capture = s_clamp(0.12 + 0.16 * q + 0.02 * s_normal(&rp), 0.05, 0.6);
    const double conversion = s_clamp(0.25 + 0.30 * q + 0.03 * s_normal(&rr), 0.05, 0.95);
    uint64_t receipt_no = 0;
    for (int h = 0; h < hours; h++) {
        int64_t start = open_ms + h * S_HOUR_MS;
        double mean = 330.0 * br->size * s_day_factor(day) * s_hour_shape(h, hours) * g->scale;
        int64_t passers = s_poisson(&rp, mean);
        int64_t entrants = 0;
        for (int64_t i = 0; i < passers; i++)
            entrants += s_chance(&rp, capture);
        fprintf(pc.f, "PC-%s-%s-%02d,%s,3600,%" PRId64 ",%" PRId64 "\r\n", br->code, ymd, h,
                s_iso(start, t1, sizeof t1), passers, entrants);
        pc.records++;

        int64_t buyers = 0;
        for (int64_t i = 0; i < entrants; i++)
            buyers += s_chance(&rr, conversion);
        for (int64_t k = 0; k < buyers; k++) {
            int64_t at = start + (int64_t)((k + s_unif(&rr)) * (double)S_HOUR_MS / (double)buyers);
            /* Average check rises a little with service quality. */
            double amount = exp(log(22.0 + 14.0 * q) + 0.75 * s_normal(&rr));
            if (amount > 4999)
                amount = 4999;
            int64_t cents = (int64_t)llround(amount * 100);
            if (cents < 1)
                cents = 1;
            if (s_chance(&rr, 0.02))
                cents = -(cents / 2 + 1);   /* refund */
            receipt_no++;
            int64_t a = cents < 0 ? -cents : cents;
            fprintf(rc_out.f, "R-%s-%s-%05" PRIu64 ",%s,%s%" PRId64 ".%02" PRId64 ",EUR\n",
                    br->code, ymd, receipt_no, s_iso(at, t1, sizeof t1), cents < 0 ? "-" : "",
                    a / 100, a % 100);
            rc_out.records++;
        }
    }

    /* Queue tickets at the service desks: waits shrink with quality. */
    static const char *const points[] = {"desk1", "desk2", "returns", "orders"};
    int64_t tickets = s_poisson(&rq, 70.0 * br->size * s_day_factor(day) * g->scale);
    tickets = s_at_least_one(g, b, K_QUEUE, day, 0, tickets);
    const double wait_mean_s = 840.0 - 620.0 * q;
    for (int64_t k = 0; k < tickets; k++) {
        int64_t issued = open_ms + (int64_t)((k + s_unif(&rq)) * (double)(close_ms - open_ms - S_HOUR_MS / 2) / (double)tickets);
        const char *point = S_PICK(&rq, points);
        const char *called = "", *served = "";
        if (!s_chance(&rq, 0.11 - 0.08 * q)) {       /* else abandoned before called */
            int64_t c = issued + (int64_t)(s_expo(&rq, wait_mean_s) * 1000.0);
            called = s_iso(c, t2, sizeof t2);
            if (!s_chance(&rq, 0.02)) {               /* else a no-show after the call */
                int64_t s = c + 30000 + (int64_t)(s_expo(&rq, 240.0) * 1000.0);
                served = s_iso(s, t3, sizeof t3);
            }
        }
        fprintf(qt.f, "Q-%s-%s-%04" PRId64 ",%s,%s,%s,%s\n", br->code, ymd, k + 1,
                s_iso(issued, t1, sizeof t1), called, served, point);
        qt.records++;
    }

    /* Inbound calls from 08:00 to closing. */
    int64_t calls = s_poisson(&rc, 28.0 * br->size * s_day_factor(day) * g->scale);
    calls = s_at_least_one(g, b, K_CALL, day, 0, calls);
    for (int64_t k = 0; k < calls; k++) {
        int64_t ring = open_ms - S_HOUR_MS + (int64_t)((k + s_unif(&rc)) * (double)(close_ms - open_ms) / (double)calls);
        bool answered = s_chance(&rc, 0.74 + 0.23 * q);
        double wait = answered ? s_expo(&rc, 55.0 - 45.0 * q) : s_expo(&rc, 40.0) + 5.0;
        static const char *const yes[] = {"yes", "true", "1"}, *const no[] = {"no", "false", "0"};
        fprintf(cl.f, "T-%s-%s-%04" PRId64 ",%s,%s,%d\n", br->code, ymd, k + 1,
                s_iso(ring, t1, sizeof t1), answered ? yes[k % 3] : no[k % 3],
                (int)s_clamp(wait, 0, 3600));
        cl.records++;
    }

    g->counts[b][K_PEOPLE] += pc.records;
    g->counts[b][K_RECEIPT] += rc_out.records;
    g->counts[b][K_QUEUE] += qt.records;
    g->counts[b][K_CALL] += cl.records;
    if (s_out_close(&pc, false, err) || s_out_close(&rc_out, false, err) ||
        s_out_close(&qt, false, err) || s_out_close(&cl, false, err))
        goto fail;
    return 0;
fail:
    s_out_abort(&pc);
    s_out_abort(&rc_out);
    s_out_abort(&qt);
    s_out_abort(&cl);
    return -1;
}

/* ----------------------------------------------------- weekly exports */

/* A random moment within the opening hours of a day. */
static int64_t s_open_moment(s_rng_t *r, int64_t day)
{
    int64_t open_ms, close_ms;
    int hours;
    s_opening(day, &open_ms, &close_ms, &hours);
    return open_ms + (int64_t)(s_unif(r) * (double)(close_ms - open_ms - 60000));
}

/* The newest time anything may carry: the end of the last day (so that no
 * record is in the future when the default end, yesterday, is used). */
static int64_t s_horizon_ms(const s_gen_t *g)
{
    return (g->end_day + 1) * S_DAY_MS - 1000;
}

static int s_write_complaints(s_gen_t *g, int b, int64_t d0, int64_t d1, uint64_t *seq,
                              bm_err_t *err)
{
    static const char *const categories[] = {"staff_attitude", "waiting", "product", "price",
                                             "cleanliness", "returns", "availability"};
    static const char *const contacts[] = {"checkout", "sales_floor", "phone", "returns_desk",
                                           "fitting_room", "entrance"};
    static const char *const channels[] = {"in_person", "in_person", "phone", "email", "web"};
    const s_outlet_t *br = &g->b[b];
    char path[S_PATH_MAX], t1[32], t2[32];
    s_out_t o;
    if (s_branch_file(g, b, "complaints", d0, "csv", path, sizeof path, err) ||
        s_out_open(&o, path, "source_id,received_at,category,contact_point,channel,resolved_at\n", err))
        return -1;
    for (int64_t day = d0; day < d1; day++) {
        s_rng_t r;
        s_rng_init(&r, g->seed, (uint64_t)b + 1, (uint64_t)day * 64 + K_COMPLAINT);
        int64_t n = s_poisson(&r, (1.6 - 1.3 * br->quality) * br->size * g->scale);
        n = s_at_least_one(g, b, K_COMPLAINT, day, o.records, n);
        for (int64_t k = 0; k < n; k++) {
            int64_t at = s_open_moment(&r, day);
            /* Poor branches complain about waiting and attitude more. */
            const char *cat = s_chance(&r, 0.5 - 0.3 * br->quality)
                                  ? (s_chance(&r, 0.5) ? "waiting" : "staff_attitude")
                                  : S_PICK(&r, categories);
            const char *resolved = "";
            if (!s_chance(&r, 0.15)) {
                int64_t res = at + (int64_t)(s_expo(&r, 30.0 - 20.0 * br->quality) * (double)S_HOUR_MS);
                if (res <= s_horizon_ms(g))
                    resolved = s_iso(res, t2, sizeof t2);
            }
            (*seq)++;
            fprintf(o.f, "CP-%s-%06" PRIu64 ",%s,%s,%s,%s,%s\n", br->code, *seq,
                    s_iso(at, t1, sizeof t1), cat, S_PICK(&r, contacts), S_PICK(&r, channels),
                    resolved);
            o.records++;
        }
    }
    g->counts[b][K_COMPLAINT] += o.records;
    if (s_out_close(&o, false, err)) {
        s_out_abort(&o);
        return -1;
    }
    return 0;
}

static int s_write_customers(s_gen_t *g, int b, int64_t d0, int64_t d1, uint64_t *seq,
                             bm_err_t *err)
{
    static const char *const reasons[] = {"moved_away", "price", "service", "competitor_offer",
                                          "product_range", "waiting_time"};
    static const char *const segments[] = {"family", "young", "senior", "business", "student"};
    const s_outlet_t *br = &g->b[b];
    char path[S_PATH_MAX], t1[32];
    s_out_t o;
    if (s_branch_file(g, b, "customers", d0, "csv", path, sizeof path, err) ||
        s_out_open(&o, path, "source_id,at,kind,reason,segment\n", err))
        return -1;
    for (int64_t day = d0; day < d1; day++) {
        s_rng_t r;
        s_rng_init(&r, g->seed, (uint64_t)b + 1, (uint64_t)day * 64 + K_CUSTOMER);
        int64_t gained = s_poisson(&r, (3.0 + 3.0 * br->quality) * br->size * g->scale);
        int64_t lost = s_poisson(&r, (3.5 - 2.5 * br->quality) * br->size * g->scale);
        lost = s_at_least_one(g, b, K_CUSTOMER, day, o.records, lost);
        for (int64_t k = 0; k < gained + lost; k++) {
            bool is_lost = k >= gained;
            const char *reason = "";
            if (is_lost)
                reason = s_chance(&r, 0.4 - 0.25 * br->quality)
                             ? (s_chance(&r, 0.5) ? "service" : "waiting_time")
                             : S_PICK(&r, reasons);
            (*seq)++;
            fprintf(o.f, "CU-%s-%06" PRIu64 ",%s,%s,%s,%s\n", br->code, *seq,
                    s_iso(s_open_moment(&r, day), t1, sizeof t1), is_lost ? "lost" : "gained",
                    reason, S_PICK(&r, segments));
            o.records++;
        }
    }
    g->counts[b][K_CUSTOMER] += o.records;
    if (s_out_close(&o, false, err)) {
        s_out_abort(&o);
        return -1;
    }
    return 0;
}

static int s_nps_for(s_rng_t *r, double q)
{
    double u = s_unif(r);
    double p_promoter = 0.22 + 0.50 * q, p_detractor = 0.38 - 0.32 * q;
    if (u < p_promoter)
        return s_chance(r, 0.55) ? 10 : 9;
    if (u < p_promoter + p_detractor)
        return (int)s_range(r, 0, 6) > 2 ? (int)s_range(r, 4, 6) : (int)s_range(r, 0, 3);
    return s_chance(r, 0.5) ? 7 : 8;
}

static int s_write_surveys(s_gen_t *g, int b, int64_t d0, int64_t d1, uint64_t *seq,
                           bm_err_t *err)
{
    static const char *const csi_items[] = {"friendliness", "speed", "competence",
                                            "cleanliness", "product_range"};
    static const char *const good_why[] = {"quick and kind", "very helpful staff",
                                           "found everything I needed",
                                           "the assistant knew the product well",
                                           "clean store, short queue"};
    static const char *const bad_why[] = {"waited too long at the desk", "nobody greeted me",
                                          "staff did not know the warranty terms",
                                          "dirty fitting room", "rude cashier, \"not my job\""};
    static const char *const segments[] = {"family", "young", "senior", "business", "student"};
    static const char *const channels[] = {"kiosk", "tablet", "callback", "email"};
    const s_outlet_t *br = &g->b[b];
    char path[S_PATH_MAX], t1[32], sid[64];
    s_out_t o;
    if (s_branch_file(g, b, "surveys", d0, "jsonl", path, sizeof path, err) ||
        s_out_open(&o, path, NULL, err))
        return -1;
    for (int64_t day = d0; day < d1; day++) {
        s_rng_t r;
        s_rng_init(&r, g->seed, (uint64_t)b + 1, (uint64_t)day * 64 + K_SURVEY);
        int64_t n = s_poisson(&r, 14.0 * br->size * g->scale);
        n = s_at_least_one(g, b, K_SURVEY, day, o.records, n);
        for (int64_t k = 0; k < n; k++) {
            (*seq)++;
            snprintf(sid, sizeof sid, "S-%s-%06" PRIu64, br->code, *seq);
            json_t *obj = json_object();
            if (!obj)
                goto oom;
            double u = s_unif(&r);
            bool has_nps = u < 0.90;                 /* 10% CSI only */
            bool has_csi = u < 0.75 || u >= 0.90;    /* 15% NPS only */
            int nps = s_nps_for(&r, br->quality);
            json_object_set_new(obj, "source_id", json_string(sid));
            json_object_set_new(obj, "responded_at",
                                json_string(s_iso(s_open_moment(&r, day), t1, sizeof t1)));
            if (has_nps)
                json_object_set_new(obj, "nps", json_integer(nps));
            else if (s_chance(&r, 0.5))
                json_object_set_new(obj, "nps", json_null());
            if (has_csi) {
                int scale = s_chance(&r, 0.8) ? 5 : 10;
                json_t *csi = json_object();
                for (size_t i = 0; i < sizeof csi_items / sizeof csi_items[0]; i++) {
                    if (i >= 2 && s_chance(&r, 0.3))
                        continue;
                    double mean = 1.0 + (scale - 1) * (0.35 + 0.5 * br->quality);
                    int score = (int)s_clamp(llround(mean + 0.18 * scale * s_normal(&r)), 1, scale);
                    json_object_set_new(csi, csi_items[i], json_integer(score));
                }
                json_object_set_new(obj, "csi", csi);
                json_object_set_new(obj, "csi_scale", json_integer(scale));
            }
            if (s_chance(&r, 0.6)) {
                bool good = has_nps ? nps >= 8 : s_chance(&r, br->quality);
                json_object_set_new(obj, "why", json_string(good ? S_PICK(&r, good_why)
                                                                 : S_PICK(&r, bad_why)));
            }
            if (s_chance(&r, 0.8))
                json_object_set_new(obj, "segment", json_string(S_PICK(&r, segments)));
            json_object_set_new(obj, "channel", json_string(S_PICK(&r, channels)));
            int rc = s_out_json(&o, obj, err);
            json_decref(obj);
            if (rc)
                goto fail;
        }
    }
    g->counts[b][K_SURVEY] += o.records;
    if (s_out_close(&o, false, err))
        goto fail;
    return 0;
oom:
    bm_err_set(err, "out of memory");
fail:
    s_out_abort(&o);
    return -1;
}

/* One evaluation as a JSON object (NULL when out of memory). */
static json_t *s_evaluation_json(const s_gen_t *g, const s_eval_plan_t *pl, const char *sid,
                                 s_rng_t *r)
{
    static const char *const scenarios[] = {"first_purchase", "return_item", "consultation",
                                            "complaint_handling", "price_check"};
    static const char *const shopper_segments[] = {"young_family", "senior", "student",
                                                   "business", "budget"};
    static const char *const comments[] = {"did not know the warranty terms",
                                           "had to ask twice", "no eye contact",
                                           "counter was dusty", "no offer made",
                                           "friendly but rushed"};
    const s_outlet_t *out = pl->competitor ? &g->c[pl->outlet] : &g->b[pl->outlet];
    char t1[32], t2[32], shopper[16];
    json_t *obj = json_object(), *outlet = json_object(), *answers = json_array();
    if (!obj || !outlet || !answers) {
        json_decref(obj);
        json_decref(outlet);
        json_decref(answers);
        return NULL;
    }
    /* A shopper has a good or a bad day: a visit-level shift around quality. */
    double q = s_clamp(out->quality + 0.12 * s_normal(r), 0, 1);
    json_object_set_new(outlet, pl->competitor ? "competitor" : "branch", json_string(out->code));
    snprintf(shopper, sizeof shopper, "SH%03d", (int)s_range(r, 1, 60));
    int64_t submitted = pl->visited_ms + (int64_t)((2.0 + s_unif(r) * 30.0) * (double)S_HOUR_MS);
    if (submitted > s_horizon_ms(g))
        submitted = s_horizon_ms(g);
    if (submitted < pl->visited_ms)
        submitted = pl->visited_ms;
    json_object_set_new(obj, "source_id", json_string(sid));
    json_object_set_new(obj, "questionnaire", json_string(pl->q->code));
    json_object_set_new(obj, "version", json_integer(1));
    json_object_set_new(obj, "channel", json_string(pl->q->channel));
    json_object_set_new(obj, "scenario", json_string(S_PICK(r, scenarios)));
    json_object_set_new(obj, "shopper_segment", json_string(S_PICK(r, shopper_segments)));
    json_object_set_new(obj, "outlet", outlet);
    json_object_set_new(obj, "visited_at", json_string(s_iso(pl->visited_ms, t1, sizeof t1)));
    if (s_chance(r, 0.9))
        json_object_set_new(obj, "submitted_at", json_string(s_iso(submitted, t2, sizeof t2)));
    json_object_set_new(obj, "shopper", json_string(shopper));
    for (int s = 0; s < 6 && pl->q->sections[s].code; s++) {
        for (int i = 0; i < 6 && pl->q->sections[s].items[i].code; i++) {
            const s_item_def_t *it = &pl->q->sections[s].items[i];
            json_t *a = json_object();
            json_object_set_new(a, "item", json_string(it->code));
            if (s_chance(r, it->na_chance)) {
                json_object_set_new(a, "na", json_true());
            } else {
                double p_full = it->critical ? 0.80 + 0.19 * q
                                             : s_clamp(0.45 + 0.50 * q - it->difficulty, 0.05, 0.99);
                int pts;
                if (s_chance(r, p_full))
                    pts = (int)it->max_points;
                else
                    pts = it->max_points > 1 && s_chance(r, 0.5) ? 1 : 0;
                json_object_set_new(a, "points", json_integer(pts));
                if (pts < it->max_points && s_chance(r, 0.4))
                    json_object_set_new(a, "comment", json_string(S_PICK(r, comments)));
            }
            json_array_append_new(answers, a);
        }
    }
    json_object_set_new(obj, "answers", answers);
    return obj;
}

static int s_write_evaluations(s_gen_t *g, int b, int64_t d0, int64_t d1, uint64_t *seq,
                               bm_err_t *err)
{
    char path[S_PATH_MAX], sid[64];
    s_out_t o;
    if (s_branch_file(g, b, "evaluations", d0, "jsonl", path, sizeof path, err) ||
        s_out_open(&o, path, NULL, err))
        return -1;
    int64_t lo = d0 * S_DAY_MS, hi = d1 * S_DAY_MS;
    for (size_t i = 0; i < g->nplan; i++) {
        const s_eval_plan_t *pl = &g->plan[i];
        /* A visit belongs to its local day, whose opening hours (UTC+2/+3)
         * lie within the same UTC day. */
        if (pl->sender != b || pl->visited_ms < lo || pl->visited_ms >= hi)
            continue;
        (*seq)++;
        if (pl->competitor)
            snprintf(sid, sizeof sid, "E-%s-%s-%04" PRIu64, g->b[b].code, g->c[pl->outlet].code, *seq);
        else
            snprintf(sid, sizeof sid, "E-%s-%04" PRIu64, g->b[b].code, *seq);
        s_rng_t r;
        s_rng_init(&r, g->seed, (uint64_t)b + 1, (uint64_t)pl->visited_ms * 16 + K_EVAL);
        json_t *obj = s_evaluation_json(g, pl, sid, &r);
        if (!obj) {
            bm_err_set(err, "out of memory");
            goto fail;
        }
        int rc = s_out_json(&o, obj, err);
        json_decref(obj);
        if (rc)
            goto fail;
    }
    g->counts[b][K_EVAL] += o.records;
    if (s_out_close(&o, false, err))
        goto fail;
    return 0;
fail:
    s_out_abort(&o);
    return -1;
}

/* --------------------------------------------------- evaluation plan */

static int s_plan_cmp(const void *a, const void *b)
{
    const s_eval_plan_t *x = a, *y = b;
    if (x->sender != y->sender)
        return x->sender < y->sender ? -1 : 1;
    return x->visited_ms < y->visited_ms ? -1 : x->visited_ms > y->visited_ms;
}

/* n visits spread over the period, each on a random day at an opening hour. */
static void s_plan_add(s_gen_t *g, s_rng_t *r, int sender, bool competitor, int outlet,
                       const s_questionnaire_def_t *q)
{
    int64_t day = g->end_day - g->days + 1 + s_range(r, 0, g->days - 1);
    s_eval_plan_t *pl = &g->plan[g->nplan++];
    pl->sender = sender;
    pl->competitor = competitor;
    pl->outlet = outlet;
    pl->q = q;
    pl->visited_ms = s_open_moment(r, day);
}

/* Schedules 3-6 store visits per branch per month (at least one in any
 * period), about one mystery call per month, and 2-4 visits per competitor
 * outlet per month, sent by the branches of the competitor's region in
 * turn.  Returns 0 or -1 with err (out of memory). */
static int s_plan_evaluations(s_gen_t *g, bm_err_t *err)
{
    double months = g->days / 30.0;
    size_t cap = (size_t)(g->branches * (ceil(6 * months) + ceil(2 * months) + 2) +
                          g->competitors * (ceil(4 * months) + 2));
    g->plan = calloc(cap, sizeof *g->plan);
    if (!g->plan)
        return bm_err_set(err, "out of memory");
    for (int b = 0; b < g->branches; b++) {
        s_rng_t r;
        s_rng_init(&r, g->seed, (uint64_t)b + 1, 1000 + K_EVAL);
        int visits = (int)llround(s_range(&r, 3, 6) * months);
        if (visits < 1)
            visits = 1;
        for (int k = 0; k < visits; k++)
            s_plan_add(g, &r, b, false, b, &s_store_q);
        int calls = (int)s_poisson(&r, 1.2 * months);
        if (calls > (int)ceil(2 * months) + 1)
            calls = (int)ceil(2 * months) + 1;
        for (int k = 0; k < calls; k++)
            s_plan_add(g, &r, b, false, b, &s_call_q);
    }
    for (int c = 0; c < g->competitors; c++) {
        s_rng_t r;
        s_rng_init(&r, g->seed, 100000 + (uint64_t)c, 1000 + K_EVAL);
        int visits = (int)llround(s_range(&r, 2, 4) * months);
        if (visits < 1)
            visits = 1;
        int senders[S_MAX_BRANCHES], ns = 0;
        for (int b = 0; b < g->branches; b++)
            if (g->b[b].region == g->c[c].region)
                senders[ns++] = b;
        for (int k = 0; k < visits; k++) {
            int sender = ns ? senders[(c + k) % ns] : (c + k) % g->branches;
            s_plan_add(g, &r, sender, true, c, &s_store_q);
        }
    }
    qsort(g->plan, g->nplan, sizeof *g->plan, s_plan_cmp);
    return 0;
}

/* ------------------------------------------------------ refdata.json */

static json_t *s_questionnaire_json(const s_questionnaire_def_t *q)
{
    json_t *qo = json_object(), *sections = json_array();
    json_object_set_new(qo, "code", json_string(q->code));
    json_object_set_new(qo, "version", json_integer(1));
    json_object_set_new(qo, "title", json_string(q->title));
    for (int s = 0; s < 6 && q->sections[s].code; s++) {
        const s_section_def_t *sd = &q->sections[s];
        json_t *so = json_object(), *items = json_array();
        json_object_set_new(so, "code", json_string(sd->code));
        json_object_set_new(so, "title", json_string(sd->title));
        json_object_set_new(so, "weight", json_real(sd->weight));
        json_object_set_new(so, "critical_rule", json_string(sd->rule));
        if (!strcmp(sd->rule, "cap"))
            json_object_set_new(so, "cap_percent", json_real(sd->cap_percent));
        for (int i = 0; i < 6 && sd->items[i].code; i++) {
            const s_item_def_t *it = &sd->items[i];
            json_t *io = json_object();
            json_object_set_new(io, "code", json_string(it->code));
            json_object_set_new(io, "text", json_string(it->text));
            json_object_set_new(io, "max_points", json_real(it->max_points));
            json_object_set_new(io, "weight", json_real(it->weight));
            json_object_set_new(io, "critical", json_boolean(it->critical));
            json_object_set_new(io, "bonus", json_boolean(it->bonus));
            json_array_append_new(items, io);
        }
        json_object_set_new(so, "items", items);
        json_array_append_new(sections, so);
    }
    json_object_set_new(qo, "sections", sections);
    return qo;
}

static void s_outlet_name(const s_gen_t *g, int idx, bool competitor, char *buf, size_t size)
{
    const s_outlet_t *o = competitor ? &g->c[idx] : &g->b[idx];
    const s_region_def_t *rd = &s_region_defs[o->region];
    int k = idx / g->regions;   /* position within the region */
    if (competitor)
        snprintf(buf, size, "%s %s", s_brands[idx % 4], rd->cities[(k * 3 + 1) % 7]);
    else
        snprintf(buf, size, "%s %s", rd->cities[k % 7], s_branch_suffixes[(k / 7) % 8]);
}

static int s_write_refdata(const s_gen_t *g, bm_err_t *err)
{
    char path[S_PATH_MAX], name[128];
    json_t *root = json_object(), *chain = json_object(), *regions = json_array(),
           *branches = json_array(), *comps = json_array(), *qs = json_array();
    json_object_set_new(chain, "code", json_string("ACME"));
    json_object_set_new(chain, "name", json_string("Acme Stores"));
    json_object_set_new(chain, "timezone", json_string("Europe/Sofia"));
    json_object_set_new(root, "chain", chain);
    for (int i = 0; i < g->regions; i++) {
        json_t *ro = json_object();
        json_object_set_new(ro, "code", json_string(s_region_defs[i].code));
        json_object_set_new(ro, "name", json_string(s_region_defs[i].name));
        json_array_append_new(regions, ro);
    }
    json_object_set_new(root, "regions", regions);
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? g->competitors : g->branches;
        for (int i = 0; i < n; i++) {
            const s_outlet_t *o = pass ? &g->c[i] : &g->b[i];
            const s_region_def_t *rd = &s_region_defs[o->region];
            s_rng_t r;
            s_rng_init(&r, g->seed, (uint64_t)i + 1 + (uint64_t)pass * 100000, 2000);
            json_t *bo = json_object();
            s_outlet_name(g, i, pass, name, sizeof name);
            json_object_set_new(bo, "code", json_string(o->code));
            json_object_set_new(bo, "name", json_string(name));
            if (pass)
                json_object_set_new(bo, "brand", json_string(s_brands[i % 4]));
            json_object_set_new(bo, "region", json_string(rd->code));
            json_object_set_new(bo, "latitude",
                                json_real(round((rd->lat + 0.6 * (s_unif(&r) - 0.5)) * 1e4) / 1e4));
            json_object_set_new(bo, "longitude",
                                json_real(round((rd->lon + 0.9 * (s_unif(&r) - 0.5)) * 1e4) / 1e4));
            json_array_append_new(pass ? comps : branches, bo);
        }
    }
    json_object_set_new(root, "branches", branches);
    json_object_set_new(root, "competitors", comps);
    json_array_append_new(qs, s_questionnaire_json(&s_store_q));
    json_array_append_new(qs, s_questionnaire_json(&s_call_q));
    json_object_set_new(root, "questionnaires", qs);

    snprintf(path, sizeof path, "%s/refdata.json", g->out);
    s_out_t o;
    int rc = s_out_open(&o, path, NULL, err);
    if (rc == 0) {
        rc = json_dumpf(root, o.f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        fputc('\n', o.f);
        o.records = 1;
        if (rc)
            bm_err_set(err, "could not write \"%s\"", o.tmp);
        if (rc || s_out_close(&o, true, err)) {
            s_out_abort(&o);
            rc = -1;
        }
    }
    json_decref(root);
    return rc;
}

static int s_write_tables(const s_gen_t *g, bm_err_t *err)
{
    char path[S_PATH_MAX];
    s_out_t o;
    snprintf(path, sizeof path, "%s/expected.tsv", g->out);
    if (s_out_open(&o, path, "branch\tkind\tcount\n", err))
        return -1;
    for (int b = 0; b < g->branches; b++)
        for (int k = 0; k < K_N; k++)
            fprintf(o.f, "%s\t%s\t%" PRIu64 "\n", g->b[b].code, s_kind_names[k], g->counts[b][k]);
    o.records = 1;
    if (s_out_close(&o, true, err))
        return -1;
    snprintf(path, sizeof path, "%s/truth.tsv", g->out);
    if (s_out_open(&o, path, "outlet\tkind\tregion\tquality\n", err))
        return -1;
    for (int b = 0; b < g->branches; b++)
        fprintf(o.f, "%s\tbranch\t%s\t%.3f\n", g->b[b].code, s_region_defs[g->b[b].region].code,
                g->b[b].quality);
    for (int c = 0; c < g->competitors; c++)
        fprintf(o.f, "%s\tcompetitor\t%s\t%.3f\n", g->c[c].code,
                s_region_defs[g->c[c].region].code, g->c[c].quality);
    o.records = 1;
    return s_out_close(&o, true, err);
}

/* ------------------------------------------------------------- main */

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: bm-datagen --out DIR [--branches N] [--regions N] [--competitors N]\n"
            "                  [--days N] [--end YYYY-MM-DD] [--seed N] [--scale X]\n"
            "\n"
            "Writes DIR/refdata.json, DIR/<branch>/inbox/ exports, DIR/expected.tsv\n"
            "(branch, kind, record count) and DIR/truth.tsv (hidden quality factors).\n"
            "  --branches N     branches B001.. (1..%d, default 12)\n"
            "  --regions N      regions (1..%d, default 3)\n"
            "  --competitors N  competitor outlets C001.. (0..%d, default 6)\n"
            "  --days N         days of data (1..%d, default 30)\n"
            "  --end DATE       last day (default: yesterday, UTC)\n"
            "  --seed N         random seed (default 42); same seed, same files\n"
            "  --scale X        volume multiplier (0.01..100, default 1.0)\n",
            S_MAX_BRANCHES, S_MAX_REGIONS, S_MAX_COMPETITORS, S_MAX_DAYS);
}

static int s_parse_int(const char *opt, const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "bm-datagen: %s: \"%s\" is not an integer in %lld..%lld\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int s_parse_date(const char *s, int64_t *day)
{
    char buf[40];
    int64_t ms;
    bm_err_t err;
    if (strlen(s) != 10 || snprintf(buf, sizeof buf, "%sT00:00:00Z", s) >= (int)sizeof buf ||
        bm_time_parse(buf, &ms, &err) != 0) {
        fprintf(stderr, "bm-datagen: --end: \"%s\" is not a date (YYYY-MM-DD)\n", s);
        return -1;
    }
    *day = ms / S_DAY_MS;
    return 0;
}

int main(int argc, char **argv)
{
    s_gen_t g;
    memset(&g, 0, sizeof g);
    g.branches = 12;
    g.regions = 3;
    g.competitors = 6;
    g.days = 30;
    g.seed = 42;
    g.scale = 1.0;
    g.end_day = bm_now_ms() / S_DAY_MS - 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            s_usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bm-datagen: unknown option or missing value: \"%s\"\n", a);
            s_usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        long long n;
        if (!strcmp(a, "--out")) {
            g.out = v;
        } else if (!strcmp(a, "--branches")) {
            if (s_parse_int(a, v, 1, S_MAX_BRANCHES, &n))
                return 2;
            g.branches = (int)n;
        } else if (!strcmp(a, "--regions")) {
            if (s_parse_int(a, v, 1, S_MAX_REGIONS, &n))
                return 2;
            g.regions = (int)n;
        } else if (!strcmp(a, "--competitors")) {
            if (s_parse_int(a, v, 0, S_MAX_COMPETITORS, &n))
                return 2;
            g.competitors = (int)n;
        } else if (!strcmp(a, "--days")) {
            if (s_parse_int(a, v, 1, S_MAX_DAYS, &n))
                return 2;
            g.days = (int)n;
        } else if (!strcmp(a, "--seed")) {
            if (s_parse_int(a, v, 0, LLONG_MAX, &n))
                return 2;
            g.seed = (uint64_t)n;
        } else if (!strcmp(a, "--end")) {
            if (s_parse_date(v, &g.end_day))
                return 2;
        } else if (!strcmp(a, "--scale")) {
            char *end;
            errno = 0;
            g.scale = strtod(v, &end);
            if (errno || end == v || *end || !(g.scale >= 0.01 && g.scale <= 100)) {
                fprintf(stderr, "bm-datagen: --scale: \"%s\" is not a number in 0.01..100\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "bm-datagen: unknown option \"%s\"\n", a);
            s_usage(stderr);
            return 2;
        }
    }
    if (!g.out) {
        fprintf(stderr, "bm-datagen: --out DIR is required\n");
        s_usage(stderr);
        return 2;
    }

    int rc = 1;
    bm_err_t err;
    bm_err_clear(&err);
    g.b = calloc((size_t)g.branches, sizeof *g.b);
    g.c = calloc((size_t)g.competitors + 1, sizeof *g.c);
    g.counts = calloc((size_t)g.branches, sizeof *g.counts);
    if (!g.b || !g.c || !g.counts) {
        bm_err_set(&err, "out of memory");
        goto done;
    }
    for (int b = 0; b < g.branches; b++) {
        s_rng_t r;
        s_rng_init(&r, g.seed, (uint64_t)b + 1, 3000);
        snprintf(g.b[b].code, sizeof g.b[b].code, "B%03d", b + 1);
        g.b[b].region = b % g.regions;
        g.b[b].quality = s_clamp(0.1 + 0.8 * s_unif(&r), 0, 1);
        g.b[b].size = 0.7 + 0.7 * s_unif(&r);
    }
    for (int c = 0; c < g.competitors; c++) {
        s_rng_t r;
        s_rng_init(&r, g.seed, 100000 + (uint64_t)c, 3000);
        snprintf(g.c[c].code, sizeof g.c[c].code, "C%03d", c + 1);
        g.c[c].region = c % g.regions;
        g.c[c].quality = s_clamp(0.1 + 0.8 * s_unif(&r), 0, 1);
        g.c[c].size = 1.0;
    }
    for (int b = 0; b < g.branches; b++) {
        char inbox[S_PATH_MAX];
        if (snprintf(inbox, sizeof inbox, "%s/%s/inbox", g.out, g.b[b].code) >= (int)sizeof inbox) {
            bm_err_set(&err, "output path under \"%s\" is too long", g.out);
            goto done;
        }
        if (s_mkdirs(inbox, &err) || s_check_empty(inbox, &err))
            goto done;
    }
    if (s_write_refdata(&g, &err) || s_plan_evaluations(&g, &err))
        goto done;

    const int64_t first = g.end_day - g.days + 1;
    for (int b = 0; b < g.branches; b++) {
        for (int64_t day = first; day <= g.end_day; day++)
            if (s_write_day(&g, b, day, &err))
                goto done;
        uint64_t seq_cp = 0, seq_cu = 0, seq_sv = 0, seq_ev = 0;
        for (int64_t w = first; w <= g.end_day; w += 7) {
            int64_t w_end = w + 7 <= g.end_day + 1 ? w + 7 : g.end_day + 1;
            if (s_write_complaints(&g, b, w, w_end, &seq_cp, &err) ||
                s_write_customers(&g, b, w, w_end, &seq_cu, &err) ||
                s_write_surveys(&g, b, w, w_end, &seq_sv, &err) ||
                s_write_evaluations(&g, b, w, w_end, &seq_ev, &err))
                goto done;
        }
    }
    if (s_write_tables(&g, &err))
        goto done;

    uint64_t total = 0;
    for (int b = 0; b < g.branches; b++)
        for (int k = 0; k < K_N; k++)
            total += g.counts[b][k];
    char d0[16], d1[16];
    s_ymd(first, d0, sizeof d0);
    s_ymd(g.end_day, d1, sizeof d1);
    printf("bm-datagen: %d branches, %d regions, %d competitors, %s..%s, %" PRIu64
           " records in %s\n",
           g.branches, g.regions, g.competitors, d0, d1, total, g.out);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "bm-datagen: %s\n", err.msg);
    free(g.b);
    free(g.c);
    free(g.counts);
    free(g.plan);
    return rc;
}
