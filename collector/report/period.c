/* period: the period calendar of every report (days, ISO weeks, months,
 * quarters), dates as days since 1970-01-01.  Pure functions, no state. */
#include "period.h"

#include <stdio.h>
#include <string.h>

#include "bm_time.h"

static const char *const s_period_names[] = {"day", "week", "month", "quarter"};

int bm_period_parse(const char *name, bm_period_kind_t *out, bm_err_t *err)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, s_period_names[i])) {
            *out = (bm_period_kind_t)i;
            return 0;
        }
    return bm_err_set(err, "unknown period \"%s\" (try: day, week, month, quarter)", name);
}

const char *bm_period_name(bm_period_kind_t kind)
{
    return s_period_names[kind];
}

/* Howard Hinnant's civil_from_days. */
static void s_civil(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

int bm_date_parse(const char *s, int64_t *days, bm_err_t *err)
{
    int y, m, d, len = 0;
    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &len) != 3 || len != 10 ||
        s[4] != '-' || s[7] != '-' || y < 1900 || y > 9999 || m < 1 || m > 12 || d < 1)
        return bm_err_set(err, "invalid date \"%s\" (expected YYYY-MM-DD)", s);
    int64_t z = bm_days_from_civil(y, (unsigned)m, (unsigned)d);
    int yy, mm, dd;
    s_civil(z, &yy, &mm, &dd);
    if (yy != y || mm != m || dd != d)
        return bm_err_set(err, "invalid date \"%s\": no such day", s);
    *days = z;
    return 0;
}

char *bm_date_format(int64_t days, char *buf, size_t size)
{
    int y, m, d;
    s_civil(days, &y, &m, &d);
    snprintf(buf, size, "%04d-%02d-%02d", y, m, d);
    return buf;
}

int64_t bm_period_start(bm_period_kind_t kind, int64_t days)
{
    int y, m, d;
    switch (kind) {
    case BM_PERIOD_DAY:
        return days;
    case BM_PERIOD_WEEK: {
        /* 1970-01-01 was a Thursday: Monday-based weekday = (days + 3) mod 7. */
        int64_t wd = ((days + 3) % 7 + 7) % 7;
        return days - wd;
    }
    case BM_PERIOD_MONTH:
        s_civil(days, &y, &m, &d);
        return bm_days_from_civil(y, (unsigned)m, 1);
    case BM_PERIOD_QUARTER:
    default:
        s_civil(days, &y, &m, &d);
        return bm_days_from_civil(y, (unsigned)(((m - 1) / 3) * 3 + 1), 1);
    }
}

int64_t bm_period_add(bm_period_kind_t kind, int64_t start, int k)
{
    int y, m, d;
    switch (kind) {
    case BM_PERIOD_DAY:
        return start + k;
    case BM_PERIOD_WEEK:
        return start + 7 * (int64_t)k;
    default: {
        int months = kind == BM_PERIOD_MONTH ? k : 3 * k;
        s_civil(start, &y, &m, &d);
        int64_t total = (int64_t)y * 12 + (m - 1) + months;
        int64_t ny = total >= 0 ? total / 12 : (total - 11) / 12;
        int nm = (int)(total - ny * 12) + 1;
        return bm_days_from_civil(ny, (unsigned)nm, 1);
    }
    }
}

char *bm_period_label(bm_period_kind_t kind, int64_t start, char *buf, size_t size)
{
    int y, m, d;
    s_civil(start, &y, &m, &d);
    switch (kind) {
    case BM_PERIOD_MONTH:
        snprintf(buf, size, "%04d-%02d", y, m);
        break;
    case BM_PERIOD_QUARTER:
        snprintf(buf, size, "%04d-Q%d", y, (m - 1) / 3 + 1);
        break;
    case BM_PERIOD_WEEK: {
        /* ISO week: the week's Thursday decides the year. */
        int64_t thu = start + 3;
        int ty, tm, td;
        s_civil(thu, &ty, &tm, &td);
        int64_t jan1 = bm_days_from_civil(ty, 1, 1);
        snprintf(buf, size, "%04d-W%02d", ty, (int)((thu - jan1) / 7 + 1));
        break;
    }
    default:
        bm_date_format(start, buf, size);
        break;
    }
    return buf;
}

int bm_period_index(bm_period_kind_t kind, int64_t first, int nper, const char *date)
{
    int64_t d;
    if (bm_date_parse(date, &d, NULL) < 0)
        return -1;
    for (int p = 0; p < nper; p++)
        if (bm_period_add(kind, first, p) == d)
            return p;
    return -1;
}
