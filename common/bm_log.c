/* bm_log: logfmt lines on stderr; see bm_log.h. */
#include "bm_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

bm_log_level_t bm_log_threshold = BM_LOG_INFO;
static char s_prog[32] = "branchmark";

static const char *const s_level_names[] = {"debug", "info", "warn", "error"};

void bm_log_init(const char *prog, bm_log_level_t level)
{
    snprintf(s_prog, sizeof s_prog, "%s", prog);
    bm_log_threshold = level;
}

int bm_log_level_parse(const char *name, bm_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, s_level_names[i]) == 0) {
            *out = (bm_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

void bm_log_write(bm_log_level_t level, const char *comp, const char *fields,
                  const char *fmt, ...)
{
    char msg[1024], line[1400];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    /* Quote the message for logfmt: escape \ and ", flatten newlines. */
    char quoted[1100];
    size_t q = 0;
    for (const char *p = msg; *p && q + 3 < sizeof quoted; p++) {
        if (*p == '"' || *p == '\\') {
            quoted[q++] = '\\';
            quoted[q++] = *p;
        } else if (*p == '\n' || *p == '\r') {
            quoted[q++] = ' ';
        } else {
            quoted[q++] = *p;
        }
    }
    quoted[q] = '\0';

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s prog=%s pid=%d comp=%s msg=\"%s\"%s%s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
                     s_level_names[level], s_prog, (int)getpid(), comp, quoted,
                     fields ? " " : "", fields ? fields : "");
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) {
        n = (int)sizeof line - 1;
        line[n - 1] = '\n';
    }
    /* One write(2) per line so lines of concurrent processes do not mix. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
