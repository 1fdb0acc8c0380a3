/* inbox: inbox intake, file moves and restart recovery; see inbox.h.
 * Owns: the inbox/sending/done/rejected directories, the pending-file table,
 * the list of files to take and the per-file parse state. */
#include "inbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bm_log.h"
#include "bm_time.h"
#include "bm_wire.h"
#include "parser.h"

#define COMP "inbox"
#define BM_PATH_BUF 4352
#define BM_UNAME_MAX 255             /* NAME_MAX */
#define BM_FNAME_MAX 200             /* longest inbox name taken (room for prefix and .errors) */
#define BM_FAILED_MAX 64
#define BM_FAILED_RETRY_MS 60000

/* A file whose batches are in the spool. */
typedef struct {
    char *uname;         /* U: name in sending/ */
    uint64_t last_seq;   /* sequence of its last entry seen */
    bool complete;       /* its last_of_file entry is in the spool */
    bool present;        /* recovery: sending/U exists */
} s_pending_t;

/* A file listed by the last scan. */
typedef struct {
    char name[BM_FNAME_MAX + 1];
    int64_t mtime_ms;
} s_queued_t;

/* A file that could not be read, not retried before retry_at. */
typedef struct {
    char name[BM_FNAME_MAX + 1];
    int64_t mtime_ms;
    int64_t retry_at;    /* monotonic ms */
} s_failed_t;

struct bm_inbox {
    const bm_agent_config_t *cfg;       /* borrowed, may change on SIGHUP */
    bm_spool_t *spool;                  /* borrowed */
    const volatile sig_atomic_t *stop;  /* borrowed flag */
    char *sending_dir, *done_dir, *rejected_dir;
    s_pending_t *pending;               /* files waiting for acks */
    size_t n_pending, cap_pending;
    uint64_t finalized_upto;            /* acked_seq at the last finalize */
    s_queued_t *queue;                  /* BM_INBOX_QUEUE_MAX slots */
    size_t n_queue, queue_head;
    s_failed_t failed[BM_FAILED_MAX];
    size_t failed_next;
    bool spool_full;
    bool pending_full_warned;
    bm_record_t **recs;                 /* the batch being built */
    uint8_t *buf;                       /* encoded SpoolEntry */
    size_t buf_cap;
    bm_inbox_info_t info;
};

/* State of one file being parsed. */
typedef struct {
    bm_inbox_t *ib;
    const char *uname;
    bool discard;            /* recovery: records are already spooled */
    size_t n;                /* records in ib->recs */
    size_t bytes;            /* their encoded size */
    uint64_t first_seq, last_seq, entries;
    bool stopped;
    FILE *errfp;             /* the .errors file being written, lazily opened */
    char errtmp[BM_PATH_BUF];
    uint64_t errors_listed, errors_more;
} s_parse_t;

/* ---- small file-system helpers ---- */

static int s_mkdir(const char *path, bm_err_t *err)
{
    if (mkdir(path, 0750) < 0 && errno != EEXIST)
        return bm_err_set(err, "could not create directory \"%s\": %s", path,
                          strerror(errno));
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return bm_err_set(err, "\"%s\" is not a directory", path);
    return 0;
}

static int s_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static char *s_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void s_path(char *out, const char *dir, const char *name, const char *suffix)
{
    snprintf(out, BM_PATH_BUF, "%s/%s%s", dir, name, suffix ? suffix : "");
}

static bool s_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* The inbox name F inside U = "<20 digits>[-k]_F". */
static const char *s_origin_of(const char *uname)
{
    const char *us = strchr(uname, '_');
    return us ? us + 1 : uname;
}

/* ---- the pending table ---- */

static s_pending_t *s_pending_find(bm_inbox_t *ib, const char *uname)
{
    /* Entries of one file are contiguous in the spool: look at the last
     * row first, so that recovery is linear in the usual case. */
    if (ib->n_pending && strcmp(ib->pending[ib->n_pending - 1].uname, uname) == 0)
        return &ib->pending[ib->n_pending - 1];
    for (size_t i = 0; i < ib->n_pending; i++)
        if (strcmp(ib->pending[i].uname, uname) == 0)
            return &ib->pending[i];
    return NULL;
}

static s_pending_t *s_pending_add(bm_inbox_t *ib, const char *uname)
{
    if (ib->n_pending == ib->cap_pending) {
        size_t cap = ib->cap_pending ? ib->cap_pending * 2 : 64;
        s_pending_t *p = realloc(ib->pending, cap * sizeof *p);
        if (!p)
            return NULL;
        ib->pending = p;
        ib->cap_pending = cap;
    }
    s_pending_t *p = &ib->pending[ib->n_pending];
    memset(p, 0, sizeof *p);
    if (!(p->uname = strdup(uname)))
        return NULL;
    ib->n_pending++;
    return p;
}

static void s_pending_remove(bm_inbox_t *ib, size_t i)
{
    free(ib->pending[i].uname);
    ib->pending[i] = ib->pending[--ib->n_pending];
}

/* ---- lifecycle ---- */

bm_inbox_t *bm_inbox_new(const bm_agent_config_t *cfg, bm_spool_t *spool,
                         const volatile sig_atomic_t *stop, bm_err_t *err)
{
    bm_inbox_t *ib = calloc(1, sizeof *ib);
    if (!ib) {
        bm_err_set(err, "out of memory");
        return NULL;
    }
    ib->cfg = cfg;
    ib->spool = spool;
    ib->stop = stop;
    ib->sending_dir = s_join(cfg->data_dir, "sending");
    ib->done_dir = s_join(cfg->data_dir, "done");
    ib->rejected_dir = s_join(cfg->data_dir, "rejected");
    ib->queue = calloc(BM_INBOX_QUEUE_MAX, sizeof *ib->queue);
    ib->recs = calloc(BM_MAX_RECORDS_PER_BATCH, sizeof *ib->recs);
    if (!ib->sending_dir || !ib->done_dir || !ib->rejected_dir || !ib->queue || !ib->recs) {
        bm_err_set(err, "out of memory");
        bm_inbox_destroy(&ib);
        return NULL;
    }
    if (s_mkdir(cfg->inbox_dir, err) < 0 || s_mkdir(ib->sending_dir, err) < 0 ||
        s_mkdir(ib->done_dir, err) < 0 || s_mkdir(ib->rejected_dir, err) < 0) {
        bm_inbox_destroy(&ib);
        return NULL;
    }
    struct stat a, b;
    if (stat(cfg->inbox_dir, &a) == 0 && stat(ib->sending_dir, &b) == 0 &&
        a.st_dev != b.st_dev) {
        bm_err_set(err, "inbox_dir \"%s\" is not on the same file system as data_dir "
                   "\"%s\" (files are moved by rename)", cfg->inbox_dir, cfg->data_dir);
        bm_inbox_destroy(&ib);
        return NULL;
    }
    return ib;
}

void bm_inbox_destroy(bm_inbox_t **inbox_p)
{
    if (!inbox_p || !*inbox_p)
        return;
    bm_inbox_t *ib = *inbox_p;
    for (size_t i = 0; i < ib->n_pending; i++)
        free(ib->pending[i].uname);
    free(ib->pending);
    free(ib->queue);
    free(ib->recs);
    free(ib->buf);
    free(ib->sending_dir);
    free(ib->done_dir);
    free(ib->rejected_dir);
    free(ib);
    *inbox_p = NULL;
}

/* ---- parsing a file into batches ---- */

static void s_drop_records(s_parse_t *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        bm_record_free(&ps->ib->recs[i]);
    ps->n = 0;
    ps->bytes = 0;
}

/* Encodes the records collected so far as one SpoolEntry and appends it.
 * Returns 0 or -1 with err (the records are freed either way). */
static int s_flush(s_parse_t *ps, bool last, bm_err_t *err)
{
    bm_inbox_t *ib = ps->ib;
    Branchmark__V1__Batch batch = BRANCHMARK__V1__BATCH__INIT;
    Branchmark__V1__SpoolEntry entry = BRANCHMARK__V1__SPOOL_ENTRY__INIT;
    batch.n_records = ps->n;
    batch.records = ib->recs;
    entry.origin_file = (char *)ps->uname;
    entry.batch = &batch;
    entry.last_of_file = last;
    size_t len = branchmark__v1__spool_entry__get_packed_size(&entry);
    if (len > ib->buf_cap) {
        uint8_t *nb = realloc(ib->buf, len);
        if (!nb) {
            s_drop_records(ps);
            return bm_err_set(err, "out of memory");
        }
        ib->buf = nb;
        ib->buf_cap = len;
    }
    branchmark__v1__spool_entry__pack(&entry, ib->buf);
    uint64_t seq = 0;
    int rc = bm_spool_append(ib->spool, ib->buf, len, &seq, err);
    if (rc == 0) {
        if (!ps->entries)
            ps->first_seq = seq;
        ps->last_seq = seq;
        ps->entries++;
        ib->info.records_spooled += ps->n;
    }
    s_drop_records(ps);
    /* Keep a rare huge batch from pinning its buffer for good. */
    if (ib->buf_cap > 2 * BM_INBOX_BATCH_BYTES_MAX) {
        free(ib->buf);
        ib->buf = NULL;
        ib->buf_cap = 0;
    }
    return rc;
}

static int s_sink(void *ctx, bm_record_t **rec, bm_err_t *err)
{
    s_parse_t *ps = ctx;
    if (*ps->ib->stop) {
        bm_record_free(rec);
        ps->stopped = true;
        return bm_err_set(err, "stopped by a signal");
    }
    if (ps->discard) {
        bm_record_free(rec);
        return 0;
    }
    /* Tag and length prefix of a repeated message field: at most 6 bytes. */
    size_t sz = protobuf_c_message_get_packed_size(&(*rec)->base) + 6;
    size_t max_records = (size_t)ps->ib->cfg->batch_records;
    if (ps->n > 0 && (ps->n >= max_records || ps->bytes + sz > BM_INBOX_BATCH_BYTES_MAX)) {
        if (s_flush(ps, false, err) < 0) {
            bm_record_free(rec);
            return -1;
        }
    }
    ps->ib->recs[ps->n++] = *rec;
    *rec = NULL;
    ps->bytes += sz;
    return 0;
}

static void s_line_error(void *ctx, uint64_t lineno, const char *why)
{
    s_parse_t *ps = ctx;
    ps->ib->info.lines_bad += ps->discard ? 0 : 1;
    if (!ps->errfp) {
        if (ps->errors_more)
            goto more;
        int fd = open(ps->errtmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        if (fd >= 0 && !(ps->errfp = fdopen(fd, "w")))
            close(fd);
        if (!ps->errfp) {
            bm_warn(COMP, "could not write \"%s\": %s", ps->errtmp, strerror(errno));
            ps->errors_more++;
            return;
        }
    }
    if (ps->errors_listed >= BM_INBOX_ERRORS_MAX)
        goto more;
    /* Parsers may or may not put "line N: " in front; write it once. */
    if (strncmp(why, "line ", 5) == 0)
        fprintf(ps->errfp, "%s\n", why);
    else
        fprintf(ps->errfp, "line %" PRIu64 ": %s\n", lineno, why);
    ps->errors_listed++;
    return;
more:
    ps->errors_more++;
}

/* Finishes the .errors file: returns 1 when there is one at ps->errtmp,
 * 0 when there were no bad lines, -1 when it could not be written. */
static int s_close_errors(s_parse_t *ps)
{
    if (!ps->errfp)
        return ps->errors_more ? -1 : 0;
    int rc = 1;
    if (ps->errors_more)
        fprintf(ps->errfp, "... and %" PRIu64 " more bad lines\n", ps->errors_more);
    if (fflush(ps->errfp) != 0 || fsync(fileno(ps->errfp)) < 0)
        rc = -1;
    if (fclose(ps->errfp) != 0)
        rc = -1;
    ps->errfp = NULL;
    if (rc < 0)
        bm_warn(COMP, "could not write \"%s\": %s", ps->errtmp, strerror(errno));
    return rc;
}

static void s_abandon_errors(s_parse_t *ps)
{
    if (ps->errfp) {
        fclose(ps->errfp);
        ps->errfp = NULL;
    }
    unlink(ps->errtmp);
}

/* ---- failed files (unreadable): retried once a minute, logged each time ---- */

static bool s_recently_failed(bm_inbox_t *ib, const char *name, int64_t mtime_ms)
{
    int64_t now = bm_mono_ms();
    for (size_t i = 0; i < BM_FAILED_MAX; i++) {
        s_failed_t *f = &ib->failed[i];
        if (f->name[0] && strcmp(f->name, name) == 0 && f->mtime_ms == mtime_ms)
            return now < f->retry_at;
    }
    return false;
}

static void s_mark_failed(bm_inbox_t *ib, const char *name, int64_t mtime_ms)
{
    s_failed_t *f = NULL;
    for (size_t i = 0; i < BM_FAILED_MAX && !f; i++)
        if (strcmp(ib->failed[i].name, name) == 0)
            f = &ib->failed[i];
    if (!f) {
        f = &ib->failed[ib->failed_next];
        ib->failed_next = (ib->failed_next + 1) % BM_FAILED_MAX;
    }
    snprintf(f->name, sizeof f->name, "%.*s", BM_FNAME_MAX, name);
    f->mtime_ms = mtime_ms;
    f->retry_at = bm_mono_ms() + BM_FAILED_RETRY_MS;
}

/* ---- scanning ---- */

static int s_queued_cmp(const void *a, const void *b)
{
    const s_queued_t *x = a, *y = b;
    if (x->mtime_ms != y->mtime_ms)
        return x->mtime_ms < y->mtime_ms ? -1 : 1;
    return strcmp(x->name, y->name);
}

static bool s_too_long_warned(bm_inbox_t *ib, const char *name)
{
    /* Reuse the failed table so the warning is not repeated every scan. */
    char key[BM_FNAME_MAX + 1];
    snprintf(key, sizeof key, "%.*s", BM_FNAME_MAX, name);
    if (s_recently_failed(ib, key, -1))
        return true;
    s_mark_failed(ib, key, -1);
    ib->failed[(ib->failed_next + BM_FAILED_MAX - 1) % BM_FAILED_MAX].retry_at = INT64_MAX;
    return false;
}

static bool s_spool_full(bm_inbox_t *ib);

int bm_inbox_scan(bm_inbox_t *ib, bm_err_t *err)
{
    const bm_agent_config_t *cfg = ib->cfg;
    s_spool_full(ib); /* keeps the status current while nothing is listed */
    DIR *d = opendir(cfg->inbox_dir);
    if (!d)
        return bm_err_set(err, "could not open inbox \"%s\": %s", cfg->inbox_dir,
                          strerror(errno));
    int64_t now = bm_now_ms();
    size_t n = 0;
    struct dirent *de;
    char path[BM_PATH_BUF];
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        if (name[0] == '.' || !bm_parser_for_file(name))
            continue;
        if (strlen(name) > BM_FNAME_MAX) {
            if (!s_too_long_warned(ib, name))
                bm_warn(COMP, "file name \"%s\" is longer than %d bytes; the file is "
                        "left in the inbox", name, BM_FNAME_MAX);
            continue;
        }
        s_path(path, cfg->inbox_dir, name, NULL);
        struct stat st;
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        /* A file still being written is not taken; a clock far behind the
         * file's time cannot judge that, so such a file is taken. */
        if (now - mtime < cfg->inbox_settle_ms && mtime - now < 60000)
            continue;
        if (s_recently_failed(ib, name, mtime))
            continue;
        s_queued_t q;
        snprintf(q.name, sizeof q.name, "%.*s", BM_FNAME_MAX, name);
        q.mtime_ms = mtime;
        if (n < BM_INBOX_QUEUE_MAX) {
            ib->queue[n++] = q;
        } else {
            /* Keep the oldest BM_INBOX_QUEUE_MAX: replace the newest. */
            size_t newest = 0;
            for (size_t i = 1; i < n; i++)
                if (s_queued_cmp(&ib->queue[i], &ib->queue[newest]) > 0)
                    newest = i;
            if (s_queued_cmp(&q, &ib->queue[newest]) < 0)
                ib->queue[newest] = q;
        }
    }
    closedir(d);
    qsort(ib->queue, n, sizeof *ib->queue, s_queued_cmp);
    ib->n_queue = n;
    ib->queue_head = 0;
    ib->info.files_queued = n;
    return 0;
}

/* ---- taking a file ---- */

/* Updates the spool-full flag, logging the transitions once. */
static bool s_spool_full(bm_inbox_t *ib)
{
    bm_spool_stats_t st;
    bm_spool_stats(ib->spool, &st);
    /* The open tail segment keeps its acknowledged entries on disk until it
     * rolls over, so a spool whose entries are all acknowledged is never
     * full: intake must go on, or the segment could never roll over. */
    bool full = st.entries > 0 && st.bytes >= (uint64_t)ib->cfg->spool_max_bytes;
    if (full && !ib->spool_full)
        bm_warn(COMP, "spool full (%" PRIu64 " of %" PRId64 " bytes): not taking new "
                "inbox files until the collector acknowledges", st.bytes,
                ib->cfg->spool_max_bytes);
    else if (!full && ib->spool_full)
        bm_info(COMP, "spool below its limit (%" PRIu64 " of %" PRId64 " bytes): "
                "taking inbox files again", st.bytes, ib->cfg->spool_max_bytes);
    ib->spool_full = full;
    ib->info.spool_full = full;
    return full;
}

/* A name U for F that is free in sending/, done/ and rejected/.  Returns 0 or
 * -1 when none could be found. */
static int s_unique_name(bm_inbox_t *ib, const char *fname, char *out, size_t size)
{
    bm_spool_stats_t st;
    bm_spool_stats(ib->spool, &st);
    char p1[BM_PATH_BUF], p2[BM_PATH_BUF], p3[BM_PATH_BUF];
    for (int k = 0; k < 1000; k++) {
        if (k == 0)
            snprintf(out, size, "%020" PRIu64 "_%s", st.next_seq, fname);
        else
            snprintf(out, size, "%020" PRIu64 "-%d_%s", st.next_seq, k, fname);
        s_path(p1, ib->sending_dir, out, NULL);
        s_path(p2, ib->done_dir, out, NULL);
        s_path(p3, ib->rejected_dir, out, NULL);
        if (!s_exists(p1) && !s_exists(p2) && !s_exists(p3))
            return 0;
    }
    return -1;
}

static void s_log_move_error(const char *from, const char *to)
{
    bm_error(COMP, "could not move \"%s\" to \"%s\": %s", from, to, strerror(errno));
}

/* Parses path as file U.  Leaves ps->errtmp holding the .errors file when
 * there were bad lines (ps->... closed).  Returns the parse result. */
static int s_parse(bm_inbox_t *ib, s_parse_t *ps, const bm_parser_t *parser,
                   const char *path, bm_parse_stats_t *stats, bm_err_t *err)
{
    bm_time_window_t window = {
        .now_ms = bm_now_ms(),
        .max_age_ms = ib->cfg->clock_max_age_ms,
        .max_future_ms = ib->cfg->clock_max_future_ms,
    };
    memset(stats, 0, sizeof *stats);
    snprintf(ps->errtmp, sizeof ps->errtmp, "%s/.%s.errors.tmp", ib->sending_dir,
             ps->uname);
    int rc = bm_parse_file(parser, path, &window, s_sink, s_line_error, ps, stats, err);
    if (rc == 0 && !ps->discard && ps->n > 0)
        rc = s_flush(ps, true, err);
    s_drop_records(ps);
    return rc;
}

/* Takes one inbox file: see inbox.h for the way it goes. */
static void s_take(bm_inbox_t *ib, const s_queued_t *q)
{
    const bm_agent_config_t *cfg = ib->cfg;
    const bm_parser_t *parser = bm_parser_for_file(q->name);
    char src[BM_PATH_BUF], dst[BM_PATH_BUF], errdst[BM_PATH_BUF];
    s_path(src, cfg->inbox_dir, q->name, NULL);
    if (!parser || !s_exists(src))
        return;

    char uname[BM_UNAME_MAX + 1];
    if (s_unique_name(ib, q->name, uname, sizeof uname) < 0) {
        bm_error(COMP, "could not find a free name for \"%s\" in sending/", q->name);
        s_mark_failed(ib, q->name, q->mtime_ms);
        return;
    }
    s_parse_t ps = {.ib = ib, .uname = uname};
    bm_parse_stats_t stats;
    bm_err_t err = {{0}};
    int64_t t0 = bm_mono_ms();
    int rc = s_parse(ib, &ps, parser, src, &stats, &err);
    int have_errors = rc == 0 ? s_close_errors(&ps) : (s_abandon_errors(&ps), 0);
    bm_err_t serr = {{0}};
    if (ps.entries && bm_spool_sync(ib->spool, &serr) < 0) {
        /* Without a durable spool the file must stay in the inbox. */
        bm_error(COMP, "could not sync the spool after \"%s\": %s; the file stays in "
                 "the inbox", q->name, serr.msg);
        if (have_errors > 0)
            unlink(ps.errtmp);
        s_mark_failed(ib, q->name, q->mtime_ms);
        return;
    }
    if (rc < 0) {
        if (ps.stopped) {
            bm_info(COMP, "stopped while taking \"%s\" (%" PRIu64 " batches spooled); it "
                    "stays in the inbox and is read again at the next start", q->name,
                    ps.entries);
        } else {
            bm_error(COMP, "could not take \"%s\": %s; it stays in the inbox and is "
                     "retried in %d s", q->name, err.msg, BM_FAILED_RETRY_MS / 1000);
            s_mark_failed(ib, q->name, q->mtime_ms);
        }
        return;
    }
    if (have_errors < 0) {
        bm_error(COMP, "could not write the list of bad lines of \"%s\"; it stays in "
                 "the inbox", q->name);
        unlink(ps.errtmp);
        s_mark_failed(ib, q->name, q->mtime_ms);
        return;
    }
    int64_t ms = bm_mono_ms() - t0;

    if (ps.entries == 0) {
        /* Nothing to send: the file is finished now. */
        const char *dir = have_errors ? ib->rejected_dir : ib->done_dir;
        s_path(dst, dir, uname, NULL);
        if (have_errors) {
            s_path(errdst, dir, uname, ".errors");
            if (rename(ps.errtmp, errdst) < 0) {
                s_log_move_error(ps.errtmp, errdst);
                unlink(ps.errtmp);
                s_mark_failed(ib, q->name, q->mtime_ms);
                return;
            }
        }
        if (rename(src, dst) < 0) {
            s_log_move_error(src, dst);
            s_mark_failed(ib, q->name, q->mtime_ms);
            return;
        }
        s_fsync_dir(dir);
        s_fsync_dir(cfg->inbox_dir);
        if (have_errors) {
            ib->info.files_rejected++;
            bm_warn(COMP, "rejected \"%s\": none of its %" PRIu64 " lines is valid (see "
                    "rejected/%s.errors)", q->name, stats.bad, uname);
        } else {
            ib->info.files_done++;
            bm_info(COMP, "\"%s\" has no data lines; moved to done/%s", q->name, uname);
        }
        return;
    }

    if (ib->n_pending >= BM_INBOX_PENDING_MAX) {
        /* Cannot happen before the check in take_next; keep it safe anyway. */
        bm_error(COMP, "too many files pending; \"%s\" stays in the inbox", q->name);
        if (have_errors)
            unlink(ps.errtmp);
        return;
    }
    s_pending_t *p = s_pending_add(ib, uname);
    if (!p) {
        bm_error(COMP, "out of memory; \"%s\" stays in the inbox", q->name);
        if (have_errors)
            unlink(ps.errtmp);
        return;
    }
    p->last_seq = ps.last_seq;
    p->complete = true;
    p->present = true;

    if (have_errors) {
        s_path(errdst, ib->sending_dir, uname, ".errors");
        if (rename(ps.errtmp, errdst) < 0)
            s_log_move_error(ps.errtmp, errdst);
    }
    s_path(dst, ib->sending_dir, uname, NULL);
    if (rename(src, dst) < 0) {
        /* The records are spooled and will be delivered; the file is read
         * again next time and deduplicated by the collector. */
        s_log_move_error(src, dst);
        p->complete = false;
        s_mark_failed(ib, q->name, q->mtime_ms);
        return;
    }
    s_fsync_dir(ib->sending_dir);
    s_fsync_dir(cfg->inbox_dir);
    bm_info(COMP, "took \"%s\" as sending/%s: %" PRIu64 " records in %" PRIu64
            " batches (sequence %" PRIu64 "..%" PRIu64 "), %" PRIu64 " bad lines, %lld ms",
            q->name, uname, stats.good, ps.entries, ps.first_seq, ps.last_seq, stats.bad,
            (long long)ms);
}

int bm_inbox_take_next(bm_inbox_t *ib, bm_err_t *err)
{
    (void)err;
    if (ib->queue_head >= ib->n_queue || *ib->stop)
        return 0;
    if (s_spool_full(ib))
        return 0;
    if (ib->n_pending >= BM_INBOX_PENDING_MAX) {
        if (!ib->pending_full_warned)
            bm_warn(COMP, "%d files wait for acknowledgement: not taking new inbox files "
                    "until the collector acknowledges", BM_INBOX_PENDING_MAX);
        ib->pending_full_warned = true;
        return 0;
    }
    ib->pending_full_warned = false;
    s_queued_t q = ib->queue[ib->queue_head++];
    ib->info.files_queued = ib->n_queue - ib->queue_head;
    s_take(ib, &q);
    return 1;
}

/* ---- finalising ---- */

/* Moves sending/U (and its .errors) to done/ or rejected/. */
static void s_finish_file(bm_inbox_t *ib, const char *uname)
{
    char src[BM_PATH_BUF], dst[BM_PATH_BUF], esrc[BM_PATH_BUF], edst[BM_PATH_BUF];
    s_path(src, ib->sending_dir, uname, NULL);
    s_path(esrc, ib->sending_dir, uname, ".errors");
    bool bad = s_exists(esrc);
    const char *dir = bad ? ib->rejected_dir : ib->done_dir;
    s_path(dst, dir, uname, NULL);
    if (rename(src, dst) < 0) {
        if (errno == ENOENT)
            bm_debug(COMP, "\"%s\" is acknowledged but no longer in sending/", uname);
        else
            s_log_move_error(src, dst);
        return;
    }
    /* The file first, then its list: a crash in between leaves an orphan
     * list that recovery moves after its file. */
    if (bad) {
        s_path(edst, dir, uname, ".errors");
        if (rename(esrc, edst) < 0)
            s_log_move_error(esrc, edst);
        ib->info.files_rejected++;
        bm_info(COMP, "all records of \"%s\" acknowledged; moved to rejected/ (it has "
                "bad lines, see rejected/%s.errors)", uname, uname);
    } else {
        ib->info.files_done++;
        bm_info(COMP, "all records of \"%s\" acknowledged; moved to done/", uname);
    }
}

void bm_inbox_finalize(bm_inbox_t *ib)
{
    bm_spool_stats_t st;
    bm_spool_stats(ib->spool, &st);
    if (st.acked_seq == ib->finalized_upto)
        return;
    ib->finalized_upto = st.acked_seq;
    for (size_t i = 0; i < ib->n_pending;) {
        s_pending_t *p = &ib->pending[i];
        if (p->last_seq > st.acked_seq) {
            i++;
            continue;
        }
        if (p->complete)
            s_finish_file(ib, p->uname);
        s_pending_remove(ib, i);
    }
}

void bm_inbox_info(const bm_inbox_t *ib, bm_inbox_info_t *out)
{
    *out = ib->info;
    out->files_pending = 0;
    for (size_t i = 0; i < ib->n_pending; i++)
        out->files_pending += ib->pending[i].complete;
    out->spool_full = ib->spool_full;
}

/* ---- recovery ---- */

static int s_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Reads origin_file and last_of_file of an encoded SpoolEntry without
 * decoding its batch (recovery reads the whole spool).  Returns 0 or -1. */
static int s_scan_entry(const uint8_t *data, size_t len, char *origin, size_t osize,
                        bool *last)
{
    const uint8_t *p = data, *end = data + len;
    origin[0] = '\0';
    *last = false;
    while (p < end) {
        uint64_t key, v;
        if (s_varint(&p, end, &key) < 0)
            return -1;
        unsigned wt = key & 7;
        uint64_t field = key >> 3;
        if (wt == 0) {
            if (s_varint(&p, end, &v) < 0)
                return -1;
            if (field == 3)
                *last = v != 0;
        } else if (wt == 2) {
            if (s_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
                return -1;
            if (field == 1) {
                if (v == 0 || v >= osize || memchr(p, '/', v) || memchr(p, '\0', v))
                    return -1;
                memcpy(origin, p, v);
                origin[v] = '\0';
            }
            p += v;
        } else if (wt == 1) {
            if (end - p < 8)
                return -1;
            p += 8;
        } else if (wt == 5) {
            if (end - p < 4)
                return -1;
            p += 4;
        } else {
            return -1;
        }
    }
    return origin[0] ? 0 : -1;
}

static bool s_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int s_recover_spool(bm_inbox_t *ib, bm_err_t *err)
{
    bm_spool_cursor_t *cur = bm_spool_cursor_new(ib->spool, err);
    if (!cur)
        return -1;
    uint64_t seq, n = 0;
    uint8_t *payload;
    size_t len;
    int64_t appended;
    int rc;
    char origin[BM_UNAME_MAX + 1];
    while ((rc = bm_spool_cursor_next(cur, &seq, &payload, &len, &appended, err)) == 1) {
        bool last;
        if (s_scan_entry(payload, len, origin, sizeof origin, &last) < 0) {
            bm_warn(COMP, "spool entry %" PRIu64 " names no origin file; it is sent but "
                    "no file waits for it", seq);
            free(payload);
            continue;
        }
        free(payload);
        n++;
        s_pending_t *p = s_pending_find(ib, origin);
        if (!p && !(p = s_pending_add(ib, origin))) {
            rc = bm_err_set(err, "out of memory");
            break;
        }
        p->last_seq = seq;
        p->complete = p->complete || last;
    }
    bm_spool_cursor_destroy(&cur);
    if (rc < 0)
        return bm_err_prefix(err, "could not read the spool");
    bm_info(COMP, "recovery: %" PRIu64 " unacknowledged batches from %zu files in the "
            "spool", n, ib->n_pending);
    return 0;
}

static void s_recover_sending(bm_inbox_t *ib)
{
    DIR *d = opendir(ib->sending_dir);
    if (!d)
        return;
    struct dirent *de;
    char path[BM_PATH_BUF], other[BM_PATH_BUF];
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (name[0] == '.' && s_ends_with(name, ".errors.tmp")) {
            s_path(path, ib->sending_dir, name, NULL);
            unlink(path);
            continue;
        }
        if (s_ends_with(name, ".errors")) {
            /* An orphan list whose file was already moved. */
            size_t base = strlen(name) - strlen(".errors");
            snprintf(other, sizeof other, "%s/%.*s", ib->sending_dir, (int)base, name);
            if (!s_exists(other)) {
                s_path(path, ib->sending_dir, name, NULL);
                s_path(other, ib->rejected_dir, name, NULL);
                if (rename(path, other) < 0)
                    s_log_move_error(path, other);
            }
            continue;
        }
        s_pending_t *p = s_pending_find(ib, name);
        if (p && p->complete) {
            p->present = true;
            continue;
        }
        if (p) {
            /* Only part of its batches are left: impossible for a file that
             * reached sending/ unless its first batches were acked.  It is
             * complete as far as the spool can tell. */
            p->complete = true;
            p->present = true;
            continue;
        }
        s_finish_file(ib, name);
    }
    closedir(d);
}

static void s_recover_inbox(bm_inbox_t *ib)
{
    const bm_agent_config_t *cfg = ib->cfg;
    DIR *d = opendir(cfg->inbox_dir);
    if (!d)
        return;
    struct dirent *de;
    char src[BM_PATH_BUF], dst[BM_PATH_BUF], errdst[BM_PATH_BUF];
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        const bm_parser_t *parser = bm_parser_for_file(name);
        if (name[0] == '.' || !parser)
            continue;
        /* The latest complete spooled copy of F that has no file yet. */
        s_pending_t *best = NULL;
        for (size_t i = 0; i < ib->n_pending; i++) {
            s_pending_t *p = &ib->pending[i];
            if (p->complete && !p->present && strcmp(s_origin_of(p->uname), name) == 0 &&
                (!best || p->last_seq > best->last_seq))
                best = p;
        }
        if (!best)
            continue;
        s_path(src, cfg->inbox_dir, name, NULL);
        /* Finished before (an ack lost with power is being resent): this F
         * is a new file of the same name and must be read. */
        s_path(dst, ib->done_dir, best->uname, NULL);
        s_path(errdst, ib->rejected_dir, best->uname, NULL);
        if (s_exists(dst) || s_exists(errdst)) {
            best->present = true;
            continue;
        }
        /* Its records are spooled; read it once more only to list its bad
         * lines again, since the list may not have survived the crash. */
        s_parse_t ps = {.ib = ib, .uname = best->uname, .discard = true};
        bm_parse_stats_t stats;
        bm_err_t err = {{0}};
        int rc = s_parse(ib, &ps, parser, src, &stats, &err);
        int have_errors = rc == 0 ? s_close_errors(&ps) : (s_abandon_errors(&ps), 0);
        if (have_errors > 0) {
            s_path(errdst, ib->sending_dir, best->uname, ".errors");
            if (rename(ps.errtmp, errdst) < 0)
                s_log_move_error(ps.errtmp, errdst);
        }
        s_path(dst, ib->sending_dir, best->uname, NULL);
        if (rename(src, dst) < 0) {
            s_log_move_error(src, dst);
            continue;
        }
        best->present = true;
        bm_info(COMP, "recovery: \"%s\" was already spooled; moved to sending/%s", name,
                best->uname);
    }
    closedir(d);
    s_fsync_dir(ib->sending_dir);
    s_fsync_dir(cfg->inbox_dir);
}

int bm_inbox_recover(bm_inbox_t *ib, bm_err_t *err)
{
    if (s_recover_spool(ib, err) < 0)
        return -1;
    s_recover_sending(ib);
    s_recover_inbox(ib);
    /* Complete files that are nowhere to be found (removed by hand) and
     * partial ones stay in the table only to be dropped when acknowledged. */
    for (size_t i = 0; i < ib->n_pending; i++) {
        s_pending_t *p = &ib->pending[i];
        if (!p->present && p->complete)
            bm_warn(COMP, "recovery: \"%s\" has spooled records but is neither in the "
                    "inbox nor in sending/; its records are still sent", p->uname);
        if (!p->present)
            p->complete = false;
    }
    bm_spool_stats_t st;
    bm_spool_stats(ib->spool, &st);
    ib->finalized_upto = st.acked_seq;
    s_spool_full(ib);
    return 0;
}
