/* bm_time: clocks and ISO 8601 timestamps; see bm_time.h. */
#include "bm_time.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t bm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bm_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Howard Hinnant's days_from_civil: exact for every Gregorian date. */
int64_t bm_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void s_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int s_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int s_days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

int bm_time_parse(const char *s, int64_t *out_ms, bm_err_t *err)
{
    const char *p = s;
    int Y, M, D, h, mi, sec, ms = 0;
    if (s_digits(&p, 4, &Y) || *p++ != '-' || s_digits(&p, 2, &M) || *p++ != '-' ||
        s_digits(&p, 2, &D) || (*p != 'T' && *p != ' ') || (p++, s_digits(&p, 2, &h)) ||
        *p++ != ':' || s_digits(&p, 2, &mi) || *p++ != ':' || s_digits(&p, 2, &sec))
        return bm_err_set(err, "\"%s\" is not an ISO 8601 time (YYYY-MM-DDTHH:MM:SS+HH:MM)", s);
    if (*p == '.') {
        p++;
        int ndig = 0;
        while (isdigit((unsigned char)*p)) {
            if (ndig < 3)
                ms = ms * 10 + (*p - '0');
            ndig++;
            p++;
        }
        if (ndig == 0)
            return bm_err_set(err, "\"%s\": empty fraction of a second", s);
        for (int i = ndig; i < 3; i++)
            ms *= 10;
    }
    if (M < 1 || M > 12 || D < 1 || D > s_days_in_month(Y, M) || h > 23 || mi > 59 || sec > 59)
        return bm_err_set(err, "\"%s\" is not a valid date and time", s);
    int offset_min = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (s_digits(&p, 2, &oh) || *p++ != ':' || s_digits(&p, 2, &om) || oh > 18 || om > 59)
            return bm_err_set(err, "\"%s\" has a malformed UTC offset", s);
        offset_min = sign * (oh * 60 + om);
    } else {
        return bm_err_set(err, "\"%s\" has no UTC offset (add Z or +HH:MM)", s);
    }
    if (*p != '\0')
        return bm_err_set(err, "\"%s\" has trailing characters", s);
    int64_t days = bm_days_from_civil(Y, (unsigned)M, (unsigned)D);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - (int64_t)offset_min * 60;
    *out_ms = secs * 1000 + ms;
    return 0;
}

char *bm_time_format(int64_t ms, char *buf, size_t size)
{
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int msr = (int)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    s_civil_from_days(days, &y, &m, &d);
    snprintf(buf, size, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
             (int)(rem / 3600), (int)(rem % 3600 / 60), (int)(rem % 60), msr);
    return buf;
}
