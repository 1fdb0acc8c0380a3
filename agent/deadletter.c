/* deadletter: JSON-lines files of refused records; see deadletter.h.
 * Owns the open day file (one FILE at a time; switched at UTC midnight). */
#include "deadletter.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bm_time.h"

/* A record is at most a few MB (one frame); refuse to base64 more. */
#define BM_DL_RECORD_MAX (16u * 1024 * 1024)

/* Standard base64 (RFC 4648, padded) of raw into out (4 * ceil(len / 3) + 1
 * bytes).  Here rather than OpenSSL's EVP_EncodeBlock so that the agent
 * does not map libcrypto (about 3 MiB resident) for this alone. */
static void s_base64(char *out, const uint8_t *raw, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = tab[(v >> 6) & 63];
        *out++ = tab[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)raw[i] << 16 | (i + 1 < len ? (uint32_t)raw[i + 1] << 8 : 0);
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    *out = '\0';
}

struct bm_deadletter {
    char *dir;              /* the dead-letter directory */
    FILE *fp;               /* the open day file, or NULL */
    char day[11];           /* YYYY-MM-DD of fp */
    uint64_t count;         /* records written since open */
};

bm_deadletter_t *bm_deadletter_open(const char *dir, bm_err_t *err)
{
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        bm_err_set(err, "could not create dead-letter directory \"%s\": %s", dir,
                   strerror(errno));
        return NULL;
    }
    bm_deadletter_t *dl = calloc(1, sizeof *dl);
    if (!dl || !(dl->dir = strdup(dir))) {
        free(dl);
        bm_err_set(err, "out of memory");
        return NULL;
    }
    return dl;
}

void bm_deadletter_close(bm_deadletter_t **dl_p)
{
    if (!dl_p || !*dl_p)
        return;
    bm_deadletter_t *dl = *dl_p;
    if (dl->fp) {
        fflush(dl->fp);
        fsync(fileno(dl->fp));
        fclose(dl->fp);
    }
    free(dl->dir);
    free(dl);
    *dl_p = NULL;
}

static int s_open_day(bm_deadletter_t *dl, int64_t now_ms, bm_err_t *err)
{
    char ts[32];
    bm_time_format(now_ms, ts, sizeof ts);
    if (dl->fp && strncmp(dl->day, ts, 10) == 0)
        return 0;
    if (dl->fp) {
        fflush(dl->fp);
        fsync(fileno(dl->fp));
        fclose(dl->fp);
        dl->fp = NULL;
    }
    memcpy(dl->day, ts, 10);
    dl->day[10] = '\0';
    char path[4096];
    snprintf(path, sizeof path, "%s/deadletter-%s.jsonl", dl->dir, dl->day);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return bm_err_set(err, "could not open dead-letter file \"%s\": %s", path,
                          strerror(errno));
    if (!(dl->fp = fdopen(fd, "a"))) {
        close(fd);
        return bm_err_set(err, "could not open dead-letter file \"%s\": %s", path,
                          strerror(errno));
    }
    return 0;
}

int bm_deadletter_add(bm_deadletter_t *dl, const char *stream_id, uint64_t sequence,
                      const char *origin_file, const char *source_id,
                      const bm_record_t *rec, const char *reason, bm_err_t *err)
{
    int64_t now = bm_now_ms();
    if (s_open_day(dl, now, err) < 0)
        return -1;

    char ts[32];
    bm_time_format(now, ts, sizeof ts);
    char *b64 = NULL;
    if (rec) {
        size_t len = protobuf_c_message_get_packed_size(&rec->base);
        if (len <= BM_DL_RECORD_MAX) {
            uint8_t *raw = malloc(len ? len : 1);
            b64 = malloc(4 * ((len + 2) / 3) + 1);
            if (!raw || !b64) {
                free(raw);
                free(b64);
                return bm_err_set(err, "out of memory");
            }
            protobuf_c_message_pack(&rec->base, raw);
            s_base64(b64, raw, len);
            free(raw);
        }
    }
    /* Strings from the collector may be anything; jansson refuses invalid
     * UTF-8, so fall back to a marker rather than losing the line. */
    json_t *o = json_object();
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "stream", json_string(stream_id));
    json_object_set_new(o, "sequence", json_integer((json_int_t)sequence));
    json_object_set_new(o, "origin_file", json_string(origin_file ? origin_file : ""));
    const char *sid = rec && rec->source_id ? rec->source_id : source_id;
    json_t *j = json_string(sid ? sid : "");
    json_object_set_new(o, "source_id", j ? j : json_string("(not valid UTF-8)"));
    json_object_set_new(o, "kind", json_string(bm_kind_name(rec ? bm_record_kind(rec)
                                                              : BM_KIND_NONE)));
    j = json_string(reason ? reason : "");
    json_object_set_new(o, "reason", j ? j : json_string("(not valid UTF-8)"));
    json_object_set_new(o, "record_b64", b64 ? json_string(b64) : json_null());
    free(b64);
    char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!line)
        return bm_err_set(err, "out of memory");
    int rc = 0;
    if (fputs(line, dl->fp) == EOF || fputc('\n', dl->fp) == EOF)
        rc = bm_err_set(err, "could not write dead-letter file in \"%s\": %s", dl->dir,
                        strerror(errno));
    free(line);
    if (rc == 0)
        dl->count++;
    return rc;
}

int bm_deadletter_sync(bm_deadletter_t *dl, bm_err_t *err)
{
    if (!dl->fp)
        return 0;
    if (fflush(dl->fp) != 0 || fsync(fileno(dl->fp)) < 0)
        return bm_err_set(err, "could not sync dead-letter file in \"%s\": %s", dl->dir,
                          strerror(errno));
    return 0;
}

uint64_t bm_deadletter_count(const bm_deadletter_t *dl)
{
    return dl->count;
}
