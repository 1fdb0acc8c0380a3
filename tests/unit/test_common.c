/* test_common: the shared helpers in common/: bm_config (typed config files),
 * bm_time (ISO 8601), bm_crc32c and bm_err. */
#include "bm_test.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bm_config.h"
#include "bm_crc32c.h"
#include "bm_err.h"
#include "bm_time.h"

/* ---- bm_config ----------------------------------------------------------- */

typedef struct {
    char *name;
    int64_t port;
    bool verbose;
    int64_t max_size;
    int64_t timeout;
    bm_strlist_t peers;
    char *mode;
} cfg_t;

static const bm_cfg_entry_t MAP[] = {
    {"name", BM_CFG_STR, NULL, true, offsetof(cfg_t, name), 0, 0, "agent name"},
    {"port", BM_CFG_INT, "5555", false, offsetof(cfg_t, port), 1, 65535, "port"},
    {"verbose", BM_CFG_BOOL, "false", false, offsetof(cfg_t, verbose), 0, 0, "more logs"},
    {"max_size", BM_CFG_SIZE, "1M", false, offsetof(cfg_t, max_size), 1024, 1LL << 32, "size"},
    {"timeout", BM_CFG_DURATION, "5s", false, offsetof(cfg_t, timeout), 1, 3600000, "timeout"},
    {"peer", BM_CFG_STRLIST, "tcp://default:1", false, offsetof(cfg_t, peers), 0, 0, "peers"},
    {"mode", BM_CFG_STR, "normal", false, offsetof(cfg_t, mode), 0, 0, "mode"},
    {NULL, 0, NULL, false, 0, 0, 0, NULL},
};

static char s_dir[256];

static const char *s_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    FILE *fp = fopen(path, "w");
    if (!fp) {
        perror(path);
        exit(1);
    }
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* Loads text as a config; returns the rc, leaves the message in err. */
static int s_load(const char *text, cfg_t *c, bm_err_t *err)
{
    memset(c, 0, sizeof *c);
    bm_err_clear(err);
    return bm_config_load(s_file("test.conf", text), MAP, c, err);
}

static void test_config(void)
{
    cfg_t c;
    bm_err_t err;
    char want[700];

    /* defaults and every type */
    CHECK(s_load("name = b001\n", &c, &err) == 0);
    CHECK_STR(c.name, "b001");
    CHECK(c.port == 5555 && !c.verbose && c.max_size == 1048576 && c.timeout == 5000);
    CHECK(c.peers.count == 1 && strcmp(c.peers.items[0], "tcp://default:1") == 0);
    CHECK_STR(c.mode, "normal");
    bm_config_free(MAP, &c);
    bm_config_free(MAP, &c);   /* safe twice */
    CHECK(c.name == NULL && c.peers.count == 0);

    CHECK(s_load("# comment\n\n  name = \" padded \"  \nport=6000\nverbose = yes\n"
                 "max_size = 64K\ntimeout = 2m\npeer = tcp://a:1\npeer = tcp://b:2\n"
                 "mode = fast\n", &c, &err) == 0);
    CHECK_STR(c.name, " padded ");
    CHECK(c.port == 6000 && c.verbose && c.max_size == 65536 && c.timeout == 120000);
    /* a list in the file replaces its default */
    CHECK(c.peers.count == 2 && strcmp(c.peers.items[0], "tcp://a:1") == 0 &&
          strcmp(c.peers.items[1], "tcp://b:2") == 0);
    CHECK_STR(c.mode, "fast");
    bm_config_free(MAP, &c);

    /* sizes and durations */
    CHECK(s_load("name=x\nmax_size = 2G\ntimeout = 1h\n", &c, &err) == 0);
    CHECK(c.max_size == 2147483648LL && c.timeout == 3600000);
    bm_config_free(MAP, &c);
    CHECK(s_load("name=x\ntimeout = 250\n", &c, &err) == 0 && c.timeout == 250);
    bm_config_free(MAP, &c);
    CHECK(s_load("name=x\ntimeout = 30ms\n", &c, &err) == 0 && c.timeout == 30);
    bm_config_free(MAP, &c);

    /* errors name the file and the line */
    const char *path = s_file("test.conf", "");
    CHECK(s_load("name = x\nport = 70000\n", &c, &err) < 0);
    snprintf(want, sizeof want, "%s:2: port: 70000 is out of range 1..65535", path);
    CHECK_STR(err.msg, want);
    bm_config_free(MAP, &c);

    CHECK(s_load("name = x\n\nport = 0\n", &c, &err) < 0);
    snprintf(want, sizeof want, "%s:3: port: 0 is out of range 1..65535", path);
    CHECK_STR(err.msg, want);
    bm_config_free(MAP, &c);

    CHECK(s_load("name = x\nport = abc\n", &c, &err) < 0);
    snprintf(want, sizeof want, "%s:2: port: \"abc\" is not a number", path);
    CHECK_STR(err.msg, want);
    bm_config_free(MAP, &c);

    CHECK(s_load("name = x\nport = 12x\n", &c, &err) < 0);
    CHECK(strstr(err.msg, ":2: port:") != NULL);
    bm_config_free(MAP, &c);

    CHECK(s_load("name = x\nverbose = maybe\n", &c, &err) < 0);
    snprintf(want, sizeof want, "%s:2: verbose: \"maybe\" is not a boolean (use true or false)",
             path);
    CHECK_STR(err.msg, want);
    bm_config_free(MAP, &c);

    CHECK(s_load("name = x\ncolour = blue\n", &c, &err) < 0);
    snprintf(want, sizeof want, "%s:2: unknown key \"colour\"", path);
    CHECK_STR(err.msg, want);
    bm_config_free(MAP, &c);

    CHECK(s_load("name = x\nport = 1\nport = 2\n", &c, &err) < 0);
    snprintf(want, sizeof want, "%s:3: key \"port\" is set twice", path);
    CHECK_STR(err.msg, want);
    bm_config_free(MAP, &c);

    CHECK(s_load("port = 1\n", &c, &err) < 0);
    snprintf(want, sizeof want, "%s: required key \"name\" is missing", path);
    CHECK_STR(err.msg, want);
    bm_config_free(MAP, &c);

    CHECK(s_load("name x\n", &c, &err) < 0);
    snprintf(want, sizeof want, "%s:1: expected \"key = value\"", path);
    CHECK_STR(err.msg, want);
    bm_config_free(MAP, &c);

    CHECK(s_load("name = x\nmax_size = 10\n", &c, &err) < 0);   /* below 1024 */
    CHECK(strstr(err.msg, ":2: max_size: 10 is out of range 1024..4294967296") != NULL);
    bm_config_free(MAP, &c);
    CHECK(s_load("name = x\nmax_size = 5T\n", &c, &err) < 0);
    CHECK(strstr(err.msg, ":2: max_size:") != NULL && strstr(err.msg, "unknown unit") != NULL);
    bm_config_free(MAP, &c);
    CHECK(s_load("name = x\nmax_size = -1K\n", &c, &err) < 0);
    CHECK(strstr(err.msg, "must not be negative") != NULL);
    bm_config_free(MAP, &c);
    CHECK(s_load("name = x\ntimeout = 2d\n", &c, &err) < 0);
    CHECK(strstr(err.msg, ":2: timeout:") != NULL && strstr(err.msg, "unknown unit") != NULL);
    bm_config_free(MAP, &c);
    CHECK(s_load("name = x\ntimeout = 2h\n", &c, &err) < 0);   /* above 1 h */
    CHECK(strstr(err.msg, "timeout: 7200000 is out of range 1..3600000") != NULL);
    bm_config_free(MAP, &c);

    /* an over-long line */
    char *huge = malloc(6000);
    memset(huge, 'a', 5998);
    memcpy(huge, "name=", 5);
    huge[5998] = '\n';
    huge[5999] = '\0';
    CHECK(s_load(huge, &c, &err) < 0);
    CHECK(strstr(err.msg, ":1: line is longer than") != NULL);
    bm_config_free(MAP, &c);
    free(huge);

    /* a missing file */
    memset(&c, 0, sizeof c);
    CHECK(bm_config_load("/nonexistent/x.conf", MAP, &c, &err) < 0);
    CHECK(strstr(err.msg, "could not open config file \"/nonexistent/x.conf\"") != NULL);
    bm_config_free(MAP, &c);

    /* bm_config_set, as for command-line overrides */
    memset(&c, 0, sizeof c);
    bm_config_defaults(MAP, &c);
    CHECK(bm_config_set(MAP, &c, "port", "7000", &err) == 0 && c.port == 7000);
    CHECK(bm_config_set(MAP, &c, "nope", "1", &err) < 0);
    CHECK_STR(err.msg, "unknown key \"nope\"");
    CHECK(bm_config_set(MAP, &c, "peer", "tcp://c:3", &err) == 0 && c.peers.count == 2);
    bm_config_free(MAP, &c);

    /* help text lists every key */
    FILE *mem = tmpfile();
    if (mem) {
        bm_config_print_help(mem, MAP);
        rewind(mem);
        char buf[2048];
        size_t n = fread(buf, 1, sizeof buf - 1, mem);
        buf[n] = '\0';
        CHECK(strstr(buf, "name") && strstr(buf, "(required)") && strstr(buf, "(default: 5555)"));
        fclose(mem);
    }
}

/* ---- bm_time ------------------------------------------------------------- */

static int64_t s_parse_ok(const char *s)
{
    int64_t ms = -1;
    bm_err_t err;
    if (bm_time_parse(s, &ms, &err) < 0) {
        fprintf(stderr, "%s:%d: \"%s\" refused: %s\n", __FILE__, __LINE__, s, err.msg);
        bm_test_failures++;
    }
    return ms;
}

static void s_refused(const char *s, const char *needle, int line)
{
    int64_t ms;
    bm_err_t err;
    err.msg[0] = '\0';
    if (bm_time_parse(s, &ms, &err) == 0 || !strstr(err.msg, needle)) {
        fprintf(stderr, "%s:%d: \"%s\": wanted a refusal with \"%s\", got \"%s\"\n", __FILE__,
                line, s, needle, err.msg);
        bm_test_failures++;
    }
}
#define REFUSED(s, needle) s_refused((s), (needle), __LINE__)

static void test_time(void)
{
    char buf[40];
    CHECK(s_parse_ok("1970-01-01T00:00:00Z") == 0);
    CHECK(s_parse_ok("1970-01-01T00:00:01.5Z") == 1500);
    CHECK(s_parse_ok("1970-01-01T00:00:00.123456Z") == 123);   /* extra digits cut */
    CHECK(s_parse_ok("2026-11-02T09:15:00+02:00") == s_parse_ok("2026-11-02T07:15:00Z"));
    CHECK(s_parse_ok("2026-11-02T09:15:00-05:30") == s_parse_ok("2026-11-02T14:45:00Z"));
    CHECK(s_parse_ok("2026-11-02 09:15:00Z") == s_parse_ok("2026-11-02T09:15:00Z"));
    CHECK(s_parse_ok("2026-11-02T00:30:00+01:00") == s_parse_ok("2026-11-01T23:30:00Z"));
    CHECK(s_parse_ok("2001-09-09T01:46:40Z") == 1000000000000LL);

    /* leap years */
    CHECK(s_parse_ok("2024-02-29T00:00:00Z") + 86400000 == s_parse_ok("2024-03-01T00:00:00Z"));
    CHECK(s_parse_ok("2000-02-29T12:00:00Z") > 0);
    REFUSED("2026-02-29T00:00:00Z", "not a valid date");
    REFUSED("1900-02-29T00:00:00Z", "not a valid date");
    REFUSED("2026-02-30T00:00:00Z", "not a valid date");
    REFUSED("2026-04-31T00:00:00Z", "not a valid date");
    REFUSED("2026-13-01T00:00:00Z", "not a valid date");
    REFUSED("2026-00-10T00:00:00Z", "not a valid date");
    REFUSED("2026-01-01T24:00:00Z", "not a valid date");
    REFUSED("2026-01-01T23:60:00Z", "not a valid date");
    REFUSED("2026-01-01T23:59:60Z", "not a valid date");

    /* pre-1970 */
    CHECK(s_parse_ok("1969-12-31T23:59:59Z") == -1000);
    CHECK(s_parse_ok("1969-12-31T23:59:59.999Z") == -1);
    CHECK(s_parse_ok("1900-01-01T00:00:00Z") == -2208988800000LL);

    /* no offset, malformed */
    REFUSED("2026-11-02T09:15:00", "no UTC offset");
    REFUSED("2026-11-02T09:15:00+0200", "malformed UTC offset");
    REFUSED("2026-11-02T09:15:00+2:00", "malformed UTC offset");
    REFUSED("2026-11-02T09:15:00Zjunk", "trailing characters");
    REFUSED("2026-11-02T09:15:00.Z", "empty fraction");
    REFUSED("2026-11-02", "not an ISO 8601 time");
    REFUSED("02.11.2026 09:15", "not an ISO 8601 time");
    REFUSED("", "not an ISO 8601 time");
    REFUSED("2026-11-02T9:15:00Z", "not an ISO 8601 time");

    /* format */
    CHECK_STR(bm_time_format(0, buf, sizeof buf), "1970-01-01T00:00:00.000Z");
    CHECK_STR(bm_time_format(-1, buf, sizeof buf), "1969-12-31T23:59:59.999Z");
    CHECK_STR(bm_time_format(1000000000123LL, buf, sizeof buf), "2001-09-09T01:46:40.123Z");
    CHECK_STR(bm_time_format(s_parse_ok("2024-02-29T23:59:59.5+00:00"), buf, sizeof buf),
              "2024-02-29T23:59:59.500Z");

    /* round trip over a wide range, including negative times */
    for (int64_t t = -4102444800000LL; t < 7258118400000LL; t += 86400000LL * 97 + 3600123) {
        int64_t back = 0;
        bm_err_t err;
        bm_time_format(t, buf, sizeof buf);
        CHECK(bm_time_parse(buf, &back, &err) == 0 && back == t);
    }

    CHECK(bm_days_from_civil(1970, 1, 1) == 0);
    CHECK(bm_days_from_civil(2000, 3, 1) == 11017);
    CHECK(bm_days_from_civil(1969, 12, 31) == -1);

    int64_t a = bm_now_ms(), m1 = bm_mono_ms(), m2 = bm_mono_ms();
    CHECK(a > 1700000000000LL);   /* after 2023 */
    CHECK(m2 >= m1);
}

/* ---- bm_crc32c and bm_err ------------------------------------------------ */

static void test_crc_and_err(void)
{
    CHECK(bm_crc32c(0, "123456789", 9) == 0xE3069283u);
    CHECK(bm_crc32c(0, "", 0) == 0);
    /* continuing over pieces equals one pass */
    uint32_t c = bm_crc32c(0, "1234", 4);
    CHECK(bm_crc32c(c, "56789", 5) == 0xE3069283u);
    /* RFC 3720 B.4: 32 bytes of zeros */
    unsigned char zeros[32] = {0};
    CHECK(bm_crc32c(0, zeros, sizeof zeros) == 0x8A9136AAu);
    unsigned char ones[32];
    memset(ones, 0xff, sizeof ones);
    CHECK(bm_crc32c(0, ones, sizeof ones) == 0x62A8AB43u);

    bm_err_t err;
    CHECK(bm_err_set(&err, "nps: %d is out of range %s", 11, "0..10") == -1);
    CHECK_STR(err.msg, "nps: 11 is out of range 0..10");
    CHECK(bm_err_prefix(&err, "line %d", 7) == -1);
    CHECK_STR(err.msg, "line 7: nps: 11 is out of range 0..10");
    CHECK(bm_err_set(NULL, "x") == -1);
    CHECK(bm_err_prefix(NULL, "x") == -1);
    bm_err_clear(&err);
    CHECK_STR(err.msg, "");
    bm_err_clear(NULL);

    /* long messages are cut, never overrun */
    char big[2000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    bm_err_set(&err, "%s", big);
    CHECK(strlen(err.msg) == BM_ERR_MSG_MAX - 1);
    bm_err_prefix(&err, "%s", big);
    CHECK(strlen(err.msg) < BM_ERR_MSG_MAX);
    bm_err_set(&err, "tail");
    bm_err_prefix(&err, "%s", big);
    CHECK(strlen(err.msg) < BM_ERR_MSG_MAX);
}

int main(void)
{
    snprintf(s_dir, sizeof s_dir, "%s/bm_test_common.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(s_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_config();
    test_time();
    test_crc_and_err();

    char path[512];
    snprintf(path, sizeof path, "%s/test.conf", s_dir);
    unlink(path);
    rmdir(s_dir);
    if (bm_test_failures) {
        fprintf(stderr, "test_common: %d failure(s)\n", bm_test_failures);
        return 1;
    }
    printf("test_common: ok\n");
    return 0;
}
