/* test_spool: unit tests of the agent's durable spool (agent/spool.c).
 *
 * Each test works in its own directory under a fresh temporary root that is
 * removed at the end.  Damage (torn tails, flipped bytes, corrupt state,
 * write failures via RLIMIT_FSIZE) is done to real files, then the spool is
 * reopened and must recover or refuse exactly as documented. */

#include "bm_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bm_err.h"
#include "bm_log.h"
#include "bm_time.h"
#include "spool.h"

#define HDR 28 /* entry header size, see docs/spool.md */

static char g_root[256];

/* ---- file helpers ---- */

static void s_path(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    CHECK_OR_RETURN(n > 0 && (size_t)n < size);   /* a cut path would test the wrong file */
}

static void s_dir(char *buf, size_t size, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", g_root, name);
    CHECK_OR_RETURN(n > 0 && (size_t)n < size);
}

static void s_seg(char *buf, size_t size, const char *dir, uint64_t first)
{
    int n = snprintf(buf, size, "%s/seg-%020" PRIu64 ".log", dir, first);
    CHECK_OR_RETURN(n > 0 && (size_t)n < size);
}

static long long s_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static bool s_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* Copies every regular file of src into dst (created, emptied first). */
static int s_copy_dir(const char *src, const char *dst)
{
    bm_test_rmrf(dst);
    if (mkdir(dst, 0700) < 0)
        return -1;
    DIR *d = opendir(src);
    if (!d)
        return -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL && rc == 0) {
        if (e->d_name[0] == '.')
            continue;
        char a[512], b[512];
        s_path(a, sizeof a, src, e->d_name);
        s_path(b, sizeof b, dst, e->d_name);
        int in = open(a, O_RDONLY), out = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char buf[8192];
        ssize_t n;
        while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n)
                rc = -1;
        if (in < 0 || out < 0)
            rc = -1;
        if (in >= 0)
            close(in);
        if (out >= 0)
            close(out);
    }
    closedir(d);
    return rc;
}

static int s_flip_byte(const char *path, long long off)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return -1;
    unsigned char c;
    int rc = -1;
    if (pread(fd, &c, 1, off) == 1) {
        c ^= 0x5A;
        rc = pwrite(fd, &c, 1, off) == 1 ? 0 : -1;
    }
    close(fd);
    return rc;
}

/* Number of seg-*.log files in dir. */
static int s_count_segments(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, "seg-", 4) == 0;
    closedir(d);
    return n;
}

static long long s_sum_segments(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    long long sum = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "seg-", 4) != 0)
            continue;
        char p[512];
        s_path(p, sizeof p, dir, e->d_name);
        sum += s_file_size(p);
    }
    closedir(d);
    return sum;
}

/* The payload of entry number i in these tests: its length varies. */
static size_t s_payload(uint64_t i, char *buf, size_t size)
{
    int n = snprintf(buf, size, "entry-%" PRIu64 "-", i);
    size_t len = (size_t)n + (size_t)(i * 7 % 23);
    for (size_t k = (size_t)n; k < len && k < size; k++)
        buf[k] = (char)('a' + (i + k) % 26);
    return len;
}

static int s_append_n(bm_spool_t *sp, uint64_t from, uint64_t count)
{
    for (uint64_t i = from; i < from + count; i++) {
        char buf[128];
        size_t len = s_payload(i, buf, sizeof buf);
        uint64_t seq = 0;
        bm_err_t err;
        if (bm_spool_append(sp, buf, len, &seq, &err) < 0) {
            fprintf(stderr, "append %" PRIu64 ": %s\n", i, err.msg);
            return -1;
        }
        if (seq != i) {
            fprintf(stderr, "append %" PRIu64 " got seq %" PRIu64 "\n", i, seq);
            return -1;
        }
    }
    return 0;
}

/* Reads the cursor to its end and checks that it returns exactly the
 * sequences in want[0..n) with the payloads s_payload made.  Returns 0 or -1. */
static int s_expect_entries(bm_spool_t *sp, const uint64_t *want, size_t n)
{
    bm_err_t err;
    bm_spool_cursor_t *c = bm_spool_cursor_new(sp, &err);
    if (!c)
        return -1;
    size_t got = 0;
    int rc = 0;
    for (;;) {
        uint64_t seq;
        uint8_t *p;
        size_t len;
        int64_t ms;
        int r = bm_spool_cursor_next(c, &seq, &p, &len, &ms, &err);
        if (r < 0) {
            fprintf(stderr, "cursor: %s\n", err.msg);
            rc = -1;
            break;
        }
        if (r == 0)
            break;
        char buf[128];
        size_t elen = s_payload(seq, buf, sizeof buf);
        if (got >= n || want[got] != seq || len != elen || memcmp(p, buf, len) != 0) {
            fprintf(stderr, "cursor: unexpected entry %" PRIu64 " (position %zu)\n", seq, got);
            rc = -1;
        }
        free(p);
        got++;
        if (rc < 0)
            break;
    }
    if (rc == 0 && got != n) {
        fprintf(stderr, "cursor: %zu entries, expected %zu\n", got, n);
        rc = -1;
    }
    bm_spool_cursor_destroy(&c);
    bm_spool_cursor_destroy(&c);
    return rc;
}

static int s_expect_range(bm_spool_t *sp, uint64_t from, uint64_t to)
{
    uint64_t want[512];
    size_t n = 0;
    for (uint64_t i = from; i <= to && n < 512; i++)
        want[n++] = i;
    return s_expect_entries(sp, want, n);
}

/* ---- tests ---- */

static void test_round_trip(void)
{
    char dir[256];
    bm_err_t err;
    s_dir(dir, sizeof dir, "roundtrip/sub");
    bm_spool_t *sp = bm_spool_open(dir, 1 << 20, &err);
    CHECK_OR_RETURN(sp != NULL);
    const char *id = bm_spool_stream_id(sp);
    CHECK_OR_RETURN(strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32);

    bm_spool_stats_t st;
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.entries == 0 && st.bytes == 0 && st.next_seq == 1 && st.acked_seq == 0);
    CHECK_OR_RETURN(st.oldest_unacked_ms == 0 && st.torn_bytes_cut == 0);

    int64_t before = bm_now_ms();
    CHECK_OR_RETURN(s_append_n(sp, 1, 10) == 0);
    uint64_t seq = 0;
    CHECK_OR_RETURN(bm_spool_append(sp, "", 0, &seq, &err) == 0 && seq == 11); /* empty payload */
    CHECK_OR_RETURN(bm_spool_sync(sp, &err) == 0);
    int64_t after = bm_now_ms();

    bm_spool_cursor_t *c = bm_spool_cursor_new(sp, &err);
    CHECK_OR_RETURN(c != NULL);
    for (uint64_t i = 1; i <= 11; i++) {
        uint8_t *p = NULL;
        size_t len = 99;
        int64_t ms = 0;
        CHECK_OR_RETURN(bm_spool_cursor_next(c, &seq, &p, &len, &ms, &err) == 1);
        char buf[128];
        size_t elen = i == 11 ? 0 : s_payload(i, buf, sizeof buf);
        bool same = seq == i && len == elen && memcmp(p, buf, len) == 0;
        free(p);
        CHECK_OR_RETURN(same);
        CHECK_OR_RETURN(ms >= before && ms <= after);
    }
    uint8_t *p;
    size_t len;
    CHECK_OR_RETURN(bm_spool_cursor_next(c, &seq, &p, &len, NULL, &err) == 0);
    /* The cursor follows appends made after it reached the end. */
    CHECK_OR_RETURN(s_append_n(sp, 12, 1) == 0);
    CHECK_OR_RETURN(bm_spool_cursor_next(c, &seq, &p, &len, NULL, &err) == 1 && seq == 12);
    free(p);
    CHECK_OR_RETURN(bm_spool_cursor_next(c, &seq, &p, &len, NULL, &err) == 0);

    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.entries == 12 && st.next_seq == 13 && st.acked_seq == 0);
    CHECK_OR_RETURN(st.oldest_unacked_ms >= before && st.oldest_unacked_ms <= after);
    for (uint64_t i = 1; i <= 12; i++)
        CHECK_OR_RETURN(bm_spool_ack(sp, i, &err) == 0);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.entries == 0 && st.acked_seq == 12 && st.oldest_unacked_ms == 0);
    CHECK_OR_RETURN(s_expect_range(sp, 1, 0) == 0);
    CHECK_OR_RETURN(bm_spool_cursor_next(c, &seq, &p, &len, NULL, &err) == 0);
    bm_spool_cursor_destroy(&c);

    /* Too large a payload is refused without touching the spool. */
    char small[4] = "abc";
    CHECK_OR_RETURN(bm_spool_append(sp, small, (size_t)BM_SPOOL_MAX_PAYLOAD + 1, &seq, &err) == -1);
    CHECK_OR_RETURN(strstr(err.msg, "exceeds the limit") != NULL);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.next_seq == 13);

    /* A second process (or open) on the same directory is refused. */
    bm_spool_t *again = bm_spool_open(dir, 1 << 20, &err);
    CHECK_OR_RETURN(again == NULL && strstr(err.msg, "in use") != NULL);
    bm_spool_close(&sp);
    bm_spool_close(&sp);
    CHECK_OR_RETURN(sp == NULL);
}

static void test_reopen(void)
{
    char dir[256], id[40];
    bm_err_t err;
    s_dir(dir, sizeof dir, "reopen");
    bm_spool_t *sp = bm_spool_open(dir, 1 << 20, &err);
    CHECK_OR_RETURN(sp != NULL);
    snprintf(id, sizeof id, "%s", bm_spool_stream_id(sp));
    CHECK_OR_RETURN(s_append_n(sp, 1, 5) == 0);
    CHECK_OR_RETURN(bm_spool_ack(sp, 1, &err) == 0 && bm_spool_ack(sp, 2, &err) == 0);
    bm_spool_close(&sp);

    sp = bm_spool_open(dir, 1 << 20, &err);
    CHECK_OR_RETURN(sp != NULL);
    CHECK_OR_RETURN(strcmp(id, bm_spool_stream_id(sp)) == 0);
    bm_spool_stats_t st;
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.next_seq == 6 && st.acked_seq == 2 && st.entries == 3 && st.torn_bytes_cut == 0);
    CHECK_OR_RETURN(s_expect_range(sp, 3, 5) == 0);
    CHECK_OR_RETURN(s_append_n(sp, 6, 1) == 0);
    bm_spool_close(&sp);
}

static void test_out_of_order_acks(void)
{
    char dir[256];
    bm_err_t err;
    s_dir(dir, sizeof dir, "ooo");
    bm_spool_t *sp = bm_spool_open(dir, 1 << 20, &err);
    CHECK_OR_RETURN(sp != NULL);
    CHECK_OR_RETURN(s_append_n(sp, 1, 10) == 0);
    CHECK_OR_RETURN(bm_spool_ack(sp, 5, &err) == 0);
    CHECK_OR_RETURN(bm_spool_ack(sp, 3, &err) == 0);
    CHECK_OR_RETURN(bm_spool_ack(sp, 7, &err) == 0);
    CHECK_OR_RETURN(bm_spool_ack(sp, 7, &err) == 0);  /* idempotent */
    CHECK_OR_RETURN(bm_spool_ack(sp, 0, &err) == 0);  /* unknown: ignored */
    CHECK_OR_RETURN(bm_spool_ack(sp, 11, &err) == 0); /* not appended yet: ignored */
    bm_spool_stats_t st;
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.acked_seq == 0 && st.entries == 7);
    uint64_t want1[] = {1, 2, 4, 6, 8, 9, 10};
    CHECK_OR_RETURN(s_expect_entries(sp, want1, 7) == 0);

    /* Cumulative position moves over the acks already seen. */
    CHECK_OR_RETURN(bm_spool_ack(sp, 1, &err) == 0);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.acked_seq == 1 && st.entries == 6);
    CHECK_OR_RETURN(bm_spool_ack(sp, 2, &err) == 0);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.acked_seq == 3 && st.entries == 5);
    CHECK_OR_RETURN(bm_spool_ack(sp, 4, &err) == 0);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.acked_seq == 5 && st.entries == 4);

    /* Seek: the next read is the first unacked entry >= 7. */
    bm_spool_cursor_t *c = bm_spool_cursor_new(sp, &err);
    CHECK_OR_RETURN(c != NULL);
    CHECK_OR_RETURN(bm_spool_cursor_seek(c, 7, &err) == 0);
    uint64_t seq;
    uint8_t *p;
    size_t len;
    CHECK_OR_RETURN(bm_spool_cursor_next(c, &seq, &p, &len, NULL, &err) == 1);
    free(p);
    CHECK_OR_RETURN(seq == 8);
    CHECK_OR_RETURN(bm_spool_cursor_seek(c, 2, &err) == 0);
    CHECK_OR_RETURN(bm_spool_cursor_next(c, &seq, &p, &len, NULL, &err) == 1);
    free(p);
    CHECK_OR_RETURN(seq == 6);
    bm_spool_cursor_destroy(&c);

    /* The cumulative position survives a reopen; acks above it may not
     * (documented: a forgotten ack means a resend). */
    bm_spool_close(&sp);
    sp = bm_spool_open(dir, 1 << 20, &err);
    CHECK_OR_RETURN(sp != NULL);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.acked_seq == 5 && st.next_seq == 11);
    CHECK_OR_RETURN(st.entries == 5);
    CHECK_OR_RETURN(s_expect_range(sp, 6, 10) == 0);
    bm_spool_close(&sp);
}

static void test_rollover_and_delete(void)
{
    char dir[256], path[512];
    bm_err_t err;
    s_dir(dir, sizeof dir, "roll");
    /* 100-byte payloads: 128 bytes per entry, two entries per segment. */
    bm_spool_t *sp = bm_spool_open(dir, 200, &err);
    CHECK_OR_RETURN(sp != NULL);
    char payload[100];
    memset(payload, 'x', sizeof payload);
    for (uint64_t i = 1; i <= 10; i++) {
        uint64_t seq;
        CHECK_OR_RETURN(bm_spool_append(sp, payload, sizeof payload, &seq, &err) == 0 && seq == i);
    }
    CHECK_OR_RETURN(bm_spool_sync(sp, &err) == 0);
    CHECK_OR_RETURN(s_count_segments(dir) == 5);
    for (uint64_t first = 1; first <= 9; first += 2) {
        s_seg(path, sizeof path, dir, first);
        CHECK_OR_RETURN(s_file_size(path) == 2 * (HDR + 100));
    }
    bm_spool_stats_t st;
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.bytes == 10 * (HDR + 100) && (long long)st.bytes == s_sum_segments(dir));

    CHECK_OR_RETURN(bm_spool_ack(sp, 1, &err) == 0);
    CHECK_OR_RETURN(s_count_segments(dir) == 5);
    CHECK_OR_RETURN(bm_spool_ack(sp, 2, &err) == 0);
    s_seg(path, sizeof path, dir, 1);
    CHECK_OR_RETURN(!s_exists(path) && s_count_segments(dir) == 4);
    {
        /* What a power loss right now leaves: the state file on disk already
         * covers the deleted segment, so the copy opens cleanly. */
        char copy[256];
        s_dir(copy, sizeof copy, "roll-copy");
        CHECK_OR_RETURN(s_copy_dir(dir, copy) == 0);
        bm_spool_t *cp = bm_spool_open(copy, 200, &err);
        if (!cp)
            fprintf(stderr, "open copy: %s\n", err.msg);
        CHECK_OR_RETURN(cp != NULL);
        bm_spool_stats(cp, &st);
        CHECK_OR_RETURN(st.acked_seq == 2 && st.next_seq == 11 && st.entries == 8);
        bm_spool_close(&cp);
    }
    CHECK_OR_RETURN(bm_spool_ack(sp, 4, &err) == 0);
    CHECK_OR_RETURN(s_count_segments(dir) == 4);
    CHECK_OR_RETURN(bm_spool_ack(sp, 3, &err) == 0);
    s_seg(path, sizeof path, dir, 3);
    CHECK_OR_RETURN(!s_exists(path) && s_count_segments(dir) == 3);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.bytes == 6 * (HDR + 100) && (long long)st.bytes == s_sum_segments(dir));
    CHECK_OR_RETURN(st.entries == 6);

    /* A cursor positioned in a segment that gets deleted moves on. */
    bm_spool_cursor_t *c = bm_spool_cursor_new(sp, &err);
    CHECK_OR_RETURN(c != NULL);
    uint64_t seq;
    uint8_t *p;
    size_t len;
    CHECK_OR_RETURN(bm_spool_cursor_next(c, &seq, &p, &len, NULL, &err) == 1 && seq == 5);
    free(p);
    for (uint64_t i = 5; i <= 7; i++)
        CHECK_OR_RETURN(bm_spool_ack(sp, i, &err) == 0);
    CHECK_OR_RETURN(bm_spool_cursor_next(c, &seq, &p, &len, NULL, &err) == 1 && seq == 8);
    free(p);
    bm_spool_cursor_destroy(&c);

    /* The last segment is full, so once everything is acked it goes too. */
    for (uint64_t i = 8; i <= 10; i++)
        CHECK_OR_RETURN(bm_spool_ack(sp, i, &err) == 0);
    CHECK_OR_RETURN(s_count_segments(dir) == 0);
    s_path(path, sizeof path, dir, "state");
    CHECK_OR_RETURN(s_exists(path));
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.entries == 0 && st.bytes == 0 && st.next_seq == 11 && st.acked_seq == 10);
    bm_spool_close(&sp);

    /* Sequences never go back, even with no segment left. */
    sp = bm_spool_open(dir, 200, &err);
    CHECK_OR_RETURN(sp != NULL);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.next_seq == 11 && st.acked_seq == 10 && st.entries == 0);
    CHECK_OR_RETURN(bm_spool_append(sp, payload, sizeof payload, &seq, &err) == 0 && seq == 11);
    CHECK_OR_RETURN(bm_spool_sync(sp, &err) == 0);
    s_seg(path, sizeof path, dir, 11);
    CHECK_OR_RETURN(s_exists(path) && s_count_segments(dir) == 1);
    bm_spool_close(&sp);

    /* A fully acked small tail is kept, and the sequence still moves on. */
    sp = bm_spool_open(dir, 200, &err);
    CHECK_OR_RETURN(sp != NULL);
    CHECK_OR_RETURN(bm_spool_ack(sp, 11, &err) == 0);
    bm_spool_close(&sp);
    sp = bm_spool_open(dir, 200, &err);
    CHECK_OR_RETURN(sp != NULL);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.next_seq == 12 && st.acked_seq == 11 && st.entries == 0);
    CHECK_OR_RETURN(bm_spool_append(sp, payload, sizeof payload, &seq, &err) == 0 && seq == 12);
    bm_spool_close(&sp);
}

/* Opens a copy of src whose last segment was cut to `keep` bytes, and checks
 * recovery.  last_seq: sequence of the entry that was cut; counted: whether
 * the state file of src already counted it (then its sequence is never
 * reused and the next append gets last_seq + 1). */
static void s_check_torn(const char *src, const char *dst, uint64_t seg_first,
                         long long keep, long long last_start, long long full,
                         uint64_t last_seq, bool counted, bool flip)
{
    char path[512];
    bm_err_t err;
    CHECK_OR_RETURN(s_copy_dir(src, dst) == 0);
    s_seg(path, sizeof path, dst, seg_first);
    if (flip)
        CHECK_OR_RETURN(s_flip_byte(path, keep) == 0);
    else
        CHECK_OR_RETURN(truncate(path, keep) == 0);
    bm_spool_t *sp = bm_spool_open(dst, 1 << 20, &err);
    if (!sp)
        fprintf(stderr, "open: %s\n", err.msg);
    CHECK_OR_RETURN(sp != NULL);
    bm_spool_stats_t st;
    bm_spool_stats(sp, &st);
    long long cut = flip ? full - last_start : keep - last_start;
    CHECK_OR_RETURN((long long)st.torn_bytes_cut == cut);
    CHECK_OR_RETURN(s_file_size(path) == last_start);
    CHECK_OR_RETURN(s_expect_range(sp, 1, last_seq - 1) == 0);
    uint64_t next = counted ? last_seq + 1 : last_seq;
    CHECK_OR_RETURN(st.next_seq == next);
    CHECK_OR_RETURN(s_append_n(sp, next, 1) == 0);
    uint64_t want[64];
    size_t n = 0;
    for (uint64_t i = 1; i < last_seq; i++)
        want[n++] = i;
    want[n++] = next;
    CHECK_OR_RETURN(s_expect_entries(sp, want, n) == 0);
    bm_spool_close(&sp);

    /* Once more after a reopen: nothing else is cut, the lost sequence stays
     * lost, and acking everything works across it. */
    sp = bm_spool_open(dst, 1 << 20, &err);
    CHECK_OR_RETURN(sp != NULL);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.torn_bytes_cut == 0 && st.next_seq == next + 1 && st.entries == last_seq);
    CHECK_OR_RETURN(s_expect_entries(sp, want, n) == 0);
    for (size_t i = 0; i < n; i++)
        CHECK_OR_RETURN(bm_spool_ack(sp, want[i], &err) == 0);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.entries == 0 && st.acked_seq == next);
    bm_spool_close(&sp);
}

static void test_torn_tail_every_offset(void)
{
    char counted[256], uncounted[256], dst[256], path[512];
    bm_err_t err;
    s_dir(counted, sizeof counted, "torn-counted");
    s_dir(uncounted, sizeof uncounted, "torn-uncounted");
    s_dir(dst, sizeof dst, "torn-dst");

    /* uncounted: copied while the spool is open, after a sync, so its state
     * file does not count the entries yet (a power loss right after the
     * sync).  counted: the spool itself after close, whose state file does
     * (as if the disk lost data it had confirmed). */
    bm_spool_t *sp = bm_spool_open(counted, 1 << 20, &err);
    CHECK_OR_RETURN(sp != NULL);
    CHECK_OR_RETURN(s_append_n(sp, 1, 4) == 0);
    CHECK_OR_RETURN(bm_spool_sync(sp, &err) == 0);
    CHECK_OR_RETURN(s_copy_dir(counted, uncounted) == 0);
    bm_spool_close(&sp);

    char buf[128];
    size_t last_len = s_payload(4, buf, sizeof buf);
    s_seg(path, sizeof path, counted, 1);
    long long full = s_file_size(path);
    long long last_start = full - (long long)(HDR + last_len);
    CHECK_OR_RETURN(full > 0 && last_start > 0);

    for (long long keep = last_start; keep < full; keep++) {
        int before = bm_test_failures;
        s_check_torn(uncounted, dst, 1, keep, last_start, full, 4, false, false);
        s_check_torn(counted, dst, 1, keep, last_start, full, 4, true, false);
        if (bm_test_failures != before) {
            fprintf(stderr, "  (torn tail cut at offset %lld of %lld)\n", keep, full);
            return;
        }
    }
    /* A flipped byte anywhere in the last entry (header or payload) is cut. */
    for (long long at = last_start; at < full; at++) {
        int before = bm_test_failures;
        s_check_torn(uncounted, dst, 1, at, last_start, full, 4, false, true);
        if (bm_test_failures != before) {
            fprintf(stderr, "  (flipped byte at offset %lld of %lld)\n", at, full);
            return;
        }
    }
}

/* An entry with a valid checksum but the wrong sequence at the end of the
 * tail (a duplicated write) is cut like a torn one. */
static void test_tail_sequence_break(void)
{
    char dir[256], path[512];
    bm_err_t err;
    s_dir(dir, sizeof dir, "seqbreak");
    bm_spool_t *sp = bm_spool_open(dir, 1 << 20, &err);
    CHECK_OR_RETURN(sp != NULL);
    CHECK_OR_RETURN(s_append_n(sp, 1, 3) == 0);
    CHECK_OR_RETURN(bm_spool_sync(sp, &err) == 0);
    char copy[256];
    s_dir(copy, sizeof copy, "seqbreak-copy");
    CHECK_OR_RETURN(s_copy_dir(dir, copy) == 0); /* state does not count the entries */
    bm_spool_close(&sp);

    char buf[128];
    size_t len1 = s_payload(1, buf, sizeof buf), len2 = s_payload(2, buf, sizeof buf);
    size_t e2 = HDR + len2;
    unsigned char entry[256];
    s_seg(path, sizeof path, copy, 1);
    long long size = s_file_size(path);
    int fd = open(path, O_RDWR);
    CHECK_OR_RETURN(fd >= 0);
    bool ok = pread(fd, entry, e2, (off_t)(HDR + len1)) == (ssize_t)e2
              && pwrite(fd, entry, e2, size) == (ssize_t)e2;
    close(fd);
    CHECK_OR_RETURN(ok);
    sp = bm_spool_open(copy, 1 << 20, &err);
    CHECK_OR_RETURN(sp != NULL);
    bm_spool_stats_t st;
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.torn_bytes_cut == e2 && st.next_seq == 4 && s_file_size(path) == size);
    CHECK_OR_RETURN(s_expect_range(sp, 1, 3) == 0);
    bm_spool_close(&sp);
}

static void test_corrupt_older_segment(void)
{
    char dir[256], path[512];
    bm_err_t err;
    s_dir(dir, sizeof dir, "older");
    bm_spool_t *sp = bm_spool_open(dir, 100, &err);
    CHECK_OR_RETURN(sp != NULL);
    char payload[40];
    memset(payload, 'y', sizeof payload);
    for (int i = 0; i < 6; i++) /* 68 bytes each: 2 per segment */
        CHECK_OR_RETURN(bm_spool_append(sp, payload, sizeof payload, NULL, &err) == 0);
    bm_spool_close(&sp);
    CHECK_OR_RETURN(s_count_segments(dir) == 3);
    s_seg(path, sizeof path, dir, 1);
    CHECK_OR_RETURN(s_flip_byte(path, 68 + HDR + 10) == 0); /* payload of entry 2 */

    sp = bm_spool_open(dir, 100, &err);
    CHECK_OR_RETURN(sp != NULL);
    bm_spool_stats_t st;
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.torn_bytes_cut == 0 && st.next_seq == 7);
    bm_spool_cursor_t *c = bm_spool_cursor_new(sp, &err);
    CHECK_OR_RETURN(c != NULL);
    uint64_t seq;
    uint8_t *p = NULL;
    size_t len;
    CHECK_OR_RETURN(bm_spool_cursor_next(c, &seq, &p, &len, NULL, &err) == 1 && seq == 1);
    free(p);
    CHECK_OR_RETURN(bm_spool_cursor_next(c, &seq, &p, &len, NULL, &err) == -1);
    CHECK_OR_RETURN(strstr(err.msg, "seg-00000000000000000001.log") != NULL);
    CHECK_OR_RETURN(strstr(err.msg, "checksum") != NULL);
    /* Reported again, not skipped. */
    CHECK_OR_RETURN(bm_spool_cursor_next(c, &seq, &p, &len, NULL, &err) == -1);
    /* A deliberate seek past it moves on. */
    CHECK_OR_RETURN(bm_spool_cursor_seek(c, 3, &err) == 0);
    CHECK_OR_RETURN(bm_spool_cursor_next(c, &seq, &p, &len, NULL, &err) == 1 && seq == 3);
    free(p);
    bm_spool_cursor_destroy(&c);

    /* A damaged header in an older segment is reported too. */
    bm_spool_close(&sp);
    s_seg(path, sizeof path, dir, 3);
    CHECK_OR_RETURN(s_flip_byte(path, 0) == 0);
    sp = bm_spool_open(dir, 100, &err);
    CHECK_OR_RETURN(sp != NULL);
    c = bm_spool_cursor_new(sp, &err);
    CHECK_OR_RETURN(c != NULL);
    CHECK_OR_RETURN(bm_spool_cursor_seek(c, 3, &err) == 0);
    CHECK_OR_RETURN(bm_spool_cursor_next(c, &seq, &p, &len, NULL, &err) == -1);
    CHECK_OR_RETURN(strstr(err.msg, "seg-00000000000000000003.log") != NULL);
    bm_spool_cursor_destroy(&c);
    bm_spool_close(&sp);
}

static void test_corrupt_state(void)
{
    char dir[256], path[512];
    bm_err_t err;
    s_dir(dir, sizeof dir, "state");
    bm_spool_t *sp = bm_spool_open(dir, 1 << 20, &err);
    CHECK_OR_RETURN(sp != NULL);
    CHECK_OR_RETURN(s_append_n(sp, 1, 3) == 0);
    bm_spool_close(&sp);
    s_path(path, sizeof path, dir, "state");
    long long size = s_file_size(path);
    CHECK_OR_RETURN(size > 0);

    for (long long off = 0; off < size; off += 7) {
        CHECK_OR_RETURN(s_flip_byte(path, off) == 0);
        sp = bm_spool_open(dir, 1 << 20, &err);
        CHECK_OR_RETURN(sp == NULL);
        CHECK_OR_RETURN(strstr(err.msg, path) != NULL && strstr(err.msg, "corrupt") != NULL);
        CHECK_OR_RETURN(s_flip_byte(path, off) == 0);
    }
    CHECK_OR_RETURN(truncate(path, size - 1) == 0);
    sp = bm_spool_open(dir, 1 << 20, &err);
    CHECK_OR_RETURN(sp == NULL && strstr(err.msg, path) != NULL);

    CHECK_OR_RETURN(unlink(path) == 0);
    sp = bm_spool_open(dir, 1 << 20, &err);
    CHECK_OR_RETURN(sp == NULL && strstr(err.msg, path) != NULL && strstr(err.msg, "missing") != NULL);
    /* Nothing was touched by the refusals. */
    CHECK_OR_RETURN(s_count_segments(dir) == 1);
}

static void test_write_failure(void)
{
    char dir[256], path[512];
    bm_err_t err;
    s_dir(dir, sizeof dir, "fsize");
    bm_spool_t *sp = bm_spool_open(dir, 1 << 20, &err);
    CHECK_OR_RETURN(sp != NULL);
    CHECK_OR_RETURN(s_append_n(sp, 1, 3) == 0);
    CHECK_OR_RETURN(bm_spool_sync(sp, &err) == 0);
    s_seg(path, sizeof path, dir, 1);
    long long size = s_file_size(path);

    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ign.sa_mask);
    CHECK_OR_RETURN(sigaction(SIGXFSZ, &ign, &old) == 0);
    struct rlimit saved, lim;
    CHECK_OR_RETURN(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    lim = saved;
    lim.rlim_cur = (rlim_t)size + 10; /* a partial write, then EFBIG */
    CHECK_OR_RETURN(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    char big[100];
    memset(big, 'z', sizeof big);
    uint64_t seq = 0;
    int rc = bm_spool_append(sp, big, sizeof big, &seq, &err);
    int rc2 = bm_spool_append(sp, big, sizeof big, &seq, &err);
    CHECK_OR_RETURN(setrlimit(RLIMIT_FSIZE, &saved) == 0);
    CHECK_OR_RETURN(sigaction(SIGXFSZ, &old, NULL) == 0);
    CHECK_OR_RETURN(rc == -1 && rc2 == -1);
    CHECK_OR_RETURN(strstr(err.msg, "could not append") != NULL && strstr(err.msg, path) != NULL);
    CHECK_OR_RETURN(s_file_size(path) == size);
    bm_spool_stats_t st;
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.next_seq == 4 && st.entries == 3 && (long long)st.bytes == size);

    /* Still usable: the next append gets the next sequence. */
    CHECK_OR_RETURN(s_append_n(sp, 4, 2) == 0);
    CHECK_OR_RETURN(s_expect_range(sp, 1, 5) == 0);
    bm_spool_close(&sp);
    sp = bm_spool_open(dir, 1 << 20, &err);
    CHECK_OR_RETURN(sp != NULL);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.torn_bytes_cut == 0 && st.next_seq == 6);
    CHECK_OR_RETURN(s_expect_range(sp, 1, 5) == 0);
    bm_spool_close(&sp);
}

static void test_stats(void)
{
    char dir[256];
    bm_err_t err;
    s_dir(dir, sizeof dir, "stats");
    bm_spool_t *sp = bm_spool_open(dir, 150, &err);
    CHECK_OR_RETURN(sp != NULL);
    /* Distinct append times, so a wrong entry's time cannot pass: poll the
     * clock until it ticks between appends. */
    for (uint64_t i = 1; i <= 12; i++) {
        int64_t t0 = bm_now_ms();
        while (bm_now_ms() == t0)
            ;
        CHECK_OR_RETURN(s_append_n(sp, i, 1) == 0);
    }
    int64_t times[13] = {0};
    bm_spool_cursor_t *c = bm_spool_cursor_new(sp, &err);
    CHECK_OR_RETURN(c != NULL);
    for (int i = 1; i <= 12; i++) {
        uint64_t seq;
        uint8_t *p;
        size_t len;
        CHECK_OR_RETURN(bm_spool_cursor_next(c, &seq, &p, &len, &times[i], &err) == 1);
        free(p);
    }
    bm_spool_cursor_destroy(&c);
    bm_spool_stats_t st;
    bm_spool_stats(sp, &st);
    for (int i = 2; i <= 12; i++)
        CHECK_OR_RETURN(times[i] > times[i - 1]);
    CHECK_OR_RETURN(st.entries == 12 && st.oldest_unacked_ms == times[1]);
    CHECK_OR_RETURN((long long)st.bytes == s_sum_segments(dir));
    CHECK_OR_RETURN(s_count_segments(dir) > 2);
    /* The oldest unacked entry moves with the cumulative position, across
     * segments, and ignores acks above it. */
    CHECK_OR_RETURN(bm_spool_ack(sp, 3, &err) == 0);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.oldest_unacked_ms == times[1] && st.entries == 11);
    for (int i = 1; i <= 9; i++) {
        if (i == 3)
            continue;
        CHECK_OR_RETURN(bm_spool_ack(sp, (uint64_t)i, &err) == 0);
        bm_spool_stats(sp, &st);
        int next = i == 2 ? 4 : i + 1;
        CHECK_OR_RETURN(st.oldest_unacked_ms == times[next]);
        CHECK_OR_RETURN(st.acked_seq == (uint64_t)(i == 2 ? 3 : i));
        CHECK_OR_RETURN((long long)st.bytes == s_sum_segments(dir));
    }
    bm_spool_close(&sp);
    sp = bm_spool_open(dir, 150, &err);
    CHECK_OR_RETURN(sp != NULL);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.acked_seq == 9 && st.entries == 3 && st.oldest_unacked_ms == times[10]);
    CHECK_OR_RETURN((long long)st.bytes == s_sum_segments(dir));
    bm_spool_close(&sp);
}

/* Bytes the allocator has handed out and not got back (0 when a sanitizer
 * or valgrind replaces malloc and does not report it). */
static long long s_heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (long long)mi.uordblks;
}

static void test_bulk(void)
{
    char dir[256];
    bm_err_t err;
    s_dir(dir, sizeof dir, "bulk");
    const uint64_t n = 100000, first_phase = 70000;
    bm_spool_t *sp = bm_spool_open(dir, 256 * 1024, &err);
    CHECK_OR_RETURN(sp != NULL);
    CHECK_OR_RETURN(s_append_n(sp, 1, first_phase) == 0);
    bm_spool_stats_t st;
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.entries == first_phase);
    /* Acks up to 65536 above the cumulative position are kept; further
     * ahead they are ignored (the entry is resent later). */
    CHECK_OR_RETURN(bm_spool_ack(sp, 65537, &err) == 0);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.entries == first_phase);
    CHECK_OR_RETURN(bm_spool_ack(sp, 65536, &err) == 0);
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(st.entries == first_phase - 1 && st.acked_seq == 0);

    bm_spool_cursor_t *c = bm_spool_cursor_new(sp, &err);
    CHECK_OR_RETURN(c != NULL);
    long long heap_start = s_heap_in_use();
    uint64_t next_read = 1, last_acked = 0;
    for (uint64_t i = first_phase + 1; i <= n + 1000; i++) {
        char buf[128];
        uint64_t seq;
        if (i <= n)
            CHECK_OR_RETURN(s_append_n(sp, i, 1) == 0);
        /* Drain in bursts, acknowledging what was read, lagging behind. */
        if (i % 1000 == 0) {
            for (;;) {
                uint8_t *p;
                size_t plen;
                int r = bm_spool_cursor_next(c, &seq, &p, &plen, NULL, &err);
                CHECK_OR_RETURN(r >= 0);
                if (r == 0)
                    break;
                if (next_read == 65536)
                    next_read++; /* acked above: skipped by the cursor */
                bool ok = seq == next_read && plen == s_payload(seq, buf, sizeof buf)
                          && memcmp(p, buf, plen) == 0;
                free(p);
                CHECK_OR_RETURN(ok);
                next_read++;
                while (last_acked + 500 < seq)
                    CHECK_OR_RETURN(bm_spool_ack(sp, ++last_acked, &err) == 0);
            }
        }
    }
    while (last_acked < n)
        CHECK_OR_RETURN(bm_spool_ack(sp, ++last_acked, &err) == 0);
    long long heap_end = s_heap_in_use();
    bm_spool_stats(sp, &st);
    CHECK_OR_RETURN(next_read == n + 1);
    if (st.acked_seq != n)
        fprintf(stderr, "bulk: entries %" PRIu64 " acked %" PRIu64 " next %" PRIu64 "\n", st.entries, st.acked_seq, st.next_seq);
    CHECK_OR_RETURN(st.entries == 0 && st.acked_seq == n && st.next_seq == n + 1);
    CHECK_OR_RETURN(s_count_segments(dir) <= 1);
    /* Memory does not follow the number of entries: 30000 more appended,
     * 100000 read and acked, and the heap is where it was. */
    if (heap_start > 0 && heap_end > 0)
        CHECK_OR_RETURN(heap_end - heap_start < 64 * 1024);
    bm_spool_cursor_destroy(&c);
    bm_spool_close(&sp);
}

int main(void)
{
    bm_log_init("test_spool", BM_LOG_ERROR); /* torn tails are expected here */
    const char *tmp = getenv("TMPDIR");
    snprintf(g_root, sizeof g_root, "%s/test_spool-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_root)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_reopen();
    test_out_of_order_acks();
    test_rollover_and_delete();
    test_torn_tail_every_offset();
    test_tail_sequence_break();
    test_corrupt_older_segment();
    test_corrupt_state();
    test_write_failure();
    test_stats();
    test_bulk();
    bm_test_rmrf(g_root);
    if (bm_test_failures) {
        fprintf(stderr, "test_spool: %d failure(s)\n", bm_test_failures);
        return 1;
    }
    printf("test_spool: all tests passed\n");
    return 0;
}
