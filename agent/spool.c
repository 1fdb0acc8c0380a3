/* spool: the agent's durable, append-only, checksummed store-and-forward log;
 * see spool.h for the contract and docs/spool.md for the format.
 *
 * Owns the spool directory (segment files, the state file, an advisory lock
 * on the directory), the open tail segment, an index of segment files (first
 * sequence and size of each, nothing per entry) and a bitmap of acks that
 * arrived ahead of the cumulative position. */
#include "spool.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bm_crc32c.h"
#include "bm_log.h"
#include "bm_time.h"
#include "bm_wire.h"

/* Entry header, little-endian:
 *   0 magic u32 | 4 payload length u32 | 8 sequence u64 | 16 append time ms i64
 *   24 CRC-32C u32 of bytes 0..23 and the payload */
#define S_HDR 28
#define S_HDR_CRC_OFF 24
#define S_MAGIC 0x31505342u /* "BSP1" */

/* State file, little-endian, fixed size:
 *   0 magic u32 | 4 version u32 | 8 stream id, 32 hex chars | 40 next_seq u64
 *   48 acked_seq u64 | 56 hole count u32 | 60 zero u32
 *   64 holes: S_MAX_HOLES x {start u64, end u64} (unused ones zero)
 *   320 CRC-32C u32 of bytes 0..319 */
#define S_STATE_MAGIC 0x54534D42u /* "BMST" */
#define S_STATE_VERSION 1u
#define S_MAX_HOLES 16
#define S_STATE_CRC_OFF (64 + S_MAX_HOLES * 16)
#define S_STATE_SIZE (S_STATE_CRC_OFF + 4)
#define S_STATE_NAME "state"
#define S_STATE_TMP "state.tmp"

#define S_SEG_NAME_LEN 28 /* "seg-" + 20 digits + ".log" */
#define S_ACK_WINDOW 65536u /* out-of-order acks remembered above acked_seq */
#define S_PERSIST_MS 1000
#define S_PERSIST_ACKS 1000
#define S_READ_BUF (64u * 1024)
#define S_DEFAULT_SEGMENT (64u * 1024 * 1024)

typedef struct {
    uint64_t first; /* sequence of its first entry (from the file name) */
    uint64_t bytes; /* file size; for the open tail: bytes of whole entries */
} s_seg_t;

/* Sequences [start, end) that will never exist: entries lost from disk after
 * the state file had already counted them (storage that lost fsynced data, or
 * a damaged copy).  They count as acknowledged. */
typedef struct {
    uint64_t start, end;
} s_hole_t;

/* Buffered positional reader over one segment file.  It never buffers bytes
 * past the limit given by its caller, so a failed append that was rewritten
 * later can never be read from a stale buffer. */
typedef struct {
    int fd;
    uint8_t *buf;
    size_t cap;
    uint64_t off; /* file offset of buf[0] */
    size_t len;   /* valid bytes in buf */
} s_reader_t;

struct bm_spool {
    char *dir;                /* spool directory, for messages */
    int dir_fd;               /* open directory; holds the flock */
    uint64_t segment_bytes;   /* roll to a new segment at this size */
    char stream_id[BM_STREAM_ID_LEN + 1];
    s_seg_t *segs;            /* index of segment files, by first sequence */
    size_t nsegs, segs_cap;
    int tail_fd;              /* last segment, open for appending; -1 if none */
    bool tail_dirty;          /* appended since the last fdatasync */
    bool dir_dirty;           /* a segment was created or removed since fsync */
    uint64_t next_seq;
    uint64_t acked_seq;
    uint8_t *ack_bits;        /* ring: bit (seq % S_ACK_WINDOW), for
                               * acked_seq < seq <= acked_seq + S_ACK_WINDOW */
    uint64_t acked_above;     /* bits set in ack_bits */
    s_hole_t holes[S_MAX_HOLES];
    size_t nholes;
    bool opened;              /* open completed: close may write the state */
    bool state_dirty;         /* acked position differs from the state file */
    uint64_t persisted_next;  /* next_seq as last written to the state file */
    uint64_t acks_since_persist;
    int64_t last_persist_mono;
    uint64_t torn_bytes_cut;
    int64_t oldest_unacked_ms;
    bool head_valid;          /* head_* locate the entry acked_seq + 1 */
    uint64_t head_first, head_off, head_seq;
    bool head_warned;
};

struct bm_spool_cursor {
    bm_spool_t *spool;
    s_reader_t rd;            /* rd.fd: current segment, -1 if none */
    uint64_t seg_first;       /* first sequence of the current segment */
    uint64_t off;             /* offset of the next entry in it */
    uint64_t expect;          /* sequence expected at off */
    uint64_t min_seq;         /* entries below this are skipped (seek) */
};

/* ---- little helpers ---- */

static void s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t s_get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void s_seg_name(char *buf, size_t size, uint64_t first)
{
    snprintf(buf, size, "seg-%020" PRIu64 ".log", first);
}

/* Parses a segment file name; returns false for anything else. */
static bool s_seg_name_parse(const char *name, uint64_t *first)
{
    if (strlen(name) != S_SEG_NAME_LEN || strncmp(name, "seg-", 4) != 0
        || strcmp(name + 24, ".log") != 0)
        return false;
    uint64_t v = 0;
    for (int i = 4; i < 24; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        unsigned d = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v == 0)
        return false;
    *first = v;
    return true;
}

/* Largest index with segs[i].first <= seq (0 if seq is below all); -1 if
 * there are no segments. */
static long s_seg_for(const bm_spool_t *s, uint64_t seq)
{
    if (s->nsegs == 0)
        return -1;
    size_t lo = 0, hi = s->nsegs;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->segs[mid].first <= seq)
            lo = mid;
        else
            hi = mid;
    }
    return (long)lo;
}

/* Index of the segment whose first sequence is exactly first, or -1 (it was
 * deleted since). */
static long s_seg_find(const bm_spool_t *s, uint64_t first)
{
    long i = s_seg_for(s, first);
    return (i >= 0 && s->segs[i].first == first) ? i : -1;
}

/* One past the last sequence segment i can hold. */
static uint64_t s_seg_end(const bm_spool_t *s, size_t i)
{
    return i + 1 < s->nsegs ? s->segs[i + 1].first : s->next_seq;
}

static bool s_is_open_tail(const bm_spool_t *s, size_t i)
{
    return s->tail_fd >= 0 && i + 1 == s->nsegs;
}

static int s_full_pread(int fd, void *dst, size_t n, uint64_t off)
{
    uint8_t *p = dst;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0) {
            errno = EIO; /* the file shrank under us */
            return -1;
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* Reads n bytes at off; the caller guarantees off + n <= limit.  Returns 0
 * or -1 with errno. */
static int s_reader_read(s_reader_t *r, uint64_t off, void *dst, size_t n, uint64_t limit)
{
    if (off >= r->off && off + n <= r->off + r->len) {
        memcpy(dst, r->buf + (off - r->off), n);
        return 0;
    }
    if (n >= r->cap)
        return s_full_pread(r->fd, dst, n, off);
    size_t want = r->cap;
    if (limit - off < want)
        want = (size_t)(limit - off);
    r->len = 0;
    if (s_full_pread(r->fd, r->buf, want, off) < 0)
        return -1;
    r->off = off;
    r->len = want;
    memcpy(dst, r->buf, n);
    return 0;
}

static void s_reader_reset(s_reader_t *r, int fd)
{
    r->fd = fd;
    r->off = 0;
    r->len = 0;
}

typedef struct {
    uint32_t magic, len, crc;
    uint64_t seq;
    int64_t ms;
} s_hdr_t;

static void s_hdr_decode(const uint8_t *b, s_hdr_t *h)
{
    h->magic = s_get32(b);
    h->len = s_get32(b + 4);
    h->seq = s_get64(b + 8);
    h->ms = (int64_t)s_get64(b + 16);
    h->crc = s_get32(b + S_HDR_CRC_OFF);
}

/* ---- acknowledgement bookkeeping ---- */

static bool s_bit_get(const bm_spool_t *s, uint64_t seq)
{
    uint64_t b = seq % S_ACK_WINDOW;
    return (s->ack_bits[b / 8] >> (b % 8)) & 1;
}

static void s_bit_set(bm_spool_t *s, uint64_t seq, bool on)
{
    uint64_t b = seq % S_ACK_WINDOW;
    if (on)
        s->ack_bits[b / 8] |= (uint8_t)(1u << (b % 8));
    else
        s->ack_bits[b / 8] &= (uint8_t)~(1u << (b % 8));
}

static bool s_in_hole(const bm_spool_t *s, uint64_t seq)
{
    for (size_t i = 0; i < s->nholes; i++)
        if (seq >= s->holes[i].start && seq < s->holes[i].end)
            return true;
    return false;
}

static bool s_is_acked(const bm_spool_t *s, uint64_t seq)
{
    if (seq <= s->acked_seq)
        return true;
    if (seq <= s->acked_seq + S_ACK_WINDOW && s_bit_get(s, seq))
        return true;
    return s_in_hole(s, seq);
}

/* Moves acked_seq over acked entries and holes.  Returns true if it moved. */
static bool s_advance(bm_spool_t *s)
{
    bool moved = false;
    for (;;) {
        uint64_t n = s->acked_seq + 1;
        if (n < s->next_seq && s_bit_get(s, n)) {
            s_bit_set(s, n, false);
            s->acked_above--;
            s->acked_seq = n;
            moved = true;
            continue;
        }
        size_t h;
        for (h = 0; h < s->nholes && s->holes[h].start != n; h++)
            ;
        if (h == s->nholes)
            break;
        /* No ack bit can be set inside a hole (acks there are ignored), so
         * the ring stays consistent across the jump. */
        s->acked_seq = s->holes[h].end - 1;
        /* Keep the holes ordered: the state file requires it. */
        memmove(&s->holes[h], &s->holes[h + 1], (s->nholes - h - 1) * sizeof *s->holes);
        s->nholes--;
        moved = true;
    }
    return moved;
}

/* Keeps oldest_unacked_ms right after acked_seq moved: walks the header
 * chain from the last known head to entry acked_seq + 1, one header per
 * acknowledged entry.  A read problem is logged, not returned: the cursor
 * reports corruption properly, and the statistic must not fail an ack. */
static void s_oldest_refresh(bm_spool_t *s)
{
    uint64_t target = s->acked_seq + 1;
    if (target >= s->next_seq) {
        s->oldest_unacked_ms = 0;
        s->head_valid = false;
        return;
    }
    const char *why = NULL;
    char name[64];
    for (int guard = 0;; guard++) {
        long i = s->head_valid ? s_seg_find(s, s->head_first) : -1;
        if (i < 0 || s->head_seq > target) {
            i = s_seg_for(s, target);
            if (i < 0) {
                why = "no segment holds it";
                break;
            }
            s->head_valid = true;
            s->head_first = s->segs[i].first;
            s->head_off = 0;
            s->head_seq = s->head_first;
            if (guard > 2) {
                why = "cannot locate it";
                break;
            }
        }
        const s_seg_t *seg = &s->segs[i];
        if (s->head_off + S_HDR > seg->bytes) {
            if ((size_t)i + 1 < s->nsegs) {
                s->head_first = s->segs[i + 1].first;
                s->head_off = 0;
                s->head_seq = s->head_first;
                if (s->head_seq > target) {
                    why = "it lies between segments";
                    break;
                }
                continue;
            }
            why = "the spool ends before it";
            break;
        }
        uint8_t b[S_HDR];
        s_seg_name(name, sizeof name, seg->first);
        int fd = s_is_open_tail(s, (size_t)i) ? s->tail_fd
                                                : openat(s->dir_fd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            why = strerror(errno);
            break;
        }
        int rc = s_full_pread(fd, b, S_HDR, s->head_off);
        int saved = errno;
        if (fd != s->tail_fd)
            close(fd);
        if (rc < 0) {
            why = strerror(saved);
            break;
        }
        s_hdr_t h;
        s_hdr_decode(b, &h);
        if (h.magic != S_MAGIC || h.seq != s->head_seq) {
            why = "bad entry header";
            break;
        }
        if (h.seq == target) {
            s->oldest_unacked_ms = h.ms;
            return;
        }
        s->head_off += S_HDR + (uint64_t)h.len;
        s->head_seq++;
    }
    s->head_valid = false;
    if (!s->head_warned) {
        s->head_warned = true;
        bm_warn("spool", "cannot find the append time of entry %" PRIu64 " in \"%s\": %s",
                target, s->dir, why);
    }
}

/* ---- state file ---- */

static int s_fsync_dir(bm_spool_t *s, bm_err_t *err)
{
    if (fsync(s->dir_fd) < 0)
        return bm_err_set(err, "could not fsync spool directory \"%s\": %s", s->dir,
                          strerror(errno));
    s->dir_dirty = false;
    return 0;
}

/* Writes the state file atomically: state.tmp, fsync, rename, fsync the
 * directory.  Returns 0 or -1 with err; the old state file stays on error. */
static int s_state_write(bm_spool_t *s, bm_err_t *err)
{
    uint8_t b[S_STATE_SIZE];
    memset(b, 0, sizeof b);
    s_put32(b, S_STATE_MAGIC);
    s_put32(b + 4, S_STATE_VERSION);
    memcpy(b + 8, s->stream_id, BM_STREAM_ID_LEN);
    s_put64(b + 40, s->next_seq);
    s_put64(b + 48, s->acked_seq);
    s_put32(b + 56, (uint32_t)s->nholes);
    for (size_t i = 0; i < s->nholes; i++) {
        s_put64(b + 64 + 16 * i, s->holes[i].start);
        s_put64(b + 72 + 16 * i, s->holes[i].end);
    }
    s_put32(b + S_STATE_CRC_OFF, bm_crc32c(0, b, S_STATE_CRC_OFF));

    int fd = openat(s->dir_fd, S_STATE_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return bm_err_set(err, "could not create \"%s/%s\": %s", s->dir, S_STATE_TMP,
                          strerror(errno));
    size_t done = 0;
    while (done < sizeof b) {
        ssize_t w = write(fd, b + done, sizeof b - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int saved = w < 0 ? errno : EIO;
            close(fd);
            return bm_err_set(err, "could not write \"%s/%s\": %s", s->dir, S_STATE_TMP,
                              strerror(saved));
        }
        done += (size_t)w;
    }
    if (fsync(fd) < 0) {
        int saved = errno;
        close(fd);
        return bm_err_set(err, "could not fsync \"%s/%s\": %s", s->dir, S_STATE_TMP,
                          strerror(saved));
    }
    close(fd);
    if (renameat(s->dir_fd, S_STATE_TMP, s->dir_fd, S_STATE_NAME) < 0)
        return bm_err_set(err, "could not rename \"%s/%s\" to \"%s\": %s", s->dir, S_STATE_TMP,
                          S_STATE_NAME, strerror(errno));
    if (s_fsync_dir(s, err) < 0)
        return -1;
    s->state_dirty = false;
    s->persisted_next = s->next_seq;
    s->acks_since_persist = 0;
    s->last_persist_mono = bm_mono_ms();
    return 0;
}

/* Makes appended entries and created segments durable (no state file). */
static int s_sync_files(bm_spool_t *s, bm_err_t *err)
{
    if (s->tail_fd >= 0 && s->tail_dirty) {
        if (fdatasync(s->tail_fd) < 0) {
            char name[64];
            s_seg_name(name, sizeof name, s->segs[s->nsegs - 1].first);
            return bm_err_set(err, "could not fsync spool segment \"%s/%s\": %s", s->dir, name,
                              strerror(errno));
        }
        s->tail_dirty = false;
    }
    if (s->dir_dirty && s_fsync_dir(s, err) < 0)
        return -1;
    return 0;
}

/* Persists the state.  Segments are synced first so that the state file
 * never counts entries the disk does not hold yet. */
static int s_state_persist(bm_spool_t *s, bm_err_t *err)
{
    if (s_sync_files(s, err) < 0)
        return -1;
    return s_state_write(s, err);
}

/* Reads the state file.  Returns 0, 1 if it does not exist, or -1 with err
 * (unreadable or corrupt: never guessed around). */
static int s_state_load(bm_spool_t *s, uint64_t *next_seq, bm_err_t *err)
{
    int fd = openat(s->dir_fd, S_STATE_NAME, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        return bm_err_set(err, "could not open spool state file \"%s/%s\": %s", s->dir,
                          S_STATE_NAME, strerror(errno));
    }
    uint8_t b[S_STATE_SIZE + 1];
    size_t n = 0;
    while (n < sizeof b) {
        ssize_t r = read(fd, b + n, sizeof b - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int saved = errno;
            close(fd);
            return bm_err_set(err, "could not read spool state file \"%s/%s\": %s", s->dir,
                              S_STATE_NAME, strerror(saved));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);

    const char *why = NULL;
    char detail[96];
    if (n != S_STATE_SIZE) {
        snprintf(detail, sizeof detail, "%zu%s bytes, expected %d", n,
                 n > S_STATE_SIZE ? " or more" : "", S_STATE_SIZE);
        why = detail;
    } else if (s_get32(b) != S_STATE_MAGIC) {
        why = "bad magic number";
    } else if (s_get32(b + S_STATE_CRC_OFF) != bm_crc32c(0, b, S_STATE_CRC_OFF)) {
        why = "checksum mismatch";
    } else if (s_get32(b + 4) != S_STATE_VERSION) {
        snprintf(detail, sizeof detail, "unsupported format version %" PRIu32, s_get32(b + 4));
        why = detail;
    }
    if (!why) {
        for (int i = 0; i < BM_STREAM_ID_LEN && !why; i++) {
            char c = (char)b[8 + i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                why = "stream id is not 32 lower-case hex characters";
        }
    }
    uint64_t next = s_get64(b + 40), acked = s_get64(b + 48);
    uint32_t nholes = s_get32(b + 56);
    if (!why && (next == 0 || acked >= next))
        why = "acknowledged position is not below the next sequence";
    if (!why && nholes > S_MAX_HOLES)
        why = "too many lost ranges";
    uint64_t prev_end = acked + 1;
    for (uint32_t i = 0; !why && i < nholes; i++) {
        uint64_t st = s_get64(b + 64 + 16 * i), en = s_get64(b + 72 + 16 * i);
        if (st < prev_end || en <= st || en > next)
            why = "lost ranges out of order";
        s->holes[i].start = st;
        s->holes[i].end = en;
        prev_end = en;
    }
    if (why)
        return bm_err_set(err, "spool state file \"%s/%s\" is corrupt: %s", s->dir,
                          S_STATE_NAME, why);
    memcpy(s->stream_id, b + 8, BM_STREAM_ID_LEN);
    s->stream_id[BM_STREAM_ID_LEN] = '\0';
    s->acked_seq = acked;
    s->nholes = nholes;
    *next_seq = next;
    return 0;
}

/* ---- opening ---- */

static int s_mkdirs(const char *dir, bm_err_t *err)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path - S_SEG_NAME_LEN - 2)
        return bm_err_set(err, "spool directory name \"%s\" is empty or too long", dir);
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] == '/' || path[i] == '\0') {
            char saved = path[i];
            path[i] = '\0';
            if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return bm_err_set(err, "could not create spool directory \"%s\": %s", path,
                                  strerror(errno));
            path[i] = saved;
        }
    }
    return 0;
}

static int s_index_push(bm_spool_t *s, uint64_t first, uint64_t bytes, bm_err_t *err)
{
    if (s->nsegs == s->segs_cap) {
        size_t cap = s->segs_cap ? s->segs_cap * 2 : 16;
        s_seg_t *p = realloc(s->segs, cap * sizeof *p);
        if (!p)
            return bm_err_set(err, "out of memory for the spool segment index");
        s->segs = p;
        s->segs_cap = cap;
    }
    s->segs[s->nsegs].first = first;
    s->segs[s->nsegs].bytes = bytes;
    s->nsegs++;
    return 0;
}

static int s_seg_cmp(const void *a, const void *b)
{
    uint64_t x = ((const s_seg_t *)a)->first, y = ((const s_seg_t *)b)->first;
    return x < y ? -1 : x > y;
}

/* Lists the segment files into the index (with their sizes) and removes a
 * state.tmp left by a crash.  Returns 0 or -1 with err. */
static int s_list_segments(bm_spool_t *s, bm_err_t *err)
{
    int fd = dup(s->dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return bm_err_set(err, "could not list spool directory \"%s\": %s", s->dir,
                          strerror(errno));
    }
    rewinddir(d);
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t first;
        if (strcmp(e->d_name, S_STATE_TMP) == 0) {
            unlinkat(s->dir_fd, S_STATE_TMP, 0);
            continue;
        }
        if (!s_seg_name_parse(e->d_name, &first))
            continue;
        struct stat st;
        if (fstatat(s->dir_fd, e->d_name, &st, 0) < 0) {
            rc = bm_err_set(err, "could not stat spool segment \"%s/%s\": %s", s->dir,
                            e->d_name, strerror(errno));
            break;
        }
        if (!S_ISREG(st.st_mode)) {
            rc = bm_err_set(err, "spool segment \"%s/%s\" is not a regular file", s->dir,
                            e->d_name);
            break;
        }
        if (s_index_push(s, first, (uint64_t)st.st_size, err) < 0) {
            rc = -1;
            break;
        }
    }
    closedir(d);
    if (rc == 0 && s->nsegs > 1)
        qsort(s->segs, s->nsegs, sizeof *s->segs, s_seg_cmp);
    return rc;
}

/* Scans the last segment entry by entry and cuts off a torn or corrupt tail.
 * Sets *end_seq to one past its last good entry.  Returns 0, or -1 with err
 * on an I/O error (never cuts because of one). */
static int s_scan_tail(bm_spool_t *s, uint64_t *end_seq, bm_err_t *err)
{
    s_seg_t *seg = &s->segs[s->nsegs - 1];
    char name[64];
    s_seg_name(name, sizeof name, seg->first);
    int fd = openat(s->dir_fd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return bm_err_set(err, "could not open spool segment \"%s/%s\": %s", s->dir, name,
                          strerror(errno));
    s_reader_t rd = {.fd = fd, .cap = S_READ_BUF};
    rd.buf = malloc(rd.cap);
    if (!rd.buf) {
        close(fd);
        return bm_err_set(err, "out of memory scanning spool segment \"%s/%s\"", s->dir, name);
    }
    uint64_t size = seg->bytes, off = 0, expect = seg->first;
    const char *why = NULL;
    int rc = 0;
    while (off < size) {
        uint8_t b[S_HDR];
        if (size - off < S_HDR) {
            why = "short entry header";
            break;
        }
        if (s_reader_read(&rd, off, b, S_HDR, size) < 0) {
            rc = -1;
            break;
        }
        s_hdr_t h;
        s_hdr_decode(b, &h);
        if (h.magic != S_MAGIC) {
            why = "bad magic number";
            break;
        }
        if (h.len > BM_SPOOL_MAX_PAYLOAD) {
            why = "payload length out of range";
            break;
        }
        if (h.seq != expect) {
            why = "sequence out of order";
            break;
        }
        if (size - off - S_HDR < h.len) {
            why = "short payload";
            break;
        }
        uint32_t crc = bm_crc32c(0, b, S_HDR_CRC_OFF);
        uint64_t p = off + S_HDR, pend = p + h.len;
        while (p < pend) {
            uint8_t chunk[4096];
            size_t n = pend - p < sizeof chunk ? (size_t)(pend - p) : sizeof chunk;
            if (s_reader_read(&rd, p, chunk, n, size) < 0) {
                rc = -1;
                break;
            }
            crc = bm_crc32c(crc, chunk, n);
            p += n;
        }
        if (rc < 0)
            break;
        if (crc != h.crc) {
            why = "checksum mismatch";
            break;
        }
        off = pend;
        expect++;
    }
    free(rd.buf);
    if (rc < 0) {
        int saved = errno;
        close(fd);
        return bm_err_set(err, "could not read spool segment \"%s/%s\": %s", s->dir, name,
                          strerror(saved));
    }
    if (why) {
        uint64_t cut = size - off;
        bm_warn("spool", "cutting torn tail of spool segment \"%s/%s\": %" PRIu64
                " bytes at offset %" PRIu64 " (%s, entry %" PRIu64 ")",
                s->dir, name, cut, off, why, expect);
        if (ftruncate(fd, (off_t)off) < 0 || fsync(fd) < 0) {
            int saved = errno;
            close(fd);
            return bm_err_set(err, "could not cut torn tail of spool segment \"%s/%s\": %s",
                              s->dir, name, strerror(saved));
        }
        s->torn_bytes_cut += cut;
        seg->bytes = off;
    }
    s->tail_fd = fd;
    *end_seq = expect;
    return 0;
}

static int s_collect(bm_spool_t *s, bm_err_t *err);

bm_spool_t *bm_spool_open(const char *dir, uint64_t segment_bytes, bm_err_t *err)
{
    assert(dir);
    if (s_mkdirs(dir, err) < 0)
        return NULL;
    bm_spool_t *s = calloc(1, sizeof *s);
    if (!s) {
        bm_err_set(err, "out of memory opening spool \"%s\"", dir);
        return NULL;
    }
    s->dir_fd = -1;
    s->tail_fd = -1;
    s->segment_bytes = segment_bytes ? segment_bytes : S_DEFAULT_SEGMENT;
    s->dir = strdup(dir);
    s->ack_bits = calloc(S_ACK_WINDOW / 8, 1);
    if (!s->dir || !s->ack_bits) {
        bm_err_set(err, "out of memory opening spool \"%s\"", dir);
        goto fail;
    }
    s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        bm_err_set(err, "could not open spool directory \"%s\": %s", dir, strerror(errno));
        goto fail;
    }
    /* Two processes appending to one spool would interleave sequences. */
    if (flock(s->dir_fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            bm_err_set(err, "spool directory \"%s\" is in use by another process", dir);
        else
            bm_err_set(err, "could not lock spool directory \"%s\": %s", dir, strerror(errno));
        goto fail;
    }
    if (s_list_segments(s, err) < 0)
        goto fail;

    uint64_t state_next = 1;
    int st = s_state_load(s, &state_next, err);
    if (st < 0)
        goto fail;
    s->persisted_next = state_next;
    if (st == 1) {
        if (s->nsegs > 0) {
            bm_err_set(err, "spool state file \"%s/%s\" is missing but %zu segment files "
                       "exist; refusing to guess the stream id and acknowledged position",
                       dir, S_STATE_NAME, s->nsegs);
            goto fail;
        }
        if (bm_stream_id_new(s->stream_id, err) < 0)
            goto fail;
        s->next_seq = 1;
        s->acked_seq = 0;
        if (s_state_write(s, err) < 0)
            goto fail;
        bm_info("spool", "created spool \"%s\" with stream id %s", dir, s->stream_id);
    }

    if (s->nsegs == 0) {
        s->next_seq = state_next;
    } else {
        uint64_t end = 0;
        if (s_scan_tail(s, &end, err) < 0)
            goto fail;
        s->next_seq = end > state_next ? end : state_next;
        if (end < state_next) {
            /* The state file counted entries the tail no longer holds: they
             * may have been sent, so their sequences are never reused.  New
             * entries go to a new segment after the lost range. */
            uint64_t start = end > s->acked_seq + 1 ? end : s->acked_seq + 1;
            bool known = false;
            for (size_t i = 0; i < s->nholes; i++)
                known |= s->holes[i].start <= start && s->holes[i].end >= state_next;
            if (start < state_next && !known) {
                if (s->nholes == S_MAX_HOLES) {
                    bm_err_set(err, "spool \"%s\": too many lost ranges of sequences", dir);
                    goto fail;
                }
                s->holes[s->nholes].start = start;
                s->holes[s->nholes].end = state_next;
                s->nholes++;
                bm_warn("spool", "spool \"%s\": entries %" PRIu64 "..%" PRIu64
                        " counted by the state file are missing from disk; "
                        "they are treated as lost", dir, start, state_next - 1);
            }
            close(s->tail_fd);
            s->tail_fd = -1;
            s->state_dirty = true;
        }
    }
    s_advance(s);
    if (s->nsegs > 0 ? s->segs[0].first > s->acked_seq + 1 : s->acked_seq + 1 < s->next_seq) {
        uint64_t upto = s->nsegs > 0 ? s->segs[0].first - 1 : s->next_seq - 1;
        bm_err_set(err, "spool \"%s\": unacknowledged entries %" PRIu64 "..%" PRIu64
                   " are missing (segment files removed?)", dir, s->acked_seq + 1, upto);
        goto fail;
    }
    if (s->state_dirty && s_state_persist(s, err) < 0)
        goto fail;
    s->last_persist_mono = bm_mono_ms();
    s_oldest_refresh(s);
    /* A crash between persisting the state and deleting segments leaves
     * acknowledged segments behind. */
    if (s_collect(s, err) < 0)
        goto fail;
    s->opened = true;
    return s;
fail:
    bm_spool_close(&s);
    return NULL;
}

void bm_spool_close(bm_spool_t **spool_p)
{
    if (!spool_p || !*spool_p)
        return;
    bm_spool_t *s = *spool_p;
    bm_err_t err;
    if (s->opened) {
        bool write_state = s->state_dirty || s->persisted_next != s->next_seq;
        if (s_sync_files(s, &err) < 0 || (write_state && s_state_write(s, &err) < 0))
            bm_warn("spool", "closing spool: %s", err.msg);
    }
    if (s->tail_fd >= 0)
        close(s->tail_fd);
    if (s->dir_fd >= 0)
        close(s->dir_fd); /* releases the flock */
    free(s->segs);
    free(s->ack_bits);
    free(s->dir);
    free(s);
    *spool_p = NULL;
}

const char *bm_spool_stream_id(const bm_spool_t *spool)
{
    return spool->stream_id;
}

/* ---- appending ---- */

/* Starts segment seg-<next_seq>.log.  The previous tail is fsynced first, so
 * that only the last segment can ever have a torn end.  Returns 0 or -1. */
static int s_roll(bm_spool_t *s, bm_err_t *err)
{
    char name[64];
    if (s->tail_fd >= 0) {
        if (s_sync_files(s, err) < 0)
            return -1;
        close(s->tail_fd);
        s->tail_fd = -1;
    }
    if (s->nsegs == s->segs_cap) {
        /* Grow before creating the file, so a failure leaves nothing. */
        if (s_index_push(s, 0, 0, err) < 0)
            return -1;
        s->nsegs--;
    }
    s_seg_name(name, sizeof name, s->next_seq);
    int fd = openat(s->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return bm_err_set(err, "could not create spool segment \"%s/%s\": %s", s->dir, name,
                          strerror(errno));
    s_index_push(s, s->next_seq, 0, err);
    s->tail_fd = fd;
    s->tail_dirty = false;
    s->dir_dirty = true;
    return 0;
}

int bm_spool_append(bm_spool_t *spool, const void *payload, size_t len,
                    uint64_t *seq_out, bm_err_t *err)
{
    bm_spool_t *s = spool;
    assert(s && (payload || len == 0));
    if (len > BM_SPOOL_MAX_PAYLOAD)
        return bm_err_set(err, "spool entry of %zu bytes exceeds the limit of %u", len,
                          (unsigned)BM_SPOOL_MAX_PAYLOAD);
    if (s->tail_fd < 0 || (s->segs[s->nsegs - 1].bytes >= s->segment_bytes
                           && s->segs[s->nsegs - 1].bytes > 0)) {
        if (s_roll(s, err) < 0)
            return -1;
    }
    s_seg_t *seg = &s->segs[s->nsegs - 1];
    uint64_t seq = s->next_seq;
    int64_t now = bm_now_ms();
    uint8_t h[S_HDR];
    s_put32(h, S_MAGIC);
    s_put32(h + 4, (uint32_t)len);
    s_put64(h + 8, seq);
    s_put64(h + 16, (uint64_t)now);
    uint32_t crc = bm_crc32c(0, h, S_HDR_CRC_OFF);
    crc = bm_crc32c(crc, payload, len);
    s_put32(h + S_HDR_CRC_OFF, crc);

    struct iovec iov[2] = {{h, S_HDR}, {(void *)payload, len}};
    int niov = len ? 2 : 1;
    size_t total = S_HDR + len, done = 0;
    while (done < total) {
        /* Skip what a short write already wrote. */
        struct iovec part[2];
        int np = 0;
        size_t skip = done;
        for (int i = 0; i < niov; i++) {
            if (skip >= iov[i].iov_len) {
                skip -= iov[i].iov_len;
                continue;
            }
            part[np].iov_base = (uint8_t *)iov[i].iov_base + skip;
            part[np].iov_len = iov[i].iov_len - skip;
            skip = 0;
            np++;
        }
        ssize_t w = pwritev(s->tail_fd, part, np, (off_t)(seg->bytes + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int saved = w < 0 ? errno : EIO;
            char name[64];
            s_seg_name(name, sizeof name, seg->first);
            /* Keep the file equal to its whole entries.  Should this fail
             * too, the next append overwrites the debris at the same
             * offset and a reopen would cut it as a torn tail. */
            if (ftruncate(s->tail_fd, (off_t)seg->bytes) < 0)
                bm_warn("spool", "could not truncate spool segment \"%s/%s\" after a failed "
                        "append: %s", s->dir, name, strerror(errno));
            return bm_err_set(err, "could not append to spool segment \"%s/%s\": %s", s->dir,
                              name, strerror(saved));
        }
        done += (size_t)w;
    }
    bool was_empty = s->acked_seq + 1 == seq;
    seg->bytes += total;
    s->next_seq = seq + 1;
    s->tail_dirty = true;
    if (was_empty) {
        s->oldest_unacked_ms = now;
        s->head_valid = true;
        s->head_first = seg->first;
        s->head_off = seg->bytes - total;
        s->head_seq = seq;
    }
    if (seq_out)
        *seq_out = seq;
    return 0;
}

int bm_spool_sync(bm_spool_t *spool, bm_err_t *err)
{
    if (s_sync_files(spool, err) < 0)
        return -1;
    if (spool->state_dirty && bm_mono_ms() - spool->last_persist_mono >= S_PERSIST_MS)
        return s_state_write(spool, err);
    return 0;
}

/* ---- acknowledging and deleting ---- */

/* Deletes the leading segments whose entries are all acknowledged, after
 * persisting the state.  The open tail goes too once it is full (the next
 * append starts a new one); a small fully acked tail is kept to avoid
 * creating a file per batch.  Returns 0 or -1 with err. */
static int s_collect(bm_spool_t *s, bm_err_t *err)
{
    size_t k = 0;
    while (k < s->nsegs) {
        if (s->acked_seq + 1 < s_seg_end(s, k))
            break;
        if (s_is_open_tail(s, k) && s->segs[k].bytes < s->segment_bytes)
            break;
        k++;
    }
    if (k == 0)
        return 0;
    if (s_state_persist(s, err) < 0)
        return -1;
    if (k == s->nsegs && s->tail_fd >= 0) {
        close(s->tail_fd);
        s->tail_fd = -1;
    }
    size_t removed = 0;
    int rc = 0;
    for (; removed < k; removed++) {
        char name[64];
        s_seg_name(name, sizeof name, s->segs[removed].first);
        if (unlinkat(s->dir_fd, name, 0) < 0 && errno != ENOENT) {
            rc = bm_err_set(err, "could not remove acknowledged spool segment \"%s/%s\": %s",
                            s->dir, name, strerror(errno));
            break;
        }
    }
    memmove(s->segs, s->segs + removed, (s->nsegs - removed) * sizeof *s->segs);
    s->nsegs -= removed;
    if (removed)
        s->dir_dirty = true;
    return rc;
}

int bm_spool_ack(bm_spool_t *spool, uint64_t seq, bm_err_t *err)
{
    bm_spool_t *s = spool;
    if (seq <= s->acked_seq || seq >= s->next_seq || s_in_hole(s, seq))
        return 0;
    if (seq > s->acked_seq + S_ACK_WINDOW) {
        /* Beyond the bitmap: forgotten, so the entry is sent again later
         * and the collector acknowledges the duplicate. */
        bm_debug("spool", "ack of %" PRIu64 " is too far ahead of %" PRIu64 "; ignored", seq,
                 s->acked_seq);
        return 0;
    }
    if (s_bit_get(s, seq))
        return 0;
    s_bit_set(s, seq, true);
    s->acked_above++;
    s->state_dirty = true;
    s->acks_since_persist++;
    if (seq == s->acked_seq + 1 && s_advance(s)) {
        s_oldest_refresh(s);
        size_t before = s->nsegs;
        if (s_collect(s, err) < 0)
            return -1;
        if (s->nsegs != before)
            return 0; /* the state was persisted */
    }
    if (s->acks_since_persist >= S_PERSIST_ACKS
        || bm_mono_ms() - s->last_persist_mono >= S_PERSIST_MS)
        return s_state_persist(s, err);
    return 0;
}

void bm_spool_stats(const bm_spool_t *spool, bm_spool_stats_t *out)
{
    const bm_spool_t *s = spool;
    memset(out, 0, sizeof *out);
    uint64_t unacked = s->next_seq - 1 - s->acked_seq - s->acked_above;
    for (size_t i = 0; i < s->nholes; i++)
        unacked -= s->holes[i].end - s->holes[i].start;
    out->entries = unacked;
    for (size_t i = 0; i < s->nsegs; i++)
        out->bytes += s->segs[i].bytes;
    out->next_seq = s->next_seq;
    out->acked_seq = s->acked_seq;
    out->oldest_unacked_ms = unacked ? s->oldest_unacked_ms : 0;
    out->torn_bytes_cut = s->torn_bytes_cut;
}

/* ---- cursor ---- */

bm_spool_cursor_t *bm_spool_cursor_new(bm_spool_t *spool, bm_err_t *err)
{
    assert(spool);
    bm_spool_cursor_t *c = calloc(1, sizeof *c);
    if (c)
        c->rd.buf = malloc(S_READ_BUF);
    if (!c || !c->rd.buf) {
        free(c);
        bm_err_set(err, "out of memory for a spool cursor");
        return NULL;
    }
    c->spool = spool;
    c->rd.cap = S_READ_BUF;
    c->rd.fd = -1;
    return c;
}

void bm_spool_cursor_destroy(bm_spool_cursor_t **cur_p)
{
    if (!cur_p || !*cur_p)
        return;
    bm_spool_cursor_t *c = *cur_p;
    if (c->rd.fd >= 0)
        close(c->rd.fd);
    free(c->rd.buf);
    free(c);
    *cur_p = NULL;
}

static void s_cursor_close_seg(bm_spool_cursor_t *c)
{
    if (c->rd.fd >= 0)
        close(c->rd.fd);
    s_reader_reset(&c->rd, -1);
}

int bm_spool_cursor_seek(bm_spool_cursor_t *cur, uint64_t seq, bm_err_t *err)
{
    (void)err;
    s_cursor_close_seg(cur);
    cur->min_seq = seq;
    cur->expect = 0;
    return 0;
}

/* Opens segment i of the index at its start.  Returns 0 or -1 with err. */
static int s_cursor_open_seg(bm_spool_cursor_t *c, size_t i, bm_err_t *err)
{
    const bm_spool_t *s = c->spool;
    char name[64];
    s_seg_name(name, sizeof name, s->segs[i].first);
    s_cursor_close_seg(c);
    int fd = openat(s->dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bm_err_set(err, "could not open spool segment \"%s/%s\": %s", s->dir, name,
                          strerror(errno));
    s_reader_reset(&c->rd, fd);
    c->seg_first = s->segs[i].first;
    c->off = 0;
    c->expect = s->segs[i].first;
    return 0;
}

int bm_spool_cursor_next(bm_spool_cursor_t *cur, uint64_t *seq, uint8_t **payload,
                         size_t *len, int64_t *appended_ms, bm_err_t *err)
{
    bm_spool_cursor_t *c = cur;
    bm_spool_t *s = c->spool;
    char name[64];
    for (;;) {
        long i = c->rd.fd >= 0 ? s_seg_find(s, c->seg_first) : -1;
        if (i < 0) {
            /* No segment yet, or ours was deleted (all acked): find the one
             * holding the first entry we still want. */
            uint64_t target = s->acked_seq + 1;
            if (c->min_seq > target)
                target = c->min_seq;
            if (c->expect > target)
                target = c->expect;
            if (target >= s->next_seq || s->nsegs == 0) {
                s_cursor_close_seg(c);
                c->expect = target;
                return 0;
            }
            i = s_seg_for(s, target);
            if (s_cursor_open_seg(c, (size_t)i, err) < 0)
                return -1;
        }
        const s_seg_t *seg = &s->segs[i];
        s_seg_name(name, sizeof name, seg->first);
        if (c->off >= seg->bytes) {
            if ((size_t)i + 1 == s->nsegs && s->tail_fd >= 0)
                return 0; /* end of the open tail: more may come */
            uint64_t next_first = s_seg_end(s, (size_t)i);
            if (c->expect != next_first && !(next_first - 1 <= s->acked_seq
                                             && c->expect <= next_first)) {
                bool hole = false;
                for (size_t h = 0; h < s->nholes; h++)
                    hole |= s->holes[h].start == c->expect && s->holes[h].end == next_first;
                if (!hole)
                    return bm_err_set(err, "spool segment \"%s/%s\" ends before entry %" PRIu64
                                      " but the next segment starts at %" PRIu64, s->dir, name,
                                      c->expect, next_first);
            }
            if ((size_t)i + 1 == s->nsegs) {
                c->expect = next_first;
                return 0;
            }
            if (s_cursor_open_seg(c, (size_t)i + 1, err) < 0)
                return -1;
            continue;
        }
        if (seg->bytes - c->off < S_HDR)
            return bm_err_set(err, "spool segment \"%s/%s\": truncated entry header at "
                              "offset %" PRIu64, s->dir, name, c->off);
        uint8_t b[S_HDR];
        if (s_reader_read(&c->rd, c->off, b, S_HDR, seg->bytes) < 0)
            return bm_err_set(err, "could not read spool segment \"%s/%s\": %s", s->dir, name,
                              strerror(errno));
        s_hdr_t h;
        s_hdr_decode(b, &h);
        const char *why = NULL;
        if (h.magic != S_MAGIC)
            why = "bad magic number";
        else if (h.len > BM_SPOOL_MAX_PAYLOAD || seg->bytes - c->off - S_HDR < h.len)
            why = "payload length out of range";
        else if (h.seq != c->expect)
            why = "sequence out of order";
        if (why)
            return bm_err_set(err, "spool segment \"%s/%s\": corrupt entry at offset %" PRIu64
                              " (expected sequence %" PRIu64 "): %s", s->dir, name, c->off,
                              c->expect, why);
        uint64_t entry_off = c->off, entry_end = c->off + S_HDR + h.len;
        if (h.seq < c->min_seq || s_is_acked(s, h.seq)) {
            c->off = entry_end;
            c->expect++;
            continue;
        }
        uint8_t *p = malloc(h.len ? h.len : 1);
        if (!p)
            return bm_err_set(err, "out of memory for a spool entry of %" PRIu32 " bytes",
                              h.len);
        if (h.len && s_reader_read(&c->rd, entry_off + S_HDR, p, h.len, seg->bytes) < 0) {
            int saved = errno;
            free(p);
            return bm_err_set(err, "could not read spool segment \"%s/%s\": %s", s->dir, name,
                              strerror(saved));
        }
        uint32_t crc = bm_crc32c(bm_crc32c(0, b, S_HDR_CRC_OFF), p, h.len);
        if (crc != h.crc) {
            free(p);
            return bm_err_set(err, "spool segment \"%s/%s\": checksum mismatch in entry %" PRIu64
                              " at offset %" PRIu64, s->dir, name, h.seq, entry_off);
        }
        /* Hand out only durable entries: a sequence the collector may have
         * seen must never be reused after a power loss. */
        if (s_is_open_tail(s, (size_t)i) && s->tail_dirty && s_sync_files(s, err) < 0) {
            free(p);
            return -1;
        }
        c->off = entry_end;
        c->expect++;
        *seq = h.seq;
        *payload = p;
        *len = h.len;
        if (appended_ms)
            *appended_ms = h.ms;
        return 1;
    }
}
