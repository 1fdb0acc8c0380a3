/* receiver: ROUTER sockets, envelope handling, replies and health; see
 * receiver.h.
 *
 * Owns: the ZeroMQ context and sockets, the store, the reference cache, a
 * fixed-size cache of agent -> branch bindings (sized from max_agents), the
 * batches waiting for their group commit with the pools of their accepted
 * flags and rejections (allocated once at the group caps), the
 * counters and histograms, one ZeroMQ monitor socket per ROUTER socket
 * (connections opened and closed) and the snapshot /metrics reads.
 *
 * Metrics: the receiver's thread alone updates the counters; at the end of
 * every poll round (at most S_POLL_MS apart, and after every group commit)
 * s_publish copies them into a snapshot under m_lock, which
 * bm_receiver_metrics (the metrics listener's thread) copies out and
 * renders.  So a scrape costs the receiver one memcpy of a few KiB per
 * round and never a lock held while it works, and a page is always one
 * consistent state (the records of a batch counted together with it). */
#include "receiver.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bm_keyfile.h"
#include "bm_log.h"
#include "bm_prom.h"
#include "bm_record.h"
#include "bm_time.h"
#include "bm_wire.h"
#include "db.h"
#include "migrate.h"
#include "refcache.h"
#include "store.h"
#include "zap.h"

#define S_POLL_MS 250
#define S_BACKOFF_MIN_MS 500
#define S_BACKOFF_MAX_MS 30000
#define S_DRAIN_MAX 64                 /* messages per socket per poll round */
#define S_AGENT_SLOTS_MIN 4096         /* agent binding cache (power of two), at least */
#define S_AGENT_REFRESH_MS 60000       /* last_seen is refreshed this often */
#define S_AGENT_TOUCH_CHUNK 2000       /* agents per last_seen UPDATE */
#define S_NOFILE_SPARE 256             /* descriptors besides one per agent */
/* A draft context option of libzmq 4.3 (zmq.h hides it without
 * ZMQ_BUILD_DRAFT_API, the library accepts it). */
#ifndef ZMQ_ZERO_COPY_RECV
#define ZMQ_ZERO_COPY_RECV 10
#endif
#define S_ERROR_CODES 9
#define S_KEY_SLOTS 4096               /* CURVE key status cache (power of two) */
#define S_KEY_RECHECK_MS 3000          /* a revoked key is refused within this */
/* Per-kind record counters: the kinds of bm_record.h (index 0 = "none", a
 * record without a kind, which can only be rejected), and S_KIND_MIXED for
 * stored and duplicate records of a batch of several kinds with duplicates,
 * which the store does not split by kind (store.h reports per batch). */
#define S_KIND_MIXED BM_KIND_COUNT
#define S_KINDS (BM_KIND_COUNT + 1)
#define S_PAGE_MAX (256 * 1024)        /* the /metrics page, at most */

/* 16 bytes a slot, the id on the heap: the table has 2 x max_agents
 * slots, all of whose pages are touched (32,768 slots for 10,000 agents:
 * 0.5 MiB + the ids instead of 2.4 MiB with the id in the slot). */
typedef struct {
    char *agent_id;                       /* NULL = free slot; owned */
    int32_t branch_id;                    /* 0: binding to be checked again */
    bool seen;                            /* an envelope since the last refresh */
} s_agent_slot_t;

/* A batch validated and waiting for its group's COMMIT (owns env and id).
 * Its accepted flags and rejections live in the receiver's pools at
 * [off, off + n_records): a batch can be rejected at most once per record. */
typedef struct {
    void *sock;
    zmq_msg_t id;
    bm_envelope_t *env;
    int32_t branch_id;
    char digest[2 * SHA256_DIGEST_LENGTH + 1];
    size_t off;
    size_t n_rej;
    size_t n_rej_ours;          /* rejected by validation (the rest: by the database) */
    double t0;                  /* monotonic s: when its message was read (ack latency) */
} s_pending_t;

/* What the allow-list says about one CURVE key, re-read every
 * S_KEY_RECHECK_MS: the revocation cut-off for peers already connected. */
typedef struct {
    char key[BM_Z85_KEY_LEN + 1];         /* "" = free slot */
    char agent_id[BM_AGENT_ID_MAX + 1];
    int32_t branch_id;
    bool live;                            /* enrolled and not revoked */
    int64_t checked_ms;                   /* monotonic */
} s_key_slot_t;

typedef struct {
    uint64_t frames, dropped_messages, envelopes_ok, heartbeats;
    /* security events: refused by key state or identity, per reason */
    uint64_t sec_revoked, sec_wrong_branch, sec_wrong_agent, sec_no_identity;
    /* hostile envelopes, per reason (the others count under errors[]) */
    uint64_t future_dated, replayed;
    uint64_t batches_stored, batches_duplicate;
    uint64_t groups, group_batches;   /* group commits and the batches in them */
    uint64_t records_stored, records_duplicate, records_rejected;
    uint64_t db_reconnects;
    /* records of stored (not resent) batches, per kind (S_KIND_*) */
    uint64_t kind_stored[S_KINDS], kind_duplicate[S_KINDS], kind_rejected[S_KINDS];
    /* TCP connections of the ROUTER sockets (monitor events) */
    uint64_t conns_accepted, conns_closed;
    uint64_t errors[S_ERROR_CODES];
    char last_error[BM_ERR_MSG_MAX];
    int64_t last_error_ms;
} s_counters_t;

/* What /metrics renders: copied by s_publish under m_lock. */
typedef struct {
    s_counters_t c;
    bm_prom_hist_t ack, gbatches, grecords;
    bool db_ready, curve;
    size_t n_agents_cached, n_branches, n_competitors, n_questionnaires;
    int64_t started_ms;
} s_snapshot_t;

struct bm_receiver {
    const bm_collector_config_t *cfg;
    void *ctx;
    void **socks;
    zmq_pollitem_t *items;
    size_t n_socks;

    bm_store_t *store;
    bm_refcache_t *cache;
    bool db_ready;              /* connected and the cache loaded */
    bool migrated;
    bool ever_connected;
    int64_t next_db_attempt_ms; /* monotonic */
    int64_t backoff_ms;
    /* Why the database is not ready, in an operator's words (bm_db_cause):
     * logged, and told to agents in ERROR_UNAVAILABLE. */
    char db_error[BM_ERR_MSG_MAX];
    int64_t db_down_ms;         /* monotonic: when it went down (0: up) */
    int64_t db_warned_ms;       /* monotonic: the last warning about it */

    s_agent_slot_t *agents;
    size_t agent_slots;         /* power of two */
    size_t n_agents;
    int64_t next_touch_ms;      /* monotonic: next batched last_seen refresh */

    /* Group commit: batches waiting for one transaction, and the pools of
     * their accepted flags and rejections (pool_cap = group_max_records +
     * one largest batch). */
    s_pending_t *pending;
    size_t n_pending, max_pending;
    size_t pool_used, pool_cap;
    bm_store_batch_t *g_batches;
    const bm_store_batch_t **g_ptrs;
    bm_store_result_t *g_results;
    bm_store_status_t *g_status;
    bm_err_t *g_errs;
    Branchmark__V1__RecordRejection *rej;
    Branchmark__V1__RecordRejection **rej_ptrs;
    char (*rej_reasons)[BM_ERR_MSG_MAX];
    bool *accepted;
    const char **sort_buf;
    bm_span_t *spans;           /* where the records of the current frame lie */
    size_t n_spans;

    bool curve;                 /* CURVE server with the ZAP handler */
    bm_zap_t *zap;
    s_key_slot_t *keys;
    size_t n_keys;

    s_counters_t c;
    int64_t started_ms;
    int64_t next_stats_ms;

    void **mons;                /* PAIR sockets reading each ROUTER's monitor */
    double msg_t0;              /* monotonic s: when the message in hand was read */
    bm_prom_hist_t h_ack;       /* read -> ack sent, seconds */
    bm_prom_hist_t h_gbatches;  /* batches per group commit */
    bm_prom_hist_t h_grecords;  /* records per group commit */
    pthread_mutex_t m_lock;     /* guards snap */
    bool m_lock_ok;
    s_snapshot_t snap;
};

/* Forgets every cached binding (SIGHUP, shutdown). */
static void s_agents_clear(bm_receiver_t *r)
{
    if (!r->agents)
        return;
    for (size_t i = 0; i < r->agent_slots; i++)
        free(r->agents[i].agent_id);
    memset(r->agents, 0, r->agent_slots * sizeof *r->agents);
    r->n_agents = 0;
}

static const char *const s_error_names[S_ERROR_CODES] = {
    "unspecified", "malformed", "unsupported_version", "unknown_branch", "invalid_envelope",
    "too_large", "unavailable", "forbidden", "internal"};

/* ------------------------------------------------------------------ */
/* Setup                                                               */
/* ------------------------------------------------------------------ */

/* Every agent holds a TCP connection, i.e. a descriptor: the soft limit
 * (often 1024) goes up to the hard limit, and a hard limit below
 * max_agents is reported as an error (agents past it cannot connect). */
static void s_raise_nofile(const bm_collector_config_t *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        bm_warn("receiver", "could not read the open-file limit: %s", strerror(errno));
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl.rlim_cur = rl.rlim_max;
        else
            bm_warn("receiver", "could not raise the open-file limit to %llu: %s",
                    (unsigned long long)rl.rlim_max, strerror(errno));
    }
    unsigned long long need = (unsigned long long)cfg->max_agents + S_NOFILE_SPARE;
    if (rl.rlim_cur != RLIM_INFINITY && (unsigned long long)rl.rlim_cur < need)
        bm_error("receiver", "open-file limit %llu is too low for max_agents = %lld: at most "
                 "about %llu agents can connect at once; raise the hard limit to %llu or more "
                 "(ulimit -Hn, systemd LimitNOFILE=)", (unsigned long long)rl.rlim_cur,
                 (long long)cfg->max_agents,
                 (unsigned long long)rl.rlim_cur > S_NOFILE_SPARE
                     ? (unsigned long long)rl.rlim_cur - S_NOFILE_SPARE : 0ULL, need);
    else
        bm_info("receiver", "open-file limit %llu (max_agents = %lld)",
                (unsigned long long)rl.rlim_cur, (long long)cfg->max_agents);
}

/* The kernel silently caps the listen backlog at net.core.somaxconn. */
static void s_check_somaxconn(int backlog)
{
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    if (!f)
        return;
    long v = 0;
    if (fscanf(f, "%ld", &v) == 1 && v < backlog)
        bm_warn("receiver", "net.core.somaxconn is %ld, below listen_backlog = %d: the kernel "
                "uses %ld, and agents reconnecting at once may wait for SYN retries "
                "(sysctl -w net.core.somaxconn=%d)", v, backlog, v, backlog);
    fclose(f);
}

static double s_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_hists_init(bm_receiver_t *r)
{
    static const double ack[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                 0.25,  0.5,    1,     2.5,  5,     10,   30};
    static const double batches[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
    static const double records[] = {1, 10, 100, 500, 1000, 2000, 5000, 10000, 20000, 50000};
    bm_prom_hist_init(&r->h_ack, ack, sizeof ack / sizeof ack[0]);
    bm_prom_hist_init(&r->h_gbatches, batches, sizeof batches / sizeof batches[0]);
    bm_prom_hist_init(&r->h_grecords, records, sizeof records / sizeof records[0]);
}

/* Watches the connections of ROUTER socket i: accepted and disconnected
 * (libzmq reports a disconnect for every accepted connection that ends,
 * also after a refused handshake).  The reading side has no receive limit
 * (RCVHWM 0 makes the inproc pipe unbounded), so the I/O thread never
 * blocks on an event the receiver has not read yet; the events wait at
 * most one poll round.  Returns 0, or -1 with err. */
static int s_monitor(bm_receiver_t *r, size_t i, bm_err_t *err)
{
    char ep[64];
    int zero = 0;
    snprintf(ep, sizeof ep, "inproc://bm-receiver-monitor-%zu", i);
    if (zmq_socket_monitor(r->socks[i], ep, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) < 0)
        return bm_err_set(err, "could not monitor the socket of \"%s\": %s",
                          r->cfg->listen.items[i], zmq_strerror(errno));
    void *m = zmq_socket(r->ctx, ZMQ_PAIR);
    if (!m || zmq_setsockopt(m, ZMQ_RCVHWM, &zero, sizeof zero) < 0 ||
        zmq_setsockopt(m, ZMQ_LINGER, &zero, sizeof zero) < 0 || zmq_connect(m, ep) < 0) {
        if (m)
            zmq_close(m);
        return bm_err_set(err, "could not connect the monitor of \"%s\": %s",
                          r->cfg->listen.items[i], zmq_strerror(errno));
    }
    r->mons[i] = m;
    r->items[r->n_socks + i] = (zmq_pollitem_t){.socket = m, .events = ZMQ_POLLIN};
    return 0;
}

/* Reads the waiting events of monitor socket m (two frames each: event
 * number and value, then the endpoint). */
static void s_monitor_read(bm_receiver_t *r, void *m)
{
    for (int k = 0; k < 4 * S_DRAIN_MAX; k++) {
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, m, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&ev) >= sizeof event)
            memcpy(&event, zmq_msg_data(&ev), sizeof event);
        bool more = zmq_msg_more(&ev);
        zmq_msg_close(&ev);
        while (more) {
            zmq_msg_init(&ev);
            if (zmq_msg_recv(&ev, m, 0) < 0)
                more = false;
            else
                more = zmq_msg_more(&ev);
            zmq_msg_close(&ev);
        }
        if (event == ZMQ_EVENT_ACCEPTED)
            r->c.conns_accepted++;
        else if (event == ZMQ_EVENT_DISCONNECTED)
            r->c.conns_closed++;
    }
}

/* Copies what /metrics shows into the snapshot (the receiver's thread). */
static void s_publish(bm_receiver_t *r)
{
    if (!r->m_lock_ok)
        return;
    size_t nb = 0, nc = 0, nq = 0;
    if (r->cache)
        bm_refcache_counts(r->cache, &nb, &nc, &nq);
    pthread_mutex_lock(&r->m_lock);
    r->snap.c = r->c;
    r->snap.ack = r->h_ack;
    r->snap.gbatches = r->h_gbatches;
    r->snap.grecords = r->h_grecords;
    r->snap.db_ready = r->db_ready;
    r->snap.curve = r->curve;
    r->snap.n_agents_cached = r->n_agents;
    r->snap.n_branches = nb;
    r->snap.n_competitors = nc;
    r->snap.n_questionnaires = nq;
    r->snap.started_ms = r->started_ms;
    pthread_mutex_unlock(&r->m_lock);
}

/* Creates, configures and binds the ROUTER socket of every listen
 * endpoint (CURVE server with secret when r->curve) and its monitor.
 * Returns 0, or -1 with err (the sockets made so far stay in r for
 * bm_receiver_destroy). */
static int s_bind_all(bm_receiver_t *r, const char *secret, bm_err_t *err)
{
    const bm_collector_config_t *cfg = r->cfg;
    int64_t maxmsg = cfg->max_frame_bytes;
    int zero = 0;
    int ivl = (int)cfg->heartbeat_interval_ms;
    int timeout = ivl * 3;
    /* ZMQ_HEARTBEAT_TTL is carried in deciseconds on the wire (max 6553.5 s). */
    int ttl = timeout > 6553500 ? 6553500 : timeout;
    int one = 1;
    int backlog = (int)cfg->listen_backlog;
    /* Per peer: an agent sending with a window of 128 large batches would
     * otherwise queue them all here (libzmq's default is 1,000 messages). */
    int rcvhwm = (int)cfg->max_queued_per_agent;
    s_check_somaxconn(backlog);
    for (size_t i = 0; i < r->n_socks; i++) {
        const char *ep = cfg->listen.items[i];
        void *s = zmq_socket(r->ctx, ZMQ_ROUTER);
        if (!s || zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) < 0 ||
            zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &zero, sizeof zero) < 0 ||
            zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) < 0 ||
            zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl) < 0 ||
            zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout) < 0 ||
            zmq_setsockopt(s, ZMQ_HEARTBEAT_TTL, &ttl, sizeof ttl) < 0 ||
            zmq_setsockopt(s, ZMQ_BACKLOG, &backlog, sizeof backlog) < 0 ||
            zmq_setsockopt(s, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm) < 0 ||
            (r->curve &&
             (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) < 0 ||
              zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret, BM_Z85_KEY_LEN) < 0 ||
              zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, BM_ZAP_DOMAIN, strlen(BM_ZAP_DOMAIN)) < 0))) {
            bm_err_set(err, "could not create a socket for \"%s\": %s", ep, zmq_strerror(errno));
            if (s)
                zmq_close(s);
            return -1;
        }
        r->socks[i] = s;
        if (zmq_bind(s, ep) < 0)
            return bm_err_set(err, "could not bind \"%s\": %s", ep, zmq_strerror(errno));
        r->items[i] = (zmq_pollitem_t){.socket = s, .events = ZMQ_POLLIN};
        if (s_monitor(r, i, err) < 0)
            return -1;
        bm_info("receiver", "listening on %s", ep);
    }
    return 0;
}

bm_receiver_t *bm_receiver_new(const bm_collector_config_t *cfg, bm_err_t *err)
{
    bm_receiver_t *r = calloc(1, sizeof *r);
    if (!r) {
        bm_err_set(err, "out of memory");
        return NULL;
    }
    r->cfg = cfg;
    r->m_lock_ok = pthread_mutex_init(&r->m_lock, NULL) == 0;
    s_hists_init(r);
    r->n_socks = cfg->listen.count;
    r->socks = calloc(r->n_socks, sizeof *r->socks);
    /* items[0..n_socks): the ROUTER sockets; then their monitors. */
    r->items = calloc(2 * r->n_socks, sizeof *r->items);
    r->mons = calloc(r->n_socks, sizeof *r->mons);
    /* Bindings of max_agents at most half full: probes stay short and the
     * cache never overflows into a database round trip per envelope. */
    r->agent_slots = S_AGENT_SLOTS_MIN;
    while (r->agent_slots < 2 * (size_t)cfg->max_agents)
        r->agent_slots *= 2;
    r->agents = calloc(r->agent_slots, sizeof *r->agents);
    r->max_pending = (size_t)cfg->group_max_batches;
    r->pool_cap = (size_t)cfg->group_max_records + BM_MAX_RECORDS_PER_BATCH;
    r->pending = calloc(r->max_pending, sizeof *r->pending);
    r->g_batches = calloc(r->max_pending, sizeof *r->g_batches);
    r->g_ptrs = calloc(r->max_pending, sizeof *r->g_ptrs);
    r->g_results = calloc(r->max_pending, sizeof *r->g_results);
    r->g_status = calloc(r->max_pending, sizeof *r->g_status);
    r->g_errs = calloc(r->max_pending, sizeof *r->g_errs);
    r->rej = calloc(r->pool_cap, sizeof *r->rej);
    r->rej_ptrs = calloc(r->pool_cap, sizeof *r->rej_ptrs);
    r->rej_reasons = calloc(r->pool_cap, sizeof *r->rej_reasons);
    r->accepted = calloc(r->pool_cap, sizeof *r->accepted);
    r->sort_buf = calloc(BM_RECEIVER_SORT_MAX, sizeof *r->sort_buf);
    r->spans = calloc(BM_MAX_RECORDS_PER_BATCH, sizeof *r->spans);
    r->keys = calloc(S_KEY_SLOTS, sizeof *r->keys);
    r->store = bm_store_new(cfg->database);
    r->cache = bm_refcache_new();
    r->ctx = zmq_ctx_new();
    if (!r->socks || !r->items || !r->mons || !r->agents || !r->pending || !r->g_batches || !r->g_ptrs ||
        !r->g_results || !r->g_status || !r->g_errs || !r->rej || !r->rej_ptrs ||
        !r->rej_reasons || !r->accepted || !r->sort_buf || !r->spans || !r->keys || !r->store ||
        !r->cache || !r->ctx) {
        bm_err_set(err, "out of memory");
        bm_receiver_destroy(&r);
        return NULL;
    }
    if (bm_store_reserve(r->store, r->max_pending, (size_t)cfg->group_max_records, err) < 0) {
        bm_receiver_destroy(&r);
        return NULL;
    }
    /* With zero-copy receive every queued message pins the whole 8 KiB
     * decode buffer of its connection (plus its reference counters, about
     * 18 KiB); with 10,000 agents each holding a batch or two in the queue
     * that alone is hundreds of MiB.  Copying a message out of the buffer
     * costs a memcpy of its size. */
    if (zmq_ctx_set(r->ctx, ZMQ_ZERO_COPY_RECV, 0) < 0)
        bm_debug("receiver", "ZMQ_ZERO_COPY_RECV is not supported by this libzmq: %s",
                 zmq_strerror(errno));
    s_raise_nofile(cfg);
    /* CURVE: the secret key is read (and its mode checked) before anything
     * binds, and the ZAP handler runs before a peer can connect. */
    char secret[BM_Z85_KEY_LEN + 1] = "";
    if (*cfg->curve_secret_key_file) {
        if (bm_keyfile_read_secret(cfg->curve_secret_key_file, secret, err) < 0) {
            bm_receiver_destroy(&r);
            return NULL;
        }
        char pub[BM_Z85_KEY_LEN + 1];
        if (zmq_curve_public(pub, secret) < 0) {
            memset(secret, 0, sizeof secret);
            bm_err_set(err, "secret key file \"%s\": not a usable CURVE key",
                       cfg->curve_secret_key_file);
            bm_receiver_destroy(&r);
            return NULL;
        }
        if (!(r->zap = bm_zap_start(r->ctx, cfg->database, err))) {
            memset(secret, 0, sizeof secret);
            bm_receiver_destroy(&r);
            return NULL;
        }
        r->curve = true;
        bm_info("receiver", "CURVE on: public key %s; only enrolled agent keys may connect",
                pub);
    } else {
        bm_warn("receiver", "security: allow_plaintext = true and no curve_secret_key_file: "
                "ANY PEER MAY CONNECT AND WRITE DATA UNAUTHENTICATED AND UNENCRYPTED; "
                "use this only on loopback for development and benchmarks");
    }
    if (s_bind_all(r, secret, err) < 0) {
        memset(secret, 0, sizeof secret);
        bm_receiver_destroy(&r);
        return NULL;
    }
    memset(secret, 0, sizeof secret);
    r->started_ms = bm_now_ms();
    r->next_stats_ms = bm_mono_ms() + cfg->stats_interval_ms;
    r->next_touch_ms = bm_mono_ms() + S_AGENT_REFRESH_MS;
    r->backoff_ms = S_BACKOFF_MIN_MS;
    snprintf(r->db_error, sizeof r->db_error, "not connected yet");
    s_publish(r);
    return r;
}

void bm_receiver_destroy(bm_receiver_t **recv_p)
{
    if (!recv_p || !*recv_p)
        return;
    bm_receiver_t *r = *recv_p;
    if (r->socks)
        for (size_t i = 0; i < r->n_socks; i++)
            if (r->socks[i])
                zmq_close(r->socks[i]);
    if (r->mons)
        for (size_t i = 0; i < r->n_socks; i++)
            if (r->mons[i])
                zmq_close(r->mons[i]);
    bm_zap_stop(&r->zap);
    if (r->ctx)
        zmq_ctx_term(r->ctx);
    if (r->pending)
        for (size_t i = 0; i < r->n_pending; i++) {
            zmq_msg_close(&r->pending[i].id);
            bm_envelope_free(&r->pending[i].env);
        }
    bm_store_destroy(&r->store);
    bm_refcache_destroy(&r->cache);
    free(r->socks);
    free(r->items);
    free(r->mons);
    if (r->m_lock_ok)
        pthread_mutex_destroy(&r->m_lock);
    s_agents_clear(r);
    free(r->agents);
    free(r->pending);
    free(r->g_batches);
    free(r->g_ptrs);
    free(r->g_results);
    free(r->g_status);
    free(r->g_errs);
    free(r->rej);
    free(r->rej_ptrs);
    free(r->rej_reasons);
    free(r->accepted);
    free(r->sort_buf);
    free(r->spans);
    free(r->keys);
    free(r);
    *recv_p = NULL;
}

/* ------------------------------------------------------------------ */
/* Database state                                                      */
/* ------------------------------------------------------------------ */

/* How long ms is, for a log line: "0.5 s", "2 s", "30 s". */
static const char *s_secs(int64_t ms, char *buf, size_t size)
{
    if (ms % 1000 == 0)
        snprintf(buf, size, "%" PRId64 " s", ms / 1000);
    else
        snprintf(buf, size, "%.1f s", (double)ms / 1000);
    return buf;
}

/* The database is not usable (why: the error as libpq and the server put
 * it): closes the store's connection and schedules the next attempt with
 * backoff.  The log says what happened in words (bm_db_cause) and what the
 * collector does; the technical text goes to the debug log.  A retry that
 * fails for the same cause is not news: it is logged at debug, with a
 * reminder at warning level once a minute while the outage lasts. */
static void s_db_down(bm_receiver_t *r, const char *why)
{
    char cause[BM_ERR_MSG_MAX], wait[24], gone[24];
    int64_t now = bm_mono_ms();
    bm_db_cause(why, cause, sizeof cause);
    bm_debug("receiver", "database error: %s", why);
    if (r->db_ready || !r->db_down_ms)
        r->db_down_ms = now;
    s_secs(r->backoff_ms, wait, sizeof wait);
    if (r->db_ready || strcmp(cause, r->db_error) != 0) {
        bm_warn("receiver", "%s; batches wait (agents are told to retry later), retrying in %s",
                cause, wait);
        r->db_warned_ms = now;
    } else if (now - r->db_warned_ms >= 60000) {
        bm_warn("receiver", "still %s, for %s; batches wait, retrying in %s", cause,
                s_secs((now - r->db_down_ms) / 1000 * 1000, gone, sizeof gone), wait);
        r->db_warned_ms = now;
    } else {
        bm_debug("receiver", "%s; retrying in %s", cause, wait);
    }
    r->db_ready = false;
    snprintf(r->db_error, sizeof r->db_error, "%s", cause);
    bm_store_disconnect(r->store);
    r->next_db_attempt_ms = now + r->backoff_ms;
    r->backoff_ms = r->backoff_ms * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : r->backoff_ms * 2;
}

/* Connects, migrates once (migrate_on_start) and loads the cache.  Returns
 * 0 (ready or retry scheduled) or -1 with err when a migration is refused,
 * which no retry can fix. */
static int s_db_connect(bm_receiver_t *r, bm_err_t *fatal)
{
    bm_err_t err;
    if (r->cfg->migrate_on_start && !r->migrated) {
        PGconn *conn = bm_db_connect(r->cfg->database, "branchmark-collector", &err);
        if (!conn) {
            s_db_down(r, err.msg);
            return 0;
        }
        int applied = 0;
        int rc = bm_migrate(conn, &applied, &err);
        bool lost = PQstatus(conn) != CONNECTION_OK;
        int version = rc == 0 ? bm_migrate_current(conn, NULL) : 0;
        bm_db_close(&conn);
        if (rc < 0) {
            if (lost) {
                s_db_down(r, err.msg);
                return 0;
            }
            return bm_err_set(fatal, "could not migrate the database: %s", err.msg);
        }
        bm_info("receiver", "schema at version %d (%d migration%s applied)", version, applied,
                applied == 1 ? "" : "s");
        r->migrated = true;
    }
    if (bm_store_connect(r->store, &err) < 0) {
        s_db_down(r, err.msg);
        return 0;
    }
    if (bm_refcache_load(r->cache, bm_store_conn(r->store), &err) < 0) {
        s_db_down(r, err.msg);
        return 0;
    }
    char desc[256];
    size_t nb, nc, nq;
    bm_refcache_counts(r->cache, &nb, &nc, &nq);
    char gone[48] = "";
    if (r->db_down_ms && r->ever_connected) {
        char secs[24];
        snprintf(gone, sizeof gone, " (unavailable for %s)",
                 s_secs((bm_mono_ms() - r->db_down_ms) / 1000 * 1000, secs, sizeof secs));
    }
    bm_info("receiver", "connected to database %s%s; %zu branches, %zu competitors, "
            "%zu questionnaire versions",
            bm_db_describe(bm_store_conn(r->store), desc, sizeof desc), gone, nb, nc, nq);
    r->db_down_ms = 0;
    if (r->ever_connected)
        r->c.db_reconnects++;
    r->ever_connected = true;
    r->db_ready = true;
    r->backoff_ms = S_BACKOFF_MIN_MS;
    return 0;
}

/* Reloads the cache after a lookup miss, at most every 5 s. */
static void s_miss_reload(bm_receiver_t *r)
{
    if (!r->db_ready || !bm_refcache_may_reload(r->cache, bm_mono_ms()))
        return;
    bm_err_t err;
    if (bm_refcache_load(r->cache, bm_store_conn(r->store), &err) < 0) {
        if (!bm_store_connected(r->store))
            s_db_down(r, err.msg);
        else
            bm_warn("receiver", "could not reload reference data: %s", err.msg);
        return;
    }
    bm_debug("receiver", "reference data reloaded after a lookup miss");
}

static void s_miss_cb(void *ctx)
{
    s_miss_reload(ctx);
}

static int32_t s_branch(bm_receiver_t *r, const char *code)
{
    int32_t id = bm_refcache_branch(r->cache, code);
    if (!id) {
        s_miss_reload(r);
        id = bm_refcache_branch(r->cache, code);
    }
    return id;
}

void bm_receiver_reload(bm_receiver_t *r)
{
    s_agents_clear(r);
    memset(r->keys, 0, S_KEY_SLOTS * sizeof *r->keys);
    r->n_keys = 0;
    if (!r->db_ready) {
        bm_info("receiver", "reload: database not connected; the cache loads on reconnect");
        return;
    }
    bm_err_t err;
    if (bm_refcache_load(r->cache, bm_store_conn(r->store), &err) < 0) {
        bm_warn("receiver", "could not reload reference data: %s", err.msg);
        if (!bm_store_connected(r->store))
            s_db_down(r, err.msg);
        return;
    }
    size_t nb, nc, nq;
    bm_refcache_counts(r->cache, &nb, &nc, &nq);
    bm_info("receiver", "reference data reloaded: %zu branches, %zu competitors, "
            "%zu questionnaire versions", nb, nc, nq);
}

/* ------------------------------------------------------------------ */
/* Agent bindings                                                      */
/* ------------------------------------------------------------------ */

static size_t s_hash(const char *s)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The slot of agent_id, or the free slot where it would go, or NULL when
 * the table is too full to add (then every check goes to the database). */
static s_agent_slot_t *s_agent_slot(bm_receiver_t *r, const char *agent_id)
{
    size_t mask = r->agent_slots - 1, h = s_hash(agent_id) & mask;
    for (size_t i = 0; i < r->agent_slots; i++) {
        s_agent_slot_t *s = &r->agents[(h + i) & mask];
        if (!s->agent_id)
            return r->n_agents < r->agent_slots * 3 / 4 ? s : NULL;
        if (strcmp(s->agent_id, agent_id) == 0)
            return s;
    }
    return NULL;
}

typedef enum { S_AGENT_OK, S_AGENT_FORBIDDEN, S_AGENT_DB_DOWN, S_AGENT_FAILED } s_agent_rc_t;

/* A cached binding is trusted until the minute's refresh (s_touch_agents)
 * finds it changed; only the first envelope of an agent (or one naming
 * another branch) costs a database round trip. */
static s_agent_rc_t s_agent_check(bm_receiver_t *r, const char *agent_id, int32_t branch_id,
                                  int32_t *bound, bm_err_t *err)
{
    s_agent_slot_t *slot = s_agent_slot(r, agent_id);
    if (slot && slot->agent_id && slot->branch_id == branch_id) {
        slot->seen = true;
        return S_AGENT_OK;
    }
    bm_store_status_t st = bm_store_bind_agent(r->store, agent_id, branch_id, bound, err);
    if (st == BM_STORE_RETRY)
        return S_AGENT_DB_DOWN;
    if (st != BM_STORE_OK)
        return S_AGENT_FAILED;
    if (*bound != branch_id)
        return S_AGENT_FORBIDDEN;
    /* Out of memory for the id: not cached, checked again next time. */
    if (slot && !slot->agent_id && (slot->agent_id = strdup(agent_id)) != NULL)
        r->n_agents++;
    if (slot && slot->agent_id) {
        slot->branch_id = branch_id;
        slot->seen = false;     /* last_seen was just set by the bind */
    }
    return S_AGENT_OK;
}

static void s_agent_gone(void *ctx, size_t i)
{
    s_agent_slot_t **batch = ctx;
    /* Kept in the table (open addressing), checked again on next use. */
    batch[i]->branch_id = 0;
}

/* Refreshes last_seen of the agents seen since the last refresh, a few
 * thousand per UPDATE instead of one commit per agent, and forgets cached
 * bindings the database no longer has.  Errors are logged; a lost
 * connection takes the database down. */
static void s_touch_agents(bm_receiver_t *r)
{
    const char *ids[S_AGENT_TOUCH_CHUNK];
    int32_t branches[S_AGENT_TOUCH_CHUNK];
    s_agent_slot_t *slots[S_AGENT_TOUCH_CHUNK];
    size_t n = 0, total = 0;
    for (size_t i = 0; i <= r->agent_slots; i++) {
        if (i < r->agent_slots) {
            s_agent_slot_t *a = &r->agents[i];
            if (!a->agent_id || !a->seen || a->branch_id == 0)
                continue;
            a->seen = false;
            ids[n] = a->agent_id;
            branches[n] = a->branch_id;
            slots[n++] = a;
            if (n < S_AGENT_TOUCH_CHUNK)
                continue;
        }
        if (n == 0)
            continue;
        bm_err_t err;
        bm_store_status_t st =
            bm_store_touch_agents(r->store, ids, branches, n, s_agent_gone, slots, &err);
        if (st == BM_STORE_RETRY) {
            s_db_down(r, err.msg);
            return;
        }
        if (st != BM_STORE_OK) {
            bm_warn("receiver", "could not refresh last_seen of %zu agents: %s", n, err.msg);
            return;
        }
        total += n;
        n = 0;
    }
    if (total)
        bm_debug("receiver", "last_seen refreshed for %zu agents", total);
}

/* ------------------------------------------------------------------ */
/* CURVE keys (issue: security)                                        */
/* ------------------------------------------------------------------ */

static void s_reply_error(bm_receiver_t *r, void *sock, zmq_msg_t *id, const bm_envelope_t *env,
                          Branchmark__V1__ErrorCode code, const char *msg);

static s_key_slot_t *s_key_slot(bm_receiver_t *r, const char *key)
{
    size_t h = s_hash(key) & (S_KEY_SLOTS - 1);
    for (size_t i = 0; i < S_KEY_SLOTS; i++) {
        s_key_slot_t *s = &r->keys[(h + i) & (S_KEY_SLOTS - 1)];
        if (s->key[0] == '\0')
            return r->n_keys < S_KEY_SLOTS * 3 / 4 ? s : NULL;
        if (strcmp(s->key, key) == 0)
            return s;
    }
    return NULL;
}

/* Fills *out with the allow-list state of key, re-read from the database
 * when the cached one is older than S_KEY_RECHECK_MS: this is how a peer
 * whose key is revoked while it stays connected is cut off (ZeroMQ cannot
 * disconnect one ROUTER peer; every later message is refused).  Returns 0,
 * or -1 with err when the database could not answer. */
static int s_key_state(bm_receiver_t *r, const char *key, s_key_slot_t *out, bm_err_t *err)
{
    int64_t now = bm_mono_ms();
    s_key_slot_t *slot = s_key_slot(r, key);
    if (slot && slot->key[0] && now - slot->checked_ms < S_KEY_RECHECK_MS) {
        *out = *slot;
        return 0;
    }
    const char *p[] = {key};
    PGresult *res = PQexecParams(bm_store_conn(r->store),
                                 "SELECT agent_id, branch_id, revoked_at IS NULL FROM agent_keys "
                                 "WHERE public_key_z85 = $1", 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, bm_store_conn(r->store), "agent_keys", err);
        PQclear(res);
        return -1;
    }
    memset(out, 0, sizeof *out);
    snprintf(out->key, sizeof out->key, "%s", key);
    if (PQntuples(res) == 1) {
        snprintf(out->agent_id, sizeof out->agent_id, "%s", PQgetvalue(res, 0, 0));
        out->branch_id = (int32_t)atol(PQgetvalue(res, 0, 1));
        out->live = PQgetvalue(res, 0, 2)[0] == 't';
    }
    out->checked_ms = now;
    PQclear(res);
    if (slot) {
        if (slot->key[0] == '\0')
            r->n_keys++;
        *slot = *out;
    }
    return 0;
}

/* Refuses a message for a security reason: a `security:` warning, the
 * counter, ERROR_FORBIDDEN. */
static void s_security_refuse(bm_receiver_t *r, void *sock, zmq_msg_t *id,
                              const bm_envelope_t *env, uint64_t *counter, const char *msg)
{
    (*counter)++;
    bm_warn("receiver", "security: %s; refused", msg);
    s_reply_error(r, sock, id, env, BRANCHMARK__V1__ERROR_CODE__ERROR_FORBIDDEN, msg);
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

/* Sends an encoded reply and frees it (NULL: out of memory, logged). */
static void s_send(bm_receiver_t *r, void *sock, zmq_msg_t *id, uint8_t *buf, size_t len)
{
    if (!buf) {
        bm_error("receiver", "could not encode a reply: out of memory");
        return;
    }
    /* DONTWAIT: a peer that does not read must not stall the collector;
     * ROUTER drops what it cannot route or queue. */
    if (zmq_send(sock, zmq_msg_data(id), zmq_msg_size(id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(sock, buf, len, ZMQ_DONTWAIT) < 0) {
        r->c.dropped_messages++;
        bm_debug("receiver", "could not send a reply: %s", zmq_strerror(errno));
    }
    free(buf);
}

static void s_note_error(bm_receiver_t *r, Branchmark__V1__ErrorCode code, const char *msg)
{
    if ((unsigned)code < S_ERROR_CODES)
        r->c.errors[code]++;
    char line[BM_ERR_MSG_MAX + 128];
    snprintf(line, sizeof line, "%s: %.*s",
             (unsigned)code < S_ERROR_CODES ? s_error_names[code] : "error",
             BM_ERR_MSG_MAX + 64, msg);
    /* Cut at a character boundary: the status file is JSON (UTF-8). */
    bm_utf8_escape(line, r->c.last_error, sizeof r->c.last_error);
    r->c.last_error_ms = bm_now_ms();
}

/* The reply's head: stream id only when it is one (a hostile one may be
 * anything, also bytes that are not UTF-8), and the sequence. */
static void s_reply_head(bm_reply_t *reply, const bm_envelope_t *env, int64_t now_ms)
{
    static char empty[] = "";
    branchmark__v1__reply__init(reply);
    reply->stream_id = env && bm_stream_id_valid(env->stream_id) ? env->stream_id : empty;
    reply->sequence = env ? env->sequence : 0;
    reply->collector_time_ms = now_ms;
}

uint8_t *bm_receiver_encode_error(const bm_envelope_t *env, Branchmark__V1__ErrorCode code,
                                  const char *msg, int64_t now_ms, size_t *len)
{
    char safe[BM_ERR_MSG_MAX + 64];
    Branchmark__V1__Error e = BRANCHMARK__V1__ERROR__INIT;
    e.code = code;
    e.message = bm_utf8_escape(msg, safe, sizeof safe);
    bm_reply_t reply;
    s_reply_head(&reply, env, now_ms);
    reply.result_case = BRANCHMARK__V1__REPLY__RESULT_ERROR;
    reply.error = &e;
    return bm_message_encode(&reply.base, len);
}

uint8_t *bm_receiver_encode_ack(const bm_envelope_t *env, Branchmark__V1__Ack *ack,
                                int64_t now_ms, size_t *len)
{
    bm_reply_t reply;
    s_reply_head(&reply, env, now_ms);
    reply.result_case = BRANCHMARK__V1__REPLY__RESULT_ACK;
    reply.ack = ack;
    return bm_message_encode(&reply.base, len);
}

uint8_t *bm_receiver_encode_heartbeat(const bm_envelope_t *env, int64_t now_ms, size_t *len)
{
    bm_reply_t reply;
    s_reply_head(&reply, env, now_ms);
    reply.result_case = BRANCHMARK__V1__REPLY__RESULT_HEARTBEAT_OK;
    reply.heartbeat_ok = 1;
    return bm_message_encode(&reply.base, len);
}

static void s_reply_error(bm_receiver_t *r, void *sock, zmq_msg_t *id, const bm_envelope_t *env,
                          Branchmark__V1__ErrorCode code, const char *msg)
{
    char safe[BM_ERR_MSG_MAX + 64];
    /* The status file is JSON, which must be UTF-8 as much as the reply. */
    bm_utf8_escape(msg, safe, sizeof safe);
    s_note_error(r, code, safe);
    size_t len = 0;
    uint8_t *buf = bm_receiver_encode_error(env, code, safe, bm_now_ms(), &len);
    s_send(r, sock, id, buf, len);
}

static void s_reply_unavailable(bm_receiver_t *r, void *sock, zmq_msg_t *id,
                                const bm_envelope_t *env)
{
    char msg[BM_ERR_MSG_MAX + 64];
    snprintf(msg, sizeof msg, "database unavailable, retry later: %s", r->db_error);
    s_reply_error(r, sock, id, env, BRANCHMARK__V1__ERROR_CODE__ERROR_UNAVAILABLE, msg);
}

/* ------------------------------------------------------------------ */
/* Record checks against the reference data                            */
/* ------------------------------------------------------------------ */

static int s_strptr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Finds a repeated string among sort_buf[0..n) (n at most
 * BM_RECEIVER_SORT_MAX); returns it or NULL. */
static const char *s_repeated(const char **sort_buf, size_t n)
{
    qsort(sort_buf, n, sizeof *sort_buf, s_strptr_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(sort_buf[i - 1], sort_buf[i]) == 0)
            return sort_buf[i];
    return NULL;
}

/* The reference-data lookups of one record: the cache, and what to call
 * once on a miss (the receiver reloads the cache then). */
typedef struct {
    const bm_refcache_t *cache;
    void (*miss)(void *);
    void *miss_ctx;
    const char **sort_buf;
} s_lookup_t;

static void s_miss(const s_lookup_t *l)
{
    if (l->miss)
        l->miss(l->miss_ctx);
}

static const bm_refcache_questionnaire_t *s_questionnaire(const s_lookup_t *l, const char *code,
                                                          uint32_t version)
{
    const bm_refcache_questionnaire_t *q = bm_refcache_questionnaire(l->cache, code, version);
    if (!q) {
        s_miss(l);
        q = bm_refcache_questionnaire(l->cache, code, version);
    }
    return q;
}

static int s_check_outlet(const s_lookup_t *l, const bm_envelope_t *env,
                          const Branchmark__V1__ShopperEvaluation *e, bm_err_t *err)
{
    if (e->outlet_kind == BRANCHMARK__V1__OUTLET_KIND__OUTLET_KIND_BRANCH) {
        if (!e->outlet_code || strcmp(e->outlet_code, env->branch_code) != 0)
            return bm_err_set(err, "evaluation: outlet: branch \"%s\" is not the sending "
                              "branch \"%s\"", e->outlet_code ? e->outlet_code : "",
                              env->branch_code);
    } else if (e->outlet_kind == BRANCHMARK__V1__OUTLET_KIND__OUTLET_KIND_COMPETITOR) {
        if (!bm_refcache_competitor(l->cache, e->outlet_code)) {
            s_miss(l);
            if (!bm_refcache_competitor(l->cache, e->outlet_code))
                return bm_err_set(err, "evaluation: outlet: competitor \"%s\" is not in the "
                                  "reference data", e->outlet_code ? e->outlet_code : "");
        }
    } else {
        return bm_err_set(err, "evaluation: outlet: kind is not set");
    }
    return 0;
}

static int s_check_evaluation(const s_lookup_t *l, const bm_envelope_t *env,
                              const Branchmark__V1__ShopperEvaluation *e, bm_err_t *err)
{
    if (s_check_outlet(l, env, e, err) < 0)
        return -1;
    const bm_refcache_questionnaire_t *q =
        s_questionnaire(l, e->questionnaire_code, e->questionnaire_version);
    if (!q)
        return bm_err_set(err, "evaluation: questionnaire \"%s\" version %" PRIu32
                          " is not in the reference data",
                          e->questionnaire_code ? e->questionnaire_code : "",
                          e->questionnaire_version);
    if (e->n_answers > BM_RECEIVER_SORT_MAX)
        return bm_err_set(err, "evaluation: answers: %zu answers, at most %d are allowed",
                          e->n_answers, BM_RECEIVER_SORT_MAX);
    for (size_t i = 0; i < e->n_answers; i++) {
        const Branchmark__V1__Answer *a = e->answers[i];
        double max = 0;
        if (!bm_refcache_item(q, a->item_code, &max))
            return bm_err_set(err, "evaluation: answers[%zu]: item \"%s\" is not in "
                              "questionnaire \"%s\" version %" PRIu32, i,
                              a->item_code ? a->item_code : "", e->questionnaire_code,
                              e->questionnaire_version);
        if (a->value_case == BRANCHMARK__V1__ANSWER__VALUE_POINTS && a->points > max)
            return bm_err_set(err, "evaluation: answers[%zu]: item \"%s\": %g points exceed "
                              "its maximum %g", i, a->item_code, a->points, max);
        l->sort_buf[i] = a->item_code;
    }
    const char *rep = s_repeated(l->sort_buf, e->n_answers);
    if (rep)
        return bm_err_set(err, "evaluation: answers: item \"%s\" is answered twice", rep);
    return 0;
}

static int s_check_survey(const s_lookup_t *l, const Branchmark__V1__SurveyResponse *s,
                          bm_err_t *err)
{
    if (s->n_csi > BM_RECEIVER_SORT_MAX)
        return bm_err_set(err, "survey: csi: %zu items, at most %d are allowed", s->n_csi,
                          BM_RECEIVER_SORT_MAX);
    for (size_t i = 0; i < s->n_csi; i++)
        l->sort_buf[i] = s->csi[i]->item ? s->csi[i]->item : "";
    const char *rep = s_repeated(l->sort_buf, s->n_csi);
    if (rep)
        return bm_err_set(err, "survey: csi: item \"%s\" appears twice", rep);
    return 0;
}

int bm_receiver_check_record(const bm_envelope_t *env, size_t i, const bm_span_t *span,
                             const bm_time_window_t *window, const bm_refcache_t *cache,
                             void (*miss)(void *), void *miss_ctx, const char **sort_buf,
                             bm_err_t *err)
{
    const bm_record_t *rec = env->batch->records[i];
    s_lookup_t l = {cache, miss, miss_ctx, sort_buf};
    if (span && bm_record_check_encoding(span, err) < 0)
        return -2;
    if (bm_record_validate(rec, window, err) < 0)
        return -1;
    if (rec->kind_case == BRANCHMARK__V1__RECORD__KIND_EVALUATION)
        return s_check_evaluation(&l, env, rec->evaluation, err);
    if (rec->kind_case == BRANCHMARK__V1__RECORD__KIND_SURVEY)
        return s_check_survey(&l, rec->survey, err);
    return 0;
}

void bm_receiver_rejection(Branchmark__V1__RecordRejection *j, char *reason_buf, size_t index,
                           const char *source_id, const char *reason)
{
    static char empty[] = "";
    branchmark__v1__record_rejection__init(j);
    j->index = (uint32_t)index;
    j->source_id = source_id && strlen(source_id) <= BM_SOURCE_ID_MAX &&
                           bm_utf8_valid(source_id)
                       ? (char *)source_id
                       : empty;
    j->reason = bm_utf8_escape(reason, reason_buf, BM_ERR_MSG_MAX);
}

static void s_reject(bm_receiver_t *r, s_pending_t *p, size_t index, const char *source_id,
                     const char *reason)
{
    size_t n_records = p->env->batch->n_records;
    if (p->n_rej >= n_records || p->off + p->n_rej >= r->pool_cap)
        return;
    size_t at = p->off + p->n_rej;
    Branchmark__V1__RecordRejection *j = &r->rej[at];
    bm_receiver_rejection(j, r->rej_reasons[at], index, source_id, reason);
    r->rej_ptrs[at] = j;
    p->n_rej++;
}

static void s_refused_cb(void *ctx, size_t batch, size_t index, const char *reason)
{
    bm_receiver_t *r = ctx;
    if (batch >= r->n_pending)
        return;
    s_pending_t *p = &r->pending[batch];
    const bm_envelope_t *env = p->env;
    char msg[BM_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "refused by the database: %s", reason);
    s_reject(r, p, index, env->batch->records[index]->source_id, msg);
    bm_warn("receiver", "record %zu (%s) of batch %s/%" PRIu64 " refused by the database: %s",
            index, env->batch->records[index]->source_id, env->stream_id, env->sequence,
            reason);
}

/* ------------------------------------------------------------------ */
/* One envelope                                                        */
/* ------------------------------------------------------------------ */

/* Hex SHA-256 of the batch as encoded (a resend encodes identically).
 * Returns 0, or -1 when out of memory. */
static int s_batch_digest(const bm_batch_t *batch, char hex[2 * SHA256_DIGEST_LENGTH + 1])
{
    size_t len = 0;
    uint8_t *buf = bm_message_encode(&batch->base, &len);
    if (!buf)
        return -1;
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256(buf, len, md);
    free(buf);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* Counts the records of a newly stored batch per kind.  Rejections carry
 * their index; the store reports stored and duplicates per batch only, so
 * they go to the batch's kind when its remaining records have one kind (a
 * batch of the agent always has: it comes from one file), are exact per
 * kind when there are no duplicates, and else count under "mixed". */
static void s_count_kinds(bm_receiver_t *r, const s_pending_t *p, const bm_store_result_t *res)
{
    const bm_batch_t *b = p->env->batch;
    const bool *accepted = &r->accepted[p->off];
    uint64_t left[S_KINDS] = {0};       /* accepted and not refused by the database */
    for (size_t i = 0; i < b->n_records; i++)
        if (accepted[i])
            left[bm_record_kind(b->records[i])]++;
    for (size_t k = 0; k < p->n_rej; k++) {
        size_t i = r->rej[p->off + k].index;
        if (i >= b->n_records)
            continue;
        bm_kind_t kind = bm_record_kind(b->records[i]);
        r->c.kind_rejected[kind]++;
        if (k >= p->n_rej_ours && accepted[i] && left[kind] > 0)
            left[kind]--;
    }
    size_t kinds = 0, last = S_KIND_MIXED;
    for (size_t k = 0; k < BM_KIND_COUNT; k++)
        if (left[k]) {
            kinds++;
            last = k;
        }
    if (kinds > 1 && res->duplicates == 0) {
        for (size_t k = 0; k < BM_KIND_COUNT; k++)
            r->c.kind_stored[k] += left[k];
        return;
    }
    if (kinds > 1)
        last = S_KIND_MIXED;
    r->c.kind_stored[last] += res->stored;
    r->c.kind_duplicate[last] += res->duplicates;
}

/* Answers one stored (or failed) batch of the group. */
static void s_answer(bm_receiver_t *r, s_pending_t *p, bm_store_status_t st,
                     const bm_store_result_t *res, const bm_err_t *err)
{
    const bm_envelope_t *env = p->env;
    if (st == BM_STORE_RETRY) {
        s_reply_unavailable(r, p->sock, &p->id, env);
        return;
    }
    if (st != BM_STORE_OK) {
        bm_error("receiver", "could not store batch %s/%" PRIu64 " of agent %s: %s",
                 env->stream_id, env->sequence, env->agent_id, err->msg);
        char msg[BM_ERR_MSG_MAX + 32];
        snprintf(msg, sizeof msg, "could not store the batch: %s", err->msg);
        s_reply_error(r, p->sock, &p->id, env, BRANCHMARK__V1__ERROR_CODE__ERROR_INTERNAL, msg);
        return;
    }
    if (res->replayed) {
        /* The sequence was used before for other content: a replay, not a
         * resend (the ledger keeps the digest of what was stored). */
        char msg[160];
        snprintf(msg, sizeof msg, "sequence %" PRIu64 " of stream %s was already used for "
                 "different content", env->sequence, env->stream_id);
        r->c.replayed++;
        bm_warn("receiver", "security: agent %s: %s; refused", env->agent_id, msg);
        s_reply_error(r, p->sock, &p->id, env,
                      BRANCHMARK__V1__ERROR_CODE__ERROR_INVALID_ENVELOPE, msg);
        return;
    }
    size_t n = env->batch->n_records;
    if (res->batch_was_duplicate) {
        /* Counts from the ledger, rejections from this copy's validation (the
         * agent may have lost the first ack and still needs them). */
        r->c.batches_duplicate++;
    } else {
        r->c.batches_stored++;
        r->c.records_stored += res->stored;
        r->c.records_duplicate += res->duplicates;
        r->c.records_rejected += p->n_rej;
        s_count_kinds(r, p, res);
    }
    bm_debug("receiver", "batch %s/%" PRIu64 " from %s (%s): %zu records, %" PRIu32
             " stored, %" PRIu32 " duplicates, %zu rejected%s", env->stream_id, env->sequence,
             env->agent_id, env->branch_code, n, res->stored, res->duplicates, p->n_rej,
             res->batch_was_duplicate ? ", resent batch" : "");

    Branchmark__V1__Ack ack = BRANCHMARK__V1__ACK__INIT;
    ack.stored = res->stored;
    ack.duplicates = res->duplicates;
    ack.corrected = res->corrected;
    ack.n_rejected = p->n_rej;
    ack.rejected = p->n_rej ? &r->rej_ptrs[p->off] : NULL;
    ack.batch_was_duplicate = res->batch_was_duplicate;
    size_t len = 0;
    uint8_t *buf = bm_receiver_encode_ack(env, &ack, bm_now_ms(), &len);
    s_send(r, p->sock, &p->id, buf, len);
    bm_prom_hist_observe(&r->h_ack, s_mono_s() - p->t0);
}

/* Stores the waiting batches in one transaction (store.c falls back to
 * one per batch when the group fails) and answers each after COMMIT. */
static void s_flush_group(bm_receiver_t *r)
{
    size_t n = r->n_pending;
    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        const s_pending_t *p = &r->pending[i];
        const bm_envelope_t *env = p->env;
        r->g_batches[i] = (bm_store_batch_t){
            .stream_id = env->stream_id, .sequence = env->sequence, .agent_id = env->agent_id,
            .branch_id = p->branch_id, .sent_at_ms = env->sent_at_ms,
            .records = env->batch->records, .n_records = env->batch->n_records,
            .accepted = &r->accepted[p->off], .rejected = (uint32_t)p->n_rej_ours,
            .digest_hex = p->digest};
        r->g_ptrs[i] = &r->g_batches[i];
    }
    r->c.groups++;
    r->c.group_batches += n;
    bm_prom_hist_observe(&r->h_gbatches, (double)n);
    bm_prom_hist_observe(&r->h_grecords, (double)r->pool_used);
    bm_err_t err;
    bm_store_status_t st;
    if (!r->db_ready) {
        snprintf(err.msg, sizeof err.msg, "%s", r->db_error);
        st = BM_STORE_RETRY;
        for (size_t i = 0; i < n; i++)
            r->g_status[i] = BM_STORE_RETRY;
    } else {
        st = bm_store_group(r->store, r->g_ptrs, n, r->cache, s_refused_cb, r, r->g_results,
                            r->g_status, r->g_errs, &err);
    }
    if (st == BM_STORE_RETRY && r->db_ready)
        s_db_down(r, err.msg);
    for (size_t i = 0; i < n; i++) {
        s_pending_t *p = &r->pending[i];
        s_answer(r, p, r->g_status[i], &r->g_results[i], &r->g_errs[i]);
        zmq_msg_close(&p->id);
        bm_envelope_free(&p->env);
    }
    r->n_pending = 0;
    r->pool_used = 0;
    s_publish(r);
}

/* Validates a batch and queues it for the next group commit.  Returns true
 * when it took env (and id's content) over, false when it answered at once. */
static bool s_batch(bm_receiver_t *r, void *sock, zmq_msg_t *id, bm_envelope_t *env,
                    int32_t branch_id)
{
    const bm_batch_t *batch = env->batch;
    size_t n = batch->n_records;
    /* A full group, or this (stream, sequence) already waiting in it (a
     * resend overtaking its ack), is committed first. */
    bool flush = r->n_pending == r->max_pending ||
                 (r->n_pending > 0 && r->pool_used + n > r->pool_cap - BM_MAX_RECORDS_PER_BATCH);
    for (size_t i = 0; i < r->n_pending && !flush; i++)
        flush = r->pending[i].env->sequence == env->sequence &&
                strcmp(r->pending[i].env->stream_id, env->stream_id) == 0;
    if (flush)
        s_flush_group(r);
    if (!r->db_ready) {
        s_reply_unavailable(r, sock, id, env);
        return false;
    }
    s_pending_t *p = &r->pending[r->n_pending];
    memset(p, 0, sizeof *p);
    p->env = env;
    p->off = r->pool_used;
    if (s_batch_digest(batch, p->digest) < 0) {
        s_reply_error(r, sock, id, env, BRANCHMARK__V1__ERROR_CODE__ERROR_INTERNAL,
                      "out of memory");
        return false;
    }
    bm_time_window_t window = {bm_now_ms(), r->cfg->clock_max_age_ms,
                               r->cfg->clock_max_future_ms};
    bool *accepted = &r->accepted[p->off];
    for (size_t i = 0; i < n; i++) {
        bm_err_t err;
        /* The spans are those of this envelope's frame (s_envelope). */
        const bm_span_t *span = r->n_spans == n ? &r->spans[i] : NULL;
        int rc = bm_receiver_check_record(env, i, span, &window, r->cache, s_miss_cb, r,
                                          r->sort_buf, &err);
        accepted[i] = rc == 0;
        if (rc < 0)
            s_reject(r, p, i, rc == -2 ? NULL : batch->records[i]->source_id, err.msg);
    }
    /* A reload during validation may have found the database gone. */
    if (!r->db_ready) {
        s_reply_unavailable(r, sock, id, env);
        return false;
    }
    p->n_rej_ours = p->n_rej;
    p->t0 = r->msg_t0;
    p->sock = sock;
    p->branch_id = branch_id;
    zmq_msg_init(&p->id);
    zmq_msg_move(&p->id, id);
    r->pool_used += n;
    r->n_pending++;
    return true;
}
/* How far a lies ahead of b, in ms (negative: behind), saturated at the
 * int64 range: hostile times (INT64_MIN) must not overflow. */
static int64_t s_ms_ahead(int64_t a, int64_t b)
{
    if (b > 0 && a < INT64_MIN + b)
        return INT64_MIN;
    if (b < 0 && a > INT64_MAX + b)
        return INT64_MAX;
    return a - b;
}

int bm_receiver_check_message(const void *data, size_t len, const bm_msg_limits_t *lim,
                              bm_span_t *spans, size_t cap, bm_msg_check_t *out)
{
    bm_err_t err;
    memset(out, 0, sizeof *out);
    out->code = BRANCHMARK__V1__ERROR_CODE__ERROR_UNSPECIFIED;
    out->env = bm_envelope_decode(data, len, lim->max_frame_bytes, &err);
    if (!out->env) {
        out->code = len > lim->max_frame_bytes ? BRANCHMARK__V1__ERROR_CODE__ERROR_TOO_LARGE
                                               : BRANCHMARK__V1__ERROR_CODE__ERROR_MALFORMED;
        snprintf(out->msg, sizeof out->msg, "%s", err.msg);
        return -1;
    }
    /* What protobuf-c decoded must be what was sent (NUL bytes, split
     * chunks, cut numbers); it also finds where each record lies. */
    if (bm_envelope_scan(data, len, spans, cap, &out->n_spans, &err) < 0) {
        out->code = BRANCHMARK__V1__ERROR_CODE__ERROR_MALFORMED;
        snprintf(out->msg, sizeof out->msg, "%s", err.msg);
        return -1;
    }
    Branchmark__V1__ErrorCode code = BRANCHMARK__V1__ERROR_CODE__ERROR_INVALID_ENVELOPE;
    if (bm_envelope_check(out->env, &code, &err) < 0) {
        out->code = code;
        snprintf(out->msg, sizeof out->msg, "%s", err.msg);
        return -1;
    }
    int64_t future = s_ms_ahead(out->env->sent_at_ms, lim->now_ms);
    if (future > lim->clock_max_future_ms) {
        out->code = BRANCHMARK__V1__ERROR_CODE__ERROR_INVALID_ENVELOPE;
        out->future_dated = true;
        snprintf(out->msg, sizeof out->msg, "sent_at is %" PRId64 " s in the future, more than "
                 "clock_max_future (%" PRId64 " s)", future / 1000,
                 lim->clock_max_future_ms / 1000);
        return -1;
    }
    return 0;
}

static void s_envelope(bm_receiver_t *r, void *sock, zmq_msg_t *id, zmq_msg_t *payload)
{
    bm_err_t err;
    bm_msg_limits_t lim = {(size_t)r->cfg->max_frame_bytes, bm_now_ms(),
                           r->cfg->clock_max_future_ms};
    bm_msg_check_t chk;
    int rc = bm_receiver_check_message(zmq_msg_data(payload), zmq_msg_size(payload), &lim,
                                       r->spans, BM_MAX_RECORDS_PER_BATCH, &chk);
    bm_envelope_t *env = chk.env;
    r->n_spans = chk.n_spans;
    if (rc < 0) {
        if (chk.future_dated)
            r->c.future_dated++;
        s_reply_error(r, sock, id, env, chk.code, chk.msg);
        goto out;
    }
    r->c.envelopes_ok++;
    if (!r->db_ready) {
        s_reply_unavailable(r, sock, id, env);
        goto out;
    }
    s_key_slot_t peer = {.branch_id = 0};
    if (r->curve) {
        /* The identity is the enrolled key's, never the message's. */
        const char *user = zmq_msg_gets(payload, "User-Id");
        const char *key = zmq_msg_gets(payload, "X-Key");
        char msg[BM_ERR_MSG_MAX];
        if (!user || !*user || !key || !bm_z85_key_valid(key)) {
            s_security_refuse(r, sock, id, env, &r->c.sec_no_identity,
                              "a message without an authenticated agent key");
            goto out;
        }
        if (s_key_state(r, key, &peer, &err) < 0) {
            s_db_down(r, err.msg);
            s_reply_unavailable(r, sock, id, env);
            goto out;
        }
        if (!peer.live) {
            snprintf(msg, sizeof msg, "agent key revoked (agent \"%s\", key %s)", user, key);
            s_security_refuse(r, sock, id, env, &r->c.sec_revoked, msg);
            goto out;
        }
        if (strcmp(env->agent_id, peer.agent_id) != 0) {
            snprintf(msg, sizeof msg, "envelope agent_id \"%.64s\" is not \"%s\", the agent "
                     "of the key it connected with", env->agent_id, peer.agent_id);
            s_security_refuse(r, sock, id, env, &r->c.sec_wrong_agent, msg);
            goto out;
        }
    }
    int32_t branch_id = s_branch(r, env->branch_code);
    if (!r->db_ready) {
        s_reply_unavailable(r, sock, id, env);
        goto out;
    }
    if (!branch_id) {
        char msg[96];
        snprintf(msg, sizeof msg, "unknown branch \"%s\"", env->branch_code);
        s_reply_error(r, sock, id, env, BRANCHMARK__V1__ERROR_CODE__ERROR_UNKNOWN_BRANCH, msg);
        goto out;
    }
    if (r->curve && branch_id != peer.branch_id) {
        char msg[BM_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "agent \"%s\" may not write branch \"%s\" (its key is "
                 "enrolled for branch id %" PRId32 ")", peer.agent_id, env->branch_code,
                 peer.branch_id);
        s_security_refuse(r, sock, id, env, &r->c.sec_wrong_branch, msg);
        goto out;
    }
    int32_t bound = 0;
    switch (s_agent_check(r, env->agent_id, branch_id, &bound, &err)) {
    case S_AGENT_OK:
        break;
    case S_AGENT_DB_DOWN:
        s_db_down(r, err.msg);
        s_reply_unavailable(r, sock, id, env);
        goto out;
    case S_AGENT_FAILED:
        bm_error("receiver", "could not check agent %s: %s", env->agent_id, err.msg);
        s_reply_error(r, sock, id, env, BRANCHMARK__V1__ERROR_CODE__ERROR_INTERNAL,
                      "could not check the agent's branch");
        goto out;
    case S_AGENT_FORBIDDEN: {
        char msg[160];
        bm_warn("receiver", "security: agent \"%s\" is bound to branch id %" PRId32
                " but sent data for branch \"%s\"; refused", env->agent_id, bound,
                env->branch_code);
        snprintf(msg, sizeof msg, "agent \"%s\" may not write branch \"%s\"", env->agent_id,
                 env->branch_code);
        s_reply_error(r, sock, id, env, BRANCHMARK__V1__ERROR_CODE__ERROR_FORBIDDEN, msg);
        goto out;
    }
    }
    if (env->body_case == BRANCHMARK__V1__ENVELOPE__BODY_HEARTBEAT) {
        r->c.heartbeats++;
        size_t len = 0;
        uint8_t *buf = bm_receiver_encode_heartbeat(env, bm_now_ms(), &len);
        s_send(r, sock, id, buf, len);
    } else {
        /* Queued for the group commit at the end of this poll round. */
        if (s_batch(r, sock, id, env, branch_id))
            env = NULL;
    }
out:
    bm_envelope_free(&env);
}

/* Reads one message from sock.  Returns 1 when one was handled, 0 when the
 * socket had nothing, -1 on a socket error. */
static int s_read_one(bm_receiver_t *r, void *sock)
{
    zmq_msg_t id, payload;
    zmq_msg_init(&id);
    if (zmq_msg_recv(&id, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&id);
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    r->c.frames++;
    r->msg_t0 = s_mono_s();
    if (!zmq_msg_more(&id)) {
        r->c.dropped_messages++;
        zmq_msg_close(&id);
        return 1;
    }
    zmq_msg_init(&payload);
    /* The rest of a message is already here: ZeroMQ delivers whole messages. */
    if (zmq_msg_recv(&payload, sock, 0) < 0) {
        zmq_msg_close(&payload);
        zmq_msg_close(&id);
        return 1;
    }
    r->c.frames++;
    if (zmq_msg_more(&payload)) {
        /* Not [identity][payload] (a REQ peer, a stray client): drop it all. */
        r->c.dropped_messages++;
        do {
            zmq_msg_close(&payload);
            zmq_msg_init(&payload);
            if (zmq_msg_recv(&payload, sock, 0) < 0)
                break;
            r->c.frames++;
        } while (zmq_msg_more(&payload));
        zmq_msg_close(&payload);
        zmq_msg_close(&id);
        return 1;
    }
    s_envelope(r, sock, &id, &payload);
    zmq_msg_close(&payload);
    zmq_msg_close(&id);
    return 1;
}

/* ------------------------------------------------------------------ */
/* Health                                                              */
/* ------------------------------------------------------------------ */

static void s_write_status(bm_receiver_t *r)
{
    const char *path = r->cfg->status_file;
    if (!path || !*path)
        return;
    char now[40], started[40], last[40] = "";
    bm_time_format(bm_now_ms(), now, sizeof now);
    bm_time_format(r->started_ms, started, sizeof started);
    if (r->c.last_error_ms)
        bm_time_format(r->c.last_error_ms, last, sizeof last);
    size_t nb, nc, nq;
    bm_refcache_counts(r->cache, &nb, &nc, &nq);
    json_t *errors = json_object();
    for (int i = 1; i < S_ERROR_CODES; i++)
        json_object_set_new(errors, s_error_names[i], json_integer((json_int_t)r->c.errors[i]));
    json_t *doc = json_pack(
        "{s:s, s:s, s:i, s:b, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
        "s:I, s:I}, s:o, s:s, s:s}",
        "updated_at", now, "started_at", started, "pid", (int)getpid(),
        "database_connected", r->db_ready,
        "refdata", "branches", (json_int_t)nb, "competitors", (json_int_t)nc,
        "questionnaire_versions", (json_int_t)nq,
        "counters", "frames", (json_int_t)r->c.frames,
        "dropped_messages", (json_int_t)r->c.dropped_messages,
        "envelopes_ok", (json_int_t)r->c.envelopes_ok,
        "heartbeats", (json_int_t)r->c.heartbeats,
        "batches_stored", (json_int_t)r->c.batches_stored,
        "batches_duplicate", (json_int_t)r->c.batches_duplicate,
        "records_stored", (json_int_t)r->c.records_stored,
        "records_duplicate", (json_int_t)r->c.records_duplicate,
        "records_rejected", (json_int_t)r->c.records_rejected,
        "db_reconnects", (json_int_t)r->c.db_reconnects,
        "errors", errors, "last_error", r->c.last_error, "last_error_at", last);
    if (!doc) {
        bm_warn("receiver", "could not build the status document");
        return;
    }
    uint64_t zap_ok = 0, zap_refused = 0;
    bm_zap_counts(r->zap, &zap_ok, &zap_refused);
    json_object_set_new(
        doc, "security",
        json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "curve", r->curve,
                  "handshakes_accepted", (json_int_t)zap_ok,
                  "handshakes_refused", (json_int_t)zap_refused,
                  "security_events", (json_int_t)(zap_refused + r->c.sec_revoked +
                                                  r->c.sec_wrong_branch + r->c.sec_wrong_agent +
                                                  r->c.sec_no_identity),
                  "revoked_key", (json_int_t)r->c.sec_revoked,
                  "wrong_branch", (json_int_t)r->c.sec_wrong_branch,
                  "wrong_agent", (json_int_t)r->c.sec_wrong_agent,
                  "no_identity", (json_int_t)r->c.sec_no_identity));
    /* Group commit: batches per transaction = group_batches / groups. */
    json_object_set_new(doc, "group_commit",
                        json_pack("{s:I, s:I}", "groups", (json_int_t)r->c.groups,
                                  "batches", (json_int_t)r->c.group_batches));
    json_object_set_new(doc, "hostile_envelopes",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
                                  "malformed", (json_int_t)r->c.errors[1],
                                  "unsupported_version", (json_int_t)r->c.errors[2],
                                  "invalid_envelope", (json_int_t)r->c.errors[4],
                                  "too_large", (json_int_t)r->c.errors[5],
                                  "future_dated", (json_int_t)r->c.future_dated,
                                  "replayed", (json_int_t)r->c.replayed));
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        json_decref(doc);
        bm_warn("receiver", "status_file: path is too long");
        return;
    }
    /* tmp + rename: a reader never sees half a file. */
    if (json_dump_file(doc, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) < 0 || rename(tmp, path) < 0) {
        bm_warn("receiver", "could not write status file \"%s\": %s", path, strerror(errno));
        unlink(tmp);
    }
    json_decref(doc);
}

void bm_receiver_report(bm_receiver_t *r)
{
    uint64_t errors = 0;
    for (int i = 1; i < S_ERROR_CODES; i++)
        errors += r->c.errors[i];
    bm_info("receiver", "stats: db=%s frames=%" PRIu64 " envelopes=%" PRIu64
            " heartbeats=%" PRIu64 " batches=%" PRIu64 " resent_batches=%" PRIu64
            " records_stored=%" PRIu64 " records_duplicate=%" PRIu64
            " records_rejected=%" PRIu64 " errors=%" PRIu64 " dropped=%" PRIu64
            " db_reconnects=%" PRIu64 " groups=%" PRIu64 " group_batches=%" PRIu64,
            r->db_ready ? "up" : "down", r->c.frames,
            r->c.envelopes_ok, r->c.heartbeats, r->c.batches_stored, r->c.batches_duplicate,
            r->c.records_stored, r->c.records_duplicate, r->c.records_rejected, errors,
            r->c.dropped_messages, r->c.db_reconnects, r->c.groups, r->c.group_batches);
    s_write_status(r);
}

/* ------------------------------------------------------------------ */
/* /metrics                                                            */
/* ------------------------------------------------------------------ */

static const char *s_kind_label(size_t k)
{
    return k == S_KIND_MIXED ? "mixed" : bm_kind_name((bm_kind_t)k);
}

/* Records per kind and result, batches, group commits, ack latency. */
static void s_prom_ingest(bm_prom_t *p, const s_snapshot_t *s)
{
    const s_counters_t *c = &s->c;
    const char *rn = "branchmark_collector_records_total";
    bm_prom_family(p, rn, BM_PROM_COUNTER, "records of newly stored batches, by kind and "
                   "result (stored, duplicate = stored before, rejected = refused by "
                   "validation or the database)");
    for (size_t k = 0; k < S_KINDS; k++) {
        /* "none" and "mixed" only once they happen; the kinds always, so
         * that rate() sees a 0 before the first record. */
        bool rare = k == BM_KIND_NONE || k == S_KIND_MIXED;
        if (rare && !c->kind_stored[k] && !c->kind_duplicate[k] && !c->kind_rejected[k])
            continue;
        const char *kl = s_kind_label(k);
        bm_prom_sample(p, rn, (double)c->kind_stored[k], "kind", kl, "result", "stored", NULL);
        bm_prom_sample(p, rn, (double)c->kind_duplicate[k], "kind", kl, "result", "duplicate",
                       NULL);
        bm_prom_sample(p, rn, (double)c->kind_rejected[k], "kind", kl, "result", "rejected",
                       NULL);
    }
    const char *bn = "branchmark_collector_batches_total";
    bm_prom_family(p, bn, BM_PROM_COUNTER, "batches acknowledged: stored (new) or duplicate "
                   "(a resend answered from the ledger)");
    bm_prom_sample(p, bn, (double)c->batches_stored, "result", "stored", NULL);
    bm_prom_sample(p, bn, (double)c->batches_duplicate, "result", "duplicate", NULL);
    bm_prom_family(p, "branchmark_collector_group_commit_batches", BM_PROM_HISTOGRAM,
                   "batches per group commit (one transaction); _count = group commits");
    bm_prom_hist(p, "branchmark_collector_group_commit_batches", &s->gbatches, NULL);
    bm_prom_family(p, "branchmark_collector_group_commit_records", BM_PROM_HISTOGRAM,
                   "records per group commit (accepted or not)");
    bm_prom_hist(p, "branchmark_collector_group_commit_records", &s->grecords, NULL);
    bm_prom_family(p, "branchmark_collector_ack_latency_seconds", BM_PROM_HISTOGRAM,
                   "time from reading a batch to sending its ack (validation, group "
                   "commit, COMMIT)");
    bm_prom_hist(p, "branchmark_collector_ack_latency_seconds", &s->ack, NULL);
    const char *en = "branchmark_collector_errors_total";
    bm_prom_family(p, en, BM_PROM_COUNTER, "messages answered with an error, by error code");
    for (int i = 1; i < S_ERROR_CODES; i++)
        bm_prom_sample(p, en, (double)c->errors[i], "code", s_error_names[i], NULL);
}

/* Traffic, database, connections, security. */
static void s_prom_health(bm_prom_t *p, const s_snapshot_t *s, bm_zap_t *zap)
{
    const s_counters_t *c = &s->c;
    struct {
        const char *name, *help;
        uint64_t v;
    } counters[] = {
        {"branchmark_collector_frames_total", "ZeroMQ frames read", c->frames},
        {"branchmark_collector_envelopes_total", "envelopes that decoded and passed the "
         "header checks", c->envelopes_ok},
        {"branchmark_collector_heartbeats_total", "heartbeats answered", c->heartbeats},
        {"branchmark_collector_dropped_messages_total", "messages dropped (not [identity]"
         "[payload]) and replies that could not be sent", c->dropped_messages},
        {"branchmark_collector_database_reconnects_total", "connections to PostgreSQL "
         "re-established after it was lost", c->db_reconnects},
        {"branchmark_collector_connections_accepted_total", "TCP connections accepted on "
         "the ROUTER sockets", c->conns_accepted},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        bm_prom_family(p, counters[i].name, BM_PROM_COUNTER, counters[i].help);
        bm_prom_sample(p, counters[i].name, (double)counters[i].v, NULL);
    }
    bm_prom_family(p, "branchmark_collector_connected_agents", BM_PROM_GAUGE,
                   "TCP connections open on the ROUTER sockets: one per connected agent "
                   "(a refused CURVE handshake is counted until its connection closes)");
    bm_prom_sample(p, "branchmark_collector_connected_agents",
                   c->conns_accepted > c->conns_closed
                       ? (double)(c->conns_accepted - c->conns_closed) : 0, NULL);
    bm_prom_family(p, "branchmark_collector_database_connected", BM_PROM_GAUGE,
                   "1 while connected to PostgreSQL with the reference data loaded");
    bm_prom_sample(p, "branchmark_collector_database_connected", s->db_ready ? 1 : 0, NULL);
    uint64_t zap_ok = 0, zap_refused = 0;
    bm_zap_counts(zap, &zap_ok, &zap_refused);
    const char *zn = "branchmark_collector_zap_handshakes_total";
    bm_prom_family(p, zn, BM_PROM_COUNTER, "CURVE handshakes the ZAP handler accepted or "
                   "refused (key not enrolled or revoked, database down)");
    bm_prom_sample(p, zn, (double)zap_ok, "result", "accepted", NULL);
    bm_prom_sample(p, zn, (double)zap_refused, "result", "refused", NULL);
    const char *sn = "branchmark_collector_security_refusals_total";
    bm_prom_family(p, sn, BM_PROM_COUNTER, "messages of connected peers refused for a "
                   "security reason; revoked_key = the cut-off of a peer whose key was "
                   "revoked while it stayed connected");
    bm_prom_sample(p, sn, (double)c->sec_revoked, "reason", "revoked_key", NULL);
    bm_prom_sample(p, sn, (double)c->sec_wrong_branch, "reason", "wrong_branch", NULL);
    bm_prom_sample(p, sn, (double)c->sec_wrong_agent, "reason", "wrong_agent", NULL);
    bm_prom_sample(p, sn, (double)c->sec_no_identity, "reason", "no_identity", NULL);
    const char *hn = "branchmark_collector_hostile_envelopes_total";
    bm_prom_family(p, hn, BM_PROM_COUNTER, "envelopes refused as hostile beyond their error "
                   "code: sent_at too far ahead, or a sequence reused for other content");
    bm_prom_sample(p, hn, (double)c->future_dated, "reason", "future_dated", NULL);
    bm_prom_sample(p, hn, (double)c->replayed, "reason", "replayed", NULL);
}

/* Sizes and times. */
static void s_prom_state(bm_prom_t *p, const s_snapshot_t *s)
{
    const char *rn = "branchmark_collector_refdata_entries";
    bm_prom_family(p, rn, BM_PROM_GAUGE, "reference data in the collector's cache");
    bm_prom_sample(p, rn, (double)s->n_branches, "kind", "branches", NULL);
    bm_prom_sample(p, rn, (double)s->n_competitors, "kind", "competitors", NULL);
    bm_prom_sample(p, rn, (double)s->n_questionnaires, "kind", "questionnaire_versions",
                   NULL);
    bm_prom_family(p, "branchmark_collector_cached_agents", BM_PROM_GAUGE,
                   "agent bindings in the cache (sized from max_agents)");
    bm_prom_sample(p, "branchmark_collector_cached_agents", (double)s->n_agents_cached, NULL);
    bm_prom_family(p, "branchmark_collector_curve_enabled", BM_PROM_GAUGE,
                   "1 when agents must authenticate with CURVE");
    bm_prom_sample(p, "branchmark_collector_curve_enabled", s->curve ? 1 : 0, NULL);
    bm_prom_family(p, "branchmark_collector_start_time_seconds", BM_PROM_GAUGE,
                   "when the collector started, seconds since the Unix epoch");
    bm_prom_sample(p, "branchmark_collector_start_time_seconds",
                   (double)s->started_ms / 1000.0, NULL);
    bm_prom_family(p, "branchmark_collector_last_error_time_seconds", BM_PROM_GAUGE,
                   "when the last error reply was sent (0: none since start)");
    bm_prom_sample(p, "branchmark_collector_last_error_time_seconds",
                   (double)s->c.last_error_ms / 1000.0, NULL);
}

char *bm_receiver_metrics(bm_receiver_t *r, size_t *len)
{
    if (!r->m_lock_ok)
        return NULL;
    s_snapshot_t *s = malloc(sizeof *s);
    bm_prom_t *p = bm_prom_new(S_PAGE_MAX);
    char *text = NULL;
    if (s && p) {
        pthread_mutex_lock(&r->m_lock);
        *s = r->snap;
        pthread_mutex_unlock(&r->m_lock);
        s_prom_ingest(p, s);
        s_prom_health(p, s, r->zap);
        s_prom_state(p, s);
        bm_err_t err;
        if (!(text = bm_prom_take(p, len, &err)))
            bm_warn("receiver", "metrics: %s", err.msg);
    }
    bm_prom_destroy(&p);
    free(s);
    return text;
}

/* ------------------------------------------------------------------ */
/* Loop                                                                */
/* ------------------------------------------------------------------ */

int bm_receiver_run(bm_receiver_t *r, volatile sig_atomic_t *stop, volatile sig_atomic_t *reload,
                    bm_err_t *err)
{
    while (!*stop && !*reload) {
        int64_t now = bm_mono_ms();
        if (!r->db_ready && now >= r->next_db_attempt_ms && s_db_connect(r, err) < 0)
            return -1;
        if (now >= r->next_stats_ms) {
            bm_receiver_report(r);
            r->next_stats_ms = now + r->cfg->stats_interval_ms;
        }
        if (now >= r->next_touch_ms) {
            if (r->db_ready)
                s_touch_agents(r);
            r->next_touch_ms = now + S_AGENT_REFRESH_MS;
        }
        int rc = zmq_poll(r->items, (int)(2 * r->n_socks), S_POLL_MS);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            return bm_err_set(err, "could not poll the sockets: %s", zmq_strerror(errno));
        }
        bool more = false;
        for (size_t i = 0; i < r->n_socks && rc > 0; i++) {
            if (!(r->items[i].revents & ZMQ_POLLIN))
                continue;
            /* A bounded number per round keeps the flags and the other
             * sockets served under load. */
            int k;
            for (k = 0; k < S_DRAIN_MAX && !*stop; k++) {
                int got = s_read_one(r, r->socks[i]);
                if (got < 0) {
                    s_flush_group(r);
                    return bm_err_set(err, "could not receive: %s", zmq_strerror(errno));
                }
                if (got == 0)
                    break;
            }
            more = more || k == S_DRAIN_MAX;
        }
        /* Everything that was waiting is read: one transaction and one WAL
         * flush for all of it.  While more is waiting the group grows (up
         * to its caps, where s_batch commits it). */
        if (!more)
            s_flush_group(r);
        for (size_t i = 0; i < r->n_socks && rc > 0; i++)
            if (r->items[r->n_socks + i].revents & ZMQ_POLLIN)
                s_monitor_read(r, r->mons[i]);
        s_publish(r);
    }
    s_flush_group(r);
    s_publish(r);
    return 0;
}
