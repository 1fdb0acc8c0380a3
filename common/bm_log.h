/* bm_log: structured, levelled logging to stderr (journald picks it up).
 *
 * One line per event in logfmt, so both people and log shippers read it:
 *   ts=2026-11-23T09:30:00.123Z level=warn comp=sender msg="could not ..." key=value
 * The macro tests the level before the arguments are formatted (Redis'
 * serverLog), so debug logging costs nothing when it is off.
 * Owns: the process-wide level and the program name (set once at start). */
#ifndef BM_LOG_H
#define BM_LOG_H

typedef enum {
    BM_LOG_DEBUG = 0,
    BM_LOG_INFO = 1,
    BM_LOG_WARN = 2,
    BM_LOG_ERROR = 3,
} bm_log_level_t;

extern bm_log_level_t bm_log_threshold;

/* Sets the program name shown as prog=... and the threshold. */
void bm_log_init(const char *prog, bm_log_level_t level);

/* Parses "debug", "info", "warn" or "error".  Returns -1 if unknown. */
int bm_log_level_parse(const char *name, bm_log_level_t *out);

/* Writes one line.  `fields` is optional extra logfmt text ("key=v key2=w"),
 * written verbatim after msg=; pass NULL for none. */
void bm_log_write(bm_log_level_t level, const char *comp, const char *fields,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define bm_log(level, comp, ...)                                    \
    do {                                                            \
        if ((level) >= bm_log_threshold)                            \
            bm_log_write((level), (comp), NULL, __VA_ARGS__);       \
    } while (0)

#define bm_debug(comp, ...) bm_log(BM_LOG_DEBUG, comp, __VA_ARGS__)
#define bm_info(comp, ...)  bm_log(BM_LOG_INFO, comp, __VA_ARGS__)
#define bm_warn(comp, ...)  bm_log(BM_LOG_WARN, comp, __VA_ARGS__)
#define bm_error(comp, ...) bm_log(BM_LOG_ERROR, comp, __VA_ARGS__)

#endif
