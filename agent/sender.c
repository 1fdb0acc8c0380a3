/* sender: the agent's ZeroMQ client; see sender.h.
 * Owns: the ZeroMQ context, the DEALER and its monitor PAIR socket, the
 * spool cursor, the in-flight ring and the one envelope waiting for room in
 * the socket's queue. */
#include "sender.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bm_keyfile.h"
#include "bm_log.h"
#include "bm_time.h"
#include "bm_wire.h"

#define COMP "sender"
#define BM_WINDOW_MAX 1024
#define BM_SKEW_WARN_MS (5 * 60 * 1000)
#define BM_SKEW_WARN_EVERY_MS (10 * 60 * 1000)
#define BM_RECV_PER_PROCESS 4096

typedef enum {
    S_CONNECTING,
    S_CONNECTED,
    S_DISCONNECTED,
    S_REFUSED,
} s_state_t;

static const char *const s_state_names[] = {"connecting", "connected", "disconnected",
                                            "refused"};

/* A batch the collector refuses for its bytes (MALFORMED, TOO_LARGE) is
 * sent this many times before it is given up: identical bytes get the
 * same answer, and one such batch must not hold up the whole spool. */
#define S_PERMANENT_TRIES 3

/* One batch sent and not yet answered. */
typedef struct {
    uint64_t seq;
    int64_t sent_mono;
    int64_t sent_wall;
    uint32_t n_records;
    bool answered;
} s_flight_t;

struct bm_sender {
    const bm_agent_config_t *cfg;   /* borrowed; may change on SIGHUP */
    bm_spool_t *spool;              /* borrowed */
    bm_deadletter_t *dl;            /* borrowed */
    bm_sender_refused_fn on_refused; /* told of each refused record, may be NULL */
    void *on_refused_ctx;            /* borrowed */
    void *ctx;
    void *dealer;                   /* NULL while waiting to reconnect */
    void *monitor;                  /* PAIR receiving the DEALER's events */
    unsigned monitor_serial;        /* unique inproc name per socket */
    char **endpoints;               /* own copy, to notice changes on reload */
    size_t n_endpoints, ep_idx;
    s_state_t state;
    bool connected;                 /* the monitor saw a handshake */
    bool ever_connected;            /* on the current socket */
    int64_t wait_since_mono;        /* opened or disconnected at: connect deadline */
    int64_t backoff_until_mono;     /* no sends (or no socket) before this */
    int backoff_attempt;
    bool refused;                   /* the collector refuses us (state refused) */
    uint64_t permanent_seq;         /* the batch last refused for its bytes */
    int permanent_tries;            /* how many times in a row */
    s_flight_t ring[BM_WINDOW_MAX]; /* in-flight batches in sequence order */
    size_t ring_head, ring_count;
    bm_spool_cursor_t *cursor;
    bool restart;                   /* seek to the first unacked entry before reading */
    bool at_end;                    /* cursor reached the end ... */
    uint64_t end_next_seq;          /* ... when the spool's next_seq was this */
    uint64_t last_read_seq;
    uint8_t *held;                  /* encoded envelope that found no room yet */
    size_t held_len;
    uint64_t held_seq;
    uint32_t held_records;
    uint64_t highest_sent;          /* for counting first sends */
    int64_t last_send_mono;
    bool hb_outstanding;
    int64_t hb_sent_mono, hb_sent_wall;
    int64_t last_skew_warn_mono;
    bool corrupt_logged;
    bm_sender_info_t info;
    char last_error[BM_ERR_MSG_MAX];
    bool curve;                     /* keys read at start (not on SIGHUP) */
    char curve_secret[BM_Z85_KEY_LEN + 1], curve_public[BM_Z85_KEY_LEN + 1];
    char curve_server[BM_Z85_KEY_LEN + 1];
};

/* ---- helpers ---- */

static void s_set_error(bm_sender_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void s_set_error(bm_sender_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->last_error, sizeof s->last_error, fmt, ap);
    va_end(ap);
    s->info.last_error_ms = bm_now_ms();
}

static const char *s_endpoint(const bm_sender_t *s)
{
    return s->n_endpoints ? s->endpoints[s->ep_idx] : "";
}

static void s_free_endpoints(bm_sender_t *s)
{
    for (size_t i = 0; i < s->n_endpoints; i++)
        free(s->endpoints[i]);
    free(s->endpoints);
    s->endpoints = NULL;
    s->n_endpoints = 0;
}

static int s_copy_endpoints(bm_sender_t *s)
{
    const bm_strlist_t *l = &s->cfg->collector;
    char **eps = calloc(l->count ? l->count : 1, sizeof *eps);
    if (!eps)
        return -1;
    for (size_t i = 0; i < l->count; i++) {
        if (!(eps[i] = strdup(l->items[i]))) {
            for (size_t j = 0; j < i; j++)
                free(eps[j]);
            free(eps);
            return -1;
        }
    }
    s_free_endpoints(s);
    s->endpoints = eps;
    s->n_endpoints = l->count;
    s->ep_idx = 0;
    return 0;
}

static void s_drop_held(bm_sender_t *s)
{
    free(s->held);
    s->held = NULL;
    s->held_len = 0;
}

/* Forgets everything in flight; the next send starts again at the spool's
 * first unacknowledged entry.  Replies to the old sends may still come and
 * are applied (an ack is an ack), but no longer drive timeouts. */
static void s_restart_window(bm_sender_t *s)
{
    s->ring_head = 0;
    s->ring_count = 0;
    s->restart = true;
    s->hb_outstanding = false;
    s_drop_held(s);
}

/* Exponential backoff with full jitter; to_max: wait backoff_max (refused). */
static void s_backoff(bm_sender_t *s, bool to_max)
{
    int64_t lo = s->cfg->backoff_min_ms, hi = s->cfg->backoff_max_ms, delay;
    if (to_max) {
        delay = hi;
    } else {
        int64_t cap = lo;
        for (int i = 0; i < s->backoff_attempt && cap < hi; i++)
            cap *= 2;
        if (cap > hi)
            cap = hi;
        delay = lo + (cap > lo ? (int64_t)(random() % (cap - lo + 1)) : 0);
        if (s->backoff_attempt < 62)
            s->backoff_attempt++;
    }
    s->backoff_until_mono = bm_mono_ms() + delay;
    bm_debug(COMP, "backing off for %lld ms", (long long)delay);
}

static void s_close_socket(bm_sender_t *s)
{
    if (s->dealer) {
        zmq_socket_monitor(s->dealer, NULL, 0);
        zmq_close(s->dealer);
        s->dealer = NULL;
    }
    if (s->monitor) {
        zmq_close(s->monitor);
        s->monitor = NULL;
    }
    s->connected = false;
    s->ever_connected = false;
}

static int s_setint(void *sock, int opt, int value)
{
    return zmq_setsockopt(sock, opt, &value, sizeof value);
}

/* Opens a DEALER to the current endpoint.  Failures are logged and retried
 * after a backoff. */
static void s_open_socket(bm_sender_t *s)
{
    const bm_agent_config_t *cfg = s->cfg;
    const char *ep = s_endpoint(s);
    char mon_addr[64];
    int window = (int)cfg->send_window;
    int hb = (int)cfg->heartbeat_interval_ms;
    int64_t maxmsg = cfg->max_reply_bytes;

    s->dealer = zmq_socket(s->ctx, ZMQ_DEALER);
    if (!s->dealer)
        goto fail;
    if (s_setint(s->dealer, ZMQ_LINGER, 0) < 0 || s_setint(s->dealer, ZMQ_IMMEDIATE, 1) < 0 ||
        s_setint(s->dealer, ZMQ_SNDHWM, window + 4) < 0 ||
        s_setint(s->dealer, ZMQ_RCVHWM, 2 * window + 16) < 0 ||
        s_setint(s->dealer, ZMQ_HEARTBEAT_IVL, hb) < 0 ||
        s_setint(s->dealer, ZMQ_HEARTBEAT_TIMEOUT, 3 * hb) < 0 ||
        s_setint(s->dealer, ZMQ_HEARTBEAT_TTL, 3 * hb) < 0 ||
        s_setint(s->dealer, ZMQ_RECONNECT_IVL, (int)cfg->backoff_min_ms) < 0 ||
        s_setint(s->dealer, ZMQ_RECONNECT_IVL_MAX, (int)(cfg->backoff_max_ms > 1000000
                                                             ? 1000000 : cfg->backoff_max_ms)) < 0 ||
        zmq_setsockopt(s->dealer, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) < 0)
        goto fail;
    if (s->curve &&
        (zmq_setsockopt(s->dealer, ZMQ_CURVE_SERVERKEY, s->curve_server, BM_Z85_KEY_LEN) < 0 ||
         zmq_setsockopt(s->dealer, ZMQ_CURVE_PUBLICKEY, s->curve_public, BM_Z85_KEY_LEN) < 0 ||
         zmq_setsockopt(s->dealer, ZMQ_CURVE_SECRETKEY, s->curve_secret, BM_Z85_KEY_LEN) < 0))
        goto fail;
    snprintf(mon_addr, sizeof mon_addr, "inproc://bm-agent-monitor-%u", ++s->monitor_serial);
    if (zmq_socket_monitor(s->dealer, mon_addr,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) < 0)
        goto fail;
    if (!(s->monitor = zmq_socket(s->ctx, ZMQ_PAIR)) || s_setint(s->monitor, ZMQ_LINGER, 0) < 0 ||
        zmq_connect(s->monitor, mon_addr) < 0)
        goto fail;
    if (zmq_connect(s->dealer, ep) < 0)
        goto fail;
    s->state = s->refused ? S_REFUSED : S_CONNECTING;
    s->wait_since_mono = bm_mono_ms();
    s_restart_window(s);
    bm_info(COMP, "connecting to collector \"%s\"", ep);
    return;
fail:
    bm_error(COMP, "could not connect to collector \"%s\": %s", ep, zmq_strerror(errno));
    s_set_error(s, "could not connect to collector \"%s\": %s", ep, zmq_strerror(errno));
    s_close_socket(s);
    s->state = s->refused ? S_REFUSED : S_DISCONNECTED;
    s->ep_idx = (s->ep_idx + 1) % s->n_endpoints;
    s_backoff(s, false);
}

/* Gives up on the current endpoint: close, move to the next, wait, resend. */
static void s_fail_over(bm_sender_t *s, const char *why)
{
    const char *from = s_endpoint(s);
    size_t next = (s->ep_idx + 1) % s->n_endpoints;
    bm_warn(COMP, "%s; closing the connection to \"%s\" and retrying with \"%s\"", why,
            from, s->endpoints[next]);
    s_set_error(s, "%s (collector \"%s\")", why, from);
    s_close_socket(s);
    s->ep_idx = next;
    s->state = s->refused ? S_REFUSED : S_DISCONNECTED;
    s_restart_window(s);
    s_backoff(s, false);
}

/* ---- lifecycle ---- */

bm_sender_t *bm_sender_new(const bm_agent_config_t *cfg, bm_spool_t *spool,
                           bm_deadletter_t *dl, bm_err_t *err)
{
    bm_sender_t *s = calloc(1, sizeof *s);
    if (!s) {
        bm_err_set(err, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->spool = spool;
    s->dl = dl;
    s->state = S_DISCONNECTED;
    s->restart = true;
    srandom((unsigned)(bm_now_ms() ^ (getpid() << 16)));
    if (s_copy_endpoints(s) < 0) {
        bm_err_set(err, "out of memory");
        bm_sender_destroy(&s);
        return NULL;
    }
    if (!(s->ctx = zmq_ctx_new())) {
        bm_err_set(err, "could not create a ZeroMQ context: %s", zmq_strerror(errno));
        bm_sender_destroy(&s);
        return NULL;
    }
    /* CURVE keys: a secret key file others can read is refused here, so the
     * agent does not start with a key that may already be copied. */
    if (cfg->curve_secret_key_file && *cfg->curve_secret_key_file) {
        if (bm_keyfile_read_secret(cfg->curve_secret_key_file, s->curve_secret, err) < 0 ||
            bm_keyfile_read_public(cfg->collector_public_key, s->curve_server, err) < 0) {
            bm_sender_destroy(&s);
            return NULL;
        }
        if (zmq_curve_public(s->curve_public, s->curve_secret) < 0) {
            bm_err_set(err, "secret key file \"%s\": not a usable CURVE key",
                       cfg->curve_secret_key_file);
            bm_sender_destroy(&s);
            return NULL;
        }
        s->curve = true;
        bm_info(COMP, "CURVE on: this agent's public key is %s", s->curve_public);
    } else {
        bm_warn(COMP, "no curve_secret_key_file: connecting unauthenticated and unencrypted "
                "(only a collector with allow_plaintext = true accepts this)");
    }
    if (!(s->cursor = bm_spool_cursor_new(spool, err))) {
        bm_sender_destroy(&s);
        return NULL;
    }
    s->last_send_mono = bm_mono_ms();
    return s;
}

void bm_sender_destroy(bm_sender_t **sender_p)
{
    if (!sender_p || !*sender_p)
        return;
    bm_sender_t *s = *sender_p;
    s_close_socket(s);
    if (s->ctx)
        zmq_ctx_term(s->ctx);
    bm_spool_cursor_destroy(&s->cursor);
    s_drop_held(s);
    s_free_endpoints(s);
    memset(s->curve_secret, 0, sizeof s->curve_secret);
    free(s);
    *sender_p = NULL;
}

/* ---- sending ---- */

/* Wraps a SpoolEntry payload in an Envelope.  Returns the encoded envelope
 * (heap) or NULL when the entry does not decode (logged). */
static uint8_t *s_envelope_for(bm_sender_t *s, uint64_t seq, const uint8_t *payload,
                               size_t len, size_t *out_len, uint32_t *n_records)
{
    Branchmark__V1__SpoolEntry *entry = branchmark__v1__spool_entry__unpack(NULL, len, payload);
    if (!entry) {
        bm_error(COMP, "spool entry %" PRIu64 " does not decode as a SpoolEntry; it is "
                 "skipped by sending an empty batch", seq);
        s_set_error(s, "spool entry %" PRIu64 " does not decode", seq);
    }
    Branchmark__V1__Batch empty = BRANCHMARK__V1__BATCH__INIT;
    Branchmark__V1__Envelope env = BRANCHMARK__V1__ENVELOPE__INIT;
    env.protocol_version = BM_PROTOCOL_VERSION;
    env.agent_id = s->cfg->agent_id;
    env.branch_code = s->cfg->branch;
    env.stream_id = (char *)bm_spool_stream_id(s->spool);
    env.sequence = seq;
    env.sent_at_ms = bm_now_ms();
    env.body_case = BRANCHMARK__V1__ENVELOPE__BODY_BATCH;
    env.batch = entry && entry->batch ? entry->batch : &empty;
    *n_records = (uint32_t)env.batch->n_records;
    uint8_t *out = bm_message_encode(&env.base, out_len);
    if (entry)
        branchmark__v1__spool_entry__free_unpacked(entry, NULL);
    return out;
}

/* Reads the next unacked entry into s->held.  Returns 1, 0 when the spool has
 * nothing more, -1 on a spool error (logged). */
static int s_read_next(bm_sender_t *s)
{
    bm_err_t err = {{0}};
    bm_spool_stats_t st;
    bm_spool_stats(s->spool, &st);
    if (s->restart) {
        if (bm_spool_cursor_seek(s->cursor, st.acked_seq + 1, &err) < 0)
            goto fail;
        s->restart = false;
        s->at_end = false;
    } else if (s->at_end) {
        if (st.next_seq == s->end_next_seq)
            return 0;
        if (bm_spool_cursor_seek(s->cursor, s->last_read_seq + 1, &err) < 0)
            goto fail;
        s->at_end = false;
    }
    uint64_t seq;
    uint8_t *payload;
    size_t len;
    int64_t appended;
    int rc = bm_spool_cursor_next(s->cursor, &seq, &payload, &len, &appended, &err);
    if (rc < 0)
        goto fail;
    if (rc == 0) {
        s->at_end = true;
        s->end_next_seq = st.next_seq;
        return 0;
    }
    s->corrupt_logged = false;
    s->last_read_seq = seq;
    s->held = s_envelope_for(s, seq, payload, len, &s->held_len, &s->held_records);
    free(payload);
    if (!s->held) {
        bm_error(COMP, "out of memory encoding batch %" PRIu64, seq);
        s->restart = true;
        return -1;
    }
    s->held_seq = seq;
    return 1;
fail:
    if (!s->corrupt_logged)
        bm_error(COMP, "could not read the spool: %s", err.msg);
    s->corrupt_logged = true;
    s_set_error(s, "could not read the spool: %s", err.msg);
    s->restart = true;
    s_backoff(s, true);
    return -1;
}

static void s_fill_window(bm_sender_t *s)
{
    int64_t now = bm_mono_ms();
    if (!s->dealer || !s->connected || now < s->backoff_until_mono)
        return;
    size_t window = (size_t)s->cfg->send_window;
    if (window > BM_WINDOW_MAX)
        window = BM_WINDOW_MAX;
    while (s->ring_count < window) {
        if (!s->held && s_read_next(s) <= 0)
            return;
        if (zmq_send(s->dealer, s->held, s->held_len, ZMQ_DONTWAIT) < 0) {
            if (errno != EAGAIN)
                bm_warn(COMP, "could not send batch %" PRIu64 ": %s", s->held_seq,
                        zmq_strerror(errno));
            return;
        }
        s_flight_t *f = &s->ring[(s->ring_head + s->ring_count) % BM_WINDOW_MAX];
        f->seq = s->held_seq;
        f->sent_mono = now;
        f->sent_wall = bm_now_ms();
        f->n_records = s->held_records;
        f->answered = false;
        s->ring_count++;
        if (s->held_seq > s->highest_sent) {
            s->highest_sent = s->held_seq;
            s->info.records_sent += s->held_records;
        }
        bm_debug(COMP, "sent batch %" PRIu64 " (%u records, %zu bytes)", s->held_seq,
                 s->held_records, s->held_len);
        s->last_send_mono = now;
        s_drop_held(s);
    }
}

static void s_send_heartbeat(bm_sender_t *s)
{
    bm_spool_stats_t st;
    bm_spool_stats(s->spool, &st);
    Branchmark__V1__Heartbeat hb = BRANCHMARK__V1__HEARTBEAT__INIT;
    hb.spool_depth = st.entries;
    hb.oldest_unsent_ms = st.oldest_unacked_ms;
    Branchmark__V1__Envelope env = BRANCHMARK__V1__ENVELOPE__INIT;
    env.protocol_version = BM_PROTOCOL_VERSION;
    env.agent_id = s->cfg->agent_id;
    env.branch_code = s->cfg->branch;
    env.stream_id = (char *)bm_spool_stream_id(s->spool);
    env.sequence = 0;
    env.sent_at_ms = bm_now_ms();
    env.body_case = BRANCHMARK__V1__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    size_t len;
    uint8_t *buf = bm_message_encode(&env.base, &len);
    if (!buf)
        return;
    int64_t now = bm_mono_ms();
    if (zmq_send(s->dealer, buf, len, ZMQ_DONTWAIT) == (int)len) {
        s->hb_outstanding = true;
        s->hb_sent_mono = now;
        s->hb_sent_wall = env.sent_at_ms;
        bm_debug(COMP, "sent heartbeat (spool depth %" PRIu64 ")", st.entries);
    }
    s->last_send_mono = now;
    free(buf);
}

/* ---- replies ---- */

static s_flight_t *s_flight_find(bm_sender_t *s, uint64_t seq)
{
    for (size_t i = 0; i < s->ring_count; i++) {
        s_flight_t *f = &s->ring[(s->ring_head + i) % BM_WINDOW_MAX];
        if (f->seq == seq)
            return f;
    }
    return NULL;
}

static void s_ring_pop_answered(bm_sender_t *s)
{
    while (s->ring_count && s->ring[s->ring_head].answered) {
        s->ring_head = (s->ring_head + 1) % BM_WINDOW_MAX;
        s->ring_count--;
    }
}

static void s_note_clock(bm_sender_t *s, int64_t collector_ms, int64_t sent_wall)
{
    if (collector_ms <= 0)
        return;
    int64_t now = bm_now_ms();
    /* The collector read its clock about half-way through the round trip. */
    int64_t local = sent_wall > 0 && sent_wall <= now ? sent_wall + (now - sent_wall) / 2 : now;
    int64_t skew = local - collector_ms;
    s->info.clock_skew_known = true;
    s->info.clock_skew_ms = skew;
    int64_t mono = bm_mono_ms();
    if ((skew > BM_SKEW_WARN_MS || skew < -BM_SKEW_WARN_MS) &&
        (s->last_skew_warn_mono == 0 || mono - s->last_skew_warn_mono >= BM_SKEW_WARN_EVERY_MS)) {
        bm_warn(COMP, "local clock differs from the collector's by %lld ms (local - "
                "collector); record times come from the store systems, check NTP",
                (long long)skew);
        s->last_skew_warn_mono = mono;
    }
}

/* Writes the refused records of batch seq to the dead-letter folder. */
/* The spool entry of batch seq (the caller frees it), or NULL: *gone is
 * set when the spool no longer holds it (acknowledged before), clear on a
 * read error. */
static Branchmark__V1__SpoolEntry *s_spool_entry(bm_sender_t *s, uint64_t seq, bool *gone)
{
    bm_err_t err = {{0}};
    Branchmark__V1__SpoolEntry *entry = NULL;
    bm_spool_cursor_t *cur = bm_spool_cursor_new(s->spool, &err);
    uint64_t got = 0;
    uint8_t *payload = NULL;
    size_t len = 0;
    if (cur && bm_spool_cursor_seek(cur, seq, &err) == 0 &&
        bm_spool_cursor_next(cur, &got, &payload, &len, NULL, &err) == 1 && got == seq)
        entry = branchmark__v1__spool_entry__unpack(NULL, len, payload);
    free(payload);
    bm_spool_cursor_destroy(&cur);
    *gone = !entry && got != seq && !err.msg[0];
    return entry;
}

static void s_dead_letter(bm_sender_t *s, uint64_t seq, const Branchmark__V1__Ack *ack)
{
    const char *stream = bm_spool_stream_id(s->spool);
    bool gone;
    Branchmark__V1__SpoolEntry *entry = s_spool_entry(s, seq, &gone);
    if (gone) {
        /* Already acknowledged: these rejections were handled before. */
        bm_debug(COMP, "batch %" PRIu64 " already acknowledged; rejections not written again",
                 seq);
        return;
    }
    size_t written = 0;
    for (size_t i = 0; i < ack->n_rejected; i++) {
        const Branchmark__V1__RecordRejection *rj = ack->rejected[i];
        const bm_record_t *rec = NULL;
        if (entry && entry->batch && rj->index < entry->batch->n_records)
            rec = entry->batch->records[rj->index];
        bm_warn(COMP, "collector refused record \"%s\" of batch %" PRIu64 " (%s): %s",
                rj->source_id, seq, entry ? entry->origin_file : "?", rj->reason);
        bm_err_t derr = {{0}};
        if (bm_deadletter_add(s->dl, stream, seq, entry ? entry->origin_file : "",
                              rj->source_id, rec, rj->reason, &derr) < 0) {
            bm_error(COMP, "%s", derr.msg);
            s_set_error(s, "%s", derr.msg);
            continue;
        }
        written++;
    }
    /* The inbox lists them in the file's .errors, so that the file ends in
     * rejected/ with the reasons, where store IT looks. */
    for (size_t i = 0; s->on_refused && entry && i < ack->n_rejected; i++)
        s->on_refused(s->on_refused_ctx, entry->origin_file ? entry->origin_file : "",
                      ack->rejected[i]->source_id, ack->rejected[i]->reason);
    bm_err_t derr = {{0}};
    if (written && bm_deadletter_sync(s->dl, &derr) < 0) {
        bm_error(COMP, "%s", derr.msg);
        s_set_error(s, "%s", derr.msg);
    }
    s->info.records_deadlettered += written;
    if (entry)
        branchmark__v1__spool_entry__free_unpacked(entry, NULL);
}

static void s_on_ack(bm_sender_t *s, const bm_reply_t *r)
{
    const Branchmark__V1__Ack *ack = r->ack;
    s_flight_t *f = s_flight_find(s, r->sequence);
    if (f && f->answered)
        f = NULL;
    s_note_clock(s, r->collector_time_ms, f ? f->sent_wall : 0);
    if (ack->n_rejected)
        s_dead_letter(s, r->sequence, ack);
    bm_spool_stats_t before, after;
    bm_spool_stats(s->spool, &before);
    bm_err_t err = {{0}};
    if (bm_spool_ack(s->spool, r->sequence, &err) < 0) {
        bm_error(COMP, "could not record the acknowledgement of batch %" PRIu64 ": %s",
                 r->sequence, err.msg);
        s_set_error(s, "could not record an acknowledgement: %s", err.msg);
    }
    if (ack->batch_was_duplicate)
        bm_debug(COMP, "batch %" PRIu64 " was already stored by the collector", r->sequence);
    else
        bm_debug(COMP, "batch %" PRIu64 " acknowledged: %u stored, %u duplicates, %zu refused",
                 r->sequence, ack->stored, ack->duplicates, ack->n_rejected);
    if (ack->corrected && !ack->batch_was_duplicate)
        bm_info(COMP, "batch %" PRIu64 ": %u records were corrections of records stored "
                "before (same source_id, other content)", r->sequence, ack->corrected);
    /* Count each batch once, when the spool first learns of its ack: a
     * resend is acknowledged again, and a reply may outlive its ring slot. */
    bm_spool_stats(s->spool, &after);
    if (after.entries < before.entries) {
        s->info.records_acked += f ? f->n_records
                                   : ack->stored + ack->duplicates + ack->corrected +
                                         ack->n_rejected;
        s->info.records_rejected += ack->n_rejected;
    }
    if (f) {
        f->answered = true;
        s_ring_pop_answered(s);
    }
    s->info.last_ack_ms = bm_now_ms();
    s->backoff_attempt = 0;
    if (s->refused) {
        bm_info(COMP, "collector \"%s\" accepts this agent again", s_endpoint(s));
        s->refused = false;
    }
    s->state = s->connected ? S_CONNECTED : s->state == S_REFUSED ? S_CONNECTING : s->state;
}

static const char *s_code_name(Branchmark__V1__ErrorCode code)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&branchmark__v1__error_code__descriptor, code);
    return v ? v->name : "ERROR_UNKNOWN";
}

/* Gives batch seq up after the collector refused its bytes
 * S_PERMANENT_TRIES times (code, msg): every record of it is refused with
 * that reason, through the same path as records the collector refuses one
 * by one (dead letter, the file's .errors, then the spool's ack), so
 * nothing is lost silently and the spool moves on. */
static void s_give_up_batch(bm_sender_t *s, uint64_t seq, const char *code, const char *msg)
{
    bool gone;
    Branchmark__V1__SpoolEntry *entry = s_spool_entry(s, seq, &gone);
    size_t n = entry && entry->batch ? entry->batch->n_records : 0;
    char reason[512];
    snprintf(reason, sizeof reason, "the collector refused the whole batch %d times (%s: %s); "
             "it cannot be sent again unchanged", S_PERMANENT_TRIES, code, msg);
    Branchmark__V1__RecordRejection *rj = calloc(n ? n : 1, sizeof *rj);
    Branchmark__V1__RecordRejection **rjp = calloc(n ? n : 1, sizeof *rjp);
    if (!rj || !rjp) {
        bm_error(COMP, "out of memory giving up batch %" PRIu64 "; it is kept", seq);
    } else {
        for (size_t i = 0; i < n; i++) {
            branchmark__v1__record_rejection__init(&rj[i]);
            rj[i].index = (uint32_t)i;
            rj[i].source_id = entry->batch->records[i]->source_id;
            rj[i].reason = reason;
            rjp[i] = &rj[i];
        }
        Branchmark__V1__Ack ack = BRANCHMARK__V1__ACK__INIT;
        ack.n_rejected = n;
        ack.rejected = rjp;
        Branchmark__V1__Reply reply = BRANCHMARK__V1__REPLY__INIT;
        reply.sequence = seq;
        reply.ack = &ack;
        bm_error(COMP, "batch %" PRIu64 " (%zu records of \"%s\") given up: %s", seq, n,
                 entry && entry->origin_file ? entry->origin_file : "?", reason);
        s_on_ack(s, &reply);
    }
    free(rj);
    free(rjp);
    if (entry)
        branchmark__v1__spool_entry__free_unpacked(entry, NULL);
}

static void s_on_error(bm_sender_t *s, const bm_reply_t *r)
{
    const Branchmark__V1__Error *e = r->error;
    bool current = r->sequence == 0 ? s->hb_outstanding
                                    : (s_flight_find(s, r->sequence) != NULL);
    if (!current) {
        /* A reply to a send from before the last restart: already handled. */
        bm_debug(COMP, "ignoring %s for batch %" PRIu64 " sent before a resend",
                 s_code_name(e->code), r->sequence);
        return;
    }
    const char *msg = e->message ? e->message : "";
    switch (e->code) {
    case BRANCHMARK__V1__ERROR_CODE__ERROR_FORBIDDEN:
        bm_error(COMP, "collector refused this agent's key (not enrolled or revoked): %s; "
                 "nothing is dropped, retrying in %lld s", msg,
                 (long long)(s->cfg->backoff_max_ms / 1000));
        s_set_error(s, "collector refused this agent's key (not enrolled or revoked): %s", msg);
        s->refused = true;
        s->state = S_REFUSED;
        s_restart_window(s);
        s_backoff(s, true);
        return;
    case BRANCHMARK__V1__ERROR_CODE__ERROR_UNKNOWN_BRANCH:
    case BRANCHMARK__V1__ERROR_CODE__ERROR_UNSUPPORTED_VERSION:
        bm_error(COMP, "collector \"%s\" refuses this agent (%s): %s; nothing is dropped, "
                 "retrying in %lld s", s_endpoint(s), s_code_name(e->code), msg,
                 (long long)(s->cfg->backoff_max_ms / 1000));
        s_set_error(s, "collector refuses this agent (%s): %s", s_code_name(e->code), msg);
        s->refused = true;
        s->state = S_REFUSED;
        s_restart_window(s);
        s_backoff(s, true);
        return;
    case BRANCHMARK__V1__ERROR_CODE__ERROR_UNAVAILABLE:
        bm_warn(COMP, "collector \"%s\" is temporarily unavailable: %s; retrying",
                s_endpoint(s), msg);
        s_set_error(s, "collector unavailable: %s", msg);
        break;
    case BRANCHMARK__V1__ERROR_CODE__ERROR_MALFORMED:
    case BRANCHMARK__V1__ERROR_CODE__ERROR_TOO_LARGE:
        /* Determined by the bytes: the same batch gets the same answer
         * (docs/protocol.md).  A few tries cover a collector being
         * upgraded; then the batch goes aside, visibly. */
        if (r->sequence > 0) {
            s->permanent_tries = s->permanent_seq == r->sequence ? s->permanent_tries + 1 : 1;
            s->permanent_seq = r->sequence;
            if (s->permanent_tries >= S_PERMANENT_TRIES) {
                s_set_error(s, "batch %" PRIu64 " given up: collector answered %s: %s",
                            r->sequence, s_code_name(e->code), msg);
                s->permanent_tries = 0;
                s_give_up_batch(s, r->sequence, s_code_name(e->code), msg);
                return;
            }
        }
        /* fall through */
    default:
        /* INVALID_ENVELOPE (also a clock ahead of the collector's, which
         * may be fixed), INTERNAL: retried with backoff. */
        bm_error(COMP, "collector \"%s\" answered batch %" PRIu64 " with %s: %s; retrying",
                 s_endpoint(s), r->sequence, s_code_name(e->code), msg);
        s_set_error(s, "collector answered %s: %s", s_code_name(e->code), msg);
        break;
    }
    s_restart_window(s);
    s_backoff(s, false);
}

static void s_on_reply(bm_sender_t *s, const void *data, size_t len)
{
    bm_err_t err = {{0}};
    bm_reply_t *r = bm_reply_decode(data, len, (size_t)s->cfg->max_reply_bytes, &err);
    if (!r) {
        bm_warn(COMP, "undecodable reply from \"%s\": %s", s_endpoint(s), err.msg);
        return;
    }
    const char *stream = bm_spool_stream_id(s->spool);
    if (!r->stream_id || strcmp(r->stream_id, stream) != 0) {
        /* An Error about an envelope the collector could not read at all
         * carries no stream; treat it as ours only if it matches nothing else. */
        if (r->result_case == BRANCHMARK__V1__REPLY__RESULT_ERROR &&
            (!r->stream_id || !r->stream_id[0])) {
            bm_error(COMP, "collector \"%s\" answered %s: %s", s_endpoint(s),
                     s_code_name(r->error->code), r->error->message);
            s_set_error(s, "collector answered %s: %s", s_code_name(r->error->code),
                        r->error->message);
        } else {
            bm_warn(COMP, "reply for another stream \"%s\" ignored", r->stream_id);
        }
        bm_reply_free(&r);
        return;
    }
    switch (r->result_case) {
    case BRANCHMARK__V1__REPLY__RESULT_ACK:
        if (r->sequence == 0 || !r->ack)
            bm_warn(COMP, "ack without a batch sequence ignored");
        else
            s_on_ack(s, r);
        break;
    case BRANCHMARK__V1__REPLY__RESULT_ERROR:
        if (r->error)
            s_on_error(s, r);
        break;
    case BRANCHMARK__V1__REPLY__RESULT_HEARTBEAT_OK:
        s_note_clock(s, r->collector_time_ms, s->hb_outstanding ? s->hb_sent_wall : 0);
        s->hb_outstanding = false;
        if (s->refused) {
            /* A heartbeat is no proof that batches are accepted again; only
             * an ack clears "refused". */
        }
        bm_debug(COMP, "heartbeat answered");
        break;
    default:
        bm_warn(COMP, "reply without a result ignored");
        break;
    }
    bm_reply_free(&r);
}

static void s_read_replies(bm_sender_t *s)
{
    for (int i = 0; s->dealer && i < BM_RECV_PER_PROCESS; i++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, s->dealer, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        /* A reply is one frame; if a collector adds an envelope delimiter,
         * the payload is the last frame. */
        while (zmq_msg_more(&msg)) {
            zmq_msg_close(&msg);
            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, s->dealer, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&msg);
                return;
            }
        }
        s_on_reply(s, zmq_msg_data(&msg), zmq_msg_size(&msg));
        zmq_msg_close(&msg);
    }
}

static void s_read_monitor(bm_sender_t *s)
{
    for (int i = 0; s->monitor && i < 64; i++) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, s->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&ev) >= 2)
            memcpy(&event, zmq_msg_data(&ev), 2);
        bool more = zmq_msg_more(&ev);
        zmq_msg_close(&ev);
        if (more) {
            zmq_msg_init(&addr);
            if (zmq_msg_recv(&addr, s->monitor, 0) >= 0)
                zmq_msg_close(&addr);
            else
                zmq_msg_close(&addr);
        }
        int64_t now = bm_mono_ms();
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            bool again = s->ever_connected;
            s->connected = true;
            s->ever_connected = true;
            if (!s->refused)
                s->state = S_CONNECTED;
            bm_info(COMP, "connected to collector \"%s\"", s_endpoint(s));
            /* Sends queued on a connection that broke may be lost: resend. */
            if (again)
                s_restart_window(s);
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            /* ZAP said no: retrying fast cannot help, so the socket is
             * closed and reopened only after backoff_max. */
            bm_error(COMP, "collector \"%s\" refused this agent's key (not enrolled or "
                     "revoked); retrying in %lld s", s_endpoint(s),
                     (long long)(s->cfg->backoff_max_ms / 1000));
            s_set_error(s, "collector refused this agent's key (not enrolled or revoked)");
            s->refused = true;
            s->state = S_REFUSED;
            s->connected = false;
            s_close_socket(s);
            s_restart_window(s);
            s_backoff(s, true);
            return;
        } else if (event == ZMQ_EVENT_DISCONNECTED ||
                   event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
                   event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                   event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            if (s->connected || event != ZMQ_EVENT_DISCONNECTED) {
                bm_warn(COMP, "%s collector \"%s\"",
                        event == ZMQ_EVENT_DISCONNECTED ? "disconnected from"
                                                        : "handshake failed with",
                        s_endpoint(s));
                s_set_error(s, "%s collector \"%s\"",
                            event == ZMQ_EVENT_DISCONNECTED ? "disconnected from"
                                                            : "handshake failed with",
                            s_endpoint(s));
            }
            if (s->connected)
                s->wait_since_mono = now;
            s->connected = false;
            if (!s->refused)
                s->state = S_DISCONNECTED;
        }
    }
}

/* ---- the loop's entry points ---- */

int bm_sender_timeout_ms(const bm_sender_t *s, int max_ms)
{
    int64_t now = bm_mono_ms(), next = now + max_ms;
    const bm_agent_config_t *cfg = s->cfg;
    if (now < s->backoff_until_mono) {
        if (s->backoff_until_mono < next)
            next = s->backoff_until_mono;
    } else if (!s->dealer) {
        return 0;
    } else {
        if (!s->connected && s->wait_since_mono + cfg->ack_timeout_ms < next)
            next = s->wait_since_mono + cfg->ack_timeout_ms;
        if (s->ring_count) {
            int64_t d = s->ring[s->ring_head].sent_mono + cfg->ack_timeout_ms;
            if (d < next)
                next = d;
        }
        if (s->hb_outstanding && s->hb_sent_mono + cfg->ack_timeout_ms < next)
            next = s->hb_sent_mono + cfg->ack_timeout_ms;
        if (s->connected && !s->ring_count && !s->hb_outstanding && !s->held &&
            s->last_send_mono + cfg->heartbeat_interval_ms < next)
            next = s->last_send_mono + cfg->heartbeat_interval_ms;
    }
    int64_t t = next - now;
    return t < 0 ? 0 : t > max_ms ? max_ms : (int)t;
}

void bm_sender_wait(bm_sender_t *s, int timeout_ms)
{
    if (!s->dealer) {
        if (timeout_ms > 0)
            poll(NULL, 0, timeout_ms);
        return;
    }
    zmq_pollitem_t items[2] = {
        {s->dealer, 0, ZMQ_POLLIN, 0},
        {s->monitor, 0, ZMQ_POLLIN, 0},
    };
    /* Wait for room in the queue only when a send is actually due. */
    if (s->held && s->connected && bm_mono_ms() >= s->backoff_until_mono)
        items[0].events |= ZMQ_POLLOUT;
    zmq_poll(items, 2, timeout_ms);
}

void bm_sender_process(bm_sender_t *s)
{
    s_read_monitor(s);
    s_read_replies(s);

    int64_t now = bm_mono_ms();
    const bm_agent_config_t *cfg = s->cfg;
    char why[256];
    if (!s->dealer) {
        if (now >= s->backoff_until_mono)
            s_open_socket(s);
        return;
    }
    if (!s->connected && now - s->wait_since_mono >= cfg->ack_timeout_ms) {
        snprintf(why, sizeof why, "%s within %lld ms",
                 s->ever_connected ? "no reconnection" : "could not connect",
                 (long long)cfg->ack_timeout_ms);
        s_fail_over(s, why);
        return;
    }
    if (s->ring_count && now - s->ring[s->ring_head].sent_mono >= cfg->ack_timeout_ms) {
        snprintf(why, sizeof why, "no reply to batch %" PRIu64 " within %lld ms",
                 s->ring[s->ring_head].seq, (long long)cfg->ack_timeout_ms);
        s_fail_over(s, why);
        return;
    }
    if (s->hb_outstanding && now - s->hb_sent_mono >= cfg->ack_timeout_ms) {
        snprintf(why, sizeof why, "no reply to a heartbeat within %lld ms",
                 (long long)cfg->ack_timeout_ms);
        s_fail_over(s, why);
        return;
    }
    if (now < s->backoff_until_mono)
        return;
    s_fill_window(s);
    if (s->connected && !s->ring_count && !s->held && !s->hb_outstanding &&
        now - s->last_send_mono >= cfg->heartbeat_interval_ms)
        s_send_heartbeat(s);
}

void bm_sender_reconfigure(bm_sender_t *s)
{
    const bm_strlist_t *l = &s->cfg->collector;
    bool same = l->count == s->n_endpoints;
    for (size_t i = 0; same && i < l->count; i++)
        same = strcmp(l->items[i], s->endpoints[i]) == 0;
    if (same)
        return;
    if (s_copy_endpoints(s) < 0) {
        bm_error(COMP, "out of memory applying the new collector list; keeping the old one");
        return;
    }
    bm_info(COMP, "collector endpoints changed; reconnecting to \"%s\"", s_endpoint(s));
    s_close_socket(s);
    s->state = s->refused ? S_REFUSED : S_DISCONNECTED;
    s_restart_window(s);
    s->backoff_until_mono = 0;
    s->backoff_attempt = 0;
}

void bm_sender_info(const bm_sender_t *s, bm_sender_info_t *out)
{
    *out = s->info;
    out->state = s_state_names[s->state];
    out->endpoint = s_endpoint(s);
    out->in_flight = s->ring_count;
    out->last_error = s->last_error;
}

void bm_sender_on_refused(bm_sender_t *sender, bm_sender_refused_fn fn, void *ctx)
{
    sender->on_refused = fn;
    sender->on_refused_ctx = ctx;
}
