/* inbox: inbox intake, file moves and restart recovery; see inbox.h.
 * Owns: the inbox/sending/done/rejected directories, the pending-file table,
 * the list of files to take and the per-file parse state. */
#define _GNU_SOURCE /* F_SETLEASE: is another program still writing a file? */
#include "inbox.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
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
#define BM_SEEN_MAX 2048             /* inbox files whose state is followed */
#define BM_COPY_BUF (64 * 1024)
/* Spool-full hysteresis: full at spool_max_bytes, taking files again only
 * below this share of it, so that one freed segment does not flip it. */
#define BM_SPOOL_RESUME_PCT 90

/* A file whose batches are in the spool. */
typedef struct {
    char *uname;         /* U: name in sending/ */
    uint64_t first_seq;  /* sequence of its first entry seen */
    uint64_t last_seq;   /* sequence of its last entry seen */
    bool complete;       /* its last_of_file entry is in the spool */
    bool present;        /* recovery: sending/U exists */
    bool watch;          /* young when taken: see s_watch_verdict */
    bm_file_state_t fs;  /* watch: the state it was read in */
    uint64_t refused;    /* records the collector refused */
    int64_t appended_ms; /* recovery: append time of its first entry seen */
} s_pending_t;

/* A file listed by the last scan. */
typedef struct {
    char name[BM_FNAME_MAX + 1];
    int64_t mtime_ms;
    bm_file_state_t fs;  /* the state it settled in */
} s_queued_t;

/* A file that could not be read, not retried before retry_at. */
typedef struct {
    char name[BM_FNAME_MAX + 1];
    int64_t mtime_ms;
    int64_t retry_at;    /* monotonic ms */
    char why[BM_INBOX_STUCK_WHY_MAX];  /* the last failure, logged once */
} s_failed_t;

/* An inbox file whose state is followed from scan to scan. */
typedef struct {
    char name[BM_FNAME_MAX + 1];
    bm_file_state_t fs;
    int64_t since_mono;  /* first scan that saw it in this state */
} s_seen_t;

/* An inbox file that cannot be taken, and why. */
typedef struct {
    char name[BM_UNAME_MAX + 1];
    char why[BM_INBOX_STUCK_WHY_MAX];
} s_stuck_t;

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
    s_seen_t *seen, *seen_next;         /* BM_SEEN_MAX each, seen sorted by name */
    size_t n_seen, n_seen_next;
    s_stuck_t *stuck, *stuck_next;      /* BM_INBOX_STUCK_MAX each */
    size_t n_stuck, n_stuck_next;
    uint64_t stuck_total, stuck_total_next;  /* all stuck files, also past the cap */
    size_t n_watch;                     /* pending rows with watch set */
    uint8_t *copybuf;                   /* BM_COPY_BUF: taking a snapshot */
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
    const char *name;        /* the file's name in the inbox (its encoding) */
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
    if (ib->pending[i].watch)
        ib->n_watch--;
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
    ib->seen = calloc(BM_SEEN_MAX, sizeof *ib->seen);
    ib->seen_next = calloc(BM_SEEN_MAX, sizeof *ib->seen_next);
    ib->stuck = calloc(BM_INBOX_STUCK_MAX, sizeof *ib->stuck);
    ib->stuck_next = calloc(BM_INBOX_STUCK_MAX, sizeof *ib->stuck_next);
    ib->copybuf = malloc(BM_COPY_BUF);
    if (!ib->sending_dir || !ib->done_dir || !ib->rejected_dir || !ib->queue || !ib->recs ||
        !ib->seen || !ib->seen_next || !ib->stuck || !ib->stuck_next || !ib->copybuf) {
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
    /* The "still open for writing?" probe takes a read lease for an
     * instant; a writer opening the file in that instant makes the kernel
     * send SIGIO, whose default action would end the process. */
    struct sigaction sa;
    if (sigaction(SIGIO, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGIO, SIG_IGN);
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
    free(ib->seen);
    free(ib->seen_next);
    free(ib->stuck);
    free(ib->stuck_next);
    free(ib->copybuf);
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

/* ---- the intake rules (docs/agent.md "Which writers are safe") ---- */

void bm_file_state_of(const struct stat *st, bm_file_state_t *out)
{
    out->dev = (uint64_t)st->st_dev;
    out->ino = (uint64_t)st->st_ino;
    out->size = (int64_t)st->st_size;
    out->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    out->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

bool bm_file_state_same(const bm_file_state_t *a, const bm_file_state_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

int64_t bm_inbox_young_ms(int64_t settle_ms)
{
    return settle_ms > 0 ? settle_ms * BM_INBOX_YOUNG_FACTOR : 0;
}

bool bm_inbox_settled(const bm_file_state_t *seen, int64_t seen_mono,
                      const bm_file_state_t *now, int64_t now_mono, int64_t mtime_age_ms,
                      int64_t settle_ms)
{
    /* Changed (or first seen) now: it has been stable for 0 ms. */
    int64_t stable_ms = seen && bm_file_state_same(seen, now) ? now_mono - seen_mono : 0;
    if (stable_ms < settle_ms)
        return false;
    /* The mtime also counts, so that a file seen for the first time after a
     * restart still waits until it is quiet; a clock far behind the file's
     * time cannot judge that, and then the observation alone decides. */
    return mtime_age_ms >= settle_ms || mtime_age_ms < -60000;
}

bm_intake_t bm_inbox_judge(int64_t size, int last_byte, bool open_for_writing,
                           int64_t mtime_age_ms, int64_t settle_ms)
{
    bool young = mtime_age_ms >= -60000 && mtime_age_ms < bm_inbox_young_ms(settle_ms);
    /* While young, these are signs of a writer that paused: the last line
     * may be cut in the middle ("...,130,1" of "...,130,17"), and taking it
     * would store a wrong value under a source id that a later, complete
     * export cannot correct. */
    if (young && (open_for_writing || size == 0 || last_byte != '\n'))
        return BM_INTAKE_WAIT;
    return size == 0 ? BM_INTAKE_EMPTY : BM_INTAKE_TAKE;
}

static bool s_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Whether another program has fd's file open for writing.  A read lease
 * is refused (EAGAIN) exactly then; the lease is dropped at once.  Where
 * leases are not allowed (the agent does not own the file and lacks
 * CAP_LEASE, a network file system) this says false and only the time
 * rules apply. */
static bool s_open_for_writing(int fd)
{
    if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
        fcntl(fd, F_SETLEASE, F_UNLCK);
        return false;
    }
    return errno == EAGAIN;
}

/* ---- files that could not be taken: retried once a minute, logged once ---- */

static s_failed_t *s_failed_find(bm_inbox_t *ib, const char *name)
{
    for (size_t i = 0; i < BM_FAILED_MAX; i++)
        if (ib->failed[i].name[0] && strcmp(ib->failed[i].name, name) == 0)
            return &ib->failed[i];
    return NULL;
}

/* Records that name (in the state of mtime_ms) could not be taken, and
 * why, to be retried a minute later.  Logged as an error the first time and
 * at debug level while the reason stays the same, so that a file that stays
 * broken is reported once and listed by `status`, not logged every minute. */
static void s_fail(bm_inbox_t *ib, const char *name, int64_t mtime_ms, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_fail(bm_inbox_t *ib, const char *name, int64_t mtime_ms, const char *fmt, ...)
{
    char why[BM_INBOX_STUCK_WHY_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    s_failed_t *f = s_failed_find(ib, name);
    if (f && strcmp(f->why, why) == 0) {
        bm_debug(COMP, "inbox file \"%s\" still cannot be taken: %s", name, why);
    } else {
        bm_error(COMP, "could not take inbox file \"%s\": %s; it stays in the inbox and is "
                 "retried every %d s", name, why, BM_FAILED_RETRY_MS / 1000);
    }
    if (!f) {
        f = &ib->failed[ib->failed_next];
        ib->failed_next = (ib->failed_next + 1) % BM_FAILED_MAX;
    }
    snprintf(f->name, sizeof f->name, "%.*s", BM_FNAME_MAX, name);
    snprintf(f->why, sizeof f->why, "%s", why);
    f->mtime_ms = mtime_ms;
    f->retry_at = bm_mono_ms() + BM_FAILED_RETRY_MS;
}

static void s_failed_clear(bm_inbox_t *ib, const char *name)
{
    s_failed_t *f = s_failed_find(ib, name);
    if (f)
        f->name[0] = '\0';
}

/* ---- stuck files: listed by every scan, logged when they first appear ---- */

static void s_stuck(bm_inbox_t *ib, bool log, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_stuck(bm_inbox_t *ib, bool log, const char *name, const char *fmt, ...)
{
    ib->stuck_total_next++;
    if (ib->n_stuck_next >= BM_INBOX_STUCK_MAX)
        return;
    s_stuck_t *t = &ib->stuck_next[ib->n_stuck_next++];
    snprintf(t->name, sizeof t->name, "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof t->why, fmt, ap);
    va_end(ap);
    bool known = false;
    for (size_t i = 0; i < ib->n_stuck && !known; i++)
        known = strcmp(ib->stuck[i].name, t->name) == 0 && strcmp(ib->stuck[i].why, t->why) == 0;
    if (log && !known)
        bm_warn(COMP, "inbox file \"%s\" cannot be taken: %s; it stays in the inbox", name,
                t->why);
}

/* A name no format takes: says what is wrong with it in the words of
 * docs/formats.md, with the likely intended name when only case differs. */
static void s_stuck_name(bm_inbox_t *ib, const char *name)
{
    char lower[BM_UNAME_MAX + 1];
    size_t i;
    for (i = 0; name[i] && i < BM_UNAME_MAX; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    lower[i] = '\0';
    if (bm_parser_for_file(lower))
        s_stuck(ib, true, name, "names are case-sensitive: rename it to \"%s\"", lower);
    else
        s_stuck(ib, true, name, "its name matches no export format (people_count*.csv, "
                "receipts*.csv, queue*.csv, calls*.csv, complaints*.csv, customers*.csv, "
                "surveys*.jsonl, evaluations*.jsonl; see docs/formats.md)");
}

/* ---- scanning ---- */

static int s_queued_cmp(const void *a, const void *b)
{
    const s_queued_t *x = a, *y = b;
    if (x->mtime_ms != y->mtime_ms)
        return x->mtime_ms < y->mtime_ms ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int s_seen_cmp(const void *a, const void *b)
{
    return strcmp(((const s_seen_t *)a)->name, ((const s_seen_t *)b)->name);
}

typedef enum { S_LOOK_SKIP, S_LOOK_WAIT, S_LOOK_READY } s_look_t;

/* Checks what kind of thing name is; lists it as stuck when it can never
 * be taken as it is.  Leaves its stat in *st (following a symbolic link).
 * Returns S_LOOK_READY for a regular, readable file of a known format. */
static s_look_t s_look_kind(bm_inbox_t *ib, const char *name, const char *path,
                            struct stat *st)
{
    if (lstat(path, st) < 0)
        return S_LOOK_SKIP; /* gone since it was listed */
    if (S_ISLNK(st->st_mode) && stat(path, st) < 0) {
        int e = errno;
        char target[256];
        ssize_t k = readlink(path, target, sizeof target - 1);
        target[k > 0 ? k : 0] = '\0';
        s_stuck(ib, true, name, "it is a symbolic link to \"%s\", which %s", target,
                e == ENOENT ? "does not exist" : strerror(e));
        return S_LOOK_SKIP;
    }
    if (S_ISDIR(st->st_mode)) {
        s_stuck(ib, true, name, "it is a folder; put export files directly into the inbox");
        return S_LOOK_SKIP;
    }
    if (!S_ISREG(st->st_mode)) {
        s_stuck(ib, true, name, "it is not a regular file (a device, pipe or socket)");
        return S_LOOK_SKIP;
    }
    if (!bm_parser_for_file(name)) {
        s_stuck_name(ib, name);
        return S_LOOK_SKIP;
    }
    if (strlen(name) > BM_FNAME_MAX) {
        s_stuck(ib, true, name, "its name is longer than %d bytes; rename it", BM_FNAME_MAX);
        return S_LOOK_SKIP;
    }
    if (access(path, R_OK) < 0) {
        s_stuck(ib, true, name, "the agent (user id %u) may not read it: %s; make it "
                "readable for the agent's user or group", (unsigned)geteuid(),
                strerror(errno));
        return S_LOOK_SKIP;
    }
    return S_LOOK_READY;
}

/* Looks at one inbox entry during a scan: follows its state from scan to
 * scan and fills *q when it has settled and may be taken. */
static s_look_t s_look(bm_inbox_t *ib, const char *name, int64_t now, int64_t mono,
                       s_queued_t *q)
{
    char path[BM_PATH_BUF];
    s_path(path, ib->cfg->inbox_dir, name, NULL);
    struct stat st;
    s_look_t kind = s_look_kind(ib, name, path, &st);
    if (kind != S_LOOK_READY)
        return kind;
    int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    s_failed_t *f = s_failed_find(ib, name);
    if (f && f->mtime_ms == mtime) {
        s_stuck(ib, false, name, "%s", f->why); /* logged when it failed */
        if (mono < f->retry_at)
            return S_LOOK_SKIP;
    }
    bm_file_state_t fs;
    bm_file_state_of(&st, &fs);
    s_seen_t key = {.since_mono = 0};
    snprintf(key.name, sizeof key.name, "%s", name);
    const s_seen_t *old = bsearch(&key, ib->seen, ib->n_seen, sizeof *ib->seen, s_seen_cmp);
    const bm_file_state_t *seen = old ? &old->fs : NULL;
    int64_t since = seen && bm_file_state_same(seen, &fs) ? old->since_mono : mono;
    if (ib->n_seen_next < BM_SEEN_MAX) {
        s_seen_t *n = &ib->seen_next[ib->n_seen_next++];
        *n = key;
        n->fs = fs;
        n->since_mono = since;
    } else {
        seen = NULL; /* not followed: it waits until there is room */
    }
    if (!bm_inbox_settled(seen, since, &fs, mono, now - mtime, ib->cfg->inbox_settle_ms))
        return S_LOOK_WAIT;
    snprintf(q->name, sizeof q->name, "%s", name);
    q->mtime_ms = mtime;
    q->fs = fs;
    return S_LOOK_READY;
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
    int64_t now = bm_now_ms(), mono = bm_mono_ms();
    size_t n = 0;
    uint64_t waiting = 0;
    ib->n_seen_next = 0;
    ib->n_stuck_next = 0;
    ib->stuck_total_next = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        /* Temporary names of writers that rename when done: never taken. */
        if (name[0] == '.' || s_ends_with(name, ".tmp") || s_ends_with(name, ".part"))
            continue;
        s_queued_t q;
        s_look_t look = s_look(ib, name, now, mono, &q);
        if (look == S_LOOK_WAIT)
            waiting++;
        if (look != S_LOOK_READY)
            continue;
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
            waiting++;
        }
    }
    closedir(d);
    /* This scan's view replaces the last one: files that are gone are
     * forgotten, and a stuck file that comes back is reported again. */
    qsort(ib->seen_next, ib->n_seen_next, sizeof *ib->seen_next, s_seen_cmp);
    s_seen_t *sw = ib->seen;
    ib->seen = ib->seen_next;
    ib->seen_next = sw;
    ib->n_seen = ib->n_seen_next;
    s_stuck_t *tw = ib->stuck;
    ib->stuck = ib->stuck_next;
    ib->stuck_next = tw;
    ib->n_stuck = ib->n_stuck_next;
    ib->info.files_stuck = ib->stuck_total_next;
    qsort(ib->queue, n, sizeof *ib->queue, s_queued_cmp);
    ib->n_queue = n;
    ib->queue_head = 0;
    ib->info.files_queued = n;
    ib->info.files_waiting = waiting + n;
    return 0;
}

bool bm_inbox_stuck(const bm_inbox_t *ib, size_t i, const char **name, const char **why)
{
    if (i >= ib->n_stuck)
        return false;
    *name = ib->stuck[i].name;
    *why = ib->stuck[i].why;
    return true;
}

/* ---- taking a file ---- */

/* Updates the spool-full flag, logging the transitions once.  Full at
 * spool_max_bytes; not full again until below BM_SPOOL_RESUME_PCT of it, so
 * that acks freeing one segment while the next file fills one do not make
 * a "full" / "below its limit" pair in the log for every file. */
static bool s_spool_full(bm_inbox_t *ib)
{
    bm_spool_stats_t st;
    bm_spool_stats(ib->spool, &st);
    uint64_t max = (uint64_t)ib->cfg->spool_max_bytes;
    uint64_t resume = max / 100 * BM_SPOOL_RESUME_PCT;
    /* The open tail segment keeps its acknowledged entries on disk until it
     * rolls over, so a spool whose entries are all acknowledged is never
     * full: intake must go on, or the segment could never roll over. */
    bool full = st.entries > 0 && st.bytes >= (ib->spool_full ? resume : max);
    if (full && !ib->spool_full)
        bm_warn(COMP, "spool full (%" PRIu64 " of %" PRIu64 " bytes): not taking new "
                "inbox files until the collector acknowledges", st.bytes, max);
    else if (!full && ib->spool_full)
        bm_info(COMP, "spool below its limit (%" PRIu64 " of %" PRIu64 " bytes): "
                "taking inbox files again", st.bytes, max);
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
    int rc = bm_parse_file_encoded(parser, path, bm_agent_config_encoding(ib->cfg, ps->name),
                                   &window, s_sink, s_line_error, ps, stats, err);
    if (rc == 0 && !ps->discard && ps->n > 0)
        rc = s_flush(ps, true, err);
    s_drop_records(ps);
    return rc;
}

/* Opens a listed file and judges what it holds now (bm_inbox_judge).
 * Returns the verdict with *fd_out open (the caller closes it) and *fs its
 * state; BM_INTAKE_WAIT (nothing open) when it changed since the scan or
 * may still be written; -1 with why when it cannot be opened or read. */
static int s_open_finished(bm_inbox_t *ib, const s_queued_t *q, const char *src,
                           int *fd_out, bm_file_state_t *fs, char *why, size_t whysz)
{
    *fd_out = -1;
    int fd = open(src, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return BM_INTAKE_WAIT; /* gone: the next scan tells */
        snprintf(why, whysz, "could not open it: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(why, whysz, "could not read its size and time: %s", strerror(errno));
        close(fd);
        return -1;
    }
    bm_file_state_of(&st, fs);
    /* Replaced or written since the scan saw it settled. */
    if (!S_ISREG(st.st_mode) || !bm_file_state_same(fs, &q->fs)) {
        close(fd);
        return BM_INTAKE_WAIT;
    }
    int last = -1;
    if (st.st_size > 0) {
        unsigned char c;
        ssize_t r = pread(fd, &c, 1, st.st_size - 1);
        if (r < 0) {
            snprintf(why, whysz, "could not read it: %s", strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0) {
            close(fd);
            return BM_INTAKE_WAIT; /* cut shorter meanwhile */
        }
        last = c;
    }
    bool writing = s_open_for_writing(fd);
    int64_t age = bm_now_ms() - fs->mtime_ns / 1000000;
    bm_intake_t v = bm_inbox_judge(fs->size, last, writing, age, ib->cfg->inbox_settle_ms);
    if (v == BM_INTAKE_WAIT) {
        bm_debug(COMP, "\"%s\" may still be being written (%s); not taken yet", q->name,
                 writing ? "another program has it open for writing"
                 : fs->size == 0 ? "it is empty" : "its last line has no line end");
        close(fd);
        return v;
    }
    *fd_out = fd;
    return v;
}

static int s_write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copies exactly fs->size bytes of fd to the new file dst and checks that
 * the file did not change meanwhile, so that what is parsed is one state of
 * the file, the one that was judged finished (the parser reads to the end
 * of whatever it opens; a writer going on during the read would hand it a
 * cut line).  Returns 0; 1 when the file changed; -1 with why on an I/O
 * error.  dst is removed unless 0 is returned. */
static int s_snapshot(bm_inbox_t *ib, int fd, const bm_file_state_t *fs, const char *dst,
                      char *why, size_t whysz)
{
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0) {
        snprintf(why, whysz, "could not create its copy in sending/: %s", strerror(errno));
        return -1;
    }
    int rc = 0;
    int64_t off = 0;
    while (rc == 0 && off < fs->size) {
        size_t want = fs->size - off < BM_COPY_BUF ? (size_t)(fs->size - off) : BM_COPY_BUF;
        ssize_t r = pread(fd, ib->copybuf, want, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, whysz, "could not read it: %s", strerror(errno));
            rc = -1;
        } else if (r == 0) {
            rc = 1; /* cut shorter meanwhile */
        } else if (s_write_all(out, ib->copybuf, (size_t)r) < 0) {
            snprintf(why, whysz, "could not write its copy in sending/: %s", strerror(errno));
            rc = -1;
        }
        off += r > 0 ? r : 0;
    }
    if (close(out) < 0 && rc == 0) {
        snprintf(why, whysz, "could not write its copy in sending/: %s", strerror(errno));
        rc = -1;
    }
    struct stat st;
    bm_file_state_t now;
    if (rc == 0 && fstat(fd, &st) == 0) {
        bm_file_state_of(&st, &now);
        if (!bm_file_state_same(&now, fs))
            rc = 1;
    }
    if (rc != 0)
        unlink(dst);
    return rc;
}

/* Whether the inbox file at src is still the file fd was opened on, in the
 * state fs: not written, not replaced. */
static bool s_still_same(int fd, const char *src, const bm_file_state_t *fs)
{
    struct stat a, b;
    bm_file_state_t x;
    if (fstat(fd, &a) < 0 || stat(src, &b) < 0)
        return false;
    bm_file_state_of(&a, &x);
    return bm_file_state_same(&x, fs) && (uint64_t)b.st_dev == fs->dev &&
           (uint64_t)b.st_ino == fs->ino;
}

/* Writes rejected/U.errors with one line and moves the inbox file there: a
 * 0-byte export.  Returns 0, or -1 (logged, the file stays). */
static int s_reject_empty(bm_inbox_t *ib, const s_queued_t *q, const char *src,
                          const char *uname)
{
    char dst[BM_PATH_BUF], edst[BM_PATH_BUF];
    s_path(dst, ib->rejected_dir, uname, NULL);
    s_path(edst, ib->rejected_dir, uname, ".errors");
    static const char msg[] = "empty export: the file has 0 bytes (the export job that "
                              "wrote it probably failed); export again\n";
    int fd = open(edst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0 || s_write_all(fd, msg, sizeof msg - 1) < 0 || fsync(fd) < 0) {
        s_fail(ib, q->name, q->mtime_ms, "could not write \"%s\": %s", edst, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(edst);
        return -1;
    }
    close(fd);
    if (rename(src, dst) < 0) {
        s_fail(ib, q->name, q->mtime_ms, "could not move it to \"%s\": %s", dst,
               strerror(errno));
        unlink(edst);
        return -1;
    }
    s_fsync_dir(ib->rejected_dir);
    s_fsync_dir(ib->cfg->inbox_dir);
    ib->info.files_rejected++;
    bm_warn(COMP, "rejected \"%s\": empty export (0 bytes); moved to rejected/%s", q->name,
            uname);
    return 0;
}

/* Moves what was taken out of the inbox to dst: the inbox file itself when
 * it is unchanged since it was read (same), else the snapshot that was
 * read; the inbox file then stays and is read again whole (the collector
 * counts the lines it already has once).  Returns 0 or -1 with errno. */
static int s_move_taken(const char *src, const char *snap, bool same, const char *dst)
{
    if (!same)
        return rename(snap, dst);
    if (rename(src, dst) < 0)
        return -1;
    unlink(snap);
    return 0;
}

static void s_log_changed(const char *name)
{
    bm_warn(COMP, "\"%s\" was written to while it was being taken (its writer went on "
            "after a pause longer than inbox_settle); what was read is sent, and the file "
            "stays in the inbox to be read again", name);
}

/* A file with nothing to send is finished at once: done/ (no data lines)
 * or rejected/ (only bad lines). */
static void s_finish_now(bm_inbox_t *ib, const s_queued_t *q, const char *src,
                         const char *snap, bool same, const char *uname, s_parse_t *ps,
                         const bm_parse_stats_t *stats, int have_errors)
{
    char dst[BM_PATH_BUF], errdst[BM_PATH_BUF];
    const char *dir = have_errors ? ib->rejected_dir : ib->done_dir;
    s_path(dst, dir, uname, NULL);
    if (have_errors) {
        s_path(errdst, dir, uname, ".errors");
        if (rename(ps->errtmp, errdst) < 0) {
            s_fail(ib, q->name, q->mtime_ms, "could not move \"%s\" to \"%s\": %s",
                   ps->errtmp, errdst, strerror(errno));
            unlink(ps->errtmp);
            unlink(snap);
            return;
        }
    }
    if (s_move_taken(src, snap, same, dst) < 0) {
        s_fail(ib, q->name, q->mtime_ms, "could not move it to \"%s\": %s", dst,
               strerror(errno));
        unlink(snap);
        return;
    }
    s_fsync_dir(dir);
    s_fsync_dir(ib->cfg->inbox_dir);
    s_failed_clear(ib, q->name);
    if (!same)
        s_log_changed(q->name);
    if (have_errors) {
        ib->info.files_rejected++;
        bm_warn(COMP, "rejected \"%s\": none of its %" PRIu64 " lines is valid (see "
                "rejected/%s.errors)", q->name, stats->bad, uname);
    } else {
        ib->info.files_done++;
        bm_info(COMP, "\"%s\" has no data lines; moved to done/%s", q->name, uname);
    }
}

/* Hands a spooled file to sending/ and the pending table.  young: its
 * last change was recent, so it is watched (s_watch_verdict). */
static void s_commit_sending(bm_inbox_t *ib, const s_queued_t *q, const char *src,
                             const char *snap, bool same, bool young,
                             const bm_file_state_t *fs, const char *uname, s_parse_t *ps,
                             const bm_parse_stats_t *stats, int have_errors, int64_t ms)
{
    char dst[BM_PATH_BUF], errdst[BM_PATH_BUF];
    s_pending_t *p = ib->n_pending < BM_INBOX_PENDING_MAX ? s_pending_add(ib, uname) : NULL;
    if (!p) {
        /* The records are spooled and will be delivered; the file is read
         * again and deduplicated by the collector. */
        bm_error(COMP, "%s; \"%s\" stays in the inbox", ib->n_pending < BM_INBOX_PENDING_MAX
                 ? "out of memory" : "too many files pending", q->name);
        if (have_errors)
            unlink(ps->errtmp);
        unlink(snap);
        return;
    }
    p->first_seq = ps->first_seq;
    p->last_seq = ps->last_seq;
    p->complete = true;
    p->present = true;
    if (have_errors) {
        s_path(errdst, ib->sending_dir, uname, ".errors");
        if (rename(ps->errtmp, errdst) < 0)
            s_log_move_error(ps->errtmp, errdst);
    }
    s_path(dst, ib->sending_dir, uname, NULL);
    if (s_move_taken(src, snap, same, dst) < 0) {
        p->complete = false;
        s_fail(ib, q->name, q->mtime_ms, "could not move it to \"%s\": %s (its records are "
               "spooled; the file is read again and counted once)", dst, strerror(errno));
        unlink(snap);
        return;
    }
    if (same && young) {
        p->watch = true;
        p->fs = *fs;
        ib->n_watch++;
    }
    s_fsync_dir(ib->sending_dir);
    s_fsync_dir(ib->cfg->inbox_dir);
    s_failed_clear(ib, q->name);
    if (!same)
        s_log_changed(q->name);
    bm_info(COMP, "took \"%s\" as sending/%s: %" PRIu64 " records in %" PRIu64
            " batches (sequence %" PRIu64 "..%" PRIu64 "), %" PRIu64 " bad lines, %lld ms",
            q->name, uname, stats->good, ps->entries, ps->first_seq, ps->last_seq,
            stats->bad, (long long)ms);
}

/* Takes one inbox file: see inbox.h for the way it goes.  The file is
 * judged on an open descriptor, copied (one state of it) and the copy is
 * parsed; nothing leaves the inbox unless its records are durable. */
static void s_take(bm_inbox_t *ib, const s_queued_t *q)
{
    const bm_parser_t *parser = bm_parser_for_file(q->name);
    char src[BM_PATH_BUF], snap[BM_PATH_BUF], why[BM_INBOX_STUCK_WHY_MAX];
    char uname[BM_UNAME_MAX + 1];
    s_path(src, ib->cfg->inbox_dir, q->name, NULL);
    if (!parser)
        return;
    if (s_unique_name(ib, q->name, uname, sizeof uname) < 0) {
        s_fail(ib, q->name, q->mtime_ms, "no free name for it in sending/");
        return;
    }
    int fd;
    bm_file_state_t fs;
    int v = s_open_finished(ib, q, src, &fd, &fs, why, sizeof why);
    if (v < 0)
        s_fail(ib, q->name, q->mtime_ms, "%s", why);
    if (v == BM_INTAKE_EMPTY && s_reject_empty(ib, q, src, uname) == 0)
        s_failed_clear(ib, q->name);
    if (v != BM_INTAKE_TAKE) {
        if (fd >= 0)
            close(fd);
        return;
    }
    snprintf(snap, sizeof snap, "%s/.%s.snap", ib->sending_dir, uname);
    int rc = s_snapshot(ib, fd, &fs, snap, why, sizeof why);
    if (rc != 0) {
        if (rc < 0)
            s_fail(ib, q->name, q->mtime_ms, "%s", why);
        else
            bm_info(COMP, "\"%s\" changed while it was read; it is read again once it has "
                    "settled", q->name);
        close(fd);
        return;
    }
    s_parse_t ps = {.ib = ib, .uname = uname, .name = q->name};
    bm_parse_stats_t stats;
    bm_err_t err = {{0}};
    int64_t t0 = bm_mono_ms();
    rc = s_parse(ib, &ps, parser, snap, &stats, &err);
    int have_errors = rc == 0 ? s_close_errors(&ps) : (s_abandon_errors(&ps), 0);
    bool young = bm_now_ms() - fs.mtime_ns / 1000000 <
                 bm_inbox_young_ms(ib->cfg->inbox_settle_ms);
    bool same = s_still_same(fd, src, &fs);
    close(fd);
    bm_err_t serr = {{0}};
    if (ps.entries && bm_spool_sync(ib->spool, &serr) < 0) {
        /* Without a durable spool the file must stay in the inbox. */
        s_fail(ib, q->name, q->mtime_ms, "could not sync the spool: %s", serr.msg);
        rc = -1;
    } else if (rc < 0 && ps.stopped) {
        bm_info(COMP, "stopped while taking \"%s\" (%" PRIu64 " batches spooled); it "
                "stays in the inbox and is read again at the next start", q->name,
                ps.entries);
    } else if (rc < 0) {
        s_fail(ib, q->name, q->mtime_ms, "%s", err.msg);
    } else if (have_errors < 0) {
        s_fail(ib, q->name, q->mtime_ms, "could not write the list of its bad lines");
        rc = -1;
    } else if (ps.entries == 0 && (young || !same)) {
        /* Nothing to send yet from a file that may still grow: a young
         * file is finished only once it has records or is old. */
        bm_debug(COMP, "\"%s\" has no records yet and was written to recently; not taken "
                 "yet", q->name);
        rc = -1;
    }
    if (rc < 0) {
        if (have_errors > 0)
            unlink(ps.errtmp);
        unlink(snap);
        return;
    }
    if (ps.entries == 0)
        s_finish_now(ib, q, src, snap, same, uname, &ps, &stats, have_errors);
    else
        s_commit_sending(ib, q, src, snap, same, young, &fs, uname, &ps, &stats,
                         have_errors, bm_mono_ms() - t0);
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

/* Moves sending/U (and its .errors) to done/ or rejected/; refused: records
 * of it the collector refused (their reasons are in the .errors). */
static void s_finish_file(bm_inbox_t *ib, const char *uname, uint64_t refused)
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
        if (refused)
            bm_warn(COMP, "\"%s\" is finished: the collector refused %" PRIu64 " of its "
                    "records; moved to rejected/ (reasons in rejected/%s.errors)", uname,
                    refused, uname);
        else
            bm_info(COMP, "all records of \"%s\" acknowledged; moved to rejected/ (it has "
                    "bad lines, see rejected/%s.errors)", uname, uname);
    } else {
        ib->info.files_done++;
        bm_info(COMP, "all records of \"%s\" acknowledged; moved to done/", uname);
    }
}

/* A file taken while young may have paused rather than finished, and its
 * writer may go on writing into it in sending/ (a rename does not close the
 * writer's file).  So it is finished only once it is no longer young, and
 * only if it is still the state that was read.  Returns 0 to finish it now,
 * 1 to wait, 2 when it was written to after it was taken.  (ctime is not
 * compared: the move into sending/ changes it.) */
static int s_watch_verdict(bm_inbox_t *ib, const s_pending_t *p)
{
    char path[BM_PATH_BUF];
    s_path(path, ib->sending_dir, p->uname, NULL);
    struct stat st;
    if (stat(path, &st) < 0)
        return 0; /* s_finish_file reports it */
    bm_file_state_t now;
    bm_file_state_of(&st, &now);
    if (now.ino != p->fs.ino || now.size != p->fs.size || now.mtime_ns != p->fs.mtime_ns)
        return 2;
    int64_t age = bm_now_ms() - now.mtime_ns / 1000000;
    return age >= 0 && age < bm_inbox_young_ms(ib->cfg->inbox_settle_ms) ? 1 : 0;
}

/* Moves sending/U back into the inbox as F (or F with "-againN" before its
 * extension, when a new F is there) so that it is read again whole: the
 * collector counts the records it already has once and stores the rest.
 * Its .errors goes: it is written again by the next reading. */
static void s_retake(bm_inbox_t *ib, const char *uname)
{
    const char *f = s_origin_of(uname);
    const char *dot = strrchr(f, '.');
    int stem = dot ? (int)(dot - f) : (int)strlen(f);
    char src[BM_PATH_BUF], esrc[BM_PATH_BUF], dst[BM_PATH_BUF];
    s_path(src, ib->sending_dir, uname, NULL);
    s_path(esrc, ib->sending_dir, uname, ".errors");
    s_path(dst, ib->cfg->inbox_dir, f, NULL);
    for (int k = 1; s_exists(dst) && k < 1000; k++)
        snprintf(dst, sizeof dst, "%s/%.*s-again%d%s", ib->cfg->inbox_dir, stem, f, k,
                 dot ? dot : "");
    if (s_exists(dst) || rename(src, dst) < 0) {
        bm_error(COMP, "\"%s\" was written to after it was taken, but could not be moved "
                 "back to the inbox (%s); it stays in sending/: put it into the inbox by hand",
                 uname, s_exists(dst) ? "no free name" : strerror(errno));
        return;
    }
    unlink(esrc);
    s_fsync_dir(ib->cfg->inbox_dir);
    s_fsync_dir(ib->sending_dir);
    bm_warn(COMP, "\"%s\" was written to after it was taken (its writer went on after a "
            "pause longer than inbox_settle); moved back to the inbox as \"%s\" to be read "
            "again whole (records already stored are counted once)", f, strrchr(dst, '/') + 1);
}

void bm_inbox_finalize(bm_inbox_t *ib)
{
    bm_spool_stats_t st;
    bm_spool_stats(ib->spool, &st);
    if (st.acked_seq == ib->finalized_upto && ib->n_watch == 0)
        return;
    ib->finalized_upto = st.acked_seq;
    for (size_t i = 0; i < ib->n_pending;) {
        s_pending_t *p = &ib->pending[i];
        if (p->last_seq > st.acked_seq) {
            i++;
            continue;
        }
        int w = p->complete && p->watch ? s_watch_verdict(ib, p) : 0;
        if (w == 1) {
            i++;
            continue;
        }
        if (w == 2)
            s_retake(ib, p->uname);
        else if (p->complete)
            s_finish_file(ib, p->uname, p->refused);
        s_pending_remove(ib, i);
    }
}

void bm_inbox_note_refused(bm_inbox_t *ib, const char *uname, const char *source_id,
                           const char *reason)
{
    char file[BM_PATH_BUF], path[BM_PATH_BUF], line[2048];
    if (!uname || !uname[0] || uname[0] == '.' || strchr(uname, '/'))
        return;
    s_path(file, ib->sending_dir, uname, NULL);
    if (!s_exists(file)) {
        bm_debug(COMP, "\"%s\" is no longer in sending/; the refusal of \"%s\" is kept in "
                 "deadletter/ only", uname, source_id);
        return;
    }
    s_path(path, ib->sending_dir, uname, ".errors");
    int n = snprintf(line, sizeof line, "record \"%s\": refused by the collector: %s\n",
                     source_id, reason);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = (int)sizeof line - 1;
    line[n - 1] = '\n';
    /* One reason, one line: whatever the collector wrote. */
    for (int i = 0; i < n - 1; i++)
        if ((unsigned char)line[i] < 0x20)
            line[i] = ' ';
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0 || s_write_all(fd, line, (size_t)n) < 0 || fsync(fd) < 0)
        bm_error(COMP, "could not write \"%s\": %s; the refused record \"%s\" is in "
                 "deadletter/", path, strerror(errno), source_id);
    if (fd >= 0)
        close(fd);
    s_pending_t *p = s_pending_find(ib, uname);
    if (p)
        p->refused++;
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
        if (!p && (p = s_pending_add(ib, origin))) {
            p->first_seq = seq;
            p->appended_ms = appended;
        }
        if (!p) {
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
        if (name[0] == '.' && (s_ends_with(name, ".errors.tmp") || s_ends_with(name, ".snap"))) {
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
        s_finish_file(ib, name, 0);
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
        /* Written to after its records were spooled (a writer that went on
         * after a pause): what is spooled is only part of it, so it is read
         * again whole like a new file; the collector counts duplicates once. */
        struct stat st;
        if (stat(src, &st) == 0 &&
            (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000 > best->appended_ms) {
            best->present = true;
            bm_info(COMP, "recovery: \"%s\" changed after part of it was spooled; it is read "
                    "again whole", name);
            continue;
        }
        /* Its records are spooled; read it once more only to list its bad
         * lines again, since the list may not have survived the crash. */
        s_parse_t ps = {.ib = ib, .uname = best->uname, .name = name, .discard = true};
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

/* Files already in done/ or rejected/ had every batch acknowledged before
 * they were moved there; only the spool's record of those acks was lost
 * (it is saved lazily).  Their batches are marked acknowledged again here,
 * so they are not resent, do not count as "oldest unsent", and are not
 * mistaken for files that went missing. */
static void s_recover_finished(bm_inbox_t *ib)
{
    char p1[BM_PATH_BUF], p2[BM_PATH_BUF], p3[BM_PATH_BUF];
    uint64_t batches = 0;
    size_t files = 0;
    for (size_t i = 0; i < ib->n_pending;) {
        s_pending_t *p = &ib->pending[i];
        s_path(p1, ib->sending_dir, p->uname, NULL);
        s_path(p2, ib->done_dir, p->uname, NULL);
        s_path(p3, ib->rejected_dir, p->uname, NULL);
        if (s_exists(p1) || (!s_exists(p2) && !s_exists(p3))) {
            i++;
            continue;
        }
        bm_err_t err = {{0}};
        for (uint64_t seq = p->first_seq; seq && seq <= p->last_seq; seq++) {
            if (bm_spool_ack(ib->spool, seq, &err) < 0)
                bm_warn(COMP, "recovery: could not mark batch %" PRIu64 " of \"%s\" "
                        "acknowledged: %s; it is sent again", seq, p->uname, err.msg);
            batches++;
        }
        files++;
        s_pending_remove(ib, i);
    }
    if (files)
        bm_info(COMP, "recovery: %" PRIu64 " batches of %zu files already in done/ or "
                "rejected/ were acknowledged before the restart; not sent again", batches,
                files);
}

int bm_inbox_recover(bm_inbox_t *ib, bm_err_t *err)
{
    if (s_recover_spool(ib, err) < 0)
        return -1;
    s_recover_sending(ib);
    s_recover_finished(ib);
    s_recover_inbox(ib);
    /* Complete files that are nowhere to be found (removed by hand) and
     * partial ones stay in the table only to be dropped when acknowledged. */
    for (size_t i = 0; i < ib->n_pending; i++) {
        s_pending_t *p = &ib->pending[i];
        if (!p->present && p->complete)
            bm_warn(COMP, "recovery: \"%s\" has spooled records but is in none of inbox/, "
                    "sending/, done/ or rejected/ (removed by hand?); its records are still "
                    "sent", p->uname);
        if (!p->present)
            p->complete = false;
    }
    bm_spool_stats_t st;
    bm_spool_stats(ib->spool, &st);
    ib->finalized_upto = st.acked_seq;
    s_spool_full(ib);
    return 0;
}
