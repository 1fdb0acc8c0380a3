/* bm-loadgen: simulates N branch agents speaking the real protocol to a
 * collector and measures durable ingest (acks come after COMMIT).
 *
 *   bm-loadgen --endpoint E [--agents N] [--branches B] [--records TOTAL]
 *              [--batch R] [--window W] [--prefix P] [--branch-prefix L]
 *              [--seed S] [--io-threads T] [--timeout-s S] [--label NAME]
 *   bm-loadgen --write-refdata FILE [--branches B] [--regions R] [--branch-prefix L]
 *
 * Each agent has its own DEALER socket (and ZeroMQ identity), its own stream
 * id and sequence numbers, and keeps up to W batches unacknowledged.  Agent i
 * sends for branch <L>%05d with number (i mod B) + 1.  Before the clock starts,
 * every frame is encoded (so the generator's own CPU does not compete with the
 * collector during the run) and every agent sends a heartbeat and waits for
 * heartbeat_ok: all N agents are then connected at once and bound to their
 * branch.  The run ends when every batch is acknowledged.  It prints one line
 *   loadgen: label=.. agents=.. records=.. batches=.. elapsed_s=.. rec_per_s=..
 *   ack_p50_ms=.. ack_p99_ms=.. ack_max_ms=.. stored=.. duplicates=..
 *   rejected=.. error_replies=.. connect_s=.. sent_receipt=.. ... result=PASS|FAIL
 * PASS means: every batch acknowledged with stored + duplicates + rejected =
 * its records, nothing rejected, no batch answered as a resend.
 *
 * Owns: the ZeroMQ context(s) and sockets, all encoded frames (memory is
 * about the encoded size of TOTAL records, ~40 bytes each; capped by
 * --records <= 50,000,000). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <zmq.h>

#include "bm_err.h"
#include "bm_time.h"
#include "bm_wire.h"
#include "loadmix.h"

#define S_MAX_AGENTS 20000
#define S_MAX_RECORDS 50000000ULL

typedef struct {
    const char *endpoint;
    const char *write_refdata;
    const char *prefix;
    const char *branch_prefix;
    const char *label;
    uint64_t agents, branches, regions, records, batch, window, seed, io_threads, timeout_s;
    uint64_t first;     /* number of the first agent (several processes share a run) */
    uint64_t step;      /* agents connected per step (0: all at once) */
    uint64_t src_port;  /* agent a connects from 127.0.0.1:src_port + a (0: ephemeral) */
} s_opts_t;

typedef struct {
    void *sock;
    char agent_id[48];
    char branch[24];
    char stream[BM_STREAM_ID_LEN + 1];
    uint32_t n_batches;     /* this agent's batches: global index agent + j * agents */
    uint32_t next;          /* next j to send */
    uint32_t acked;
    uint32_t inflight;
    bool hb_ok;
} s_agent_t;

typedef struct {
    uint8_t *data;
    uint32_t len;
    uint32_t records;
} s_frame_t;

static int64_t s_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: bm-loadgen --endpoint E [--agents N] [--branches B] [--records TOTAL]\n"
            "                  [--batch R] [--window W] [--prefix P] [--branch-prefix L]\n"
            "                  [--seed S] [--io-threads T] [--timeout-s S] [--label NAME]\n"
            "                  [--first-agent K] [--connect-step S] [--source-port-base P]\n"
            "       bm-loadgen --write-refdata FILE [--branches B] [--regions R]\n"
            "                  [--branch-prefix L]\n"
            "  --agents N        simulated agents, one DEALER socket each (1..%d, default 10)\n"
            "  --branches B      branches the agents map onto (default: N)\n"
            "  --records TOTAL   records to send in all (default 100000)\n"
            "  --batch R         records per batch (1..%d, default 1000)\n"
            "  --window W        unacknowledged batches per agent (1..1024, default 8)\n"
            "  --prefix P        source id prefix; use a new one per run (default LG)\n"
            "  --branch-prefix L branch code prefix (default L): L00001 ...\n"
            "  --io-threads T    ZeroMQ I/O threads (1..16, default 1)\n"
            "  --timeout-s S     give up when no reply arrives for S seconds (default 120)\n"
            "  --first-agent K   agents are numbers K .. K+N-1 (default 0), so that several\n"
            "                    processes (each under its open-files limit) share one run\n"
            "  --connect-step S  connect S agents, wait for their heartbeat_ok, then the next\n"
            "                    S (default 0: all at once); every agent stays connected\n"
            "  --source-port-base P  agent a connects from 127.0.0.1:P+a (default: an\n"
            "                    ephemeral port), keeping 10,000 connections out of port\n"
            "                    ranges that tests on the same machine bind to\n",
            S_MAX_AGENTS, BM_MAX_RECORDS_PER_BATCH);
}

static int s_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < lo || v > hi) {
        fprintf(stderr, "bm-loadgen: %s: \"%s\" is not an integer in %" PRIu64 "..%" PRIu64 "\n",
                opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int s_parse(int argc, char **argv, s_opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            s_usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bm-loadgen: unknown option or missing value: \"%s\"\n", a);
            return -1;
        }
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "--endpoint"))
            o->endpoint = v;
        else if (!strcmp(a, "--write-refdata"))
            o->write_refdata = v;
        else if (!strcmp(a, "--prefix"))
            o->prefix = v;
        else if (!strcmp(a, "--branch-prefix"))
            o->branch_prefix = v;
        else if (!strcmp(a, "--label"))
            o->label = v;
        else if (!strcmp(a, "--agents"))
            rc = s_u64(a, v, 1, S_MAX_AGENTS, &o->agents);
        else if (!strcmp(a, "--source-port-base"))
            rc = s_u64(a, v, 0, 65535, &o->src_port);
        else if (!strcmp(a, "--connect-step"))
            rc = s_u64(a, v, 0, S_MAX_AGENTS, &o->step);
        else if (!strcmp(a, "--first-agent"))
            rc = s_u64(a, v, 0, 1000000, &o->first);
        else if (!strcmp(a, "--branches"))
            rc = s_u64(a, v, 1, 99999, &o->branches);
        else if (!strcmp(a, "--regions"))
            rc = s_u64(a, v, 1, 99, &o->regions);
        else if (!strcmp(a, "--records"))
            rc = s_u64(a, v, 1, S_MAX_RECORDS, &o->records);
        else if (!strcmp(a, "--batch"))
            rc = s_u64(a, v, 1, BM_MAX_RECORDS_PER_BATCH, &o->batch);
        else if (!strcmp(a, "--window"))
            rc = s_u64(a, v, 1, 1024, &o->window);
        else if (!strcmp(a, "--seed"))
            rc = s_u64(a, v, 0, UINT64_MAX, &o->seed);
        else if (!strcmp(a, "--io-threads"))
            rc = s_u64(a, v, 1, 16, &o->io_threads);
        else if (!strcmp(a, "--timeout-s"))
            rc = s_u64(a, v, 1, 86400, &o->timeout_s);
        else {
            fprintf(stderr, "bm-loadgen: unknown option \"%s\"\n", a);
            return -1;
        }
        if (rc < 0)
            return -1;
    }
    if (strlen(o->prefix) > 16 || !bm_code_valid(o->prefix, 16) ||
        !bm_code_valid(o->branch_prefix, 16)) {
        fprintf(stderr, "bm-loadgen: --prefix and --branch-prefix: 1..16 of [A-Za-z0-9_.-]\n");
        return -1;
    }
    return 0;
}

/* Raises the soft limit of open files to what N sockets need (each DEALER
 * holds a TCP connection and a mailbox descriptor).  Fails when the hard
 * limit is too low. */
static int s_raise_nofile(uint64_t need, bm_err_t *err)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return bm_err_set(err, "getrlimit: %s", strerror(errno));
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max < need)
        return bm_err_set(err, "%" PRIu64 " open files needed, hard limit is %llu (ulimit -Hn)",
                          need, (unsigned long long)rl.rlim_max);
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return bm_err_set(err, "setrlimit: %s", strerror(errno));
    return 0;
}

/* Encodes every batch.  Returns the frame array (frames[k] for global batch
 * k) or NULL with err; fills per-kind counts. */
static s_frame_t *s_build(const s_opts_t *o, s_agent_t *agents, uint64_t n_batches,
                          uint64_t kinds[BM_KIND_COUNT], bm_err_t *err)
{
    s_frame_t *frames = calloc(n_batches, sizeof *frames);
    bm_loadmix_rec_t *recs = calloc(o->batch, sizeof *recs);
    bm_record_t **ptrs = calloc(o->batch, sizeof *ptrs);
    bm_loadmix_rng_t *rngs = calloc(o->agents, sizeof *rngs);
    uint64_t *counter = calloc(o->agents, sizeof *counter);
    if (!frames || !recs || !ptrs || !rngs || !counter) {
        bm_err_set(err, "out of memory encoding %" PRIu64 " batches", n_batches);
        goto fail;
    }
    for (uint64_t a = 0; a < o->agents; a++)
        bm_loadmix_seed(&rngs[a], o->seed, a + o->first);
    int64_t now = bm_now_ms();
    uint64_t left = o->records;
    for (uint64_t k = 0; k < n_batches; k++) {
        uint64_t a = k % o->agents, j = k / o->agents;
        uint64_t nrec = left < o->batch ? left : o->batch;
        left -= nrec;
        for (uint64_t i = 0; i < nrec; i++) {
            bm_loadmix_next(&rngs[a], o->prefix, (uint32_t)(a + o->first), counter[a]++, now,
                            &recs[i]);
            ptrs[i] = &recs[i].rec;
            kinds[bm_record_kind(&recs[i].rec)]++;
        }
        Branchmark__V1__Batch batch = BRANCHMARK__V1__BATCH__INIT;
        batch.records = ptrs;
        batch.n_records = nrec;
        Branchmark__V1__Envelope env = BRANCHMARK__V1__ENVELOPE__INIT;
        env.protocol_version = BM_PROTOCOL_VERSION;
        env.agent_id = agents[a].agent_id;
        env.branch_code = agents[a].branch;
        env.stream_id = agents[a].stream;
        env.sequence = j + 1;
        env.sent_at_ms = now;
        env.body_case = BRANCHMARK__V1__ENVELOPE__BODY_BATCH;
        env.batch = &batch;
        size_t len = 0;
        frames[k].data = bm_message_encode(&env.base, &len);
        if (!frames[k].data) {
            bm_err_set(err, "out of memory encoding batch %" PRIu64, k);
            goto fail;
        }
        frames[k].len = (uint32_t)len;
        frames[k].records = (uint32_t)nrec;
        agents[a].n_batches++;
    }
    free(recs);
    free(ptrs);
    free(rngs);
    free(counter);
    return frames;
fail:
    if (frames)
        for (uint64_t k = 0; k < n_batches; k++)
            free(frames[k].data);
    free(frames);
    free(recs);
    free(ptrs);
    free(rngs);
    free(counter);
    return NULL;
}

static int s_send(void *sock, const void *data, size_t len)
{
    /* A DEALER with a live connection queues up to its HWM; the window keeps
     * far below it, so a blocking send never waits here in practice. */
    return zmq_send(sock, data, len, 0) < 0 ? -1 : 0;
}

/* Opens the DEALER sockets of agents [from, to), connects them and sends
 * each a heartbeat.  Returns 0, or -1 after printing why. */
static int s_connect(void *ctx, const s_opts_t *op, s_agent_t *agents, zmq_pollitem_t *items,
                     uint64_t n_conn, uint64_t n_conn_to)
{
    const s_opts_t o = *op;
    for (uint64_t a = n_conn; a < n_conn_to; a++) {
        void *s = zmq_socket(ctx, ZMQ_DEALER);
        int zero = 0;
        char ep[512];
        const char *tcp = strncmp(o.endpoint, "tcp://", 6) == 0 ? o.endpoint + 6 : NULL;
        if (o.src_port && tcp && o.src_port + a <= 65535)
            snprintf(ep, sizeof ep, "tcp://127.0.0.1:%" PRIu64 ";%s", o.src_port + a, tcp);
        else
            snprintf(ep, sizeof ep, "%s", o.endpoint);
        if (!s || zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) < 0 ||
            zmq_setsockopt(s, ZMQ_ROUTING_ID, agents[a].agent_id, strlen(agents[a].agent_id)) < 0 ||
            zmq_connect(s, ep) < 0) {
            fprintf(stderr, "bm-loadgen: agent %" PRIu64 ": socket: %s\n", a + 1,
                    zmq_strerror(errno));
            return -1;
        }
        agents[a].sock = s;
        items[a] = (zmq_pollitem_t){.socket = s, .events = ZMQ_POLLIN};
        /* The heartbeat: proves the connection and binds the agent. */
        Branchmark__V1__Heartbeat hb = BRANCHMARK__V1__HEARTBEAT__INIT;
        Branchmark__V1__Envelope env = BRANCHMARK__V1__ENVELOPE__INIT;
        env.protocol_version = BM_PROTOCOL_VERSION;
        env.agent_id = agents[a].agent_id;
        env.branch_code = agents[a].branch;
        env.stream_id = agents[a].stream;
        env.sequence = 0;
        env.sent_at_ms = bm_now_ms();
        env.body_case = BRANCHMARK__V1__ENVELOPE__BODY_HEARTBEAT;
        env.heartbeat = &hb;
        size_t len;
        uint8_t *buf = bm_message_encode(&env.base, &len);
        if (!buf || s_send(s, buf, len) < 0) {
            fprintf(stderr, "bm-loadgen: agent %" PRIu64 ": heartbeat: %s\n", a + 1,
                    buf ? zmq_strerror(errno) : "out of memory");
            return -1;
        }
        free(buf);
    }
    return 0;
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    s_opts_t o = {.prefix = "LG", .branch_prefix = "L", .label = "run", .agents = 10,
                  .regions = 50, .records = 100000, .batch = 1000, .window = 8, .seed = 42,
                  .io_threads = 1, .timeout_s = 120};
    if (s_parse(argc, argv, &o) < 0) {
        s_usage(stderr);
        return 2;
    }
    bm_err_t err;
    bm_err_clear(&err);
    if (o.write_refdata) {
        uint64_t nb = o.branches ? o.branches : o.agents;
        if (bm_loadmix_write_refdata(o.write_refdata, o.branch_prefix, (int)nb, (int)o.regions,
                                     &err) < 0) {
            fprintf(stderr, "bm-loadgen: %s\n", err.msg);
            return 1;
        }
        printf("bm-loadgen: wrote %s: %" PRIu64 " branches in %" PRIu64 " regions\n",
               o.write_refdata, nb, o.regions);
        return 0;
    }
    if (!o.endpoint) {
        fprintf(stderr, "bm-loadgen: --endpoint is required\n");
        s_usage(stderr);
        return 2;
    }
    if (!o.branches)
        o.branches = o.agents + o.first;
    uint64_t n_batches = (o.records + o.batch - 1) / o.batch;
    if (n_batches < o.agents) {
        fprintf(stderr, "bm-loadgen: %" PRIu64 " batches for %" PRIu64
                " agents: every agent needs one; raise --records or lower --batch\n",
                n_batches, o.agents);
        return 2;
    }
    /* Each DEALER holds a TCP connection and a mailbox descriptor. */
    if (s_raise_nofile(o.agents * 2 + 128, &err) < 0) {
        fprintf(stderr, "bm-loadgen: %s\n", err.msg);
        return 1;
    }

    s_agent_t *agents = calloc(o.agents, sizeof *agents);
    zmq_pollitem_t *items = calloc(o.agents, sizeof *items);
    int64_t *sent_us = calloc(n_batches, sizeof *sent_us);
    int64_t *lat_us = calloc(n_batches, sizeof *lat_us);
    uint8_t *acked = calloc(n_batches, 1);
    if (!agents || !items || !sent_us || !lat_us || !acked) {
        fprintf(stderr, "bm-loadgen: out of memory\n");
        return 1;
    }
    for (uint64_t a = 0; a < o.agents; a++) {
        snprintf(agents[a].agent_id, sizeof agents[a].agent_id, "lg-%s-%05" PRIu64,
                 o.branch_prefix, a + o.first + 1);
        bm_loadmix_branch_code(o.branch_prefix, (uint32_t)((a + o.first) % o.branches),
                               agents[a].branch,
                               sizeof agents[a].branch);
        if (bm_stream_id_new(agents[a].stream, &err) < 0) {
            fprintf(stderr, "bm-loadgen: %s\n", err.msg);
            return 1;
        }
    }
    uint64_t kinds[BM_KIND_COUNT] = {0};
    int64_t t_build = s_us();
    s_frame_t *frames = s_build(&o, agents, n_batches, kinds, &err);
    if (!frames) {
        fprintf(stderr, "bm-loadgen: %s\n", err.msg);
        return 1;
    }
    uint64_t bytes = 0;
    for (uint64_t k = 0; k < n_batches; k++)
        bytes += frames[k].len;
    fprintf(stderr, "bm-loadgen: encoded %" PRIu64 " batches (%" PRIu64 " bytes) in %.2f s\n",
            n_batches, bytes, (double)(s_us() - t_build) / 1e6);

    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, (int)o.agents + 64);
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, (int)o.io_threads);
    int64_t t_conn = s_us();
    uint64_t n_conn = 0;
    /* Connects agents [n_conn, n_conn_to) and sends their heartbeats. */
#define S_CONNECT_UPTO(n_conn_to)                                                                \
    do {                                                                                         \
        if (s_connect(ctx, &o, agents, items, n_conn, (n_conn_to)) < 0)                           \
            return 1;                                                                            \
        n_conn = (n_conn_to);                                                                    \
    } while (0)
    S_CONNECT_UPTO(o.step ? (o.step < o.agents ? o.step : o.agents) : o.agents);

    uint64_t hb_ok = 0, error_replies = 0, stored = 0, dups = 0, rejected = 0, resent_dup = 0;
    uint64_t bad_counts = 0, acked_batches = 0, acked_records = 0;
    char last_error[256] = "";
    bool failed = false;
    int64_t last_progress = s_us();
    int64_t t_start = 0, t_end = 0;
    /* Phase 1: every agent connected (heartbeat_ok); phase 2: batches. */
    while (acked_batches < n_batches) {
        if (t_start == 0 && hb_ok == n_conn && n_conn < o.agents) {
            uint64_t to = n_conn + o.step;
            S_CONNECT_UPTO(to < o.agents ? to : o.agents);
        }
        if (hb_ok == o.agents && t_start == 0) {
            t_start = s_us();
            for (uint64_t a = 0; a < o.agents; a++) {
                s_agent_t *ag = &agents[a];
                while (ag->next < ag->n_batches && ag->inflight < o.window) {
                    uint64_t k = a + (uint64_t)ag->next * o.agents;
                    sent_us[k] = s_us();
                    if (s_send(ag->sock, frames[k].data, frames[k].len) < 0) {
                        fprintf(stderr, "bm-loadgen: send: %s\n", zmq_strerror(errno));
                        return 1;
                    }
                    ag->next++;
                    ag->inflight++;
                }
            }
        }
        int rc = zmq_poll(items, (int)n_conn, 500);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "bm-loadgen: poll: %s\n", zmq_strerror(errno));
            return 1;
        }
        int64_t now = s_us();
        if (rc == 0) {
            if (now - last_progress > (int64_t)o.timeout_s * 1000000) {
                fprintf(stderr, "bm-loadgen: no reply for %" PRIu64 " s: %" PRIu64 " of %" PRIu64
                        " agents connected, %" PRIu64 " of %" PRIu64 " batches acknowledged\n",
                        o.timeout_s, hb_ok, o.agents, acked_batches, n_batches);
                failed = true;
                break;
            }
            continue;
        }
        last_progress = now;
        for (uint64_t a = 0; a < n_conn; a++) {
            if (!(items[a].revents & ZMQ_POLLIN))
                continue;
            s_agent_t *ag = &agents[a];
            for (;;) {
                zmq_msg_t m;
                zmq_msg_init(&m);
                if (zmq_msg_recv(&m, ag->sock, ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close(&m);
                    break;
                }
                int64_t t_rep = s_us();
                bm_reply_t *rep = bm_reply_decode(zmq_msg_data(&m), zmq_msg_size(&m),
                                                  BM_MAX_FRAME_DEFAULT, &err);
                zmq_msg_close(&m);
                if (!rep) {
                    fprintf(stderr, "bm-loadgen: agent %" PRIu64 ": bad reply: %s\n", a + 1,
                            err.msg);
                    failed = true;
                    continue;
                }
                if (rep->result_case == BRANCHMARK__V1__REPLY__RESULT_HEARTBEAT_OK) {
                    if (!ag->hb_ok) {
                        ag->hb_ok = true;
                        hb_ok++;
                        if (hb_ok == o.agents)
                            fprintf(stderr, "bm-loadgen: all %" PRIu64
                                    " agents connected in %.2f s\n",
                                    o.agents, (double)(s_us() - t_conn) / 1e6);
                    }
                } else if (rep->result_case == BRANCHMARK__V1__REPLY__RESULT_ERROR) {
                    error_replies++;
                    snprintf(last_error, sizeof last_error, "%s",
                             rep->error->message ? rep->error->message : "");
                    if (error_replies > 1000) {
                        fprintf(stderr, "bm-loadgen: too many error replies; last: %s\n",
                                last_error);
                        return 1;
                    }
                    /* Resend what the error was about (a heartbeat or batch). */
                    if (rep->sequence == 0) {
                        ag->hb_ok = false;
                        fprintf(stderr, "bm-loadgen: agent %" PRIu64 ": heartbeat refused: %s\n",
                                a + 1, last_error);
                        failed = true;
                        acked_batches = n_batches;
                    } else if (rep->sequence <= ag->n_batches) {
                        uint64_t k = a + (rep->sequence - 1) * o.agents;
                        if (s_send(ag->sock, frames[k].data, frames[k].len) < 0)
                            return 1;
                    }
                } else if (rep->result_case == BRANCHMARK__V1__REPLY__RESULT_ACK) {
                    uint64_t j = rep->sequence - 1;
                    if (rep->sequence == 0 || j >= ag->n_batches ||
                        strcmp(rep->stream_id, ag->stream) != 0) {
                        fprintf(stderr, "bm-loadgen: agent %" PRIu64 ": ack for unknown "
                                "batch %" PRIu64 "\n", a + 1, rep->sequence);
                        failed = true;
                    } else {
                        uint64_t k = a + j * o.agents;
                        const Branchmark__V1__Ack *ack = rep->ack;
                        if (!acked[k]) {
                            acked[k] = 1;
                            lat_us[acked_batches] = t_rep - sent_us[k];
                            acked_batches++;
                            acked_records += frames[k].records;
                            ag->acked++;
                            ag->inflight--;
                            stored += ack->stored;
                            dups += ack->duplicates;
                            rejected += ack->n_rejected;
                            if (ack->batch_was_duplicate)
                                resent_dup++;
                            if (ack->stored + ack->duplicates + ack->n_rejected !=
                                frames[k].records)
                                bad_counts++;
                            if (acked_batches == n_batches)
                                t_end = t_rep;
                        }
                        if (t_start && ag->next < ag->n_batches && ag->inflight < o.window) {
                            uint64_t kn = a + (uint64_t)ag->next * o.agents;
                            sent_us[kn] = s_us();
                            if (s_send(ag->sock, frames[kn].data, frames[kn].len) < 0)
                                return 1;
                            ag->next++;
                            ag->inflight++;
                        }
                    }
                }
                bm_reply_free(&rep);
            }
        }
    }
    if (!t_end)
        t_end = s_us();
    double elapsed = t_start ? (double)(t_end - t_start) / 1e6 : 0;
    qsort(lat_us, acked_batches, sizeof *lat_us, s_cmp_i64);
    double p50 = acked_batches ? (double)lat_us[acked_batches / 2] / 1000 : 0;
    double p99 = acked_batches ? (double)lat_us[(acked_batches * 99) / 100 >= acked_batches
                                                    ? acked_batches - 1
                                                    : (acked_batches * 99) / 100] / 1000
                               : 0;
    double pmax = acked_batches ? (double)lat_us[acked_batches - 1] / 1000 : 0;
    bool pass = !failed && acked_batches == n_batches && acked_records == o.records &&
                stored == o.records && dups == 0 && rejected == 0 && resent_dup == 0 &&
                bad_counts == 0;
    printf("loadgen: label=%s agents=%" PRIu64 " records=%" PRIu64 " batch=%" PRIu64
           " window=%" PRIu64 " batches=%" PRIu64 " acked_batches=%" PRIu64
           " elapsed_s=%.3f rec_per_s=%.0f ack_p50_ms=%.2f ack_p99_ms=%.2f ack_max_ms=%.2f"
           " stored=%" PRIu64 " duplicates=%" PRIu64 " rejected=%" PRIu64
           " resent_duplicate=%" PRIu64 " error_replies=%" PRIu64 " connect_s=%.2f bytes=%" PRIu64,
           o.label, o.agents, o.records, o.batch, o.window, n_batches, acked_batches, elapsed,
           elapsed > 0 ? (double)acked_records / elapsed : 0, p50, p99, pmax, stored, dups,
           rejected, resent_dup, error_replies,
           t_start ? (double)(t_start - t_conn) / 1e6 : -1.0, bytes);
    for (int k = 1; k < BM_KIND_COUNT; k++)
        if (k != BM_KIND_EVALUATION)
            printf(" sent_%s=%" PRIu64, bm_kind_name((bm_kind_t)k), kinds[k]);
    printf(" result=%s\n", pass ? "PASS" : "FAIL");
    if (last_error[0])
        fprintf(stderr, "bm-loadgen: last error reply: %s\n", last_error);
    fflush(stdout);

    for (uint64_t a = 0; a < o.agents; a++)
        zmq_close(agents[a].sock);
    zmq_ctx_term(ctx);
    for (uint64_t k = 0; k < n_batches; k++)
        free(frames[k].data);
    free(frames);
    free(agents);
    free(items);
    free(sent_us);
    free(lat_us);
    free(acked);
    return pass ? 0 : 1;
}
